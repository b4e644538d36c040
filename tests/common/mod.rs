//! Shared oracles for the `grad_*` integration tests: central finite
//! differences over scalars, slices and arrays, and a tolerance check whose
//! failure message says what was compared.
#![allow(dead_code)]

/// Default relative tolerance for f64 gradients checked against finite differences.
pub const RTOL: f64 = 1e-5;
/// Default absolute tolerance for f64 gradients checked against finite differences.
pub const ATOL: f64 = 1e-6;

/// Step for a central difference at `x`: 1e-6, scaled up for large `|x|`.
pub fn step(x: f64) -> f64 {
    1e-6 * x.abs().max(1.0)
}

/// Central finite difference of a scalar function at `x`.
pub fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = step(x);
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// Central finite-difference gradient of `f` over a slice input.
pub fn fd_slice(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            let h = step(x[i]);
            xs[i] = x[i] + h;
            let fp = f(&xs);
            xs[i] = x[i] - h;
            let fm = f(&xs);
            xs[i] = x[i];
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Central finite-difference gradient of `f` over an array input.
pub fn fd_array<const N: usize>(f: impl Fn([f64; N]) -> f64, x: [f64; N]) -> [f64; N] {
    let g = fd_slice(
        |s| {
            let mut a = [0.0; N];
            a.copy_from_slice(s);
            f(a)
        },
        &x,
    );
    let mut out = [0.0; N];
    out.copy_from_slice(&g);
    out
}

/// Central finite-difference gradient of `f` over a `Vec<Vec<f64>>` input
/// (row by row).
pub fn fd_matrix(f: impl Fn(&[Vec<f64>]) -> f64, x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut xs = x.to_vec();
    let mut out = Vec::new();
    for i in 0..x.len() {
        let mut row = Vec::new();
        for j in 0..x[i].len() {
            let h = step(x[i][j]);
            xs[i][j] = x[i][j] + h;
            let fp = f(&xs);
            xs[i][j] = x[i][j] - h;
            let fm = f(&xs);
            xs[i][j] = x[i][j];
            row.push((fp - fm) / (2.0 * h));
        }
        out.push(row);
    }
    out
}

/// `|actual - expected| <= atol + rtol * |expected|`, or a panic naming `what`.
#[track_caller]
pub fn assert_close_tol(actual: f64, expected: f64, rtol: f64, atol: f64, what: &str) {
    let ok = (actual - expected).abs() <= atol + rtol * expected.abs();
    assert!(
        ok && actual.is_finite() == expected.is_finite(),
        "{what}: got {actual:e}, expected {expected:e} (|diff| = {:e}, rtol = {rtol:e}, atol = {atol:e})",
        (actual - expected).abs()
    );
}

/// [`assert_close_tol`] with the default f64 tolerances.
#[track_caller]
pub fn assert_close(actual: f64, expected: f64, what: &str) {
    assert_close_tol(actual, expected, RTOL, ATOL, what);
}

/// Element-wise [`assert_close_tol`], with lengths checked first.
#[track_caller]
pub fn assert_all_close_tol(actual: &[f64], expected: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length {} but expected {} (got {actual:?}, expected {expected:?})",
        actual.len(),
        expected.len()
    );
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_close_tol(
            a,
            e,
            rtol,
            atol,
            &format!("{what}[{i}] (got {actual:?}, expected {expected:?})"),
        );
    }
}

/// Element-wise [`assert_close`].
#[track_caller]
pub fn assert_all_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_all_close_tol(actual, expected, RTOL, ATOL, what);
}

/// f32 comparison: converts to f64 and checks with a loose default tolerance.
#[track_caller]
pub fn assert_close_f32(actual: f32, expected: f64, what: &str) {
    assert_close_tol(f64::from(actual), expected, 1e-3, 1e-3, what);
}

/// Several sample points around zero, negatives included.
pub const POINTS: [f64; 6] = [-1.7, -0.6, -0.05, 0.3, 0.9, 2.2];

/// Sample points in (-1, 1), for functions like asin/atanh.
pub const UNIT_POINTS: [f64; 5] = [-0.8, -0.35, 0.05, 0.4, 0.75];

/// Strictly positive sample points, for ln/sqrt and friends.
pub const POS_POINTS: [f64; 5] = [0.2, 0.7, 1.3, 2.5, 4.0];
