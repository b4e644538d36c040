//! Every `f64` method with a derivative rule, in method form (`x.sin()`) and
//! path form (`f64::sin(x)`), against an analytic derivative and against
//! central finite differences, at several points of each function's domain.
//! Non-smooth and piecewise-constant functions are checked at the contract's
//! conventions (`abs'(0) = 0`, `max` ties go to the first argument, ...).

mod common;

use common::*;
use std::f64::consts::{LN_10, LN_2};
use tapeless::differentiable;

/// Checks `grad` against `deriv` (analytic) and FD of `f`, and the value against `f`.
#[track_caller]
fn check(
    name: &str,
    f: impl Fn(f64) -> f64,
    grad: impl Fn(f64) -> (f64, f64),
    deriv: impl Fn(f64) -> f64,
    points: &[f64],
) {
    for &x in points {
        let (v, d) = grad(x);
        assert_eq!(v.to_bits(), f(x).to_bits(), "{name}: value at {x}");
        assert_close(d, deriv(x), &format!("{name}: analytic derivative at {x}"));
        assert_close(d, fd(&f, x), &format!("{name}: finite difference at {x}"));
    }
}

/// For each method: `m(x) = x.method()` and `p(x) = f64::method(x) * x`
/// (the second checks the rule is chained with an incoming cotangent that is
/// not 1: d/dx f(x) x = f'(x) x + f(x)). Also checks `_adjoint` scales.
macro_rules! unary {
    ($($name:ident: $method:ident on $points:expr, |$x:ident| $d:expr;)*) => {$(
        // The hidden `m_pullback` trips dead_code when written through
        // macro_rules (wip/bugs/09-pullback-dead-code-in-macro-rules.rs).
        #[allow(dead_code)]
        mod $name {
            use super::*;
            #[differentiable]
            pub fn m(x: f64) -> f64 {
                x.$method()
            }
            #[differentiable]
            pub fn p(x: f64) -> f64 {
                f64::$method(x) * x
            }
            pub fn deriv($x: f64) -> f64 {
                $d
            }
            #[test]
            fn method_and_path_form() {
                let name = stringify!($method);
                check(name, m, m_grad, deriv, &$points);
                check(
                    &format!("f64::{name}(x) * x"),
                    p,
                    p_grad,
                    |x| deriv(x) * x + f64::$method(x),
                    &$points,
                );
                for &x in &$points {
                    let (v, d) = m_adjoint(x, -0.75);
                    assert_eq!(v.to_bits(), m(x).to_bits());
                    assert_close(d, -0.75 * deriv(x), &format!("{name}_adjoint at {x}"));
                }
            }
        }
    )*};
}

const ACOSH_POINTS: [f64; 4] = [1.2, 1.5, 3.0, 10.0];
const LN1P_POINTS: [f64; 5] = [-0.7, -0.2, 0.1, 1.5, 6.0];
const NONZERO: [f64; 6] = [-2.5, -0.6, -0.1, 0.2, 0.9, 3.0];
const CBRT_POINTS: [f64; 5] = [-8.0, -0.3, 0.05, 1.0, 27.0];
// Avoid integer and half-integer points for the piecewise-constant functions.
const OFF_GRID: [f64; 6] = [-2.3, -1.6, -0.2, 0.3, 1.7, 4.1];

unary! {
    sin: sin on POINTS, |x| x.cos();
    cos: cos on POINTS, |x| -x.sin();
    tan: tan on POINTS, |x| 1.0 / (x.cos() * x.cos());
    asin: asin on UNIT_POINTS, |x| 1.0 / (1.0 - x * x).sqrt();
    acos: acos on UNIT_POINTS, |x| -1.0 / (1.0 - x * x).sqrt();
    atan: atan on POINTS, |x| 1.0 / (1.0 + x * x);
    sinh: sinh on POINTS, |x| x.cosh();
    cosh: cosh on POINTS, |x| x.sinh();
    tanh: tanh on POINTS, |x| 1.0 - x.tanh() * x.tanh();
    asinh: asinh on POINTS, |x| 1.0 / (x * x + 1.0).sqrt();
    acosh: acosh on ACOSH_POINTS, |x| 1.0 / (x * x - 1.0).sqrt();
    atanh: atanh on UNIT_POINTS, |x| 1.0 / (1.0 - x * x);
    exp: exp on POINTS, |x| x.exp();
    exp2: exp2 on POINTS, |x| x.exp2() * LN_2;
    exp_m1: exp_m1 on POINTS, |x| x.exp();
    ln: ln on POS_POINTS, |x| 1.0 / x;
    ln_1p: ln_1p on LN1P_POINTS, |x| 1.0 / (1.0 + x);
    log2: log2 on POS_POINTS, |x| 1.0 / (x * LN_2);
    log10: log10 on POS_POINTS, |x| 1.0 / (x * LN_10);
    sqrt: sqrt on POS_POINTS, |x| 0.5 / x.sqrt();
    cbrt: cbrt on CBRT_POINTS, |x| 1.0 / (3.0 * x.cbrt() * x.cbrt());
    abs: abs on NONZERO, |x| x.signum();
    recip: recip on NONZERO, |x| -1.0 / (x * x);
    to_degrees: to_degrees on POINTS, |_x| 180.0 / std::f64::consts::PI;
    to_radians: to_radians on POINTS, |_x| std::f64::consts::PI / 180.0;
    fract: fract on OFF_GRID, |_x| 1.0;
    signum: signum on NONZERO, |_x| 0.0;
    floor: floor on OFF_GRID, |_x| 0.0;
    ceil: ceil on OFF_GRID, |_x| 0.0;
    round: round on OFF_GRID, |_x| 0.0;
    trunc: trunc on OFF_GRID, |_x| 0.0;
}

// ---------------------------------------------------------------- integer powers

#[differentiable]
fn powi_n(x: f64, n: i32) -> f64 {
    x.powi(n)
}

#[differentiable]
fn powi_path(x: f64) -> f64 {
    f64::powi(x, 3) - f64::powi(x, -2)
}

#[test]
fn powi() {
    // d/dx x^n = n x^(n-1)
    for n in [-3, -1, 0, 1, 2, 5] {
        check(
            &format!("powi({n})"),
            |x| powi_n(x, n),
            |x| powi_n_grad(x, n),
            |x| n as f64 * x.powi(n - 1),
            &NONZERO,
        );
    }
    // d/dx (x^3 - x^-2) = 3x^2 + 2x^-3
    check(
        "f64::powi",
        powi_path,
        powi_path_grad,
        |x| 3.0 * x * x + 2.0 * x.powi(-3),
        &NONZERO,
    );
}

// ---------------------------------------------------------------- binary functions

#[differentiable]
fn powf_m(x: f64, p: f64) -> f64 {
    x.powf(p)
}

#[differentiable]
fn powf_p(x: f64, p: f64) -> f64 {
    f64::powf(x, p)
}

#[differentiable]
fn atan2_m(y: f64, x: f64) -> f64 {
    y.atan2(x)
}

#[differentiable]
fn atan2_p(y: f64, x: f64) -> f64 {
    f64::atan2(y, x)
}

#[differentiable]
fn hypot_m(x: f64, y: f64) -> f64 {
    x.hypot(y)
}

#[differentiable]
fn hypot_p(x: f64, y: f64) -> f64 {
    f64::hypot(x, y)
}

#[differentiable]
fn log_m(x: f64, b: f64) -> f64 {
    x.log(b)
}

#[differentiable]
fn log_p(x: f64, b: f64) -> f64 {
    f64::log(x, b)
}

#[differentiable]
fn max_m(x: f64, y: f64) -> f64 {
    x.max(y)
}

#[differentiable]
fn max_p(x: f64, y: f64) -> f64 {
    f64::max(x, y)
}

#[differentiable]
fn min_m(x: f64, y: f64) -> f64 {
    x.min(y)
}

#[differentiable]
fn min_p(x: f64, y: f64) -> f64 {
    f64::min(x, y)
}

#[differentiable]
fn max_const(x: f64) -> f64 {
    // relu
    x.max(0.0)
}

type Grad2 = fn(f64, f64) -> (f64, (f64, f64));

#[track_caller]
fn check_binary(
    name: &str,
    f: fn(f64, f64) -> f64,
    grad: Grad2,
    deriv: impl Fn(f64, f64) -> (f64, f64),
    points: &[(f64, f64)],
) {
    for &(x, y) in points {
        let (v, (dx, dy)) = grad(x, y);
        assert_eq!(
            v.to_bits(),
            f(x, y).to_bits(),
            "{name}: value at ({x}, {y})"
        );
        let (ex, ey) = deriv(x, y);
        let at = format!("at ({x}, {y})");
        assert_close(dx, ex, &format!("{name}: analytic d/dx {at}"));
        assert_close(dy, ey, &format!("{name}: analytic d/dy {at}"));
        assert_close(dx, fd(|x| f(x, y), x), &format!("{name}: FD d/dx {at}"));
        assert_close(dy, fd(|y| f(x, y), y), &format!("{name}: FD d/dy {at}"));
    }
}

#[test]
fn binary_functions() {
    // d/dx x^p = p x^(p-1); d/dp x^p = x^p ln x
    let pos = [(0.3, 2.5), (1.7, -0.4), (2.0, 3.0), (0.8, 0.0), (5.0, 1.0)];
    for (name, f, g) in [
        ("powf", powf_m as fn(f64, f64) -> f64, powf_m_grad as Grad2),
        ("f64::powf", powf_p, powf_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |x, p| (p * x.powf(p - 1.0), x.powf(p) * x.ln()),
            &pos,
        );
    }
    // atan2(y, x): d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2); all four quadrants
    let quads = [
        (0.5, 1.0),
        (0.7, -0.3),
        (-0.4, -1.2),
        (-1.5, 0.8),
        (2.0, 0.1),
    ];
    for (name, f, g) in [
        (
            "atan2",
            atan2_m as fn(f64, f64) -> f64,
            atan2_m_grad as Grad2,
        ),
        ("f64::atan2", atan2_p, atan2_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |y, x| (x / (x * x + y * y), -y / (x * x + y * y)),
            &quads,
        );
    }
    // hypot: (x / r, y / r)
    for (name, f, g) in [
        (
            "hypot",
            hypot_m as fn(f64, f64) -> f64,
            hypot_m_grad as Grad2,
        ),
        ("f64::hypot", hypot_p, hypot_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |x, y| {
                let r = x.hypot(y);
                (x / r, y / r)
            },
            &quads,
        );
    }
    // log_b x = ln x / ln b: d/dx = 1 / (x ln b), d/db = -ln x / (b ln^2 b)
    let logs = [(0.5, 2.0), (3.0, 10.0), (7.0, 0.5), (1.5, 3.0)];
    for (name, f, g) in [
        ("log", log_m as fn(f64, f64) -> f64, log_m_grad as Grad2),
        ("f64::log", log_p, log_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |x, b| (1.0 / (x * b.ln()), -x.ln() / (b * b.ln() * b.ln())),
            &logs,
        );
    }
    // max/min: the gradient goes to the selected argument; both sides.
    let sides = [(0.5, -0.3), (-0.5, 0.3), (2.0, 1.0), (-2.0, -1.0)];
    for (name, f, g) in [
        ("max", max_m as fn(f64, f64) -> f64, max_m_grad as Grad2),
        ("f64::max", max_p, max_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |x, y| if x >= y { (1.0, 0.0) } else { (0.0, 1.0) },
            &sides,
        );
        // ties: the first argument gets the gradient
        assert_eq!(g(0.7, 0.7), (0.7, (1.0, 0.0)), "{name} tie");
    }
    for (name, f, g) in [
        ("min", min_m as fn(f64, f64) -> f64, min_m_grad as Grad2),
        ("f64::min", min_p, min_p_grad),
    ] {
        check_binary(
            name,
            f,
            g,
            |x, y| if x <= y { (1.0, 0.0) } else { (0.0, 1.0) },
            &sides,
        );
    }
    // relu: 1 for x > 0, 0 for x < 0, and 0 at 0... but `max` ties go to x, so
    // x.max(0.0) at x = 0 has derivative 1 (first argument).
    check(
        "relu",
        max_const,
        max_const_grad,
        |x| if x > 0.0 { 1.0 } else { 0.0 },
        &NONZERO,
    );
}

#[test]
fn abs_at_zero_is_zero() {
    assert_eq!(abs::m_grad(0.0), (0.0, 0.0));
}

#[test]
fn relu_tie_goes_to_first_argument() {
    // `max` passes the gradient to the first argument on ties.
    assert_eq!(max_const_grad(0.0), (0.0, 1.0));
}

// ---------------------------------------------------------------- three-argument functions

#[differentiable]
fn mul_add_m(x: f64, a: f64, b: f64) -> f64 {
    x.mul_add(a, b)
}

#[differentiable]
fn mul_add_p(x: f64, a: f64, b: f64) -> f64 {
    f64::mul_add(x, a, b)
}

#[differentiable]
fn clamp_m(x: f64, lo: f64, hi: f64) -> f64 {
    x.clamp(lo, hi)
}

#[differentiable]
fn clamp_p(x: f64, lo: f64, hi: f64) -> f64 {
    f64::clamp(x, lo, hi)
}

#[differentiable]
fn clamp_const(x: f64) -> f64 {
    (x * 2.0).clamp(-1.0, 1.0) * x
}

type F3 = fn(f64, f64, f64) -> f64;
type G3 = fn(f64, f64, f64) -> (f64, (f64, f64, f64));

#[track_caller]
fn check_ternary(
    name: &str,
    f: F3,
    grad: G3,
    deriv: impl Fn(f64, f64, f64) -> [f64; 3],
    points: &[[f64; 3]],
) {
    for &p in points {
        let (v, (d0, d1, d2)) = grad(p[0], p[1], p[2]);
        assert_eq!(
            v.to_bits(),
            f(p[0], p[1], p[2]).to_bits(),
            "{name}: value at {p:?}"
        );
        let got = [d0, d1, d2];
        assert_all_close(
            &got,
            &deriv(p[0], p[1], p[2]),
            &format!("{name}: analytic at {p:?}"),
        );
        let fdg = fd_array(|q: [f64; 3]| f(q[0], q[1], q[2]), p);
        assert_all_close(&got, &fdg, &format!("{name}: FD at {p:?}"));
    }
}

#[test]
fn ternary_functions() {
    // d (x a + b) = (a, x, 1)
    let pts = [[0.5, -1.5, 2.0], [-2.0, 0.3, -0.7], [1.1, 1.2, 1.3]];
    check_ternary(
        "mul_add",
        mul_add_m,
        mul_add_m_grad,
        |x, a, _| [a, x, 1.0],
        &pts,
    );
    check_ternary(
        "f64::mul_add",
        mul_add_p,
        mul_add_p_grad,
        |x, a, _| [a, x, 1.0],
        &pts,
    );
    // clamp: the gradient goes to whichever of x, lo, hi is the result.
    let pts = [
        [0.2, -1.0, 1.0],
        [-3.0, -1.0, 1.0],
        [2.5, -1.0, 1.0],
        [0.7, 0.1, 0.4],
        [-0.5, -2.0, 3.0],
    ];
    let d = |x: f64, lo: f64, hi: f64| {
        if x < lo {
            [0.0, 1.0, 0.0]
        } else if x > hi {
            [0.0, 0.0, 1.0]
        } else {
            [1.0, 0.0, 0.0]
        }
    };
    check_ternary("clamp", clamp_m, clamp_m_grad, d, &pts);
    check_ternary("f64::clamp", clamp_p, clamp_p_grad, d, &pts);
    // clamp(2x, -1, 1) x: 2x*2... inside: d/dx 2x^2 = 4x; outside: +-1
    check(
        "clamp_const",
        clamp_const,
        clamp_const_grad,
        |x| {
            if (2.0 * x).abs() < 1.0 {
                4.0 * x
            } else {
                (2.0 * x).signum()
            }
        },
        &[-2.0, -0.7, -0.3, 0.1, 0.45, 0.6, 3.0],
    );
}

// ---------------------------------------------------------------- compositions

#[differentiable]
fn composite(x: f64, y: f64) -> f64 {
    let a = (x * y).sin().exp();
    let b = (x * x + y * y + 1.0).ln().sqrt();
    let c = x.atan2(y.cosh()) * f64::tanh(y - x);
    a * b + c.powi(2) - (y * 0.5).hypot(x).recip()
}

#[differentiable]
fn softplus(x: f64) -> f64 {
    // ln(1 + e^x) written stably
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[differentiable]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[differentiable]
fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())
}

#[differentiable]
fn consts_in_body(x: f64) -> f64 {
    x * std::f64::consts::PI + f64::EPSILON + core::f64::consts::E.powf(x)
}

#[test]
fn compositions() {
    let pts = [(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5), (-1.3, -0.9)];
    for &(x, y) in &pts {
        let (v, (dx, dy)) = composite_grad(x, y);
        assert_eq!(v, composite(x, y));
        assert_close(dx, fd(|x| composite(x, y), x), "composite d/dx");
        assert_close(dy, fd(|y| composite(x, y), y), "composite d/dy");
    }
    // softplus' = sigmoid
    check(
        "softplus",
        softplus,
        softplus_grad,
        |x| 1.0 / (1.0 + (-x).exp()),
        &POINTS,
    );
    // sigmoid' = s (1 - s)
    check(
        "sigmoid",
        sigmoid,
        sigmoid_grad,
        |x| {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        },
        &POINTS,
    );
    for &x in &POINTS {
        let (v, d) = gelu_tanh_grad(x);
        assert_eq!(v, gelu_tanh(x));
        assert_close(d, fd(gelu_tanh, x), "gelu_tanh");
    }
    // d/dx (pi x + eps + e^x) = pi + e^x
    check(
        "consts_in_body",
        consts_in_body,
        consts_in_body_grad,
        |x| std::f64::consts::PI + x.exp(),
        &POINTS,
    );
}
