//! The outer gradient-descent solver of `particle` and `saddle`, as in
//! GradBench's `cpp/gradbench/gd.hpp` (and its Haskell and Futhark tools).
//! It is not differentiated: the derivatives it is given are.
//! (The inner solvers, which are differentiated, are written out inside the
//! `#[differentiable]` functions of each eval.)

/// `argmin f` by gradient descent from `x0`, `grad` being `∇f`.
pub fn argmin(
    f: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64]) -> Vec<f64>,
    x0: &[f64],
) -> Vec<f64> {
    let mut x = x0.to_vec();
    let mut fx = f(&x);
    let mut gx = grad(&x);
    let mut eta = 1e-5;
    let mut i = 0;
    loop {
        if norm(&gx) <= 1e-5 {
            return x;
        } else if i == 10 {
            eta *= 2.0;
            i = 0;
        } else {
            let x_prime: Vec<f64> = x.iter().zip(&gx).map(|(x, g)| x - eta * g).collect();
            let dist: Vec<f64> = x.iter().zip(&x_prime).map(|(a, b)| a - b).collect();
            if norm(&dist) <= 1e-5 {
                return x;
            }
            let fx_prime = f(&x_prime);
            if fx_prime < fx {
                x = x_prime;
                fx = fx_prime;
                gx = grad(&x);
                i += 1;
            } else {
                eta /= 2.0;
                i = 0;
            }
        }
    }
}

/// `argmax f`: `argmin -f`.
pub fn argmax(
    f: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64]) -> Vec<f64>,
    x0: &[f64],
) -> Vec<f64> {
    argmin(|x| -f(x), |x| grad(x).iter().map(|g| -g).collect(), x0)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
