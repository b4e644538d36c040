//! What forward-mode code passes between functions (zeros for values with
//! no derivative, tangents with `#[no_grad]` parts cleared) and the unit
//! tangents, dot products and flattening that `_jacobian`, `_hessian` and the
//! nested companions use.
//!
//! Each function that generated code may call with a differentiated value has
//! a `_pullback` beside it, so the reverse mode can differentiate forward-mode
//! code again (`hessian`).

use crate::__private::NoGrad;
use crate::forward::{Flat, Jacobian};
use crate::tangent::Differentiable;

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

/// [`zero`](crate::forward::zero) does not depend on `x`: no cotangent flows back.
#[inline]
pub fn zero_pullback<X: Differentiable + ?Sized, G>(x: &X, _g: G) -> (X::Tangent, (NoGrad,)) {
    (x.zero_tangent(), (NoGrad,))
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

/// The unit tangent of `x`'s shape with `1` at flat index `k`.
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

/// `<g, t>`: the scalars of a gradient and a tangent of the same value,
/// multiplied pairwise and summed (forward mode through a `#[derivative]` rule,
/// derivatives of `_tangent`). `#[no_grad]` fields are not among a struct's
/// scalars, so they do not count.
pub fn dot<G, T>(g: &G, t: &T) -> f64
where
    G: Flat + ?Sized,
    T: Flat + ?Sized,
{
    let (n, m) = (g.flat_len(), t.flat_len());
    if n == 0 || m == 0 {
        return 0.0;
    }
    assert_eq!(n, m, "a gradient and a tangent of different sizes");
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; m]);
    g.write_flat(&mut a);
    t.write_flat(&mut b);
    a.iter().zip(&b).map(|(u, v)| u * v).sum()
}

/// A slice's scalars in element order.
impl<T: Flat> Flat for [T] {
    fn flat_len(&self) -> usize {
        self.iter().map(Flat::flat_len).sum()
    }
    fn write_flat(&self, out: &mut [f64]) {
        let mut off = 0;
        for x in self {
            let n = x.flat_len();
            x.write_flat(&mut out[off..off + n]);
            off += n;
        }
    }
    fn set_flat(&mut self, mut k: usize, v: f64) {
        for x in self {
            let n = x.flat_len();
            if k < n {
                return x.set_flat(k, v);
            }
            k -= n;
        }
        panic!("flat index out of range")
    }
}
