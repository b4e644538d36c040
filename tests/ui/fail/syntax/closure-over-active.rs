use tapeless::differentiable;

#[differentiable]
fn scaled(x: f64, y: f64) -> f64 {
    let f = |t: f64| t * x;
    f(y)
}

fn main() {}
