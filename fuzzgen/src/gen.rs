//! The random-program generator.
//!
//! [`program`] writes one random `#[differentiable]` function (with helper
//! functions it calls) in the language tapeless supports, together with
//! wrappers that flatten its inputs, outputs and gradients so the checker can
//! compare them with finite differences without knowing the signature.
//!
//! Programs are domain-safe by construction: every expression carries an upper
//! bound on its magnitude (inputs lie in `[-2, 2]`), arguments of `ln`, `sqrt`,
//! `powf`, `recip`, ... are made positive (`e * e + c`, `e.abs() + c`,
//! `e.exp()`), arguments of `exp`, `sinh`, `powi`, ... are squashed to a small
//! range (`tanh`, `sin`, `atan`, `clamp`, a scale), and a mutable value written
//! in a loop keeps a budget: plain writes stay below its base bound, and every
//! `+=` is charged with its bound times the number of times it can run.
//! Nothing overflows, so every finite-difference disagreement is either a
//! branch boundary (which the checker detects) or a wrong gradient.
//!
//! This file is also compiled into the build script (`#[path]`), so it uses
//! only `std` and `crate::rng`.

use crate::rng::Rng;
use std::fmt::Write as _;

/// Bound on the magnitude of every generated expression.
const CAP: f64 = 1.0e3;
/// Bound on inputs: the checker draws every float input in `[-2, 2]`.
pub const INPUT_BOUND: f64 = 2.0;
/// Longest slice or `Vec` input the checker draws (lengths are `1..=MAX_LEN`).
pub const MAX_LEN: usize = 5;
/// Largest `usize` input the checker draws (`0..=MAX_INT`).
pub const MAX_INT: usize = 4;
/// Element bound of a slice passed to a helper function.
const HELPER_SLICE_BOUND: f64 = 8.0;

/// How a parameter of a generated function is passed (and drawn, and flattened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `x: f64`, active.
    Scalar,
    /// `#[no_grad] x: f64`.
    NoGrad,
    /// `xs: &[f64]`, active.
    Slice,
    /// `x: [f64; 3]`, active.
    Array3,
    /// `x: &[f64; 3]`, active.
    ArrayRef3,
    /// `x: Vec<f64>`, active.
    VecOwned,
    /// `x: &Vec<f64>`, active.
    VecRef,
    /// `n: usize`, inactive.
    Usize,
    /// `flag: bool`, inactive.
    Bool,
}

impl ParamKind {
    fn ty(self) -> &'static str {
        match self {
            ParamKind::Scalar | ParamKind::NoGrad => "f64",
            ParamKind::Slice => "&[f64]",
            ParamKind::Array3 => "[f64; 3]",
            ParamKind::ArrayRef3 => "&[f64; 3]",
            ParamKind::VecOwned => "Vec<f64>",
            ParamKind::VecRef => "&Vec<f64>",
            ParamKind::Usize => "usize",
            ParamKind::Bool => "bool",
        }
    }
    fn active(self) -> bool {
        !matches!(self, ParamKind::NoGrad | ParamKind::Usize | ParamKind::Bool)
    }
    fn path(self) -> &'static str {
        match self {
            ParamKind::Scalar => "Scalar",
            ParamKind::NoGrad => "NoGrad",
            ParamKind::Slice => "Slice",
            ParamKind::Array3 => "Array3",
            ParamKind::ArrayRef3 => "ArrayRef3",
            ParamKind::VecOwned => "VecOwned",
            ParamKind::VecRef => "VecRef",
            ParamKind::Usize => "Usize",
            ParamKind::Bool => "Bool",
        }
    }
}

/// The output type of a generated main function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    /// `f64`: checked through `_grad` and `_adjoint`.
    Scalar,
    /// `[f64; 2]`: checked through `_adjoint` with a random cotangent.
    Array2,
    /// `(f64, f64)`: likewise.
    Tuple2,
    /// `Vec<f64>`: likewise.
    Vec,
}

impl OutKind {
    fn ty(self) -> &'static str {
        match self {
            OutKind::Scalar => "f64",
            OutKind::Array2 => "[f64; 2]",
            OutKind::Tuple2 => "(f64, f64)",
            OutKind::Vec => "Vec<f64>",
        }
    }
}

/// One generated program: its source and how to call it.
#[derive(Clone, Debug)]
pub struct Program {
    /// Position in the batch.
    pub index: usize,
    /// Name of the main function (`p{index}`).
    pub name: String,
    /// The `#[differentiable]` functions (helpers first, main last).
    pub source: String,
    /// Parameters of the main function.
    pub params: Vec<ParamKind>,
    /// Output of the main function.
    pub out: OutKind,
    /// Written with `#[differentiable(forward, hessian)]` (scalar outputs of
    /// even-numbered programs, see [`has_hessian`], but for
    /// [`HESSIAN_KNOWN_BUGS`]); otherwise with `forward` only.
    pub hessian: bool,
}

// ---------------------------------------------------------------------------
// Expressions

/// A generated expression: its code (always safe to follow with `.method()`),
/// a bound on its magnitude, and whether it mentions a typed `f64` (so a method
/// call on it is not ambiguous).
#[derive(Clone, Debug)]
struct E {
    code: String,
    b: f64,
    typed: bool,
}

fn lit(v: f64) -> String {
    let s = format!("{v:?}");
    if v < 0.0 {
        format!("({s})")
    } else {
        s
    }
}

/// Whether `code` has a known float type (mentions a variable, a cast or an
/// `f64::` path): a method call on a bare literal expression is ambiguous.
/// (A value `if` always has a typed branch, so the names in its condition do
/// not mislead this test.)
fn typed(code: &str) -> bool {
    code.chars().any(|c| c.is_ascii_alphabetic())
}

/// `: f64` when `code` alone would leave the binding's float type open.
fn ann(code: &str) -> &'static str {
    if typed(code) {
        ""
    } else {
        ": f64"
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------
// Environment

#[derive(Clone, Debug)]
struct Scal {
    name: String,
    /// Read as `(*name)` (a `&f64` loop variable).
    deref: bool,
    /// Bound for reads (`base + budget`).
    bound: f64,
    /// Bound that plain writes must respect.
    base: f64,
    /// Total magnitude that `+=`-like writes may add over the variable's life.
    budget: f64,
    used: f64,
    mutable: bool,
    /// Loop depth where it was declared.
    depth: usize,
}

#[derive(Clone, Debug)]
enum Len {
    Const(usize),
    /// An expression for the length (`xs.len()`), and the largest it can be.
    Dyn(String, usize),
}

#[derive(Clone, Debug)]
struct Arr {
    name: String,
    len: Len,
    bound: f64,
    base: f64,
    budget: f64,
    used: f64,
    mutable: bool,
    depth: usize,
    /// Borrowed by an enclosing `for` over it: no writes.
    frozen: bool,
    /// A `[f64; N]` or `Vec<f64>` local or parameter that can be passed as `&name`.
    local: bool,
    /// For a local `Vec`: a variable holding its length, for indices of writes
    /// (`w[i % w.len()] *= ..` does not borrow-check).
    len_var: Option<String>,
    /// For a local 2-D array `[[f64; cols]; len]`: the row length (else 0).
    cols: usize,
}

#[derive(Clone, Debug)]
struct IntV {
    name: String,
    /// Values are `< max`.
    max: usize,
}

#[derive(Clone, Debug)]
struct Loop {
    trips: usize,
    label: Option<String>,
}

#[derive(Clone, Debug)]
enum HParam {
    Scalar,
    Slice,
    Usize,
}

#[derive(Clone, Debug)]
struct Helper {
    name: String,
    params: Vec<HParam>,
    out_bound: f64,
    /// Its body has a construct of [`HESSIAN_KNOWN_BUGS`].
    hessian_bug: bool,
}

#[derive(Clone, Copy)]
struct Mark {
    scal: usize,
    arrs: usize,
    ints: usize,
    flags: usize,
}

struct Gen<'r> {
    rng: &'r mut Rng,
    /// Also write the constructs of [`KNOWN_BUGS`].
    hunt: bool,
    scal: Vec<Scal>,
    arrs: Vec<Arr>,
    ints: Vec<IntV>,
    flags: Vec<String>,
    loops: Vec<Loop>,
    helpers: Vec<Helper>,
    out: OutKind,
    ret_bound: f64,
    fresh: usize,
    lines: Vec<String>,
    indent: usize,
    /// Statements left to write in this function.
    budget: usize,
    /// A construct of [`HESSIAN_KNOWN_BUGS`] was written.
    hessian_bug: bool,
}

impl<'r> Gen<'r> {
    fn new(rng: &'r mut Rng, helpers: Vec<Helper>) -> Self {
        Gen {
            rng,
            hunt: false,
            scal: Vec::new(),
            arrs: Vec::new(),
            ints: Vec::new(),
            flags: Vec::new(),
            loops: Vec::new(),
            helpers,
            out: OutKind::Scalar,
            ret_bound: 0.0,
            fresh: 0,
            lines: Vec::new(),
            indent: 1,
            budget: 0,
            hessian_bug: false,
        }
    }

    fn name(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}{}", self.fresh)
    }

    fn line(&mut self, s: impl AsRef<str>) {
        let pad = "    ".repeat(self.indent);
        self.lines.push(format!("{pad}{}", s.as_ref()));
    }

    fn mark(&self) -> Mark {
        Mark {
            scal: self.scal.len(),
            arrs: self.arrs.len(),
            ints: self.ints.len(),
            flags: self.flags.len(),
        }
    }

    fn restore(&mut self, m: Mark) {
        // Budgets charged inside the scope stay charged on surviving variables.
        self.scal.truncate(m.scal);
        self.arrs.truncate(m.arrs);
        self.ints.truncate(m.ints);
        self.flags.truncate(m.flags);
    }

    /// How often a statement here can run per declaration of something
    /// declared at loop depth `depth`.
    fn trips_since(&self, depth: usize) -> f64 {
        self.loops[depth..].iter().map(|l| l.trips as f64).product()
    }

    // -----------------------------------------------------------------------
    // Expressions

    fn literal(&mut self, lo: f64, hi: f64) -> E {
        let mut v = round3(self.rng.uniform(lo, hi));
        if v.abs() < 0.05 {
            v = 0.5;
        }
        E {
            code: lit(v),
            b: v.abs(),
            typed: false,
        }
    }

    fn int_expr(&mut self) -> (String, usize) {
        if !self.ints.is_empty() && self.rng.chance(0.8) {
            let v = self.rng.pick(&self.ints).clone();
            match self.rng.below(5) {
                0 => (v.name, v.max),
                1 => {
                    let c = self.rng.range(1, 3);
                    (format!("({} + {c})", v.name), v.max + c)
                }
                2 => {
                    let c = self.rng.range(2, 3);
                    (format!("({} * {c})", v.name), v.max * c)
                }
                3 => {
                    // bit operators: at most one more than the value
                    let op = *self.rng.pick(&["^", "|"]);
                    (format!("({} {op} 1)", v.name), v.max + 1)
                }
                _ => (format!("({} & 1)", v.name), 2),
            }
        } else {
            let c = self.rng.range(0, 4);
            (format!("{c}"), c + 1)
        }
    }

    /// An in-bounds index into `a`.
    fn index(&mut self, a: &Arr) -> String {
        match &a.len {
            Len::Const(n) => {
                let n = *n;
                if self.ints.is_empty() || self.rng.chance(0.25) {
                    format!("{}", self.rng.below(n))
                } else if self.rng.chance(0.15) {
                    let (i, _) = self.int_expr();
                    format!("{} - 1 - {i} % {n}", n)
                } else {
                    let (i, max) = self.int_expr();
                    if max <= n {
                        i
                    } else {
                        format!("{i} % {n}")
                    }
                }
            }
            Len::Dyn(len, _) => {
                let len = len.clone();
                match self.rng.below(6) {
                    0 => "0".to_string(),
                    1 => format!("{len} - 1"),
                    2 if self.scalar_for_index() => {
                        let vis = self.visible_scalars();
                        let s = self.scal[*self.rng.pick(&vis)].clone();
                        let r = if s.deref {
                            format!("(*{})", s.name)
                        } else {
                            s.name.clone()
                        };
                        // a data-dependent index: zero derivative, jumps where it changes
                        format!("({r}.abs() * 1.7) as usize % {len}")
                    }
                    _ => {
                        let (i, _) = self.int_expr();
                        format!("{i} % {len}")
                    }
                }
            }
        }
    }

    fn scalar_for_index(&self) -> bool {
        !self.scal.is_empty()
    }

    fn visible_scalars(&self) -> Vec<usize> {
        (0..self.scal.len())
            .filter(|&i| self.is_visible(i))
            .collect()
    }

    fn read_scalar(&mut self) -> Option<E> {
        let vis = self.visible_scalars();
        if vis.is_empty() {
            return None;
        }
        // favour recent variables
        let n = vis.len();
        let i = if self.rng.chance(0.5) {
            vis[n - 1 - self.rng.below(n.min(3))]
        } else {
            vis[self.rng.below(n)]
        };
        let s = &self.scal[i];
        Some(E {
            code: if s.deref {
                format!("(*{})", s.name)
            } else {
                s.name.clone()
            },
            b: s.bound,
            typed: true,
        })
    }

    /// The index part of an element of `a`: `[i]`, or `[i][j]` for a 2-D array.
    fn place(&mut self, a: &Arr) -> String {
        let ix = self.index(a);
        if a.cols == 0 {
            format!("[{ix}]")
        } else {
            let row = Arr {
                len: Len::Const(a.cols),
                cols: 0,
                ..a.clone()
            };
            let jx = self.index(&row);
            format!("[{ix}][{jx}]")
        }
    }

    fn read_elem(&mut self) -> Option<E> {
        if self.arrs.is_empty() {
            return None;
        }
        let a = self.rng.pick(&self.arrs).clone();
        let ix = self.place(&a);
        Some(E {
            code: format!("{}{ix}", a.name),
            b: a.bound,
            typed: true,
        })
    }

    fn leaf(&mut self) -> E {
        loop {
            let e = match self.rng.weighted(&[10, 5, 3, 2]) {
                0 => self.read_scalar(),
                1 => self.read_elem(),
                2 => Some(self.literal(-2.5, 2.5)),
                _ => {
                    if self.ints.is_empty() {
                        None
                    } else {
                        let v = self.rng.pick(&self.ints).clone();
                        Some(E {
                            code: format!("({} as f64)", v.name),
                            b: v.max as f64,
                            typed: true,
                        })
                    }
                }
            };
            if let Some(e) = e {
                return e;
            }
        }
    }

    /// `a.m()` or `f64::m(a)`.
    fn m1(&mut self, a: &E, m: &str) -> String {
        if typed(&a.code) && self.rng.chance(0.85) {
            format!("{}.{m}()", a.code)
        } else {
            format!("f64::{m}({})", a.code)
        }
    }

    /// `a.m(args)` or `f64::m(a, args)`.
    fn m2(&mut self, a: &E, m: &str, args: &str) -> String {
        if typed(&a.code) && self.rng.chance(0.85) {
            format!("{}.{m}({args})", a.code)
        } else {
            format!("f64::{m}({}, {args})", a.code)
        }
    }

    /// `e` with magnitude at most `t`.
    fn shrink(&mut self, e: E, t: f64) -> E {
        if e.b <= t {
            return e;
        }
        let k = (t / e.b * 1000.0).floor() / 1000.0;
        let choice = self.rng.weighted(&[4, 4, 2, 2, 1, 1]);
        let code = match choice {
            0 if k >= 0.001 => format!("({} * {})", e.code, lit(k)),
            2 => {
                let k = round3(t / std::f64::consts::FRAC_PI_2 * 0.999);
                let a = self.m1(&e, "atan");
                format!("({a} * {})", lit(k))
            }
            3 => {
                let s = self.m1(&e, "sin");
                format!("({s} * {})", lit(round3(t * 0.999)))
            }
            4 => {
                let t = round3(t * 0.999);
                self.m2(&e, "clamp", &format!("{}, {}", lit(-t), lit(t)))
            }
            5 => {
                let t = round3(t * 0.999);
                let inner = self.m2(&e, "max", &lit(-t));
                format!("{inner}.min({})", lit(t))
            }
            _ => {
                let s = self.m1(&e, "tanh");
                format!("({s} * {})", lit(round3(t * 0.999)))
            }
        };
        E {
            code,
            b: t,
            typed: e.typed,
        }
    }

    /// A positive expression built from `e`: `(code, lo)` with
    /// `min_lo <= lo <= code <= hi` (a bound of 10 by default).
    fn pos(&mut self, e: E, min_lo: f64) -> (E, f64) {
        self.pos_hi(e, min_lo, 10.0)
    }

    fn pos_hi(&mut self, e: E, min_lo: f64, hi: f64) -> (E, f64) {
        let c: f64 = *self.rng.pick(&[0.1, 0.25, 0.5, 1.0, 1.5]);
        let c = c.max(min_lo);
        match self.rng.weighted(&[5, 3, 2, 2]) {
            1 => {
                let e = self.shrink(e, hi - c);
                let a = self.m1(&e, "abs");
                (
                    E {
                        code: format!("({a} + {})", lit(c)),
                        b: e.b + c,
                        typed: e.typed,
                    },
                    c,
                )
            }
            2 if min_lo < 1.0 => {
                let e = self.shrink(e, hi.ln().min(-min_lo.ln()));
                let code = self.m1(&e, "exp");
                (
                    E {
                        code,
                        b: e.b.exp(),
                        typed: e.typed,
                    },
                    (-e.b).exp(),
                )
            }
            3 if c.max(1.0).max(min_lo + 1.0) + 1.5 <= hi => {
                let c = c.max(1.0).max(min_lo + 1.0) + 0.5;
                let t = self.m1(&e, "tanh");
                (
                    E {
                        code: format!("({} + {t})", lit(c)),
                        b: c + 1.0,
                        typed: e.typed,
                    },
                    c - 1.0,
                )
            }
            _ => {
                let e = self.shrink(e, (hi - c).sqrt());
                (
                    E {
                        code: format!("({} * {} + {})", e.code, e.code, lit(c)),
                        b: e.b * e.b + c,
                        typed: e.typed,
                    },
                    c,
                )
            }
        }
    }

    fn expr(&mut self, depth: u32) -> E {
        let e = self.expr_raw(depth);
        self.shrink(e, CAP)
    }

    fn expr_raw(&mut self, depth: u32) -> E {
        if depth == 0 || self.rng.chance(0.2) {
            return self.leaf();
        }
        let d = depth - 1;
        let has_helpers = !self.helpers.is_empty();
        let w = [
            12, // + -
            8,  // *
            3,  // /
            2,  // neg
            10, // smooth unary
            4,  // exp-like
            5,  // log / sqrt / powf / recip
            3,  // powi
            4,  // max min abs clamp
            3,  // atan2 hypot mul_add
            1,  // piecewise constant
            if has_helpers { 4 } else { 0 },
            1, // value if
        ];
        match self.rng.weighted(&w) {
            0 => {
                let a = self.expr(d);
                let b = self.expr(d);
                let op = if self.rng.chance(0.5) { "+" } else { "-" };
                E {
                    code: format!("({} {op} {})", a.code, b.code),
                    b: a.b + b.b,
                    typed: a.typed || b.typed,
                }
            }
            1 => {
                let a = self.expr(d);
                let b = self.expr(d);
                let (a, b) = if a.b * b.b > CAP {
                    let t = CAP.sqrt();
                    (self.shrink(a, t), self.shrink(b, t))
                } else {
                    (a, b)
                };
                E {
                    code: format!("({} * {})", a.code, b.code),
                    b: a.b * b.b,
                    typed: a.typed || b.typed,
                }
            }
            2 => {
                let a = self.expr(d);
                if self.rng.chance(0.3) {
                    let mut c = round3(self.rng.uniform(0.5, 3.0));
                    if self.rng.chance(0.5) {
                        c = -c;
                    }
                    E {
                        code: format!("({} / {})", a.code, lit(c)),
                        b: a.b / c.abs(),
                        typed: a.typed,
                    }
                } else {
                    let den = self.expr(d);
                    let (den, lo) = self.pos(den, 0.1);
                    let a = self.shrink(a, CAP * lo);
                    E {
                        code: format!("({} / {})", a.code, den.code),
                        b: a.b / lo,
                        typed: a.typed || den.typed,
                    }
                }
            }
            3 => {
                let a = self.expr(d);
                E {
                    code: format!("(-{})", a.code),
                    b: a.b,
                    typed: a.typed,
                }
            }
            4 => {
                let a = self.expr(d);
                let (m, b) = *self.rng.pick(&[
                    ("sin", 1.0),
                    ("cos", 1.0),
                    ("tanh", 1.0),
                    ("atan", std::f64::consts::FRAC_PI_2),
                    ("asinh", f64::NAN),
                    ("tan", f64::NAN),
                    ("asin", f64::NAN),
                    ("acos", std::f64::consts::PI),
                    ("atanh", f64::NAN),
                    ("to_radians", f64::NAN),
                    ("to_degrees", f64::NAN),
                    ("cbrt", f64::NAN),
                    ("fract", 1.0),
                    ("acosh", f64::NAN),
                ]);
                match m {
                    "asinh" => {
                        let code = self.m1(&a, m);
                        E {
                            code,
                            b: a.b.asinh(),
                            typed: a.typed,
                        }
                    }
                    "tan" => {
                        let a = self.shrink(a, 1.2);
                        let code = self.m1(&a, m);
                        E {
                            code,
                            b: a.b.tan(),
                            typed: a.typed,
                        }
                    }
                    "asin" | "acos" | "atanh" => {
                        let a = self.shrink(a, 0.9);
                        let code = self.m1(&a, m);
                        let b = if m == "acos" {
                            b
                        } else if m == "asin" {
                            a.b.asin()
                        } else {
                            a.b.atanh()
                        };
                        E {
                            code,
                            b,
                            typed: a.typed,
                        }
                    }
                    "to_radians" => {
                        let code = self.m1(&a, m);
                        E {
                            code,
                            b: a.b.to_radians(),
                            typed: a.typed,
                        }
                    }
                    "to_degrees" => {
                        let a = self.shrink(a, 2.0);
                        let code = self.m1(&a, m);
                        E {
                            code,
                            b: a.b.to_degrees(),
                            typed: a.typed,
                        }
                    }
                    "acosh" => {
                        let a = self.shrink(a, 3.0);
                        let c = *self.rng.pick(&[1.1, 1.5, 2.0]);
                        let p = E {
                            code: format!("({} * {} + {})", a.code, a.code, lit(c)),
                            b: a.b * a.b + c,
                            typed: a.typed,
                        };
                        let code = self.m1(&p, m);
                        E {
                            code,
                            b: p.b.acosh(),
                            typed: p.typed,
                        }
                    }
                    "cbrt" => {
                        let (p, _) = self.pos(a, 0.1);
                        let code = self.m1(&p, m);
                        E {
                            code,
                            b: p.b.cbrt(),
                            typed: p.typed,
                        }
                    }
                    _ => {
                        let code = self.m1(&a, m);
                        E {
                            code,
                            b,
                            typed: a.typed,
                        }
                    }
                }
            }
            5 => {
                let a = self.expr(d);
                let a = self.shrink(a, 3.0);
                let (m, b) = *self.rng.pick(&[
                    ("exp", a.b.exp()),
                    ("exp2", a.b.exp2()),
                    ("exp_m1", a.b.exp()),
                    ("sinh", a.b.sinh()),
                    ("cosh", a.b.cosh()),
                ]);
                let code = self.m1(&a, m);
                E {
                    code,
                    b,
                    typed: a.typed,
                }
            }
            6 => {
                let a = self.expr(d);
                match self.rng.below(9) {
                    0..=2 => {
                        let (p, lo) = self.pos(a, 0.05);
                        let m = *self.rng.pick(&["ln", "log2", "log10", "ln"]);
                        let code = self.m1(&p, m);
                        let b = lo.ln().abs().max(p.b.ln().abs())
                            / match m {
                                "log2" => 2f64.ln(),
                                "log10" => 10f64.ln(),
                                _ => 1.0,
                            };
                        E {
                            code,
                            b,
                            typed: p.typed,
                        }
                    }
                    3 => {
                        let a = self.shrink(a, 3.0);
                        let sq = format!("({} * {})", a.code, a.code);
                        let e = E {
                            code: sq,
                            b: a.b * a.b,
                            typed: a.typed,
                        };
                        let code = self.m1(&e, "ln_1p");
                        E {
                            code,
                            b: e.b.ln_1p(),
                            typed: a.typed,
                        }
                    }
                    4 => {
                        let (p, lo) = self.pos(a, 0.05);
                        let ln_p = lo.ln().abs().max(p.b.ln().abs());
                        if self.rng.chance(0.4) {
                            // an active base, at least 2 (so |ln base| >= ln 2)
                            let e = self.expr(d);
                            let e = self.shrink(e, 3.0);
                            let base = format!("({} * {} + 2.0)", e.code, e.code);
                            let code = self.m2(&p, "log", &base);
                            E {
                                code,
                                b: ln_p / 2f64.ln(),
                                typed: true,
                            }
                        } else {
                            let base = *self.rng.pick(&[2.0, 3.0, 0.5, 10.0]);
                            let code = self.m2(&p, "log", &lit(base));
                            E {
                                code,
                                b: ln_p / f64::ln(base).abs(),
                                typed: p.typed,
                            }
                        }
                    }
                    5 => {
                        let (p, _) = self.pos(a, 0.01);
                        let code = self.m1(&p, "sqrt");
                        E {
                            code,
                            b: p.b.sqrt(),
                            typed: p.typed,
                        }
                    }
                    6 => {
                        let (p, lo) = self.pos(a, 0.1);
                        let code = self.m1(&p, "recip");
                        E {
                            code,
                            b: 1.0 / lo,
                            typed: p.typed,
                        }
                    }
                    7 => {
                        // powf with an active exponent
                        let (p, lo) = self.pos_hi(a, 0.2, 8.0);
                        let ex = self.expr(d);
                        let ex = self.shrink(ex, 1.5);
                        let code = self.m2(&p, "powf", &ex.code);
                        let b = p.b.max(1.0).powf(ex.b) * lo.min(1.0).powf(-ex.b);
                        E {
                            code,
                            b,
                            typed: p.typed,
                        }
                    }
                    _ => {
                        if self.rng.chance(0.3) {
                            // integer exponent on a signed base (exact convention for x < 0)
                            let a = self.shrink(a, 3.0);
                            let n = *self.rng.pick(&[2.0, 3.0]);
                            let code = self.m2(&a, "powf", &lit(n));
                            E {
                                code,
                                b: a.b.powf(n),
                                typed: a.typed,
                            }
                        } else {
                            let (p, lo) = self.pos_hi(a, 0.2, 8.0);
                            let ex = round3(self.rng.uniform(-1.5, 2.5));
                            let code = self.m2(&p, "powf", &lit(ex));
                            let b = p.b.max(1.0).powf(ex.abs()) * lo.min(1.0).powf(-ex.abs());
                            E {
                                code,
                                b,
                                typed: p.typed,
                            }
                        }
                    }
                }
            }
            7 => {
                let a = self.expr(d);
                let n: i32 = *self.rng.pick(&[2, 2, 3, 3, 4, -1, -2, 0, 1]);
                let small: Vec<IntV> = self.ints.iter().filter(|v| v.max <= 6).cloned().collect();
                if !small.is_empty() && self.rng.chance(0.25) {
                    // an integer-variable exponent
                    let v = self.rng.pick(&small).clone();
                    let a = self.shrink(a, 2.0);
                    let code = self.m2(&a, "powi", &format!("{} as i32", v.name));
                    return E {
                        code,
                        b: a.b.powi(v.max as i32).max(1.0),
                        typed: a.typed,
                    };
                }
                if n < 0 {
                    let (p, lo) = self.pos(a, 0.3);
                    let code = self.m2(&p, "powi", &format!("{n}"));
                    E {
                        code,
                        b: lo.powi(n),
                        typed: p.typed,
                    }
                } else {
                    let a = self.shrink(a, 3.0);
                    let code = self.m2(&a, "powi", &format!("{n}"));
                    E {
                        code,
                        b: a.b.powi(n).max(1.0),
                        typed: a.typed,
                    }
                }
            }
            8 => {
                let a = self.expr(d);
                match self.rng.below(5) {
                    0 | 1 => {
                        let b = self.expr(d);
                        let m = if self.rng.chance(0.5) { "max" } else { "min" };
                        let code = self.m2(&a, m, &b.code);
                        E {
                            code,
                            b: a.b.max(b.b),
                            typed: a.typed || b.typed,
                        }
                    }
                    2 => {
                        let code = self.m1(&a, "abs");
                        E {
                            code,
                            b: a.b,
                            typed: a.typed,
                        }
                    }
                    3 if self.rng.chance(0.4) => {
                        // active bounds around a middle value: lo < hi always
                        let m = self.expr(d);
                        let m = self.shrink(m, 5.0);
                        let (c1, c2) = (
                            round3(self.rng.uniform(0.1, 2.0)),
                            round3(self.rng.uniform(0.1, 2.0)),
                        );
                        let bounds = format!("{} - {}, {} + {}", m.code, lit(c1), m.code, lit(c2));
                        let code = self.m2(&a, "clamp", &bounds);
                        E {
                            code,
                            b: m.b + c1.max(c2),
                            typed: true,
                        }
                    }
                    3 => {
                        let lo = round3(self.rng.uniform(-2.0, 0.5));
                        let hi = round3(lo + self.rng.uniform(0.2, 2.5));
                        let code = self.m2(&a, "clamp", &format!("{}, {}", lit(lo), lit(hi)));
                        E {
                            code,
                            b: lo.abs().max(hi.abs()),
                            typed: a.typed,
                        }
                    }
                    _ => {
                        let l = self.literal(-1.0, 1.0);
                        let m = if self.rng.chance(0.5) { "max" } else { "min" };
                        let code = self.m2(&a, m, &l.code);
                        E {
                            code,
                            b: a.b.max(l.b),
                            typed: a.typed,
                        }
                    }
                }
            }
            9 => {
                let a = self.expr(d);
                let b = self.expr(d);
                match self.rng.below(3) {
                    0 => {
                        let code = self.m2(&a, "atan2", &b.code);
                        E {
                            code,
                            b: std::f64::consts::PI,
                            typed: a.typed || b.typed,
                        }
                    }
                    1 => {
                        let code = self.m2(&a, "hypot", &b.code);
                        E {
                            code,
                            b: a.b + b.b,
                            typed: a.typed || b.typed,
                        }
                    }
                    _ => {
                        let a = self.shrink(a, 10.0);
                        let b = self.shrink(b, 10.0);
                        let c = self.expr(d);
                        let c = self.shrink(c, 100.0);
                        let code = self.m2(&a, "mul_add", &format!("{}, {}", b.code, c.code));
                        E {
                            code,
                            b: a.b * b.b + c.b,
                            typed: a.typed || b.typed || c.typed,
                        }
                    }
                }
            }
            10 => {
                let a = self.expr(d);
                let a = self.shrink(a, 100.0);
                let m = *self
                    .rng
                    .pick(&["floor", "round", "ceil", "trunc", "signum"]);
                let code = self.m1(&a, m);
                let pc = E {
                    code,
                    b: a.b + 1.0,
                    typed: a.typed,
                };
                let b = self.expr(d);
                let b = self.shrink(b, 10.0);
                E {
                    code: format!("({} * {})", pc.code, b.code),
                    b: pc.b * b.b,
                    typed: true,
                }
            }
            11 => self.call_expr(d),
            _ => {
                let c = self.cond(d.min(1));
                let mut a = self.expr(d);
                let b = self.expr(d);
                if !typed(&a.code) && !typed(&b.code) {
                    // the condition's names do not type the branches
                    a.code = format!("({} as f64)", a.code);
                }
                E {
                    code: format!("(if {c} {{ {} }} else {{ {} }})", a.code, b.code),
                    b: a.b.max(b.b),
                    typed: a.typed || b.typed,
                }
            }
        }
    }

    fn call_expr(&mut self, d: u32) -> E {
        let h = self.rng.pick(&self.helpers).clone();
        let mut args = Vec::new();
        for p in &h.params {
            match p {
                HParam::Scalar => {
                    let a = self.expr(d);
                    let a = self.shrink(a, INPUT_BOUND);
                    args.push(a.code);
                }
                HParam::Usize => {
                    let (i, _) = self.int_expr();
                    args.push(format!("{i} % {}", MAX_INT + 1));
                }
                HParam::Slice => {
                    let cands: Vec<Arr> = self
                        .arrs
                        .iter()
                        .filter(|a| a.bound <= HELPER_SLICE_BOUND && a.cols == 0)
                        .cloned()
                        .collect();
                    if cands.is_empty() {
                        // a constant slice: an inactive argument
                        args.push("&[0.5, -1.0, 1.5]".to_string());
                    } else {
                        let a = self.rng.pick(&cands).clone();
                        if a.local {
                            args.push(format!("&{}", a.name));
                        } else {
                            args.push(a.name.clone());
                        }
                    }
                }
            }
        }
        E {
            code: format!("{}({})", h.name, args.join(", ")),
            b: h.out_bound,
            typed: true,
        }
    }

    /// A condition: active comparisons, inactive integer tests, flags.
    fn cond(&mut self, d: u32) -> String {
        let c = self.cond1(d);
        match self.rng.below(8) {
            0 => format!("{c} && {}", self.cond1(0)),
            1 => format!("{c} || {}", self.cond1(0)),
            2 => format!("!({c})"),
            _ => c,
        }
    }

    fn cond1(&mut self, d: u32) -> String {
        let choice = self.rng.weighted(&[
            8,
            if self.ints.is_empty() { 0 } else { 3 },
            if self.flags.is_empty() { 0 } else { 1 },
        ]);
        match choice {
            0 => {
                let a = self.expr(d);
                let op = *self.rng.pick(&[">", "<", ">=", "<="]);
                if self.rng.chance(0.5) {
                    let l = self.literal(-1.5, 1.5);
                    format!("{} {op} {}", a.code, l.code)
                } else {
                    let b = self.expr(d);
                    format!("{} {op} {}", a.code, b.code)
                }
            }
            1 => {
                let v = self.rng.pick(&self.ints).clone();
                match self.rng.below(3) {
                    0 => format!("{} % 2 == 0", v.name),
                    1 => format!("{} > {}", v.name, self.rng.below(v.max.max(1))),
                    _ => format!("{} < {}", v.name, self.rng.range(1, v.max.max(1))),
                }
            }
            _ => self.rng.pick(&self.flags).clone(),
        }
    }

    // -----------------------------------------------------------------------
    // Statements

    fn block(&mut self, n: usize, depth: usize) {
        let m = self.mark();
        self.indent += 1;
        let n = n.max(1);
        for _ in 0..n {
            self.stmt(depth);
        }
        self.indent -= 1;
        self.restore(m);
    }

    fn writable_scalars(&self) -> Vec<usize> {
        (0..self.scal.len())
            .filter(|&i| self.scal[i].mutable && self.is_visible(i))
            .collect()
    }

    /// A variable is writable only if no later variable shadows its name.
    fn is_visible(&self, i: usize) -> bool {
        let name = &self.scal[i].name;
        !self.scal[i + 1..].iter().any(|s| &s.name == name)
    }

    fn writable_arrays(&self) -> Vec<usize> {
        (0..self.arrs.len())
            .filter(|&i| self.arrs[i].mutable && !self.arrs[i].frozen)
            .collect()
    }

    fn stmt(&mut self, depth: usize) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        let in_loop = !self.loops.is_empty();
        let can_nest = depth < 3 && self.budget > 2;
        let can_loop = can_nest && self.loops.len() < 2;
        let w = [
            14, // 0 let
            10, // 1 let mut
            4,  // 2 shadow
            if self.writable_scalars().is_empty() {
                0
            } else {
                12
            }, // 3 assign
            if self.writable_scalars().is_empty() {
                0
            } else {
                12
            }, // 4 compound
            if self.arrs.iter().filter(|a| a.mutable).count() < 3 {
                5
            } else {
                0
            }, // 5 array decl
            if self.writable_arrays().is_empty() {
                0
            } else {
                10
            }, // 6 array write
            if can_nest { 8 } else { 0 }, // 7 if
            if can_nest { 4 } else { 0 }, // 8 let if
            if self.ints.is_empty() { 0 } else { 2 }, // 9 match
            if can_loop { 9 } else { 0 }, // 10 for
            if can_loop { 3 } else { 0 }, // 11 while
            if can_loop { 2 } else { 0 }, // 12 loop
            if in_loop { 5 } else { 0 }, // 13 break/continue
            3,  // 14 early return
            2,  // 15 tuple let
            if can_nest { 1 } else { 0 }, // 16 block
        ];
        match self.rng.weighted(&w) {
            k @ (0 | 2) => {
                let e = self.expr(3);
                let vis = self.visible_scalars();
                let name = if k == 2 && !vis.is_empty() {
                    self.scal[*self.rng.pick(&vis)].name.clone()
                } else {
                    self.name("v")
                };
                self.line(format!("let {name}{} = {};", ann(&e.code), e.code));
                self.push_scalar(name, e.b, false, 0.0);
            }
            1 => {
                let e = self.expr(3);
                let name = self.name("s");
                self.line(format!("let mut {name}{} = {};", ann(&e.code), e.code));
                let budget = *self.rng.pick(&[0.0, 2.0, 8.0, 20.0]);
                let floor: f64 = *self.rng.pick(&[1.0, 2.0, 5.0]);
                self.push_scalar(name, e.b.max(floor), true, budget);
            }
            3 => self.assign(),
            4 => self.compound(),
            5 => self.array_decl(),
            6 => self.array_write(),
            7 => {
                let c = self.cond(2);
                self.line(format!("if {c} {{"));
                let n = self.rng.range(1, 3);
                self.block(n, depth + 1);
                if self.rng.chance(0.6) {
                    if self.rng.chance(0.3) && self.budget > 3 {
                        let c2 = self.cond(1);
                        self.line(format!("}} else if {c2} {{"));
                        let n = self.rng.range(1, 2);
                        self.block(n, depth + 1);
                    }
                    self.line("} else {");
                    let n = self.rng.range(1, 3);
                    self.block(n, depth + 1);
                }
                self.line("}");
            }
            8 => self.let_if(depth),
            9 => {
                let v = self.rng.pick(&self.ints).clone();
                let name = self.name("v");
                let k = self.rng.range(2, 3);
                let mut arms = Vec::new();
                let mut b: f64 = 0.0;
                let mut any_typed = false;
                for j in 0..k {
                    let e = self.expr(2);
                    b = b.max(e.b);
                    any_typed |= typed(&e.code);
                    let pat = if j + 1 == k {
                        "_".to_string()
                    } else if j == 1 && self.rng.chance(0.4) {
                        format!("{} | {}", j, j + k)
                    } else if j == 1 && self.rng.chance(0.4) {
                        format!("_ if {} > {}", v.name, self.rng.below(v.max.max(1)))
                    } else if j == 0 && self.rng.chance(0.3) {
                        "0..=1".to_string()
                    } else {
                        format!("{j}")
                    };
                    arms.push(format!("{pat} => {},", e.code));
                }
                let t = if any_typed { "" } else { ": f64" };
                self.line(format!("let {name}{t} = match {} % {} {{", v.name, k + 1));
                self.indent += 1;
                for a in arms {
                    self.line(a);
                }
                self.indent -= 1;
                self.line("};");
                self.push_scalar(name, b, false, 0.0);
            }
            10 => self.for_loop(depth),
            11 => self.while_loop(depth, false),
            12 => self.while_loop(depth, true),
            13 => {
                let c = self.cond(1);
                let kw = if self.rng.chance(0.55) {
                    "break"
                } else {
                    "continue"
                };
                let label = if self.loops.len() >= 2 && self.rng.chance(0.4) {
                    self.loops[0].label.clone()
                } else {
                    None
                };
                match label {
                    Some(l) => self.line(format!("if {c} {{ {kw} {l}; }}")),
                    None => self.line(format!("if {c} {{ {kw}; }}")),
                }
            }
            14 => {
                let c = self.cond(1);
                let r = self.out_value();
                self.line(format!("if {c} {{"));
                self.indent += 1;
                self.line(format!("return {r};"));
                self.indent -= 1;
                self.line("}");
            }
            15 => {
                let a = self.expr(2);
                let b = self.expr(2);
                let (n1, n2) = (self.name("v"), self.name("v"));
                let t = if typed(&a.code) && typed(&b.code) {
                    ""
                } else {
                    ": (f64, f64)"
                };
                self.line(format!("let ({n1}, {n2}){t} = ({}, {});", a.code, b.code));
                self.push_scalar(n1, a.b, false, 0.0);
                self.push_scalar(n2, b.b, false, 0.0);
            }
            _ => {
                self.line("{");
                let n = self.rng.range(1, 3);
                self.block(n, depth + 1);
                self.line("}");
            }
        }
    }

    fn push_scalar(&mut self, name: String, base: f64, mutable: bool, budget: f64) {
        self.scal.push(Scal {
            name,
            deref: false,
            bound: base + budget,
            base,
            budget,
            used: 0.0,
            mutable,
            depth: self.loops.len(),
        });
    }

    fn assign(&mut self) {
        let ws = self.writable_scalars();
        let i = *self.rng.pick(&ws);
        let s = self.scal[i].clone();
        if self.rng.chance(0.35) {
            // leaky update: s = s * c + e, charged as an accumulation of e
            let t = self.trips_since(s.depth);
            let room = (s.budget - s.used) / t;
            if room >= 0.01 {
                let c = self.expr(1);
                let c = self.shrink(c, 0.9);
                let e = self.expr(2);
                let e = self.shrink(e, room);
                self.scal[i].used += e.b * t;
                self.line(format!(
                    "{} = {} * {} + {};",
                    s.name, s.name, c.code, e.code
                ));
                return;
            }
        }
        let e = self.expr(3);
        let e = self.shrink(e, s.base);
        self.line(format!("{} = {};", s.name, e.code));
    }

    fn compound(&mut self) {
        let ws = self.writable_scalars();
        let i = *self.rng.pick(&ws);
        let s = self.scal[i].clone();
        match self.rng.below(4) {
            0 | 1 => {
                let t = self.trips_since(s.depth);
                let room = (s.budget - s.used) / t;
                if room < 0.01 {
                    // no budget left: a contraction
                    let e = self.expr(2);
                    let e = self.shrink(e, 1.0);
                    self.line(format!("{} *= {};", s.name, e.code));
                    return;
                }
                let e = self.expr(3);
                let e = self.shrink(e, room);
                self.scal[i].used += e.b * t;
                let op = if self.rng.chance(0.5) { "+=" } else { "-=" };
                self.line(format!("{} {op} {};", s.name, e.code));
            }
            2 => {
                let e = self.expr(2);
                let e = self.shrink(e, 1.0);
                self.line(format!("{} *= {};", s.name, e.code));
            }
            _ => {
                let e = self.expr(2);
                let (p, lo) = self.pos(e, 1.0);
                if lo >= 1.0 {
                    self.line(format!("{} /= {};", s.name, p.code));
                } else {
                    self.line(format!("{} /= {};", s.name, lit(1.5)));
                }
            }
        }
    }

    /// A typed float zero.
    fn zero(&mut self) -> &'static str {
        if self.rng.chance(0.5) {
            "0.0f64"
        } else {
            "0.0_f64"
        }
    }

    fn array_decl(&mut self) {
        let is_vec = self.rng.chance(0.4);
        let is_2d = !is_vec && self.rng.chance(0.2);
        let name = self.name(if is_vec {
            "w"
        } else if is_2d {
            "m"
        } else {
            "a"
        });
        let base: f64 = *self.rng.pick(&[1.0, 2.0, 5.0]);
        let budget = *self.rng.pick(&[0.0, 2.0, 8.0, 20.0]);
        let len;
        let mut cols = 0;
        let sources: Vec<Arr> = self
            .arrs
            .iter()
            .filter(|a| a.cols == 0 && (is_vec || (a.local && matches!(a.len, Len::Const(_)))))
            .cloned()
            .collect();
        if !is_2d && !sources.is_empty() && self.rng.chance(0.25) {
            // a copy of a parameter or local: `.to_vec()` (a Vec), `.clone()`
            // (an array of an array, a Vec of a Vec)
            let src = self.rng.pick(&sources).clone();
            let base = base.max(src.bound);
            let (code, len) = match (&src.len, src.local) {
                (Len::Const(k), _) if !is_vec => (format!("{}.clone()", src.name), Len::Const(*k)),
                (Len::Const(k), _) => (
                    format!("{}.to_vec()", src.name),
                    Len::Dyn(format!("{name}.len()"), *k),
                ),
                (Len::Dyn(_, m), true) if self.rng.chance(0.5) => (
                    format!("{}.clone()", src.name),
                    Len::Dyn(format!("{name}.len()"), *m),
                ),
                (Len::Dyn(_, m), _) => (
                    format!("{}.to_vec()", src.name),
                    Len::Dyn(format!("{name}.len()"), *m),
                ),
            };
            self.line(format!("let mut {name} = {code};"));
            let len_var = match &len {
                Len::Dyn(..) => {
                    let v = format!("{name}_len");
                    self.line(format!("let {v} = {name}.len();"));
                    Some(v)
                }
                Len::Const(_) => None,
            };
            self.arrs.push(Arr {
                name,
                len_var,
                cols: 0,
                len,
                bound: base + budget,
                base,
                budget,
                used: 0.0,
                mutable: true,
                depth: self.loops.len(),
                frozen: false,
                local: true,
            });
            return;
        }
        if is_2d {
            let (r, c) = (self.rng.range(1, 3), self.rng.range(1, 3));
            let z = self.zero();
            self.line(format!("let mut {name} = [[{z}; {c}]; {r}];"));
            len = Len::Const(r);
            cols = c;
        } else if is_vec {
            let dyns: Vec<Arr> = self
                .arrs
                .iter()
                .filter(|a| matches!(a.len, Len::Dyn(..)))
                .cloned()
                .collect();
            let n_param = self.ints.iter().find(|v| v.name == "n").cloned();
            match self.rng.below(3) {
                0 if !dyns.is_empty() => {
                    let a = self.rng.pick(&dyns).clone();
                    let Len::Dyn(l, m) = a.len else {
                        unreachable!()
                    };
                    let z = self.zero();
                    self.line(format!("let mut {name} = vec![{z}; {l}];"));
                    len = Len::Dyn(format!("{name}.len()"), m);
                }
                1 if n_param.is_some() => {
                    let z = self.zero();
                    self.line(format!("let mut {name} = vec![{z}; n + 1];"));
                    len = Len::Dyn(format!("{name}.len()"), MAX_INT + 1);
                }
                _ => {
                    let k = self.rng.range(1, 4);
                    if self.rng.chance(0.5) {
                        self.line(format!("let mut {name}: Vec<f64> = vec![0.0; {k}];"));
                    } else {
                        let z = self.zero();
                        self.line(format!("let mut {name} = vec![{z}; {k}];"));
                    }
                    len = if self.rng.chance(0.5) {
                        Len::Dyn(format!("{name}.len()"), k)
                    } else {
                        Len::Const(k)
                    };
                }
            }
        } else {
            let k = self.rng.range(1, 4);
            if self.rng.chance(0.3) {
                let mut es = Vec::new();
                for _ in 0..k {
                    let e = self.expr(2);
                    let e = self.shrink(e, base);
                    es.push(e.code);
                }
                let t = if es.iter().any(|e| typed(e)) {
                    String::new()
                } else {
                    format!(": [f64; {k}]")
                };
                self.line(format!("let mut {name}{t} = [{}];", es.join(", ")));
            } else if self.rng.chance(0.4) {
                self.line(format!("let mut {name}: [f64; {k}] = [0.0; {k}];"));
            } else {
                let z = self.zero();
                self.line(format!("let mut {name} = [{z}; {k}];"));
            }
            len = Len::Const(k);
        }
        let len_var = match &len {
            Len::Dyn(..) => {
                let v = format!("{name}_len");
                self.line(format!("let {v} = {name}.len();"));
                Some(v)
            }
            Len::Const(_) => None,
        };
        self.arrs.push(Arr {
            name,
            len_var,
            cols,
            len,
            bound: base + budget,
            base,
            budget,
            used: 0.0,
            mutable: true,
            depth: self.loops.len(),
            frozen: false,
            local: true,
        });
    }

    fn array_write(&mut self) {
        let ws = self.writable_arrays();
        let i = *self.rng.pick(&ws);
        let mut a = self.arrs[i].clone();
        if let (Some(v), Len::Dyn(_, m)) = (&a.len_var, &a.len) {
            a.len = Len::Dyn(v.clone(), *m);
        }
        let ix = self.place(&a);
        match self.rng.below(5) {
            0 | 1 => {
                let e = self.expr(3);
                let e = self.shrink(e, a.base);
                self.line(format!("{}{ix} = {};", a.name, e.code));
            }
            2 | 3 => {
                let t = self.trips_since(a.depth);
                let room = (a.budget - a.used) / t;
                if room < 0.01 {
                    let e = self.expr(2);
                    let e = self.shrink(e, 1.0);
                    self.line(format!("{}{ix} *= {};", a.name, e.code));
                    return;
                }
                let e = self.expr(3);
                let e = self.shrink(e, room);
                self.arrs[i].used += e.b * t;
                let op = if self.rng.chance(0.6) { "+=" } else { "-=" };
                self.line(format!("{}{ix} {op} {};", a.name, e.code));
            }
            _ => {
                let e = self.expr(2);
                if self.rng.chance(0.4) {
                    let (p, _) = self.pos(e, 1.0);
                    self.line(format!("{}{ix} /= {};", a.name, p.code));
                } else {
                    let e = self.shrink(e, 1.0);
                    self.line(format!("{}{ix} *= {};", a.name, e.code));
                }
            }
        }
    }

    fn let_if(&mut self, depth: usize) {
        let name = self.name("v");
        let c = self.cond(2);
        self.line(format!("let {name} = if {c} {{"));
        let header = self.lines.len() - 1;
        let mut any_typed = false;
        let mut b: f64 = 0.0;
        for branch in 0..2 {
            if branch == 1 {
                self.line("} else {");
            }
            let m = self.mark();
            self.indent += 1;
            let n = self.rng.range(0, 2);
            for _ in 0..n {
                self.value_stmt(depth + 1);
            }
            let e = self.expr(3);
            b = b.max(e.b);
            any_typed |= typed(&e.code);
            self.line(e.code);
            self.indent -= 1;
            self.restore(m);
        }
        self.line("};");
        if !any_typed {
            self.lines[header] = self.lines[header].replacen(" = if", ": f64 = if", 1);
        }
        self.push_scalar(name, b, false, 0.0);
    }

    /// A statement inside a value block: no control flow out of it.
    fn value_stmt(&mut self, _depth: usize) {
        match self.rng.below(4) {
            0 | 1 => {
                let e = self.expr(2);
                let name = self.name("v");
                self.line(format!("let {name}{} = {};", ann(&e.code), e.code));
                self.push_scalar(name, e.b, false, 0.0);
            }
            2 if !self.writable_scalars().is_empty() => self.assign(),
            _ if !self.writable_arrays().is_empty() => self.array_write(),
            _ => {
                let e = self.expr(2);
                let name = self.name("v");
                self.line(format!("let {name}{} = {};", ann(&e.code), e.code));
                self.push_scalar(name, e.b, false, 0.0);
            }
        }
    }

    fn label(&mut self) -> Option<String> {
        if self.loops.is_empty() && self.rng.chance(0.3) {
            Some(format!("'{}", self.name("l")))
        } else {
            None
        }
    }

    fn loop_body(&mut self, trips: usize, label: Option<String>, depth: usize) {
        self.loops.push(Loop { trips, label });
        let n = self.rng.range(1, 4);
        self.block(n, depth + 1);
        self.loops.pop();
    }

    fn for_loop(&mut self, depth: usize) {
        let label = self.label();
        let lab = label.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
        let all = self.arrs.clone();
        let mut slices = Vec::new();
        for a in all {
            if a.cols == 0 && (!a.mutable || self.rng.chance(0.5)) {
                slices.push(a);
            }
        }
        let iname = self.name("i");
        let m = self.mark();
        let trips;
        let choice = self
            .rng
            .weighted(&[6, 3, if slices.is_empty() { 0 } else { 6 }]);
        match choice {
            0 => {
                let k = self.rng.range(1, 5);
                let (range, t, max) = match self.rng.below(5) {
                    0 if self.rng.chance(0.3) => {
                        (format!("(0..={k}).rev().step_by(2)"), k / 2 + 1, k + 1)
                    }
                    0 => (format!("(0..{k}).rev()"), k, k),
                    1 => {
                        let s = self.rng.range(2, 3);
                        (
                            format!("(0..{}).step_by({s})", k + 2),
                            (k + 2).div_ceil(s),
                            k + 2,
                        )
                    }
                    2 => (format!("1..={k}"), k, k + 1),
                    _ => (format!("0..{k}"), k, k),
                };
                self.line(format!("{lab}for {iname} in {range} {{"));
                self.ints.push(IntV { name: iname, max });
                trips = t;
            }
            1 => {
                let dyn_len = self.arrs.iter().find_map(|a| match &a.len {
                    Len::Dyn(l, m) => Some((l.clone(), *m)),
                    _ => None,
                });
                let has_n = self.ints.iter().any(|v| v.name == "n");
                let (bound, t) = match dyn_len {
                    Some((l, m)) if !has_n || self.rng.chance(0.5) => (l, m),
                    _ if has_n => ("n".to_string(), MAX_INT),
                    _ => ("3".to_string(), 3),
                };
                self.line(format!("{lab}for {iname} in 0..{bound} {{"));
                self.ints.push(IntV {
                    name: iname,
                    max: t.max(1),
                });
                trips = t;
            }
            _ => {
                let a = self.rng.pick(&slices).clone();
                let t = match a.len {
                    Len::Const(k) => k,
                    Len::Dyn(_, m) => m,
                };
                let vname = self.name("e");
                let src = if self.rng.chance(0.5) {
                    format!("{}.iter()", a.name)
                } else if a.local {
                    format!("&{}", a.name)
                } else {
                    a.name.clone()
                };
                let others: Vec<Arr> = slices
                    .iter()
                    .filter(|b| b.name != a.name)
                    .cloned()
                    .collect();
                let by_ref = self.rng.chance(0.25);
                let mut deref = false;
                match self.rng.below(4) {
                    0 => {
                        self.line(format!(
                            "{lab}for ({iname}, &{vname}) in {}.iter().enumerate() {{",
                            a.name
                        ));
                        self.ints.push(IntV {
                            name: iname,
                            max: t,
                        });
                    }
                    1 if !others.is_empty() => {
                        let b = self.rng.pick(&others).clone();
                        let v2 = self.name("e");
                        let other = if !b.local && self.rng.chance(0.5) {
                            b.name.clone()
                        } else {
                            format!("{}.iter()", b.name)
                        };
                        self.line(format!(
                            "{lab}for (&{vname}, &{v2}) in {}.iter().zip({other}) {{",
                            a.name
                        ));
                        self.freeze(&b.name);
                        self.scal.push(Scal {
                            name: v2,
                            deref: false,
                            bound: b.bound,
                            base: b.bound,
                            budget: 0.0,
                            used: 0.0,
                            mutable: false,
                            depth: self.loops.len() + 1,
                        });
                    }
                    _ if by_ref => {
                        // `v` is a `&f64`, read as `(*v)`
                        self.line(format!("{lab}for {vname} in {src} {{"));
                        deref = true;
                    }
                    _ => {
                        self.line(format!("{lab}for &{vname} in {src} {{"));
                    }
                }
                self.freeze(&a.name);
                self.scal.push(Scal {
                    name: vname,
                    deref,
                    bound: a.bound,
                    base: a.bound,
                    budget: 0.0,
                    used: 0.0,
                    mutable: false,
                    depth: self.loops.len() + 1,
                });
                trips = t;
            }
        }
        self.loop_body(trips, label, depth);
        self.restore(m);
        self.unfreeze_all_but_enclosing();
        self.line("}");
    }

    fn freeze(&mut self, name: &str) {
        for a in self.arrs.iter_mut() {
            if a.name == name {
                a.frozen = true;
            }
        }
    }

    /// Unfreeze arrays no enclosing loop iterates over (loops record nothing:
    /// recompute from the headers still open is not needed, since a frozen
    /// array is only frozen for the body just closed unless an outer loop
    /// iterates it too; keep it simple and conservative).
    fn unfreeze_all_but_enclosing(&mut self) {
        if self.loops.is_empty() {
            for a in self.arrs.iter_mut() {
                a.frozen = false;
            }
        }
    }

    fn while_loop(&mut self, depth: usize, is_loop: bool) {
        let label = self.label();
        let lab = label.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
        let c = self.name("c");
        let k = self.rng.range(1, 5);
        self.line(format!("let mut {c} = 0;"));
        let m = self.mark();
        if is_loop {
            self.line(format!("{lab}loop {{"));
            self.indent += 1;
            self.line(format!("{c} += 1;"));
            self.line(format!("if {c} > {k} {{"));
            self.line("    break;");
            self.line("}");
            self.indent -= 1;
        } else {
            let cond = if self.rng.chance(0.4) {
                format!(" && {}", self.cond1(1))
            } else {
                String::new()
            };
            self.line(format!("{lab}while {c} < {k}{cond} {{"));
            self.indent += 1;
            self.line(format!("{c} += 1;"));
            self.indent -= 1;
        }
        self.ints.push(IntV {
            name: c.clone(),
            max: k + 2,
        });
        self.loop_body(k, label, depth);
        self.restore(m);
        self.line("}");
        // the counter stays readable after the loop
        self.ints.push(IntV {
            name: c,
            max: k + 2,
        });
    }

    /// A value of the output type (for `return` and the tail).
    fn out_value(&mut self) -> String {
        match self.out {
            OutKind::Scalar => {
                let e = self.expr(3);
                self.ret_bound = self.ret_bound.max(e.b);
                e.code
            }
            OutKind::Array2 => {
                let a = self.expr(3);
                let b = self.expr(3);
                format!("[{}, {}]", a.code, b.code)
            }
            OutKind::Tuple2 => {
                let a = self.expr(3);
                let b = self.expr(3);
                format!("({}, {})", a.code, b.code)
            }
            OutKind::Vec => {
                let a = self.expr(2);
                let b = self.expr(2);
                let c = self.expr(2);
                format!("vec![{}, {}, {}]", a.code, b.code, c.code)
            }
        }
    }

    /// The function's tail: an expression over many live values, so that most
    /// of the body reaches the output.
    fn tail(&mut self) -> String {
        match self.out {
            OutKind::Scalar => {
                let k = self.rng.range(2, 4);
                let mut terms = Vec::new();
                let mut b = 0.0;
                // prefer mutable values and arrays (loop-carried state)
                let muts: Vec<Scal> = self.scal.iter().filter(|s| s.mutable).cloned().collect();
                let arrs = self.arrs.clone();
                for _ in 0..k {
                    let e = if !muts.is_empty() && self.rng.chance(0.4) {
                        let s = self.rng.pick(&muts).clone();
                        E {
                            code: s.name,
                            b: s.bound,
                            typed: true,
                        }
                    } else if !arrs.is_empty() && self.rng.chance(0.3) {
                        let a = self.rng.pick(&arrs).clone();
                        let ix = self.place(&a);
                        E {
                            code: format!("{}{ix}", a.name),
                            b: a.bound,
                            typed: true,
                        }
                    } else {
                        self.expr(3)
                    };
                    b += e.b;
                    terms.push(e.code);
                }
                self.ret_bound = self.ret_bound.max(b);
                terms.join(" + ")
            }
            OutKind::Vec => {
                let vecs: Vec<Arr> = self
                    .arrs
                    .iter()
                    .filter(|a| a.local && a.name.starts_with('w'))
                    .cloned()
                    .collect();
                if !vecs.is_empty() && self.rng.chance(0.7) {
                    self.rng.pick(&vecs).name.clone()
                } else {
                    self.out_value()
                }
            }
            _ => self.out_value(),
        }
    }
}

// ---------------------------------------------------------------------------
// Functions and programs

fn helper(
    rng: &mut Rng,
    prefix: &str,
    j: usize,
    earlier: &[Helper],
    hunt: bool,
) -> (String, Helper) {
    let name = format!("{prefix}_h{j}");
    if rng.chance(0.25) {
        return recursive_helper(rng, &name);
    }
    let mut g = Gen::new(rng, earlier.to_vec());
    g.hunt = hunt;
    let mut params = vec![HParam::Scalar];
    let mut sig = vec!["x: f64".to_string()];
    g.push_scalar("x".into(), INPUT_BOUND, false, 0.0);
    if g.rng.chance(0.6) {
        params.push(HParam::Scalar);
        sig.push("y: f64".into());
        g.push_scalar("y".into(), INPUT_BOUND, false, 0.0);
    }
    if g.rng.chance(0.4) {
        params.push(HParam::Slice);
        sig.push("zs: &[f64]".into());
        g.arrs.push(Arr {
            name: "zs".into(),
            len: Len::Dyn("zs.len()".into(), MAX_LEN),
            bound: HELPER_SLICE_BOUND,
            base: HELPER_SLICE_BOUND,
            budget: 0.0,
            used: 0.0,
            mutable: false,
            depth: 0,
            frozen: false,
            len_var: None,
            cols: 0,
            local: false,
        });
    }
    if g.rng.chance(0.3) {
        params.push(HParam::Usize);
        sig.push("m: usize".into());
        g.ints.push(IntV {
            name: "m".into(),
            max: MAX_INT + 1,
        });
    }
    g.budget = g.rng.range(2, 6);
    while g.budget > 0 {
        g.stmt(0);
    }
    let tail = g.tail();
    g.line(tail);
    let out_bound = g.ret_bound;
    let hessian_bug = g.hessian_bug || g.helpers.iter().any(|h| h.hessian_bug);
    let mut src = String::new();
    let _ = writeln!(src, "#[differentiable({HELPER_OPTIONS})]");
    let _ = writeln!(src, "fn {name}({}) -> f64 {{", sig.join(", "));
    for l in &g.lines {
        let _ = writeln!(src, "{l}");
    }
    let _ = writeln!(src, "}}");
    (
        src,
        Helper {
            name,
            params,
            out_bound,
            hessian_bug,
        },
    )
}

fn recursive_helper(rng: &mut Rng, name: &str) -> (String, Helper) {
    let mut g = Gen::new(rng, Vec::new());
    g.push_scalar("x".into(), INPUT_BOUND, false, 0.0);
    let base = g.expr(2);
    let base = g.shrink(base, 2.0);
    let arg = g.expr(2);
    let arg = g.shrink(arg, INPUT_BOUND);
    g.push_scalar("t".into(), 2.0, false, 0.0);
    let comb = g.expr(2);
    let comb = g.shrink(comb, 2.0);
    let src = format!(
        "#[differentiable({HELPER_OPTIONS})]\nfn {name}(x: f64, d: usize) -> f64 {{\n    if d == 0 {{\n        {}\n    }} else {{\n        let t = {name}({}, d - 1);\n        {}\n    }}\n}}\n",
        base.code, arg.code, comb.code
    );
    (
        src,
        Helper {
            name: name.to_string(),
            params: vec![HParam::Scalar, HParam::Usize],
            out_bound: 2.0,
            hessian_bug: false,
        },
    )
}

/// The options of every helper function: main functions calling them from
/// their `_tangent` and `_hvp` need their `_pushforward` and its pullback.
const HELPER_OPTIONS: &str = "forward, hessian";

/// Constructs after which a program is written without `hessian` (only
/// `forward`, so its `_tangent` is still checked, but not its HVPs) because
/// `hessian` does not compile them yet (reproductions in `wip/fwd-bugs/`);
/// `TAPELESS_FUZZ_HUNT=1` writes `hessian` anyway. Empty when all are fixed.
pub const HESSIAN_KNOWN_BUGS: &[&str] = &[];

/// Constructs written only with `TAPELESS_FUZZ_HUNT=1` because they hit a bug
/// not fixed yet (reproductions in `wip/fuzz-bugs/`), so that a default run
/// stays green and keeps checking everything else. Empty when all are fixed.
pub const KNOWN_BUGS: &[&str] = &[];

/// Seed salt for program streams.
pub const PROGRAM_SALT: u64 = 0x005E_ED0F_F00D;

/// The `index`-th program of the batch with seed `seed`.
pub fn program(seed: u64, index: usize, hunt: bool) -> Program {
    let mut rng = Rng::stream(seed, PROGRAM_SALT, index as u64);
    let prefix = format!("p{index}");
    let mut source = String::new();
    let mut helpers = Vec::new();
    let nh = rng.weighted(&[4, 4, 2]);
    for j in 0..nh {
        let (src, h) = helper(&mut rng, &prefix, j, &helpers, hunt);
        source.push_str(&src);
        helpers.push(h);
    }

    // the main function's parameters
    let mut kinds = Vec::new();
    let ns = rng.weighted(&[2, 4, 3, 2]);
    for _ in 0..ns {
        kinds.push(ParamKind::Scalar);
    }
    if rng.chance(0.5) {
        kinds.push(ParamKind::Slice);
        if rng.chance(0.3) {
            kinds.push(ParamKind::Slice);
        }
    }
    if rng.chance(0.2) {
        kinds.push(*rng.pick(&[ParamKind::Array3, ParamKind::ArrayRef3]));
    }
    if rng.chance(0.12) {
        kinds.push(*rng.pick(&[ParamKind::VecOwned, ParamKind::VecRef]));
    }
    if rng.chance(0.1) {
        kinds.push(ParamKind::NoGrad);
    }
    if rng.chance(0.4) {
        kinds.push(ParamKind::Usize);
    }
    if rng.chance(0.15) {
        kinds.push(ParamKind::Bool);
    }
    if !kinds.iter().any(|k| k.active()) {
        kinds.insert(0, ParamKind::Scalar);
    }
    // shuffle a little: parameter order matters for gradient tuples
    for i in (1..kinds.len()).rev() {
        if rng.chance(0.3) {
            let j = rng.below(i + 1);
            kinds.swap(i, j);
        }
    }
    // `#[differentiable(wrt(..))]` leaving one scalar out: it is then inactive
    let scalars: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == ParamKind::Scalar)
        .collect();
    let wrt_drop = if scalars.len() >= 2 && rng.chance(0.15) {
        let i = *rng.pick(&scalars);
        kinds[i] = ParamKind::NoGrad;
        Some(i)
    } else {
        None
    };
    let out = *rng.pick(&[
        OutKind::Scalar,
        OutKind::Scalar,
        OutKind::Scalar,
        OutKind::Scalar,
        OutKind::Scalar,
        OutKind::Array2,
        OutKind::Tuple2,
        OutKind::Vec,
    ]);

    let mut g = Gen::new(&mut rng, helpers);
    g.hunt = hunt;
    g.out = out;
    let mut sig = Vec::new();
    let scalar_names = ["a", "b", "c", "d"];
    let slice_names = ["xs", "ys"];
    let (mut si, mut li) = (0, 0);
    let mut wrt = Vec::new();
    for (pi, k) in kinds.iter().enumerate() {
        let name = match k {
            ParamKind::NoGrad if wrt_drop == Some(pi) => {
                let n = scalar_names[si].to_string();
                si += 1;
                g.push_scalar(n.clone(), INPUT_BOUND, false, 0.0);
                n
            }
            ParamKind::Scalar => {
                let n = scalar_names[si].to_string();
                si += 1;
                g.push_scalar(n.clone(), INPUT_BOUND, false, 0.0);
                n
            }
            ParamKind::NoGrad => {
                g.push_scalar("q".into(), INPUT_BOUND, false, 0.0);
                "q".into()
            }
            ParamKind::Slice => {
                let n = slice_names[li].to_string();
                li += 1;
                g.arrs.push(Arr {
                    name: n.clone(),
                    len: Len::Dyn(format!("{n}.len()"), MAX_LEN),
                    bound: INPUT_BOUND,
                    base: INPUT_BOUND,
                    budget: 0.0,
                    used: 0.0,
                    mutable: false,
                    depth: 0,
                    frozen: false,
                    len_var: None,
                    cols: 0,
                    local: false,
                });
                n
            }
            ParamKind::Array3 | ParamKind::ArrayRef3 => {
                g.arrs.push(Arr {
                    name: "arr".into(),
                    len: Len::Const(3),
                    bound: INPUT_BOUND,
                    base: INPUT_BOUND,
                    budget: 0.0,
                    used: 0.0,
                    mutable: false,
                    depth: 0,
                    frozen: false,
                    len_var: None,
                    cols: 0,
                    local: *k == ParamKind::Array3,
                });
                "arr".into()
            }
            ParamKind::VecOwned | ParamKind::VecRef => {
                g.arrs.push(Arr {
                    name: "vs".into(),
                    len: Len::Dyn("vs.len()".into(), MAX_LEN),
                    bound: INPUT_BOUND,
                    base: INPUT_BOUND,
                    budget: 0.0,
                    used: 0.0,
                    mutable: false,
                    depth: 0,
                    frozen: false,
                    len_var: None,
                    cols: 0,
                    local: *k == ParamKind::VecOwned,
                });
                "vs".into()
            }
            ParamKind::Usize => {
                g.ints.push(IntV {
                    name: "n".into(),
                    max: MAX_INT + 1,
                });
                "n".into()
            }
            ParamKind::Bool => {
                g.flags.push("flag".into());
                "flag".into()
            }
        };
        let attr = if *k == ParamKind::NoGrad && wrt_drop != Some(pi) {
            "#[no_grad] "
        } else {
            ""
        };
        if k.active() {
            wrt.push(name.clone());
        }
        sig.push(format!("{attr}{name}: {}", k.ty()));
    }
    g.budget = g.rng.range(5, 14);
    while g.budget > 0 {
        g.stmt(0);
    }
    let tail = g.tail();
    if out == OutKind::Scalar && g.rng.chance(0.3) {
        // A sum returned right after its loop (the reverse sweep runs inside
        // the loop, "fused"): the tail's terms summed over a few weights.
        // Sometimes through a buffer declared before the loop: written in
        // full before it is read (a scratch buffer, still fused), or read
        // before it is written (it carries values: not fused).
        match g.rng.range(0, 2) {
            0 => {
                g.line("let mut tacc = 0.0;");
                g.line("for tk in 0..3 {");
                g.line(format!("    tacc += ({tail}) * (1.0 + 0.1 * tk as f64);"));
                g.line("}");
            }
            kind => {
                let carried = if kind == 2 { "0.5 * tsb[tst] + " } else { "" };
                g.line("let mut tsb = vec![0.0; 3];");
                g.line("let mut tacc = 0.0;");
                g.line("for tk in 0..3 {");
                g.line("    for tst in 0..3 {");
                // Linear in the tail, about as large as the plain sum: the
                // checker's roundoff estimate assumes no larger amplification.
                g.line(format!(
                    "        tsb[tst] = {carried}({tail}) * (0.2 + 0.05 * (tst + tk) as f64);"
                ));
                g.line("    }");
                g.line("    tacc += tsb[0] + tsb[1] - 0.5 * tsb[2];");
                g.line("}");
            }
        }
        g.line("tacc");
        g.ret_bound *= 3.3;
    } else {
        g.line(tail);
    }
    // forward mode everywhere; the Hessian needs a scalar output, and is left
    // out after a construct of `HESSIAN_KNOWN_BUGS` in any function
    let hessian_bug = g.hessian_bug || g.helpers.iter().any(|h| h.hessian_bug);
    let hessian = out == OutKind::Scalar && has_hessian(index) && (hunt || !hessian_bug);
    if !hessian {
        source = source.replace(
            &format!("#[differentiable({HELPER_OPTIONS})]"),
            "#[differentiable(forward)]",
        );
    }
    let modes = if hessian {
        "forward, hessian"
    } else {
        "forward"
    };
    if wrt_drop.is_some() {
        let _ = writeln!(
            source,
            "#[differentiable(wrt({}), {modes})]",
            wrt.join(", ")
        );
    } else {
        let _ = writeln!(source, "#[differentiable({modes})]");
    }
    let _ = writeln!(source, "fn {prefix}({}) -> {} {{", sig.join(", "), out.ty());
    for l in &g.lines {
        let _ = writeln!(source, "{l}");
    }
    let _ = writeln!(source, "}}");
    Program {
        index,
        name: prefix,
        source,
        params: kinds,
        out,
        hessian,
    }
}

/// Wrappers with a uniform signature over [`Case`](crate)-like inputs:
/// `NAME_call(&Case) -> Vec<f64>`, `NAME_adj(&Case, &[f64]) -> (Vec<f64>,
/// Vec<f64>)`, `NAME_tan(&Case, &[f64]) -> (Vec<f64>, Vec<f64>)` (`_tangent`
/// along a flattened direction) and, for scalar outputs, `NAME_grd(&Case) ->
/// (f64, Vec<f64>)`, `NAME_hv(&Case, &[f64]) -> (f64, Vec<f64>, Vec<f64>)`
/// (`_hvp`) and `NAME_hes(&Case) -> (f64, Vec<f64>, Jacobian)` (`_hessian`).
pub fn wrappers(p: &Program) -> String {
    let mut unpack = String::from("    let mut o = 0;\n");
    let mut args = Vec::new();
    let (mut kf, mut ki, mut kb, mut kl) = (0, 0, 0, 0);
    let mut grads = Vec::new();
    for (j, k) in p.params.iter().enumerate() {
        let v = format!("x{j}");
        match k {
            ParamKind::Scalar => {
                let _ = writeln!(unpack, "    let {v} = c.v[o];\n    o += 1;");
                args.push(v.clone());
            }
            ParamKind::NoGrad => {
                let _ = writeln!(unpack, "    let {v} = c.nf[{kf}];");
                kf += 1;
                args.push(v.clone());
            }
            ParamKind::Slice | ParamKind::VecOwned | ParamKind::VecRef => {
                let _ = writeln!(
                    unpack,
                    "    let {v} = &c.v[o..o + c.lens[{kl}]];\n    o += c.lens[{kl}];"
                );
                kl += 1;
                args.push(match k {
                    ParamKind::Slice => v.clone(),
                    ParamKind::VecOwned => format!("{v}.to_vec()"),
                    _ => format!("&{v}.to_vec()"),
                });
            }
            ParamKind::Array3 | ParamKind::ArrayRef3 => {
                let _ = writeln!(
                    unpack,
                    "    let {v}: [f64; 3] = [c.v[o], c.v[o + 1], c.v[o + 2]];\n    o += 3;"
                );
                args.push(if *k == ParamKind::Array3 {
                    v.clone()
                } else {
                    format!("&{v}")
                });
            }
            ParamKind::Usize => {
                let _ = writeln!(unpack, "    let {v} = c.ni[{ki}];");
                ki += 1;
                args.push(v.clone());
            }
            ParamKind::Bool => {
                let _ = writeln!(unpack, "    let {v} = c.nb[{kb}];");
                kb += 1;
                args.push(v.clone());
            }
        }
        if k.active() {
            grads.push((format!("g{j}"), *k));
        }
    }
    let _ = writeln!(unpack, "    let _ = o;");
    let name = &p.name;
    let args = args.join(", ");
    let flat_out = match p.out {
        OutKind::Scalar => "vec![out]",
        OutKind::Array2 => "out.to_vec()",
        OutKind::Tuple2 => "vec![out.0, out.1]",
        OutKind::Vec => "out",
    };
    let ct = match p.out {
        OutKind::Scalar => "ct[0]",
        OutKind::Array2 => "[ct[0], ct[1]]",
        OutKind::Tuple2 => "(ct[0], ct[1])",
        OutKind::Vec => "ct.to_vec()",
    };
    let names: Vec<&str> = grads.iter().map(|(n, _)| n.as_str()).collect();
    let destructure = if names.len() == 1 {
        format!("let {} = g;", names[0])
    } else {
        format!("let ({}) = g;", names.join(", "))
    };
    let mut flatten = String::from("    let mut grad: Vec<f64> = Vec::new();\n");
    for (n, k) in &grads {
        if *k == ParamKind::Scalar {
            let _ = writeln!(flatten, "    grad.push({n});");
        } else {
            let _ = writeln!(flatten, "    grad.extend_from_slice(&{n});");
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fn {name}_call(c: &Case) -> Vec<f64> {{\n{unpack}    let out = {name}({args});\n    {flat_out}\n}}"
    );
    let _ = writeln!(
        s,
        "fn {name}_adj(c: &Case, ct: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n{unpack}    let (out, g) = {name}_adjoint({args}, {ct});\n    {destructure}\n{flatten}    ({flat_out}, grad)\n}}"
    );
    if p.out == OutKind::Scalar {
        let _ = writeln!(
            s,
            "fn {name}_grd(c: &Case) -> (f64, Vec<f64>) {{\n{unpack}    let (out, g) = {name}_grad({args});\n    {destructure}\n{flatten}    (out, grad)\n}}"
        );
    }
    // a flattened direction `dv` (laid out like `c.v`) as one tangent per
    // active parameter: `f64`, `Vec<f64>` for slices and `Vec`s, `[f64; 3]`
    let mut dirs = String::from("    let mut o = 0;\n");
    let mut dir_args = Vec::new();
    let mut kl = 0;
    for (j, k) in p.params.iter().enumerate() {
        let t = format!("t{j}");
        match k {
            ParamKind::Scalar => {
                let _ = writeln!(dirs, "    let {t} = dv[o];\n    o += 1;");
            }
            ParamKind::Slice | ParamKind::VecOwned | ParamKind::VecRef => {
                let _ = writeln!(
                    dirs,
                    "    let {t} = dv[o..o + c.lens[{kl}]].to_vec();\n    o += c.lens[{kl}];"
                );
                kl += 1;
            }
            ParamKind::Array3 | ParamKind::ArrayRef3 => {
                let _ = writeln!(
                    dirs,
                    "    let {t}: [f64; 3] = [dv[o], dv[o + 1], dv[o + 2]];\n    o += 3;"
                );
            }
            ParamKind::NoGrad | ParamKind::Usize | ParamKind::Bool => continue,
        }
        dir_args.push(t);
    }
    let _ = writeln!(dirs, "    let _ = o;");
    let dir_args = dir_args.join(", ");
    let flat_dt = flat_out.replace("out", "dt");
    let _ = writeln!(
        s,
        "fn {name}_tan(c: &Case, dv: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n{unpack}{dirs}    let (out, dt) = {name}_tangent({args}, {dir_args});\n    ({flat_out}, {flat_dt})\n}}"
    );
    if p.hessian {
        let hv_names: Vec<String> = names.iter().map(|n| format!("h{n}")).collect();
        let hv_destructure = if hv_names.len() == 1 {
            format!("let {} = hv;", hv_names[0])
        } else {
            format!("let ({}) = hv;", hv_names.join(", "))
        };
        let mut flatten_hv = String::from("    let mut hvf: Vec<f64> = Vec::new();\n");
        for ((_, k), n) in grads.iter().zip(&hv_names) {
            if *k == ParamKind::Scalar {
                let _ = writeln!(flatten_hv, "    hvf.push({n});");
            } else {
                let _ = writeln!(flatten_hv, "    hvf.extend_from_slice(&{n});");
            }
        }
        let _ = writeln!(
            s,
            "fn {name}_hv(c: &Case, dv: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {{\n{unpack}{dirs}    let (out, g, hv) = {name}_hvp({args}, {dir_args});\n    {destructure}\n{flatten}    {hv_destructure}\n{flatten_hv}    (out, grad, hvf)\n}}"
        );
        let _ = writeln!(
            s,
            "fn {name}_hes(c: &Case) -> (f64, Vec<f64>, tapeless::Jacobian) {{\n{unpack}    let (out, g, h) = {name}_hessian({args});\n    {destructure}\n{flatten}    (out, grad, h)\n}}"
        );
    }
    s
}

/// Whether program `index` (with a scalar output) is written with `hessian`
/// (one in two: `hessian` more than doubles a function's compile time).
pub fn has_hessian(index: usize) -> bool {
    index % 2 == 0
}

/// Whether program `index` also gets an `f32` twin (one in four).
pub fn has_f32_twin(index: usize) -> bool {
    index % 4 == 1
}

/// The `f32` twin of a program: the same source with every `f64` written
/// `f32`, its functions renamed `q{index}..`, without `forward` and `hessian`
/// (only the reverse mode is compared; this keeps the compile time down).
pub fn f32_twin(p: &Program) -> String {
    let i = p.index;
    p.source
        .replace("#[differentiable(forward, hessian)]", "#[differentiable]")
        .replace("#[differentiable(forward)]", "#[differentiable]")
        .replace("), forward, hessian)]", "))]")
        .replace("), forward)]", "))]")
        .replace(&format!("p{i}_h"), &format!("q{i}_h"))
        .replace(&format!("p{i}("), &format!("q{i}("))
        .replace("f64", "f32")
}

/// `q{index}_adj32(&Case, &[f64]) -> (Vec<f64>, Vec<f64>)`: the twin's
/// `_adjoint` at the inputs rounded to `f32`, results widened to `f64`.
pub fn wrappers_f32(p: &Program) -> String {
    let mut unpack = String::from("    let mut o = 0;\n");
    let mut args = Vec::new();
    let (mut kf, mut ki, mut kb, mut kl) = (0, 0, 0, 0);
    let mut grads = Vec::new();
    for (j, k) in p.params.iter().enumerate() {
        let v = format!("x{j}");
        match k {
            ParamKind::Scalar => {
                let _ = writeln!(unpack, "    let {v} = c.v[o] as f32;\n    o += 1;");
                args.push(v.clone());
            }
            ParamKind::NoGrad => {
                let _ = writeln!(unpack, "    let {v} = c.nf[{kf}] as f32;");
                kf += 1;
                args.push(v.clone());
            }
            ParamKind::Slice | ParamKind::VecOwned | ParamKind::VecRef => {
                let _ = writeln!(
                    unpack,
                    "    let {v}: Vec<f32> = c.v[o..o + c.lens[{kl}]].iter().map(|&t| t as f32).collect();\n    o += c.lens[{kl}];"
                );
                kl += 1;
                args.push(match k {
                    ParamKind::Slice => format!("&{v}"),
                    ParamKind::VecOwned => format!("{v}.clone()"),
                    _ => format!("&{v}"),
                });
            }
            ParamKind::Array3 | ParamKind::ArrayRef3 => {
                let _ = writeln!(
                    unpack,
                    "    let {v}: [f32; 3] = [c.v[o] as f32, c.v[o + 1] as f32, c.v[o + 2] as f32];\n    o += 3;"
                );
                args.push(if *k == ParamKind::Array3 {
                    v.clone()
                } else {
                    format!("&{v}")
                });
            }
            ParamKind::Usize => {
                let _ = writeln!(unpack, "    let {v} = c.ni[{ki}];");
                ki += 1;
                args.push(v.clone());
            }
            ParamKind::Bool => {
                let _ = writeln!(unpack, "    let {v} = c.nb[{kb}];");
                kb += 1;
                args.push(v.clone());
            }
        }
        if k.active() {
            grads.push((format!("g{j}"), *k));
        }
    }
    let _ = writeln!(unpack, "    let _ = o;");
    let i = p.index;
    let args = args.join(", ");
    let flat_out = match p.out {
        OutKind::Scalar => "vec![f64::from(out)]",
        OutKind::Array2 => "out.iter().map(|&t| f64::from(t)).collect()",
        OutKind::Tuple2 => "vec![f64::from(out.0), f64::from(out.1)]",
        OutKind::Vec => "out.iter().map(|&t| f64::from(t)).collect()",
    };
    let ct = match p.out {
        OutKind::Scalar => "ct[0] as f32",
        OutKind::Array2 => "[ct[0] as f32, ct[1] as f32]",
        OutKind::Tuple2 => "(ct[0] as f32, ct[1] as f32)",
        OutKind::Vec => "ct.iter().map(|&t| t as f32).collect()",
    };
    let names: Vec<&str> = grads.iter().map(|(n, _)| n.as_str()).collect();
    let destructure = if names.len() == 1 {
        format!("let {} = g;", names[0])
    } else {
        format!("let ({}) = g;", names.join(", "))
    };
    let mut flatten = String::from("    let mut grad: Vec<f64> = Vec::new();\n");
    for (n, k) in &grads {
        if *k == ParamKind::Scalar {
            let _ = writeln!(flatten, "    grad.push(f64::from({n}));");
        } else {
            let _ = writeln!(
                flatten,
                "    grad.extend({n}.iter().map(|&t| f64::from(t)));"
            );
        }
    }
    format!(
        "fn q{i}_adj32(c: &Case, ct: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n{unpack}    let (out, g) = q{i}_adjoint({args}, {ct});\n    {destructure}\n{flatten}    ({flat_out}, grad)\n}}\n"
    )
}

/// The whole generated file for a batch: programs, wrappers and the table
/// `PROGRAMS: &[Program]` the checker walks.
pub fn batch(seed: u64, n: usize, hunt: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by fuzzgen: seed {seed}, {n} programs, hunt {hunt}.\n"
    );
    let progs: Vec<Program> = (0..n).map(|i| program(seed, i, hunt)).collect();
    for p in &progs {
        let _ = writeln!(s, "// ---- program {}", p.index);
        s.push_str(&p.source);
        s.push_str(&wrappers(p));
        if has_f32_twin(p.index) {
            s.push_str(&f32_twin(p));
            s.push_str(&wrappers_f32(p));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "pub static SEED: u64 = {seed};");
    let _ = writeln!(s, "pub static HUNT: bool = {hunt};");
    let _ = writeln!(s, "pub static PROGRAMS: &[Program] = &[");
    for p in &progs {
        let params: Vec<String> = p
            .params
            .iter()
            .map(|k| format!("ParamKind::{}", k.path()))
            .collect();
        let grd = if p.out == OutKind::Scalar {
            format!("Some({}_grd)", p.name)
        } else {
            "None".into()
        };
        let adj32 = if has_f32_twin(p.index) {
            format!("Some(q{}_adj32)", p.index)
        } else {
            "None".into()
        };
        let (hvp, hes) = if p.hessian {
            (
                format!("Some({}_hv)", p.name),
                format!("Some({}_hes)", p.name),
            )
        } else {
            ("None".into(), "None".into())
        };
        let _ = writeln!(
            s,
            "    Program {{ index: {}, name: \"{}\", source: r#\"{}\"#, params: &[{}], call: {n}_call, adjoint: {n}_adj, grad: {grd}, adjoint32: {adj32}, tangent: Some({n}_tan), hvp: {hvp}, hessian: {hes} }},",
            p.index,
            p.name,
            p.source,
            params.join(", "),
            n = p.name
        );
    }
    let _ = writeln!(s, "];");
    s
}
