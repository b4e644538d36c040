//! Reductions (over everything and along an axis) and the numerically stable
//! softmax / log-softmax.
//!
//! Along-axis kernels see the (contiguous) input as `[outer, len, inner]`
//! with `len` the reduced axis: with `inner == 1` each output reduces one
//! contiguous row; otherwise whole `inner`-long rows are combined element-wise,
//! which vectorises too. Work is split over `outer` on rayon's pool when the
//! input is large.

use super::error::{fail, TensorError};
use super::{fastmath, Tensor, PAR_THRESHOLD, PAR_THRESHOLD_STRIDED};
use rayon::prelude::*;

/// Block length of [`sum_slice`]: partial sums of this many elements are
/// added in `f64`, so long sums lose little precision.
const SUM_BLOCK: usize = 4096;

/// Sum of one block with 16 independent lanes (vectorised).
#[inline(always)]
fn sum_block(s: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = s.chunks_exact(16);
    let rem = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut t = 0.0f32;
    for (i, a) in acc.iter().enumerate().take(8) {
        t += a + acc[i + 8];
    }
    t + rem.iter().sum::<f32>()
}

/// The sum of a slice: vectorised within blocks, blocks added in `f64`,
/// blocks in parallel for long slices.
pub(crate) fn sum_slice(s: &[f32]) -> f32 {
    if s.len() <= SUM_BLOCK {
        return sum_block(s);
    }
    let total: f64 = if s.len() >= PAR_THRESHOLD {
        s.par_chunks(SUM_BLOCK).map(|b| sum_block(b) as f64).sum()
    } else {
        s.chunks(SUM_BLOCK).map(|b| sum_block(b) as f64).sum()
    };
    total as f32
}

/// The index of the first maximum of `s` (the first `NaN` if there is one).
#[inline]
fn argmax_slice(s: &[f32]) -> usize {
    let mut best = 0;
    let mut m = s[0];
    if m.is_nan() {
        return 0;
    }
    for (i, &x) in s.iter().enumerate().skip(1) {
        if x > m {
            m = x;
            best = i;
        } else if x.is_nan() {
            return i;
        }
    }
    best
}

/// `[outer, len, inner]` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// The output shape of a reduction along `axis`.
fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl Tensor {
    #[track_caller]
    fn check_axis(&self, op: &'static str, axis: usize) {
        if axis >= self.rank() {
            fail(TensorError::AxisOutOfRange {
                op,
                axis,
                shape: self.shape.clone(),
            });
        }
    }

    /// The sum of all elements (0 for an empty tensor).
    pub fn sum(&self) -> f32 {
        sum_slice(&self.data())
    }

    /// The mean of all elements (`NaN` for an empty tensor).
    pub fn mean(&self) -> f32 {
        self.sum() / self.numel() as f32
    }

    /// The largest element (`NaN` if any element is `NaN`).
    ///
    /// # Panics
    /// When the tensor is empty.
    #[track_caller]
    pub fn max(&self) -> f32 {
        let d = self.data();
        if d.is_empty() {
            panic!("max: shape {:?} has no elements", self.shape);
        }
        d[argmax_slice(&d)]
    }

    /// The smallest element (`NaN` if any element is `NaN`).
    ///
    /// # Panics
    /// When the tensor is empty.
    #[track_caller]
    pub fn min(&self) -> f32 {
        let d = self.data();
        if d.is_empty() {
            panic!("min: shape {:?} has no elements", self.shape);
        }
        let mut m = d[0];
        for &x in d.iter() {
            if x < m || x.is_nan() {
                m = x;
                if m.is_nan() {
                    break;
                }
            }
        }
        m
    }

    /// Sums along `axis`; `keepdim` keeps it with length 1 (`[2, 3]` along 1:
    /// `[2]`, or `[2, 1]` with `keepdim`).
    ///
    /// # Panics
    /// When `axis >= self.rank()`.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        self.check_axis("sum_axis", axis);
        let (outer, len, inner) = split(&self.shape, axis);
        let d = self.data();
        let mut out = vec![0.0f32; outer * inner];
        let shape = reduced_shape(&self.shape, axis, keepdim);
        if out.is_empty() {
            return Tensor::contiguous_from(out, shape);
        }
        let one = |o: usize, dst: &mut [f32]| {
            let block = &d[o * len * inner..(o + 1) * len * inner];
            if inner == 1 {
                dst[0] = sum_slice(block);
            } else {
                for row in block.chunks_exact(inner) {
                    for (a, &x) in dst.iter_mut().zip(row) {
                        *a += x;
                    }
                }
            }
        };
        if d.len() >= PAR_THRESHOLD && outer > 1 {
            out.par_chunks_mut(inner)
                .enumerate()
                .for_each(|(o, dst)| one(o, dst));
        } else {
            out.chunks_mut(inner)
                .enumerate()
                .for_each(|(o, dst)| one(o, dst));
        }
        Tensor::contiguous_from(out, shape)
    }

    /// Means along `axis` (see [`sum_axis`](Tensor::sum_axis) for `keepdim`).
    ///
    /// # Panics
    /// When `axis >= self.rank()`.
    #[track_caller]
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        self.check_axis("mean_axis", axis);
        let len = self.shape[axis] as f32;
        self.sum_axis(axis, keepdim).map_owned(move |x| x / len)
    }

    /// Maxima along `axis` (see [`sum_axis`](Tensor::sum_axis) for `keepdim`);
    /// the value at [`argmax_axis`](Tensor::argmax_axis).
    ///
    /// # Panics
    /// When `axis >= self.rank()` or the axis has length 0.
    #[track_caller]
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        let idx = self.argmax_axis(axis);
        let (_, len, inner) = split(&self.shape, axis);
        let d = self.data();
        let out = idx
            .iter()
            .enumerate()
            .map(|(r, &j)| {
                let (o, i) = (r / inner, r % inner);
                d[(o * len + j) * inner + i]
            })
            .collect();
        Tensor::contiguous_from(out, reduced_shape(&self.shape, axis, keepdim))
    }

    /// The index along `axis` of each maximum (the first one on ties, the
    /// first `NaN` if any), in row-major order of the reduced shape.
    ///
    /// # Panics
    /// When `axis >= self.rank()` or the axis has length 0.
    #[track_caller]
    pub fn argmax_axis(&self, axis: usize) -> Vec<usize> {
        self.check_axis("argmax_axis", axis);
        let (outer, len, inner) = split(&self.shape, axis);
        if len == 0 && outer * inner > 0 {
            panic!(
                "argmax_axis: axis {axis} of shape {:?} has length 0",
                self.shape
            );
        }
        let d = self.data();
        let mut out = vec![0usize; outer * inner];
        if inner == 1 {
            for (o, r) in out.iter_mut().enumerate() {
                *r = argmax_slice(&d[o * len..(o + 1) * len]);
            }
            return out;
        }
        let mut best = vec![0.0f32; inner];
        for (o, idx) in out.chunks_mut(inner).enumerate() {
            let block = &d[o * len * inner..(o + 1) * len * inner];
            best.copy_from_slice(&block[..inner]);
            for (j, row) in block.chunks_exact(inner).enumerate().skip(1) {
                for ((b, i), &x) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
                    if x > *b || (x.is_nan() && !b.is_nan()) {
                        *b = x;
                        *i = j;
                    }
                }
            }
        }
        out
    }

    /// The softmax along `axis`: `exp(x - max) / Σ exp(x - max)`. Subtracting
    /// the maximum keeps every exponent ≤ 0, so large inputs stay finite.
    ///
    /// # Panics
    /// When `axis >= self.rank()`.
    #[track_caller]
    pub fn softmax(&self, axis: usize) -> Tensor {
        self.check_axis("softmax", axis);
        self.softmax_impl(axis, false)
    }

    /// The log-softmax along `axis`: `x - max - ln Σ exp(x - max)`, stable for
    /// large inputs and more accurate than `softmax(axis).ln()`.
    ///
    /// # Panics
    /// When `axis >= self.rank()`.
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Tensor {
        self.check_axis("log_softmax", axis);
        self.softmax_impl(axis, true)
    }

    fn softmax_impl(&self, axis: usize, log: bool) -> Tensor {
        let (_, len, inner) = split(&self.shape, axis);
        let d = self.data();
        let mut out = vec![0.0f32; d.len()];
        let block = len * inner;
        if block == 0 {
            return Tensor::contiguous_from(out, self.shape.clone());
        }
        let one = |o: usize, dst: &mut [f32]| {
            softmax_block(&d[o * block..(o + 1) * block], dst, inner, log);
        };
        if d.len() >= PAR_THRESHOLD_STRIDED && d.len() > block {
            out.par_chunks_mut(block)
                .enumerate()
                .for_each(|(o, dst)| one(o, dst));
        } else {
            out.chunks_mut(block)
                .enumerate()
                .for_each(|(o, dst)| one(o, dst));
        }
        Tensor::contiguous_from(out, self.shape.clone())
    }
}

/// Softmax (or log-softmax) of a `[len, inner]` block along its first axis,
/// with the widest vectors the CPU has (AVX2 doubles the lanes of the
/// `exp` loop; the results are bit-identical to the SSE2 version's).
fn softmax_block(src: &[f32], dst: &mut [f32], inner: usize, log: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only
        // requirement of `softmax_block_avx2`.
        return unsafe { softmax_block_avx2(src, dst, inner, log) };
    }
    softmax_block_generic(src, dst, inner, log)
}

/// [`softmax_block_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softmax_block_avx2(src: &[f32], dst: &mut [f32], inner: usize, log: bool) {
    softmax_block_generic(src, dst, inner, log)
}

#[inline(always)]
fn softmax_block_generic(src: &[f32], dst: &mut [f32], inner: usize, log: bool) {
    if inner == 1 {
        softmax_row(src, dst, log);
    } else {
        softmax_strided(src, dst, inner, log);
    }
}

/// The maximum of a non-empty slice with 16 independent lanes (vectorised;
/// `NaN`s are skipped, as `f32::max` does).
#[inline(always)]
fn max_lanes(s: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = s.chunks_exact(16);
    let rem = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.max(x);
        }
    }
    acc.iter()
        .chain(rem)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// Softmax (or log-softmax) of one contiguous row: three vectorised passes
/// (maximum, exponentials and their sum, scaling).
#[inline(always)]
fn softmax_row(src: &[f32], dst: &mut [f32], log: bool) {
    let m = max_lanes(src);
    for (y, &x) in dst.iter_mut().zip(src) {
        *y = fastmath::exp(x - m);
    }
    let s = sum_block(dst);
    if log {
        let shift = m + s.ln();
        for (y, &x) in dst.iter_mut().zip(src) {
            *y = x - shift;
        }
    } else {
        let inv = 1.0 / s;
        for y in dst.iter_mut() {
            *y *= inv;
        }
    }
}

/// Softmax (or log-softmax) of a `[len, inner]` block along its first axis.
#[inline(always)]
fn softmax_strided(src: &[f32], dst: &mut [f32], inner: usize, log: bool) {
    let mut m = vec![f32::NEG_INFINITY; inner];
    for row in src.chunks_exact(inner) {
        for (a, &x) in m.iter_mut().zip(row) {
            *a = a.max(x);
        }
    }
    let mut s = vec![0.0f32; inner];
    for (drow, row) in dst.chunks_exact_mut(inner).zip(src.chunks_exact(inner)) {
        for ((y, &x), (a, &mx)) in drow.iter_mut().zip(row).zip(s.iter_mut().zip(&m)) {
            *y = fastmath::exp(x - mx);
            *a += *y;
        }
    }
    if log {
        let shift: Vec<f32> = m.iter().zip(&s).map(|(&mx, &a)| mx + a.ln()).collect();
        for (drow, row) in dst.chunks_exact_mut(inner).zip(src.chunks_exact(inner)) {
            for ((y, &x), &sh) in drow.iter_mut().zip(row).zip(&shift) {
                *y = x - sh;
            }
        }
    } else {
        let inv: Vec<f32> = s.iter().map(|&a| 1.0 / a).collect();
        for drow in dst.chunks_exact_mut(inner) {
            for (y, &i) in drow.iter_mut().zip(&inv) {
                *y *= i;
            }
        }
    }
}
