// Only the gradient is called: the original function still counts as used.
#![deny(warnings)]

use tapeless::differentiable;

#[differentiable]
fn square(x: f64) -> f64 {
    x * x
}

fn main() {
    assert_eq!(square_grad(3.0), (9.0, 6.0));
}
