//! What the fuzz targets share: the model and optimizers checkpoints are
//! loaded into, and valid checkpoints to start the corpus from.

use std::collections::BTreeMap;
use tapeless_runtime::checkpoint::{save, save_with_metadata};
use tapeless_runtime::optim::{Adam, Optimizer, Sgd};
use tapeless_runtime::params::{for_each, Data, Parameters};
use tapeless_runtime::tensor::Tensor;

/// Two `f32` tensors, an `f64` vector and an `f32` scalar: parameter names
/// `0`, `1`, `2`, `3`, both element types, shapes of rank 0 to 2.
pub type Model = (Tensor, Tensor, Vec<f64>, f32);

/// A model whose values depend on `k`.
pub fn model(k: f32) -> Model {
    (
        Tensor::from_vec((0..6).map(|i| i as f32 * 0.25 - k).collect(), &[3, 2]),
        Tensor::from_vec(vec![0.5 * k, -0.5], &[2]),
        vec![1.0, -2.0, f64::from(k)],
        1.25 + k,
    )
}

/// Every buffer's name and bit patterns.
pub fn bits<M: Parameters>(m: &M) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    for_each(m, |name, p| {
        let b = match p.data {
            Data::F32(d) => d.iter().map(|x| u64::from(x.to_bits())).collect(),
            Data::F64(d) => d.iter().map(|x| x.to_bits()).collect(),
        };
        out.push((name.to_owned(), b));
    });
    out
}

/// An Adam optimizer with state for every buffer of [`Model`].
pub fn adam() -> Adam {
    let mut opt = Adam::new(1e-3);
    opt.step(&mut model(9.0), &model(3.0));
    opt
}

/// An SGD optimizer with momentum buffers for every buffer of [`Model`].
pub fn sgd() -> Sgd {
    let mut opt = Sgd::new(0.3).momentum(0.5);
    opt.step(&mut model(9.0), &model(4.0));
    opt
}

/// Valid checkpoints (name, bytes): with Adam state and user metadata, with
/// SGD state, without optimizer.
pub fn seeds(dir: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    let p = dir.join("seed.safetensors");
    let m = model(0.5);
    let meta: BTreeMap<String, String> = [("run".to_string(), "fuzz".to_string())]
        .into_iter()
        .collect();
    let mut out = Vec::new();
    save_with_metadata(&p, &m, Some(&adam()), 7, &meta).unwrap();
    out.push(("adam", std::fs::read(&p).unwrap()));
    save(&p, &m, Some(&sgd()), 3).unwrap();
    out.push(("sgd", std::fs::read(&p).unwrap()));
    save(&p, &m, None, 0).unwrap();
    out.push(("model", std::fs::read(&p).unwrap()));
    std::fs::remove_file(&p).unwrap();
    out
}
