//! The scalar derivative rules of `tapeless_runtime::rules`, checked against
//! finite differences of the primal (`f64` and `f32`, the `f32` rules against
//! the `f64` difference at the `f32`-rounded point), and the conventions at the
//! edges checked exactly.

use tapeless_runtime::__private::shape_of;
use tapeless_runtime::rules::*;

/// The cotangent of the output in every check: not 1, so a rule that forgets to
/// scale by `d` fails.
const D: f64 = 0.7;

/// Conversions between the float under test and the `f64` oracle.
trait Real: Copy {
    fn of(v: f64) -> Self;
    fn wide(self) -> f64;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
    fn wide(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
    fn wide(self) -> f64 {
        self
    }
}

/// Whether `v` survives a round trip through `f32` as a normal number.
fn fits_f32(v: f64) -> bool {
    let s = v as f32;
    v == 0.0 || (s.is_normal() && (f64::from(s) - v).abs() <= 1e-6 * v.abs())
}

/// The step of the finite difference: `1e-6 max(1, |x|)`.
fn default_step(v: f64) -> f64 {
    1e-6 * v.abs().max(1.0)
}

/// A step of `k |x|`, for points closer to a singularity than `1e-6`.
fn rel_step(k: f64) -> impl Fn(f64) -> f64 + Copy {
    move |v| k * v.abs()
}

/// The partial derivative of `f` in its `i`-th argument at `at`: a central
/// difference with step `h`, Richardson-extrapolated with step `h / 2`
/// (error `O(h^4)`), and a bound on its rounding noise.
fn fd<const N: usize>(f: impl Fn([f64; N]) -> f64, at: [f64; N], i: usize, h: f64) -> (f64, f64) {
    let g = |t: f64| {
        let mut p = at;
        p[i] = t;
        f(p)
    };
    let central = |h: f64| {
        let (a, b) = (at[i] + h, at[i] - h);
        let (fa, fb) = (g(a), g(b));
        // a - b is the step actually taken, after rounding.
        ((fa - fb) / (a - b), (fa.abs() + fb.abs()) / (a - b))
    };
    let (d1, n1) = central(h);
    let (d2, n2) = central(h / 2.0);
    ((4.0 * d2 - d1) / 3.0, 8.0 * f64::EPSILON * (n1 + n2))
}

/// Checks rules against finite differences of `primal`.
///
/// `check!(|p| primal, |x, y, d| [rule_0, rule_1, ...], points)`: `p` and `x`
/// are arrays of the operands, `y` the primal output, `d` the cotangent `D`;
/// `rule_i` must be the contribution for operand `i` and is compared with
/// `D * (d primal / d p[i])`, once in `f64` (relative tolerance `1e-6`) and once
/// in `f32` (relative tolerance `1e-3`, plus `1e-6 |f(x)| / max(1, |x_i|)` for the
/// rounding of an `f32` output), at every point; both allow for the rounding
/// noise of the finite difference.
/// `check!(step = s, ...)` picks the finite-difference step `s(x_i)`.
macro_rules! check {
    (|$p:ident| $primal:expr, |$x:ident, $y:ident, $d:ident| [$($rule:expr),+ $(,)?], $points:expr $(,)?) => {
        check!(step = default_step, |$p| $primal, |$x, $y, $d| [$($rule),+], $points)
    };
    (step = $step:expr, |$p:ident| $primal:expr, |$x:ident, $y:ident, $d:ident| [$($rule:expr),+ $(,)?], $points:expr $(,)?) => {{
        let step = $step;
        for pt in $points {
            check!(@one f64, 1e-6, 0.0, step, pt, |$p| $primal, |$x, $y, $d| [$($rule),+]);
            if pt.iter().all(|&v| fits_f32(v)) {
                check!(@one f32, 1e-3, 1e-6, step, pt, |$p| $primal, |$x, $y, $d| [$($rule),+]);
            }
        }
    }};
    (@one $t:ident, $rtol:expr, $atol:expr, $step:ident, $pt:ident, |$p:ident| $primal:expr, |$x:ident, $y:ident, $d:ident| [$($rule:expr),+]) => {{
        let $x = $pt.map(<$t as Real>::of);
        let here = $x.map(Real::wide);
        #[allow(unused_variables)]
        let $y: $t = {
            let $p = $x;
            $primal
        };
        #[allow(unused_variables)]
        let $d: $t = Real::of(D);
        let got: &[$t] = &[$($rule),+];
        for (i, &g) in got.iter().enumerate() {
            let (slope, noise) = fd(|$p| $primal, here, i, $step(here[i]));
            let want = D * slope;
            // Absolute floor: `$atol` of the output's size per unit of input.
            let fx: f64 = {
                let $p = here;
                $primal
            };
            let floor = $atol * D * fx.abs() / here[i].abs().max(1.0);
            let tol = $rtol * want.abs() + D * noise + floor;
            assert!(
                (g.wide() - want).abs() <= tol,
                "{}: operand {} of `{}` at {:?}: rule gives {:e}, finite differences {:e} (tolerance {:e})",
                stringify!($t),
                i,
                stringify!($primal),
                here,
                g,
                want,
                tol,
            );
        }
    }};
}

/// Runs `body` once with `F = f32` and once with `F = f64`.
macro_rules! for_floats {
    (|$t:ident| $body:block) => {{
        {
            #[allow(dead_code)]
            type $t = f32;
            $body
        }
        {
            #[allow(dead_code)]
            type $t = f64;
            $body
        }
    }};
}

/// `v` is `0` (either sign), and not NaN.
fn is_zero<T: Real>(v: T) -> bool {
    v.wide() == 0.0
}

// ---------------------------------------------------------------------------
// The harness itself
// ---------------------------------------------------------------------------

// d/dx sin x = cos x; a rule 0.1 % off must be rejected, or the tolerance is too loose.
#[test]
#[should_panic(expected = "rule gives")]
fn harness_rejects_a_slightly_wrong_rule() {
    check!(|p| p[0].sin(), |x, y, d| [d * x[0].cos() * 1.001], [[0.5]]);
}

// A rule that ignores the cotangent (returns cos x for d = 0.7) must be rejected.
#[test]
#[should_panic(expected = "rule gives")]
fn harness_rejects_a_rule_that_ignores_d() {
    check!(|p| p[0].sin(), |x, y, d| [x[0].cos()], [[0.5]]);
}

// d/dy (x y) = x; a rule that returns the derivative of the wrong operand must be rejected.
#[test]
#[should_panic(expected = "operand 1")]
fn harness_checks_each_operand() {
    check!(
        |p| p[0] * p[1],
        |x, y, d| [d * x[1], d * x[1]],
        [[2.0, 3.0]]
    );
}

// ---------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------

// d/dl (l + r) = 1, d/dr (l + r) = 1.
#[test]
fn add() {
    check!(
        |p| p[0] + p[1],
        |x, y, d| [
            AddOp::d_lhs(&shape_of(&x[0]), &shape_of(&x[1]), &d),
            AddOp::d_rhs(&shape_of(&x[0]), &shape_of(&x[1]), &d),
        ],
        [[1.0, 2.0], [-3.5, 0.25], [1e6, -2e-3]],
    );
}

// d/dl (l - r) = 1, d/dr (l - r) = -1.
#[test]
fn sub() {
    check!(
        |p| p[0] - p[1],
        |x, y, d| [
            SubOp::d_lhs(&shape_of(&x[0]), &shape_of(&x[1]), &d),
            SubOp::d_rhs(&shape_of(&x[0]), &shape_of(&x[1]), &d),
        ],
        [[1.0, 2.0], [-3.5, 0.25], [1e6, -2e-3]],
    );
}

// d/dl (l r) = r, d/dr (l r) = l.
#[test]
fn mul() {
    check!(
        |p| p[0] * p[1],
        |x, y, d| [
            MulOp::d_lhs(&shape_of(&x[0]), &x[1], &d),
            MulOp::d_rhs(&x[0], &shape_of(&x[1]), &d),
        ],
        [[1.0, 2.0], [-3.5, 0.25], [0.0, -7.0], [1e6, -2e-3]],
    );
}

// d/dl (l / r) = 1 / r, d/dr (l / r) = -l / r^2 = -y / r.
#[test]
fn div() {
    check!(
        |p| p[0] / p[1],
        |x, y, d| [
            DivOp::d_lhs(&shape_of(&x[0]), &x[1], &d),
            DivOp::d_rhs(&shape_of(&x[0]), &x[1], &y, &d),
        ],
        [
            [1.0, 2.0],
            [-3.5, 0.25],
            [0.0, -7.0],
            [5.0, -1e-3],
            [1e6, 3e4]
        ],
    );
}

// At r = 0 the derivatives are infinite: d = 0 gives 0, d != 0 gives IEEE infinities.
#[test]
fn div_by_zero() {
    for_floats!(|F| {
        let (l, r): (F, F) = (1.0, 0.0);
        let y = l / r;
        let s = shape_of(&l);
        assert!(is_zero(DivOp::d_lhs(&s, &r, &0.0)));
        assert!(is_zero(DivOp::d_rhs(&s, &r, &y, &0.0)));
        assert_eq!(DivOp::d_lhs(&s, &r, &0.7), F::INFINITY);
        assert_eq!(DivOp::d_rhs(&s, &r, &y, &0.7), F::NEG_INFINITY);
    });
}

// d/dx (-x) = -1.
#[test]
fn neg() {
    check!(
        |p| -p[0],
        |x, y, d| [NegOp::d_x(&d)],
        [[1.5], [-2.0], [0.0]]
    );
}

// d/dx (x as T) = 1, by a difference whose step 2^-10 is exact in both types.
#[test]
fn casts() {
    let h = 1.0 / 1024.0;
    for x in [1.5f64, -3.25, 100.0] {
        // f64 -> f32: the slope of the cast, measured in f32.
        let slope = (f64::from((x + h) as f32) - f64::from((x - h) as f32)) / (2.0 * h);
        let g = <f64 as CastTo<f32>>::d_x(&shape_of(&x), &0.7f32);
        assert!((g - 0.7 * slope).abs() < 1e-7, "f64 -> f32 at {x}: {g}");
        // f32 -> f64.
        let xs = x as f32;
        let hs = h as f32;
        let slope = (f64::from(xs + hs) - f64::from(xs - hs)) / (2.0 * h);
        let g = <f32 as CastTo<f64>>::d_x(&shape_of(&xs), &0.7f64);
        assert!(
            (f64::from(g) - 0.7 * slope).abs() < 1e-7,
            "f32 -> f64 at {x}: {g}"
        );
        // Same-type casts.
        let g = <f32 as CastTo<f32>>::d_x(&shape_of(&xs), &0.7f32);
        assert_eq!(g, 0.7f32 * (((xs + hs) - (xs - hs)) / (2.0 * hs)));
        let g = <f64 as CastTo<f64>>::d_x(&shape_of(&x), &0.7f64);
        assert_eq!(g, 0.7 * (((x + h) - (x - h)) / (2.0 * h)));
    }
}

// ---------------------------------------------------------------------------
// Trigonometry
// ---------------------------------------------------------------------------

const TRIG_POINTS: [[f64; 1]; 9] = [
    [-10.0],
    [-2.5],
    [-0.3],
    [0.0],
    [0.7],
    [1.4],
    [2.0],
    [4.0],
    [100.0],
];

// d/dx sin x = cos x.
#[test]
fn sin() {
    check!(|p| p[0].sin(), |x, y, d| [Sin::d_x(&x[0], &d)], TRIG_POINTS);
}

// d/dx cos x = -sin x.
#[test]
fn cos() {
    check!(|p| p[0].cos(), |x, y, d| [Cos::d_x(&x[0], &d)], TRIG_POINTS);
}

// d/dx tan x = 1 + tan^2 x, from the output y = tan x; up to 1.55 (tan' ~ 2300).
#[test]
fn tan() {
    check!(
        |p| p[0].tan(),
        |x, y, d| [Tan::d_x(&y, &d)],
        [[-1.5], [-0.8], [0.0], [0.4], [1.2], [1.55], [3.0], [-4.5]],
    );
}

// d/dx asin x = 1 / sqrt(1 - x^2), including x = ±0.999 next to the poles.
#[test]
fn asin() {
    check!(
        |p| p[0].asin(),
        |x, y, d| [Asin::d_x(&x[0], &d)],
        [[-0.999], [-0.9], [-0.5], [0.0], [0.3], [0.9], [0.999]],
    );
}

// d/dx acos x = -1 / sqrt(1 - x^2), including x = ±0.999 next to the poles.
#[test]
fn acos() {
    check!(
        |p| p[0].acos(),
        |x, y, d| [Acos::d_x(&x[0], &d)],
        [[-0.999], [-0.9], [-0.5], [0.0], [0.3], [0.9], [0.999]],
    );
}

// asin' and acos' at 1 - 1e-7: a step of 1e-9 |x| stays inside the domain.
#[test]
fn asin_acos_closer_to_the_poles() {
    check!(
        step = rel_step(1e-9),
        |p| p[0].asin(),
        |x, y, d| [Asin::d_x(&x[0], &d)],
        [[1.0 - 1e-7], [-1.0 + 1e-7]],
    );
    check!(
        step = rel_step(1e-9),
        |p| p[0].acos(),
        |x, y, d| [Acos::d_x(&x[0], &d)],
        [[1.0 - 1e-7], [-1.0 + 1e-7]],
    );
}

// asin'(±1) and acos'(±1) are infinite: 0 for d = 0, IEEE infinities otherwise.
#[test]
fn asin_acos_at_the_poles() {
    for_floats!(|F| {
        for x in [1.0 as F, -1.0] {
            assert!(is_zero(Asin::d_x(&x, &0.0)));
            assert!(is_zero(Acos::d_x(&x, &0.0)));
            assert_eq!(Asin::d_x(&x, &0.7), F::INFINITY);
            assert_eq!(Acos::d_x(&x, &0.7), F::NEG_INFINITY);
        }
    });
}

// d/dx atan x = 1 / (1 + x^2).
#[test]
fn atan() {
    check!(
        |p| p[0].atan(),
        |x, y, d| [Atan::d_x(&x[0], &d)],
        [[-50.0], [-1.0], [-0.2], [0.0], [0.5], [3.0], [1e3]],
    );
}

// d/dx atan2(x, o) = o / (x^2 + o^2), d/do atan2(x, o) = -x / (x^2 + o^2), in all
// four quadrants and on the axes (but across the branch cut o < 0, x = 0, below).
#[test]
fn atan2() {
    check!(
        |p| p[0].atan2(p[1]),
        |x, y, d| [
            Atan2::d_x(&x[0], &x[1], &d),
            Atan2::d_other(&x[0], &x[1], &d)
        ],
        [
            [1.0, 2.0],
            [1.0, -2.0],
            [-1.0, -2.0],
            [-1.0, 2.0],
            [3.0, 0.5],
            [-0.25, -4.0],
            [0.0, 1.5],
            [2.0, 0.0],
            [-2.0, 0.0],
            [1e200, -3e200],
            [-4e150, 1e151],
        ],
    );
}

// atan2 with x^2 + o^2 below the normal range: the rule must not underflow to inf.
#[test]
fn atan2_tiny() {
    check!(
        step = rel_step(1e-6),
        |p| p[0].atan2(p[1]),
        |x, y, d| [
            Atan2::d_x(&x[0], &x[1], &d),
            Atan2::d_other(&x[0], &x[1], &d)
        ],
        [[1e-200, 2e-200], [-3e-170, 1e-170]],
    );
}

// On the branch cut (x = ±0, o < 0) atan2 jumps by 2 pi; the rule is the
// derivative of the side x comes from: one-sided differences, x = +0 from
// above and x = -0 from below.
#[test]
fn atan2_branch_cut() {
    let h = 1e-7;
    for (x, side) in [(0.0f64, 1.0), (-0.0, -1.0)] {
        for o in [-1.0f64, -3.0] {
            let one_sided = (x + side * h).atan2(o) - x.atan2(o);
            let want = D * one_sided / (side * h);
            let got = Atan2::d_x(&x, &o, &D);
            assert!(
                (got - want).abs() < 1e-6 * want.abs(),
                "({x}, {o}): {got} vs {want}"
            );
            // In o, atan2(±0, o) is constant (±pi) for o < 0.
            let want = D * ((x.atan2(o + h) - x.atan2(o - h)) / (2.0 * h));
            assert_eq!(want, 0.0);
            assert!(is_zero(Atan2::d_other(&x, &o, &D)));
            let got32 = Atan2::d_x(&(x as f32), &(o as f32), &0.7f32);
            assert!(
                (f64::from(got32) - D / o).abs() < 1e-6,
                "f32 ({x}, {o}): {got32}"
            );
        }
    }
}

// At the origin atan2 has no derivative: convention 0 for both operands, all signs.
#[test]
fn atan2_at_the_origin() {
    for_floats!(|F| {
        for (x, o) in [(0.0 as F, 0.0 as F), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)] {
            assert!(is_zero(Atan2::d_x(&x, &o, &0.7)));
            assert!(is_zero(Atan2::d_other(&x, &o, &0.7)));
        }
    });
}

// ---------------------------------------------------------------------------
// Hyperbolic functions
// ---------------------------------------------------------------------------

// d/dx sinh x = cosh x.
#[test]
fn sinh() {
    check!(
        |p| p[0].sinh(),
        |x, y, d| [Sinh::d_x(&x[0], &d)],
        [[-5.0], [-1.0], [0.0], [0.5], [3.0], [20.0], [80.0]],
    );
}

// d/dx cosh x = sinh x.
#[test]
fn cosh() {
    check!(
        |p| p[0].cosh(),
        |x, y, d| [Cosh::d_x(&x[0], &d)],
        [[-5.0], [-1.0], [0.0], [0.5], [3.0], [20.0], [80.0]],
    );
}

// cosh and sinh overflow at |x| = 1000: 0 for d = 0, infinite otherwise.
#[test]
fn sinh_cosh_overflow() {
    for_floats!(|F| {
        let x: F = 1000.0;
        assert!(is_zero(Sinh::d_x(&x, &0.0)));
        assert!(is_zero(Cosh::d_x(&x, &0.0)));
        assert!(is_zero(Cosh::d_x(&-x, &0.0)));
        assert_eq!(Sinh::d_x(&x, &0.7), F::INFINITY);
        assert_eq!(Cosh::d_x(&-x, &0.7), F::NEG_INFINITY);
    });
}

// d/dx tanh x = 1 - tanh^2 x, from the output y = tanh x.
#[test]
fn tanh() {
    check!(
        |p| p[0].tanh(),
        |x, y, d| [Tanh::d_x(&y, &d)],
        [[-3.0], [-0.5], [0.0], [0.3], [2.0], [8.0]],
    );
}

// d/dx sigmoid x = y (1 - y), from the output y = 1 / (1 + e^-x); far out
// the output saturates to 0 or 1 and the derivative to 0.
#[test]
fn sigmoid() {
    use tapeless_runtime::Activation;
    check!(
        |p| p[0].sigmoid(),
        |x, y, d| [Sigmoid::d_x(&y, &d)],
        [[-8.0], [-1.5], [0.0], [0.4], [3.0], [10.0]],
    );
}

// d/dx asinh x = 1 / sqrt(x^2 + 1), also where x^2 overflows.
#[test]
fn asinh() {
    check!(
        |p| p[0].asinh(),
        |x, y, d| [Asinh::d_x(&x[0], &d)],
        [
            [-1e20],
            [-3.0],
            [-0.5],
            [0.0],
            [0.5],
            [2.0],
            [1e10],
            [1e20],
            [1e200]
        ],
    );
}

// d/dx acosh x = 1 / sqrt(x^2 - 1), from next to the pole at 1 to where x^2 overflows.
#[test]
fn acosh() {
    check!(
        |p| p[0].acosh(),
        |x, y, d| [Acosh::d_x(&x[0], &d)],
        [[1.001], [1.01], [1.5], [3.0], [1e3], [1e200]],
    );
    check!(
        step = rel_step(1e-8),
        |p| p[0].acosh(),
        |x, y, d| [Acosh::d_x(&x[0], &d)],
        [[1.0001], [1.0 + 1e-6]],
    );
}

// acosh'(1) is infinite: 0 for d = 0, +inf otherwise.
#[test]
fn acosh_at_the_pole() {
    for_floats!(|F| {
        let x: F = 1.0;
        assert!(is_zero(Acosh::d_x(&x, &0.0)));
        assert_eq!(Acosh::d_x(&x, &0.7), F::INFINITY);
    });
}

// d/dx atanh x = 1 / (1 - x^2), including x = ±0.999 next to the poles.
#[test]
fn atanh() {
    check!(
        |p| p[0].atanh(),
        |x, y, d| [Atanh::d_x(&x[0], &d)],
        [[-0.999], [-0.5], [0.0], [0.2], [0.9], [0.999]],
    );
}

// atanh'(±1) is infinite: 0 for d = 0, +inf otherwise.
#[test]
fn atanh_at_the_poles() {
    for_floats!(|F| {
        for x in [1.0 as F, -1.0] {
            assert!(is_zero(Atanh::d_x(&x, &0.0)));
            assert_eq!(Atanh::d_x(&x, &0.7), F::INFINITY);
        }
    });
}

// ---------------------------------------------------------------------------
// Exponentials and logarithms
// ---------------------------------------------------------------------------

// d/dx e^x = e^x, from the output y = e^x.
#[test]
fn exp() {
    check!(
        |p| p[0].exp(),
        |x, y, d| [Exp::d_x(&y, &d)],
        [[-20.0], [-1.0], [0.0], [1.0], [5.0], [50.0]],
    );
}

// d/dx 2^x = 2^x ln 2, from the output y = 2^x.
#[test]
fn exp2() {
    check!(
        |p| p[0].exp2(),
        |x, y, d| [Exp2::d_x(&y, &d)],
        [[-20.0], [-1.0], [0.0], [1.0], [5.0], [70.0]],
    );
}

// d/dx (e^x - 1) = e^x, from the output y = e^x - 1.
#[test]
fn exp_m1() {
    check!(
        |p| p[0].exp_m1(),
        |x, y, d| [ExpM1::d_x(&y, &d)],
        [[-30.0], [-1.0], [-1e-8], [0.0], [1e-8], [2.0], [30.0]],
    );
}

// exp, exp2 and exp_m1 overflow at x = 2000: 0 for d = 0, +inf otherwise.
#[test]
fn exp_overflow() {
    for_floats!(|F| {
        let x: F = 2000.0;
        let (e, e2, em1) = (x.exp(), x.exp2(), x.exp_m1());
        assert!(is_zero(Exp::d_x(&e, &0.0)));
        assert!(is_zero(Exp2::d_x(&e2, &0.0)));
        assert!(is_zero(ExpM1::d_x(&em1, &0.0)));
        assert_eq!(Exp::d_x(&e, &0.7), F::INFINITY);
        assert_eq!(Exp2::d_x(&e2, &0.7), F::INFINITY);
        assert_eq!(ExpM1::d_x(&em1, &0.7), F::INFINITY);
    });
}

// d/dx ln x = 1 / x, from 1e-3 to 1e10.
#[test]
fn ln() {
    check!(
        |p| p[0].ln(),
        |x, y, d| [Ln::d_x(&x[0], &d)],
        [[1e-3], [0.5], [1.0], [10.0], [1e10]],
    );
}

// d/dx ln x = 1 / x, log2 x = 1 / (x ln 2), log10 x = 1 / (x ln 10) next to 0.
#[test]
fn logs_near_zero() {
    let points = [[1e-8], [1e-30], [3e-300]];
    check!(
        step = rel_step(1e-4),
        |p| p[0].ln(),
        |x, y, d| [Ln::d_x(&x[0], &d)],
        points
    );
    check!(
        step = rel_step(1e-4),
        |p| p[0].log2(),
        |x, y, d| [Log2::d_x(&x[0], &d)],
        points
    );
    check!(
        step = rel_step(1e-4),
        |p| p[0].log10(),
        |x, y, d| [Log10::d_x(&x[0], &d)],
        points
    );
}

// d/dx ln(1 + x) = 1 / (1 + x), including next to the pole at -1 and around 0.
#[test]
fn ln_1p() {
    check!(
        |p| p[0].ln_1p(),
        |x, y, d| [Ln1p::d_x(&x[0], &d)],
        [[-0.999], [-0.5], [-1e-8], [0.0], [1e-8], [3.0], [1e6]],
    );
}

// d/dx log2 x = 1 / (x ln 2).
#[test]
fn log2() {
    check!(
        |p| p[0].log2(),
        |x, y, d| [Log2::d_x(&x[0], &d)],
        [[1e-3], [0.5], [1.0], [8.0], [1e10]],
    );
}

// d/dx log10 x = 1 / (x ln 10).
#[test]
fn log10() {
    check!(
        |p| p[0].log10(),
        |x, y, d| [Log10::d_x(&x[0], &d)],
        [[1e-3], [0.5], [1.0], [100.0], [1e10]],
    );
}

// d/dx log_b x = 1 / (x ln b), d/db log_b x = -ln x / (b ln^2 b).
#[test]
fn log() {
    check!(
        |p| p[0].log(p[1]),
        |x, y, d| [Log::d_x(&x[0], &x[1], &d), Log::d_base(&x[0], &x[1], &d)],
        [
            [2.0, 10.0],
            [0.5, 2.0],
            [100.0, 0.3],
            [1e-3, 5.0],
            [3.0, 1.1],
            [1.0, 7.0],
            [7.0, 0.9]
        ],
    );
}

// The logarithms are infinite at 0 (ln_1p at -1, log at base 1): 0 for d = 0.
#[test]
fn logs_at_the_poles() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z] {
            assert!(is_zero(Ln::d_x(&x, &0.0)));
            assert!(is_zero(Log2::d_x(&x, &0.0)));
            assert!(is_zero(Log10::d_x(&x, &0.0)));
            assert!(is_zero(Log::d_x(&x, &10.0, &0.0)));
            assert!(is_zero(Log::d_base(&x, &10.0, &0.0)));
        }
        assert!(is_zero(Ln1p::d_x(&-1.0, &0.0)));
        assert!(is_zero(Log::d_x(&2.0, &1.0, &0.0)));
        assert!(is_zero(Log::d_base(&2.0, &1.0, &0.0)));
        assert_eq!(Ln::d_x(&z, &0.7), F::INFINITY);
        assert_eq!(Log2::d_x(&z, &0.7), F::INFINITY);
        assert_eq!(Log10::d_x(&z, &0.7), F::INFINITY);
        assert_eq!(Ln1p::d_x(&-1.0, &0.7), F::INFINITY);
        assert_eq!(Log::d_x(&z, &10.0, &0.7), F::INFINITY);
    });
}

// ---------------------------------------------------------------------------
// Powers and roots
// ---------------------------------------------------------------------------

// d/dx sqrt x = 1 / (2 sqrt x), from the output y = sqrt x, down to 1e-8.
#[test]
fn sqrt() {
    check!(
        |p| p[0].sqrt(),
        |x, y, d| [Sqrt::d_x(&y, &d)],
        [[0.25], [2.0], [1e6], [1e300]],
    );
    check!(
        step = rel_step(1e-4),
        |p| p[0].sqrt(),
        |x, y, d| [Sqrt::d_x(&y, &d)],
        [[1e-4], [1e-8], [1e-300]],
    );
}

// sqrt'(0) = +inf (one-sided, also for -0.0): 0 for d = 0, +inf otherwise.
#[test]
fn sqrt_at_zero() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z] {
            let y = x.sqrt();
            assert!(is_zero(Sqrt::d_x(&y, &0.0)));
            assert_eq!(Sqrt::d_x(&y, &0.7), F::INFINITY);
        }
    });
}

// d/dx cbrt x = 1 / (3 cbrt^2 x), from the output y = cbrt x, on both sides of 0.
#[test]
fn cbrt() {
    check!(
        |p| p[0].cbrt(),
        |x, y, d| [Cbrt::d_x(&y, &d)],
        [[-8.0], [-0.1], [0.5], [27.0], [1e9]],
    );
    check!(
        step = rel_step(1e-4),
        |p| p[0].cbrt(),
        |x, y, d| [Cbrt::d_x(&y, &d)],
        [[-1e-6], [1e-8], [1e-300], [-1e-300]],
    );
}

// cbrt'(0) is infinite: 0 for d = 0, +inf otherwise.
#[test]
fn cbrt_at_zero() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z] {
            let y = x.cbrt();
            assert!(is_zero(Cbrt::d_x(&y, &0.0)));
            assert_eq!(Cbrt::d_x(&y, &0.7), F::INFINITY);
        }
    });
}

// d/dx x^n = n x^(n-1), for negative and positive n and x.
#[test]
fn powi() {
    for n in [-3, -2, -1, 1, 2, 3, 7] {
        check!(
            |p| p[0].powi(n),
            |x, y, d| [Powi::d_x(&x[0], n, &d)],
            [[-2.0], [-0.5], [0.3], [1.5], [3.0]],
        );
    }
}

// x^0 = 1 is constant: 0 everywhere, also at x = 0 where n x^(n-1) is 0 * inf;
// x^n at 0: n x^(n-1) is 0 for n >= 2, d for n = 1, infinite for n < 1.
#[test]
fn powi_edges() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z, 2.0, -3.0] {
            assert!(is_zero(Powi::d_x(&x, 0, &0.7)));
        }
        assert!(is_zero(Powi::d_x(&z, 2, &0.7)));
        assert!(is_zero(Powi::d_x(&z, 5, &0.7)));
        assert_eq!(Powi::d_x(&z, 1, &0.7), 0.7);
        assert!(is_zero(Powi::d_x(&z, -2, &0.0)));
        assert!(is_zero(Powi::d_x(&z, -1, &0.0)));
        assert_eq!(Powi::d_x(&z, -1, &0.7), F::NEG_INFINITY);
        // n = i32::MIN (n - 1 overflows i32): n x^(n-1) at x = ±1 is ∓n.
        let n = i32::MIN;
        assert_eq!(Powi::d_x(&1.0, n, &1.0), n as F);
        assert_eq!(Powi::d_x(&-1.0, n, &1.0), -(n as F));
    });
}

// d/dx x^p = p x^(p-1), d/dp x^p = x^p ln x, for x > 0.
#[test]
fn powf() {
    check!(
        |p| p[0].powf(p[1]),
        |x, y, d| [Powf::d_x(&x[0], &x[1], &d), Powf::d_p(&x[0], &y, &d)],
        [
            [0.5, 2.5],
            [2.0, -1.5],
            [3.0, 0.5],
            [1.5, 10.0],
            [1.0, 3.0],
            [0.2, -0.7],
            [10.0, 0.0]
        ],
    );
    check!(
        step = rel_step(1e-4),
        |p| p[0].powf(p[1]),
        |x, y, d| [Powf::d_x(&x[0], &x[1], &d)],
        [[1e-8, 0.5], [1e-6, 2.5], [1e-5, -1.0]],
    );
}

// d/dx x^p = p x^(p-1) for negative x and integer p, exact in sign.
#[test]
fn powf_negative_base() {
    check!(
        |p| p[0].powf(p[1]),
        |x, y, d| [Powf::d_x(&x[0], &x[1], &d)],
        [
            [-2.0, 3.0],
            [-2.0, -2.0],
            [-2.0, 2.0],
            [-0.5, 4.0],
            [-1.5, -3.0],
            [-3.0, 1.0]
        ],
    );
}

// Powf at the edges: d/dp is 0 at x = 0 (the limit of y ln x) and, by convention,
// for x < 0; d/dx at x = 0 is 0 for p > 1 and infinite for p < 1; p = 0 gives 0;
// d = 0 gives 0 where the formula is infinite (including y = inf).
#[test]
fn powf_edges() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z] {
            let y = x.powf(2.5);
            assert!(is_zero(Powf::d_p(&x, &y, &0.7)));
            assert!(is_zero(Powf::d_x(&x, &2.5, &0.7)));
            assert!(is_zero(Powf::d_x(&x, &0.5, &0.0)));
            assert!(is_zero(Powf::d_x(&x, &0.0, &0.7)));
            assert!(is_zero(Powf::d_x(&x, &-1.0, &0.0)));
        }
        assert_eq!(Powf::d_x(&z, &0.5, &0.7), F::INFINITY);
        assert_eq!(Powf::d_x(&z, &1.0, &0.7), 0.7);
        for (x, p) in [(-2.0 as F, 3.0 as F), (-2.0, -2.0), (-0.5, 0.5)] {
            assert!(is_zero(Powf::d_p(&x, &x.powf(p), &0.7)));
        }
        // 10^400 overflows: d/dp = y ln x is infinite, so d = 0 must give 0.
        let (x, p): (F, F) = (10.0, 400.0);
        let y = x.powf(p);
        assert_eq!(y, F::INFINITY);
        assert!(is_zero(Powf::d_p(&x, &y, &0.0)));
        assert!(is_zero(Powf::d_x(&x, &p, &0.0)));
        assert_eq!(Powf::d_p(&x, &y, &0.7), F::INFINITY);
        // NaN propagates when d != 0.
        assert!(Powf::d_p(&F::NAN, &F::NAN, &0.7).is_nan());
    });
}

// d/dx hypot(x, o) = x / hypot, d/do hypot(x, o) = o / hypot, also on the axes
// and where x^2 + o^2 would overflow or underflow.
#[test]
fn hypot() {
    check!(
        |p| p[0].hypot(p[1]),
        |x, y, d| [Hypot::d_x(&x[0], &y, &d), Hypot::d_other(&x[1], &y, &d)],
        [
            [3.0, 4.0],
            [-3.0, 4.0],
            [0.5, -2.0],
            [0.0, 5.0],
            [5.0, 0.0],
            [1e200, -1e200]
        ],
    );
    check!(
        step = rel_step(1e-6),
        |p| p[0].hypot(p[1]),
        |x, y, d| [Hypot::d_x(&x[0], &y, &d), Hypot::d_other(&x[1], &y, &d)],
        [[1e-200, 2e-200]],
    );
}

// hypot has no derivative at the origin: convention 0 for both operands.
#[test]
fn hypot_at_the_origin() {
    for_floats!(|F| {
        let z: F = 0.0;
        for (x, o) in [(z, z), (-z, z), (z, -z)] {
            let y = x.hypot(o);
            assert!(is_zero(Hypot::d_x(&x, &y, &0.7)));
            assert!(is_zero(Hypot::d_other(&o, &y, &0.7)));
        }
    });
}

// d/dx (1 / x) = -1 / x^2, from the output y = 1 / x.
#[test]
fn recip() {
    check!(
        |p| p[0].recip(),
        |x, y, d| [Recip::d_x(&y, &d)],
        [[-4.0], [-0.5], [1e-3], [0.5], [7.0], [1e10]],
    );
}

// recip'(0) = -inf: 0 for d = 0, -inf otherwise.
#[test]
fn recip_at_zero() {
    for_floats!(|F| {
        let z: F = 0.0;
        for x in [z, -z] {
            let y = x.recip();
            assert!(is_zero(Recip::d_x(&y, &0.0)));
            assert_eq!(Recip::d_x(&y, &0.7), F::NEG_INFINITY);
        }
    });
}

// d/dx (x a + b) = a, d/da (x a + b) = x, d/db (x a + b) = 1.
#[test]
fn mul_add() {
    check!(
        |p| p[0].mul_add(p[1], p[2]),
        |x, y, d| [
            MulAdd::d_x(&x[1], &d),
            MulAdd::d_a(&x[0], &d),
            MulAdd::d_b(&d)
        ],
        [
            [2.0, 3.0, 4.0],
            [-1.5, 0.25, -7.0],
            [0.0, -2.0, 1e3],
            [1e5, 1e-5, 0.0]
        ],
    );
}

// ---------------------------------------------------------------------------
// Piecewise functions
// ---------------------------------------------------------------------------

// d/dx |x| = signum x away from 0.
#[test]
fn abs() {
    check!(
        step = rel_step(1e-3),
        |p| p[0].abs(),
        |x, y, d| [Abs::d_x(&x[0], &d)],
        [[-3.0], [-1e-10], [1e-10], [2.0]],
    );
}

// |x|'(0) = 0 by convention, for +0.0 and -0.0; NaN propagates.
#[test]
fn abs_at_zero() {
    for_floats!(|F| {
        let z: F = 0.0;
        assert!(is_zero(Abs::d_x(&z, &0.7)));
        assert!(is_zero(Abs::d_x(&-z, &0.7)));
        assert!(Abs::d_x(&F::NAN, &0.7).is_nan());
    });
}

// d/dx max(x, o) = [x > o], d/do max(x, o) = [o > x] away from ties.
#[test]
fn max() {
    check!(
        |p| p[0].max(p[1]),
        |x, y, d| [Max::d_x(&x[0], &x[1], &d), Max::d_other(&x[0], &x[1], &d)],
        [
            [1.0, 2.0],
            [2.0, 1.0],
            [-3.0, -5.0],
            [-5.0, -3.0],
            [0.0, 1e-3]
        ],
    );
}

// d/dx min(x, o) = [x < o], d/do min(x, o) = [o < x] away from ties.
#[test]
fn min() {
    check!(
        |p| p[0].min(p[1]),
        |x, y, d| [Min::d_x(&x[0], &x[1], &d), Min::d_other(&x[0], &x[1], &d)],
        [
            [1.0, 2.0],
            [2.0, 1.0],
            [-3.0, -5.0],
            [-5.0, -3.0],
            [0.0, 1e-3]
        ],
    );
}

// max and min at ties: all of d to x (the first operand), also for 0.0 vs -0.0;
// with one NaN operand, to the other operand (the one max/min returns); with two
// NaNs, to x. Exactly one operand receives d.
#[test]
fn max_min_ties_and_nan() {
    for_floats!(|F| {
        let d: F = 0.7;
        let z: F = 0.0;
        let nan = F::NAN;
        // (x, o, gradient goes to x)
        let cases = [
            (1.5 as F, 1.5 as F, true),
            (z, -z, true),
            (-z, z, true),
            (nan, 2.0, false),
            (2.0, nan, true),
            (nan, nan, true),
        ];
        for (x, o, to_x) in cases {
            let (want_x, want_o) = if to_x { (d, z) } else { (z, d) };
            assert_eq!(Max::d_x(&x, &o, &d), want_x, "max d_x ({x}, {o})");
            assert_eq!(Max::d_other(&x, &o, &d), want_o, "max d_other ({x}, {o})");
            assert_eq!(Min::d_x(&x, &o, &d), want_x, "min d_x ({x}, {o})");
            assert_eq!(Min::d_other(&x, &o, &d), want_o, "min d_other ({x}, {o})");
        }
        // The NaN convention matches what max and min return.
        assert_eq!(nan.max(2.0), 2.0);
        assert_eq!(nan.min(2.0), 2.0);
        assert_eq!((2.0 as F).max(nan), 2.0);
        assert_eq!((2.0 as F).min(nan), 2.0);
    });
}

// d/dx clamp(x, lo, hi) = [lo < x < hi], d/dlo = [x < lo], d/dhi = [x > hi],
// below, inside and above the interval.
#[test]
fn clamp() {
    check!(
        |p| p[0].clamp(p[1], p[2]),
        |x, y, d| [
            Clamp::d_x(&x[0], &x[1], &x[2], &d),
            Clamp::d_lo(&x[0], &x[1], &d),
            Clamp::d_hi(&x[0], &x[2], &d),
        ],
        [
            [-3.0, -1.0, 2.0],
            [0.5, -1.0, 2.0],
            [5.0, -1.0, 2.0],
            [-1.5, -2.0, -1.0]
        ],
    );
}

// clamp at x == lo and x == hi (and lo == hi == x): all of d to x; NaN x, which
// clamp returns, keeps d too. Exactly one operand receives d.
#[test]
fn clamp_edges() {
    for_floats!(|F| {
        let d: F = 0.7;
        let (lo, hi): (F, F) = (-1.0, 2.0);
        for (x, lo, hi) in [
            (lo, lo, hi),
            (hi, lo, hi),
            (3.0, 3.0, 3.0),
            (F::NAN, lo, hi),
        ] {
            assert_eq!(Clamp::d_x(&x, &lo, &hi, &d), d, "({x}, {lo}, {hi})");
            assert!(is_zero(Clamp::d_lo(&x, &lo, &d)), "({x}, {lo}, {hi})");
            assert!(is_zero(Clamp::d_hi(&x, &hi, &d)), "({x}, {lo}, {hi})");
        }
        assert!(F::NAN.clamp(lo, hi).is_nan());
    });
}

// d/dx fract x = 1 away from the integers, for positive and negative x.
#[test]
fn fract() {
    check!(
        |p| p[0].fract(),
        |x, y, d| [Fract::d_x(&d)],
        [[-2.7], [-0.3], [0.4], [5.5], [1e3 + 0.25]]
    );
}

// d/dx to_degrees x = 180 / pi.
#[test]
fn to_degrees() {
    check!(
        |p| p[0].to_degrees(),
        |x, y, d| [ToDegrees::d_x(&d)],
        [[-2.0], [0.0], [1.0], [100.0]]
    );
}

// d/dx to_radians x = pi / 180.
#[test]
fn to_radians() {
    check!(
        |p| p[0].to_radians(),
        |x, y, d| [ToRadians::d_x(&d)],
        [[-200.0], [0.0], [45.0], [1e4]]
    );
}

// ---------------------------------------------------------------------------
// The d == 0 convention, for every guarded rule at once
// ---------------------------------------------------------------------------

// A zero cotangent gives a zero contribution (never NaN) from every guarded
// rule, at each rule's infinite point and for NaN operands.
#[test]
fn zero_cotangent_is_zero_for_guarded_rules() {
    for_floats!(|F| {
        let z: F = 0.0;
        let nan = F::NAN;
        let inf = F::INFINITY;
        for zero in [z, -z] {
            let s = shape_of(&z);
            let got = [
                DivOp::d_lhs(&s, &z, &zero),
                DivOp::d_rhs(&s, &z, &inf, &zero),
                Asin::d_x(&1.0, &zero),
                Acos::d_x(&-1.0, &zero),
                Atan2::d_x(&nan, &1.0, &zero),
                Atan2::d_other(&1e-45, &0.0, &zero),
                Sinh::d_x(&1e4, &zero),
                Cosh::d_x(&1e4, &zero),
                Acosh::d_x(&1.0, &zero),
                Atanh::d_x(&-1.0, &zero),
                Exp::d_x(&inf, &zero),
                Exp2::d_x(&inf, &zero),
                ExpM1::d_x(&inf, &zero),
                Ln::d_x(&z, &zero),
                Ln1p::d_x(&-1.0, &zero),
                Log2::d_x(&z, &zero),
                Log10::d_x(&z, &zero),
                Log::d_x(&z, &1.0, &zero),
                Log::d_base(&z, &1.0, &zero),
                Sqrt::d_x(&z, &zero),
                Sqrt::d_x(&nan, &zero),
                Cbrt::d_x(&z, &zero),
                Powi::d_x(&z, -3, &zero),
                Powf::d_x(&z, &-0.5, &zero),
                Powf::d_p(&10.0, &inf, &zero),
                Recip::d_x(&inf, &zero),
            ];
            for (i, g) in got.iter().enumerate() {
                assert!(is_zero(*g), "guarded rule #{i} gives {g} for d = {zero}");
            }
        }
    });
}

// The plain rules are not guarded: a NaN operand that enters the formula
// propagates even with d = 0.
#[test]
fn nan_propagates_through_plain_rules() {
    for_floats!(|F| {
        let nan = F::NAN;
        let z: F = 0.0;
        assert!(Sin::d_x(&nan, &z).is_nan());
        assert!(Cos::d_x(&nan, &z).is_nan());
        assert!(Tan::d_x(&nan, &z).is_nan());
        assert!(Atan::d_x(&nan, &z).is_nan());
        assert!(Tanh::d_x(&nan, &z).is_nan());
        assert!(Asinh::d_x(&nan, &z).is_nan());
        assert!(Hypot::d_x(&1.0, &nan, &z).is_nan());
        assert!(MulOp::d_lhs(&shape_of(&z), &nan, &z).is_nan());
        assert!(Abs::d_x(&nan, &z).is_nan());
        // And the guarded ones with d != 0.
        assert!(Sqrt::d_x(&nan, &0.7).is_nan());
        assert!(Ln::d_x(&nan, &0.7).is_nan());
        assert!(Atan2::d_x(&nan, &1.0, &0.7).is_nan());
        assert!(Powf::d_x(&nan, &2.0, &0.7).is_nan());
    });
}
