//! The table of primitives: which methods have derivative rules, which rule
//! each operand's cotangent comes from, and what each rule reads.
//!
//! The rules themselves are ordinary Rust in `tapeless-runtime` (`rules`); this
//! table only names them, so the chain rule (in `reverse`) stays generic.

/// What a rule reads, in the order it takes its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The value of operand `k` (0 is the receiver / left-hand side), by reference.
    Value(usize),
    /// The shape of operand `k` (`()` for scalars).
    Shape(usize),
    /// Operand `k` by value (an integer, such as `powi`'s exponent).
    Int(usize),
    /// The output value.
    Out,
    /// The cotangent of the output.
    D,
}

/// The rule giving one operand's cotangent.
#[derive(Debug)]
pub struct Partial {
    /// The rule method (`d_x`, `d_rhs`, ...).
    pub method: &'static str,
    pub reads: &'static [Operand],
}

#[derive(Debug)]
pub enum RuleKind {
    /// `partials[k]` is the rule for operand `k`; `None`: that operand is never
    /// differentiated (an integer exponent).
    Smooth {
        trait_name: &'static str,
        partials: &'static [Option<Partial>],
    },
    /// The result has a zero derivative (`floor`, `signum`) or is not a number (`len`).
    Constant,
    /// The result is the receiver itself (`clone`, `to_vec`): its cotangent
    /// goes to the receiver unchanged.
    Identity,
}

#[derive(Debug)]
pub struct Rule {
    pub name: &'static str,
    /// Number of operands including the receiver; `None`: any.
    pub arity: Option<usize>,
    pub kind: RuleKind,
}

use Operand::{Int, Out, Shape, Value, D};

macro_rules! p {
    ($m:literal: $($r:expr),*) => {
        Some(Partial { method: $m, reads: &[$($r),*] })
    };
}

macro_rules! smooth {
    ($name:literal, $tr:literal, [$($p:expr),*]) => {
        Rule {
            name: $name,
            arity: Some([$(stringify!($p)),*].len()),
            kind: RuleKind::Smooth { trait_name: $tr, partials: &[$($p),*] },
        }
    };
}

macro_rules! constant {
    ($($name:literal),*) => {
        &[$(Rule { name: $name, arity: None, kind: RuleKind::Constant }),*]
    };
}

/// Methods of `f32`/`f64` (and later tensors) with a derivative rule.
pub static METHODS: &[Rule] = &[
    smooth!("sin", "Sin", [p!("d_x": Value(0), D)]),
    smooth!("cos", "Cos", [p!("d_x": Value(0), D)]),
    smooth!("tan", "Tan", [p!("d_x": Out, D)]),
    smooth!("asin", "Asin", [p!("d_x": Value(0), D)]),
    smooth!("acos", "Acos", [p!("d_x": Value(0), D)]),
    smooth!("atan", "Atan", [p!("d_x": Value(0), D)]),
    smooth!(
        "atan2",
        "Atan2",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_other": Value(0), Value(1), D)
        ]
    ),
    smooth!("sinh", "Sinh", [p!("d_x": Value(0), D)]),
    smooth!("cosh", "Cosh", [p!("d_x": Value(0), D)]),
    smooth!("tanh", "Tanh", [p!("d_x": Out, D)]),
    smooth!("asinh", "Asinh", [p!("d_x": Value(0), D)]),
    smooth!("acosh", "Acosh", [p!("d_x": Value(0), D)]),
    smooth!("atanh", "Atanh", [p!("d_x": Value(0), D)]),
    smooth!("exp", "Exp", [p!("d_x": Out, D)]),
    smooth!("exp2", "Exp2", [p!("d_x": Out, D)]),
    smooth!("exp_m1", "ExpM1", [p!("d_x": Out, D)]),
    smooth!("ln", "Ln", [p!("d_x": Value(0), D)]),
    smooth!("ln_1p", "Ln1p", [p!("d_x": Value(0), D)]),
    smooth!(
        "log",
        "Log",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_base": Value(0), Value(1), D)
        ]
    ),
    smooth!("log2", "Log2", [p!("d_x": Value(0), D)]),
    smooth!("log10", "Log10", [p!("d_x": Value(0), D)]),
    smooth!("sqrt", "Sqrt", [p!("d_x": Out, D)]),
    smooth!("cbrt", "Cbrt", [p!("d_x": Out, D)]),
    smooth!("powi", "Powi", [p!("d_x": Value(0), Int(1), D), None]),
    smooth!(
        "powf",
        "Powf",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_p": Value(0), Out, D)
        ]
    ),
    smooth!(
        "hypot",
        "Hypot",
        [p!("d_x": Value(0), Out, D), p!("d_other": Value(1), Out, D)]
    ),
    smooth!("abs", "Abs", [p!("d_x": Value(0), D)]),
    smooth!("recip", "Recip", [p!("d_x": Out, D)]),
    smooth!(
        "mul_add",
        "MulAdd",
        [p!("d_x": Value(1), D), p!("d_a": Value(0), D), p!("d_b": D)]
    ),
    smooth!(
        "max",
        "Max",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_other": Value(0), Value(1), D)
        ]
    ),
    smooth!(
        "min",
        "Min",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_other": Value(0), Value(1), D)
        ]
    ),
    smooth!(
        "clamp",
        "Clamp",
        [
            p!("d_x": Value(0), Value(1), Value(2), D),
            p!("d_lo": Value(0), Value(1), D),
            p!("d_hi": Value(0), Value(2), D)
        ]
    ),
    smooth!("fract", "Fract", [p!("d_x": D)]),
    // ---- tensor methods (rules in `runtime/src/rules/tensor.rs`)
    smooth!(
        "matmul",
        "MatMul",
        [
            p!("d_x": Shape(0), Value(1), D),
            p!("d_other": Value(0), Shape(1), D)
        ]
    ),
    smooth!("relu", "Relu", [p!("d_x": Out, D)]),
    smooth!(
        "leaky_relu",
        "LeakyRelu",
        [p!("d_x": Value(0), Value(1), D), None]
    ),
    smooth!("sigmoid", "Sigmoid", [p!("d_x": Out, D)]),
    smooth!("gelu", "Gelu", [p!("d_x": Value(0), D)]),
    smooth!("square", "Square", [p!("d_x": Value(0), D)]),
    smooth!("sum", "SumAll", [p!("d_x": Shape(0), D)]),
    smooth!("mean", "MeanAll", [p!("d_x": Shape(0), D)]),
    smooth!("max", "MaxAll", [p!("d_x": Value(0), Out, D)]),
    smooth!("min", "MinAll", [p!("d_x": Value(0), Out, D)]),
    smooth!(
        "sum_axis",
        "SumAxis",
        [p!("d_x": Shape(0), Int(1), Int(2), D), None, None]
    ),
    smooth!(
        "mean_axis",
        "MeanAxis",
        [p!("d_x": Shape(0), Int(1), Int(2), D), None, None]
    ),
    smooth!(
        "max_axis",
        "MaxAxis",
        [p!("d_x": Value(0), Out, Int(1), Int(2), D), None, None]
    ),
    smooth!("softmax", "Softmax", [p!("d_x": Out, Int(1), D), None]),
    smooth!(
        "log_softmax",
        "LogSoftmax",
        [p!("d_x": Out, Int(1), D), None]
    ),
    smooth!(
        "conv2d",
        "Conv2d",
        [
            p!("d_x": Shape(0), Value(1), Int(2), Int(3), D),
            p!("d_weight": Value(0), Shape(1), Int(2), Int(3), D),
            None,
            None
        ]
    ),
    smooth!(
        "max_pool2d",
        "MaxPool2d",
        [p!("d_x": Value(0), Int(1), Int(2), D), None, None]
    ),
    smooth!(
        "avg_pool2d",
        "AvgPool2d",
        [p!("d_x": Shape(0), Int(1), Int(2), D), None, None]
    ),
    smooth!(
        "gather_rows",
        "GatherRows",
        [p!("d_x": Shape(0), Value(1), D), None]
    ),
    smooth!(
        "select_rows",
        "SelectRows",
        [p!("d_x": Shape(0), Value(1), D), None]
    ),
    smooth!("reshape", "Reshape", [p!("d_x": Shape(0), D), None]),
    smooth!(
        "transpose",
        "Transpose",
        [p!("d_x": Int(1), Int(2), D), None, None]
    ),
    smooth!("t", "T", [p!("d_x": D)]),
    smooth!("permute", "Permute", [p!("d_x": Value(1), D), None]),
    smooth!(
        "narrow",
        "Narrow",
        [
            p!("d_x": Shape(0), Int(1), Int(2), Int(3), D),
            None,
            None,
            None
        ]
    ),
    smooth!("unsqueeze", "Unsqueeze", [p!("d_x": Int(1), D), None]),
    smooth!("squeeze", "Squeeze", [p!("d_x": Shape(0), Int(1), D), None]),
    smooth!("contiguous", "Contiguous", [p!("d_x": D)]),
    smooth!(
        "broadcast_to",
        "BroadcastTo",
        [p!("d_x": Shape(0), D), None]
    ),
    smooth!("sum_to_shape", "SumToShape", [p!("d_x": Shape(0), D), None]),
    smooth!("squeeze_all", "SqueezeAll", [p!("d_x": Shape(0), D)]),
    smooth!(
        "maximum",
        "Maximum",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_other": Value(0), Value(1), D)
        ]
    ),
    smooth!(
        "minimum",
        "Minimum",
        [
            p!("d_x": Value(0), Value(1), D),
            p!("d_other": Value(0), Value(1), D)
        ]
    ),
    smooth!("to_degrees", "ToDegrees", [p!("d_x": D)]),
    smooth!("to_radians", "ToRadians", [p!("d_x": D)]),
];

/// Methods returning a copy of the receiver.
pub static IDENTITY_METHODS: &[Rule] = &[
    Rule {
        name: "clone",
        arity: Some(1),
        kind: RuleKind::Identity,
    },
    Rule {
        name: "to_vec",
        arity: Some(1),
        kind: RuleKind::Identity,
    },
    Rule {
        name: "to_owned",
        arity: Some(1),
        kind: RuleKind::Identity,
    },
];

/// Methods whose result has no derivative: constant almost everywhere, or not a number.
pub static CONSTANT_METHODS: &[Rule] = constant!(
    "signum",
    "floor",
    "ceil",
    "round",
    "round_ties_even",
    "trunc",
    "len",
    "is_empty",
    "is_nan",
    "is_finite",
    "is_infinite",
    "is_normal",
    "is_sign_positive",
    "is_sign_negative",
    "partial_cmp",
    "total_cmp",
    "to_bits",
    "shape",
    "numel",
    "rank"
);

pub static ADD: Rule = smooth!(
    "+",
    "AddOp",
    [
        p!("d_lhs": Shape(0), Shape(1), D),
        p!("d_rhs": Shape(0), Shape(1), D)
    ]
);
pub static SUB: Rule = smooth!(
    "-",
    "SubOp",
    [
        p!("d_lhs": Shape(0), Shape(1), D),
        p!("d_rhs": Shape(0), Shape(1), D)
    ]
);
pub static MUL: Rule = smooth!(
    "*",
    "MulOp",
    [
        p!("d_lhs": Shape(0), Value(1), D),
        p!("d_rhs": Value(0), Shape(1), D)
    ]
);
pub static DIV: Rule = smooth!(
    "/",
    "DivOp",
    [
        p!("d_lhs": Shape(0), Value(1), D),
        p!("d_rhs": Shape(0), Value(1), Out, D)
    ]
);
pub static NEG: Rule = smooth!("-", "NegOp", [p!("d_x": D)]);
pub static CAST: Rule = smooth!("as", "CastTo", [p!("d_x": Shape(0), D)]);

pub fn binary(op: crate::ir::BinOp) -> &'static Rule {
    use crate::ir::BinOp::*;
    match op {
        Add => &ADD,
        Sub => &SUB,
        Mul => &MUL,
        Div => &DIV,
    }
}

/// The rule for `name` called with `arity` operands (receiver included):
/// `x.max(y)` (scalar) and `t.max()` (tensor reduction) are different rules.
pub fn method(name: &str, arity: usize) -> Option<&'static Rule> {
    METHODS
        .iter()
        .chain(IDENTITY_METHODS)
        .find(|r| r.name == name && r.arity == Some(arity))
        .or_else(|| CONSTANT_METHODS.iter().find(|r| r.name == name))
}

/// Whether any rule has this name (with another arity).
pub fn has_method(name: &str) -> bool {
    METHODS
        .iter()
        .chain(CONSTANT_METHODS)
        .any(|r| r.name == name)
}
