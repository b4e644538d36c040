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

// ---- proptest: properties with shrinking, and bounded allocation ------------
//
// The same promises as above, checked by proptest (which shrinks a failing
// input to a small one), plus two more: a load that succeeds put exactly the
// file's numbers into the model, and loading never allocates more than a
// bound tied to the file's length (a header that claims a huge tensor or a
// huge header is rejected before anything of that size is allocated).
//
// `PROPTEST_CASES` sets the number of cases per property (default 96: a few
// seconds in debug builds).

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, noting the largest single request of each thread.
struct PeakAlloc;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; noting the size neither
// allocates nor touches the memory.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded; `ptr` came from this allocator, which is `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from this allocator, which is `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Runs `f` and returns its result with the largest single allocation it
/// made on this thread.
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(Cell::get))
}

/// The most one allocation of a load may take: the file's bytes (read
/// whole), the decoded data, the parsed header, all within a few times the
/// length of the file, plus the model's own buffers and some slack.
fn alloc_bound(file_len: usize) -> usize {
    4 * file_len + (64 << 10)
}

/// The valid checkpoints that mutations start from: (Adam + metadata, SGD,
/// model only).
fn valid_files() -> &'static [Vec<u8>] {
    static FILES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        seeds(dir.path())
    })
}

/// `bits` of the tensors of the file that `m` has buffers for, read with
/// safetensors directly: what a correct load puts into `m`.
fn file_bits(bytes: &[u8], m: &Model) -> Vec<(String, Vec<u64>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    bits(m)
        .into_iter()
        .map(|(name, _)| {
            let v = st.tensor(&name).unwrap();
            let b = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| u64::from(u32::from_le_bytes(c.try_into().unwrap())))
                    .collect(),
                _ => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            };
            (name, b)
        })
        .collect()
}

/// Loads `bytes` with Adam state, without optimizer, and reads the metadata;
/// checks that a failure changes nothing, a success loads the file's
/// numbers, and no allocation exceeds [`alloc_bound`]. Returns whether the
/// model-only load succeeded.
fn check_load(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), bytes).unwrap();
    let path = file.path();
    let bound = alloc_bound(bytes.len());

    let mut m = model(9.0);
    let mut adam = Adam::new(1e-3);
    adam.step(&mut model(9.0), &grad(3.0));
    let (before, state) = (bits(&m), adam.state());
    let (r, peak) = peak_alloc(|| load(path, &mut m, Some(&mut adam)));
    prop_assert!(
        peak <= bound,
        "load with Adam allocated {peak} bytes at once"
    );
    match r {
        Ok(_) => prop_assert_eq!(bits(&m), file_bits(bytes, &m)),
        Err(e) => {
            prop_assert_eq!(bits(&m), before, "failed load ({}) changed the model", e);
            prop_assert!(adam.state() == state, "failed load ({}) changed Adam", e);
        }
    }

    let mut m = model(9.0);
    let before = bits(&m);
    let (r, peak) = peak_alloc(|| load_with_metadata(path, &mut m, None));
    prop_assert!(peak <= bound, "load allocated {peak} bytes at once");
    let ok = match r {
        Ok(_) => {
            prop_assert_eq!(bits(&m), file_bits(bytes, &m));
            true
        }
        Err(e) => {
            prop_assert_eq!(bits(&m), before, "failed load ({}) changed the model", e);
            false
        }
    };

    let (_, peak) = peak_alloc(|| read_metadata(path));
    prop_assert!(
        peak <= bound,
        "read_metadata allocated {peak} bytes at once"
    );
    Ok(ok)
}

/// Numbers worth trying where the header has a number.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        Just(u64::MAX),
        Just((1 << 61) - 1),
        Just(1 << 60),
        Just(1 << 40),
        Just(1 << 32),
        any::<u64>(),
    ]
}

/// An edit of the JSON header (an object of tensor entries and `__metadata__`).
#[derive(Clone, Debug)]
enum HeaderEdit {
    Dtype(usize, &'static str),
    Shape(usize, Vec<u64>),
    Offsets(usize, u64, u64),
    /// Shift an entry's offsets by a signed amount (overlaps, gaps).
    Shift(usize, i64),
    Remove(usize),
    Rename(usize, &'static str),
    Metadata(&'static str, String),
    /// The entry written twice (the text has a duplicate key).
    Duplicate(usize),
    /// The entry copied under another entry's name (the text has that key twice).
    Collide(usize, usize),
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let dtype = prop::sample::select(vec![
        "F32", "F64", "F16", "BF16", "I32", "U32", "I64", "U8", "BOOL", "F4", "F6_E2M3", "XX",
    ]);
    let name = prop::sample::select(vec![
        "0",
        "1",
        "2",
        "3",
        "value",
        "",
        "adam.m.0",
        "adam.v.9",
        "adam.step.0",
        "adam.lr",
        "adam.steps",
        "sgd.momentum.1",
        "adam..",
        "adam",
    ]);
    let key = prop::sample::select(vec!["tapeless.step", "tapeless.optimizer", "format", "run"]);
    let value = prop_oneof![
        Just("adam".to_string()),
        Just("sgd".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        "[0-9]{0,3}",
        ".{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), dtype).prop_map(|(i, d)| HeaderEdit::Dtype(i, d)),
        (any::<usize>(), prop::collection::vec(number(), 0..4))
            .prop_map(|(i, s)| HeaderEdit::Shape(i, s)),
        (any::<usize>(), number(), number()).prop_map(|(i, a, b)| HeaderEdit::Offsets(i, a, b)),
        (any::<usize>(), -16..16i64).prop_map(|(i, d)| HeaderEdit::Shift(i, d)),
        any::<usize>().prop_map(HeaderEdit::Remove),
        (any::<usize>(), name).prop_map(|(i, n)| HeaderEdit::Rename(i, n)),
        (key, value).prop_map(|(k, v)| HeaderEdit::Metadata(k, v)),
        any::<usize>().prop_map(HeaderEdit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| HeaderEdit::Collide(i, j)),
    ]
}

/// The header as a list of (key, value) in file order (so duplicates survive).
fn entries(header: &str) -> Vec<(String, serde_json::Value)> {
    let v: serde_json::Value = serde_json::from_str(header).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn render(entries: &[(String, serde_json::Value)]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", serde_json::Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn apply(entries: &mut Vec<(String, serde_json::Value)>, edit: &HeaderEdit) {
    use serde_json::{json, Value};
    let tensors: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].0 != "__metadata__")
        .collect();
    let pick = |i: usize| tensors[i % tensors.len()];
    match edit {
        HeaderEdit::Dtype(i, d) => entries[pick(*i)].1["dtype"] = json!(d),
        HeaderEdit::Shape(i, s) => entries[pick(*i)].1["shape"] = json!(s),
        HeaderEdit::Offsets(i, a, b) => entries[pick(*i)].1["data_offsets"] = json!([a, b]),
        HeaderEdit::Shift(i, d) => {
            let e = &mut entries[pick(*i)].1["data_offsets"];
            let shifted: Vec<Value> = e
                .as_array()
                .unwrap()
                .iter()
                .map(|o| json!(o.as_u64().unwrap().saturating_add_signed(*d)))
                .collect();
            *e = Value::Array(shifted);
        }
        HeaderEdit::Remove(i) => {
            entries.remove(pick(*i));
        }
        HeaderEdit::Rename(i, n) => entries[pick(*i)].0 = n.to_string(),
        HeaderEdit::Metadata(k, v) => {
            if let Some((_, m)) = entries.iter_mut().find(|(k, _)| k == "__metadata__") {
                m[*k] = json!(v);
            }
        }
        HeaderEdit::Duplicate(i) => {
            let e = entries[pick(*i)].clone();
            entries.push(e);
        }
        HeaderEdit::Collide(i, j) => {
            let mut e = entries[pick(*i)].clone();
            e.0 = entries[pick(*j)].0.clone();
            entries.push(e);
        }
    }
}

/// A byte-level mutation of a whole file.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Truncate(usize),
    HeaderLen(u64),
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    /// A byte of the header replaced by one that is not UTF-8.
    NonUtf8(usize, u8),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        any::<usize>().prop_map(ByteEdit::Truncate),
        number().prop_map(ByteEdit::HeaderLen),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| ByteEdit::Overwrite(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| ByteEdit::Insert(i, v)),
        (any::<usize>(), 0x80..=0xffu8).prop_map(|(i, b)| ByteEdit::NonUtf8(i, b)),
    ]
}

fn apply_bytes(v: &mut Vec<u8>, edit: &ByteEdit) {
    let n = v.len();
    match edit {
        ByteEdit::Flip(i, b) => v[i % n] ^= 1 << b,
        ByteEdit::Truncate(i) => v.truncate(i % n),
        ByteEdit::HeaderLen(len) => v[..8].copy_from_slice(&len.to_le_bytes()),
        ByteEdit::Overwrite(i, run) => {
            for (k, b) in run.iter().enumerate() {
                if let Some(x) = v.get_mut(i % n + k) {
                    *x = *b;
                }
            }
        }
        ByteEdit::Insert(i, run) => {
            v.splice(i % n..i % n, run.iter().copied());
        }
        ByteEdit::NonUtf8(i, b) => {
            // within the header, as far as the (maybe edited) length and
            // the file allow
            let h = u64::from_le_bytes(v[..8].try_into().unwrap());
            let h = usize::try_from(h).unwrap_or(usize::MAX).min(n - 8).max(1);
            v[8 + i % h] = *b;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // `PROPTEST_CASES` overrides the default, a few seconds in debug
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes, alone or behind a header length that fits the file.
    #[test]
    fn prop_arbitrary_bytes_are_an_error(
        mut bytes in prop::collection::vec(any::<u8>(), 0..512),
        fit_len in any::<bool>(),
    ) {
        if fit_len && bytes.len() >= 8 {
            let n = (bytes.len() - 8) as u64;
            bytes[..8].copy_from_slice(&n.to_le_bytes());
        }
        prop_assert!(!check_load(&bytes)?);
    }

    /// Bit flips, truncations, header lengths, overwritten or inserted runs,
    /// bytes that are not UTF-8, applied to a valid checkpoint.
    #[test]
    fn prop_byte_mutations_of_a_valid_file(
        which in 0..3usize,
        edits in prop::collection::vec(byte_edit(), 1..4),
    ) {
        let mut v = valid_files()[which].clone();
        for e in &edits {
            if v.len() > 8 + 2 {
                apply_bytes(&mut v, e);
            }
        }
        check_load(&v)?;
    }

    /// Header edits: dtypes, shapes whose product does not match the byte
    /// range, out-of-range and overlapping offsets, removed, renamed and
    /// duplicated entries, metadata values.
    #[test]
    fn prop_header_edits_of_a_valid_file(
        which in 0..3usize,
        edits in prop::collection::vec(header_edit(), 1..4),
        extra_data in prop::collection::vec(any::<u8>(), 0..2),
    ) {
        let base = &valid_files()[which];
        let (h, d) = split(base).unwrap();
        let mut es = entries(&h);
        for e in &edits {
            apply(&mut es, e);
        }
        let mut d = d.to_vec();
        d.extend_from_slice(&extra_data);
        check_load(&join(&render(&es), &d))?;
    }

    /// Edits that keep the file valid (key order, whitespace padding of the
    /// header as the format allows) load exactly the original numbers.
    #[test]
    fn prop_benign_edits_load_the_same_numbers(
        which in 0..3usize,
        order in any::<u64>(),
        pad in 0..16usize,
    ) {
        let base = &valid_files()[which];
        let (h, d) = split(base).unwrap();
        let mut es = entries(&h);
        // a seeded shuffle of the entries
        let mut r = Rng(order);
        for i in (1..es.len()).rev() {
            es.swap(i, r.below(i + 1));
        }
        let header = render(&es) + &" ".repeat(pad);
        let bytes = join(&header, d);
        prop_assert!(check_load(&bytes)?, "a benign edit was rejected");
        let mut a = model(9.0);
        load(write_tmp(&bytes).path(), &mut a, None).unwrap();
        let mut b = model(9.0);
        load(write_tmp(base).path(), &mut b, None).unwrap();
        prop_assert_eq!(bits(&a), bits(&b));
    }
}

fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    fs::write(f.path(), bytes).unwrap();
    f
}

/// A file whose header is `header` (as text) and whose data is `data_len`
/// zero bytes.
fn file_with(header: &str, data_len: usize) -> Vec<u8> {
    join(header, &vec![0; data_len])
}

/// Loads `bytes` every way; returns the model-only load's error, after
/// checking that no allocation exceeded [`alloc_bound`].
fn load_err(bytes: &[u8]) -> CheckpointError {
    let f = write_tmp(bytes);
    let mut m = model(9.0);
    let (r, peak) = peak_alloc(|| load(f.path(), &mut m, None));
    assert!(
        peak <= alloc_bound(bytes.len()),
        "loading a {}-byte file allocated {peak} bytes at once",
        bytes.len()
    );
    let mut adam = Adam::new(1e-3);
    let (r2, peak) = peak_alloc(|| load(f.path(), &mut m, Some(&mut adam)));
    assert!(peak <= alloc_bound(bytes.len()));
    assert!(r2.is_err());
    let (r3, peak) = peak_alloc(|| read_metadata(f.path()));
    assert!(peak <= alloc_bound(bytes.len()));
    assert!(r3.is_err());
    r.unwrap_err()
}

/// Regression (found reviewing safetensors' validation for this harness,
/// none of the random strategies reaches it): safetensors 0.8 adds the end of the
/// last tensor to the header length without checking for overflow, so end
/// offsets near `u64::MAX` — nine tensors of `2^61 - 1` bytes, which each
/// pass its own size check — panicked with `attempt to add with overflow` in
/// debug builds. checkpoint.rs now rejects offsets past the end of the file
/// first.
#[test]
fn regression_offsets_near_u64_max_are_an_error_not_an_overflow() {
    let sz: u64 = (1 << 61) - 1;
    let mut es: Vec<String> = (0..8u64)
        .map(|i| {
            format!(
                "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[{sz}],\"data_offsets\":[{},{}]}}",
                i * sz,
                (i + 1) * sz
            )
        })
        .collect();
    es.push(format!(
        "\"t8\":{{\"dtype\":\"U8\",\"shape\":[7],\"data_offsets\":[{},{}]}}",
        8 * sz,
        u64::MAX
    ));
    es.push("\"__metadata__\":{\"tapeless.step\":\"1\"}".into());
    let bytes = file_with(&format!("{{{}}}", es.join(",")), 0);
    let e = load_err(&bytes);
    assert!(
        matches!(&e, CheckpointError::Corrupt { reason, .. } if reason.contains("past the end")),
        "{e}"
    );
}

/// A header length of 2^40 in a small file is rejected before anything of
/// that size is allocated.
#[test]
fn huge_header_length_is_rejected_before_allocation() {
    let mut bytes = valid_files()[0].clone();
    for len in [
        1u64 << 40,
        1 << 60,
        u64::MAX,
        100_000_001,
        bytes.len() as u64,
    ] {
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(load_err(&bytes), CheckpointError::Corrupt { .. }));
    }
}

/// A tensor that claims 2^60 bytes (and one whose shape product overflows)
/// is rejected before anything of that size is allocated.
#[test]
fn huge_tensor_claims_are_rejected_before_allocation() {
    let meta = "\"__metadata__\":{\"tapeless.step\":\"1\"}";
    for (entry, data) in [
        (
            "\"0\":{\"dtype\":\"U8\",\"shape\":[1152921504606846976],\"data_offsets\":[0,1152921504606846976]}",
            16,
        ),
        (
            "\"0\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,1152921504606846976]}",
            24,
        ),
        (
            "\"0\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,24]}",
            24,
        ),
        (
            "\"0\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[1152921504606846976,1152921504606847000]}",
            24,
        ),
    ] {
        let bytes = file_with(&format!("{{{entry},{meta}}}"), data);
        assert!(
            matches!(load_err(&bytes), CheckpointError::Corrupt { .. }),
            "{entry}"
        );
    }
}

/// Two entries under one name (a duplicate JSON key): safetensors keeps the
/// later one. The same entry twice is a valid file; another tensor's entry
/// under the name leaves a gap in the data and is an error.
#[test]
fn duplicate_tensor_names() {
    let base = &valid_files()[2];
    let (h, d) = split(base).unwrap();
    let es = entries(&h);
    let zero = es.iter().find(|(k, _)| k == "0").unwrap().clone();
    let one = es.iter().find(|(k, _)| k == "1").unwrap().clone();

    let mut same = es.clone();
    same.push(zero);
    let f = write_tmp(&join(&render(&same), d));
    let mut m = model(9.0);
    load(f.path(), &mut m, None).unwrap();
    assert_eq!(bits(&m), file_bits(base, &m));

    let mut other = es;
    other.push(("0".into(), one.1));
    assert!(matches!(
        load_err(&join(&render(&other), d)),
        CheckpointError::Corrupt { .. }
    ));
}
