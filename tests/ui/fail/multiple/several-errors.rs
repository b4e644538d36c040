use tapeless::differentiable;

#[differentiable]
fn f(x: f64, #[no_grad] k: Option<i32>) -> f64 {
    let y = x % 2.0;
    if let Some(n) = k {
        return y.powi(n);
    }
    let (s, c) = x.sin_cos();
    let g = |t: f64| t * x;
    y + s * c + g(1.0)
}

fn main() {}
