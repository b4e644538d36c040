use tapeless::differentiable;

#[differentiable]
fn tail_sum(x: &[f64]) -> f64 {
    let rest = &x[1..];
    let mut s = 0.0;
    for v in rest.iter() {
        s += v;
    }
    s
}

fn main() {}
