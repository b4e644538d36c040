//! A `_grad` call on straight-line code (no loops) allocates nothing: the
//! forward sweep keeps intermediates in locals, the reverse sweep in adjoint
//! locals. A `_grad` call with loops allocates nothing after the first call on
//! its thread: its stacks reuse the buffers the tape pool kept. Checked with a
//! counting global allocator.

// `buf[j] = ..` in an index loop is the construct under test.
#![allow(clippy::needless_range_loop)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tapeless::differentiable;

struct Counting;

thread_local! {
    /// This thread's allocations (tests run in parallel on their own threads).
    static MINE: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts calls, per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // A const-initialised `Cell` with no destructor: using it neither
        // allocates nor registers anything.
        let _ = MINE.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Straight-line code with branches, calls and about 30 operations.
#[differentiable]
fn straight(w: f64, x: f64, b: f64) -> f64 {
    let z = w * x + b;
    let a = if z > 0.0 { z.tanh() } else { 0.1 * z };
    let s = (a * a + 1.0).sqrt().ln() + x.sin() * w.cos();
    let t = s.powi(3) / (1.0 + b.exp()) - (x - w).abs().max(0.5);
    helper(t, 2.0) + t.atan2(w) * 0.5
}

#[differentiable]
fn helper(u: f64, k: f64) -> f64 {
    (u * k).sinh() / (1.0 + u * u)
}

#[test]
fn grad_of_straight_line_code_does_not_allocate() {
    // Warm up anything lazily allocated by the test harness.
    let _ = std::hint::black_box(straight_grad(0.3, 0.7, -0.2));
    let before = MINE.with(Cell::get);
    let mut acc = 0.0;
    for k in 0..1000 {
        let w = 0.3 + k as f64 * 1e-4;
        let (v, (dw, dx, db)) = straight_grad(std::hint::black_box(w), 0.7, -0.2);
        acc += v + dw + dx + db;
    }
    let after = MINE.with(Cell::get);
    assert!(acc.is_finite());
    assert_eq!(
        after - before,
        0,
        "1000 gradient calls allocated {} times",
        after - before
    );
    // The gradient is right too: d/dw by central differences.
    let h = 1e-6;
    let fd = (straight(0.3 + h, 0.7, -0.2) - straight(0.3 - h, 0.7, -0.2)) / (2.0 * h);
    let (_, (dw, _, _)) = straight_grad(0.3, 0.7, -0.2);
    assert!((dw - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{dw} vs {fd}");
}

/// Least squares over slices. The reverse sweep recomputes the residual, so
/// its stacks keep only zero-sized shapes: no buffer even without the pool.
#[differentiable(wrt(w, b))]
fn lsq(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (&xi, &yi) in x.iter().zip(y.iter()) {
        let r = w * xi + b - yi;
        s += r * r;
    }
    s
}

/// Least squares of a one-neuron model: `tanh`'s output is not recomputed but
/// saved on an `f64` stack every iteration (without the pool: a buffer
/// allocated every call).
#[differentiable(wrt(w, b))]
fn neuron(w: f64, b: f64, x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (&xi, &yi) in x.iter().zip(y.iter()) {
        let r = (w * xi + b).tanh() - yi;
        s += r * r;
    }
    s
}

/// Nested loops writing a local buffer, with a value saved per inner
/// iteration (`tanh`'s output).
#[differentiable(wrt(a, c))]
fn nested(a: f64, c: f64, x: &[f64]) -> f64 {
    let mut buf = [0.0; 4];
    for &xi in x {
        for j in 0..4 {
            buf[j] = (a * xi + c * buf[j]).tanh();
        }
    }
    let mut s = 0.0;
    for v in buf {
        s += v * v;
    }
    s
}

/// This thread's allocations in 1000 calls of `f` after a few warm-up calls
/// (they let pooled buffers settle between stacks of different sizes: a
/// stack first asks for its inner loop's size and takes the smallest buffer
/// that fits, so the first calls may still swap and grow buffers).
fn allocs_per_1000(mut f: impl FnMut(usize) -> f64) -> usize {
    for _ in 0..4 {
        let _ = std::hint::black_box(f(0));
    }
    let before = MINE.with(Cell::get);
    let mut acc = 0.0;
    for k in 0..1000 {
        acc += f(k);
    }
    let after = MINE.with(Cell::get);
    assert!(acc.is_finite());
    after - before
}

#[test]
fn grad_of_a_loop_reuses_its_tape_after_the_first_call() {
    let x: Vec<f64> = (0..500).map(|i| (i as f64 * 0.37).sin()).collect();
    let y: Vec<f64> = x.iter().map(|v| 2.0 * v - 0.5 + 0.1 * v * v).collect();
    let n = allocs_per_1000(|k| {
        let w = std::hint::black_box(1.5 + k as f64 * 1e-4);
        let (v, (dw, db)) = lsq_grad(w, -0.3, &x, &y);
        v + dw + db
    });
    assert_eq!(n, 0, "1000 gradient calls of lsq allocated {n} times");
    // Right too: d/dw by central differences.
    let h = 1e-6;
    let fd = (lsq(1.5 + h, -0.3, &x, &y) - lsq(1.5 - h, -0.3, &x, &y)) / (2.0 * h);
    let (_, (dw, _)) = lsq_grad(1.5, -0.3, &x, &y);
    assert!((dw - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{dw} vs {fd}");

    let n = allocs_per_1000(|k| {
        let w = std::hint::black_box(1.5 + k as f64 * 1e-4);
        let (v, (dw, db)) = neuron_grad(w, -0.3, &x, &y);
        v + dw + db
    });
    assert_eq!(n, 0, "1000 gradient calls of neuron allocated {n} times");
    let fd = (neuron(1.5 + h, -0.3, &x, &y) - neuron(1.5 - h, -0.3, &x, &y)) / (2.0 * h);
    let (_, (dw, _)) = neuron_grad(1.5, -0.3, &x, &y);
    assert!((dw - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{dw} vs {fd}");

    let x = &x[..100];
    let n = allocs_per_1000(|k| {
        let a = std::hint::black_box(0.7 + k as f64 * 1e-4);
        let (v, (da, dc)) = nested_grad(a, 0.4, x);
        v + da + dc
    });
    assert_eq!(n, 0, "1000 gradient calls of nested allocated {n} times");
    let fd = (nested(0.7 + h, 0.4, x) - nested(0.7 - h, 0.4, x)) / (2.0 * h);
    let (_, (da, _)) = nested_grad(0.7, 0.4, x);
    assert!((da - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{da} vs {fd}");
}
