//! `particle`: a charged particle starts at `(0, 8)` with velocity
//! `(0.75, 0)` in the field of two unit charges at `(10, 10 - w)` and
//! `(10, 0)`; naive Euler integration (`Δt = 0.1`, the acceleration being
//! `-∇ₓp`) until it crosses the x-axis, then linear interpolation to the
//! crossing point `x(t_f)`. The output is `argmin_w x₀(t_f)²` by gradient
//! descent from the input `w`.
//!
//! The argmin differentiates the Euler integration, which takes the gradient
//! of the potential [`potential`] at every step: nested AD. Each variant is
//! named by the outer mode (the argmin's derivative), then the inner mode
//! (the acceleration's):
//!
//! | variant | outer | inner |
//! |---|---|---|
//! | `rr` | [`naive_euler_r`]`_grad` | `potential_grad` |
//! | `rf` | [`naive_euler_f`]`_grad` | `potential_tangent`, once per coordinate |
//! | `fr` | [`naive_euler_r`]`_tangent` | `potential_grad` |
//! | `ff` | [`naive_euler_f`]`_tangent` | `potential_tangent`, once per coordinate |
//!
//! `#[differentiable(hessian)]` on `potential` makes its `_grad` and
//! `_tangent` differentiable in both modes (through the hidden
//! `potential_grad_pullback`, `potential_grad_pushforward`,
//! `potential_tangent_pullback` and `potential_tangent_pushforward`).

use super::gd;
use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    w: f64,
}

/// The electric potential at `(x0, x1)` of unit charges at `(10, 10 - w)`
/// and `(10, 0)`.
#[differentiable(hessian)]
pub fn potential(x0: f64, x1: f64, w: f64) -> f64 {
    let (dx, dy) = (x0 - 10.0, x1 - (10.0 - w));
    let (ex, ey) = (x0 - 10.0, x1);
    1.0 / (dx * dx + dy * dy).sqrt() + 1.0 / (ex * ex + ey * ey).sqrt()
}

/// `x₀(t_f)²`: the square of where the path crosses the x-axis, the
/// acceleration `-∇ₓp` (unit mass and charge) by reverse mode:
/// `potential_grad`.
#[differentiable(forward)]
pub fn naive_euler_r(w: f64) -> f64 {
    let dt = 0.1;
    let mut x0 = 0.0;
    let mut x1 = 8.0;
    let mut v0 = 0.75;
    let mut v1 = 0.0;
    loop {
        let (_, (g0, g1, _)) = potential_grad(x0, x1, w);
        let x0_new = x0 + dt * v0;
        let x1_new = x1 + dt * v1;
        if x1_new > 0.0 {
            x0 = x0_new;
            x1 = x1_new;
            v0 -= dt * g0;
            v1 -= dt * g1;
        } else {
            break;
        }
    }
    let dt_f = -x1 / v1;
    let x0_f = x0 + dt_f * v0;
    x0_f * x0_f
}

/// [`naive_euler_r`] with the acceleration by forward mode: one
/// `potential_tangent` per coordinate of `x`.
#[differentiable(forward)]
pub fn naive_euler_f(w: f64) -> f64 {
    let dt = 0.1;
    let mut x0 = 0.0;
    let mut x1 = 8.0;
    let mut v0 = 0.75;
    let mut v1 = 0.0;
    loop {
        let (_, g0) = potential_tangent(x0, x1, w, 1.0, 0.0, 0.0);
        let (_, g1) = potential_tangent(x0, x1, w, 0.0, 1.0, 0.0);
        let x0_new = x0 + dt * v0;
        let x1_new = x1 + dt * v1;
        if x1_new > 0.0 {
            x0 = x0_new;
            x1 = x1_new;
            v0 -= dt * g0;
            v1 -= dt * g1;
        } else {
            break;
        }
    }
    let dt_f = -x1 / v1;
    let x0_f = x0 + dt_f * v0;
    x0_f * x0_f
}

/// `argmin_w f(w)` from `w0`, `f'` by `df`.
fn argmin(f: impl Fn(f64) -> f64, df: impl Fn(f64) -> f64, w0: f64) -> f64 {
    gd::argmin(|w| f(w[0]), |w| vec![df(w[0])], &[w0])[0]
}

/// The `rr` variant: reverse over reverse.
pub fn rr(w0: f64) -> f64 {
    argmin(naive_euler_r, |w| naive_euler_r_grad(w).1, w0)
}

/// The `rf` variant: reverse over forward.
pub fn rf(w0: f64) -> f64 {
    argmin(naive_euler_f, |w| naive_euler_f_grad(w).1, w0)
}

/// The `fr` variant: forward over reverse.
pub fn fr(w0: f64) -> f64 {
    argmin(naive_euler_r, |w| naive_euler_r_tangent(w, 1.0).1, w0)
}

/// The `ff` variant: forward over forward.
pub fn ff(w0: f64) -> f64 {
    argmin(naive_euler_f, |w| naive_euler_f_tangent(w, 1.0).1, w0)
}

/// Evaluates one of `rr`, `rf`, `fr`, `ff`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { w } = parse(input.clone())?;
    let variant: fn(f64) -> f64 = match function {
        "rr" => rr,
        "rf" => rf,
        "fr" => fr,
        "ff" => ff,
        _ => return Err(super::unknown("particle", function)),
    };
    timed(&input, w, |w| variant(*w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_close;

    #[test]
    fn forward_acceleration_matches_reverse() {
        let (x0, x1, w) = (3.0, 4.5, 0.3);
        let (_, (g0, g1, _)) = potential_grad(x0, x1, w);
        let (_, t0) = potential_tangent(x0, x1, w, 1.0, 0.0, 0.0);
        let (_, t1) = potential_tangent(x0, x1, w, 0.0, 1.0, 0.0);
        assert_close(&[t0, t1], &[g0, g1], "∇ₓp");
    }

    #[test]
    fn nested_derivatives_match_finite_differences() {
        // Away from a change in the number of Euler steps, x₀(t_f)² is smooth in w.
        for w in [0.0, 0.2] {
            assert_close(&[naive_euler_f(w)], &[naive_euler_r(w)], "primal");
            let h = 1e-6;
            let fd = (naive_euler_r(w + h) - naive_euler_r(w - h)) / (2.0 * h);
            let rr = naive_euler_r_grad(w);
            let rf = naive_euler_f_grad(w);
            let fr = naive_euler_r_tangent(w, 1.0);
            let ff = naive_euler_f_tangent(w, 1.0);
            let (r, f) = (naive_euler_r(w), naive_euler_f(w));
            for (name, (v, d), primal) in
                [("rr", rr, r), ("rf", rf, f), ("fr", fr, r), ("ff", ff, f)]
            {
                // Not bit-equal for ff: the primal part of
                // `potential_tangent_pushforward` is ∇p · v by reverse mode.
                assert_close(&[v], &[primal], &format!("{name} value"));
                assert_close(&[d], &[fd], &format!("{name} d/dw at {w}"));
            }
        }
    }

    #[test]
    fn every_variant_converges_to_the_reference() {
        // GradBench's expected output for w = 0.
        for (name, variant) in [
            ("rr", rr as fn(f64) -> f64),
            ("rf", rf),
            ("fr", fr),
            ("ff", ff),
        ] {
            assert_close(&[variant(0.0)], &[0.2071918746486116], name);
        }
    }
}
