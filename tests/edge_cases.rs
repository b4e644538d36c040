//! Numerical edge cases, end to end through `#[differentiable]`:
//!
//! * the documented conventions at non-smooth points (`abs'(0) = 0`, `max`/`min`
//!   ties to the first argument, `clamp` at its bounds, `sqrt` at `±0`,
//!   `powf(0, p)`, `powi(x, 0)`, `atan2(0, 0)`, `hypot(0, 0)`, piecewise constant
//!   functions) — the table in `tapeless::rules`' docs;
//! * NaN and infinity propagate through gradients (they are not swallowed);
//! * a masked branch or an unused value does not produce NaN
//!   (`if x > 0.0 { x.sqrt() } else { 0.0 }` at `x = -1` has gradient `0`);
//! * `f32` gradients of a long loop stay within a stated error of `f64` ones.

// `a = a * x`, index loops and `x.max(y)` on literals are constructs under test.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

mod common;

use common::*;
use tapeless::differentiable;

/// Bit-for-bit equality that also accepts NaN == NaN, with a message.
#[track_caller]
fn same(actual: f64, expected: f64, what: &str) {
    assert!(
        actual.to_bits() == expected.to_bits() || (actual.is_nan() && expected.is_nan()),
        "{what}: got {actual:e} ({:#x}), expected {expected:e} ({:#x})",
        actual.to_bits(),
        expected.to_bits()
    );
}

// ---------------------------------------------------------------- non-smooth points

#[differentiable]
fn abs1(x: f64) -> f64 {
    x.abs()
}

#[differentiable]
fn abs_scaled(x: f64, y: f64) -> f64 {
    (x * y).abs() + 3.0 * x
}

#[test]
fn abs_at_zero_has_derivative_zero() {
    same(abs1_grad(0.0).1, 0.0, "abs'(+0)");
    same(abs1_grad(-0.0).1, 0.0, "abs'(-0)");
    same(abs1_grad(2.0).1, 1.0, "abs'(2)");
    same(abs1_grad(-2.0).1, -1.0, "abs'(-2)");
    // inside an expression: d/dx |x y| = 0 at x y = 0, the 3x term still counts
    let (v, (dx, dy)) = abs_scaled_grad(0.0, 5.0);
    same(v, 0.0, "abs_scaled value");
    same(dx, 3.0, "abs_scaled dx at xy = 0");
    same(dy, 0.0, "abs_scaled dy at xy = 0");
}

#[differentiable]
fn max2(x: f64, y: f64) -> f64 {
    x.max(y)
}

#[differentiable]
fn min2(x: f64, y: f64) -> f64 {
    x.min(y)
}

#[differentiable]
fn max_path(x: f64, y: f64) -> f64 {
    f64::max(x, y) * 2.0
}

#[differentiable]
fn relu_like(x: f64) -> f64 {
    x.max(0.0)
}

#[differentiable]
fn zero_first(x: f64) -> f64 {
    // the literal is the first argument: ties go to it, x gets nothing
    f64::max(0.0, x)
}

#[differentiable]
fn clamp1(x: f64) -> f64 {
    x.clamp(-1.0, 2.0)
}

#[test]
fn max_min_clamp_ties_go_to_the_first_argument() {
    for (x, y) in [
        (1.5, 1.5),
        (0.0, 0.0),
        (0.0, -0.0),
        (-0.0, 0.0),
        (-3.0, -3.0),
    ] {
        assert_eq!(max2_grad(x, y).1, (1.0, 0.0), "max tie at ({x}, {y})");
        assert_eq!(min2_grad(x, y).1, (1.0, 0.0), "min tie at ({x}, {y})");
        assert_eq!(
            max_path_grad(x, y).1,
            (2.0, 0.0),
            "f64::max tie at ({x}, {y})"
        );
    }
    // away from ties exactly one operand gets the cotangent
    assert_eq!(max2_grad(1.0, 2.0).1, (0.0, 1.0));
    assert_eq!(max2_grad(2.0, 1.0).1, (1.0, 0.0));
    assert_eq!(min2_grad(1.0, 2.0).1, (1.0, 0.0));
    assert_eq!(min2_grad(2.0, 1.0).1, (0.0, 1.0));
    // x.max(0.0) at 0: the tie goes to x (max's convention), and `max(0, x)` gives x nothing
    same(relu_like_grad(0.0).1, 1.0, "x.max(0.0) at 0");
    same(relu_like_grad(-0.0).1, 1.0, "x.max(0.0) at -0");
    same(relu_like_grad(-1.0).1, 0.0, "x.max(0.0) at -1");
    same(zero_first_grad(0.0).1, 0.0, "max(0.0, x) at 0");
    same(zero_first_grad(1.0).1, 1.0, "max(0.0, x) at 1");
    // clamp: d to x inside and on the bounds, 0 outside
    for (x, d) in [(-1.0, 1.0), (2.0, 1.0), (0.5, 1.0), (-1.5, 0.0), (3.0, 0.0)] {
        same(clamp1_grad(x).1, d, &format!("clamp'({x})"));
    }
}

#[test]
fn max_min_with_a_nan_operand_pass_the_cotangent_to_the_other() {
    // f64::max returns the non-NaN operand; the derivative follows it
    let (v, g) = max2_grad(f64::NAN, 2.0);
    same(v, 2.0, "max(NaN, 2)");
    assert_eq!(g, (0.0, 1.0), "max(NaN, 2) gradient");
    let (v, g) = min2_grad(2.0, f64::NAN);
    same(v, 2.0, "min(2, NaN)");
    assert_eq!(g, (1.0, 0.0), "min(2, NaN) gradient");
    let (v, (dx, dy)) = max2_grad(f64::NAN, f64::NAN);
    assert!(v.is_nan());
    assert_eq!((dx, dy), (1.0, 0.0), "both NaN: all of d to x");
}

#[differentiable]
fn sqrt1(x: f64) -> f64 {
    x.sqrt()
}

#[test]
fn sqrt_at_zero_is_the_one_sided_infinite_derivative() {
    same(sqrt1_grad(0.0).1, f64::INFINITY, "sqrt'(+0)");
    same(sqrt1_grad(-0.0).1, f64::INFINITY, "sqrt'(-0)");
    same(sqrt1_grad(4.0).1, 0.25, "sqrt'(4)");
}

#[differentiable]
fn powf2(x: f64, p: f64) -> f64 {
    x.powf(p)
}

#[differentiable]
fn powi0(x: f64) -> f64 {
    x.powi(0) + x.powi(1)
}

#[test]
fn powf_at_zero_and_negative_bases() {
    // d/dx 0^p = p 0^(p-1): 0 for p > 1, 1 for p = 1, inf for 0 < p < 1;
    // d/dp 0^p = 0 (the limit of y ln x as x -> 0+)
    assert_eq!(powf2_grad(0.0, 2.0), (0.0, (0.0, 0.0)));
    assert_eq!(powf2_grad(0.0, 3.5), (0.0, (0.0, 0.0)));
    assert_eq!(powf2_grad(0.0, 1.0), (0.0, (1.0, 0.0)));
    let (v, (dx, dp)) = powf2_grad(0.0, 0.5);
    same(v, 0.0, "0^0.5");
    same(dx, f64::INFINITY, "d/dx 0^0.5");
    same(dp, 0.0, "d/dp 0^0.5");
    // p = 0: x^0 is the constant 1, also at x = 0; d/dp 0^0 = 0 too
    assert_eq!(powf2_grad(0.0, 0.0), (1.0, (0.0, 0.0)));
    assert_eq!(powf2_grad(-0.0, 0.0), (1.0, (0.0, 0.0)));
    assert_eq!(powf2_grad(5.0, 0.0), (1.0, (0.0, 5f64.ln())));
    // negative base, integer exponent: exact, with the sign of the integer power;
    // d/dp is 0 by convention there
    assert_eq!(powf2_grad(-2.0, 3.0), (-8.0, (12.0, 0.0)));
    assert_eq!(powf2_grad(-2.0, 2.0), (4.0, (-4.0, 0.0)));
    // negative base, fractional exponent: NaN value, NaN derivative (not hidden)
    let (v, (dx, _)) = powf2_grad(-2.0, 0.5);
    assert!(v.is_nan() && dx.is_nan(), "(-2)^0.5: {v} {dx}");
    // powi(x, 0) is constant, also at 0
    assert_eq!(powi0_grad(0.0), (1.0, 1.0));
    assert_eq!(powi0_grad(3.0), (4.0, 1.0));
}

#[differentiable]
fn atan2_hypot(y: f64, x: f64) -> f64 {
    y.atan2(x) + y.hypot(x)
}

#[test]
fn atan2_and_hypot_at_the_origin_are_zero() {
    for (y, x) in [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)] {
        let (_, (dy, dx)) = atan2_hypot_grad(y, x);
        same(dy, 0.0, &format!("d/dy at ({y}, {x})"));
        same(dx, 0.0, &format!("d/dx at ({y}, {x})"));
    }
    // and smooth elsewhere
    let (y, x) = (0.3, -1.2);
    let (_, (dy, dx)) = atan2_hypot_grad(y, x);
    assert_close(dy, fd(|y| atan2_hypot(y, x), y), "d/dy");
    assert_close(dx, fd(|x| atan2_hypot(y, x), x), "d/dx");
}

#[differentiable]
fn piecewise_constant(x: f64) -> f64 {
    x.floor() * x + x.round() + x.ceil() + x.trunc() + x.signum() * 2.0
}

#[differentiable]
fn step(x: f64) -> f64 {
    // a comparison has zero derivative: only the selected branch counts
    let s = if x > 1.0 { 1.0 } else { 0.0 };
    s * 10.0 + x
}

#[test]
fn piecewise_constant_functions_have_zero_derivative_even_at_jumps() {
    // d/dx floor(x) x = floor(x); the rest contribute 0
    for x in [-1.5, -1.0, -0.0, 0.0, 0.5, 1.0, 2.5] {
        let d = piecewise_constant_grad(x).1;
        assert_eq!(d, x.floor(), "piecewise at {x}");
    }
    same(step_grad(1.0).1, 1.0, "step at the jump");
    same(step_grad(1.0 + 1e-12).1, 1.0, "step just after");
    assert_eq!(step_grad(2.0).0, 12.0);
}

// ---------------------------------------------------------------- NaN and infinity propagate

#[differentiable]
fn mul2(x: f64, y: f64) -> f64 {
    x * y
}

#[differentiable]
fn chain(x: f64) -> f64 {
    (x * 2.0).sin().exp() + x.ln()
}

#[differentiable]
fn sum_sq(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in xs {
        s += v * v;
    }
    s
}

#[differentiable]
fn sq_of_sum(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in xs {
        s += v;
    }
    s * s
}

#[differentiable]
fn recip1(x: f64) -> f64 {
    1.0 / x
}

#[differentiable]
fn exp1(x: f64) -> f64 {
    x.exp()
}

#[differentiable]
fn ln1(x: f64) -> f64 {
    x.ln()
}

#[test]
fn nan_inputs_give_nan_gradients() {
    // d/dx (x y) = y (finite), d/dy = x = NaN
    let (v, (dx, dy)) = mul2_grad(f64::NAN, 3.0);
    assert!(v.is_nan());
    same(dx, 3.0, "d/dx (NaN * 3)");
    assert!(dy.is_nan(), "d/dy (NaN * 3) = {dy}");
    let (v, d) = chain_grad(f64::NAN);
    assert!(v.is_nan() && d.is_nan(), "chain(NaN): {v} {d}");
    // a NaN element: its own gradient entry, and every entry that depends on it
    let xs = [1.0, f64::NAN, -2.0];
    let (v, d) = sum_sq_grad(&xs);
    assert!(v.is_nan());
    same(d[0], 2.0, "sum_sq d0");
    assert!(d[1].is_nan(), "sum_sq d1 = {}", d[1]);
    same(d[2], -4.0, "sum_sq d2");
    let (_, d) = sq_of_sum_grad(&xs);
    assert!(d.iter().all(|g| g.is_nan()), "sq_of_sum: {d:?}");
    // guarded rules keep NaN with a nonzero cotangent
    assert!(ln1_grad(f64::NAN).1.is_nan());
    assert!(recip1_grad(f64::NAN).1.is_nan());
    assert!(exp1_grad(f64::NAN).1.is_nan());
}

#[test]
fn infinities_propagate() {
    // d/dx e^x = e^x: overflow to inf is reported, not clipped
    let (v, d) = exp1_grad(1000.0);
    same(v, f64::INFINITY, "exp(1000)");
    same(d, f64::INFINITY, "exp'(1000)");
    // d/dx 1/x = -1/x^2 at 0: -inf (with the IEEE sign of 0)
    let (v, d) = recip1_grad(0.0);
    same(v, f64::INFINITY, "1/+0");
    same(d, f64::NEG_INFINITY, "(1/x)' at +0");
    // d/dx ln x = 1/x at 0: +inf; at +inf: 0
    same(ln1_grad(0.0).1, f64::INFINITY, "ln'(0)");
    same(ln1_grad(f64::INFINITY).1, 0.0, "ln'(inf)");
    // an infinite input: x * y at x = inf, y = 2: d/dx = 2, d/dy = inf
    assert_eq!(
        mul2_grad(f64::INFINITY, 2.0),
        (f64::INFINITY, (2.0, f64::INFINITY))
    );
    // inf * 0 is NaN in the primal, and in the gradient
    let (v, (dx, dy)) = mul2_grad(f64::INFINITY, 0.0);
    assert!(v.is_nan());
    same(dx, 0.0, "d/dx (inf * 0)");
    same(dy, f64::INFINITY, "d/dy (inf * 0)");
}

// ---------------------------------------------------------------- masked branches: no NaN

#[differentiable]
fn masked_sqrt(x: f64) -> f64 {
    if x > 0.0 {
        x.sqrt()
    } else {
        0.0
    }
}

#[differentiable]
fn masked_ln(x: f64) -> f64 {
    if x > 0.0 {
        x.ln()
    } else {
        x
    }
}

#[differentiable]
fn unused_ln(x: f64) -> f64 {
    // ln(-1) = NaN is computed but not used on this path
    let t = x.ln();
    if x > 0.0 {
        t
    } else {
        x * 2.0
    }
}

#[differentiable]
fn unused_exp(x: f64) -> f64 {
    // exp(1000) = inf is computed but not used on this path
    let big = x.exp();
    if x < 700.0 {
        big
    } else {
        x
    }
}

#[differentiable]
fn unused_div(x: f64) -> f64 {
    let q = 1.0 / x;
    let r = if x != 0.0 { q } else { 0.0 };
    r + x
}

#[differentiable]
fn relu_sqrt(x: f64) -> f64 {
    // max sends the whole cotangent to the literal when x < 0: x gets exactly 0
    x.max(0.0).sqrt()
}

#[differentiable]
fn masked_loop(xs: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in xs {
        if v > 0.0 {
            s += v.sqrt();
        } else {
            s += (-v).ln_1p();
        }
    }
    s
}

#[differentiable]
fn masked_overwrite(x: f64, n: usize) -> f64 {
    // a loop-carried value overwritten by a masked NaN-producing expression
    let mut a = x;
    for _ in 0..n {
        let t = (a - 5.0).sqrt(); // NaN for a < 5
        a = if a > 5.0 { t } else { a * 1.5 };
    }
    a
}

#[test]
fn masked_branches_do_not_produce_nan() {
    assert_eq!(masked_sqrt_grad(-1.0), (0.0, 0.0));
    assert_eq!(masked_sqrt_grad(0.0), (0.0, 0.0));
    assert_eq!(masked_sqrt_grad(4.0), (2.0, 0.25));
    assert_eq!(masked_ln_grad(-1.0), (-1.0, 1.0));
    assert_eq!(masked_ln_grad(0.0), (0.0, 1.0));
    assert_eq!(unused_ln_grad(-1.0), (-2.0, 2.0));
    assert_eq!(unused_exp_grad(1000.0), (1000.0, 1.0));
    assert_eq!(unused_exp_grad(0.0), (1.0, 1.0));
    assert_eq!(unused_div_grad(0.0), (0.0, 1.0));
    assert_eq!(relu_sqrt_grad(-1.0), (0.0, 0.0));
    same(relu_sqrt_grad(4.0).1, 0.25, "relu_sqrt'(4)");
    let xs = [-1.0, 4.0, -0.5, 0.0];
    let (_, d) = masked_loop_grad(&xs);
    assert!(d.iter().all(|g| g.is_finite()), "{d:?}");
    // d/dv ln(1 - v) = -1/(1 - v) for v <= 0
    assert_all_close(&d, &[-0.5, 0.25, -1.0 / 1.5, -1.0], "masked_loop");
    for (x, n) in [(1.0, 3), (2.0, 4), (6.0, 1), (-3.0, 5)] {
        let (v, d) = masked_overwrite_grad(x, n);
        assert!(d.is_finite(), "masked_overwrite({x}, {n}) = {v}, d = {d}");
        assert_close(d, fd(|x| masked_overwrite(x, n), x), "masked_overwrite");
    }
}

// ---------------------------------------------------------------- f32 against f64

#[differentiable]
fn rnn64(w: f64, u: f64, b: f64, xs: &[f64]) -> f64 {
    let mut h = 0.0;
    let mut loss = 0.0;
    for &x in xs {
        h = (w * h + u * x + b).tanh();
        loss += (h - 0.25 * x) * (h - 0.25 * x);
    }
    loss / (xs.len() as f64)
}

#[differentiable]
fn rnn32(w: f32, u: f32, b: f32, xs: &[f32]) -> f32 {
    let mut h = 0.0;
    let mut loss = 0.0;
    for &x in xs {
        h = (w * h + u * x + b).tanh();
        loss += (h - 0.25 * x) * (h - 0.25 * x);
    }
    loss / (xs.len() as f32)
}

#[differentiable]
fn product64(x: f64, n: usize) -> f64 {
    // a long product: relative errors add up along the loop
    let mut p = 1.0;
    for k in 0..n {
        p = p * (1.0 + (x + k as f64 / 1024.0).sin() * 0.001);
    }
    p
}

#[differentiable]
fn product32(x: f32, n: usize) -> f32 {
    let mut p = 1.0;
    for k in 0..n {
        p = p * (1.0 + (x + k as f32 / 1024.0).sin() * 0.001);
    }
    p
}

/// Inputs exactly representable in f32, so both versions see the same numbers.
fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.37).sin() * 2.0 * 1024.0).round() / 1024.0)
        .collect()
}

#[test]
fn f32_long_loop_gradients_within_stated_error_of_f64() {
    // Stated error: over a 2000-step recurrence (contractive, |w| < 1), every
    // f32 gradient entry is within 1e-4 of the f64 one, relative to the largest
    // entry, and the loss within 1e-5 relative; over a 5000-factor product, the
    // value and the derivative within 2e-4 relative. (Measured: about 1e-6 and
    // 3e-7 for the recurrence, 1.5e-5 for the product: the bounds leave a factor
    // of 10-100 for summation order and libm differences.)
    let n = 2000;
    let xs32 = inputs(n);
    let xs64: Vec<f64> = xs32.iter().map(|&v| f64::from(v)).collect();
    for (w, u, b) in [
        (0.5f32, 0.8f32, -0.1f32),
        (-0.9, 1.5, 0.25),
        (0.95, 0.3, 0.0),
    ] {
        let (l32, (dw32, du32, db32, dx32)) = rnn32_grad(w, u, b, &xs32);
        let (l64, (dw64, du64, db64, dx64)) =
            rnn64_grad(f64::from(w), f64::from(u), f64::from(b), &xs64);
        let mut g32: Vec<f64> = [dw32, du32, db32].iter().map(|&g| f64::from(g)).collect();
        g32.extend(dx32.iter().map(|&g| f64::from(g)));
        let mut g64 = vec![dw64, du64, db64];
        g64.extend_from_slice(&dx64);
        let scale = g64.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let loss_err = (f64::from(l32) - l64).abs() / l64.abs();
        let worst = g32
            .iter()
            .zip(&g64)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        eprintln!(
            "rnn ({w}, {u}, {b}): f32 vs f64: gradient {:.2e} of the largest entry, loss {loss_err:.2e}",
            worst / scale
        );
        assert!(
            worst <= 1e-4 * scale,
            "rnn ({w}, {u}, {b}): worst |g32 - g64| = {worst:e}, scale {scale:e}"
        );
        assert!(loss_err <= 1e-5, "rnn loss {l32} vs {l64}");
        // and the f64 gradient is right (spot check against finite differences)
        let fw = fd(
            |w| rnn64(w, f64::from(u), f64::from(b), &xs64),
            f64::from(w),
        );
        assert_close(dw64, fw, "rnn64 dw");
    }
    // a 5000-factor product
    for x in [0.3f32, -1.1, 2.0] {
        let (p32, d32) = product32_grad(x, 5000);
        let (p64, d64) = product64_grad(f64::from(x), 5000);
        eprintln!(
            "product at {x}: f32 vs f64: value {:.2e}, derivative {:.2e} (relative)",
            (f64::from(p32) - p64).abs() / p64.abs(),
            (f64::from(d32) - d64).abs() / d64.abs()
        );
        assert!(
            (f64::from(p32) - p64).abs() <= 2e-4 * p64.abs(),
            "product {p32} vs {p64}"
        );
        assert!(
            (f64::from(d32) - d64).abs() <= 2e-4 * d64.abs(),
            "product' at {x}: f32 {d32:e}, f64 {d64:e}"
        );
        assert_close(d64, fd(|x| product64(x, 5000), f64::from(x)), "product64'");
    }
}
