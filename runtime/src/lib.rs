//! The runtime of [tapeless](https://docs.rs/tapeless): what the code written by
//! `#[differentiable]` calls, and what its users need around it.
//!
//! * [`Differentiable`] and [`Tangent`]: what a gradient of a value is.
//! * [`rules`]: one derivative rule per primitive operation, ordinary Rust,
//!   each tested against finite differences.
//! * [`stop_gradient`]: the identity with a zero derivative.
//! * [`Activation`]: `x.sigmoid()` for `f32`/`f64`, one operation with its
//!   own derivative rule in differentiable code.
//! * [`release_tape_memory`]: frees the buffers this thread caches for the
//!   stacks of `_grad` calls with loops ([`tape_pool`]).

mod activation;
pub mod checkpoint;
mod forward;
mod fwd_args;
pub mod nn;
pub mod optim;
pub mod params;
pub mod rules;
mod tangent;
pub mod tape_pool;
pub mod tensor;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use activation::Activation;
pub use forward::{Flat, ForwardFloat, Jacobian};
pub use tangent::{Differentiable, IndexTangent, Tangent};
pub use tape_pool::release as release_tape_memory;

/// `x` itself, with a zero derivative: inside a `#[differentiable]` function,
/// gradients do not flow through `stop_gradient(x)` back to `x`.
///
/// ```
/// use tapeless_runtime::stop_gradient;
/// assert_eq!(stop_gradient(3.0), 3.0);
/// ```
#[inline(always)]
pub fn stop_gradient<T>(x: T) -> T {
    x
}
