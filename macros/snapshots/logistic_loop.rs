#[differentiable(wrt(w, b))]
fn logistic(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let z = y[i] * (w * x[i] + b);
        s += (-z).exp().ln_1p();
    }
    s
}
