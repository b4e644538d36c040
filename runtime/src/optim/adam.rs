//! Adam and AdamW.

use super::{dispatch, lerp, restore, OptimState, Optimizer, Real, Slot, StateError, Store};
use crate::params::{zip_each, Parameters};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["m", "v"];

/// What Adam and AdamW share.
#[derive(Clone, Debug)]
struct Core {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    steps: u64,
    store: Store,
}

impl Core {
    fn new(lr: f64, weight_decay: f64) -> Core {
        Core {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            steps: 0,
            store: Store::new(FIELDS),
        }
    }

    /// One step of one parameter; `decoupled` selects AdamW's weight decay.
    fn update<T: Real>(&self, decoupled: bool, slot: &mut Slot, p: &mut [T], g: &[T], name: &str) {
        slot.step += 1;
        let t = slot.step as f64;
        let bias1 = 1.0 - self.beta1.powf(t);
        let bias2 = 1.0 - self.beta2.powf(t);
        let neg_step_size = T::of(-(self.lr / bias1));
        let bias2_sqrt = T::of(bias2.sqrt());
        let eps = T::of(self.eps);
        let w1 = 1.0 - self.beta1;
        let (w1t, one_minus_w1, small) = (T::of(w1), T::of(1.0 - w1), w1.abs() < 0.5);
        let b2 = T::of(self.beta2);
        let w2 = T::of(1.0 - self.beta2);
        let wd = T::of(self.weight_decay);
        let decay = T::of(1.0 - self.lr * self.weight_decay);
        let l2 = !decoupled && self.weight_decay != 0.0;
        let shrink = decoupled && self.weight_decay != 0.0;
        let n = p.len();
        let [m, v] = &mut slot.bufs[..] else {
            unreachable!("Adam keeps two buffers")
        };
        let m = Slot::buf::<T>(m, n, name, FIELDS[0]);
        let v = Slot::buf::<T>(v, n, name, FIELDS[1]);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            if shrink {
                *p = *p * decay;
            }
            let g = if l2 { g + wd * *p } else { g };
            *m = lerp(*m, g, w1t, one_minus_w1, small);
            *v = *v * b2 + w2 * g * g;
            let denom = v.sqrt() / bias2_sqrt + eps;
            *p = *p + neg_step_size * (*m / denom);
        }
    }

    fn step<M: Parameters>(&mut self, decoupled: bool, model: &mut M, grad: &M) {
        self.steps += 1;
        let mut store = std::mem::replace(&mut self.store, Store::new(FIELDS));
        zip_each(model, grad, |name, p, g| {
            let slot = store.slot(name, &p.shape);
            dispatch!(p.data, g.data, |p, g| self
                .update(decoupled, slot, p, g, name));
        });
        self.store = store;
    }

    fn state(&self, kind: &str) -> OptimState {
        let scalars = BTreeMap::from([
            ("lr".to_owned(), self.lr),
            ("steps".to_owned(), self.steps as f64),
            ("beta1".to_owned(), self.beta1),
            ("beta2".to_owned(), self.beta2),
            ("eps".to_owned(), self.eps),
            ("weight_decay".to_owned(), self.weight_decay),
        ]);
        self.store.export(kind, scalars)
    }

    fn load_state(&mut self, kind: &str, state: &OptimState) -> Result<(), StateError> {
        let store = self.store.import(kind, state)?;
        let s = &state.scalars;
        restore(s, "lr", &mut self.lr);
        restore(s, "beta1", &mut self.beta1);
        restore(s, "beta2", &mut self.beta2);
        restore(s, "eps", &mut self.eps);
        restore(s, "weight_decay", &mut self.weight_decay);
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

macro_rules! adam_builders {
    ($ty:ident) => {
        impl $ty {
            /// The decay rates of the moment estimates (default `(0.9, 0.999)`).
            pub fn betas(mut self, beta1: f64, beta2: f64) -> $ty {
                self.0.beta1 = beta1;
                self.0.beta2 = beta2;
                self
            }

            /// The term added to the denominator (default `1e-8`).
            pub fn eps(mut self, eps: f64) -> $ty {
                self.0.eps = eps;
                self
            }

            /// The weight decay `wd` (see the type's docs for how it is applied).
            pub fn weight_decay(mut self, wd: f64) -> $ty {
                self.0.weight_decay = wd;
                self
            }
        }

        impl Optimizer for $ty {
            fn step<M: Parameters>(&mut self, model: &mut M, grad: &M) {
                let decoupled = self.kind() == "adamw";
                self.0.step(decoupled, model, grad)
            }
            fn lr(&self) -> f64 {
                self.0.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self.0.lr = lr;
            }
            fn steps(&self) -> u64 {
                self.0.steps
            }
            fn state(&self) -> OptimState {
                self.0.state(self.kind())
            }
            fn load_state(&mut self, state: &OptimState) -> Result<(), StateError> {
                let kind = self.kind();
                self.0.load_state(kind, state)
            }
            fn reset(&mut self) {
                self.0.reset()
            }
            fn kind(&self) -> &'static str {
                Self::KIND
            }
        }
    };
}

/// Adam (Kingma & Ba), with optional L2 weight decay: `torch.optim.Adam`.
///
/// For each parameter `p` with gradient `g`, on its `t`-th step (`t` from 1),
/// with learning rate `lr`, decay rates `b1`, `b2`, `eps` and weight decay `wd`:
///
/// ```text
/// g = g + wd * p                                (when wd != 0)
/// m = b1 * m + (1 - b1) * g                     (as PyTorch's lerp: m + (1 - b1) * (g - m))
/// v = b2 * v + (1 - b2) * g * g
/// m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
/// p = p - lr * m_hat / (sqrt(v_hat) + eps)
/// ```
///
/// computed as PyTorch does: `step_size = lr / (1 - b1^t)` and
/// `sqrt(1 - b2^t)` in `f64`, then `p += -step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`
/// in the parameter's precision. `m` and `v` start at zero; they are the
/// fields `m` and `v` in [`Optimizer::state`] (PyTorch's `exp_avg`, `exp_avg_sq`).
///
/// ```
/// use tapeless_runtime::optim::{Adam, Optimizer};
/// let mut w = 1.0f64;
/// let mut opt = Adam::new(0.1);
/// opt.step(&mut w, &0.5); // the first step moves by lr * g / |g| (up to eps)
/// assert!((w - 0.9).abs() < 1e-7);
/// ```
#[derive(Clone, Debug)]
pub struct Adam(Core);

impl Adam {
    const KIND: &'static str = "adam";

    /// Adam with learning rate `lr`, betas `(0.9, 0.999)`, eps `1e-8`, no weight decay.
    pub fn new(lr: f64) -> Adam {
        Adam(Core::new(lr, 0.0))
    }
}
adam_builders!(Adam);

/// Adam with decoupled weight decay (Loshchilov & Hutter): `torch.optim.AdamW`.
///
/// As [`Adam`] without the L2 term, after first shrinking the parameter:
///
/// ```text
/// p = p - lr * wd * p          (computed as PyTorch does: p = p * (1 - lr * wd))
/// ... the Adam update of p with g ...
/// ```
///
/// The default weight decay is `0.01`, as PyTorch's.
///
/// ```
/// use tapeless_runtime::optim::{AdamW, Optimizer};
/// let mut w = 2.0f64;
/// let mut opt = AdamW::new(0.1).weight_decay(0.5);
/// opt.step(&mut w, &0.0); // zero gradient: only the decay, 2 * (1 - 0.05)
/// assert!((w - 1.9).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct AdamW(Core);

impl AdamW {
    const KIND: &'static str = "adamw";

    /// AdamW with learning rate `lr`, betas `(0.9, 0.999)`, eps `1e-8`, weight decay `0.01`.
    pub fn new(lr: f64) -> AdamW {
        AdamW(Core::new(lr, 0.01))
    }
}
adam_builders!(AdamW);
