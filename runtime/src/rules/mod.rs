//! Derivative rules: one entry per primitive operation.
//!
//! The macro never writes a derivative itself; for each primitive it calls the
//! rule named here. Each rule takes exactly what it needs (operand values,
//! operand shapes as [`ShapeOf`](crate::__private::ShapeOf), the output value)
//! followed by the cotangent `d` of the output, and returns the cotangent
//! contribution for one operand.

mod scalar;
mod tensor;

pub use scalar::*;
pub use tensor::*;
