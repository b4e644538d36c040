//! The models as tapeless users write them: `#[derive(Differentiable)]`
//! structs of tensors with a `#[differentiable]` loss, stepped by `Adam`.

use crate::{uniform, C1, C2, CLASSES, HIDDEN, INPUTS, SIDE};
use tapeless::nn::{cross_entropy, cross_entropy_pullback, kaiming_normal, xavier_uniform, Rng};
use tapeless::optim::{Adam, Optimizer};
use tapeless::tensor::Tensor;
use tapeless::{differentiable, Differentiable};

/// 784-256-10 MLP with ReLU.
#[derive(Differentiable, Clone, Debug)]
pub struct Mlp {
    /// `[784, 256]`
    pub w1: Tensor,
    /// `[256]`
    pub b1: Tensor,
    /// `[256, 10]`
    pub w2: Tensor,
    /// `[10]`
    pub b2: Tensor,
}

impl Mlp {
    /// He-initialised hidden layer, Xavier-initialised output layer, biases
    /// uniform in `[-0.1, 0.1)`.
    pub fn new(seed: u64) -> Mlp {
        let mut rng = Rng::seed_from(seed);
        Mlp {
            w1: kaiming_normal(&mut rng, &[INPUTS, HIDDEN], INPUTS),
            b1: uniform(&mut rng, &[HIDDEN], -0.1, 0.1),
            w2: xavier_uniform(&mut rng, &[HIDDEN, CLASSES], HIDDEN, CLASSES),
            b2: uniform(&mut rng, &[CLASSES], -0.1, 0.1),
        }
    }

    /// Mean cross-entropy of the batch, written with `log_softmax`,
    /// `gather_rows` and `mean` (as `tests/grad_tensor.rs` does).
    #[differentiable(wrt(self))]
    pub fn loss(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let h = (x.matmul(&self.w1) + &self.b1).relu();
        let logits = h.matmul(&self.w2) + &self.b2;
        -logits.log_softmax(1).gather_rows(labels).mean()
    }

    /// The same loss through the fused `tapeless::nn::cross_entropy`.
    #[differentiable(wrt(self))]
    pub fn loss_fused(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let h = (x.matmul(&self.w1) + &self.b1).relu();
        let logits = h.matmul(&self.w2) + &self.b2;
        cross_entropy(&logits, labels)
    }

    /// The weights in the order `w1, b1, w2, b2`.
    pub fn weights(&self) -> Vec<Vec<f32>> {
        [&self.w1, &self.b1, &self.w2, &self.b2]
            .iter()
            .map(|t| t.to_vec())
            .collect()
    }
}

/// The small CNN of the crate docs.
#[derive(Differentiable, Clone, Debug)]
pub struct Cnn {
    /// `[8, 1, 3, 3]`
    pub conv1: Tensor,
    /// `[8, 1, 1]`, broadcast over the image
    pub bias1: Tensor,
    /// `[16, 8, 3, 3]`
    pub conv2: Tensor,
    /// `[16, 1, 1]`
    pub bias2: Tensor,
    /// `[16 · 7 · 7, 10]`
    pub w: Tensor,
    /// `[10]`
    pub b: Tensor,
}

impl Cnn {
    /// He-initialised convolutions, Xavier-initialised output layer, biases
    /// uniform in `[-0.1, 0.1)`.
    pub fn new(seed: u64) -> Cnn {
        let mut rng = Rng::seed_from(seed);
        let features = C2 * (SIDE / 4) * (SIDE / 4);
        Cnn {
            conv1: kaiming_normal(&mut rng, &[C1, 1, 3, 3], 9),
            bias1: uniform(&mut rng, &[C1, 1, 1], -0.1, 0.1),
            conv2: kaiming_normal(&mut rng, &[C2, C1, 3, 3], C1 * 9),
            bias2: uniform(&mut rng, &[C2, 1, 1], -0.1, 0.1),
            w: xavier_uniform(&mut rng, &[features, CLASSES], features, CLASSES),
            b: uniform(&mut rng, &[CLASSES], -0.1, 0.1),
        }
    }

    /// Mean cross-entropy of the batch `x[n, 1, 28, 28]`.
    #[differentiable(wrt(self))]
    pub fn loss(&self, x: &Tensor, labels: &[usize]) -> f32 {
        let h1 = (x.conv2d(&self.conv1, 1, 1) + &self.bias1).relu();
        let p1 = h1.max_pool2d(2, 2);
        let h2 = (p1.conv2d(&self.conv2, 1, 1) + &self.bias2).relu();
        let p2 = h2.max_pool2d(2, 2);
        let n = x.shape()[0];
        let flat = p2.reshape(&[n, self.w.shape()[0]]);
        let logits = flat.matmul(&self.w) + &self.b;
        -logits.log_softmax(1).gather_rows(labels).mean()
    }

    /// The weights in the order `conv1, bias1, conv2, bias2, w, b`.
    pub fn weights(&self) -> Vec<Vec<f32>> {
        [
            &self.conv1,
            &self.bias1,
            &self.conv2,
            &self.bias2,
            &self.w,
            &self.b,
        ]
        .iter()
        .map(|t| t.to_vec())
        .collect()
    }
}

/// One training step of the MLP: loss, gradient, Adam update. Returns the loss.
pub fn mlp_step(model: &mut Mlp, opt: &mut Adam, x: &Tensor, labels: &[usize]) -> f32 {
    let (loss, grad) = model.loss_grad(x, labels);
    opt.step(model, &grad);
    loss
}

/// [`mlp_step`] with the fused cross-entropy.
pub fn mlp_step_fused(model: &mut Mlp, opt: &mut Adam, x: &Tensor, labels: &[usize]) -> f32 {
    let (loss, grad) = model.loss_fused_grad(x, labels);
    opt.step(model, &grad);
    loss
}

/// One training step of the CNN. Returns the loss.
pub fn cnn_step(model: &mut Cnn, opt: &mut Adam, x: &Tensor, labels: &[usize]) -> f32 {
    let (loss, grad) = model.loss_grad(x, labels);
    opt.step(model, &grad);
    loss
}
