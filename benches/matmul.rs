//! Matmul benches (being written).
fn main() {}
