// Counted loops (trip counts recomputed), a shaped adjoint indexed in place
// (`x`, `y`), and a loop-invariant adjoint element summed in a local (`x[c]`).
#[differentiable(wrt(x, y))]
fn promoted(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for c in 0..n {
        for r in c + 1..n {
            s += (y[r] * x[c]).sin();
        }
    }
    s
}
