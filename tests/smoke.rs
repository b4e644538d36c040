use tapeless::differentiable;

#[differentiable]
pub fn loss(w: f64, x: f64) -> f64 {
    (w * x - 10.0).powi(2)
}

#[differentiable]
fn rnn(w: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = (w * h + x[i]).tanh();
    }
    h * h
}

#[test]
fn seed() {
    assert_eq!(loss_grad(2.0, 3.0), (16.0, (-24.0, -16.0)));
}

#[test]
fn rnn_fd() {
    let x = [0.5, -0.3, 0.8];
    let (v, (dw, dx)) = rnn_grad(0.7, &x);
    assert_eq!(v, rnn(0.7, &x));
    let h = 1e-6;
    let fd = (rnn(0.7 + h, &x) - rnn(0.7 - h, &x)) / (2.0 * h);
    assert!((dw - fd).abs() < 1e-6, "{dw} {fd}");
    for i in 0..3 {
        let mut xp = x;
        xp[i] += h;
        let mut xm = x;
        xm[i] -= h;
        let fd = (rnn(0.7, &xp) - rnn(0.7, &xm)) / (2.0 * h);
        assert!((dx[i] - fd).abs() < 1e-6, "{i} {} {fd}", dx[i]);
    }
}
