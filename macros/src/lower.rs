//! Phase 2: the function body to the IR in A-normal form.
//!
//! Each nested expression becomes a `let __tN = op(atoms);`, shadowed bindings
//! are renamed (`x`, `x_1`, ...) so that every variable has one name in the
//! whole generated function, `while` becomes `loop` with a conditional
//! `break`, `match` on inactive values becomes an `if` chain, `for` over a
//! slice becomes a loop over indices, and `let x = if ..` becomes `let x;`
//! assigned in each branch.
//!
//! Before / after (`lower`):
//! ```text
//! let y = (w * x - 10.0).powi(2);     let __t0 = w * x;
//!                                      let __t1 = __t0 - 10.0;
//!                                      let y = __t1.powi(2);
//! ```

use crate::ctxt::Ctxt;
use crate::ir::*;
use crate::parse::{is_inactive_type, Signature};
use crate::rules::{self, RuleKind};
use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};
use std::collections::{HashMap, HashSet};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;

pub struct Lower<'a> {
    cx: &'a Ctxt,
    vars: Vec<Var>,
    regions: Vec<Region>,
    loops: Vec<LoopInfo>,
    exits: Vec<Exit>,
    scopes: Vec<HashMap<String, VarId>>,
    /// Every identifier in the source, so generated names never collide.
    taken: HashSet<String>,
    /// Loops being lowered, innermost last, with their labels.
    loop_stack: Vec<(LoopId, Option<String>)>,
    region: RegionId,
    /// Parameters of reference type (`x: &[f64]`).
    ref_params: HashSet<String>,
    n_stmts: usize,
    n_temps: usize,
    has_return: bool,
}

fn collect_idents(ts: TokenStream, out: &mut HashSet<String>) {
    for t in ts {
        match t {
            TokenTree::Ident(i) => {
                out.insert(i.to_string());
            }
            TokenTree::Group(g) => collect_idents(g.stream(), out),
            _ => {}
        }
    }
}

pub fn lower(func: &syn::ItemFn, sig: &Signature, cx: &Ctxt) -> Body {
    let mut taken = HashSet::new();
    collect_idents(func.to_token_stream(), &mut taken);
    let mut l = Lower {
        cx,
        vars: Vec::new(),
        regions: vec![Region {
            loop_depth: 0,
            loops: Vec::new(),
        }],
        loops: Vec::new(),
        exits: Vec::new(),
        scopes: vec![HashMap::new()],
        taken,
        loop_stack: Vec::new(),
        region: 0,
        ref_params: sig
            .params
            .iter()
            .filter(|p| matches!(p.ty, syn::Type::Reference(_)))
            .map(|p| p.name.to_string())
            .collect(),
        n_stmts: 0,
        n_temps: 0,
        has_return: false,
    };
    for p in &sig.params {
        let id = l.vars.len();
        l.vars.push(Var {
            name: p.name.clone(),
            kind: VarKind::Param,
            region: 0,
            reassigned: false,
            inactive_by_type: !p.active,
            copy: crate::parse::is_copy_type(&p.ty),
        });
        l.scopes[0].insert(p.name.to_string(), id);
    }
    let mut stmts = Vec::new();
    let tail = l.block_inline(&func.block, &mut stmts, true);
    match tail {
        Some(Tail::Value(a)) => {
            let a = l.bare(a, &mut stmts);
            stmts.push(Stmt::Tail(a))
        }
        Some(Tail::Diverges) => {}
        // No tail: rustc reports the missing value on the original function.
        None => {}
    }
    // A trailing `return x;` is the tail value.
    if let Some(Stmt::Return(..)) = stmts.last() {
        if let Some(Stmt::Return(e, a)) = stmts.pop() {
            l.exits[e].kind = ExitKind::Break; // no longer an exit
            stmts.push(Stmt::Tail(a));
        }
    }
    let has_return = contains_return(&stmts);
    Body {
        vars: l.vars,
        regions: l.regions,
        loops: l.loops,
        exits: l.exits,
        block: Block { stmts, region: 0 },
        has_return,
    }
}

fn contains_return(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Return(..) => true,
        Stmt::If { then, els, .. } => contains_return(&then.stmts) || contains_return(&els.stmts),
        Stmt::Loop { body, .. } => contains_return(&body.stmts),
        _ => false,
    })
}

/// What a block's tail gives.
enum Tail {
    Value(Atom),
    /// The block ends in `return`/`break`/`continue`.
    Diverges,
}

impl<'a> Lower<'a> {
    // ---------------------------------------------------------------- names

    fn fresh_name(&mut self, base: &str) -> Ident {
        let base = base.trim_start_matches("r#");
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        Ident::new(&name, Span::call_site())
    }

    fn new_var(&mut self, name: Ident, kind: VarKind) -> VarId {
        let id = self.vars.len();
        self.vars.push(Var {
            name,
            kind,
            region: self.region,
            reassigned: false,
            inactive_by_type: false,
            copy: false,
        });
        id
    }

    fn temp(&mut self) -> VarId {
        let name = loop {
            let n = format!("__t{}", self.n_temps);
            self.n_temps += 1;
            if !self.taken.contains(&n) {
                break n;
            }
        };
        self.taken.insert(name.clone());
        self.new_var(Ident::new(&name, Span::call_site()), VarKind::Temp)
    }

    /// Binds a user name in the current scope; renames it if the name is
    /// already used anywhere in the function.
    fn bind(&mut self, ident: &Ident) -> VarId {
        let src = ident.to_string();
        let already = self.vars.iter().any(|v| v.name == src)
            || self.scopes.iter().any(|s| s.contains_key(&src));
        let name = if already {
            let mut n = self.fresh_name(&src);
            n.set_span(ident.span());
            n
        } else {
            Ident::new(&src, ident.span())
        };
        let id = self.new_var(name, VarKind::User);
        self.scopes.last_mut().unwrap().insert(src, id);
        id
    }

    fn lookup(&self, name: &str) -> Option<VarId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn stmt_id(&mut self) -> StmtId {
        self.n_stmts += 1;
        self.n_stmts - 1
    }

    fn new_region(&mut self) -> RegionId {
        let loops: Vec<LoopId> = self.loop_stack.iter().map(|(l, _)| *l).collect();
        self.regions.push(Region {
            loop_depth: loops.len(),
            loops,
        });
        self.regions.len() - 1
    }

    // --------------------------------------------------------------- blocks

    /// Lowers a block into `out` (same region, new scope); returns its tail.
    /// Where the block's value is not used (`value == false`: loop bodies,
    /// statement `if`s) its last expression is a statement.
    fn block_inline(
        &mut self,
        block: &syn::Block,
        out: &mut Vec<Stmt>,
        value: bool,
    ) -> Option<Tail> {
        self.scopes.push(HashMap::new());
        let mut tail = None;
        let n = block.stmts.len();
        for (i, stmt) in block.stmts.iter().enumerate() {
            let last = i + 1 == n;
            match stmt {
                syn::Stmt::Expr(e, None) if last && value => {
                    tail = Some(self.tail_expr(e, out));
                }
                _ => self.stmt(stmt, out),
            }
        }
        self.scopes.pop();
        tail
    }

    /// Lowers a block into a new region.
    fn block_region(&mut self, block: &syn::Block, value: bool) -> (Block, Option<Tail>) {
        let saved = self.region;
        self.region = self.new_region();
        let mut stmts = Vec::new();
        let tail = self.block_inline(block, &mut stmts, value);
        let b = Block {
            stmts,
            region: self.region,
        };
        self.region = saved;
        (b, tail)
    }

    fn tail_expr(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> Tail {
        match e {
            syn::Expr::Return(_) | syn::Expr::Break(_) | syn::Expr::Continue(_) => {
                self.stmt_expr(e, out);
                Tail::Diverges
            }
            syn::Expr::If(_) | syn::Expr::Match(_) if is_unit_block_expr(e) => {
                self.stmt_expr(e, out);
                Tail::Value(Atom::Const(quote!(())))
            }
            syn::Expr::ForLoop(_) | syn::Expr::While(_) => {
                self.stmt_expr(e, out);
                Tail::Value(Atom::Const(quote!(())))
            }
            _ => Tail::Value(self.atom(e, out)),
        }
    }

    // ----------------------------------------------------------- statements

    fn stmt(&mut self, stmt: &syn::Stmt, out: &mut Vec<Stmt>) {
        match stmt {
            syn::Stmt::Local(local) => self.local(local, out),
            syn::Stmt::Item(item) => {
                self.cx.error_spanned(
                    item,
                    "items inside a differentiable function are not supported; move the item outside the function",
                );
            }
            syn::Stmt::Expr(e, _) => self.stmt_expr(e, out),
            syn::Stmt::Macro(m) => self.stmt_macro(&m.mac, out),
        }
    }

    fn stmt_macro(&mut self, mac: &syn::Macro, out: &mut Vec<Stmt>) {
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        const INERT: &[&str] = &[
            "println",
            "eprintln",
            "print",
            "eprint",
            "assert",
            "assert_eq",
            "assert_ne",
            "debug_assert",
            "debug_assert_eq",
            "debug_assert_ne",
            "panic",
            "unreachable",
            "todo",
            "unimplemented",
            "dbg",
        ];
        if INERT.contains(&name.as_str()) {
            let mut mac = mac.clone();
            mac.tokens = self.rename_tokens(mac.tokens.clone(), &mut Vec::new());
            out.push(Stmt::Opaque(quote!(#mac;)));
        } else {
            self.cx.error_spanned(
                mac,
                format!("macro `{name}!` cannot be differentiated; write its expansion, or move it into a function that is not differentiated"),
            );
        }
    }

    fn local(&mut self, local: &syn::Local, out: &mut Vec<Stmt>) {
        if let Some(init) = &local.init {
            if let Some((_, diverge)) = &init.diverge {
                self.cx.error_spanned(
                    diverge,
                    "`let ... else` is not supported in differentiable functions; use `match` on an inactive value or an `if`",
                );
                return;
            }
        }
        let (pat, ty) = match &local.pat {
            syn::Pat::Type(pt) => (&*pt.pat, Some(pt.ty.clone())),
            p => (p, None),
        };
        let mutable = matches!(pat, syn::Pat::Ident(pi) if pi.mutability.is_some());
        let inactive_ty = ty.as_deref().is_some_and(is_inactive_type);
        let span = local.span();
        // The value is lowered before the names are bound (`let x = x + 1.0`).
        let value = local
            .init
            .as_ref()
            .map(|init| self.rhs_for_let(&init.expr, out));
        // `let a = if a < 1.0 { .. } else { .. }`: the branches are lowered
        // after the binding, but must still read the shadowed `a`.
        let shadowed = match (pat, &value) {
            (syn::Pat::Ident(pi), Some(LetValue::Deferred(_))) => {
                let name = pi.ident.to_string();
                Some((name.clone(), self.lookup(&name)))
            }
            _ => None,
        };
        // `let (a, b) = if .. { (..) } else { (..) }`: the branches fill a
        // temporary (reading the names as they were), then it is destructured.
        let value = match value {
            Some(LetValue::Deferred(branches)) if !matches!(pat, syn::Pat::Ident(_)) => {
                let t = self.temp();
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(t),
                    mutable: false,
                    ty: ty.clone(),
                    value: None,
                    span,
                });
                self.fill_deferred(t, branches, out);
                Some(LetValue::Expr(Expr::Atom(Atom::Place(Place {
                    root: t,
                    proj: Vec::new(),
                    wrap: Vec::new(),
                    span,
                }))))
            }
            v => v,
        };
        // `let (mut a, b) = v`: the IR's tuple patterns have no `mut`; bind
        // `v` to a temporary and each name to its field.
        if matches!(pat, syn::Pat::Tuple(_)) && pat_has_mut(pat) {
            if let Some(LetValue::Expr(v)) = value {
                let t = self.temp();
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(t),
                    mutable: false,
                    ty,
                    value: Some(v),
                    span,
                });
                self.destructure(pat, t, Vec::new(), span, out);
                return;
            }
        }
        let Some(ir_pat) = self.pattern(pat) else {
            return;
        };
        if inactive_ty {
            if let Pat::Var(v) = &ir_pat {
                self.vars[*v].inactive_by_type = true;
            }
        }
        match value {
            Some(LetValue::Expr(value)) => {
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: ir_pat,
                    mutable,
                    ty,
                    value: Some(value),
                    span,
                });
            }
            Some(LetValue::Deferred(branches)) => {
                let Pat::Var(v) = ir_pat else {
                    self.cx.error_spanned(
                        pat,
                        "destructuring the value of an `if`/`match` is not supported; bind it to one name first",
                    );
                    return;
                };
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(v),
                    mutable,
                    ty,
                    value: None,
                    span,
                });
                if let Some((name, prev)) = &shadowed {
                    let scope = self.scopes.last_mut().unwrap();
                    match prev {
                        Some(p) => scope.insert(name.clone(), *p),
                        None => scope.remove(name),
                    };
                }
                self.fill_deferred(v, branches, out);
                if let Some((name, _)) = shadowed {
                    self.scopes.last_mut().unwrap().insert(name, v);
                }
            }
            None => {
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: ir_pat,
                    mutable,
                    ty,
                    value: None,
                    span,
                });
            }
        }
    }

    /// `let <pat> = t.<proj>` for a tuple pattern, one `let` per name.
    fn destructure(
        &mut self,
        pat: &syn::Pat,
        t: VarId,
        proj: Vec<Proj>,
        span: Span,
        out: &mut Vec<Stmt>,
    ) {
        match pat {
            syn::Pat::Tuple(tp) => {
                for (k, p) in tp.elems.iter().enumerate() {
                    let mut pr = proj.clone();
                    pr.push(Proj::Field(syn::Member::Unnamed(syn::Index::from(k))));
                    self.destructure(p, t, pr, span, out);
                }
            }
            syn::Pat::Paren(p) => self.destructure(&p.pat, t, proj, span, out),
            syn::Pat::Wild(_) => {}
            other => {
                let mutable = matches!(other, syn::Pat::Ident(pi) if pi.mutability.is_some());
                let Some(ir_pat) = self.pattern(other) else {
                    return;
                };
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: ir_pat,
                    mutable,
                    ty: None,
                    value: Some(Expr::Atom(Atom::Place(Place {
                        root: t,
                        proj,
                        wrap: Vec::new(),
                        span,
                    }))),
                    span,
                });
            }
        }
    }

    fn pattern(&mut self, pat: &syn::Pat) -> Option<Pat> {
        match pat {
            syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                Some(Pat::Var(self.bind(&pi.ident)))
            }
            syn::Pat::Wild(_) => Some(Pat::Wild),
            syn::Pat::Tuple(t) => {
                let mut v = Vec::new();
                for p in &t.elems {
                    v.push(self.pattern(p)?);
                }
                Some(Pat::Tuple(v))
            }
            syn::Pat::Paren(p) => self.pattern(&p.pat),
            other => {
                self.cx.error_spanned(
                    other,
                    "this pattern is not supported in differentiable functions; bind a name or a tuple of names",
                );
                None
            }
        }
    }

    fn stmt_expr(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) {
        match e {
            syn::Expr::Assign(a) => {
                let Some(place) = self.assign_target(&a.left, out) else {
                    return;
                };
                let value = self.rhs(&a.right, out);
                self.vars[place.root].reassigned = true;
                let id = self.stmt_id();
                out.push(Stmt::Assign {
                    id,
                    place,
                    value,
                    compound: None,
                    span: e.span(),
                });
            }
            syn::Expr::Binary(b) if compound_op(&b.op).is_some() => {
                let op = compound_op(&b.op).unwrap();
                let rhs = self.atom(&b.right, out);
                let Some(place) = self.assign_target(&b.left, out) else {
                    return;
                };
                self.vars[place.root].reassigned = true;
                let id = self.stmt_id();
                let mut read = place.clone();
                read.wrap.clear();
                out.push(Stmt::Assign {
                    id,
                    value: Expr::Binary(op, Atom::Place(read), rhs),
                    place,
                    compound: Some(op),
                    span: e.span(),
                });
            }
            syn::Expr::Binary(b) if is_other_compound(&b.op) => {
                // `n |= 1`, `k %= m`: integer code, `place = place op rhs`
                // with no derivative (an error if it touches active values).
                let Some(place) = self.assign_target(&b.left, out) else {
                    return;
                };
                self.vars[place.root].reassigned = true;
                let op = plain_op(&b.op);
                let (l, r) = (&b.left, &b.right);
                let e2: syn::Expr = syn::parse_quote_spanned!(b.op.span()=> #l #op #r);
                let why = OpaqueWhy::Unknown(
                    b.op.span(),
                    format!("the `{}` operator has no derivative; use `+=`, `-=`, `*=` or `/=` on values that are differentiated", b.op.to_token_stream()),
                );
                let value = self.opaque(&e2, false, why);
                let id = self.stmt_id();
                out.push(Stmt::Assign {
                    id,
                    place,
                    value,
                    compound: None,
                    span: e.span(),
                });
            }
            syn::Expr::If(i) => self.if_stmt(i, None, out),
            syn::Expr::Match(m) => self.match_expr(m, None, out),
            syn::Expr::ForLoop(f) => self.for_loop(f, out),
            syn::Expr::While(w) => self.while_loop(w, out),
            syn::Expr::Loop(l) => self.loop_expr(l, out),
            syn::Expr::Block(b) if b.label.is_none() => {
                if let Some(Tail::Value(a)) = self.block_inline(&b.block, out, false) {
                    self.discard(a, out);
                }
            }
            syn::Expr::Unsafe(u) => {
                self.cx.error_spanned(u.unsafe_token, "`unsafe` blocks cannot be differentiated; move the unsafe code into a function with a `#[derivative]`");
            }
            syn::Expr::Return(r) => {
                let atom = match &r.expr {
                    Some(v) => {
                        let a = self.atom(v, out);
                        self.bare(a, out)
                    }
                    None => {
                        self.cx
                            .error_spanned(r, "`return` needs the function's value");
                        return;
                    }
                };
                let loops = self.loop_stack.iter().map(|(l, _)| *l).collect();
                let e = self.exits.len();
                self.exits.push(Exit {
                    kind: ExitKind::Return,
                    target: None,
                    loops,
                });
                self.has_return = true;
                out.push(Stmt::Return(e, atom));
            }
            syn::Expr::Break(b) => {
                if let Some(v) = &b.expr {
                    self.cx.error_spanned(v, "`break` with a value is not supported in differentiable functions; assign the value to a variable declared before the loop");
                    return;
                }
                if let Some(lp) = self.exit_target(b.label.as_ref(), e) {
                    self.loops[lp].has_break = true;
                    let ex = self.push_exit(ExitKind::Break, lp);
                    out.push(Stmt::Break(ex, lp));
                }
            }
            syn::Expr::Continue(c) => {
                if let Some(lp) = self.exit_target(c.label.as_ref(), e) {
                    self.loops[lp].has_continue = true;
                    let ex = self.push_exit(ExitKind::Continue, lp);
                    out.push(Stmt::Continue(ex, lp));
                }
            }
            syn::Expr::Macro(m) => self.stmt_macro(&m.mac, out),
            syn::Expr::Paren(p) => self.stmt_expr(&p.expr, out),
            _ => {
                let a = self.atom(e, out);
                self.discard(a, out);
            }
        }
    }

    /// An expression statement's value is dropped: nothing to differentiate.
    fn discard(&mut self, _a: Atom, _out: &mut [Stmt]) {}

    fn push_exit(&mut self, kind: ExitKind, target: LoopId) -> ExitId {
        let loops = self.loop_stack.iter().map(|(l, _)| *l).collect();
        self.exits.push(Exit {
            kind,
            target: Some(target),
            loops,
        });
        self.exits.len() - 1
    }

    fn exit_target(&mut self, label: Option<&syn::Lifetime>, e: &syn::Expr) -> Option<LoopId> {
        match label {
            None => match self.loop_stack.last() {
                Some((l, _)) => Some(*l),
                None => {
                    self.cx
                        .error_spanned(e, "`break`/`continue` outside a loop");
                    None
                }
            },
            Some(lt) => {
                let name = lt.ident.to_string();
                match self
                    .loop_stack
                    .iter()
                    .rev()
                    .find(|(_, l)| l.as_deref() == Some(&name))
                {
                    Some((l, _)) => Some(*l),
                    None => {
                        self.cx
                            .error_spanned(lt, format!("no loop labeled `'{name}` around this"));
                        None
                    }
                }
            }
        }
    }

    fn assign_target(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> Option<Place> {
        match self.place(e, out, true) {
            Some(p) if p.wrap.is_empty() => {
                if self.vars[p.root].kind == VarKind::Param && p.root_is_receiver(self) {
                    self.cx.error_spanned(e, "fields of `self` cannot be assigned in a differentiable method; build and return a new value instead");
                    return None;
                }
                Some(p)
            }
            Some(_) => {
                self.cx.error_spanned(e, "assignment through `*` cannot be differentiated; assign to a local variable or an element `x[i]`");
                None
            }
            None => {
                self.cx.error_spanned(e, "only local variables and their elements (`x`, `x[i]`, `x.0`) can be assigned in a differentiable function");
                None
            }
        }
    }

    // --------------------------------------------------------- control flow

    fn cond_atom(&mut self, cond: &syn::Expr, out: &mut Vec<Stmt>) -> Atom {
        if let syn::Expr::Let(l) = cond {
            self.cx.error_spanned(l, "`if let` is not supported in differentiable functions; test the value with `match` arms without bindings, or an `if` on a comparison");
            return Atom::Const(quote!(false));
        }
        self.atom(cond, out)
    }

    /// `if` as a statement (`target` `None`) or assigning its value to `target`.
    fn if_stmt(&mut self, i: &syn::ExprIf, target: Option<VarId>, out: &mut Vec<Stmt>) {
        let cond = self.cond_atom(&i.cond, out);
        let (mut then, tail) = self.block_region(&i.then_branch, target.is_some());
        self.assign_tail(target, tail, &mut then, i.then_branch.span());
        let els = match &i.else_branch {
            None => {
                if target.is_some() {
                    self.cx
                        .error_spanned(i, "an `if` used as a value needs an `else`");
                }
                Block {
                    stmts: Vec::new(),
                    region: self.new_region(),
                }
            }
            Some((_, e)) => {
                let saved = self.region;
                self.region = self.new_region();
                let mut stmts = Vec::new();
                let span = e.span();
                let tail = match &**e {
                    syn::Expr::Block(b) => {
                        self.block_inline(&b.block, &mut stmts, target.is_some())
                    }
                    syn::Expr::If(ei) => {
                        self.if_stmt(ei, target, &mut stmts);
                        None
                    }
                    other if target.is_some() => Some(self.tail_expr(other, &mut stmts)),
                    other => {
                        self.stmt_expr(other, &mut stmts);
                        None
                    }
                };
                let mut b = Block {
                    stmts,
                    region: self.region,
                };
                self.region = saved;
                if !matches!(&**e, syn::Expr::If(_)) {
                    self.assign_tail(target, tail, &mut b, span);
                }
                b
            }
        };
        let id = self.stmt_id();
        out.push(Stmt::If {
            id,
            cond,
            then,
            els,
        });
    }

    fn assign_tail(
        &mut self,
        target: Option<VarId>,
        tail: Option<Tail>,
        block: &mut Block,
        span: Span,
    ) {
        match (target, tail) {
            (Some(v), Some(Tail::Value(a))) => {
                let id = self.stmt_id();
                self.vars[v].reassigned = true;
                block.stmts.push(Stmt::Assign {
                    id,
                    place: Place {
                        root: v,
                        proj: Vec::new(),
                        wrap: Vec::new(),
                        span,
                    },
                    value: Expr::Atom(a),
                    compound: None,
                    span,
                });
            }
            (Some(_), None) => {
                self.cx
                    .error(span, "this branch gives no value; end it with the value");
            }
            _ => {}
        }
    }

    fn match_expr(&mut self, m: &syn::ExprMatch, target: Option<VarId>, out: &mut Vec<Stmt>) {
        // `match s { p1 => a, p2 if g => b, _ => c }` becomes
        // `if matches!(s, p1) { a } else if matches!(s, p2) && g { b } else { c }`.
        let scrut = self.atom(&m.expr, out);
        let scrut_tokens = match &scrut {
            Atom::Place(p) => {
                let mut p = p.clone();
                p.wrap.clear();
                crate::emit_place_read(&self.vars, &p)
            }
            other => quote!(#other),
        };
        for arm in &m.arms {
            if pat_binds(&arm.pat) {
                self.cx.error_spanned(&arm.pat, "`match` arms that bind variables are not supported in differentiable functions; match on an inactive value with literal patterns, or use `if`");
                return;
            }
        }
        self.match_arms(&m.arms, &scrut_tokens, target, out, m.span());
    }

    fn match_arms(
        &mut self,
        arms: &[syn::Arm],
        scrut: &TokenStream,
        target: Option<VarId>,
        out: &mut Vec<Stmt>,
        span: Span,
    ) {
        let Some((arm, rest)) = arms.split_first() else {
            if target.is_some() {
                self.cx
                    .error(span, "`match` without arms cannot be a value");
            }
            return;
        };
        let pat = &arm.pat;
        let is_catch_all = matches!(pat, syn::Pat::Wild(_)) && arm.guard.is_none();
        let arm_block = |l: &mut Self, body: &syn::Expr| -> Block {
            let saved = l.region;
            l.region = l.new_region();
            let mut stmts = Vec::new();
            let tail = match body {
                syn::Expr::Block(b) if b.label.is_none() => {
                    l.block_inline(&b.block, &mut stmts, target.is_some())
                }
                other if target.is_some() => Some(l.tail_expr(other, &mut stmts)),
                other => {
                    l.stmt_expr(other, &mut stmts);
                    None
                }
            };
            let mut b = Block {
                stmts,
                region: l.region,
            };
            l.region = saved;
            l.assign_tail(target, tail, &mut b, body.span());
            b
        };
        if is_catch_all || rest.is_empty() {
            // The last arm (or `_`) runs unconditionally.
            let b = arm_block(self, &arm.body);
            out.extend(b.stmts);
            return;
        }
        let mut test: syn::Expr =
            syn::parse_quote_spanned!(pat.span()=> ::core::matches!(#scrut, #pat));
        if let Some((_, g)) = &arm.guard {
            test = syn::parse_quote!(#test && (#g));
        }
        let cond = self.atom(&test, out);
        let then = arm_block(self, &arm.body);
        let saved = self.region;
        self.region = self.new_region();
        let mut stmts = Vec::new();
        self.match_arms(rest, scrut, target, &mut stmts, span);
        let els = Block {
            stmts,
            region: self.region,
        };
        self.region = saved;
        let id = self.stmt_id();
        out.push(Stmt::If {
            id,
            cond,
            then,
            els,
        });
    }

    fn new_loop(&mut self, label: Option<&syn::Label>) -> LoopId {
        let outer = self.loop_stack.iter().map(|(l, _)| *l).collect();
        self.loops.push(LoopInfo {
            outer,
            ..LoopInfo::default()
        });
        let id = self.loops.len() - 1;
        self.loop_stack
            .push((id, label.map(|l| l.name.ident.to_string())));
        id
    }

    fn for_loop(&mut self, f: &syn::ExprForLoop, out: &mut Vec<Stmt>) {
        // Iteration over an active slice becomes iteration over its indices.
        let slice = self.slice_iteration(&f.expr, &f.pat, out);
        let lp = self.new_loop(f.label.as_ref());
        let saved_region = self.region;
        self.region = self.new_region();
        self.scopes.push(HashMap::new());
        let mut body_stmts = Vec::new();
        let head = match slice {
            Some(SliceIter {
                bases,
                index,
                items,
            }) => {
                let i_name = match &index {
                    Some(ident) => ident.clone(),
                    None => format_ident!("__i"),
                };
                let i_var = self.bind(&i_name);
                self.vars[i_var].inactive_by_type = true;
                let i_ident = self.vars[i_var].name.clone();
                let len = bases
                    .iter()
                    .map(|b| {
                        let t = crate::emit_place_read(&self.vars, b);
                        quote!(#t.len())
                    })
                    .reduce(|a, b| quote!(::core::cmp::min(#a, #b)))
                    .unwrap();
                for (base, (ident, by_ref)) in bases.iter().zip(items) {
                    let mut p = base.clone();
                    p.proj.push(Proj::Index(Atom::Place(Place {
                        root: i_var,
                        proj: Vec::new(),
                        wrap: Vec::new(),
                        span: ident.span(),
                    })));
                    if by_ref {
                        p.wrap.push(Wrap::Ref);
                    }
                    let v = self.bind(&ident);
                    let id = self.stmt_id();
                    body_stmts.push(Stmt::Let {
                        id,
                        pat: Pat::Var(v),
                        mutable: false,
                        ty: None,
                        value: Some(Expr::Atom(Atom::Place(p))),
                        span: ident.span(),
                    });
                }
                LoopHead::For {
                    pat: quote!(#i_ident),
                    iter: Box::new(syn::parse_quote!(0..#len)),
                    reads: Vec::new(),
                    span: f.expr.span(),
                }
            }
            None => {
                // A general iterator: it and the pattern's bindings are inactive.
                let mut reads = Vec::new();
                self.scopes.pop();
                let iter = self.rename_expr((*f.expr).clone(), &mut reads);
                if is_integer_range(&f.expr) {
                    // `a..b`, `(a..=b).rev().step_by(k)`: only integer ranges are
                    // iterators, so whatever the bounds read (`self.n`) is inactive.
                    reads.clear();
                }
                self.scopes.push(HashMap::new());
                let pat = self.bind_pattern_tokens(&f.pat);
                LoopHead::For {
                    pat,
                    iter: Box::new(iter),
                    reads,
                    span: f.expr.span(),
                }
            }
        };
        let tail = self.block_inline(&f.body, &mut body_stmts, false);
        if let Some(Tail::Value(_)) = tail {}
        self.scopes.pop();
        let body = Block {
            stmts: body_stmts,
            region: self.region,
        };
        self.region = saved_region;
        self.loop_stack.pop();
        let id = self.stmt_id();
        out.push(Stmt::Loop {
            id,
            lp,
            head,
            body,
            label: f.label.as_ref().map(|l| l.name.clone()),
        });
    }

    fn while_loop(&mut self, w: &syn::ExprWhile, out: &mut Vec<Stmt>) {
        if let syn::Expr::Let(l) = &*w.cond {
            self.cx.error_spanned(l, "`while let` is not supported in differentiable functions; use `loop` with a condition and `break`");
            return;
        }
        let lp = self.new_loop(w.label.as_ref());
        let saved_region = self.region;
        self.region = self.new_region();
        let mut stmts = Vec::new();
        let cond = &w.cond;
        let not: syn::Expr = syn::parse_quote_spanned!(cond.span()=> !(#cond));
        let c = self.atom(&not, &mut stmts);
        self.loops[lp].has_break = true;
        let ex = self.push_exit(ExitKind::Break, lp);
        let then_region = self.new_region();
        let id = self.stmt_id();
        stmts.push(Stmt::If {
            id,
            cond: c,
            then: Block {
                stmts: vec![Stmt::Break(ex, lp)],
                region: then_region,
            },
            els: Block {
                stmts: Vec::new(),
                region: self.new_region(),
            },
        });
        self.block_inline(&w.body, &mut stmts, false);
        let body = Block {
            stmts,
            region: self.region,
        };
        self.region = saved_region;
        self.loop_stack.pop();
        let id = self.stmt_id();
        out.push(Stmt::Loop {
            id,
            lp,
            head: LoopHead::Loop,
            body,
            label: w.label.as_ref().map(|l| l.name.clone()),
        });
    }

    fn loop_expr(&mut self, l: &syn::ExprLoop, out: &mut Vec<Stmt>) {
        let lp = self.new_loop(l.label.as_ref());
        let saved_region = self.region;
        self.region = self.new_region();
        let mut stmts = Vec::new();
        self.block_inline(&l.body, &mut stmts, false);
        let body = Block {
            stmts,
            region: self.region,
        };
        self.region = saved_region;
        self.loop_stack.pop();
        let id = self.stmt_id();
        out.push(Stmt::Loop {
            id,
            lp,
            head: LoopHead::Loop,
            body,
            label: l.label.as_ref().map(|l| l.name.clone()),
        });
    }

    /// Recognises `x.iter()`, `&x`, `x.iter().enumerate()`,
    /// `x.iter().zip(y.iter())` with patterns `v`, `&v`, `(i, v)`, `(a, b)`.
    fn slice_iteration(
        &mut self,
        iter: &syn::Expr,
        pat: &syn::Pat,
        out: &mut Vec<Stmt>,
    ) -> Option<SliceIter> {
        fn base_of(e: &syn::Expr) -> Option<&syn::Expr> {
            match e {
                syn::Expr::MethodCall(m) if m.method == "iter" && m.args.is_empty() => {
                    Some(&m.receiver)
                }
                syn::Expr::Reference(r) if r.mutability.is_none() => Some(&r.expr),
                syn::Expr::Paren(p) => base_of(&p.expr),
                _ => None,
            }
        }
        fn item(p: &syn::Pat) -> Option<(Ident, bool)> {
            match p {
                syn::Pat::Ident(pi)
                    if pi.by_ref.is_none() && pi.subpat.is_none() && pi.mutability.is_none() =>
                {
                    Some((pi.ident.clone(), true))
                }
                syn::Pat::Reference(r) => match &*r.pat {
                    syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        Some((pi.ident.clone(), false))
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        let mut bases_e = Vec::new();
        let mut index = None;
        let mut items = Vec::new();
        match iter {
            syn::Expr::MethodCall(m) if m.method == "enumerate" && m.args.is_empty() => {
                let base = base_of(&m.receiver)?;
                let syn::Pat::Tuple(t) = pat else { return None };
                if t.elems.len() != 2 {
                    return None;
                }
                let syn::Pat::Ident(i) = &t.elems[0] else {
                    return None;
                };
                index = Some(i.ident.clone());
                items.push(item(&t.elems[1])?);
                bases_e.push(base);
            }
            syn::Expr::MethodCall(m) if m.method == "zip" && m.args.len() == 1 => {
                let a = base_of(&m.receiver)?;
                // `.zip(y)` with `y` a slice variable: like `.zip(y.iter())`.
                let b = base_of(&m.args[0]).or_else(|| match &m.args[0] {
                    syn::Expr::Path(p)
                        if p.path
                            .get_ident()
                            .is_some_and(|i| self.lookup(&i.to_string()).is_some()) =>
                    {
                        Some(&m.args[0])
                    }
                    _ => None,
                })?;
                let syn::Pat::Tuple(t) = pat else { return None };
                if t.elems.len() != 2 {
                    return None;
                }
                items.push(item(&t.elems[0])?);
                items.push(item(&t.elems[1])?);
                bases_e.push(a);
                bases_e.push(b);
            }
            syn::Expr::Path(p)
                if p.path
                    .get_ident()
                    .is_some_and(|i| self.lookup(&i.to_string()).is_some()) =>
            {
                // `for v in x`: over a `&[T]`/`&Vec<T>` parameter the items are
                // references; over an array or `Vec` owned by value they are values.
                let name = p.path.get_ident().unwrap().to_string();
                let by_ref_items = self.ref_params.contains(&name);
                let (ident, by_ref) = item(pat)?;
                items.push((ident, by_ref && by_ref_items));
                bases_e.push(iter);
            }
            other => {
                let base = base_of(other)?;
                items.push(item(pat)?);
                bases_e.push(base);
            }
        }
        let mut bases = Vec::new();
        for b in bases_e {
            match self.atom(b, out) {
                Atom::Place(mut p) => {
                    p.wrap.clear();
                    bases.push(p)
                }
                _ => return None,
            }
        }
        Some(SliceIter {
            bases,
            index,
            items,
        })
    }

    fn bind_pattern_tokens(&mut self, pat: &syn::Pat) -> TokenStream {
        struct Binder<'l, 'a> {
            l: &'l mut Lower<'a>,
        }
        impl VisitMut for Binder<'_, '_> {
            fn visit_pat_ident_mut(&mut self, pi: &mut syn::PatIdent) {
                let v = self.l.bind(&pi.ident);
                self.l.vars[v].inactive_by_type = true;
                pi.ident = self.l.vars[v].name.clone();
                if let Some((_, sub)) = &mut pi.subpat {
                    self.visit_pat_mut(sub);
                }
            }
        }
        let mut pat = pat.clone();
        Binder { l: self }.visit_pat_mut(&mut pat);
        pat.to_token_stream()
    }

    // ---------------------------------------------------------- expressions

    /// The function's value as a plain variable (`return xs[k]` -> `let __t = xs[k]`),
    /// so seeding its adjoint reads nothing.
    fn bare(&mut self, a: Atom, out: &mut Vec<Stmt>) -> Atom {
        match a {
            Atom::Place(p) if !p.proj.is_empty() || !p.wrap.is_empty() => {
                let span = p.span;
                let t = self.temp();
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(t),
                    mutable: false,
                    ty: None,
                    value: Some(Expr::Atom(Atom::Place(p))),
                    span,
                });
                Atom::Place(Place {
                    root: t,
                    proj: Vec::new(),
                    wrap: Vec::new(),
                    span,
                })
            }
            other => other,
        }
    }

    /// Lowers `e` to an atom, emitting the computation into `out`.
    fn atom(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> Atom {
        match self.rhs(e, out) {
            Expr::Atom(a) => a,
            value => {
                let t = self.temp();
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(t),
                    mutable: false,
                    ty: None,
                    value: Some(value),
                    span: e.span(),
                });
                Atom::Place(Place {
                    root: t,
                    proj: Vec::new(),
                    wrap: Vec::new(),
                    span: e.span(),
                })
            }
        }
    }

    fn rhs_for_let(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> LetValue {
        match e {
            syn::Expr::If(_) | syn::Expr::Match(_) => LetValue::Deferred(e.clone()),
            syn::Expr::Paren(p) => self.rhs_for_let(&p.expr, out),
            _ => LetValue::Expr(self.rhs(e, out)),
        }
    }

    fn fill_deferred(&mut self, v: VarId, e: syn::Expr, out: &mut Vec<Stmt>) {
        match &e {
            syn::Expr::If(i) => self.if_stmt(i, Some(v), out),
            syn::Expr::Match(m) => self.match_expr(m, Some(v), out),
            _ => unreachable!(),
        }
    }

    /// Lowers `e` to one operation over atoms.
    fn rhs(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> Expr {
        use syn::Expr as E;
        match e {
            E::Paren(p) => self.rhs(&p.expr, out),
            E::Group(g) => self.rhs(&g.expr, out),
            E::Lit(l) => Expr::Atom(Atom::Lit(l.lit.clone())),
            E::Path(_) | E::Field(_) | E::Index(_) | E::Reference(_) | E::Unary(syn::ExprUnary { op: syn::UnOp::Deref(_), .. }) => {
                if let Some(ix) = range_indexed(e) {
                    {
                        return self.opaque(e, false, OpaqueWhy::Unknown(ix.index.span(), "slicing (`x[a..b]`) an active value cannot be differentiated yet; index the elements (`x[i]`) in a loop instead".into()));
                    }
                }
                if let E::Reference(r) = e {
                    if r.mutability.is_some() {
                        return self.opaque(e, false, OpaqueWhy::Unknown(r.span(), "`&mut` borrows of active values cannot be differentiated; return new values instead".into()));
                    }
                }
                match self.place(e, out, false) {
                    Some(p) => Expr::Atom(Atom::Place(p)),
                    None => match e {
                        E::Path(p) => Expr::Atom(Atom::Const(p.to_token_stream())),
                        _ => {
                            let a = self.atom_of_nonplace(e, out);
                            Expr::Atom(a)
                        }
                    },
                }
            }
            E::Unary(u) => match u.op {
                syn::UnOp::Neg(_) => {
                    let a = self.atom(&u.expr, out);
                    Expr::Neg(a)
                }
                syn::UnOp::Not(_) => self.opaque(e, true, OpaqueWhy::Constant),
                _ => self.opaque(e, false, OpaqueWhy::Unknown(u.span(), "this operator has no derivative rule".into())),
            },
            E::Binary(b) => {
                use syn::BinOp as B;
                let op = match b.op {
                    B::Add(_) => BinOp::Add,
                    B::Sub(_) => BinOp::Sub,
                    B::Mul(_) => BinOp::Mul,
                    B::Div(_) => BinOp::Div,
                    B::Lt(_) | B::Le(_) | B::Gt(_) | B::Ge(_) | B::Eq(_) | B::Ne(_) | B::And(_) | B::Or(_) => {
                        return self.opaque(e, true, OpaqueWhy::Constant)
                    }
                    B::Rem(_) => {
                        return self.opaque(e, false, OpaqueWhy::Unknown(b.op.span(), "the `%` operator has no derivative rule; write `x - (x / y).trunc() * y`".into()))
                    }
                    _ if compound_op(&b.op).is_some() || is_other_compound(&b.op) => {
                        self.cx.error_spanned(e, "assignments cannot be used as values in differentiable functions; write them as statements");
                        return Expr::Atom(Atom::Const(quote!(())));
                    }
                    _ => {
                        return self.opaque(e, false, OpaqueWhy::Unknown(b.op.span(), format!("the `{}` operator has no derivative rule", b.op.to_token_stream())))
                    }
                };
                let l = self.atom(&b.left, out);
                let r = self.atom(&b.right, out);
                Expr::Binary(op, l, r)
            }
            E::Cast(c) => {
                let a = self.atom(&c.expr, out);
                Expr::Cast(a, c.ty.clone())
            }
            E::MethodCall(m) => self.method_call(m, out),
            E::Call(c) => self.call(c, out),
            E::Tuple(t) => {
                if t.elems.is_empty() {
                    return Expr::Atom(Atom::Const(quote!(())));
                }
                let atoms = t.elems.iter().map(|x| self.atom(x, out)).collect();
                Expr::Tuple(atoms)
            }
            E::Array(a) => {
                let atoms = a.elems.iter().map(|x| self.atom(x, out)).collect();
                Expr::Array(atoms)
            }
            E::Repeat(r) => {
                let a = self.atom(&r.expr, out);
                let mut reads = Vec::new();
                let len = self.rename_expr((*r.len).clone(), &mut reads);
                Expr::Repeat(a, Box::new(len))
            }
            E::Macro(m) => self.expr_macro(&m.mac, e, out),
            E::Block(b) if b.label.is_none() => match self.block_inline(&b.block, out, true) {
                Some(Tail::Value(a)) => Expr::Atom(a),
                _ => Expr::Atom(Atom::Const(quote!(()))),
            },
            E::If(_) | E::Match(_) => {
                let t = self.temp();
                let id = self.stmt_id();
                out.push(Stmt::Let {
                    id,
                    pat: Pat::Var(t),
                    mutable: false,
                    ty: None,
                    value: None,
                    span: e.span(),
                });
                self.fill_deferred(t, e.clone(), out);
                Expr::Atom(Atom::Place(Place {
                    root: t,
                    proj: Vec::new(),
                    wrap: Vec::new(),
                    span: e.span(),
                }))
            }
            E::Unsafe(u) => {
                self.cx.error_spanned(u.unsafe_token, "`unsafe` blocks cannot be differentiated; move the unsafe code into a function with a `#[derivative]`");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Closure(c) => self.opaque(e, false, OpaqueWhy::Unknown(c.or1_token.span, "closures cannot be differentiated; write a `#[differentiable]` function and call it".into())),
            E::Try(t) => {
                self.cx.error_spanned(t.question_token, "the `?` operator is not supported in differentiable functions; handle the error before the call, or use `match`");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Async(a) => {
                self.cx.error_spanned(a.async_token, "`async` blocks cannot be differentiated");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Await(a) => {
                self.cx.error_spanned(a.await_token, "`.await` cannot be differentiated");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Return(_) | E::Break(_) | E::Continue(_) => {
                self.cx.error_spanned(e, "`return`, `break` and `continue` can only be statements in differentiable functions");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Assign(_) => {
                self.cx.error_spanned(e, "assignments cannot be used as values in differentiable functions; write them as statements");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Loop(l) => {
                self.cx.error_spanned(l.loop_token, "a `loop` cannot be used as a value in differentiable functions; assign to a variable declared before the loop");
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::ForLoop(_) | E::While(_) => {
                self.stmt_expr(e, out);
                Expr::Atom(Atom::Const(quote!(())))
            }
            E::Struct(s) => self.opaque(e, false, OpaqueWhy::Unknown(s.span(), "struct literals with active fields cannot be differentiated yet; return a tuple instead".into())),
            E::Range(r) => self.opaque(e, false, OpaqueWhy::Unknown(r.span(), "ranges over active values cannot be differentiated".into())),
            _ => self.opaque(e, false, OpaqueWhy::Unknown(e.span(), "this expression cannot be differentiated".into())),
        }
    }

    fn atom_of_nonplace(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>) -> Atom {
        // `(a * b).field`, `&(a + b)`, `f(x)[i]`: evaluate the base first.
        match e {
            syn::Expr::Reference(r) => {
                let inner = self.atom(&r.expr, out);
                match inner {
                    Atom::Place(mut p) => {
                        p.wrap.push(Wrap::Ref);
                        Atom::Place(p)
                    }
                    // `&1.5`, `&CONST`: a constant still, behind its `&`.
                    Atom::Lit(l) => Atom::Const(quote::quote!(&#l)),
                    Atom::Const(t) => Atom::Const(quote::quote!(&#t)),
                }
            }
            syn::Expr::Unary(u) => {
                let inner = self.atom(&u.expr, out);
                match inner {
                    Atom::Place(mut p) => {
                        p.wrap.push(Wrap::Deref);
                        Atom::Place(p)
                    }
                    Atom::Lit(l) => Atom::Const(quote::quote!(*#l)),
                    Atom::Const(t) => Atom::Const(quote::quote!(*#t)),
                }
            }
            syn::Expr::Field(f) => {
                let base = self.atom(&f.base, out);
                self.project(base, Proj::Field(f.member.clone()), e)
            }
            syn::Expr::Index(ix) => {
                let base = self.atom(&ix.expr, out);
                let i = self.atom(&ix.index, out);
                self.project(base, Proj::Index(i), e)
            }
            _ => {
                let r = self.opaque(e, false, OpaqueWhy::Constant);
                match r {
                    Expr::Atom(a) => a,
                    other => {
                        let t = self.temp();
                        let id = self.stmt_id();
                        out.push(Stmt::Let {
                            id,
                            pat: Pat::Var(t),
                            mutable: false,
                            ty: None,
                            value: Some(other),
                            span: e.span(),
                        });
                        Atom::Place(Place {
                            root: t,
                            proj: Vec::new(),
                            wrap: Vec::new(),
                            span: e.span(),
                        })
                    }
                }
            }
        }
    }

    fn project(&mut self, base: Atom, proj: Proj, e: &syn::Expr) -> Atom {
        match base {
            Atom::Place(mut p) if p.wrap.iter().all(|w| *w == Wrap::Deref) => {
                p.wrap.clear();
                p.proj.push(proj);
                p.span = e.span();
                Atom::Place(p)
            }
            _ => {
                self.cx.error_spanned(e, "indexing or a field of this expression cannot be differentiated; bind the value to a variable first");
                Atom::Const(quote!(()))
            }
        }
    }

    /// A place expression rooted at a local variable: `x`, `x.0`, `self.w[i][j]`, `&x`, `*x`.
    fn place(&mut self, e: &syn::Expr, out: &mut Vec<Stmt>, assign: bool) -> Option<Place> {
        use syn::Expr as E;
        match e {
            E::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() || p_is_self(e) => {
                let name = match e {
                    E::Path(p) => p.path.segments[0].ident.to_string(),
                    _ => unreachable!(),
                };
                let root = self.lookup(&name)?;
                Some(Place {
                    root,
                    proj: Vec::new(),
                    wrap: Vec::new(),
                    span: e.span(),
                })
            }
            E::Paren(p) => self.place(&p.expr, out, assign),
            E::Field(f) => {
                let mut p = self.place(&f.base, out, assign)?;
                if p.wrap.contains(&Wrap::Ref) {
                    return None;
                }
                p.wrap.clear();
                p.proj.push(Proj::Field(f.member.clone()));
                p.span = e.span();
                Some(p)
            }
            E::Index(ix) => {
                let mut p = self.place(&ix.expr, out, assign)?;
                if p.wrap.contains(&Wrap::Ref) {
                    return None;
                }
                p.wrap.clear();
                let i = self.atom(&ix.index, out);
                p.proj.push(Proj::Index(i));
                p.span = e.span();
                Some(p)
            }
            E::Reference(r) if r.mutability.is_none() && !assign => {
                let mut p = self.place(&r.expr, out, assign)?;
                p.wrap.push(Wrap::Ref);
                p.span = e.span();
                Some(p)
            }
            E::Unary(syn::ExprUnary {
                op: syn::UnOp::Deref(_),
                expr,
                ..
            }) => {
                let mut p = self.place(expr, out, assign)?;
                p.wrap.push(Wrap::Deref);
                p.span = e.span();
                Some(p)
            }
            _ => None,
        }
    }

    fn method_call(&mut self, m: &syn::ExprMethodCall, out: &mut Vec<Stmt>) -> Expr {
        let name = m.method.to_string();
        // `self.g(..)`, `self.field.g(..)` and `models[j].g(..)`: a
        // differentiable method (called through `g_pullback`).
        if (receiver_is_self_path(&m.receiver) || receiver_is_indexed_element(&m.receiver))
            && !rules::has_method(&name)
            && !STD_METHODS.contains(&name.as_str())
        {
            let recv = self.atom(&m.receiver, out);
            let mut args = vec![recv];
            args.extend(m.args.iter().map(|a| self.atom(a, out)));
            return Expr::Call {
                callee: Callee::Method(m.method.clone()),
                args,
                span: m.span(),
            };
        }
        match rules::method(&name, m.args.len() + 1) {
            Some(rule) => match &rule.kind {
                RuleKind::Constant => {
                    self.opaque(&syn::Expr::MethodCall(m.clone()), true, OpaqueWhy::Constant)
                }
                RuleKind::Smooth { .. } | RuleKind::Identity => {
                    if rule.arity != Some(m.args.len() + 1) {
                        return self.opaque(
                            &syn::Expr::MethodCall(m.clone()),
                            false,
                            OpaqueWhy::NoRule(m.method.clone()),
                        );
                    }
                    let recv = self.atom(&m.receiver, out);
                    let args = m.args.iter().map(|a| self.atom(a, out)).collect();
                    Expr::Method {
                        rule,
                        recv,
                        args,
                        name: m.method.clone(),
                        path_form: None,
                    }
                }
            },
            None => self.opaque(
                &syn::Expr::MethodCall(m.clone()),
                false,
                OpaqueWhy::NoRule(m.method.clone()),
            ),
        }
    }

    fn call(&mut self, c: &syn::ExprCall, out: &mut Vec<Stmt>) -> Expr {
        let syn::Expr::Path(fp) = &*c.func else {
            return self.opaque(
                &syn::Expr::Call(c.clone()),
                false,
                OpaqueWhy::Unknown(
                    c.func.span(),
                    "only calls of named functions can be differentiated".into(),
                ),
            );
        };
        let path = &fp.path;
        let last = path.segments.last().unwrap().ident.to_string();
        if last == "stop_gradient" && c.args.len() == 1 {
            let a = self.atom(&c.args[0], out);
            return Expr::StopGradient(a, path.clone());
        }
        // `f64::sin(x)`: the method form of a rule.
        if path.segments.len() == 2 && fp.qself.is_none() {
            let ty = path.segments[0].ident.to_string();
            if ty == "f64" || ty == "f32" {
                if let Some(rule) = rules::method(&last, c.args.len()) {
                    match &rule.kind {
                        RuleKind::Constant => {
                            return self.opaque(
                                &syn::Expr::Call(c.clone()),
                                true,
                                OpaqueWhy::Constant,
                            )
                        }
                        RuleKind::Smooth { .. } if rule.arity == Some(c.args.len()) => {
                            let atoms: Vec<Atom> =
                                c.args.iter().map(|a| self.atom(a, out)).collect();
                            let mut it = atoms.into_iter();
                            let recv = it.next().unwrap();
                            return Expr::Method {
                                rule,
                                recv,
                                args: it.collect(),
                                name: path.segments[1].ident.clone(),
                                path_form: Some(path.clone()),
                            };
                        }
                        _ => {}
                    }
                }
            }
        }
        if path.get_ident().is_some() && self.lookup(&last).is_some() {
            return self.opaque(&syn::Expr::Call(c.clone()), false, OpaqueWhy::Unknown(c.func.span(), "calling a closure or function value cannot be differentiated; call a `#[differentiable]` function by name".into()));
        }
        let args = c.args.iter().map(|a| self.atom(a, out)).collect();
        Expr::Call {
            callee: Callee::Path(path.clone()),
            args,
            span: c.span(),
        }
    }

    fn expr_macro(&mut self, mac: &syn::Macro, e: &syn::Expr, out: &mut Vec<Stmt>) -> Expr {
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        if name == "vec" {
            if let Ok(r) = mac.parse_body_with(parse_vec_repeat) {
                let x = self.atom(&r.0, out);
                let n = self.atom(&r.1, out);
                return Expr::VecRepeat(x, n);
            }
            if let Ok(list) = mac.parse_body_with(
                syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
            ) {
                let atoms = list.iter().map(|x| self.atom(x, out)).collect();
                return Expr::VecList(atoms);
            }
        }
        const INERT: &[&str] = &[
            "format",
            "matches",
            "concat",
            "stringify",
            "line",
            "file",
            "column",
            "cfg",
            "env",
        ];
        if INERT.contains(&name.as_str()) {
            return self.opaque(e, true, OpaqueWhy::Constant);
        }
        self.opaque(e, false, OpaqueWhy::Unknown(mac.path.span(), format!("macro `{name}!` cannot be differentiated; write its expansion, or move it into a function that is not differentiated")))
    }

    fn opaque(&mut self, e: &syn::Expr, reads_active_ok: bool, why: OpaqueWhy) -> Expr {
        let mut reads = Vec::new();
        let expr = self.rename_expr(e.clone(), &mut reads);
        Expr::Opaque {
            expr: Box::new(expr),
            reads,
            reads_active_ok,
            why,
        }
    }

    // ------------------------------------------------------------- renaming

    fn rename_expr(&mut self, mut e: syn::Expr, reads: &mut Vec<VarId>) -> syn::Expr {
        let mut r = Renamer {
            l: self,
            reads,
            shadow: Vec::new(),
        };
        r.visit_expr_mut(&mut e);
        e
    }

    fn rename_tokens(&mut self, ts: TokenStream, reads: &mut Vec<VarId>) -> TokenStream {
        ts.into_iter()
            .map(|t| match t {
                TokenTree::Ident(i) => match self.lookup(&i.to_string()) {
                    Some(v) => {
                        reads.push(v);
                        let mut n = self.vars[v].name.clone();
                        n.set_span(i.span());
                        TokenTree::Ident(n)
                    }
                    None => TokenTree::Ident(i),
                },
                TokenTree::Group(g) => {
                    let mut ng = proc_macro2::Group::new(
                        g.delimiter(),
                        self.rename_tokens(g.stream(), reads),
                    );
                    ng.set_span(g.span());
                    TokenTree::Group(ng)
                }
                other => other,
            })
            .collect()
    }
}

struct SliceIter {
    bases: Vec<Place>,
    index: Option<Ident>,
    items: Vec<(Ident, bool)>,
}

enum LetValue {
    Expr(Expr),
    Deferred(syn::Expr),
}

/// Renames local variables inside an expression that is emitted unchanged.
struct Renamer<'l, 'a> {
    l: &'l mut Lower<'a>,
    reads: &'l mut Vec<VarId>,
    /// Names bound by closures inside the expression.
    shadow: Vec<String>,
}

impl VisitMut for Renamer<'_, '_> {
    fn visit_expr_path_mut(&mut self, p: &mut syn::ExprPath) {
        if p.qself.is_none() {
            if let Some(ident) = p.path.get_ident() {
                let name = ident.to_string();
                if !self.shadow.contains(&name) {
                    if let Some(v) = self.l.lookup(&name) {
                        self.reads.push(v);
                        let mut n = self.l.vars[v].name.clone();
                        n.set_span(ident.span());
                        p.path.segments[0].ident = n;
                    }
                }
            }
        }
    }
    fn visit_expr_closure_mut(&mut self, c: &mut syn::ExprClosure) {
        let n = self.shadow.len();
        for input in &c.inputs {
            let mut names = HashSet::new();
            collect_idents(input.to_token_stream(), &mut names);
            self.shadow.extend(names);
        }
        self.visit_expr_mut(&mut c.body);
        self.shadow.truncate(n);
    }
    fn visit_expr_cast_mut(&mut self, c: &mut syn::ExprCast) {
        if is_inactive_type(&c.ty) {
            // `(a * 1.7) as usize`: an integer, with no derivative.
            let mut ignored = Vec::new();
            Renamer {
                l: self.l,
                reads: &mut ignored,
                shadow: self.shadow.clone(),
            }
            .visit_expr_mut(&mut c.expr);
        } else {
            self.visit_expr_mut(&mut c.expr);
        }
    }
    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        m.tokens = self.l.rename_tokens(m.tokens.clone(), self.reads);
    }
    fn visit_expr_method_call_mut(&mut self, m: &mut syn::ExprMethodCall) {
        if rules::CONSTANT_METHODS.iter().any(|r| m.method == r.name) {
            // `x.len()`: reading `x` here carries no derivative.
            let mut ignored = Vec::new();
            Renamer {
                l: self.l,
                reads: &mut ignored,
                shadow: self.shadow.clone(),
            }
            .visit_expr_mut(&mut m.receiver);
        } else {
            self.visit_expr_mut(&mut m.receiver);
        }
        for a in m.args.iter_mut() {
            self.visit_expr_mut(a);
        }
    }
}

impl Place {
    fn root_is_receiver(&self, l: &Lower) -> bool {
        l.vars[self.root].name == "self"
    }
}

fn p_is_self(e: &syn::Expr) -> bool {
    matches!(e, syn::Expr::Path(p) if p.path.is_ident("self"))
}

fn receiver_is_self_path(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Path(p) => p.path.is_ident("self"),
        syn::Expr::Field(f) => receiver_is_self_path(&f.base),
        syn::Expr::Paren(p) => receiver_is_self_path(&p.expr),
        _ => false,
    }
}

/// A pattern binding some name with `mut`.
fn pat_has_mut(p: &syn::Pat) -> bool {
    match p {
        syn::Pat::Ident(pi) => pi.mutability.is_some(),
        syn::Pat::Tuple(t) => t.elems.iter().any(pat_has_mut),
        syn::Pat::Paren(p) => pat_has_mut(&p.pat),
        _ => false,
    }
}

/// `xs[j]`, `xs[j].field`, `(xs[j])`: an element of an array, slice or `Vec`
/// (not a slice of one).
fn receiver_is_indexed_element(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Index(ix) => !is_range(&ix.index),
        syn::Expr::Field(f) => receiver_is_indexed_element(&f.base),
        syn::Expr::Paren(p) => receiver_is_indexed_element(&p.expr),
        _ => false,
    }
}

/// Methods of the standard library's collections and iterators: never a
/// user's differentiable method, so their misuse keeps its own error.
const STD_METHODS: &[&str] = &[
    "push",
    "pop",
    "insert",
    "remove",
    "extend",
    "extend_from_slice",
    "truncate",
    "resize",
    "swap",
    "reverse",
    "sort",
    "sort_by",
    "fill",
    "iter",
    "iter_mut",
    "into_iter",
    "map",
    "sum",
    "product",
    "fold",
    "first",
    "last",
    "get",
    "get_mut",
    "contains",
    "split_at",
    "chunks",
    "windows",
    "as_slice",
    "to_string",
    "unwrap",
    "expect",
];

/// `x[a..b]`, `&x[a..]`: slicing.
fn range_indexed(e: &syn::Expr) -> Option<&syn::ExprIndex> {
    match e {
        syn::Expr::Index(ix) if is_range(&ix.index) => Some(ix),
        syn::Expr::Reference(r) => range_indexed(&r.expr),
        syn::Expr::Paren(p) => range_indexed(&p.expr),
        _ => None,
    }
}

/// A range, possibly reversed or stepped: its items are integers.
fn is_integer_range(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Range(_) => true,
        syn::Expr::Paren(p) => is_integer_range(&p.expr),
        syn::Expr::MethodCall(m) if m.method == "rev" || m.method == "step_by" => {
            is_integer_range(&m.receiver)
        }
        _ => false,
    }
}

fn is_range(e: &syn::Expr) -> bool {
    matches!(e, syn::Expr::Range(_))
}

fn is_unit_block_expr(e: &syn::Expr) -> bool {
    // An `if` without `else` is a statement.
    matches!(e, syn::Expr::If(i) if i.else_branch.is_none())
}

fn pat_binds(p: &syn::Pat) -> bool {
    match p {
        // `N`, `None`: constants and unit variants, not bindings.
        syn::Pat::Ident(pi) => !pi
            .ident
            .to_string()
            .starts_with(|c: char| c.is_ascii_uppercase()),
        syn::Pat::Or(o) => o.cases.iter().any(pat_binds),
        syn::Pat::Tuple(t) => t.elems.iter().any(pat_binds),
        syn::Pat::TupleStruct(t) => t.elems.iter().any(pat_binds),
        syn::Pat::Struct(s) => s.fields.iter().any(|f| pat_binds(&f.pat)),
        syn::Pat::Reference(r) => pat_binds(&r.pat),
        syn::Pat::Slice(s) => s.elems.iter().any(pat_binds),
        syn::Pat::Paren(p) => pat_binds(&p.pat),
        _ => false,
    }
}

fn compound_op(op: &syn::BinOp) -> Option<BinOp> {
    match op {
        syn::BinOp::AddAssign(_) => Some(BinOp::Add),
        syn::BinOp::SubAssign(_) => Some(BinOp::Sub),
        syn::BinOp::MulAssign(_) => Some(BinOp::Mul),
        syn::BinOp::DivAssign(_) => Some(BinOp::Div),
        _ => None,
    }
}

/// `|=` -> `|`, `%=` -> `%`, ...
fn plain_op(op: &syn::BinOp) -> TokenStream {
    let s = op.to_token_stream().to_string();
    let plain = s.trim_end_matches('=');
    plain.parse().unwrap()
}

fn is_other_compound(op: &syn::BinOp) -> bool {
    matches!(
        op,
        syn::BinOp::RemAssign(_)
            | syn::BinOp::BitXorAssign(_)
            | syn::BinOp::BitAndAssign(_)
            | syn::BinOp::BitOrAssign(_)
            | syn::BinOp::ShlAssign(_)
            | syn::BinOp::ShrAssign(_)
    )
}

fn parse_vec_repeat(input: syn::parse::ParseStream) -> syn::Result<(syn::Expr, syn::Expr)> {
    let x: syn::Expr = input.parse()?;
    input.parse::<syn::Token![;]>()?;
    let n: syn::Expr = input.parse()?;
    if !input.is_empty() {
        return Err(input.error("unexpected tokens"));
    }
    Ok((x, n))
}

impl quote::ToTokens for Atom {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Atom::Lit(l) => l.to_tokens(tokens),
            Atom::Const(t) => t.to_tokens(tokens),
            Atom::Place(_) => unreachable!("places are emitted with the variable table"),
        }
    }
}
