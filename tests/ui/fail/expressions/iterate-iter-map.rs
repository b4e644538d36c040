use tapeless::differentiable;

#[differentiable]
fn total(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter().rev() {
        s += v;
    }
    s
}

fn main() {}
