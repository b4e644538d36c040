// Forward mode and Hessians: a loop with an accumulator, a branch, a call.
#[differentiable(forward, hessian)]
pub fn energy(x: &[f64], k: f64) -> f64 {
    let mut e = 0.0;
    for i in 1..x.len() {
        let d = x[i] - x[i - 1];
        if d > 0.0 {
            e += k * d * d;
        } else {
            e += spring(d);
        }
    }
    e / x[0].exp()
}
