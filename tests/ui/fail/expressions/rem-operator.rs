use tapeless::differentiable;

#[differentiable]
fn wrap(x: f64, period: f64) -> f64 {
    x % period
}

fn main() {}
