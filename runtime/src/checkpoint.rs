//! Checkpoints: a model's parameters and an optimizer's state in one
//! [safetensors](https://huggingface.co/docs/safetensors) file, written
//! atomically.
//!
//! The file holds one tensor per parameter buffer under its
//! [name](crate::params) (`layer1.w`), `f32` buffers as `F32` and `f64` as
//! `F64`, little-endian, row-major: PyTorch reads it with
//! `safetensors.torch.load_file(path)`. With an optimizer it also holds, for
//! [`Optimizer::kind`] `k` (see [`OptimState`]):
//!
//! | tensor | what |
//! |---|---|
//! | `k.FIELD.NAME` | buffer `FIELD` of parameter `NAME` (`adam.m.layer1.w`) |
//! | `k.step.NAME` | the parameter's step count, `F64` scalar |
//! | `k.SCALAR` | a hyper-parameter or counter (`adam.lr`, `adam.steps`), `F64` scalar |
//!
//! and the string metadata `format = "pt"`, `tapeless.step` (the step passed
//! to [`save`]), `tapeless.optimizer` (the kind), plus the caller's own entries
//! ([`save_with_metadata`]). A model that is a single buffer (a bare
//! [`Tensor`](crate::tensor::Tensor) or float) is stored under the name
//! [`ROOT_NAME`].
//!
//! **Atomicity**: [`save`] writes the whole file to a temporary file in the
//! target's directory, flushes it to disk (`fsync`), then renames it over the
//! target and syncs the directory. A crash or an error at any point leaves
//! either the previous file or the new one, never a mix; on error the
//! temporary file is removed.
//!
//! **Loading** checks everything before changing anything: a missing file, a
//! corrupt or truncated one, a missing tensor, a wrong shape or element type,
//! or optimizer state of another kind is a [`CheckpointError`] and leaves
//! the model and the optimizer as they were. Tensors the model does not ask
//! for are ignored (so a model can be loaded without its optimizer).
//!
//! ```
//! use tapeless_runtime::checkpoint::{load, save};
//! use tapeless_runtime::optim::{Adam, Optimizer};
//! use tapeless_runtime::tensor::Tensor;
//!
//! let dir = std::env::temp_dir().join(format!("tapeless-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("model.safetensors");
//!
//! let mut model = (Tensor::ones(&[2, 2]), 0.5f64);
//! let mut opt = Adam::new(1e-2);
//! opt.step(&mut model, &(Tensor::ones(&[2, 2]), 1.0));
//! save(&path, &model, Some(&opt), 1).unwrap();
//!
//! let mut restored = (Tensor::zeros(&[2, 2]), 0.0f64);
//! let mut opt2 = Adam::new(1e-2);
//! let step = load(&path, &mut restored, Some(&mut opt2)).unwrap();
//! assert_eq!((step, restored.1), (1, model.1));
//! assert_eq!(opt2.state(), opt.state());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::optim::{BufferData, OptimState, Optimizer, ParamState, StateError};
use crate::params::{for_each, for_each_mut, Data, DataMut, Dtype, Parameters};
use safetensors::tensor::{Dtype as StDtype, Metadata, SafeTensors, TensorView, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The tensor name of a model that is one buffer (whose own name is empty).
pub const ROOT_NAME: &str = "value";

/// The metadata key of the step count.
pub const STEP_KEY: &str = "tapeless.step";
/// The metadata key of the optimizer's kind.
pub const OPTIMIZER_KEY: &str = "tapeless.optimizer";
/// Metadata keys starting with this are reserved for tapeless.
pub const RESERVED_PREFIX: &str = "tapeless.";

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file does not exist.
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// An input/output error.
    Io {
        /// What was being done (`"read"`, `"write temporary file"`, `"rename"`, ...).
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The file is not a valid safetensors file (truncated, garbage, bad header).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file lacks a tensor the model or optimizer needs.
    MissingTensor {
        /// The tensor's name.
        name: String,
    },
    /// A tensor of the file has another shape than the buffer it is loaded into.
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape the model (or optimizer) has.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor of the file has another element type than its buffer.
    DtypeMismatch {
        /// The tensor's name.
        name: String,
        /// The type the model has.
        expected: Dtype,
        /// The type in the file (safetensors' name).
        found: String,
    },
    /// A metadata entry is missing, reserved, or cannot be read.
    Metadata {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Two buffers would be written under one tensor name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The file holds no optimizer state, or another optimizer's.
    OptimizerMismatch {
        /// The kind of the optimizer loaded into.
        expected: String,
        /// The kind in the file, if any.
        found: Option<String>,
    },
    /// The file holds optimizer state for a parameter the model does not have.
    UnexpectedState {
        /// The tensor's name.
        name: String,
    },
    /// The optimizer refused the state.
    State(StateError),
    /// The file could not be encoded (safetensors' error).
    Encode {
        /// safetensors' message.
        reason: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        match self {
            NotFound { path } => write!(f, "checkpoint {} does not exist", path.display()),
            Io { op, path, source } => {
                write!(f, "checkpoint {}: {op} failed: {source}", path.display())
            }
            Corrupt { path, reason } => write!(
                f,
                "checkpoint {} is not a valid safetensors file: {reason}",
                path.display()
            ),
            MissingTensor { name } => write!(f, "checkpoint has no tensor `{name}`"),
            ShapeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "checkpoint tensor `{name}` has shape {found:?}, the model expects {expected:?}"
            ),
            DtypeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "checkpoint tensor `{name}` has dtype {found}, the model expects {expected}"
            ),
            Metadata { key, reason } => write!(f, "checkpoint metadata `{key}`: {reason}"),
            DuplicateName { name } => write!(
                f,
                "two buffers would be saved under the tensor name `{name}`"
            ),
            OptimizerMismatch { expected, found } => match found {
                Some(k) => write!(
                    f,
                    "checkpoint holds `{k}` optimizer state, cannot load it into `{expected}`"
                ),
                None => write!(
                    f,
                    "checkpoint holds no optimizer state to load into `{expected}`"
                ),
            },
            UnexpectedState { name } => write!(
                f,
                "checkpoint tensor `{name}` is optimizer state for a parameter the model does not have"
            ),
            State(e) => write!(f, "checkpoint: {e}"),
            Encode { reason } => write!(f, "checkpoint could not be encoded: {reason}"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            CheckpointError::State(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StateError> for CheckpointError {
    fn from(e: StateError) -> Self {
        CheckpointError::State(e)
    }
}

// ---- saving -----------------------------------------------------------------

/// One tensor to write, already encoded.
struct Encoded {
    dtype: StDtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> StDtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn encode_f32(shape: &[usize], d: &[f32]) -> Encoded {
    Encoded {
        dtype: StDtype::F32,
        shape: shape.to_vec(),
        bytes: d.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn encode_f64(shape: &[usize], d: &[f64]) -> Encoded {
    Encoded {
        dtype: StDtype::F64,
        shape: shape.to_vec(),
        bytes: d.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn tensor_name(param: &str) -> &str {
    if param.is_empty() {
        ROOT_NAME
    } else {
        param
    }
}

fn insert(
    out: &mut BTreeMap<String, Encoded>,
    name: String,
    t: Encoded,
) -> Result<(), CheckpointError> {
    if out.contains_key(&name) {
        return Err(CheckpointError::DuplicateName { name });
    }
    out.insert(name, t);
    Ok(())
}

/// Saves `model` (and `opt`'s state, and `step`) to `path`, atomically.
///
/// See the [module docs](self) for the format and the guarantees.
pub fn save<M: Parameters>(
    path: impl AsRef<Path>,
    model: &M,
    opt: Option<&dyn Optimizer>,
    step: u64,
) -> Result<(), CheckpointError> {
    save_with_metadata(path, model, opt, step, &BTreeMap::new())
}

/// [`save`] with extra string `metadata` (a run's configuration, say as
/// JSON), read back by [`read_metadata`]. Keys must not start with
/// [`RESERVED_PREFIX`] nor be `format`.
pub fn save_with_metadata<M: Parameters>(
    path: impl AsRef<Path>,
    model: &M,
    opt: Option<&dyn Optimizer>,
    step: u64,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let mut meta: HashMap<String, String> = HashMap::new();
    for (k, v) in metadata {
        if k.starts_with(RESERVED_PREFIX) || k == "format" {
            return Err(CheckpointError::Metadata {
                key: k.clone(),
                reason: format!("keys `format` and `{RESERVED_PREFIX}*` are reserved"),
            });
        }
        meta.insert(k.clone(), v.clone());
    }
    meta.insert("format".into(), "pt".into());
    meta.insert(STEP_KEY.into(), step.to_string());

    let mut tensors = BTreeMap::new();
    let mut dup = None;
    for_each(model, |name, p| {
        let t = match &p.data {
            Data::F32(d) => encode_f32(&p.shape, d),
            Data::F64(d) => encode_f64(&p.shape, d),
        };
        if let Err(e) = insert(&mut tensors, tensor_name(name).to_owned(), t) {
            dup.get_or_insert(e);
        }
    });
    if let Some(e) = dup {
        return Err(e);
    }
    if let Some(opt) = opt {
        let state = opt.state();
        let k = &state.kind;
        meta.insert(OPTIMIZER_KEY.into(), k.clone());
        for (name, v) in &state.scalars {
            insert(&mut tensors, format!("{k}.{name}"), encode_f64(&[], &[*v]))?;
        }
        for (param, ps) in &state.params {
            let pn = tensor_name(param);
            insert(
                &mut tensors,
                format!("{k}.step.{pn}"),
                encode_f64(&[], &[ps.step as f64]),
            )?;
            for (field, data) in &ps.buffers {
                let t = match data {
                    BufferData::F32(d) => encode_f32(&ps.shape, d),
                    BufferData::F64(d) => encode_f64(&ps.shape, d),
                };
                insert(&mut tensors, format!("{k}.{field}.{pn}"), t)?;
            }
        }
    }
    let bytes = safetensors::serialize(tensors.iter(), Some(meta)).map_err(|e| {
        CheckpointError::Encode {
            reason: e.to_string(),
        }
    })?;
    write_atomic(path, &bytes)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it
/// over `path` and syncs the directory; removes the temporary file on error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io_err = |op, p: &Path| {
        let p = p.to_path_buf();
        move |source| CheckpointError::Io {
            op,
            path: p,
            source,
        }
    };
    let file_name = path.file_name().ok_or_else(|| CheckpointError::Io {
        op: "name the file",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err("create temporary file", &tmp))?;
    let written = file
        .write_all(bytes)
        .map_err(io_err("write temporary file", &tmp))
        .and_then(|()| file.sync_all().map_err(io_err("sync temporary file", &tmp)));
    drop(file);
    let renamed = written.and_then(|()| fs::rename(&tmp, path).map_err(io_err("rename", path)));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable. Best effort: some platforms and file
    // systems cannot open or sync a directory, and the file is in place.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// ---- loading ----------------------------------------------------------------

fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            CheckpointError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CheckpointError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SafeTensors<'a>, HashMap<String, String>), CheckpointError> {
    let corrupt = |e: safetensors::SafeTensorError| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    check_offsets(bytes).map_err(|reason| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes).map_err(corrupt)?;
    Ok((st, meta))
}

/// Rejects a header with a tensor that ends past the end of the file,
/// before safetensors validates the header.
///
/// safetensors 0.8 checks that the tensors cover the data section with
/// `last_end + 8 + header_len != file_len`, unchecked: offsets near
/// `u64::MAX` (nine tensors of `2^61 - 1` bytes declare that much in a header
/// of a few hundred bytes) overflow it, a panic in builds with overflow checks
/// (`attempt to add with overflow`). A valid file has every end offset within
/// its data section, so this rejects no valid file. Anything else (a header
/// length past the end of the file, JSON that does not parse) is left to
/// safetensors, which rejects it without allocating more than the header.
fn check_offsets(bytes: &[u8]) -> Result<(), String> {
    let Some(len) = bytes.get(..8) else {
        return Ok(());
    };
    let mut n = [0; 8];
    n.copy_from_slice(len);
    let Some((n, header)) = usize::try_from(u64::from_le_bytes(n))
        .ok()
        .and_then(|n| Some((n, bytes.get(8..n.checked_add(8)?)?)))
    else {
        return Ok(());
    };
    let data_len = bytes.len() - 8 - n;
    let Ok(meta) = serde_json::from_slice::<Metadata>(header) else {
        return Ok(());
    };
    let mut tensors: Vec<_> = meta.tensors().into_iter().collect();
    tensors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        if start.max(end) > data_len {
            return Err(format!(
                "tensor `{name}` has data offsets [{start}, {end}] past the end of the \
                 data section ({data_len} bytes)"
            ));
        }
    }
    Ok(())
}

fn dtype_name(d: StDtype) -> String {
    format!("{d:?}")
}

fn check_view(
    view: &TensorView<'_>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
) -> Result<(), CheckpointError> {
    let want = match dtype {
        Dtype::F32 => StDtype::F32,
        Dtype::F64 => StDtype::F64,
    };
    if view.dtype() != want {
        return Err(CheckpointError::DtypeMismatch {
            name: name.to_owned(),
            expected: dtype,
            found: dtype_name(view.dtype()),
        });
    }
    if view.shape() != shape {
        return Err(CheckpointError::ShapeMismatch {
            name: name.to_owned(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    Ok(())
}

fn decode(view: &TensorView<'_>) -> BufferData {
    let b = view.data();
    match view.dtype() {
        StDtype::F64 => BufferData::F64(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        _ => BufferData::F32(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                .collect(),
        ),
    }
}

fn scalar_f64(st: &SafeTensors<'_>, name: &str) -> Result<f64, CheckpointError> {
    let v = st
        .tensor(name)
        .map_err(|_| CheckpointError::MissingTensor {
            name: name.to_owned(),
        })?;
    check_view(&v, name, Dtype::F64, &[])?;
    match decode(&v) {
        BufferData::F64(d) => Ok(d[0]),
        BufferData::F32(_) => unreachable!("checked to be F64"),
    }
}

/// Loads the parameters of `model` (and `opt`'s state) from `path` and
/// returns the step it was saved at.
///
/// Nothing is changed unless everything needed is present and fits: see the
/// [module docs](self).
pub fn load<M: Parameters>(
    path: impl AsRef<Path>,
    model: &mut M,
    opt: Option<&mut dyn Optimizer>,
) -> Result<u64, CheckpointError> {
    load_with_metadata(path, model, opt).map(|(step, _)| step)
}

/// [`load`], also returning the caller's metadata saved with
/// [`save_with_metadata`].
pub fn load_with_metadata<M: Parameters>(
    path: impl AsRef<Path>,
    model: &mut M,
    opt: Option<&mut dyn Optimizer>,
) -> Result<(u64, BTreeMap<String, String>), CheckpointError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let (st, meta) = parse(path, &bytes)?;
    let step = match meta.get(STEP_KEY) {
        Some(s) => s.parse::<u64>().map_err(|e| CheckpointError::Metadata {
            key: STEP_KEY.into(),
            reason: format!("`{s}` is not a step count: {e}"),
        })?,
        None => {
            return Err(CheckpointError::Metadata {
                key: STEP_KEY.into(),
                reason: "missing: not a tapeless checkpoint".into(),
            })
        }
    };

    // 1. Every parameter buffer is there with its shape and type.
    let mut params: BTreeMap<String, (String, Dtype, Vec<usize>)> = BTreeMap::new();
    let mut first_err = None;
    for_each(model, |name, p| {
        if first_err.is_some() {
            return;
        }
        let key = tensor_name(name);
        let checked = st
            .tensor(key)
            .map_err(|_| CheckpointError::MissingTensor {
                name: key.to_owned(),
            })
            .and_then(|v| check_view(&v, key, p.data.dtype(), &p.shape));
        match checked {
            Ok(()) => {
                params.insert(
                    key.to_owned(),
                    (name.to_owned(), p.data.dtype(), p.shape.to_vec()),
                );
            }
            Err(e) => first_err = Some(e),
        }
    });
    if let Some(e) = first_err {
        return Err(e);
    }

    // 2. The optimizer state, checked against the model, then handed over
    //    (the optimizer checks it again and takes it or nothing).
    if let Some(opt) = opt {
        let state = optimizer_state(&st, &meta, opt.kind(), &params)?;
        opt.load_state(&state)?;
    }

    // 3. The parameters.
    for_each_mut(model, |name, p| {
        let key = tensor_name(name);
        let Ok(view) = st.tensor(key) else {
            unreachable!("checked above")
        };
        match (p.data, decode(&view)) {
            (DataMut::F32(dst), BufferData::F32(src)) => dst.copy_from_slice(&src),
            (DataMut::F64(dst), BufferData::F64(src)) => dst.copy_from_slice(&src),
            _ => unreachable!("checked above"),
        }
    });

    let user = meta
        .into_iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX) && k != "format")
        .collect();
    Ok((step, user))
}

/// The optimizer state of kind `kind` in the file, checked against the
/// model's buffers `params` (tensor name -> parameter name, type and shape).
fn optimizer_state(
    st: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
    kind: &str,
    params: &BTreeMap<String, (String, Dtype, Vec<usize>)>,
) -> Result<OptimState, CheckpointError> {
    let found = meta.get(OPTIMIZER_KEY);
    if found.map(String::as_str) != Some(kind) {
        return Err(CheckpointError::OptimizerMismatch {
            expected: kind.to_owned(),
            found: found.cloned(),
        });
    }
    let prefix = format!("{kind}.");
    let mut state = OptimState {
        kind: kind.to_owned(),
        scalars: BTreeMap::new(),
        params: BTreeMap::new(),
    };
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    for name in names {
        if params.contains_key(name) {
            continue; // a parameter of the model, not optimizer state
        }
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Some((field, pn)) = rest.split_once('.') else {
            state.scalars.insert(rest.to_owned(), scalar_f64(st, name)?);
            continue;
        };
        let Some((param, dtype, shape)) = params.get(pn) else {
            return Err(CheckpointError::UnexpectedState {
                name: name.to_owned(),
            });
        };
        let ps = state
            .params
            .entry(param.clone())
            .or_insert_with(|| ParamState {
                step: 0,
                shape: shape.clone(),
                buffers: BTreeMap::new(),
            });
        if field == "step" {
            let s = scalar_f64(st, name)?;
            if !(s >= 0.0 && s.fract() == 0.0 && s < 9.0e15) {
                return Err(CheckpointError::Metadata {
                    key: name.to_owned(),
                    reason: format!("{s} is not a step count"),
                });
            }
            ps.step = s as u64;
        } else {
            let view = st
                .tensor(name)
                .map_err(|_| CheckpointError::MissingTensor {
                    name: name.to_owned(),
                })?;
            check_view(&view, name, *dtype, shape)?;
            ps.buffers.insert(field.to_owned(), decode(&view));
        }
    }
    Ok(state)
}

/// The metadata of the checkpoint at `path`: the caller's entries saved with
/// [`save_with_metadata`] and tapeless' own (`format`, [`STEP_KEY`],
/// [`OPTIMIZER_KEY`]), without loading any tensor.
pub fn read_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>, CheckpointError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let (_, meta) = parse(path, &bytes)?;
    Ok(meta.into_iter().collect())
}
