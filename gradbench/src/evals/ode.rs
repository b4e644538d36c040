//! `ode`: cmpad's `an_ode`, `s` classical Runge–Kutta steps over `[0, 2]` of
//! `y_0' = x_0`, `y_i' = x_i y_{i-1}` from `y(0) = 0`; `primal` is `y(2)` and
//! `gradient` the gradient of its last component with respect to `x`.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    s: usize,
}

/// The right-hand side of the ODE at `y`: `z_0 = x_0`, `z_i = x_i y_{i-1}`.
#[differentiable]
pub fn rhs(x: &[f64], y: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; x.len()];
    z[0] = x[0];
    for i in 1..x.len() {
        z[i] = x[i] * y[i - 1];
    }
    z
}

/// `y(2)` after `s` Runge–Kutta steps.
#[differentiable]
pub fn primal(x: &[f64], s: usize) -> Vec<f64> {
    let n = x.len();
    let h = 2.0 / s as f64;
    let mut y = vec![0.0; n];
    let mut tmp = vec![0.0; n];
    for _ in 0..s {
        let k1 = rhs(x, &y);
        for i in 0..n {
            tmp[i] = y[i] + h * k1[i] / 2.0;
        }
        let k2 = rhs(x, &tmp);
        for i in 0..n {
            tmp[i] = y[i] + h * k2[i] / 2.0;
        }
        let k3 = rhs(x, &tmp);
        for i in 0..n {
            tmp[i] = y[i] + h * k3[i];
        }
        let k4 = rhs(x, &tmp);
        for i in 0..n {
            y[i] += h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]) / 6.0;
        }
    }
    y
}

/// The gradient of `y(2)`'s last component: one reverse sweep seeded with
/// the last unit vector.
pub fn gradient(x: &[f64], s: usize) -> Vec<f64> {
    let mut seed = vec![0.0; x.len()];
    if let Some(last) = seed.last_mut() {
        *last = 1.0;
    }
    primal_adjoint(x, s, seed).1
}

/// Evaluates `primal` or `gradient`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let i: Input = parse(input.clone())?;
    match function {
        "primal" => timed(&input, i, |i| primal(&i.x, i.s)),
        "gradient" => timed(&input, i, |i| gradient(&i.x, i.s)),
        _ => Err(super::unknown("ode", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f64> = rand_vec(1, 5, 1.0).iter().map(|v| v + 1.5).collect();
        for s in [1, 3] {
            let g = gradient(&x, s);
            let f = |x: &[f64]| *primal(x, s).last().unwrap();
            assert_close(&g, &fd_gradient(f, &x), &format!("s={s}"));
        }
    }
}
