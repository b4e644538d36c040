//! A [GradBench](https://github.com/gradbench/gradbench) tool for tapeless.
//!
//! Every eval's function is ordinary Rust marked `#[differentiable]`; its
//! gradient is the generated `_grad`/`_adjoint`, never a hand-derived one.
//! `protocol` speaks GradBench's JSON-lines protocol; `evals` holds one
//! module per eval. See `docs/gradbench.md` for how to run the evals.

// Index loops over flattened arrays are how the evals are specified, and
// `#[differentiable]` code copies between arrays element by element (it has
// no rule for `copy_from_slice`).
#![allow(clippy::needless_range_loop, clippy::manual_memcpy)]

pub mod evals;
pub mod protocol;

use protocol::{Evaluated, Tool};
use serde_json::Value;

/// The tool: every eval in [`evals`].
pub struct Tapeless;

impl Tool for Tapeless {
    fn defines(&self, module: &str) -> bool {
        evals::MODULES.iter().any(|(name, _)| *name == module)
    }

    fn evaluate(&self, module: &str, function: &str, input: Value) -> Result<Evaluated, String> {
        match evals::MODULES.iter().find(|(name, _)| *name == module) {
            Some((_, evaluate)) => evaluate(function, input),
            None => Err(format!("module {module:?} is not implemented")),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
