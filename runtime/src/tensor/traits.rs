//! The traits generated code needs: a tensor is differentiable, its own
//! tangent, and has a shape.

use super::Tensor;
use crate::__private::Shaped;
use crate::tangent::{Differentiable, Tangent};

impl Differentiable for Tensor {
    type Tangent = Tensor;

    /// Zeros of the same shape.
    fn zero_tangent(&self) -> Tensor {
        Tensor::zeros(self.shape())
    }

    /// The shapeless zero becomes zeros of this tensor's shape.
    fn complete_tangent(&self, t: Tensor) -> Tensor {
        if t.is_shapeless_zero() && self.numel() != 0 {
            self.zero_tangent()
        } else {
            t
        }
    }
}

impl Tensor {
    /// Whether this is the shapeless zero tangent ([`Tangent::zero`]): the
    /// rank-1 tensor of shape `[0]`.
    #[inline]
    pub fn is_shapeless_zero(&self) -> bool {
        self.shape() == [0]
    }
}

impl Tangent for Tensor {
    /// The *shapeless* zero: a rank-1 tensor of shape `[0]` (no elements, no
    /// allocation beyond the empty buffer), which stands for a zero of any
    /// shape under [`accumulate`](Tangent::accumulate). Generated code declares
    /// adjoints with it before it knows the value's shape; gradients handed to
    /// users start from [`Differentiable::zero_tangent`] and are full-shaped.
    fn zero() -> Tensor {
        Tensor::contiguous_from(Vec::new(), vec![0])
    }

    /// `self += other`: takes `other` when `self` is the shapeless zero, does
    /// nothing when `other` is, and otherwise adds element-wise, in place when
    /// `self` owns its buffer alone (no allocation).
    ///
    /// # Panics
    /// When neither is the shapeless zero and the shapes differ.
    #[track_caller]
    fn accumulate(&mut self, other: Tensor) {
        if self.is_shapeless_zero() {
            *self = other;
            return;
        }
        if other.is_shapeless_zero() {
            return;
        }
        if self.shape() != other.shape() {
            panic!(
                "accumulate: gradient shapes {:?} and {:?} differ",
                self.shape(),
                other.shape()
            );
        }
        self.add_assign_same_shape(&other);
    }
}

impl Shaped for Tensor {
    type Shape = Vec<usize>;

    fn shape(&self) -> Vec<usize> {
        Tensor::shape(self).to_vec()
    }
}

crate::__impl_prim!([] Tensor);
