#![doc = include_str!("../README.md")]

pub use tapeless_macros::{derivative, differentiable, Differentiable};
pub use tapeless_runtime::*;
