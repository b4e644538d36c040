//! Derivative rules for the scalar math of `f32` and `f64` (being written).
