//! Weight initialisers.

use super::Rng;
use crate::tensor::Tensor;

/// The fan-in and fan-out of a weight of `shape` by PyTorch's convention
/// (`torch.nn.init._calculate_fan_in_and_fan_out`): the shape is
/// `[out, in, k1, k2, ...]`, so `fan_in = in * k1 * k2 * ...` and
/// `fan_out = out * k1 * k2 * ...`. A rank-1 shape `[n]` has both `n`; a
/// scalar has both 1.
///
/// A weight used as `x.matmul(&w)`, of shape `[in, out]`, has the fans the
/// other way round: pass them to the initialisers yourself.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let k: usize = rest.iter().product();
            (inp * k, out * k)
        }
    }
}

/// A tensor of `shape` with elements uniform in `[lo, hi)`.
pub fn uniform(rng: &mut Rng, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.uniform_in(lo, hi) as f32).collect();
    Tensor::from_vec(data, shape)
}

/// A tensor of `shape` with normal elements of mean `mean` and standard
/// deviation `std`.
pub fn normal(rng: &mut Rng, shape: &[usize], mean: f64, std: f64) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n).map(|_| (mean + std * rng.normal()) as f32).collect();
    Tensor::from_vec(data, shape)
}

/// Xavier/Glorot uniform initialisation: elements uniform in `[-a, a)` with
/// `a = sqrt(6 / (fan_in + fan_out))`, which keeps the variance of
/// activations and gradients about constant through linear layers
/// (`torch.nn.init.xavier_uniform_` with gain 1).
///
/// ```
/// use tapeless_runtime::nn::{fans, xavier_uniform, Rng};
/// let mut rng = Rng::seed_from(0);
/// let (fan_in, fan_out) = fans(&[30, 20]); // a [out, in] weight
/// let w = xavier_uniform(&mut rng, &[30, 20], fan_in, fan_out);
/// assert!(w.to_vec().iter().all(|x| x.abs() <= (6.0f32 / 50.0).sqrt()));
/// ```
pub fn xavier_uniform(rng: &mut Rng, shape: &[usize], fan_in: usize, fan_out: usize) -> Tensor {
    let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    uniform(rng, shape, -a, a)
}

/// He/Kaiming normal initialisation for ReLU layers: normal elements of mean
/// 0 and standard deviation `sqrt(2 / fan_in)`
/// (`torch.nn.init.kaiming_normal_` with `mode="fan_in"`, `nonlinearity="relu"`).
///
/// ```
/// use tapeless_runtime::nn::{kaiming_normal, Rng};
/// let mut rng = Rng::seed_from(0);
/// let w = kaiming_normal(&mut rng, &[64, 10], 64); // used as x.matmul(&w), x: [n, 64]
/// assert_eq!(w.shape(), &[64, 10]);
/// ```
pub fn kaiming_normal(rng: &mut Rng, shape: &[usize], fan_in: usize) -> Tensor {
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    normal(rng, shape, 0.0, std)
}
