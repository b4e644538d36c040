//! Derivative rules of tensor operations (being written).
