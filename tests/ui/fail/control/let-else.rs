use tapeless::differentiable;

#[differentiable]
fn f(x: f64, #[no_grad] k: Option<i32>) -> f64 {
    let Some(n) = k else {
        return x;
    };
    x.powi(n)
}

fn main() {}
