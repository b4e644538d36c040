//! Arithmetic, bindings and parameter kinds: literals, paths, `+ - * /`, unary
//! minus, parentheses, integer casts, `let`/shadowing/`let mut`, (compound)
//! assignment, tuple destructuring, block expressions, tuple parameters and
//! outputs, inactive integer/bool parameters, `#[no_grad]`, `wrt(..)` and
//! `stop_gradient`.

mod common;

use common::*;
use tapeless::{differentiable, stop_gradient};

const PAIRS: [(f64, f64); 5] = [
    (0.7, 0.3),
    (-0.4, 1.2),
    (2.0, -0.5),
    (-1.3, -0.9),
    (0.05, 3.0),
];

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

#[track_caller]
fn check1(name: &str, f: impl Fn(f64) -> f64, g: impl Fn(f64) -> (f64, f64), points: &[f64]) {
    for &x in points {
        let (v, dx) = g(x);
        assert_eq!(v, f(x), "{name}: value at {x}");
        assert_close(dx, fd(&f, x), &format!("{name}: d/dx at {x}"));
    }
}

// ---------------------------------------------------------------- operators

#[differentiable]
fn add(x: f64, y: f64) -> f64 {
    x + y
}

#[differentiable]
fn sub(x: f64, y: f64) -> f64 {
    x - y
}

#[differentiable]
fn mul(x: f64, y: f64) -> f64 {
    x * y
}

#[differentiable]
fn div(x: f64, y: f64) -> f64 {
    x / y
}

#[differentiable]
fn neg(x: f64) -> f64 {
    -x
}

#[differentiable]
fn identity(x: f64) -> f64 {
    x
}

#[differentiable]
fn constant(x: f64) -> f64 {
    let _ = x;
    2.5
}

#[differentiable]
fn literals(x: f64) -> f64 {
    3.0 * x + 1.5 - x / 4.0 + 2.0
}

#[differentiable]
fn parens(x: f64, y: f64) -> f64 {
    (x + y) * (x - y) / (1.0 + (x * x))
}

#[differentiable]
fn neg_nested(x: f64, y: f64) -> f64 {
    -(x * -y) - (-x)
}

#[differentiable]
fn self_ops(x: f64) -> f64 {
    x * x + x / (x * x + 1.0) - x
}

#[test]
fn basic_operators() {
    // d(x+y) = (1, 1); d(x-y) = (1, -1); d(xy) = (y, x); d(x/y) = (1/y, -x/y^2)
    for &(x, y) in &PAIRS {
        assert_eq!(add_grad(x, y), (add(x, y), (1.0, 1.0)));
        assert_eq!(sub_grad(x, y), (sub(x, y), (1.0, -1.0)));
        assert_eq!(mul_grad(x, y), (mul(x, y), (y, x)));
        let (v, (dx, dy)) = div_grad(x, y);
        assert_eq!(v, div(x, y));
        assert_close(dx, 1.0 / y, "d(x/y)/dx");
        assert_close(dy, -x / (y * y), "d(x/y)/dy");
    }
    for &x in &POINTS {
        assert_eq!(neg_grad(x), (neg(x), -1.0));
        assert_eq!(identity_grad(x), (identity(x), 1.0));
        assert_eq!(constant_grad(x), (constant(x), 0.0));
        // d/dx (3x + 1.5 - x/4 + 2) = 2.75
        let (v, d) = literals_grad(x);
        assert_eq!(v, literals(x));
        assert_close(d, 2.75, "literals");
    }
    check2("parens", parens, parens_grad, &PAIRS);
    check2("neg_nested", neg_nested, neg_nested_grad, &PAIRS);
    check1("self_ops", self_ops, self_ops_grad, &POINTS);
}

// ---------------------------------------------------------------- casts

#[differentiable]
fn int_cast(x: f64, n: usize, k: i32) -> f64 {
    x * (n as f64) + (k as f64) * x * x
}

#[differentiable]
fn cast_of_loop_index(x: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..4 {
        s += x.powi(i) * (i as f64 + 0.5);
    }
    s
}

#[test]
fn integer_casts() {
    // d/dx (n x + k x^2) = n + 2 k x
    for &x in &POINTS {
        for (n, k) in [(0usize, 0i32), (3, -2), (7, 5)] {
            let (v, d) = int_cast_grad(x, n, k);
            assert_eq!(v, int_cast(x, n, k));
            assert_close(d, n as f64 + 2.0 * k as f64 * x, "int_cast");
        }
    }
    // d/dx sum_i (i + .5) x^i = sum_{i>=1} i (i + .5) x^(i-1)
    for &x in &POINTS {
        let (v, d) = cast_of_loop_index_grad(x);
        assert_eq!(v, cast_of_loop_index(x));
        assert_close(
            d,
            1.5 + 2.0 * 2.5 * x + 3.0 * 3.5 * x * x,
            "cast_of_loop_index",
        );
    }
}

// ---------------------------------------------------------------- bindings

#[differentiable]
fn lets(x: f64, y: f64) -> f64 {
    let a = x * y;
    let b = a + x;
    let c = b * a;
    c - y
}

#[differentiable]
fn shadowing(x: f64, y: f64) -> f64 {
    let x = x * y;
    let x = x + x * x;
    let y = y - x;
    x * y
}

#[differentiable]
fn shadow_in_block(x: f64) -> f64 {
    let t = x * 2.0;
    let u = {
        let t = t * t;
        t + x
    };
    t * u
}

// Written this way on purpose: the construct is what is tested.
#[allow(clippy::assign_op_pattern)]
#[differentiable]
fn let_mut_assign(x: f64, y: f64) -> f64 {
    let mut a = x;
    a = a * y;
    a = a + x * a;
    let mut b = y;
    b = a / (1.0 + b * b);
    a * b
}

#[differentiable]
fn compound(x: f64, y: f64) -> f64 {
    let mut a = x;
    a += y;
    a *= x;
    a -= y * y;
    a /= 1.0 + y * y;
    a += a * x;
    a
}

#[differentiable]
fn compound_self(x: f64) -> f64 {
    let mut a = x;
    a *= a;
    a += a;
    a -= x;
    a /= x * x + 1.0;
    a
}

// Written this way on purpose: the construct is what is tested.
#[allow(clippy::assign_op_pattern)]
#[differentiable]
fn param_reassigned(mut x: f64, y: f64) -> f64 {
    x = x * y;
    x += y;
    x * x
}

// Written this way on purpose: the construct is what is tested.
#[allow(clippy::needless_late_init)]
#[differentiable]
fn deferred_init(x: f64, y: f64) -> f64 {
    let a;
    a = x * y;
    let b: f64 = a + 1.0;
    a * b
}

#[differentiable]
fn tuple_destructure(x: f64, y: f64) -> f64 {
    let (a, b) = (x * y, x + y);
    let (c, (d, e)) = (a * b, (b - a, x));
    c + d * e
}

#[differentiable]
fn pair(x: f64, y: f64) -> (f64, f64) {
    (x * y, x + y)
}

#[differentiable]
fn tuple_from_call(x: f64, y: f64) -> f64 {
    let (a, b) = pair(x, y);
    a * b + a.sin()
}

#[differentiable]
fn tuple_field_access(x: f64, y: f64) -> f64 {
    let t = (x * x, y * x, 3.0);
    t.0 + t.1 * t.2
}

#[differentiable]
fn blocks(x: f64, y: f64) -> f64 {
    let a = {
        let t = x * y;
        t * t
    };
    let b = {
        let mut s = a;
        s += x;
        s
    };
    {
        let c = a + b;
        c * y
    }
}

// Written this way on purpose: the construct is what is tested.
#[allow(clippy::needless_return)]
#[differentiable]
fn with_return(x: f64, y: f64) -> f64 {
    let a = x * y;
    return a * a + y;
}

#[differentiable]
fn unused_work(x: f64, y: f64) -> f64 {
    let _unused = x.exp() * y;
    let also = y * y;
    let _ = also;
    x * 2.0
}

#[test]
fn bindings() {
    check2("lets", lets, lets_grad, &PAIRS);
    check2("shadowing", shadowing, shadowing_grad, &PAIRS);
    check1(
        "shadow_in_block",
        shadow_in_block,
        shadow_in_block_grad,
        &POINTS,
    );
    check2(
        "let_mut_assign",
        let_mut_assign,
        let_mut_assign_grad,
        &PAIRS,
    );
    check2("compound", compound, compound_grad, &PAIRS);
    check1("compound_self", compound_self, compound_self_grad, &POINTS);
    check2(
        "param_reassigned",
        param_reassigned,
        param_reassigned_grad,
        &PAIRS,
    );
    check2("deferred_init", deferred_init, deferred_init_grad, &PAIRS);
    check2(
        "tuple_destructure",
        tuple_destructure,
        tuple_destructure_grad,
        &PAIRS,
    );
    check2(
        "tuple_from_call",
        tuple_from_call,
        tuple_from_call_grad,
        &PAIRS,
    );
    check2(
        "tuple_field_access",
        tuple_field_access,
        tuple_field_access_grad,
        &PAIRS,
    );
    check2("blocks", blocks, blocks_grad, &PAIRS);
    check2("with_return", with_return, with_return_grad, &PAIRS);
    // d/dx 2x = 2, d/dy = 0
    for &(x, y) in &PAIRS {
        assert_eq!(unused_work_grad(x, y), (unused_work(x, y), (2.0, 0.0)));
    }
}

// ---------------------------------------------------------------- tuples in and out

#[differentiable]
fn tuple_param(p: (f64, f64), s: f64) -> f64 {
    p.0 * p.1.sin() + s * p.0
}

#[differentiable]
fn tuple_param_destructured(p: (f64, f64, f64)) -> f64 {
    let (a, b, c) = p;
    a * b + b * c + c * a
}

#[test]
fn tuple_params() {
    // d/dp0 = sin p1 + s, d/dp1 = p0 cos p1, d/ds = p0
    for &(a, b) in &PAIRS {
        for s in [-0.5, 1.5] {
            let (v, ((d0, d1), ds)) = tuple_param_grad((a, b), s);
            assert_eq!(v, tuple_param((a, b), s));
            assert_close(d0, b.sin() + s, "tuple_param d/dp.0");
            assert_close(d1, a * b.cos(), "tuple_param d/dp.1");
            assert_close(ds, a, "tuple_param d/ds");
        }
        // d/da (ab + bc + ca) = b + c, etc.
        let c = a - 2.0 * b;
        let (v, (da, db, dc)) = tuple_param_destructured_grad((a, b, c));
        assert_eq!(v, tuple_param_destructured((a, b, c)));
        assert_close(da, b + c, "destructured d/da");
        assert_close(db, a + c, "destructured d/db");
        assert_close(dc, a + b, "destructured d/dc");
    }
}

#[differentiable]
fn polar(r: f64, t: f64) -> (f64, f64) {
    (r * t.cos(), r * t.sin())
}

#[differentiable]
fn three_outputs(x: f64, y: f64) -> (f64, f64, f64) {
    let s = x + y;
    (s * s, x * y, (x - y).exp())
}

#[differentiable]
fn nested_output(x: f64) -> (f64, (f64, f64)) {
    (x, (x * x, x.sin()))
}

#[test]
fn tuple_outputs() {
    // The VJP with cotangent (u, v) of the polar map is
    //   d/dr = u cos t + v sin t,  d/dt = -u r sin t + v r cos t.
    for &(r, t) in &PAIRS {
        for (u, w) in [(1.0, 0.0), (0.0, 1.0), (0.3, -1.7)] {
            let (v, (dr, dt)) = polar_adjoint(r, t, (u, w));
            assert_eq!(v, polar(r, t));
            assert_close(dr, u * t.cos() + w * t.sin(), "polar d/dr");
            assert_close(dt, -u * r * t.sin() + w * r * t.cos(), "polar d/dt");
        }
    }
    // Against FD of <d_out, f(x)>.
    for &(x, y) in &PAIRS {
        let d = (0.4, -1.1, 0.7);
        let dot = |x: f64, y: f64| {
            let o = three_outputs(x, y);
            d.0 * o.0 + d.1 * o.1 + d.2 * o.2
        };
        let (v, (dx, dy)) = three_outputs_adjoint(x, y, d);
        assert_eq!(v, three_outputs(x, y));
        assert_close(dx, fd(|x| dot(x, y), x), "three_outputs d/dx");
        assert_close(dy, fd(|y| dot(x, y), y), "three_outputs d/dy");
    }
    // d/dx <(a, (b, c)), (x, (x^2, sin x))> = a + 2bx + c cos x
    for &x in &POINTS {
        let (v, dx) = nested_output_adjoint(x, (0.5, (-2.0, 3.0)));
        assert_eq!(v, nested_output(x));
        assert_close(dx, 0.5 - 4.0 * x + 3.0 * x.cos(), "nested_output");
    }
}

#[test]
fn scalar_adjoint_scales_the_gradient() {
    for &(x, y) in &PAIRS {
        let (v, (dx, dy)) = lets_grad(x, y);
        for s in [0.0, -2.0, 0.37] {
            let (va, (ax, ay)) = lets_adjoint(x, y, s);
            assert_eq!(va, v);
            assert_close(ax, s * dx, "adjoint d/dx");
            assert_close(ay, s * dy, "adjoint d/dy");
        }
    }
}

// ---------------------------------------------------------------- activity

#[differentiable]
fn rides_along(x: f64, n: usize, flag: bool, k: i64, y: f64) -> f64 {
    let s = if flag { x * y } else { x + y };
    s * (n as f64) + (k as f64) * y
}

#[differentiable]
fn u32_and_i8(x: f64, a: u32, b: i8) -> f64 {
    x * f64::from(a) - f64::from(b) * x * x
}

#[differentiable]
fn no_grad_param(x: f64, #[no_grad] scale: f64) -> f64 {
    scale * x * x + scale.sin()
}

#[differentiable(wrt(y))]
fn wrt_second(x: f64, y: f64, z: f64) -> f64 {
    x * y * z + y.sin()
}

#[differentiable(wrt(x, z))]
fn wrt_two(x: f64, y: f64, z: f64) -> f64 {
    x * y + z * z * y
}

#[differentiable]
fn stopped(x: f64, y: f64) -> f64 {
    let s = stop_gradient(x * y);
    s * x + y
}

#[differentiable]
fn stopped_path(x: f64) -> f64 {
    tapeless::stop_gradient(x.exp()) + x * x
}

#[differentiable]
fn stopped_normalise(x: f64, y: f64) -> f64 {
    // A classic use: normalise by a constant-treated norm.
    let n = stop_gradient((x * x + y * y).sqrt());
    x / n + y
}

#[test]
fn activity() {
    // d/dx (s n + k y) where s = xy or x+y.
    for &(x, y) in &PAIRS {
        for (n, flag, k) in [(2usize, true, -3i64), (5, false, 4)] {
            let (v, (dx, dy)) = rides_along_grad(x, n, flag, k, y);
            assert_eq!(v, rides_along(x, n, flag, k, y));
            let nf = n as f64;
            let (ex, ey) = if flag { (y * nf, x * nf) } else { (nf, nf) };
            assert_close(dx, ex, "rides_along d/dx");
            assert_close(dy, ey + k as f64, "rides_along d/dy");
        }
        // d/dx (a x - b x^2) = a - 2 b x
        let (v, d) = u32_and_i8_grad(x, 3, -2);
        assert_eq!(v, u32_and_i8(x, 3, -2));
        assert_close(d, 3.0 + 4.0 * x, "u32_and_i8");
        // #[no_grad] scale: gradient is only d/dx = 2 scale x.
        let (v, d) = no_grad_param_grad(x, y);
        assert_eq!(v, no_grad_param(x, y));
        assert_close(d, 2.0 * y * x, "no_grad");
        // wrt(y): d/dy (xyz + sin y) = xz + cos y
        let z = x - y;
        let (v, d) = wrt_second_grad(x, y, z);
        assert_eq!(v, wrt_second(x, y, z));
        assert_close(d, x * z + y.cos(), "wrt(y)");
        // wrt(x, z): (y, 2zy)
        let (v, (dx, dz)) = wrt_two_grad(x, y, z);
        assert_eq!(v, wrt_two(x, y, z));
        assert_close(dx, y, "wrt(x, z) d/dx");
        assert_close(dz, 2.0 * z * y, "wrt(x, z) d/dz");
        // stop_gradient(xy) * x + y: d/dx = xy, d/dy = 1
        let (v, (dx, dy)) = stopped_grad(x, y);
        assert_eq!(v, stopped(x, y));
        assert_close(dx, x * y, "stopped d/dx");
        assert_close(dy, 1.0, "stopped d/dy");
        // x/n + y with n constant: (1/n, 1)
        let (v, (dx, dy)) = stopped_normalise_grad(x, y);
        assert_eq!(v, stopped_normalise(x, y));
        assert_close(dx, 1.0 / (x * x + y * y).sqrt(), "stopped_normalise d/dx");
        assert_close(dy, 1.0, "stopped_normalise d/dy");
    }
    for &x in &POINTS {
        // d/dx (stop(e^x) + x^2) = 2x
        let (v, d) = stopped_path_grad(x);
        assert_eq!(v, stopped_path(x));
        assert_close(d, 2.0 * x, "stopped_path");
    }
}
