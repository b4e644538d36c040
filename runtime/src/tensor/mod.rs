//! N-dimensional `f32` tensors: storage plus layout, with the kernels the
//! derivative rules need.
//!
//! A [`Tensor`] is a reference-counted buffer (`Arc<Vec<f32>>`) and a layout:
//! shape, strides in elements and an offset into the buffer, the way candle's
//! `Layout` does it. Cloning is a reference-count bump. Views
//! ([`transpose`](Tensor::transpose), [`permute`](Tensor::permute),
//! [`narrow`](Tensor::narrow), [`broadcast_to`](Tensor::broadcast_to),
//! [`reshape`](Tensor::reshape) of contiguous data, [`unsqueeze`](Tensor::unsqueeze),
//! [`squeeze`](Tensor::squeeze)) change the layout and share the buffer;
//! [`contiguous`](Tensor::contiguous) materialises one in row-major order.
//!
//! Kernels:
//! * element-wise binary operations with NumPy broadcasting (the operators
//!   `+ - * /`, [`maximum`](Tensor::maximum), [`minimum`](Tensor::minimum)), and
//!   [`sum_to_shape`](Tensor::sum_to_shape), the un-broadcasting gradient rules need;
//! * element-wise maps ([`exp`](Tensor::exp), [`relu`](Tensor::relu),
//!   [`gelu`](Tensor::gelu), ...);
//! * [`matmul`](Tensor::matmul), batched and broadcasting, through the
//!   `matrixmultiply` crate (see the `matmul` module for why);
//! * reductions and [`softmax`](Tensor::softmax)/[`log_softmax`](Tensor::log_softmax);
//! * [`conv2d`](Tensor::conv2d) (im2col + GEMM), max and average pooling, and
//!   their backward kernels ([`conv2d_backward_input`], ...);
//! * indexing: [`gather_rows`](Tensor::gather_rows), [`scatter_rows`](Tensor::scatter_rows),
//!   [`select_rows`](Tensor::select_rows), [`concat`](Tensor::concat).
//!
//! Parallelism: kernels above a size threshold ([`PAR_THRESHOLD`],
//! [`PAR_THRESHOLD_STRIDED`], [`PAR_THRESHOLD_HEAVY`], by the cost per
//! element) split their work over rayon's global pool (`RAYON_NUM_THREADS`);
//! GEMM threads are `matrixmultiply`'s own (`MATMUL_NUM_THREADS`, default:
//! the physical cores).
//!
//! Shape errors panic with a message naming the operation and both shapes
//! (`add: shapes [2, 3] and [4] cannot be broadcast`); the `try_` forms return
//! a [`TensorError`] instead.

mod binary;
mod conv;
mod error;
mod fastmath;
mod index;
mod layout;
mod matmul;
mod reduce;
mod traits;
mod unary;

pub use conv::{
    avg_pool2d_backward, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    max_pool2d_backward,
};
pub use error::TensorError;

/// The GEMM crate behind [`Tensor::matmul`], re-exported so benches can call
/// it directly on the same buffers and measure the wrapper's overhead. Not
/// part of the API.
#[doc(hidden)]
pub use matrixmultiply;

use error::fail;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

// Thresholds measured on the 2-core development machine (shared, loaded),
// best of ≥ 30 runs, each kernel forced sequential against forced parallel:
//
// | elements | add (contig.) | add (transposed) | exp          | tanh           | softmax     | sum         |
// |----------|---------------|------------------|--------------|----------------|-------------|-------------|
// | 16k      | 3.8 / 4.2 µs  | 28 / 28 µs       | 42 / 30 µs   | 174 / 95 µs    | 55 / 37 µs  | 1.9 / 5.8 µs|
// | 64k      | 14 / 14 µs    | 150 / 97 µs      | 170 / 100 µs | 704 / 367 µs   | 221 / 126 µs| 7.4 / 9.7 µs|
// | 256k     | 108 / 108 µs  | 1300 / 590 µs    | 682 / 411 µs | 2834 / 1498 µs | 887 / 916 µs| 30 / 32 µs  |
// | 1M       | 592 / 597 µs  | 12146 / 4123 µs  | 2840 / 1575 µs| 11487 / 5850 µs| 3608 / 1986 µs| 157 / 74 µs|
//
// (sequential / parallel; exp and tanh as the C library computes them, one
// call per element). Memory-bound contiguous kernels gain nothing below a
// million elements (allocation and memory bandwidth dominate); strided ones
// gain from about 64k, maps that call the C library from about 16k. The
// vectorised exp/tanh (`fastmath`) cost about 1 ns per element, like the
// strided kernels, so the maps and softmax built on them use the strided
// threshold.

/// Element count from which memory-bound kernels over contiguous data (the
/// arithmetic maps, binary operations on contiguous rows, full and axis sums)
/// split their work over rayon's pool. Below it, measured on the 2-core
/// development machine, the fork/join costs as much as it saves.
pub const PAR_THRESHOLD: usize = 1 << 20;

/// Element count from which kernels costing about a nanosecond per element
/// go parallel: strided ones (binary operations on transposed or short-row
/// views, pooling), which gained 1.5–3× from 64k elements up, and the
/// vectorised `exp`/`tanh` family (`exp`, `tanh`, `sigmoid`, `gelu`, softmax).
pub const PAR_THRESHOLD_STRIDED: usize = 1 << 16;

/// Element count from which maps that call the C library per element (`ln`,
/// `powf`, `sin`, `cos`, [`Tensor::map_elements`]) go parallel: 1.4–1.8×
/// faster from 16k elements up.
pub const PAR_THRESHOLD_HEAVY: usize = 1 << 14;

/// An n-dimensional, row-major tensor of `f32`.
///
/// Cloning is cheap (a reference-count bump): the buffer is shared and never
/// mutated while shared. See the [module docs](self) for the operations.
///
/// ```
/// use tapeless_runtime::tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let b = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3]);
/// let c = &a + &b; // broadcasts b over the rows of a
/// assert_eq!(c.to_vec(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
/// assert_eq!(a.t().shape(), &[3, 2]);
/// assert_eq!(a.matmul(&a.t()).to_vec(), vec![14.0, 32.0, 32.0, 77.0]);
/// ```
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Vec<f32>>,
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

impl Tensor {
    // ---- construction -------------------------------------------------------

    /// A contiguous tensor owning `data`, laid out row-major as `shape`.
    ///
    /// # Panics
    /// When `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::try_from_vec(data, shape).unwrap_or_else(|e| fail(e))
    }

    /// [`from_vec`](Tensor::from_vec), returning an error on a wrong element count.
    pub fn try_from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor, TensorError> {
        if data.len() != layout::numel(shape) {
            return Err(TensorError::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                numel: data.len(),
            });
        }
        Ok(Tensor::contiguous_from(data, shape.to_vec()))
    }

    /// A contiguous tensor copying `data`, laid out row-major as `shape`.
    ///
    /// # Panics
    /// When `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_slice(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::contiguous_from(vec![value; layout::numel(shape)], shape.to_vec())
    }

    /// A tensor of `shape` filled with zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of `shape` filled with ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// A rank-0 tensor holding `value` (shape `[]`, one element).
    pub fn scalar(value: f32) -> Tensor {
        Tensor::contiguous_from(vec![value], Vec::new())
    }

    /// A contiguous tensor owning `data`; the caller guarantees the element count.
    pub(crate) fn contiguous_from(data: Vec<f32>, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(data.len(), layout::numel(&shape));
        let strides = layout::contiguous_strides(&shape);
        Tensor {
            storage: Arc::new(data),
            shape,
            strides,
            offset: 0,
        }
    }

    /// A view sharing `self`'s buffer with another layout; the caller
    /// guarantees that it stays inside the buffer.
    pub(crate) fn view(&self, shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Tensor {
        debug_assert_eq!(shape.len(), strides.len());
        Tensor {
            storage: Arc::clone(&self.storage),
            shape,
            strides,
            offset,
        }
    }

    // ---- accessors ----------------------------------------------------------

    /// The shape: one length per axis, outermost first (`[]` for a scalar).
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides, in elements, of each axis in the shared buffer (0 along
    /// broadcast axes).
    #[inline]
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// The number of axes.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements (1 for a scalar, 0 when an axis has length 0).
    #[inline]
    pub fn numel(&self) -> usize {
        layout::numel(&self.shape)
    }

    /// Whether the elements lie row-major and without gaps in the buffer, so
    /// kernels can read them as one slice.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        layout::is_contiguous(&self.shape, &self.strides)
    }

    /// The elements as one row-major slice, when the layout is contiguous.
    pub fn as_slice(&self) -> Option<&[f32]> {
        if self.is_contiguous() {
            Some(&self.storage[self.offset..self.offset + self.numel()])
        } else {
            None
        }
    }

    /// The elements in row-major order, borrowed when contiguous.
    pub(crate) fn data(&self) -> Cow<'_, [f32]> {
        match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        }
    }

    /// The elements as a mutable row-major slice, when the layout is contiguous
    /// and no other tensor shares the buffer (so writing cannot be observed).
    pub(crate) fn unique_slice_mut(&mut self) -> Option<&mut [f32]> {
        if !self.is_contiguous() {
            return None;
        }
        let n = self.numel();
        let off = self.offset;
        Arc::get_mut(&mut self.storage).map(|v| &mut v[off..off + n])
    }

    /// The elements as a writable row-major slice, copy-on-write: when `self`
    /// is a view or shares its buffer with another tensor, it first becomes
    /// a contiguous copy of its own (the others keep the old values).
    /// Optimizers update parameters in place through it.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        if self.unique_slice_mut().is_none() {
            *self = Tensor::contiguous_from(self.to_vec(), self.shape.clone());
        }
        let n = self.numel();
        let off = self.offset;
        &mut Arc::make_mut(&mut self.storage)[off..off + n]
    }

    /// The elements in logical (row-major) order.
    pub fn to_vec(&self) -> Vec<f32> {
        if let Some(s) = self.as_slice() {
            return s.to_vec();
        }
        let mut out = vec![0.0; self.numel()];
        if !out.is_empty() {
            layout::copy_strided(
                &self.storage,
                &self.shape,
                &self.strides,
                self.offset,
                &mut out,
            );
        }
        out
    }

    /// `self` laid out contiguously: `self` itself (a reference-count bump)
    /// when it already is, else a copy.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            self.clone()
        } else {
            Tensor::contiguous_from(self.to_vec(), self.shape.clone())
        }
    }

    /// The element at multi-index `index`.
    ///
    /// # Panics
    /// When `index` has the wrong length or is out of range.
    #[track_caller]
    pub fn get(&self, index: &[usize]) -> f32 {
        if index.len() != self.rank() || index.iter().zip(&self.shape).any(|(&i, &d)| i >= d) {
            panic!(
                "get: index {index:?} is out of range for shape {:?}",
                self.shape
            );
        }
        let off: usize = index.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
        self.storage[self.offset + off]
    }

    /// The single element of a one-element tensor (any rank).
    ///
    /// # Panics
    /// When the tensor does not have exactly one element.
    #[track_caller]
    pub fn item(&self) -> f32 {
        if self.numel() != 1 {
            panic!(
                "item: shape {:?} has {} elements, not 1",
                self.shape,
                self.numel()
            );
        }
        self.storage[self.offset]
    }
}

impl fmt::Debug for Tensor {
    /// `Tensor[2, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]`, eliding past 8 values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor{:?} [", self.shape)?;
        let n = self.numel();
        let values: Vec<f32> = if n <= SHOWN {
            self.to_vec()
        } else {
            self.data()[..SHOWN].to_vec()
        };
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if n > SHOWN {
            write!(f, ", ... ({n} values)")?;
        }
        write!(f, "]")
    }
}

impl PartialEq for Tensor {
    /// Equal shapes and equal values (so `NaN != NaN`, and `0.0 == -0.0`).
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data() == other.data()
    }
}
