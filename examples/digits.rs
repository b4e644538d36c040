//! Handwritten digits, end to end: an MLP and a small CNN whose gradients
//! `#[differentiable]` writes, trained with Adam on the 8x8 digits vendored
//! in `data/digits.csv.gz` (no download).
//!
//! ```sh
//! cargo run --release --example digits                 # both models
//! cargo run --release --example digits -- --help       # options
//! cargo run --release --example digits -- --model cnn --epochs 30
//! cargo run --release --example digits -- --data ~/mnist   # MNIST IDX files
//! ```
//!
//! Prints each model's held-out accuracy, writes the learning curves to
//! `target/digits-curves.png` and checkpoints to
//! `target/digits-{mlp,cnn}.safetensors`.

#[path = "digits/cli.rs"]
mod cli;
#[path = "digits/data.rs"]
mod data;
#[path = "digits/models.rs"]
mod models;
#[path = "digits/plot.rs"]
mod plot;
#[path = "digits/train.rs"]
mod train;

use cli::{Command, Options, Which};
use indicatif::{ProgressBar, ProgressStyle};
use models::{Classifier, Cnn, Mlp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tapeless::nn::{Dataset, Rng};
use tapeless::optim::Adam;
use tapeless::params::num_params;

/// The part of the data used for training; the rest is held out.
const TRAIN_FRACTION: f64 = 0.8;
const BATCH_SIZE: usize = 32;

/// Per-model defaults.
struct Defaults {
    epochs: usize,
    lr: f64,
}

const MLP: Defaults = Defaults {
    epochs: 40,
    lr: 3e-3,
};
const CNN: Defaults = Defaults {
    epochs: 30,
    lr: 3e-3,
};
const MLP_HIDDEN: usize = 256;
const CNN_CHANNELS: (usize, usize) = (32, 64);

fn main() -> ExitCode {
    let cmd = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Run(opts) => match run(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("error: {msg}");
                ExitCode::FAILURE
            }
        },
    }
}

/// One trained model's results.
struct Outcome {
    curve: plot::Curve,
    accuracy: f32,
}

fn run(opts: &Options) -> Result<(), String> {
    let start = Instant::now();
    let path = opts.data.clone().unwrap_or_else(data::default_path);
    let images = data::load(&path).map_err(|e| e.to_string())?;
    let (train, test) = data::split(&images, TRAIN_FRACTION, opts.seed);
    if images.is_empty() || train.is_empty() || test.is_empty() {
        return Err(format!(
            "{}: {} images are too few for a train/test split",
            path.display(),
            images.len()
        ));
    }
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("{}: cannot create the output folder: {e}", out.display()))?;
    println!(
        "{}: {} images of {}x{} pixels; {} for training, {} held out (seed {})",
        shown(&path),
        images.len(),
        images.side,
        images.side,
        train.len(),
        test.len(),
        opts.seed
    );

    let side = images.side;
    let mut outcomes = Vec::new();
    if matches!(opts.model, Which::Mlp | Which::Both) {
        let mut rng = Rng::seed_from(opts.seed.wrapping_add(1));
        let model = Mlp::new(&mut rng, side * side, MLP_HIDDEN, data::CLASSES);
        outcomes.push(fit(model, &MLP, &train, &test, opts, &out)?);
    }
    if matches!(opts.model, Which::Cnn | Which::Both) {
        if side < 4 {
            return Err(format!(
                "{}: {side}x{side} images are too small for the CNN (two 2x2 poolings)",
                path.display()
            ));
        }
        let mut rng = Rng::seed_from(opts.seed.wrapping_add(2));
        let (c1, c2) = CNN_CHANNELS;
        let model = Cnn::new(&mut rng, side, c1, c2, data::CLASSES);
        outcomes.push(fit(model, &CNN, &train, &test, opts, &out)?);
    }

    let chart = out.join("digits-curves.png");
    let curves: Vec<plot::Curve> = outcomes.iter().map(|o| o.curve.clone()).collect();
    plot::draw(&chart, &curves, 1200, 480)?;
    println!("learning curves: {}", shown(&chart));
    let accuracies: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{} {:.2}%", o.curve.name, o.accuracy * 100.0))
        .collect();
    println!("held-out accuracy: {}", accuracies.join(", "));
    println!("total time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Trains `model` with a progress bar, saves its checkpoint, and returns
/// its curve and final held-out accuracy.
fn fit<M: Classifier>(
    mut model: M,
    defaults: &Defaults,
    train_set: &Dataset,
    test_set: &Dataset,
    opts: &Options,
    out: &Path,
) -> Result<Outcome, String> {
    let name = model.name();
    let cfg = train::Config {
        epochs: opts.epochs.unwrap_or(defaults.epochs),
        lr: opts.lr.unwrap_or(defaults.lr),
        batch_size: BATCH_SIZE,
        warmup_epochs: 1,
        seed: opts.seed.wrapping_add(3),
    };
    let bar = ProgressBar::new(cfg.epochs as u64);
    let style = ProgressStyle::with_template(
        "{prefix:>4} [{bar:30.cyan/blue}] epoch {pos:>3}/{len} {msg} [{elapsed}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name);
    bar.set_message("training...");
    let started = Instant::now();
    let mut opt = Adam::new(cfg.lr);
    let quiet = bar.is_hidden();
    let history = train::train(&mut model, &mut opt, train_set, test_set, &cfg, |s| {
        let msg = format!(
            "loss {:.4}  test accuracy {:6.2}%",
            s.train_loss,
            s.test_accuracy * 100.0
        );
        if quiet && (s.epoch % 5 == 0 || s.epoch == cfg.epochs) {
            // No terminal (a log, CI): a line every few epochs instead.
            println!("{name} epoch {:>3}/{}: {msg}", s.epoch, cfg.epochs);
        }
        bar.set_message(msg);
        bar.inc(1);
    });
    bar.finish();
    let accuracy = history.last().map_or(0.0, |s| s.test_accuracy);
    let secs = started.elapsed().as_secs_f64();

    let ckpt = out.join(format!("digits-{name}.safetensors"));
    let mut meta = BTreeMap::new();
    meta.insert("model".to_owned(), name.to_owned());
    meta.insert("epochs".to_owned(), cfg.epochs.to_string());
    meta.insert("seed".to_owned(), opts.seed.to_string());
    meta.insert("test_accuracy".to_owned(), format!("{accuracy:.4}"));
    tapeless::checkpoint::save_with_metadata(&ckpt, &model, Some(&opt), opt_steps(&opt), &meta)
        .map_err(|e| format!("{}: cannot save the checkpoint: {e}", ckpt.display()))?;
    println!(
        "{name}: {} parameters, {} epochs in {secs:.1} s, held-out accuracy {:.2}%, checkpoint {}",
        num_params(&model),
        cfg.epochs,
        accuracy * 100.0,
        shown(&ckpt)
    );
    Ok(Outcome {
        curve: plot::Curve {
            name: name.to_owned(),
            train_loss: history.iter().map(|s| s.train_loss).collect(),
            test_accuracy: history.iter().map(|s| s.test_accuracy).collect(),
        },
        accuracy,
    })
}

fn opt_steps(opt: &Adam) -> u64 {
    use tapeless::optim::Optimizer;
    opt.steps()
}

/// `p` relative to the current folder when it lies below it.
fn shown(p: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(PathBuf::from));
    rel.unwrap_or_else(|| p.to_path_buf()).display().to_string()
}
