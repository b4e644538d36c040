//! Views (reshape, transpose, permute, narrow, unsqueeze, squeeze) and
//! indexing copies (row gathers and scatters, row selection, concatenation).

use super::error::{fail, TensorError};
use super::layout::{contiguous_strides, numel};
use super::Tensor;

impl Tensor {
    #[track_caller]
    fn axis_check(&self, op: &'static str, axis: usize) {
        if axis >= self.rank() {
            fail(TensorError::AxisOutOfRange {
                op,
                axis,
                shape: self.shape.clone(),
            });
        }
    }

    /// The same elements (row-major order) with another shape: a view when
    /// `self` is contiguous, else a contiguous copy.
    ///
    /// # Panics
    /// When the element counts differ; the message names both shapes.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        self.try_reshape(shape).unwrap_or_else(|e| fail(e))
    }

    /// [`reshape`](Tensor::reshape), returning an error instead of panicking.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        if numel(shape) != self.numel() {
            return Err(TensorError::Invalid {
                op: "reshape",
                msg: format!(
                    "cannot view shape {:?} ({} elements) as {shape:?}",
                    self.shape,
                    self.numel()
                ),
            });
        }
        let base = self.contiguous();
        Ok(base.view(shape.to_vec(), contiguous_strides(shape), base.offset))
    }

    /// A view with axes `a` and `b` swapped.
    ///
    /// # Panics
    /// When an axis is out of range.
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        self.axis_check("transpose", a);
        self.axis_check("transpose", b);
        let (mut shape, mut strides) = (self.shape.clone(), self.strides.clone());
        shape.swap(a, b);
        strides.swap(a, b);
        self.view(shape, strides, self.offset)
    }

    /// The transpose of a matrix (a view).
    ///
    /// # Panics
    /// When `self` is not rank 2.
    #[track_caller]
    pub fn t(&self) -> Tensor {
        if self.rank() != 2 {
            fail(TensorError::Invalid {
                op: "t",
                msg: format!("expects a matrix, got shape {:?}", self.shape),
            });
        }
        self.transpose(0, 1)
    }

    /// A view with the axes reordered: axis `i` of the result is axis
    /// `axes[i]` of `self`.
    ///
    /// # Panics
    /// When `axes` is not a permutation of `0..rank`.
    #[track_caller]
    pub fn permute(&self, axes: &[usize]) -> Tensor {
        let mut seen = vec![false; self.rank()];
        let ok = axes.len() == self.rank()
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        if !ok {
            fail(TensorError::Invalid {
                op: "permute",
                msg: format!(
                    "{axes:?} is not a permutation of the axes of shape {:?}",
                    self.shape
                ),
            });
        }
        let shape = axes.iter().map(|&a| self.shape[a]).collect();
        let strides = axes.iter().map(|&a| self.strides[a]).collect();
        self.view(shape, strides, self.offset)
    }

    /// A view of `len` elements along `axis` from `start`.
    ///
    /// # Panics
    /// When the axis or the range is out of bounds.
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        self.axis_check("narrow", axis);
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.shape[axis])
        {
            fail(TensorError::Invalid {
                op: "narrow",
                msg: format!(
                    "{len} elements from {start} are out of bounds for axis {axis} of shape {:?}",
                    self.shape
                ),
            });
        }
        let mut shape = self.shape.clone();
        shape[axis] = len;
        let offset = if len == 0 {
            self.offset
        } else {
            self.offset + start * self.strides[axis]
        };
        self.view(shape, self.strides.clone(), offset)
    }

    /// A view with a new axis of length 1 inserted at `axis` (`axis <= rank`).
    ///
    /// # Panics
    /// When `axis > self.rank()`.
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Tensor {
        if axis > self.rank() {
            fail(TensorError::AxisOutOfRange {
                op: "unsqueeze",
                axis,
                shape: self.shape.clone(),
            });
        }
        let stride = if axis < self.rank() {
            self.strides[axis] * self.shape[axis]
        } else {
            1
        };
        let (mut shape, mut strides) = (self.shape.clone(), self.strides.clone());
        shape.insert(axis, 1);
        strides.insert(axis, stride);
        self.view(shape, strides, self.offset)
    }

    /// A view without `axis`, which must have length 1.
    ///
    /// # Panics
    /// When the axis is out of range or longer than 1.
    #[track_caller]
    pub fn squeeze(&self, axis: usize) -> Tensor {
        self.axis_check("squeeze", axis);
        if self.shape[axis] != 1 {
            fail(TensorError::Invalid {
                op: "squeeze",
                msg: format!(
                    "axis {axis} of shape {:?} does not have length 1",
                    self.shape
                ),
            });
        }
        let (mut shape, mut strides) = (self.shape.clone(), self.strides.clone());
        shape.remove(axis);
        strides.remove(axis);
        self.view(shape, strides, self.offset)
    }

    /// A view without any of the axes of length 1.
    pub fn squeeze_all(&self) -> Tensor {
        let (shape, strides) = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .unzip();
        self.view(shape, strides, self.offset)
    }

    /// For `self` of shape `[n, c]` and `n` labels, the `[n]` tensor of
    /// `self[i, labels[i]]` (the picked logits of a cross-entropy).
    ///
    /// # Panics
    /// When `self` is not rank 2, `labels.len() != n`, or a label is `>= c`.
    #[track_caller]
    pub fn gather_rows(&self, labels: &[usize]) -> Tensor {
        let (n, c) = match self.shape[..] {
            [n, c] if n == labels.len() => (n, c),
            _ => fail(TensorError::Invalid {
                op: "gather_rows",
                msg: format!(
                    "expects shape [{}, c] for {} labels, got {:?}",
                    labels.len(),
                    labels.len(),
                    self.shape
                ),
            }),
        };
        let out = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                if l >= c {
                    panic!(
                        "gather_rows: label {l} at row {i} is out of range for shape {:?}",
                        self.shape
                    );
                }
                self.storage[self.offset + i * self.strides[0] + l * self.strides[1]]
            })
            .collect();
        Tensor::contiguous_from(out, vec![n])
    }

    /// The adjoint of [`gather_rows`](Tensor::gather_rows): the `[n, c]`
    /// tensor that is `d[i]` at `[i, labels[i]]` and zero elsewhere.
    ///
    /// # Panics
    /// When `d` is not of shape `[labels.len()]` or a label is `>= c`.
    #[track_caller]
    pub fn scatter_rows(labels: &[usize], d: &Tensor, c: usize) -> Tensor {
        if d.shape() != [labels.len()] {
            fail(TensorError::Invalid {
                op: "scatter_rows",
                msg: format!(
                    "d of shape {:?} does not match {} labels",
                    d.shape(),
                    labels.len()
                ),
            });
        }
        let n = labels.len();
        let mut out = vec![0.0f32; n * c];
        for (i, (&l, &v)) in labels.iter().zip(d.data().iter()).enumerate() {
            if l >= c {
                panic!("scatter_rows: label {l} at row {i} is out of range for {c} columns");
            }
            out[i * c + l] = v;
        }
        Tensor::contiguous_from(out, vec![n, c])
    }

    /// The rows (entries along axis 0) at `indices`, in that order, copied
    /// into a new tensor of shape `[indices.len(), ...]` (mini-batches).
    ///
    /// # Panics
    /// When `self` is a scalar or an index is out of range.
    #[track_caller]
    pub fn select_rows(&self, indices: &[usize]) -> Tensor {
        if self.rank() == 0 {
            fail(TensorError::Invalid {
                op: "select_rows",
                msg: "expects rank 1 or more, got shape []".into(),
            });
        }
        let rows = self.shape[0];
        let mut shape = self.shape.clone();
        shape[0] = indices.len();
        let row_len: usize = self.shape[1..].iter().product();
        let mut out = Vec::with_capacity(indices.len() * row_len);
        for &i in indices {
            if i >= rows {
                panic!(
                    "select_rows: index {i} is out of range for shape {:?}",
                    self.shape
                );
            }
            let row = self.narrow(0, i, 1);
            match row.as_slice() {
                Some(s) => out.extend_from_slice(s),
                None => out.extend(row.to_vec()),
            }
        }
        Tensor::contiguous_from(out, shape)
    }

    /// The tensors joined along `axis`; all other axes must agree.
    ///
    /// # Panics
    /// When `tensors` is empty or the shapes do not fit; the message names them.
    #[track_caller]
    pub fn concat(tensors: &[&Tensor], axis: usize) -> Tensor {
        Tensor::try_concat(tensors, axis).unwrap_or_else(|e| fail(e))
    }

    /// [`concat`](Tensor::concat), returning an error instead of panicking.
    pub fn try_concat(tensors: &[&Tensor], axis: usize) -> Result<Tensor, TensorError> {
        const OP: &str = "concat";
        let first = tensors.first().ok_or(TensorError::Invalid {
            op: OP,
            msg: "no tensors to join".into(),
        })?;
        if axis >= first.rank() {
            return Err(TensorError::AxisOutOfRange {
                op: OP,
                axis,
                shape: first.shape.clone(),
            });
        }
        let mut shape = first.shape.clone();
        shape[axis] = 0;
        for t in tensors {
            let fits = t.rank() == first.rank()
                && t.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !fits {
                return Err(TensorError::Invalid {
                    op: OP,
                    msg: format!(
                        "shapes {:?} and {:?} differ outside axis {axis}",
                        first.shape, t.shape
                    ),
                });
            }
            shape[axis] += t.shape[axis];
        }
        let outer: usize = first.shape[..axis].iter().product();
        let inner: usize = first.shape[axis + 1..].iter().product();
        let datas: Vec<_> = tensors.iter().map(|t| t.data()).collect();
        let mut out = Vec::with_capacity(numel(&shape));
        for o in 0..outer {
            for (t, d) in tensors.iter().zip(&datas) {
                let block = t.shape[axis] * inner;
                out.extend_from_slice(&d[o * block..(o + 1) * block]);
            }
        }
        Ok(Tensor::contiguous_from(out, shape))
    }
}
