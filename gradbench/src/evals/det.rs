//! `det`: the determinant of an `ℓ × ℓ` matrix by expansion by minors
//! (cmpad's `det_by_minor`), and its gradient.

use crate::protocol::{parse, timed, Evaluated};
use serde::Deserialize;
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    #[serde(rename = "A")]
    a: Vec<f64>,
    ell: usize,
}

/// The largest matrix edge (removed columns are the bits of a `u32`).
pub const MAX_ELL: usize = 32;

/// The determinant of the minor of `a` (row-major, `n × n`) made of rows
/// `row..n` and the columns not in the bitmask `removed`, expanded along its
/// first row.
#[differentiable]
pub fn det_of_minor(a: &[f64], n: usize, row: usize, removed: u32) -> f64 {
    if row + 1 == n {
        // a 1 × 1 minor (cmpad's `m == 1`): the entry in the one column
        // left, the lowest bit not in `removed`
        return a[row * n + (!removed).trailing_zeros() as usize];
    }
    let mut det = 0.0;
    let mut sign = 1.0;
    for col in 0..n {
        if removed & (1 << col) == 0 {
            det += sign * a[row * n + col] * det_of_minor(a, n, row + 1, removed | (1 << col));
            sign = -sign;
        }
    }
    det
}

/// The determinant of `a`, `ell × ell`.
pub fn det(a: &[f64], ell: usize) -> f64 {
    det_of_minor(a, ell, 0, 0)
}

/// The gradient of [`det`].
pub fn gradient(a: &[f64], ell: usize) -> Vec<f64> {
    det_of_minor_grad(a, ell, 0, 0).1
}

/// Evaluates `primal` or `gradient`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let Input { a, ell } = parse(input.clone())?;
    if ell > MAX_ELL || a.len() != ell * ell {
        return Err(format!("need ell ≤ {MAX_ELL} and ell² elements"));
    }
    match function {
        "primal" => timed(&input, a, |a| det(a, ell)),
        "gradient" => timed(&input, a, |a| gradient(a, ell)),
        _ => Err(super::unknown("det", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    #[test]
    fn determinant_and_gradient() {
        // det [[1 2 0] [3 4 1] [0 5 6]] = 1(24-5) - 2(18-0) + 0 = -17
        let a = [1.0, 2.0, 0.0, 3.0, 4.0, 1.0, 0.0, 5.0, 6.0];
        assert_eq!(det(&a, 3), -17.0);
        for ell in [1, 2, 4] {
            let a = rand_vec(ell as u64, ell * ell, 1.0);
            let g = gradient(&a, ell);
            assert_close(&g, &fd_gradient(|a| det(a, ell), &a), &format!("ell={ell}"));
        }
    }
}
