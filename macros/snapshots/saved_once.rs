// Immutable bindings of a loop body read by several statements (`g`, `h`):
// each is pushed once per iteration, by its first reader at the top of the
// body, and popped once at the start of the reverse iteration; the reads in
// the branch and in the inner loop use the popped value.
#[differentiable(wrt(w))]
fn saved_once(w: &[f64], x: &[f64]) -> f64 {
    let mut total = 0.0;
    for i in 0..x.len() {
        let g = (w[0] * x[i]).sigmoid();
        let h = (w[1] * x[i] + g).tanh();
        total += g * h;
        if h > 0.0 {
            total += g * g * h;
        } else {
            total += g * g;
        }
        if x[i] > 1.5 {
            break;
        }
        for k in 0..3 {
            total += g * h * (k as f64 + w[2]);
        }
    }
    total
}
