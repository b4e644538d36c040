// A function that calls itself: `series_adjoint_acc` adds into the caller's
// gradient of `x`, and the recursive call lends its own (`x` is passed
// through unchanged); `series_adjoint` wraps it with a fresh zero.
#[differentiable]
fn series(x: &[f64], i: usize) -> f64 {
    if i >= x.len() {
        0.0
    } else {
        x[i] * (1.0 + series(x, i + 1))
    }
}
