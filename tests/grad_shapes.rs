//! Two reverse-sweep shortcuts and the cases that must fall back:
//!
//! * counted loops: a `for` over a range whose bounds the reverse sweep can
//!   recompute and that nothing leaves early has its trip count recomputed
//!   (`__rt::trip_count`) instead of recorded. Checked on nested triangular
//!   ranges, `..=`, `step_by`, `continue` (does not change the count), and the
//!   loops that must still record it (`break`, early `return`, a labeled
//!   `continue` of the outer loop, a bound that is not recomputable);
//! * loop-invariant adjoint elements are summed in a local per loop run;
//! * a sum returned right after its loop is differentiated inside the loop
//!   (fused), also when the loop writes scratch buffers declared outside it
//!   that every iteration overwrites before reading; a sum read inside its
//!   loop, or buffers that carry values between iterations, are not;
//! * recomputed `let`s in branches inside loops and after a statement that
//!   may leave the block: the reverse binds them again only where the forward
//!   sweep computed them (an index past the end after a `break` must not be
//!   read);
//! * fixed-shape adjoints: a container indexed directly and never resized gets
//!   an adjoint of its value's shape, indexed without growth. Checked against
//!   containers that must keep the growing adjoint: a `Vec` assigned as a
//!   whole, a nested `Vec<Vec<f64>>` whose rows are replaced (`push` on an
//!   active `Vec` is a compile error, tests/ui).
//!
//! Every gradient is compared with central finite differences of the same
//! function (`common::fd_slice`), the math being whatever the function says.

#![allow(clippy::needless_range_loop, clippy::ptr_arg)]

mod common;

use common::*;
use tapeless::{differentiable, Activation};

#[track_caller]
fn check(name: &str, f: impl Fn(&[f64]) -> f64, g: impl Fn(&[f64]) -> (f64, Vec<f64>), x: &[f64]) {
    let (v, d) = g(x);
    assert_eq!(v, f(x), "{name}: value");
    assert_all_close(&d, &fd_slice(&f, x), name);
}

/// Σ_{c<r} x_r x_c w_{rc}, with `w` packed column by column: a triangular
/// pair of counted loops whose inner bound depends on the outer variable,
/// and a rewound counter.
#[differentiable(wrt(x))]
fn triangle(x: &[f64], w: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    let mut k = 0;
    for c in 0..n {
        for r in c + 1..n {
            s += x[r] * x[c] * w[k];
            k += 1;
        }
    }
    s
}

/// Σ_p Σ_t y_t² with b = sin((p + 1) x), y_r = b_r + Σ_{c<r} l_rc b_c (`l`
/// packed column by column), for p = 0, 1: whatever the code says; the
/// oracle is FD. `b` is overwritten by each pass, so the inner loop's read
/// of `b[c]`, the same in all its iterations, is saved once per run of it
/// (pushed before it when its range is not empty: never for the last
/// column), and that push is itself one per iteration of the column loop.
#[differentiable(wrt(x, l))]
fn hoisted_counted(x: &[f64], l: &[f64]) -> f64 {
    let d = x.len();
    let mut b = vec![0.0; d];
    let mut y = vec![0.0; d];
    let mut total = 0.0;
    for p in 0..2 {
        for t in 0..d {
            b[t] = (x[t] * (p as f64 + 1.0)).sin();
            y[t] = b[t];
        }
        let mut li = 0;
        for c in 0..d {
            for r in c + 1..d {
                y[r] += l[li] * b[c];
                li += 1;
            }
        }
        for t in 0..d {
            total += y[t] * y[t];
        }
    }
    total
}

/// As `hoisted_counted`, with the hoisted read's loop in a branch (only even
/// columns), the column loop left early by a `break` (so it is not counted),
/// and one more hoisted read in a loop at the top of the function.
#[differentiable(wrt(x, l))]
fn hoisted_branch_break(x: &[f64], l: &[f64]) -> f64 {
    let d = x.len();
    let mut b = vec![0.0; d];
    let mut y = vec![0.0; d];
    let mut total = 0.0;
    for p in 0..2 {
        for t in 0..d {
            b[t] = (x[t] * (p as f64 + 1.0)).sin();
            y[t] = b[t];
        }
        let mut li = 0;
        for c in 0..d {
            if b[c] > 0.95 {
                break;
            }
            if c % 2 == 0 {
                for r in c + 1..d {
                    y[r] += l[li] * b[c];
                    li += 1;
                }
            }
        }
        for t in 0..d {
            total += y[t] * y[t];
        }
    }
    for r in 1..d {
        total += l[r] * b[0] * y[r];
    }
    b[0] = 0.0;
    total + b[0]
}

#[test]
fn hoisted_reads() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    let l = [0.5, -0.7, 0.2, 0.9, -0.3, 0.4, 0.8, -0.6, 0.1, 0.7];
    let p = [&x[..], &l[..]].concat();
    check(
        "hoisted_counted",
        |p| hoisted_counted(&p[..5], &p[5..]),
        |p| {
            let (v, (dx, dl)) = hoisted_counted_grad(&p[..5], &p[5..]);
            (v, [dx, dl].concat())
        },
        &p,
    );
    // x[2] = 1.35 makes sin(2 x[2]) < 0.95 < sin(x[2]): the first pass stops
    // at column 2, the second runs to the end.
    for x2 in [0.8, 1.35] {
        let mut p = p.clone();
        p[2] = x2;
        check(
            "hoisted_branch_break",
            |p| hoisted_branch_break(&p[..5], &p[5..]),
            |p| {
                let (v, (dx, dl)) = hoisted_branch_break_grad(&p[..5], &p[5..]);
                (v, [dx, dl].concat())
            },
            &p,
        );
    }
}

#[test]
fn triangular_counted_loops() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    let w: Vec<f64> = (0..10).map(|k| 0.1 * k as f64 - 0.3).collect();
    check(
        "triangle",
        |x| triangle(x, &w),
        |x| {
            let (v, d) = triangle_grad(x, &w);
            (v, d)
        },
        &x,
    );
}

/// Inclusive and stepped ranges, an empty inner range on some iterations
/// (`c..c` when `c == lo`), and `continue` inside a counted loop.
#[differentiable(wrt(x))]
fn ranges(x: &[f64], lo: usize) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for c in lo..=n - 1 {
        for r in (lo..c).step_by(2) {
            if r % 3 == 1 {
                continue;
            }
            s += (x[r] * x[c]).sin();
        }
        s += x[c] * x[c];
    }
    s
}

#[test]
fn inclusive_stepped_and_continue() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4, 0.9, 1.1];
    for lo in [0, 1, 3] {
        check("ranges", |x| ranges(x, lo), |x| ranges_grad(x, lo), &x);
    }
}

/// Loops that must record their trip count: `break` (data-dependent), an
/// early `return` inside, and a labeled `continue` of the outer loop.
#[differentiable(wrt(x))]
fn early_exits(x: &[f64], cap: f64) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    'outer: for c in 0..n {
        for r in 0..n {
            if s > cap {
                break;
            }
            if r > c + 2 {
                continue 'outer;
            }
            s += x[r] * x[c];
        }
        if s < -cap {
            return s * 2.0;
        }
    }
    s
}

#[test]
fn loops_left_early_record_their_trip_count() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    for cap in [0.5, 2.0, 100.0] {
        check(
            "early_exits",
            |x| early_exits(x, cap),
            |x| early_exits_grad(x, cap),
            &x,
        );
    }
    let y = [-0.9, 1.5, -1.1, 0.2];
    check(
        "early_exits (return)",
        |x| early_exits(x, 0.5),
        |x| early_exits_grad(x, 0.5),
        &y,
    );
}

/// Bounds the reverse sweep cannot recompute (`m` is reassigned in the
/// loop): the trip count is recorded.
#[differentiable(wrt(x))]
fn moving_bound(x: &[f64]) -> f64 {
    let mut m = 1;
    let mut s = 0.0;
    for c in 0..x.len() {
        for r in 0..m {
            s += x[r] * x[c].cos();
        }
        m = (m + 2).min(x.len());
    }
    s
}

#[test]
fn bounds_that_change_are_recorded() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    check("moving_bound", moving_bound, moving_bound_grad, &x);
}

/// A local buffer written by index, read in a later loop: fixed shape.
#[differentiable(wrt(x))]
fn buffer(x: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i].exp() - x[n - 1 - i];
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i] * b[(i + 1) % n];
    }
    s
}

#[test]
fn fixed_shape_local_buffer() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    check("buffer", buffer, buffer_grad, &x);
}

/// A container assigned as a whole keeps the growing adjoint: `v` is first
/// two long, then five long; both are indexed.
#[differentiable(wrt(x))]
fn reshaped(x: &[f64]) -> f64 {
    let mut v = vec![x[0] * x[1], x[2]];
    let mut s = v[0] * v[1];
    v = vec![x[0], x[1], x[2], x[3], x[4]];
    for i in 0..v.len() {
        s += v[i] * x[i].sin();
    }
    s
}

#[test]
fn resized_containers_keep_growing_adjoints() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    check("reshaped", reshaped, reshaped_grad, &x);
}

/// Rows of a nested `Vec` replaced by rows of another length.
#[differentiable(wrt(x))]
fn rows(x: &[f64]) -> f64 {
    let mut m = vec![vec![0.0; 1]; 3];
    for r in 0..3 {
        m[r] = vec![x[r], x[r + 1] * x[r]];
    }
    let mut s = 0.0;
    for r in 0..3 {
        s += m[r][0] * m[r][1];
    }
    s
}

#[test]
fn nested_rows_replaced() {
    let x = [0.3, -1.2, 0.8, 2.0];
    check("rows", rows, rows_grad, &x);
}

/// An element every inner iteration adds to (`x[c]` in the loops over `r`
/// and `t`) is summed in a local and added once after the loop, including
/// when the loop is left by `break`, skips iterations by `continue`, or reads
/// the element only under a branch, and when two nested loops both qualify.
#[differentiable(wrt(x, y))]
fn promoted(x: &[f64], y: &[f64], cap: f64) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for c in 0..n {
        for r in 0..n {
            if r == c {
                continue;
            }
            if y[r] > 0.0 {
                s += (y[r] * x[c]).sin();
            }
            if s > cap {
                break;
            }
        }
        for r in 0..n {
            for t in 0..r {
                s += x[c] * y[t] * y[r];
            }
        }
    }
    s
}

#[test]
fn loop_invariant_adjoint_elements() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4];
    let y = [0.5, 0.9, -0.7, 0.2, 1.3];
    for cap in [0.5, 100.0] {
        let f = |v: &[f64]| promoted(&v[..5], &v[5..], cap);
        let g = |v: &[f64]| {
            let (val, (dx, dy)) = promoted_grad(&v[..5], &v[5..], cap);
            (val, [dx, dy].concat())
        };
        check("promoted", f, g, &[x, y].concat());
    }
}

/// A sum over data points returned directly: the reverse sweep runs inside
/// the forward loop (fused), one iteration at a time. Saved values (`tanh`),
/// a `while` loop inside (its trip count recorded per iteration), a call of
/// another differentiable function, `-=`, and a loop-local buffer.
#[differentiable(wrt(w))]
fn fused_loss(w: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let mut loss = 0.0;
    for i in 0..x.len() {
        let mut h = [0.0; 2];
        h[0] = (w[0] * x[i] + w[1]).tanh();
        h[1] = (w[2] * h[0] + w[3] * x[i]).tanh();
        let mut k = 0;
        let mut p = h[1];
        while k < i % 3 {
            p = p * h[0] + w[1];
            k += 1;
        }
        let r = p - y[i];
        loss += r * r;
        loss -= 0.1 * helper(h[0], w[2]);
    }
    loss
}

#[differentiable]
fn helper(a: f64, b: f64) -> f64 {
    (a * b).sin() + a * a
}

/// The same sum read inside the loop (`loss * 0.5`): not fused, same math.
#[differentiable(wrt(w))]
fn read_sum(w: &[f64], x: &[f64]) -> f64 {
    let mut loss = 0.0;
    for i in 0..x.len() {
        loss += (w[0] * x[i] + loss * 0.5).sin();
    }
    loss
}

#[test]
fn fused_loss_loops() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4, 0.6];
    let y = [0.1, -0.5, 0.4, 0.9, -0.2, 0.3];
    let w = [0.7, -0.2, 1.1, 0.4];
    check(
        "fused_loss",
        |w| fused_loss(w, &x, &y),
        |w| fused_loss_grad(w, &x, &y),
        &w,
    );
    check(
        "read_sum",
        |w| read_sum(w, &x),
        |w| read_sum_grad(w, &x),
        &w[..1],
    );
}

/// Σ_i logsumexp_j (−½ ‖L_j (x_i − μ_j)‖²), L_j = [[1, 0], [w_j, 1]] (a
/// two-component, two-dimensional Gaussian-mixture term), with its scratch
/// buffers declared once outside the point loop, as natural Rust does:
/// every iteration writes `xc`, `qxc` and `beta` in full before reading them
/// (`xc[t]` for `t in 0..d` with `xc = vec![0.0; d]`; `mx` as a whole), so no
/// value flows from one point to the next and the loop is fused. The math is
/// whatever the function says; the oracle is FD. (`mx` is declared before
/// the loop on purpose: a scalar scratch value, written as a whole first.)
#[allow(unused_assignments)]
#[differentiable(wrt(mu, w))]
fn scratch_mixture(mu: &[f64], w: &[f64], x: &[f64]) -> f64 {
    let d = 2;
    let k = 2;
    let mut total = 0.0;
    let mut xc = vec![0.0; d];
    let mut qxc = vec![0.0; d];
    let mut beta = vec![0.0; k];
    let mut mx = 0.0;
    for i in 0..x.len() / d {
        for j in 0..k {
            for t in 0..d {
                xc[t] = x[i * d + t] - mu[j * d + t];
                qxc[t] = xc[t];
            }
            qxc[1] += w[j] * xc[0];
            let mut sq = 0.0;
            for t in 0..d {
                sq += qxc[t] * qxc[t];
            }
            beta[j] = -0.5 * sq;
        }
        mx = beta[0];
        for j in 1..k {
            if beta[j] > mx {
                mx = beta[j];
            }
        }
        let mut se = 0.0;
        for j in 0..k {
            se += (beta[j] - mx).exp();
        }
        total += mx + se.ln();
    }
    total
}

/// Buffers outside a loop that carry values from one iteration to the next
/// must not be fused: each would lose the adjoint that flows back into the
/// previous iteration. One function per way of carrying a value (a fused
/// loop is decided per loop), each a sum over `x` returned right after its
/// loop; the math is whatever the code says and the oracle is FD, which
/// fails if the loop were fused.
///
/// `h[t]` is read before it is written: a recurrence over `i`.
#[differentiable(wrt(w))]
fn carried_read_first(w: &[f64], x: &[f64]) -> f64 {
    let d = 3;
    let mut total = 0.0;
    let mut h = vec![0.0; d];
    for i in 0..x.len() {
        for t in 0..d {
            h[t] = (w[0] * h[t] + x[i]).tanh();
        }
        total += h[2];
    }
    total
}

/// A loop over `0..m` writes `v[0..m]`, not all of `v` (`m` is not the length
/// `v` was declared with): `v[m]` keeps the previous iteration's value.
#[differentiable(wrt(w))]
fn carried_short_range(w: &[f64], x: &[f64]) -> f64 {
    let d = 3;
    let m = d - 1;
    let mut total = 0.0;
    let mut v = vec![0.0; d];
    for i in 0..x.len() {
        for t in 0..m {
            v[t] = w[0] * x[i];
        }
        total += v[0] * v[m];
        v[m] = v[1] + w[1];
    }
    total
}

/// `c[0]` is written only when `x[i] > 0`, and read always.
#[differentiable(wrt(w))]
fn carried_conditional(w: &[f64], x: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut c = [0.0; 1];
    for i in 0..x.len() {
        if x[i] > 0.0 {
            c[0] = w[0] * x[i];
        }
        total += c[0] * c[0];
    }
    total
}

/// `e[0]` is written, `e[1]` read: it was written at the end of the previous
/// iteration.
#[differentiable(wrt(w))]
fn carried_other_element(w: &[f64], x: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut e = [0.0; 2];
    for i in 0..x.len() {
        e[0] = w[0] * x[i];
        total += e[0] * e[1];
        e[1] = e[0] + w[1];
    }
    total
}

/// f = Σ_i [g h + (h > 0 ? g² h : g²) + Σ_{k<3} g h (k + w₂)] with
/// g = σ(w₀ x_i), h = tanh(w₁ x_i + g), stopping after the first
/// x_i > 1.5: whatever the code says; the oracle is FD. `g` and `h` are
/// immutable bindings of the loop body read by several statements, in a
/// branch and in an inner loop: each is saved once per iteration and popped
/// at the start of the reverse iteration; the `break` comes after them (so
/// the partial last iteration pushed them too).
#[differentiable(wrt(w))]
fn saved_once(w: &[f64], x: &[f64]) -> f64 {
    let mut total = 0.0;
    for i in 0..x.len() {
        let g = (w[0] * x[i]).sigmoid();
        let h = (w[1] * x[i] + g).tanh();
        total += g * h;
        if h > 0.0 {
            total += g * g * h;
        } else {
            total += g * g;
        }
        if x[i] > 1.5 {
            break;
        }
        for k in 0..3 {
            total += g * h * (k as f64 + w[2]);
        }
    }
    total
}

#[test]
fn fused_loops_with_scratch_buffers() {
    let x = [0.3, -1.2, 0.8, 2.0, -0.4, 0.6, 1.1, -0.7];
    // μ (2 × 2), then w (2)
    let p = [0.2, -0.3, -0.5, 0.9, 0.7, -0.4];
    check(
        "scratch_mixture",
        |p| scratch_mixture(&p[..4], &p[4..], &x),
        |p| {
            let (v, (dmu, dw)) = scratch_mixture_grad(&p[..4], &p[4..], &x);
            (v, [dmu, dw].concat())
        },
        &p,
    );
    let w3 = [0.7, -0.2, 0.4];
    check(
        "saved_once",
        |w| saved_once(w, &x),
        |w| saved_once_grad(w, &x),
        &w3,
    );
    let w = [0.7, -0.2];
    check(
        "carried_read_first",
        |w| carried_read_first(w, &x),
        |w| carried_read_first_grad(w, &x),
        &w,
    );
    check(
        "carried_short_range",
        |w| carried_short_range(w, &x),
        |w| carried_short_range_grad(w, &x),
        &w,
    );
    check(
        "carried_conditional",
        |w| carried_conditional(w, &x),
        |w| carried_conditional_grad(w, &x),
        &w,
    );
    check(
        "carried_other_element",
        |w| carried_other_element(w, &x),
        |w| carried_other_element_grad(w, &x),
        &w,
    );
}

/// Σ_{i<n-1} x_i x_{i+1} + Σ_{i<n-1, x_i > 0} x_k² x_i (k = 7i mod n),
/// stopping at the last element before `x[i + 1]` would be out of range:
/// `j`, `v`, `k` and `w` are recomputed by the reverse sweep, `j` and `v`
/// only where the `break` was not taken (recomputing `x[j]` at the last
/// iteration would panic).
#[differentiable]
fn guarded_lets(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if i + 1 == x.len() {
            break;
        }
        let j = i + 1;
        let v = x[j];
        s += x[i] * v;
        if x[i] > 0.0 {
            let k = (i * 7) % x.len();
            let w = x[k];
            s += w * w * x[i];
        }
    }
    s
}

/// The determinant by expansion along the first remaining row, recursively
/// (GradBench's `det`): `entry`, its index and the call's arguments are
/// recomputed, the index and `entry` in the branch, the arguments after the
/// `return` of the last row. Checked against finite differences and against
/// the cofactors: ∂det/∂a_ij = (-1)^(i+j) det(minor_ij).
#[differentiable]
fn det_of_minor(a: &[f64], n: usize, row: usize, removed: u32) -> f64 {
    let mut det = 0.0;
    let mut sign = 1.0;
    for col in 0..n {
        if removed & (1 << col) == 0 {
            let entry = a[row * n + col];
            if row + 1 == n {
                return entry;
            }
            det += sign * entry * det_of_minor(a, n, row + 1, removed | (1 << col));
            sign = -sign;
        }
    }
    det
}

#[test]
fn recomputed_lets_in_branches_and_after_exits() {
    let x = [0.7, -1.1, 0.4, 1.9, -0.3, 0.8, 1.2];
    check("guarded_lets", guarded_lets, guarded_lets_grad, &x);
    let a = [
        0.9, -0.4, 0.3, 1.2, //
        0.5, 1.1, -0.7, 0.2, //
        -0.6, 0.8, 1.3, -0.1, //
        0.4, -0.9, 0.6, 1.0,
    ];
    let det = |a: &[f64]| det_of_minor(a, 4, 0, 0);
    check("det_of_minor", det, |a| det_of_minor_grad(a, 4, 0, 0), &a);
    // Cofactors: the minor of (i, j) by deleting row i and column j.
    let (_, g) = det_of_minor_grad(&a, 4, 0, 0);
    for i in 0..4 {
        for j in 0..4 {
            let minor: Vec<f64> = (0..4)
                .filter(|&r| r != i)
                .flat_map(|r| (0..4).filter(move |&c| c != j).map(move |c| a[r * 4 + c]))
                .collect();
            let sign = if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
            let cof = sign * det_of_minor(&minor, 3, 0, 0);
            assert!((g[i * 4 + j] - cof).abs() < 1e-12, "cofactor ({i}, {j})");
        }
    }
}
