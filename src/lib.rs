//! tapeless: reverse-mode automatic differentiation of ordinary Rust functions,
//! at compile time.

pub use tapeless_macros::*;
pub use tapeless_runtime::*;

#[doc(hidden)]
pub use tapeless_runtime::__private;
