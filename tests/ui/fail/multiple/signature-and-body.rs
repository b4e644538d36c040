use tapeless::differentiable;

#[differentiable]
fn f(x: &mut f64, y: f64) -> f64 {
    *x = y % 3.0;
    y
}

fn main() {}
