//! The Gaussian-mixture log-likelihood of ADBench / GradBench (d = 10,
//! k = 5, n = 1000): nested loops and a logsumexp per point, written in plain
//! Rust over slices. Times the primal, our `_grad`, a hand-written gradient
//! (asserted equal to ours at setup), `easy-ml`'s taped reverse mode (why that
//! crate: `common/mod.rs`) and central finite differences (330 inputs: forward
//! mode with 330 partials per number is left out).
//!
//! Run with `cargo bench --bench gmm -- --warm-up-time 1 --measurement-time 3`;
//! results in docs/benchmarks-ad.md.

// Index loops are the natural way to write these.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

mod common;
#[path = "common/gmm_model.rs"]
mod gmm_model;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use easy_ml::differentiation::{Record, WengertList};
use gmm_model::*;
use std::hint::black_box;

/// `gmm` for the taped numbers.
fn gmm_g<T: Real>(
    alpha: &[T],
    means: &[T],
    q: &[T],
    l: &[T],
    x: &[f64],
    gamma: f64,
    m: usize,
) -> T {
    let k = alpha.len();
    let d = means.len() / k;
    let n = x.len() / d;
    let l_sz = d * (d - 1) / 2;
    let zero = T::cst(0.0);
    let mut qdiag = vec![zero; k * d];
    let mut sum_q = vec![zero; k];
    for j in 0..k {
        for t in 0..d {
            qdiag[j * d + t] = q[j * d + t].exp();
            sum_q[j] = sum_q[j] + q[j * d + t];
        }
    }
    let mut xc = vec![zero; d];
    let mut qxc = vec![zero; d];
    let mut beta = vec![zero; k];
    let mut slse = zero;
    for i in 0..n {
        for j in 0..k {
            for t in 0..d {
                xc[t] = T::cst(x[i * d + t]) - means[j * d + t];
                qxc[t] = qdiag[j * d + t] * xc[t];
            }
            let mut li = j * l_sz;
            for c in 0..d {
                for r in c + 1..d {
                    qxc[r] = qxc[r] + l[li] * xc[c];
                    li += 1;
                }
            }
            let mut sq = zero;
            for t in 0..d {
                sq = sq + qxc[t] * qxc[t];
            }
            beta[j] = alpha[j] + sum_q[j] - sq * 0.5;
        }
        let mut mx = beta[0];
        for j in 1..k {
            if beta[j].val() > mx.val() {
                mx = beta[j];
            }
        }
        let mut se = zero;
        for j in 0..k {
            se = se + (beta[j] - mx).exp();
        }
        slse = slse + mx + se.ln();
    }
    let mut amax = alpha[0];
    for j in 1..k {
        if alpha[j].val() > amax.val() {
            amax = alpha[j];
        }
    }
    let mut asum = zero;
    for j in 0..k {
        asum = asum + (alpha[j] - amax).exp();
    }
    let lse_alpha = amax + asum.ln();
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    let likelihood = slse - (lse_alpha + 0.5 * d as f64 * log_2pi) * n as f64;
    let dof = (d + m + 1) as f64;
    let c = dof * d as f64 * (gamma.ln() - 0.5 * 2f64.ln()) - log_multigamma(0.5 * dof, d);
    let mut prior = zero;
    for j in 0..k {
        let mut frobenius = zero;
        for t in 0..d {
            frobenius = frobenius + qdiag[j * d + t] * qdiag[j * d + t];
        }
        for t in 0..l_sz {
            frobenius = frobenius + l[j * l_sz + t] * l[j * l_sz + t];
        }
        prior = prior + T::cst(c) - frobenius * (0.5 * gamma * gamma) + sum_q[j] * m as f64;
    }
    likelihood + prior
}

/// Hand-written gradient of `gmm`: per point, the forward values of every
/// component are kept in small buffers, then the point's adjoint is
/// accumulated at once (no storage across points); exp(q) is chained in at
/// the end.
fn gmm_grad_manual(
    alpha: &[f64],
    means: &[f64],
    q: &[f64],
    l: &[f64],
    x: &[f64],
    gamma: f64,
    m: usize,
) -> (f64, Grads) {
    let k = alpha.len();
    let d = means.len() / k;
    let n = x.len() / d;
    let l_sz = d * (d - 1) / 2;
    let mut qdiag = vec![0.0; k * d];
    let mut sum_q = vec![0.0; k];
    for j in 0..k {
        for t in 0..d {
            qdiag[j * d + t] = q[j * d + t].exp();
            sum_q[j] += q[j * d + t];
        }
    }
    let mut d_alpha = vec![0.0; k];
    let mut d_means = vec![0.0; k * d];
    let mut d_qdiag = vec![0.0; k * d];
    let mut d_sum_q = vec![0.0; k];
    let mut d_l = vec![0.0; k * l_sz];
    // per point: centred point and Q_j (x - μ_j) for every component
    let mut xc = vec![0.0; k * d];
    let mut qxc = vec![0.0; k * d];
    let mut beta = vec![0.0; k];
    let mut dxc = vec![0.0; d];
    let mut slse = 0.0;
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        for j in 0..k {
            let xc = &mut xc[j * d..(j + 1) * d];
            let qxc = &mut qxc[j * d..(j + 1) * d];
            for t in 0..d {
                xc[t] = xi[t] - means[j * d + t];
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
            mx = mx.max(beta[j]);
        }
        let mut se = 0.0;
        for j in 0..k {
            beta[j] = (beta[j] - mx).exp();
            se += beta[j];
        }
        slse += mx + se.ln();
        // d slse / d beta_j = softmax(beta)_j
        for j in 0..k {
            let db = beta[j] / se;
            d_alpha[j] += db;
            d_sum_q[j] += db;
            let xc = &xc[j * d..(j + 1) * d];
            let qxc = &qxc[j * d..(j + 1) * d];
            // d qxc = -db qxc; qxc[r] = qdiag[r] xc[r] + Σ_{c<r} L[r,c] xc[c]
            for t in 0..d {
                let g = -db * qxc[t];
                d_qdiag[j * d + t] += g * xc[t];
                dxc[t] = g * qdiag[j * d + t];
            }
            let mut li = j * l_sz;
            for c in 0..d {
                let mut acc = 0.0;
                for r in c + 1..d {
                    let g = -db * qxc[r];
                    d_l[li] += g * xc[c];
                    acc += g * l[li];
                    li += 1;
                }
                dxc[c] += acc;
            }
            for t in 0..d {
                d_means[j * d + t] -= dxc[t];
            }
        }
    }
    let mut amax = alpha[0];
    for j in 1..k {
        amax = amax.max(alpha[j]);
    }
    let mut asum = 0.0;
    for j in 0..k {
        asum += (alpha[j] - amax).exp();
    }
    let lse_alpha = amax + asum.ln();
    for j in 0..k {
        d_alpha[j] -= n as f64 * (alpha[j] - amax).exp() / asum;
    }
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    let likelihood = slse - n as f64 * (0.5 * d as f64 * log_2pi + lse_alpha);
    let dof = (d + m + 1) as f64;
    let c = dof * d as f64 * (gamma.ln() - 0.5 * 2f64.ln()) - log_multigamma(0.5 * dof, d);
    let g2 = gamma * gamma;
    let mut prior = 0.0;
    let mut d_q = vec![0.0; k * d];
    for j in 0..k {
        let mut frobenius = 0.0;
        for t in 0..d {
            let e = qdiag[j * d + t];
            frobenius += e * e;
            // exp(q) into the likelihood and the prior's ‖Q‖², Σq into both
            d_q[j * d + t] = d_qdiag[j * d + t] * e - g2 * e * e + d_sum_q[j] + m as f64;
        }
        for t in 0..l_sz {
            let v = l[j * l_sz + t];
            frobenius += v * v;
            d_l[j * l_sz + t] -= g2 * v;
        }
        prior += c - 0.5 * g2 * frobenius + m as f64 * sum_q[j];
    }
    (likelihood + prior, (d_alpha, d_means, d_q, d_l))
}

fn gmm_easy_ml(list: &WengertList<f64>, p: &Params) -> (f64, Grads) {
    list.clear();
    let vars = |v: &[f64]| -> Vec<Rec> { v.iter().map(|&v| Record::variable(v, list)).collect() };
    let (alpha, means, q, l) = (vars(&p.alpha), vars(&p.means), vars(&p.q), vars(&p.l));
    let y = gmm_g(&alpha, &means, &q, &l, &p.x, p.gamma, p.m);
    let d = y.derivatives();
    let grads = |v: &[Rec]| -> Vec<f64> { v.iter().map(|r| d[r]).collect() };
    (
        y.number,
        (grads(&alpha), grads(&means), grads(&q), grads(&l)),
    )
}

fn gmm_fd(p: &Params) -> (f64, Grads) {
    let (k, d) = (p.alpha.len(), p.d);
    let l_sz = d * (d - 1) / 2;
    let mut all: Vec<f64> = [&p.alpha, &p.means, &p.q, &p.l]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let mut g = vec![0.0; all.len()];
    let (a, b, c) = (k, k + k * d, k + 2 * k * d);
    fd_grad(
        |v| gmm(&v[..a], &v[a..b], &v[b..c], &v[c..], &p.x, p.gamma, p.m),
        &mut all,
        &mut g,
    );
    let _ = l_sz;
    let value = gmm(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m);
    (
        value,
        (
            g[..a].to_vec(),
            g[a..b].to_vec(),
            g[b..c].to_vec(),
            g[c..].to_vec(),
        ),
    )
}

fn bench_gmm(c: &mut Criterion) {
    let (d, k, n) = (10, 5, 1000);
    let p = Params::random(d, k, n);
    let list = tape();
    let run = |p: &Params| gmm_grad(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m);
    let hand = |p: &Params| gmm_grad_manual(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m);
    let (v, ours) = run(&p);
    let ours = flat(&ours);
    let (vh, h) = hand(&p);
    assert!((v - vh).abs() < 1e-12 * v.abs(), "gmm value {v} vs {vh}");
    assert_close(&flat(&h), &ours, 1e-10, "gmm hand");
    let (ve, e) = gmm_easy_ml(&list, &p);
    assert!((v - ve).abs() < 1e-12 * v.abs());
    assert_close(&flat(&e), &ours, 1e-10, "gmm easy-ml");
    assert_close(&flat(&gmm_fd(&p).1), &ours, 1e-5, "gmm fd");

    let mut g = c.benchmark_group("gmm_d10_k5_n1000");
    g.bench_function("primal", |bch| {
        bch.iter(|| {
            let p = black_box(&p);
            gmm(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m)
        })
    });
    g.bench_function("tapeless", |bch| bch.iter(|| run(black_box(&p))));
    g.bench_function("hand-written", |bch| bch.iter(|| hand(black_box(&p))));
    g.sample_size(20);
    g.bench_function("easy-ml", |bch| {
        bch.iter(|| gmm_easy_ml(&list, black_box(&p)))
    });
    g.sample_size(10);
    g.bench_function("central-fd", |bch| bch.iter(|| gmm_fd(black_box(&p))));
    g.finish();
}

criterion_group!(benches, bench_gmm);
criterion_main!(benches);
