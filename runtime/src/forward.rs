//! Forward mode and second-order derivatives: what generated tangent code calls.
//!
//! For a `#[differentiable(forward)]` function the macro writes a
//! *pushforward* (Jacobian-vector product) as ordinary Rust. Where the primal
//! applies a primitive (`x.sin()`), the pushforward computes the tangent of the
//! result with one function per derivative rule of [`rules`](crate::rules):
//!
//! ```text
//! let y = x.sin();                                   // primal
//! let dy = __private::fwd::sin_d_x(x, dx);           // tangent: cos(x) * dx
//! ```
//!
//! A rule of `rules` returns the cotangent contribution `f'(..) * d`; for a
//! scalar, a linear map is its own transpose, so `rule(reads, d)` is also the
//! tangent contribution `f'(..) * ḋ`. Each function here is named
//! `<trait>_<method>` after its rule (`Sin::d_x` → [`sin_d_x`],
//! `DivOp::d_rhs` → [`div_op_d_rhs`]) and takes the rule's reads in the order
//! of the macro's table, shapes left out, integers (`powi`'s exponent) as
//! `i32`, then the tangent `d`. The operators `+ - *`, unary `-` and `as` have
//! no function: the macro writes their tangents as arithmetic.
//!
//! For second order (`hessian`, Hessian-vector products) the macro
//! differentiates the pushforward again with reverse mode. Each tangent
//! function therefore has a hand-written `_pullback` of the shape every
//! generated pullback has: `f_pullback(args.., g) -> (value, (slot per
//! argument))`, the slot of an `i32` argument being [`NoGrad`]. The slot of `d`
//! is the rule applied to `g` (the function is linear in `d`); the slot of a
//! value read `v` is `∂²f/∂x∂v`-style: the derivative of `rule(reads, d)` with
//! respect to `v`, times `g`, each read treated as an independent argument (an
//! output read `y` gets its own slot, and the caller's reverse sweep carries it
//! on through `y = f(x)`).
//!
//! Everything is bounded by [`ForwardFloat`] (`f32`, `f64`): tensor code is not
//! supported in forward mode yet, and says so at compile time.
//!
//! # Conventions at the edges (second order)
//!
//! The first-order functions are the rules themselves, with their conventions
//! (see `rules`' module docs). For the slots of the pullbacks:
//!
//! * **Guarded.** Where the rule is guarded (it returns exactly `0` when
//!   `d == 0`), the value slots are guarded too: exactly `0` when `d == 0` or
//!   `g == 0`, before the operands are read, so NaN never comes from `0 * inf`
//!   (and a NaN operand gives `0` there). The slot of `d` is the guarded rule
//!   applied to `g`, so it is `0` when `g == 0`. `Hypot`, whose rule is not
//!   guarded but whose second derivative `1 / y` is unbounded, is guarded here
//!   as well.
//! * **Plain.** The other smooth rules (`sin`, `cos`, `tan`, `atan`, `tanh`,
//!   `asinh`, `mul_add`) have bounded second derivatives for finite operands:
//!   their slots are the plain formula, and a NaN operand propagates.
//! * **Piecewise linear.** `abs`, `max`, `min`, `clamp` select an operand (or
//!   a sign) that is locally constant: their value slots are exactly `0`, and
//!   only `d` has a slot. `fract`, `to_degrees`, `to_radians` and `mul_add`'s
//!   `d_b` read no values.
//!
//! | Function | Where | Value slots |
//! |---|---|---|
//! | any guarded pullback | `d == 0` or `g == 0` | `0` (never NaN) |
//! | `sqrt_d_x` | `y = ±0` | `y`: `-inf * d * g` (the one-sided limit) |
//! | `cbrt_d_x` | `y = 0` | `y`: `±inf` (IEEE) |
//! | `ln`, `log2`, `log10`, `log`, `div_op` | `x = 0` / `rhs = 0` | `±inf` (IEEE) |
//! | `asin`, `acos`, `atanh`, `acosh` | their poles | `±inf` (IEEE) |
//! | `atan2_d_x`, `atan2_d_other` | `x = other = 0` | `0` for both (as the rule) |
//! | `hypot_d_x`, `hypot_d_other` | `y = 0` | `0` for both (as the rule) |
//! | `powi_d_x` | `n = 0` or `n = 1` | `x`: `0` (the rule is constant in `x`), also at `x = 0` |
//! | `powf_d_x` | `p = 0` | `x`: `0` (the rule is `0` for every `x`); `p`: `d g / x` for `x > 0` |
//! | `powf_d_x` | `p = 1` | `x`: `0` (the rule is `d` for every `x`, also `x = 0`); `p`: `(1 + ln x) d g` |
//! | `powf_d_x` | `x <= 0` | `p`: `0` (`x^p` is not differentiated in `p` there, as `Powf::d_p`) |
//! | `powf_d_p` | `x <= 0` | `0` for `x` and `y` (the rule is the constant `0` there) |
//! | `abs`, `max`, `min`, `clamp` | everywhere | `0` (the selection is locally constant) |

use crate::__private::{shape_of, NoGrad};
use crate::rules::{
    Abs, Acos, Acosh, Asin, Asinh, Atan, Atan2, Atanh, Cbrt, Clamp, Cos, Cosh, DivOp, Exp, Exp2,
    ExpM1, Fract, Hypot, Ln, Ln1p, Log, Log10, Log2, Max, Min, MulAdd, Powf, Powi, Recip, Sigmoid,
    Sin, Sinh, Sqrt, Tan, Tanh, ToDegrees, ToRadians,
};
use crate::tangent::{Differentiable, Tangent};
use core::fmt;
use core::ops::Index;
use sealed::Sealed;

mod sealed {
    use core::ops::{Add, Div, Mul, Neg, Sub};

    /// The float operations the second-order rules need. Not nameable outside
    /// this crate, so neither `ForwardFloat` gains impls nor these method names
    /// leak into user code.
    pub trait Sealed:
        Copy
        + PartialOrd
        + core::fmt::Debug
        + Add<Output = Self>
        + Sub<Output = Self>
        + Mul<Output = Self>
        + Div<Output = Self>
        + Neg<Output = Self>
    {
        const ZERO: Self;
        const ONE: Self;
        const TWO: Self;
        const LN_2: Self;
        const LOG2_E: Self;
        const LOG10_E: Self;
        fn of_i32(n: i32) -> Self;
        fn of_f64(v: f64) -> Self;
        fn sin(self) -> Self;
        fn cos(self) -> Self;
        fn sinh(self) -> Self;
        fn cosh(self) -> Self;
        fn sqrt(self) -> Self;
        fn abs(self) -> Self;
        fn ln(self) -> Self;
        fn powi(self, n: i32) -> Self;
        fn powf(self, p: Self) -> Self;
        fn hypot(self, other: Self) -> Self;
    }

    macro_rules! sealed_float {
        ($($t:ident)*) => {$(
            impl Sealed for $t {
                const ZERO: $t = 0.0;
                const ONE: $t = 1.0;
                const TWO: $t = 2.0;
                const LN_2: $t = core::$t::consts::LN_2;
                const LOG2_E: $t = core::$t::consts::LOG2_E;
                const LOG10_E: $t = core::$t::consts::LOG10_E;
                #[inline(always)]
                fn of_i32(n: i32) -> $t {
                    n as $t
                }
                #[inline(always)]
                fn of_f64(v: f64) -> $t {
                    v as $t
                }
                #[inline(always)]
                fn sin(self) -> $t {
                    <$t>::sin(self)
                }
                #[inline(always)]
                fn cos(self) -> $t {
                    <$t>::cos(self)
                }
                #[inline(always)]
                fn sinh(self) -> $t {
                    <$t>::sinh(self)
                }
                #[inline(always)]
                fn cosh(self) -> $t {
                    <$t>::cosh(self)
                }
                #[inline(always)]
                fn sqrt(self) -> $t {
                    <$t>::sqrt(self)
                }
                #[inline(always)]
                fn abs(self) -> $t {
                    <$t>::abs(self)
                }
                #[inline(always)]
                fn ln(self) -> $t {
                    <$t>::ln(self)
                }
                #[inline(always)]
                fn powi(self, n: i32) -> $t {
                    <$t>::powi(self, n)
                }
                #[inline(always)]
                fn powf(self, p: $t) -> $t {
                    <$t>::powf(self, p)
                }
                #[inline(always)]
                fn hypot(self, other: $t) -> $t {
                    <$t>::hypot(self, other)
                }
            }
        )*};
    }
    sealed_float!(f32 f64);
}

/// The scalar types forward mode differentiates: `f32` and `f64`.
///
/// Sealed: it bounds every tangent function of forward mode, so a
/// `#[differentiable(forward)]` function (or `hessian`) over other types —
/// tensors, for now — is a compile error that says so.
#[diagnostic::on_unimplemented(
    message = "forward mode (`_tangent`, `_jacobian`, `_hvp`, `_hessian`) differentiates `f32`/`f64` code; `{Self}` operations are not supported in forward mode yet",
    label = "not a `f32`/`f64` value"
)]
pub trait ForwardFloat:
    Sealed
    + Differentiable<Tangent = Self>
    + Tangent
    + Sin
    + Cos
    + Tan
    + Asin
    + Acos
    + Atan
    + Atan2
    + Sinh
    + Cosh
    + Tanh
    + Sigmoid
    + Asinh
    + Acosh
    + Atanh
    + Exp
    + Exp2
    + ExpM1
    + Ln
    + Ln1p
    + Log
    + Log2
    + Log10
    + Sqrt
    + Cbrt
    + Powi
    + Powf<Exponent = Self>
    + Hypot
    + Abs
    + Recip
    + MulAdd
    + Max
    + Min
    + Clamp<Bound = Self>
    + Fract
    + ToDegrees
    + ToRadians
    + DivOp<Self, Out = Self>
{
}

impl ForwardFloat for f32 {}
impl ForwardFloat for f64 {}

/// `f()`, or exactly `0` when `d == 0` or `g == 0` (also for NaN operands).
#[inline(always)]
fn guarded<T: ForwardFloat>(d: T, g: T, f: impl FnOnce() -> T) -> T {
    if d == T::ZERO || g == T::ZERO {
        T::ZERO
    } else {
        f()
    }
}

// ---------------------------------------------------------------------------
// Trigonometry
// ---------------------------------------------------------------------------

/// Tangent of `sin x`: `cos(x) d`.
#[inline]
pub fn sin_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Sin>::d_x(&x, &d)
}

/// Pullback of [`sin_d_x`]: `x`: `-sin(x) d g`; `d`: `cos(x) g`.
#[inline]
pub fn sin_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    (sin_d_x(x, d), (-(x.sin() * d) * g, <T as Sin>::d_x(&x, &g)))
}

/// Tangent of `cos x`: `-sin(x) d`.
#[inline]
pub fn cos_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Cos>::d_x(&x, &d)
}

/// Pullback of [`cos_d_x`]: `x`: `-cos(x) d g`; `d`: `-sin(x) g`.
#[inline]
pub fn cos_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    (cos_d_x(x, d), (-(x.cos() * d) * g, <T as Cos>::d_x(&x, &g)))
}

/// Tangent of `y = tan x`, from the output: `(1 + y^2) d`.
#[inline]
pub fn tan_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Tan>::d_x(&y, &d)
}

/// Pullback of [`tan_d_x`]: `y`: `2 y d g`; `d`: `(1 + y^2) g`.
#[inline]
pub fn tan_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    (tan_d_x(y, d), (T::TWO * y * d * g, <T as Tan>::d_x(&y, &g)))
}

/// Tangent of `asin x`: `d / sqrt(1 - x^2)`. Guarded.
#[inline]
pub fn asin_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Asin>::d_x(&x, &d)
}

/// Pullback of [`asin_d_x`]: `x`: `x d g / (1 - x^2)^(3/2)`; `d`: `g / sqrt(1 - x^2)`. Guarded.
#[inline]
pub fn asin_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || {
        let q = (T::ONE - x) * (T::ONE + x);
        d * (x / q) / q.sqrt() * g
    });
    (asin_d_x(x, d), (dx, <T as Asin>::d_x(&x, &g)))
}

/// Tangent of `acos x`: `-d / sqrt(1 - x^2)`. Guarded.
#[inline]
pub fn acos_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Acos>::d_x(&x, &d)
}

/// Pullback of [`acos_d_x`]: `x`: `-x d g / (1 - x^2)^(3/2)`; `d`: `-g / sqrt(1 - x^2)`. Guarded.
#[inline]
pub fn acos_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || {
        let q = (T::ONE - x) * (T::ONE + x);
        -(d * (x / q) / q.sqrt()) * g
    });
    (acos_d_x(x, d), (dx, <T as Acos>::d_x(&x, &g)))
}

/// Tangent of `atan x`: `d / (1 + x^2)`.
#[inline]
pub fn atan_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Atan>::d_x(&x, &d)
}

/// Pullback of [`atan_d_x`]: `x`: `-2 x d g / (1 + x^2)^2`; `d`: `g / (1 + x^2)`.
#[inline]
pub fn atan_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let r = T::ONE + x * x;
    (
        atan_d_x(x, d),
        (-(T::TWO * d * (x / r) / r) * g, <T as Atan>::d_x(&x, &g)),
    )
}

/// `(x / r, other / r, r)` with `r = hypot(x, other)`: no overflow or underflow of `x^2 + other^2`.
#[inline(always)]
fn polar<T: ForwardFloat>(x: T, other: T) -> (T, T, T) {
    let r = x.hypot(other);
    (x / r, other / r, r)
}

/// Tangent of `x.atan2(other)` through `x`: `other d / (x^2 + other^2)`; `0` at the origin. Guarded.
#[inline]
pub fn atan2_d_x<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Atan2>::d_x(&x, &other, &d)
}

/// Pullback of [`atan2_d_x`], with `r^2 = x^2 + other^2`: `x`: `-2 x other d g / r^4`;
/// `other`: `(x^2 - other^2) d g / r^4`; `d`: `other g / r^2`. `0` at the origin. Guarded.
#[inline]
pub fn atan2_d_x_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    let (dx, dother) = if x == T::ZERO && other == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        let (u, v, r) = polar(x, other);
        (
            guarded(d, g, || -(T::TWO * d * u * v / r / r) * g),
            guarded(d, g, || d * ((u - v) * (u + v)) / r / r * g),
        )
    };
    (
        atan2_d_x(x, other, d),
        (dx, dother, <T as Atan2>::d_x(&x, &other, &g)),
    )
}

/// Tangent of `x.atan2(other)` through `other`: `-x d / (x^2 + other^2)`; `0` at the origin. Guarded.
#[inline]
pub fn atan2_d_other<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Atan2>::d_other(&x, &other, &d)
}

/// Pullback of [`atan2_d_other`], with `r^2 = x^2 + other^2`: `x`: `(x^2 - other^2) d g / r^4`;
/// `other`: `2 x other d g / r^4`; `d`: `-x g / r^2`. `0` at the origin. Guarded.
#[inline]
pub fn atan2_d_other_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    let (dx, dother) = if x == T::ZERO && other == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        let (u, v, r) = polar(x, other);
        (
            guarded(d, g, || d * ((u - v) * (u + v)) / r / r * g),
            guarded(d, g, || T::TWO * d * u * v / r / r * g),
        )
    };
    (
        atan2_d_other(x, other, d),
        (dx, dother, <T as Atan2>::d_other(&x, &other, &g)),
    )
}

// ---------------------------------------------------------------------------
// Hyperbolic functions
// ---------------------------------------------------------------------------

/// Tangent of `sinh x`: `cosh(x) d`. Guarded.
#[inline]
pub fn sinh_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Sinh>::d_x(&x, &d)
}

/// Pullback of [`sinh_d_x`]: `x`: `sinh(x) d g`; `d`: `cosh(x) g`. Guarded.
#[inline]
pub fn sinh_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || x.sinh() * d * g);
    (sinh_d_x(x, d), (dx, <T as Sinh>::d_x(&x, &g)))
}

/// Tangent of `cosh x`: `sinh(x) d`. Guarded.
#[inline]
pub fn cosh_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Cosh>::d_x(&x, &d)
}

/// Pullback of [`cosh_d_x`]: `x`: `cosh(x) d g`; `d`: `sinh(x) g`. Guarded.
#[inline]
pub fn cosh_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || x.cosh() * d * g);
    (cosh_d_x(x, d), (dx, <T as Cosh>::d_x(&x, &g)))
}

/// Tangent of `y = tanh x`, from the output: `(1 - y^2) d`.
#[inline]
pub fn tanh_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Tanh>::d_x(&y, &d)
}

/// Pullback of [`tanh_d_x`]: `y`: `-2 y d g`; `d`: `(1 - y^2) g`.
#[inline]
pub fn tanh_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    (
        tanh_d_x(y, d),
        (-(T::TWO * y * d) * g, <T as Tanh>::d_x(&y, &g)),
    )
}

/// Tangent of `y = sigmoid x`, from the output: `y (1 - y) d`.
#[inline]
pub fn sigmoid_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Sigmoid>::d_x(&y, &d)
}

/// Pullback of [`sigmoid_d_x`]: `y`: `(1 - 2 y) d g`; `d`: `y (1 - y) g`.
#[inline]
pub fn sigmoid_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    (
        sigmoid_d_x(y, d),
        ((T::ONE - T::TWO * y) * d * g, <T as Sigmoid>::d_x(&y, &g)),
    )
}

/// Tangent of `asinh x`: `d / sqrt(x^2 + 1)`.
#[inline]
pub fn asinh_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Asinh>::d_x(&x, &d)
}

/// Pullback of [`asinh_d_x`]: `x`: `-x d g / (x^2 + 1)^(3/2)`; `d`: `g / sqrt(x^2 + 1)`.
#[inline]
pub fn asinh_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let r = x.hypot(T::ONE);
    (
        asinh_d_x(x, d),
        (-(d * (x / r) / r / r) * g, <T as Asinh>::d_x(&x, &g)),
    )
}

/// Tangent of `acosh x`: `d / sqrt(x^2 - 1)`. Guarded.
#[inline]
pub fn acosh_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Acosh>::d_x(&x, &d)
}

/// Pullback of [`acosh_d_x`]: `x`: `-x d g / (x^2 - 1)^(3/2)`; `d`: `g / sqrt(x^2 - 1)`. Guarded.
#[inline]
pub fn acosh_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || {
        let s = (x - T::ONE).sqrt() * (x + T::ONE).sqrt();
        -(d * (x / s) / s / s) * g
    });
    (acosh_d_x(x, d), (dx, <T as Acosh>::d_x(&x, &g)))
}

/// Tangent of `atanh x`: `d / (1 - x^2)`. Guarded.
#[inline]
pub fn atanh_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Atanh>::d_x(&x, &d)
}

/// Pullback of [`atanh_d_x`]: `x`: `2 x d g / (1 - x^2)^2`; `d`: `g / (1 - x^2)`. Guarded.
#[inline]
pub fn atanh_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || {
        let q = (T::ONE - x) * (T::ONE + x);
        T::TWO * d * (x / q) / q * g
    });
    (atanh_d_x(x, d), (dx, <T as Atanh>::d_x(&x, &g)))
}

// ---------------------------------------------------------------------------
// Exponentials and logarithms
// ---------------------------------------------------------------------------

/// Tangent of `y = exp x`, from the output: `y d`. Guarded.
#[inline]
pub fn exp_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Exp>::d_x(&y, &d)
}

/// Pullback of [`exp_d_x`]: `y`: `d g`; `d`: `y g`. Guarded.
#[inline]
pub fn exp_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || d * g);
    (exp_d_x(y, d), (dy, <T as Exp>::d_x(&y, &g)))
}

/// Tangent of `y = exp2 x`, from the output: `y ln(2) d`. Guarded.
#[inline]
pub fn exp2_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Exp2>::d_x(&y, &d)
}

/// Pullback of [`exp2_d_x`]: `y`: `ln(2) d g`; `d`: `y ln(2) g`. Guarded.
#[inline]
pub fn exp2_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || d * T::LN_2 * g);
    (exp2_d_x(y, d), (dy, <T as Exp2>::d_x(&y, &g)))
}

/// Tangent of `y = exp_m1 x`, from the output: `(y + 1) d`. Guarded.
#[inline]
pub fn exp_m1_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as ExpM1>::d_x(&y, &d)
}

/// Pullback of [`exp_m1_d_x`]: `y`: `d g`; `d`: `(y + 1) g`. Guarded.
#[inline]
pub fn exp_m1_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || d * g);
    (exp_m1_d_x(y, d), (dy, <T as ExpM1>::d_x(&y, &g)))
}

/// Tangent of `ln x`: `d / x`. Guarded.
#[inline]
pub fn ln_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Ln>::d_x(&x, &d)
}

/// Pullback of [`ln_d_x`]: `x`: `-d g / x^2`; `d`: `g / x`. Guarded.
#[inline]
pub fn ln_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || -(d / x / x) * g);
    (ln_d_x(x, d), (dx, <T as Ln>::d_x(&x, &g)))
}

/// Tangent of `ln_1p x`: `d / (1 + x)`. Guarded.
#[inline]
pub fn ln1p_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Ln1p>::d_x(&x, &d)
}

/// Pullback of [`ln1p_d_x`]: `x`: `-d g / (1 + x)^2`; `d`: `g / (1 + x)`. Guarded.
#[inline]
pub fn ln1p_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || {
        let p = T::ONE + x;
        -(d / p / p) * g
    });
    (ln1p_d_x(x, d), (dx, <T as Ln1p>::d_x(&x, &g)))
}

/// Tangent of `x.log(base)` through `x`: `d / (x ln base)`. Guarded.
#[inline]
pub fn log_d_x<T: ForwardFloat>(x: T, base: T, d: T) -> T {
    <T as Log>::d_x(&x, &base, &d)
}

/// Pullback of [`log_d_x`]: `x`: `-d g / (x^2 ln base)`; `base`: `-d g / (x base ln^2 base)`;
/// `d`: `g / (x ln base)`. Guarded.
#[inline]
pub fn log_d_x_pullback<T: ForwardFloat>(x: T, base: T, d: T, g: T) -> (T, (T, T, T)) {
    let lb = base.ln();
    let dx = guarded(d, g, || -(d / x / x / lb) * g);
    let dbase = guarded(d, g, || -(d / x / base / lb / lb) * g);
    (
        log_d_x(x, base, d),
        (dx, dbase, <T as Log>::d_x(&x, &base, &g)),
    )
}

/// Tangent of `x.log(base)` through `base`: `-d ln x / (base ln^2 base)`. Guarded.
#[inline]
pub fn log_d_base<T: ForwardFloat>(x: T, base: T, d: T) -> T {
    <T as Log>::d_base(&x, &base, &d)
}

/// Pullback of [`log_d_base`]: `x`: `-d g / (x base ln^2 base)`;
/// `base`: `d g ln x (ln base + 2) / (base^2 ln^3 base)`; `d`: `-g ln x / (base ln^2 base)`. Guarded.
#[inline]
pub fn log_d_base_pullback<T: ForwardFloat>(x: T, base: T, d: T, g: T) -> (T, (T, T, T)) {
    let lb = base.ln();
    let dx = guarded(d, g, || -(d / x / base / lb / lb) * g);
    let dbase = guarded(d, g, || {
        d / base / base * (x.ln() / lb) * (lb + T::TWO) / lb / lb * g
    });
    (
        log_d_base(x, base, d),
        (dx, dbase, <T as Log>::d_base(&x, &base, &g)),
    )
}

/// Tangent of `log2 x`: `d / (x ln 2)`. Guarded.
#[inline]
pub fn log2_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Log2>::d_x(&x, &d)
}

/// Pullback of [`log2_d_x`]: `x`: `-d g / (x^2 ln 2)`; `d`: `g / (x ln 2)`. Guarded.
#[inline]
pub fn log2_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || -(d / x / x * T::LOG2_E) * g);
    (log2_d_x(x, d), (dx, <T as Log2>::d_x(&x, &g)))
}

/// Tangent of `log10 x`: `d / (x ln 10)`. Guarded.
#[inline]
pub fn log10_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Log10>::d_x(&x, &d)
}

/// Pullback of [`log10_d_x`]: `x`: `-d g / (x^2 ln 10)`; `d`: `g / (x ln 10)`. Guarded.
#[inline]
pub fn log10_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    let dx = guarded(d, g, || -(d / x / x * T::LOG10_E) * g);
    (log10_d_x(x, d), (dx, <T as Log10>::d_x(&x, &g)))
}

// ---------------------------------------------------------------------------
// Powers and roots
// ---------------------------------------------------------------------------

/// Tangent of `y = sqrt x`, from the output: `d / (2y)`. Guarded.
#[inline]
pub fn sqrt_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Sqrt>::d_x(&y, &d)
}

/// Pullback of [`sqrt_d_x`] (`y >= 0`): `y`: `-d g / (2 y^2)`, `-inf d g` at `y = ±0`;
/// `d`: `g / (2y)`. Guarded.
#[inline]
pub fn sqrt_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || {
        let a = y.abs();
        -(d / (T::TWO * a) / a) * g
    });
    (sqrt_d_x(y, d), (dy, <T as Sqrt>::d_x(&y, &g)))
}

/// Tangent of `y = cbrt x`, from the output: `d / (3 y^2)`. Guarded.
#[inline]
pub fn cbrt_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Cbrt>::d_x(&y, &d)
}

/// Pullback of [`cbrt_d_x`]: `y`: `-2 d g / (3 y^3)`; `d`: `g / (3 y^2)`. Guarded.
#[inline]
pub fn cbrt_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || -(T::of_f64(2.0 / 3.0) * (d / y) / y / y) * g);
    (cbrt_d_x(y, d), (dy, <T as Cbrt>::d_x(&y, &g)))
}

/// Tangent of `x.powi(n)`: `n x^(n-1) d`; `0` for `n = 0`. Guarded.
#[inline]
pub fn powi_d_x<T: ForwardFloat>(x: T, n: i32, d: T) -> T {
    <T as Powi>::d_x(&x, n, &d)
}

/// Pullback of [`powi_d_x`]: `x`: `n (n-1) x^(n-2) d g` (`0` for `n = 0` and `n = 1`);
/// `n`: [`NoGrad`]; `d`: `n x^(n-1) g`. Guarded.
#[inline]
pub fn powi_d_x_pullback<T: ForwardFloat>(x: T, n: i32, d: T, g: T) -> (T, (T, NoGrad, T)) {
    let dx = if n == 0 || n == 1 {
        T::ZERO
    } else {
        guarded(d, g, || {
            let pow = match n.checked_sub(2) {
                Some(m) => x.powi(m),
                // n close to i32::MIN: x^(n-2) = x^n / x / x.
                None => x.powi(n) / x / x,
            };
            let nf = T::of_i32(n);
            d * (nf * (nf - T::ONE)) * pow * g
        })
    };
    (powi_d_x(x, n, d), (dx, NoGrad, <T as Powi>::d_x(&x, n, &g)))
}

/// Tangent of `x.powf(p)` through `x`: `p x^(p-1) d`; `0` for `p = 0`. Guarded.
#[inline]
pub fn powf_d_x<T: ForwardFloat>(x: T, p: T, d: T) -> T {
    <T as Powf>::d_x(&x, &p, &d)
}

/// Pullback of [`powf_d_x`]: `x`: `p (p-1) x^(p-2) d g` (`0` for `p = 0` and `p = 1`);
/// `p`: `x^(p-1) (1 + p ln x) d g` for `x > 0`, `0` for `x <= 0`; `d`: `p x^(p-1) g`. Guarded.
#[inline]
pub fn powf_d_x_pullback<T: ForwardFloat>(x: T, p: T, d: T, g: T) -> (T, (T, T, T)) {
    let dx = if p == T::ZERO || p == T::ONE {
        T::ZERO
    } else {
        guarded(d, g, || d * (p * (p - T::ONE)) * x.powf(p - T::TWO) * g)
    };
    // `x <= 0` is false for NaN, which falls through and propagates.
    let dp = if x <= T::ZERO {
        T::ZERO
    } else {
        guarded(d, g, || d * x.powf(p - T::ONE) * (T::ONE + p * x.ln()) * g)
    };
    (powf_d_x(x, p, d), (dx, dp, <T as Powf>::d_x(&x, &p, &g)))
}

/// Tangent of `y = x.powf(p)` through `p`: `y ln(x) d` for `x > 0`, else `0`. Guarded.
#[inline]
pub fn powf_d_p<T: ForwardFloat>(x: T, y: T, d: T) -> T {
    <T as Powf>::d_p(&x, &y, &d)
}

/// Pullback of [`powf_d_p`]: for `x > 0`, `x`: `y d g / x`; `y`: `ln(x) d g`; both `0`
/// for `x <= 0`; `d`: `y ln(x) g` (`0` for `x <= 0`). Guarded.
#[inline]
pub fn powf_d_p_pullback<T: ForwardFloat>(x: T, y: T, d: T, g: T) -> (T, (T, T, T)) {
    let (dx, dy) = if x <= T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        (
            guarded(d, g, || d * (y / x) * g),
            guarded(d, g, || d * x.ln() * g),
        )
    };
    (powf_d_p(x, y, d), (dx, dy, <T as Powf>::d_p(&x, &y, &g)))
}

/// Tangent of `y = x.hypot(other)` through `x`: `x d / y`; `0` at `y = 0`.
#[inline]
pub fn hypot_d_x<T: ForwardFloat>(x: T, y: T, d: T) -> T {
    <T as Hypot>::d_x(&x, &y, &d)
}

/// Pullback of [`hypot_d_x`]: `x`: `d g / y`; `y`: `-x d g / y^2`; `d`: `x g / y`;
/// all `0` at `y = 0`. Guarded (`1 / y` is unbounded).
#[inline]
pub fn hypot_d_x_pullback<T: ForwardFloat>(x: T, y: T, d: T, g: T) -> (T, (T, T, T)) {
    let (dx, dy) = if y == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        (
            guarded(d, g, || d / y * g),
            guarded(d, g, || -(d * (x / y) / y) * g),
        )
    };
    (hypot_d_x(x, y, d), (dx, dy, <T as Hypot>::d_x(&x, &y, &g)))
}

/// Tangent of `y = x.hypot(other)` through `other`: `other d / y`; `0` at `y = 0`.
#[inline]
pub fn hypot_d_other<T: ForwardFloat>(other: T, y: T, d: T) -> T {
    <T as Hypot>::d_other(&other, &y, &d)
}

/// Pullback of [`hypot_d_other`]: `other`: `d g / y`; `y`: `-other d g / y^2`;
/// `d`: `other g / y`; all `0` at `y = 0`. Guarded (`1 / y` is unbounded).
#[inline]
pub fn hypot_d_other_pullback<T: ForwardFloat>(other: T, y: T, d: T, g: T) -> (T, (T, T, T)) {
    let (dother, dy) = if y == T::ZERO {
        (T::ZERO, T::ZERO)
    } else {
        (
            guarded(d, g, || d / y * g),
            guarded(d, g, || -(d * (other / y) / y) * g),
        )
    };
    (
        hypot_d_other(other, y, d),
        (dother, dy, <T as Hypot>::d_other(&other, &y, &g)),
    )
}

/// Tangent of `y = recip x`, from the output: `-y^2 d`. Guarded.
#[inline]
pub fn recip_d_x<T: ForwardFloat>(y: T, d: T) -> T {
    <T as Recip>::d_x(&y, &d)
}

/// Pullback of [`recip_d_x`]: `y`: `-2 y d g`; `d`: `-y^2 g`. Guarded.
#[inline]
pub fn recip_d_x_pullback<T: ForwardFloat>(y: T, d: T, g: T) -> (T, (T, T)) {
    let dy = guarded(d, g, || -(T::TWO * y * d) * g);
    (recip_d_x(y, d), (dy, <T as Recip>::d_x(&y, &g)))
}

/// Tangent of `x.mul_add(a, b)` through `x`: `a d`.
#[inline]
pub fn mul_add_d_x<T: ForwardFloat>(a: T, d: T) -> T {
    <T as MulAdd>::d_x(&a, &d)
}

/// Pullback of [`mul_add_d_x`]: `a`: `d g`; `d`: `a g`.
#[inline]
pub fn mul_add_d_x_pullback<T: ForwardFloat>(a: T, d: T, g: T) -> (T, (T, T)) {
    (mul_add_d_x(a, d), (d * g, <T as MulAdd>::d_x(&a, &g)))
}

/// Tangent of `x.mul_add(a, b)` through `a`: `x d`.
#[inline]
pub fn mul_add_d_a<T: ForwardFloat>(x: T, d: T) -> T {
    <T as MulAdd>::d_a(&x, &d)
}

/// Pullback of [`mul_add_d_a`]: `x`: `d g`; `d`: `x g`.
#[inline]
pub fn mul_add_d_a_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    (mul_add_d_a(x, d), (d * g, <T as MulAdd>::d_a(&x, &g)))
}

/// Tangent of `x.mul_add(a, b)` through `b`: `d`.
#[inline]
pub fn mul_add_d_b<T: ForwardFloat>(d: T) -> T {
    <T as MulAdd>::d_b(&d)
}

/// Pullback of [`mul_add_d_b`]: `d`: `g`.
#[inline]
pub fn mul_add_d_b_pullback<T: ForwardFloat>(d: T, g: T) -> (T, (T,)) {
    (mul_add_d_b(d), (<T as MulAdd>::d_b(&g),))
}

// ---------------------------------------------------------------------------
// Piecewise functions: the selection is locally constant, so value slots are 0
// ---------------------------------------------------------------------------

/// Tangent of `abs x`: `signum(x) d`, `0` at `x = ±0`.
#[inline]
pub fn abs_d_x<T: ForwardFloat>(x: T, d: T) -> T {
    <T as Abs>::d_x(&x, &d)
}

/// Pullback of [`abs_d_x`]: `x`: `0`; `d`: `signum(x) g`.
#[inline]
pub fn abs_d_x_pullback<T: ForwardFloat>(x: T, d: T, g: T) -> (T, (T, T)) {
    (abs_d_x(x, d), (T::ZERO, <T as Abs>::d_x(&x, &g)))
}

/// Tangent of `x.max(other)` through `x`: `d` when `max` returns `x`, else `0`.
#[inline]
pub fn max_d_x<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Max>::d_x(&x, &other, &d)
}

/// Pullback of [`max_d_x`]: `x`, `other`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn max_d_x_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        max_d_x(x, other, d),
        (T::ZERO, T::ZERO, <T as Max>::d_x(&x, &other, &g)),
    )
}

/// Tangent of `x.max(other)` through `other`: `d` when `max` returns `other`, else `0`.
#[inline]
pub fn max_d_other<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Max>::d_other(&x, &other, &d)
}

/// Pullback of [`max_d_other`]: `x`, `other`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn max_d_other_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        max_d_other(x, other, d),
        (T::ZERO, T::ZERO, <T as Max>::d_other(&x, &other, &g)),
    )
}

/// Tangent of `x.min(other)` through `x`: `d` when `min` returns `x`, else `0`.
#[inline]
pub fn min_d_x<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Min>::d_x(&x, &other, &d)
}

/// Pullback of [`min_d_x`]: `x`, `other`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn min_d_x_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        min_d_x(x, other, d),
        (T::ZERO, T::ZERO, <T as Min>::d_x(&x, &other, &g)),
    )
}

/// Tangent of `x.min(other)` through `other`: `d` when `min` returns `other`, else `0`.
#[inline]
pub fn min_d_other<T: ForwardFloat>(x: T, other: T, d: T) -> T {
    <T as Min>::d_other(&x, &other, &d)
}

/// Pullback of [`min_d_other`]: `x`, `other`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn min_d_other_pullback<T: ForwardFloat>(x: T, other: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        min_d_other(x, other, d),
        (T::ZERO, T::ZERO, <T as Min>::d_other(&x, &other, &g)),
    )
}

/// Tangent of `x.clamp(lo, hi)` through `x`: `d` when `lo <= x <= hi` (or `x` is NaN), else `0`.
#[inline]
pub fn clamp_d_x<T: ForwardFloat>(x: T, lo: T, hi: T, d: T) -> T {
    <T as Clamp>::d_x(&x, &lo, &hi, &d)
}

/// Pullback of [`clamp_d_x`]: `x`, `lo`, `hi`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn clamp_d_x_pullback<T: ForwardFloat>(x: T, lo: T, hi: T, d: T, g: T) -> (T, (T, T, T, T)) {
    (
        clamp_d_x(x, lo, hi, d),
        (
            T::ZERO,
            T::ZERO,
            T::ZERO,
            <T as Clamp>::d_x(&x, &lo, &hi, &g),
        ),
    )
}

/// Tangent of `x.clamp(lo, hi)` through `lo`: `d` when `x < lo`, else `0`.
#[inline]
pub fn clamp_d_lo<T: ForwardFloat>(x: T, lo: T, d: T) -> T {
    <T as Clamp>::d_lo(&x, &lo, &d)
}

/// Pullback of [`clamp_d_lo`]: `x`, `lo`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn clamp_d_lo_pullback<T: ForwardFloat>(x: T, lo: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        clamp_d_lo(x, lo, d),
        (T::ZERO, T::ZERO, <T as Clamp>::d_lo(&x, &lo, &g)),
    )
}

/// Tangent of `x.clamp(lo, hi)` through `hi`: `d` when `x > hi`, else `0`.
#[inline]
pub fn clamp_d_hi<T: ForwardFloat>(x: T, hi: T, d: T) -> T {
    <T as Clamp>::d_hi(&x, &hi, &d)
}

/// Pullback of [`clamp_d_hi`]: `x`, `hi`: `0`; `d`: the same selection of `g`.
#[inline]
pub fn clamp_d_hi_pullback<T: ForwardFloat>(x: T, hi: T, d: T, g: T) -> (T, (T, T, T)) {
    (
        clamp_d_hi(x, hi, d),
        (T::ZERO, T::ZERO, <T as Clamp>::d_hi(&x, &hi, &g)),
    )
}

/// Tangent of `fract x`: `d` (away from the integers, where `fract` jumps).
#[inline]
pub fn fract_d_x<T: ForwardFloat>(d: T) -> T {
    <T as Fract>::d_x(&d)
}

/// Pullback of [`fract_d_x`]: `d`: `g`.
#[inline]
pub fn fract_d_x_pullback<T: ForwardFloat>(d: T, g: T) -> (T, (T,)) {
    (fract_d_x(d), (<T as Fract>::d_x(&g),))
}

/// Tangent of `to_degrees x`: `d 180 / pi`.
#[inline]
pub fn to_degrees_d_x<T: ForwardFloat>(d: T) -> T {
    <T as ToDegrees>::d_x(&d)
}

/// Pullback of [`to_degrees_d_x`]: `d`: `g 180 / pi`.
#[inline]
pub fn to_degrees_d_x_pullback<T: ForwardFloat>(d: T, g: T) -> (T, (T,)) {
    (to_degrees_d_x(d), (<T as ToDegrees>::d_x(&g),))
}

/// Tangent of `to_radians x`: `d pi / 180`.
#[inline]
pub fn to_radians_d_x<T: ForwardFloat>(d: T) -> T {
    <T as ToRadians>::d_x(&d)
}

/// Pullback of [`to_radians_d_x`]: `d`: `g pi / 180`.
#[inline]
pub fn to_radians_d_x_pullback<T: ForwardFloat>(d: T, g: T) -> (T, (T,)) {
    (to_radians_d_x(d), (<T as ToRadians>::d_x(&g),))
}

// ---------------------------------------------------------------------------
// Division
// ---------------------------------------------------------------------------

/// Tangent of `lhs / rhs` through `lhs`: `d / rhs`. Guarded.
#[inline]
pub fn div_op_d_lhs<T: ForwardFloat>(rhs: T, d: T) -> T {
    <T as DivOp>::d_lhs(&shape_of(&rhs), &rhs, &d)
}

/// Pullback of [`div_op_d_lhs`]: `rhs`: `-d g / rhs^2`; `d`: `g / rhs`. Guarded.
#[inline]
pub fn div_op_d_lhs_pullback<T: ForwardFloat>(rhs: T, d: T, g: T) -> (T, (T, T)) {
    let drhs = guarded(d, g, || -(d / rhs / rhs) * g);
    (div_op_d_lhs(rhs, d), (drhs, div_op_d_lhs(rhs, g)))
}

/// Tangent of `y = lhs / rhs` through `rhs`: `-d y / rhs`. Guarded.
#[inline]
pub fn div_op_d_rhs<T: ForwardFloat>(rhs: T, y: T, d: T) -> T {
    <T as DivOp>::d_rhs(&shape_of(&rhs), &rhs, &y, &d)
}

/// Pullback of [`div_op_d_rhs`]: `rhs`: `d y g / rhs^2`; `y`: `-d g / rhs`;
/// `d`: `-y g / rhs`. Guarded.
#[inline]
pub fn div_op_d_rhs_pullback<T: ForwardFloat>(rhs: T, y: T, d: T, g: T) -> (T, (T, T, T)) {
    let drhs = guarded(d, g, || d / rhs * y / rhs * g);
    let dy = guarded(d, g, || -(d / rhs) * g);
    (div_op_d_rhs(rhs, y, d), (drhs, dy, div_op_d_rhs(rhs, y, g)))
}

// ---------------------------------------------------------------------------
// Jacobians
// ---------------------------------------------------------------------------

/// A dense Jacobian matrix, row-major, in `f64` (also for `f32` functions).
///
/// Row `i` holds the derivatives of output coordinate `i`, column `k` the
/// derivatives with respect to input coordinate `k`; coordinates are the
/// flattened tangents in element order, tuples concatenated in order
/// (see [`Flat`]).
///
/// ```
/// use tapeless_runtime::Jacobian;
///
/// let mut j = Jacobian::new(2, 3);
/// assert_eq!((j.rows(), j.cols()), (2, 3));
/// j.set(1, 2, 4.5);
/// assert_eq!(j[(1, 2)], 4.5);
/// assert_eq!(j.get(1, 2), 4.5);
/// assert_eq!(j.row(1), &[0.0, 0.0, 4.5]);
/// assert_eq!(j.as_slice(), &[0.0, 0.0, 0.0, 0.0, 0.0, 4.5]);
/// assert_eq!(j.to_string(), "[0 0 0  ]\n[0 0 4.5]");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Jacobian {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Jacobian {
    /// A `rows x cols` matrix of zeros.
    pub fn new(rows: usize, cols: usize) -> Self {
        let n = rows
            .checked_mul(cols)
            .expect("tapeless: Jacobian size overflows usize");
        Jacobian {
            rows,
            cols,
            data: vec![0.0; n],
        }
    }

    /// A `rows x cols` matrix from its entries in row-major order.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            Some(data.len()),
            rows.checked_mul(cols),
            "tapeless: a {rows}x{cols} Jacobian needs {rows} * {cols} entries, got {}",
            data.len()
        );
        Jacobian { rows, cols, data }
    }

    /// The number of rows: output coordinates.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns: input coordinates.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The entry in row `i`, column `j`.
    ///
    /// # Panics
    /// If `i >= rows()` or `j >= cols()`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self[(i, j)]
    }

    /// Sets the entry in row `i`, column `j`.
    ///
    /// # Panics
    /// If `i >= rows()` or `j >= cols()`.
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        let k = self.offset(i, j);
        self.data[k] = v;
    }

    /// Row `i`: the derivatives of output coordinate `i`.
    ///
    /// # Panics
    /// If `i >= rows()`.
    pub fn row(&self, i: usize) -> &[f64] {
        assert!(
            i < self.rows,
            "tapeless: row {i} of a Jacobian with {} rows",
            self.rows
        );
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The entries in row-major order.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The entries in row-major order.
    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }

    fn offset(&self, i: usize, j: usize) -> usize {
        assert!(
            i < self.rows && j < self.cols,
            "tapeless: entry ({i}, {j}) of a {}x{} Jacobian",
            self.rows,
            self.cols
        );
        i * self.cols + j
    }
}

impl Index<(usize, usize)> for Jacobian {
    type Output = f64;
    fn index(&self, (i, j): (usize, usize)) -> &f64 {
        &self.data[self.offset(i, j)]
    }
}

/// One row per line, entries in brackets, each column left-aligned to its widest
/// entry; a precision (`{:.3}`) applies to every entry.
impl fmt::Display for Jacobian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rows == 0 || self.cols == 0 {
            return write!(f, "[{}x{} Jacobian]", self.rows, self.cols);
        }
        let cell = |v: f64| match f.precision() {
            Some(p) => format!("{v:.p$}"),
            None => format!("{v}"),
        };
        let cells: Vec<String> = self.data.iter().map(|&v| cell(v)).collect();
        let mut widths = vec![0; self.cols];
        for (k, c) in cells.iter().enumerate() {
            let w = &mut widths[k % self.cols];
            *w = (*w).max(c.chars().count());
        }
        for i in 0..self.rows {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str("[")?;
            for (j, w) in widths.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{:<w$}", cells[i * self.cols + j], w = *w)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// A tangent seen as a flat vector of coordinates, for Jacobians.
///
/// The coordinates are the scalars in element order: an array or `Vec` its
/// elements one after another (row-major for nested ones), a tuple its fields
/// concatenated in order, [`NoGrad`] none. Values are converted to and from
/// `f64`.
pub trait Flat {
    /// The number of coordinates.
    fn flat_len(&self) -> usize;
    /// Writes the coordinates to `out`, whose length is `self.flat_len()`.
    fn write_flat(&self, out: &mut [f64]);
    /// Sets coordinate `k` (`k < self.flat_len()`) to `v`.
    fn set_flat(&mut self, k: usize, v: f64);
}

macro_rules! flat_float {
    ($($t:ident)*) => {$(
        impl Flat for $t {
            #[inline]
            fn flat_len(&self) -> usize {
                1
            }
            #[inline]
            fn write_flat(&self, out: &mut [f64]) {
                out[0] = *self as f64;
            }
            #[inline]
            fn set_flat(&mut self, k: usize, v: f64) {
                assert_eq!(k, 0, "tapeless: coordinate {k} of a scalar tangent");
                *self = v as $t;
            }
        }
    )*};
}
flat_float!(f32 f64);

impl Flat for NoGrad {
    #[inline]
    fn flat_len(&self) -> usize {
        0
    }
    #[inline]
    fn write_flat(&self, _out: &mut [f64]) {}
    fn set_flat(&mut self, k: usize, _v: f64) {
        panic!("tapeless: coordinate {k} of a tangent with no coordinates (NoGrad)")
    }
}

/// Writes the elements of a sequence one after another.
fn write_seq<T: Flat>(items: &[T], out: &mut [f64]) {
    let mut at = 0;
    for e in items {
        let n = e.flat_len();
        e.write_flat(&mut out[at..at + n]);
        at += n;
    }
}

/// Sets coordinate `k` of a sequence: the element holding it, at its offset.
fn set_seq<T: Flat>(items: &mut [T], mut k: usize, v: f64) {
    let total: usize = items.iter().map(Flat::flat_len).sum();
    for e in items.iter_mut() {
        let n = e.flat_len();
        if k < n {
            return e.set_flat(k, v);
        }
        k -= n;
    }
    panic!(
        "tapeless: coordinate {} of a tangent with {total} coordinates",
        k + total
    )
}

impl<T: Flat, const N: usize> Flat for [T; N] {
    fn flat_len(&self) -> usize {
        self.iter().map(Flat::flat_len).sum()
    }
    fn write_flat(&self, out: &mut [f64]) {
        write_seq(self, out)
    }
    fn set_flat(&mut self, k: usize, v: f64) {
        set_seq(self, k, v)
    }
}

impl<T: Flat> Flat for Vec<T> {
    fn flat_len(&self) -> usize {
        self.iter().map(Flat::flat_len).sum()
    }
    fn write_flat(&self, out: &mut [f64]) {
        write_seq(self, out)
    }
    fn set_flat(&mut self, k: usize, v: f64) {
        set_seq(self, k, v)
    }
}

macro_rules! flat_tuple {
    ($(($($name:ident $idx:tt),+))*) => {$(
        impl<$($name: Flat),+> Flat for ($($name,)+) {
            fn flat_len(&self) -> usize {
                0 $(+ self.$idx.flat_len())+
            }
            fn write_flat(&self, out: &mut [f64]) {
                let mut at = 0;
                $(
                    let n = self.$idx.flat_len();
                    self.$idx.write_flat(&mut out[at..at + n]);
                    at += n;
                )+
                let _ = at;
            }
            fn set_flat(&mut self, k: usize, v: f64) {
                let total = self.flat_len();
                let mut k_left = k;
                $(
                    let n = self.$idx.flat_len();
                    if k_left < n {
                        return self.$idx.set_flat(k_left, v);
                    }
                    k_left -= n;
                )+
                let _ = k_left;
                panic!("tapeless: coordinate {k} of a tangent with {total} coordinates")
            }
        }
    )*};
}
flat_tuple! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
}

/// The number of coordinates of a tangent.
#[inline]
pub fn flat_len<T: Flat + ?Sized>(t: &T) -> usize {
    t.flat_len()
}

/// The zero tangent with the full shape of `x` (a `Vec` of zeros as long as `x`, ...):
/// the tangent of a value no derivative flows into.
#[inline]
pub fn zero<X: Differentiable + ?Sized>(x: &X) -> X::Tangent {
    x.zero_tangent()
}

/// The `k`-th basis tangent at `x`: zero, of `x`'s shape, with `1` at flat coordinate `k`.
///
/// # Panics
/// If `k` is not below the number of coordinates of `x`'s tangent.
pub fn basis<X: Differentiable + ?Sized>(x: &X, k: usize) -> X::Tangent
where
    X::Tangent: Flat,
{
    let mut t = x.zero_tangent();
    t.set_flat(k, 1.0);
    t
}

/// Checks that a tangent fills `expected` coordinates; a tangent with none is a
/// shapeless zero (an empty `Vec`) and stands for zeros.
fn check_len(n: usize, expected: usize, what: &str) -> bool {
    if n == 0 {
        return false;
    }
    assert_eq!(
        n, expected,
        "tapeless: a tangent with {n} coordinates for a Jacobian {what} of {expected}"
    );
    true
}

/// Writes the coordinates of `t` to row `i` of `j` (reverse mode: the pullback
/// of the `i`-th output basis cotangent). A tangent with no coordinates (a
/// shapeless zero) writes zeros.
///
/// # Panics
/// If `i >= j.rows()`, or `t` has coordinates but not `j.cols()` of them.
pub fn write_row<T: Flat + ?Sized>(j: &mut Jacobian, i: usize, t: &T) {
    assert!(
        i < j.rows,
        "tapeless: row {i} of a Jacobian with {} rows",
        j.rows
    );
    let cols = j.cols;
    let row = &mut j.data[i * cols..(i + 1) * cols];
    if check_len(t.flat_len(), cols, "row") {
        t.write_flat(row);
    } else {
        row.fill(0.0);
    }
}

/// Writes the coordinates of `t` to column `k` of `j` (forward mode: the
/// pushforward of the `k`-th input basis tangent). A tangent with no
/// coordinates (a shapeless zero) writes zeros.
///
/// # Panics
/// If `k >= j.cols()`, or `t` has coordinates but not `j.rows()` of them.
pub fn write_col<T: Flat + ?Sized>(j: &mut Jacobian, k: usize, t: &T) {
    assert!(
        k < j.cols,
        "tapeless: column {k} of a Jacobian with {} columns",
        j.cols
    );
    let (rows, cols) = (j.rows, j.cols);
    if check_len(t.flat_len(), rows, "column") {
        let mut col = vec![0.0; rows];
        t.write_flat(&mut col);
        for (i, v) in col.into_iter().enumerate() {
            j.data[i * cols + k] = v;
        }
    } else {
        for i in 0..rows {
            j.data[i * cols + k] = 0.0;
        }
    }
}
