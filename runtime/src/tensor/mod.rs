//! N-dimensional `f32` tensors (being written).
