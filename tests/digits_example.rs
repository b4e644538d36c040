//! The pieces of `examples/digits.rs`: loading the vendored digits and
//! MNIST IDX files, a clear error for each kind of malformed file, the
//! command line, the chart, and short training runs of both models whose
//! gradients `#[differentiable]` writes.

#[allow(dead_code)]
#[path = "../examples/digits/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../examples/digits/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../examples/digits/models.rs"]
mod models;
#[allow(dead_code)]
#[path = "../examples/digits/plot.rs"]
mod plot;
#[allow(dead_code)]
#[path = "../examples/digits/train.rs"]
mod train;

use data::{load, parse_csv, DataError, Images};
use flate2::write::GzEncoder;
use flate2::Compression;
use models::{Classifier, Cnn, Mlp};
use std::io::Write;
use std::path::{Path, PathBuf};
use tapeless::nn::{Dataset, Rng};
use tapeless::optim::Adam;

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "tapeless-digits-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn digits() -> Images {
    load(&data::default_path()).expect("the vendored digits load")
}

// ---- the vendored data -------------------------------------------------------

#[test]
fn the_vendored_digits_load() {
    let d = digits();
    assert_eq!((d.len(), d.side, d.pixels.len()), (1797, 8, 1797 * 64));
    let mut counts = [0usize; 10];
    for &l in &d.labels {
        counts[l] += 1;
    }
    // about 180 of each digit
    assert!(
        counts.iter().all(|&c| (170..=185).contains(&c)),
        "{counts:?}"
    );
    assert!(d.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(d.pixels.iter().copied().fold(0.0, f32::max), 1.0); // 16 / 16
                                                                   // the first image is a 0: 0,0,5,13,9,1,0,0,... label 0
    assert_eq!(d.labels[0], 0);
    assert_eq!(&d.pixels[..4], &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]);
}

#[test]
fn the_split_is_seeded_and_80_20() {
    let d = digits();
    let (train, test) = data::split(&d, 0.8, 0);
    assert_eq!((train.len(), test.len()), (1437, 360));
    assert_eq!(train.features().shape(), &[1437, 1, 8, 8]);
    let (train2, test2) = data::split(&d, 0.8, 0);
    assert_eq!(train2.labels(), train.labels());
    assert_eq!(test2.features(), test.features());
    let (other, _) = data::split(&d, 0.8, 1);
    assert_ne!(other.labels(), train.labels());
    // a permutation: every image lands on exactly one side
    let mut all: Vec<Vec<u32>> = Vec::new();
    for set in [&train, &test] {
        let x = set.features().to_vec();
        all.extend(
            x.chunks(64)
                .map(|c| c.iter().map(|v| v.to_bits()).collect()),
        );
    }
    let mut orig: Vec<Vec<u32>> = d
        .pixels
        .chunks(64)
        .map(|c| c.iter().map(|v| v.to_bits()).collect())
        .collect();
    all.sort();
    orig.sort();
    assert_eq!(all, orig);
}

// ---- malformed files -----------------------------------------------------------

fn csv_err(text: &str) -> String {
    let e = parse_csv(Path::new("bad.csv"), text.as_bytes()).unwrap_err();
    assert_eq!(e.path, Path::new("bad.csv"));
    let shown = e.to_string();
    assert!(!shown.contains('\n'), "one line: {shown}");
    assert!(shown.starts_with("bad.csv: "), "{shown}");
    shown
}

#[test]
fn a_small_csv_parses_gzipped_or_not() {
    let text = "0,4,2,1,3\n4,0,0,4,9\n\n";
    let d = parse_csv(Path::new("ok.csv"), text.as_bytes()).unwrap();
    assert_eq!((d.side, d.labels.clone()), (2, vec![3, 9]));
    assert_eq!(d.pixels, [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.0, 1.0]);
    let dir = TempDir::new("csv");
    let p = dir.write("small.csv.gz", &gzip(text.as_bytes()));
    assert_eq!(load(&p).unwrap(), d);
    let p = dir.write("small.csv", text.as_bytes());
    assert_eq!(load(&p).unwrap(), d);
}

#[test]
fn malformed_csv_rows_name_the_line_and_the_problem() {
    assert_eq!(
        csv_err("0,1,2,3,4\n0,1,x,3,4\n"),
        "bad.csv: line 2: field 3 is `x`, not an integer"
    );
    assert_eq!(
        csv_err("0,1,2,3,4\n0,1,2,3\n"),
        "bad.csv: line 2: 4 fields, but the rows before have 5"
    );
    assert!(
        csv_err("0,1,2,3\n").contains("line 1: 4 fields; expected the pixels of a square image")
    );
    assert_eq!(
        csv_err("0,1,2,3,12\n"),
        "bad.csv: line 1: label 12 is not a digit 0..=9"
    );
    assert_eq!(
        csv_err("0,-1,2,3,1\n"),
        "bad.csv: line 1: field 2 is -1, outside 0..=4294967295"
    );
    assert_eq!(csv_err(""), "bad.csv: no data rows (the file is empty)");
    assert_eq!(
        csv_err("\n \n"),
        "bad.csv: no data rows (the file is empty)"
    );
    let e = parse_csv(Path::new("bad.csv"), &[0xff, 0xfe, 0x00]).unwrap_err();
    assert!(e.msg.starts_with("not a text (UTF-8) file"), "{e}");
}

#[test]
fn missing_and_corrupt_files_are_errors_naming_them() {
    let dir = TempDir::new("corrupt");
    let missing = dir.0.join("nope.csv.gz");
    let e = load(&missing).unwrap_err();
    assert_eq!(
        e,
        DataError {
            path: missing.clone(),
            msg: "no such file or folder".into()
        }
    );
    assert_eq!(
        e.to_string(),
        format!("{}: no such file or folder", missing.display())
    );

    let mut gz = gzip(b"0,1,2,3,4\n");
    gz.truncate(gz.len() - 6);
    let p = dir.write("truncated.csv.gz", &gz);
    let e = load(&p).unwrap_err();
    assert_eq!(e.path, p);
    assert!(e.msg.starts_with("corrupt gzip data"), "{e}");
}

// ---- MNIST IDX files -----------------------------------------------------------

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for s in [n, rows, cols] {
        b.extend(s.to_be_bytes());
    }
    b.extend(pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

#[test]
fn idx_folders_load_gzipped_or_not() {
    let pixels: Vec<u8> = (0..3 * 16).map(|i| (i * 5) as u8).collect();
    let dir = TempDir::new("idx");
    dir.write("train-images-idx3-ubyte", &idx_images(3, 4, 4, &pixels));
    dir.write("train-labels-idx1-ubyte.gz", &gzip(&idx_labels(&[7, 0, 9])));
    let d = load(&dir.0).unwrap();
    assert_eq!((d.len(), d.side), (3, 4));
    assert_eq!(d.labels, [7, 0, 9]);
    assert_eq!(d.pixels[1], 5.0 / 255.0);
    assert_eq!(d.to_dataset().features().shape(), &[3, 1, 4, 4]);
}

#[test]
fn malformed_idx_files_are_errors_naming_them() {
    let dir = TempDir::new("idxbad");
    let err = |images: &[u8], labels: &[u8]| -> DataError {
        dir.write("train-images-idx3-ubyte", images);
        dir.write("train-labels-idx1-ubyte", labels);
        let e = load(&dir.0).unwrap_err();
        assert!(!e.to_string().contains('\n'));
        e
    };
    let img = dir.0.join("train-images-idx3-ubyte");
    let lab = dir.0.join("train-labels-idx1-ubyte");
    let px = [1u8; 8];

    let mut bad_magic = idx_images(2, 2, 2, &px);
    bad_magic[2] = 0x0d; // float data
    let e = err(&bad_magic, &idx_labels(&[1, 2]));
    assert_eq!(e.path, img);
    assert!(
        e.msg
            .starts_with("bad magic number 00 00 0d 03: expected 00 00 08 03"),
        "{e}"
    );

    let e = err(&idx_labels(&[1, 2]), &idx_labels(&[1, 2]));
    assert!(e.msg.starts_with("bad magic number 00 00 08 01"), "{e}");

    let e = err(&idx_images(2, 2, 2, &px[..7]), &idx_labels(&[1, 2]));
    assert_eq!(
        e.msg,
        "the header announces 2 x 2 x 2 = 8 bytes of data, but 7 follow (truncated)"
    );
    let e = err(
        &idx_images(2, 2, 2, &[px, px].concat()),
        &idx_labels(&[1, 2]),
    );
    assert!(e.msg.ends_with("but 16 follow (trailing bytes)"), "{e}");
    let e = err(&[0, 0, 8, 3, 0, 0], &idx_labels(&[1, 2]));
    assert_eq!(e.msg, "truncated header: 6 bytes, expected 16");
    let e = err(&[0, 0], &idx_labels(&[1, 2]));
    assert_eq!(e.msg, "2 bytes is too short for an IDX file");
    let e = err(&idx_images(1, 2, 4, &px), &idx_labels(&[1]));
    assert_eq!(e.msg, "images are 2x4; expected square, non-empty images");

    let e = err(&idx_images(2, 2, 2, &px), &idx_labels(&[1, 2, 3]));
    assert_eq!(e.path, lab);
    assert!(e.msg.starts_with("3 labels, but "), "{e}");
    let e = err(&idx_images(2, 2, 2, &px), &idx_labels(&[1, 10]));
    assert_eq!(e.msg, "label 10 at index 1 is not a digit 0..=9");

    std::fs::remove_file(&lab).unwrap();
    let e = load(&dir.0).unwrap_err();
    assert_eq!(e.path, dir.0);
    assert!(e.msg.contains("train-labels-idx1-ubyte"), "{e}");
}

// ---- the command line ----------------------------------------------------------

fn parse(args: &[&str]) -> Result<cli::Command, String> {
    cli::parse(args.iter().map(|s| s.to_string()))
}

#[test]
fn the_command_line_parses_and_rejects_clearly() {
    use cli::{Command, Options, Which};
    assert_eq!(parse(&[]), Ok(Command::Run(Options::default())));
    assert_eq!(parse(&["--help"]), Ok(Command::Help));
    assert_eq!(parse(&["--epochs", "3", "-h"]), Ok(Command::Help));
    let Ok(Command::Run(o)) = parse(&[
        "--epochs",
        "5",
        "--lr=0.01",
        "--model",
        "cnn",
        "--data",
        "x.csv",
        "--seed",
        "7",
        "--out",
        "o",
    ]) else {
        panic!("parses");
    };
    assert_eq!(
        o,
        Options {
            epochs: Some(5),
            lr: Some(0.01),
            model: Which::Cnn,
            data: Some("x.csv".into()),
            seed: 7,
            out: Some("o".into()),
        }
    );
    assert_eq!(
        parse(&["--epochs", "0"]),
        Err("--epochs expects a positive integer, got `0`".into())
    );
    assert_eq!(
        parse(&["--lr", "-1"]),
        Err("--lr expects a positive number, got `-1`".into())
    );
    assert_eq!(
        parse(&["--model", "rnn"]),
        Err("--model expects mlp, cnn or both, got `rnn`".into())
    );
    assert_eq!(
        parse(&["--seed"]),
        Err("--seed needs a value (see --help)".into())
    );
    assert_eq!(
        parse(&["--fast"]),
        Err("unknown argument `--fast` (see --help)".into())
    );
}

// ---- the chart -----------------------------------------------------------------

#[test]
fn the_chart_is_a_png() {
    let dir = TempDir::new("plot");
    let p = dir.0.join("curves.png");
    let curves = [
        plot::Curve {
            name: "mlp".into(),
            train_loss: vec![2.0, 0.5, 0.2, 0.1],
            test_accuracy: vec![0.5, 0.9, 0.95, 0.97],
        },
        plot::Curve {
            name: "cnn".into(),
            train_loss: vec![1.5, 0.3],
            test_accuracy: vec![0.8, 0.99],
        },
    ];
    plot::draw(&p, &curves, 400, 200).unwrap();
    let png = std::fs::read(&p).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // width and height in the IHDR chunk
    assert_eq!(&png[16..24], &[0, 0, 1, 144, 0, 0, 0, 200]);
}

// ---- training ------------------------------------------------------------------

fn short_run<M: Classifier>(
    model: &mut M,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
) -> f32 {
    let cfg = train::Config {
        epochs,
        lr,
        batch_size: 32,
        warmup_epochs: 0,
        seed: 3,
    };
    let mut opt = Adam::new(cfg.lr);
    let mut seen = Vec::new();
    let history = train::train(model, &mut opt, train, test, &cfg, |s| seen.push(*s));
    assert_eq!(history, seen);
    assert_eq!(history.len(), epochs);
    assert!(
        history[epochs - 1].train_loss < history[0].train_loss,
        "{history:?}"
    );
    let acc = train::evaluate(model, test);
    assert_eq!(acc, history[epochs - 1].test_accuracy);
    acc
}

#[test]
fn the_mlp_learns_the_digits_in_a_few_epochs() {
    let (train, test) = data::split(&digits(), 0.8, 0);
    let mut model = Mlp::new(&mut Rng::seed_from(1), 64, 64, 10);
    let acc = short_run(&mut model, &train, &test, 4, 3e-3);
    assert!(acc > 0.9, "held-out accuracy {acc}");

    // the checkpoint round trip the example relies on
    let dir = TempDir::new("ckpt");
    let path = dir.0.join("mlp.safetensors");
    tapeless::checkpoint::save(&path, &model, None, 4).unwrap();
    let mut back = Mlp::new(&mut Rng::seed_from(9), 64, 64, 10);
    assert_ne!(back, model);
    assert_eq!(
        tapeless::checkpoint::load(&path, &mut back, None).unwrap(),
        4
    );
    assert_eq!(back, model);
}

#[test]
fn the_cnn_gradient_matches_finite_differences_and_it_learns() {
    let (train, test) = data::split(&digits(), 0.8, 0);
    let mut rng = Rng::seed_from(2);
    let mut model = Cnn::new(&mut rng, 8, 4, 8, 10);
    // Positive biases keep the blank background (pre-activation = bias) off
    // ReLU's kink at 0, where a central difference sees half a slope.
    model.bias1 = tapeless::nn::uniform(&mut rng, &[4, 1, 1], 0.05, 0.15);
    model.bias2 = tapeless::nn::uniform(&mut rng, &[8, 1, 1], 0.05, 0.15);

    // One weight of each tensor against a central difference of the loss.
    let (x, y) = train.select(&(0..16).collect::<Vec<_>>());
    let (loss, grad) = model.loss_and_grad(&x, &y);
    assert!((loss - model.loss(&x, &y)).abs() < 1e-6);
    let mut grads: Vec<(String, Vec<f32>)> = Vec::new();
    tapeless::params::for_each(&grad, |name, g| {
        if let tapeless::params::Data::F32(v) = g.data {
            grads.push((name.to_owned(), v.to_vec()));
        }
    });
    assert_eq!(grads.len(), 6);
    for (k, (name, g)) in grads.iter().enumerate() {
        let at = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        let h = 2e-3f32;
        let bumped = |delta: f32| {
            let mut m = model.clone();
            let mut i = 0;
            tapeless::params::for_each_mut(&mut m, |_, p| {
                if i == k {
                    if let tapeless::params::DataMut::F32(v) = p.data {
                        v[at] += delta;
                    }
                }
                i += 1;
            });
            f64::from(m.loss(&x, &y))
        };
        let fd = ((bumped(h) - bumped(-h)) / (2.0 * f64::from(h))) as f32;
        let err = (fd - g[at]).abs();
        assert!(
            err <= 2e-2 * g[at].abs().max(1e-2),
            "{name}[{at}]: macro {} vs finite difference {fd}",
            g[at]
        );
    }

    // A quick run (tests are built without optimisation: a narrower
    // network on part of the training set).
    let part: Vec<usize> = (0..800).collect();
    let (x, y) = train.select(&part);
    let mut model = Cnn::new(&mut rng, 8, 8, 16, 10);
    let acc = short_run(&mut model, &Dataset::new(x, y), &test, 3, 1e-2);
    eprintln!("cnn: held-out accuracy {acc}");
    assert!(acc > 0.85, "held-out accuracy {acc}");
}
