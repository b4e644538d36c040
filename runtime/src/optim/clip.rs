//! Gradient clipping by global norm.

use super::Real;
use crate::params::{for_each, for_each_mut, DataMut, Parameters};

/// The Euclidean norm of all buffers of `grad` taken together,
/// `sqrt(sum of g_i^2)`, accumulated in `f64`.
pub fn global_norm<M: Parameters>(grad: &M) -> f64 {
    let mut sum = 0.0;
    for_each(grad, |_, g| sum += g.data.sum_squares());
    sum.sqrt()
}

/// Scales `grad` so that its [global norm](global_norm) is at most
/// `max_norm`, and returns the norm it had before (PyTorch's
/// `clip_grad_norm_`):
///
/// ```text
/// total = sqrt(sum over all buffers of |g|^2)
/// c = max_norm / (total + 1e-6)
/// if c < 1: g = g * c          (every buffer, c converted to its precision)
/// ```
///
/// A non-finite norm (a `NaN` or infinite gradient) leaves `grad` unchanged
/// and is returned as it is, so the caller can skip the step.
///
/// ```
/// use tapeless_runtime::optim::clip_grad_norm;
/// let mut g = (3.0f64, vec![4.0f32]);
/// let norm = clip_grad_norm(&mut g, 1.0);
/// assert_eq!(norm, 5.0);
/// assert!((g.0 - 0.6).abs() < 1e-6 && (g.1[0] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<M: Parameters>(grad: &mut M, max_norm: f64) -> f64 {
    let total = global_norm(grad);
    let c = max_norm / (total + 1e-6);
    if total.is_finite() && c < 1.0 {
        for_each_mut(grad, |_, g| match g.data {
            DataMut::F32(d) => scale(d, c),
            DataMut::F64(d) => scale(d, c),
        });
    }
    total
}

fn scale<T: Real>(d: &mut [T], c: f64) {
    let c = T::of(c);
    for x in d {
        *x = *x * c;
    }
}
