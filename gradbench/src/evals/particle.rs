//! `particle`: a charged particle starts at `(0, 8)` with velocity
//! `(0.75, 0)` in the field of two unit charges at `(10, 10 - w)` and
//! `(10, 0)`; naive Euler integration (`Δt = 0.1`, the acceleration being
//! `-∇ₓp`) until it crosses the x-axis, then linear interpolation to the
//! crossing point `x(t_f)`. The output is `argmin_w x₀(t_f)²` by gradient
//! descent from the input `w`.
//!
//! The argmin differentiates [`naive_euler_f`], which takes the gradient of
//! the potential [`potential`] at every step: nested AD. Only the `rf`
//! variant can be written with tapeless today: the outer derivative is
//! reverse mode (`naive_euler_f_grad`), the inner gradient forward mode
//! (`potential_pushforward`, the forward-mode code that
//! `#[differentiable(hessian)]` also makes reverse-differentiable). `rr`
//! would need `potential_grad_pullback` (reverse over reverse), `fr`
//! `potential_grad_pushforward` (forward over reverse) and `ff`
//! `potential_pushforward_pushforward` (forward over forward), none of
//! which is generated.

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
#[differentiable(forward, hessian)]
pub fn potential(x0: f64, x1: f64, w: f64) -> f64 {
    let (dx, dy) = (x0 - 10.0, x1 - (10.0 - w));
    let (ex, ey) = (x0 - 10.0, x1);
    1.0 / (dx * dx + dy * dy).sqrt() + 1.0 / (ex * ex + ey * ey).sqrt()
}

/// The particle's acceleration `-∇ₓp` (unit mass and charge), the gradient in
/// forward mode: one pushforward per coordinate of `x`.
#[differentiable]
pub fn accel_fwd(x0: f64, x1: f64, w: f64) -> (f64, f64) {
    let (_, d0) = potential_pushforward(x0, x1, w, 1.0, 0.0, 0.0);
    let (_, d1) = potential_pushforward(x0, x1, w, 0.0, 1.0, 0.0);
    (-d0, -d1)
}

/// `x₀(t_f)²`: the square of where the path crosses the x-axis.
#[differentiable]
pub fn naive_euler_f(w: f64) -> f64 {
    let dt = 0.1;
    let mut x0 = 0.0;
    let mut x1 = 8.0;
    let mut v0 = 0.75;
    let mut v1 = 0.0;
    loop {
        let (a0, a1) = accel_fwd(x0, x1, w);
        let x0_new = x0 + dt * v0;
        let x1_new = x1 + dt * v1;
        if x1_new > 0.0 {
            x0 = x0_new;
            x1 = x1_new;
            v0 += dt * a0;
            v1 += dt * a1;
        } else {
            break;
        }
    }
    let dt_f = -x1 / v1;
    let x0_f = x0 + dt_f * v0;
    x0_f * x0_f
}

/// The `rf` variant: the argmin's gradient of [`naive_euler_f`] by reverse
/// mode, the acceleration's by forward mode.
pub fn rf(w0: f64) -> f64 {
    let w = gd::argmin(
        |w| naive_euler_f(w[0]),
        |w| vec![naive_euler_f_grad(w[0]).1],
        &[w0],
    );
    w[0]
}

/// Evaluates `rf`; the other variants need nested AD tapeless lacks.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { w } = parse(input.clone())?;
    match function {
        "rf" => timed(&input, w, |w| rf(*w)),
        "rr" | "fr" | "ff" => Err(format!(
            "particle {function:?} needs {}, which tapeless does not generate; only \"rf\" is implemented",
            match function {
                "rr" => "reverse over reverse (potential_grad_pullback)",
                "fr" => "forward over reverse (potential_grad_pushforward)",
                _ => "forward over forward (potential_pushforward_pushforward)",
            }
        )),
        _ => Err(super::unknown("particle", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_close;

    #[test]
    fn acceleration_is_minus_the_potential_gradient() {
        let (x0, x1, w) = (3.0, 4.5, 0.3);
        let (a0, a1) = accel_fwd(x0, x1, w);
        let (_, (g0, g1, _)) = potential_grad(x0, x1, w);
        assert_close(&[a0, a1], &[-g0, -g1], "accel");
    }

    #[test]
    fn nested_gradient_matches_finite_differences() {
        // Away from a change in the number of Euler steps, x₀(t_f)² is smooth in w.
        for w in [0.0, 0.2] {
            let (v, g) = naive_euler_f_grad(w);
            assert_eq!(v, naive_euler_f(w));
            let h = 1e-6;
            let fd = (naive_euler_f(w + h) - naive_euler_f(w - h)) / (2.0 * h);
            assert_close(&[g], &[fd], &format!("d/dw at {w}"));
        }
    }

    #[test]
    fn rf_converges_to_the_reference() {
        // GradBench's expected output for w = 0.
        assert_close(&[rf(0.0)], &[0.2071918746486116], "argmin");
    }
}
