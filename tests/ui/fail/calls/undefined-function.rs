use tapeless::differentiable;

#[differentiable]
fn f(x: f64) -> f64 {
    no_such_function(x) + 1.0
}

fn main() {}
