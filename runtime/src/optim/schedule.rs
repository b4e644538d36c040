//! Learning-rate schedules.

use super::Optimizer;

/// A learning rate as a function of the step count.
///
/// `lr_at(t)` is the rate for the step that follows `t` completed steps, so
/// before each step, `sched.apply(&mut opt)` (which is
/// `opt.set_lr(sched.lr_at(opt.steps()))`) sets the rate that step uses. The
/// "step" may as well count epochs: call `opt.set_lr(sched.lr_at(epoch))`.
pub trait Schedule {
    /// The learning rate after `t` completed steps.
    fn lr_at(&self, t: u64) -> f64;

    /// Sets `opt`'s learning rate for its next step.
    fn apply(&self, opt: &mut dyn Optimizer) {
        let t = opt.steps();
        opt.set_lr(self.lr_at(t));
    }
}

/// The same learning rate at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn lr_at(&self, _t: u64) -> f64 {
        self.0
    }
}

/// Step decay (PyTorch's `StepLR`): `lr = base_lr * gamma^floor(t / step_size)`.
///
/// ```
/// use tapeless_runtime::optim::{Schedule, StepDecay};
/// let s = StepDecay { base_lr: 1.0, step_size: 10, gamma: 0.5 };
/// assert_eq!([s.lr_at(0), s.lr_at(9), s.lr_at(10), s.lr_at(25)], [1.0, 1.0, 0.5, 0.25]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// The rate before the first decay.
    pub base_lr: f64,
    /// Steps between decays (0 is treated as 1).
    pub step_size: u64,
    /// The factor applied at each decay.
    pub gamma: f64,
}

impl Schedule for StepDecay {
    fn lr_at(&self, t: u64) -> f64 {
        let k = t / self.step_size.max(1);
        self.base_lr * self.gamma.powf(k as f64)
    }
}

/// Linear warm-up followed by cosine decay (the schedule of Hugging Face's
/// `get_cosine_schedule_with_warmup`, with a floor `min_lr`):
///
/// ```text
/// t <  warmup:  lr = base_lr * t / warmup
/// t >= warmup:  p  = min(1, (t - warmup) / max(1, total - warmup))
///               lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * p)) / 2
/// ```
///
/// so the rate rises from 0 to `base_lr` over `warmup` steps, then falls to
/// `min_lr` at step `total` and stays there.
///
/// ```
/// use tapeless_runtime::optim::{CosineWarmup, Schedule};
/// let s = CosineWarmup::new(1.0, 10, 110);
/// assert_eq!([s.lr_at(0), s.lr_at(5), s.lr_at(10)], [0.0, 0.5, 1.0]);
/// assert!((s.lr_at(60) - 0.5).abs() < 1e-12); // half-way down the cosine
/// assert_eq!(s.lr_at(110), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineWarmup {
    /// The peak rate, reached at the end of the warm-up.
    pub base_lr: f64,
    /// Steps of linear warm-up.
    pub warmup: u64,
    /// The step at which the rate reaches `min_lr`.
    pub total: u64,
    /// The rate at and after step `total`.
    pub min_lr: f64,
}

impl CosineWarmup {
    /// Warm-up over `warmup` steps to `base_lr`, cosine decay to 0 at `total`.
    pub fn new(base_lr: f64, warmup: u64, total: u64) -> CosineWarmup {
        CosineWarmup {
            base_lr,
            warmup,
            total,
            min_lr: 0.0,
        }
    }

    /// The same schedule decaying to `min_lr` instead of 0.
    pub fn min_lr(mut self, min_lr: f64) -> CosineWarmup {
        self.min_lr = min_lr;
        self
    }
}

impl Schedule for CosineWarmup {
    fn lr_at(&self, t: u64) -> f64 {
        if t < self.warmup {
            return self.base_lr * t as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let p = ((t - self.warmup) as f64 / span as f64).min(1.0);
        self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}
