use tapeless::differentiable;

#[differentiable]
fn total(x: &[f64]) -> f64 {
    x.iter().sum::<f64>()
}

fn main() {}
