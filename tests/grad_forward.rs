//! Forward mode (`_tangent`), Jacobians (`_jacobian`), Hessian-vector products
//! (`_hvp`) and Hessians (`_hessian`), each checked against an independent
//! oracle:
//!
//! * a tangent `ḟ = J v` against the central difference `(f(x + hv) - f(x - hv)) / 2h`,
//!   and against `∇f · v` from the reverse mode;
//! * `H v` against the central difference of the reverse-mode gradient
//!   `(∇f(x + hv) - ∇f(x - hv)) / 2h`, and where written, an analytic Hessian;
//! * a Jacobian column by column against central differences of the output.

#![allow(clippy::needless_range_loop, clippy::ptr_arg)]

mod common;

use common::*;
use tapeless::{differentiable, Activation, Differentiable};

/// `x + h v`.
fn shifted(x: &[f64], v: &[f64], h: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(a, b)| a + h * b).collect()
}

/// Central difference of a scalar function along `v`.
fn fd_dir(f: &dyn Fn(&[f64]) -> f64, x: &[f64], v: &[f64]) -> f64 {
    let h = 1e-6 * x.iter().fold(1.0_f64, |m, a| m.max(a.abs()));
    (f(&shifted(x, v, h)) - f(&shifted(x, v, -h))) / (2.0 * h)
}

/// Central difference of a vector function along `v`.
fn fd_dir_vec(f: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64], v: &[f64]) -> Vec<f64> {
    let h = 1e-6 * x.iter().fold(1.0_f64, |m, a| m.max(a.abs()));
    let (p, m) = (f(&shifted(x, v, h)), f(&shifted(x, v, -h)));
    p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const DIRS3: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0],
    [0.3, -0.7, 0.5],
];

// ---------------------------------------------------------------------------
// Straight-line code over every scalar primitive

/// About 40 operations touching every primitive with a forward rule.
#[differentiable(forward, hessian)]
fn prims(x: f64, y: f64, z: f64) -> f64 {
    let a = x.sin() * y.cos() + (x * z).tan() - y.atan();
    let b = (x / 3.0).asin() + (y / 4.0).acos() + x.atan2(y) + z.sinh() - x.cosh();
    let c = (y * 0.5).tanh() + x.asinh() + (z * z + 1.5).acosh() + (x * 0.3).atanh();
    let d = (x * 0.5).exp() + y.exp2() + z.exp_m1() + (y * y + 1.0).ln() + z.ln_1p();
    let e = (x * x + 2.0).log(y + 3.0) + (z + 2.0).log2() + (y + 3.0).log10();
    let f = (x * x + y * y).sqrt() + z.cbrt() + x.powi(3) + (y + 2.0).powf(z) + x.hypot(z);
    let g = x.abs() + z.recip() + x.mul_add(y, z) + x.max(y) + y.min(z) + z.clamp(-1.0, 1.0);
    let h = x.to_degrees() * 0.01 + y.to_radians() + (x * 2.0).fract();
    let i = -a / (b * b + 1.0) + (c - d) * e;
    i + f * 0.1 + g * h
}

fn prims_s(p: &[f64]) -> f64 {
    prims(p[0], p[1], p[2])
}

fn prims_grad_s(p: &[f64]) -> Vec<f64> {
    let (_, (a, b, c)) = prims_grad(p[0], p[1], p[2]);
    vec![a, b, c]
}

#[test]
fn straight_line_tangent_matches_fd_and_gradient() {
    // d/dt f(p + t v) at t = 0, which is ∇f(p) · v.
    for p in [[0.4, 0.7, 0.9], [-0.3, 1.3, 0.6], [0.8, -0.4, 1.7]] {
        let g = prims_grad_s(&p);
        for v in DIRS3 {
            let (val, dv) = prims_tangent(p[0], p[1], p[2], v[0], v[1], v[2]);
            assert_eq!(val, prims_s(&p));
            assert_close(
                dv,
                fd_dir(&prims_s, &p, &v),
                &format!("J v at {p:?} along {v:?}"),
            );
            assert_close_tol(dv, dot(&g, &v), 1e-12, 1e-12, "J v against ∇f · v");
        }
    }
}

#[test]
fn straight_line_hvp_matches_fd_of_gradient() {
    // H v = d/dt ∇f(p + t v) at t = 0.
    for p in [[0.4, 0.7, 0.9], [-0.3, 1.3, 0.6]] {
        for v in DIRS3 {
            let (val, g, hv) = prims_hvp(p[0], p[1], p[2], v[0], v[1], v[2]);
            let (val2, g2) = prims_grad(p[0], p[1], p[2]);
            assert_eq!((val, g), (val2, g2));
            let want = fd_dir_vec(&prims_grad_s, &p, &v);
            assert_all_close_tol(&[hv.0, hv.1, hv.2], &want, 1e-5, 1e-6, "H v");
        }
    }
}

#[test]
fn hessian_is_symmetric_and_matches_hvp_columns() {
    let p = [0.4, 0.7, 0.9];
    let (_, _, h) = prims_hessian(p[0], p[1], p[2]);
    assert_eq!((h.rows(), h.cols()), (3, 3));
    for (j, v) in DIRS3.iter().take(3).enumerate() {
        let (_, _, hv) = prims_hvp(p[0], p[1], p[2], v[0], v[1], v[2]);
        for (i, hij) in [hv.0, hv.1, hv.2].into_iter().enumerate() {
            assert_eq!(h.get(i, j), hij, "column {j} is H e_{j}");
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            assert_close_tol(h.get(i, j), h.get(j, i), 1e-12, 1e-12, "symmetry");
        }
    }
}

// ---------------------------------------------------------------------------
// An analytic Hessian

/// Rosenbrock: f = (1 - x)² + 100 (y - x²)².
#[differentiable(hessian)]
fn rosenbrock(x: f64, y: f64) -> f64 {
    let a = 1.0 - x;
    let b = y - x * x;
    a * a + 100.0 * b * b
}

#[test]
fn rosenbrock_hessian_is_analytic() {
    // ∂²f/∂x² = 2 - 400 (y - x²) + 800 x², ∂²f/∂x∂y = -400 x, ∂²f/∂y² = 200.
    for (x, y) in [(-1.2, 1.0), (0.5, 0.3), (1.0, 1.0)] {
        let (_, _, h) = rosenbrock_hessian(x, y);
        assert_close(
            h.get(0, 0),
            2.0 - 400.0 * (y - x * x) + 800.0 * x * x,
            "f_xx",
        );
        assert_close(h.get(0, 1), -400.0 * x, "f_xy");
        assert_close(h.get(1, 0), -400.0 * x, "f_yx");
        assert_close(h.get(1, 1), 200.0, "f_yy");
    }
}

// ---------------------------------------------------------------------------
// Loops, branches, arrays, calls

#[differentiable(forward, hessian)]
fn square(x: f64) -> f64 {
    x * x
}

/// Loops over a slice with index writes into a local `Vec`, a branch on an
/// active value, a call, a `while` with `break`, tuple destructuring, an
/// integer parameter.
#[differentiable(forward, hessian, jacobian)]
fn looped(x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    let mut v = vec![0.0; x.len()];
    for i in 0..x.len() {
        v[i] = x[i] * x[i] + 0.5;
        if v[i] > 1.0 {
            s += v[i].sqrt();
        } else {
            s -= square(x[i]);
        }
    }
    let mut k = 0;
    while k < n {
        s = s * 0.5 + v[k % v.len()] * s.sin();
        if s > 100.0 {
            break;
        }
        k += 1;
    }
    let (a, b) = (s, s.tanh());
    a * b
}

/// Early `return`, labeled `continue`/`break` over a 2-D array, `*=` and `/=`.
#[differentiable(forward, hessian)]
fn exits(m: [[f64; 3]; 3], t: f64) -> f64 {
    let mut acc = 1.0;
    'rows: for i in 0..3 {
        for j in 0..3 {
            if j > i {
                continue 'rows;
            }
            acc *= 1.0 + m[i][j] * t;
            if acc > 1e6 {
                break 'rows;
            }
        }
        acc /= 1.0 + t * t;
    }
    if acc < 0.0 {
        return -acc * t;
    }
    acc.ln() * t
}

#[test]
fn loops_and_calls_tangent_and_hvp() {
    let f = |x: &[f64]| looped(x, 5);
    let g = |x: &[f64]| looped_grad(x, 5).1;
    for x in [vec![0.3, 1.4, -2.0], vec![-0.8, 0.2, 0.9]] {
        for v in DIRS3 {
            let (_, dv) = looped_tangent(&x, 5, v.to_vec());
            assert_close(dv, fd_dir(&f, &x, &v), "looped: J v");
            let (_, _, hv) = looped_hvp(&x, 5, v.to_vec());
            assert_all_close_tol(&hv, &fd_dir_vec(&g, &x, &v), 1e-5, 1e-6, "looped: H v");
        }
        // Jacobian of a scalar function: one row, the gradient.
        let (_, j) = looped_jacobian(&x, 5);
        assert_eq!((j.rows(), j.cols()), (1, 3));
        assert_all_close_tol(j.row(0), &g(&x), 1e-12, 1e-12, "looped: J = ∇fᵀ");
    }
}

#[test]
fn exits_tangent_and_hessian() {
    let m = [[0.3, 0.1, -0.2], [0.4, 0.5, 0.6], [-0.1, 0.2, 0.7]];
    let f = |p: &[f64]| {
        let mut mm = [[0.0; 3]; 3];
        for i in 0..9 {
            mm[i / 3][i % 3] = p[i];
        }
        exits(mm, p[9])
    };
    let g = |p: &[f64]| {
        let mut mm = [[0.0; 3]; 3];
        for i in 0..9 {
            mm[i / 3][i % 3] = p[i];
        }
        let (_, (gm, gt)) = exits_grad(mm, p[9]);
        let mut out: Vec<f64> = gm.iter().flatten().copied().collect();
        out.push(gt);
        out
    };
    let mut p: Vec<f64> = m.iter().flatten().copied().collect();
    p.push(0.8);
    let mut dm = [[0.0; 3]; 3];
    dm[1][0] = 1.0;
    dm[2][2] = -0.5;
    let mut v: Vec<f64> = dm.iter().flatten().copied().collect();
    v.push(0.3);
    let (_, dv) = exits_tangent(m, 0.8, dm, 0.3);
    assert_close(dv, fd_dir(&f, &p, &v), "exits: J v");
    let (_, _, h) = exits_hessian(m, 0.8);
    assert_eq!(h.rows(), 10);
    for j in 0..10 {
        let mut e = vec![0.0; 10];
        e[j] = 1.0;
        let col: Vec<f64> = (0..10).map(|i| h.get(i, j)).collect();
        assert_all_close_tol(&col, &fd_dir_vec(&g, &p, &e), 1e-5, 1e-6, "exits: H column");
    }
}

// ---------------------------------------------------------------------------
// Jacobians: forward sweeps (inputs ≤ outputs) and reverse sweeps (more inputs)

/// 2 inputs -> 4 outputs: forward mode, one sweep per input.
#[differentiable(jacobian)]
fn tall(x: f64, y: f64) -> [f64; 4] {
    [x * y, x.sin(), y.exp() * x, (x - y).powi(2)]
}

/// 5 inputs -> 2 outputs: reverse mode, one sweep per output.
#[differentiable(jacobian)]
fn wide(x: &[f64], w: [f64; 2]) -> (f64, f64) {
    let mut s = 0.0;
    let mut q = 0.0;
    for i in 0..x.len() {
        s += x[i] * w[0];
        q += (x[i] * w[1]).tanh();
    }
    (s * q, s - q)
}

#[test]
fn jacobian_forward_and_reverse() {
    // Column k of J is d/dt f(p + t e_k), by central differences.
    let f = |p: &[f64]| tall(p[0], p[1]).to_vec();
    let p = [0.7, -0.4];
    let (_, j) = tall_jacobian(p[0], p[1]);
    assert_eq!((j.rows(), j.cols()), (4, 2));
    for k in 0..2 {
        let mut e = [0.0; 2];
        e[k] = 1.0;
        let col: Vec<f64> = (0..4).map(|i| j.get(i, k)).collect();
        assert_all_close(&col, &fd_dir_vec(&f, &p, &e), "tall: column");
    }
    let f = |p: &[f64]| {
        let (a, b) = wide(&p[..5], [p[5], p[6]]);
        vec![a, b]
    };
    let p = [0.1, 0.5, -0.3, 0.8, 0.2, 1.3, -0.6];
    let (_, j) = wide_jacobian(&p[..5], [p[5], p[6]]);
    assert_eq!((j.rows(), j.cols()), (2, 7));
    for k in 0..7 {
        let mut e = [0.0; 7];
        e[k] = 1.0;
        let col: Vec<f64> = (0..2).map(|i| j.get(i, k)).collect();
        assert_all_close(&col, &fd_dir_vec(&f, &p, &e), "wide: column");
    }
}

// ---------------------------------------------------------------------------
// Methods on derived structs, `wrt`, `#[no_grad]`, f32

#[derive(Differentiable, Clone)]
struct Model {
    w: Vec<f64>,
    b: f64,
    #[no_grad]
    scale: f64,
}

impl Model {
    /// f = tanh(s) s with s = b + scale Σ wᵢ xᵢ, differentiated in the model.
    #[differentiable(forward, hessian)]
    fn loss(&self, #[no_grad] x: &[f64]) -> f64 {
        let mut s = self.b;
        for i in 0..x.len() {
            s += self.w[i] * x[i] * self.scale;
        }
        s.tanh() * s
    }
}

#[test]
fn method_on_derived_struct() {
    // With s = b + c Σ wᵢ xᵢ and φ(s) = s tanh s: ∂²f/∂wᵢ∂wⱼ = φ''(s) c² xᵢ xⱼ,
    // φ'' = 2 sech² s (1 - s tanh s).
    let x = [0.5, -1.0, 2.0];
    let m = Model {
        w: vec![0.1, 0.2, 0.3],
        b: 0.4,
        scale: 0.7,
    };
    let (_, _, h) = m.loss_hessian(&x);
    assert_eq!(
        h.rows(),
        4,
        "three weights and the bias; `scale` is not differentiated"
    );
    let s: f64 = 0.4 + 0.7 * (0.05 - 0.2 + 0.6);
    let sech2 = 1.0 / s.cosh().powi(2);
    let phi2 = 2.0 * sech2 * (1.0 - s * s.tanh());
    let xs = [0.5 * 0.7, -0.7, 1.4, 1.0];
    for i in 0..4 {
        for j in 0..4 {
            assert_close(h.get(i, j), phi2 * xs[i] * xs[j], "∂²f/∂θᵢ∂θⱼ");
        }
    }
    let v = Model {
        w: vec![1.0, 0.0, -1.0],
        b: 0.5,
        scale: 0.0,
    };
    let (_, dv) = m.loss_tangent(&x, v.clone());
    let want: f64 = phi1(s) * (0.35 * 1.0 - 1.4 + 0.5);
    assert_close(dv, want, "J v");
    let (_, _, hv) = m.loss_hvp(&x, v);
    let vs = [1.0, 0.0, -1.0, 0.5];
    let hv_want: Vec<f64> = (0..4).map(|i| phi2 * xs[i] * dot(&xs, &vs)).collect();
    assert_all_close(&[hv.w[0], hv.w[1], hv.w[2], hv.b], &hv_want, "H v");
}

/// φ'(s) for φ(s) = s tanh s.
fn phi1(s: f64) -> f64 {
    s.tanh() + s / s.cosh().powi(2)
}

/// Only `a` is differentiated; `b` enters as a constant.
#[differentiable(forward, hessian, wrt(a))]
fn partial(a: f64, b: f64) -> f64 {
    (a * b).sin() * a
}

#[test]
fn wrt_limits_the_hessian() {
    // f = a sin(ab): f_aa = 2b cos(ab) - a b² sin(ab).
    let (a, b) = (0.7, 1.3);
    let (_, g, h) = partial_hessian(a, b);
    assert_close(g, (a * b).sin() + a * b * (a * b).cos(), "f_a");
    assert_eq!((h.rows(), h.cols()), (1, 1));
    let want = 2.0 * b * (a * b).cos() - a * b * b * (a * b).sin();
    assert_close(h.get(0, 0), want, "f_aa");
    let (_, t) = partial_tangent(a, b, 2.0);
    assert_close(t, 2.0 * g, "J v with v = 2");
}

#[differentiable(forward, hessian)]
fn single(x: f32, y: f32) -> f32 {
    (x * y).exp() / (1.0 + y * y)
}

#[test]
fn f32_tangent_and_hvp() {
    // f = e^{xy} / (1 + y²): f_x = y e^{xy}/(1+y²), f_xx = y² e^{xy}/(1+y²).
    let (x, y) = (0.3f32, 0.8f32);
    let (xd, yd) = (f64::from(x), f64::from(y));
    let e = (xd * yd).exp() / (1.0 + yd * yd);
    let (_, t) = single_tangent(x, y, 1.0, 0.0);
    assert_close_f32(t, yd * e, "f_x");
    let (_, _, hv) = single_hvp(x, y, 1.0, 0.0);
    assert_close_f32(hv.0, yd * yd * e, "f_xx");
}

// ---------------------------------------------------------------------------
// Conventions

/// The masked branch: at x < 0 the value is 0 and so is every derivative.
#[differentiable(forward, hessian)]
fn masked(x: f64) -> f64 {
    if x > 0.0 {
        x.sqrt()
    } else {
        0.0
    }
}

#[differentiable(forward, hessian)]
fn sqrt_at(x: f64, y: f64) -> f64 {
    x.sqrt() + y
}

#[test]
fn masked_branches_and_zero_tangents_give_no_nan() {
    assert_eq!(masked_tangent(-1.0, 1.0), (0.0, 0.0));
    assert_eq!(masked_hvp(-1.0, 1.0), (0.0, 0.0, 0.0));
    // d/dt sqrt(0) + y along (0, 1): the guarded sqrt rule gives 0, not 0 * inf.
    let (_, t) = sqrt_at_tangent(0.0, 2.0, 0.0, 1.0);
    assert_eq!(t, 1.0);
    let (_, _, hv) = sqrt_at_hvp(4.0, 2.0, 1.0, 0.0);
    // ∂²/∂x² sqrt(x) = -x^{-3/2} / 4 = -1/32 at 4.
    assert_close(hv.0, -1.0 / 32.0, "f_xx");
    assert_eq!(hv.1, 0.0);
}

/// Tuple outputs have tuple tangents.
#[differentiable(forward)]
fn polar(r: f64, th: f64) -> (f64, f64) {
    (r * th.cos(), r * th.sin())
}

#[test]
fn tuple_output_tangent() {
    // d(r cos θ, r sin θ) = (cos θ dr - r sin θ dθ, sin θ dr + r cos θ dθ).
    let (r, th) = (2.0, 0.6);
    let (_, (dx, dy)) = polar_tangent(r, th, 0.5, -0.25);
    assert_close(dx, th.cos() * 0.5 + r * th.sin() * 0.25, "dx");
    assert_close(dy, th.sin() * 0.5 - r * th.cos() * 0.25, "dy");
}

// ---------------------------------------------------------------------------
// Custom derivatives in forward mode

fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// softplus'(x) = sigmoid(x), by hand.
#[tapeless::derivative(of = softplus)]
fn softplus_adjoint(x: f64, d_out: f64) -> (f64, f64) {
    (softplus(x), d_out / (1.0 + (-x).exp()))
}

#[differentiable(forward)]
fn soft_loss(x: f64, y: f64) -> f64 {
    softplus(x * y) + y
}

#[test]
fn custom_derivative_in_forward_mode() {
    // d/dt f along (dx, dy) = σ(xy)(y dx + x dy) + dy.
    let (x, y): (f64, f64) = (0.4, -1.3);
    let s = 1.0 / (1.0 + (-(x * y)).exp());
    let (_, t) = soft_loss_tangent(x, y, 0.5, 2.0);
    assert_close(
        t,
        s * (y * 0.5 + x * 2.0) + 2.0,
        "J v through the custom rule",
    );
}

// ---------------------------------------------------------------------------
// Nested differentiation: generated `_grad` and `_tangent` called inside
// differentiable code

/// φ(x, w) = w x² + sin(x w): ∂φ/∂x = 2 w x + w cos(x w).
#[differentiable(forward, hessian)]
fn potential(x: f64, w: f64) -> f64 {
    w * x * x + (x * w).sin()
}

/// Reverse over reverse: g(w) = (∂φ/∂x)(x0, w)² at x0 = 0.7.
#[differentiable]
fn slope_sq(w: f64) -> f64 {
    let (_, (gx, _)) = potential_grad(0.7, w);
    gx * gx
}

/// Forward over reverse: the same g.
#[differentiable(forward)]
fn slope_sq_fwd(w: f64) -> f64 {
    let (_, (gx, _)) = potential_grad(0.7, w);
    gx * gx
}

/// Forward over forward: the directional derivative along (1, 0), i.e. ∂φ/∂x.
#[differentiable(forward)]
fn slope_ff(w: f64) -> f64 {
    let (_, d) = potential_tangent(0.7, w, 1.0, 0.0);
    d * d
}

#[test]
fn nested_gradients() {
    // ∂φ/∂x = 2 w x + w cos(x w) =: s(w); g = s², g' = 2 s s' with
    // s'(w) = 2x + cos(xw) - x w sin(xw).
    let x: f64 = 0.7;
    for w in [0.3, -1.2, 2.0] {
        let s = 2.0 * w * x + w * (x * w).cos();
        let ds = 2.0 * x + (x * w).cos() - x * w * (x * w).sin();
        let want = 2.0 * s * ds;
        let (v, g) = slope_sq_grad(w);
        assert_close(v, s * s, "g");
        assert_close(g, want, "reverse over reverse");
        let (_, t) = slope_sq_fwd_tangent(w, 1.0);
        assert_close(t, want, "forward over reverse");
        let (v, t) = slope_ff_tangent(w, 1.0);
        assert_close(v, s * s, "g by forward mode");
        assert_close(t, want, "forward over forward");
    }
}

/// Data passed beside the differentiated parameters: not `Differentiable`.
pub struct Scales {
    /// Weights of the squares.
    pub w: Vec<f64>,
    /// How many of them count.
    pub n: usize,
}

/// f(x) = Σ_{i<n} w_i x_i² + s x_0 x_1, differentiated in `x` only; `scales`
/// and `s` are data. ∂f/∂x_i = 2 w_i x_i [i < n] + s (x_1 [i = 0] + x_0 [i = 1]).
#[differentiable(forward, jacobian, wrt(x))]
fn weighted(x: &[f64], scales: &Scales, s: f64) -> f64 {
    let mut acc = s * x[0] * x[1];
    for i in 0..scales.n {
        acc += scales.w[i] * x[i] * x[i];
    }
    acc
}

#[test]
fn parameters_outside_wrt_need_no_tangent() {
    let scales = Scales {
        w: vec![0.5, -1.5, 2.0, 0.25],
        n: 3,
    };
    let s = 0.7;
    let f = |x: &[f64]| weighted(x, &scales, s);
    let grad = |x: &[f64]| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let sq = if i < scales.n {
                    2.0 * scales.w[i] * x[i]
                } else {
                    0.0
                };
                let cross = match i {
                    0 => s * x[1],
                    1 => s * x[0],
                    _ => 0.0,
                };
                sq + cross
            })
            .collect()
    };
    let x = [0.3, -1.2, 0.8, 2.0];
    for v in [[1.0, 0.0, 0.0, 0.0], [0.3, -0.5, 0.9, 1.1]] {
        let (val, dv) = weighted_tangent(&x, &scales, s, v.to_vec());
        assert_eq!(val, f(&x));
        assert_close(
            dv,
            dot(&grad(&x), &v),
            "weighted: J v against the analytic gradient",
        );
        assert_close(dv, fd_dir(&f, &x, &v), "weighted: J v against differences");
    }
    let (_, j) = weighted_jacobian(&x, &scales, s);
    assert_all_close_tol(j.row(0), &grad(&x), 1e-12, 1e-12, "weighted: J = ∇fᵀ");
}

/// `x.sigmoid()` (`tapeless::Activation`) is one operation: f = σ(w x) x + σ(x)
/// with σ' = σ (1 - σ). Gradient against the analytic one, tangent against
/// differences of f, H v against differences of the gradient.
#[differentiable(hessian)]
fn logistic_unit(x: f64, w: f64) -> f64 {
    (w * x).sigmoid() * x + x.sigmoid()
}

#[test]
fn scalar_sigmoid_all_modes() {
    let s = |t: f64| 1.0 / (1.0 + (-t).exp());
    let f = |p: &[f64]| logistic_unit(p[0], p[1]);
    let g = |p: &[f64]| {
        let (_, (dx, dw)) = logistic_unit_grad(p[0], p[1]);
        vec![dx, dw]
    };
    for p in [[0.3, 1.5], [-1.2, 0.7], [2.0, -0.4]] {
        let (x, w) = (p[0], p[1]);
        let (a, b) = (s(w * x), s(x));
        let grad = [
            a * (1.0 - a) * w * x + a + b * (1.0 - b),
            a * (1.0 - a) * x * x,
        ];
        let (v, gr) = (logistic_unit(x, w), g(&p));
        assert_eq!(v, logistic_unit_grad(x, w).0);
        assert_all_close(&gr, &grad, "sigmoid: gradient");
        for dir in [[1.0, 0.0], [0.4, -0.9]] {
            let (_, dv) = logistic_unit_tangent(x, w, dir[0], dir[1]);
            assert_close(dv, fd_dir(&f, &p, &dir), "sigmoid: J v");
            let (_, _, hv) = logistic_unit_hvp(x, w, dir[0], dir[1]);
            let hv = [hv.0, hv.1];
            assert_all_close_tol(&hv, &fd_dir_vec(&g, &p, &dir), 1e-5, 1e-6, "sigmoid: H v");
        }
    }
}
