//! Loops: `for` over ranges (`a..b`, `a..=b`, `.rev()`, `.step_by(k)`) and over
//! slices (`.iter()`, `&x`, `for &v in x`, `.enumerate()`, `.zip()`), `while`,
//! `loop`, `break`, `continue`, labeled break/continue, `return` from inside
//! loops; values overwritten every iteration and read nonlinearly, nested loops
//! with loop-carried values, branches inside loops.

// `a = a * x` is written out on purpose: plain assignment is a construct under test.
// Index loops, an empty range and `&Vec` parameters are constructs under test too.
#![allow(
    clippy::assign_op_pattern,
    clippy::needless_range_loop,
    clippy::reversed_empty_ranges,
    clippy::ptr_arg
)]

mod common;

use common::*;
use tapeless::differentiable;

#[track_caller]
fn check1(name: &str, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> (f64, f64), points: &[f64]) {
    for &x in points {
        let (v, d) = g(x);
        assert_eq!(v, f(x), "{name}: value at {x}");
        assert_close(d, fd(&f, x), &format!("{name}: d/dx at {x}"));
    }
}

#[track_caller]
fn check_slice(
    name: &str,
    f: impl Fn(&[f64]) -> f64,
    g: impl Fn(&[f64]) -> (f64, Vec<f64>),
    inputs: &[Vec<f64>],
) {
    for x in inputs {
        let (v, d) = g(x);
        assert_eq!(v, f(x), "{name}: value at {x:?}");
        assert_all_close(&d, &fd_slice(&f, x), &format!("{name}: gradient at {x:?}"));
    }
}

#[track_caller]
fn check_two_slices(
    name: &str,
    f: impl Fn(&[f64], &[f64]) -> f64,
    g: impl Fn(&[f64], &[f64]) -> (f64, (Vec<f64>, Vec<f64>)),
    inputs: &[(Vec<f64>, Vec<f64>)],
) {
    for (x, y) in inputs {
        let (v, (dx, dy)) = g(x, y);
        assert_eq!(v, f(x, y), "{name}: value at {x:?}, {y:?}");
        assert_all_close(
            &dx,
            &fd_slice(|x| f(x, y), x),
            &format!("{name}: d/dx at {x:?}, {y:?}"),
        );
        assert_all_close(
            &dy,
            &fd_slice(|y| f(x, y), y),
            &format!("{name}: d/dy at {x:?}, {y:?}"),
        );
    }
}

fn inputs() -> Vec<Vec<f64>> {
    vec![
        vec![0.5, -0.3, 0.8, 1.1],
        vec![-1.2, 0.4, -0.7, 0.25, 0.9, -0.05],
        vec![0.3],
        vec![2.0, 1.5, -0.5],
    ]
}

fn pairs() -> Vec<(Vec<f64>, Vec<f64>)> {
    vec![
        (vec![0.5, -0.3, 0.8], vec![1.1, 0.2, -0.6]),
        (vec![-1.2, 0.4, -0.7, 0.25], vec![0.9, -0.05, 0.3, 1.7]),
    ]
}

// ---------------------------------------------------------------- ranges

#[differentiable]
fn range_excl(x: f64, n: usize) -> f64 {
    let mut acc = 1.0;
    for _ in 0..n {
        acc = acc * x + 1.0;
    }
    acc
}

#[differentiable]
fn range_incl(x: f64, n: u32) -> f64 {
    let mut s = 0.0;
    for k in 1..=n {
        s += (x * k as f64).sin() / (k as f64);
    }
    s
}

#[differentiable]
fn range_rev(x: f64) -> f64 {
    let mut s = x;
    for k in (0..5).rev() {
        s = s * s * 0.5 + (k as f64) * x;
        s = s.tanh();
    }
    s
}

#[differentiable]
fn range_step_by(x: f64, n: usize) -> f64 {
    let mut p = 1.0;
    for k in (1..n).step_by(3) {
        p *= x + k as f64;
    }
    p
}

#[differentiable]
fn range_offset(x: f64, lo: usize, hi: usize) -> f64 {
    let mut s = 0.0;
    for i in lo..hi {
        s += x.powi(i as i32);
    }
    s
}

#[differentiable]
fn range_empty(x: f64) -> f64 {
    let mut s = x * 2.0;
    for _ in 3..3 {
        s = s * s;
    }
    s
}

#[differentiable]
fn range_rev_incl_step(x: f64) -> f64 {
    let mut s = 0.0;
    for k in (0..=10).rev().step_by(4) {
        s = s * x + k as f64;
    }
    s
}

#[test]
fn ranges() {
    for n in [0, 1, 4] {
        check1(
            &format!("range_excl n={n}"),
            |x| range_excl(x, n),
            |x| range_excl_grad(x, n),
            &POINTS,
        );
    }
    // d/dx sum_k sin(kx)/k = sum_k cos(kx)
    for &x in &POINTS {
        let (v, d) = range_incl_grad(x, 4);
        assert_eq!(v, range_incl(x, 4));
        assert_close(d, (1..=4).map(|k| (x * k as f64).cos()).sum(), "range_incl");
    }
    check1("range_rev", range_rev, range_rev_grad, &POINTS);
    for n in [0, 2, 5, 11] {
        check1(
            &format!("range_step_by n={n}"),
            |x| range_step_by(x, n),
            |x| range_step_by_grad(x, n),
            &POINTS,
        );
    }
    check1(
        "range_offset",
        |x| range_offset(x, 2, 6),
        |x| range_offset_grad(x, 2, 6),
        &POINTS,
    );
    assert_eq!(range_empty_grad(1.5), (range_empty(1.5), 2.0));
    // s = ((10 x + 6) x + 2): d/dx = 20x + 6
    for &x in &POINTS {
        let (v, d) = range_rev_incl_step_grad(x);
        assert_eq!(v, range_rev_incl_step(x));
        assert_close(d, 20.0 * x + 6.0, "range_rev_incl_step");
    }
}

// ---------------------------------------------------------------- iterating slices

#[differentiable]
fn iter_sum_sq(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter() {
        s += v * v;
    }
    s
}

#[differentiable]
fn iter_ref(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += v.sin() * *v;
    }
    s
}

#[differentiable]
fn iter_pattern(x: &[f64]) -> f64 {
    let mut p = 1.0;
    for &v in x {
        p = p * (1.0 + v * v);
    }
    p.ln()
}

#[differentiable]
fn iter_vec_ref(x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for v in &x {
        s += v.exp();
    }
    s.ln()
}

#[differentiable]
fn iter_enumerate(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        s += (i as f64 + 1.0) * v * v + s * 0.1;
    }
    s
}

#[differentiable]
fn iter_zip(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y.iter()) {
        s += a * b + (a - b).powi(2);
    }
    s
}

#[differentiable]
fn iter_zip_pattern(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    // (`.zip(y)`: wip/bugs/06-zip-with-slice-not-iter.rs)
    for (&a, &b) in x.iter().zip(y.iter()) {
        s += (a * b).tanh();
    }
    s
}

#[differentiable]
fn index_loop(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i] * y[i];
    }
    s
}

/// A reference to a local, read in a loop: the reverse sweep keeps a type
/// witness of `&Vec<f64>` on a stack declared before `v`. That compiles only
/// while the stack's drop may outlive `v`'s borrow, as `Vec`'s does
/// (`__private::Stack` has no `Drop` impl for this reason).
#[differentiable]
fn ref_to_local_in_loop(x: &[f64]) -> f64 {
    let v = x.to_vec();
    let mut s: f64 = 0.0;
    for i in 0..x.len() {
        let r = &v;
        s += r[i] * r[i] * s.sin();
    }
    s
}

#[test]
fn slice_iteration() {
    check_slice(
        "ref_to_local_in_loop",
        ref_to_local_in_loop,
        ref_to_local_in_loop_grad,
        &inputs(),
    );
    // d/dx_i sum x^2 = 2 x_i
    for x in inputs() {
        let (v, d) = iter_sum_sq_grad(&x);
        assert_eq!(v, iter_sum_sq(&x));
        let e: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        assert_all_close(&d, &e, "iter_sum_sq");
    }
    check_slice("iter_ref", iter_ref, iter_ref_grad, &inputs());
    check_slice("iter_pattern", iter_pattern, iter_pattern_grad, &inputs());
    check_slice(
        "iter_vec_ref",
        |x| iter_vec_ref(x.to_vec()),
        |x| iter_vec_ref_grad(x.to_vec()),
        &inputs(),
    );
    check_slice(
        "iter_enumerate",
        iter_enumerate,
        iter_enumerate_grad,
        &inputs(),
    );
    check_two_slices("iter_zip", iter_zip, iter_zip_grad, &pairs());
    check_two_slices(
        "iter_zip_pattern",
        iter_zip_pattern,
        iter_zip_pattern_grad,
        &pairs(),
    );
    check_two_slices("index_loop", index_loop, index_loop_grad, &pairs());
    // zip stops at the shorter input: the longer one's tail gets zero gradient.
    let (v, (dx, dy)) = iter_zip_grad(&[1.0, 2.0, 3.0], &[0.5]);
    assert_eq!(v, iter_zip(&[1.0, 2.0, 3.0], &[0.5]));
    assert_all_close(&dx, &[0.5 + 1.0, 0.0, 0.0], "iter_zip uneven dx");
    assert_all_close(&dy, &[1.0 - 1.0], "iter_zip uneven dy");
    // Empty input: empty gradient, value of the empty sum.
    assert_eq!(iter_sum_sq_grad(&[]), (0.0, vec![]));
}

// ---------------------------------------------------------------- while and loop

#[differentiable]
fn while_count(x: f64, n: usize) -> f64 {
    let mut i = 0;
    let mut a = x;
    while i < n {
        a = (a * x).sin() + a;
        i += 1;
    }
    a
}

#[differentiable]
fn while_active_cond(x: f64) -> f64 {
    // doubles until above 10: the trip count depends on x
    let mut a = x.abs() + 0.1;
    let mut steps = 0.0;
    while a < 10.0 {
        a = a * 2.0 + x * x;
        steps += 1.0;
    }
    a + steps
}

#[differentiable]
fn loop_break(x: f64) -> f64 {
    let mut a = x;
    let mut k = 0;
    loop {
        a = a * 0.5 + (a * x).cos();
        k += 1;
        if k >= 6 {
            break;
        }
    }
    a
}

#[differentiable]
fn loop_break_active(x: f64, y: f64) -> f64 {
    let mut a = x;
    let mut k = 0;
    loop {
        if a > 5.0 || k > 20 {
            break;
        }
        a = a + y * y + 0.3;
        k += 1;
    }
    a * x
}

#[differentiable]
fn continue_in_for(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] < 0.0 {
            continue;
        }
        s += x[i].sqrt() * (i as f64 + 1.0);
    }
    s
}

#[differentiable]
fn continue_in_while(x: f64) -> f64 {
    let mut i = 0;
    let mut s = 0.0;
    while i < 7 {
        i += 1;
        if i % 3 == 0 {
            continue;
        }
        s = s * x + (i as f64);
    }
    s
}

#[differentiable]
fn break_in_for_active(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += v * v;
        if s > 1.0 {
            break;
        }
    }
    s.sqrt()
}

#[test]
fn while_and_loop() {
    for n in [0, 1, 3] {
        check1(
            &format!("while_count n={n}"),
            |x| while_count(x, n),
            |x| while_count_grad(x, n),
            &POINTS,
        );
    }
    check1(
        "while_active_cond",
        while_active_cond,
        while_active_cond_grad,
        &POINTS,
    );
    check1("loop_break", loop_break, loop_break_grad, &POINTS);
    for &(x, y) in &[(0.5, 1.0), (-1.0, 0.7), (6.0, 2.0), (1.0, -0.4)] {
        let (v, (dx, dy)) = loop_break_active_grad(x, y);
        assert_eq!(v, loop_break_active(x, y));
        assert_close(
            dx,
            fd(|x| loop_break_active(x, y), x),
            "loop_break_active dx",
        );
        assert_close(
            dy,
            fd(|y| loop_break_active(x, y), y),
            "loop_break_active dy",
        );
    }
    check_slice(
        "continue_in_for",
        continue_in_for,
        continue_in_for_grad,
        &[vec![0.5, -0.3, 0.8, 1.1], vec![-1.0, -2.0], vec![0.1, 4.0]],
    );
    check1(
        "continue_in_while",
        continue_in_while,
        continue_in_while_grad,
        &POINTS,
    );
    check_slice(
        "break_in_for_active",
        break_in_for_active,
        break_in_for_active_grad,
        &inputs(),
    );
}

// ---------------------------------------------------------------- early return inside loops

#[differentiable]
fn return_from_for(x: &[f64], limit: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
        if s > limit {
            return s.sqrt() * limit;
        }
    }
    s * 2.0
}

#[differentiable]
fn return_from_while(x: f64) -> f64 {
    let mut a = x;
    let mut i = 0;
    while i < 10 {
        a = a * 1.5 + 0.1;
        if a.abs() > 4.0 {
            return a * x;
        }
        i += 1;
    }
    -a
}

#[differentiable]
fn return_from_nested(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..x.len() {
            s += x[i] * x[j];
            if i == 1 && j == 2 {
                return s.exp();
            }
        }
    }
    s
}

#[test]
fn returns_inside_loops() {
    for x in inputs() {
        for limit in [0.1, 1.0, 100.0] {
            let (v, (dx, dl)) = return_from_for_grad(&x, limit);
            assert_eq!(v, return_from_for(&x, limit));
            assert_all_close(
                &dx,
                &fd_slice(|x| return_from_for(x, limit), &x),
                "return_from_for dx",
            );
            assert_close(
                dl,
                fd(|l| return_from_for(&x, l), limit),
                "return_from_for dlimit",
            );
        }
    }
    check1(
        "return_from_while",
        return_from_while,
        return_from_while_grad,
        &[-1.3, -0.2, 0.05, 0.3, 2.9, 5.0],
    );
    check_slice(
        "return_from_nested",
        return_from_nested,
        return_from_nested_grad,
        &inputs(),
    );
}

// ---------------------------------------------------------------- labeled loops

#[differentiable]
fn labeled_break(x: &[f64]) -> f64 {
    let mut s = 0.0;
    'outer: for i in 0..x.len() {
        for j in 0..x.len() {
            if j > i {
                continue 'outer;
            }
            s += x[i] * x[j];
            if s > 3.0 {
                break 'outer;
            }
        }
    }
    s
}

#[differentiable]
fn labeled_while(x: f64) -> f64 {
    let mut a = x;
    let mut i = 0;
    'outer: while i < 4 {
        i += 1;
        let mut j = 0;
        loop {
            j += 1;
            if j > i {
                break;
            }
            if i == 3 && j == 2 {
                continue 'outer;
            }
            a = (a * 1.1).sin() + x;
            if i * j == 8 {
                break 'outer;
            }
        }
        // (with the `loop` last in the body:
        // wip/bugs/04-loop-stmt-last-in-loop-body.rs)
        a = a * 0.9 + x * 0.1;
    }
    a
}

#[test]
fn labeled_loops() {
    check_slice(
        "labeled_break",
        labeled_break,
        labeled_break_grad,
        &[
            vec![0.5, -0.3, 0.8, 1.1],
            vec![1.0, 1.2, 0.9],
            vec![-0.2, 0.3],
        ],
    );
    check1("labeled_while", labeled_while, labeled_while_grad, &POINTS);
}

// ---------------------------------------------------------------- overwrites and nesting

#[differentiable]
fn overwrite_nonlinear(x: f64, n: usize) -> f64 {
    // `t` is overwritten every iteration and read nonlinearly in the next.
    let mut t = x;
    let mut acc = 0.0;
    for _ in 0..n {
        let prev = t;
        t = (t * x).sin() * t;
        acc += prev * t;
    }
    acc + t
}

#[differentiable]
fn overwrite_two_vars(x: f64) -> f64 {
    // a Fibonacci-like swap: both values overwritten each step
    let mut a = x;
    let mut b = 1.0;
    for _ in 0..6 {
        let c = a * b;
        a = b;
        b = c.sin() + x;
    }
    a * b
}

#[differentiable]
fn nested_carried(x: &[f64], w: f64) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        let mut inner = h;
        for j in 0..=i {
            inner = (inner * w + x[j]).tanh();
        }
        h = h * 0.5 + inner * x[i];
    }
    h
}

#[differentiable]
fn branch_in_loop(x: &[f64], a: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] > 0.0 {
            s = s * a + x[i];
        } else if i % 2 == 0 {
            s = (s - x[i]).abs() * a;
        } else {
            s += x[i] * x[i];
        }
        // (with the `if`/`else` last in the body:
        // wip/bugs/01-if-else-stmt-last-in-loop-body.rs)
        s *= 0.9;
    }
    s
}

#[differentiable]
fn triple_nested(x: f64, y: f64) -> f64 {
    let mut s: f64 = 0.5;
    for i in 0..3 {
        for j in 0..3 {
            for k in 0..2 {
                s = s * 0.3 + (x * i as f64 - y * j as f64 + k as f64).sin() * s.cos();
            }
        }
    }
    s
}

#[differentiable]
fn while_over_slice(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut p = 1.0;
    while i < x.len() {
        p = p * x[i] + 1.0;
        i += 2;
    }
    p
}

#[test]
fn overwrites_and_nesting() {
    for n in [0, 1, 5] {
        check1(
            &format!("overwrite_nonlinear n={n}"),
            |x| overwrite_nonlinear(x, n),
            |x| overwrite_nonlinear_grad(x, n),
            &POINTS,
        );
    }
    check1(
        "overwrite_two_vars",
        overwrite_two_vars,
        overwrite_two_vars_grad,
        &POINTS,
    );
    for x in inputs() {
        for w in [-0.8, 0.6] {
            let (v, (dx, dw)) = nested_carried_grad(&x, w);
            assert_eq!(v, nested_carried(&x, w));
            assert_all_close(
                &dx,
                &fd_slice(|x| nested_carried(x, w), &x),
                "nested_carried dx",
            );
            assert_close(dw, fd(|w| nested_carried(&x, w), w), "nested_carried dw");
            let (v, (dx, da)) = branch_in_loop_grad(&x, w);
            assert_eq!(v, branch_in_loop(&x, w));
            assert_all_close(
                &dx,
                &fd_slice(|x| branch_in_loop(x, w), &x),
                "branch_in_loop dx",
            );
            assert_close(da, fd(|a| branch_in_loop(&x, a), w), "branch_in_loop da");
        }
    }
    for &(x, y) in &[(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5)] {
        let (v, (dx, dy)) = triple_nested_grad(x, y);
        assert_eq!(v, triple_nested(x, y));
        assert_close(dx, fd(|x| triple_nested(x, y), x), "triple_nested dx");
        assert_close(dy, fd(|y| triple_nested(x, y), y), "triple_nested dy");
    }
    check_slice(
        "while_over_slice",
        while_over_slice,
        while_over_slice_grad,
        &inputs(),
    );
}

// ---------------------------------------------------------------- iterating arrays and Vecs

#[differentiable]
fn iter_array_ref(x: [f64; 3]) -> f64 {
    let mut s = 1.0;
    for v in &x {
        s = s * v + v.cos();
    }
    s
}

#[differentiable]
fn iter_array_enumerate(x: &[f64; 4], w: f64) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        s += (v * w).sin() * i as f64;
    }
    s
}

#[differentiable]
fn iter_vec_pattern(x: Vec<f64>, y: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for (&a, b) in x.iter().zip(y.iter()) {
        s = s * 0.5 + a * b * b;
    }
    s
}

#[test]
fn array_and_vec_iteration() {
    for x in [[0.5, -1.2, 0.8], [1.5, 0.3, -0.4]] {
        let (v, d) = iter_array_ref_grad(x);
        assert_eq!(v, iter_array_ref(x));
        assert_all_close(&d, &fd_array(iter_array_ref, x), "iter_array_ref");
    }
    let x = [0.5, -1.2, 0.8, 2.0];
    for w in [0.7, -1.3] {
        let (v, (dx, dw)) = iter_array_enumerate_grad(&x, w);
        assert_eq!(v, iter_array_enumerate(&x, w));
        // d/dx_i = i w cos(x_i w)
        let e: Vec<f64> = (0..4).map(|i| i as f64 * w * (x[i] * w).cos()).collect();
        assert_all_close(&dx, &e, "iter_array_enumerate dx");
        assert_close(
            dw,
            fd(|w| iter_array_enumerate(&x, w), w),
            "iter_array_enumerate dw",
        );
    }
    for (x, y) in pairs() {
        let (v, (dx, dy)) = iter_vec_pattern_grad(x.clone(), &y);
        assert_eq!(v, iter_vec_pattern(x.clone(), &y));
        assert_all_close(
            &dx,
            &fd_slice(|x| iter_vec_pattern(x.to_vec(), &y), &x),
            "iter_vec_pattern dx",
        );
        assert_all_close(
            &dy,
            &fd_slice(|y| iter_vec_pattern(x.clone(), &y.to_vec()), &y),
            "iter_vec_pattern dy",
        );
    }
}
