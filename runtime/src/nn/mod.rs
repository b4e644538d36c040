//! Building blocks for training: losses, initialisers, a seeded random
//! number generator and mini-batch iteration.
//!
//! * Losses ([`mse`], [`cross_entropy`], [`accuracy`]) are plain functions on
//!   tensors, each with its gradient written out by hand ([`mse_grad`],
//!   [`cross_entropy_grad`], and `_adjoint` forms that scale by an output
//!   cotangent). A `#[differentiable]` function may call `nn::mse` and
//!   `nn::cross_entropy` by path: the hand-written derivatives are their
//!   adjoints (a call by bare name needs their hidden `_pullback`
//!   companions imported too, as for any differentiable function).
//! * [`Rng`]: xoshiro256\*\*, seeded through splitmix64; uniform, normal,
//!   integers below a bound, shuffling. Same seed, same numbers, on every
//!   platform.
//! * Initialisers: [`xavier_uniform`] (Glorot) and [`kaiming_normal`] (He),
//!   plus [`uniform`] and [`normal`] tensors.
//! * [`Dataset`] and [`Batches`]: features `[n, ...]` with `n` labels, cut
//!   into mini-batches in order or in a seeded random order per epoch.
//!
//! Activations are methods of [`Tensor`](crate::tensor::Tensor)
//! (`relu`, `sigmoid`, `tanh`, `gelu`, `softmax`, `log_softmax`).

mod data;
mod init;
mod loss;
mod rng;

pub use data::{Batches, Dataset};
pub use init::{fans, kaiming_normal, normal, uniform, xavier_uniform};
pub use loss::{
    accuracy, cross_entropy, cross_entropy_adjoint, cross_entropy_grad, mse, mse_adjoint, mse_grad,
};
#[doc(hidden)]
pub use loss::{cross_entropy_pullback, mse_pullback};
pub use rng::Rng;
