use tapeless::differentiable;

#[differentiable]
fn f(x: f64) -> f64 {
    x % 2.0
}

#[differentiable]
fn g(x: f64) -> f64 {
    f(x) * 3.0
}

fn main() {
    let _ = f(1.0);
    let _ = f_grad(1.0);
    let _ = f_adjoint(1.0, 1.0);
    let _ = g_grad(1.0);
}
