//! Loading labelled images: the vendored digits CSV (gzipped or not) or
//! MNIST-format IDX files, with every malformed input reported as one line
//! that names the file and what is wrong.

use flate2::read::MultiGzDecoder;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use tapeless::nn::{Dataset, Rng};
use tapeless::tensor::Tensor;

/// The number of classes (digits 0..9).
pub const CLASSES: usize = 10;

/// The digits data set vendored with the crate (1797 8x8 images).
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz")
}

/// Why a data file could not be loaded: the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file (or folder) at fault.
    pub path: PathBuf,
    /// What is wrong, one line.
    pub msg: String,
}

impl DataError {
    fn new(path: &Path, msg: impl Into<String>) -> DataError {
        DataError {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.msg)
    }
}

impl std::error::Error for DataError {}

/// Square grey-scale images with their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    /// `n * side * side` pixels, row-major per image, scaled to `[0, 1]`.
    pub pixels: Vec<f32>,
    /// One label in `0..CLASSES` per image.
    pub labels: Vec<usize>,
    /// The images' width and height.
    pub side: usize,
}

impl Images {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A data set of features `[n, 1, side, side]`.
    pub fn to_dataset(&self) -> Dataset {
        let n = self.len();
        let x = Tensor::from_vec(self.pixels.clone(), &[n, 1, self.side, self.side]);
        Dataset::new(x, self.labels.clone())
    }
}

/// A shuffled train/test split: `train_fraction` of the examples (rounded
/// down) for training, the rest held out; the order comes from
/// [`Rng::seed_from`]`(seed)`, so a seed fixes the split.
pub fn split(data: &Images, train_fraction: f64, seed: u64) -> (Dataset, Dataset) {
    let all = data.to_dataset();
    let n = all.len();
    let order = Rng::seed_from(seed).permutation(n);
    let (x, y) = all.select(&order);
    let cut = ((n as f64 * train_fraction) as usize).min(n);
    Dataset::new(x, y).split_at(cut)
}

/// Loads `path`: a folder of MNIST IDX files (see [`load_idx_dir`]) or a CSV
/// file, gzipped or not (see [`parse_csv`]).
pub fn load(path: &Path) -> Result<Images, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.is_dir() {
        load_idx_dir(path)
    } else {
        let bytes = read_maybe_gz(path)?;
        parse_csv(path, &bytes)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> DataError {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => format!("cannot read: {e}"),
    };
    DataError::new(path, what)
}

/// The bytes of `path`, decompressed when they start with the gzip magic
/// number (`1f 8b`), whatever the file is called.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::new(path, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// Parses CSV rows of integers, no header: each row is the `side * side`
/// pixels of an image, row-major, then its label `0..=9`. Every row must
/// have the same number of fields, one more than a square; pixels must be
/// non-negative and are divided by the largest pixel in the file (16 for
/// the digits, 255 for MNIST), so they lie in `[0, 1]`.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Images, DataError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DataError::new(path, format!("not a text (UTF-8) file: {e}")))?;
    let mut raw: Vec<u32> = Vec::new();
    let mut labels = Vec::new();
    let mut width = None::<usize>;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: String| DataError::new(path, format!("line {line_no}: {msg}"));
        let start = raw.len();
        let mut fields = 0;
        for (col, field) in line.split(',').enumerate() {
            let field = field.trim();
            let v: i64 = field.parse().map_err(|_| {
                at(format!(
                    "field {} is `{}`, not an integer",
                    col + 1,
                    shorten(field)
                ))
            })?;
            raw.push(u32::try_from(v).map_err(|_| {
                at(format!(
                    "field {} is {v}, outside 0..={}",
                    col + 1,
                    u32::MAX
                ))
            })?);
            fields += 1;
        }
        match width {
            None => {
                let side = (fields as f64 - 1.0).max(0.0).sqrt().round() as usize;
                if fields < 2 || side * side + 1 != fields {
                    return Err(at(format!(
                        "{fields} fields; expected the pixels of a square image then a label (65 for 8x8 digits)"
                    )));
                }
                width = Some(fields);
            }
            Some(w) if w != fields => {
                return Err(at(format!("{fields} fields, but the rows before have {w}")));
            }
            Some(_) => {}
        }
        let label = raw.pop().expect("a row has at least two fields");
        if label as usize >= CLASSES {
            return Err(at(format!(
                "label {label} is not a digit 0..={}",
                CLASSES - 1
            )));
        }
        debug_assert_eq!(raw.len() - start, fields - 1);
        labels.push(label as usize);
    }
    let Some(width) = width else {
        return Err(DataError::new(path, "no data rows (the file is empty)"));
    };
    let side = ((width - 1) as f64).sqrt().round() as usize;
    let max = raw.iter().copied().max().unwrap_or(0).max(1) as f32;
    let pixels = raw.into_iter().map(|v| v as f32 / max).collect();
    Ok(Images {
        pixels,
        labels,
        side,
    })
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 20 {
        format!("{}...", s.chars().take(20).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The IDX files a folder must hold (each may also be gzipped, with `.gz`).
pub const IDX_IMAGES: &str = "train-images-idx3-ubyte";
/// See [`IDX_IMAGES`].
pub const IDX_LABELS: &str = "train-labels-idx1-ubyte";

/// Loads MNIST's training files from `dir`: [`IDX_IMAGES`] and
/// [`IDX_LABELS`], gzipped or not (also found as `train-images.idx3-ubyte`,
/// the spelling some mirrors use, and with a `.gz` suffix).
pub fn load_idx_dir(dir: &Path) -> Result<Images, DataError> {
    let find = |name: &str| -> Result<PathBuf, DataError> {
        let dotted = name.replace("-idx", ".idx");
        let candidates = [
            name.to_owned(),
            format!("{name}.gz"),
            dotted.clone(),
            format!("{dotted}.gz"),
        ];
        candidates
            .iter()
            .map(|c| dir.join(c))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                DataError::new(
                    dir,
                    format!(
                        "a data folder must hold MNIST's {name} (or {name}.gz), which is missing"
                    ),
                )
            })
    };
    let images_path = find(IDX_IMAGES)?;
    let labels_path = find(IDX_LABELS)?;
    let (n, side, raw) = parse_idx_images(&images_path, &read_maybe_gz(&images_path)?)?;
    let labels = parse_idx_labels(&labels_path, &read_maybe_gz(&labels_path)?)?;
    if labels.len() != n {
        return Err(DataError::new(
            &labels_path,
            format!(
                "{} labels, but {} holds {n} images",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    let pixels = raw.iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok(Images {
        pixels,
        labels,
        side,
    })
}

/// Reads the header of an IDX file of unsigned bytes with `dims` dimensions:
/// magic `00 00 08 dims`, then `dims` big-endian `u32` sizes; checks that
/// exactly the data they announce follows. Returns the sizes and the data.
fn idx_body<'a>(
    path: &Path,
    bytes: &'a [u8],
    dims: u8,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let header = 4 + 4 * dims as usize;
    if bytes.len() < 4 {
        return Err(DataError::new(
            path,
            format!("{} bytes is too short for an IDX file", bytes.len()),
        ));
    }
    let expected = [0, 0, 0x08, dims];
    if bytes[..4] != expected {
        return Err(DataError::new(
            path,
            format!(
                "bad magic number {:02x} {:02x} {:02x} {:02x}: expected {:02x} {:02x} {:02x} {:02x} (IDX, unsigned bytes, {dims} dimensions)",
                bytes[0], bytes[1], bytes[2], bytes[3], expected[0], expected[1], expected[2], expected[3]
            ),
        ));
    }
    if bytes.len() < header {
        return Err(DataError::new(
            path,
            format!("truncated header: {} bytes, expected {header}", bytes.len()),
        ));
    }
    let sizes: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let body = sizes.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    let body_len = bytes.len() - header;
    match body {
        Some(b) if b == body_len => Ok((sizes, &bytes[header..])),
        Some(b) => Err(DataError::new(
            path,
            format!(
                "the header announces {} = {b} bytes of data, but {body_len} follow ({})",
                sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" x "),
                if body_len < b {
                    "truncated"
                } else {
                    "trailing bytes"
                }
            ),
        )),
        None => Err(DataError::new(path, "the header's sizes overflow")),
    }
}

/// Parses an IDX3 image file (`00 00 08 03`, count, rows, columns, pixels):
/// returns the count, the side (rows must equal columns) and the pixels.
pub fn parse_idx_images(path: &Path, bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), DataError> {
    let (sizes, body) = idx_body(path, bytes, 3)?;
    let (n, rows, cols) = (sizes[0], sizes[1], sizes[2]);
    if rows != cols || rows == 0 {
        return Err(DataError::new(
            path,
            format!("images are {rows}x{cols}; expected square, non-empty images"),
        ));
    }
    if n == 0 {
        return Err(DataError::new(path, "the file holds no images"));
    }
    Ok((n, rows, body.to_vec()))
}

/// Parses an IDX1 label file (`00 00 08 01`, count, labels), each `0..=9`.
pub fn parse_idx_labels(path: &Path, bytes: &[u8]) -> Result<Vec<usize>, DataError> {
    let (_, body) = idx_body(path, bytes, 1)?;
    body.iter()
        .enumerate()
        .map(|(i, &l)| {
            if (l as usize) < CLASSES {
                Ok(l as usize)
            } else {
                Err(DataError::new(
                    path,
                    format!("label {l} at index {i} is not a digit 0..={}", CLASSES - 1),
                ))
            }
        })
        .collect()
}
