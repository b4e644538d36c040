use tapeless::differentiable;

#[differentiable]
fn square(x: f64) -> impl Copy {
    x * x
}

fn main() {}
