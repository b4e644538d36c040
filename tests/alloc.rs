//! A `_grad` call on straight-line code (no loops) allocates nothing: the
//! forward sweep keeps intermediates in locals, the reverse sweep in adjoint
//! locals. Checked with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use tapeless::differentiable;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
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
    let before = ALLOCS.load(Ordering::SeqCst);
    let mut acc = 0.0;
    for k in 0..1000 {
        let w = 0.3 + k as f64 * 1e-4;
        let (v, (dw, dx, db)) = straight_grad(std::hint::black_box(w), 0.7, -0.2);
        acc += v + dw + dx + db;
    }
    let after = ALLOCS.load(Ordering::SeqCst);
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
