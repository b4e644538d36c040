//! Branches: `if` / `else if` / `else` as statements and expressions, on active
//! and inactive conditions; `match` on inactive values (literals, `|`, guards,
//! ranges, `_`); early `return`. Every function is checked on both sides of
//! each branch.

// `a = a * x` is written out on purpose: plain assignment is a construct under test.
#![allow(clippy::assign_op_pattern)]

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
fn check2(
    name: &str,
    f: impl Fn(f64, f64) -> f64,
    g: impl Fn(f64, f64) -> (f64, (f64, f64)),
    points: &[(f64, f64)],
) {
    for &(x, y) in points {
        let (v, (dx, dy)) = g(x, y);
        assert_eq!(v, f(x, y), "{name}: value at ({x}, {y})");
        assert_close(
            dx,
            fd(|x| f(x, y), x),
            &format!("{name}: d/dx at ({x}, {y})"),
        );
        assert_close(
            dy,
            fd(|y| f(x, y), y),
            &format!("{name}: d/dy at ({x}, {y})"),
        );
    }
}

const PAIRS: [(f64, f64); 8] = [
    (0.7, 0.3),
    (0.3, 0.7),
    (-0.4, 1.2),
    (2.0, -0.5),
    (-1.3, -0.9),
    (-0.9, -1.3),
    (1.6, 2.1),
    (-2.2, 0.4),
];

// ---------------------------------------------------------------- if as expression

#[differentiable]
fn if_expr(x: f64, y: f64) -> f64 {
    // x > 0: x^2 y ; else: sin(x) + y
    if x > 0.0 {
        x * x * y
    } else {
        x.sin() + y
    }
}

#[differentiable]
fn if_expr_in_let(x: f64, y: f64) -> f64 {
    let z = if x < y { y - x } else { (x - y) * x };
    z * z + x
}

#[differentiable]
fn else_if_chain(x: f64) -> f64 {
    if x < -1.0 {
        -x * 2.0
    } else if x < 0.0 {
        x * x + 1.0
    } else if x < 1.0 {
        x.exp()
    } else {
        x.ln() + std::f64::consts::E
    }
}

#[differentiable]
fn if_as_operand(x: f64, y: f64) -> f64 {
    x * (if y > 0.0 { y } else { -y * x }) + (if x > y { x } else { y }).powi(2)
}

#[differentiable]
fn nested_if(x: f64, y: f64) -> f64 {
    if x > 0.0 {
        if y > 0.0 {
            x * y
        } else {
            x - y * y
        }
    } else if y > x {
        let t = y - x;
        t.sqrt() * x
    } else {
        (x + y).sin()
    }
}

#[test]
fn if_expressions() {
    check2("if_expr", if_expr, if_expr_grad, &PAIRS);
    check2(
        "if_expr_in_let",
        if_expr_in_let,
        if_expr_in_let_grad,
        &PAIRS,
    );
    check1(
        "else_if_chain",
        else_if_chain,
        else_if_chain_grad,
        &[-2.5, -1.2, -0.8, -0.1, 0.2, 0.9, 1.4, 3.0],
    );
    check2("if_as_operand", if_as_operand, if_as_operand_grad, &PAIRS);
    check2("nested_if", nested_if, nested_if_grad, &PAIRS);
    // analytic: if_expr d/dx = 2xy for x > 0, cos x for x < 0.
    assert_eq!(if_expr_grad(2.0, 3.0), (12.0, (12.0, 4.0)));
    assert_eq!(
        if_expr_grad(-1.0, 3.0),
        (if_expr(-1.0, 3.0), ((-1.0f64).cos(), 1.0))
    );
}

// ---------------------------------------------------------------- if as statement

#[differentiable]
fn if_stmt(x: f64, y: f64) -> f64 {
    let mut a = x * y;
    if a > 0.0 {
        a = a.sqrt();
    }
    if x < y {
        a += y;
    } else {
        a *= x;
    }
    a
}

#[differentiable]
fn if_stmt_two_vars(x: f64, y: f64) -> f64 {
    let mut a = x;
    let mut b = y;
    if x * y > 0.5 {
        a = y * y;
        b = x.exp();
    } else if x > 0.0 {
        b = a * b;
    } else {
        a = -a;
    }
    a * b + a
}

#[differentiable]
fn if_stmt_shadow_inside(x: f64) -> f64 {
    let mut r = x;
    if x > 0.0 {
        let x = x * 3.0;
        r = r * x;
    }
    r
}

#[differentiable]
fn if_no_else_reads_old(x: f64, y: f64) -> f64 {
    // the branch reads the value it overwrites
    let mut a = x + y;
    if y > 0.0 {
        a = a * a * x;
    }
    a * y
}

#[test]
fn if_statements() {
    check2("if_stmt", if_stmt, if_stmt_grad, &PAIRS);
    check2(
        "if_stmt_two_vars",
        if_stmt_two_vars,
        if_stmt_two_vars_grad,
        &PAIRS,
    );
    check1(
        "if_stmt_shadow_inside",
        if_stmt_shadow_inside,
        if_stmt_shadow_inside_grad,
        &POINTS,
    );
    check2(
        "if_no_else_reads_old",
        if_no_else_reads_old,
        if_no_else_reads_old_grad,
        &PAIRS,
    );
}

// ---------------------------------------------------------------- inactive conditions

#[differentiable]
fn cond_on_int(x: f64, n: usize) -> f64 {
    if n % 2 == 0 {
        x * x
    } else if n > 4 {
        x.sin() * (n as f64)
    } else {
        -x
    }
}

#[differentiable]
fn cond_on_bool(x: f64, flag: bool, y: f64) -> f64 {
    let s = if flag { x * y } else { x / y };
    if !flag && s > 0.0 {
        s.sqrt()
    } else {
        s
    }
}

#[differentiable]
fn cond_combined(x: f64, y: f64, n: i32) -> f64 {
    if n > 0 && x > y || n < -5 {
        x * y * (n as f64)
    } else {
        x + y
    }
}

#[test]
fn inactive_conditions() {
    // even n: 2x; n > 4 odd: n cos x; else -1
    for &x in &POINTS {
        for n in [0usize, 1, 2, 3, 5, 7] {
            let (v, d) = cond_on_int_grad(x, n);
            assert_eq!(v, cond_on_int(x, n));
            let e = if n % 2 == 0 {
                2.0 * x
            } else if n > 4 {
                x.cos() * n as f64
            } else {
                -1.0
            };
            assert_close(d, e, &format!("cond_on_int n={n} x={x}"));
        }
    }
    for flag in [true, false] {
        check2(
            &format!("cond_on_bool flag={flag}"),
            |x, y| cond_on_bool(x, flag, y),
            |x, y| cond_on_bool_grad(x, flag, y),
            &PAIRS,
        );
    }
    for n in [-7, -1, 0, 3] {
        check2(
            &format!("cond_combined n={n}"),
            |x, y| cond_combined(x, y, n),
            |x, y| cond_combined_grad(x, y, n),
            &PAIRS,
        );
    }
}

// ---------------------------------------------------------------- match

#[differentiable]
fn match_literals(x: f64, k: u32) -> f64 {
    match k {
        0 => x,
        1 | 2 => x * x,
        3 => x.sin(),
        _ => x.exp() * (k as f64),
    }
}

#[differentiable]
fn match_guards(x: f64, k: i32) -> f64 {
    let y = match k {
        _ if k < 0 => -x * (k as f64),
        0 => x.cos(),
        _ if k % 2 == 0 => x.powi(k),
        _ => x.tanh(),
    };
    y * x
}

#[differentiable]
fn match_ranges(x: f64, k: usize) -> f64 {
    match k {
        0..=2 => x * 3.0,
        3..=9 => x * x,
        _ => x.atan(),
    }
}

#[differentiable]
fn match_stmt(x: f64, k: usize) -> f64 {
    let mut a = x;
    match k {
        // (without braces: wip/bugs/05-match-arm-assignment-without-braces.rs)
        0 => {
            a *= 2.0;
        }
        1 => {
            a = a * a;
            a += x;
        }
        _ => {}
    }
    a * x
}

#[differentiable]
fn match_bool(x: f64, b: bool) -> f64 {
    match b {
        true => x * x,
        false => -x,
    }
}

#[differentiable]
fn match_inside_if(x: f64, k: u8) -> f64 {
    if x > 0.0 {
        match k {
            0 => x.sqrt(),
            _ => x.ln_1p(),
        }
    } else {
        x * x
    }
}

#[test]
fn matches() {
    // 1; 2x; cos x; k e^x
    for &x in &POINTS {
        for k in 0..6u32 {
            let (v, d) = match_literals_grad(x, k);
            assert_eq!(v, match_literals(x, k));
            let e = match k {
                0 => 1.0,
                1 | 2 => 2.0 * x,
                3 => x.cos(),
                _ => x.exp() * k as f64,
            };
            assert_close(d, e, &format!("match_literals k={k} x={x}"));
        }
        for k in [-3, -1, 0, 2, 4, 3] {
            let (v, d) = match_guards_grad(x, k);
            assert_eq!(v, match_guards(x, k));
            assert_close(
                d,
                fd(|x| match_guards(x, k), x),
                &format!("match_guards k={k} x={x}"),
            );
        }
        for k in [0usize, 2, 3, 9, 10, 100] {
            let (v, d) = match_ranges_grad(x, k);
            assert_eq!(v, match_ranges(x, k));
            assert_close(
                d,
                fd(|x| match_ranges(x, k), x),
                &format!("match_ranges k={k} x={x}"),
            );
        }
        for k in 0..3usize {
            let (v, d) = match_stmt_grad(x, k);
            assert_eq!(v, match_stmt(x, k));
            assert_close(
                d,
                fd(|x| match_stmt(x, k), x),
                &format!("match_stmt k={k} x={x}"),
            );
        }
        for b in [true, false] {
            let (v, d) = match_bool_grad(x, b);
            assert_eq!(v, match_bool(x, b));
            assert_close(d, if b { 2.0 * x } else { -1.0 }, "match_bool");
        }
        for k in [0u8, 1] {
            let (v, d) = match_inside_if_grad(x, k);
            assert_eq!(v, match_inside_if(x, k));
            assert_close(
                d,
                fd(|x| match_inside_if(x, k), x),
                &format!("match_inside_if k={k}"),
            );
        }
    }
}

// ---------------------------------------------------------------- early return

#[differentiable]
fn early_return(x: f64, y: f64) -> f64 {
    if x < 0.0 {
        return x * y;
    }
    let a = x.sqrt() * y;
    if a > 1.0 {
        return a.ln();
    }
    a * a
}

#[differentiable]
fn early_return_nested(x: f64, n: usize) -> f64 {
    let mut a = x * 2.0;
    if n > 0 {
        a = a * x;
        if n > 1 {
            return a.sin();
        }
        a += x;
    }
    a * 3.0
}

#[differentiable]
fn return_in_match(x: f64, k: u32) -> f64 {
    let y = match k {
        0 => return x.exp(),
        _ => x * (k as f64),
    };
    y * y
}

#[test]
fn early_returns() {
    check2(
        "early_return",
        early_return,
        early_return_grad,
        &[
            (-1.0, 2.0),
            (0.5, 0.5),
            (4.0, 1.0),
            (9.0, 2.0),
            (-0.3, -0.2),
        ],
    );
    for &x in &POINTS {
        for n in 0..3 {
            let (v, d) = early_return_nested_grad(x, n);
            assert_eq!(v, early_return_nested(x, n));
            assert_close(
                d,
                fd(|x| early_return_nested(x, n), x),
                &format!("early_return_nested n={n}"),
            );
        }
        for k in 0..3 {
            // e^x, or 2 k^2 x
            let (v, d) = return_in_match_grad(x, k);
            assert_eq!(v, return_in_match(x, k));
            let e = if k == 0 {
                x.exp()
            } else {
                2.0 * (k * k) as f64 * x
            };
            assert_close(d, e, &format!("return_in_match k={k}"));
        }
    }
}

// ---------------------------------------------------------------- non-smooth points

#[differentiable]
fn abs_via_if(x: f64) -> f64 {
    if x >= 0.0 {
        x
    } else {
        -x
    }
}

#[test]
fn branch_taken_at_the_boundary() {
    // At x = 0 the `>=` branch is taken: derivative 1.
    assert_eq!(abs_via_if_grad(0.0), (0.0, 1.0));
    check1("abs_via_if", abs_via_if, abs_via_if_grad, &NONZERO);
}

const NONZERO: [f64; 4] = [-2.0, -0.1, 0.1, 2.0];

/// v₀ w + v₁ w², a helper whose slice argument the caller lends from a
/// buffer it overwrites.
#[differentiable]
fn lent_dot(v: &[f64], w: f64) -> f64 {
    v[0] * w + v[1] * w * w
}

/// f(w) = Σ_i, for x_i > 0: a b x_i (+ a, unless a > 0.9, which ends the
/// loop) with a = sin(w x_i), b = lent_dot([x_i, w x_i], w); for x_i ≤ 0:
/// cos(w) x_i. Whatever the code says; the oracle is FD. The branch's head
/// (the statements before the `break`) saves the buffer lent to the call
/// (an owned `Vec`, copied), three floats and two shapes into one tuple
/// pushed before the `break`, so the iteration that breaks pops it too; the
/// `else` branch saves its own tuple.
#[differentiable]
fn branch_head_tuple(w: f64, x: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut buf = vec![0.0; 2];
    for &xi in x {
        if xi > 0.0 {
            let a = (w * xi).sin();
            buf[0] = xi;
            buf[1] = w * xi;
            let b = lent_dot(&buf, w);
            total += a * b * xi;
            if a > 0.9 {
                break;
            }
            total += a;
        } else {
            total += w.cos() * xi;
        }
    }
    total
}

#[test]
fn a_branch_head_saves_one_tuple() {
    // w = 0.4: no x_i breaks; w = 1.3: x = 0.9 gives sin(1.17) = 0.92 > 0.9
    // and the loop stops there, after one positive and one negative element.
    let x = [0.5, -0.8, 0.9, 1.2, -0.3, 0.7];
    for w in [0.4, 1.3] {
        let (v, d) = branch_head_tuple_grad(w, &x);
        assert_eq!(v, branch_head_tuple(w, &x));
        assert_close(
            d.0,
            fd(|w| branch_head_tuple(w, &x), w),
            "branch_head_tuple dw",
        );
        let dx = fd_slice(|x| branch_head_tuple(w, x), &x);
        assert_all_close(&d.1, &dx, "branch_head_tuple dx");
    }
}
