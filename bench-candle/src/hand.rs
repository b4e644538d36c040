//! The MLP's training step written by hand: forward, backward and Adam on
//! buffers allocated once, with the three products of each pass handed to a
//! GEMM. The floor for a step whose time is the GEMMs'.

use crate::{ours, BATCH, CLASSES, HIDDEN, INPUTS};
use tapeless::tensor::matrixmultiply;

/// Which GEMM computes the products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gemm {
    /// The `gemm` crate (what candle's CPU matmul calls), threaded through
    /// rayon with candle's thread count.
    Gemm,
    /// `matrixmultiply::sgemm` (what tapeless's matmul calls).
    MatrixMultiply,
}

/// A strided operand: pointer, row stride, column stride (in elements).
#[derive(Clone, Copy)]
struct Op(*const f32, isize, isize);

/// `c[m, n] = a[m, k] · b[k, n]`, `c` contiguous row-major.
///
/// # Safety
/// `a` and `b` must address `m x k` and `k x n` readable elements with their
/// strides, and `c` must hold `m * n` elements, aliasing neither.
unsafe fn mm(which: Gemm, m: usize, k: usize, n: usize, a: Op, b: Op, c: &mut [f32]) {
    assert!(c.len() >= m * n);
    match which {
        Gemm::Gemm => {
            let threads = candle_core::utils::get_num_threads();
            let par = if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            // SAFETY: as the caller promises; gemm takes (column, row) strides
            // and computes dst = alpha·dst + beta·lhs·rhs (dst not read).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.0,
                    a.2,
                    a.1,
                    b.0,
                    b.2,
                    b.1,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
        Gemm::MatrixMultiply => {
            // SAFETY: as the caller promises.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.0,
                    a.1,
                    a.2,
                    b.0,
                    b.1,
                    b.2,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        }
    }
}

/// One parameter with its gradient and Adam moments.
#[derive(Clone, Debug)]
struct Param {
    w: Vec<f32>,
    g: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Param {
    fn new(w: Vec<f32>) -> Param {
        let n = w.len();
        Param {
            w,
            g: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// PyTorch's Adam step `t` (from 1), betas (0.9, 0.999), eps 1e-8, as
    /// `tapeless::optim::Adam` computes it.
    fn adam(&mut self, lr: f64, t: u64) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f32);
        let bias1 = 1.0 - b1.powf(t as f64);
        let bias2 = 1.0 - b2.powf(t as f64);
        let neg_step = -(lr / bias1) as f32;
        let bias2_sqrt = bias2.sqrt() as f32;
        let (w1, b2f, w2) = ((1.0 - b1) as f32, b2 as f32, (1.0 - b2) as f32);
        for (((p, &g), m), v) in self
            .w
            .iter_mut()
            .zip(&self.g)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m += w1 * (g - *m);
            *v = *v * b2f + w2 * g * g;
            *p += neg_step * (*m / (v.sqrt() / bias2_sqrt + eps));
        }
    }
}

/// The MLP with its buffers.
#[derive(Clone, Debug)]
pub struct Mlp {
    which: Gemm,
    lr: f64,
    t: u64,
    w1: Param,
    b1: Param,
    w2: Param,
    b2: Param,
    /// `[64, 256]` hidden activations after ReLU
    h: Vec<f32>,
    /// `[64, 10]`
    logits: Vec<f32>,
    /// `[64, 10]`
    dlogits: Vec<f32>,
    /// `[64, 256]`
    dh: Vec<f32>,
}

impl Mlp {
    /// The MLP with the weights of `m`.
    pub fn from(m: &ours::Mlp, which: Gemm, lr: f64) -> Mlp {
        Mlp {
            which,
            lr,
            t: 0,
            w1: Param::new(m.w1.to_vec()),
            b1: Param::new(m.b1.to_vec()),
            w2: Param::new(m.w2.to_vec()),
            b2: Param::new(m.b2.to_vec()),
            h: vec![0.0; BATCH * HIDDEN],
            logits: vec![0.0; BATCH * CLASSES],
            dlogits: vec![0.0; BATCH * CLASSES],
            dh: vec![0.0; BATCH * HIDDEN],
        }
    }

    /// Forward and backward: returns the loss and leaves the gradients in the
    /// parameters.
    pub fn loss_grad(&mut self, x: &[f32], labels: &[usize]) -> f32 {
        let (n, d, hd, c) = (BATCH, INPUTS, HIDDEN, CLASSES);
        assert_eq!(x.len(), n * d);
        assert_eq!(labels.len(), n);
        let w = self.which;
        let row = |p: &[f32], cols: usize| Op(p.as_ptr(), cols as isize, 1);
        let col = |p: &[f32], cols: usize| Op(p.as_ptr(), 1, cols as isize);
        // SAFETY (every `mm` below): the operands are the buffers named, of
        // the shapes written beside each call, and the outputs are other buffers.
        // h = relu(x · w1 + b1)                       [n, d] · [d, hd]
        unsafe { mm(w, n, d, hd, row(x, d), row(&self.w1.w, hd), &mut self.h) };
        for r in self.h.chunks_exact_mut(hd) {
            for (h, &b) in r.iter_mut().zip(&self.b1.w) {
                *h = (*h + b).max(0.0);
            }
        }
        // logits = h · w2 + b2                        [n, hd] · [hd, c]
        unsafe {
            mm(
                w,
                n,
                hd,
                c,
                row(&self.h, hd),
                row(&self.w2.w, c),
                &mut self.logits,
            )
        };
        // loss = mean(logsumexp - logit[label]); dlogits = (softmax - onehot) / n
        let mut loss = 0.0f32;
        let inv_n = 1.0 / n as f32;
        for ((lr, dr), &label) in self
            .logits
            .chunks_exact_mut(c)
            .zip(self.dlogits.chunks_exact_mut(c))
            .zip(labels)
        {
            for (l, &b) in lr.iter_mut().zip(&self.b2.w) {
                *l += b;
            }
            let max = lr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for (dz, &z) in dr.iter_mut().zip(lr.iter()) {
                *dz = (z - max).exp();
                sum += *dz;
            }
            loss += sum.ln() + max - lr[label];
            let scale = inv_n / sum;
            for dz in dr.iter_mut() {
                *dz *= scale;
            }
            dr[label] -= inv_n;
        }
        // dw2 = hᵀ · dlogits                          [hd, n] · [n, c]
        unsafe {
            mm(
                w,
                hd,
                n,
                c,
                col(&self.h, hd),
                row(&self.dlogits, c),
                &mut self.w2.g,
            )
        };
        col_sums(&self.dlogits, c, &mut self.b2.g);
        // dh = (dlogits · w2ᵀ) ⊙ (h > 0)              [n, c] · [c, hd]
        unsafe {
            mm(
                w,
                n,
                c,
                hd,
                row(&self.dlogits, c),
                col(&self.w2.w, c),
                &mut self.dh,
            )
        };
        for (dh, &h) in self.dh.iter_mut().zip(&self.h) {
            if h <= 0.0 {
                *dh = 0.0;
            }
        }
        // dw1 = xᵀ · dh                               [d, n] · [n, hd]
        unsafe { mm(w, d, n, hd, col(x, d), row(&self.dh, hd), &mut self.w1.g) };
        col_sums(&self.dh, hd, &mut self.b1.g);
        loss * inv_n
    }

    /// One training step; returns the loss.
    pub fn step(&mut self, x: &[f32], labels: &[usize]) -> f32 {
        let loss = self.loss_grad(x, labels);
        self.t += 1;
        for p in [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2] {
            p.adam(self.lr, self.t);
        }
        loss
    }

    /// The gradients of the last [`loss_grad`](Mlp::loss_grad), `w1, b1, w2, b2`.
    pub fn grads(&self) -> Vec<Vec<f32>> {
        [&self.w1, &self.b1, &self.w2, &self.b2]
            .iter()
            .map(|p| p.g.clone())
            .collect()
    }

    /// The current weights, `w1, b1, w2, b2`.
    pub fn weights(&self) -> Vec<Vec<f32>> {
        [&self.w1, &self.b1, &self.w2, &self.b2]
            .iter()
            .map(|p| p.w.clone())
            .collect()
    }
}

/// `out[j] = Σ_r a[r, j]` for row-major `a` with `cols` columns.
fn col_sums(a: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for r in a.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(r) {
            *o += v;
        }
    }
}
