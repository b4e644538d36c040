//! Walking a model's parameter buffers, alone or together with a gradient.
//!
//! A model is any value whose type is its own gradient (a
//! `#[derive(Differentiable)]` struct, a [`Tensor`], `f32`/`f64`, and `Vec`s,
//! arrays and tuples of them). [`Parameters`] visits every *buffer* in it —
//! a run of `f32` or `f64` numbers with a shape — under a dotted name, so
//! optimizers, gradient clipping and checkpoints can work on any model
//! without knowing its type:
//!
//! | value | buffers | names |
//! |---|---|---|
//! | `f32`, `f64` | one, shape `[]` | the path itself |
//! | [`Tensor`] | one, its shape | the path itself |
//! | `Vec<f32>`, `[f64; N]`, ... (floats) | one, shape `[len]` | the path itself |
//! | `Vec<T>`, `[T; N]` (other `T`) | those of each element | `path.0`, `path.1`, ... |
//! | tuples | those of each element | `path.0`, `path.1`, ... |
//! | derived structs | those of each field, `#[no_grad]` fields skipped | `path.field` |
//!
//! So `struct Mlp { layers: Vec<Linear> }` with `struct Linear { w: Tensor, b: Tensor }`
//! has buffers `layers.0.w`, `layers.0.b`, `layers.1.w`, ... The root value's
//! own name is the empty string.
//!
//! ```
//! use tapeless_runtime::params::{num_params, named_shapes, Parameters};
//! use tapeless_runtime::tensor::Tensor;
//!
//! let model = (Tensor::zeros(&[2, 3]), vec![1.0f64, 2.0], [vec![0.5f32], vec![1.5]]);
//! assert_eq!(num_params(&model), 6 + 2 + 2);
//! let names: Vec<String> = named_shapes(&model).into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0", "1", "2.0", "2.1"]);
//! ```
//!
//! Writing a tensor buffer ([`ParamMut`], [`tensor_data_mut`]) follows
//! `Arc::make_mut`: a tensor that shares its storage with another (a clone) or
//! is a strided view is first copied into a buffer of its own, so writes are
//! never observed through other tensors.

use crate::tangent::Differentiable;
use crate::tensor::Tensor;
use std::borrow::Cow;

/// The numbers of one buffer, read-only.
#[derive(Clone, Debug, PartialEq)]
pub enum Data<'a> {
    /// An `f32` buffer (scalars, tensors, `Vec<f32>`, ...).
    F32(Cow<'a, [f32]>),
    /// An `f64` buffer.
    F64(Cow<'a, [f64]>),
}

/// The numbers of one buffer, writable.
#[derive(Debug)]
pub enum DataMut<'a> {
    /// An `f32` buffer.
    F32(&'a mut [f32]),
    /// An `f64` buffer.
    F64(&'a mut [f64]),
}

/// One parameter buffer (or its gradient), read-only: shape and numbers in
/// row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamRef<'a> {
    /// The shape (`[]` for a scalar, `[len]` for a `Vec` of floats).
    pub shape: Cow<'a, [usize]>,
    /// The numbers, `shape.iter().product()` of them.
    pub data: Data<'a>,
}

/// One parameter buffer, writable.
#[derive(Debug)]
pub struct ParamMut<'a> {
    /// The shape (`[]` for a scalar, `[len]` for a `Vec` of floats).
    pub shape: Cow<'a, [usize]>,
    /// The numbers, `shape.iter().product()` of them.
    pub data: DataMut<'a>,
}

impl Data<'_> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(d) => d.len(),
            Data::F64(d) => d.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            Data::F32(_) => Dtype::F32,
            Data::F64(_) => Dtype::F64,
        }
    }

    /// The sum of the squares of the elements, accumulated in `f64`.
    pub fn sum_squares(&self) -> f64 {
        match self {
            Data::F32(d) => d.iter().map(|&x| f64::from(x) * f64::from(x)).sum(),
            Data::F64(d) => d.iter().map(|&x| x * x).sum(),
        }
    }
}

impl DataMut<'_> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            DataMut::F32(d) => d.len(),
            DataMut::F64(d) => d.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            DataMut::F32(_) => Dtype::F32,
            DataMut::F64(_) => Dtype::F64,
        }
    }
}

/// The element type of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        })
    }
}

/// A callback over read-only buffers: `(name, buffer)`.
pub type VisitFn<'f> = dyn FnMut(&str, ParamRef<'_>) + 'f;
/// A callback over writable buffers: `(name, buffer)`.
pub type VisitMutFn<'f> = dyn FnMut(&str, ParamMut<'_>) + 'f;
/// A callback over a model's buffers with their gradients: `(name, parameter, gradient)`.
pub type ZipFn<'f> = dyn FnMut(&str, ParamMut<'_>, ParamRef<'_>) + 'f;

/// A model (or a gradient of one) whose parameter buffers can be walked by
/// name: what optimizers, [`clip_grad_norm`](crate::optim::clip_grad_norm)
/// and [checkpoints](crate::checkpoint) need.
///
/// The gradient of a model has the model's own type (the supertrait), so
/// [`zip_mut`](Parameters::zip_mut) walks a model and its gradient in step.
/// `#[derive(Differentiable)]` implements this trait field by field; a hand
/// implementation calls the fields' methods between [`push_name`] and
/// `name.truncate(len)`:
///
/// ```
/// use tapeless_runtime::params::{push_name, Parameters, VisitFn, VisitMutFn, ZipFn};
/// use tapeless_runtime::{Differentiable, Tangent};
///
/// #[derive(Clone)]
/// struct Scale { s: f64 }
/// impl Differentiable for Scale {
///     type Tangent = Scale;
///     fn zero_tangent(&self) -> Scale { Scale { s: 0.0 } }
/// }
/// impl Tangent for Scale {
///     fn zero() -> Scale { Scale { s: 0.0 } }
///     fn accumulate(&mut self, o: Scale) { self.s += o.s }
/// }
/// impl Parameters for Scale {
///     fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
///         let n = push_name(name, "s");
///         self.s.visit(name, f);
///         name.truncate(n);
///     }
///     fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
///         let n = push_name(name, "s");
///         self.s.visit_mut(name, f);
///         name.truncate(n);
///     }
///     fn zip_mut(&mut self, grad: &Scale, name: &mut String, f: &mut ZipFn<'_>) {
///         let n = push_name(name, "s");
///         self.s.zip_mut(&grad.s, name, f);
///         name.truncate(n);
///     }
/// }
/// assert_eq!(tapeless_runtime::params::num_params(&Scale { s: 1.0 }), 1);
/// ```
pub trait Parameters: Differentiable<Tangent = Self> {
    /// Calls `f(name, buffer)` for every buffer, in a fixed order. `name`
    /// holds the path of `self` on entry (empty for the root) and again on exit.
    fn visit(&self, name: &mut String, f: &mut VisitFn<'_>);

    /// Like [`visit`](Parameters::visit), with writable buffers (loading a
    /// checkpoint, scaling a gradient).
    fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>);

    /// Calls `f(name, parameter, gradient)` for every buffer of `self` and
    /// the matching buffer of `grad`, in the order of [`visit`](Parameters::visit).
    ///
    /// A shapeless-zero gradient part (an empty `Vec` or `Vec` shorter than
    /// the model's, a [`Tensor`] of shape `[0]`, as [`Tangent::zero`](crate::Tangent::zero)
    /// builds them) is passed as zeros of the parameter's shape.
    ///
    /// # Panics
    /// When a gradient buffer has another shape than its parameter (the
    /// message names the buffer and both shapes).
    fn zip_mut(&mut self, grad: &Self, name: &mut String, f: &mut ZipFn<'_>);

    /// [`visit`](Parameters::visit) over a slice of values: by default each
    /// element under its index. Floats override it to make the whole slice
    /// one buffer; not meant to be called or overridden elsewhere.
    #[doc(hidden)]
    fn visit_slice(items: &[Self], name: &mut String, f: &mut VisitFn<'_>)
    where
        Self: Sized,
    {
        for (i, x) in items.iter().enumerate() {
            let n = push_index(name, i);
            x.visit(name, f);
            name.truncate(n);
        }
    }

    /// [`visit_mut`](Parameters::visit_mut) over a slice; see `visit_slice`.
    #[doc(hidden)]
    fn visit_slice_mut(items: &mut [Self], name: &mut String, f: &mut VisitMutFn<'_>)
    where
        Self: Sized,
    {
        for (i, x) in items.iter_mut().enumerate() {
            let n = push_index(name, i);
            x.visit_mut(name, f);
            name.truncate(n);
        }
    }

    /// [`zip_mut`](Parameters::zip_mut) over a slice and its gradient, which
    /// may be shorter (missing elements are zero); see `visit_slice`.
    #[doc(hidden)]
    fn zip_slice_mut(items: &mut [Self], grads: &[Self], name: &mut String, f: &mut ZipFn<'_>)
    where
        Self: Sized,
    {
        check_len(name, items.len(), grads.len());
        for (i, x) in items.iter_mut().enumerate() {
            let n = push_index(name, i);
            match grads.get(i) {
                Some(g) => x.zip_mut(g, name, f),
                None => {
                    let z = x.zero_tangent();
                    x.zip_mut(&z, name, f)
                }
            }
            name.truncate(n);
        }
    }
}

/// Appends `.segment` to a path (just `segment` to the empty root path) and
/// returns the length to [`truncate`](String::truncate) back to afterwards.
#[inline]
pub fn push_name(name: &mut String, segment: &str) -> usize {
    let len = name.len();
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(segment);
    len
}

/// [`push_name`] with a decimal index (`layers.3`).
#[inline]
pub fn push_index(name: &mut String, i: usize) -> usize {
    use std::fmt::Write;
    let len = name.len();
    if !name.is_empty() {
        name.push('.');
    }
    let _ = write!(name, "{i}");
    len
}

#[track_caller]
fn check_len(name: &str, params: usize, grads: usize) {
    if grads > params {
        panic!(
            "zip_mut: the gradient of `{}` has {grads} elements, the parameter {params}",
            display_name(name)
        );
    }
}

#[track_caller]
fn check_shape(name: &str, param: &[usize], grad: &[usize]) {
    if param != grad {
        panic!(
            "zip_mut: the gradient of `{}` has shape {grad:?}, the parameter {param:?}",
            display_name(name)
        );
    }
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "<root>"
    } else {
        name
    }
}

/// The elements of `t` as one writable row-major slice, with
/// `Arc::make_mut` semantics: when `t` is a view or shares its storage with
/// another tensor, it is first replaced by a contiguous copy of its own.
pub fn tensor_data_mut(t: &mut Tensor) -> &mut [f32] {
    if t.unique_slice_mut().is_none() {
        *t = Tensor::from_vec(t.to_vec(), t.shape());
    }
    match t.unique_slice_mut() {
        Some(s) => s,
        None => unreachable!("a tensor built from a Vec owns its contiguous storage"),
    }
}

// ---- leaves ---------------------------------------------------------------

macro_rules! float_params {
    ($($t:ident $v:ident),*) => {$(
        impl Parameters for $t {
            fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
                f(name, ParamRef {
                    shape: Cow::Borrowed(&[]),
                    data: Data::$v(Cow::Borrowed(std::slice::from_ref(self))),
                });
            }
            fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
                f(name, ParamMut {
                    shape: Cow::Borrowed(&[]),
                    data: DataMut::$v(std::slice::from_mut(self)),
                });
            }
            fn zip_mut(&mut self, grad: &$t, name: &mut String, f: &mut ZipFn<'_>) {
                f(
                    name,
                    ParamMut { shape: Cow::Borrowed(&[]), data: DataMut::$v(std::slice::from_mut(self)) },
                    ParamRef { shape: Cow::Borrowed(&[]), data: Data::$v(Cow::Borrowed(std::slice::from_ref(grad))) },
                );
            }
            fn visit_slice(items: &[$t], name: &mut String, f: &mut VisitFn<'_>) {
                f(name, ParamRef {
                    shape: Cow::Owned(vec![items.len()]),
                    data: Data::$v(Cow::Borrowed(items)),
                });
            }
            fn visit_slice_mut(items: &mut [$t], name: &mut String, f: &mut VisitMutFn<'_>) {
                f(name, ParamMut {
                    shape: Cow::Owned(vec![items.len()]),
                    data: DataMut::$v(items),
                });
            }
            fn zip_slice_mut(items: &mut [$t], grads: &[$t], name: &mut String, f: &mut ZipFn<'_>) {
                check_len(name, items.len(), grads.len());
                let n = items.len();
                let g: Cow<'_, [$t]> = if grads.len() == n {
                    Cow::Borrowed(grads)
                } else {
                    let mut g = grads.to_vec();
                    g.resize(n, 0.0);
                    Cow::Owned(g)
                };
                f(
                    name,
                    ParamMut { shape: Cow::Owned(vec![n]), data: DataMut::$v(items) },
                    ParamRef { shape: Cow::Owned(vec![n]), data: Data::$v(g) },
                );
            }
        }
    )*};
}
float_params!(f32 F32, f64 F64);

impl Parameters for Tensor {
    fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
        let data = match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        };
        f(
            name,
            ParamRef {
                shape: Cow::Borrowed(self.shape()),
                data: Data::F32(data),
            },
        );
    }

    fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
        let shape = self.shape().to_vec();
        f(
            name,
            ParamMut {
                shape: Cow::Owned(shape),
                data: DataMut::F32(tensor_data_mut(self)),
            },
        );
    }

    fn zip_mut(&mut self, grad: &Tensor, name: &mut String, f: &mut ZipFn<'_>) {
        let shape = self.shape().to_vec();
        let g: Cow<'_, [f32]> = if grad.is_shapeless_zero() && shape != [0] {
            Cow::Owned(vec![0.0; self.numel()])
        } else {
            check_shape(name, &shape, grad.shape());
            match grad.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(grad.to_vec()),
            }
        };
        let gshape = Cow::Owned(shape.clone());
        f(
            name,
            ParamMut {
                shape: Cow::Owned(shape),
                data: DataMut::F32(tensor_data_mut(self)),
            },
            ParamRef {
                shape: gshape,
                data: Data::F32(g),
            },
        );
    }
}

// ---- containers -----------------------------------------------------------

impl<T: Parameters> Parameters for Vec<T> {
    fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
        T::visit_slice(self, name, f)
    }
    fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
        T::visit_slice_mut(self, name, f)
    }
    fn zip_mut(&mut self, grad: &Vec<T>, name: &mut String, f: &mut ZipFn<'_>) {
        T::zip_slice_mut(self, grad, name, f)
    }
}

impl<T: Parameters, const N: usize> Parameters for [T; N] {
    fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
        T::visit_slice(self, name, f)
    }
    fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
        T::visit_slice_mut(self, name, f)
    }
    fn zip_mut(&mut self, grad: &[T; N], name: &mut String, f: &mut ZipFn<'_>) {
        T::zip_slice_mut(self, grad, name, f)
    }
}

macro_rules! tuple_params {
    ($(($($name:ident $idx:tt),+))*) => {$(
        impl<$($name: Parameters),+> Parameters for ($($name,)+) {
            fn visit(&self, name: &mut String, f: &mut VisitFn<'_>) {
                $(
                    let n = push_name(name, stringify!($idx));
                    self.$idx.visit(name, f);
                    name.truncate(n);
                )+
            }
            fn visit_mut(&mut self, name: &mut String, f: &mut VisitMutFn<'_>) {
                $(
                    let n = push_name(name, stringify!($idx));
                    self.$idx.visit_mut(name, f);
                    name.truncate(n);
                )+
            }
            fn zip_mut(&mut self, grad: &Self, name: &mut String, f: &mut ZipFn<'_>) {
                $(
                    let n = push_name(name, stringify!($idx));
                    self.$idx.zip_mut(&grad.$idx, name, f);
                    name.truncate(n);
                )+
            }
        }
    )*};
}
tuple_params! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

// ---- helpers --------------------------------------------------------------

/// The total number of scalar parameters (elements of all buffers).
pub fn num_params<M: Parameters + ?Sized>(model: &M) -> usize {
    let mut n = 0;
    model.visit(&mut String::new(), &mut |_, p| n += p.data.len());
    n
}

/// Every buffer's name and shape, in visiting order.
pub fn named_shapes<M: Parameters + ?Sized>(model: &M) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    model.visit(&mut String::new(), &mut |name, p| {
        out.push((name.to_owned(), p.shape.into_owned()))
    });
    out
}

/// Calls `f(name, buffer)` for every buffer of `model`, starting from the
/// empty root path.
pub fn for_each<M: Parameters + ?Sized>(model: &M, mut f: impl FnMut(&str, ParamRef<'_>)) {
    model.visit(&mut String::new(), &mut f)
}

/// Calls `f(name, buffer)` for every writable buffer of `model`.
pub fn for_each_mut<M: Parameters + ?Sized>(model: &mut M, mut f: impl FnMut(&str, ParamMut<'_>)) {
    model.visit_mut(&mut String::new(), &mut f)
}

/// Calls `f(name, parameter, gradient)` for every buffer of `model` and the
/// matching buffer of `grad` (see [`Parameters::zip_mut`]).
pub fn zip_each<M: Parameters + ?Sized>(
    model: &mut M,
    grad: &M,
    mut f: impl FnMut(&str, ParamMut<'_>, ParamRef<'_>),
) {
    model.zip_mut(grad, &mut String::new(), &mut f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_buffers() {
        let m = (
            1.0f32,
            vec![vec![1.0f64, 2.0], vec![3.0]],
            [Tensor::zeros(&[2, 2]), Tensor::zeros(&[2, 2])],
        );
        assert_eq!(
            named_shapes(&m),
            vec![
                ("0".into(), vec![]),
                ("1.0".into(), vec![2]),
                ("1.1".into(), vec![1]),
                ("2.0".into(), vec![2, 2]),
                ("2.1".into(), vec![2, 2]),
            ]
        );
        assert_eq!(num_params(&m), 1 + 3 + 8);
    }

    #[test]
    fn tensor_writes_do_not_leak_into_clones() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let mut b = a.clone();
        tensor_data_mut(&mut b)[0] = 10.0;
        assert_eq!(a.to_vec(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(b.to_vec(), [10.0, 2.0, 3.0, 4.0]);
        // A transposed view is materialised in its logical order.
        let mut t = a.t();
        tensor_data_mut(&mut t)[1] = -1.0;
        assert_eq!(t.to_vec(), [1.0, -1.0, 2.0, 4.0]);
        assert_eq!(a.to_vec(), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn shapeless_zero_gradients_read_as_zeros() {
        let mut m = (Tensor::ones(&[3]), vec![1.0f64, 2.0]);
        let g = (<Tensor as crate::Tangent>::zero(), vec![5.0]);
        let mut seen = Vec::new();
        zip_each(&mut m, &g, |_, _, g| {
            seen.push(match g.data {
                Data::F32(d) => d.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                Data::F64(d) => d.into_owned(),
            })
        });
        assert_eq!(seen, [vec![0.0; 3], vec![5.0, 0.0]]);
    }

    #[test]
    #[should_panic(expected = "the gradient of `1` has shape [2], the parameter [3]")]
    fn mismatched_gradient_shapes_panic_with_the_name() {
        let mut m = (0.0f32, Tensor::ones(&[3]));
        let g = (0.0f32, Tensor::ones(&[2]));
        zip_each(&mut m, &g, |_, _, _| {});
    }
}
