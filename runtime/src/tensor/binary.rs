//! Element-wise binary operations with NumPy broadcasting, the operators, and
//! the un-broadcasting [`Tensor::sum_to_shape`].
//!
//! Every kernel walks the output row by row (the innermost axis after merging
//! axes that all operands stride alike), with a specialised inner loop for the
//! stride pairs that occur: both contiguous (vectorised zip), one operand
//! broadcast along the row (a scalar against a slice), or general strides.
//! Outputs of [`PAR_THRESHOLD`] elements or more ([`PAR_THRESHOLD_STRIDED`]
//! for strided or short rows) are split into row blocks over rayon's pool.

use super::error::{fail, TensorError};
use super::layout::{
    broadcast_shape, broadcast_strides, collapse, contiguous_strides, numel, Rows,
};
use super::{Tensor, PAR_THRESHOLD, PAR_THRESHOLD_STRIDED};
use core::ops;
use rayon::prelude::*;

/// Target size, in elements, of one parallel work item.
const PAR_CHUNK: usize = 1 << 14;

/// One row of `out[j] = f(a[oa + j*sa], b[ob + j*sb])`, operands given as
/// `(buffer, offset, stride)`.
#[inline(always)]
fn zip_row<F: Fn(f32, f32) -> f32>(
    out: &mut [f32],
    (a, oa, sa): (&[f32], usize, usize),
    (b, ob, sb): (&[f32], usize, usize),
    f: F,
) {
    let n = out.len();
    match (sa, sb) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]) {
                *o = f(x, y);
            }
        }
        (0, 1) => {
            let x = a[oa];
            for (o, &y) in out.iter_mut().zip(&b[ob..ob + n]) {
                *o = f(x, y);
            }
        }
        (1, 0) => {
            let y = b[ob];
            for (o, &x) in out.iter_mut().zip(&a[oa..oa + n]) {
                *o = f(x, y);
            }
        }
        _ => {
            for (j, o) in out.iter_mut().enumerate() {
                *o = f(a[oa + j * sa], b[ob + j * sb]);
            }
        }
    }
}

/// One row of `dst[j] = f(dst[j], b[ob + j*sb])`.
#[inline(always)]
fn assign_row<F: Fn(f32, f32) -> f32>(dst: &mut [f32], b: &[f32], ob: usize, sb: usize, f: F) {
    let n = dst.len();
    match sb {
        1 => {
            for (d, &y) in dst.iter_mut().zip(&b[ob..ob + n]) {
                *d = f(*d, y);
            }
        }
        0 => {
            let y = b[ob];
            for d in dst.iter_mut() {
                *d = f(*d, y);
            }
        }
        _ => {
            for (j, d) in dst.iter_mut().enumerate() {
                *d = f(*d, b[ob + j * sb]);
            }
        }
    }
}

/// Runs `body(row_block, first_row)` over blocks of whole rows of `out` (rows
/// of length `n`), in parallel when `out` is large: [`PAR_THRESHOLD`] when the
/// rows are long and read with unit or zero strides (memory-bound),
/// [`PAR_THRESHOLD_STRIDED`] otherwise.
#[inline(always)]
fn for_row_blocks<B>(out: &mut [f32], n: usize, strides: &[usize], body: B)
where
    B: Fn(&mut [f32], usize) + Sync + Send,
{
    let cheap = n >= 64 && strides.iter().all(|&s| s <= 1);
    let threshold = if cheap {
        PAR_THRESHOLD
    } else {
        PAR_THRESHOLD_STRIDED
    };
    if out.len() >= threshold && n > 0 {
        let rows_per = (PAR_CHUNK / n).max(1);
        out.par_chunks_mut(rows_per * n)
            .enumerate()
            .for_each(|(i, chunk)| body(chunk, i * rows_per));
    } else {
        body(out, 0);
    }
}

/// `f(a, b)` element-wise into a new contiguous buffer of `shape` (the
/// broadcast of both operands' shapes).
fn zip_new<F>(a: &Tensor, b: &Tensor, shape: &[usize], f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Copy + Send + Sync,
{
    let total = numel(shape);
    let mut out = vec![0.0f32; total];
    if total == 0 {
        return out;
    }
    let sa = broadcast_strides(&a.shape, &a.strides, shape);
    let sb = broadcast_strides(&b.shape, &b.strides, shape);
    let so = contiguous_strides(shape);
    let (cshape, [_, csa, csb]) = collapse(shape, [&so, &sa, &sb]);
    let n = *cshape.last().unwrap_or(&1);
    let (ia, ib) = (*csa.last().unwrap_or(&0), *csb.last().unwrap_or(&0));
    let strides = [csa, csb];
    let (da, db): (&[f32], &[f32]) = (&a.storage, &b.storage);
    let offs = [a.offset, b.offset];
    for_row_blocks(&mut out, n, &[ia, ib], |block, first| {
        let rows = Rows::new(&cshape, &strides, offs, first);
        for (row, [oa, ob]) in block.chunks_exact_mut(n).zip(rows) {
            zip_row(row, (da, oa, ia), (db, ob, ib), f);
        }
    });
    out
}

/// `dst[i] = f(dst[i], b[i])` with `b` broadcast to `shape` (the shape of `dst`).
fn zip_assign<F>(dst: &mut [f32], shape: &[usize], b: &Tensor, f: F)
where
    F: Fn(f32, f32) -> f32 + Copy + Send + Sync,
{
    if dst.is_empty() {
        return;
    }
    let sb = broadcast_strides(&b.shape, &b.strides, shape);
    let so = contiguous_strides(shape);
    let (cshape, [_, csb]) = collapse(shape, [&so, &sb]);
    let n = *cshape.last().unwrap_or(&1);
    let ib = *csb.last().unwrap_or(&0);
    let strides = [csb];
    let db: &[f32] = &b.storage;
    let offs = [b.offset];
    for_row_blocks(dst, n, &[ib], |block, first| {
        let rows = Rows::new(&cshape, &strides, offs, first);
        for (row, [ob]) in block.chunks_exact_mut(n).zip(rows) {
            assign_row(row, db, ob, ib, f);
        }
    });
}

/// An operand that may be consumed: an owned one's buffer can be reused.
pub(crate) enum Operand<'a> {
    Ref(&'a Tensor),
    Own(Tensor),
}

impl Operand<'_> {
    fn get(&self) -> &Tensor {
        match self {
            Operand::Ref(t) => t,
            Operand::Own(t) => t,
        }
    }
}

/// `f(a, b)` with broadcasting, writing into an owned operand's buffer when it
/// has the output's shape and nobody else holds it.
pub(crate) fn binary<F>(
    op: &'static str,
    a: Operand<'_>,
    b: Operand<'_>,
    f: F,
) -> Result<Tensor, TensorError>
where
    F: Fn(f32, f32) -> f32 + Copy + Send + Sync,
{
    let shape = broadcast_shape(a.get().shape(), b.get().shape()).ok_or_else(|| {
        TensorError::ShapeMismatch {
            op,
            lhs: a.get().shape.clone(),
            rhs: b.get().shape.clone(),
        }
    })?;
    let a = match a {
        Operand::Own(mut t) => {
            if t.shape == shape {
                if let Some(dst) = t.unique_slice_mut() {
                    zip_assign(dst, &shape, b.get(), f);
                    return Ok(t);
                }
            }
            Operand::Own(t)
        }
        r => r,
    };
    if let Operand::Own(mut t) = b {
        if t.shape == shape {
            if let Some(dst) = t.unique_slice_mut() {
                zip_assign(dst, &shape, a.get(), move |d, o| f(o, d));
                return Ok(t);
            }
        }
        let data = zip_new(a.get(), &t, &shape, f);
        return Ok(Tensor::contiguous_from(data, shape));
    }
    let data = zip_new(a.get(), b.get(), &shape, f);
    Ok(Tensor::contiguous_from(data, shape))
}

/// [`binary`] of two borrowed operands.
fn binary_fresh<F>(op: &'static str, a: &Tensor, b: &Tensor, f: F) -> Result<Tensor, TensorError>
where
    F: Fn(f32, f32) -> f32 + Copy + Send + Sync,
{
    binary(op, Operand::Ref(a), Operand::Ref(b), f)
}

impl Tensor {
    /// `self + rhs` with broadcasting, or an error naming both shapes.
    pub fn try_add(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("add", self, rhs, |a, b| a + b)
    }

    /// `self - rhs` with broadcasting, or an error naming both shapes.
    pub fn try_sub(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("sub", self, rhs, |a, b| a - b)
    }

    /// `self * rhs` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_mul(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("mul", self, rhs, |a, b| a * b)
    }

    /// `self / rhs` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_div(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("div", self, rhs, |a, b| a / b)
    }

    /// The element-wise maximum with broadcasting, or an error naming both
    /// shapes. Where either is `NaN` the result is the other one (`f32::max`).
    pub fn try_maximum(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("maximum", self, rhs, f32::max)
    }

    /// The element-wise minimum with broadcasting, or an error naming both shapes.
    pub fn try_minimum(&self, rhs: &Tensor) -> Result<Tensor, TensorError> {
        binary_fresh("minimum", self, rhs, f32::min)
    }

    /// The element-wise maximum with broadcasting.
    ///
    /// # Panics
    /// When the shapes cannot be broadcast (the message names both).
    #[track_caller]
    pub fn maximum(&self, rhs: &Tensor) -> Tensor {
        self.try_maximum(rhs).unwrap_or_else(|e| fail(e))
    }

    /// The element-wise minimum with broadcasting.
    ///
    /// # Panics
    /// When the shapes cannot be broadcast (the message names both).
    #[track_caller]
    pub fn minimum(&self, rhs: &Tensor) -> Tensor {
        self.try_minimum(rhs).unwrap_or_else(|e| fail(e))
    }

    /// A view of `self` broadcast to `shape` (NumPy rules: axes are matched
    /// from the right, length-1 axes stretch, missing leading axes are added).
    /// No data is copied: broadcast axes get stride 0.
    ///
    /// # Panics
    /// When `self` cannot be broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        self.try_broadcast_to(shape).unwrap_or_else(|e| fail(e))
    }

    /// [`broadcast_to`](Tensor::broadcast_to), returning an error instead of panicking.
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        if broadcast_shape(&self.shape, shape).as_deref() != Some(shape) {
            return Err(TensorError::BroadcastTo {
                op: "broadcast_to",
                from: self.shape.clone(),
                to: shape.to_vec(),
            });
        }
        let strides = broadcast_strides(&self.shape, &self.strides, shape);
        Ok(self.view(shape.to_vec(), strides, self.offset))
    }

    /// Sums `self` down to `shape`, the inverse of broadcasting `shape` to
    /// `self.shape()`: leading axes that broadcasting added are summed away,
    /// and axes where `shape` has length 1 are summed with the length kept.
    /// This is the gradient of broadcasting, so every rule for a broadcasting
    /// operation ends with it.
    ///
    /// ```
    /// use tapeless_runtime::tensor::Tensor;
    /// let g = Tensor::ones(&[2, 3, 4]);
    /// assert_eq!(g.sum_to_shape(&[3, 1]).to_vec(), vec![8.0; 3]);
    /// ```
    ///
    /// # Panics
    /// When `shape` does not broadcast to `self.shape()`.
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor {
        self.try_sum_to_shape(shape).unwrap_or_else(|e| fail(e))
    }

    /// [`sum_to_shape`](Tensor::sum_to_shape), returning an error instead of panicking.
    pub fn try_sum_to_shape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        if broadcast_shape(shape, &self.shape).as_deref() != Some(&self.shape[..]) {
            return Err(TensorError::BroadcastTo {
                op: "sum_to_shape",
                from: shape.to_vec(),
                to: self.shape.clone(),
            });
        }
        if shape == &self.shape[..] {
            return Ok(self.clone());
        }
        let mut out = vec![0.0f32; numel(shape)];
        if self.numel() == 0 {
            return Ok(Tensor::contiguous_from(out, shape.to_vec()));
        }
        // `out` read as `self.shape()`: stride 0 along the summed axes.
        let so = broadcast_strides(shape, &contiguous_strides(shape), &self.shape);
        let (cshape, [cso, css]) = collapse(&self.shape, [&so, &self.strides]);
        let n = *cshape.last().unwrap_or(&1);
        let (io, is) = (*cso.last().unwrap_or(&0), *css.last().unwrap_or(&0));
        let src: &[f32] = &self.storage;
        for [oo, os] in Rows::new(&cshape, &[cso, css], [0, self.offset], 0) {
            match (io, is) {
                (1, 1) => {
                    for (d, &x) in out[oo..oo + n].iter_mut().zip(&src[os..os + n]) {
                        *d += x;
                    }
                }
                (0, 1) => out[oo] += super::reduce::sum_slice(&src[os..os + n]),
                _ => {
                    for j in 0..n {
                        out[oo + j * io] += src[os + j * is];
                    }
                }
            }
        }
        Ok(Tensor::contiguous_from(out, shape.to_vec()))
    }

    /// `self += other` for equal shapes: in place when `self` owns its buffer
    /// alone, else into `other`'s buffer when it does, else a new buffer.
    pub(crate) fn add_assign_same_shape(&mut self, other: &Tensor) {
        let shape = self.shape.clone();
        if let Some(dst) = self.unique_slice_mut() {
            zip_assign(dst, &shape, other, |a, b| a + b);
            return;
        }
        let this = core::mem::replace(self, Tensor::scalar(0.0));
        *self = binary(
            "accumulate",
            Operand::Own(this),
            Operand::Ref(other),
            |a, b| a + b,
        )
        .unwrap_or_else(|e| fail(e));
    }

    /// `self = f(self, other)` with `other` broadcast to `self`'s shape, in
    /// place when `self` owns its buffer alone.
    #[track_caller]
    fn assign_op<F>(&mut self, op: &'static str, other: &Tensor, f: F)
    where
        F: Fn(f32, f32) -> f32 + Copy + Send + Sync,
    {
        if broadcast_shape(&self.shape, &other.shape).as_deref() != Some(&self.shape[..]) {
            fail(TensorError::ShapeMismatch {
                op,
                lhs: self.shape.clone(),
                rhs: other.shape.clone(),
            });
        }
        let shape = self.shape.clone();
        if let Some(dst) = self.unique_slice_mut() {
            zip_assign(dst, &shape, other, f);
            return;
        }
        let data = zip_new(self, other, &shape, f);
        *self = Tensor::contiguous_from(data, shape);
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $atrait:ident $amethod:ident $name:literal $f:expr;)*) => {$(
        impl ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with broadcasting; panics naming both shapes when they do not broadcast.")]
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                binary($name, Operand::Ref(self), Operand::Ref(rhs), $f).unwrap_or_else(|e| fail(e))
            }
        }
        impl ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with broadcasting, reusing an operand's buffer when possible.")]
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                binary($name, Operand::Own(self), Operand::Own(rhs), $f).unwrap_or_else(|e| fail(e))
            }
        }
        impl ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with broadcasting, reusing `rhs`'s buffer when possible.")]
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                binary($name, Operand::Ref(self), Operand::Own(rhs), $f).unwrap_or_else(|e| fail(e))
            }
        }
        impl ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with broadcasting, reusing `self`'s buffer when possible.")]
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                binary($name, Operand::Own(self), Operand::Ref(rhs), $f).unwrap_or_else(|e| fail(e))
            }
        }
        impl ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with a scalar.")]
            fn $method(self, rhs: f32) -> Tensor {
                let f = $f;
                self.map(move |x| f(x, rhs))
            }
        }
        impl ops::$trait<f32> for Tensor {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` with a scalar, in place when `self` owns its buffer.")]
            fn $method(self, rhs: f32) -> Tensor {
                let f = $f;
                self.map_owned(move |x| f(x, rhs))
            }
        }
        impl ops::$trait<&Tensor> for f32 {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` of a scalar and a tensor.")]
            fn $method(self, rhs: &Tensor) -> Tensor {
                let f = $f;
                rhs.map(move |x| f(self, x))
            }
        }
        impl ops::$trait<Tensor> for f32 {
            type Output = Tensor;
            #[doc = concat!("Element-wise `", $name, "` of a scalar and a tensor, in place when `rhs` owns its buffer.")]
            fn $method(self, rhs: Tensor) -> Tensor {
                let f = $f;
                rhs.map_owned(move |x| f(self, x))
            }
        }
        impl ops::$atrait<&Tensor> for Tensor {
            #[doc = concat!("In-place `", $name, "` with `rhs` broadcast to `self`'s shape (copy-on-write when the buffer is shared).")]
            #[track_caller]
            fn $amethod(&mut self, rhs: &Tensor) {
                self.assign_op($name, rhs, $f)
            }
        }
        impl ops::$atrait<Tensor> for Tensor {
            #[doc = concat!("In-place `", $name, "` with `rhs` broadcast to `self`'s shape (copy-on-write when the buffer is shared).")]
            #[track_caller]
            fn $amethod(&mut self, rhs: Tensor) {
                self.assign_op($name, &rhs, $f)
            }
        }
        impl ops::$atrait<f32> for Tensor {
            #[doc = concat!("In-place `", $name, "` with a scalar (copy-on-write when the buffer is shared).")]
            fn $amethod(&mut self, rhs: f32) {
                let f = $f;
                let this = core::mem::replace(self, Tensor::scalar(0.0));
                *self = this.map_owned(move |x| f(x, rhs));
            }
        }
    )*};
}

binary_ops! {
    Add add AddAssign add_assign "add" |a: f32, b: f32| a + b;
    Sub sub SubAssign sub_assign "sub" |a: f32, b: f32| a - b;
    Mul mul MulAssign mul_assign "mul" |a: f32, b: f32| a * b;
    Div div DivAssign div_assign "div" |a: f32, b: f32| a / b;
}

impl ops::Neg for &Tensor {
    type Output = Tensor;
    /// Element-wise negation.
    fn neg(self) -> Tensor {
        self.map(|x| -x)
    }
}

impl ops::Neg for Tensor {
    type Output = Tensor;
    /// Element-wise negation, in place when `self` owns its buffer.
    fn neg(self) -> Tensor {
        self.map_owned(|x| -x)
    }
}
