//! Losses and their hand-derived gradients, against finite differences.

use tapeless_runtime::nn::{
    accuracy, cross_entropy, cross_entropy_adjoint, cross_entropy_grad, mse, mse_adjoint, mse_grad,
    Rng,
};
use tapeless_runtime::tensor::Tensor;

/// Central differences of `f` at `x`, one element at a time:
/// `(f(x + h e_i) - f(x - h e_i)) / 2h`.
fn finite_differences(x: &Tensor, h: f32, f: impl Fn(&Tensor) -> f32) -> Vec<f32> {
    let base = x.to_vec();
    (0..base.len())
        .map(|i| {
            let mut plus = base.clone();
            plus[i] += h;
            let mut minus = base.clone();
            minus[i] -= h;
            let fp = f(&Tensor::from_vec(plus, x.shape()));
            let fm = f(&Tensor::from_vec(minus, x.shape()));
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "element {i}: got {g}, want {w}\n{got:?}\n{want:?}"
        );
    }
}

fn random(rng: &mut Rng, shape: &[usize], scale: f64) -> Tensor {
    tapeless_runtime::nn::normal(rng, shape, 0.0, scale)
}

#[test]
fn mse_value() {
    // ((1-0)^2 + (2-4)^2 + (3-3)^2 + (0-1)^2) / 4 = (1 + 4 + 0 + 1) / 4
    let p = Tensor::from_vec(vec![1.0, 2.0, 3.0, 0.0], &[2, 2]);
    let t = Tensor::from_vec(vec![0.0, 4.0, 3.0, 1.0], &[2, 2]);
    assert_eq!(mse(&p, &t), 1.5);
    // dL/dp = 2 (p - t) / 4
    assert_eq!(mse_grad(&p, &t).to_vec(), [0.5, -1.0, 0.0, -0.5]);
}

#[test]
fn mse_gradient_matches_finite_differences() {
    let mut rng = Rng::seed_from(1);
    let p = random(&mut rng, &[3, 4], 1.0);
    let t = random(&mut rng, &[3, 4], 1.0);
    let fd_p = finite_differences(&p, 1e-2, |p| mse(p, &t));
    let fd_t = finite_differences(&t, 1e-2, |t| mse(&p, t));
    let (v, (dp, dt)) = mse_adjoint(&p, &t, 1.0);
    assert_eq!(v, mse(&p, &t));
    assert_close(&dp.to_vec(), &fd_p, 1e-3);
    assert_close(&dt.to_vec(), &fd_t, 1e-3);
    // the adjoint scales by the output cotangent
    let (_, (dp3, _)) = mse_adjoint(&p, &t, 3.0);
    let scaled: Vec<f32> = dp.to_vec().iter().map(|x| 3.0 * x).collect();
    assert_close(&dp3.to_vec(), &scaled, 1e-6);
}

#[test]
fn mse_reads_strided_views() {
    let p = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let t = Tensor::zeros(&[2, 2]);
    assert_eq!(mse(&p.t(), &t), mse(&p, &t));
}

#[test]
#[should_panic(expected = "mse: prediction of shape [2] and target of shape [3] differ")]
fn mse_names_both_shapes() {
    mse(&Tensor::zeros(&[2]), &Tensor::zeros(&[3]));
}

#[test]
fn cross_entropy_value() {
    // row 0: logits (0, ln 3): softmax (1/4, 3/4), label 1: -ln(3/4)
    // row 1: logits (0, 0): label 0: -ln(1/2)
    let x = Tensor::from_vec(vec![0.0, 3f32.ln(), 0.0, 0.0], &[2, 2]);
    let want = (-(0.75f64.ln()) - 0.5f64.ln()) / 2.0;
    assert!((f64::from(cross_entropy(&x, &[1, 0])) - want).abs() < 1e-6);
    // dL/dx = (softmax - onehot) / 2
    assert_close(
        &cross_entropy_grad(&x, &[1, 0]).to_vec(),
        &[0.125, -0.125, -0.25, 0.25],
        1e-6,
    );
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let mut rng = Rng::seed_from(2);
    let x = random(&mut rng, &[5, 4], 2.0);
    let labels = [0, 3, 1, 1, 2];
    let fd = finite_differences(&x, 1e-2, |x| cross_entropy(x, &labels));
    let (v, g) = cross_entropy_adjoint(&x, &labels, 1.0);
    assert_eq!(v, cross_entropy(&x, &labels));
    assert_close(&g.to_vec(), &fd, 1e-3);
    assert_close(&cross_entropy_grad(&x, &labels).to_vec(), &fd, 1e-3);
    // rows of the gradient sum to zero
    for row in g.to_vec().chunks(4) {
        assert!(row.iter().sum::<f32>().abs() < 1e-6);
    }
}

#[test]
fn cross_entropy_is_stable_for_large_logits() {
    // log_softmax subtracts the row maximum: no overflow to inf or NaN.
    let x = Tensor::from_vec(vec![1000.0, 0.0, -1000.0, 500.0, 500.0, 500.0], &[2, 3]);
    let l = cross_entropy(&x, &[0, 2]);
    // row 0: ~0; row 1: ln 3
    // (to the f32 precision of the tensor kernels)
    assert!((f64::from(l) - 3f64.ln() / 2.0).abs() < 2e-5, "{l}");
    let g = cross_entropy_grad(&x, &[2, 2]).to_vec();
    assert!(g.iter().all(|v| v.is_finite()));
    // row 0, label 2: softmax ~ (1, 0, 0): gradient (1, 0, -1) / 2
    assert_close(&g[..3], &[0.5, 0.0, -0.5], 1e-6);
}

#[test]
#[should_panic(expected = "label 3 at row 1 is out of range for 3 classes")]
fn cross_entropy_rejects_bad_labels() {
    cross_entropy(&Tensor::zeros(&[2, 3]), &[0, 3]);
}

#[test]
#[should_panic(expected = "expects logits of shape [3, classes] for 3 labels, got [2, 3]")]
fn cross_entropy_rejects_a_wrong_row_count() {
    cross_entropy(&Tensor::zeros(&[2, 3]), &[0, 1, 2]);
}

#[test]
fn accuracy_counts_argmax_hits() {
    let x = Tensor::from_vec(
        vec![
            0.1, 0.7, 0.2, //
            0.9, 0.0, 0.1, //
            0.3, 0.3, 0.4, //
            0.5, 0.5, 0.0, // tie: the first maximum (0)
        ],
        &[4, 3],
    );
    assert_eq!(accuracy(&x, &[1, 0, 0, 0]), 0.75);
    assert_eq!(accuracy(&x, &[1, 0, 2, 0]), 1.0);
    assert_eq!(accuracy(&x, &[0, 1, 0, 1]), 0.0);
}
