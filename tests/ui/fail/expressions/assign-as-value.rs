use tapeless::differentiable;

#[differentiable]
fn f(x: f64) -> f64 {
    let mut y = x;
    let _unit = y = y * 2.0;
    y
}

fn main() {}
