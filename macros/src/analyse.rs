//! Phase 3: activity and what the reverse sweep must keep.
//!
//! * *varied*: the value depends on an active parameter through operations
//!   with a derivative (a forward fixpoint, flow-insensitive per variable);
//! * *useful*: the value reaches the output through such operations (a
//!   backward fixpoint); *active* = varied and useful;
//! * *stable*: the variable is still in scope with the same value when the
//!   reverse sweep runs (a parameter or a top-level binding that is never
//!   written again nor moved); anything else the reverse sweep reads is saved
//!   at the point of use, in a local (top block), an `Option` (a branch
//!   outside loops) or a typed stack (inside loops);
//! * which statements have reverse code at all.

use crate::ctxt::Ctxt;
use crate::ir::*;
use crate::rules::{self, Operand, RuleKind};
use std::collections::HashSet;

/// Methods that make or consume iterators.
const ITERATOR_METHODS: &[&str] = &[
    "iter",
    "into_iter",
    "iter_mut",
    "map",
    "sum",
    "product",
    "fold",
    "reduce",
    "zip",
    "enumerate",
    "windows",
    "chunks",
    "filter",
    "rev",
    "copied",
    "cloned",
    "collect",
    "for_each",
    "max_by",
    "min_by",
    "scan",
    "skip",
    "take",
    "step_by",
];

pub struct Analysis {
    pub varied: Vec<bool>,
    pub useful: Vec<bool>,
    /// Statements (by id) with reverse code.
    pub has_rev: HashSet<StmtId>,
    /// Loops with reverse code.
    pub loop_rev: Vec<bool>,
}

impl Analysis {
    pub fn active(&self, v: VarId) -> bool {
        self.varied[v] && self.useful[v]
    }
}

/// The operands of an expression that carry a derivative, with their positions.
pub fn diff_operands(e: &Expr) -> Vec<&Atom> {
    match e {
        Expr::Atom(a)
        | Expr::Neg(a)
        | Expr::Cast(a, _)
        | Expr::Repeat(a, _)
        | Expr::VecRepeat(a, _) => {
            vec![a]
        }
        Expr::Binary(_, a, b) => vec![a, b],
        Expr::Method {
            rule, recv, args, ..
        } => {
            let partials = match &rule.kind {
                RuleKind::Smooth { partials, .. } => partials,
                RuleKind::Identity => return vec![recv],
                RuleKind::Constant => return Vec::new(),
            };
            std::iter::once(recv)
                .chain(args)
                .zip(partials.iter())
                .filter(|(_, p)| p.is_some())
                .map(|(a, _)| a)
                .collect()
        }
        Expr::Call { args, .. } => args.iter().collect(),
        Expr::Tuple(v) | Expr::Array(v) | Expr::VecList(v) => v.iter().collect(),
        Expr::StopGradient(..) | Expr::Opaque { .. } => Vec::new(),
    }
}

fn atom_varied(a: &Atom, varied: &[bool]) -> bool {
    a.var().is_some_and(|v| varied[v])
}

fn expr_varied(e: &Expr, varied: &[bool], body: &Body) -> bool {
    if let Expr::Cast(a, ty) = e {
        return atom_varied(a, varied) && !crate::parse::is_inactive_type(ty);
    }
    let _ = body;
    diff_operands(e).into_iter().any(|a| atom_varied(a, varied))
}

fn pat_vars(p: &Pat, out: &mut Vec<VarId>) {
    match p {
        Pat::Var(v) => out.push(*v),
        Pat::Wild => {}
        Pat::Tuple(ps) => ps.iter().for_each(|p| pat_vars(p, out)),
    }
}

/// Calls `f` on every statement, depth first.
pub fn walk<'b>(stmts: &'b [Stmt], f: &mut impl FnMut(&'b Stmt)) {
    for s in stmts {
        f(s);
        match s {
            Stmt::If { then, els, .. } => {
                walk(&then.stmts, f);
                walk(&els.stmts, f);
            }
            Stmt::Loop { body, .. } => walk(&body.stmts, f),
            _ => {}
        }
    }
}

pub fn analyse(body: &mut Body, cx: &Ctxt) -> Analysis {
    let n = body.vars.len();
    let mut varied: Vec<bool> = body
        .vars
        .iter()
        .map(|v| v.kind == VarKind::Param && !v.inactive_by_type)
        .collect();
    // Forward fixpoint.
    loop {
        let mut changed = false;
        walk(&body.block.stmts, &mut |s| {
            let mut targets = Vec::new();
            let is_varied = match s {
                // `let (a, b) = (x, y)`: element by element.
                Stmt::Let {
                    pat: Pat::Tuple(ps),
                    value: Some(Expr::Tuple(xs)),
                    ..
                } if ps.len() == xs.len() => {
                    for (p, x) in ps.iter().zip(xs) {
                        if atom_varied(x, &varied) {
                            pat_vars(p, &mut targets);
                        }
                    }
                    !targets.is_empty()
                }
                Stmt::Let {
                    pat,
                    value: Some(value),
                    ..
                } => {
                    pat_vars(pat, &mut targets);
                    expr_varied(value, &varied, body)
                }
                Stmt::Assign { place, value, .. } => {
                    targets.push(place.root);
                    expr_varied(value, &varied, body)
                }
                _ => false,
            };
            if is_varied {
                for t in targets {
                    if !varied[t] && !body.vars[t].inactive_by_type {
                        varied[t] = true;
                        changed = true;
                    }
                }
            }
        });
        if !changed {
            break;
        }
    }

    // Backward fixpoint.
    let mut useful = vec![false; n];
    walk(&body.block.stmts, &mut |s| {
        if let Stmt::Tail(a) | Stmt::Return(_, a) = s {
            if let Some(v) = a.var() {
                useful[v] = true;
            }
        }
    });
    loop {
        let mut changed = false;
        walk(&body.block.stmts, &mut |s| {
            let (targets, value) = match s {
                Stmt::Let {
                    pat,
                    value: Some(value),
                    ..
                } => {
                    let mut t = Vec::new();
                    pat_vars(pat, &mut t);
                    (t, value)
                }
                Stmt::Assign { place, value, .. } => (vec![place.root], value),
                _ => return,
            };
            if targets.iter().any(|t| useful[*t]) {
                for a in diff_operands(value) {
                    if let Some(v) = a.var() {
                        if !useful[v] {
                            useful[v] = true;
                            changed = true;
                        }
                    }
                }
            }
        });
        if !changed {
            break;
        }
    }

    // Errors: active values reaching operations without a derivative.
    walk(&body.block.stmts, &mut |s| {
        let value = match s {
            Stmt::Let { value: Some(v), .. } | Stmt::Assign { value: v, .. } => v,
            Stmt::Loop {
                head: LoopHead::For { reads, span, .. },
                ..
            } => {
                if let Some(v) = reads.iter().find(|v| varied[**v]) {
                    cx.error(
                        *span,
                        format!(
                            "iterating over `{}` this way cannot be differentiated; write `for v in {0}.iter()`, `for (i, v) in {0}.iter().enumerate()` or loop over indices",
                            body.vars[*v].name
                        ),
                    );
                }
                return;
            }
            _ => return,
        };
        if let Expr::Opaque {
            expr,
            reads,
            reads_active_ok,
            why,
        } = value
        {
            if *reads_active_ok {
                return;
            }
            let Some(v) = reads.iter().find(|v| varied[**v]) else {
                return;
            };
            let name = &body.vars[*v].name;
            match why {
                OpaqueWhy::NoRule(m) if ITERATOR_METHODS.contains(&m.to_string().as_str()) => cx.error(
                    m.span(),
                    format!(
                        "iterator methods (`{m}`) on values that are differentiated (`{name}`) cannot be differentiated; loop over the elements instead: `for v in {name}.iter() {{ ... }}`"
                    ),
                ),
                OpaqueWhy::NoRule(m) => cx.error(
                    m.span(),
                    format!(
                        "method `{m}` has no derivative rule; use the supported float methods, a `#[differentiable]` helper, or a `#[derivative(of = ..)]` rule (it is applied to `{name}`, which depends on the differentiated inputs)"
                    ),
                ),
                OpaqueWhy::Unknown(span, msg) => cx.error(*span, msg),
                OpaqueWhy::Constant => cx.error_spanned(
                    expr,
                    format!("this expression uses `{name}`, which depends on the differentiated inputs, in a way that has no derivative; compute it from values that are not differentiated, or wrap the value in `tapeless::stop_gradient`"),
                ),
            }
        }
    });

    let mut a = Analysis {
        varied,
        useful,
        has_rev: HashSet::new(),
        loop_rev: vec![false; body.loops.len()],
    };
    let stmts = std::mem::take(&mut body.block.stmts);
    mark_rev(&stmts, &mut a);
    body.block.stmts = stmts;
    a
}

/// Marks statements with reverse code; returns whether any in `stmts` has.
fn mark_rev(stmts: &[Stmt], a: &mut Analysis) -> bool {
    let mut any = false;
    for s in stmts {
        let r = match s {
            Stmt::Let {
                id,
                pat,
                value: Some(value),
                ..
            } => {
                let mut t = Vec::new();
                pat_vars(pat, &mut t);
                let r = t.iter().any(|v| a.active(*v))
                    && diff_operands(value)
                        .iter()
                        .any(|x| x.var().is_some_and(|v| a.active(v)));
                if r {
                    a.has_rev.insert(*id);
                }
                r
            }
            Stmt::Assign {
                id, place, value, ..
            } => {
                let r = a.active(place.root);
                let _ = value;
                if r {
                    a.has_rev.insert(*id);
                }
                r
            }
            Stmt::If { id, then, els, .. } => {
                let t = mark_rev(&then.stmts, a);
                let e = mark_rev(&els.stmts, a);
                if t || e {
                    a.has_rev.insert(*id);
                }
                t || e
            }
            Stmt::Loop { id, lp, body, .. } => {
                let r = mark_rev(&body.stmts, a);
                if r {
                    a.has_rev.insert(*id);
                    a.loop_rev[*lp] = true;
                }
                r
            }
            Stmt::Tail(x) | Stmt::Return(_, x) => x.var().is_some_and(|v| a.active(v)),
            _ => false,
        };
        any |= r;
    }
    any
}

/// What a rule call reads for one operand partial.
pub fn partial_reads(e: &Expr) -> Vec<(usize, &'static [Operand])> {
    let (rule, n): (&rules::Rule, usize) = match e {
        Expr::Binary(op, ..) => (rules::binary(*op), 2),
        Expr::Neg(_) => (&rules::NEG, 1),
        Expr::Cast(..) => (&rules::CAST, 1),
        Expr::Method { rule, args, .. } => (rule, args.len() + 1),
        _ => return Vec::new(),
    };
    let RuleKind::Smooth { partials, .. } = &rule.kind else {
        return Vec::new();
    };
    (0..n)
        .filter_map(|k| {
            partials
                .get(k)
                .and_then(|p| p.as_ref())
                .map(|p| (k, p.reads))
        })
        .collect()
}
