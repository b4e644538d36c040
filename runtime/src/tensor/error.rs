//! Structured shape errors, each naming the operation and the shapes involved.

use core::fmt;

/// Why a tensor operation could not be carried out. Every variant names the
/// operation and the shapes involved; the panicking forms of the operations
/// panic with this error's [`Display`](fmt::Display) text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorError {
    /// Two shapes that cannot be broadcast together, e.g.
    /// `add: shapes [2, 3] and [4] cannot be broadcast`.
    ShapeMismatch {
        /// The operation (`"add"`, `"maximum"`, ...).
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
    },
    /// Matrix product operands whose inner or batch dimensions do not match.
    MatmulMismatch {
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
    },
    /// A shape that does not hold the number of elements it was given.
    ElementCount {
        /// The operation (`"from_vec"`, `"reshape"`).
        op: &'static str,
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of elements there are.
        numel: usize,
    },
    /// A tensor that cannot be broadcast to a target shape.
    BroadcastTo {
        /// The operation (`"broadcast_to"`, `"sum_to_shape"`).
        op: &'static str,
        /// The tensor's shape.
        from: Vec<usize>,
        /// The shape asked for.
        to: Vec<usize>,
    },
    /// An axis at or past the rank.
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// An operand of the wrong rank or layout for the operation, with an explanation.
    Invalid {
        /// The operation.
        op: &'static str,
        /// What is wrong, naming the shapes involved.
        msg: String,
    },
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast")
            }
            TensorError::MatmulMismatch { lhs, rhs } => write!(
                f,
                "matmul: shapes {lhs:?} and {rhs:?} cannot be multiplied \
                 (inner dimensions must match and batch dimensions broadcast)"
            ),
            TensorError::ElementCount { op, shape, numel } => {
                write!(f, "{op}: shape {shape:?} does not hold {numel} elements")
            }
            TensorError::BroadcastTo { op, from, to } => {
                write!(f, "{op}: shape {from:?} cannot be broadcast to {to:?}")
            }
            TensorError::AxisOutOfRange { op, axis, shape } => {
                write!(f, "{op}: axis {axis} is out of range for shape {shape:?}")
            }
            TensorError::Invalid { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for TensorError {}

/// Panics with the error's message (the panicking forms of the `try_` operations).
#[cold]
#[track_caller]
pub(crate) fn fail(e: TensorError) -> ! {
    panic!("{e}")
}
