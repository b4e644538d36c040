use tapeless::differentiable;

#[differentiable]
fn f(x: f64, y: &f64) -> f64 {
    let mut z = *y;
    let r = &mut z;
    *r = x * 2.0;
    z
}

fn main() {}
