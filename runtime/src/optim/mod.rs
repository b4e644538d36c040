//! Optimizers that step a whole model with its gradient in one call, learning
//! rate schedules, and gradient clipping.
//!
//! * [`Sgd`] (momentum, dampening, Nesterov, weight decay), [`Adam`],
//!   [`AdamW`] (decoupled weight decay), [`RmsProp`] (momentum, centred):
//!   each implements [`Optimizer`], whose [`step`](Optimizer::step) takes any
//!   [`Parameters`] model and its gradient (a value of the model's own type).
//! * [`Schedule`]s: [`Constant`], [`StepDecay`], [`CosineWarmup`];
//!   [`Schedule::apply`] sets an optimizer's learning rate for its next step.
//! * [`clip_grad_norm`] and [`global_norm`].
//!
//! The update formulas are PyTorch's (`torch.optim`, the single-tensor
//! "for-loop" implementation), operation for operation: element-wise
//! arithmetic in the parameter's own precision (`f32` or `f64`) and
//! hyper-parameter arithmetic (bias corrections, step sizes) in `f64`, each
//! stated in the optimizer's docs.
//!
//! State (momentum buffers, moment estimates, per-parameter step counts) is
//! allocated lazily, the first time a step sees a parameter, and kept per
//! parameter *name* (`layer1.w`): models whose parameters keep their names
//! keep their state. [`Optimizer::state`] exports it as named buffers and
//! counters ([`OptimState`]), [`Optimizer::load_state`] restores it; the
//! [`checkpoint`](crate::checkpoint) module writes it to disk.
//!
//! ```
//! use tapeless_runtime::optim::{Adam, CosineWarmup, Optimizer, Schedule};
//!
//! // Minimise (w - 3)^2 + (b + 1)^2 for the model (w, b).
//! let mut model = (0.0f64, 0.0f64);
//! let mut opt = Adam::new(0.1);
//! let sched = CosineWarmup::new(0.1, 10, 500);
//! for _ in 0..500 {
//!     let grad = (2.0 * (model.0 - 3.0), 2.0 * (model.1 + 1.0));
//!     sched.apply(&mut opt);
//!     opt.step(&mut model, &grad);
//! }
//! assert!((model.0 - 3.0).abs() < 1e-3 && (model.1 + 1.0).abs() < 1e-3);
//! assert_eq!(opt.steps(), 500);
//! ```

mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamW};
pub use clip::{clip_grad_norm, global_norm};
pub use rmsprop::RmsProp;
pub use schedule::{Constant, CosineWarmup, Schedule, StepDecay};
pub use sgd::Sgd;

use crate::params::{Dtype, Parameters};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, Div, Mul, Sub};

/// An optimizer: updates a model in place from its gradient.
///
/// Dyn-compatible apart from [`step`](Optimizer::step) (generic over the
/// model), so a checkpoint can take any optimizer as `&dyn Optimizer`.
pub trait Optimizer {
    /// Updates every parameter of `model` from the matching buffer of `grad`,
    /// allocating state for parameters it has not seen yet.
    ///
    /// # Panics
    /// When a gradient buffer's shape differs from its parameter's, when a
    /// parameter's shape or element type differs from the state kept under
    /// its name, or on an invalid configuration (Nesterov without momentum).
    fn step<M: Parameters>(&mut self, model: &mut M, grad: &M)
    where
        Self: Sized;

    /// The learning rate the next step uses.
    fn lr(&self) -> f64;

    /// Sets the learning rate for the following steps (what a [`Schedule`] does).
    fn set_lr(&mut self, lr: f64);

    /// The number of completed [`step`](Optimizer::step) calls.
    fn steps(&self) -> u64;

    /// The short name of the algorithm (`"sgd"`, `"adam"`, `"adamw"`,
    /// `"rmsprop"`), which prefixes its buffers in checkpoints.
    fn kind(&self) -> &'static str;

    /// A copy of the whole state: hyper-parameters, counters and per-parameter
    /// buffers.
    fn state(&self) -> OptimState;

    /// Replaces the whole state by `state` (like PyTorch's
    /// `load_state_dict`, hyper-parameters included). Nothing changes when an
    /// error is returned.
    fn load_state(&mut self, state: &OptimState) -> Result<(), StateError>;

    /// Forgets all per-parameter state and the step count; keeps the
    /// hyper-parameters and learning rate.
    fn reset(&mut self);
}

/// An optimizer's state, as named buffers and counters.
///
/// In a checkpoint, the buffer `field` of parameter `name` is the tensor
/// `"{kind}.{field}.{name}"` (`adam.m.layer1.w`), its step count
/// `"{kind}.step.{name}"` and scalar `s` is `"{kind}.{s}"` (`adam.lr`).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState {
    /// The algorithm ([`Optimizer::kind`]).
    pub kind: String,
    /// Hyper-parameters and counters: `lr`, `steps`, and the algorithm's own
    /// (`beta1`, `momentum`, ...; booleans as 0 or 1).
    pub scalars: BTreeMap<String, f64>,
    /// Per-parameter state, by parameter name.
    pub params: BTreeMap<String, ParamState>,
}

/// The state an optimizer keeps for one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState {
    /// How many steps have updated this parameter (Adam's `t`).
    pub step: u64,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// Buffers by field name (`m`, `v`, `momentum`, ...), each of the
    /// parameter's shape and element type.
    pub buffers: BTreeMap<String, BufferData>,
}

/// The numbers of one state buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferData {
    /// For an `f32` parameter.
    F32(Vec<f32>),
    /// For an `f64` parameter.
    F64(Vec<f64>),
}

impl BufferData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            BufferData::F32(v) => v.len(),
            BufferData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            BufferData::F32(_) => Dtype::F32,
            BufferData::F64(_) => Dtype::F64,
        }
    }
}

/// Why [`Optimizer::load_state`] refused a state.
#[derive(Clone, Debug, PartialEq)]
pub enum StateError {
    /// The state belongs to another algorithm.
    WrongKind {
        /// This optimizer's kind.
        expected: String,
        /// The state's kind.
        found: String,
    },
    /// A buffer this algorithm does not keep.
    UnknownBuffer {
        /// The parameter.
        param: String,
        /// The buffer's field name.
        field: String,
    },
    /// A buffer whose length is not the product of its parameter's shape.
    BadLength {
        /// The parameter.
        param: String,
        /// The buffer's field name.
        field: String,
        /// The parameter's shape.
        shape: Vec<usize>,
        /// The buffer's length.
        len: usize,
    },
    /// Buffers of one parameter with different element types.
    MixedTypes {
        /// The parameter.
        param: String,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::WrongKind { expected, found } => write!(
                f,
                "optimizer state is for `{found}`, cannot load it into `{expected}`"
            ),
            StateError::UnknownBuffer { param, field } => write!(
                f,
                "optimizer state has a buffer `{field}` for `{param}`, which this optimizer does not keep"
            ),
            StateError::BadLength {
                param,
                field,
                shape,
                len,
            } => write!(
                f,
                "optimizer buffer `{field}` of `{param}` has {len} elements, the shape {shape:?} needs {}",
                shape.iter().product::<usize>()
            ),
            StateError::MixedTypes { param } => {
                write!(f, "optimizer buffers of `{param}` mix f32 and f64")
            }
        }
    }
}

impl std::error::Error for StateError {}

// ---- what the algorithms share ---------------------------------------------

/// The element types an update runs in: arithmetic in `Self`, coefficients
/// computed in `f64` and converted with [`Real::of`] (as PyTorch converts a
/// Python float scalar to the tensor's dtype).
pub(crate) trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    fn of(x: f64) -> Self;
    fn sqrt(self) -> Self;
    fn buffer(data: &mut BufferData) -> Option<&mut Vec<Self>>;
    fn zeros(n: usize) -> BufferData;
}

impl Real for f32 {
    #[inline(always)]
    fn of(x: f64) -> f32 {
        x as f32
    }
    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn buffer(data: &mut BufferData) -> Option<&mut Vec<f32>> {
        match data {
            BufferData::F32(v) => Some(v),
            BufferData::F64(_) => None,
        }
    }
    fn zeros(n: usize) -> BufferData {
        BufferData::F32(vec![0.0; n])
    }
}

impl Real for f64 {
    #[inline(always)]
    fn of(x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn buffer(data: &mut BufferData) -> Option<&mut Vec<f64>> {
        match data {
            BufferData::F64(v) => Some(v),
            BufferData::F32(_) => None,
        }
    }
    fn zeros(n: usize) -> BufferData {
        BufferData::F64(vec![0.0; n])
    }
}

/// PyTorch's `lerp(start, end, w)`: `start + w * (end - start)` for `|w| < 0.5`,
/// else `end - (end - start) * (1 - w)` (what `exp_avg.lerp_(grad, 1 - beta1)` computes).
#[inline(always)]
pub(crate) fn lerp<T: Real>(start: T, end: T, w: T, one_minus_w: T, small: bool) -> T {
    if small {
        start + w * (end - start)
    } else {
        end - (end - start) * one_minus_w
    }
}

/// The state of one parameter while an optimizer holds it.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub step: u64,
    pub shape: Vec<usize>,
    /// One entry per field of the algorithm (`Store::fields`), `None` until used.
    pub bufs: Vec<Option<BufferData>>,
}

/// Per-parameter state by name, shared by all algorithms.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub fields: &'static [&'static str],
    pub map: BTreeMap<String, Slot>,
}

impl Store {
    pub fn new(fields: &'static [&'static str]) -> Store {
        Store {
            fields,
            map: BTreeMap::new(),
        }
    }

    /// The slot of parameter `name`, created on first use.
    ///
    /// # Panics
    /// When the slot exists with another shape.
    #[track_caller]
    pub fn slot(&mut self, name: &str, shape: &[usize]) -> &mut Slot {
        if !self.map.contains_key(name) {
            self.map.insert(
                name.to_owned(),
                Slot {
                    step: 0,
                    shape: shape.to_vec(),
                    bufs: vec![None; self.fields.len()],
                },
            );
        }
        let slot = self.map.get_mut(name).unwrap_or_else(|| unreachable!());
        if slot.shape != shape {
            panic!(
                "optimizer: parameter `{name}` has shape {shape:?}, but its state has shape {:?}",
                slot.shape
            );
        }
        slot
    }

    pub fn export(&self, kind: &str, scalars: BTreeMap<String, f64>) -> OptimState {
        let params = self
            .map
            .iter()
            .map(|(name, slot)| {
                let buffers = self
                    .fields
                    .iter()
                    .zip(&slot.bufs)
                    .filter_map(|(f, b)| Some(((*f).to_owned(), b.clone()?)))
                    .collect();
                (
                    name.clone(),
                    ParamState {
                        step: slot.step,
                        shape: slot.shape.clone(),
                        buffers,
                    },
                )
            })
            .collect();
        OptimState {
            kind: kind.to_owned(),
            scalars,
            params,
        }
    }

    /// The slots `state` describes, checked; `self` is untouched.
    pub fn import(&self, kind: &str, state: &OptimState) -> Result<Store, StateError> {
        if state.kind != kind {
            return Err(StateError::WrongKind {
                expected: kind.to_owned(),
                found: state.kind.clone(),
            });
        }
        let mut map = BTreeMap::new();
        for (name, ps) in &state.params {
            let mut bufs = vec![None; self.fields.len()];
            let numel: usize = ps.shape.iter().product();
            let mut dtype = None;
            for (field, data) in &ps.buffers {
                let Some(i) = self.fields.iter().position(|f| f == field) else {
                    return Err(StateError::UnknownBuffer {
                        param: name.clone(),
                        field: field.clone(),
                    });
                };
                if data.len() != numel {
                    return Err(StateError::BadLength {
                        param: name.clone(),
                        field: field.clone(),
                        shape: ps.shape.clone(),
                        len: data.len(),
                    });
                }
                if *dtype.get_or_insert(data.dtype()) != data.dtype() {
                    return Err(StateError::MixedTypes {
                        param: name.clone(),
                    });
                }
                bufs[i] = Some(data.clone());
            }
            map.insert(
                name.clone(),
                Slot {
                    step: ps.step,
                    shape: ps.shape.clone(),
                    bufs,
                },
            );
        }
        Ok(Store {
            fields: self.fields,
            map,
        })
    }
}

impl Slot {
    /// Field `i` as a `Vec<T>` of `n` elements, zeros when not yet allocated.
    ///
    /// # Panics
    /// When the buffer holds the other element type.
    #[track_caller]
    pub fn buf<'a, T: Real>(
        buf: &'a mut Option<BufferData>,
        n: usize,
        name: &str,
        field: &str,
    ) -> &'a mut Vec<T> {
        let data = buf.get_or_insert_with(|| T::zeros(n));
        let dtype = data.dtype();
        match T::buffer(data) {
            Some(v) => v,
            None => {
                panic!("optimizer: state `{field}` of `{name}` is {dtype}, the parameter is not")
            }
        }
    }
}

/// Reads a scalar from a state, leaving `dst` as it is when absent.
pub(crate) fn restore(scalars: &BTreeMap<String, f64>, key: &str, dst: &mut f64) {
    if let Some(&v) = scalars.get(key) {
        *dst = v;
    }
}

/// Calls `$body` with `p: &mut [T]` and `g: &[T]` for the matching element type.
macro_rules! dispatch {
    ($p:expr, $g:expr, |$pp:ident, $gg:ident| $body:expr) => {
        match ($p, $g) {
            ($crate::params::DataMut::F32($pp), $crate::params::Data::F32($gg)) => {
                let $gg: &[f32] = &$gg;
                $body
            }
            ($crate::params::DataMut::F64($pp), $crate::params::Data::F64($gg)) => {
                let $gg: &[f64] = &$gg;
                $body
            }
            _ => unreachable!("a model and its gradient have the same type"),
        }
    };
}
pub(crate) use dispatch;
