//! One training step (forward, gradient, Adam update) of two small
//! classifiers, written three ways on the same shapes and the same initial
//! weights:
//!
//! * [`ours`]: `#[derive(Differentiable)]` models whose loss is a
//!   `#[differentiable]` method, stepped by `tapeless::optim::Adam`;
//! * [`taped`]: candle (CPU): `Var`s, a taped `backward()`, and
//!   `candle_nn::AdamW` with no weight decay (which is Adam);
//! * [`hand`]: the MLP only, derivatives written by hand on preallocated
//!   buffers, on the `gemm` crate (candle's GEMM) or on `matrixmultiply`
//!   (ours): the floor a GEMM-bound step can reach.
//!
//! The models:
//!
//! * MLP 784-256-10: `x[64, 784] · w1 + b1`, ReLU, `· w2 + b2`,
//!   cross-entropy from the logits (mean over the batch);
//! * CNN on `x[64, 1, 28, 28]`: conv 3x3 8 channels (padding 1) + bias,
//!   ReLU, max-pool 2 → conv 3x3 16 channels (padding 1) + bias, ReLU,
//!   max-pool 2 → flatten 784 → linear 10, cross-entropy.
//!
//! `benches/train_step.rs` times them; `tests/agree.rs` checks that the three
//! agree on the first step's loss, gradients and updated weights.

pub mod hand;
pub mod ours;
pub mod taped;

use tapeless::nn::Rng;
use tapeless::tensor::Tensor;

/// Batch size of every bench.
pub const BATCH: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// MLP input features (28 x 28).
pub const INPUTS: usize = 784;
/// MLP hidden units.
pub const HIDDEN: usize = 256;
/// Image side of the CNN.
pub const SIDE: usize = 28;
/// Channels of the CNN's first convolution.
pub const C1: usize = 8;
/// Channels of the CNN's second convolution.
pub const C2: usize = 16;
/// Adam's learning rate in every bench and test.
pub const LR: f64 = 1e-3;

/// Uniform values in `[lo, hi)` of the given shape.
pub fn uniform(rng: &mut Rng, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_in(lo, hi) as f32).collect(),
        shape,
    )
}

/// A batch of "images" `shape` (pixels uniform in `[0, 1)`) and labels in
/// `0..CLASSES`, from `seed`.
pub fn batch(seed: u64, shape: &[usize]) -> (Tensor, Vec<usize>) {
    let mut rng = Rng::seed_from(seed);
    let x = uniform(&mut rng, shape, 0.0, 1.0);
    let labels = (0..shape[0]).map(|_| rng.below(CLASSES)).collect();
    (x, labels)
}

/// Whether [`clock`] reads CPU time (`BENCH_CLOCK=cpu`) rather than wall time.
pub fn cpu_clock() -> bool {
    static CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| std::env::var("BENCH_CLOCK").is_ok_and(|v| v == "cpu"))
}

/// The time the benches read: wall-clock time since the first call, or with
/// `BENCH_CLOCK=cpu` the CPU time of the whole process (all its threads,
/// user and system, page faults included). On a machine shared with other
/// jobs, a single-threaded step's CPU time leaves out the time it waited
/// for a core, which wall time counts (and counts more for longer steps,
/// which a time slice ends more often).
pub fn clock() -> std::time::Duration {
    if cpu_clock() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
        std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    } else {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}
