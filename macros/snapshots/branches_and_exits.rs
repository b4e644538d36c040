// Branches on active values, `continue`, `break` and an early `return`.
#[differentiable]
pub fn clipped_sum(x: &[f64], limit: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] < 0.0 {
            continue;
        }
        let y = if x[i] > 1.0 { x[i].sqrt() } else { x[i] * x[i] };
        s += y;
        if s > limit {
            return limit;
        }
    }
    s
}
