// A Hessian needs a scalar function.
use tapeless::differentiable;

#[differentiable(hessian)]
fn pair(x: f64) -> [f64; 2] {
    [x * x, x.sin()]
}

fn main() {}
