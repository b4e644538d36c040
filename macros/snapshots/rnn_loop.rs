// A recurrence over a slice: loop-carried state read by a nonlinear operation.
#[differentiable]
pub fn rnn(w: f64, u: f64, xs: &[f64]) -> f64 {
    let mut h = 0.0;
    for &x in xs {
        h = (w * h + u * x).tanh();
    }
    h * h
}
