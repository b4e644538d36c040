//! Calls: differentiable functions calling each other (scalars, slices,
//! tuples), recursion, calls whose arguments are all inactive, methods on a
//! `#[derive(Differentiable)]` struct (`&self`, `self.g(..)` inside),
//! `#[derivative(of = g)]` custom adjoints, and `wrt(self)`.

// Index loops are a construct under test.
#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use tapeless::{derivative, differentiable, Differentiable};

// ---------------------------------------------------------------- free functions

#[differentiable]
fn square(x: f64) -> f64 {
    x * x
}

#[differentiable]
fn poly(x: f64, y: f64) -> f64 {
    // x^2 y + sin(y)
    square(x) * y + y.sin()
}

#[differentiable]
fn calls_twice(x: f64, y: f64) -> f64 {
    // the same callee at two sites, one nested in the other
    poly(x, y) * poly(y, x) + square(square(x - y))
}

#[differentiable]
fn scale_sum(x: &[f64], s: f64) -> f64 {
    let mut t = 0.0;
    for v in x.iter() {
        t += v * s;
    }
    t
}

#[differentiable]
fn calls_with_slice(x: &[f64], w: f64) -> f64 {
    let a = scale_sum(x, w);
    let b = scale_sum(x, a);
    a * b
}

#[differentiable]
fn split(x: f64, y: f64) -> (f64, f64) {
    (x * y, x / y)
}

#[differentiable]
fn calls_tuple(x: f64, y: f64) -> f64 {
    let (p, q) = split(x, y);
    let r = split(p, q);
    r.0 + r.1 * p
}

#[differentiable]
fn weight(n: usize) -> f64 {
    (n as f64).sqrt() + 1.0
}

#[differentiable]
fn calls_inactive_only(x: f64, n: usize) -> f64 {
    // `weight(n)` has no active argument: a constant here
    x * weight(n) + weight(n + 1) * weight(2)
}

#[differentiable]
fn mixed_args(x: f64, k: usize, flag: bool) -> f64 {
    if flag {
        x.powi(k as i32)
    } else {
        -x
    }
}

#[differentiable]
fn calls_mixed(x: f64, y: f64) -> f64 {
    mixed_args(x * y, 3, true) + mixed_args(y, 2, false) * x
}

#[differentiable]
fn calls_with_constant_arg(x: f64) -> f64 {
    // one argument active, one a literal
    poly(x, 2.0) + poly(0.5, x)
}

#[differentiable]
fn call_in_loop(x: &[f64], w: f64) -> f64 {
    let mut h = 0.0;
    for i in 0..x.len() {
        h = poly(h + x[i], w).tanh();
    }
    h
}

#[differentiable]
fn call_in_branch(x: f64, y: f64) -> f64 {
    if x > y {
        square(x - y)
    } else {
        poly(y, x)
    }
}

#[differentiable]
fn path_call(x: f64) -> f64 {
    self::square(x) + crate::square(x * 2.0)
}

mod inner {
    use tapeless::differentiable;

    #[differentiable]
    pub fn cube(x: f64) -> f64 {
        x * x * x
    }
}

#[differentiable]
fn calls_module_fn(x: f64) -> f64 {
    inner::cube(x) + inner::cube(x * x)
}

#[test]
fn free_function_calls() {
    let pairs = [(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5), (-1.3, -0.9)];
    for &(x, y) in &pairs {
        // d/dx x^2 y + sin y = 2xy ; d/dy = x^2 + cos y
        let (v, (dx, dy)) = poly_grad(x, y);
        assert_eq!(v, poly(x, y));
        assert_close(dx, 2.0 * x * y, "poly dx");
        assert_close(dy, x * x + y.cos(), "poly dy");
        for (name, f, g) in [
            (
                "calls_twice",
                calls_twice as fn(f64, f64) -> f64,
                calls_twice_grad as fn(f64, f64) -> (f64, (f64, f64)),
            ),
            ("calls_tuple", calls_tuple, calls_tuple_grad),
            ("calls_mixed", calls_mixed, calls_mixed_grad),
            ("call_in_branch", call_in_branch, call_in_branch_grad),
        ] {
            let (v, (dx, dy)) = g(x, y);
            assert_eq!(v, f(x, y), "{name} value");
            assert_close(dx, fd(|x| f(x, y), x), &format!("{name} dx at ({x}, {y})"));
            assert_close(dy, fd(|y| f(x, y), y), &format!("{name} dy at ({x}, {y})"));
        }
    }
    for &x in &POINTS {
        for n in [0usize, 3] {
            // d/dx = weight(n)
            let (v, d) = calls_inactive_only_grad(x, n);
            assert_eq!(v, calls_inactive_only(x, n));
            assert_close(d, weight(n), "calls_inactive_only");
        }
        // d/dx (2x^2 + sin 2 + 0.25 x + sin x) = 4x + 0.25 + cos x
        let (v, d) = calls_with_constant_arg_grad(x);
        assert_eq!(v, calls_with_constant_arg(x));
        assert_close(d, 4.0 * x + 0.25 + x.cos(), "calls_with_constant_arg");
        // x^2 + 4x^2: 10x
        let (v, d) = path_call_grad(x);
        assert_eq!(v, path_call(x));
        assert_close(d, 10.0 * x, "path_call");
        // x^3 + x^6: 3x^2 + 6x^5
        let (v, d) = calls_module_fn_grad(x);
        assert_eq!(v, calls_module_fn(x));
        assert_close(d, 3.0 * x * x + 6.0 * x.powi(5), "calls_module_fn");
    }
    for x in [vec![0.5, -1.2, 0.8], vec![0.3, 0.7, -1.5, 0.1]] {
        for w in [0.6, -1.1] {
            let (v, (dx, dw)) = calls_with_slice_grad(&x, w);
            assert_eq!(v, calls_with_slice(&x, w));
            assert_all_close(
                &dx,
                &fd_slice(|x| calls_with_slice(x, w), &x),
                "calls_with_slice dx",
            );
            assert_close(
                dw,
                fd(|w| calls_with_slice(&x, w), w),
                "calls_with_slice dw",
            );
            let (v, (dx, dw)) = call_in_loop_grad(&x, w);
            assert_eq!(v, call_in_loop(&x, w));
            assert_all_close(
                &dx,
                &fd_slice(|x| call_in_loop(x, w), &x),
                "call_in_loop dx",
            );
            assert_close(dw, fd(|w| call_in_loop(&x, w), w), "call_in_loop dw");
        }
    }
}

// ---------------------------------------------------------------- recursion

#[differentiable]
fn power(x: f64, n: u32) -> f64 {
    if n == 0 {
        1.0
    } else {
        x * power(x, n - 1)
    }
}

#[differentiable]
fn fast_power(x: f64, n: u32) -> f64 {
    // exponentiation by squaring: two recursive shapes
    if n == 0 {
        1.0
    } else if n % 2 == 0 {
        let h = fast_power(x, n / 2);
        h * h
    } else {
        x * fast_power(x, n - 1)
    }
}

#[differentiable]
fn series(x: &[f64], i: usize) -> f64 {
    // recursion over a slice: x_i (1 + x_{i+1} (1 + ...))
    if i >= x.len() {
        0.0
    } else {
        x[i] * (1.0 + series(x, i + 1))
    }
}

#[differentiable]
fn is_even_f(x: f64, n: u32) -> f64 {
    if n == 0 {
        x
    } else {
        is_odd_f(x * 0.5, n - 1).sin()
    }
}

#[differentiable]
fn is_odd_f(x: f64, n: u32) -> f64 {
    if n == 0 {
        x * x
    } else {
        is_even_f(x + 1.0, n - 1) * x
    }
}

#[test]
fn recursion() {
    // d/dx x^n = n x^(n-1)
    for &x in &POINTS {
        for n in 0..7 {
            let (v, d) = power_grad(x, n);
            assert_eq!(v, power(x, n));
            let e = if n == 0 {
                0.0
            } else {
                n as f64 * x.powi(n as i32 - 1)
            };
            assert_close(d, e, &format!("power n={n} x={x}"));
            let (v, d) = fast_power_grad(x, n);
            assert_eq!(v, fast_power(x, n));
            assert_close(d, e, &format!("fast_power n={n} x={x}"));
        }
        for n in 0..5 {
            let (v, d) = is_even_f_grad(x, n);
            assert_eq!(v, is_even_f(x, n));
            assert_close(
                d,
                fd(|x| is_even_f(x, n), x),
                &format!("mutual recursion n={n}"),
            );
        }
    }
    for x in [vec![0.5, -1.2, 0.8], vec![0.3, 0.7, -1.5, 0.1]] {
        let (v, d) = series_grad(&x, 0);
        assert_eq!(v, series(&x, 0));
        assert_all_close(&d, &fd_slice(|x| series(x, 0), &x), "series");
    }
    // All inputs in one vector for the finite differences: x, then a, b.
    let f = |p: &[f64], n: usize| shuffled(&p[..3], p[3], p[4], n);
    for n in 0..6 {
        let p = [0.5, -1.2, 0.8, 0.7, -0.4];
        let (v, (dx, da, db)) = shuffled_grad(&p[..3], p[3], p[4], n);
        assert_eq!(v, f(&p, n));
        let mut d = dx.clone();
        d.extend([da, db]);
        assert_all_close(&d, &fd_slice(|p| f(p, n), &p), &format!("shuffled n={n}"));
    }
}

/// A recursion whose reverse sweep lends its own gradient of `x` (passed
/// through) to the recursive call, while `a` and `b` arrive swapped, `a`
/// twice, and rescaled: those get fresh zeros, added afterwards. The value is
/// a polynomial in `x`, `a`, `b`; the test compares with finite differences
/// in all of them.
#[differentiable]
fn shuffled(x: &[f64], a: f64, b: f64, n: usize) -> f64 {
    if n == 0 {
        a * b + x[0]
    } else if n % 2 == 0 {
        shuffled(x, a, a * x[n % x.len()], n - 1) * b
    } else {
        shuffled(x, b, a, n - 1) + a * x[1]
    }
}

// ---------------------------------------------------------------- custom derivatives

/// A "foreign" function the macro cannot look into.
fn softabs(x: f64) -> f64 {
    (x * x + 1e-2).sqrt()
}

#[derivative(of = softabs)]
fn softabs_custom_adjoint(x: f64, d_out: f64) -> (f64, f64) {
    let v = softabs(x);
    (v, d_out * x / v)
}

#[differentiable]
fn uses_softabs(x: f64, y: f64) -> f64 {
    softabs(x - y) * y + softabs(x * 2.0)
}

/// A rule that is deliberately not the true derivative, so the test can see
/// the custom adjoint is what gets used: d/dx fake(x) := 10 (true: 1).
fn fake(x: f64) -> f64 {
    x
}

#[derivative(of = fake)]
fn fake_adj(x: f64, d_out: f64) -> (f64, f64) {
    (fake(x), 10.0 * d_out)
}

#[differentiable]
fn uses_fake(x: f64) -> f64 {
    fake(x * x) + x
}

/// Two-argument custom rule, with an inactive integer riding along.
fn wsum(a: f64, b: f64, k: usize) -> f64 {
    a * k as f64 + b.exp()
}

#[derivative(of = wsum)]
fn wsum_adj(a: f64, b: f64, k: usize, d_out: f64) -> (f64, (f64, f64)) {
    (wsum(a, b, k), (d_out * k as f64, d_out * b.exp()))
}

#[differentiable]
fn uses_wsum(x: f64, y: f64) -> f64 {
    wsum(x * y, y, 3) * x
}

/// A custom rule over a slice input.
fn l2(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

#[derivative(of = l2)]
fn l2_adj(x: &[f64], d_out: f64) -> (f64, Vec<f64>) {
    let n = l2(x);
    (n, x.iter().map(|v| d_out * v / n).collect())
}

#[differentiable]
fn uses_l2(x: &[f64], s: f64) -> f64 {
    l2(x) * s + s * s
}

#[test]
fn custom_derivatives() {
    for &(x, y) in &[(0.7, 0.3), (-0.4, 1.2), (2.0, -0.5)] {
        let (v, (dx, dy)) = uses_softabs_grad(x, y);
        assert_eq!(v, uses_softabs(x, y));
        assert_close(dx, fd(|x| uses_softabs(x, y), x), "uses_softabs dx");
        assert_close(dy, fd(|y| uses_softabs(x, y), y), "uses_softabs dy");
        // d/dx (3xy + e^y) x = 6xy + e^y, d/dy = 3x^2 + x e^y
        let (v, (dx, dy)) = uses_wsum_grad(x, y);
        assert_eq!(v, uses_wsum(x, y));
        assert_close(dx, 6.0 * x * y + y.exp(), "uses_wsum dx");
        assert_close(dy, 3.0 * x * x + x * y.exp(), "uses_wsum dy");
    }
    for &x in &POINTS {
        // with the custom rule: 10 * 2x + 1
        let (v, d) = uses_fake_grad(x);
        assert_eq!(v, uses_fake(x));
        assert_close(d, 20.0 * x + 1.0, "uses_fake (custom rule must be used)");
    }
    let x = vec![0.5, -1.2, 0.8];
    for s in [0.7, -2.0] {
        let (v, (dx, ds)) = uses_l2_grad(&x, s);
        assert_eq!(v, uses_l2(&x, s));
        assert_all_close(&dx, &fd_slice(|x| uses_l2(x, s), &x), "uses_l2 dx");
        assert_close(ds, l2(&x) + 2.0 * s, "uses_l2 ds");
    }
}

// ---------------------------------------------------------------- methods

#[derive(Differentiable, Clone, Debug)]
struct Poly {
    coef: Vec<f64>,
    shift: f64,
    #[no_grad]
    degree: usize,
}

impl Poly {
    #[differentiable]
    fn eval(&self, x: f64) -> f64 {
        let mut s = 0.0;
        for i in 0..=self.degree {
            s += self.coef[i] * (x - self.shift).powi(i as i32);
        }
        s
    }

    #[differentiable]
    fn loss(&self, x: f64, y: f64) -> f64 {
        // calls another method through self
        let e = self.eval(x) - y;
        e * e
    }

    #[differentiable]
    fn batch_loss(&self, xs: &[f64], ys: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..xs.len() {
            s += self.loss(xs[i], ys[i]);
        }
        s / xs.len() as f64
    }

    #[differentiable(wrt(self))]
    fn loss_wrt_self(&self, x: f64, y: f64) -> f64 {
        let e = self.eval(x) - y;
        e * e * 0.5
    }

    #[differentiable]
    fn uses_free_fn(&self, x: f64) -> f64 {
        square(self.shift * x) + self.eval(x)
    }
}

fn poly_model() -> Poly {
    Poly {
        coef: vec![0.5, -1.0, 2.0, 0.25],
        shift: 0.3,
        degree: 3,
    }
}

/// FD of `f` over every active field of `Poly`: (d/dcoef, d/dshift).
fn fd_poly(p: &Poly, f: impl Fn(&Poly) -> f64) -> (Vec<f64>, f64) {
    let dcoef = fd_slice(
        |c| {
            let mut q = p.clone();
            q.coef = c.to_vec();
            f(&q)
        },
        &p.coef,
    );
    let dshift = fd(
        |s| {
            let mut q = p.clone();
            q.shift = s;
            f(&q)
        },
        p.shift,
    );
    (dcoef, dshift)
}

#[test]
fn methods() {
    let p = poly_model();
    for &x in &POINTS {
        let (v, (g, dx)) = p.eval_grad(x);
        assert_eq!(v, p.eval(x));
        // d/dc_i = (x - s)^i
        let e: Vec<f64> = (0..4).map(|i| (x - p.shift).powi(i)).collect();
        assert_all_close(&g.coef, &e, "eval d/dcoef");
        let (_, ds) = fd_poly(&p, |q| q.eval(x));
        assert_close(g.shift, ds, "eval d/dshift");
        assert_close(dx, fd(|x| p.eval(x), x), "eval dx");
        assert_eq!(g.degree, p.degree, "no_grad field carried into the tangent");

        for y in [-1.0, 0.5] {
            let (v, (g, dx, dy)) = p.loss_grad(x, y);
            assert_eq!(v, p.loss(x, y));
            let (dc, ds) = fd_poly(&p, |q| q.loss(x, y));
            assert_all_close(&g.coef, &dc, "loss d/dcoef");
            assert_close(g.shift, ds, "loss d/dshift");
            assert_close(dx, fd(|x| p.loss(x, y), x), "loss dx");
            assert_close(dy, -2.0 * (p.eval(x) - y), "loss dy");

            // wrt(self): the gradient is the model's tangent alone
            let (v, g): (f64, Poly) = p.loss_wrt_self_grad(x, y);
            assert_eq!(v, p.loss_wrt_self(x, y));
            let (dc, ds) = fd_poly(&p, |q| q.loss_wrt_self(x, y));
            assert_all_close(&g.coef, &dc, "loss_wrt_self d/dcoef");
            assert_close(g.shift, ds, "loss_wrt_self d/dshift");
        }

        let (v, (g, dx)) = p.uses_free_fn_grad(x);
        assert_eq!(v, p.uses_free_fn(x));
        let (dc, ds) = fd_poly(&p, |q| q.uses_free_fn(x));
        assert_all_close(&g.coef, &dc, "uses_free_fn d/dcoef");
        assert_close(g.shift, ds, "uses_free_fn d/dshift");
        assert_close(dx, fd(|x| p.uses_free_fn(x), x), "uses_free_fn dx");
    }
    let xs = [0.1, -0.5, 1.2, 0.8];
    let ys = [1.0, 0.0, -0.5, 2.0];
    let (v, (g, dxs, dys)) = p.batch_loss_grad(&xs, &ys);
    assert_eq!(v, p.batch_loss(&xs, &ys));
    let (dc, ds) = fd_poly(&p, |q| q.batch_loss(&xs, &ys));
    assert_all_close(&g.coef, &dc, "batch_loss d/dcoef");
    assert_close(g.shift, ds, "batch_loss d/dshift");
    assert_all_close(
        &dxs,
        &fd_slice(|xs| p.batch_loss(xs, &ys), &xs),
        "batch_loss dxs",
    );
    assert_all_close(
        &dys,
        &fd_slice(|ys| p.batch_loss(&xs, ys), &ys),
        "batch_loss dys",
    );
}
