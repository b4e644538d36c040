//! `llsq`: the linear least-squares objective of cmpad,
//! `½ Σ_i (s_i - Σ_j x_j t_i^j)²` with `t_i = -1 + 2i/(n-1)` and
//! `s_i = sign(t_i)`, and its gradient.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    x: Vec<f64>,
    n: usize,
}

/// ½ Σ_i (s_i - x_0 - x_1 t_i - x_2 t_i² - …)² over `n` points of [-1, 1].
#[differentiable]
pub fn primal(x: &[f64], n: usize) -> f64 {
    let mut sum = 0.0;
    for i in 0..n {
        let t = -1.0 + i as f64 * 2.0 / (n as f64 - 1.0);
        let s = if t > 0.0 {
            1.0
        } else if t < 0.0 {
            -1.0
        } else {
            0.0
        };
        // x_0 + x_1 t + … + x_{m-1} t^{m-1} by Horner's rule
        let m = x.len();
        let mut p = 0.0;
        for k in 0..m {
            p = p * t + x[m - 1 - k];
        }
        let r = s - p;
        sum += r * r;
    }
    sum / 2.0
}

/// Evaluates `primal` or `gradient`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let i: Input = parse(input.clone())?;
    match function {
        "primal" => timed(&input, i, |i| primal(&i.x, i.n)),
        "gradient" => timed(&input, i, |i| primal_grad(&i.x, i.n).1),
        _ => Err(super::unknown("llsq", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn gradient_matches_finite_differences() {
        let x = rand_vec(1, 6, 1.0);
        let (v, g) = primal_grad(&x, 9);
        assert_eq!(v, primal(&x, 9));
        assert_close(&g, &fd_gradient(|x| primal(x, 9), &x), "d/dx");
    }
}
