use tapeless::differentiable;

fn helper(t: f64) -> f64 {
    t * t
}

#[differentiable]
fn f(x: f64) -> f64 {
    helper(x) + 1.0
}

fn main() {}
