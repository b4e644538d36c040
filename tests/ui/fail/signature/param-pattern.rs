use tapeless::differentiable;

#[differentiable]
fn product((a, b): (f64, f64)) -> f64 {
    a * b
}

fn main() {}
