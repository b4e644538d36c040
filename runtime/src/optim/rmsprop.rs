//! RMSprop.

use super::{dispatch, lerp, restore, OptimState, Optimizer, Real, Slot, StateError, Store};
use crate::params::{zip_each, Parameters};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["square_avg", "momentum", "grad_avg"];

/// RMSprop (Hinton), optionally centred and with momentum: `torch.optim.RMSprop`.
///
/// For each parameter `p` with gradient `g`, with learning rate `lr`,
/// smoothing constant `alpha`, `eps`, momentum `mu` and weight decay `wd`:
///
/// ```text
/// g = g + wd * p                                  (when wd != 0)
/// s = alpha * s + (1 - alpha) * g * g
/// if centred:
///     a = alpha * a + (1 - alpha) * g             (as PyTorch's lerp: a + (1 - alpha) * (g - a))
///     r = sqrt(s - a * a) + eps
/// else:
///     r = sqrt(s) + eps
/// if mu > 0:
///     b = mu * b + g / r
///     p = p - lr * b
/// else:
///     p = p - lr * g / r
/// ```
///
/// `s`, `a` and `b` start at zero; they are the fields `square_avg`,
/// `grad_avg` and `momentum` in [`Optimizer::state`] (PyTorch's
/// `square_avg`, `grad_avg`, `momentum_buffer`). Defaults are PyTorch's:
/// `alpha = 0.99`, `eps = 1e-8`, no momentum, not centred, no weight decay.
///
/// ```
/// use tapeless_runtime::optim::{Optimizer, RmsProp};
/// let mut w = 1.0f64;
/// let mut opt = RmsProp::new(0.01).alpha(0.75);
/// opt.step(&mut w, &2.0); // s = 0.25 * 4 = 1, w -= 0.01 * 2 / (1 + eps)
/// assert!((w - 0.98).abs() < 1e-9);
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp {
    lr: f64,
    alpha: f64,
    eps: f64,
    momentum: f64,
    centered: bool,
    weight_decay: f64,
    steps: u64,
    store: Store,
}

impl RmsProp {
    /// RMSprop with learning rate `lr` and PyTorch's other defaults.
    pub fn new(lr: f64) -> RmsProp {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
            steps: 0,
            store: Store::new(FIELDS),
        }
    }

    /// The smoothing constant `alpha` of the squared-gradient average (default 0.99).
    pub fn alpha(mut self, alpha: f64) -> RmsProp {
        self.alpha = alpha;
        self
    }

    /// The term added to the denominator (default `1e-8`).
    pub fn eps(mut self, eps: f64) -> RmsProp {
        self.eps = eps;
        self
    }

    /// Momentum factor `mu` (default 0: none).
    pub fn momentum(mut self, mu: f64) -> RmsProp {
        self.momentum = mu;
        self
    }

    /// Centred RMSprop: normalise by an estimate of the gradient's variance
    /// instead of its second moment (default off).
    pub fn centered(mut self, on: bool) -> RmsProp {
        self.centered = on;
        self
    }

    /// L2 weight decay `wd`, added to the gradient as `wd * p` (default 0).
    pub fn weight_decay(mut self, wd: f64) -> RmsProp {
        self.weight_decay = wd;
        self
    }

    fn update<T: Real>(&self, slot: &mut Slot, p: &mut [T], g: &[T], name: &str) {
        slot.step += 1;
        let n = p.len();
        let wd = T::of(self.weight_decay);
        let alpha = T::of(self.alpha);
        let w = 1.0 - self.alpha;
        let (wt, one_minus_w, small) = (T::of(w), T::of(1.0 - w), w.abs() < 0.5);
        let eps = T::of(self.eps);
        let mu = T::of(self.momentum);
        let neg_lr = T::of(-self.lr);
        let minus_one = T::of(-1.0);
        let [s, b, a] = &mut slot.bufs[..] else {
            unreachable!("RMSprop keeps three buffers")
        };
        let s = Slot::buf::<T>(s, n, name, FIELDS[0]);
        let mut b = (self.momentum > 0.0).then(|| Slot::buf::<T>(b, n, name, FIELDS[1]));
        let mut a = self.centered.then(|| Slot::buf::<T>(a, n, name, FIELDS[2]));
        for i in 0..n {
            let g = if self.weight_decay != 0.0 {
                g[i] + wd * p[i]
            } else {
                g[i]
            };
            s[i] = s[i] * alpha + wt * g * g;
            let r = match a.as_deref_mut() {
                Some(a) => {
                    a[i] = lerp(a[i], g, wt, one_minus_w, small);
                    (s[i] + minus_one * a[i] * a[i]).sqrt()
                }
                None => s[i].sqrt(),
            } + eps;
            match b.as_deref_mut() {
                Some(b) => {
                    b[i] = b[i] * mu + g / r;
                    p[i] = p[i] + neg_lr * b[i];
                }
                None => p[i] = p[i] + neg_lr * (g / r),
            }
        }
    }
}

impl Optimizer for RmsProp {
    fn step<M: Parameters>(&mut self, model: &mut M, grad: &M) {
        self.steps += 1;
        let mut store = std::mem::replace(&mut self.store, Store::new(FIELDS));
        zip_each(model, grad, |name, p, g| {
            let slot = store.slot(name, &p.shape);
            dispatch!(p.data, g.data, |p, g| self.update(slot, p, g, name));
        });
        self.store = store;
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn kind(&self) -> &'static str {
        "rmsprop"
    }

    fn state(&self) -> OptimState {
        let scalars = BTreeMap::from([
            ("lr".to_owned(), self.lr),
            ("steps".to_owned(), self.steps as f64),
            ("alpha".to_owned(), self.alpha),
            ("eps".to_owned(), self.eps),
            ("momentum".to_owned(), self.momentum),
            ("centered".to_owned(), f64::from(u8::from(self.centered))),
            ("weight_decay".to_owned(), self.weight_decay),
        ]);
        self.store.export(self.kind(), scalars)
    }

    fn load_state(&mut self, state: &OptimState) -> Result<(), StateError> {
        let store = self.store.import(self.kind(), state)?;
        let s = &state.scalars;
        restore(s, "lr", &mut self.lr);
        restore(s, "alpha", &mut self.alpha);
        restore(s, "eps", &mut self.eps);
        restore(s, "momentum", &mut self.momentum);
        restore(s, "weight_decay", &mut self.weight_decay);
        if let Some(&c) = s.get("centered") {
            self.centered = c != 0.0;
        }
        if let Some(&n) = s.get("steps") {
            self.steps = n as u64;
        }
        self.store = store;
        Ok(())
    }

    fn reset(&mut self) {
        self.steps = 0;
        self.store = Store::new(FIELDS);
    }
}
