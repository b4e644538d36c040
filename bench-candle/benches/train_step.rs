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
//! `BENCH_CLOCK=cpu` times the process's CPU time instead of wall time (see
//! `bench_candle::clock`); with `RAYON_NUM_THREADS=1 MATMUL_NUM_THREADS=1`
//! (one thread everywhere: rayon, matrixmultiply, candle and its `gemm`)
//! that is the step's own work on a machine shared with other jobs.
//!
//! Every implementation starts from the same weights (`tests/agree.rs`
//! checks that they compute the same step). Steps are timed as a training
//! loop runs them, one after the other on the same state, from a snapshot
//! taken after a few warm-up steps; every `RESTART` steps the snapshot is
//! restored, untimed, followed by two untimed steps. Without restarts,
//! thousands of steps on one batch drive the loss to zero and leave
//! subnormal Adam moments behind (a dead unit's `m` gets stuck at a
//! subnormal under PyTorch's `lerp` update, after ~800 steps here), which
//! slows the optimizer loops: a run no one trains. Restoring before every
//! step instead (`iter_batched`) frees and reallocates megabytes between
//! steps, and the step then pays the page faults of a heap the allocator
//! just gave back to the kernel: 2-3x slower than a training loop's steps.

use bench_candle::{batch, clock, hand, ours, taped, BATCH, INPUTS, LR, SIDE};
use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use std::hint::black_box;
use std::time::Duration;
use tapeless::optim::Adam;

/// Steps taken before the snapshot that timed steps start from.
const WARM: usize = 3;
/// Timed steps between two restorations of the snapshot.
const RESTART: usize = 200;

/// Times `step` as a training loop calls it, on a state made by `fresh`
/// (the snapshot), which is made again, untimed, every `RESTART` steps.
fn steady<S>(b: &mut Bencher, fresh: impl Fn() -> S, mut step: impl FnMut(&mut S) -> f32) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut state = None;
        let mut since = RESTART;
        for _ in 0..iters {
            if since == RESTART {
                drop(state.take());
                let mut s = fresh();
                step(&mut s);
                step(&mut s);
                state = Some(s);
                since = 0;
            }
            let s = state.as_mut().expect("set above");
            let t = clock();
            black_box(step(s));
            total += clock() - t;
            since += 1;
        }
        total
    })
}

/// Times `f` (its result dropped inside the timing) on [`clock`].
fn each<T>(b: &mut Bencher, mut f: impl FnMut() -> T) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = clock();
            drop(black_box(f()));
            total += clock() - t;
        }
        total
    })
}

fn mlp(c: &mut Criterion) {
    let model = ours::Mlp::new(1);
    let (x, labels) = batch(2, &[BATCH, INPUTS]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));
    let xv = x.to_vec();

    // The snapshot every timed step starts from: the model and Adam's state
    // after WARM steps.
    let (mut m0, mut opt0) = (model.clone(), Adam::new(LR));
    for _ in 0..WARM {
        ours::mlp_step(&mut m0, &mut opt0, &x, &labels);
    }
    let mut g = c.benchmark_group("mlp_step");
    g.bench_function("tapeless", |b| {
        steady(
            b,
            || (m0.clone(), opt0.clone()),
            |(m, opt)| ours::mlp_step(m, opt, black_box(&x), &labels),
        )
    });
    g.bench_function("tapeless_fused_ce", |b| {
        steady(
            b,
            || (m0.clone(), opt0.clone()),
            |(m, opt)| ours::mlp_step_fused(m, opt, black_box(&x), &labels),
        )
    });
    // candle's AdamW keeps its moments private: a restart takes the
    // snapshot's weights with fresh (zero) moments, which costs the same
    // tensor operations in later steps.
    g.bench_function("candle", |b| {
        steady(
            b,
            || taped::Mlp::from(&m0, LR),
            |m| m.step(black_box(&xc), &lc).expect("candle step"),
        )
    });
    for (name, which) in [
        ("hand_gemm", hand::Gemm::Gemm),
        ("hand_matrixmultiply", hand::Gemm::MatrixMultiply),
    ] {
        let mut h0 = hand::Mlp::from(&model, which, LR);
        for _ in 0..WARM {
            h0.step(&xv, &labels);
        }
        g.bench_function(name, |b| {
            steady(b, || h0.clone(), |m| m.step(black_box(&xv), &labels))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("mlp_grad");
    g.bench_function("tapeless", |b| {
        each(b, || model.loss_grad(black_box(&x), &labels))
    });
    {
        let m = taped::Mlp::from(&model, LR);
        g.bench_function("candle", |b| {
            each(b, || m.loss_grad(black_box(&xc), &lc).expect("candle grad"))
        });
    }
    for (name, which) in [
        ("hand_gemm", hand::Gemm::Gemm),
        ("hand_matrixmultiply", hand::Gemm::MatrixMultiply),
    ] {
        let mut m = hand::Mlp::from(&model, which, LR);
        g.bench_function(name, |b| each(b, || m.loss_grad(black_box(&xv), &labels)));
    }
    g.finish();
}

fn cnn(c: &mut Criterion) {
    let model = ours::Cnn::new(3);
    let (x, labels) = batch(4, &[BATCH, 1, SIDE, SIDE]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));

    let (mut m0, mut opt0) = (model.clone(), Adam::new(LR));
    for _ in 0..WARM {
        ours::cnn_step(&mut m0, &mut opt0, &x, &labels);
    }
    let mut g = c.benchmark_group("cnn_step");
    g.bench_function("tapeless", |b| {
        steady(
            b,
            || (m0.clone(), opt0.clone()),
            |(m, opt)| ours::cnn_step(m, opt, black_box(&x), &labels),
        )
    });
    g.bench_function("candle", |b| {
        steady(
            b,
            || taped::Cnn::from(&m0, LR),
            |m| m.step(black_box(&xc), &lc).expect("candle step"),
        )
    });
    g.finish();

    let mut g = c.benchmark_group("cnn_grad");
    g.bench_function("tapeless", |b| {
        each(b, || model.loss_grad(black_box(&x), &labels))
    });
    {
        let m = taped::Cnn::from(&model, LR);
        g.bench_function("candle", |b| {
            each(b, || m.loss_grad(black_box(&xc), &lc).expect("candle grad"))
        });
    }
    g.finish();
}

criterion_group!(benches, mlp, cnn);
criterion_main!(benches);
