//! Mini-batch training with Adam and a warm-up/cosine learning rate, and
//! held-out evaluation.

use super::models::Classifier;
use tapeless::nn::{accuracy, Dataset};
use tapeless::optim::{Adam, CosineWarmup, Optimizer, Schedule};

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Passes over the training set.
    pub epochs: usize,
    /// Peak learning rate (reached after the warm-up, then cosine decay to
    /// a tenth of it).
    pub lr: f64,
    /// Examples per step.
    pub batch_size: usize,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Fixes the batch order of every epoch.
    pub seed: u64,
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by batch size).
    pub train_loss: f32,
    /// Accuracy on the held-out set after the epoch, in `[0, 1]`.
    pub test_accuracy: f32,
}

/// Images evaluated at once, to bound memory on large data sets.
const EVAL_CHUNK: usize = 2048;

/// The fraction of `data` that `model` classifies correctly.
pub fn evaluate<M: Classifier>(model: &M, data: &Dataset) -> f32 {
    if data.is_empty() {
        return 0.0;
    }
    let mut correct = 0.0f64;
    for (x, y) in data.batches(EVAL_CHUNK) {
        let logits = model.predict(&x);
        correct += f64::from(accuracy(&logits, &y)) * y.len() as f64;
    }
    (correct / data.len() as f64) as f32
}

/// Trains `model` in place with `opt` (its learning rate set by the
/// schedule before every step), calling `on_epoch` after each epoch.
/// Returns every epoch's statistics.
pub fn train<M: Classifier>(
    model: &mut M,
    opt: &mut Adam,
    train: &Dataset,
    test: &Dataset,
    cfg: &Config,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Vec<EpochStats> {
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size) as u64;
    let total = steps_per_epoch * cfg.epochs as u64;
    let schedule = CosineWarmup::new(cfg.lr, steps_per_epoch * cfg.warmup_epochs as u64, total)
        .min_lr(cfg.lr / 10.0);
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let mut loss_sum = 0.0f64;
        for (x, y) in train.epoch(cfg.batch_size, cfg.seed, epoch as u64) {
            let (loss, grad) = model.loss_and_grad(&x, &y);
            loss_sum += f64::from(loss) * y.len() as f64;
            schedule.apply(opt);
            opt.step(model, &grad);
        }
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: (loss_sum / train.len().max(1) as f64) as f32,
            test_accuracy: evaluate(model, test),
        };
        on_epoch(&stats);
        history.push(stats);
    }
    history
}
