//! The `#[differentiable]` source transformation of
//! [tapeless](https://docs.rs/tapeless). Use it through the `tapeless` crate.
//!
//! The pipeline, one module per phase: `parse` (options, signature) ->
//! `lower` (body to A-normal-form IR) -> `analyse` (activity, what to save)
//! -> `reverse` (forward and reverse sweeps) -> `emit` / `expand` (items).
#![forbid(unsafe_code)]

mod analyse;
mod ctxt;
mod derive;
mod emit;
mod expand;
mod forward;
mod ir;
mod lower;
mod parse;
mod reverse;
mod rules;
#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

pub(crate) use emit::emit_place_read;

/// Writes the reverse-mode adjoint of a function beside it: `NAME_adjoint`
/// (value and vector-Jacobian product), `NAME_grad` (value and gradient, for
/// `f32`/`f64` results) and a hidden `NAME_pullback` used by other
/// differentiable functions that call this one.
///
/// Options: `#[differentiable(wrt(a, b))]` differentiates with respect to the
/// named parameters only. Parameters marked `#[no_grad]` are not differentiated.
/// `forward` also writes `NAME_tangent` (Jacobian-vector products),
/// `jacobian` writes `NAME_jacobian`, `hessian` writes `NAME_hvp` and
/// `NAME_hessian` (see the crate README's "Forward mode" section).
#[proc_macro_attribute]
pub fn differentiable(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::differentiable(attr.into(), item.into()).into()
}

/// `#[derivative(of = g)]` on a function with `g`'s parameters plus `d_out`,
/// returning `(value, gradients)`, makes it `g`'s adjoint: differentiable
/// functions that call `g` use it.
#[proc_macro_attribute]
pub fn derivative(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::derivative(attr.into(), item.into()).into()
}

/// Makes a parameter struct [`Differentiable`](../tapeless/trait.Differentiable.html)
/// with itself as its tangent: the gradient of a model is a model.
///
/// Fields marked `#[no_grad]` (sizes, hyper-parameters) are not differentiated.
#[proc_macro_derive(Differentiable, attributes(no_grad))]
pub fn derive_differentiable(input: TokenStream) -> TokenStream {
    derive::derive(input.into()).into()
}
