//! The Gaussian-mixture log posterior of ADBench / GradBench, shared by
//! benches/gmm.rs (reverse mode against hand-written, taped and FD gradients)
//! and benches/hvp.rs (forward mode and Hessian-vector products): one
//! definition, with `hessian` so that both benches can use it (the `_grad`
//! written is the same with or without it), and one data set.

#![allow(dead_code)]

use super::common::rand_vec;
use tapeless::differentiable;

/// ln Γ(x) for x > 0.5 (Lanczos, g = 7, 9 terms).
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
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ln Γ_d(a), the multivariate gamma function.
pub fn log_multigamma(a: f64, d: usize) -> f64 {
    let mut s = (d * (d - 1)) as f64 / 4.0 * std::f64::consts::PI.ln();
    for j in 1..=d {
        s += ln_gamma(a + (1.0 - j as f64) / 2.0);
    }
    s
}

/// The log posterior of a `k`-component Gaussian mixture over `n` points in
/// `d` dimensions with a Wishart prior (GradBench's `gmm`). Component `j` has
/// weight logit `alpha[j]`, mean `means[j*d..]` and precision `Q_jᵀ Q_j`, `Q_j`
/// lower triangular with diagonal `exp(q[j*d..])` and strict lower part
/// `l[j*d(d-1)/2..]` column by column. `x` holds the points row by row.
#[differentiable(hessian, wrt(alpha, means, q, l))]
pub fn gmm(
    alpha: &[f64],
    means: &[f64],
    q: &[f64],
    l: &[f64],
    x: &[f64],
    gamma: f64,
    m: usize,
) -> f64 {
    let k = alpha.len();
    let d = means.len() / k;
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
    // points returned right after its loop: the reverse sweep runs point by
    // point inside the loop (fused), with one point's values on the stacks.
    // logsumexp(α)
    let mut amax = alpha[0];
    for j in 1..k {
        if alpha[j] > amax {
            amax = alpha[j];
        }
    }
    let mut asum = 0.0;
    for j in 0..k {
        asum += (alpha[j] - amax).exp();
    }
    let lse_alpha = amax + asum.ln();
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    let constant = n as f64 * (0.5 * d as f64 * log_2pi + lse_alpha);
    // Wishart prior, V = I/γ², d + m + 1 degrees of freedom
    let dof = (d + m + 1) as f64;
    let c = dof * d as f64 * (gamma.ln() - 0.5 * 2f64.ln()) - log_multigamma(0.5 * dof, d);
    let mut prior = 0.0;
    for j in 0..k {
        let mut frobenius = 0.0;
        for t in 0..d {
            frobenius += qdiag[j * d + t] * qdiag[j * d + t];
        }
        for t in 0..l_sz {
            frobenius += l[j * l_sz + t] * l[j * l_sz + t];
        }
        prior += c - 0.5 * gamma * gamma * frobenius + m as f64 * sum_q[j];
    }
    let mut total = prior - constant;
    // Σ_i logsumexp_j (α_j + Σ_t q_jt - ½ ‖Q_j (x_i - μ_j)‖²)
    let mut xc = vec![0.0; d];
    let mut qxc = vec![0.0; d];
    let mut beta = vec![0.0; k];
    for i in 0..n {
        for j in 0..k {
            for t in 0..d {
                xc[t] = x[i * d + t] - means[j * d + t];
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
        let mut mx = beta[0];
        for j in 1..k {
            if beta[j] > mx {
                mx = beta[j];
            }
        }
        let mut se = 0.0;
        for j in 0..k {
            se += (beta[j] - mx).exp();
        }
        total += mx + se.ln();
    }
    total
}

/// The gradient in the differentiated parameters (alpha, means, q, l).
pub type Grads = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

pub struct Params {
    pub d: usize,
    pub alpha: Vec<f64>,
    pub means: Vec<f64>,
    pub q: Vec<f64>,
    pub l: Vec<f64>,
    pub x: Vec<f64>,
    pub gamma: f64,
    pub m: usize,
}

pub fn flat(g: &Grads) -> Vec<f64> {
    [&g.0, &g.1, &g.2, &g.3]
        .into_iter()
        .flatten()
        .copied()
        .collect()
}

impl Params {
    /// The benchmarks' seeded data: `k` components over `n` points in `d`
    /// dimensions (330 differentiated inputs for d = 10, k = 5).
    pub fn random(d: usize, k: usize, n: usize) -> Params {
        Params {
            d,
            alpha: rand_vec(1, k),
            means: rand_vec(2, k * d),
            q: rand_vec(3, k * d).iter().map(|v| 0.3 * v).collect(),
            l: rand_vec(4, k * d * (d - 1) / 2)
                .iter()
                .map(|v| 0.3 * v)
                .collect(),
            x: rand_vec(5, n * d).iter().map(|v| 1.5 * v).collect(),
            gamma: 1.0,
            m: 0,
        }
    }
}
