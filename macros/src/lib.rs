//! The `#[differentiable]` source transformation.
#![forbid(unsafe_code)]
