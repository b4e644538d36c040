use tapeless::differentiable;

#[differentiable]
fn total(x: impl Into<f64>) -> f64 {
    x.into()
}

fn main() {}
