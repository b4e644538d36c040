use tapeless::differentiable;

#[differentiable]
fn scale_parsed(x: f64, s: &str) -> Option<f64> {
    let k: f64 = s.parse().ok()?;
    Some(x * k)
}

fn main() {}
