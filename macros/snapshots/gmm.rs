#[differentiable(wrt(alpha, means, q, l))]
fn gmm(alpha: &[f64], means: &[f64], q: &[f64], l: &[f64], x: &[f64], gamma: f64, m: usize) -> f64 {
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
    // Σ_i logsumexp_j (α_j + Σ_t q_jt - ½ ‖Q_j (x_i - μ_j)‖²)
    let mut xc = vec![0.0; d];
    let mut qxc = vec![0.0; d];
    let mut beta = vec![0.0; k];
    let mut slse = 0.0;
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
        slse += mx + se.ln();
    }
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
    let likelihood = slse - n as f64 * (0.5 * d as f64 * log_2pi + lse_alpha);
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
    likelihood + prior
}
