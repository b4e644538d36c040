//! `lse`: LogSumExp of a vector, `primal` and `gradient`, computed stably as
//! `max x + ln Σ exp(x_i - max x)`.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
}

/// ln Σ exp(x_i), with the maximum subtracted first so no `exp` overflows.
#[differentiable]
pub fn logsumexp(x: &[f64]) -> f64 {
    // The shift `a` cancels out of the derivative (∂/∂a [a + ln Σ e^(x_i - a)]
    // = 1 - Σ e^(x_i - a) / Σ e^(x_i - a) = 0), so it is held constant, as
    // `jax.nn.logsumexp` does: its loop has no reverse sweep.
    let xs = tapeless::stop_gradient(x);
    let mut a = xs[0];
    for &v in xs {
        a = a.max(v);
    }
    let mut s = 0.0;
    for &v in x {
        s += (v - a).exp();
    }
    a + s.ln()
}

/// Evaluates `primal` or `gradient`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { x } = parse(input.clone())?;
    match function {
        "primal" => timed(&input, x, |x| logsumexp(x)),
        "gradient" => timed(&input, x, |x| logsumexp_grad(x).1),
        _ => Err(super::unknown("lse", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn gradient_is_softmax_and_matches_finite_differences() {
        let x = rand_vec(1, 7, 3.0);
        let (v, g) = logsumexp_grad(&x);
        assert_eq!(v, logsumexp(&x));
        let e: Vec<f64> = x.iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        assert_close(&g, &e.iter().map(|e| e / s).collect::<Vec<_>>(), "softmax");
        assert_close(&g, &fd_gradient(logsumexp, &x), "finite differences");
    }
}
