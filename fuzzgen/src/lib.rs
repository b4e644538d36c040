//! Random-program testing of `#[differentiable]`.
//!
//! [`gen`] writes random functions in the language tapeless supports
//! (expression trees over the supported `f64` math, `let`/shadowing/overwrites,
//! value and statement `if`/`else if`/`match` on active and inactive
//! conditions, `for` over ranges and slices, `while`/`loop` with loop-carried
//! values, `break`/`continue` (labelled too)/early `return`, index reads and
//! writes into local arrays (1-D and 2-D) and `Vec`s, slice, array and `Vec`
//! parameters, `#[no_grad]` and `wrt(..)`, calls between generated functions,
//! recursion; scalar, array, tuple and `Vec` outputs; in about 30% of the
//! scalar programs the tail is summed in a final loop and returned right
//! after it, the shape the reverse sweep fuses into the loop, sometimes
//! through a buffer declared before the loop that each iteration writes in
//! full first (still fused) or reads before writing (not fused)). The build script writes a
//! batch of them into `OUT_DIR`; `tests/programs.rs` compiles them and
//! [`check::run`] compares every `_grad` and `_adjoint` with central finite
//! differences, and the gradients of an `f32` twin of one program in four
//! with the `f64` ones. Every function is written with
//! `#[differentiable(forward, hessian)]` (`forward` alone for non-scalar
//! outputs, odd-numbered programs (compile time) and the constructs of
//! [`gen::HESSIAN_KNOWN_BUGS`]; the `f32` twins get neither), and the
//! checker also compares every `_tangent` along a random direction with the
//! gradient and with finite differences along it, every `_hvp` with finite
//! differences of the gradient, and, for at most
//! [`check::HESSIAN_MAX`] inputs, the dense `_hessian` with the HVPs.
//!
//! * `TAPELESS_FUZZ_SEED` (build time): the batch's seed; default: the number
//!   of days since 1970-01-01 (UTC) when the build script ran, so CI sees a new
//!   batch every day. The test prints it.
//! * `TAPELESS_FUZZ_N` (build time): programs in the batch, default 300.
//! * `TAPELESS_FUZZ_HUNT=1` (build time): also write the constructs listed in
//!   [`gen::KNOWN_BUGS`] (they hit open bugs, so a default run leaves them
//!   out), and `hessian` on programs with the constructs of
//!   [`gen::HESSIAN_KNOWN_BUGS`].
//! * `TAPELESS_FUZZ_ONLY` (run time): comma-separated program indices to check.
//! * `TAPELESS_FUZZ_POINTS` (run time): sample points per program, default 4.
//!
//! `cargo run -p fuzzgen -- SEED INDEX` prints one program (to minimise a
//! failure by hand); `cargo run -p fuzzgen -- SEED` prints the whole batch.

pub mod check;
pub mod gen;
pub mod rng;

pub use gen::ParamKind;
pub use rng::Rng;

/// The inputs of one call of a generated function, flattened: `v` holds every
/// active float (scalars, then slice, array and `Vec` elements, in parameter
/// order), the others hold the inactive parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    /// Active floats, in parameter order.
    pub v: Vec<f64>,
    /// `#[no_grad]` floats.
    pub nf: Vec<f64>,
    /// `usize` parameters.
    pub ni: Vec<usize>,
    /// `bool` parameters.
    pub nb: Vec<bool>,
    /// Lengths of the slice and `Vec` parameters, in order.
    pub lens: Vec<usize>,
}

impl Case {
    /// Random inputs for a function with parameters `params`: floats uniform
    /// in `[-2, 2]`, lengths in `1..=5`, integers in `0..=4`.
    pub fn draw(params: &[ParamKind], rng: &mut Rng) -> Case {
        let mut c = Case::default();
        let b = gen::INPUT_BOUND;
        for k in params {
            match k {
                ParamKind::Scalar => c.v.push(rng.uniform(-b, b)),
                ParamKind::NoGrad => c.nf.push(rng.uniform(-b, b)),
                ParamKind::Slice | ParamKind::VecOwned | ParamKind::VecRef => {
                    let n = rng.range(1, gen::MAX_LEN);
                    c.lens.push(n);
                    for _ in 0..n {
                        c.v.push(rng.uniform(-b, b));
                    }
                }
                ParamKind::Array3 | ParamKind::ArrayRef3 => {
                    for _ in 0..3 {
                        c.v.push(rng.uniform(-b, b));
                    }
                }
                ParamKind::Usize => c.ni.push(rng.range(0, gen::MAX_INT)),
                ParamKind::Bool => c.nb.push(rng.chance(0.5)),
            }
        }
        c
    }
}

/// The primal with flattened inputs and output.
pub type CallFn = fn(&Case) -> Vec<f64>;
/// `_adjoint` with a flattened cotangent: (flattened output, flattened gradient).
pub type AdjointFn = fn(&Case, &[f64]) -> (Vec<f64>, Vec<f64>);
/// `_grad`: (value, flattened gradient).
pub type GradFn = fn(&Case) -> (f64, Vec<f64>);
/// `_tangent` along a flattened direction (laid out like [`Case::v`]):
/// (flattened output, flattened output tangent).
pub type TangentFn = fn(&Case, &[f64]) -> (Vec<f64>, Vec<f64>);
/// `_hvp` along a flattened direction: (value, flattened gradient, flattened
/// Hessian-vector product).
pub type HvpFn = fn(&Case, &[f64]) -> (f64, Vec<f64>, Vec<f64>);
/// `_hessian`: (value, flattened gradient, dense Hessian).
pub type HessianFn = fn(&Case) -> (f64, Vec<f64>, tapeless::Jacobian);

/// A compiled generated program, as listed in the generated `PROGRAMS` table.
#[derive(Clone, Copy)]
pub struct Program {
    /// Position in the batch.
    pub index: usize,
    /// Name of the main function.
    pub name: &'static str,
    /// Source of its `#[differentiable]` functions.
    pub source: &'static str,
    /// Its parameters.
    pub params: &'static [ParamKind],
    /// The primal, output flattened.
    pub call: CallFn,
    /// `_adjoint` with a flattened cotangent: (flattened output, flattened gradient).
    pub adjoint: AdjointFn,
    /// `_grad`, for scalar outputs: (value, flattened gradient).
    pub grad: Option<GradFn>,
    /// `_adjoint` of the program's `f32` twin (every `f64` written `f32`), at
    /// the inputs rounded to `f32`, for one program in four.
    pub adjoint32: Option<AdjointFn>,
    /// `_tangent` (forward mode) along a flattened direction.
    pub tangent: Option<TangentFn>,
    /// `_hvp`, for scalar outputs.
    pub hvp: Option<HvpFn>,
    /// `_hessian`, for scalar outputs.
    pub hessian: Option<HessianFn>,
}
