//! Losses and their hand-derived gradients.

use crate::__private::NoGrad;
use crate::tensor::Tensor;

#[track_caller]
fn check_same_shape(op: &str, pred: &Tensor, target: &Tensor) {
    if pred.shape() != target.shape() {
        panic!(
            "{op}: prediction of shape {:?} and target of shape {:?} differ",
            pred.shape(),
            target.shape()
        );
    }
}

/// The mean squared error `L = (1/n) Σ (pred_i - target_i)²` over all `n`
/// elements (PyTorch's `mse_loss` with `reduction="mean"`), summed in `f64`.
///
/// # Panics
/// When the shapes differ (the message names both) or there are no elements.
///
/// ```
/// use tapeless_runtime::nn::mse;
/// use tapeless_runtime::tensor::Tensor;
/// let p = Tensor::from_vec(vec![1.0, 2.0], &[2]);
/// let t = Tensor::from_vec(vec![0.0, 4.0], &[2]);
/// assert_eq!(mse(&p, &t), 2.5); // (1 + 4) / 2
/// ```
#[track_caller]
pub fn mse(pred: &Tensor, target: &Tensor) -> f32 {
    check_same_shape("mse", pred, target);
    let n = pred.numel();
    assert!(n > 0, "mse: no elements (shape {:?})", pred.shape());
    let (p, t) = (pred.contiguous(), target.contiguous());
    let sum: f64 = p
        .as_slice()
        .unwrap_or_default()
        .iter()
        .zip(t.as_slice().unwrap_or_default())
        .map(|(&p, &t)| {
            let e = f64::from(p) - f64::from(t);
            e * e
        })
        .sum();
    (sum / n as f64) as f32
}

/// The gradient of [`mse`] with respect to `pred`: `dL/dpred = 2 (pred - target) / n`.
/// (With respect to `target` it is the negation.)
#[track_caller]
pub fn mse_grad(pred: &Tensor, target: &Tensor) -> Tensor {
    mse_adjoint(pred, target, 1.0).1 .0
}

/// [`mse`] and its vector-Jacobian product for the output cotangent `d_out`:
/// `(L, (d_out · 2 (pred - target) / n, -d_out · 2 (pred - target) / n))`.
#[track_caller]
pub fn mse_adjoint(pred: &Tensor, target: &Tensor, d_out: f32) -> (f32, (Tensor, Tensor)) {
    let value = mse(pred, target);
    let scale = 2.0 * d_out / pred.numel() as f32;
    let d_pred = (pred - target) * scale;
    let d_target = -&d_pred;
    (value, (d_pred, d_target))
}

/// What `#[differentiable]` code calls for `mse(pred, target)`.
#[doc(hidden)]
#[track_caller]
pub fn mse_pullback(pred: &Tensor, target: &Tensor, d_out: f32) -> (f32, (Tensor, Tensor)) {
    mse_adjoint(pred, target, d_out)
}

#[track_caller]
fn check_logits(op: &str, logits: &Tensor, labels: &[usize]) -> (usize, usize) {
    let (n, c) = match logits.shape() {
        &[n, c] if n == labels.len() => (n, c),
        s => panic!(
            "{op}: expects logits of shape [{}, classes] for {} labels, got {s:?}",
            labels.len(),
            labels.len()
        ),
    };
    assert!(n > 0, "{op}: no rows");
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= c) {
        panic!("{op}: label {l} at row {i} is out of range for {c} classes");
    }
    (n, c)
}

/// The mean cross-entropy of class scores (logits) `x` of shape `[n, c]`
/// against `n` labels: `L = -(1/n) Σ_i log_softmax(x_i)[label_i]`, where
/// `log_softmax(x)_j = x_j - max x - ln Σ_k exp(x_k - max x)` stays finite
/// for any finite logits (PyTorch's `cross_entropy`, `reduction="mean"`).
///
/// # Panics
/// When `logits` is not `[labels.len(), c]`, there are no rows, or a label is `>= c`.
///
/// ```
/// use tapeless_runtime::nn::cross_entropy;
/// use tapeless_runtime::tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.0, 0.0, 1000.0, 0.0], &[2, 2]);
/// assert!((cross_entropy(&x, &[1, 0]) - 2f32.ln() / 2.0).abs() < 1e-6);
/// ```
#[track_caller]
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> f32 {
    let (n, c) = check_logits("cross_entropy", logits, labels);
    let ls = logits.log_softmax(1);
    let ls = ls.as_slice().unwrap_or_default();
    let sum: f64 = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| f64::from(ls[i * c + l]))
        .sum();
    (-sum / n as f64) as f32
}

/// The gradient of [`cross_entropy`] with respect to the logits:
/// `dL/dx_ij = (softmax(x_i)_j - [j == label_i]) / n`.
#[track_caller]
pub fn cross_entropy_grad(logits: &Tensor, labels: &[usize]) -> Tensor {
    cross_entropy_adjoint(logits, labels, 1.0).1
}

/// [`cross_entropy`] and its vector-Jacobian product for the output cotangent
/// `d_out`: `(L, d_out · (softmax(x) - onehot(labels)) / n)`.
#[track_caller]
pub fn cross_entropy_adjoint(logits: &Tensor, labels: &[usize], d_out: f32) -> (f32, Tensor) {
    let (n, c) = check_logits("cross_entropy", logits, labels);
    let ls = logits.log_softmax(1);
    let ls = ls.as_slice().unwrap_or_default();
    let scale = d_out / n as f32;
    let mut grad: Vec<f32> = ls.iter().map(|&l| l.exp() * scale).collect();
    let mut sum = 0.0f64;
    for (i, &l) in labels.iter().enumerate() {
        sum += f64::from(ls[i * c + l]);
        grad[i * c + l] -= scale;
    }
    ((-sum / n as f64) as f32, Tensor::from_vec(grad, &[n, c]))
}

/// What `#[differentiable]` code calls for `cross_entropy(logits, labels)`.
#[doc(hidden)]
#[track_caller]
pub fn cross_entropy_pullback(
    logits: &Tensor,
    labels: &[usize],
    d_out: f32,
) -> (f32, (Tensor, NoGrad)) {
    let (v, g) = cross_entropy_adjoint(logits, labels, d_out);
    (v, (g, NoGrad))
}

/// The fraction of rows of `logits` (`[n, c]`) whose largest score is at the
/// row's label (the first maximum on ties).
///
/// # Panics
/// As [`cross_entropy`].
///
/// ```
/// use tapeless_runtime::nn::accuracy;
/// use tapeless_runtime::tensor::Tensor;
/// let x = Tensor::from_vec(vec![0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.6, 0.4], &[4, 2]);
/// assert_eq!(accuracy(&x, &[1, 0, 0, 0]), 0.75);
/// ```
#[track_caller]
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> f32 {
    let (n, _) = check_logits("accuracy", logits, labels);
    let hits = logits
        .argmax_axis(1)
        .iter()
        .zip(labels)
        .filter(|(a, b)| a == b)
        .count();
    (hits as f64 / n as f64) as f32
}
