//! The tensor derivative rules of `tapeless_runtime::rules`, each checked
//! against central finite differences of the forward kernel.
//!
//! Every check draws a random cotangent `R` of the output's shape and compares
//! the rule's contribution for one operand with the finite-difference gradient
//! of `phi(x) = <R, f(x)>` (accumulated in `f64`), one difference per element
//! of the operand: `dphi/dx_i = (phi(x + h e_i) - phi(x - h e_i)) / 2h`. The
//! forward kernels are `f32`, so the step is `h = 1e-2` to `1e-3` and the
//! tolerance relative (`2e-3`) plus a small absolute floor (`5e-4`). Inputs of
//! non-smooth operations keep a margin of at least `2h` from their kinks and
//! ties (distinct values on a grid for maxima and pooling).

use tapeless_runtime::__private::shape_of;
use tapeless_runtime::nn::Rng;
use tapeless_runtime::rules::*;
use tapeless_runtime::tensor::Tensor;
use tapeless_runtime::Tangent;

// ---------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------

/// The default finite-difference step.
const H: f32 = 1e-3;
/// Relative tolerance of a rule against its finite difference.
const RTOL: f64 = 2e-3;
/// Absolute tolerance floor (for gradients near 0).
const ATOL: f64 = 5e-4;

/// Uniform values in `[lo, hi)`.
fn uniform(rng: &mut Rng, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_in(lo, hi) as f32).collect(),
        shape,
    )
}

/// Uniform values in `[-1, 1)`.
fn rand(rng: &mut Rng, shape: &[usize]) -> Tensor {
    uniform(rng, shape, -1.0, 1.0)
}

/// Values with `0.2 <= |x| < 1.5` and random signs: away from the kinks at 0.
fn away_from_zero(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            let m = rng.uniform_in(0.2, 1.5);
            (if rng.uniform() < 0.5 { -m } else { m }) as f32
        })
        .collect();
    Tensor::from_vec(v, shape)
}

/// Distinct values `0.05 k - c` in random order: maxima and their positions
/// stay the same under perturbations smaller than `0.025`.
fn distinct(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = rng
        .permutation(n)
        .into_iter()
        .map(|k| 0.05 * k as f32 - 0.025 * n as f32)
        .collect();
    Tensor::from_vec(v, shape)
}

/// `<r, y>` in `f64`.
#[track_caller]
fn dot(r: &Tensor, y: &Tensor) -> f64 {
    assert_eq!(r.shape(), y.shape(), "cotangent and output shapes");
    r.to_vec()
        .iter()
        .zip(y.to_vec())
        .map(|(&a, b)| f64::from(a) * f64::from(b))
        .sum()
}

/// The central finite-difference gradient of `phi` at `x0` (flat), step `h`.
fn fd(x0: &[f32], h: f32, phi: impl Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut x = x0.to_vec();
    (0..x0.len())
        .map(|i| {
            x[i] = x0[i] + h;
            let up = phi(&x);
            x[i] = x0[i] - h;
            let down = phi(&x);
            x[i] = x0[i];
            // The step actually taken, after rounding to f32.
            let step = f64::from(x0[i] + h) - f64::from(x0[i] - h);
            (up - down) / step
        })
        .collect()
}

/// The finite-difference gradient of `x -> <r, f(x)>` over a tensor `x`
/// (any layout: perturbed through a contiguous copy of the same shape).
fn fd_t(x: &Tensor, h: f32, r: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Vec<f64> {
    fd(&x.to_vec(), h, |v| {
        dot(r, &f(&Tensor::from_slice(v, x.shape())))
    })
}

/// The finite-difference derivative of `c -> <r, f(c)>` for a scalar `c`.
fn fd_s(c: f32, h: f32, r: &Tensor, f: impl Fn(f32) -> Tensor) -> f64 {
    fd(&[c], h, |v| dot(r, &f(v[0])))[0]
}

/// `got` (a rule's contribution) against `want` (a finite difference), element
/// by element: `|got - want| <= atol + rtol max(|got|, |want|)`.
#[track_caller]
fn close_tol(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        let tol = atol + rtol * g.abs().max(w.abs());
        assert!(
            (g - w).abs() <= tol && g.is_finite(),
            "{what}: element {i}: rule {g} vs finite difference {w}\nrule: {got:?}\nfd:   {want:?}"
        );
    }
}

/// A tensor rule's contribution against the finite difference, with the
/// contribution's shape checked against the operand's.
#[track_caller]
fn close(what: &str, got: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(got.shape(), shape, "{what}: shape of the contribution");
    close_tol(what, &got.to_vec(), want, RTOL, ATOL);
}

/// A scalar contribution against its finite difference.
#[track_caller]
fn close_s(what: &str, got: f32, want: f64) {
    close_tol(what, &[got], &[want], RTOL, ATOL);
}

/// Checks an element-wise unary rule `rule(x, y, d)` against `fwd` at `x`.
#[track_caller]
fn unary(
    what: &str,
    x: &Tensor,
    fwd: impl Fn(&Tensor) -> Tensor,
    rule: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
) {
    let mut rng = Rng::seed_from(what.len() as u64);
    let r = rand(&mut rng, x.shape());
    let y = fwd(x);
    let got = rule(x, &y, &r);
    close(what, &got, x.shape(), &fd_t(x, H, &r, &fwd));
}

// ---------------------------------------------------------------------------
// Matrix products
// ---------------------------------------------------------------------------

// y = x W: dL/dx = dL/dy W^T, dL/dW = x^T dL/dy.
#[test]
fn matmul_2d() {
    let mut rng = Rng::seed_from(1);
    let (x, w) = (rand(&mut rng, &[3, 4]), rand(&mut rng, &[4, 5]));
    let r = rand(&mut rng, &[3, 5]);
    let dx = MatMul::d_x(&shape_of(&x), &w, &r);
    let dw = MatMul::d_other(&x, &shape_of(&w), &r);
    close(
        "matmul d_x",
        &dx,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.matmul(&w)),
    );
    close(
        "matmul d_w",
        &dw,
        w.shape(),
        &fd_t(&w, H, &r, |w| x.matmul(w)),
    );
}

// Batched with broadcast batch axes, [2, 1, 3, 4] · [5, 4, 2] -> [2, 5, 3, 2]:
// per batch item dL/dx_b = dL/dy_b W_b^T, dL/dW_b = x_b^T dL/dy_b, each summed over
// the batch axes its operand was broadcast along.
#[test]
fn matmul_batched_broadcast() {
    let mut rng = Rng::seed_from(2);
    let (x, w) = (rand(&mut rng, &[2, 1, 3, 4]), rand(&mut rng, &[5, 4, 2]));
    let r = rand(&mut rng, &[2, 5, 3, 2]);
    let dx = MatMul::d_x(&shape_of(&x), &w, &r);
    let dw = MatMul::d_other(&x, &shape_of(&w), &r);
    close(
        "bmm d_x",
        &dx,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.matmul(&w)),
    );
    close("bmm d_w", &dw, w.shape(), &fd_t(&w, H, &r, |w| x.matmul(w)));
}

// A shared weight, [2, 3, 4] · [4, 5]: dL/dW = Σ_b x_b^T dL/dy_b (one folded
// GEMM); dL/dx_b = dL/dy_b W^T. Also with x a permuted (non-contiguous) view
// and W of shape [1, 4, 5] (a batch axis of length 1).
#[test]
fn matmul_shared_weight() {
    let mut rng = Rng::seed_from(3);
    let (x, w) = (rand(&mut rng, &[2, 3, 4]), rand(&mut rng, &[4, 5]));
    let r = rand(&mut rng, &[2, 3, 5]);
    let dx = MatMul::d_x(&shape_of(&x), &w, &r);
    let dw = MatMul::d_other(&x, &shape_of(&w), &r);
    close(
        "shared d_x",
        &dx,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.matmul(&w)),
    );
    close(
        "shared d_w",
        &dw,
        w.shape(),
        &fd_t(&w, H, &r, |w| x.matmul(w)),
    );

    let base = rand(&mut rng, &[3, 2, 4]);
    let xp = base.permute(&[1, 0, 2]); // [2, 3, 4], not contiguous
    let w1 = rand(&mut rng, &[1, 4, 5]);
    let dw = MatMul::d_other(&xp, &shape_of(&w1), &r);
    let want = fd_t(&w1, H, &r, |w| xp.matmul(w));
    close("permuted x, d_w", &dw, w1.shape(), &want);
    let dx = MatMul::d_x(&shape_of(&xp), &w1, &r);
    let want = fd_t(&xp, H, &r, |x| x.matmul(&w1));
    close("permuted x, d_x", &dx, xp.shape(), &want);
}

// 1-D operands are promoted ([k] a row [1, k], [k] a column [k, 1]) and the
// added axis dropped: the same formulas on the promoted shapes.
#[test]
fn matmul_vectors() {
    let mut rng = Rng::seed_from(4);
    let cases: [(&[usize], &[usize]); 5] = [
        (&[4], &[4, 3]),
        (&[3, 4], &[4]),
        (&[4], &[4]),
        (&[2, 3, 4], &[4]),
        (&[4], &[2, 4, 3]),
    ];
    for (sa, sb) in cases {
        let (x, w) = (rand(&mut rng, sa), rand(&mut rng, sb));
        let y = x.matmul(&w);
        let r = rand(&mut rng, y.shape());
        let dx = MatMul::d_x(&shape_of(&x), &w, &r);
        let dw = MatMul::d_other(&x, &shape_of(&w), &r);
        let what = format!("{sa:?} · {sb:?}");
        close(&what, &dx, sa, &fd_t(&x, H, &r, |x| x.matmul(&w)));
        close(&what, &dw, sb, &fd_t(&w, H, &r, |w| x.matmul(w)));
    }
}

// Strided operands: x a transposed view, W a narrowed view; the formulas do not
// depend on the layout.
#[test]
fn matmul_views() {
    let mut rng = Rng::seed_from(5);
    let x = rand(&mut rng, &[4, 3]).t(); // [3, 4]
    let w = rand(&mut rng, &[4, 7]).narrow(1, 1, 5); // [4, 5]
    let r = rand(&mut rng, &[3, 5]);
    let dx = MatMul::d_x(&shape_of(&x), &w, &r);
    let dw = MatMul::d_other(&x, &shape_of(&w), &r);
    close("view d_x", &dx, &[3, 4], &fd_t(&x, H, &r, |x| x.matmul(&w)));
    close("view d_w", &dw, &[4, 5], &fd_t(&w, H, &r, |w| x.matmul(w)));
    // A transposed cotangent (as the rule of `t()` hands on).
    let rt = rand(&mut rng, &[5, 3]).t();
    let dx = MatMul::d_x(&shape_of(&x), &w, &rt);
    close(
        "transposed d",
        &dx,
        &[3, 4],
        &fd_t(&x, H, &rt, |x| x.matmul(&w)),
    );
}

// ---------------------------------------------------------------------------
// Element-wise maps
// ---------------------------------------------------------------------------

// relu: dy/dx = [x > 0] (from y); leaky_relu: 1 or alpha; sigmoid: y (1 - y);
// gelu: the tanh-approximation derivative; square: 2x.
#[test]
fn activations() {
    let mut rng = Rng::seed_from(6);
    let x = away_from_zero(&mut rng, &[4, 5]);
    unary("relu", &x, |x| x.relu(), |_, y, d| Relu::d_x(y, d));
    unary(
        "leaky_relu",
        &x,
        |x| x.leaky_relu(0.1),
        |x, _, d| LeakyRelu::d_x(x, &0.1, d),
    );
    unary("sigmoid", &x, |x| x.sigmoid(), |_, y, d| Sigmoid::d_x(y, d));
    let xg = uniform(&mut rng, &[3, 7], -3.0, 3.0);
    unary("gelu", &xg, |x| x.gelu(), |x, _, d| Gelu::d_x(x, d));
    unary("square", &x, |x| x.square(), |x, _, d| Square::d_x(x, d));
}

// exp: dy/dx = y; ln: 1/x; sqrt: 1/(2y); tanh: 1 - y^2; sin: cos x; cos: -sin x;
// abs: signum x; recip: -y^2; neg: -1.
#[test]
fn elementwise_math() {
    let mut rng = Rng::seed_from(7);
    let x = rand(&mut rng, &[3, 4]);
    let pos = uniform(&mut rng, &[3, 4], 0.3, 2.0);
    let nz = away_from_zero(&mut rng, &[3, 4]);
    unary("exp", &x, |x| x.exp(), |_, y, d| Exp::d_x(y, d));
    unary("ln", &pos, |x| x.ln(), |x, _, d| Ln::d_x(x, d));
    unary("sqrt", &pos, |x| x.sqrt(), |_, y, d| Sqrt::d_x(y, d));
    unary("tanh", &x, |x| x.tanh(), |_, y, d| Tanh::d_x(y, d));
    unary("sin", &x, |x| x.sin(), |x, _, d| Sin::d_x(x, d));
    unary("cos", &x, |x| x.cos(), |x, _, d| Cos::d_x(x, d));
    unary("abs", &nz, |x| x.abs(), |x, _, d| Abs::d_x(x, d));
    unary("recip", &nz, |x| x.recip(), |_, y, d| Recip::d_x(y, d));
    unary("neg", &x, |x| -x, |_, _, d| NegOp::d_x(d));
}

// y = x^p: dL/dx = dL/dy p x^(p-1); dL/dp = Σ dL/dy y ln x (x > 0); p = 0 gives 0.
#[test]
fn powf() {
    let mut rng = Rng::seed_from(8);
    let x = uniform(&mut rng, &[3, 4], 0.3, 2.0);
    let p = 1.7f32;
    let r = rand(&mut rng, &[3, 4]);
    let y = x.powf(p);
    let dx = Powf::d_x(&x, &p, &r);
    close("powf d_x", &dx, x.shape(), &fd_t(&x, H, &r, |x| x.powf(p)));
    let dp = Powf::d_p(&x, &y, &r);
    close_s("powf d_p", dp, fd_s(p, H, &r, |p| x.powf(p)));
    assert!(Powf::d_x(&x, &0.0, &r).to_vec().iter().all(|&v| v == 0.0));
}

// y = clamp(x, lo, hi): dL/dx = dL/dy inside [lo, hi]; dL/dlo = Σ_{x < lo} dL/dy;
// dL/dhi = Σ_{x > hi} dL/dy.
#[test]
fn clamp() {
    let mut rng = Rng::seed_from(9);
    let x = distinct(&mut rng, &[4, 6]); // steps of 0.05, none within 0.01 of the bounds
    let (lo, hi) = (-0.31f32, 0.42f32);
    let r = rand(&mut rng, &[4, 6]);
    let dx = Clamp::d_x(&x, &lo, &hi, &r);
    close(
        "clamp d_x",
        &dx,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.clamp(lo, hi)),
    );
    let dlo = Clamp::d_lo(&x, &lo, &r);
    close_s("clamp d_lo", dlo, fd_s(lo, H, &r, |lo| x.clamp(lo, hi)));
    let dhi = Clamp::d_hi(&x, &hi, &r);
    close_s("clamp d_hi", dhi, fd_s(hi, H, &r, |hi| x.clamp(lo, hi)));
}

// ---------------------------------------------------------------------------
// Operators with broadcasting
// ---------------------------------------------------------------------------

/// Checks `+ - * /` between tensors of shapes `sa` and `sb` (broadcast):
/// each operand's contribution is the element-wise derivative times `d`,
/// summed back to the operand's shape.
fn check_binary(sa: &[usize], sb: &[usize], seed: u64) {
    let mut rng = Rng::seed_from(seed);
    let a = rand(&mut rng, sa);
    let b = away_from_zero(&mut rng, sb);
    let out = (&a + &b).shape().to_vec();
    let r = rand(&mut rng, &out);
    let (sa_, sb_) = (shape_of(&a), shape_of(&b));
    let what = |op: &str, k: &str| format!("{sa:?} {op} {sb:?}, d_{k}");
    // y = a + b: dL/da = Σ d, dL/db = Σ d.
    let f = |a: &Tensor, b: &Tensor| a + b;
    close(
        &what("+", "a"),
        &AddOp::d_lhs(&sa_, &sb_, &r),
        sa,
        &fd_t(&a, H, &r, |a| f(a, &b)),
    );
    close(
        &what("+", "b"),
        &AddOp::d_rhs(&sa_, &sb_, &r),
        sb,
        &fd_t(&b, H, &r, |b| f(&a, b)),
    );
    // y = a - b: dL/da = Σ d, dL/db = -Σ d.
    let f = |a: &Tensor, b: &Tensor| a - b;
    close(
        &what("-", "a"),
        &SubOp::d_lhs(&sa_, &sb_, &r),
        sa,
        &fd_t(&a, H, &r, |a| f(a, &b)),
    );
    close(
        &what("-", "b"),
        &SubOp::d_rhs(&sa_, &sb_, &r),
        sb,
        &fd_t(&b, H, &r, |b| f(&a, b)),
    );
    // y = a * b: dL/da = Σ d b, dL/db = Σ d a.
    let f = |a: &Tensor, b: &Tensor| a * b;
    close(
        &what("*", "a"),
        &MulOp::d_lhs(&sa_, &b, &r),
        sa,
        &fd_t(&a, H, &r, |a| f(a, &b)),
    );
    close(
        &what("*", "b"),
        &MulOp::d_rhs(&a, &sb_, &r),
        sb,
        &fd_t(&b, H, &r, |b| f(&a, b)),
    );
    // y = a / b: dL/da = Σ d / b, dL/db = -Σ d y / b.
    let f = |a: &Tensor, b: &Tensor| a / b;
    let y = f(&a, &b);
    close(
        &what("/", "a"),
        &DivOp::d_lhs(&sa_, &b, &r),
        sa,
        &fd_t(&a, H, &r, |a| f(a, &b)),
    );
    close(
        &what("/", "b"),
        &DivOp::d_rhs(&sa_, &b, &y, &r),
        sb,
        &fd_t(&b, H, &r, |b| f(&a, b)),
    );
}

// [3, 1] op [1, 4]: both operands broadcast.
#[test]
fn binary_broadcast_both() {
    check_binary(&[3, 1], &[1, 4], 10);
}

// [2, 3, 4] op [4] and [4] op [2, 3, 4]: a missing leading axes.
#[test]
fn binary_broadcast_leading() {
    check_binary(&[2, 3, 4], &[4], 11);
    check_binary(&[4], &[2, 3, 4], 12);
}

// Equal shapes, and a rank-0 tensor against a matrix.
#[test]
fn binary_same_shape_and_rank0() {
    check_binary(&[3, 5], &[3, 5], 13);
    check_binary(&[2, 3], &[], 14);
}

// Tensor op f32 and f32 op tensor: the tensor gets the element-wise derivative
// times d; the f32 gets its sum: d(t + c)/dc = Σ d, d(t c)/dc = Σ d t,
// d(t / c)/dc = -Σ d y / c, d(c / t)/dc = Σ d / t, d(c - t)/dt = -d, ...
#[test]
fn tensor_and_scalar() {
    let mut rng = Rng::seed_from(15);
    let t = away_from_zero(&mut rng, &[3, 4]);
    let c = 1.3f32;
    let r = rand(&mut rng, &[3, 4]);
    let (st, sc) = (shape_of(&t), shape_of(&c));
    let sh = t.shape();

    close(
        "t+c t",
        &AddOp::d_lhs(&st, &sc, &r),
        sh,
        &fd_t(&t, H, &r, |t| t + c),
    );
    close_s(
        "t+c c",
        AddOp::d_rhs(&st, &sc, &r),
        fd_s(c, H, &r, |c| &t + c),
    );
    close_s(
        "c+t c",
        AddOp::d_lhs(&sc, &st, &r),
        fd_s(c, H, &r, |c| c + &t),
    );
    close(
        "c+t t",
        &AddOp::d_rhs(&sc, &st, &r),
        sh,
        &fd_t(&t, H, &r, |t| c + t),
    );

    close(
        "t-c t",
        &SubOp::d_lhs(&st, &sc, &r),
        sh,
        &fd_t(&t, H, &r, |t| t - c),
    );
    close_s(
        "t-c c",
        SubOp::d_rhs(&st, &sc, &r),
        fd_s(c, H, &r, |c| &t - c),
    );
    close_s(
        "c-t c",
        SubOp::d_lhs(&sc, &st, &r),
        fd_s(c, H, &r, |c| c - &t),
    );
    close(
        "c-t t",
        &SubOp::d_rhs(&sc, &st, &r),
        sh,
        &fd_t(&t, H, &r, |t| c - t),
    );

    close(
        "t*c t",
        &MulOp::d_lhs(&st, &c, &r),
        sh,
        &fd_t(&t, H, &r, |t| t * c),
    );
    close_s(
        "t*c c",
        MulOp::d_rhs(&t, &sc, &r),
        fd_s(c, H, &r, |c| &t * c),
    );
    close_s(
        "c*t c",
        MulOp::d_lhs(&sc, &t, &r),
        fd_s(c, H, &r, |c| c * &t),
    );
    close(
        "c*t t",
        &MulOp::d_rhs(&c, &st, &r),
        sh,
        &fd_t(&t, H, &r, |t| c * t),
    );

    let y = &t / c;
    close(
        "t/c t",
        &DivOp::d_lhs(&st, &c, &r),
        sh,
        &fd_t(&t, H, &r, |t| t / c),
    );
    close_s(
        "t/c c",
        DivOp::d_rhs(&st, &c, &y, &r),
        fd_s(c, H, &r, |c| &t / c),
    );
    let y = c / &t;
    close_s(
        "c/t c",
        DivOp::d_lhs(&sc, &t, &r),
        fd_s(c, H, &r, |c| c / &t),
    );
    close(
        "c/t t",
        &DivOp::d_rhs(&sc, &t, &y, &r),
        sh,
        &fd_t(&t, H, &r, |t| c / t),
    );
}

// maximum/minimum with broadcasting, [3, 1] against [1, 4]: d goes to the
// operand returned, summed back to its shape.
#[test]
fn maximum_minimum() {
    let mut rng = Rng::seed_from(16);
    let all = distinct(&mut rng, &[7]).to_vec();
    let x = Tensor::from_slice(&all[..3], &[3, 1]);
    let o = Tensor::from_slice(&all[3..], &[1, 4]);
    let r = rand(&mut rng, &[3, 4]);
    let f = |x: &Tensor, o: &Tensor| x.maximum(o);
    close(
        "maximum d_x",
        &Maximum::d_x(&x, &o, &r),
        &[3, 1],
        &fd_t(&x, H, &r, |x| f(x, &o)),
    );
    close(
        "maximum d_o",
        &Maximum::d_other(&x, &o, &r),
        &[1, 4],
        &fd_t(&o, H, &r, |o| f(&x, o)),
    );
    let f = |x: &Tensor, o: &Tensor| x.minimum(o);
    close(
        "minimum d_x",
        &Minimum::d_x(&x, &o, &r),
        &[3, 1],
        &fd_t(&x, H, &r, |x| f(x, &o)),
    );
    close(
        "minimum d_o",
        &Minimum::d_other(&x, &o, &r),
        &[1, 4],
        &fd_t(&o, H, &r, |o| f(&x, o)),
    );
}

// ---------------------------------------------------------------------------
// Reductions and softmax
// ---------------------------------------------------------------------------

// sum: dL/dx_i = dL/ds; mean: dL/ds / n; max/min: dL/dy at the arg-max/min.
#[test]
fn full_reductions() {
    let mut rng = Rng::seed_from(17);
    let x = distinct(&mut rng, &[3, 5]);
    let d = 0.7f32;
    let r = Tensor::scalar(d);
    let s = |v: f32| Tensor::scalar(v);
    let sx = shape_of(&x);
    close(
        "sum",
        &SumAll::d_x(&sx, &d),
        x.shape(),
        &fd_t(&x, H, &r, |x| s(x.sum())),
    );
    close(
        "mean",
        &MeanAll::d_x(&sx, &d),
        x.shape(),
        &fd_t(&x, H, &r, |x| s(x.mean())),
    );
    let m = MaxAll::d_x(&x, &x.max(), &d);
    close("max", &m, x.shape(), &fd_t(&x, H, &r, |x| s(x.max())));
    let m = MinAll::d_x(&x, &x.min(), &d);
    close("min", &m, x.shape(), &fd_t(&x, H, &r, |x| s(x.min())));
}

// sum_axis: d broadcast back along the axis; mean_axis: divided by its length;
// max_axis: d at the first maximum along the axis. Every axis, with and
// without keepdim.
#[test]
fn axis_reductions() {
    let mut rng = Rng::seed_from(18);
    let x = distinct(&mut rng, &[2, 3, 4]);
    for axis in 0..3 {
        for keepdim in [false, true] {
            let what = |op: &str| format!("{op} axis {axis} keepdim {keepdim}");
            let sx = shape_of(&x);
            let y = x.sum_axis(axis, keepdim);
            let r = rand(&mut rng, y.shape());
            let g = SumAxis::d_x(&sx, axis, keepdim, &r);
            close(
                &what("sum"),
                &g,
                x.shape(),
                &fd_t(&x, H, &r, |x| x.sum_axis(axis, keepdim)),
            );
            let g = MeanAxis::d_x(&sx, axis, keepdim, &r);
            close(
                &what("mean"),
                &g,
                x.shape(),
                &fd_t(&x, H, &r, |x| x.mean_axis(axis, keepdim)),
            );
            let y = x.max_axis(axis, keepdim);
            let g = MaxAxis::d_x(&x, &y, axis, keepdim, &r);
            close(
                &what("max"),
                &g,
                x.shape(),
                &fd_t(&x, H, &r, |x| x.max_axis(axis, keepdim)),
            );
        }
    }
}

// softmax: dL/dx = y (d - Σ_axis d y); log_softmax: dL/dx = d - e^y Σ_axis d.
// Along both axes of a matrix, and along the middle axis of a rank-3 tensor.
#[test]
fn softmax_and_log_softmax() {
    let mut rng = Rng::seed_from(19);
    for (shape, axis) in [(&[3, 5][..], 1), (&[3, 5], 0), (&[2, 4, 3], 1)] {
        let x = uniform(&mut rng, shape, -2.0, 2.0);
        let r = rand(&mut rng, shape);
        let y = x.softmax(axis);
        let g = Softmax::d_x(&y, axis, &r);
        let want = fd_t(&x, H, &r, |x| x.softmax(axis));
        close(&format!("softmax {shape:?} axis {axis}"), &g, shape, &want);
        let y = x.log_softmax(axis);
        let g = LogSoftmax::d_x(&y, axis, &r);
        let want = fd_t(&x, H, &r, |x| x.log_softmax(axis));
        close(
            &format!("log_softmax {shape:?} axis {axis}"),
            &g,
            shape,
            &want,
        );
    }
}

// ---------------------------------------------------------------------------
// Convolution and pooling
// ---------------------------------------------------------------------------

// y[b,o,i,j] = Σ x[b,c,i s+p-pad, j s+q-pad] w[o,c,p,q]: dL/dx is the transposed
// convolution of d by w, dL/dw[o,c,p,q] = Σ d[b,o,i,j] x[b,c,i s+p-pad, j s+q-pad].
// Stride 2 with padding 1, and stride 1 without padding.
#[test]
fn conv2d() {
    let mut rng = Rng::seed_from(20);
    for (stride, pad) in [(2, 1), (1, 0)] {
        let x = rand(&mut rng, &[2, 3, 7, 6]);
        let w = rand(&mut rng, &[4, 3, 3, 3]);
        let conv = |x: &Tensor, w: &Tensor| x.conv2d(w, stride, pad);
        let r = rand(&mut rng, conv(&x, &w).shape());
        let what = |k: &str| format!("conv2d stride {stride} pad {pad} d_{k}");
        let dx = Conv2d::d_x(&shape_of(&x), &w, stride, pad, &r);
        close(
            &what("x"),
            &dx,
            x.shape(),
            &fd_t(&x, 1e-2, &r, |x| conv(x, &w)),
        );
        let dw = Conv2d::d_weight(&x, &shape_of(&w), stride, pad, &r);
        close(
            &what("w"),
            &dw,
            w.shape(),
            &fd_t(&w, 1e-2, &r, |w| conv(&x, w)),
        );
    }
}

// max_pool2d: dL/dx[m] = Σ d over the windows whose (first) maximum is m;
// 2x2/2 windows and overlapping 3x3/2 windows (a maximum shared by two windows
// gets both cotangents).
#[test]
fn max_pool2d() {
    let mut rng = Rng::seed_from(21);
    for (k, s) in [(2, 2), (3, 2)] {
        let x = distinct(&mut rng, &[2, 2, 6, 7]);
        let r = rand(&mut rng, x.max_pool2d(k, s).shape());
        let g = MaxPool2d::d_x(&x, k, s, &r);
        let want = fd_t(&x, 1e-2, &r, |x| x.max_pool2d(k, s));
        close(&format!("max_pool2d {k}/{s}"), &g, x.shape(), &want);
    }
}

// avg_pool2d: dL/dx[b,c,i s+p,j s+q] += d[b,c,i,j] / k^2.
#[test]
fn avg_pool2d() {
    let mut rng = Rng::seed_from(22);
    for (k, s) in [(2, 2), (3, 2)] {
        let x = rand(&mut rng, &[2, 2, 6, 7]);
        let r = rand(&mut rng, x.avg_pool2d(k, s).shape());
        let g = AvgPool2d::d_x(&shape_of(&x), k, s, &r);
        let want = fd_t(&x, 1e-2, &r, |x| x.avg_pool2d(k, s));
        close(&format!("avg_pool2d {k}/{s}"), &g, x.shape(), &want);
    }
}

// ---------------------------------------------------------------------------
// Indexing and views
// ---------------------------------------------------------------------------

// gather_rows: dL/dx[i, labels[i]] = d[i]; select_rows: rows of d added back
// to the rows they came from (repeated indices add up).
#[test]
fn gather_and_select_rows() {
    let mut rng = Rng::seed_from(23);
    let x = rand(&mut rng, &[4, 3]);
    let labels = [2, 0, 0, 1];
    let r = rand(&mut rng, &[4]);
    let g = GatherRows::d_x(&shape_of(&x), &labels, &r);
    close(
        "gather_rows",
        &g,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.gather_rows(&labels)),
    );
    let x = rand(&mut rng, &[4, 2, 3]);
    let idx = [3, 1, 3, 0, 3];
    let r = rand(&mut rng, &[5, 2, 3]);
    let g = SelectRows::d_x(&shape_of(&x), &idx, &r);
    close(
        "select_rows",
        &g,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.select_rows(&idx)),
    );
}

// The views are linear and bijective on their elements: the rule is the
// inverse view of d (reshape back, swap back, inverse permutation, squeeze the
// added axis, ...); narrow puts d back into a zero tensor at its window.
#[test]
fn views() {
    let mut rng = Rng::seed_from(24);
    let x = rand(&mut rng, &[2, 3, 4]);
    let sx = shape_of(&x);
    let sh = x.shape();

    let r = rand(&mut rng, &[6, 4]);
    let g = Reshape::d_x(&sx, &r);
    close("reshape", &g, sh, &fd_t(&x, H, &r, |x| x.reshape(&[6, 4])));

    let r = rand(&mut rng, &[4, 3, 2]);
    let g = Transpose::d_x(0, 2, &r);
    close("transpose", &g, sh, &fd_t(&x, H, &r, |x| x.transpose(0, 2)));

    let axes = [1, 2, 0];
    let r = rand(&mut rng, &[3, 4, 2]);
    let g = Permute::d_x(&axes, &r);
    close("permute", &g, sh, &fd_t(&x, H, &r, |x| x.permute(&axes)));

    for (axis, start, len) in [(1, 1, 2), (2, 0, 3), (0, 1, 1)] {
        let r = rand(&mut rng, x.narrow(axis, start, len).shape());
        let g = Narrow::d_x(&sx, axis, start, len, &r);
        let want = fd_t(&x, H, &r, |x| x.narrow(axis, start, len));
        close(&format!("narrow {axis} {start} {len}"), &g, sh, &want);
    }

    let r = rand(&mut rng, &[2, 1, 3, 4]);
    let g = Unsqueeze::d_x(1, &r);
    close("unsqueeze", &g, sh, &fd_t(&x, H, &r, |x| x.unsqueeze(1)));

    let x1 = rand(&mut rng, &[3, 1, 4]);
    let r = rand(&mut rng, &[3, 4]);
    let g = Squeeze::d_x(&shape_of(&x1), 1, &r);
    close(
        "squeeze",
        &g,
        x1.shape(),
        &fd_t(&x1, H, &r, |x| x.squeeze(1)),
    );

    let m = rand(&mut rng, &[3, 5]);
    let r = rand(&mut rng, &[5, 3]);
    close("t", &T::d_x(&r), m.shape(), &fd_t(&m, H, &r, |m| m.t()));

    let v = x.transpose(0, 1);
    let r = rand(&mut rng, v.shape());
    let g = Contiguous::d_x(&r);
    close(
        "contiguous",
        &g,
        v.shape(),
        &fd_t(&v, H, &r, |v| v.contiguous()),
    );
}

// broadcast_to: d summed back to x's shape; sum_to_shape: d broadcast back;
// squeeze_all: d reshaped back (rules ready for table entries).
#[test]
fn broadcast_views() {
    let mut rng = Rng::seed_from(25);
    let x = rand(&mut rng, &[3, 1]);
    let r = rand(&mut rng, &[2, 3, 4]);
    let g = BroadcastTo::d_x(&shape_of(&x), &r);
    let want = fd_t(&x, H, &r, |x| x.broadcast_to(&[2, 3, 4]).contiguous());
    close("broadcast_to", &g, x.shape(), &want);
    let x = rand(&mut rng, &[2, 3, 4]);
    let r = rand(&mut rng, &[3, 1]);
    let g = SumToShape::d_x(&shape_of(&x), &r);
    let want = fd_t(&x, H, &r, |x| x.sum_to_shape(&[3, 1]));
    close("sum_to_shape", &g, x.shape(), &want);
    let x = rand(&mut rng, &[1, 3, 1, 2]);
    let r = rand(&mut rng, &[3, 2]);
    let g = SqueezeAll::d_x(&shape_of(&x), &r);
    close(
        "squeeze_all",
        &g,
        x.shape(),
        &fd_t(&x, H, &r, |x| x.squeeze_all()),
    );
}

// ---------------------------------------------------------------------------
// Conventions
// ---------------------------------------------------------------------------

// A shapeless-zero cotangent (a zero of any shape) gives shapeless-zero tensor
// contributions and 0 scalar ones, without a shape error.
#[test]
fn shapeless_zero_cotangent() {
    let x = Tensor::ones(&[2, 3]);
    let w = Tensor::ones(&[3, 4]);
    let z = Tensor::zero();
    assert!(MatMul::d_x(&shape_of(&x), &w, &z).is_shapeless_zero());
    assert!(MatMul::d_other(&x, &shape_of(&w), &z).is_shapeless_zero());
    assert!(AddOp::d_lhs(&shape_of(&x), &shape_of(&w), &z).is_shapeless_zero());
    assert!(MulOp::d_rhs(&x, &shape_of(&w), &z).is_shapeless_zero());
    assert!(Relu::d_x(&x, &z).is_shapeless_zero());
    assert!(SumAxis::d_x(&shape_of(&x), 1, false, &z).is_shapeless_zero());
    assert!(Softmax::d_x(&x, 1, &z).is_shapeless_zero());
    assert!(Narrow::d_x(&shape_of(&x), 1, 0, 2, &z).is_shapeless_zero());
    assert_eq!(MulOp::d_rhs(&x, &shape_of(&2.0f32), &z), 0.0);
    assert_eq!(Powf::d_p(&x, &x, &z), 0.0);
    assert_eq!(Clamp::d_lo(&x, &0.0, &z), 0.0);
}

// Non-smooth points: relu'(0) = 0; maximum/minimum ties go to x; max/min
// reductions and max_axis pick the first extremum; abs'(0) = 0; guarded rules
// give 0 where d = 0 even at a pole (x / 0, ln 0, sqrt 0, recip of 0).
#[test]
fn edges() {
    let x = Tensor::from_vec(vec![0.0, 1.0, -1.0, 1.0], &[2, 2]);
    let d = Tensor::from_vec(vec![0.5, 0.5, 0.5, 0.5], &[2, 2]);
    assert_eq!(Relu::d_x(&x.relu(), &d).to_vec(), [0.0, 0.5, 0.0, 0.5]);
    assert_eq!(Abs::d_x(&x, &d).to_vec(), [0.0, 0.5, -0.5, 0.5]);
    // ties go to x
    assert_eq!(Maximum::d_x(&x, &x, &d).to_vec(), [0.5; 4]);
    assert_eq!(Maximum::d_other(&x, &x, &d).to_vec(), [0.0; 4]);
    assert_eq!(Minimum::d_x(&x, &x, &d).to_vec(), [0.5; 4]);
    // the first maximum / minimum
    assert_eq!(MaxAll::d_x(&x, &1.0, &2.0).to_vec(), [0.0, 2.0, 0.0, 0.0]);
    assert_eq!(MinAll::d_x(&x, &-1.0, &2.0).to_vec(), [0.0, 0.0, 2.0, 0.0]);
    let y = x.max_axis(0, false);
    let dy = Tensor::from_vec(vec![3.0, 4.0], &[2]);
    assert_eq!(
        MaxAxis::d_x(&x, &y, 0, false, &dy).to_vec(),
        [3.0, 4.0, 0.0, 0.0]
    );
    // a NaN maximum goes to the first NaN
    let xn = Tensor::from_vec(vec![1.0, f32::NAN, f32::NAN], &[3]);
    assert_eq!(MaxAll::d_x(&xn, &xn.max(), &1.0).to_vec(), [0.0, 1.0, 0.0]);
    // guarded: d = 0 at a pole gives 0, not NaN
    let zero = Tensor::zeros(&[2, 2]);
    let dz = Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0], &[2, 2]);
    let at_pole = Tensor::from_vec(vec![0.0, 2.0, 0.0, 2.0], &[2, 2]);
    let y = &x / &at_pole;
    let sa = shape_of(&x);
    assert_eq!(
        DivOp::d_lhs(&sa, &at_pole, &dz).to_vec(),
        [0.0, 0.5, 0.0, 0.5]
    );
    assert!(DivOp::d_rhs(&sa, &at_pole, &y, &dz)
        .to_vec()
        .iter()
        .all(|v| v.is_finite()));
    assert_eq!(Ln::d_x(&at_pole, &dz).to_vec(), [0.0, 0.5, 0.0, 0.5]);
    assert_eq!(Sqrt::d_x(&at_pole.sqrt(), &dz).to_vec()[0], 0.0);
    assert_eq!(Recip::d_x(&at_pole.recip(), &dz).to_vec()[0], 0.0);
    assert_eq!(Sqrt::d_x(&zero, &d).to_vec()[0], f32::INFINITY);
    // clamp: at the bounds the cotangent goes to x
    let xc = Tensor::from_vec(vec![-1.0, 1.0], &[2]);
    let dc = Tensor::from_vec(vec![1.0, 1.0], &[2]);
    assert_eq!(Clamp::d_x(&xc, &-1.0, &1.0, &dc).to_vec(), [1.0, 1.0]);
    assert_eq!(Clamp::d_lo(&xc, &-1.0, &dc), 0.0);
    assert_eq!(Clamp::d_hi(&xc, &1.0, &dc), 0.0);
}

// Sums and means hand on broadcast views (no copy of d); accumulating them
// into a gradient gives the right values.
#[test]
fn reduction_rules_are_views() {
    let x = Tensor::ones(&[3, 4]);
    let g = SumAll::d_x(&shape_of(&x), &2.0);
    assert_eq!(g.strides(), &[0, 0]);
    let mut acc = Tensor::ones(&[3, 4]);
    acc.accumulate(g);
    assert_eq!(acc.to_vec(), vec![3.0; 12]);
    let d = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    let g = MeanAxis::d_x(&shape_of(&x), 1, false, &d);
    assert_eq!(g.strides()[1], 0);
    let mut acc = Tensor::zero();
    acc.accumulate(g);
    acc.accumulate(Tensor::ones(&[3, 4]));
    assert_eq!(acc.to_vec()[..5], [1.25, 1.25, 1.25, 1.25, 1.5]);
}
