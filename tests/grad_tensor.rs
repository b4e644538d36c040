//! End-to-end gradients of `#[differentiable]` functions over tensors: an MLP
//! classifier, a derived model struct with a loss method, a small CNN, MSE
//! regression, an RNN loop, branches, views, tensor/scalar arithmetic, calls
//! between differentiable functions and slices of weight tensors. Each
//! gradient is checked against central finite differences of the primal on a
//! few elements of every parameter.
//!
//! The code is written as one would write it without AD: owned temporaries
//! consumed by operators (`x.matmul(w) + b`), borrowed operands (`&h + &b`),
//! and both mixed.

use tapeless::nn::Rng;
use tapeless::tensor::Tensor;
use tapeless::{differentiable, Differentiable};

// ---------------------------------------------------------------------------
// Oracle
// ---------------------------------------------------------------------------

/// Step of the finite differences (the primal is `f32`).
const H: f32 = 3e-3;
/// Relative tolerance of a gradient element against its finite difference.
const RTOL: f64 = 2e-2;
/// Absolute tolerance floor.
const ATOL: f64 = 2e-3;

/// Uniform values in `[-scale, scale)`.
fn rand(rng: &mut Rng, shape: &[usize], scale: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| rng.uniform_in(-scale, scale) as f32)
            .collect(),
        shape,
    )
}

/// The central difference of `f` in element `i` of `p`.
fn fd_at(p: &Tensor, i: usize, f: &dyn Fn(&Tensor) -> f32) -> f64 {
    let mut v = p.to_vec();
    let x0 = v[i];
    v[i] = x0 + H;
    let up = f64::from(f(&Tensor::from_slice(&v, p.shape())));
    v[i] = x0 - H;
    let down = f64::from(f(&Tensor::from_slice(&v, p.shape())));
    (up - down) / (f64::from(x0 + H) - f64::from(x0 - H))
}

/// Checks the gradient `g` of `f` with respect to `p` on six elements spread
/// over `p` (first, last and four in between), and its shape.
#[track_caller]
fn check(what: &str, p: &Tensor, g: &Tensor, f: &dyn Fn(&Tensor) -> f32) {
    assert_eq!(g.shape(), p.shape(), "{what}: gradient shape");
    let n = p.numel();
    let gv = g.to_vec();
    let mut idx: Vec<usize> = (0..6).map(|k| k * (n - 1) / 5).collect();
    idx.dedup();
    for i in idx {
        let want = fd_at(p, i, f);
        let got = f64::from(gv[i]);
        let tol = ATOL + RTOL * got.abs().max(want.abs());
        assert!(
            (got - want).abs() <= tol,
            "{what}[{i}]: gradient {got} vs finite difference {want}"
        );
    }
}

/// Checks a scalar gradient against the finite difference of `f`.
#[track_caller]
fn check_scalar(what: &str, x: f32, g: f32, f: &dyn Fn(f32) -> f32) {
    let want = (f64::from(f(x + H)) - f64::from(f(x - H))) / (f64::from(x + H) - f64::from(x - H));
    let got = f64::from(g);
    let tol = ATOL + RTOL * got.abs().max(want.abs());
    assert!(
        (got - want).abs() <= tol,
        "{what}: gradient {got} vs finite difference {want}"
    );
}

// ---------------------------------------------------------------------------
// MLP classifier
// ---------------------------------------------------------------------------

/// Two-layer MLP with softmax cross-entropy, written as a training loss.
#[differentiable]
fn mlp_loss(w1: &Tensor, b1: &Tensor, w2: &Tensor, #[no_grad] x: &Tensor, labels: &[usize]) -> f32 {
    let h = (x.matmul(w1) + b1).relu();
    let logits = h.matmul(w2);
    -logits.log_softmax(1).gather_rows(labels).mean()
}

#[test]
fn mlp() {
    let mut rng = Rng::seed_from(1);
    let (w1, b1) = (rand(&mut rng, &[4, 8], 0.8), rand(&mut rng, &[8], 0.3));
    let w2 = rand(&mut rng, &[8, 3], 0.8);
    let x = rand(&mut rng, &[5, 4], 1.0);
    let labels = [0, 2, 1, 1, 0];
    let (v, (g1, gb, g2)) = mlp_loss_grad(&w1, &b1, &w2, &x, &labels);
    assert_eq!(v, mlp_loss(&w1, &b1, &w2, &x, &labels));
    check("w1", &w1, &g1, &|p| mlp_loss(p, &b1, &w2, &x, &labels));
    check("b1", &b1, &gb, &|p| mlp_loss(&w1, p, &w2, &x, &labels));
    check("w2", &w2, &g2, &|p| mlp_loss(&w1, &b1, p, &x, &labels));
    // The adjoint with a cotangent of 2 doubles the gradient.
    let (_, (g1b, _, _)) = mlp_loss_adjoint(&w1, &b1, &w2, &x, &labels, 2.0);
    let doubled: Vec<f32> = g1.to_vec().iter().map(|v| 2.0 * v).collect();
    assert_eq!(g1b.to_vec(), doubled);
}

// ---------------------------------------------------------------------------
// A derived model struct with a loss method
// ---------------------------------------------------------------------------

/// A model whose gradient is the model itself.
#[derive(Differentiable, Clone, Debug)]
struct Classifier {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Classifier {
    fn new(rng: &mut Rng) -> Classifier {
        Classifier {
            w1: rand(rng, &[3, 6], 0.8),
            b1: rand(rng, &[6], 0.3),
            w2: rand(rng, &[6, 4], 0.8),
            b2: rand(rng, &[4], 0.3),
        }
    }

    /// Cross-entropy of a `tanh` MLP.
    #[differentiable(wrt(self))]
    fn loss(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let h = (x.matmul(&self.w1) + &self.b1).tanh();
        let logits = h.matmul(&self.w2) + &self.b2;
        -logits.log_softmax(1).gather_rows(labels).mean()
    }
}

#[test]
fn derived_model() {
    let mut rng = Rng::seed_from(2);
    let m = Classifier::new(&mut rng);
    let x = rand(&mut rng, &[6, 3], 1.0);
    let labels = [3, 0, 1, 2, 2, 1];
    let (v, g): (f32, Classifier) = m.loss_grad(&x, &labels);
    assert_eq!(v, m.loss(&x, &labels));
    let with = |f: &dyn Fn(&mut Classifier)| {
        let mut m2 = m.clone();
        f(&mut m2);
        m2.loss(&x, &labels)
    };
    check("w1", &m.w1, &g.w1, &|p| with(&|m| m.w1 = p.clone()));
    check("b1", &m.b1, &g.b1, &|p| with(&|m| m.b1 = p.clone()));
    check("w2", &m.w2, &g.w2, &|p| with(&|m| m.w2 = p.clone()));
    check("b2", &m.b2, &g.b2, &|p| with(&|m| m.b2 = p.clone()));
}

// ---------------------------------------------------------------------------
// A small CNN
// ---------------------------------------------------------------------------

/// conv (stride 2, padding 1) → relu → 2x2 max pool → flatten → linear →
/// cross-entropy.
#[differentiable]
fn cnn_loss(k: &Tensor, w: &Tensor, #[no_grad] x: &Tensor, labels: &[usize]) -> f32 {
    let h = x.conv2d(k, 2, 1).relu().max_pool2d(2, 2);
    let flat = h.reshape(&[3, 16]);
    let logits = flat.matmul(w);
    -logits.log_softmax(1).gather_rows(labels).mean()
}

#[test]
fn cnn() {
    let mut rng = Rng::seed_from(3);
    let k = rand(&mut rng, &[4, 2, 3, 3], 0.5);
    let w = rand(&mut rng, &[16, 3], 0.5);
    let x = rand(&mut rng, &[3, 2, 8, 8], 1.0);
    let labels = [1, 0, 2];
    let (v, (gk, gw)) = cnn_loss_grad(&k, &w, &x, &labels);
    assert_eq!(v, cnn_loss(&k, &w, &x, &labels));
    check("kernel", &k, &gk, &|p| cnn_loss(p, &w, &x, &labels));
    check("w", &w, &gw, &|p| cnn_loss(&k, p, &x, &labels));
}

/// Average pooling, a global mean over the spatial axes, and a linear layer.
#[differentiable]
fn pooled(k: &Tensor, w: &Tensor, #[no_grad] x: &Tensor) -> f32 {
    let h = x.conv2d(k, 1, 0).sigmoid().avg_pool2d(2, 2);
    let g = h.mean_axis(3, false).mean_axis(2, false);
    g.matmul(w).square().sum()
}

#[test]
fn cnn_avg_pool() {
    let mut rng = Rng::seed_from(4);
    let k = rand(&mut rng, &[3, 1, 3, 3], 0.5);
    let w = rand(&mut rng, &[3, 2], 0.5);
    let x = rand(&mut rng, &[2, 1, 6, 6], 1.0);
    let (_, (gk, gw)) = pooled_grad(&k, &w, &x);
    check("kernel", &k, &gk, &|p| pooled(p, &w, &x));
    check("w", &w, &gw, &|p| pooled(&k, p, &x));
}

// ---------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------

/// Mean squared error of a linear model.
#[differentiable]
fn mse(w: &Tensor, b: &Tensor, #[no_grad] x: &Tensor, #[no_grad] y: &Tensor) -> f32 {
    let pred = x.matmul(w) + b;
    (pred - y).square().mean()
}

#[test]
fn mse_regression() {
    let mut rng = Rng::seed_from(5);
    let (w, b) = (rand(&mut rng, &[3, 2], 1.0), rand(&mut rng, &[2], 1.0));
    let x = rand(&mut rng, &[7, 3], 1.0);
    let y = rand(&mut rng, &[7, 2], 1.0);
    let (v, (gw, gb)) = mse_grad(&w, &b, &x, &y);
    assert_eq!(v, mse(&w, &b, &x, &y));
    check("w", &w, &gw, &|p| mse(p, &b, &x, &y));
    check("b", &b, &gb, &|p| mse(&w, p, &x, &y));
    // Against the closed form: dL/dw = 2/N x^T (pred - y), N = 7 * 2.
    let e = &(&x.matmul(&w) + &b) - &y;
    let want = &x.t().matmul(&e) * (2.0 / 14.0);
    for (g, w) in gw.to_vec().iter().zip(want.to_vec()) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

// ---------------------------------------------------------------------------
// Control flow, calls, views, mixed arithmetic
// ---------------------------------------------------------------------------

/// An Elman RNN over a sequence: the hidden state is a loop-carried tensor.
#[differentiable]
fn rnn(wh: &Tensor, wx: &Tensor, #[no_grad] xs: &[Tensor]) -> f32 {
    let mut h = Tensor::zeros(&[1, 4]);
    for x in xs {
        h = (h.matmul(wh) + x.matmul(wx)).tanh();
    }
    h.sum()
}

#[test]
fn rnn_loop() {
    let mut rng = Rng::seed_from(6);
    let wh = rand(&mut rng, &[4, 4], 0.7);
    let wx = rand(&mut rng, &[3, 4], 0.7);
    let xs: Vec<Tensor> = (0..5).map(|_| rand(&mut rng, &[1, 3], 1.0)).collect();
    let (v, (gh, gx)) = rnn_grad(&wh, &wx, &xs);
    assert_eq!(v, rnn(&wh, &wx, &xs));
    check("wh", &wh, &gh, &|p| rnn(p, &wx, &xs));
    check("wx", &wx, &gx, &|p| rnn(&wh, p, &xs));
}

/// A stack of layers given as a slice of weight tensors.
#[differentiable]
fn deep(ws: &[Tensor], #[no_grad] x: &Tensor) -> f32 {
    let mut h = x.clone();
    for w in ws {
        h = h.matmul(w).gelu();
    }
    h.mean()
}

#[test]
fn layers_in_a_slice() {
    let mut rng = Rng::seed_from(7);
    let ws: Vec<Tensor> = (0..3).map(|_| rand(&mut rng, &[4, 4], 0.9)).collect();
    let x = rand(&mut rng, &[2, 4], 1.0);
    let (v, g) = deep_grad(&ws, &x);
    assert_eq!(v, deep(&ws, &x));
    assert_eq!(g.len(), 3);
    for i in 0..3 {
        check(&format!("ws[{i}]"), &ws[i], &g[i], &|p| {
            let mut ws2 = ws.clone();
            ws2[i] = p.clone();
            deep(&ws2, &x)
        });
    }
}

/// A layer returning a tensor, called from another differentiable function.
#[differentiable]
fn layer(x: &Tensor, w: &Tensor) -> Tensor {
    x.matmul(w).leaky_relu(0.1)
}

#[differentiable]
fn two_layers(#[no_grad] x: &Tensor, w1: &Tensor, w2: &Tensor) -> f32 {
    let h = layer(x, w1);
    layer(&h, w2).softmax(0).max_axis(1, false).sum()
}

#[test]
fn calls_returning_tensors() {
    let mut rng = Rng::seed_from(8);
    let x = rand(&mut rng, &[3, 4], 1.0);
    let (w1, w2) = (rand(&mut rng, &[4, 5], 0.8), rand(&mut rng, &[5, 2], 0.8));
    let (_, (g1, g2)) = two_layers_grad(&x, &w1, &w2);
    check("w1", &w1, &g1, &|p| two_layers(&x, p, &w2));
    check("w2", &w2, &g2, &|p| two_layers(&x, &w1, p));
}

/// The primal picks a branch by a flag; only the taken branch's rule runs.
#[differentiable]
fn branch(x: &Tensor, flag: bool) -> f32 {
    let y = if flag { x.relu() } else { x.sigmoid() };
    y.sum()
}

#[test]
fn branches() {
    let mut rng = Rng::seed_from(9);
    let x = rand(&mut rng, &[2, 3], 1.0);
    for flag in [true, false] {
        let (_, g) = branch_grad(&x, flag);
        check(&format!("branch {flag}"), &x, &g, &|p| branch(p, flag));
    }
}

/// Views chained with products: `t`, `transpose`, `reshape`, `permute`,
/// `narrow`, `unsqueeze`, `squeeze`, `contiguous`.
#[differentiable]
fn views(x: &Tensor, w: &Tensor) -> f32 {
    let a = x.t().matmul(w).transpose(0, 1);
    let b = a.reshape(&[2, 3, 1]).permute(&[2, 0, 1]).squeeze(0);
    let c = b.narrow(1, 1, 2).unsqueeze(2).contiguous();
    c.sin().sum() + a.sum_axis(1, true).exp().sum()
}

#[test]
fn chained_views() {
    let mut rng = Rng::seed_from(10);
    let x = rand(&mut rng, &[4, 3], 1.0);
    let w = rand(&mut rng, &[4, 2], 0.5);
    let (_, (gx, gw)) = views_grad(&x, &w);
    check("x", &x, &gx, &|p| views(p, &w));
    check("w", &w, &gw, &|p| views(&x, p));
}

/// Tensor-scalar arithmetic with an active scalar, reductions along axes and
/// element-wise math.
#[differentiable]
fn mixed(x: &Tensor, k: f32) -> f32 {
    let y = x * 2.0 + 1.0;
    let z = (k * x) / k;
    let u = 1.0 - &y * &z;
    let v = u.mean_axis(0, false).max_axis(0, true).sum();
    v * k + x.powf(2.0).clamp(0.05, 0.6).sum() + (x / k).abs().sqrt().sum()
}

#[test]
fn tensor_scalar_mix() {
    let mut rng = Rng::seed_from(11);
    let x = rand(&mut rng, &[3, 4], 1.0);
    let k = 1.3f32;
    let (v, (gx, gk)) = mixed_grad(&x, k);
    assert_eq!(v, mixed(&x, k));
    check("x", &x, &gx, &|p| mixed(p, k));
    check_scalar("k", k, gk, &|k| mixed(&x, k));
}

/// `stop_gradient` of a tensor statistic: the centring mean is a constant.
#[differentiable]
fn centred(x: &Tensor) -> f32 {
    let m = tapeless::stop_gradient(x.mean());
    (x - m).square().sum()
}

#[test]
fn stop_gradient_of_a_statistic() {
    let mut rng = Rng::seed_from(12);
    let x = rand(&mut rng, &[2, 5], 1.0);
    let (_, g) = centred_grad(&x);
    // d/dx Σ (x - m)^2 with m held constant is 2 (x - m).
    let m = x.mean();
    for (g, v) in g.to_vec().iter().zip(x.to_vec()) {
        assert!((g - 2.0 * (v - m)).abs() < 1e-6);
    }
}

/// An owned tensor parameter.
#[differentiable]
fn owned(x: Tensor) -> f32 {
    let n = x.numel() as f32;
    x.max() + x.min() + x.sum() / n
}

#[test]
fn owned_parameter() {
    let x = Tensor::from_vec(vec![0.3, -1.0, 2.0, 0.5], &[4]);
    let (_, g) = owned_grad(x.clone());
    // The maximum is x[2], the minimum x[1], and the mean adds 1/4 to each.
    assert_eq!(g.to_vec(), vec![0.25, 1.25, 1.25, 0.25]);
}

/// A loop whose local tensor feeds the loss only on some iterations: on the
/// others its cotangent stays zero (possibly the shapeless zero), and the
/// rules below it must hand on a zero.
#[differentiable]
fn masked(w: &Tensor, #[no_grad] xs: &[Tensor], mask: &[bool]) -> f32 {
    let mut total = 0.0;
    for i in 0..xs.len() {
        let z = xs[i].matmul(w).tanh();
        let p = z.softmax(1);
        if mask[i] {
            total += p.max() + z.sum_axis(1, false).sum();
        }
    }
    total
}

#[test]
fn loop_with_unused_iterations() {
    let mut rng = Rng::seed_from(13);
    let w = rand(&mut rng, &[3, 4], 0.8);
    let xs: Vec<Tensor> = (0..4).map(|_| rand(&mut rng, &[2, 3], 1.0)).collect();
    let mask = [true, false, false, true];
    let (v, g) = masked_grad(&w, &xs, &mask);
    assert_eq!(v, masked(&w, &xs, &mask));
    check("w", &w, &g, &|p| masked(p, &xs, &mask));
    let (_, g) = masked_grad(&w, &xs, &[false; 4]);
    assert!(g.to_vec().iter().all(|&v| v == 0.0));
}

/// The remaining element-wise and indexing rules through the macro:
/// `select_rows`, `maximum`, `minimum`, `ln`, `cos`, `recip`, `min`, `exp`.
#[differentiable]
fn more_ops(a: &Tensor, b: &Tensor, #[no_grad] rows: &[usize]) -> f32 {
    let s = a.select_rows(rows);
    let m = s.maximum(b).minimum(&b.exp());
    let l = (m.square() + 0.5).recip().ln();
    l.cos().sum() + s.min() * 0.5
}

#[test]
fn remaining_ops() {
    let mut rng = Rng::seed_from(14);
    let a = rand(&mut rng, &[4, 3], 1.0);
    let b = rand(&mut rng, &[3], 1.0);
    let rows = [2, 0, 2];
    let (v, (ga, gb)) = more_ops_grad(&a, &b, &rows);
    assert_eq!(v, more_ops(&a, &b, &rows));
    check("a", &a, &ga, &|p| more_ops(p, &b, &rows));
    check("b", &b, &gb, &|p| more_ops(&a, p, &rows));
}

/// Compound assignment of tensors in a loop and a shape read from a value.
#[differentiable]
fn accumulate(w: &Tensor, #[no_grad] xs: &[Tensor]) -> f32 {
    let mut acc = Tensor::zeros(&[1, 2]);
    for x in xs {
        acc += x.matmul(w).sigmoid();
    }
    let n = acc.shape()[1];
    acc.reshape(&[n, 1]).sum_axis(0, true).square().sum()
}

#[test]
fn compound_assignment() {
    let mut rng = Rng::seed_from(15);
    let w = rand(&mut rng, &[3, 2], 1.0);
    let xs: Vec<Tensor> = (0..3).map(|_| rand(&mut rng, &[1, 3], 1.0)).collect();
    let (v, g) = accumulate_grad(&w, &xs);
    assert_eq!(v, accumulate(&w, &xs));
    check("w", &w, &g, &|p| accumulate(p, &xs));
}

/// Gradients that the rules hand on as views of one cotangent (a stride-0
/// broadcast for `sum`, the same buffer for both operands of `+`).
#[differentiable]
fn sum_of_sum(a: &Tensor, b: &Tensor) -> f32 {
    (a + b).sum() + a.t().mean()
}

#[test]
fn gradients_that_are_views() {
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = Tensor::ones(&[3]);
    let (_, (ga, mut gb)) = sum_of_sum_grad(&a, &b);
    assert_eq!(ga.shape(), [2, 3]);
    assert_eq!(ga.to_vec(), vec![1.0 + 1.0 / 6.0; 6]);
    assert_eq!(gb.to_vec(), vec![2.0; 3]);
    // In-place updates of a gradient never write through to another one.
    gb *= 0.5;
    assert_eq!(gb.to_vec(), vec![1.0; 3]);
    assert_eq!(ga.to_vec(), vec![1.0 + 1.0 / 6.0; 6]);
    let mut p = a.clone();
    p -= &ga;
    assert_eq!(p.get(&[1, 2]), 6.0 - (1.0 + 1.0 / 6.0));
}
