//! Stochastic gradient descent with momentum.

use super::{dispatch, restore, OptimState, Optimizer, Real, Slot, StateError, Store};
use crate::params::{zip_each, Parameters};
use std::collections::BTreeMap;

/// Stochastic gradient descent with optional momentum, dampening, Nesterov
/// momentum and (L2) weight decay: `torch.optim.SGD`.
///
/// For each parameter `p` with gradient `g`, learning rate `lr`, momentum
/// `mu`, dampening `tau` and weight decay `wd`:
///
/// ```text
/// d = g + wd * p                          (when wd != 0)
/// if mu != 0:
///     b = d                               (first step of this parameter)
///     b = mu * b + (1 - tau) * d          (later steps)
///     d = d + mu * b   if Nesterov, else   d = b
/// p = p - lr * d                          (computed as p + (-lr) * d)
/// ```
///
/// The momentum buffer `b` is the field `momentum` in [`Optimizer::state`]
/// (PyTorch's `momentum_buffer`).
///
/// ```
/// use tapeless_runtime::optim::{Optimizer, Sgd};
/// let mut w = vec![1.0f64, -2.0];
/// let mut opt = Sgd::new(0.1).momentum(0.9);
/// opt.step(&mut w, &vec![1.0, 1.0]); // b = g, w -= 0.1 * b
/// assert_eq!(w, [0.9, -2.1]);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    steps: u64,
    store: Store,
}

const FIELDS: &[&str] = &["momentum"];

impl Sgd {
    /// Plain SGD with learning rate `lr`: `p -= lr * g`.
    pub fn new(lr: f64) -> Sgd {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            steps: 0,
            store: Store::new(FIELDS),
        }
    }

    /// Momentum factor `mu` (default 0: none).
    pub fn momentum(mut self, mu: f64) -> Sgd {
        self.momentum = mu;
        self
    }

    /// Dampening `tau` of the momentum (default 0).
    pub fn dampening(mut self, tau: f64) -> Sgd {
        self.dampening = tau;
        self
    }

    /// Nesterov momentum (default off); needs momentum > 0 and dampening 0.
    pub fn nesterov(mut self, on: bool) -> Sgd {
        self.nesterov = on;
        self
    }

    /// L2 weight decay `wd`, added to the gradient as `wd * p` (default 0).
    pub fn weight_decay(mut self, wd: f64) -> Sgd {
        self.weight_decay = wd;
        self
    }

    fn update<T: Real>(&self, slot: &mut Slot, p: &mut [T], g: &[T], name: &str) {
        slot.step += 1;
        let wd = T::of(self.weight_decay);
        let neg_lr = T::of(-self.lr);
        if self.momentum == 0.0 {
            for (p, &g) in p.iter_mut().zip(g) {
                let d = if self.weight_decay != 0.0 {
                    g + wd * *p
                } else {
                    g
                };
                *p = *p + neg_lr * d;
            }
            return;
        }
        let mu = T::of(self.momentum);
        let keep = T::of(1.0 - self.dampening);
        let first = slot.bufs[0].is_none();
        let b = Slot::buf::<T>(&mut slot.bufs[0], p.len(), name, FIELDS[0]);
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let mut d = if self.weight_decay != 0.0 {
                g + wd * *p
            } else {
                g
            };
            *b = if first { d } else { *b * mu + keep * d };
            d = if self.nesterov { d + mu * *b } else { *b };
            *p = *p + neg_lr * d;
        }
    }
}

impl Optimizer for Sgd {
    fn step<M: Parameters>(&mut self, model: &mut M, grad: &M) {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            panic!(
                "Sgd: Nesterov momentum needs momentum > 0 and dampening 0 (momentum {}, dampening {})",
                self.momentum, self.dampening
            );
        }
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
        "sgd"
    }

    fn state(&self) -> OptimState {
        let scalars = BTreeMap::from([
            ("lr".to_owned(), self.lr),
            ("steps".to_owned(), self.steps as f64),
            ("momentum".to_owned(), self.momentum),
            ("dampening".to_owned(), self.dampening),
            ("nesterov".to_owned(), f64::from(u8::from(self.nesterov))),
            ("weight_decay".to_owned(), self.weight_decay),
        ]);
        self.store.export(self.kind(), scalars)
    }

    fn load_state(&mut self, state: &OptimState) -> Result<(), StateError> {
        let store = self.store.import(self.kind(), state)?;
        let s = &state.scalars;
        restore(s, "lr", &mut self.lr);
        restore(s, "momentum", &mut self.momentum);
        restore(s, "dampening", &mut self.dampening);
        restore(s, "weight_decay", &mut self.weight_decay);
        if let Some(&n) = s.get("nesterov") {
            self.nesterov = n != 0.0;
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
