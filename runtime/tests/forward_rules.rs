//! Forward mode's tangent functions (`__private::fwd::<rule>_<method>`) and
//! their second-order pullbacks, against central finite differences, in `f32`
//! and `f64`.
//!
//! One table lists every function with the primal it differentiates, the
//! operand the partial is taken for, what the function reads, and sample
//! points away from kinks and singular points. Three checks run over it:
//!
//! * the tangent function `t(reads, d)` is `∂f/∂operand * d`, the partial from a
//!   finite difference of the primal;
//! * each slot of `t_pullback(reads, d, g)` is `∂t/∂arg * g`, from a finite
//!   difference of `t` in that argument alone (each read independent), and
//!   its value is `t(reads, d)`;
//! * `g == 0` gives all-zero slots, and for the guarded functions `d == 0`
//!   gives exact zeros for the value and every value slot, also at singular
//!   points and for NaN operands.

use std::fmt::Debug;
use tapeless_runtime::__private::{fwd, NoGrad};

/// The float types under test, seen through `f64`.
trait Num: Copy + Debug + PartialEq + Into<f64> + 'static {
    /// Machine epsilon.
    const EPS: f64;
    /// Relative tolerance of a check against a finite difference.
    const TOL: f64;
    fn of(v: f64) -> Self;
}

impl Num for f32 {
    const EPS: f64 = f32::EPSILON as f64;
    const TOL: f64 = 1e-4;
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Num for f64 {
    const EPS: f64 = f64::EPSILON;
    const TOL: f64 = 1e-8;
    fn of(v: f64) -> f64 {
        v
    }
}

/// A pullback's slots as a vector; the `NoGrad` slot of `powi`'s exponent is
/// dropped (and its type checked).
trait Slots<T> {
    fn into_vec(self) -> Vec<T>;
}

macro_rules! slots {
    ($($t:ident)*) => {$(
        impl Slots<$t> for ($t,) {
            fn into_vec(self) -> Vec<$t> {
                vec![self.0]
            }
        }
        impl Slots<$t> for ($t, $t) {
            fn into_vec(self) -> Vec<$t> {
                vec![self.0, self.1]
            }
        }
        impl Slots<$t> for ($t, $t, $t) {
            fn into_vec(self) -> Vec<$t> {
                vec![self.0, self.1, self.2]
            }
        }
        impl Slots<$t> for ($t, $t, $t, $t) {
            fn into_vec(self) -> Vec<$t> {
                vec![self.0, self.1, self.2, self.3]
            }
        }
        impl Slots<$t> for ($t, NoGrad, $t) {
            fn into_vec(self) -> Vec<$t> {
                vec![self.0, self.2]
            }
        }
    )*};
}
slots!(f32 f64);

type Tangent<T> = fn(&[T]) -> T;
type Pullback<T> = fn(&[T], T) -> (T, Vec<T>);

/// One tangent function of `fwd` and what to check it against.
struct Case<T> {
    name: &'static str,
    /// The primal `f(operands)`.
    primal: fn(&[T]) -> T,
    /// The operand whose partial the function is.
    wrt: usize,
    /// The function's arguments before `d`, from the operands and the primal output.
    reads: fn(&[T], T) -> Vec<T>,
    /// The function, on `reads ++ [d]` (integer arguments fixed in the closure).
    tangent: Tangent<T>,
    /// Its pullback, on `reads ++ [d]` and `g`: the value and one slot per float argument.
    pullback: Pullback<T>,
    /// Operand points away from kinks and singular points.
    at: &'static [&'static [f64]],
    /// Guarded: `d == 0` gives exact zeros.
    guarded: bool,
    /// Arguments before `d` at singular points, where a guarded function must
    /// still give exact zeros for `d == 0`.
    singular: &'static [&'static [f64]],
}

/// `(tangent, pullback)` for a function of `n` float arguments `a[0..n]`.
macro_rules! fns {
    ($t:ident, $f:ident, $pb:ident, [$($i:tt),+]) => {
        (
            (|a: &[$t]| fwd::$f::<$t>($(a[$i]),+)) as Tangent<$t>,
            (|a: &[$t], g: $t| {
                let (v, s) = fwd::$pb::<$t>($(a[$i],)+ g);
                (v, Slots::into_vec(s))
            }) as Pullback<$t>,
        )
    };
}

macro_rules! case {
    ($t:ident, $f:ident, $pb:ident, [$($i:tt),+],
     primal: |$o:ident| $primal:expr, wrt: $wrt:expr, reads: |$ro:ident, $y:ident| [$($r:expr),*],
     at: $at:expr, guarded: $guarded:expr, singular: $singular:expr) => {{
        let (tangent, pullback) = fns!($t, $f, $pb, [$($i),+]);
        Case {
            name: stringify!($f),
            primal: |$o: &[$t]| $primal,
            wrt: $wrt,
            reads: |$ro: &[$t], $y: $t| {
                let _ = (&$ro, &$y);
                vec![$($r),*]
            },
            tangent,
            pullback,
            at: $at,
            guarded: $guarded,
            singular: $singular,
        }
    }};
}

/// `powi_d_x` with the exponent fixed to `$n`.
macro_rules! powi_case {
    ($t:ident, $n:expr, at: $at:expr) => {
        Case {
            name: concat!("powi_d_x (n = ", stringify!($n), ")"),
            primal: |o: &[$t]| o[0].powi($n),
            wrt: 0,
            reads: |o: &[$t], _| vec![o[0]],
            tangent: |a: &[$t]| fwd::powi_d_x::<$t>(a[0], $n, a[1]),
            pullback: |a: &[$t], g: $t| {
                let (v, s) = fwd::powi_d_x_pullback::<$t>(a[0], $n, a[1], g);
                (v, Slots::into_vec(s))
            },
            at: $at,
            guarded: true,
            singular: &[&[0.0]],
        }
    };
}

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

macro_rules! table {
    ($t:ident) => {
        vec![
            case!($t, sin_d_x, sin_d_x_pullback, [0, 1],
                primal: |o| o[0].sin(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.7], &[-2.1], &[3.0]], guarded: false, singular: &[]),
            case!($t, cos_d_x, cos_d_x_pullback, [0, 1],
                primal: |o| o[0].cos(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.7], &[-2.1], &[3.0]], guarded: false, singular: &[]),
            case!($t, tan_d_x, tan_d_x_pullback, [0, 1],
                primal: |o| o[0].tan(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.4], &[-1.1], &[1.25]], guarded: false, singular: &[]),
            case!($t, asin_d_x, asin_d_x_pullback, [0, 1],
                primal: |o| o[0].asin(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.3], &[-0.6], &[0.8]], guarded: true, singular: &[&[1.0], &[-1.0]]),
            case!($t, acos_d_x, acos_d_x_pullback, [0, 1],
                primal: |o| o[0].acos(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.3], &[-0.6], &[0.8]], guarded: true, singular: &[&[1.0], &[-1.0]]),
            case!($t, atan_d_x, atan_d_x_pullback, [0, 1],
                primal: |o| o[0].atan(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[-2.0], &[7.0]], guarded: false, singular: &[]),
            case!($t, atan2_d_x, atan2_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].atan2(o[1]), wrt: 0, reads: |o, y| [o[0], o[1]],
                at: &[&[0.6, 1.5], &[-1.2, 0.4], &[0.8, -2.5]], guarded: true,
                singular: &[&[0.0, 0.0], &[-0.0, 0.0], &[0.0, -0.0]]),
            case!($t, atan2_d_other, atan2_d_other_pullback, [0, 1, 2],
                primal: |o| o[0].atan2(o[1]), wrt: 1, reads: |o, y| [o[0], o[1]],
                at: &[&[0.6, 1.5], &[-1.2, 0.4], &[0.8, -2.5]], guarded: true,
                singular: &[&[0.0, 0.0], &[-0.0, 0.0], &[0.0, -0.0]]),
            case!($t, sinh_d_x, sinh_d_x_pullback, [0, 1],
                primal: |o| o[0].sinh(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[-1.7], &[3.0]], guarded: true, singular: &[&[1000.0], &[-1000.0]]),
            case!($t, cosh_d_x, cosh_d_x_pullback, [0, 1],
                primal: |o| o[0].cosh(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[-1.7], &[3.0]], guarded: true, singular: &[&[1000.0], &[-1000.0]]),
            case!($t, tanh_d_x, tanh_d_x_pullback, [0, 1],
                primal: |o| o[0].tanh(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.3], &[-1.2], &[2.0]], guarded: false, singular: &[]),
            case!($t, sigmoid_d_x, sigmoid_d_x_pullback, [0, 1],
                primal: |o| 1.0 / (1.0 + (-o[0]).exp()), wrt: 0, reads: |o, y| [y],
                at: &[&[0.3], &[-1.2], &[2.0]], guarded: false, singular: &[]),
            case!($t, asinh_d_x, asinh_d_x_pullback, [0, 1],
                primal: |o| o[0].asinh(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[-3.0], &[10.0]], guarded: false, singular: &[]),
            case!($t, acosh_d_x, acosh_d_x_pullback, [0, 1],
                primal: |o| o[0].acosh(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[1.5], &[3.0], &[12.0]], guarded: true, singular: &[&[1.0]]),
            case!($t, atanh_d_x, atanh_d_x_pullback, [0, 1],
                primal: |o| o[0].atanh(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.2], &[-0.7], &[0.5]], guarded: true, singular: &[&[1.0], &[-1.0]]),
            case!($t, exp_d_x, exp_d_x_pullback, [0, 1],
                primal: |o| o[0].exp(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.3], &[-1.5], &[2.5]], guarded: true, singular: &[&[INF]]),
            case!($t, exp2_d_x, exp2_d_x_pullback, [0, 1],
                primal: |o| o[0].exp2(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.3], &[-1.5], &[2.5]], guarded: true, singular: &[&[INF]]),
            case!($t, exp_m1_d_x, exp_m1_d_x_pullback, [0, 1],
                primal: |o| o[0].exp_m1(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.3], &[-1.5], &[2.5]], guarded: true, singular: &[&[INF]]),
            case!($t, ln_d_x, ln_d_x_pullback, [0, 1],
                primal: |o| o[0].ln(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[2.0], &[9.0]], guarded: true, singular: &[&[0.0], &[-0.0]]),
            case!($t, ln1p_d_x, ln1p_d_x_pullback, [0, 1],
                primal: |o| o[0].ln_1p(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[-0.5], &[0.3], &[4.0]], guarded: true, singular: &[&[-1.0]]),
            case!($t, log_d_x, log_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].log(o[1]), wrt: 0, reads: |o, y| [o[0], o[1]],
                at: &[&[2.5, 3.0], &[0.5, 10.0], &[7.0, 0.25]], guarded: true,
                singular: &[&[0.0, 2.0], &[2.0, 1.0], &[0.0, 1.0]]),
            case!($t, log_d_base, log_d_base_pullback, [0, 1, 2],
                primal: |o| o[0].log(o[1]), wrt: 1, reads: |o, y| [o[0], o[1]],
                at: &[&[2.5, 3.0], &[0.5, 10.0], &[7.0, 0.25]], guarded: true,
                singular: &[&[0.0, 2.0], &[2.0, 1.0]]),
            case!($t, log2_d_x, log2_d_x_pullback, [0, 1],
                primal: |o| o[0].log2(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[3.0], &[20.0]], guarded: true, singular: &[&[0.0]]),
            case!($t, log10_d_x, log10_d_x_pullback, [0, 1],
                primal: |o| o[0].log10(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.5], &[3.0], &[20.0]], guarded: true, singular: &[&[0.0]]),
            case!($t, sqrt_d_x, sqrt_d_x_pullback, [0, 1],
                primal: |o| o[0].sqrt(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.25], &[2.0], &[9.0]], guarded: true, singular: &[&[0.0], &[-0.0]]),
            case!($t, cbrt_d_x, cbrt_d_x_pullback, [0, 1],
                primal: |o| o[0].cbrt(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.5], &[-3.0], &[8.0]], guarded: true, singular: &[&[0.0]]),
            powi_case!($t, 3, at: &[&[0.7], &[-1.3], &[2.0]]),
            powi_case!($t, 2, at: &[&[0.7], &[-1.3], &[2.0]]),
            powi_case!($t, -2, at: &[&[0.7], &[-1.3], &[2.0]]),
            powi_case!($t, 5, at: &[&[0.7], &[-1.3], &[2.0]]),
            powi_case!($t, 1, at: &[&[0.7], &[-1.3]]),
            powi_case!($t, 0, at: &[&[0.7], &[-1.3]]),
            case!($t, powf_d_x, powf_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].powf(o[1]), wrt: 0, reads: |o, y| [o[0], o[1]],
                at: &[&[1.5, 2.5], &[0.6, -1.3], &[3.0, 0.5], &[2.0, 1.0], &[2.0, 0.0], &[0.5, 3.0]],
                guarded: true, singular: &[&[0.0, 0.5], &[0.0, 0.0], &[0.0, -1.0]]),
            case!($t, powf_d_p, powf_d_p_pullback, [0, 1, 2],
                primal: |o| o[0].powf(o[1]), wrt: 1, reads: |o, y| [o[0], y],
                at: &[&[1.5, 2.5], &[0.6, -1.3], &[3.0, 0.5]], guarded: true,
                singular: &[&[0.0, 0.0], &[0.0, INF], &[-2.0, NAN]]),
            case!($t, hypot_d_x, hypot_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].hypot(o[1]), wrt: 0, reads: |o, y| [o[0], y],
                at: &[&[3.0, 4.0], &[-1.2, 0.5], &[0.3, -2.0]], guarded: false, singular: &[]),
            case!($t, hypot_d_other, hypot_d_other_pullback, [0, 1, 2],
                primal: |o| o[0].hypot(o[1]), wrt: 1, reads: |o, y| [o[1], y],
                at: &[&[3.0, 4.0], &[-1.2, 0.5], &[0.3, -2.0]], guarded: false, singular: &[]),
            case!($t, recip_d_x, recip_d_x_pullback, [0, 1],
                primal: |o| o[0].recip(), wrt: 0, reads: |o, y| [y],
                at: &[&[0.5], &[-2.0], &[3.0]], guarded: true, singular: &[&[INF]]),
            case!($t, mul_add_d_x, mul_add_d_x_pullback, [0, 1],
                primal: |o| o[0].mul_add(o[1], o[2]), wrt: 0, reads: |o, y| [o[1]],
                at: &[&[1.5, -0.7, 2.0], &[-3.0, 0.25, 1.0]], guarded: false, singular: &[]),
            case!($t, mul_add_d_a, mul_add_d_a_pullback, [0, 1],
                primal: |o| o[0].mul_add(o[1], o[2]), wrt: 1, reads: |o, y| [o[0]],
                at: &[&[1.5, -0.7, 2.0], &[-3.0, 0.25, 1.0]], guarded: false, singular: &[]),
            case!($t, mul_add_d_b, mul_add_d_b_pullback, [0],
                primal: |o| o[0].mul_add(o[1], o[2]), wrt: 2, reads: |o, y| [],
                at: &[&[1.5, -0.7, 2.0], &[-3.0, 0.25, 1.0]], guarded: false, singular: &[]),
            case!($t, abs_d_x, abs_d_x_pullback, [0, 1],
                primal: |o| o[0].abs(), wrt: 0, reads: |o, y| [o[0]],
                at: &[&[0.7], &[-1.3]], guarded: false, singular: &[]),
            case!($t, max_d_x, max_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].max(o[1]), wrt: 0, reads: |o, y| [o[0], o[1]],
                at: &[&[1.0, 0.5], &[-1.0, 0.3], &[2.0, 2.5]], guarded: false, singular: &[]),
            case!($t, max_d_other, max_d_other_pullback, [0, 1, 2],
                primal: |o| o[0].max(o[1]), wrt: 1, reads: |o, y| [o[0], o[1]],
                at: &[&[1.0, 0.5], &[-1.0, 0.3], &[2.0, 2.5]], guarded: false, singular: &[]),
            case!($t, min_d_x, min_d_x_pullback, [0, 1, 2],
                primal: |o| o[0].min(o[1]), wrt: 0, reads: |o, y| [o[0], o[1]],
                at: &[&[1.0, 0.5], &[-1.0, 0.3], &[2.0, 2.5]], guarded: false, singular: &[]),
            case!($t, min_d_other, min_d_other_pullback, [0, 1, 2],
                primal: |o| o[0].min(o[1]), wrt: 1, reads: |o, y| [o[0], o[1]],
                at: &[&[1.0, 0.5], &[-1.0, 0.3], &[2.0, 2.5]], guarded: false, singular: &[]),
            case!($t, clamp_d_x, clamp_d_x_pullback, [0, 1, 2, 3],
                primal: |o| o[0].clamp(o[1], o[2]), wrt: 0, reads: |o, y| [o[0], o[1], o[2]],
                at: &[&[0.5, -1.0, 1.0], &[-2.0, -1.0, 1.0], &[3.0, -1.0, 1.0]],
                guarded: false, singular: &[]),
            case!($t, clamp_d_lo, clamp_d_lo_pullback, [0, 1, 2],
                primal: |o| o[0].clamp(o[1], o[2]), wrt: 1, reads: |o, y| [o[0], o[1]],
                at: &[&[0.5, -1.0, 1.0], &[-2.0, -1.0, 1.0], &[3.0, -1.0, 1.0]],
                guarded: false, singular: &[]),
            case!($t, clamp_d_hi, clamp_d_hi_pullback, [0, 1, 2],
                primal: |o| o[0].clamp(o[1], o[2]), wrt: 2, reads: |o, y| [o[0], o[2]],
                at: &[&[0.5, -1.0, 1.0], &[-2.0, -1.0, 1.0], &[3.0, -1.0, 1.0]],
                guarded: false, singular: &[]),
            case!($t, fract_d_x, fract_d_x_pullback, [0],
                primal: |o| o[0].fract(), wrt: 0, reads: |o, y| [],
                at: &[&[0.3], &[2.7], &[-1.6]], guarded: false, singular: &[]),
            case!($t, to_degrees_d_x, to_degrees_d_x_pullback, [0],
                primal: |o| o[0].to_degrees(), wrt: 0, reads: |o, y| [],
                at: &[&[0.5], &[-2.0]], guarded: false, singular: &[]),
            case!($t, to_radians_d_x, to_radians_d_x_pullback, [0],
                primal: |o| o[0].to_radians(), wrt: 0, reads: |o, y| [],
                at: &[&[0.5], &[-2.0]], guarded: false, singular: &[]),
            case!($t, div_op_d_lhs, div_op_d_lhs_pullback, [0, 1],
                primal: |o| o[0] / o[1], wrt: 0, reads: |o, y| [o[1]],
                at: &[&[1.5, 2.5], &[-3.0, 0.4], &[0.7, -1.1]], guarded: true,
                singular: &[&[0.0], &[-0.0]]),
            case!($t, div_op_d_rhs, div_op_d_rhs_pullback, [0, 1, 2],
                primal: |o| o[0] / o[1], wrt: 1, reads: |o, y| [o[1], y],
                at: &[&[1.5, 2.5], &[-3.0, 0.4], &[0.7, -1.1]], guarded: true,
                singular: &[&[0.0, INF], &[0.0, NAN], &[INF, 0.0]]),
        ]
    };
}

fn table_f32() -> Vec<Case<f32>> {
    table!(f32)
}

fn table_f64() -> Vec<Case<f64>> {
    table!(f64)
}

fn conv<T: Num>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

/// `∂f/∂a[i]`: central differences at steps `h` and `h/2` combined by Richardson
/// extrapolation (error `O(h^4)`), `h = eps^(1/4) max(1, |a[i]|)`; the steps are
/// measured in `T` after rounding.
fn fd<T: Num>(f: impl Fn(&[T]) -> T, args: &[T], i: usize) -> f64 {
    let x: f64 = args[i].into();
    let h = T::EPS.powf(0.25) * x.abs().max(1.0);
    let central = |h: f64| {
        let mut a = args.to_vec();
        a[i] = T::of(x + h);
        let (xp, fp): (f64, f64) = (a[i].into(), f(&a).into());
        a[i] = T::of(x - h);
        let (xm, fm): (f64, f64) = (a[i].into(), f(&a).into());
        (fp - fm) / (xp - xm)
    };
    (4.0 * central(h / 2.0) - central(h)) / 3.0
}

fn close<T: Num>(got: T, want: f64, scale: f64) -> bool {
    let got: f64 = got.into();
    (got - want).abs() <= T::TOL * (1.0 + want.abs() + scale)
}

fn args_at<T: Num>(c: &Case<T>, at: &[f64], d: f64) -> Vec<T> {
    let o = conv::<T>(at);
    let mut a = (c.reads)(&o, (c.primal)(&o));
    a.push(T::of(d));
    a
}

/// (a) For every tangent function `t` of a primal `f` and operand `k`:
/// `t(reads, d) = ∂f/∂o_k * d`, the partial from a central difference of `f`
/// (e.g. `sin_d_x(x, d) = (sin(x+h) - sin(x-h)) / 2h * d = cos(x) d`).
fn tangents_match_primal<T: Num>(table: &[Case<T>]) -> usize {
    let mut checked = 0;
    for c in table {
        for at in c.at {
            let o = conv::<T>(at);
            let partial = fd(c.primal, &o, c.wrt);
            for d in [1.0, -0.75, 2.5] {
                let a = args_at(c, at, d);
                let got = (c.tangent)(&a);
                let want = partial * d;
                assert!(
                    close(got, want, 0.0),
                    "{} at {at:?}, d = {d}: got {got:?}, finite difference {want}",
                    c.name
                );
                checked += 1;
            }
        }
    }
    checked
}

/// (b) For every pullback: the value is `t(args)` and slot `i` is
/// `∂t/∂args[i] * g`, from a central difference of `t` in `args[i]` alone
/// (e.g. `sin_d_x_pullback(x, d, g) = (cos(x) d, (-sin(x) d g, cos(x) g))`);
/// one slot per float argument.
fn pullbacks_match_tangents<T: Num>(table: &[Case<T>]) -> usize {
    let mut checked = 0;
    for c in table {
        for at in c.at {
            for (d, g) in [(1.0, 1.0), (-0.75, 1.5), (2.5, -0.5)] {
                let a = args_at(c, at, d);
                let (v, slots) = (c.pullback)(&a, T::of(g));
                assert_eq!(v, (c.tangent)(&a), "{} value at {at:?}", c.name);
                assert_eq!(slots.len(), a.len(), "{}: one slot per argument", c.name);
                let scale: f64 = v.into();
                for (i, &s) in slots.iter().enumerate() {
                    let want = fd(c.tangent, &a, i) * g;
                    assert!(
                        close(s, want, scale.abs()),
                        "{} at {at:?}, d = {d}, g = {g}: slot {i} is {s:?}, finite difference {want}",
                        c.name
                    );
                    checked += 1;
                }
            }
        }
    }
    checked
}

fn is_zero<T: Num>(v: T) -> bool {
    let v: f64 = v.into();
    v == 0.0
}

/// (c) `g == 0` gives zero slots everywhere; a guarded function with `d == 0`
/// gives exactly `0` for its value and its value slots (all but the slot of
/// `d`), at regular points, at singular points (`ln` at `0`, `sqrt` at `0`,
/// `exp` of an overflowed output, ...) and for NaN operands; at a singular
/// point that is not NaN, the slot of `d` is not NaN either.
fn zero_conventions<T: Num>(table: &[Case<T>]) -> usize {
    let mut checked = 0;
    for c in table {
        for at in c.at {
            let a = args_at(c, at, 1.0);
            let (_, slots) = (c.pullback)(&a, T::of(0.0));
            assert!(
                slots.iter().all(|&s| is_zero(s)),
                "{} at {at:?}, g = 0: {slots:?}",
                c.name
            );
            checked += 1;
        }
        if !c.guarded {
            assert!(
                c.singular.is_empty(),
                "{}: singular points of a plain rule",
                c.name
            );
            continue;
        }
        let n = (c.reads)(&conv::<T>(c.at[0]), T::of(1.0)).len();
        let nan_point = vec![NAN; n];
        let regular: Vec<Vec<f64>> =
            c.at.iter()
                .map(|at| {
                    let a = args_at(c, at, 0.0);
                    a[..n].iter().map(|&v| v.into()).collect()
                })
                .collect();
        let points = c
            .singular
            .iter()
            .map(|s| s.to_vec())
            .chain(regular)
            .chain([nan_point]);
        for reads in points {
            assert_eq!(reads.len(), n, "{}: singular point {reads:?}", c.name);
            let mut a = conv::<T>(&reads);
            a.push(T::of(0.0));
            assert!(
                is_zero((c.tangent)(&a)),
                "{} at {reads:?}, d = 0: {:?}",
                c.name,
                (c.tangent)(&a)
            );
            for g in [1.0, -2.0] {
                let (v, slots) = (c.pullback)(&a, T::of(g));
                assert!(is_zero(v), "{} at {reads:?}, d = 0: value {v:?}", c.name);
                assert!(
                    slots[..n].iter().all(|&s| is_zero(s)),
                    "{} at {reads:?}, d = 0, g = {g}: {slots:?}",
                    c.name
                );
                let sd: f64 = slots[n].into();
                assert!(
                    reads.iter().any(|r| r.is_nan()) || !sd.is_nan(),
                    "{} at {reads:?}, g = {g}: the slot of d is NaN",
                    c.name
                );
                checked += 1;
            }
            // g == 0 with d != 0: every slot is exactly 0, the slot of d included.
            let mut a1 = a.clone();
            a1[n] = T::of(1.0);
            let (_, slots) = (c.pullback)(&a1, T::of(0.0));
            assert!(
                slots.iter().all(|&s| is_zero(s)),
                "{} at {reads:?}, g = 0: {slots:?}",
                c.name
            );
        }
    }
    checked
}

/// The number of distinct functions in the table: every rule partial the
/// runtime implements for scalars except `+ - *`, unary `-` and `as`.
const FUNCTIONS: usize = 48;

#[test]
fn table_covers_every_scalar_rule_partial() {
    let mut names: Vec<&str> = table_f64()
        .iter()
        .map(|c| c.name.split(' ').next().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FUNCTIONS, "{names:?}");
    assert_eq!(table_f32().len(), table_f64().len());
}

#[test]
fn tangents_match_primal_f64() {
    assert!(tangents_match_primal(&table_f64()) > 3 * FUNCTIONS);
}

#[test]
fn tangents_match_primal_f32() {
    assert!(tangents_match_primal(&table_f32()) > 3 * FUNCTIONS);
}

#[test]
fn pullbacks_match_tangents_f64() {
    assert!(pullbacks_match_tangents(&table_f64()) > 6 * FUNCTIONS);
}

#[test]
fn pullbacks_match_tangents_f32() {
    assert!(pullbacks_match_tangents(&table_f32()) > 6 * FUNCTIONS);
}

#[test]
fn zero_conventions_f64() {
    assert!(zero_conventions(&table_f64()) > FUNCTIONS);
}

#[test]
fn zero_conventions_f32() {
    assert!(zero_conventions(&table_f32()) > FUNCTIONS);
}

/// The conventions of the module docs' table at singular points, with `d = g = 1`
/// unless said: `sqrt_d_x` at `y = ±0`: slot `y` is `-d g / (2 y^2) -> -inf`;
/// `ln_d_x` at `x = 0`: slot `x` is `-d g / x^2 = -inf`; `powi_d_x` with `n = 0`
/// or `1`: slot `x` is `0` also at `x = 0`; `powf_d_x`: `p = 0` gives slot `x` = 0
/// and slot `p` = `d g / x`; at `x < 0` and integer `p`, slot `x` is exact
/// (`p (p-1) x^(p-2) d g`) and slot `p` is `0`; `powf_d_p` at `x <= 0`: zeros;
/// `hypot` at `y = 0`: zeros; `atan2` at the origin: zeros; `abs` at `0`: zeros;
/// piecewise rules: zero value slots, `d`'s slot selects like the rule.
#[test]
fn conventions_at_singular_points() {
    for y in [0.0f64, -0.0] {
        let (_, (sy, sd)) = fwd::sqrt_d_x_pullback(y, 1.0, 1.0);
        assert_eq!((sy, sd), (f64::NEG_INFINITY, f64::INFINITY));
    }
    assert_eq!(
        fwd::ln_d_x_pullback(0.0f32, 1.0, 1.0).1 .0,
        f32::NEG_INFINITY
    );
    assert_eq!(
        fwd::ln_d_x_pullback(0.0f32, 0.0, 1.0),
        (0.0, (0.0, f32::INFINITY))
    );
    for n in [0, 1] {
        for x in [0.0f64, 2.0] {
            let (_, (sx, NoGrad, _)) = fwd::powi_d_x_pullback(x, n, 1.0, 1.0);
            assert_eq!(sx, 0.0, "n = {n}, x = {x}");
        }
    }
    // n = 2 at x = 0: 2 * 1 * x^0 d g = 2, not 0 * inf.
    assert_eq!(fwd::powi_d_x_pullback(0.0f64, 2, 1.0, 1.0).1 .0, 2.0);
    // n = i32::MIN: x^(n-2) through x^n / x^2, no overflow of n - 2.
    let (_, (sx, NoGrad, _)) = fwd::powi_d_x_pullback(1.0f64, i32::MIN, 1.0, 1.0);
    let n = f64::from(i32::MIN);
    assert_eq!(sx, n * (n - 1.0));
    let (v, (sx, sp, sd)) = fwd::powf_d_x_pullback(2.0f64, 0.0, 3.0, 1.0);
    assert_eq!((v, sx, sp, sd), (0.0, 0.0, 1.5, 0.0));
    assert_eq!(
        fwd::powf_d_x_pullback(0.0f64, 0.0, 3.0, 1.0).1,
        (0.0, 0.0, 0.0)
    );
    assert_eq!(
        fwd::powf_d_x_pullback(0.0f64, 1.0, 3.0, 1.0),
        (3.0, (0.0, 0.0, 1.0))
    );
    // (-2)^3: second derivative 6x = -12, exact in sign; no derivative in p at x < 0.
    assert_eq!(
        fwd::powf_d_x_pullback(-2.0f64, 3.0, 1.0, 1.0).1,
        (-12.0, 0.0, 12.0)
    );
    for x in [0.0f32, -0.0, -2.0] {
        assert_eq!(
            fwd::powf_d_p_pullback(x, 1.0, 1.0, 1.0),
            (0.0, (0.0, 0.0, 0.0))
        );
    }
    assert_eq!(
        fwd::hypot_d_x_pullback(0.0f64, 0.0, 1.0, 1.0),
        (0.0, (0.0, 0.0, 0.0))
    );
    assert_eq!(
        fwd::hypot_d_other_pullback(0.0f64, 0.0, 1.0, 1.0),
        (0.0, (0.0, 0.0, 0.0))
    );
    // 1 / y is unbounded: with d = 0 the slots are 0, not 0 * inf.
    let tiny = f64::from_bits(1);
    assert_eq!(fwd::hypot_d_x_pullback(tiny, tiny, 0.0, 1.0).1 .0, 0.0);
    assert_eq!(
        fwd::hypot_d_x_pullback(tiny, tiny, 1.0, 0.0).1,
        (0.0, 0.0, 0.0)
    );
    for (x, o) in [(0.0f64, 0.0), (-0.0, 0.0), (0.0, -0.0)] {
        assert_eq!(
            fwd::atan2_d_x_pullback(x, o, 1.0, 1.0),
            (0.0, (0.0, 0.0, 0.0))
        );
        assert_eq!(
            fwd::atan2_d_other_pullback(x, o, 1.0, 1.0),
            (0.0, (0.0, 0.0, 0.0))
        );
    }
    assert_eq!(fwd::abs_d_x_pullback(-0.0f64, 1.0, 1.0), (0.0, (0.0, 0.0)));
    assert_eq!(
        fwd::abs_d_x_pullback(-3.0f64, 2.0, 1.0),
        (-2.0, (0.0, -1.0))
    );
    // Ties go to x; a NaN operand loses.
    assert_eq!(
        fwd::max_d_x_pullback(1.0f64, 1.0, 2.0, 3.0),
        (2.0, (0.0, 0.0, 3.0))
    );
    assert_eq!(
        fwd::max_d_other_pullback(1.0f64, 1.0, 2.0, 3.0),
        (0.0, (0.0, 0.0, 0.0))
    );
    assert_eq!(
        fwd::min_d_other_pullback(f64::NAN, 1.0, 2.0, 3.0),
        (2.0, (0.0, 0.0, 3.0))
    );
    assert_eq!(
        fwd::clamp_d_x_pullback(1.0f32, -1.0, 1.0, 2.0, 3.0),
        (2.0, (0.0, 0.0, 0.0, 3.0))
    );
    assert_eq!(
        fwd::clamp_d_hi_pullback(1.5f32, 1.0, 2.0, 3.0),
        (2.0, (0.0, 0.0, 3.0))
    );
}

/// Reverse over forward by hand, as the macro will write it for `hessian`.
/// `f(x) = exp(sin x)`: `f'' = (cos^2 x - sin x) e^(sin x)`. The tangent code is
/// `s = sin x; ds = sin_d_x(x, dx); y = exp s; dy = exp_d_x(y, ds)`; its reverse
/// sweep from `g(dy) = 1` with `dx = 1` gives `∂dy/∂x = f''(x)` (through the
/// pullbacks and the first-order rules for `s = sin x`, `y = exp s`) and
/// `∂dy/∂dx = f'(x)`.
#[test]
fn second_derivative_by_reverse_over_forward() {
    for x in [-1.3f64, 0.0, 0.4, 2.2] {
        let (s, dx) = (x.sin(), 1.0);
        let ds = fwd::sin_d_x(x, dx);
        let y = s.exp();
        let (dy, (gy, gds)) = fwd::exp_d_x_pullback(y, ds, 1.0);
        let (_, (gx_tangent, gdx)) = fwd::sin_d_x_pullback(x, dx, gds);
        // y = exp(s), s = sin(x): the first-order rules carry gy back to x.
        let gs = fwd::exp_d_x(y, gy);
        let gx_primal = fwd::sin_d_x(x, gs);
        let f2 = (x.cos().powi(2) - x.sin()) * x.sin().exp();
        let f1 = x.cos() * x.sin().exp();
        assert!((gx_tangent + gx_primal - f2).abs() < 1e-14, "x = {x}");
        assert!(
            (gdx - f1).abs() < 1e-14 && (dy - f1).abs() < 1e-14,
            "x = {x}"
        );
    }
}

/// A Hessian-vector product by reverse over forward for `f(a, b) = ln(a) / b`:
/// `H = [[-1/(a^2 b), -1/(a b^2)], [-1/(a b^2), 2 ln a / b^3]]`. The tangent is
/// `l = ln a; dl = ln_d_x(a, da); y = l / b; dy = div_op_d_lhs(b, dl) + div_op_d_rhs(b, y, db)`;
/// reversing it from `g(dy) = 1` gives `H (da, db)` for `(a, b)` and `∇f` for `(da, db)`.
#[test]
fn hessian_vector_product_by_reverse_over_forward() {
    let (a, b) = (1.7f64, -0.6);
    for (da, db) in [(1.0, 0.0), (0.0, 1.0), (0.5, -2.0)] {
        let l = a.ln();
        let dl = fwd::ln_d_x(a, da);
        let y = l / b;
        let dy = fwd::div_op_d_lhs(b, dl) + fwd::div_op_d_rhs(b, y, db);
        let (v2, (gb1, gy, gdb)) = fwd::div_op_d_rhs_pullback(b, y, db, 1.0);
        let (v1, (gb2, gdl)) = fwd::div_op_d_lhs_pullback(b, dl, 1.0);
        assert_eq!(v1 + v2, dy);
        let (_, (ga1, gda)) = fwd::ln_d_x_pullback(a, da, gdl);
        // y = l / b, l = ln a: first-order rules.
        let gl = fwd::div_op_d_lhs(b, gy);
        let gb3 = fwd::div_op_d_rhs(b, y, gy);
        let ga2 = fwd::ln_d_x(a, gl);
        let hv = (ga1 + ga2, gb1 + gb2 + gb3);
        let h = [
            [-1.0 / (a * a * b), -1.0 / (a * b * b)],
            [-1.0 / (a * b * b), 2.0 * a.ln() / (b * b * b)],
        ];
        let want = (h[0][0] * da + h[0][1] * db, h[1][0] * da + h[1][1] * db);
        assert!(
            (hv.0 - want.0).abs() < 1e-12 && (hv.1 - want.1).abs() < 1e-12,
            "{hv:?} vs {want:?}"
        );
        let grad = (1.0 / (a * b), -a.ln() / (b * b));
        assert!((gda - grad.0).abs() < 1e-12 && (gdb - grad.1).abs() < 1e-12);
    }
}
