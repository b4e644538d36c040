use tapeless::differentiable;

#[differentiable]
fn wrap(x: f64) -> f64 {
    let mut y = x * 3.0;
    y %= 1.0;
    y
}

fn main() {}
