// A sum returned right after its loop, with a scratch buffer declared outside
// the loop: every iteration writes `r[t]` for `t in 0..d` (`r` is
// `vec![0.0; d]`) before reading it, so no value flows between iterations
// and the loop is still fused (the stacks hold one iteration).
#[differentiable(wrt(w))]
fn fused_scratch(w: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let d = w.len();
    let mut r = vec![0.0; d];
    let mut loss = 0.0;
    for i in 0..y.len() {
        for t in 0..d {
            r[t] = w[t] * x[i * d + t];
        }
        let mut p = 0.0;
        for t in 0..d {
            p += r[t].sin();
        }
        loss += (p - y[i]) * (p - y[i]);
    }
    loss
}
