//! Checkpoints: round trips, bit-identical resumption, clear errors on bad
//! files, and saves that fail without harming the previous file.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use tapeless_runtime::checkpoint::{
    load, load_with_metadata, read_metadata, save, save_with_metadata, CheckpointError,
};
use tapeless_runtime::nn::{cross_entropy_grad, xavier_uniform, Dataset, Rng};
use tapeless_runtime::optim::{Adam, Optimizer, Sgd};
use tapeless_runtime::params::{for_each, Data};
use tapeless_runtime::tensor::Tensor;

type Model = (Tensor, Tensor, Vec<f64>, f32);

fn model(seed: u64) -> Model {
    let mut r = Rng::seed_from(seed);
    (
        xavier_uniform(&mut r, &[3, 2], 3, 2),
        Tensor::from_vec(vec![0.5, -0.5], &[2]),
        vec![r.normal(), r.normal(), r.normal()],
        1.25,
    )
}

fn zeros() -> Model {
    (
        Tensor::zeros(&[3, 2]),
        Tensor::zeros(&[2]),
        vec![0.0; 3],
        0.0,
    )
}

/// Every buffer's name and bit patterns.
fn bits<M: tapeless_runtime::params::Parameters>(m: &M) -> Vec<(String, Vec<u64>)> {
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

fn grad_of(m: &Model, k: usize) -> Model {
    let s = k as f32;
    (
        Tensor::from_vec((0..6).map(|i| (i as f32 - s) * 0.1).collect(), &[3, 2]),
        Tensor::from_vec(vec![s, -1.0], &[2]),
        vec![m.2[0], -m.2[1], 0.5 * k as f64],
        m.3 - 1.0,
    )
}

#[test]
fn round_trip_with_optimizer_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut m = model(1);
    let mut opt = Adam::new(0.01);
    for k in 0..3 {
        let g = grad_of(&m, k);
        opt.step(&mut m, &g);
    }
    let meta = BTreeMap::from([("run".to_owned(), r#"{"lr": 0.01}"#.to_owned())]);
    save_with_metadata(&path, &m, Some(&opt), 3, &meta).unwrap();

    let mut back = zeros();
    let mut opt2 = Adam::new(0.5);
    let (step, meta2) = load_with_metadata(&path, &mut back, Some(&mut opt2)).unwrap();
    assert_eq!(step, 3);
    assert_eq!(meta2, meta);
    assert_eq!(bits(&back), bits(&m));
    assert_eq!(opt2.state(), opt.state());
    assert_eq!(opt2.lr(), 0.01);

    let all = read_metadata(&path).unwrap();
    assert_eq!(all["format"], "pt");
    assert_eq!(all["tapeless.step"], "3");
    assert_eq!(all["tapeless.optimizer"], "adam");

    // a model alone loads from the same file; optimizer tensors are ignored
    let mut alone = zeros();
    assert_eq!(load(&path, &mut alone, None).unwrap(), 3);
    assert_eq!(bits(&alone), bits(&m));
}

#[test]
fn the_file_is_plain_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut m = model(2);
    let mut opt = Sgd::new(0.1).momentum(0.9);
    let g = grad_of(&m, 0);
    opt.step(&mut m, &g);
    save(&path, &m, Some(&opt), 1).unwrap();

    let bytes = fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "0",
            "1",
            "2",
            "3",
            "sgd.dampening",
            "sgd.lr",
            "sgd.momentum",
            "sgd.momentum.0",
            "sgd.momentum.1",
            "sgd.momentum.2",
            "sgd.momentum.3",
            "sgd.nesterov",
            "sgd.step.0",
            "sgd.step.1",
            "sgd.step.2",
            "sgd.step.3",
            "sgd.steps",
            "sgd.weight_decay",
        ]
    );
    use safetensors::Dtype;
    let t = st.tensor("0").unwrap();
    assert_eq!((t.dtype(), t.shape()), (Dtype::F32, &[3, 2][..]));
    // little-endian f32, row-major
    let first = f32::from_le_bytes(t.data()[..4].try_into().unwrap());
    assert_eq!(first, m.0.to_vec()[0]);
    let t = st.tensor("2").unwrap();
    assert_eq!((t.dtype(), t.shape()), (Dtype::F64, &[3][..]));
    let t = st.tensor("3").unwrap();
    assert_eq!((t.dtype(), t.shape()), (Dtype::F32, &[][..]));
    let t = st.tensor("sgd.step.0").unwrap();
    assert_eq!((t.dtype(), t.shape()), (Dtype::F64, &[][..]));
    assert_eq!(f64::from_le_bytes(t.data().try_into().unwrap()), 1.0);
}

#[test]
fn a_single_buffer_model_is_named_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut w = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    let mut opt = Adam::new(0.1);
    opt.step(&mut w, &Tensor::from_vec(vec![1.0, 1.0], &[2]));
    save(&path, &w, Some(&opt), 1).unwrap();
    let bytes = fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensor("value").is_ok() && st.tensor("adam.m.value").is_ok());
    let mut back = Tensor::zeros(&[2]);
    let mut opt2 = Adam::new(0.1);
    load(&path, &mut back, Some(&mut opt2)).unwrap();
    assert_eq!(back, w);
    assert_eq!(opt2.state(), opt.state());
}

// ---- resumption ---------------------------------------------------------------

/// A softmax-regression model `(w [4, 3], b [3])` on a fixed synthetic data set.
type Linear = (Tensor, Tensor);

fn data() -> Dataset {
    let mut r = Rng::seed_from(11);
    let n = 64;
    let labels: Vec<usize> = (0..n).map(|_| r.below(3)).collect();
    let x: Vec<f32> = labels
        .iter()
        .flat_map(|&l| {
            let mut row = [0.0f32; 4];
            for (j, v) in row.iter_mut().enumerate() {
                *v = r.normal() as f32 + if j == l { 2.0 } else { 0.0 };
            }
            row
        })
        .collect();
    Dataset::new(Tensor::from_vec(x, &[n, 4]), labels)
}

fn gradient(m: &Linear, x: &Tensor, y: &[usize]) -> Linear {
    let logits = &x.matmul(&m.0) + &m.1;
    let d = cross_entropy_grad(&logits, y);
    (x.t().matmul(&d), d.sum_axis(0, false))
}

/// Trains for epochs `from..to` (batches of 16, shuffled by epoch).
fn train(m: &mut Linear, opt: &mut Adam, d: &Dataset, from: u64, to: u64) {
    for epoch in from..to {
        for (x, y) in d.epoch(16, 99, epoch) {
            let g = gradient(m, &x, &y);
            opt.step(m, &g);
        }
    }
}

#[test]
fn resumed_training_is_bit_identical() {
    let d = data();
    let init = || {
        let mut r = Rng::seed_from(5);
        (xavier_uniform(&mut r, &[4, 3], 4, 3), Tensor::zeros(&[3]))
    };

    let mut straight = init();
    let mut opt = Adam::new(0.05);
    train(&mut straight, &mut opt, &d, 0, 6);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.safetensors");
    let mut first = init();
    let mut opt1 = Adam::new(0.05);
    train(&mut first, &mut opt1, &d, 0, 3);
    save(&path, &first, Some(&opt1), 3).unwrap();
    drop((first, opt1));

    let mut resumed = (Tensor::zeros(&[4, 3]), Tensor::zeros(&[3]));
    let mut opt2 = Adam::new(0.05);
    let epoch = load(&path, &mut resumed, Some(&mut opt2)).unwrap();
    assert_eq!(epoch, 3);
    train(&mut resumed, &mut opt2, &d, epoch, 6);

    assert_eq!(bits(&resumed), bits(&straight));
    assert_eq!(opt2.state(), opt.state());
    assert_eq!(opt2.steps(), 6 * 4);
}

// ---- errors -------------------------------------------------------------------

fn saved(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("good.safetensors");
    let mut m = model(3);
    let mut opt = Adam::new(0.01);
    let g = grad_of(&m, 1);
    opt.step(&mut m, &g);
    save(&path, &m, Some(&opt), 7).unwrap();
    path
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.safetensors");
    let e = load(&path, &mut zeros(), None).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string().contains("nope.safetensors does not exist"),
        "{e}"
    );
}

#[test]
fn truncated_garbage_and_empty_files_are_corrupt_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(saved(dir.path())).unwrap();
    let path = dir.path().join("bad.safetensors");
    // every truncation
    for len in (0..good.len()).step_by(7).chain([good.len() - 1]) {
        fs::write(&path, &good[..len]).unwrap();
        let mut m = zeros();
        let e = load(&path, &mut m, None).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Corrupt { .. }),
            "length {len}: {e:?}"
        );
        assert_eq!(bits(&m), bits(&zeros()), "length {len}: the model changed");
    }
    // garbage
    fs::write(&path, b"this is not a checkpoint at all, just some text").unwrap();
    let e = load(&path, &mut zeros(), None).unwrap_err();
    assert!(
        e.to_string().contains("is not a valid safetensors file"),
        "{e}"
    );
    // a header length pointing past the end
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    fs::write(&path, &huge).unwrap();
    assert!(matches!(
        load(&path, &mut zeros(), None),
        Err(CheckpointError::Corrupt { .. })
    ));
    // flipped bytes anywhere in the header never panic
    let header_len = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for i in (0..header_len).step_by(3) {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        fs::write(&path, &b).unwrap();
        let _ = load(&path, &mut zeros(), Some(&mut Adam::new(0.1)));
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut bigger = (zeros(), 0.0f64);
    let e = load(&path, &mut bigger, None).unwrap_err();
    // the bigger model's names are "0.0", "0.1", ... and "1"
    assert!(
        matches!(&e, CheckpointError::MissingTensor { name } if name == "0.0"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "checkpoint has no tensor `0.0`");
}

#[test]
fn shape_mismatch_names_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut wrong = zeros();
    wrong.0 = Tensor::zeros(&[2, 3]);
    let e = load(&path, &mut wrong, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint tensor `0` has shape [3, 2], the model expects [2, 3]"
    );
    assert!(matches!(e, CheckpointError::ShapeMismatch { .. }));
    // nothing was loaded, not even the buffers that did fit
    assert_eq!(wrong.1.to_vec(), [0.0, 0.0]);

    let mut short = zeros();
    short.2 = vec![0.0; 2];
    let e = load(&path, &mut short, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint tensor `2` has shape [3], the model expects [2]"
    );
}

#[test]
fn dtype_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut m = (
        Tensor::zeros(&[3, 2]),
        Tensor::zeros(&[2]),
        vec![0.0f32; 3],
        0.0f32,
    );
    let e = load(&path, &mut m, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint tensor `2` has dtype F64, the model expects f32"
    );
}

#[test]
fn optimizer_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut sgd = Sgd::new(0.1);
    let mut m = zeros();
    let e = load(&path, &mut m, Some(&mut sgd)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint holds `adam` optimizer state, cannot load it into `sgd`"
    );
    assert_eq!(bits(&m), bits(&zeros()));

    let no_opt = dir.path().join("model-only.safetensors");
    save(&no_opt, &model(1), None, 0).unwrap();
    let e = load(&no_opt, &mut zeros(), Some(&mut Adam::new(0.1))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint holds no optimizer state to load into `adam`"
    );

    // state for a parameter the model does not have
    let small = dir.path().join("small.safetensors");
    let mut big = (1.0f64, 2.0f64);
    let mut opt = Adam::new(0.1);
    opt.step(&mut big, &(1.0, 1.0));
    save(&small, &big, Some(&opt), 1).unwrap();
    let mut one = (0.0f64,);
    let mut opt2 = Adam::new(0.1);
    let e = load(&small, &mut one, Some(&mut opt2)).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::UnexpectedState { name } if name == "adam.m.1"),
        "{e:?}"
    );
    assert!(opt2.state().params.is_empty());
}

#[test]
fn a_foreign_safetensors_file_without_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.safetensors");
    let bytes = safetensors::serialize(
        std::iter::empty::<(String, safetensors::tensor::TensorView<'_>)>(),
        None,
    )
    .unwrap();
    fs::write(&path, bytes).unwrap();
    let e = load(&path, &mut 0.0f32, None).unwrap_err();
    assert!(matches!(e, CheckpointError::Metadata { .. }), "{e:?}");
    assert!(e.to_string().contains("tapeless.step"), "{e}");
}

// ---- failed saves ---------------------------------------------------------------

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn a_refused_save_leaves_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let before = fs::read(&path).unwrap();
    let meta = BTreeMap::from([("tapeless.step".to_owned(), "0".to_owned())]);
    let e = save_with_metadata(&path, &model(9), None, 0, &meta).unwrap_err();
    assert!(e.to_string().contains("reserved"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn a_save_onto_a_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ckpt");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"x").unwrap();
    let e = save(&target, &model(1), None, 0).unwrap_err();
    assert!(
        matches!(e, CheckpointError::Io { op: "rename", .. }),
        "{e:?}"
    );
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"x");
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

#[cfg(unix)]
#[test]
fn a_save_into_a_read_only_directory_leaves_the_previous_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let before = fs::read(&path).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.path().join("probe");
    let privileged = fs::write(&probe, b"").is_ok(); // root ignores the mode
    if !privileged {
        let e = save(&path, &model(9), None, 99).unwrap_err();
        assert!(
            matches!(
                e,
                CheckpointError::Io {
                    op: "create temporary file",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        let mut m = zeros();
        assert_eq!(load(&path, &mut m, None).unwrap(), 7);
    } else {
        let _ = fs::remove_file(&probe);
        eprintln!("running with privileges: the read-only case cannot be provoked");
    }
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_crashed_save_leaves_the_previous_file_loadable() {
    // A save killed mid-write leaves at most a stray temporary file beside
    // the checkpoint, which neither loading nor the next save minds.
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let good = fs::read(&path).unwrap();
    let stray = dir.path().join(".good.safetensors.tmp-1-0");
    fs::write(&stray, &good[..good.len() / 2]).unwrap();
    let mut m = zeros();
    assert_eq!(load(&path, &mut m, None).unwrap(), 7);
    save(&path, &m, None, 8).unwrap();
    assert_eq!(load(&path, &mut zeros(), None).unwrap(), 8);
}

#[test]
fn saving_replaces_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let m = model(42);
    save(&path, &m, None, 100).unwrap();
    let mut back = zeros();
    assert_eq!(load(&path, &mut back, None).unwrap(), 100);
    assert_eq!(bits(&back), bits(&m));
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn errors_are_std_errors() {
    fn takes(_: &dyn std::error::Error) {}
    let e = load("/definitely/not/here.safetensors", &mut 0.0f32, None).unwrap_err();
    takes(&e);
}
