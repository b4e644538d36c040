// A function called from forward-mode code needs forward mode too.
use tapeless::differentiable;

#[differentiable]
fn inner(x: f64) -> f64 {
    x * x
}

#[differentiable(forward)]
fn outer(x: f64) -> f64 {
    inner(x).sin()
}

fn main() {}
