//! `saddle`: `min_{p1} max_{p2} f(p1, p2)` with
//! `f = (x1² + y1²) - (x2² + y2²)`, both optimisations by gradient descent
//! from `start`, then `argmax_{p2} f(r1, p2)`; the output is `r1 ++ r2`.
//!
//! The argmin differentiates a function, [`max_f`], that runs the inner
//! gradient ascent and takes its gradients itself: nested AD. Only the `rf`
//! variant can be written with tapeless today: the outer gradient is reverse
//! mode (`max_f_grad`), the inner gradient forward mode
//! (`objective_pushforward`, the forward-mode code that
//! `#[differentiable(hessian)]` also makes reverse-differentiable). The
//! other three would differentiate generated code that has no derivative:
//! `rr` needs `objective_grad_pullback` (reverse over reverse), `fr`
//! `objective_grad_pushforward` (forward over reverse), and `ff`
//! `objective_pushforward_pushforward` (forward over forward).

use super::gd;
use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    start: [f64; 2],
}

/// The function whose saddle point is sought; `p1 = (x1, y1)` is minimised
/// over, `p2 = (x2, y2)` maximised over.
#[differentiable(forward, hessian)]
pub fn objective(x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    (x1 * x1 + y1 * y1) - (x2 * x2 + y2 * y2)
}

/// `∇_{p2} f(p1, p2)` in forward mode: one pushforward per coordinate of
/// `p2`.
#[differentiable]
pub fn grad_p2_fwd(x1: f64, y1: f64, x2: f64, y2: f64) -> (f64, f64) {
    let (_, gx) = objective_pushforward(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
    let (_, gy) = objective_pushforward(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
    (gx, gy)
}

/// `max_{p2} f(p1, p2)`: gradient ascent from `(s1, s2)` (the solver of
/// [`gd::argmin`] on `-f`), with the gradient of [`grad_p2_fwd`].
#[differentiable(wrt(x1, y1))]
pub fn max_f(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let mut x2 = s1;
    let mut y2 = s2;
    let mut fx = -objective(x1, y1, x2, y2);
    let (gx0, gy0) = grad_p2_fwd(x1, y1, x2, y2);
    let mut gx = -gx0;
    let mut gy = -gy0;
    let mut eta = 1e-5;
    let mut i = 0;
    loop {
        if (gx * gx + gy * gy).sqrt() <= 1e-5 {
            break;
        } else if i == 10 {
            eta *= 2.0;
            i = 0;
        } else {
            let x2_prime = x2 - eta * gx;
            let y2_prime = y2 - eta * gy;
            let (dx, dy) = (x2 - x2_prime, y2 - y2_prime);
            if (dx * dx + dy * dy).sqrt() <= 1e-5 {
                break;
            }
            let fx_prime = -objective(x1, y1, x2_prime, y2_prime);
            if fx_prime < fx {
                x2 = x2_prime;
                y2 = y2_prime;
                fx = fx_prime;
                let (gx1, gy1) = grad_p2_fwd(x1, y1, x2, y2);
                gx = -gx1;
                gy = -gy1;
                i += 1;
            } else {
                eta /= 2.0;
                i = 0;
            }
        }
    }
    objective(x1, y1, x2, y2)
}

/// The `rf` variant: the argmin's gradient of [`max_f`] in reverse mode,
/// the inner argmax's in forward mode; the final argmax by reverse mode.
pub fn rf(start: [f64; 2]) -> Vec<f64> {
    let [s1, s2] = start;
    let r1 = gd::argmin(
        |p| max_f(p[0], p[1], s1, s2),
        |p| {
            let (_, (gx, gy)) = max_f_grad(p[0], p[1], s1, s2);
            vec![gx, gy]
        },
        &start,
    );
    let r2 = gd::argmax(
        |p| objective(r1[0], r1[1], p[0], p[1]),
        |p| {
            let (_, (_, _, gx, gy)) = objective_grad(r1[0], r1[1], p[0], p[1]);
            vec![gx, gy]
        },
        &start,
    );
    vec![r1[0], r1[1], r2[0], r2[1]]
}

/// Evaluates `rf`; the other variants need nested AD tapeless lacks.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { start } = parse(input.clone())?;
    match function {
        "rf" => timed(&input, start, |s| rf(*s)),
        "rr" | "fr" | "ff" => Err(format!(
            "saddle {function:?} needs {}, which tapeless does not generate; only \"rf\" is implemented",
            match function {
                "rr" => "reverse over reverse (objective_grad_pullback)",
                "fr" => "forward over reverse (objective_grad_pushforward)",
                _ => "forward over forward (objective_pushforward_pushforward)",
            }
        )),
        _ => Err(super::unknown("saddle", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_close;

    #[test]
    fn nested_gradient_matches_finite_differences() {
        // max_f(p1) is |p1|² minus the inner ascent's leftover; its gradient
        // through the inner solver against central differences.
        for p in [[0.7, -0.4], [1.3, 0.2]] {
            let (v, (gx, gy)) = max_f_grad(p[0], p[1], 1.0, 1.0);
            assert_eq!(v, max_f(p[0], p[1], 1.0, 1.0));
            let h = 1e-6;
            let fd = |e: [f64; 2]| {
                (max_f(p[0] + h * e[0], p[1] + h * e[1], 1.0, 1.0)
                    - max_f(p[0] - h * e[0], p[1] - h * e[1], 1.0, 1.0))
                    / (2.0 * h)
            };
            assert_close(&[gx, gy], &[fd([1.0, 0.0]), fd([0.0, 1.0])], "∇ max_f");
        }
    }

    #[test]
    fn rf_finds_the_saddle_point() {
        let out = rf([1.0, 1.0]);
        for v in out {
            assert!(v.abs() < 1e-4, "{v}");
        }
    }
}
