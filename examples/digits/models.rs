//! The two classifiers. Each is a `#[derive(Differentiable)]` struct of
//! tensors whose `loss` is a `#[differentiable]` method: the macro writes
//! `loss_grad`, which returns the loss and its gradient with respect to
//! every weight, as a value of the model's own type.

use tapeless::nn::{kaiming_normal, xavier_uniform, Rng};
use tapeless::params::Parameters;
use tapeless::tensor::Tensor;
use tapeless::{differentiable, Differentiable};

/// What the training loop needs of a model.
pub trait Classifier: Parameters + Clone {
    /// The short name (`mlp`, `cnn`).
    fn name(&self) -> &'static str;
    /// Unnormalised class scores `[n, 10]` for images `[n, 1, side, side]`.
    fn predict(&self, x: &Tensor) -> Tensor;
    /// The mean cross-entropy of a batch and its gradient.
    fn loss_and_grad(&self, x: &Tensor, labels: &[usize]) -> (f32, Self);
}

/// A multi-layer perceptron: flatten, `inputs → hidden` (ReLU), `hidden → 10`.
#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Mlp {
    /// `[inputs, hidden]`
    pub w1: Tensor,
    /// `[hidden]`
    pub b1: Tensor,
    /// `[hidden, 10]`
    pub w2: Tensor,
    /// `[10]`
    pub b2: Tensor,
}

impl Mlp {
    /// He-initialised hidden layer, Xavier-initialised output layer, zero biases.
    pub fn new(rng: &mut Rng, inputs: usize, hidden: usize, classes: usize) -> Mlp {
        Mlp {
            w1: kaiming_normal(rng, &[inputs, hidden], inputs),
            b1: Tensor::zeros(&[hidden]),
            w2: xavier_uniform(rng, &[hidden, classes], hidden, classes),
            b2: Tensor::zeros(&[classes]),
        }
    }

    /// Class scores `[n, 10]` for images `[n, ...]`.
    #[differentiable(wrt(self))]
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let n = x.shape()[0];
        let flat = x.reshape(&[n, x.numel() / n]);
        let h = (&flat.matmul(&self.w1) + &self.b1).relu();
        &h.matmul(&self.w2) + &self.b2
    }

    /// Mean cross-entropy of the batch `x` with `labels`, from the logits.
    #[differentiable(wrt(self))]
    pub fn loss(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let log_p = self.logits(x).log_softmax(1);
        -log_p.gather_rows(labels).mean()
    }
}

impl Classifier for Mlp {
    fn name(&self) -> &'static str {
        "mlp"
    }

    fn predict(&self, x: &Tensor) -> Tensor {
        self.logits(x)
    }

    fn loss_and_grad(&self, x: &Tensor, labels: &[usize]) -> (f32, Mlp) {
        self.loss_grad(x, labels)
    }
}

/// A small convolutional network:
/// conv 3x3 (`c1` channels, padding 1) → ReLU → max-pool 2x2 →
/// conv 3x3 (`c2` channels, padding 1) → ReLU → max-pool 2x2 → linear → 10.
#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Cnn {
    /// `[c1, 1, 3, 3]`
    pub conv1: Tensor,
    /// `[c1, 1, 1]`, broadcast over the image
    pub bias1: Tensor,
    /// `[c2, c1, 3, 3]`
    pub conv2: Tensor,
    /// `[c2, 1, 1]`
    pub bias2: Tensor,
    /// `[c2 · (side/4)², 10]`
    pub w: Tensor,
    /// `[10]`
    pub b: Tensor,
}

impl Cnn {
    /// He-initialised convolutions, Xavier-initialised output layer, zero
    /// biases, for `side x side` images.
    pub fn new(rng: &mut Rng, side: usize, c1: usize, c2: usize, classes: usize) -> Cnn {
        let pooled = side / 2 / 2;
        let features = c2 * pooled * pooled;
        Cnn {
            conv1: kaiming_normal(rng, &[c1, 1, 3, 3], 9),
            bias1: Tensor::zeros(&[c1, 1, 1]),
            conv2: kaiming_normal(rng, &[c2, c1, 3, 3], c1 * 9),
            bias2: Tensor::zeros(&[c2, 1, 1]),
            w: xavier_uniform(rng, &[features, classes], features, classes),
            b: Tensor::zeros(&[classes]),
        }
    }

    /// Class scores `[n, 10]` for images `[n, 1, side, side]`.
    #[differentiable(wrt(self))]
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let h1 = (&x.conv2d(&self.conv1, 1, 1) + &self.bias1).relu();
        let p1 = h1.max_pool2d(2, 2);
        let h2 = (&p1.conv2d(&self.conv2, 1, 1) + &self.bias2).relu();
        let p2 = h2.max_pool2d(2, 2);
        let n = x.shape()[0];
        let flat = p2.reshape(&[n, self.w.shape()[0]]);
        &flat.matmul(&self.w) + &self.b
    }

    /// Mean cross-entropy of the batch `x` with `labels`, from the logits.
    #[differentiable(wrt(self))]
    pub fn loss(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let log_p = self.logits(x).log_softmax(1);
        -log_p.gather_rows(labels).mean()
    }
}

impl Classifier for Cnn {
    fn name(&self) -> &'static str {
        "cnn"
    }

    fn predict(&self, x: &Tensor) -> Tensor {
        self.logits(x)
    }

    fn loss_and_grad(&self, x: &Tensor, labels: &[usize]) -> (f32, Cnn) {
        self.loss_grad(x, labels)
    }
}
