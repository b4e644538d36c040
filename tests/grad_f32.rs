//! `f32` functions: every math method in method and path form, arithmetic,
//! casts, slices, arrays, `Vec`s, loops and calls. The oracle is the
//! derivative of the same function written in `f64` (analytic or central
//! finite differences in f64), compared with an f32-sized tolerance.
//!
//! Float literals inside the differentiable f32 functions carry an `f32`
//! suffix: unsuffixed ones do not compile yet
//! (wip/bugs/00-f32-unsuffixed-float-literals.rs).

// Index loops are a construct under test.
#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use tapeless::differentiable;

/// Each method `m`: `m(x) = x.m()` (f32, differentiable) and `p(x) = f32::m(x) * x`;
/// the oracle is the analytic f64 derivative at the same point.
macro_rules! unary_f32 {
    ($($name:ident: $method:ident on $points:expr, |$x:ident| $d:expr;)*) => {$(
        // The hidden `m_pullback` trips dead_code when written through
        // macro_rules (wip/bugs/09-pullback-dead-code-in-macro-rules.rs).
        #[allow(dead_code)]
        mod $name {
            use super::*;
            #[differentiable]
            pub fn m(x: f32) -> f32 {
                x.$method()
            }
            #[differentiable]
            pub fn p(x: f32) -> f32 {
                f32::$method(x) * x
            }
            fn deriv($x: f64) -> f64 {
                $d
            }
            #[test]
            fn method_and_path_form() {
                let name = stringify!($method);
                for &x in &$points {
                    let x: f32 = x;
                    let x64 = f64::from(x);
                    let (v, d) = m_grad(x);
                    assert_eq!(v.to_bits(), m(x).to_bits(), "{name}: value at {x}");
                    assert_close_f32(d, deriv(x64), &format!("{name} at {x}"));
                    let (v, d) = p_grad(x);
                    assert_eq!(v.to_bits(), p(x).to_bits(), "f32::{name}(x) * x: value at {x}");
                    let e = deriv(x64) * x64 + f64::$method(x64);
                    assert_close_f32(d, e, &format!("f32::{name}(x) * x at {x}"));
                }
            }
        }
    )*};
}

const PTS: [f32; 6] = [-1.7, -0.6, -0.05, 0.3, 0.9, 2.2];
const UNIT: [f32; 5] = [-0.8, -0.35, 0.05, 0.4, 0.75];
const POS: [f32; 5] = [0.2, 0.7, 1.3, 2.5, 4.0];
const NONZERO: [f32; 6] = [-2.5, -0.6, -0.1, 0.2, 0.9, 3.0];
const OFF_GRID: [f32; 6] = [-2.3, -1.6, -0.2, 0.3, 1.7, 4.1];
const ACOSH: [f32; 4] = [1.2, 1.5, 3.0, 10.0];
const LN1P: [f32; 5] = [-0.7, -0.2, 0.1, 1.5, 6.0];
const CBRT: [f32; 5] = [-8.0, -0.3, 0.05, 1.0, 27.0];

unary_f32! {
    sin: sin on PTS, |x| x.cos();
    cos: cos on PTS, |x| -x.sin();
    tan: tan on PTS, |x| 1.0 / (x.cos() * x.cos());
    asin: asin on UNIT, |x| 1.0 / (1.0 - x * x).sqrt();
    acos: acos on UNIT, |x| -1.0 / (1.0 - x * x).sqrt();
    atan: atan on PTS, |x| 1.0 / (1.0 + x * x);
    sinh: sinh on PTS, |x| x.cosh();
    cosh: cosh on PTS, |x| x.sinh();
    tanh: tanh on PTS, |x| 1.0 - x.tanh() * x.tanh();
    asinh: asinh on PTS, |x| 1.0 / (x * x + 1.0).sqrt();
    acosh: acosh on ACOSH, |x| 1.0 / (x * x - 1.0).sqrt();
    atanh: atanh on UNIT, |x| 1.0 / (1.0 - x * x);
    exp: exp on PTS, |x| x.exp();
    exp2: exp2 on PTS, |x| x.exp2() * std::f64::consts::LN_2;
    exp_m1: exp_m1 on PTS, |x| x.exp();
    ln: ln on POS, |x| 1.0 / x;
    ln_1p: ln_1p on LN1P, |x| 1.0 / (1.0 + x);
    log2: log2 on POS, |x| 1.0 / (x * std::f64::consts::LN_2);
    log10: log10 on POS, |x| 1.0 / (x * std::f64::consts::LN_10);
    sqrt: sqrt on POS, |x| 0.5 / x.sqrt();
    cbrt: cbrt on CBRT, |x| 1.0 / (3.0 * x.cbrt() * x.cbrt());
    abs: abs on NONZERO, |x| x.signum();
    recip: recip on NONZERO, |x| -1.0 / (x * x);
    to_degrees: to_degrees on PTS, |_x| 180.0 / std::f64::consts::PI;
    to_radians: to_radians on PTS, |_x| std::f64::consts::PI / 180.0;
    fract: fract on OFF_GRID, |_x| 1.0;
    signum: signum on NONZERO, |_x| 0.0;
    floor: floor on OFF_GRID, |_x| 0.0;
    ceil: ceil on OFF_GRID, |_x| 0.0;
    round: round on OFF_GRID, |_x| 0.0;
    trunc: trunc on OFF_GRID, |_x| 0.0;
}

// ---------------------------------------------------------------- binary and ternary methods

#[differentiable]
fn binaries(x: f32, y: f32) -> f32 {
    x.atan2(y) + f32::hypot(x, y) + x.abs().powf(y) * 0.5f32 + x.max(y) - f32::min(x, y * 2.0f32)
        + x.powi(3)
        + (x * x + 1.0f32).log(y * y + 2.0f32)
}

fn binaries64(x: f64, y: f64) -> f64 {
    x.atan2(y) + f64::hypot(x, y) + x.abs().powf(y) * 0.5 + x.max(y) - f64::min(x, y * 2.0)
        + x.powi(3)
        + (x * x + 1.0).log(y * y + 2.0)
}

#[differentiable]
fn ternaries(x: f32, a: f32, b: f32) -> f32 {
    x.mul_add(a, b) + f32::clamp(x * a, -1.0f32, 1.0f32) + x.clamp(b, a + 5.0f32)
}

fn ternaries64(x: f64, a: f64, b: f64) -> f64 {
    x.mul_add(a, b) + f64::clamp(x * a, -1.0, 1.0) + x.clamp(b, a + 5.0)
}

#[test]
fn multi_argument_methods() {
    for &(x, y) in &[(0.7f32, 0.3f32), (-0.4, 1.2), (2.0, -0.5), (-1.3, -0.9)] {
        let (v, (dx, dy)) = binaries_grad(x, y);
        assert_eq!(v, binaries(x, y));
        let (x64, y64) = (f64::from(x), f64::from(y));
        assert_close_f32(dx, fd(|x| binaries64(x, y64), x64), "binaries dx");
        assert_close_f32(dy, fd(|y| binaries64(x64, y), y64), "binaries dy");
    }
    for p in [
        [0.5f32, -1.5, 2.0],
        [-2.0, 0.3, -0.7],
        [1.1, 1.2, -1.3],
        [0.2, 0.4, 0.1],
    ] {
        let (v, (d0, d1, d2)) = ternaries_grad(p[0], p[1], p[2]);
        assert_eq!(v, ternaries(p[0], p[1], p[2]));
        let q = p.map(f64::from);
        let e = fd_array(|q: [f64; 3]| ternaries64(q[0], q[1], q[2]), q);
        assert_close_f32(d0, e[0], "ternaries dx");
        assert_close_f32(d1, e[1], "ternaries da");
        assert_close_f32(d2, e[2], "ternaries db");
    }
}

// ---------------------------------------------------------------- arithmetic, casts, mixing

#[differentiable]
fn arith(x: f32, y: f32, n: i32) -> f32 {
    let mut a = (x + y) * (x - y) / (1.0f32 + x * x);
    a -= -y * n as f32;
    a *= 0.5f32;
    a += 2.0f32;
    a / (y * y + 1.0f32)
}

fn arith64(x: f64, y: f64, n: i32) -> f64 {
    let mut a = (x + y) * (x - y) / (1.0 + x * x);
    a -= -y * n as f64;
    a *= 0.5;
    a += 2.0;
    a / (y * y + 1.0)
}

#[differentiable]
fn branchy(x: f32, y: f32) -> f32 {
    if x > y {
        (x - y).sqrt() * y
    } else if x < -1.0f32 {
        x.exp()
    } else {
        y * y - x
    }
}

fn branchy64(x: f64, y: f64) -> f64 {
    if x > y {
        (x - y).sqrt() * y
    } else if x < -1.0 {
        x.exp()
    } else {
        y * y - x
    }
}

#[differentiable]
fn to_f64_inside(x: f32) -> f32 {
    // cast between float types inside the function
    let wide = x as f64;
    let y = (wide * wide).sin();
    y as f32 + x
}

#[test]
fn arithmetic_and_branches() {
    for &(x, y) in &[
        (0.7f32, 0.3f32),
        (0.3, 0.7),
        (-0.4, 1.2),
        (2.0, -0.5),
        (-1.3, -0.9),
        (-1.6, 2.0),
    ] {
        let (x64, y64) = (f64::from(x), f64::from(y));
        for n in [-2, 0, 3] {
            let (v, (dx, dy)) = arith_grad(x, y, n);
            assert_eq!(v, arith(x, y, n));
            assert_close_f32(dx, fd(|x| arith64(x, y64, n), x64), "arith dx");
            assert_close_f32(dy, fd(|y| arith64(x64, y, n), y64), "arith dy");
        }
        let (v, (dx, dy)) = branchy_grad(x, y);
        assert_eq!(v, branchy(x, y));
        assert_close_f32(dx, fd(|x| branchy64(x, y64), x64), "branchy dx");
        assert_close_f32(dy, fd(|y| branchy64(x64, y), y64), "branchy dy");
    }
    for &x in &PTS {
        // d/dx (sin(x^2) + x) = 2x cos(x^2) + 1
        let (v, d) = to_f64_inside_grad(x);
        assert_eq!(v, to_f64_inside(x));
        let x64 = f64::from(x);
        assert_close_f32(d, 2.0 * x64 * (x64 * x64).cos() + 1.0, "to_f64_inside");
    }
}

// ---------------------------------------------------------------- containers and loops

#[differentiable]
fn slice_loss(w: &[f32], x: &[f32], y: f32) -> f32 {
    let mut z = 0.0f32;
    for (a, b) in w.iter().zip(x.iter()) {
        z += a * b;
    }
    let e = z.tanh() - y;
    e * e
}

fn slice_loss64(w: &[f64], x: &[f64], y: f64) -> f64 {
    let z: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum();
    let e = z.tanh() - y;
    e * e
}

#[differentiable]
fn array_fn(x: [f32; 3], m: &[[f32; 3]; 2]) -> f32 {
    let mut out = [0.0f32; 2];
    for i in 0..2 {
        for j in 0..3 {
            out[i] += m[i][j] * x[j];
        }
    }
    out[0] * out[1]
}

fn array_fn64(x: [f64; 3], m: &[[f64; 3]; 2]) -> f64 {
    let o: Vec<f64> = (0..2)
        .map(|i| (0..3).map(|j| m[i][j] * x[j]).sum())
        .collect();
    o[0] * o[1]
}

#[differentiable]
fn vec_fn(x: Vec<f32>) -> f32 {
    let mut buf = vec![0.0f32; x.len()];
    let mut s = 0.0f32;
    for i in 0..x.len() {
        buf[i] = x[i].exp();
        s += buf[i];
    }
    s.ln()
}

fn vec_fn64(x: &[f64]) -> f64 {
    x.iter().map(|v| v.exp()).sum::<f64>().ln()
}

#[differentiable]
fn recur(x: f32, n: u32) -> f32 {
    if n == 0 {
        x
    } else {
        recur(x, n - 1).sin() * x
    }
}

fn recur64(x: f64, n: u32) -> f64 {
    if n == 0 {
        x
    } else {
        recur64(x, n - 1).sin() * x
    }
}

#[differentiable]
fn vec_out(x: &[f32], s: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for i in 0..x.len() {
        out[i] = x[i] * s + s * s;
    }
    out
}

#[test]
fn containers_and_loops() {
    let w = [0.5f32, -1.2, 0.8];
    let x = [0.3f32, 0.7, -1.5];
    let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for y in [0.2f32, -0.9] {
        let (v, (dw, dx, dy)) = slice_loss_grad(&w, &x, y);
        assert_eq!(v, slice_loss(&w, &x, y));
        let y64 = f64::from(y);
        let ew = fd_slice(|w| slice_loss64(w, &x64, y64), &w64);
        let ex = fd_slice(|x| slice_loss64(&w64, x, y64), &x64);
        for i in 0..3 {
            assert_close_f32(dw[i], ew[i], &format!("slice_loss dw[{i}]"));
            assert_close_f32(dx[i], ex[i], &format!("slice_loss dx[{i}]"));
        }
        assert_close_f32(
            dy,
            fd(|y| slice_loss64(&w64, &x64, y), y64),
            "slice_loss dy",
        );
    }

    let m = [[1.0f32, 2.0, -0.5], [0.3, -1.0, 0.8]];
    let m64 = m.map(|r| r.map(f64::from));
    let xa = [0.7f32, -0.2, 1.1];
    let (v, (dx, dm)) = array_fn_grad(xa, &m);
    assert_eq!(v, array_fn(xa, &m));
    let ex = fd_array(|x| array_fn64(x, &m64), xa.map(f64::from));
    for j in 0..3 {
        assert_close_f32(dx[j], ex[j], &format!("array_fn dx[{j}]"));
    }
    let mflat: Vec<f64> = m64.iter().flatten().copied().collect();
    let em = fd_slice(
        |v| {
            let mm = [[v[0], v[1], v[2]], [v[3], v[4], v[5]]];
            array_fn64(xa.map(f64::from), &mm)
        },
        &mflat,
    );
    for i in 0..2 {
        for j in 0..3 {
            assert_close_f32(dm[i][j], em[i * 3 + j], &format!("array_fn dm[{i}][{j}]"));
        }
    }

    let (v, d) = vec_fn_grad(x.to_vec());
    assert_eq!(v, vec_fn(x.to_vec()));
    let e = fd_slice(vec_fn64, &x64);
    for i in 0..3 {
        assert_close_f32(d[i], e[i], &format!("vec_fn d[{i}]"));
    }

    for &x in &PTS {
        for n in 0..4 {
            let (v, d) = recur_grad(x, n);
            assert_eq!(v, recur(x, n));
            assert_close_f32(
                d,
                fd(|x| recur64(x, n), f64::from(x)),
                &format!("recur n={n}"),
            );
        }
    }

    // <d, x s + s^2>: d/dx_i = d_i s, d/ds = sum d_i (x_i + 2 s)
    let d = vec![1.0f32, -0.5, 2.0];
    let s = 0.8f32;
    let (v, (gx, gs)) = vec_out_adjoint(&x, s, d.clone());
    assert_eq!(v, vec_out(&x, s));
    for i in 0..3 {
        assert_close_f32(gx[i], f64::from(d[i] * s), "vec_out dx");
    }
    let es: f64 = (0..3)
        .map(|i| f64::from(d[i]) * (x64[i] + 2.0 * f64::from(s)))
        .sum();
    assert_close_f32(gs, es, "vec_out ds");
}
