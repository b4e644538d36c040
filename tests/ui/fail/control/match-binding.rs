use tapeless::differentiable;

#[differentiable]
fn f(x: f64, #[no_grad] k: Option<i32>) -> f64 {
    match k {
        Some(n) => x.powi(n),
        None => x,
    }
}

fn main() {}
