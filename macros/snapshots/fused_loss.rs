// A sum returned right after its loop: the reverse sweep runs inside the
// forward loop, one iteration at a time (a `while` inside keeps its own
// trip-count record; `tanh`'s output is saved and read in the same iteration).
#[differentiable(wrt(w))]
fn fused_loss(w: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let mut loss = 0.0;
    for i in 0..x.len() {
        let h = (w[0] * x[i] + w[1]).tanh();
        let mut k = 0;
        let mut p = h;
        while k < i % 3 {
            p = p * h + w[2];
            k += 1;
        }
        let r = p - y[i];
        loss += r * r;
    }
    loss
}
