//! `saddle`: `min_{p1} max_{p2} f(p1, p2)` with
//! `f = (x1² + y1²) - (x2² + y2²)`, both optimisations by gradient descent
//! from `start`, then `argmax_{p2} f(r1, p2)`; the output is `r1 ++ r2`.
//!
//! The argmin differentiates a function that runs the inner gradient ascent
//! and takes its gradients itself: nested AD. Each variant is named by the
//! outer mode (the argmin's derivative, and the final argmax's), then the
//! inner mode (the inner ascent's):
//!
//! | variant | outer | inner |
//! |---|---|---|
//! | `rr` | [`max_f_r`]`_grad` | `objective_grad` |
//! | `rf` | [`max_f_f`]`_grad` | `objective_tangent`, once per coordinate of `p2` |
//! | `fr` | [`max_f_r`]`_tangent`, once per coordinate of `p1` | `objective_grad` |
//! | `ff` | [`max_f_f`]`_tangent`, once per coordinate of `p1` | `objective_tangent`, once per coordinate of `p2` |
//!
//! `#[differentiable(hessian)]` on `objective` makes its `_grad` and
//! `_tangent` differentiable in both modes (through the hidden
//! `objective_grad_pullback`, `objective_grad_pushforward`,
//! `objective_tangent_pullback` and `objective_tangent_pushforward`).

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
#[differentiable(hessian)]
pub fn objective(x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    (x1 * x1 + y1 * y1) - (x2 * x2 + y2 * y2)
}

/// `max_{p2} f(p1, p2)`: gradient ascent from `(s1, s2)` (the solver of
/// [`gd::argmin`] on `-f`), `∇_{p2} f` by reverse mode (`objective_grad`).
#[differentiable(forward, wrt(x1, y1))]
pub fn max_f_r(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let mut x2 = s1;
    let mut y2 = s2;
    let mut fx = -objective(x1, y1, x2, y2);
    let (_, (_, _, gx0, gy0)) = objective_grad(x1, y1, x2, y2);
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
                let (_, (_, _, gx1, gy1)) = objective_grad(x1, y1, x2, y2);
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

/// [`max_f_r`] with `∇_{p2} f` by forward mode: one `objective_tangent`
/// per coordinate of `p2`.
#[differentiable(forward, wrt(x1, y1))]
pub fn max_f_f(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let mut x2 = s1;
    let mut y2 = s2;
    let mut fx = -objective(x1, y1, x2, y2);
    let (_, gx0) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
    let (_, gy0) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
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
                let (_, gx1) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
                let (_, gy1) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
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

/// The two steps of the eval, given `max_{p2} f` and its gradient in `p1`
/// (the argmin's) and `∇_{p2} f` (the final argmax's).
fn saddle(
    start: [f64; 2],
    max_f: impl Fn(f64, f64) -> f64,
    max_f_grad: impl Fn(f64, f64) -> [f64; 2],
    grad_p2: impl Fn(f64, f64, f64, f64) -> [f64; 2],
) -> Vec<f64> {
    let r1 = gd::argmin(
        |p| max_f(p[0], p[1]),
        |p| max_f_grad(p[0], p[1]).to_vec(),
        &start,
    );
    let r2 = gd::argmax(
        |p| objective(r1[0], r1[1], p[0], p[1]),
        |p| grad_p2(r1[0], r1[1], p[0], p[1]).to_vec(),
        &start,
    );
    vec![r1[0], r1[1], r2[0], r2[1]]
}

/// `∇_{p2} f` by reverse mode, for the final argmax of `rr` and `rf`.
fn grad_p2_r(x1: f64, y1: f64, x2: f64, y2: f64) -> [f64; 2] {
    let (_, (_, _, gx, gy)) = objective_grad(x1, y1, x2, y2);
    [gx, gy]
}

/// `∇_{p2} f` by forward mode, for the final argmax of `fr` and `ff`.
fn grad_p2_f(x1: f64, y1: f64, x2: f64, y2: f64) -> [f64; 2] {
    let (_, gx) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
    let (_, gy) = objective_tangent(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
    [gx, gy]
}

/// The `rr` variant: reverse over reverse.
pub fn rr(start: [f64; 2]) -> Vec<f64> {
    let [s1, s2] = start;
    let max_f = |x1, y1| max_f_r(x1, y1, s1, s2);
    let grad = |x1, y1| {
        let (_, (gx, gy)) = max_f_r_grad(x1, y1, s1, s2);
        [gx, gy]
    };
    saddle(start, max_f, grad, grad_p2_r)
}

/// The `rf` variant: reverse over forward.
pub fn rf(start: [f64; 2]) -> Vec<f64> {
    let [s1, s2] = start;
    let max_f = |x1, y1| max_f_f(x1, y1, s1, s2);
    let grad = |x1, y1| {
        let (_, (gx, gy)) = max_f_f_grad(x1, y1, s1, s2);
        [gx, gy]
    };
    saddle(start, max_f, grad, grad_p2_r)
}

/// The `fr` variant: forward over reverse.
pub fn fr(start: [f64; 2]) -> Vec<f64> {
    let [s1, s2] = start;
    let max_f = |x1, y1| max_f_r(x1, y1, s1, s2);
    let grad = |x1, y1| {
        let (_, gx) = max_f_r_tangent(x1, y1, s1, s2, 1.0, 0.0);
        let (_, gy) = max_f_r_tangent(x1, y1, s1, s2, 0.0, 1.0);
        [gx, gy]
    };
    saddle(start, max_f, grad, grad_p2_f)
}

/// The `ff` variant: forward over forward.
pub fn ff(start: [f64; 2]) -> Vec<f64> {
    let [s1, s2] = start;
    let max_f = |x1, y1| max_f_f(x1, y1, s1, s2);
    let grad = |x1, y1| {
        let (_, gx) = max_f_f_tangent(x1, y1, s1, s2, 1.0, 0.0);
        let (_, gy) = max_f_f_tangent(x1, y1, s1, s2, 0.0, 1.0);
        [gx, gy]
    };
    saddle(start, max_f, grad, grad_p2_f)
}

/// Evaluates one of `rr`, `rf`, `fr`, `ff`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { start } = parse(input.clone())?;
    let variant: fn([f64; 2]) -> Vec<f64> = match function {
        "rr" => rr,
        "rf" => rf,
        "fr" => fr,
        "ff" => ff,
        _ => return Err(super::unknown("saddle", function)),
    };
    timed(&input, start, |s| variant(*s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_close;

    #[test]
    fn nested_gradients_match_finite_differences() {
        // max_f(p1) is |p1|² minus the inner ascent's leftover; its gradient
        // through the inner solver against central differences, in all
        // four combinations.
        for p in [[0.7, -0.4], [1.3, 0.2]] {
            let h = 1e-6;
            let fd = |e: [f64; 2]| {
                (max_f_r(p[0] + h * e[0], p[1] + h * e[1], 1.0, 1.0)
                    - max_f_r(p[0] - h * e[0], p[1] - h * e[1], 1.0, 1.0))
                    / (2.0 * h)
            };
            let want = [fd([1.0, 0.0]), fd([0.0, 1.0])];
            let (r, f) = (max_f_r(p[0], p[1], 1.0, 1.0), max_f_f(p[0], p[1], 1.0, 1.0));
            assert_close(&[f], &[r], "primal");
            let (v, (gx, gy)) = max_f_r_grad(p[0], p[1], 1.0, 1.0);
            assert_eq!(v, r);
            assert_close(&[gx, gy], &want, "rr");
            let (v, (gx, gy)) = max_f_f_grad(p[0], p[1], 1.0, 1.0);
            assert_eq!(v, f);
            assert_close(&[gx, gy], &want, "rf");
            let (_, gx) = max_f_r_tangent(p[0], p[1], 1.0, 1.0, 1.0, 0.0);
            let (_, gy) = max_f_r_tangent(p[0], p[1], 1.0, 1.0, 0.0, 1.0);
            assert_close(&[gx, gy], &want, "fr");
            let (_, gx) = max_f_f_tangent(p[0], p[1], 1.0, 1.0, 1.0, 0.0);
            let (_, gy) = max_f_f_tangent(p[0], p[1], 1.0, 1.0, 0.0, 1.0);
            assert_close(&[gx, gy], &want, "ff");
        }
    }

    #[test]
    fn every_variant_finds_the_saddle_point() {
        type Variant = fn([f64; 2]) -> Vec<f64>;
        for (name, variant) in [("rr", rr as Variant), ("rf", rf), ("fr", fr), ("ff", ff)] {
            for v in variant([1.0, 1.0]) {
                assert!(v.abs() < 1e-4, "{name}: {v}");
            }
        }
    }
}
