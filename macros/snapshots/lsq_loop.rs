#[differentiable(wrt(w, b))]
fn lsq(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let r = w * x[i] + b - y[i];
        s += r * r;
    }
    s
}
