use tapeless::differentiable;

#[differentiable]
fn f(#[no_grad(x)] x: f64, y: f64) -> f64 {
    x * y
}

fn main() {}
