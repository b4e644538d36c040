//! One training step (forward + gradient + Adam update) at batch 64: tapeless
//! (`#[differentiable]` loss + `Adam`) against candle's taped CPU backprop
//! (`Var`, `backward()`, `AdamW` without weight decay) and, for the MLP, a
//! hand-written step on the `gemm` crate and on `matrixmultiply`. The
//! `*_grad` groups time forward + gradient only.
//!
//! ```text
//! cd bench-candle && cargo bench -- --warm-up-time 2 --measurement-time 5
//! ```
//!
//! Every implementation starts from the same weights (`tests/agree.rs`
//! checks that they compute the same step) and keeps training on the same
//! batch while it is timed.

use bench_candle::{batch, hand, ours, taped, BATCH, INPUTS, LR, SIDE};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tapeless::optim::Adam;

fn mlp(c: &mut Criterion) {
    let model = ours::Mlp::new(1);
    let (x, labels) = batch(2, &[BATCH, INPUTS]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));
    let xv = x.to_vec();

    let mut g = c.benchmark_group("mlp_step");
    {
        let (mut m, mut opt) = (model.clone(), Adam::new(LR));
        g.bench_function("tapeless", |b| {
            b.iter(|| ours::mlp_step(&mut m, &mut opt, black_box(&x), &labels))
        });
    }
    {
        let (mut m, mut opt) = (model.clone(), Adam::new(LR));
        g.bench_function("tapeless_fused_ce", |b| {
            b.iter(|| ours::mlp_step_fused(&mut m, &mut opt, black_box(&x), &labels))
        });
    }
    {
        let mut m = taped::Mlp::from(&model, LR);
        g.bench_function("candle", |b| {
            b.iter(|| m.step(black_box(&xc), &lc).expect("candle step"))
        });
    }
    for (name, which) in [
        ("hand_gemm", hand::Gemm::Gemm),
        ("hand_matrixmultiply", hand::Gemm::MatrixMultiply),
    ] {
        let mut m = hand::Mlp::from(&model, which, LR);
        g.bench_function(name, |b| b.iter(|| m.step(black_box(&xv), &labels)));
    }
    g.finish();

    let mut g = c.benchmark_group("mlp_grad");
    g.bench_function("tapeless", |b| {
        b.iter(|| model.loss_grad(black_box(&x), &labels))
    });
    {
        let m = taped::Mlp::from(&model, LR);
        g.bench_function("candle", |b| {
            b.iter(|| m.loss_grad(black_box(&xc), &lc).expect("candle grad"))
        });
    }
    for (name, which) in [
        ("hand_gemm", hand::Gemm::Gemm),
        ("hand_matrixmultiply", hand::Gemm::MatrixMultiply),
    ] {
        let mut m = hand::Mlp::from(&model, which, LR);
        g.bench_function(name, |b| b.iter(|| m.loss_grad(black_box(&xv), &labels)));
    }
    g.finish();
}

fn cnn(c: &mut Criterion) {
    let model = ours::Cnn::new(3);
    let (x, labels) = batch(4, &[BATCH, 1, SIDE, SIDE]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));

    let mut g = c.benchmark_group("cnn_step");
    {
        let (mut m, mut opt) = (model.clone(), Adam::new(LR));
        g.bench_function("tapeless", |b| {
            b.iter(|| ours::cnn_step(&mut m, &mut opt, black_box(&x), &labels))
        });
    }
    {
        let mut m = taped::Cnn::from(&model, LR);
        g.bench_function("candle", |b| {
            b.iter(|| m.step(black_box(&xc), &lc).expect("candle step"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cnn_grad");
    g.bench_function("tapeless", |b| {
        b.iter(|| model.loss_grad(black_box(&x), &labels))
    });
    {
        let m = taped::Cnn::from(&model, LR);
        g.bench_function("candle", |b| {
            b.iter(|| m.loss_grad(black_box(&xc), &lc).expect("candle grad"))
        });
    }
    g.finish();
}

criterion_group!(benches, mlp, cnn);
criterion_main!(benches);
