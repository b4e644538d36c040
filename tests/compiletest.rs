//! Compile-fail and compile-pass tests of `#[differentiable]` and `#[derivative]`.
//!
//! Each `tests/ui/fail/<group>/<what-is-wrong>.rs` holds one mistake; the `.stderr`
//! beside it is the exact diagnostic rustc prints. After changing a message, or
//! adding a case, regenerate the snapshots and read every changed `.stderr`:
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test compiletest
//! ```
//!
//! `tests/ui/pass/*.rs` must compile (with `#![deny(warnings)]`, so generated
//! code stays warning-free) and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/**/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
