//! `gmm`: the log posterior of a Gaussian mixture model with a Wishart prior
//! on the precision matrices (ADBench's GMM with GradBench's fixes), and its
//! gradient with respect to `alpha`, `mu`, `q` and `l`.
//!
//! Component `j` has mean `mu_j` and precision `Q_jᵀ Q_j`, where `Q_j` is lower
//! triangular with diagonal `exp(q_j)` and `l_j` below it, column by column.

use crate::protocol::{parse, timed, Evaluated};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tapeless::differentiable;

#[derive(Deserialize)]
struct Input {
    d: usize,
    k: usize,
    n: usize,
    x: Vec<Vec<f64>>,
    m: usize,
    gamma: f64,
    alpha: Vec<f64>,
    mu: Vec<Vec<f64>>,
    q: Vec<Vec<f64>>,
    l: Vec<Vec<f64>>,
}

/// The input with its matrices flattened row by row.
pub struct Gmm {
    /// Dimension of the space.
    pub d: usize,
    /// Number of components.
    pub k: usize,
    /// Number of points.
    pub n: usize,
    /// Points, `n × d`.
    pub x: Vec<f64>,
    /// Additional degrees of freedom of the Wishart prior.
    pub m: usize,
    /// Precision of the Wishart prior.
    pub gamma: f64,
    /// Weight parameters, `k`.
    pub alpha: Vec<f64>,
    /// Means, `k × d`.
    pub mu: Vec<f64>,
    /// Log-diagonals of the `Q_j`, `k × d`.
    pub q: Vec<f64>,
    /// Strictly lower parts of the `Q_j`, `k × d(d-1)/2`.
    pub l: Vec<f64>,
}

impl From<Input> for Gmm {
    fn from(i: Input) -> Gmm {
        Gmm {
            d: i.d,
            k: i.k,
            n: i.n,
            x: i.x.concat(),
            m: i.m,
            gamma: i.gamma,
            alpha: i.alpha,
            mu: i.mu.concat(),
            q: i.q.concat(),
            l: i.l.concat(),
        }
    }
}

#[derive(Serialize)]
struct Gradient {
    alpha: Vec<f64>,
    mu: Vec<Vec<f64>>,
    q: Vec<Vec<f64>>,
    l: Vec<Vec<f64>>,
}

/// ln Σ exp(v_i), the maximum subtracted first.
#[differentiable]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut a = v[0];
    for i in 1..v.len() {
        a = a.max(v[i]);
    }
    let mut s = 0.0;
    for i in 0..v.len() {
        s += (v[i] - a).exp();
    }
    a + s.ln()
}

/// ln Γ_d(a), the multivariate gamma function (a constant of the prior).
pub fn log_multigamma(a: f64, d: usize) -> f64 {
    let mut s = (d * (d - 1)) as f64 / 4.0 * std::f64::consts::PI.ln();
    for j in 1..=d {
        s += ln_gamma(a + (1.0 - j as f64) / 2.0);
    }
    s
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection: Γ(x) Γ(1-x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The log posterior: Σ_i logsumexp_j β_ij - n (d/2 ln 2π + logsumexp(α))
/// plus the log Wishart prior.
#[differentiable(wrt(alpha, mu, q, l))]
pub fn objective(alpha: &[f64], mu: &[f64], q: &[f64], l: &[f64], x: &[f64], w: Wishart) -> f64 {
    let k = alpha.len();
    let d = mu.len() / k;
    let n = x.len() / d;
    let l_sz = d * (d - 1) / 2;
    // Q_j's diagonal and Σ_t q_jt, once per component
    let mut qdiag = vec![0.0; k * d];
    let mut sum_q = vec![0.0; k];
    for j in 0..k {
        for t in 0..d {
            qdiag[j * d + t] = q[j * d + t].exp();
            sum_q[j] += q[j * d + t];
        }
    }
    // The terms that do not depend on the points first, then the sum over
    // points, returned right after its loop: its reverse sweep then runs
    // point by point inside the loop (a fused loop), with one point's values
    // on the stacks instead of all n.
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    let constant = n as f64 * (0.5 * d as f64 * log_2pi + logsumexp(alpha));

    // Wishart prior with V = I/γ², n' = d + m + 1 degrees of freedom
    let dof = (d + w.m + 1) as f64;
    let c = dof * d as f64 * (w.gamma.ln() - 0.5 * 2f64.ln()) - log_multigamma(0.5 * dof, d);
    let mut prior = 0.0;
    for j in 0..k {
        let mut frobenius = 0.0;
        for t in 0..d {
            frobenius += qdiag[j * d + t] * qdiag[j * d + t];
        }
        for t in 0..l_sz {
            frobenius += l[j * l_sz + t] * l[j * l_sz + t];
        }
        prior += c - 0.5 * w.gamma * w.gamma * frobenius + w.m as f64 * sum_q[j];
    }
    let mut total = prior - constant;

    // Σ_i logsumexp_j β_ij, β_ij = α_j + Σ_t q_jt - ½ ‖Q_j (x_i - μ_j)‖²
    let mut xc = vec![0.0; d];
    let mut qxc = vec![0.0; d];
    let mut beta = vec![0.0; k];
    for i in 0..n {
        for j in 0..k {
            for t in 0..d {
                xc[t] = x[i * d + t] - mu[j * d + t];
                qxc[t] = qdiag[j * d + t] * xc[t];
            }
            let mut li = j * l_sz;
            for c in 0..d {
                for r in c + 1..d {
                    qxc[r] += l[li] * xc[c];
                    li += 1;
                }
            }
            let mut sq = 0.0;
            for t in 0..d {
                sq += qxc[t] * qxc[t];
            }
            beta[j] = alpha[j] + sum_q[j] - 0.5 * sq;
        }
        // logsumexp(β), written out
        let mut mx = beta[0];
        for j in 1..k {
            mx = mx.max(beta[j]);
        }
        let mut se = 0.0;
        for j in 0..k {
            se += (beta[j] - mx).exp();
        }
        total += mx + se.ln();
    }
    total
}

/// The Wishart prior's parameters: `V = I/γ²`, `d + m + 1` degrees of freedom.
#[derive(Clone, Copy)]
pub struct Wishart {
    /// Precision γ.
    pub gamma: f64,
    /// Additional degrees of freedom.
    pub m: usize,
}

impl Gmm {
    fn wishart(&self) -> Wishart {
        Wishart {
            gamma: self.gamma,
            m: self.m,
        }
    }

    /// The log posterior.
    pub fn objective(&self) -> f64 {
        objective(
            &self.alpha,
            &self.mu,
            &self.q,
            &self.l,
            &self.x,
            self.wishart(),
        )
    }

    /// The gradient with respect to `(alpha, mu, q, l)`, flattened.
    pub fn gradient(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let w = self.wishart();
        objective_grad(&self.alpha, &self.mu, &self.q, &self.l, &self.x, w).1
    }
}

fn rows(v: Vec<f64>, k: usize) -> Vec<Vec<f64>> {
    if k == 0 {
        return Vec::new();
    }
    let w = v.len() / k;
    (0..k).map(|j| v[j * w..(j + 1) * w].to_vec()).collect()
}

/// Evaluates `objective` or `jacobian`.
pub fn evaluate(function: &str, input: Value) -> Result<Evaluated, String> {
    let g: Gmm = parse::<Input>(input.clone())?.into();
    match function {
        "objective" => timed(&input, g, Gmm::objective),
        "jacobian" => {
            let k = g.k;
            let mut e = timed(&input, g, Gmm::gradient)?;
            // reshape outside the timed region
            let (alpha, mu, q, l): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) =
                serde_json::from_value(e.output).map_err(|e| e.to_string())?;
            let grad = Gradient {
                alpha,
                mu: rows(mu, k),
                q: rows(q, k),
                l: rows(l, k),
            };
            e.output = serde_json::to_value(grad).map_err(|e| e.to_string())?;
            Ok(e)
        }
        _ => Err(super::unknown("gmm", function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, rand_vec};

    fn tiny() -> Gmm {
        let (d, k, n) = (3, 2, 4);
        Gmm {
            d,
            k,
            n,
            x: rand_vec(1, n * d, 1.0),
            m: 2,
            gamma: 0.7,
            alpha: rand_vec(2, k, 1.0),
            mu: rand_vec(3, k * d, 1.0),
            q: rand_vec(4, k * d, 0.5),
            l: rand_vec(5, k * d * (d - 1) / 2, 1.0),
        }
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        assert!((ln_gamma(10.5) - 13.940_625_219_403_763).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let g = tiny();
        let (da, dm, dq, dl) = g.gradient();
        fn with(set: fn(&mut Gmm, &[f64])) -> impl Fn(&[f64]) -> f64 {
            move |v| {
                let mut h = tiny();
                set(&mut h, v);
                h.objective()
            }
        }
        let fa = with(|h, v| h.alpha = v.to_vec());
        let fm = with(|h, v| h.mu = v.to_vec());
        let fq = with(|h, v| h.q = v.to_vec());
        let fl = with(|h, v| h.l = v.to_vec());
        assert_close(&da, &fd_gradient(fa, &g.alpha), "d/dalpha");
        assert_close(&dm, &fd_gradient(fm, &g.mu), "d/dmu");
        assert_close(&dq, &fd_gradient(fq, &g.q), "d/dq");
        assert_close(&dl, &fd_gradient(fl, &g.l), "d/dl");
    }
}
