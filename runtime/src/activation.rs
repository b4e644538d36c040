//! Activation functions as methods of `f32` and `f64`, for scalar code
//! (`x.sigmoid()`, as `Tensor::sigmoid` for tensors).
//!
//! In `#[differentiable]` code each method is one operation with its own
//! derivative rule ([`crate::rules::Sigmoid`]): the reverse sweep keeps the
//! output and multiplies by `y (1 - y)`, instead of differentiating the
//! `exp`, sum and division it is made of (and, through a helper function,
//! recomputing them in the helper's pullback).

/// Activation functions of a float.
pub trait Activation: Sized {
    /// The logistic function `1 / (1 + e^-x)`: 0 at `-inf`, 1 at `+inf`.
    fn sigmoid(self) -> Self;
}

macro_rules! activation {
    ($($t:ty)*) => {$(
        impl Activation for $t {
            #[inline]
            fn sigmoid(self) -> $t {
                1.0 / (1.0 + (-self).exp())
            }
        }
    )*};
}

activation!(f32 f64);

#[cfg(test)]
mod tests {
    use super::Activation;

    #[test]
    fn sigmoid_values() {
        assert_eq!(0.0f64.sigmoid(), 0.5);
        assert_eq!(0.0f32.sigmoid(), 0.5);
        assert!((2.0f64.sigmoid() - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert_eq!((-1000.0f64).sigmoid(), 0.0);
        assert_eq!(1000.0f64.sigmoid(), 1.0);
    }
}
