use tapeless::differentiable;

#[differentiable]
fn smallest(mut x: Vec<f64>) -> f64 {
    x.sort_by(|a, b| a.partial_cmp(b).unwrap());
    x[0]
}

fn main() {}
