//! `#[derive(Differentiable)]` also implements `tapeless::params::Parameters`:
//! dotted names field by field, `#[no_grad]` fields skipped, nested structs,
//! `Vec`s of structs, tuple structs; optimizers and checkpoints work on
//! derived models; a `#[differentiable]` function may call the losses.

use tapeless::checkpoint::{load, save};
use tapeless::nn::{cross_entropy, cross_entropy_grad, Rng};
use tapeless::optim::{clip_grad_norm, Adam, Optimizer, Sgd};
use tapeless::params::{named_shapes, num_params, zip_each, Parameters};
use tapeless::tensor::Tensor;
use tapeless::{differentiable, Differentiable, Tangent};

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Linear {
    w: Tensor,
    b: Tensor,
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Mlp {
    layers: Vec<Linear>,
    scale: f64,
    #[no_grad]
    width: usize,
    #[no_grad]
    name: String,
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Pair(f32, [f64; 2]);

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Nested {
    pair: Pair,
    inner: (Linear, Vec<f32>),
}

fn linear(rng: &mut Rng, i: usize, o: usize) -> Linear {
    Linear {
        w: tapeless::nn::xavier_uniform(rng, &[i, o], i, o),
        b: Tensor::zeros(&[o]),
    }
}

fn mlp() -> Mlp {
    let mut rng = Rng::seed_from(0);
    Mlp {
        layers: vec![linear(&mut rng, 4, 8), linear(&mut rng, 8, 3)],
        scale: 1.5,
        width: 8,
        name: "mlp".into(),
    }
}

fn names<M: Parameters>(m: &M) -> Vec<String> {
    named_shapes(m).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn names_follow_fields_and_skip_no_grad() {
    let m = mlp();
    assert_eq!(
        named_shapes(&m),
        vec![
            ("layers.0.w".to_owned(), vec![4, 8]),
            ("layers.0.b".to_owned(), vec![8]),
            ("layers.1.w".to_owned(), vec![8, 3]),
            ("layers.1.b".to_owned(), vec![3]),
            ("scale".to_owned(), vec![]),
        ]
    );
    assert_eq!(num_params(&m), 32 + 8 + 24 + 3 + 1);

    let n = Nested {
        pair: Pair(1.0, [2.0, 3.0]),
        inner: (
            Linear {
                w: Tensor::zeros(&[1, 1]),
                b: Tensor::zeros(&[1]),
            },
            vec![0.0; 5],
        ),
    };
    assert_eq!(
        names(&n),
        ["pair.0", "pair.1", "inner.0.w", "inner.0.b", "inner.1"]
    );
    assert_eq!(num_params(&n), 1 + 2 + 1 + 1 + 5);
}

#[test]
fn an_optimizer_steps_a_derived_model_in_one_call() {
    let mut m = mlp();
    let before = m.clone();
    let mut g = m.zero_tangent();
    g.layers[1].b = Tensor::from_vec(vec![1.0, -1.0, 0.0], &[3]);
    g.scale = 2.0;
    let mut opt = Sgd::new(0.5);
    opt.step(&mut m, &g);
    assert_eq!(m.layers[1].b.to_vec(), [-0.5, 0.5, 0.0]);
    assert_eq!(m.scale, 0.5);
    assert_eq!(m.layers[0], before.layers[0]);
    // #[no_grad] fields ride along untouched
    assert_eq!((m.width, m.name.as_str()), (8, "mlp"));
    // Adam state is named by field path
    let mut adam = Adam::new(0.1);
    adam.step(&mut m, &g);
    let keys: Vec<String> = adam.state().params.keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "layers.0.b",
            "layers.0.w",
            "layers.1.b",
            "layers.1.w",
            "scale"
        ]
    );
}

#[test]
fn a_shapeless_zero_gradient_counts_as_zeros() {
    // `Tangent::zero()` of a derived struct has empty `Vec`s and shape-[0]
    // tensors; stepping with it is stepping with zeros.
    let mut m = mlp();
    let before = m.clone();
    let mut opt = Adam::new(0.1);
    opt.step(&mut m, &Mlp::zero());
    assert_eq!(m, before);
    let mut seen = 0;
    zip_each(&mut m, &Mlp::zero(), |_, p, g| {
        assert_eq!(p.shape, g.shape);
        seen += 1;
    });
    assert_eq!(seen, 5);
}

#[test]
fn clipping_and_checkpoints_work_on_derived_models() {
    let mut g = mlp().zero_tangent();
    g.scale = 3.0;
    g.layers[0].b = Tensor::full(&[8], 0.5); // |.|^2 = 2, total 11
    let norm = clip_grad_norm(&mut g, 1.0);
    assert!((norm - 11f64.sqrt()).abs() < 1e-12);

    let dir = std::env::temp_dir().join(format!("tapeless-derive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mlp.safetensors");
    let mut m = mlp();
    let mut opt = Adam::new(0.01);
    opt.step(&mut m, &g);
    save(&path, &m, Some(&opt), 1).unwrap();
    let mut back = Mlp {
        layers: vec![
            Linear {
                w: Tensor::zeros(&[4, 8]),
                b: Tensor::zeros(&[8]),
            },
            Linear {
                w: Tensor::zeros(&[8, 3]),
                b: Tensor::zeros(&[3]),
            },
        ],
        scale: 0.0,
        width: 0,
        name: String::new(),
    };
    let mut opt2 = Adam::new(0.01);
    assert_eq!(load(&path, &mut back, Some(&mut opt2)).unwrap(), 1);
    assert_eq!(back.layers, m.layers);
    assert_eq!(back.scale, m.scale);
    assert_eq!(opt2.state(), opt.state());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[differentiable]
fn loss_of_logits(logits: &Tensor, labels: &[usize]) -> f32 {
    tapeless::nn::cross_entropy(logits, labels)
}

#[differentiable]
fn scaled_loss(logits: &Tensor, labels: &[usize], k: f32) -> f32 {
    k * tapeless::nn::cross_entropy(logits, labels)
}

#[test]
fn differentiable_functions_call_the_losses() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.0, 0.3, 0.1], &[2, 3]);
    let labels = [2, 0];
    let (v, g) = loss_of_logits_grad(&x, &labels);
    assert_eq!(v, cross_entropy(&x, &labels));
    assert_eq!(g, cross_entropy_grad(&x, &labels));
    // the chain rule through the call: d(k L)/dx = k dL/dx, d(k L)/dk = L
    let (v2, (gx, gk)) = scaled_loss_grad(&x, &labels, 3.0);
    assert_eq!(v2, 3.0 * v);
    let want = (cross_entropy_grad(&x, &labels) * 3.0).to_vec();
    for (a, b) in gx.to_vec().iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{gx:?} vs {want:?}");
    }
    assert_eq!(gk, v);
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Raw {
    r#type: f64,
}

#[test]
fn raw_identifiers_are_named_without_the_prefix() {
    assert_eq!(names(&Raw { r#type: 1.0 }), ["type"]);
}
