//! Element-wise maps: straight loops over contiguous data (which LLVM
//! vectorises for the arithmetic ones), split over rayon's pool above a size
//! threshold.

use super::{fastmath, Tensor, PAR_THRESHOLD, PAR_THRESHOLD_HEAVY, PAR_THRESHOLD_STRIDED};
use rayon::prelude::*;

/// Target size, in elements, of one parallel work item.
const PAR_CHUNK: usize = 1 << 13;

/// `dst[i] = f(src[i])`, or `dst[i] = f(dst[i])` when `src` is `None`.
#[inline(always)]
fn map_slice<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], f: F) {
    match src {
        Some(src) => {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = f(x);
            }
        }
        None => {
            for x in dst.iter_mut() {
                *x = f(*x);
            }
        }
    }
}

/// [`map_slice`] compiled for AVX2 (8 lanes instead of SSE2's 4).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_slice_avx2<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], f: F) {
    map_slice(src, dst, f)
}

/// [`map_slice`] with the widest vectors the CPU has. Rust never fuses
/// multiplies and adds on its own, so both versions give bit-identical
/// results; the AVX2 one is about 2× faster for `exp`/`tanh`-based maps.
#[inline(always)]
fn map_chunk<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], f: F) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only
        // requirement of `map_slice_avx2`.
        return unsafe { map_slice_avx2(src, dst, f) };
    }
    map_slice(src, dst, f)
}

/// `dst[i] = f(src[i])`.
#[inline(always)]
fn map_into<F: Fn(f32) -> f32 + Copy + Send + Sync>(
    src: &[f32],
    dst: &mut [f32],
    threshold: usize,
    f: F,
) {
    if src.len() >= threshold {
        dst.par_chunks_mut(PAR_CHUNK)
            .zip(src.par_chunks(PAR_CHUNK))
            .for_each(|(d, s)| map_chunk(Some(s), d, f));
    } else {
        map_chunk(Some(src), dst, f);
    }
}

/// `v[i] = f(v[i])`.
#[inline(always)]
fn map_in_place<F: Fn(f32) -> f32 + Copy + Send + Sync>(v: &mut [f32], threshold: usize, f: F) {
    if v.len() >= threshold {
        v.par_chunks_mut(PAR_CHUNK)
            .for_each(|d| map_chunk(None, d, f));
    } else {
        map_chunk(None, v, f);
    }
}

impl Tensor {
    /// `f` applied to every element, into a new contiguous tensor.
    pub(crate) fn map<F: Fn(f32) -> f32 + Copy + Send + Sync>(&self, f: F) -> Tensor {
        self.map_t(PAR_THRESHOLD, f)
    }

    /// [`Tensor::map`] with an explicit parallel threshold.
    pub(crate) fn map_t<F: Fn(f32) -> f32 + Copy + Send + Sync>(
        &self,
        threshold: usize,
        f: F,
    ) -> Tensor {
        match self.as_slice() {
            Some(src) => {
                let mut out = vec![0.0f32; src.len()];
                map_into(src, &mut out, threshold, f);
                Tensor::contiguous_from(out, self.shape.clone())
            }
            None => {
                let mut out = self.to_vec();
                map_in_place(&mut out, threshold, f);
                Tensor::contiguous_from(out, self.shape.clone())
            }
        }
    }

    /// `f` applied to every element, in place when `self` owns its buffer alone.
    pub(crate) fn map_owned<F: Fn(f32) -> f32 + Copy + Send + Sync>(mut self, f: F) -> Tensor {
        match self.unique_slice_mut() {
            Some(v) => {
                map_in_place(v, PAR_THRESHOLD, f);
                self
            }
            None => self.map(f),
        }
    }

    /// `eˣ` element-wise (a vectorised polynomial within 2 ulp of the exact
    /// value; results below the smallest normal `f32` flush to 0).
    pub fn exp(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_STRIDED, fastmath::exp)
    }

    /// The natural logarithm element-wise (`NaN` below 0, `-inf` at 0).
    pub fn ln(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_HEAVY, f32::ln)
    }

    /// The square root element-wise (`NaN` below 0).
    pub fn sqrt(&self) -> Tensor {
        self.map(f32::sqrt)
    }

    /// `xᵖ` element-wise.
    pub fn powf(&self, p: f32) -> Tensor {
        self.map_t(PAR_THRESHOLD_HEAVY, move |x| x.powf(p))
    }

    /// `|x|` element-wise.
    pub fn abs(&self) -> Tensor {
        self.map(f32::abs)
    }

    /// `max(x, 0)` element-wise (0 for `NaN`).
    pub fn relu(&self) -> Tensor {
        self.map(|x| if x > 0.0 { x } else { 0.0 })
    }

    /// `x` where positive, `alpha * x` elsewhere.
    pub fn leaky_relu(&self, alpha: f32) -> Tensor {
        self.map(move |x| if x > 0.0 { x } else { alpha * x })
    }

    /// The logistic function `1 / (1 + e⁻ˣ)` element-wise (0 and 1 at the
    /// extremes, never `NaN` for finite input).
    pub fn sigmoid(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_STRIDED, sigmoid)
    }

    /// The hyperbolic tangent element-wise (vectorised, within 3 ulp).
    pub fn tanh(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_STRIDED, fastmath::tanh)
    }

    /// GELU with the tanh approximation, as PyTorch's `gelu(x, approximate='tanh')`:
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    pub fn gelu(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_STRIDED, gelu)
    }

    /// The derivative of [`gelu`](Tensor::gelu) (tanh approximation) at each
    /// element, for its gradient rule: with `u = √(2/π) (x + 0.044715 x³)`,
    /// `0.5 (1 + tanh u) + 0.5 x (1 − tanh² u) √(2/π) (1 + 3·0.044715 x²)`.
    pub fn gelu_derivative(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_STRIDED, gelu_derivative)
    }

    /// The sine element-wise.
    pub fn sin(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_HEAVY, f32::sin)
    }

    /// The cosine element-wise.
    pub fn cos(&self) -> Tensor {
        self.map_t(PAR_THRESHOLD_HEAVY, f32::cos)
    }

    /// `-x` element-wise (the same as the `-` operator).
    pub fn neg(&self) -> Tensor {
        self.map(|x| -x)
    }

    /// `1 / x` element-wise.
    pub fn recip(&self) -> Tensor {
        self.map(|x| 1.0 / x)
    }

    /// `x²` element-wise.
    pub fn square(&self) -> Tensor {
        self.map(|x| x * x)
    }

    /// `x` clamped to `[min, max]` element-wise.
    pub fn clamp(&self, min: f32, max: f32) -> Tensor {
        self.map(move |x| x.clamp(min, max))
    }

    /// `f` applied to every element (any closure; runs in parallel on large
    /// tensors, so it must be `Send + Sync`).
    pub fn map_elements<F: Fn(f32) -> f32 + Copy + Send + Sync>(&self, f: F) -> Tensor {
        self.map_t(PAR_THRESHOLD_HEAVY, f)
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + fastmath::exp(-x))
}

/// √(2/π).
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fastmath::tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)))
}

#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    let t = fastmath::tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)
}
