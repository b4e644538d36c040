//! Derivative rules of tensor operations.
//!
//! The traits of the tensor-only primitives (`matmul`, `relu`, reductions,
//! softmax, convolution, pooling, views, ...) are declared here; the element-wise
//! primitives that tensors share with `f32`/`f64` (the operators, `exp`, `ln`,
//! `sqrt`, `tanh`, `sin`, `cos`, `abs`, `recip`, `powf`, `clamp`) use the traits
//! of [`scalar`](super::scalar), implemented here for [`Tensor`].
//!
//! In the signatures, `x` is the receiver, `y` the primal output and `d` the
//! cotangent of the output; each method returns the cotangent contribution for
//! one operand. `macros/src/rules.rs` is the table of which rule each method and
//! operator calls and in which order the arguments come.
//!
//! # Conventions
//!
//! * **Broadcasting.** An operand that was broadcast gets its cotangent summed
//!   back to its own shape ([`Tensor::sum_to_shape`]); an `f32` operand of a
//!   tensor operation gets the sum over all elements.
//! * **The shapeless zero.** A cotangent `d` that is the shapeless zero
//!   ([`Tangent::zero`], shape `[0]`) stands for a zero of the output's shape:
//!   tensor contributions are then the shapeless zero too, scalar ones `0`.
//! * **Views.** Rules of views (`reshape`, `transpose`, `t`, `permute`,
//!   `unsqueeze`, `squeeze`) and of sums and means return views of `d` (a
//!   broadcast with stride 0 for `sum`/`mean`) instead of copies; accumulating
//!   one into a gradient reads it in place.
//! * **Non-smooth points** follow the scalar rules: guarded rules (`/`, `exp`,
//!   `ln`, `sqrt`, `recip`, `powf`) give `0` where `d == 0`, element by element;
//!   `relu'(0) = 0`; `maximum`/`minimum` and `max`/`min` reductions give the
//!   whole cotangent to `x` on ties (to the first maximum along the axis),
//!   `max_pool2d` to the first maximum of each window, `clamp` to `x` at the bounds.

use super::scalar::{
    Abs, AddOp, Clamp, Cos, DivOp, Exp, Ln, MulOp, NegOp, Powf, Recip, Sin, Sqrt, SubOp, Tanh,
};
use crate::__private::{ShapeOf, Shaped};
use crate::tangent::Tangent;
use crate::tensor::{
    avg_pool2d_backward, conv2d_backward_input, conv2d_backward_weight, max_pool2d_backward,
    Tensor, PAR_THRESHOLD, PAR_THRESHOLD_HEAVY,
};
use rayon::prelude::*;
use std::borrow::Cow;

// ---------------------------------------------------------------------------
// Traits of the tensor-only primitives
// ---------------------------------------------------------------------------

/// `y = x.matmul(other)`, `y = x W` (batched, the batch axes broadcast, 1-D
/// operands promoted as in `torch.matmul`): `dL/dx = dL/dy W^T`,
/// `dL/dW = x^T dL/dy`, each summed over the batch axes its operand was broadcast along.
pub trait MatMul: Shaped + Sized {
    /// `dL/dx = dL/dy · other^T` (per batch item), summed to `x`'s shape.
    fn d_x(x: &ShapeOf<Self>, other: &Self, d: &Self) -> Self;
    /// `dL/dother = x^T · dL/dy` (per batch item), summed to `other`'s shape.
    fn d_other(x: &Self, other: &ShapeOf<Self>, d: &Self) -> Self;
}

/// `y = relu x = max(x, 0)`: `dy/dx = 1` where `y > 0`, else `0` (`relu'(0) = 0`).
pub trait Relu: Sized {
    /// `dL/dx = dL/dy · [y > 0]`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `y = x.leaky_relu(alpha)` (`x` where `x > 0`, else `alpha x`): `dy/dx = 1`
/// where `x > 0`, else `alpha` (the slope `alpha` is not differentiated).
pub trait LeakyRelu: Sized {
    /// The type of the slope `alpha`.
    type Scalar;
    /// `dL/dx = dL/dy` where `x > 0`, `alpha dL/dy` elsewhere.
    fn d_x(x: &Self, alpha: &Self::Scalar, d: &Self) -> Self;
}

/// `y = sigmoid x = 1 / (1 + e^-x)`: `dy/dx = y (1 - y)`.
pub trait Sigmoid: Sized {
    /// `dL/dx = dL/dy · y (1 - y)`, from the output `y`.
    fn d_x(y: &Self, d: &Self) -> Self;
}

/// `y = gelu x = x/2 (1 + tanh u)`, `u = sqrt(2/pi) (x + 0.044715 x^3)` (the
/// tanh approximation): `dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 · 0.044715 x^2)`.
pub trait Gelu: Sized {
    /// `dL/dx = dL/dy · gelu'(x)` ([`Tensor::gelu_derivative`], the same `tanh` as the forward kernel).
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `y = x^2` element-wise: `dy/dx = 2x`.
pub trait Square: Sized {
    /// `dL/dx = 2 x dL/dy`.
    fn d_x(x: &Self, d: &Self) -> Self;
}

/// `s = x.sum() = Σ_i x_i` (a scalar): `ds/dx_i = 1`.
pub trait SumAll: Shaped + Sized {
    /// The type of the sum.
    type Scalar;
    /// `dL/dx_i = dL/ds` for every `i` (a broadcast view of `d`).
    fn d_x(x: &ShapeOf<Self>, d: &Self::Scalar) -> Self;
}

/// `m = x.mean() = Σ_i x_i / n`: `dm/dx_i = 1 / n`.
pub trait MeanAll: Shaped + Sized {
    /// The type of the mean.
    type Scalar;
    /// `dL/dx_i = dL/dm / n` for every `i` (a broadcast view).
    fn d_x(x: &ShapeOf<Self>, d: &Self::Scalar) -> Self;
}

/// `y = x.max() = x_k`, `k` the first maximum (the first `NaN` if any):
/// `dy/dx_i = [i == k]`.
pub trait MaxAll: Sized {
    /// The type of the maximum.
    type Scalar;
    /// `dL/dx_i = dL/dy` at the first `i` with `x_i == y`, `0` elsewhere.
    fn d_x(x: &Self, y: &Self::Scalar, d: &Self::Scalar) -> Self;
}

/// `y = x.min() = x_k`, `k` the first minimum (the first `NaN` if any):
/// `dy/dx_i = [i == k]`.
pub trait MinAll: Sized {
    /// The type of the minimum.
    type Scalar;
    /// `dL/dx_i = dL/dy` at the first `i` with `x_i == y`, `0` elsewhere.
    fn d_x(x: &Self, y: &Self::Scalar, d: &Self::Scalar) -> Self;
}

/// `y = x.sum_axis(a, keepdim)`, `y[.., ..] = Σ_j x[.., j, ..]`: `dy/dx[.., j, ..] = 1`.
pub trait SumAxis: Shaped + Sized {
    /// `dL/dx[.., j, ..] = dL/dy[.., ..]`: `d` broadcast back along axis `a` (a view).
    fn d_x(x: &ShapeOf<Self>, axis: usize, keepdim: bool, d: &Self) -> Self;
}

/// `y = x.mean_axis(a, keepdim) = Σ_j x[.., j, ..] / n_a`: `dy/dx[.., j, ..] = 1 / n_a`.
pub trait MeanAxis: Shaped + Sized {
    /// `dL/dx[.., j, ..] = dL/dy[.., ..] / n_a`, broadcast back along axis `a`.
    fn d_x(x: &ShapeOf<Self>, axis: usize, keepdim: bool, d: &Self) -> Self;
}

/// `y = x.max_axis(a, keepdim) = x[.., k, ..]` with `k` the first maximum along
/// `a` ([`Tensor::argmax_axis`]): `dy/dx[.., j, ..] = [j == k]`.
pub trait MaxAxis: Sized {
    /// `dL/dx[.., j, ..] = dL/dy[.., ..]` at the first maximum `j == k`, `0` elsewhere.
    fn d_x(x: &Self, y: &Self, axis: usize, keepdim: bool, d: &Self) -> Self;
}

/// `y = x.softmax(a)`, `y_i = e^x_i / Σ_j e^x_j` along `a`:
/// `dy_i/dx_k = y_i ([i == k] - y_k)`.
pub trait Softmax: Sized {
    /// `dL/dx_k = y_k (dL/dy_k - Σ_i dL/dy_i y_i)`, from the output `y`.
    fn d_x(y: &Self, axis: usize, d: &Self) -> Self;
}

/// `y = x.log_softmax(a)`, `y_i = x_i - ln Σ_j e^x_j` along `a`:
/// `dy_i/dx_k = [i == k] - e^y_k`.
pub trait LogSoftmax: Sized {
    /// `dL/dx_k = dL/dy_k - e^y_k Σ_i dL/dy_i`, from the output `y`.
    fn d_x(y: &Self, axis: usize, d: &Self) -> Self;
}

/// `y = x.conv2d(w, stride, padding)` (cross-correlation, NCHW):
/// `y[b, o, i, j] = Σ_{c, p, q} x[b, c, i s + p - pad, j s + q - pad] w[o, c, p, q]`.
pub trait Conv2d: Shaped + Sized {
    /// `dL/dx[b, c, i', j'] = Σ dL/dy[b, o, i, j] w[o, c, p, q]` over
    /// `i s + p - pad = i'`, `j s + q - pad = j'` (the transposed convolution of `d` by `w`).
    fn d_x(x: &ShapeOf<Self>, weight: &Self, stride: usize, padding: usize, d: &Self) -> Self;
    /// `dL/dw[o, c, p, q] = Σ_{b, i, j} dL/dy[b, o, i, j] x[b, c, i s + p - pad, j s + q - pad]`.
    fn d_weight(x: &Self, weight: &ShapeOf<Self>, stride: usize, padding: usize, d: &Self) -> Self;
}

/// `y = x.max_pool2d(k, s)`, `y[b, c, i, j] = max_{p, q < k} x[b, c, i s + p, j s + q]`:
/// the derivative is `1` at the first maximum of each window, `0` elsewhere.
pub trait MaxPool2d: Sized {
    /// `dL/dx[m] = Σ_{windows whose first maximum is m} dL/dy[window]` (indices recomputed from `x`).
    fn d_x(x: &Self, kernel: usize, stride: usize, d: &Self) -> Self;
}

/// `y = x.avg_pool2d(k, s)`, `y[b, c, i, j] = Σ_{p, q < k} x[b, c, i s + p, j s + q] / k^2`.
pub trait AvgPool2d: Shaped + Sized {
    /// `dL/dx[b, c, i s + p, j s + q] += dL/dy[b, c, i, j] / k^2` for `p, q < k`.
    fn d_x(x: &ShapeOf<Self>, kernel: usize, stride: usize, d: &Self) -> Self;
}

/// `y = x.gather_rows(labels)`, `y[i] = x[i, labels[i]]`: `dy_i/dx[i, labels[i]] = 1`.
pub trait GatherRows: Shaped + Sized {
    /// `dL/dx[i, c] = dL/dy[i]` where `c == labels[i]`, `0` elsewhere.
    fn d_x(x: &ShapeOf<Self>, labels: &[usize], d: &Self) -> Self;
}

/// `y = x.select_rows(idx)`, `y[i, ..] = x[idx[i], ..]`.
pub trait SelectRows: Shaped + Sized {
    /// `dL/dx[r, ..] = Σ_{i : idx[i] = r} dL/dy[i, ..]` (repeated rows add up).
    fn d_x(x: &ShapeOf<Self>, indices: &[usize], d: &Self) -> Self;
}

/// `y = x.reshape(s)`: the same elements in row-major order, so `dL/dx = reshape(dL/dy, shape x)`.
pub trait Reshape: Shaped + Sized {
    /// `dL/dx = dL/dy` reshaped to `x`'s shape.
    fn d_x(x: &ShapeOf<Self>, d: &Self) -> Self;
}

/// `y = x.transpose(a, b)`: `y[.., i_b, .., i_a, ..] = x[.., i_a, .., i_b, ..]`.
pub trait Transpose: Sized {
    /// `dL/dx = (dL/dy).transpose(a, b)` (a view: the swap is its own inverse).
    fn d_x(a: usize, b: usize, d: &Self) -> Self;
}

/// `y = x.t() = x^T` (a matrix).
pub trait T: Sized {
    /// `dL/dx = (dL/dy)^T` (a view).
    fn d_x(d: &Self) -> Self;
}

/// `y = x.permute(p)`, axis `i` of `y` is axis `p[i]` of `x`.
pub trait Permute: Sized {
    /// `dL/dx = (dL/dy).permute(p^-1)` with `p^-1[p[i]] = i` (a view).
    fn d_x(axes: &[usize], d: &Self) -> Self;
}

/// `y = x.narrow(a, start, len)`, `y[.., j, ..] = x[.., start + j, ..]` for `j < len`.
pub trait Narrow: Shaped + Sized {
    /// `dL/dx[.., start + j, ..] = dL/dy[.., j, ..]`, `0` outside the window.
    fn d_x(x: &ShapeOf<Self>, axis: usize, start: usize, len: usize, d: &Self) -> Self;
}

/// `y = x.unsqueeze(a)`: a new axis of length 1 at `a`.
pub trait Unsqueeze: Sized {
    /// `dL/dx = (dL/dy).squeeze(a)` (a view).
    fn d_x(axis: usize, d: &Self) -> Self;
}

/// `y = x.squeeze(a)`: axis `a` (of length 1) removed.
pub trait Squeeze: Shaped + Sized {
    /// `dL/dx = (dL/dy).unsqueeze(a)` (a view).
    fn d_x(x: &ShapeOf<Self>, axis: usize, d: &Self) -> Self;
}

/// `y = x.broadcast_to(s)` (a view repeating `x` along new and length-1 axes):
/// each element of `x` feeds every output element it was broadcast to.
/// (Not in the macro's table yet.)
pub trait BroadcastTo: Shaped + Sized {
    /// `dL/dx = Σ_broadcast dL/dy`: `d` summed back to `x`'s shape.
    fn d_x(x: &ShapeOf<Self>, d: &Self) -> Self;
}

/// `y = x.sum_to_shape(s)` (the sum over the axes a broadcast to `x`'s shape
/// would add): `dy/dx = 1` from each element to the sum it lands in.
/// (Not in the macro's table yet.)
pub trait SumToShape: Shaped + Sized {
    /// `dL/dx = dL/dy` broadcast back to `x`'s shape (a view).
    fn d_x(x: &ShapeOf<Self>, d: &Self) -> Self;
}

/// `y = x.squeeze_all()`: the same elements without the length-1 axes.
/// (Not in the macro's table yet.)
pub trait SqueezeAll: Shaped + Sized {
    /// `dL/dx = dL/dy` reshaped to `x`'s shape.
    fn d_x(x: &ShapeOf<Self>, d: &Self) -> Self;
}

/// `y = x.contiguous()`: the same values in another layout, so `dL/dx = dL/dy`.
pub trait Contiguous: Sized {
    /// `dL/dx = dL/dy`.
    fn d_x(d: &Self) -> Self;
}

/// `y = x.maximum(other)` element-wise with broadcasting: the derivative is `1`
/// for the operand returned (`x` on ties and where `other` is `NaN`), `0` for the other.
pub trait Maximum: Sized {
    /// `dL/dx = dL/dy · [x >= other or other is NaN]`, summed to `x`'s shape.
    fn d_x(x: &Self, other: &Self, d: &Self) -> Self;
    /// `dL/dother = dL/dy · [not (x >= other or other is NaN)]`, summed to `other`'s shape.
    fn d_other(x: &Self, other: &Self, d: &Self) -> Self;
}

/// `y = x.minimum(other)` element-wise with broadcasting: the derivative is `1`
/// for the operand returned (`x` on ties and where `other` is `NaN`), `0` for the other.
pub trait Minimum: Sized {
    /// `dL/dx = dL/dy · [x <= other or other is NaN]`, summed to `x`'s shape.
    fn d_x(x: &Self, other: &Self, d: &Self) -> Self;
    /// `dL/dother = dL/dy · [not (x <= other or other is NaN)]`, summed to `other`'s shape.
    fn d_other(x: &Self, other: &Self, d: &Self) -> Self;
}

// ---------------------------------------------------------------------------
// Element-wise helpers
// ---------------------------------------------------------------------------

/// Smallest number of elements a rayon task of an element-wise rule handles.
const MIN_TASK: usize = 1 << 13;

/// Block length of the scalar sums ([`sum2`]): blocks are summed in `f32`
/// lanes and added in `f64`.
const SUM_BLOCK: usize = 4096;

/// Whether `d` is the shapeless zero tangent (a zero of any shape).
#[inline]
fn absent(d: &Tensor) -> bool {
    d.is_shapeless_zero()
}

/// The elements of `t` read as `shape` (a broadcast of `t.shape()`): borrowed
/// when `t` already has that shape and is contiguous, else copied.
fn read_as<'a>(t: &'a Tensor, shape: &[usize]) -> Cow<'a, [f32]> {
    if t.shape() == shape {
        t.data()
    } else {
        Cow::Owned(t.broadcast_to(shape).to_vec())
    }
}

/// `[f(a_i, b_i)]` for equal-length slices, over rayon's pool from `threshold` elements.
fn map2<F>(a: &[f32], b: &[f32], threshold: usize, f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Send + Sync,
{
    debug_assert_eq!(a.len(), b.len());
    if a.len() >= threshold {
        a.par_iter()
            .zip(b.par_iter())
            .with_min_len(MIN_TASK)
            .map(|(&x, &y)| f(x, y))
            .collect()
    } else {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }
}

/// `[f(a_i, b_i, c_i)]` for equal-length slices, as [`map2`].
fn map3<F>(a: &[f32], b: &[f32], c: &[f32], threshold: usize, f: F) -> Vec<f32>
where
    F: Fn(f32, f32, f32) -> f32 + Send + Sync,
{
    debug_assert!(a.len() == b.len() && b.len() == c.len());
    if a.len() >= threshold {
        a.par_iter()
            .zip(b.par_iter())
            .zip(c.par_iter())
            .with_min_len(MIN_TASK)
            .map(|((&x, &y), &z)| f(x, y, z))
            .collect()
    } else {
        a.iter()
            .zip(b)
            .zip(c)
            .map(|((&x, &y), &z)| f(x, y, z))
            .collect()
    }
}

/// `f(a, d)` element-wise for a value `a` and a cotangent `d` of the same shape.
///
/// # Panics
/// When the shapes differ (the message names the rule and both shapes).
#[track_caller]
fn zip_d<F>(op: &'static str, a: &Tensor, d: &Tensor, threshold: usize, f: F) -> Tensor
where
    F: Fn(f32, f32) -> f32 + Send + Sync,
{
    if a.shape() != d.shape() {
        panic!(
            "{op}: the cotangent's shape {:?} differs from the value's shape {:?}",
            d.shape(),
            a.shape()
        );
    }
    let out = map2(&a.data(), &d.data(), threshold, f);
    Tensor::contiguous_from(out, a.shape().to_vec())
}

/// `f(a, b, d)` element-wise with `a` and `b` broadcast to `d`'s shape, into a
/// new tensor of that shape.
fn zip_bcast<F>(a: &Tensor, b: &Tensor, d: &Tensor, threshold: usize, f: F) -> Tensor
where
    F: Fn(f32, f32, f32) -> f32 + Send + Sync,
{
    let shape = d.shape();
    let out = map3(
        &read_as(a, shape),
        &read_as(b, shape),
        &d.data(),
        threshold,
        f,
    );
    Tensor::contiguous_from(out, shape.to_vec())
}

/// The sum of one block with 16 independent lanes (vectorised).
#[inline]
fn block_sum2<F: Fn(f32, f32) -> f32>(a: &[f32], b: &[f32], f: &F) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += f(x, y);
        }
    }
    let mut t = 0.0f32;
    for (i, s) in acc.iter().enumerate().take(8) {
        t += s + acc[i + 8];
    }
    t + ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum::<f32>()
}

/// `Σ_i f(a_i, b_i)`: vectorised within blocks, blocks added in `f64`.
fn sum2<F>(a: &[f32], b: &[f32], f: F) -> f32
where
    F: Fn(f32, f32) -> f32 + Send + Sync,
{
    debug_assert_eq!(a.len(), b.len());
    if a.len() <= SUM_BLOCK {
        return block_sum2(a, b, &f);
    }
    let total: f64 = if a.len() >= PAR_THRESHOLD {
        a.par_chunks(SUM_BLOCK)
            .zip(b.par_chunks(SUM_BLOCK))
            .map(|(x, y)| block_sum2(x, y, &f) as f64)
            .sum()
    } else {
        a.chunks(SUM_BLOCK)
            .zip(b.chunks(SUM_BLOCK))
            .map(|(x, y)| block_sum2(x, y, &f) as f64)
            .sum()
    };
    total as f32
}

/// `Σ_i f(a_i, d_i)` for a value and a cotangent of the same shape.
///
/// # Panics
/// When the shapes differ.
#[track_caller]
fn sum_d<F>(op: &'static str, a: &Tensor, d: &Tensor, f: F) -> f32
where
    F: Fn(f32, f32) -> f32 + Send + Sync,
{
    if a.shape() != d.shape() {
        panic!(
            "{op}: the cotangent's shape {:?} differs from the value's shape {:?}",
            d.shape(),
            a.shape()
        );
    }
    sum2(&a.data(), &d.data(), f)
}

/// `(outer, len, inner)`: `shape` seen as `[outer, len, inner]` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// A zero tensor of `shape` with `d` at the (row-major) index `at`, or all
/// zeros for `None`.
fn one_hot(shape: &[usize], at: Option<usize>, d: f32) -> Tensor {
    let mut out = vec![0.0f32; shape.iter().product()];
    if let Some(i) = at {
        out[i] = d;
    }
    Tensor::contiguous_from(out, shape.to_vec())
}

/// The first index of `x` holding `y` (the first `NaN` when `y` is `NaN`):
/// where a reduction's value came from.
fn position_of(x: &[f32], y: f32) -> Option<usize> {
    if y.is_nan() {
        x.iter().position(|v| v.is_nan())
    } else {
        x.iter().position(|&v| v == y)
    }
}

// ---------------------------------------------------------------------------
// Linear algebra
// ---------------------------------------------------------------------------

/// The cotangent of a matmul with the axes that 1-D operands dropped put back:
/// `[.., m, n]` for operands promoted to `[.., m, k]` and `[.., k, n]`.
fn promote_d(a_rank: usize, b_rank: usize, d: &Tensor) -> Tensor {
    let mut d = d.clone();
    if b_rank == 1 {
        d = d.unsqueeze(d.rank());
    }
    if a_rank == 1 {
        d = d.unsqueeze(d.rank() - 1);
    }
    d
}

impl MatMul for Tensor {
    /// `y = x W`: `dL/dx = dL/dy W^T`, computed as one (batched) product with
    /// `W^T` a transposed view (no copy), then summed over the batch axes `x`
    /// was broadcast along. A 1-D `x` is the row `[1, k]`, a 1-D `W` the column `[k, 1]`.
    fn d_x(x: &ShapeOf<Tensor>, other: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let xs = &x.0;
        let b = if other.rank() == 1 {
            other.unsqueeze(1)
        } else {
            other.clone()
        };
        let d = promote_d(xs.len(), other.rank(), d);
        let rb = b.rank();
        // [.., m, n] · [.., n, k] -> [.., m, k]
        let g = d.matmul(&b.transpose(rb - 2, rb - 1));
        if xs.len() == 1 {
            let k = xs[0];
            g.sum_to_shape(&[1, k]).reshape(xs)
        } else {
            g.sum_to_shape(xs)
        }
    }

    /// `y = x W`: `dL/dW = x^T dL/dy`, with `x^T` a transposed view. When `W`
    /// has no batch axes but `x` has (a linear layer applied to a batch of
    /// sequences), the batch is folded into the rows: one GEMM
    /// `x[B m, k]^T · dL/dy[B m, n]` instead of `B` products and a sum.
    fn d_other(x: &Tensor, other: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let ws = &other.0;
        let a = if x.rank() == 1 {
            x.unsqueeze(0)
        } else {
            x.clone()
        };
        let d = promote_d(x.rank(), ws.len(), d);
        let ra = a.rank();
        let (k, n) = (a.shape()[ra - 1], d.shape()[d.rank() - 1]);
        let w_batch: usize = ws[..ws.len().saturating_sub(2)].iter().product();
        if ra > 2 && w_batch == 1 && d.rank() == ra {
            let rows = a.numel() / k.max(1);
            let a2 = a.reshape(&[rows, k]);
            let d2 = d.reshape(&[rows, n]);
            return a2.t().matmul(&d2).reshape(ws);
        }
        // [.., k, m] · [.., m, n] -> [.., k, n]
        let g = a.transpose(ra - 2, ra - 1).matmul(&d);
        if ws.len() == 1 {
            g.sum_to_shape(&[ws[0], 1]).reshape(ws)
        } else {
            g.sum_to_shape(ws)
        }
    }
}

// ---------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------

impl Relu for Tensor {
    /// `y = max(x, 0)`: `dL/dx = dL/dy` where `y > 0`, `0` elsewhere (also at `x = 0`).
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d(
            "relu",
            y,
            d,
            PAR_THRESHOLD,
            |y, d| if y > 0.0 { d } else { 0.0 },
        )
    }
}

impl LeakyRelu for Tensor {
    type Scalar = f32;
    /// `y = x` (`x > 0`), `alpha x` (else): `dL/dx = dL/dy` where `x > 0`, `alpha dL/dy` elsewhere.
    fn d_x(x: &Tensor, alpha: &f32, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let alpha = *alpha;
        zip_d("leaky_relu", x, d, PAR_THRESHOLD, move |x, d| {
            if x > 0.0 {
                d
            } else {
                alpha * d
            }
        })
    }
}

impl Sigmoid for Tensor {
    /// `y = 1 / (1 + e^-x)`: `dL/dx = dL/dy · y (1 - y)`.
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("sigmoid", y, d, PAR_THRESHOLD, |y, d| d * (y * (1.0 - y)))
    }
}

impl Gelu for Tensor {
    /// `y = gelu(x)` (tanh approximation): `dL/dx = dL/dy · gelu'(x)`, with
    /// `gelu'` from [`Tensor::gelu_derivative`] (the forward kernel's `tanh`),
    /// multiplied by `d` in place.
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        if x.shape() != d.shape() {
            panic!(
                "gelu: the cotangent's shape {:?} differs from the value's shape {:?}",
                d.shape(),
                x.shape()
            );
        }
        let mut g = x.gelu_derivative();
        g *= d;
        g
    }
}

impl Square for Tensor {
    /// `y = x^2`: `dL/dx = 2 x dL/dy`.
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("square", x, d, PAR_THRESHOLD, |x, d| 2.0 * x * d)
    }
}

// ---------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------

impl SumAll for Tensor {
    type Scalar = f32;
    /// `s = Σ_i x_i`: `dL/dx_i = dL/ds`, as a stride-0 broadcast of one element.
    fn d_x(x: &ShapeOf<Tensor>, d: &f32) -> Tensor {
        Tensor::scalar(*d).broadcast_to(&x.0)
    }
}

impl MeanAll for Tensor {
    type Scalar = f32;
    /// `m = Σ_i x_i / n`: `dL/dx_i = dL/dm / n`, as a stride-0 broadcast of one element.
    fn d_x(x: &ShapeOf<Tensor>, d: &f32) -> Tensor {
        let n = x.0.iter().product::<usize>().max(1);
        Tensor::scalar(*d / n as f32).broadcast_to(&x.0)
    }
}

impl MaxAll for Tensor {
    type Scalar = f32;
    /// `y = x_k` (`k` the first maximum): `dL/dx_k = dL/dy`, `0` elsewhere.
    fn d_x(x: &Tensor, y: &f32, d: &f32) -> Tensor {
        one_hot(x.shape(), position_of(&x.data(), *y), *d)
    }
}

impl MinAll for Tensor {
    type Scalar = f32;
    /// `y = x_k` (`k` the first minimum): `dL/dx_k = dL/dy`, `0` elsewhere.
    fn d_x(x: &Tensor, y: &f32, d: &f32) -> Tensor {
        one_hot(x.shape(), position_of(&x.data(), *y), *d)
    }
}

impl SumAxis for Tensor {
    /// `y = Σ_j x[.., j, ..]`: `dL/dx[.., j, ..] = dL/dy[.., ..]`, a broadcast
    /// view of `d` (the axis put back with length 1 first unless `keepdim`).
    fn d_x(x: &ShapeOf<Tensor>, axis: usize, keepdim: bool, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let d = if keepdim {
            d.clone()
        } else {
            d.unsqueeze(axis)
        };
        d.broadcast_to(&x.0)
    }
}

impl MeanAxis for Tensor {
    /// `y = Σ_j x[.., j, ..] / n`: `dL/dx[.., j, ..] = dL/dy[.., ..] / n`,
    /// `d / n` (the size of `y`) broadcast back along the axis as a view.
    fn d_x(x: &ShapeOf<Tensor>, axis: usize, keepdim: bool, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let scale = 1.0 / x.0[axis].max(1) as f32;
        let d = d * scale;
        let d = if keepdim { d } else { d.unsqueeze(axis) };
        d.broadcast_to(&x.0)
    }
}

impl MaxAxis for Tensor {
    /// `y[.., ..] = x[.., k, ..]` (`k` the first maximum along the axis, from
    /// [`Tensor::argmax_axis`], the forward kernel's choice): `dL/dx[.., k, ..] = dL/dy[.., ..]`,
    /// `0` elsewhere. `y` is not needed.
    fn d_x(x: &Tensor, _y: &Tensor, axis: usize, _keepdim: bool, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let idx = x.argmax_axis(axis);
        let (_, len, inner) = split(x.shape(), axis);
        let dd = d.data();
        if dd.len() != idx.len() {
            panic!(
                "max_axis: the cotangent's shape {:?} does not fit input {:?} reduced along axis {axis}",
                d.shape(),
                x.shape()
            );
        }
        let mut out = vec![0.0f32; x.numel()];
        for (r, (&j, &g)) in idx.iter().zip(dd.iter()).enumerate() {
            let (o, i) = (r / inner, r % inner);
            out[(o * len + j) * inner + i] = g;
        }
        Tensor::contiguous_from(out, x.shape().to_vec())
    }
}

/// The softmax / log-softmax backward kernel along `axis`, per `[len, inner]`
/// block, over rayon's pool for large inputs.
///
/// `log == false`: `out = y (d - Σ_axis d y)` with `y` the softmax;
/// `log == true`: `out = d - e^y Σ_axis d` with `y` the log-softmax.
#[track_caller]
fn softmax_backward(y: &Tensor, axis: usize, d: &Tensor, log: bool) -> Tensor {
    let op = if log { "log_softmax" } else { "softmax" };
    if y.shape() != d.shape() {
        panic!(
            "{op}: the cotangent's shape {:?} differs from the output's shape {:?}",
            d.shape(),
            y.shape()
        );
    }
    if axis >= y.rank() {
        panic!(
            "{op}: axis {axis} is out of range for shape {:?}",
            y.shape()
        );
    }
    let (_, len, inner) = split(y.shape(), axis);
    let block = len * inner;
    let dd = d.data();
    // The output buffer: e^y for log-softmax (vectorised exp, then updated in
    // place), zeros for softmax (y is read from the saved output).
    let (mut result, yd) = if log {
        (y.exp(), Cow::Borrowed(&[][..]))
    } else {
        (Tensor::zeros(y.shape()), y.data())
    };
    if block == 0 {
        return result;
    }
    let Some(out) = result.unique_slice_mut() else {
        unreachable!("a kernel's fresh output is contiguous and unshared")
    };
    let one = |o: usize, dst: &mut [f32]| {
        let dblk = &dd[o * block..(o + 1) * block];
        if log {
            // dst holds p = e^y; dst = d - p Σ d.
            if inner == 1 {
                let s: f32 = dblk.iter().sum();
                for (p, &g) in dst.iter_mut().zip(dblk) {
                    *p = g - *p * s;
                }
            } else {
                let mut s = vec![0.0f32; inner];
                for row in dblk.chunks_exact(inner) {
                    for (a, &g) in s.iter_mut().zip(row) {
                        *a += g;
                    }
                }
                for (prow, drow) in dst.chunks_exact_mut(inner).zip(dblk.chunks_exact(inner)) {
                    for ((p, &g), &a) in prow.iter_mut().zip(drow).zip(&s) {
                        *p = g - *p * a;
                    }
                }
            }
        } else {
            let yblk = &yd[o * block..(o + 1) * block];
            if inner == 1 {
                let s = block_sum2(dblk, yblk, &|g, y| g * y);
                for ((o, &g), &y) in dst.iter_mut().zip(dblk).zip(yblk) {
                    *o = y * (g - s);
                }
            } else {
                let mut s = vec![0.0f32; inner];
                for (drow, yrow) in dblk.chunks_exact(inner).zip(yblk.chunks_exact(inner)) {
                    for ((a, &g), &y) in s.iter_mut().zip(drow).zip(yrow) {
                        *a += g * y;
                    }
                }
                let rows = dst
                    .chunks_exact_mut(inner)
                    .zip(dblk.chunks_exact(inner))
                    .zip(yblk.chunks_exact(inner));
                for ((orow, drow), yrow) in rows {
                    for (((o, &g), &y), &a) in orow.iter_mut().zip(drow).zip(yrow).zip(&s) {
                        *o = y * (g - a);
                    }
                }
            }
        }
    };
    if out.len() >= PAR_THRESHOLD_HEAVY && out.len() > block {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(o, dst)| one(o, dst));
    } else {
        out.chunks_mut(block)
            .enumerate()
            .for_each(|(o, dst)| one(o, dst));
    }
    result
}

impl Softmax for Tensor {
    /// `y = softmax(x)` along the axis: `dL/dx = y (dL/dy - Σ_axis dL/dy · y)`.
    fn d_x(y: &Tensor, axis: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        softmax_backward(y, axis, d, false)
    }
}

impl LogSoftmax for Tensor {
    /// `y = log_softmax(x)` along the axis: `dL/dx = dL/dy - e^y Σ_axis dL/dy`.
    fn d_x(y: &Tensor, axis: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        softmax_backward(y, axis, d, true)
    }
}

// ---------------------------------------------------------------------------
// Convolution and pooling
// ---------------------------------------------------------------------------

impl Conv2d for Tensor {
    /// `dL/dx[b, c, i', j'] = Σ dL/dy[b, o, i, j] w[o, c, p, q]` over
    /// `i s + p - pad = i'`, `j s + q - pad = j'`: `dcols = W^T dL/dy` then
    /// col2im ([`conv2d_backward_input`]).
    fn d_x(
        x: &ShapeOf<Tensor>,
        weight: &Tensor,
        stride: usize,
        padding: usize,
        d: &Tensor,
    ) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        conv2d_backward_input(d, weight, &x.0, stride, padding)
    }

    /// `dL/dw[o, c, p, q] = Σ_{b, i, j} dL/dy[b, o, i, j] x[b, c, i s + p - pad, j s + q - pad]`:
    /// `Σ_b dL/dy_b cols_b^T` ([`conv2d_backward_weight`]).
    fn d_weight(
        x: &Tensor,
        weight: &ShapeOf<Tensor>,
        stride: usize,
        padding: usize,
        d: &Tensor,
    ) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        conv2d_backward_weight(x, d, &weight.0, stride, padding)
    }
}

impl MaxPool2d for Tensor {
    /// `y = max over each window`: `dL/dx[m] = Σ dL/dy[w]` over the windows
    /// `w` whose first maximum is at `m` (the indices recomputed from `x`,
    /// [`max_pool2d_backward`]).
    fn d_x(x: &Tensor, kernel: usize, stride: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let idx = x.max_pool2d_indices(kernel, stride);
        max_pool2d_backward(d, &idx, x.shape())
    }
}

impl AvgPool2d for Tensor {
    /// `y = mean over each window`: `dL/dx[b, c, i s + p, j s + q] += dL/dy[b, c, i, j] / k^2`
    /// ([`avg_pool2d_backward`]).
    fn d_x(x: &ShapeOf<Tensor>, kernel: usize, stride: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        avg_pool2d_backward(d, &x.0, kernel, stride)
    }
}

// ---------------------------------------------------------------------------
// Indexing and views
// ---------------------------------------------------------------------------

impl GatherRows for Tensor {
    /// `y[i] = x[i, labels[i]]`: `dL/dx[i, labels[i]] = dL/dy[i]`, `0` elsewhere
    /// ([`Tensor::scatter_rows`]).
    fn d_x(x: &ShapeOf<Tensor>, labels: &[usize], d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let c = match x.0[..] {
            [_, c] => c,
            _ => panic!("gather_rows: expects a matrix, got shape {:?}", x.0),
        };
        Tensor::scatter_rows(labels, d, c)
    }
}

impl SelectRows for Tensor {
    /// `y[i, ..] = x[idx[i], ..]`: `dL/dx[r, ..] = Σ_{i : idx[i] = r} dL/dy[i, ..]`.
    fn d_x(x: &ShapeOf<Tensor>, indices: &[usize], d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let shape = &x.0;
        let row: usize = shape[1..].iter().product();
        if d.numel() != indices.len() * row {
            panic!(
                "select_rows: the cotangent's shape {:?} does not fit {} rows of shape {shape:?}",
                d.shape(),
                indices.len()
            );
        }
        let mut out = vec![0.0f32; shape.iter().product()];
        let dd = d.data();
        for (&r, src) in indices.iter().zip(dd.chunks_exact(row.max(1))) {
            for (a, &g) in out[r * row..(r + 1) * row].iter_mut().zip(src) {
                *a += g;
            }
        }
        Tensor::contiguous_from(out, shape.clone())
    }
}

impl Reshape for Tensor {
    /// `y = reshape(x)`: `dL/dx = reshape(dL/dy)` to `x`'s shape (a view when `d` is contiguous).
    fn d_x(x: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.reshape(&x.0)
    }
}

impl Transpose for Tensor {
    /// `y = x` with axes `a`, `b` swapped: `dL/dx = dL/dy` with them swapped back (a view).
    fn d_x(a: usize, b: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.transpose(a, b)
    }
}

impl T for Tensor {
    /// `y = x^T`: `dL/dx = (dL/dy)^T` (a view).
    fn d_x(d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.t()
    }
}

impl Permute for Tensor {
    /// `y = x.permute(p)`: `dL/dx = (dL/dy).permute(q)` with `q[p[i]] = i` (a view).
    fn d_x(axes: &[usize], d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let mut inv = vec![0usize; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            if a < inv.len() {
                inv[a] = i;
            }
        }
        d.permute(&inv)
    }
}

impl Narrow for Tensor {
    /// `y[.., j, ..] = x[.., start + j, ..]`: `dL/dx[.., start + j, ..] = dL/dy[.., j, ..]`
    /// for `j < len`, `0` elsewhere (copied block by block).
    fn d_x(x: &ShapeOf<Tensor>, axis: usize, start: usize, len: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let shape = &x.0;
        let (outer, full, inner) = split(shape, axis);
        let mut expect = shape.clone();
        expect[axis] = len;
        if d.shape() != expect {
            panic!(
                "narrow: the cotangent's shape {:?} does not fit {len} elements along axis {axis} of {shape:?}",
                d.shape()
            );
        }
        let mut out = vec![0.0f32; outer * full * inner];
        let dd = d.data();
        let (src_blk, dst_blk) = (len * inner, full * inner);
        if src_blk > 0 {
            for (o, src) in dd.chunks_exact(src_blk).enumerate() {
                let at = o * dst_blk + start * inner;
                out[at..at + src_blk].copy_from_slice(src);
            }
        }
        Tensor::contiguous_from(out, shape.clone())
    }
}

impl Unsqueeze for Tensor {
    /// `y = x` with a length-1 axis inserted at `a`: `dL/dx = (dL/dy).squeeze(a)` (a view).
    fn d_x(axis: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.squeeze(axis)
    }
}

impl Squeeze for Tensor {
    /// `y = x` without its length-1 axis `a`: `dL/dx = (dL/dy).unsqueeze(a)` (a view).
    fn d_x(_x: &ShapeOf<Tensor>, axis: usize, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.unsqueeze(axis)
    }
}

impl BroadcastTo for Tensor {
    /// `y = broadcast(x)`: `dL/dx = Σ_broadcast dL/dy` ([`Tensor::sum_to_shape`]).
    fn d_x(x: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.sum_to_shape(&x.0)
    }
}

impl SumToShape for Tensor {
    /// `y = sum_to_shape(x)`: `dL/dx = broadcast(dL/dy)` to `x`'s shape (a view).
    fn d_x(x: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.broadcast_to(&x.0)
    }
}

impl SqueezeAll for Tensor {
    /// `y = x` without its length-1 axes: `dL/dx = reshape(dL/dy)` to `x`'s shape.
    fn d_x(x: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.reshape(&x.0)
    }
}

impl Contiguous for Tensor {
    /// `y = x` laid out contiguously: `dL/dx = dL/dy` (a reference-count bump).
    fn d_x(d: &Tensor) -> Tensor {
        d.clone()
    }
}

impl Maximum for Tensor {
    /// `y = max(x, other)` element-wise: `dL/dx = Σ_broadcast dL/dy · [x >= other or other NaN]`.
    fn d_x(x: &Tensor, other: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(x, other, d, PAR_THRESHOLD, |x, o, d| {
            if x >= o || o.is_nan() {
                d
            } else {
                0.0
            }
        })
        .sum_to_shape(x.shape())
    }

    /// `y = max(x, other)` element-wise: `dL/dother = Σ_broadcast dL/dy · [x < other or (x NaN, other not)]`.
    fn d_other(x: &Tensor, other: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(x, other, d, PAR_THRESHOLD, |x, o, d| {
            if x >= o || o.is_nan() {
                0.0
            } else {
                d
            }
        })
        .sum_to_shape(other.shape())
    }
}

impl Minimum for Tensor {
    /// `y = min(x, other)` element-wise: `dL/dx = Σ_broadcast dL/dy · [x <= other or other NaN]`.
    fn d_x(x: &Tensor, other: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(x, other, d, PAR_THRESHOLD, |x, o, d| {
            if x <= o || o.is_nan() {
                d
            } else {
                0.0
            }
        })
        .sum_to_shape(x.shape())
    }

    /// `y = min(x, other)` element-wise: `dL/dother = Σ_broadcast dL/dy · [x > other or (x NaN, other not)]`.
    fn d_other(x: &Tensor, other: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(x, other, d, PAR_THRESHOLD, |x, o, d| {
            if x <= o || o.is_nan() {
                0.0
            } else {
                d
            }
        })
        .sum_to_shape(other.shape())
    }
}

// ---------------------------------------------------------------------------
// Operators: tensor ∘ tensor (broadcasting), tensor ∘ f32, f32 ∘ tensor
// ---------------------------------------------------------------------------

impl AddOp for Tensor {
    type Out = Tensor;
    /// `y = lhs + rhs` (broadcast): `dL/dlhs = Σ_broadcast dL/dy`, summed to `lhs`'s shape.
    fn d_lhs(lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.sum_to_shape(&lhs.0)
    }
    /// `y = lhs + rhs` (broadcast): `dL/drhs = Σ_broadcast dL/dy`, summed to `rhs`'s shape.
    fn d_rhs(_lhs: &ShapeOf<Tensor>, rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.sum_to_shape(&rhs.0)
    }
}

impl AddOp<f32> for Tensor {
    type Out = Tensor;
    /// `y = lhs + c`: `dL/dlhs = dL/dy`.
    fn d_lhs(_lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<f32>, d: &Tensor) -> Tensor {
        d.clone()
    }
    /// `y = lhs + c`: `dL/dc = Σ_i dL/dy_i`.
    fn d_rhs(_lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<f32>, d: &Tensor) -> f32 {
        d.sum()
    }
}

impl AddOp<Tensor> for f32 {
    type Out = Tensor;
    /// `y = c + rhs`: `dL/dc = Σ_i dL/dy_i`.
    fn d_lhs(_lhs: &ShapeOf<f32>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> f32 {
        d.sum()
    }
    /// `y = c + rhs`: `dL/drhs = dL/dy`.
    fn d_rhs(_lhs: &ShapeOf<f32>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        d.clone()
    }
}

impl SubOp for Tensor {
    type Out = Tensor;
    /// `y = lhs - rhs` (broadcast): `dL/dlhs = Σ_broadcast dL/dy`.
    fn d_lhs(lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d.sum_to_shape(&lhs.0)
    }
    /// `y = lhs - rhs` (broadcast): `dL/drhs = -Σ_broadcast dL/dy` (negated in
    /// place when the sum made a new buffer).
    fn d_rhs(_lhs: &ShapeOf<Tensor>, rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        -d.sum_to_shape(&rhs.0)
    }
}

impl SubOp<f32> for Tensor {
    type Out = Tensor;
    /// `y = lhs - c`: `dL/dlhs = dL/dy`.
    fn d_lhs(_lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<f32>, d: &Tensor) -> Tensor {
        d.clone()
    }
    /// `y = lhs - c`: `dL/dc = -Σ_i dL/dy_i`.
    fn d_rhs(_lhs: &ShapeOf<Tensor>, _rhs: &ShapeOf<f32>, d: &Tensor) -> f32 {
        -d.sum()
    }
}

impl SubOp<Tensor> for f32 {
    type Out = Tensor;
    /// `y = c - rhs`: `dL/dc = Σ_i dL/dy_i`.
    fn d_lhs(_lhs: &ShapeOf<f32>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> f32 {
        d.sum()
    }
    /// `y = c - rhs`: `dL/drhs = -dL/dy`.
    fn d_rhs(_lhs: &ShapeOf<f32>, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        -d
    }
}

impl MulOp for Tensor {
    type Out = Tensor;
    /// `y = lhs * rhs` (element-wise, broadcast): `dL/dlhs = Σ_broadcast dL/dy * rhs`.
    fn d_lhs(lhs: &ShapeOf<Tensor>, rhs: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        (d * rhs).sum_to_shape(&lhs.0)
    }
    /// `y = lhs * rhs` (element-wise, broadcast): `dL/drhs = Σ_broadcast dL/dy * lhs`.
    fn d_rhs(lhs: &Tensor, rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        (d * lhs).sum_to_shape(&rhs.0)
    }
}

impl MulOp<f32> for Tensor {
    type Out = Tensor;
    /// `y = lhs c`: `dL/dlhs = c dL/dy`.
    fn d_lhs(_lhs: &ShapeOf<Tensor>, rhs: &f32, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d * *rhs
    }
    /// `y = lhs c`: `dL/dc = Σ_i dL/dy_i lhs_i`.
    fn d_rhs(lhs: &Tensor, _rhs: &ShapeOf<f32>, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        sum_d("mul", lhs, d, |x, d| x * d)
    }
}

impl MulOp<Tensor> for f32 {
    type Out = Tensor;
    /// `y = c rhs`: `dL/dc = Σ_i dL/dy_i rhs_i`.
    fn d_lhs(_lhs: &ShapeOf<f32>, rhs: &Tensor, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        sum_d("mul", rhs, d, |x, d| x * d)
    }
    /// `y = c rhs`: `dL/drhs = c dL/dy`.
    fn d_rhs(lhs: &f32, _rhs: &ShapeOf<Tensor>, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        d * *lhs
    }
}

impl DivOp for Tensor {
    type Out = Tensor;
    /// `y = lhs / rhs` (element-wise, broadcast): `dL/dlhs = Σ_broadcast dL/dy / rhs`
    /// (`0` where `dL/dy = 0`).
    fn d_lhs(lhs: &ShapeOf<Tensor>, rhs: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let shape = d.shape();
        let out = map2(&read_as(rhs, shape), &d.data(), PAR_THRESHOLD, |r, d| {
            if d == 0.0 {
                0.0
            } else {
                d / r
            }
        });
        Tensor::contiguous_from(out, shape.to_vec()).sum_to_shape(&lhs.0)
    }
    /// `y = lhs / rhs` (element-wise, broadcast): `dL/drhs = -Σ_broadcast dL/dy · y / rhs`
    /// (`0` where `dL/dy = 0`).
    fn d_rhs(_lhs: &ShapeOf<Tensor>, rhs: &Tensor, y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(rhs, y, d, PAR_THRESHOLD, |r, y, d| {
            if d == 0.0 {
                0.0
            } else {
                -(d / r) * y
            }
        })
        .sum_to_shape(rhs.shape())
    }
}

impl DivOp<f32> for Tensor {
    type Out = Tensor;
    /// `y = lhs / c`: `dL/dlhs = dL/dy / c` (`0` where `dL/dy = 0`).
    fn d_lhs(_lhs: &ShapeOf<Tensor>, rhs: &f32, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let c = *rhs;
        d.map(move |d| if d == 0.0 { 0.0 } else { d / c })
    }
    /// `y = lhs / c`: `dL/dc = -Σ_i dL/dy_i y_i / c` (terms with `dL/dy_i = 0` left out).
    fn d_rhs(_lhs: &ShapeOf<Tensor>, rhs: &f32, y: &Tensor, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        let c = *rhs;
        sum_d(
            "div",
            y,
            d,
            move |y, d| if d == 0.0 { 0.0 } else { -(d / c) * y },
        )
    }
}

impl DivOp<Tensor> for f32 {
    type Out = Tensor;
    /// `y = c / rhs`: `dL/dc = Σ_i dL/dy_i / rhs_i` (terms with `dL/dy_i = 0` left out).
    fn d_lhs(_lhs: &ShapeOf<f32>, rhs: &Tensor, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        sum_d("div", rhs, d, |r, d| if d == 0.0 { 0.0 } else { d / r })
    }
    /// `y = c / rhs`: `dL/drhs = -dL/dy · y / rhs` (`0` where `dL/dy = 0`).
    fn d_rhs(_lhs: &ShapeOf<f32>, rhs: &Tensor, y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_bcast(rhs, y, d, PAR_THRESHOLD, |r, y, d| {
            if d == 0.0 {
                0.0
            } else {
                -(d / r) * y
            }
        })
    }
}

impl NegOp for Tensor {
    /// `y = -x`: `dL/dx = -dL/dy`.
    fn d_x(d: &Tensor) -> Tensor {
        -d
    }
}

// ---------------------------------------------------------------------------
// Element-wise math shared with the scalar rules
// ---------------------------------------------------------------------------

impl Exp for Tensor {
    /// `y = e^x`: `dL/dx = dL/dy · y` (`0` where `dL/dy = 0`).
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("exp", y, d, PAR_THRESHOLD, |y, d| {
            if d == 0.0 {
                0.0
            } else {
                d * y
            }
        })
    }
}

impl Ln for Tensor {
    /// `y = ln x`: `dL/dx = dL/dy / x` (`0` where `dL/dy = 0`).
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("ln", x, d, PAR_THRESHOLD, |x, d| {
            if d == 0.0 {
                0.0
            } else {
                d / x
            }
        })
    }
}

impl Sqrt for Tensor {
    /// `y = sqrt x`: `dL/dx = dL/dy / (2y)` (`0` where `dL/dy = 0`, `+inf · dL/dy` at `y = ±0`).
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("sqrt", y, d, PAR_THRESHOLD, |y, d| {
            if d == 0.0 {
                0.0
            } else {
                d / (2.0 * y.abs())
            }
        })
    }
}

impl Tanh for Tensor {
    /// `y = tanh x`: `dL/dx = dL/dy (1 - y^2)`.
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("tanh", y, d, PAR_THRESHOLD, |y, d| {
            d * ((1.0 - y) * (1.0 + y))
        })
    }
}

impl Sin for Tensor {
    /// `y = sin x`: `dL/dx = dL/dy cos x`.
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("sin", x, d, PAR_THRESHOLD_HEAVY, |x, d| d * x.cos())
    }
}

impl Cos for Tensor {
    /// `y = cos x`: `dL/dx = -dL/dy sin x`.
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("cos", x, d, PAR_THRESHOLD_HEAVY, |x, d| -(d * x.sin()))
    }
}

impl Abs for Tensor {
    /// `y = |x|`: `dL/dx = dL/dy signum x`, `0` at `x = ±0`.
    fn d_x(x: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("abs", x, d, PAR_THRESHOLD, |x, d| {
            if x == 0.0 {
                0.0
            } else {
                d * x.signum()
            }
        })
    }
}

impl Recip for Tensor {
    /// `y = 1 / x`: `dL/dx = -dL/dy y^2` (`0` where `dL/dy = 0`).
    fn d_x(y: &Tensor, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        zip_d("recip", y, d, PAR_THRESHOLD, |y, d| {
            if d == 0.0 {
                0.0
            } else {
                -(d * y * y)
            }
        })
    }
}

impl Powf for Tensor {
    type Exponent = f32;
    /// `y = x^p` element-wise: `dL/dx = dL/dy p x^(p-1)` (`0` where `dL/dy = 0`,
    /// and everywhere for `p = 0`).
    fn d_x(x: &Tensor, p: &f32, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let p = *p;
        if p == 0.0 {
            return Tensor::zeros(x.shape());
        }
        zip_d("powf", x, d, PAR_THRESHOLD_HEAVY, move |x, d| {
            if d == 0.0 {
                0.0
            } else {
                d * p * x.powf(p - 1.0)
            }
        })
    }
    /// `y = x^p` element-wise: `dL/dp = Σ_i dL/dy_i y_i ln x_i` over `x_i > 0`
    /// (`0` terms for `x_i <= 0` and where `dL/dy_i = 0`).
    fn d_p(x: &Tensor, y: &Tensor, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        if x.shape() != d.shape() || y.shape() != d.shape() {
            panic!(
                "powf: the cotangent's shape {:?} differs from the value's shape {:?}",
                d.shape(),
                x.shape()
            );
        }
        let (xd, yd, dd) = (x.data(), y.data(), d.data());
        let terms = map3(&xd, &yd, &dd, PAR_THRESHOLD_HEAVY, |x, y, d| {
            if d == 0.0 || x <= 0.0 {
                0.0
            } else {
                d * y * x.ln()
            }
        });
        terms.iter().map(|&t| f64::from(t)).sum::<f64>() as f32
    }
}

impl Clamp for Tensor {
    type Bound = f32;
    /// `y = clamp(x, lo, hi)` element-wise: `dL/dx = dL/dy` where `lo <= x <= hi`
    /// (or `x` is NaN), `0` elsewhere.
    fn d_x(x: &Tensor, lo: &f32, hi: &f32, d: &Tensor) -> Tensor {
        if absent(d) {
            return Tensor::zero();
        }
        let (lo, hi) = (*lo, *hi);
        zip_d("clamp", x, d, PAR_THRESHOLD, move |x, d| {
            if x < lo || x > hi {
                0.0
            } else {
                d
            }
        })
    }
    /// `y = clamp(x, lo, hi)`: `dL/dlo = Σ_{x_i < lo} dL/dy_i`.
    fn d_lo(x: &Tensor, lo: &f32, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        let lo = *lo;
        sum_d("clamp", x, d, move |x, d| if x < lo { d } else { 0.0 })
    }
    /// `y = clamp(x, lo, hi)`: `dL/dhi = Σ_{x_i > hi} dL/dy_i`.
    fn d_hi(x: &Tensor, hi: &f32, d: &Tensor) -> f32 {
        if absent(d) {
            return 0.0;
        }
        let hi = *hi;
        sum_d("clamp", x, d, move |x, d| if x > hi { d } else { 0.0 })
    }
}
