use tapeless::differentiable;

struct Point {
    x: f64,
    y: f64,
}

#[differentiable]
fn norm2(a: f64, b: f64) -> f64 {
    let p = Point { x: a, y: b };
    p.x * p.x + p.y * p.y
}

fn main() {}
