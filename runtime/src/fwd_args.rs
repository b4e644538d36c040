//! What forward-mode code passes between functions: owned tangents of each
//! parameter's type, zeros for values with no derivative, and the unit
//! tangents and flattening that `_jacobian` and `_hessian` use.
//!
//! Each function that generated code may call with a differentiated value has
//! a `_pullback` beside it, so the reverse mode can differentiate forward-mode
//! code again (`hessian`).

use crate::__private::{NoGrad, Prim};
use crate::forward::{Flat, Jacobian};
use crate::tangent::Differentiable;

/// Converts a tangent into the tangent type a parameter takes: itself, or a
/// `Vec` for an array passed to a slice parameter.
pub trait IntoArg<T> {
    /// The converted tangent.
    fn into_arg(self) -> T;
}

impl<T> IntoArg<T> for T {
    #[inline(always)]
    fn into_arg(self) -> T {
        self
    }
}

impl<T, const N: usize> IntoArg<Vec<T>> for [T; N] {
    #[inline]
    fn into_arg(self) -> Vec<T> {
        Vec::from(self)
    }
}

/// The tangent `t` (behind any references) as an owned argument.
#[inline(always)]
pub fn arg<S, T>(t: &S) -> T
where
    S: Prim + ?Sized,
    S::Target: Clone + IntoArg<T>,
{
    t.prim().clone().into_arg()
}

/// [`arg`] is the identity on tangents: its cotangent passes through.
#[inline(always)]
pub fn arg_pullback<S, T>(t: &S, g: T) -> (T, (T,))
where
    S: Prim + ?Sized,
    S::Target: Clone + IntoArg<T>,
{
    (arg(t), (g,))
}

/// The tangent `t` given for the parameter `x`, with the parts that are not
/// differentiated set to zero ([`Differentiable::forward_tangent`]). Takes `t`
/// by reference, so a second differentiation can read it again.
#[inline(always)]
pub fn sanitize<X: Differentiable + ?Sized>(x: &X, t: &X::Tangent) -> X::Tangent
where
    X::Tangent: Clone,
{
    x.forward_tangent(t.clone())
}

/// [`sanitize`] depends on `x` only through its structure, and is linear
/// in `t` (a projection, so its own transpose).
#[inline(always)]
pub fn sanitize_pullback<X: Differentiable + ?Sized>(
    x: &X,
    t: &X::Tangent,
    g: X::Tangent,
) -> (X::Tangent, (NoGrad, X::Tangent))
where
    X::Tangent: Clone,
{
    (x.forward_tangent(t.clone()), (NoGrad, x.forward_tangent(g)))
}

/// [`zero`](super::fwd::zero) does not depend on `x`: no cotangent flows back.
#[inline]
pub fn zero_pullback<X: Differentiable + ?Sized, G>(x: &X, _g: G) -> (X::Tangent, (NoGrad,)) {
    (x.zero_tangent(), (NoGrad,))
}

/// A zero tangent for a parameter that receives `x`.
#[inline]
pub fn zero_arg<X, T>(x: &X) -> T
where
    X: Differentiable + ?Sized,
    X::Tangent: IntoArg<T>,
{
    x.zero_tangent().into_arg()
}

/// [`zero_arg`] does not depend on `x`.
#[inline]
pub fn zero_arg_pullback<X, T, G>(x: &X, _g: G) -> (T, (NoGrad,))
where
    X: Differentiable + ?Sized,
    X::Tangent: IntoArg<T>,
{
    (zero_arg(x), (NoGrad,))
}

/// The number of scalars in a tangent of `x`.
#[inline]
pub fn flat_len_of<X>(x: &X) -> usize
where
    X: Differentiable + ?Sized,
    X::Tangent: Flat,
{
    x.zero_tangent().flat_len()
}

/// The unit tangent of `x`'s shape with `1` at flat index `k`, as an argument.
#[inline]
pub fn unit_arg<X, T>(x: &X, k: usize) -> T
where
    X: Differentiable + ?Sized,
    X::Tangent: Flat + IntoArg<T>,
{
    let mut t = x.zero_tangent();
    t.set_flat(k, 1.0);
    t.into_arg()
}

/// The unit tangent of `x`'s shape with `1` at flat index `k` (an output seed).
#[inline]
pub fn unit<X>(x: &X, k: usize) -> X::Tangent
where
    X: Differentiable + ?Sized,
    X::Tangent: Flat,
{
    let mut t = x.zero_tangent();
    t.set_flat(k, 1.0);
    t
}

/// Writes `t` into row `i` of `j`, from column `*off` on; advances `*off`.
pub fn write_row_at<T: Flat + ?Sized>(j: &mut Jacobian, i: usize, off: &mut usize, t: &T) {
    let n = t.flat_len();
    let mut buf = vec![0.0; n];
    t.write_flat(&mut buf);
    for (c, v) in buf.into_iter().enumerate() {
        j.set(i, *off + c, v);
    }
    *off += n;
}

/// Writes `t` into column `k` of `j`, from row `*off` on; advances `*off`.
pub fn write_col_at<T: Flat + ?Sized>(j: &mut Jacobian, k: usize, off: &mut usize, t: &T) {
    let n = t.flat_len();
    let mut buf = vec![0.0; n];
    t.write_flat(&mut buf);
    for (r, v) in buf.into_iter().enumerate() {
        j.set(*off + r, k, v);
    }
    *off += n;
}

/// A tensor's scalars in row-major order (a shapeless zero tensor has none).
impl Flat for crate::tensor::Tensor {
    fn flat_len(&self) -> usize {
        self.numel()
    }
    fn write_flat(&self, out: &mut [f64]) {
        for (o, v) in out.iter_mut().zip(self.to_vec()) {
            *o = f64::from(v);
        }
    }
    fn set_flat(&mut self, k: usize, v: f64) {
        let mut data = self.to_vec();
        data[k] = v as f32;
        *self = crate::tensor::Tensor::from_vec(data, self.shape());
    }
}

/// `<g, t>` for a gradient `g` and a tangent `t` of the value `x` (forward mode
/// through a `#[derivative]` rule). `x` only fixes the types; the tangent's
/// parts that are not differentiated are ignored.
pub fn dot<X>(x: &X, g: &X::Tangent, t: &X::Tangent) -> f64
where
    X: Differentiable + ?Sized,
    X::Tangent: Flat + Clone,
{
    let t = x.forward_tangent(t.clone());
    let n = g.flat_len();
    if n == 0 || t.flat_len() == 0 {
        return 0.0;
    }
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; t.flat_len()]);
    g.write_flat(&mut a);
    t.write_flat(&mut b);
    a.iter().zip(&b).map(|(u, v)| u * v).sum()
}
