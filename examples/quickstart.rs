//! The backpropagation example of the README: `loss = (w * x - 10)^2`, its
//! gradient from `#[differentiable]`, and a few steps of gradient descent.
//!
//! Run with `cargo run --release --example quickstart`.

use tapeless::differentiable;

/// Squared error of a one-weight linear model.
#[differentiable]
fn loss(w: f64, x: f64) -> f64 {
    (w * x - 10.0).powi(2)
}

/// A small recurrent model over a sequence: the gradient flows back through
/// every step of the loop.
#[differentiable]
fn sequence_loss(w: f64, u: f64, xs: &[f64], target: f64) -> f64 {
    let mut h = 0.0;
    for &x in xs {
        h = (w * h + u * x).tanh();
    }
    (h - target).powi(2)
}

fn main() {
    let (l, (dl_dw, dl_dx)) = loss_grad(2.0, 3.0);
    println!("loss(w = 2, x = 3) = {l}, dL/dw = {dl_dw}, dL/dx = {dl_dx}");
    assert_eq!((l, dl_dw, dl_dx), (16.0, -24.0, -16.0));

    // Gradient descent on w alone.
    let mut w = 2.0;
    for step in 0..5 {
        let (l, (g, _)) = loss_grad(w, 3.0);
        println!("step {step}: w = {w:.6}, loss = {l:.6}");
        w -= 0.05 * g;
    }

    // Fit a tiny RNN so that its last state after the sequence hits 0.5.
    let xs = [0.3, -0.1, 0.8, 0.5, -0.4];
    let (mut w, mut u) = (0.1, 0.1);
    for _ in 0..200 {
        let (_, (gw, gu, _, _)) = sequence_loss_grad(w, u, &xs, 0.5);
        w -= 0.5 * gw;
        u -= 0.5 * gu;
    }
    let final_loss = sequence_loss(w, u, &xs, 0.5);
    println!("RNN after 200 steps: w = {w:.4}, u = {u:.4}, loss = {final_loss:.2e}");
}
