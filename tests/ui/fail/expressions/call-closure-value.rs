use tapeless::differentiable;

#[differentiable]
fn apply(x: f64, #[no_grad] f: fn(f64) -> f64) -> f64 {
    f(x) * x
}

fn main() {}
