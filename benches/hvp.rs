//! Forward mode and Hessian-vector products on the Gaussian-mixture
//! log-likelihood of benches/gmm.rs (d = 10, k = 5, n = 1000, same data):
//! the objective is written once with `#[differentiable(hessian)]`, and one
//! group times the primal, the reverse-mode `_grad`, the forward-mode
//! `_tangent` along a random direction and `_hvp` (forward over reverse)
//! along a random direction. At setup the tangent is checked against ∇f·v and
//! H v against a central difference of the gradient along v.
//!
//! Run with `cargo bench --bench hvp -- --warm-up-time 1 --measurement-time 3`;
//! results in docs/forward-mode.md.

// Index loops are the natural way to write these.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

mod common;
#[path = "common/gmm_model.rs"]
mod gmm_model;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use gmm_model::*;
use std::hint::black_box;

/// `p` moved by `t v` in every differentiated parameter.
fn shifted(p: &Params, v: &Grads, t: f64) -> Params {
    let add = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + t * y).collect();
    Params {
        alpha: add(&p.alpha, &v.0),
        means: add(&p.means, &v.1),
        q: add(&p.q, &v.2),
        l: add(&p.l, &v.3),
        x: p.x.clone(),
        gamma: p.gamma,
        m: p.m,
        d: p.d,
    }
}

fn bench_hvp(c: &mut Criterion) {
    let (d, k, n) = (10, 5, 1000);
    let p = Params::random(d, k, n);
    // A random direction in all 330 differentiated inputs.
    let v: Grads = (
        rand_vec(6, k),
        rand_vec(7, k * d),
        rand_vec(8, k * d),
        rand_vec(9, k * d * (d - 1) / 2),
    );
    let primal = |p: &Params| gmm(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m);
    let grad = |p: &Params| gmm_grad(&p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m);
    let tangent = |p: &Params, v: &Grads| {
        let v = v.clone();
        gmm_tangent(
            &p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m, v.0, v.1, v.2, v.3,
        )
    };
    let hvp = |p: &Params, v: &Grads| {
        let v = v.clone();
        gmm_hvp(
            &p.alpha, &p.means, &p.q, &p.l, &p.x, p.gamma, p.m, v.0, v.1, v.2, v.3,
        )
    };

    // Checks: J v = ∇f · v, H v = central difference of ∇f along v.
    let f0 = primal(&p);
    let (fg, g) = grad(&p);
    let g = flat(&g);
    let vf = flat(&v);
    assert!(
        (fg - f0).abs() <= 1e-12 * f0.abs(),
        "grad value {fg} vs {f0}"
    );
    let (ft, dt) = tangent(&p, &v);
    assert_eq!(ft, f0, "tangent value");
    let gv: f64 = g.iter().zip(&vf).map(|(a, b)| a * b).sum();
    assert!(
        (dt - gv).abs() <= 1e-10 * gv.abs(),
        "tangent {dt} vs grad . v {gv}"
    );
    let (fh, gh, hv) = hvp(&p, &v);
    assert_eq!(fh, f0, "hvp value");
    assert_close(&flat(&gh), &g, 1e-12, "hvp gradient");
    let h = 1e-5;
    let gp = flat(&grad(&shifted(&p, &v, h)).1);
    let gm = flat(&grad(&shifted(&p, &v, -h)).1);
    let fd: Vec<f64> = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    let hv = flat(&hv);
    let scale = fd.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
    for (i, (a, b)) in hv.iter().zip(&fd).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * scale,
            "H v [{i}]: {a} vs central difference {b} (max |Hv| {scale})"
        );
    }

    let mut g = c.benchmark_group("hvp_gmm_d10_k5_n1000");
    g.bench_function("primal", |bch| bch.iter(|| primal(black_box(&p))));
    g.bench_function("grad", |bch| bch.iter(|| grad(black_box(&p))));
    g.bench_function("tangent", |bch| {
        bch.iter(|| tangent(black_box(&p), black_box(&v)))
    });
    g.bench_function("hvp", |bch| bch.iter(|| hvp(black_box(&p), black_box(&v))));
    g.finish();
}

criterion_group!(benches, bench_hvp);
criterion_main!(benches);
