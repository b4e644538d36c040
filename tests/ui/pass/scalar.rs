//! Straight-line scalar code, options and the generated signatures.
#![deny(warnings)]

use tapeless::differentiable;

/// The contract's example.
#[differentiable]
pub fn loss(w: f64, x: f64) -> f64 {
    (w * x - 10.0).powi(2)
}

#[differentiable]
fn smooth(x: f64, y: f64) -> f64 {
    let a = x.sin() * y.exp();
    let b = (a / (1.0 + y * y)).tanh();
    -b + x.sqrt().ln() - f64::cos(y)
}

#[differentiable]
fn single(x: f32, y: f32) -> f32 {
    x.sin() * y.exp() - f32::cos(y)
}

#[differentiable(wrt(b))]
fn only_b(a: f64, b: f64) -> f64 {
    a * b * b
}

#[differentiable]
fn with_no_grad(x: f64, #[no_grad] scale: f64, n: i32) -> f64 {
    x.powi(n) * scale
}

#[differentiable]
fn stopped(x: f64, y: f64) -> f64 {
    tapeless::stop_gradient(x * y) * x
}

#[differentiable]
fn mixed(x: f64, k: usize, flag: bool) -> f64 {
    let c = if flag { 2.0 } else { 1.0 };
    let odd = (k & 1) as f64;
    x * c * k as f64 + odd
}

fn main() {
    assert_eq!(loss_grad(2.0, 3.0), (16.0, (-24.0, -16.0)));
    assert_eq!(smooth_grad(0.5, 0.25).0, smooth(0.5, 0.25));
    let (v, (_dx, _dy)): (f32, (f32, f32)) = single_grad(0.5, 0.25);
    assert_eq!(v, single(0.5, 0.25));
    assert_eq!(only_b_grad(3.0, 2.0), (only_b(3.0, 2.0), 12.0));
    assert_eq!(
        with_no_grad_grad(2.0, 3.0, 2),
        (with_no_grad(2.0, 3.0, 2), 12.0)
    );
    assert_eq!(stopped_grad(2.0, 3.0), (stopped(2.0, 3.0), (6.0, 0.0)));
    assert_eq!(mixed_grad(1.5, 2, true), (mixed(1.5, 2, true), 4.0));
    assert_eq!(mixed_grad(1.5, 3, true), (10.0, 6.0));
    assert_eq!(loss_adjoint(2.0, 3.0, 2.0), (16.0, (-48.0, -32.0)));
}
