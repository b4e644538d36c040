//! The whole training stack on a problem a linear model cannot solve:
//! a two-layer ReLU network, initialised with He/Xavier, trained with AdamW,
//! a warm-up/cosine schedule, gradient clipping and shuffled mini-batches, to
//! classify three interleaved spirals. The backward pass is written by hand
//! from the losses' gradient functions.

use tapeless_runtime::nn::{
    accuracy, cross_entropy, cross_entropy_grad, fans, kaiming_normal, xavier_uniform, Dataset, Rng,
};
use tapeless_runtime::optim::{clip_grad_norm, AdamW, CosineWarmup, Optimizer, Schedule};
use tapeless_runtime::params::num_params;
use tapeless_runtime::tensor::Tensor;

/// `(w1 [2, h], b1 [h], w2 [h, 3], b2 [3])`
type Mlp = (Tensor, Tensor, Tensor, Tensor);

fn spirals(n_per_class: usize, rng: &mut Rng) -> Dataset {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for c in 0..3 {
        for i in 0..n_per_class {
            let r = i as f64 / n_per_class as f64;
            let t = c as f64 * 2.1 + 4.0 * r + 0.15 * rng.normal();
            x.extend([(r * t.sin()) as f32, (r * t.cos()) as f32]);
            y.push(c);
        }
    }
    let n = y.len();
    let data = Dataset::new(Tensor::from_vec(x, &[n, 2]), y);
    let order = rng.permutation(n);
    let (x, y) = data.select(&order);
    Dataset::new(x, y)
}

fn forward(m: &Mlp, x: &Tensor) -> (Tensor, Tensor, Tensor) {
    let z = &x.matmul(&m.0) + &m.1;
    let h = z.relu();
    let logits = &h.matmul(&m.2) + &m.3;
    (z, h, logits)
}

/// dL/d(params) for the mean cross-entropy, by the chain rule:
/// dlogits = (softmax - onehot)/n; dW2 = h^T dlogits; db2 = Σ rows;
/// dh = dlogits W2^T; dz = dh ⊙ [z > 0]; dW1 = x^T dz; db1 = Σ rows.
fn gradient(m: &Mlp, x: &Tensor, y: &[usize]) -> Mlp {
    let (z, h, logits) = forward(m, x);
    let dl = cross_entropy_grad(&logits, y);
    let dw2 = h.t().matmul(&dl);
    let db2 = dl.sum_axis(0, false);
    let dh = dl.matmul(&m.2.t());
    let mask = z.map_elements(|v| if v > 0.0 { 1.0 } else { 0.0 });
    let dz = &dh * &mask;
    (x.t().matmul(&dz), dz.sum_axis(0, false), dw2, db2)
}

#[test]
fn an_mlp_learns_three_spirals() {
    let mut rng = Rng::seed_from(2024);
    let data = spirals(200, &mut rng);
    let (train, test) = data.split_at(480);

    let hidden = 64;
    let (fi, _) = fans(&[hidden, 2]);
    let mut model: Mlp = (
        kaiming_normal(&mut rng, &[2, hidden], fi),
        Tensor::zeros(&[hidden]),
        xavier_uniform(&mut rng, &[hidden, 3], hidden, 3),
        Tensor::zeros(&[3]),
    );
    assert_eq!(num_params(&model), 2 * 64 + 64 + 64 * 3 + 3);

    let epochs = 150;
    let batches_per_epoch = train.batches(32).len() as u64;
    let sched = CosineWarmup::new(0.02, 2 * batches_per_epoch, epochs * batches_per_epoch);
    let mut opt = AdamW::new(0.02).weight_decay(1e-4);
    let (_, _, logits) = forward(&model, test.features());
    let initial = cross_entropy(&logits, test.labels());

    for epoch in 0..epochs {
        for (x, y) in train.epoch(32, 7, epoch) {
            let mut g = gradient(&model, &x, &y);
            let norm = clip_grad_norm(&mut g, 5.0);
            assert!(norm.is_finite());
            sched.apply(&mut opt);
            opt.step(&mut model, &g);
        }
    }

    let (_, _, logits) = forward(&model, test.features());
    let loss = cross_entropy(&logits, test.labels());
    let acc = accuracy(&logits, test.labels());
    eprintln!("test loss {initial} -> {loss}, accuracy {acc}");
    assert!(loss < initial / 4.0, "loss {initial} -> {loss}");
    assert!(acc > 0.9, "test accuracy {acc}");
    let (_, _, logits) = forward(&model, train.features());
    assert!(accuracy(&logits, train.labels()) > 0.9);
}
