use tapeless::differentiable;

#[differentiable]
fn sum<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i];
    }
    s
}

fn main() {}
