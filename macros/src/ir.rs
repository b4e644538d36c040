//! The IR the body is lowered to: A-normal form (one operation per statement,
//! operands are atoms) with structured control flow.
//!
//! Every node keeps the syntax it came from (`span`, the original `syn` nodes
//! where they are emitted unchanged), so errors found by later phases point at
//! the user's code.

use proc_macro2::{Ident, Span, TokenStream};

/// Index of a variable in [`Body::vars`].
pub type VarId = usize;
/// Index of a statement that saves values for the reverse sweep.
pub type StmtId = usize;
/// Index of a loop in [`Body::loops`].
pub type LoopId = usize;
/// Index of an exit point (`break`, `continue`, `return`).
pub type ExitId = usize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// A function parameter.
    Param,
    /// A binding the user wrote.
    User,
    /// A temporary made by lowering.
    Temp,
}

#[derive(Clone, Debug)]
pub struct Var {
    /// The name used in generated code (unique within the function).
    pub name: Ident,
    pub kind: VarKind,
    /// Declared inside a loop body or branch (not in the function's top block).
    pub region: RegionId,
    /// The variable is written after its definition (assignment, compound
    /// assignment, index write), or may be moved by value.
    pub reassigned: bool,
    /// Inactive because of its declared type (integers, bools, `#[no_grad]`).
    pub inactive_by_type: bool,
    /// A parameter whose declared type is `Copy` (a float, an integer, a
    /// reference): operators copy it instead of moving it.
    pub copy: bool,
}

/// Regions are blocks whose values go out of scope before the reverse sweep
/// unless they are the function's top block without early returns.
pub type RegionId = usize;

#[derive(Clone, Debug)]
pub struct Region {
    /// Number of loops around this region.
    pub loop_depth: usize,
    /// The loops around this region, outermost first.
    pub loops: Vec<LoopId>,
}

/// A read of a variable or of a place inside it: `x`, `x[i]`, `self.w[i][j]`,
/// optionally behind `&` / `*`.
#[derive(Clone, Debug)]
pub struct Place {
    pub root: VarId,
    pub proj: Vec<Proj>,
    /// `&` / `*` applied outside the place (identity for derivatives).
    pub wrap: Vec<Wrap>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Proj {
    Field(syn::Member),
    /// An index; always an inactive value.
    Index(Atom),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrap {
    Ref,
    Deref,
}

#[derive(Clone, Debug)]
pub enum Atom {
    Place(Place),
    Lit(syn::Lit),
    /// An inactive expression the macro does not need to look into
    /// (constants, paths to items, `usize::MAX`), emitted unchanged.
    Const(TokenStream),
}

impl Atom {
    pub fn var(&self) -> Option<VarId> {
        match self {
            Atom::Place(p) => Some(p.root),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Debug)]
pub enum Expr {
    Atom(Atom),
    Binary(BinOp, Atom, Atom),
    Neg(Atom),
    /// A call of a scalar/tensor method that has a derivative rule (or is
    /// constant: `floor`, `len`, ...). `path_form` keeps `f64::sin(x)` spelling.
    Method {
        rule: &'static crate::rules::Rule,
        recv: Atom,
        args: Vec<Atom>,
        name: Ident,
        path_form: Option<syn::Path>,
    },
    /// A call of another differentiable function or method (through its pullback).
    Call {
        callee: Callee,
        args: Vec<Atom>,
        span: Span,
    },
    /// `x as T`.
    Cast(Atom, Box<syn::Type>),
    Tuple(Vec<Atom>),
    Array(Vec<Atom>),
    /// `[x; N]`
    Repeat(Atom, Box<syn::Expr>),
    /// `vec![a, b, c]`
    VecList(Vec<Atom>),
    /// `vec![x; n]`
    VecRepeat(Atom, Atom),
    /// `tapeless::stop_gradient(x)`: the value with a zero derivative.
    StopGradient(Atom, syn::Path),
    /// An expression with no derivative: comparisons, boolean logic, integer
    /// code, calls with only inactive arguments. It may read active values
    /// only when `reads_active_ok` (comparisons and `len()` do).
    Opaque {
        expr: Box<syn::Expr>,
        reads: Vec<VarId>,
        reads_active_ok: bool,
        /// What to tell the user when an active value reaches it.
        why: OpaqueWhy,
    },
}

#[derive(Clone, Debug)]
pub enum OpaqueWhy {
    /// Has no derivative (result is constant).
    Constant,
    /// An unknown method on an active value.
    NoRule(Ident),
    /// A call of a function or macro the macro cannot see into.
    Unknown(Span, String),
}

#[derive(Clone, Debug)]
pub enum Callee {
    /// `g(args)` / `module::g(args)`: calls `..::g_pullback`.
    Path(syn::Path),
    /// `recv.g(args)`: calls `recv.g_pullback(args)`; the receiver is `args[0]`.
    Method(Ident),
}

/// A binding pattern of a `let`: a name or a tuple of patterns.
#[derive(Clone, Debug)]
pub enum Pat {
    Var(VarId),
    Wild,
    Tuple(Vec<Pat>),
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub region: RegionId,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    /// `let pat (: ty)? = value;` (`value` `None`: `let x;`)
    Let {
        id: StmtId,
        pat: Pat,
        mutable: bool,
        ty: Option<Box<syn::Type>>,
        value: Option<Expr>,
        span: Span,
    },
    /// `place = value;` or `place op= value` (then `value` is `Binary(op, place, rhs)`).
    Assign {
        id: StmtId,
        place: Place,
        value: Expr,
        compound: Option<BinOp>,
        span: Span,
    },
    If {
        id: StmtId,
        cond: Atom,
        then: Block,
        els: Block,
    },
    Loop {
        id: StmtId,
        lp: LoopId,
        head: LoopHead,
        body: Block,
        label: Option<syn::Lifetime>,
    },
    Break(ExitId, LoopId),
    Continue(ExitId, LoopId),
    Return(ExitId, Atom),
    /// The value of the function's top block (its tail expression).
    Tail(Atom),
    /// An inactive statement emitted unchanged (`println!`, `assert!`).
    Opaque(TokenStream),
}

#[derive(Clone, Debug)]
pub enum LoopHead {
    /// `for pat in iter`: `iter` is inactive; `pat` binds inactive variables.
    For {
        pat: TokenStream,
        iter: Box<syn::Expr>,
        /// Variables the iterator expression reads (must be inactive).
        reads: Vec<VarId>,
        /// `iter` is `0..x.len()` made from `x.iter()`: its size is known.
        span: Span,
    },
    /// `loop` (a `while` is a `loop` whose body starts with `if !cond { break }`).
    Loop,
}

#[derive(Clone, Debug)]
pub enum ExitKind {
    Break,
    Continue,
    Return,
}

#[derive(Clone, Debug)]
pub struct Exit {
    pub kind: ExitKind,
    /// The loop a `break`/`continue` leaves; `None` for `return`.
    pub target: Option<LoopId>,
    /// The loops around the exit point, outermost first.
    pub loops: Vec<LoopId>,
}

#[derive(Clone, Debug, Default)]
pub struct LoopInfo {
    pub has_break: bool,
    pub has_continue: bool,
    /// Loops around this loop, outermost first.
    pub outer: Vec<LoopId>,
}

/// The whole lowered function body.
pub struct Body {
    pub vars: Vec<Var>,
    pub regions: Vec<Region>,
    pub loops: Vec<LoopInfo>,
    pub exits: Vec<Exit>,
    pub block: Block,
    /// `return` appears before the end (the top block is then a labeled block).
    pub has_return: bool,
}

impl Body {
    /// A `break`/`continue` inside a loop nested in `lp` targets `lp`: the
    /// loop needs a label.
    pub fn has_inner_exit(&self, lp: LoopId) -> bool {
        self.exits
            .iter()
            .any(|e| e.target == Some(lp) && e.loops.last() != Some(&lp))
    }
}
