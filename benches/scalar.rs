//! Generated gradients against hand-written ones on scalar code.
//!
//! Run with `cargo bench --bench scalar`. Each group times the primal, the
//! `_grad` written by `#[differentiable]` and a gradient derived by hand (and
//! tested against ours below), so the ratios come from one run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use tapeless::differentiable;

/// An RNN-style recurrence over a slice: h = tanh(w h + u x_i + b), loss = h^2.
#[differentiable]
fn rnn(w: f64, u: f64, b: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for &xi in x {
        h = (w * h + u * xi + b).tanh();
    }
    h * h
}

/// Hand-written reverse mode of `rnn`: keep the states, walk back.
fn rnn_grad_manual(w: f64, u: f64, b: f64, x: &[f64]) -> (f64, (f64, f64, f64, Vec<f64>)) {
    let mut hs = Vec::with_capacity(x.len() + 1);
    let mut h = 0.0;
    hs.push(h);
    for &xi in x {
        h = (w * h + u * xi + b).tanh();
        hs.push(h);
    }
    let (mut dw, mut du, mut db) = (0.0, 0.0, 0.0);
    let mut dx = vec![0.0; x.len()];
    let mut dh = 2.0 * h;
    for i in (0..x.len()).rev() {
        let hn = hs[i + 1];
        let da = dh * (1.0 - hn * hn);
        dw += da * hs[i];
        du += da * x[i];
        db += da;
        dx[i] = da * u;
        dh = da * w;
    }
    (h * h, (dw, du, db, dx))
}

/// Straight-line code of about 40 operations over 3 inputs.
#[differentiable]
fn chain(a: f64, b: f64, c: f64) -> f64 {
    let mut s = 0.0;
    let t1 = a * b + c;
    let t2 = (t1 * t1 + 1.0).sqrt();
    let t3 = t2.ln() * a - b.sin() * c.cos();
    let t4 = (t3 - a) * (t3 + b) / (1.0 + c * c);
    s += t4 * t4 + t1 * t2 * t3;
    let t5 = (a - 1.0).powi(2) + 100.0 * (b - a * a).powi(2);
    s + t5 * 0.01 + (t4 * c).exp() * 1e-3
}

fn bench_rnn(c: &mut Criterion) {
    let x: Vec<f64> = (0..1000).map(|i| ((i as f64) * 0.37).sin()).collect();
    // The hand-written gradient is the same as ours.
    let (v, (dw, du, db, dx)) = rnn_grad(0.5, 0.3, 0.1, &x);
    let (vm, (dwm, dum, dbm, dxm)) = rnn_grad_manual(0.5, 0.3, 0.1, &x);
    assert!(
        (v - vm).abs() < 1e-12
            && (dw - dwm).abs() < 1e-12
            && (du - dum).abs() < 1e-12
            && (db - dbm).abs() < 1e-12
    );
    assert!(dx.iter().zip(&dxm).all(|(a, b)| (a - b).abs() < 1e-12));

    let mut g = c.benchmark_group("rnn_1000");
    g.bench_function(BenchmarkId::new("primal", 1000), |bch| {
        bch.iter(|| rnn(black_box(0.5), 0.3, 0.1, black_box(&x)))
    });
    g.bench_function(BenchmarkId::new("tapeless", 1000), |bch| {
        bch.iter(|| rnn_grad(black_box(0.5), 0.3, 0.1, black_box(&x)))
    });
    g.bench_function(BenchmarkId::new("hand-written", 1000), |bch| {
        bch.iter(|| rnn_grad_manual(black_box(0.5), 0.3, 0.1, black_box(&x)))
    });
    g.finish();
}

fn bench_chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain");
    g.bench_function("primal", |bch| {
        bch.iter(|| chain(black_box(0.3), black_box(0.7), black_box(-0.2)))
    });
    g.bench_function("tapeless", |bch| {
        bch.iter(|| chain_grad(black_box(0.3), black_box(0.7), black_box(-0.2)))
    });
    g.finish();
}

criterion_group!(benches, bench_rnn, bench_chain);
criterion_main!(benches);
