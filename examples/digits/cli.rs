//! Command-line options, parsed by hand.

use std::path::PathBuf;

/// Which models to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The multi-layer perceptron.
    Mlp,
    /// The convolutional network.
    Cnn,
    /// Both, MLP first.
    Both,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `--epochs N`: overrides each model's default.
    pub epochs: Option<usize>,
    /// `--lr F`: overrides each model's default peak learning rate.
    pub lr: Option<f64>,
    /// `--model mlp|cnn|both`.
    pub model: Which,
    /// `--data PATH`: a CSV(.gz) file or a folder of MNIST IDX files.
    pub data: Option<PathBuf>,
    /// `--seed N`: the split, the initial weights and the batch order.
    pub seed: u64,
    /// `--out DIR`: where the chart and the checkpoints go.
    pub out: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            epochs: None,
            lr: None,
            model: Which::Both,
            data: None,
            seed: 0,
            out: None,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Train with these options.
    Run(Options),
    /// Print [`USAGE`] and exit.
    Help,
}

/// The `--help` text.
pub const USAGE: &str = "\
Trains an MLP and a small CNN on handwritten digits with gradients written
by #[differentiable], then reports held-out accuracy, draws learning curves
and saves checkpoints.

Usage: cargo run --release --example digits -- [OPTIONS]

Options:
  --epochs N              passes over the training set (default: mlp 40, cnn 30)
  --lr F                  peak learning rate of Adam (default: mlp 0.003, cnn 0.003)
  --model mlp|cnn|both    which model(s) to train (default: both)
  --data PATH             a CSV file like data/digits.csv.gz (gzipped or not;
                          rows of pixels then a label 0..9), or a folder holding
                          MNIST's train-images-idx3-ubyte and train-labels-idx1-ubyte
                          (gzipped or not) (default: the vendored digits)
                          (MNIST's 60,000 images take about a minute per CNN
                          epoch on 2 cores: try --epochs 3)
  --seed N                seeds the 80/20 split, the weights and the batch order (default: 0)
  --out DIR               where digits-curves.png and the .safetensors checkpoints
                          go (default: target/ in the crate's folder)
  -h, --help              print this help
";

/// Parses the arguments after the program name. The error is one line.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        if !matches!(
            flag.as_str(),
            "--epochs" | "--lr" | "--model" | "--data" | "--seed" | "--out"
        ) {
            return Err(format!("unknown argument `{arg}` (see --help)"));
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))?,
        };
        match flag.as_str() {
            "--epochs" => {
                o.epochs = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            format!("--epochs expects a positive integer, got `{value}`")
                        })?,
                )
            }
            "--lr" => {
                o.lr = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|&x| x.is_finite() && x > 0.0)
                        .ok_or_else(|| format!("--lr expects a positive number, got `{value}`"))?,
                )
            }
            "--model" => {
                o.model = match value.as_str() {
                    "mlp" => Which::Mlp,
                    "cnn" => Which::Cnn,
                    "both" => Which::Both,
                    _ => return Err(format!("--model expects mlp, cnn or both, got `{value}`")),
                }
            }
            "--data" => o.data = Some(PathBuf::from(value)),
            "--seed" => {
                o.seed = value
                    .parse::<u64>()
                    .map_err(|_| format!("--seed expects a non-negative integer, got `{value}`"))?
            }
            "--out" => o.out = Some(PathBuf::from(value)),
            _ => unreachable!("flags are checked above"),
        }
    }
    Ok(Command::Run(o))
}
