//! The same models on candle's CPU backend: weights are `Var`s, the forward
//! pass records the graph, `backward()` walks it, and `candle_nn::AdamW` with
//! no weight decay (which is Adam) updates the `Var`s.
//!
//! Weights keep our layout (`x.matmul(w)`, `w: [in, out]`) so both sides run
//! the same products on the same buffers.

use crate::ours;
use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use tapeless::tensor::Tensor as TlTensor;

/// A candle tensor with the shape and values of one of ours.
pub fn tensor(t: &TlTensor) -> Tensor {
    Tensor::from_vec(t.to_vec(), t.shape(), &Device::Cpu).expect("shape matches data")
}

/// A candle `Var` initialised from one of our tensors.
pub fn var(t: &TlTensor) -> Var {
    Var::from_tensor(&tensor(t)).expect("a float tensor")
}

/// The labels as the `u32` tensor `cross_entropy` takes.
pub fn labels(labels: &[usize]) -> Tensor {
    let v: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    Tensor::from_vec(v, labels.len(), &Device::Cpu).expect("shape matches data")
}

/// All the values of a tensor, row-major.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("an f32 tensor")
}

/// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
fn adam(vars: Vec<Var>, lr: f64) -> AdamW {
    let params = ParamsAdamW {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    AdamW::new(vars, params).expect("f32 vars")
}

/// The MLP's `Var`s and their optimizer.
pub struct Mlp {
    /// `w1, b1, w2, b2`
    pub vars: Vec<Var>,
    opt: AdamW,
}

impl Mlp {
    /// The MLP with the weights of `m`.
    pub fn from(m: &ours::Mlp, lr: f64) -> Mlp {
        let vars: Vec<Var> = [&m.w1, &m.b1, &m.w2, &m.b2].into_iter().map(var).collect();
        let opt = adam(vars.clone(), lr);
        Mlp { vars, opt }
    }

    /// The mean cross-entropy of the batch (recorded for `backward`).
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let [w1, b1, w2, b2] = &self.vars[..] else {
            unreachable!("four vars")
        };
        let h = x.matmul(w1)?.broadcast_add(b1)?.relu()?;
        let logits = h.matmul(w2)?.broadcast_add(b2)?;
        candle_nn::loss::cross_entropy(&logits, labels)
    }

    /// Loss and gradients, without updating.
    pub fn loss_grad(&self, x: &Tensor, labels: &Tensor) -> Result<(f32, GradStore)> {
        let loss = self.loss(x, labels)?;
        let grads = loss.backward()?;
        Ok((loss.to_scalar::<f32>()?, grads))
    }

    /// One training step; returns the loss.
    pub fn step(&mut self, x: &Tensor, labels: &Tensor) -> Result<f32> {
        let loss = self.loss(x, labels)?;
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        loss.to_scalar::<f32>()
    }

    /// The current weights in the order `w1, b1, w2, b2`.
    pub fn weights(&self) -> Vec<Vec<f32>> {
        self.vars.iter().map(|v| values(v.as_tensor())).collect()
    }
}

/// The CNN's `Var`s and their optimizer.
pub struct Cnn {
    /// `conv1, bias1, conv2, bias2, w, b`
    pub vars: Vec<Var>,
    opt: AdamW,
}

impl Cnn {
    /// The CNN with the weights of `m`.
    pub fn from(m: &ours::Cnn, lr: f64) -> Cnn {
        let vars: Vec<Var> = [&m.conv1, &m.bias1, &m.conv2, &m.bias2, &m.w, &m.b]
            .into_iter()
            .map(var)
            .collect();
        let opt = adam(vars.clone(), lr);
        Cnn { vars, opt }
    }

    /// The mean cross-entropy of the batch `x[n, 1, 28, 28]`.
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let [conv1, bias1, conv2, bias2, w, b] = &self.vars[..] else {
            unreachable!("six vars")
        };
        // conv2d(kernel, padding, stride, dilation, groups)
        let h1 = x.conv2d(conv1, 1, 1, 1, 1)?.broadcast_add(bias1)?.relu()?;
        let p1 = h1.max_pool2d(2)?;
        let h2 = p1.conv2d(conv2, 1, 1, 1, 1)?.broadcast_add(bias2)?.relu()?;
        let p2 = h2.max_pool2d(2)?;
        let flat = p2.flatten_from(1)?;
        let logits = flat.matmul(w)?.broadcast_add(b)?;
        candle_nn::loss::cross_entropy(&logits, labels)
    }

    /// Loss and gradients, without updating.
    pub fn loss_grad(&self, x: &Tensor, labels: &Tensor) -> Result<(f32, GradStore)> {
        let loss = self.loss(x, labels)?;
        let grads = loss.backward()?;
        Ok((loss.to_scalar::<f32>()?, grads))
    }

    /// One training step; returns the loss.
    pub fn step(&mut self, x: &Tensor, labels: &Tensor) -> Result<f32> {
        let loss = self.loss(x, labels)?;
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        loss.to_scalar::<f32>()
    }

    /// The current weights in the order `conv1, bias1, conv2, bias2, w, b`.
    pub fn weights(&self) -> Vec<Vec<f32>> {
        self.vars.iter().map(|v| values(v.as_tensor())).collect()
    }
}

/// The gradient of each var, in order (zeros where candle kept none).
pub fn grads(vars: &[Var], g: &GradStore) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|v| match g.get(v) {
            Some(t) => values(t),
            None => vec![0.0; v.elem_count()],
        })
        .collect()
}
