// The quick-start loss: straight-line code, two active parameters.
#[differentiable]
pub fn loss(w: f64, x: f64) -> f64 {
    (w * x - 10.0).powi(2)
}
