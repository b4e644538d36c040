//! Fuzzing checkpoint loading: arbitrary and mutated files never make
//! [`load`], [`load_with_metadata`] or [`read_metadata`] panic, and a load that
//! fails leaves the model and the optimizer exactly as they were.
//!
//! Inputs are drawn by a seeded generator (no extra dependency): random bytes,
//! and mutations of valid checkpoints (truncations, bit flips, overwritten and
//! inserted byte runs, a rewritten header length, and structure-aware edits of
//! the JSON header: numbers, shapes, dtypes, offsets, names and metadata
//! replaced, entries dropped or duplicated, two files spliced).
//!
//! * `TAPELESS_CKPT_FUZZ_ITERS`: inputs to try (default 1500, a few seconds);
//! * `TAPELESS_CKPT_FUZZ_SEED`: the seed (default: fixed, so CI is
//!   reproducible; any value explores new inputs).
//!
//! A panicking input is written to `target/checkpoint-fuzz-crash-N.safetensors`
//! and the test fails after the run, naming it.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use tapeless_runtime::checkpoint::{
    load, load_with_metadata, read_metadata, save, save_with_metadata, CheckpointError,
};
use tapeless_runtime::optim::{Adam, Optimizer, Sgd};
use tapeless_runtime::params::{for_each, Data, Parameters};
use tapeless_runtime::tensor::Tensor;

type Model = (Tensor, Tensor, Vec<f64>, f32);

fn model(k: f32) -> Model {
    (
        Tensor::from_vec((0..6).map(|i| i as f32 * 0.25 - k).collect(), &[3, 2]),
        Tensor::from_vec(vec![0.5 * k, -0.5], &[2]),
        vec![1.0, -2.0, f64::from(k)],
        1.25 + k,
    )
}

fn grad(k: f32) -> Model {
    (
        Tensor::from_vec((0..6).map(|i| i as f32 * 0.1 + k).collect(), &[3, 2]),
        Tensor::from_vec(vec![k, -1.0], &[2]),
        vec![0.5, -0.25, f64::from(k)],
        k - 1.0,
    )
}

/// Every buffer's name and bit patterns.
fn bits<M: Parameters>(m: &M) -> Vec<(String, Vec<u64>)> {
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

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn pick_opt<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        (!xs.is_empty()).then(|| self.pick(xs))
    }
}

/// Valid checkpoints to mutate: with Adam state and metadata, with SGD state,
/// without optimizer.
fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let m = model(0.5);
    let mut adam = Adam::new(1e-2);
    adam.step(&mut model(0.5), &grad(0.5));
    adam.step(&mut model(0.5), &grad(1.5));
    let meta: BTreeMap<String, String> = [("run".to_string(), "fuzz".to_string())]
        .into_iter()
        .collect();
    let p = dir.join("seed.safetensors");
    save_with_metadata(&p, &m, Some(&adam), 7, &meta).unwrap();
    out.push(fs::read(&p).unwrap());
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    sgd.step(&mut model(0.5), &grad(2.0));
    save(&p, &m, Some(&sgd), 3).unwrap();
    out.push(fs::read(&p).unwrap());
    save(&p, &m, None, 0).unwrap();
    out.push(fs::read(&p).unwrap());
    out
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "6",
    "7",
    "8",
    "16",
    "24",
    "-1",
    "255",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e400",
    "0.5",
    "null",
    "\"3\"",
];
const DTYPES: &[&str] = &[
    "F32", "F64", "F16", "BF16", "I8", "U8", "I64", "BOOL", "F8_E4M3", "XX", "",
];

/// Where `pat` occurs in `s`.
fn occurrences(s: &str, pat: &str) -> Vec<usize> {
    s.match_indices(pat).map(|(i, _)| i).collect()
}

/// A mutation of the JSON header text.
fn mutate_header(r: &mut Rng, h: &str) -> String {
    let mut s = h.to_string();
    for _ in 0..1 + r.below(3) {
        match r.below(12) {
            0 => {
                // replace one number
                let digits: Vec<usize> = s
                    .char_indices()
                    .filter(|(i, c)| {
                        c.is_ascii_digit()
                            && (*i == 0 || !s.as_bytes()[i - 1].is_ascii_alphanumeric())
                    })
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = digits.get(r.below(digits.len())) {
                    let end = s[at..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(s.len(), |e| at + e);
                    let n = *r.pick(NUMBERS);
                    s.replace_range(at..end, n);
                }
            }
            1 => {
                // change a dtype
                let from = *r.pick(&["\"F32\"", "\"F64\""]);
                if let Some(&at) = r.pick_opt(&occurrences(&s, from)) {
                    s.replace_range(at..at + from.len(), &format!("\"{}\"", r.pick(DTYPES)));
                }
            }
            2 => {
                // change a shape
                if let Some(&at) = r.pick_opt(&occurrences(&s, "\"shape\":[")) {
                    let start = at + "\"shape\":[".len();
                    if let Some(len) = s[start..].find(']') {
                        let dims: Vec<&str> = (0..r.below(4)).map(|_| *r.pick(NUMBERS)).collect();
                        s.replace_range(start..start + len, &dims.join(","));
                    }
                }
            }
            3 => {
                // swap the two offsets of an entry
                if let Some(&at) = r.pick_opt(&occurrences(&s, "\"data_offsets\":[")) {
                    let start = at + "\"data_offsets\":[".len();
                    if let Some(len) = s[start..].find(']') {
                        let inner: Vec<String> = s[start..start + len]
                            .split(',')
                            .map(str::to_string)
                            .collect();
                        if inner.len() == 2 {
                            s.replace_range(
                                start..start + len,
                                &format!("{},{}", inner[1], inner[0]),
                            );
                        }
                    }
                }
            }
            4 => {
                // rename a tensor or a metadata key
                let quotes: Vec<usize> = s.match_indices('"').map(|(i, _)| i).collect();
                if quotes.len() >= 2 {
                    let q = r.below(quotes.len() / 2) * 2;
                    let name = *r.pick(&[
                        "__metadata__",
                        "tapeless.step",
                        "tapeless.optimizer",
                        "adam",
                        "sgd",
                        "0",
                        "1",
                        "2",
                        "3",
                        "value",
                        "",
                        "adam.m.0",
                        "adam.steps",
                    ]);
                    s.replace_range(quotes[q] + 1..quotes[q + 1], name);
                }
            }
            5 => {
                // drop a character range (often an entry or part of one)
                if !s.is_empty() {
                    let a = r.below(s.len());
                    let b = (a + 1 + r.below(40)).min(s.len());
                    if s.is_char_boundary(a) && s.is_char_boundary(b) {
                        s.replace_range(a..b, "");
                    }
                }
            }
            6 => {
                // duplicate a range
                if !s.is_empty() {
                    let a = r.below(s.len());
                    let b = (a + 1 + r.below(60)).min(s.len());
                    if s.is_char_boundary(a) && s.is_char_boundary(b) {
                        let piece = s[a..b].to_string();
                        s.insert_str(b, &piece);
                    }
                }
            }
            7 => {
                // a metadata value that is not a step count
                for key in ["\"tapeless.step\":\"", "\"tapeless.optimizer\":\""] {
                    if let Some(at) = s.find(key) {
                        let start = at + key.len();
                        if let Some(len) = s[start..].find('"') {
                            let v = *r.pick(&[
                                "-1",
                                "x",
                                "",
                                "99999999999999999999",
                                "adam",
                                "sgd",
                                "rmsprop",
                            ]);
                            s.replace_range(start..start + len, v);
                        }
                    }
                }
            }
            9 => {
                // a reshape that keeps the element count (and so a valid file)
                if let Some(&at) = r.pick_opt(&occurrences(&s, "\"shape\":[")) {
                    let start = at + "\"shape\":[".len();
                    if let Some(len) = s[start..].find(']') {
                        let n: usize = s[start..start + len]
                            .split(',')
                            .filter_map(|d| d.parse::<usize>().ok())
                            .product();
                        let shapes = [
                            format!("{n}"),
                            format!("1,{n}"),
                            format!("{n},1"),
                            String::new(),
                            if n % 2 == 0 {
                                format!("2,{}", n / 2)
                            } else {
                                format!("{n},1,1")
                            },
                            if n % 3 == 0 {
                                format!("{},3", n / 3)
                            } else {
                                format!("1,1,{n}")
                            },
                        ];
                        let new = r.pick(&shapes).clone();
                        // `[]` holds one element: only for n == 1
                        if !new.is_empty() || n == 1 {
                            s.replace_range(start..start + len, &new);
                        }
                    }
                }
            }
            10 => {
                // a dtype of the same size (so the offsets still agree)
                let (from, to) = *r.pick(&[
                    ("\"F32\"", "\"I32\""),
                    ("\"F32\"", "\"U32\""),
                    ("\"F64\"", "\"I64\""),
                    ("\"F64\"", "\"U64\""),
                    ("\"F32\"", "\"F64\""),
                    ("\"F64\"", "\"F32\""),
                ]);
                if let Some(&at) = r.pick_opt(&occurrences(&s, from)) {
                    s.replace_range(at..at + from.len(), to);
                }
            }
            11 => {
                // two entries swap names (shapes, dtypes and roles disagree)
                let keys: Vec<(usize, usize)> = occurrences(&s, "\":{")
                    .into_iter()
                    .filter_map(|end| s[..end].rfind('"').map(|start| (start + 1, end)))
                    .collect();
                if keys.len() >= 2 {
                    let (a, b) = (*r.pick(&keys), *r.pick(&keys));
                    let (a, b) = if a.0 < b.0 { (a, b) } else { (b, a) };
                    if a.1 < b.0 {
                        let (na, nb) = (s[a.0..a.1].to_string(), s[b.0..b.1].to_string());
                        s.replace_range(b.0..b.1, &na);
                        s.replace_range(a.0..a.1, &nb);
                    }
                }
            }
            _ => {
                // an unexpected token
                let at = r.below(s.len() + 1);
                let token = *r.pick(&["{", "}", "[", "]", ",", ":", "\"", "\\u0000", "é", "null"]);
                if s.is_char_boundary(at) {
                    s.insert_str(at, token);
                }
            }
        }
    }
    s
}

/// Splits a safetensors file into (header JSON, data); `None` if it is not one.
fn split(bytes: &[u8]) -> Option<(String, &[u8])> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = std::str::from_utf8(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    Some((header.to_string(), &bytes[8 + n..]))
}

fn join(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// One fuzz input.
fn input(r: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let base = r.pick(seeds).clone();
    match r.below(10) {
        0 => {
            // random bytes, sometimes behind a plausible header length
            let n = r.below(600);
            let mut v: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
            if r.chance(0.5) && v.len() >= 8 {
                let len = r.below(v.len()) as u64;
                v[..8].copy_from_slice(&len.to_le_bytes());
            }
            v
        }
        1 => {
            // truncated
            let at = r.below(base.len());
            base[..at].to_vec()
        }
        2 => {
            // bit flips
            let mut v = base;
            for _ in 0..1 + r.below(8) {
                let i = r.below(v.len());
                v[i] ^= 1 << r.below(8);
            }
            v
        }
        3 => {
            // an overwritten or inserted run of bytes
            let mut v = base;
            let at = r.below(v.len());
            let run: Vec<u8> = (0..1 + r.below(24)).map(|_| r.next() as u8).collect();
            if r.chance(0.5) {
                for (k, b) in run.into_iter().enumerate() {
                    if at + k < v.len() {
                        v[at + k] = b;
                    }
                }
            } else {
                v.splice(at..at, run);
            }
            v
        }
        4 => {
            // the header length field rewritten
            let mut v = base;
            let n = u64::from_le_bytes(v[..8].try_into().unwrap());
            let len = *r.pick(&[
                0,
                1,
                n - 1,
                n + 1,
                n + 8,
                v.len() as u64,
                v.len() as u64 - 8,
                u64::MAX,
                u64::MAX / 2,
                1 << 32,
                100_000_000,
            ]);
            v[..8].copy_from_slice(&len.to_le_bytes());
            v
        }
        5 => {
            // data section resized
            let (h, d) = split(&base).unwrap();
            let mut d = d.to_vec();
            if r.chance(0.5) {
                d.truncate(r.below(d.len() + 1));
            } else {
                d.extend((0..1 + r.below(16)).map(|_| r.next() as u8));
            }
            join(&h, &d)
        }
        6 => {
            // two files spliced: one's header, the other's data
            let (h, _) = split(&base).unwrap();
            let other = r.pick(seeds);
            let (_, d) = split(other).unwrap();
            join(&h, d)
        }
        _ => {
            // structure-aware edits of the header
            let (h, d) = split(&base).unwrap();
            join(&mutate_header(r, &h), d)
        }
    }
}

fn kind(e: &CheckpointError) -> &'static str {
    match e {
        CheckpointError::NotFound { .. } => "NotFound",
        CheckpointError::Io { .. } => "Io",
        CheckpointError::Corrupt { .. } => "Corrupt",
        CheckpointError::MissingTensor { .. } => "MissingTensor",
        CheckpointError::ShapeMismatch { .. } => "ShapeMismatch",
        CheckpointError::DtypeMismatch { .. } => "DtypeMismatch",
        CheckpointError::Metadata { .. } => "Metadata",
        CheckpointError::DuplicateName { .. } => "DuplicateName",
        CheckpointError::OptimizerMismatch { .. } => "OptimizerMismatch",
        CheckpointError::UnexpectedState { .. } => "UnexpectedState",
        CheckpointError::State(_) => "State",
        CheckpointError::Encode { .. } => "Encode",
        _ => "other",
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// Loads `path` every way there is; returns the outcome names, or a panic message.
fn try_all(path: &Path, tally: &mut BTreeMap<String, usize>) -> Result<(), String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut outcomes = Vec::new();
        // model + Adam
        let mut m = model(9.0);
        let mut adam = Adam::new(1e-3);
        adam.step(&mut model(9.0), &grad(3.0));
        let (before, state) = (bits(&m), adam.state());
        match load(path, &mut m, Some(&mut adam)) {
            Ok(_) => outcomes.push("adam:Ok".to_string()),
            Err(e) => {
                assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
                assert!(
                    adam.state() == state,
                    "failed load ({e}) changed Adam's state"
                );
                outcomes.push(format!("adam:{}", kind(&e)));
            }
        }
        // model + SGD with momentum
        let mut m = model(9.0);
        let mut sgd = Sgd::new(0.3).momentum(0.5);
        sgd.step(&mut model(9.0), &grad(4.0));
        let (before, state) = (bits(&m), sgd.state());
        if let Err(e) = load(path, &mut m, Some(&mut sgd)) {
            assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
            assert!(
                sgd.state() == state,
                "failed load ({e}) changed SGD's state"
            );
        }
        // model alone, with metadata
        let mut m = model(9.0);
        let before = bits(&m);
        match load_with_metadata(path, &mut m, None) {
            Ok(_) => outcomes.push("model:Ok".to_string()),
            Err(e) => {
                assert_eq!(bits(&m), before, "failed load ({e}) changed the model");
                outcomes.push(format!("model:{}", kind(&e)));
            }
        }
        let _ = read_metadata(path);
        outcomes
    }));
    match r {
        Ok(outcomes) => {
            for o in outcomes {
                *tally.entry(o).or_default() += 1;
            }
            Ok(())
        }
        Err(e) => Err(panic_message(&*e)),
    }
}

#[test]
fn loading_arbitrary_and_mutated_files_never_panics_and_failures_change_nothing() {
    let iters: usize = std::env::var("TAPELESS_CKPT_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("TAPELESS_CKPT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0C4E_C4B0);
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    // the unmutated seeds load
    for s in &seeds {
        let p = dir.path().join("valid.safetensors");
        fs::write(&p, s).unwrap();
        load(&p, &mut model(0.0), None).unwrap();
    }
    let mut r = Rng(seed);
    let mut tally = BTreeMap::new();
    let mut crashes: Vec<(PathBuf, String)> = Vec::new();
    let start = std::time::Instant::now();
    let path = dir.path().join("fuzz.safetensors");
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..iters {
        let bytes = input(&mut r, &seeds);
        fs::write(&path, &bytes).unwrap();
        if let Err(msg) = try_all(&path, &mut tally) {
            let keep = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target")
                .join(format!(
                    "checkpoint-fuzz-crash-{}.safetensors",
                    crashes.len()
                ));
            let _ = fs::create_dir_all(keep.parent().unwrap());
            let _ = fs::write(&keep, &bytes);
            crashes.push((keep, msg));
        }
    }
    std::panic::set_hook(quiet);
    eprintln!(
        "checkpoint fuzz: seed {seed:#x}, {iters} inputs in {:.1?} ({:.0}/s), outcomes {tally:?}, {} panics",
        start.elapsed(),
        iters as f64 / start.elapsed().as_secs_f64(),
        crashes.len()
    );
    assert!(
        crashes.is_empty(),
        "loading panicked on {} inputs (kept for replay):\n{}",
        crashes.len(),
        crashes
            .iter()
            .map(|(p, m)| format!("  {}: {m}", p.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // the mutations reach past the parser: some are rejected by each later check
    for k in [
        "adam:Corrupt",
        "adam:Ok",
        "adam:ShapeMismatch",
        "adam:DtypeMismatch",
        "adam:Metadata",
    ] {
        assert!(tally.contains_key(k), "no input ended in {k}: {tally:?}");
    }
}
