//! The three implementations compute the same first training step: the same
//! loss, the same gradients and (after one Adam update) the same weights.

use bench_candle::{batch, hand, ours, taped, BATCH, INPUTS, LR, SIDE};
use tapeless::optim::{Adam, Optimizer};

/// Largest `|a - b| - rtol·max(|a|, |b|)` over all elements must be `<= atol`.
#[track_caller]
fn assert_close(what: &str, a: &[Vec<f32>], b: &[Vec<f32>], rtol: f32, atol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: number of tensors");
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}[{i}]: length");
        let mut worst = (0.0f32, 0usize);
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(
                x.is_finite() && y.is_finite(),
                "{what}[{i}][{j}]: {x} vs {y}"
            );
            let excess = (x - y).abs() - rtol * x.abs().max(y.abs());
            if excess > worst.0 {
                worst = (excess, j);
            }
        }
        let j = worst.1;
        assert!(
            worst.0 <= atol,
            "{what}[{i}][{j}]: {} vs {} (|diff| {})",
            a[j],
            b[j],
            (a[j] - b[j]).abs()
        );
    }
}

#[track_caller]
fn assert_loss(what: &str, a: f32, b: f32) {
    assert!(
        (a - b).abs() <= 1e-5 * a.abs().max(1.0),
        "{what}: loss {a} vs {b}"
    );
}

/// Gradients: float sums in another order differ by a few ulps of the terms.
const G_RTOL: f32 = 1e-3;
const G_ATOL: f32 = 1e-6;
/// Weights after one Adam step.
const W_ATOL: f32 = 1e-4;

#[test]
fn mlp_first_step() {
    let model = ours::Mlp::new(1);
    let (x, labels) = batch(2, &[BATCH, INPUTS]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));
    let xv = x.to_vec();

    // Forward and gradient.
    let (loss, g) = model.loss_grad(&x, &labels);
    let ours_g = ours::Mlp::weights(&g);
    let (fused, gf) = model.loss_fused_grad(&x, &labels);
    assert_loss("fused", loss, fused);
    assert_close("fused grad", &ours_g, &gf.weights(), G_RTOL, G_ATOL);

    let mut candle = taped::Mlp::from(&model, LR);
    let (closs, cg) = candle.loss_grad(&xc, &lc).unwrap();
    assert_loss("candle", loss, closs);
    assert_close(
        "candle grad",
        &ours_g,
        &taped::grads(&candle.vars, &cg),
        G_RTOL,
        G_ATOL,
    );
    // Sanity: the loss of a fresh 10-class model is near ln 10.
    assert!((1.0..4.0).contains(&loss), "loss {loss}");

    for which in [hand::Gemm::Gemm, hand::Gemm::MatrixMultiply] {
        let mut h = hand::Mlp::from(&model, which, LR);
        let hl = h.loss_grad(&xv, &labels);
        assert_loss(&format!("hand {which:?}"), loss, hl);
        assert_close(
            &format!("hand {which:?} grad"),
            &ours_g,
            &h.grads(),
            G_RTOL,
            G_ATOL,
        );
    }

    // One Adam step each.
    let mut m = model.clone();
    let mut opt = Adam::new(LR);
    let l1 = ours::mlp_step(&mut m, &mut opt, &x, &labels);
    assert_eq!(l1, loss);
    let cl1 = candle.step(&xc, &lc).unwrap();
    assert_loss("candle step", l1, cl1);
    assert_close(
        "candle weights",
        &m.weights(),
        &candle.weights(),
        0.0,
        W_ATOL,
    );
    for which in [hand::Gemm::Gemm, hand::Gemm::MatrixMultiply] {
        let mut h = hand::Mlp::from(&model, which, LR);
        h.step(&xv, &labels);
        assert_close(
            &format!("hand {which:?} weights"),
            &m.weights(),
            &h.weights(),
            0.0,
            W_ATOL,
        );
    }
    // Adam's first step moves every weight with a gradient by about lr.
    let moved =
        m.w1.to_vec()
            .iter()
            .zip(model.w1.to_vec())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
    assert!(
        moved > 0.9 * LR as f32 && moved < 1.1 * LR as f32,
        "moved {moved}"
    );

    // A second step agrees too (Adam's state carried).
    let l2 = ours::mlp_step(&mut m, &mut opt, &x, &labels);
    let cl2 = candle.step(&xc, &lc).unwrap();
    assert_loss("candle second step", l2, cl2);
    assert!(l2 < l1, "the loss went down: {l1} -> {l2}");
    assert_close(
        "candle weights, 2 steps",
        &m.weights(),
        &candle.weights(),
        0.0,
        2.0 * W_ATOL,
    );
    assert_eq!(opt.steps(), 2);
}

#[test]
fn cnn_first_step() {
    let model = ours::Cnn::new(3);
    let (x, labels) = batch(4, &[BATCH, 1, SIDE, SIDE]);
    let (xc, lc) = (taped::tensor(&x), taped::labels(&labels));

    let (loss, g) = model.loss_grad(&x, &labels);
    let mut candle = taped::Cnn::from(&model, LR);
    let (closs, cg) = candle.loss_grad(&xc, &lc).unwrap();
    assert_loss("candle", loss, closs);
    assert!((1.0..4.0).contains(&loss), "loss {loss}");
    // candle 0.11's max-pool backward (`Op::MaxPool2D` in candle-core's
    // src/backprop.rs) multiplies the incoming gradient by the share of
    // maxima in each window (1/4 for a unique maximum) where it should
    // divide by their count: everything below a 2x2 pool gets 1/4 of its
    // gradient. Ours matches finite differences (tests/grad_tensor.rs);
    // undo the factor (two pools below conv1, one below conv2) to compare.
    let mut cgs = taped::grads(&candle.vars, &cg);
    for (i, factor) in [16.0, 16.0, 4.0, 4.0, 1.0, 1.0].into_iter().enumerate() {
        cgs[i].iter_mut().for_each(|v| *v *= factor);
    }
    assert_close("candle grad", &g.weights(), &cgs, G_RTOL, G_ATOL);

    let mut m = model.clone();
    let mut opt = Adam::new(LR);
    let l1 = ours::cnn_step(&mut m, &mut opt, &x, &labels);
    assert_eq!(l1, loss);
    let cl1 = candle.step(&xc, &lc).unwrap();
    assert_loss("candle step", l1, cl1);
    // Adam's first step is lr·g/(|g| + eps): invariant to the scale of the
    // gradient where |g| >> eps, so the weights agree despite candle's
    // max-pool factor. Where |g| is within a few hundred eps, the factor
    // changes the step (g = 1.5e-8 moves by 0.6 lr here, g/4 by 0.27 lr):
    // there both moved by at most lr, the same way.
    let (ours_w, candle_w, start) = (m.weights(), candle.weights(), model.weights());
    let gs = g.weights();
    let mut eps_bound = 0;
    for i in 0..ours_w.len() {
        for j in 0..ours_w[i].len() {
            let (a, b, g) = (ours_w[i][j], candle_w[i][j], gs[i][j]);
            if g == 0.0 || g.abs() >= 1e-6 {
                assert!(
                    (a - b).abs() <= W_ATOL,
                    "candle weights[{i}][{j}]: {a} vs {b}"
                );
            } else {
                eps_bound += 1;
                let (da, db) = (a - start[i][j], b - start[i][j]);
                assert!(
                    da.abs() <= 1.01 * LR as f32 && db.abs() <= 1.01 * LR as f32 && da * db >= 0.0,
                    "candle weights[{i}][{j}] (gradient {g}): moved {da} vs {db}"
                );
            }
        }
    }
    let total: usize = ours_w.iter().map(Vec::len).sum();
    assert!(
        eps_bound * 100 < total,
        "{eps_bound} of {total} weights have 0 < |g| < 1e-6"
    );
}
