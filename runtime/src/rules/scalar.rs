//! Derivative rules for the scalar math of `f32` and `f64`.
//!
//! One trait per primitive. The operators (`+ - * /`, unary `-`, `as`) are
//! traits generic over the right operand, so tensor and mixed scalar/tensor
//! impls can be added elsewhere; the methods (`sin`, `powf`, `max`, ...) are
//! traits named after the method in CamelCase with `Self` the float type.
//!
//! In the signatures, `x` is the receiver (first operand), `y` the primal output
//! and `d` the cotangent of the output. Each function returns the cotangent
//! contribution for one operand (`d_x` for `x`, `d_other` for `other`, ...).
//! Shapes are passed as [`ShapeOf`] where a rule needs only the shape of an
//! operand (for `f32` and `f64` the shape is `()`, so it costs nothing).
//!
//! `signum`, `floor`, `ceil`, `round` and `trunc` have a zero derivative almost
//! everywhere; the macro treats their result as a constant, so they have no rule.
//!
//! # Conventions at the edges
//!
//! A *guarded* rule is one whose derivative can be infinite for finite operands
//! (at a singular point, at a pole, or by overflow, as in `exp(1000)`). A guarded
//! rule returns exactly `0` when `d == 0`, before it looks at the operands, so an
//! intermediate that does not influence the output (a `max` loser, a term
//! multiplied by zero) never injects `0 * inf = NaN` into a gradient. This wins
//! over NaN operands: with `d == 0` a guarded rule returns `0` even for NaN.
//!
//! Guarded: [`DivOp`] (both operands), [`Asin`], [`Acos`], [`Atan2`], [`Sinh`],
//! [`Cosh`], [`Acosh`], [`Atanh`], [`Exp`], [`Exp2`], [`ExpM1`], [`Ln`], [`Ln1p`],
//! [`Log2`], [`Log10`], [`Log`], [`Sqrt`], [`Cbrt`], [`Powi`], [`Powf`], [`Recip`].
//!
//! Every other rule is its plain formula, whose factors are bounded for finite
//! operands: a NaN that enters the formula propagates, even with `d == 0`.
//! With `d != 0`, every rule follows IEEE arithmetic (`d / 0 = ±inf`).
//!
//! | Rule | Where | Contribution |
//! |---|---|---|
//! | any guarded rule | `d == 0` | `0` (never NaN) |
//! | `Sqrt` | `x = ±0` (`y = ±0`) | `+inf * d`: the one-sided derivative, also for `-0.0` |
//! | `Cbrt` | `x = 0` | `±inf` (IEEE) |
//! | `Ln`, `Log2`, `Log10`, `Log::d_x` | `x = 0` | `±inf` (IEEE) |
//! | `Ln1p` | `x = -1` | `±inf` (IEEE) |
//! | `Asin`, `Acos` | `x = ±1` | `±inf` (IEEE) |
//! | `Atanh` | `x = ±1` | `±inf` (IEEE) |
//! | `Acosh` | `x = 1` | `±inf` (IEEE) |
//! | `Atan2` | `x = other = 0` (either sign) | `0` for both operands |
//! | `Hypot` | `y = 0` (both operands zero) | `0` for both operands |
//! | `Abs` | `x = ±0` | `0` |
//! | `Powi` | `n = 0` | `0` (also at `x = 0`, where the formula is `0 * inf`) |
//! | `Powf::d_x` | `p = 0` | `0` (`x^0` is the constant `1`, also at `x = 0`) |
//! | `Powf::d_x` | `x < 0`, integer `p` | exact: `p * x^(p-1)` with the sign of the integer power |
//! | `Powf::d_p` | `x = ±0` | `0`: the limit of `y ln x` as `x -> 0+` for `p > 0` |
//! | `Powf::d_p` | `x < 0` | `0` by convention (`x^p` is only defined for integer `p` there) |
//! | `Max`, `Min` | `x == other` (including `0.0` and `-0.0`) | all of `d` to `x`, `0` to `other` |
//! | `Max`, `Min` | one operand NaN | all of `d` to the other operand (the one `f64::max` returns) |
//! | `Max`, `Min` | both NaN | all of `d` to `x` |
//! | `Clamp` | `x == lo` or `x == hi` | all of `d` to `x` |
//! | `Clamp` | `x` NaN | all of `d` to `x` (`clamp` returns `x`) |
//!
//! Exactly one operand of `max`, `min` and `clamp` receives `d`; the others get `0`.

use crate::__private::{ShapeOf, Shaped};

// ---------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------

/// `lhs + rhs`: `d/dlhs = 1`, `d/drhs = 1`.
pub trait AddOp<Rhs: Shaped = Self>: Shaped + Sized {
    /// The type of `lhs + rhs`.
    type Out;
    /// `d/dlhs (lhs + rhs) = 1`: the contribution is `d`.
    fn d_lhs(lhs: &ShapeOf<Self>, rhs: &ShapeOf<Rhs>, d: &Self::Out) -> Self;
    /// `d/drhs (lhs + rhs) = 1`: the contribution is `d`.
    fn d_rhs(lhs: &ShapeOf<Self>, rhs: &ShapeOf<Rhs>, d: &Self::Out) -> Rhs;
}

/// `lhs - rhs`: `d/dlhs = 1`, `d/drhs = -1`.
pub trait SubOp<Rhs: Shaped = Self>: Shaped + Sized {
    /// The type of `lhs - rhs`.
    type Out;
    /// `d/dlhs (lhs - rhs) = 1`: the contribution is `d`.
    fn d_lhs(lhs: &ShapeOf<Self>, rhs: &ShapeOf<Rhs>, d: &Self::Out) -> Self;
    /// `d/drhs (lhs - rhs) = -1`: the contribution is `-d`.
    fn d_rhs(lhs: &ShapeOf<Self>, rhs: &ShapeOf<Rhs>, d: &Self::Out) -> Rhs;
}

/// `lhs * rhs`: `d/dlhs = rhs`, `d/drhs = lhs`.
pub trait MulOp<Rhs: Shaped = Self>: Shaped + Sized {
    /// The type of `lhs * rhs`.
    type Out;
    /// `d/dlhs (lhs * rhs) = rhs`: the contribution is `d * rhs`.
    fn d_lhs(lhs: &ShapeOf<Self>, rhs: &Rhs, d: &Self::Out) -> Self;
    /// `d/drhs (lhs * rhs) = lhs`: the contribution is `d * lhs`.
    fn d_rhs(lhs: &Self, rhs: &ShapeOf<Rhs>, d: &Self::Out) -> Rhs;
}

/// `y = lhs / rhs`: `d/dlhs = 1 / rhs`, `d/drhs = -lhs / rhs^2 = -y / rhs`. Guarded.
pub trait DivOp<Rhs = Self>: Shaped + Sized {
    /// The type of `lhs / rhs`.
    type Out;
    /// `d/dlhs (lhs / rhs) = 1 / rhs`: the contribution is `d / rhs` (`0` when `d == 0`).
    fn d_lhs(lhs: &ShapeOf<Self>, rhs: &Rhs, d: &Self::Out) -> Self;
    /// `d/drhs (lhs / rhs) = -y / rhs`: the contribution is `-d * y / rhs` (`0` when `d == 0`).
    fn d_rhs(lhs: &ShapeOf<Self>, rhs: &Rhs, y: &Self::Out, d: &Self::Out) -> Rhs;
}

/// `-x`: `d/dx (-x) = -1`.
pub trait NegOp: Sized {
    /// `d/dx (-x) = -1`: the contribution is `-d`.
    fn d_x(d: &Self) -> Self;
}

/// `x as T` between float types: `d/dx (x as T) = 1`, the cotangent converted back.
pub trait CastTo<T>: Shaped + Sized {
    /// `d/dx (x as T) = 1`: the contribution is `d` converted to the type of `x`.
    fn d_x(x: &ShapeOf<Self>, d: &T) -> Self;
}

// ---------------------------------------------------------------------------
// Trigonometry
// ---------------------------------------------------------------------------

/// `d/dx sin x = cos x`.
pub trait Sin: Sized {
    /// `d/dx sin x = cos x`: the contribution is `d cos x`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx cos x = -sin x`.
pub trait Cos: Sized {
    /// `d/dx cos x = -sin x`: the contribution is `-d sin x`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `y = tan x`: `dy/dx = 1 + tan^2 x = 1 + y^2`.
pub trait Tan: Sized {
    /// `dy/dx = 1 + y^2`: the contribution is `d (1 + y^2)`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `d/dx asin x = 1 / sqrt(1 - x^2)`. Guarded (infinite at `x = ±1`).
pub trait Asin: Sized {
    /// `d/dx asin x = 1 / sqrt(1 - x^2)`: the contribution is `d / sqrt(1 - x^2)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx acos x = -1 / sqrt(1 - x^2)`. Guarded (infinite at `x = ±1`).
pub trait Acos: Sized {
    /// `d/dx acos x = -1 / sqrt(1 - x^2)`: the contribution is `-d / sqrt(1 - x^2)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx atan x = 1 / (1 + x^2)`.
pub trait Atan: Sized {
    /// `d/dx atan x = 1 / (1 + x^2)`: the contribution is `d / (1 + x^2)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `x.atan2(other)`, the angle of the point `(other, x)` (`x` is the y-coordinate):
/// `d/dx = other / (x^2 + other^2)`, `d/dother = -x / (x^2 + other^2)`; both `0`
/// at the origin. Guarded.
pub trait Atan2: Sized {
    /// `d/dx atan2(x, other) = other / (x^2 + other^2)`: the contribution is
    /// `d other / (x^2 + other^2)`, `0` at `x = other = 0`.
    fn d_x(x: &Self, other: &Self, d: &Self) -> Self;
    /// `d/dother atan2(x, other) = -x / (x^2 + other^2)`: the contribution is
    /// `-d x / (x^2 + other^2)`, `0` at `x = other = 0`.
    fn d_other(x: &Self, other: &Self, d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// Hyperbolic functions
// ---------------------------------------------------------------------------

/// `d/dx sinh x = cosh x`. Guarded (`cosh` overflows).
pub trait Sinh: Sized {
    /// `d/dx sinh x = cosh x`: the contribution is `d cosh x`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx cosh x = sinh x`. Guarded (`sinh` overflows).
pub trait Cosh: Sized {
    /// `d/dx cosh x = sinh x`: the contribution is `d sinh x`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `y = tanh x`: `dy/dx = 1 - tanh^2 x = 1 - y^2`.
pub trait Tanh: Sized {
    /// `dy/dx = 1 - y^2`: the contribution is `d (1 - y^2)`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `d/dx asinh x = 1 / sqrt(x^2 + 1)`.
pub trait Asinh: Sized {
    /// `d/dx asinh x = 1 / sqrt(x^2 + 1)`: the contribution is `d / sqrt(x^2 + 1)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx acosh x = 1 / sqrt(x^2 - 1)`. Guarded (infinite at `x = 1`).
pub trait Acosh: Sized {
    /// `d/dx acosh x = 1 / sqrt(x^2 - 1)`: the contribution is `d / sqrt(x^2 - 1)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx atanh x = 1 / (1 - x^2)`. Guarded (infinite at `x = ±1`).
pub trait Atanh: Sized {
    /// `d/dx atanh x = 1 / (1 - x^2)`: the contribution is `d / (1 - x^2)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// Exponentials and logarithms
// ---------------------------------------------------------------------------

/// `y = e^x`: `dy/dx = e^x = y`. Guarded (`y` overflows).
pub trait Exp: Sized {
    /// `dy/dx = y`: the contribution is `d y`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `y = 2^x`: `dy/dx = 2^x ln 2 = y ln 2`. Guarded (`y` overflows).
pub trait Exp2: Sized {
    /// `dy/dx = y ln 2`: the contribution is `d y ln 2`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `y = e^x - 1`: `dy/dx = e^x = y + 1`. Guarded (`y` overflows).
pub trait ExpM1: Sized {
    /// `dy/dx = y + 1`: the contribution is `d (y + 1)`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `d/dx ln x = 1 / x`. Guarded (infinite at `x = 0`).
pub trait Ln: Sized {
    /// `d/dx ln x = 1 / x`: the contribution is `d / x`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx ln(1 + x) = 1 / (1 + x)`. Guarded (infinite at `x = -1`).
pub trait Ln1p: Sized {
    /// `d/dx ln(1 + x) = 1 / (1 + x)`: the contribution is `d / (1 + x)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx log2 x = 1 / (x ln 2)`. Guarded (infinite at `x = 0`).
pub trait Log2: Sized {
    /// `d/dx log2 x = 1 / (x ln 2)`: the contribution is `d / (x ln 2)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `d/dx log10 x = 1 / (x ln 10)`. Guarded (infinite at `x = 0`).
pub trait Log10: Sized {
    /// `d/dx log10 x = 1 / (x ln 10)`: the contribution is `d / (x ln 10)`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `x.log(base) = ln x / ln base`: `d/dx = 1 / (x ln base)`,
/// `d/dbase = -ln x / (base ln^2 base)`. Guarded.
pub trait Log: Sized {
    /// `d/dx log_base x = 1 / (x ln base)`: the contribution is `d / (x ln base)`.
    fn d_x(x: &Self, base: &Self, d: &Self) -> Self;
    /// `d/dbase log_base x = -ln x / (base ln^2 base)`: the contribution is
    /// `-d ln x / (base ln^2 base)`.
    fn d_base(x: &Self, base: &Self, d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// Powers and roots
// ---------------------------------------------------------------------------

/// `y = sqrt x`: `dy/dx = 1 / (2 sqrt x) = 1 / (2y)`. Guarded (infinite at `x = 0`).
pub trait Sqrt: Sized {
    /// `dy/dx = 1 / (2y)`: the contribution is `d / (2y)`, from the output `y`;
    /// `+inf * d` at `y = ±0`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `y = cbrt x`: `dy/dx = 1 / (3 cbrt^2 x) = 1 / (3y^2)`. Guarded (infinite at `x = 0`).
pub trait Cbrt: Sized {
    /// `dy/dx = 1 / (3y^2)`: the contribution is `d / (3y^2)`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `d/dx x^n = n x^(n-1)` for an integer `n` (the exponent is not differentiated).
/// Guarded (infinite at `x = 0` for `n < 1`).
pub trait Powi: Sized {
    /// `d/dx x^n = n x^(n-1)`: the contribution is `d n x^(n-1)`; `0` for `n = 0`,
    /// exact in sign for negative `x`.
    fn d_x(x: &Self, n: i32, d: &Self) -> Self;
}

/// `y = x.powf(p) = x^p`: `d/dx = p x^(p-1)`, `d/dp = x^p ln x = y ln x`. Guarded.
///
/// The exponent's type is [`Exponent`](Powf::Exponent): the float itself for
/// `f32`/`f64`, the element type `f32` for a tensor (one exponent for every
/// element, whose cotangent sums over the elements).
pub trait Powf: Sized {
    /// The type of the exponent `p` (and of its cotangent).
    type Exponent;
    /// `d/dx x^p = p x^(p-1)`: the contribution is `d p x^(p-1)`; `0` for `p = 0`,
    /// exact for negative `x` and integer `p`.
    fn d_x(x: &Self, p: &Self::Exponent, d: &Self) -> Self;
    /// `d/dp x^p = y ln x`: the contribution is `d y ln x` for `x > 0`, and `0` for
    /// `x <= 0` (the limit at `0+`; a convention for negative `x`); summed over
    /// the elements for a tensor `x`.
    fn d_p(x: &Self, y: &Self, d: &Self) -> Self::Exponent;
}

/// `y = x.hypot(other) = sqrt(x^2 + other^2)`: `d/dx = x / y`, `d/dother = other / y`;
/// both `0` at `y = 0`.
pub trait Hypot: Sized {
    /// `d/dx hypot(x, other) = x / y`: the contribution is `d x / y`, `0` when `y = 0`.
    fn d_x(x: &Self, y: &Self, d: &Self) -> Self;
    /// `d/dother hypot(x, other) = other / y`: the contribution is `d other / y`,
    /// `0` when `y = 0`.
    fn d_other(other: &Self, y: &Self, d: &Self) -> Self;
}

/// `y = 1 / x`: `dy/dx = -1 / x^2 = -y^2`. Guarded (infinite at `x = 0`).
pub trait Recip: Sized {
    /// `dy/dx = -y^2`: the contribution is `-d y^2`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `x.mul_add(a, b) = x a + b`: `d/dx = a`, `d/da = x`, `d/db = 1`.
pub trait MulAdd: Sized {
    /// `d/dx (x a + b) = a`: the contribution is `d a`.
    fn d_x(a: &Self, d: &Self) -> Self;
    /// `d/da (x a + b) = x`: the contribution is `d x`.
    fn d_a(x: &Self, d: &Self) -> Self;
    /// `d/db (x a + b) = 1`: the contribution is `d`.
    fn d_b(d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// Piecewise functions
// ---------------------------------------------------------------------------

/// `d/dx |x| = signum x`, with `|x|'(0) = 0` (also at `-0.0`).
pub trait Abs: Sized {
    /// `d/dx |x| = signum x`: the contribution is `d signum x`, `0` at `x = ±0`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `x.max(other)`: the derivative is `1` for the operand `max` returns and `0`
/// for the other; ties go to `x`, and a NaN operand loses (`max` returns the other).
pub trait Max: Sized {
    /// `d/dx max(x, other)`: `d` when `x >= other` or `other` is NaN, else `0`.
    fn d_x(x: &Self, other: &Self, d: &Self) -> Self;
    /// `d/dother max(x, other)`: `d` when `x < other` or only `x` is NaN, else `0`.
    fn d_other(x: &Self, other: &Self, d: &Self) -> Self;
}

/// `x.min(other)`: the derivative is `1` for the operand `min` returns and `0`
/// for the other; ties go to `x`, and a NaN operand loses (`min` returns the other).
pub trait Min: Sized {
    /// `d/dx min(x, other)`: `d` when `x <= other` or `other` is NaN, else `0`.
    fn d_x(x: &Self, other: &Self, d: &Self) -> Self;
    /// `d/dother min(x, other)`: `d` when `x > other` or only `x` is NaN, else `0`.
    fn d_other(x: &Self, other: &Self, d: &Self) -> Self;
}

/// `x.clamp(lo, hi)`: the derivative is `1` for the operand `clamp` returns
/// (`x` when `lo <= x <= hi`, `lo` when `x < lo`, `hi` when `x > hi`) and `0` for
/// the others. At `x == lo` or `x == hi`, and for NaN `x`, `d` goes to `x`.
///
/// The bounds' type is [`Bound`](Clamp::Bound): the float itself for
/// `f32`/`f64`, the element type `f32` for a tensor (the same bounds for every
/// element; their cotangents sum over the elements clamped to them).
pub trait Clamp: Sized {
    /// The type of the bounds `lo` and `hi` (and of their cotangents).
    type Bound;
    /// `d/dx clamp(x, lo, hi)`: `d` when `lo <= x <= hi` (or `x` is NaN), else `0`.
    fn d_x(x: &Self, lo: &Self::Bound, hi: &Self::Bound, d: &Self) -> Self;
    /// `d/dlo clamp(x, lo, hi)`: `d` when `x < lo`, else `0` (summed over a tensor's elements).
    fn d_lo(x: &Self, lo: &Self::Bound, d: &Self) -> Self::Bound;
    /// `d/dhi clamp(x, lo, hi)`: `d` when `x > hi`, else `0` (summed over a tensor's elements).
    fn d_hi(x: &Self, hi: &Self::Bound, d: &Self) -> Self::Bound;
}

/// `d/dx fract x = 1` (away from the integers, where `fract` jumps).
pub trait Fract: Sized {
    /// `d/dx fract x = 1`: the contribution is `d`.
    fn d_x(d: &Self) -> Self;
}

/// `d/dx to_degrees x = 180 / pi`.
pub trait ToDegrees: Sized {
    /// `d/dx (x 180 / pi) = 180 / pi`: the contribution is `d 180 / pi`.
    fn d_x(d: &Self) -> Self;
}

/// `d/dx to_radians x = pi / 180`.
pub trait ToRadians: Sized {
    /// `d/dx (x pi / 180) = pi / 180`: the contribution is `d pi / 180`.
    fn d_x(d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// The impls for f32 and f64
// ---------------------------------------------------------------------------

macro_rules! float_rules {
    ($($t:ident)*) => {$(
        impl AddOp for $t {
            type Out = $t;
            #[inline]
            fn d_lhs(_lhs: &ShapeOf<$t>, _rhs: &ShapeOf<$t>, d: &$t) -> $t {
                *d
            }
            #[inline]
            fn d_rhs(_lhs: &ShapeOf<$t>, _rhs: &ShapeOf<$t>, d: &$t) -> $t {
                *d
            }
        }

        impl SubOp for $t {
            type Out = $t;
            #[inline]
            fn d_lhs(_lhs: &ShapeOf<$t>, _rhs: &ShapeOf<$t>, d: &$t) -> $t {
                *d
            }
            #[inline]
            fn d_rhs(_lhs: &ShapeOf<$t>, _rhs: &ShapeOf<$t>, d: &$t) -> $t {
                -*d
            }
        }

        impl MulOp for $t {
            type Out = $t;
            #[inline]
            fn d_lhs(_lhs: &ShapeOf<$t>, rhs: &$t, d: &$t) -> $t {
                *d * *rhs
            }
            #[inline]
            fn d_rhs(lhs: &$t, _rhs: &ShapeOf<$t>, d: &$t) -> $t {
                *d * *lhs
            }
        }

        impl DivOp for $t {
            type Out = $t;
            #[inline]
            fn d_lhs(_lhs: &ShapeOf<$t>, rhs: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d / *rhs
            }
            #[inline]
            fn d_rhs(_lhs: &ShapeOf<$t>, rhs: &$t, y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                -(*d / *rhs) * *y
            }
        }

        impl NegOp for $t {
            #[inline]
            fn d_x(d: &$t) -> $t {
                -*d
            }
        }

        impl Sin for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                *d * x.cos()
            }
        }

        impl Cos for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                -(*d * x.sin())
            }
        }

        impl Tan for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                // `tan` of a finite float never reaches a pole, so `1 + y^2` is finite.
                *d * (1.0 + *y * *y)
            }
        }

        impl Asin for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                // (1 - x)(1 + x) is exact-ish near ±1, where 1 - x^2 cancels.
                *d / ((1.0 - *x) * (1.0 + *x)).sqrt()
            }
        }

        impl Acos for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                -*d / ((1.0 - *x) * (1.0 + *x)).sqrt()
            }
        }

        impl Atan for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                *d / (1.0 + *x * *x)
            }
        }

        impl Atan2 for $t {
            #[inline]
            fn d_x(x: &$t, other: &$t, d: &$t) -> $t {
                if *d == 0.0 || (*x == 0.0 && *other == 0.0) {
                    return 0.0;
                }
                let r2 = *x * *x + *other * *other;
                if r2.is_normal() {
                    *d * (*other / r2)
                } else {
                    // x^2 + other^2 overflowed or underflowed: scale through hypot.
                    let r = x.hypot(*other);
                    *d * (*other / r) / r
                }
            }
            #[inline]
            fn d_other(x: &$t, other: &$t, d: &$t) -> $t {
                if *d == 0.0 || (*x == 0.0 && *other == 0.0) {
                    return 0.0;
                }
                let r2 = *x * *x + *other * *other;
                if r2.is_normal() {
                    -(*d * (*x / r2))
                } else {
                    let r = x.hypot(*other);
                    -(*d * (*x / r) / r)
                }
            }
        }

        impl Sinh for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d * x.cosh()
            }
        }

        impl Cosh for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d * x.sinh()
            }
        }

        impl Tanh for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                *d * ((1.0 - *y) * (1.0 + *y))
            }
        }

        impl super::Sigmoid for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                *d * (*y * (1.0 - *y))
            }
        }

        impl Asinh for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                let a = x.abs();
                // Beyond 1/EPSILON, x^2 + 1 rounds to x^2 (and would overflow later).
                let r = if a < 1.0 / $t::EPSILON { (*x * *x + 1.0).sqrt() } else { a };
                *d / r
            }
        }

        impl Acosh for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                // sqrt(x - 1) sqrt(x + 1): accurate near 1, no overflow for large x.
                *d / ((*x - 1.0).sqrt() * (*x + 1.0).sqrt())
            }
        }

        impl Atanh for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d / ((1.0 - *x) * (1.0 + *x))
            }
        }

        impl Exp for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d * *y
            }
        }

        impl Exp2 for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d * (*y * core::$t::consts::LN_2)
            }
        }

        impl ExpM1 for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d * (*y + 1.0)
            }
        }

        impl Ln for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d / *x
            }
        }

        impl Ln1p for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d / (1.0 + *x)
            }
        }

        impl Log2 for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                (*d / *x) * core::$t::consts::LOG2_E
            }
        }

        impl Log10 for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                (*d / *x) * core::$t::consts::LOG10_E
            }
        }

        impl Log for $t {
            #[inline]
            fn d_x(x: &$t, base: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                (*d / *x) / base.ln()
            }
            #[inline]
            fn d_base(x: &$t, base: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                let lb = base.ln();
                -(*d / *base) * (x.ln() / lb) / lb
            }
        }

        impl Sqrt for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                // sqrt(-0.0) = -0.0; the one-sided derivative at 0 is +inf either way.
                *d / (2.0 * y.abs())
            }
        }

        impl Cbrt for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                *d / (3.0 * *y * *y)
            }
        }

        impl Powi for $t {
            #[inline]
            fn d_x(x: &$t, n: i32, d: &$t) -> $t {
                if n == 0 || *d == 0.0 {
                    return 0.0;
                }
                let pow = match n.checked_sub(1) {
                    Some(m) => x.powi(m),
                    // n = i32::MIN: x^(n-1) = x^n / x.
                    None => x.powi(n) / *x,
                };
                *d * n as $t * pow
            }
        }

        impl Powf for $t {
            type Exponent = $t;
            #[inline]
            fn d_x(x: &$t, p: &$t, d: &$t) -> $t {
                if *d == 0.0 || *p == 0.0 {
                    return 0.0;
                }
                // For integer p, p - 1 is an integer too (exactly, for |p| < 2^MANTISSA),
                // so powf is defined and exact in sign for negative x.
                *d * *p * x.powf(*p - 1.0)
            }
            #[inline]
            fn d_p(x: &$t, y: &$t, d: &$t) -> $t {
                // `x <= 0` is false for NaN, which falls through and propagates.
                if *d == 0.0 || *x <= 0.0 {
                    return 0.0;
                }
                *d * *y * x.ln()
            }
        }

        impl Hypot for $t {
            #[inline]
            fn d_x(x: &$t, y: &$t, d: &$t) -> $t {
                if *y == 0.0 {
                    return 0.0;
                }
                *d * (*x / *y)
            }
            #[inline]
            fn d_other(other: &$t, y: &$t, d: &$t) -> $t {
                if *y == 0.0 {
                    return 0.0;
                }
                *d * (*other / *y)
            }
        }

        impl Recip for $t {
            #[inline]
            fn d_x(y: &$t, d: &$t) -> $t {
                if *d == 0.0 {
                    return 0.0;
                }
                -(*d * *y * *y)
            }
        }

        impl MulAdd for $t {
            #[inline]
            fn d_x(a: &$t, d: &$t) -> $t {
                *d * *a
            }
            #[inline]
            fn d_a(x: &$t, d: &$t) -> $t {
                *d * *x
            }
            #[inline]
            fn d_b(d: &$t) -> $t {
                *d
            }
        }

        impl Abs for $t {
            #[inline]
            fn d_x(x: &$t, d: &$t) -> $t {
                // `== 0.0` holds for -0.0 too; signum(NaN) is NaN.
                if *x == 0.0 {
                    return 0.0;
                }
                *d * x.signum()
            }
        }

        impl Max for $t {
            #[inline]
            fn d_x(x: &$t, other: &$t, d: &$t) -> $t {
                if *x >= *other || other.is_nan() {
                    *d
                } else {
                    0.0
                }
            }
            #[inline]
            fn d_other(x: &$t, other: &$t, d: &$t) -> $t {
                if *x >= *other || other.is_nan() {
                    0.0
                } else {
                    *d
                }
            }
        }

        impl Min for $t {
            #[inline]
            fn d_x(x: &$t, other: &$t, d: &$t) -> $t {
                if *x <= *other || other.is_nan() {
                    *d
                } else {
                    0.0
                }
            }
            #[inline]
            fn d_other(x: &$t, other: &$t, d: &$t) -> $t {
                if *x <= *other || other.is_nan() {
                    0.0
                } else {
                    *d
                }
            }
        }

        impl Clamp for $t {
            type Bound = $t;
            #[inline]
            fn d_x(x: &$t, lo: &$t, hi: &$t, d: &$t) -> $t {
                // Written so that a NaN x (which clamp returns) keeps the gradient.
                if *x < *lo || *x > *hi {
                    0.0
                } else {
                    *d
                }
            }
            #[inline]
            fn d_lo(x: &$t, lo: &$t, d: &$t) -> $t {
                if *x < *lo {
                    *d
                } else {
                    0.0
                }
            }
            #[inline]
            fn d_hi(x: &$t, hi: &$t, d: &$t) -> $t {
                if *x > *hi {
                    *d
                } else {
                    0.0
                }
            }
        }

        impl Fract for $t {
            #[inline]
            fn d_x(d: &$t) -> $t {
                *d
            }
        }

        impl ToDegrees for $t {
            #[inline]
            fn d_x(d: &$t) -> $t {
                // The map is linear, so its derivative applied to d is the map of d.
                d.to_degrees()
            }
        }

        impl ToRadians for $t {
            #[inline]
            fn d_x(d: &$t) -> $t {
                d.to_radians()
            }
        }
    )*};
}

float_rules!(f32 f64);

macro_rules! cast_rules {
    ($($from:ident => $to:ident),* $(,)?) => {$(
        impl CastTo<$to> for $from {
            #[inline]
            fn d_x(_x: &ShapeOf<$from>, d: &$to) -> $from {
                *d as $from
            }
        }
    )*};
}

cast_rules!(f32 => f32, f32 => f64, f64 => f32, f64 => f64);

/// Casting an integer to a float: the integer carries no derivative, so the
/// contribution is `0` (this lets `n as f64` read a field of an active struct).
macro_rules! int_cast_rules {
    ($($from:ident),*) => {$(
        impl CastTo<f32> for $from {
            #[inline]
            fn d_x(_x: &ShapeOf<$from>, _d: &f32) -> $from {
                0
            }
        }
        impl CastTo<f64> for $from {
            #[inline]
            fn d_x(_x: &ShapeOf<$from>, _d: &f64) -> $from {
                0
            }
        }
    )*};
}

int_cast_rules!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
