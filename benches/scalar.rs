//! Generated gradients against hand-written ones, a taped reverse-mode crate,
//! forward-mode dual numbers and central finite differences on scalar code.
//!
//! Run with `cargo bench --bench scalar -- --warm-up-time 1 --measurement-time 3`.
//! Each group times, on one workload:
//!
//! * `primal`: the function itself;
//! * `tapeless`: the `_grad` written by `#[differentiable]`;
//! * `hand-written`: a gradient derived by hand, asserted equal to ours at setup;
//! * `easy-ml`: the same function, written once generically (`common::Real`),
//!   run on `easy_ml::differentiation::Record`s and differentiated by walking
//!   the Wengert list back (why `easy-ml`: see `common/mod.rs`);
//! * `num-dual`: forward mode with `DualSVec64<N>`, one pass carrying all `N`
//!   partials (only where the input count is small);
//! * `central-fd`: central differences, `2 N` calls of the primal.
//!
//! Workloads: `rnn_1000` (a recurrence over 1000 elements, gradient for the
//! 3 weights and the 1000 inputs), `chain` (about 40 operations over 3 inputs),
//! `mgh_100` (about 100 operations over 4 inputs: the Rosenbrock, Wood, Powell,
//! Miele-Cantrell and Beale test functions summed), `lsq_1000` (arithmetic-
//! dominated: Σ (w x_i + b - y_i)^2) and `logistic_1000` (transcendental-heavy:
//! Σ ln(1 + exp(-y_i (w x_i + b)))). docs/benchmarks-ad.md has the results.

// Index loops are the natural way to write these.
#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use easy_ml::differentiation::Record;
use std::hint::black_box;
use tapeless::differentiable;

// ---------------------------------------------------------------- rnn_1000

/// An RNN-style recurrence over a slice: h = tanh(w h + u x_i + b), loss = h^2.
#[differentiable]
fn rnn(w: f64, u: f64, b: f64, x: &[f64]) -> f64 {
    let mut h = 0.0;
    for &xi in x {
        h = (w * h + u * xi + b).tanh();
    }
    h * h
}

/// `rnn` for the taped and dual numbers.
fn rnn_g<T: Real>(w: T, u: T, b: T, x: &[T]) -> T {
    let mut h = T::cst(0.0);
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

fn rnn_easy_ml(
    list: &easy_ml::differentiation::WengertList<f64>,
    w: f64,
    u: f64,
    b: f64,
    x: &[f64],
) -> (f64, (f64, f64, f64, Vec<f64>)) {
    list.clear();
    let (w, u, b) = (
        Record::variable(w, list),
        Record::variable(u, list),
        Record::variable(b, list),
    );
    let xs: Vec<Rec> = x.iter().map(|&v| Record::variable(v, list)).collect();
    let y = rnn_g(w, u, b, &xs);
    let d = y.derivatives();
    let dx = xs.iter().map(|v| d[v]).collect();
    (y.number, (d[&w], d[&u], d[&b], dx))
}

fn rnn_fd(w: f64, u: f64, b: f64, x: &[f64]) -> (f64, Vec<f64>) {
    let mut p = Vec::with_capacity(x.len() + 3);
    p.extend_from_slice(&[w, u, b]);
    p.extend_from_slice(x);
    let mut g = vec![0.0; p.len()];
    fd_grad(|p| rnn(p[0], p[1], p[2], &p[3..]), &mut p, &mut g);
    (rnn(w, u, b, x), g)
}

fn bench_rnn(c: &mut Criterion) {
    let x: Vec<f64> = (0..1000).map(|i| ((i as f64) * 0.37).sin()).collect();
    let (w, u, b) = (0.5, 0.3, 0.1);
    let list = tape();
    // Every gradient below is the same as ours.
    let (v, (dw, du, db, dx)) = rnn_grad(w, u, b, &x);
    let ours: Vec<f64> = [dw, du, db].into_iter().chain(dx).collect();
    let flat = |(v2, (a, b, c, d)): (f64, (f64, f64, f64, Vec<f64>))| {
        assert!((v - v2).abs() < 1e-12);
        [a, b, c].into_iter().chain(d).collect::<Vec<f64>>()
    };
    assert_close(
        &flat(rnn_grad_manual(w, u, b, &x)),
        &ours,
        1e-12,
        "rnn hand",
    );
    assert_close(
        &flat(rnn_easy_ml(&list, w, u, b, &x)),
        &ours,
        1e-12,
        "rnn easy-ml",
    );
    assert_close(&rnn_fd(w, u, b, &x).1, &ours, 1e-6, "rnn fd");

    let mut g = c.benchmark_group("rnn_1000");
    g.bench_function("primal", |bch| {
        bch.iter(|| rnn(black_box(w), u, b, black_box(&x)))
    });
    g.bench_function("tapeless", |bch| {
        bch.iter(|| rnn_grad(black_box(w), u, b, black_box(&x)))
    });
    g.bench_function("hand-written", |bch| {
        bch.iter(|| rnn_grad_manual(black_box(w), u, b, black_box(&x)))
    });
    g.bench_function("easy-ml", |bch| {
        bch.iter(|| rnn_easy_ml(&list, black_box(w), u, b, black_box(&x)))
    });
    g.sample_size(10);
    g.bench_function("central-fd", |bch| {
        bch.iter(|| rnn_fd(black_box(w), u, b, black_box(&x)))
    });
    g.finish();
}

// ---------------------------------------------------------------- chain

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

/// `chain` for the taped and dual numbers.
fn chain_g<T: Real>(a: T, b: T, c: T) -> T {
    let mut s = T::cst(0.0);
    let t1 = a * b + c;
    let t2 = (t1 * t1 + 1.0).sqrt();
    let t3 = t2.ln() * a - b.sin() * c.cos();
    let t4 = (t3 - a) * (t3 + b) / (T::cst(1.0) + c * c);
    s = s + t4 * t4 + t1 * t2 * t3;
    let t5 = (a - 1.0).powi(2) + T::cst(100.0) * (b - a * a).powi(2);
    s + t5 * 0.01 + (t4 * c).exp() * 1e-3
}

/// Hand-written reverse mode of `chain`.
fn chain_grad_manual(a: f64, b: f64, c: f64) -> (f64, (f64, f64, f64)) {
    let t1 = a * b + c;
    let t2 = (t1 * t1 + 1.0).sqrt();
    let lt2 = t2.ln();
    let (sb, cb) = b.sin_cos();
    let (sc, cc) = c.sin_cos();
    let t3 = lt2 * a - sb * cc;
    let p = t3 - a;
    let q = t3 + b;
    let r = 1.0 + c * c;
    let t4 = p * q / r;
    let s = t4 * t4 + t1 * t2 * t3;
    let g = b - a * a;
    let t5 = (a - 1.0) * (a - 1.0) + 100.0 * g * g;
    let e = (t4 * c).exp() * 1e-3;
    let value = s + t5 * 0.01 + e;

    let d_t4 = 2.0 * t4 + e * c;
    let mut da = 0.01 * (2.0 * (a - 1.0) - 400.0 * g * a);
    let mut db = 0.01 * 200.0 * g;
    let mut dc = e * t4;
    let mut d_t1 = t2 * t3;
    let mut d_t2 = t1 * t3;
    let mut d_t3 = t1 * t2;
    let dp = d_t4 * q / r;
    let dq = d_t4 * p / r;
    d_t3 += dp + dq;
    da -= dp;
    db += dq;
    dc -= d_t4 * t4 / r * 2.0 * c;
    d_t2 += d_t3 * a / t2;
    da += d_t3 * lt2;
    db -= d_t3 * cb * cc;
    dc += d_t3 * sb * sc;
    d_t1 += d_t2 * t1 / t2;
    da += d_t1 * b;
    db += d_t1 * a;
    dc += d_t1;
    (value, (da, db, dc))
}

fn bench_chain(c: &mut Criterion) {
    let p = [0.3, 0.7, -0.2];
    let list = tape();
    let easy = |list: &easy_ml::differentiation::WengertList<f64>, p: [f64; 3]| {
        list.clear();
        let [a, b, c] = p.map(|v| Record::variable(v, list));
        let y = chain_g(a, b, c);
        let d = y.derivatives();
        (y.number, [d[&a], d[&b], d[&c]])
    };
    let dual = |p: [f64; 3]| {
        let [a, b, c] = duals(p);
        dual_parts(chain_g(a, b, c))
    };
    let fd = |mut p: [f64; 3]| {
        let mut g = [0.0; 3];
        fd_grad(|p| chain(p[0], p[1], p[2]), &mut p, &mut g);
        (chain(p[0], p[1], p[2]), g)
    };
    let (v, (da, db, dc)) = chain_grad(p[0], p[1], p[2]);
    let ours = [da, db, dc];
    let (vm, (a, b, c2)) = chain_grad_manual(p[0], p[1], p[2]);
    assert!((v - vm).abs() < 1e-12);
    assert_close(&[a, b, c2], &ours, 1e-12, "chain hand");
    assert_close(&easy(&list, p).1, &ours, 1e-12, "chain easy-ml");
    assert_close(&dual(p).1, &ours, 1e-12, "chain num-dual");
    assert_close(&fd(p).1, &ours, 1e-6, "chain fd");

    let mut g = c.benchmark_group("chain");
    g.bench_function("primal", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            chain(p[0], p[1], p[2])
        })
    });
    g.bench_function("tapeless", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            chain_grad(p[0], p[1], p[2])
        })
    });
    g.bench_function("hand-written", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            chain_grad_manual(p[0], p[1], p[2])
        })
    });
    g.bench_function("easy-ml", |bch| bch.iter(|| easy(&list, black_box(p))));
    g.bench_function("num-dual", |bch| bch.iter(|| dual(black_box(p))));
    g.bench_function("central-fd", |bch| bch.iter(|| fd(black_box(p))));
    g.finish();
}

// ---------------------------------------------------------------- mgh_100

/// Straight-line code of about 100 operations over 4 inputs: five classic test
/// functions of unconstrained optimisation (Moré, Garbow and Hillstrom) summed.
#[differentiable]
fn mgh(x1: f64, x2: f64, x3: f64, x4: f64) -> f64 {
    // Rosenbrock, extended to 4 variables
    let r1 = 1.0 - x1;
    let s1 = x2 - x1 * x1;
    let r2 = 1.0 - x2;
    let s2 = x3 - x2 * x2;
    let r3 = 1.0 - x3;
    let s3 = x4 - x3 * x3;
    let rosen = r1 * r1 + 100.0 * s1 * s1 + r2 * r2 + 100.0 * s2 * s2 + r3 * r3 + 100.0 * s3 * s3;
    // Wood (Colville)
    let w1 = x1 * x1 - x2;
    let w2 = x3 * x3 - x4;
    let a2 = x2 - 1.0;
    let a4 = x4 - 1.0;
    let wood = 100.0 * w1 * w1
        + r1 * r1
        + r3 * r3
        + 90.0 * w2 * w2
        + 10.1 * (a2 * a2 + a4 * a4)
        + 19.8 * a2 * a4;
    // Powell singular
    let p1 = x1 + 10.0 * x2;
    let p2 = x3 - x4;
    let p3 = x2 - 2.0 * x3;
    let p4 = x1 - x4;
    let powell = p1 * p1 + 5.0 * p2 * p2 + p3.powi(4) + 10.0 * p4.powi(4);
    // Miele-Cantrell
    let m1 = x1.exp() - x2;
    let m2 = x2 - x3;
    let m3 = (x3 - x4).tan();
    let miele = m1.powi(4) + 100.0 * m2.powi(6) + m3.powi(4) + x1.powi(8);
    // Beale, on (x3, x4)
    let b1 = 1.5 - x3 + x3 * x4;
    let b2 = 2.25 - x3 + x3 * x4 * x4;
    let b3 = 2.625 - x3 + x3 * x4 * x4 * x4;
    let beale = b1 * b1 + b2 * b2 + b3 * b3;
    rosen + wood + powell + miele + beale
}

/// `mgh` for the taped and dual numbers.
fn mgh_g<T: Real>(x1: T, x2: T, x3: T, x4: T) -> T {
    let c = T::cst;
    let r1 = c(1.0) - x1;
    let s1 = x2 - x1 * x1;
    let r2 = c(1.0) - x2;
    let s2 = x3 - x2 * x2;
    let r3 = c(1.0) - x3;
    let s3 = x4 - x3 * x3;
    let rosen =
        r1 * r1 + c(100.0) * s1 * s1 + r2 * r2 + c(100.0) * s2 * s2 + r3 * r3 + c(100.0) * s3 * s3;
    let w1 = x1 * x1 - x2;
    let w2 = x3 * x3 - x4;
    let a2 = x2 - 1.0;
    let a4 = x4 - 1.0;
    let wood = c(100.0) * w1 * w1
        + r1 * r1
        + r3 * r3
        + c(90.0) * w2 * w2
        + c(10.1) * (a2 * a2 + a4 * a4)
        + c(19.8) * a2 * a4;
    let p1 = x1 + c(10.0) * x2;
    let p2 = x3 - x4;
    let p3 = x2 - c(2.0) * x3;
    let p4 = x1 - x4;
    let powell = p1 * p1 + c(5.0) * p2 * p2 + p3.powi(4) + c(10.0) * p4.powi(4);
    let m1 = x1.exp() - x2;
    let m2 = x2 - x3;
    let m3 = (x3 - x4).tan();
    let miele = m1.powi(4) + c(100.0) * m2.powi(6) + m3.powi(4) + x1.powi(8);
    let b1 = c(1.5) - x3 + x3 * x4;
    let b2 = c(2.25) - x3 + x3 * x4 * x4;
    let b3 = c(2.625) - x3 + x3 * x4 * x4 * x4;
    let beale = b1 * b1 + b2 * b2 + b3 * b3;
    rosen + wood + powell + miele + beale
}

/// Hand-written gradient of `mgh`: each term's partials, written out.
fn mgh_grad_manual(x1: f64, x2: f64, x3: f64, x4: f64) -> (f64, (f64, f64, f64, f64)) {
    let (r1, s1) = (1.0 - x1, x2 - x1 * x1);
    let (r2, s2) = (1.0 - x2, x3 - x2 * x2);
    let (r3, s3) = (1.0 - x3, x4 - x3 * x3);
    let rosen = r1 * r1 + 100.0 * s1 * s1 + r2 * r2 + 100.0 * s2 * s2 + r3 * r3 + 100.0 * s3 * s3;
    let mut g1 = -2.0 * r1 - 400.0 * x1 * s1;
    let mut g2 = 200.0 * s1 - 2.0 * r2 - 400.0 * x2 * s2;
    let mut g3 = 200.0 * s2 - 2.0 * r3 - 400.0 * x3 * s3;
    let mut g4 = 200.0 * s3;

    let (w1, w2, a2, a4) = (x1 * x1 - x2, x3 * x3 - x4, x2 - 1.0, x4 - 1.0);
    let wood = 100.0 * w1 * w1
        + r1 * r1
        + r3 * r3
        + 90.0 * w2 * w2
        + 10.1 * (a2 * a2 + a4 * a4)
        + 19.8 * a2 * a4;
    g1 += 400.0 * x1 * w1 - 2.0 * r1;
    g2 += -200.0 * w1 + 20.2 * a2 + 19.8 * a4;
    g3 += 360.0 * x3 * w2 - 2.0 * r3;
    g4 += -180.0 * w2 + 20.2 * a4 + 19.8 * a2;

    let (p1, p2, p3, p4) = (x1 + 10.0 * x2, x3 - x4, x2 - 2.0 * x3, x1 - x4);
    let (p3c, p4c) = (p3 * p3 * p3, p4 * p4 * p4);
    let powell = p1 * p1 + 5.0 * p2 * p2 + p3c * p3 + 10.0 * p4c * p4;
    g1 += 2.0 * p1 + 40.0 * p4c;
    g2 += 20.0 * p1 + 4.0 * p3c;
    g3 += 10.0 * p2 - 8.0 * p3c;
    g4 += -10.0 * p2 - 40.0 * p4c;

    let e1 = x1.exp();
    let (m1, m2, m3) = (e1 - x2, x2 - x3, (x3 - x4).tan());
    let (m1c, m2_5, m3c) = (m1 * m1 * m1, m2.powi(5), m3 * m3 * m3);
    let x1_7 = x1.powi(7);
    let miele = m1c * m1 + 100.0 * m2_5 * m2 + m3c * m3 + x1_7 * x1;
    let dm3 = 4.0 * m3c * (1.0 + m3 * m3);
    g1 += 4.0 * m1c * e1 + 8.0 * x1_7;
    g2 += -4.0 * m1c + 600.0 * m2_5;
    g3 += -600.0 * m2_5 + dm3;
    g4 -= dm3;

    let (x4s, x4c) = (x4 * x4, x4 * x4 * x4);
    let b1 = 1.5 - x3 + x3 * x4;
    let b2 = 2.25 - x3 + x3 * x4s;
    let b3 = 2.625 - x3 + x3 * x4c;
    let beale = b1 * b1 + b2 * b2 + b3 * b3;
    g3 += 2.0 * (b1 * (x4 - 1.0) + b2 * (x4s - 1.0) + b3 * (x4c - 1.0));
    g4 += 2.0 * x3 * (b1 + 2.0 * b2 * x4 + 3.0 * b3 * x4s);

    (rosen + wood + powell + miele + beale, (g1, g2, g3, g4))
}

fn bench_mgh(c: &mut Criterion) {
    let p = [0.3, 0.7, -0.2, 0.5];
    let list = tape();
    let easy = |list: &easy_ml::differentiation::WengertList<f64>, p: [f64; 4]| {
        list.clear();
        let [a, b, c, d] = p.map(|v| Record::variable(v, list));
        let y = mgh_g(a, b, c, d);
        let g = y.derivatives();
        (y.number, [g[&a], g[&b], g[&c], g[&d]])
    };
    let dual = |p: [f64; 4]| {
        let [a, b, c, d] = duals(p);
        dual_parts(mgh_g(a, b, c, d))
    };
    let fd = |mut p: [f64; 4]| {
        let mut g = [0.0; 4];
        fd_grad(|p| mgh(p[0], p[1], p[2], p[3]), &mut p, &mut g);
        (mgh(p[0], p[1], p[2], p[3]), g)
    };
    let (v, (a, b, c2, d)) = mgh_grad(p[0], p[1], p[2], p[3]);
    let ours = [a, b, c2, d];
    let (vm, (a, b, c2, d)) = mgh_grad_manual(p[0], p[1], p[2], p[3]);
    assert!((v - vm).abs() < 1e-12 * v.abs());
    assert_close(&[a, b, c2, d], &ours, 1e-12, "mgh hand");
    assert_close(&easy(&list, p).1, &ours, 1e-12, "mgh easy-ml");
    assert_close(&dual(p).1, &ours, 1e-12, "mgh num-dual");
    assert_close(&fd(p).1, &ours, 1e-6, "mgh fd");

    let mut g = c.benchmark_group("mgh_100");
    g.bench_function("primal", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            mgh(p[0], p[1], p[2], p[3])
        })
    });
    g.bench_function("tapeless", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            mgh_grad(p[0], p[1], p[2], p[3])
        })
    });
    g.bench_function("hand-written", |bch| {
        bch.iter(|| {
            let p = black_box(p);
            mgh_grad_manual(p[0], p[1], p[2], p[3])
        })
    });
    g.bench_function("easy-ml", |bch| bch.iter(|| easy(&list, black_box(p))));
    g.bench_function("num-dual", |bch| bch.iter(|| dual(black_box(p))));
    g.bench_function("central-fd", |bch| bch.iter(|| fd(black_box(p))));
    g.finish();
}

// ---------------------------------------------------------------- lsq_1000 / logistic_1000

/// Arithmetic-dominated: least squares of a line over 1000 points.
#[differentiable(wrt(w, b))]
fn lsq(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let r = w * x[i] + b - y[i];
        s += r * r;
    }
    s
}

fn lsq_g<T: Real>(w: T, b: T, x: &[f64], y: &[f64]) -> T {
    let mut s = T::cst(0.0);
    for i in 0..x.len() {
        let r = w * x[i] + b - y[i];
        s = s + r * r;
    }
    s
}

/// Hand-written: one pass, dL/dw = Σ 2 r x_i, dL/db = Σ 2 r.
fn lsq_grad_manual(w: f64, b: f64, x: &[f64], y: &[f64]) -> (f64, (f64, f64)) {
    let (mut s, mut dw, mut db) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        let r = w * x[i] + b - y[i];
        s += r * r;
        dw += r * x[i];
        db += r;
    }
    (s, (2.0 * dw, 2.0 * db))
}

/// Transcendental-heavy: logistic regression's loss over 1000 points
/// (labels ±1): Σ ln(1 + exp(-y_i (w x_i + b))).
#[differentiable(wrt(w, b))]
fn logistic(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let z = y[i] * (w * x[i] + b);
        s += (-z).exp().ln_1p();
    }
    s
}

fn logistic_g<T: Real>(w: T, b: T, x: &[f64], y: &[f64]) -> T {
    let mut s = T::cst(0.0);
    for i in 0..x.len() {
        let z = (w * x[i] + b) * y[i];
        s = s + (-z).exp().ln_1p();
    }
    s
}

/// Hand-written: one pass, d/dz ln(1 + e^-z) = -e^-z / (1 + e^-z).
fn logistic_grad_manual(w: f64, b: f64, x: &[f64], y: &[f64]) -> (f64, (f64, f64)) {
    let (mut s, mut dw, mut db) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        let z = y[i] * (w * x[i] + b);
        let e = (-z).exp();
        s += e.ln_1p();
        let dz = -e / (1.0 + e) * y[i];
        dw += dz * x[i];
        db += dz;
    }
    (s, (dw, db))
}

type Loss = fn(f64, f64, &[f64], &[f64]) -> f64;
type LossGrad = fn(f64, f64, &[f64], &[f64]) -> (f64, (f64, f64));

/// A two-parameter loss written generically, for the taped and dual numbers.
trait Generic {
    fn eval<T: Real>(w: T, b: T, x: &[f64], y: &[f64]) -> T;
}

struct Lsq;
impl Generic for Lsq {
    fn eval<T: Real>(w: T, b: T, x: &[f64], y: &[f64]) -> T {
        lsq_g(w, b, x, y)
    }
}

struct Logistic;
impl Generic for Logistic {
    fn eval<T: Real>(w: T, b: T, x: &[f64], y: &[f64]) -> T {
        logistic_g(w, b, x, y)
    }
}

fn bench_two_param<G: Generic>(
    c: &mut Criterion,
    name: &str,
    f: Loss,
    ours: LossGrad,
    hand: LossGrad,
    x: &[f64],
    y: &[f64],
) {
    let p = [0.7, -0.3];
    let list = tape();
    let easy = |list: &easy_ml::differentiation::WengertList<f64>, p: [f64; 2]| {
        list.clear();
        let [w, b] = p.map(|v| Record::variable(v, list));
        let l = G::eval(w, b, x, y);
        let d = l.derivatives();
        (l.number, [d[&w], d[&b]])
    };
    let dual = |p: [f64; 2]| {
        let [w, b] = duals(p);
        dual_parts(G::eval(w, b, x, y))
    };
    let fd = |mut p: [f64; 2]| {
        let mut g = [0.0; 2];
        fd_grad(|p| f(p[0], p[1], x, y), &mut p, &mut g);
        (f(p[0], p[1], x, y), g)
    };
    let (v, (dw, db)) = ours(p[0], p[1], x, y);
    let o = [dw, db];
    let (vm, (dwm, dbm)) = hand(p[0], p[1], x, y);
    assert!((v - vm).abs() < 1e-12 * v.abs());
    assert_close(&[dwm, dbm], &o, 1e-12, &format!("{name} hand"));
    assert_close(&easy(&list, p).1, &o, 1e-12, &format!("{name} easy-ml"));
    assert_close(&dual(p).1, &o, 1e-12, &format!("{name} num-dual"));
    assert_close(&fd(p).1, &o, 1e-6, &format!("{name} fd"));

    let mut g = c.benchmark_group(name);
    g.bench_function("primal", |bch| {
        bch.iter(|| f(black_box(p[0]), black_box(p[1]), black_box(x), y))
    });
    g.bench_function("tapeless", |bch| {
        bch.iter(|| ours(black_box(p[0]), black_box(p[1]), black_box(x), y))
    });
    g.bench_function("hand-written", |bch| {
        bch.iter(|| hand(black_box(p[0]), black_box(p[1]), black_box(x), y))
    });
    g.bench_function("easy-ml", |bch| bch.iter(|| easy(&list, black_box(p))));
    g.bench_function("num-dual", |bch| bch.iter(|| dual(black_box(p))));
    g.bench_function("central-fd", |bch| bch.iter(|| fd(black_box(p))));
    g.finish();
}

fn bench_lsq_logistic(c: &mut Criterion) {
    let x: Vec<f64> = rand_vec(1, 1000).iter().map(|v| 3.0 * v).collect();
    let noise = rand_vec(2, 1000);
    let y: Vec<f64> = x
        .iter()
        .zip(&noise)
        .map(|(x, e)| 0.8 * x - 0.2 + 0.3 * e)
        .collect();
    bench_two_param::<Lsq>(c, "lsq_1000", lsq, lsq_grad, lsq_grad_manual, &x, &y);
    let labels: Vec<f64> = y
        .iter()
        .map(|v| if *v > 0.0 { 1.0 } else { -1.0 })
        .collect();
    bench_two_param::<Logistic>(
        c,
        "logistic_1000",
        logistic,
        logistic_grad,
        logistic_grad_manual,
        &x,
        &labels,
    );
}

criterion_group!(
    benches,
    bench_rnn,
    bench_chain,
    bench_mgh,
    bench_lsq_logistic
);
criterion_main!(benches);
