//! Phase 4: the forward sweep (the primal, saving what the reverse sweep reads)
//! and the reverse sweep (adjoint accumulation in reverse order).
//!
//! The chain rule lives here and only here: for `y = op(a, b)` the reverse
//! sweep adds `rule_a(reads, dy)` to `a`'s adjoint and `rule_b(reads, dy)` to
//! `b`'s, where the rules come from the runtime's table.
//!
//! Values the reverse sweep reads are *saved at the point of use* unless they
//! are stable (see `analyse`). Control flow is replayed from records: trip
//! counts per loop execution, which `break` ended a loop, which `continue`
//! ended an iteration, which `return` ended the function. A statement after
//! one that may have left its block early is reversed only if it ran.
//!
//! Before / after (reverse of one statement inside a loop):
//! ```text
//! h = (__t2).tanh();        // forward: h = __t2.tanh(); __s3.push(save(&h));
//!                           // reverse: let __s3 = pop(&mut __s3);
//!                           //          let __d4 = take(&mut __d_h);
//!                           //          acc(&mut __d___t2, Tanh::d_x(prim(&__s3), &__d4));
//! ```

use crate::analyse::{partial_reads, walk, Analysis};
use crate::emit::{
    emit_atom, emit_expr, emit_pat, emit_place_bare, emit_place_read, exit_label, loop_label,
    pullback_name,
};
use crate::ir::*;
use crate::rules::{self, Operand, RuleKind};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::{HashMap, HashSet};

/// How a read is passed in reverse code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum ReadKind {
    /// `prim(&x)`: a rule operand.
    Value,
    /// `&shape_of(prim(&x))`.
    Shape,
    /// `x` by value: an integer, a bool, an index.
    Plain,
    /// An argument of a pullback call: the atom with its `&`/`*`, owned.
    CallArg,
}

#[derive(Default)]
struct Plan {
    pre: Vec<TokenStream>,
    post: Vec<TokenStream>,
    restores: Vec<TokenStream>,
    reads: HashMap<(String, ReadKind), TokenStream>,
}

pub struct Gen<'b> {
    body: &'b Body,
    an: &'b Analysis,
    /// Declarations at the top of the generated function.
    pub top: Vec<TokenStream>,
    plans: HashMap<StmtId, Plan>,
    n_slots: usize,
    /// Stack slots saved directly in a region (to reserve before its loop).
    region_stacks: HashMap<RegionId, Vec<Ident>>,
    stable: Vec<bool>,
    /// Still in scope, unmoved, when the reverse sweep runs.
    in_scope: Vec<bool>,
    /// Type witnesses of out-of-scope variables written by index: the slot
    /// and the code restoring it in the reverse sweep.
    witness: HashMap<VarId, (Ident, TokenStream)>,
    /// Variables that are the root of an indexed place (`v[i]`).
    indexed: Vec<bool>,
    /// Containers of a fixed shape (`fixed_shape`): their adjoint is allocated
    /// with the value's shape and indexed without growing.
    sized: Vec<bool>,
    /// Names resized or borrowed `&mut` in code the macro leaves as it is.
    resized: HashSet<String>,
    /// Statements whose float literals were bound to typed constants.
    typed: HashMap<StmtId, Expr>,
    n_consts: usize,
    n_tmp: usize,
    /// Variables bound to a borrow (`let t = &x[..k];`).
    borrows: Vec<bool>,
    /// Recomputed by the reverse sweep instead of saved (`find_replay`): loop
    /// variables of ranges and `let`s at the top of loop bodies.
    replay: Vec<bool>,
    /// A by-value use of the variable copies it (see `replay_let`).
    copyish: Vec<bool>,
    /// The variables a replayed variable's value is computed from.
    replay_deps: HashMap<VarId, Vec<VarId>>,
    /// Replayed loop variables: the variable, the range's start and step.
    replay_loops: HashMap<LoopId, (VarId, syn::Expr, Option<syn::Expr>)>,
    /// Counted loops (`find_counted`): `for` loops over a range whose bounds
    /// the reverse sweep can recompute and that nothing leaves early, so the
    /// reverse sweep recomputes the trip count instead of popping a record:
    /// the iterator expression and the variables it reads.
    counted: HashMap<LoopId, (syn::Expr, Vec<VarId>)>,
    /// Replayed `let`s of each loop body, in program order.
    replay_lets: HashMap<RegionId, Vec<(VarId, StmtId, Expr)>>,
    /// Replayed variables the reverse sweep reads.
    needed: HashSet<VarId>,
    /// Rewound counters (`find_rewound`): inactive `let mut` bindings at the
    /// top level of a loop body whose only writes are `v += k` / `v -= k` with
    /// an integer literal `k`. The reverse sweep undoes each write (`v -= k`)
    /// instead of saving `v` per read.
    rewound: Vec<bool>,
    /// Rewound counters some reverse code reads, and the stack their value at
    /// the end of each body iteration goes on.
    rewound_used: HashSet<VarId>,
    rewound_slot: HashMap<VarId, Ident>,
    /// Loop bodies by loop.
    loop_body: HashMap<LoopId, &'b Block>,
    /// Per variable, the last statement of the top block that may write it
    /// (declares it, assigns it, borrows it or names it in opaque code).
    last_write_top: Vec<usize>,
    /// The statement of the top block the forward sweep is at.
    cur_top: usize,
    /// Reads saved once per loop execution (`hoist_loop`): their stack and the
    /// binding that holds the popped value in the reverse sweep.
    hoisted: HashMap<LoopId, Vec<(Ident, Ident)>>,
    /// A counted loop's hoisted reads: their stack and push, emitted before
    /// the loop (when its trip count is not zero) instead of in its first
    /// iteration.
    hoisted_pushes: HashMap<LoopId, Vec<(Ident, TokenStream)>>,
    /// Adjoint elements accumulated in a local while the reverse sweep of a
    /// loop runs (`promotable`), by the place's text: the local's name.
    promoted: HashMap<String, Ident>,
    n_promoted: usize,
    /// The fused loop (`find_fused`) and, once the forward sweep has reached
    /// it, its head (`for i in ..`) and forward body.
    fused: Option<LoopId>,
    fused_fwd: Option<(TokenStream, TokenStream)>,
    /// Statements at the top level of a loop body, before anything that may
    /// leave it (they run in every iteration the reverse sweep revisits):
    /// the body's region.
    head_top: HashMap<StmtId, RegionId>,
    /// Immutable bindings of a loop body saved once per iteration
    /// (`saved_once`): their stack, popped at the start of each reverse
    /// iteration, which every reverse statement of the iteration reads.
    saved_once: HashMap<VarId, Ident>,
    /// The pops at the start of a reverse iteration of a loop body, by region.
    region_restores: HashMap<RegionId, Vec<TokenStream>>,
    /// Per loop body, the values saved once per iteration (`saved_once`):
    /// the slot each is popped into and the local holding its copy, all
    /// pushed in one tuple where the body's head ends (`once_push`).
    once: HashMap<RegionId, Vec<(Ident, TokenStream)>>,
    /// Loop bodies whose tuple push is written: no more values join it.
    once_closed: HashSet<RegionId>,
    /// Every `Stack` declared at the top: their buffers go back to the pool
    /// after the reverse sweep.
    pub stacks: Vec<Ident>,
    /// A function that calls itself (`calls_itself`): its name and the
    /// parameters whose adjoints its `_adjoint_acc` takes from the caller (the
    /// differentiated ones, in order). Its reverse sweep calls
    /// `NAME_adjoint_acc`, lending its own adjoint of a parameter passed
    /// through unchanged, instead of `NAME_pullback`.
    pub self_acc: Option<(Ident, Vec<VarId>)>,
    /// Variables by name (`None`: the name is not unique).
    names: HashMap<String, Option<VarId>>,
}

/// Generated code reaches the runtime's support module through this alias,
/// declared at the top of each generated function (`use ::tapeless::__private as __rt;`).
fn private() -> TokenStream {
    quote!(__rt)
}

impl<'b> Gen<'b> {
    pub fn new(body: &'b Body, an: &'b Analysis) -> Self {
        let mut moved = vec![false; body.vars.len()];
        // A variable is `Copy` (a by-value use does not move it) when the code
        // would not compile otherwise: it is used by value inside a loop (without
        // `break` or `return`) that it is declared outside of, or twice in one block.
        let repeated = |v: VarId, at: RegionId| -> bool {
            let outer = &body.regions[body.vars[v].region].loops;
            !body.has_return
                && body.regions[at]
                    .loops
                    .iter()
                    .any(|l| !outer.contains(l) && !body.loops[*l].has_break)
        };
        let mut copies = vec![false; body.vars.len()];
        let mut uses: HashMap<(VarId, RegionId), usize> = HashMap::new();
        let mut bare = |a: &Atom, at: RegionId| {
            if let Atom::Place(p) = a {
                if p.proj.is_empty() && !p.wrap.contains(&Wrap::Ref) {
                    moved[p.root] = true;
                    let n = uses.entry((p.root, at)).or_default();
                    *n += 1;
                    if *n >= 2 || repeated(p.root, at) {
                        copies[p.root] = true;
                    }
                }
            }
        };
        walk_regions(&body.block, &mut |s, at| match s {
            Stmt::Let { value: Some(e), .. } | Stmt::Assign { value: e, .. } => match e {
                Expr::Atom(a) | Expr::Repeat(a, _) | Expr::VecRepeat(a, _) => bare(a, at),
                // Operators take their operands by value: `c + b` moves a `Tensor` `c`.
                Expr::Binary(_, a, b) => {
                    bare(a, at);
                    bare(b, at);
                }
                Expr::Neg(a) => bare(a, at),
                Expr::Call { args, .. } => args.iter().for_each(|a| bare(a, at)),
                Expr::Tuple(v) | Expr::Array(v) | Expr::VecList(v) => {
                    v.iter().for_each(|a| bare(a, at))
                }
                _ => {}
            },
            Stmt::Tail(a) | Stmt::Return(_, a) => bare(a, at),
            _ => {}
        });
        for (m, c) in moved.iter_mut().zip(&copies) {
            *m &= !c;
        }
        let mut indexed = vec![false; body.vars.len()];
        walk(&body.block.stmts, &mut |s| {
            let mut mark = |p: &Place| {
                if p.proj.iter().any(|pr| matches!(pr, Proj::Index(_))) {
                    indexed[p.root] = true;
                }
            };
            match s {
                Stmt::Assign { place, value, .. } => {
                    mark(place);
                    expr_places(value, &mut mark);
                }
                Stmt::Let {
                    value: Some(value), ..
                } => expr_places(value, &mut mark),
                _ => {}
            }
        });
        for (i, v) in body.vars.iter().enumerate() {
            if v.copy {
                moved[i] = false;
            }
        }
        // Variables bound to a borrow (`let t = &sub[..1];`): a saved copy
        // must own the data, not keep it borrowed across later writes.
        let mut borrows = vec![false; body.vars.len()];
        walk(&body.block.stmts, &mut |s| {
            if let Stmt::Let {
                pat: Pat::Var(v),
                value: Some(e),
                ..
            } = s
            {
                borrows[*v] = match e {
                    Expr::Opaque { expr, .. } => matches!(**expr, syn::Expr::Reference(_)),
                    Expr::Atom(Atom::Place(p)) => p.wrap.last() == Some(&Wrap::Ref),
                    _ => false,
                };
            }
        });
        let in_scope: Vec<bool> = body
            .vars
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (v.kind == VarKind::Param || (v.region == 0 && !body.has_return)) && !moved[i]
            })
            .collect();
        let stable = body
            .vars
            .iter()
            .enumerate()
            .map(|(i, v)| in_scope[i] && !v.reassigned)
            .collect();
        let (sized, resized) = fixed_shape(body, &indexed, &in_scope);
        let mut g = Gen {
            body,
            an,
            top: Vec::new(),
            plans: HashMap::new(),
            n_slots: 0,
            region_stacks: HashMap::new(),
            stable,
            in_scope,
            typed: HashMap::new(),
            n_consts: 0,
            witness: HashMap::new(),
            indexed,
            sized,
            resized,
            n_tmp: 0,
            borrows,
            replay: vec![false; body.vars.len()],
            copyish: vec![false; body.vars.len()],
            replay_deps: HashMap::new(),
            replay_loops: HashMap::new(),
            counted: HashMap::new(),
            replay_lets: HashMap::new(),
            needed: HashSet::new(),
            rewound: Vec::new(),
            rewound_used: HashSet::new(),
            rewound_slot: HashMap::new(),
            loop_body: HashMap::new(),
            last_write_top: vec![0; body.vars.len()],
            cur_top: 0,
            hoisted: HashMap::new(),
            hoisted_pushes: HashMap::new(),
            promoted: HashMap::new(),
            n_promoted: 0,
            fused: None,
            fused_fwd: None,
            head_top: HashMap::new(),
            saved_once: HashMap::new(),
            region_restores: HashMap::new(),
            once: HashMap::new(),
            once_closed: HashSet::new(),
            stacks: Vec::new(),
            self_acc: None,
            names: HashMap::new(),
        };
        for (i, v) in body.vars.iter().enumerate() {
            g.names
                .entry(v.name.to_string())
                .and_modify(|e| *e = None)
                .or_insert(Some(i));
        }
        g.find_replay(&body.block.stmts);
        g.rewound = vec![false; body.vars.len()];
        g.find_rewound(&body.block.stmts);
        walk(&body.block.stmts, &mut |s| {
            if let Stmt::Loop { lp, body: b, .. } = s {
                g.loop_body.insert(*lp, b);
            }
        });
        let mut head_top = HashMap::new();
        let mut blocks: Vec<&Block> = g.loop_body.values().copied().collect();
        walk(&body.block.stmts, &mut |s| {
            if let Stmt::If { then, els, .. } = s {
                blocks.push(then);
                blocks.push(els);
            }
        });
        for b in blocks {
            let end = g.first_exit(&b.stmts, b.region).unwrap_or(b.stmts.len());
            for st in &b.stmts[..end] {
                if let Some(id) = stmt_id(st) {
                    head_top.insert(id, b.region);
                }
            }
        }
        g.head_top = head_top;
        let mut by_name: HashMap<String, Vec<VarId>> = HashMap::new();
        for (i, v) in body.vars.iter().enumerate() {
            by_name.entry(v.name.to_string()).or_default().push(i);
        }
        for (k, top) in body.block.stmts.iter().enumerate() {
            let mut hit: Vec<VarId> = Vec::new();
            let mut text = String::new();
            walk(std::slice::from_ref(top), &mut |s| {
                let expr = |e: &Expr, hit: &mut Vec<VarId>, text: &mut String| {
                    if let Expr::Opaque { expr, .. } = e {
                        text.push_str(&quote!(#expr).to_string());
                        text.push(' ');
                    }
                    expr_places(e, &mut |p: &Place| {
                        if p.wrap.contains(&Wrap::Ref) {
                            hit.push(p.root);
                        }
                    });
                };
                match s {
                    Stmt::Assign { place, value, .. } => {
                        hit.push(place.root);
                        expr(value, &mut hit, &mut text);
                    }
                    Stmt::Let { pat, value, .. } => {
                        pat_vars(pat, &mut hit);
                        if let Some(e) = value {
                            expr(e, &mut hit, &mut text);
                        }
                    }
                    Stmt::Loop {
                        head: LoopHead::For { pat, iter, .. },
                        ..
                    } => {
                        text.push_str(&quote!(#pat #iter).to_string());
                        text.push(' ');
                    }
                    Stmt::Opaque(t) => {
                        text.push_str(&t.to_string());
                        text.push(' ');
                    }
                    _ => {}
                }
            });
            for w in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if let Some(vs) = by_name.get(w) {
                    hit.extend(vs);
                }
            }
            for v in hit {
                g.last_write_top[v] = k;
            }
        }
        g
    }

    // ------------------------------------------------------------ replay

    /// Finds the values the reverse sweep can recompute instead of saving:
    ///
    /// * the variable of `for i in a..b` (also `a..=b`, `a..`, `(..).step_by(s)`)
    ///   when `a` and `s` can be recomputed: iteration `k` (from 0) has
    ///   `i = a + k s`, and the trip count is recorded anyway;
    /// * a `let` at the top of a loop body (before anything that may leave the
    ///   body), never reassigned, whose value is a place, arithmetic, a cast or
    ///   integer arithmetic over values that are stable or recomputed: elements
    ///   of inputs that are never written (`x[i]`), index expressions
    ///   (`i * d + t`), and arithmetic on them (`w * x[i] + b`).
    ///
    /// Recomputed values are bound at the start of each reverse iteration of
    /// their loop, in program order, when some reverse code reads them.
    fn find_replay(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            match s {
                Stmt::If { then, els, .. } => {
                    // Inside a loop, a branch's `let`s are replayed like a loop
                    // body's: its reverse starts by recomputing them.
                    for b in [then, els] {
                        if self.body.regions[b.region].loop_depth > 0 {
                            self.replay_block_lets(b);
                        }
                    }
                    self.find_replay(&then.stmts);
                    self.find_replay(&els.stmts);
                }
                Stmt::Loop { lp, head, body, .. } => {
                    if let LoopHead::For { pat, iter, .. } = head {
                        self.replay_range(*lp, pat, iter, body.region);
                        self.find_counted(*lp, iter);
                    }
                    self.replay_block_lets(body);
                    self.find_replay(&body.stmts);
                }
                _ => {}
            }
        }
    }

    /// The `let`s of a loop body or branch that the reverse sweep can
    /// recompute (`replay_let`). Those after a statement that may leave the
    /// block are recomputed only where the reverse code runs that the block
    /// did not leave before them (`reverse_seq` puts them inside its guard).
    fn replay_block_lets(&mut self, b: &Block) {
        for s in &b.stmts {
            if let Stmt::Let {
                id,
                pat: Pat::Var(v),
                value: Some(e),
                ..
            } = s
            {
                self.replay_let(*v, *id, e, b.region);
            }
        }
    }

    fn replay_range(&mut self, lp: LoopId, pat: &TokenStream, iter: &syn::Expr, region: RegionId) {
        use syn::parse::Parser;
        let Ok(syn::Pat::Ident(pi)) = syn::Pat::parse_single.parse2(pat.clone()) else {
            return;
        };
        if pi.by_ref.is_some() || pi.mutability.is_some() || pi.subpat.is_some() {
            return;
        }
        let Some(Some(v)) = self.names.get(&pi.ident.to_string()).cloned() else {
            return;
        };
        if self.body.vars[v].region != region || self.body.vars[v].reassigned {
            return;
        }
        let (range, step) = match unparen(iter) {
            syn::Expr::MethodCall(m) if m.method == "step_by" && m.args.len() == 1 => {
                (unparen(&m.receiver), Some(m.args[0].clone()))
            }
            e => (e, None),
        };
        let syn::Expr::Range(r) = range else {
            return;
        };
        let Some(lo) = &r.start else {
            return;
        };
        let mut deps = Vec::new();
        if !self.pure_int(lo, &mut deps)
            || !step.as_ref().is_none_or(|s| self.pure_int(s, &mut deps))
        {
            return;
        }
        self.replay[v] = true;
        self.copyish[v] = true;
        self.replay_deps.insert(v, deps);
        self.replay_loops.insert(lp, (v, (**lo).clone(), step));
    }

    /// A `for` loop over `a..b`, `a..=b` or `(..).step_by(s)` whose bounds are
    /// integer arithmetic over stable or recomputed values, and that no
    /// `break`, `return` or `continue`/`break` of an outer loop leaves early:
    /// its trip count is the range's length, recomputed by the reverse sweep
    /// (`__rt::trip_count`) instead of counted and pushed per loop run.
    fn find_counted(&mut self, lp: LoopId, iter: &syn::Expr) {
        let (range, step) = match unparen(iter) {
            syn::Expr::MethodCall(m) if m.method == "step_by" && m.args.len() == 1 => {
                (unparen(&m.receiver), Some(&m.args[0]))
            }
            e => (e, None),
        };
        let syn::Expr::Range(r) = range else {
            return;
        };
        let (Some(lo), Some(hi)) = (&r.start, &r.end) else {
            return;
        };
        let mut deps = Vec::new();
        if !self.pure_int(lo, &mut deps)
            || !self.pure_int(hi, &mut deps)
            || !step.is_none_or(|s| self.pure_int(s, &mut deps))
        {
            return;
        }
        if !self.body.exits.iter().any(|e| leaves_early(e, lp)) {
            self.counted.insert(lp, (iter.clone(), deps));
        }
    }

    /// `e` is arithmetic on literals, constants and stable or recomputed variables.
    fn pure_int(&self, e: &syn::Expr, deps: &mut Vec<VarId>) -> bool {
        match e {
            syn::Expr::Lit(_) => true,
            syn::Expr::Paren(p) => self.pure_int(&p.expr, deps),
            syn::Expr::Group(g) => self.pure_int(&g.expr, deps),
            syn::Expr::Cast(c) => self.pure_int(&c.expr, deps),
            syn::Expr::Unary(u) => {
                matches!(u.op, syn::UnOp::Neg(_) | syn::UnOp::Not(_))
                    && self.pure_int(&u.expr, deps)
            }
            syn::Expr::Binary(b) => {
                use syn::BinOp::*;
                matches!(
                    b.op,
                    Add(_)
                        | Sub(_)
                        | Mul(_)
                        | Div(_)
                        | Rem(_)
                        | BitXor(_)
                        | BitAnd(_)
                        | BitOr(_)
                        | Shl(_)
                        | Shr(_)
                        | Eq(_)
                        | Lt(_)
                        | Le(_)
                        | Ne(_)
                        | Ge(_)
                        | Gt(_)
                        | And(_)
                        | Or(_)
                ) && self.pure_int(&b.left, deps)
                    && self.pure_int(&b.right, deps)
            }
            // `x.len()` of a stable container nothing resizes.
            syn::Expr::MethodCall(m) if m.method == "len" && m.args.is_empty() => {
                let syn::Expr::Path(p) = unparen(&m.receiver) else {
                    return false;
                };
                let Some(id) = p.path.get_ident() else {
                    return false;
                };
                match self.names.get(&id.to_string()) {
                    Some(Some(v)) if self.stable[*v] && !self.resized.contains(&id.to_string()) => {
                        deps.push(*v);
                        true
                    }
                    _ => false,
                }
            }
            syn::Expr::Path(p) if p.qself.is_none() => {
                if let Some(id) = p.path.get_ident() {
                    match self.names.get(&id.to_string()) {
                        Some(Some(v))
                            if self.stable[*v] || (self.replay[*v] && self.copyish[*v]) =>
                        {
                            deps.push(*v);
                            true
                        }
                        Some(_) => false,
                        // A constant (`N`); anything else may be a variable the
                        // lowering does not track.
                        None => id.to_string().starts_with(|c: char| c.is_ascii_uppercase()),
                    }
                } else {
                    // `usize::MAX`, `consts::PI`
                    true
                }
            }
            _ => false,
        }
    }

    /// `a` can be evaluated again in reverse code of `region` (`by_value`: as an
    /// operand that is moved, so it must not move a value of `region`).
    fn replay_operand(
        &self,
        a: &Atom,
        by_value: bool,
        region: RegionId,
        deps: &mut Vec<VarId>,
    ) -> bool {
        match a {
            Atom::Lit(_) | Atom::Const(_) => true,
            Atom::Place(p) => {
                let r = p.root;
                if !(self.stable[r] || self.replay[r]) {
                    return false;
                }
                for pr in &p.proj {
                    if let Proj::Index(i) = pr {
                        if !self.replay_operand(i, true, region, deps) {
                            return false;
                        }
                    }
                }
                let moves = by_value
                    && !p.wrap.contains(&Wrap::Ref)
                    && !p.proj.iter().any(|pr| matches!(pr, Proj::Index(_)));
                // A value from outside the loop body that a loop moves is `Copy`
                // (the loop would not compile otherwise).
                if moves && self.body.vars[r].region == region && !self.copyish[r] {
                    return false;
                }
                deps.push(r);
                true
            }
        }
    }

    fn replay_let(&mut self, v: VarId, id: StmtId, e: &Expr, region: RegionId) {
        if self.body.vars[v].reassigned || self.body.vars[v].region != region {
            return;
        }
        let mut deps = Vec::new();
        // A literal alone is typed by how the forward sweep uses it (`let c =
        // 0.5; x * c` with `x: f32`), which the reverse sweep may not repeat.
        let lit = |a: &Atom| matches!(a, Atom::Lit(_) | Atom::Const(_));
        let copyish = match e {
            Expr::Atom(a) | Expr::Neg(a) | Expr::Cast(a, _) if lit(a) => return,
            Expr::Binary(_, a, b) if lit(a) && lit(b) => return,
            Expr::Atom(a) => {
                if !self.replay_operand(a, true, region, &mut deps) {
                    return;
                }
                !matches!(a, Atom::Place(p) if p.wrap.contains(&Wrap::Ref))
            }
            // Operands by value only (`Copy`, so cheap scalars), not `&a + &b`
            // on tensors, which would be recomputed at a cost.
            Expr::Binary(_, a, b) => {
                if [a, b].iter().any(|x| has_ref(x))
                    || !self.replay_operand(a, true, region, &mut deps)
                    || !self.replay_operand(b, true, region, &mut deps)
                {
                    return;
                }
                true
            }
            Expr::Neg(a) => {
                if has_ref(a) || !self.replay_operand(a, true, region, &mut deps) {
                    return;
                }
                true
            }
            Expr::Cast(a, _) => {
                if !self.replay_operand(a, true, region, &mut deps) {
                    return;
                }
                true
            }
            Expr::Opaque { expr, .. } => {
                if !self.pure_int(expr, &mut deps) || deps.is_empty() {
                    return;
                }
                // Variables of this body read by value must copy.
                if deps
                    .iter()
                    .any(|d| self.body.vars[*d].region == region && !self.copyish[*d])
                {
                    return;
                }
                true
            }
            _ => return,
        };
        self.replay[v] = true;
        self.copyish[v] = copyish;
        self.replay_deps.insert(v, deps);
        self.replay_lets
            .entry(region)
            .or_default()
            .push((v, id, e.clone()));
    }

    /// Finds rewound counters (`li` in `let mut li = j * n; for c in .. { ..
    /// l[li] ..; li += 1; }`). Such a counter is declared at the top level of a
    /// loop body with no `break`, `continue` or `return` inside it; every write
    /// is `v += k` or `v -= k` with an integer literal `k` (exact to undo),
    /// in code whose reverse runs (every enclosing `if`/loop up to the body has
    /// a reverse); it is never borrowed. The forward sweep saves its value once,
    /// at the end of each iteration of the body; the reverse iteration starts
    /// from that value and undoes each write when it reverses it, so a read in
    /// reverse code sees the value the forward read saw.
    fn find_rewound(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            match s {
                Stmt::If { then, els, .. } => {
                    self.find_rewound(&then.stmts);
                    self.find_rewound(&els.stmts);
                }
                Stmt::Loop { body, .. } => {
                    for s in &body.stmts {
                        if let Stmt::Let {
                            pat: Pat::Var(v),
                            mutable: true,
                            value: Some(_),
                            ..
                        } = s
                        {
                            let v = *v;
                            if !self.an.active(v)
                                && self.body.vars[v].region == body.region
                                && !self.borrows[v]
                                && self.rewind_ok(&body.stmts, v, true)
                            {
                                self.rewound[v] = true;
                            }
                        }
                    }
                    self.find_rewound(&body.stmts);
                }
                _ => {}
            }
        }
    }

    fn rewind_ok(&self, stmts: &[Stmt], v: VarId, reversed: bool) -> bool {
        let name = self.body.vars[v].name.to_string();
        let mut borrowed = false;
        let mut check = |e: &Expr| {
            expr_places(e, &mut |p: &Place| {
                if p.root == v && p.wrap.contains(&Wrap::Ref) {
                    borrowed = true;
                }
            })
        };
        for s in stmts {
            match s {
                Stmt::Break(..) | Stmt::Continue(..) | Stmt::Return(..) => return false,
                Stmt::Assign {
                    place,
                    value,
                    compound,
                    ..
                } => {
                    if place.root == v {
                        if !reversed || !place.proj.is_empty() || !place.wrap.is_empty() {
                            return false;
                        }
                        match (compound, value) {
                            (
                                Some(BinOp::Add | BinOp::Sub),
                                Expr::Binary(_, _, Atom::Lit(syn::Lit::Int(_))),
                            ) => {}
                            _ => return false,
                        }
                    } else {
                        check(value);
                    }
                }
                Stmt::Let { value: Some(e), .. } => check(e),
                Stmt::If { id, then, els, .. } => {
                    let r = reversed && self.an.has_rev.contains(id);
                    if !self.rewind_ok(&then.stmts, v, r) || !self.rewind_ok(&els.stmts, v, r) {
                        return false;
                    }
                }
                Stmt::Loop { lp, head, body, .. } => {
                    if let LoopHead::For { iter, .. } = head {
                        if quote!(#iter)
                            .to_string()
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == name)
                        {
                            return false;
                        }
                    }
                    let r = reversed && self.an.loop_rev[*lp];
                    if !self.rewind_ok(&body.stmts, v, r) {
                        return false;
                    }
                }
                Stmt::Opaque(t)
                    if t.to_string()
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == name) =>
                {
                    return false;
                }
                _ => {}
            }
        }
        !borrowed
    }

    /// The loop whose body is `region`, when a value read there (`xc[c]` in
    /// `for r in c + 1..d { .. xc[c] .. }`) is the same in every iteration of
    /// it: its root and index variables are declared outside the loop and
    /// never written in it, and the body has no `break`, `continue`, `return`,
    /// opaque statement or call. The read is then saved once per execution of
    /// the loop (in its first iteration, which always reaches it) instead of
    /// once per iteration.
    fn hoist_loop(&self, region: RegionId, a: &Atom) -> Option<LoopId> {
        let lp = *self.body.regions[region].loops.last()?;
        if self.fused == Some(lp) {
            // Each fused iteration pops what it pushed: nothing to hold.
            return None;
        }
        let b = *self.loop_body.get(&lp)?;
        if b.region != region {
            return None;
        }
        let Atom::Place(_) = a else {
            return None;
        };
        fn scan(stmts: &[Stmt], ok: &mut bool, written: &mut HashSet<VarId>, text: &mut String) {
            let expr =
                |e: &Expr, ok: &mut bool, written: &mut HashSet<VarId>, text: &mut String| {
                    match e {
                        Expr::Call { .. } => *ok = false,
                        Expr::Opaque { expr, .. } => {
                            text.push_str(&quote!(#expr).to_string());
                            text.push(' ');
                        }
                        _ => {}
                    }
                    expr_places(e, &mut |p: &Place| {
                        if p.wrap.contains(&Wrap::Ref) {
                            written.insert(p.root);
                        }
                    });
                };
            for s in stmts {
                match s {
                    Stmt::Break(..) | Stmt::Continue(..) | Stmt::Return(..) | Stmt::Opaque(_) => {
                        *ok = false
                    }
                    Stmt::Assign { place, value, .. } => {
                        written.insert(place.root);
                        expr(value, ok, written, text);
                    }
                    Stmt::Let { value: Some(e), .. } => expr(e, ok, written, text),
                    Stmt::If { then, els, .. } => {
                        scan(&then.stmts, ok, written, text);
                        scan(&els.stmts, ok, written, text);
                    }
                    Stmt::Loop { head, body, .. } => {
                        if let LoopHead::For { iter, .. } = head {
                            text.push_str(&quote!(#iter).to_string());
                            text.push(' ');
                        }
                        scan(&body.stmts, ok, written, text);
                    }
                    _ => {}
                }
            }
        }
        let (mut ok, mut written, mut text) = (true, HashSet::new(), String::new());
        scan(&b.stmts, &mut ok, &mut written, &mut text);
        if !ok {
            return None;
        }
        let words: HashSet<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        fn invariant(
            g: &Gen<'_>,
            lp: LoopId,
            a: &Atom,
            written: &HashSet<VarId>,
            words: &HashSet<&str>,
        ) -> bool {
            match a {
                Atom::Lit(_) | Atom::Const(_) => true,
                Atom::Place(p) => {
                    let r = p.root;
                    !g.body.regions[g.body.vars[r].region].loops.contains(&lp)
                        && !written.contains(&r)
                        && !words.contains(g.body.vars[r].name.to_string().as_str())
                        && p.proj.iter().all(|pr| match pr {
                            Proj::Field(_) => true,
                            Proj::Index(i) => invariant(g, lp, i, written, words),
                        })
                }
            }
        }
        invariant(self, lp, a, &written, &words).then_some(lp)
    }

    /// The loop whose reverse sweep can run inside its forward sweep, one
    /// reverse iteration right after each forward one: a `for` loop in the
    /// top block, directly followed by the tail `s`, that nothing leaves
    /// early and that writes nothing declared outside it except `s += e` /
    /// `s -= e`, reading `s` nowhere else. The adjoint of `s` is then the
    /// seed in every iteration (the tail passes it on; `+=` and `-=` pass it
    /// through), known before the loop, and each iteration's reverse reads
    /// only what that iteration computed. This is the one-pass gradient of a
    /// sum (a loss over data points) that a person would write: no second
    /// pass over the data, and the stacks hold one iteration at a time.
    pub fn find_fused(&mut self) {
        let body = self.body;
        if body.has_return {
            return;
        }
        let stmts = &body.block.stmts;
        let [.., Stmt::Loop {
            lp,
            head: LoopHead::For { reads, .. },
            body: lb,
            ..
        }, Stmt::Tail(Atom::Place(t))] = &stmts[..]
        else {
            return;
        };
        let sv = t.root;
        if !t.proj.is_empty()
            || !t.wrap.is_empty()
            || !self.an.active(sv)
            || !self.an.loop_rev[*lp]
            || reads.contains(&sv)
            // (A `continue` of the loop would skip the reverse iteration too;
            // exits of inner loops stay inside it.)
            || self.cut_short(*lp)
        {
            return;
        }
        let lp = *lp;
        let inside = |v: VarId| body.regions[body.vars[v].region].loops.contains(&lp);
        let scratch = self.scratch(lp, lb, sv);
        let mut ok = true;
        walk(&lb.stmts, &mut |st| {
            match st {
                // Buffers every iteration overwrites before reading them.
                Stmt::Assign { place, .. } if scratch.contains(&place.root) => {}
                // `s += e` / `s -= e`, and no other write outside the loop.
                Stmt::Assign {
                    place,
                    value,
                    compound,
                    ..
                } if !inside(place.root) => {
                    let accumulates = place.root == sv
                        && place.proj.is_empty()
                        && matches!(compound, Some(BinOp::Add | BinOp::Sub));
                    match value {
                        Expr::Binary(_, Atom::Place(q), rhs)
                            if accumulates && q.root == sv && q.proj.is_empty() =>
                        {
                            if matches!(rhs, Atom::Place(r) if r.root == sv) {
                                ok = false;
                            }
                        }
                        _ => ok = false,
                    }
                }
                Stmt::Loop {
                    head: LoopHead::For { reads, .. },
                    ..
                } if reads.contains(&sv) => ok = false,
                Stmt::Opaque(_) | Stmt::Tail(_) | Stmt::Return(..) => ok = false,
                // `s` read anywhere else.
                _ => stmt_places(st, &mut |p, _| {
                    if p.root == sv {
                        ok = false;
                    }
                }),
            }
            if let Stmt::Assign { value, .. }
            | Stmt::Let {
                value: Some(value), ..
            } = st
            {
                if matches!(value, Expr::Opaque { reads, .. } if reads.contains(&sv)) {
                    ok = false;
                }
            }
        });
        if ok {
            self.fused = Some(lp);
        }
    }

    /// Whether `region` is the body of the fused loop.
    fn is_fused_body(&self, region: RegionId) -> bool {
        self.fused
            .and_then(|lp| self.loop_body.get(&lp))
            .is_some_and(|b| b.region == region)
    }

    /// Whether statement `id` is at the top of `region`, a loop body or
    /// branch other than the fused loop's body, before anything that may
    /// leave it, and the region's tuple (`once_push`) is not written yet: what
    /// it saves can go into that tuple.
    fn in_open_head(&self, id: StmtId, region: RegionId) -> bool {
        self.head_top.get(&id) == Some(&region)
            && !self.is_fused_body(region)
            && !self.once_closed.contains(&region)
    }

    /// Whether a run of loop `lp` may end before its range is done, or an
    /// iteration stop early (a `continue` of it).
    fn cut_short(&self, lp: LoopId) -> bool {
        self.body
            .exits
            .iter()
            .any(|e| leaves_early(e, lp) || e.target == Some(lp))
    }

    /// The scratch buffers of the loop `lp` that a fused loop may write
    /// (`find_fused`): active `let mut` bindings of the top block, other than
    /// the sum `sv`, that every iteration writes before it reads them, so no
    /// value flows from one iteration (or from before the loop) into the next
    /// and each reverse iteration leaves their adjoint zero. What counts as
    /// written first, in the order the body runs:
    /// * `v = e` at the top level of the body (then all of `v`);
    /// * `v[i] = e` with a stable index `i` (then `v[i]`, for the rest of the
    ///   block it is in);
    /// * a loop `for t in 0..n`, at the top level and left by no `break` or
    ///   `continue`, whose body writes `v[t] = e` at its top level, where `v`
    ///   was declared `vec![x; n]` and keeps its length (then all of `v`).
    ///
    /// Reads of other elements, reads under a written prefix that is only
    /// conditional, and whole-value reads before `v` is all written disqualify
    /// `v`, and then the loop is not fused.
    fn scratch(&self, lp: LoopId, lb: &Block, sv: VarId) -> HashSet<VarId> {
        let body = self.body;
        let inside = |v: VarId| body.regions[body.vars[v].region].loops.contains(&lp);
        let mut cands: HashSet<VarId> = HashSet::new();
        walk(&lb.stmts, &mut |st| {
            if let Stmt::Assign { place, .. } = st {
                let v = place.root;
                if v != sv
                    && !inside(v)
                    && body.vars[v].kind != VarKind::Param
                    && body.vars[v].region == 0
                    && self.an.active(v)
                {
                    cands.insert(v);
                }
            }
        });
        // Declared lengths: `let mut v = vec![x; n]` with `n` a literal or an
        // immutable binding, for containers of a fixed shape.
        let mut lens: HashMap<VarId, String> = HashMap::new();
        for st in &body.block.stmts {
            if let Stmt::Let {
                pat: Pat::Var(v),
                value: Some(Expr::VecRepeat(_, n)),
                ..
            } = st
            {
                if let Some(key) = self.stable_key(n) {
                    if self.sized[*v] {
                        lens.insert(*v, key);
                    }
                }
            }
        }
        let mut sc = Scratch {
            cands,
            whole: HashSet::new(),
            elems: Vec::new(),
        };
        self.scratch_block(&lb.stmts, &lens, &mut sc);
        sc.cands
    }

    /// The text of an index that names the same element wherever it is read:
    /// a literal, or a binding never written after its declaration.
    fn stable_key(&self, a: &Atom) -> Option<String> {
        match a {
            Atom::Lit(l) => Some(quote!(#l).to_string()),
            Atom::Place(p) if p.proj.is_empty() && !self.body.vars[p.root].reassigned => {
                Some(self.body.vars[p.root].name.to_string())
            }
            _ => None,
        }
    }

    /// One block of `scratch`'s walk: the statements at its top level run
    /// whenever the block does; what they write covers later reads in it.
    fn scratch_block(&self, stmts: &[Stmt], lens: &HashMap<VarId, String>, sc: &mut Scratch) {
        for st in stmts {
            if sc.cands.is_empty() {
                return;
            }
            // Reads first: `v[i] += e` reads `v[i]` before it writes it.
            let mut bad: Vec<VarId> = Vec::new();
            stmt_places(st, &mut |p, written| {
                if !written && sc.cands.contains(&p.root) && !sc.covers(self, p) {
                    bad.push(p.root);
                }
            });
            for v in bad {
                sc.cands.remove(&v);
            }
            match st {
                Stmt::Assign {
                    place,
                    compound: None,
                    ..
                } if sc.cands.contains(&place.root) => match place.proj.as_slice() {
                    [] => {
                        sc.whole.insert(place.root);
                    }
                    [Proj::Index(i)] => {
                        if let Some(key) = self.stable_key(i) {
                            sc.elems.push((place.root, key));
                        }
                    }
                    _ => {}
                },
                Stmt::If { then, els, .. } => {
                    self.scratch_nested(then, lens, sc);
                    self.scratch_nested(els, lens, sc);
                }
                Stmt::Loop {
                    lp, head, body: b, ..
                } => {
                    self.scratch_nested(b, lens, sc);
                    // `for t in 0..n { .. v[t] = e; .. }` writes all of `v`.
                    let LoopHead::For { pat, iter, .. } = head else {
                        continue;
                    };
                    let Some(end) = range_from_zero(iter) else {
                        continue;
                    };
                    if self.cut_short(*lp) {
                        continue;
                    }
                    let t = pat.to_string();
                    for s in &b.stmts {
                        if let Stmt::Assign {
                            place,
                            compound: None,
                            ..
                        } = s
                        {
                            if let [Proj::Index(Atom::Place(i))] = place.proj.as_slice() {
                                let v = place.root;
                                if i.proj.is_empty()
                                    && self.body.vars[i.root].name == t
                                    && sc.cands.contains(&v)
                                    && lens.get(&v) == Some(&end)
                                {
                                    sc.whole.insert(v);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `scratch_block` on a nested block: what it writes covers reads inside
    /// it only (it may not run, or not to its end).
    fn scratch_nested(&self, b: &Block, lens: &HashMap<VarId, String>, sc: &mut Scratch) {
        let (whole, elems) = (sc.whole.clone(), sc.elems.len());
        self.scratch_block(&b.stmts, lens, sc);
        sc.whole = whole;
        sc.elems.truncate(elems);
    }

    /// The adjoint elements that every reverse iteration of loop `lp` only
    /// adds to at one and the same element (`xc[c]` in
    /// `for r in c + 1..d { qxc[r] += l[li] * xc[c]; .. }`): the root is
    /// active, declared outside the loop and not written in it, every place
    /// of it in the loop is the same element, and its indices are stable or
    /// recomputed values declared outside the loop. The reverse sweep adds to
    /// a local in the loop and adds the local to the element after it, so the
    /// sum stays in a register instead of going through memory every
    /// iteration (a store-to-load chain the compiler cannot remove, since it
    /// cannot tell that no other adjoint aliases the element).
    /// Returns each with its text (`emit_place_bare`), the key of `promoted`.
    fn promotable(&self, lp: LoopId, body: &Block) -> Vec<(String, Place)> {
        let mut places: Vec<(Place, bool)> = Vec::new();
        walk(&body.stmts, &mut |s| {
            stmt_places(s, &mut |p, written| places.push((p.clone(), written)))
        });
        fn outside(g: &Gen<'_>, lp: LoopId, v: VarId) -> bool {
            !g.body.regions[g.body.vars[v].region].loops.contains(&lp)
        }
        fn fixed_index(g: &Gen<'_>, lp: LoopId, p: &Place) -> bool {
            p.proj.iter().all(|pr| match pr {
                Proj::Field(_) => true,
                Proj::Index(Atom::Place(i)) => {
                    let r = i.root;
                    (g.stable[r] || g.replay[r]) && outside(g, lp, r) && fixed_index(g, lp, i)
                }
                Proj::Index(_) => true,
            })
        }
        let mut out: Vec<(String, Place)> = Vec::new();
        let mut seen: HashSet<VarId> = HashSet::new();
        for (p, _) in &places {
            let r = p.root;
            if !seen.insert(r) || !self.an.active(r) || !outside(self, lp, r) || p.proj.is_empty() {
                continue;
            }
            let key = emit_place_bare(&self.body.vars, p).to_string();
            let same = places
                .iter()
                .filter(|(q, _)| q.root == r)
                .all(|(q, written)| {
                    !written && emit_place_bare(&self.body.vars, q).to_string() == key
                });
            if same && fixed_index(self, lp, p) {
                out.push((key, p.clone()));
            }
        }
        out
    }

    /// Marks a recomputed variable (and what it is computed from) as read.
    fn need(&mut self, v: VarId) {
        if !self.replay[v] || !self.needed.insert(v) {
            return;
        }
        for d in self.replay_deps.get(&v).cloned().unwrap_or_default() {
            self.need(d);
        }
    }

    fn need_atom(&mut self, a: &Atom) {
        if let Atom::Place(p) = a {
            self.need(p.root);
            if self.rewound[p.root] {
                self.rewound_used.insert(p.root);
            }
            for pr in &p.proj {
                if let Proj::Index(i) = pr {
                    self.need_atom(i);
                }
            }
        }
    }

    /// Binds the recomputed values of a loop body at the start of a reverse iteration.
    /// The recomputed `let`s of the first segment of a block's statements (up
    /// to the first statement that may leave it): the start of its reverse.
    fn replay_prelude(&self, stmts: &[Stmt], region: RegionId) -> TokenStream {
        let end = self
            .first_exit(stmts, region)
            .map_or(stmts.len(), |k| k + 1);
        let ids: HashSet<StmtId> = stmts[..end]
            .iter()
            .filter_map(|s| match s {
                Stmt::Let { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut out = TokenStream::new();
        for (v, id, e) in self.replay_lets.get(&region).into_iter().flatten() {
            if !self.needed.contains(v) || !ids.contains(id) {
                continue;
            }
            let e = self.typed.get(id).unwrap_or(e);
            let name = &self.body.vars[*v].name;
            let e = emit_expr(&self.body.vars, e);
            out.extend(quote!(let #name = #e;));
        }
        out
    }

    fn adj_name(&self, v: VarId) -> Ident {
        let name = self.body.vars[v].name.to_string();
        match name.strip_prefix("__") {
            Some(temp) => format_ident!("__d{}", temp),
            None => format_ident!("__d_{}", name),
        }
    }

    fn tmp(&mut self) -> Ident {
        self.n_tmp += 1;
        format_ident!("__g{}", self.n_tmp)
    }

    fn atom_stable(&self, a: &Atom) -> bool {
        match a {
            Atom::Place(p) => {
                self.stable[p.root]
                    && p.proj.iter().all(|pr| match pr {
                        Proj::Field(_) => true,
                        Proj::Index(i) => self.atom_stable(i),
                    })
            }
            _ => true,
        }
    }

    /// A binding of the top block, in scope in the reverse sweep, that no
    /// statement from the current one on writes: the reverse sweep of this
    /// and later statements reads its final value, which is the one the
    /// forward sweep read (`qdiag`, filled by an earlier loop).
    fn settled(&self, v: VarId) -> bool {
        self.in_scope[v] && self.body.vars[v].region == 0 && self.last_write_top[v] < self.cur_top
    }

    /// Stable, or made of values the reverse sweep recomputes.
    fn atom_replayable(&self, a: &Atom) -> bool {
        match a {
            Atom::Place(p) => {
                (self.stable[p.root]
                    || self.replay[p.root]
                    || self.rewound[p.root]
                    || self.settled(p.root))
                    && p.proj.iter().all(|pr| match pr {
                        Proj::Field(_) => true,
                        Proj::Index(i) => self.atom_replayable(i),
                    })
            }
            _ => true,
        }
    }

    // ------------------------------------------------------------ saving

    /// Makes `a` readable by the reverse code of statement `id` (in `region`),
    /// saving it before (`post == false`) or after the statement.
    fn read(
        &mut self,
        id: StmtId,
        region: RegionId,
        a: &Atom,
        kind: ReadKind,
        post: bool,
    ) -> TokenStream {
        let pv = private();
        let bare = match a {
            Atom::Place(p) => emit_place_bare(&self.body.vars, p),
            other => emit_atom(&self.body.vars, other),
        };
        let key = (format!("{bare}{post}"), kind);
        if let Some(t) = self.plans.get(&id).and_then(|p| p.reads.get(&key)) {
            return t.clone();
        }
        if kind == ReadKind::Shape && !self.atom_stable(a) {
            // The value is saved anyway: take the shape from it.
            let value_key = (format!("{bare}{post}"), ReadKind::Value);
            if let Some(v) = self.plans.get(&id).and_then(|p| p.reads.get(&value_key)) {
                return quote!(&#pv::shape_of(#v));
            }
        }
        let with_wraps = |base: TokenStream, a: &Atom| -> TokenStream {
            let mut t = base;
            if let Atom::Place(p) = a {
                for w in &p.wrap {
                    t = match w {
                        Wrap::Ref => quote!(&#t),
                        Wrap::Deref => quote!(*#t),
                    };
                }
            }
            t
        };
        // A shape is saved rather than recomputed: it is zero-sized for scalars.
        let readable = self.atom_stable(a) || (kind != ReadKind::Shape && self.atom_replayable(a));
        let out = if readable && !(post && kind != ReadKind::Value) {
            self.need_atom(a);
            match kind {
                ReadKind::Value => quote!(#pv::prim(&#bare)),
                ReadKind::Shape => quote!(&#pv::shape_of(#pv::prim(&#bare))),
                ReadKind::Plain => bare.clone(),
                ReadKind::CallArg => match a {
                    // A `Copy` parameter (`vs: &Vec<f64>`) as written, so deref
                    // coercion to the callee's `&[f64]` still applies.
                    Atom::Place(p)
                        if p.wrap.is_empty()
                            && p.proj.is_empty()
                            && self.body.vars[p.root].copy =>
                    {
                        let mut name = self.body.vars[p.root].name.clone();
                        name.set_span(p.span);
                        quote!(#name)
                    }
                    Atom::Place(p) if p.wrap.is_empty() => {
                        quote!({ let __a = #pv::save(&#bare); __a })
                    }
                    _ => emit_atom(&self.body.vars, a),
                },
            }
        } else if let Some(out) = self.saved_once(id, region, a, kind, post, &bare) {
            out
        } else {
            let slot = format_ident!("__s{}", self.n_slots);
            self.n_slots += 1;
            let borrowed_arg = kind == ReadKind::CallArg
                && matches!(a, Atom::Place(p) if p.proj.is_empty() && p.wrap.is_empty() && self.borrows[p.root]);
            // `*r` passed by value (`r` a reference, a by-reference loop
            // variable): the value behind it, owned, not the reference.
            let deref_arg = kind == ReadKind::CallArg
                && matches!(a, Atom::Place(p) if !p.wrap.is_empty() && p.wrap.iter().all(|w| *w == Wrap::Deref));
            let saved = match kind {
                ReadKind::Shape => quote!(#pv::shape_of(#pv::prim(&#bare))),
                ReadKind::CallArg if deref_arg => quote!(#pv::save_owned(#pv::prim(&#bare))),
                // A borrowed argument (`&sub[..1]`): an owned copy of the data,
                // lent to the call again in the reverse sweep.
                ReadKind::CallArg if borrowed_arg => quote!(#pv::save_owned(#pv::prim(&#bare))),
                // The value itself, owned: saving a reference (`e` in
                // `for e in w.iter()`) would keep `w` borrowed.
                ReadKind::Value => quote!(#pv::save_owned(#pv::prim(&#bare))),
                _ => quote!(#pv::save(&#bare)),
            };
            // The top block, or the body of the fused loop, whose reverse
            // iteration runs in the same block: a local is enough.
            let in_top = (region == 0 || self.is_fused_body(region)) && !self.body.has_return;
            let hoist = if !in_top && !post && kind == ReadKind::Value {
                self.hoist_loop(region, a)
            } else {
                None
            };
            let (save, restore) = if let Some(lp) = hoist {
                let hold = format_ident!("__h{}", self.n_slots - 1);
                self.top.push(quote!(let mut #slot = #pv::Stack::new();));
                self.stacks.push(slot.clone());
                let n = format_ident!("__n{}", lp);
                self.hoisted
                    .entry(lp)
                    .or_default()
                    .push((slot.clone(), hold.clone()));
                let save = if self.counted.contains_key(&lp) {
                    // Pushed before the loop (`forward_loop`): what it reads
                    // is not written in the loop, and a counted loop's first
                    // iteration reaches the read when there is one.
                    self.hoisted_pushes
                        .entry(lp)
                        .or_default()
                        .push((slot.clone(), quote!(#slot.push(#saved);)));
                    quote!()
                } else {
                    let first = if self.body.loops[lp].outer.is_empty() {
                        quote!(#n == 1)
                    } else {
                        let kn = format_ident!("__kn{}", lp);
                        quote!(#n[#kn] == 1)
                    };
                    quote!(if #first { #slot.push(#saved); })
                };
                (save, Some(quote!(let #slot = #pv::held(&#hold);)))
            } else if in_top {
                (quote!(let #slot = #saved;), None)
            } else if self.body.regions[region].loop_depth == 0 {
                self.top
                    .push(quote!(let mut #slot = ::core::option::Option::None;));
                (
                    quote!(#slot = ::core::option::Option::Some(#saved);),
                    Some(quote!(let #slot = #pv::unslot(&mut #slot);)),
                )
            } else if self.in_open_head(id, region) {
                // A statement of the head of a loop body or branch (before
                // anything that may leave it): the value goes onto the
                // region's tuple stack with the head's other saved values,
                // pushed where the head ends and popped into its slot when
                // the region's reverse starts (`once_push`): one push, one
                // pop and one stack per run of the region instead of one
                // per value.
                let keep = format_ident!("__k{}", self.n_slots - 1);
                self.once
                    .entry(region)
                    .or_default()
                    .push((slot.clone(), quote!(#keep)));
                (quote!(let #keep = #saved;), None)
            } else {
                self.top.push(quote!(let mut #slot = #pv::Stack::new();));
                self.stacks.push(slot.clone());
                self.region_stacks
                    .entry(region)
                    .or_default()
                    .push(slot.clone());
                (
                    quote!(#slot.push(#saved);),
                    Some(quote!(let #slot = #pv::pop(&mut #slot);)),
                )
            };
            let plan = self.plans.entry(id).or_default();
            if post {
                plan.post.push(save);
            } else {
                plan.pre.push(save);
            }
            plan.restores.extend(restore);
            match kind {
                ReadKind::Value => quote!(#pv::prim(&#slot)),
                ReadKind::Shape => quote!(&#slot),
                ReadKind::Plain => quote!(#slot),
                ReadKind::CallArg if borrowed_arg => quote!(&#slot),
                ReadKind::CallArg if deref_arg => quote!(#slot),
                ReadKind::CallArg => with_wraps(quote!(#slot), a),
            }
        };
        self.plans
            .entry(id)
            .or_default()
            .reads
            .insert(key, out.clone());
        out
    }

    /// A value read by reverse code that is an immutable binding `v` of a
    /// loop body (`let forget = ..sigmoid()` read by three operations): it
    /// is saved once per iteration. The first statement that reads it copies
    /// it into a local, if that statement is at the top of `v`'s own body
    /// before anything that may leave it; the copy goes onto the body's
    /// tuple stack where the head ends (`once_push`, so the push runs in
    /// every iteration) and is popped at the start of the reverse iteration
    /// (`region_restores`), where every later read of `v` in the iteration,
    /// nested loops included, finds it. Otherwise each reading statement
    /// pushes and pops its own copy. `None`: the read is saved that usual
    /// way.
    fn saved_once(
        &mut self,
        id: StmtId,
        region: RegionId,
        a: &Atom,
        kind: ReadKind,
        post: bool,
        bare: &TokenStream,
    ) -> Option<TokenStream> {
        let pv = private();
        let Atom::Place(p) = a else {
            return None;
        };
        if kind != ReadKind::Value || !p.proj.is_empty() || !p.wrap.is_empty() {
            return None;
        }
        let v = p.root;
        let var = &self.body.vars[v];
        if var.reassigned || var.kind == VarKind::Param {
            return None;
        }
        if let Some(slot) = self.saved_once.get(&v) {
            return Some(quote!(#pv::prim(&#slot)));
        }
        if region != var.region
            || !self.loop_body.values().any(|b| b.region == region)
            || !self.in_open_head(id, region)
        {
            return None;
        }
        let slot = format_ident!("__s{}", self.n_slots);
        let keep = format_ident!("__k{}", self.n_slots);
        self.n_slots += 1;
        // Copied where it is first read (a later statement may move `v`),
        // pushed with the others where the head ends.
        let save = quote!(let #keep = #pv::save_owned(#pv::prim(&#bare)););
        let plan = self.plans.entry(id).or_default();
        if post {
            plan.post.push(save);
        } else {
            plan.pre.push(save);
        }
        self.once
            .entry(region)
            .or_default()
            .push((slot.clone(), quote!(#keep)));
        self.saved_once.insert(v, slot.clone());
        Some(quote!(#pv::prim(&#slot)))
    }

    /// The push of the values the head of a loop body or branch saves (its
    /// immutable bindings, `saved_once`, and the values its statements read,
    /// `read`), one tuple on one stack (`__oN`), written where the head ends
    /// (before its first statement that may leave the block, or at its end),
    /// where every value of the tuple is defined; and its pop where the
    /// block's reverse starts (the reverse iteration, or the recorded branch),
    /// into each value's slot.
    fn once_push(&mut self, region: RegionId) -> TokenStream {
        if !self.once_closed.insert(region) {
            return TokenStream::new();
        }
        let Some(vals) = self.once.get(&region).cloned() else {
            return TokenStream::new();
        };
        let pv = private();
        let stack = format_ident!("__o{}", region);
        self.top.push(quote!(let mut #stack = #pv::Stack::new();));
        self.stacks.push(stack.clone());
        self.region_stacks
            .entry(region)
            .or_default()
            .push(stack.clone());
        let slots = vals.iter().map(|(s, _)| s);
        let values = vals.iter().map(|(_, v)| v);
        self.region_restores
            .entry(region)
            .or_default()
            .push(quote!(let (#(#slots,)*) = #pv::pop(&mut #stack);));
        quote!(#stack.push((#(#values,)*));)
    }

    /// The adjoint of a place, as `&mut` tangent; reads its indices.
    fn adj_mut(&mut self, id: StmtId, region: RegionId, p: &Place) -> TokenStream {
        let pv = private();
        if !self.promoted.is_empty() {
            let key = emit_place_bare(&self.body.vars, p).to_string();
            if let Some(local) = self.promoted.get(&key) {
                return quote!(&mut #local);
            }
        }
        let mut l = {
            let d = self.adj_name(p.root);
            quote!(#d)
        };
        for (k, proj) in p.proj.iter().enumerate() {
            l = match proj {
                Proj::Field(m) => quote!(#l.#m),
                Proj::Index(i) => {
                    let i = self.read(id, region, i, ReadKind::Plain, false);
                    if k == 0 && self.sized[p.root] {
                        quote!((*#pv::elem_in(&mut #l, #i)))
                    } else {
                        quote!((*#pv::elem_mut(&mut #l, #i)))
                    }
                }
            };
        }
        quote!(&mut #l)
    }

    fn active_place<'a>(&self, a: &'a Atom) -> Option<&'a Place> {
        match a {
            Atom::Place(p) if self.an.active(p.root) => Some(p),
            _ => None,
        }
    }

    /// Plans the reverse code of `y = e` (`out`: the place holding `y`) and
    /// returns it; saves go into the statement's plan.
    fn rev_expr(
        &mut self,
        id: StmtId,
        region: RegionId,
        e: &Expr,
        out: Option<&Atom>,
        d: &Ident,
        span: Span,
    ) -> TokenStream {
        let pv = private();
        let mut code = TokenStream::new();
        match e {
            Expr::Atom(a) => {
                if let Some(p) = self.active_place(a) {
                    let adj = self.adj_mut(id, region, p);
                    code.extend(quote!(#pv::acc(#adj, #d);));
                }
            }
            Expr::Method {
                rule, recv, name, ..
            } if matches!(rule.kind, RuleKind::Identity) => {
                if let Some(p) = self.active_place(recv) {
                    let adj = self.adj_mut(id, region, p);
                    if name == "to_vec" {
                        // The copy of an array is a `Vec`: its adjoint is
                        // added element-wise (`AccFrom<Vec<T>> for [T; N]`).
                        code.extend(quote!(#pv::acc_from(#adj, #d);));
                    } else {
                        code.extend(quote!(#pv::acc(#adj, #d);));
                    }
                }
            }
            Expr::Binary(..) | Expr::Neg(_) | Expr::Method { .. } | Expr::Cast(..) => {
                let (operands, trait_name, cast_ty): (Vec<&Atom>, &str, Option<&syn::Type>) =
                    match e {
                        Expr::Binary(op, l, r) => (vec![l, r], trait_of(rules::binary(*op)), None),
                        Expr::Neg(x) => (vec![x], "NegOp", None),
                        Expr::Cast(x, ty) => (vec![x], "CastTo", Some(ty)),
                        Expr::Method {
                            rule, recv, args, ..
                        } => {
                            let mut v = vec![recv];
                            v.extend(args.iter());
                            (v, trait_of(rule), None)
                        }
                        _ => unreachable!(),
                    };
                let tr = Ident::new(trait_name, Span::call_site());
                // Values first, so a shape can come from a saved value.
                for (k, reads) in partial_reads(e) {
                    if self.active_place(operands[k]).is_none() {
                        continue;
                    }
                    for r in reads {
                        match *r {
                            Operand::Value(j) => {
                                self.read(id, region, operands[j], ReadKind::Value, false);
                            }
                            Operand::Out => {
                                self.read(
                                    id,
                                    region,
                                    out.expect("rule reads the output"),
                                    ReadKind::Value,
                                    true,
                                );
                            }
                            _ => {}
                        }
                    }
                }
                for (k, reads) in partial_reads(e) {
                    let Some(target) = self.active_place(operands[k]) else {
                        continue;
                    };
                    let method = partial_method(e, k);
                    let mut args = Vec::new();
                    for r in reads {
                        args.push(match *r {
                            Operand::Value(j) => {
                                self.read(id, region, operands[j], ReadKind::Value, false)
                            }
                            Operand::Shape(j) => {
                                self.read(id, region, operands[j], ReadKind::Shape, false)
                            }
                            Operand::Int(j) => {
                                self.read(id, region, operands[j], ReadKind::Plain, false)
                            }
                            Operand::Out => self.read(
                                id,
                                region,
                                out.expect("rule reads the output"),
                                ReadKind::Value,
                                true,
                            ),
                            Operand::D => quote!(&#d),
                        });
                    }
                    let path = match cast_ty {
                        Some(ty) => quote!(<_ as #pv::rules::#tr<#ty>>::#method),
                        None => quote!(#pv::rules::#tr::#method),
                    };
                    let adj = self.adj_mut(id, region, target);
                    // Spanned at the user's statement: a missing rule for a type is reported there.
                    let call = quote::quote_spanned!(span=> #path(#(#args),*));
                    code.extend(quote!(#pv::acc(#adj, #call);));
                }
            }
            Expr::Tuple(xs) | Expr::Array(xs) => {
                let names: Vec<Ident> = (0..xs.len()).map(|_| self.tmp()).collect();
                let destructure = if matches!(e, Expr::Tuple(_)) {
                    quote!(let (#(#names,)*) = #d;)
                } else {
                    quote!(let [#(#names),*] = #d;)
                };
                code.extend(destructure);
                for (x, n) in xs.iter().zip(&names) {
                    if let Some(p) = self.active_place(x) {
                        let adj = self.adj_mut(id, region, p);
                        code.extend(quote!(#pv::acc(#adj, #n);));
                    }
                }
            }
            Expr::VecList(xs) => {
                let v = self.tmp();
                code.extend(quote!(let mut #v = #d;));
                for (k, x) in xs.iter().enumerate() {
                    if let Some(p) = self.active_place(x) {
                        let adj = self.adj_mut(id, region, p);
                        code.extend(quote!(#pv::acc(#adj, #pv::take(#pv::elem_mut(&mut #v, #k)));));
                    }
                }
            }
            Expr::Repeat(x, _) | Expr::VecRepeat(x, _) => {
                if let Some(p) = self.active_place(x) {
                    let adj = self.adj_mut(id, region, p);
                    code.extend(quote!(#pv::acc(#adj, #pv::sum_tangents(#d));));
                }
            }
            Expr::Call { callee, args, span } => {
                let rev_args: Vec<TokenStream> = args
                    .iter()
                    .map(|a| self.read(id, region, a, ReadKind::CallArg, false))
                    .collect();
                if let Some(code_acc) =
                    self.self_call(id, region, callee, args, &rev_args, d, *span)
                {
                    code.extend(code_acc);
                    return code;
                }
                let g = self.tmp();
                let call = match callee {
                    Callee::Path(path) => {
                        let mut path = path.clone();
                        let last = path.segments.last_mut().unwrap();
                        last.ident = pullback_name(&last.ident);
                        quote::quote_spanned!(*span=> #path(#(#rev_args,)* #d))
                    }
                    Callee::Method(m) => {
                        let m = pullback_name(m);
                        let recv = &rev_args[0];
                        let rest = &rev_args[1..];
                        quote::quote_spanned!(*span=> #recv.#m(#(#rest,)* #d))
                    }
                };
                code.extend(quote!(let (_, #g) = #call;));
                for (k, a) in args.iter().enumerate() {
                    if let Some(p) = self.active_place(a) {
                        let k = syn::Index::from(k);
                        let adj = self.adj_mut(id, region, p);
                        code.extend(quote!(#pv::acc_from(#adj, #g.#k);));
                    }
                }
            }
            Expr::StopGradient(..) | Expr::Opaque { .. } => {}
        }
        code
    }

    // ------------------------------------------------------------ forward

    pub fn forward_block(&mut self, b: &Block) -> TokenStream {
        let mut out = TokenStream::new();
        // The block's head: the statements before the first that may leave
        // it. A loop body or branch pushes the tuple of what its head saves
        // there.
        let head_end = self.first_exit(&b.stmts, b.region).unwrap_or(b.stmts.len());
        for (k, s) in b.stmts.iter().enumerate() {
            if b.region == 0 {
                self.cur_top = k;
            }
            if k == head_end {
                out.extend(self.once_push(b.region));
            }
            out.extend(self.forward_stmt(s, b.region));
        }
        if head_end == b.stmts.len() {
            out.extend(self.once_push(b.region));
        }
        if b.region == 0 {
            // Reads planned after the forward sweep (the reverse of the tail).
            self.cur_top = 0;
        }
        out
    }

    fn forward_stmt(&mut self, s: &Stmt, region: RegionId) -> TokenStream {
        match s {
            Stmt::Let {
                id,
                pat,
                mutable,
                ty,
                value,
                ..
            } => {
                let typed;
                let value = if self.an.has_rev.contains(id) {
                    typed = self.bind_literals(*id, value.as_ref().unwrap());
                    self.plan_let(*id, region, pat, &typed);
                    Some(&typed)
                } else {
                    value.as_ref()
                };
                let vars = &self.body.vars;
                let pat_t = emit_pat(vars, pat);
                let m = if *mutable { quote!(mut) } else { quote!() };
                let ty = ty.as_ref().map(|t| quote!(: #t));
                let init = value.as_ref().map(|v| {
                    let e = emit_expr(vars, v);
                    quote!(= #e)
                });
                let stmt = quote!(let #m #pat_t #ty #init;);
                let mut stmt = self.wrap_saves(*id, stmt);
                if let (Pat::Var(v), Some(_)) = (pat, value) {
                    stmt.extend(self.save_witness(*v, region));
                }
                stmt
            }
            Stmt::Assign {
                id,
                place,
                value,
                compound,
                ..
            } => {
                let typed;
                let value = if self.an.has_rev.contains(id) {
                    typed = self.bind_literals(*id, value);
                    self.plan_assign(*id, region, place, &typed);
                    &typed
                } else {
                    value
                };
                let vars = &self.body.vars;
                let lhs = emit_place_read(vars, place);
                let stmt = match (compound, value) {
                    (Some(op), Expr::Binary(_, _, rhs)) => {
                        let rhs = emit_atom(vars, rhs);
                        match op {
                            BinOp::Add => quote!(#lhs += #rhs;),
                            BinOp::Sub => quote!(#lhs -= #rhs;),
                            BinOp::Mul => quote!(#lhs *= #rhs;),
                            BinOp::Div => quote!(#lhs /= #rhs;),
                        }
                    }
                    _ => {
                        let e = emit_expr(vars, value);
                        quote!(#lhs = #e;)
                    }
                };
                self.wrap_saves(*id, stmt)
            }
            Stmt::If {
                id,
                cond,
                then,
                els,
            } => {
                if self.an.has_rev.contains(id) {
                    self.read(*id, region, cond, ReadKind::Plain, false);
                }
                let c = emit_atom(&self.body.vars, cond);
                let t = self.forward_block(then);
                let e = self.forward_block(els);
                let stmt = if els.stmts.is_empty() {
                    quote!(if #c { #t })
                } else {
                    quote!(if #c { #t } else { #e })
                };
                self.wrap_saves(*id, stmt)
            }
            Stmt::Loop {
                id,
                lp,
                head,
                body,
                label,
            } => self.forward_loop(*id, *lp, head, body, label.as_ref(), region),
            Stmt::Break(e, lp) => {
                let rec = if self.an.loop_rev[*lp] {
                    let n = (*e + 1) as u32;
                    let b = format_ident!("__b{}", lp);
                    if self.loop_parent_depth(*lp) == 0 {
                        quote!(#b = #n;)
                    } else {
                        let k = format_ident!("__kb{}", lp);
                        quote!(#b[#k] = #n;)
                    }
                } else {
                    quote!()
                };
                let label = exit_label(self.body, *lp, region);
                quote!(#rec break #label;)
            }
            Stmt::Continue(e, lp) => {
                let rec = if self.an.loop_rev[*lp] {
                    let n = (*e + 1) as u32;
                    let c = format_ident!("__c{}", lp);
                    let k = format_ident!("__kc{}", lp);
                    quote!(#c[#k] = #n;)
                } else {
                    quote!()
                };
                let label = exit_label(self.body, *lp, region);
                quote!(#rec continue #label;)
            }
            Stmt::Return(e, a) => {
                let n = (*e + 1) as u32;
                let v = emit_atom(&self.body.vars, a);
                quote!({ __ret = #n; break '__body #v; })
            }
            Stmt::Tail(_) => quote!(),
            Stmt::Opaque(t) => t.clone(),
        }
    }

    fn loop_is_target_of_labeled_exit(&self, lp: LoopId) -> bool {
        let mut found = false;
        walk(&self.body.block.stmts, &mut |s| {
            if let Stmt::Break(_, l) | Stmt::Continue(_, l) = s {
                if *l == lp {
                    found = true;
                }
            }
        });
        found
    }

    fn loop_parent_depth(&self, lp: LoopId) -> usize {
        self.body.loops[lp].outer.len()
    }

    fn wrap_saves(&mut self, id: StmtId, stmt: TokenStream) -> TokenStream {
        match self.plans.get(&id) {
            None => stmt,
            Some(p) => {
                let (pre, post) = (&p.pre, &p.post);
                quote!(#(#pre)* #stmt #(#post)*)
            }
        }
    }

    fn forward_loop(
        &mut self,
        id: StmtId,
        lp: LoopId,
        head: &LoopHead,
        body: &Block,
        label: Option<&syn::Lifetime>,
        stmt_region: RegionId,
    ) -> TokenStream {
        let rev = self.an.loop_rev[lp];
        let info = &self.body.loops[lp];
        let nested = !info.outer.is_empty();
        let n = format_ident!("__n{}", lp);
        let b = format_ident!("__b{}", lp);
        let c = format_ident!("__c{}", lp);
        let kn = format_ident!("__kn{}", lp);
        let kb = format_ident!("__kb{}", lp);
        let kc = format_ident!("__kc{}", lp);
        let mut pre = TokenStream::new();
        let mut start = TokenStream::new();
        let counted = self.counted.contains_key(&lp);
        if rev {
            if counted {
                // The reverse sweep recomputes the trip count.
            } else if nested {
                self.top.push(quote!(let mut #n = ::std::vec::Vec::new();));
                pre.extend(quote!(#n.push(0usize); let #kn = #n.len() - 1;));
                start.extend(quote!(#n[#kn] += 1;));
            } else {
                self.top.push(quote!(let mut #n = 0usize;));
                start.extend(quote!(#n += 1;));
            }
            if info.has_break {
                if nested {
                    self.top.push(quote!(let mut #b = ::std::vec::Vec::new();));
                    pre.extend(quote!(#b.push(0u32); let #kb = #b.len() - 1;));
                } else {
                    self.top.push(quote!(let mut #b = 0u32;));
                }
            }
            if info.has_continue {
                self.top.push(quote!(let mut #c = ::std::vec::Vec::new();));
                start.extend(quote!(#c.push(0u32); let #kc = #c.len() - 1;));
            }
        }
        if rev {
            if let Some((v, _, _)) = self.replay_loops.get(&lp) {
                // Gives the reverse sweep's recomputed loop variable its type.
                let ty = format_ident!("__ty{}", lp);
                let name = &self.body.vars[*v].name;
                let pv = private();
                self.top.push(quote!(let #ty = #pv::ItemType::new();));
                start.extend(quote!(#ty.tie(&#name);));
            }
        }
        let mut inner = self.forward_block(body);
        // Values a counted loop saves once per run, pushed before it when it
        // runs at all (after its range is evaluated: `__hint` is its trip count).
        let (slots, pushes): (Vec<Ident>, Vec<TokenStream>) = self
            .hoisted_pushes
            .remove(&lp)
            .unwrap_or_default()
            .into_iter()
            .unzip();
        let has_hoisted = !pushes.is_empty();
        let hoisted = if has_hoisted {
            // Pushed at most once per execution of the loop statement, so at
            // most once per iteration of a loop whose body holds it.
            self.region_stacks
                .entry(stmt_region)
                .or_default()
                .extend(slots);
            quote!(if __hint > 0 { #(#pushes)* })
        } else {
            quote!()
        };
        if rev {
            // Rewound counters of this body: their value at the end of the iteration.
            let pv = private();
            for s in &body.stmts {
                if let Stmt::Let {
                    pat: Pat::Var(v), ..
                } = s
                {
                    if self.rewound[*v] && self.rewound_used.contains(v) {
                        let slot = format_ident!("__s{}", self.n_slots);
                        self.n_slots += 1;
                        self.top.push(quote!(let mut #slot = #pv::Stack::new();));
                        self.stacks.push(slot.clone());
                        self.region_stacks
                            .entry(body.region)
                            .or_default()
                            .push(slot.clone());
                        let name = &self.body.vars[*v].name;
                        inner.extend(quote!(#slot.push(#name);));
                        self.rewound_slot.insert(*v, slot);
                    }
                }
            }
        }
        let stacks = self
            .region_stacks
            .get(&body.region)
            .cloned()
            .unwrap_or_default();
        // User labels are replaced by generated ones (`'__lN`); a loop gets a
        // label only when a `break`/`continue` from an inner loop names it.
        let _ = (id, label);
        let lab = if self.loop_is_target_of_labeled_exit(lp) && self.body.has_inner_exit(lp) {
            let l = loop_label(lp);
            quote!(#l:)
        } else {
            quote!()
        };
        if self.fused == Some(lp) {
            if let LoopHead::For { pat, iter, .. } = head {
                // Emitted by the reverse sweep, with each reverse iteration.
                self.fused_fwd = Some((quote!(#pre #lab for #pat in #iter), quote!(#start #inner)));
                return quote!();
            }
        }
        match head {
            LoopHead::For { pat, iter, .. } => {
                if (stacks.is_empty() && !has_hoisted) || !rev {
                    debug_assert!(
                        !has_hoisted,
                        "a hoisted read in a loop without a reverse sweep"
                    );
                    quote!(#pre #lab for #pat in #iter { #start #inner })
                } else if counted {
                    // A counted loop: its trip count is the range's exact
                    // length, nothing leaves it early, and each of these
                    // stacks is pushed at most once per iteration (by a
                    // statement of the body itself). Each stack is shadowed by
                    // a run of at most that many pushes (`__private::Run`),
                    // ended after the loop.
                    let pv = private();
                    let mut runs = stacks.clone();
                    runs.sort();
                    runs.dedup();
                    let it = format_ident!("__it{}", lp);
                    quote!(
                        #pre
                        let #it = ::core::iter::IntoIterator::into_iter(#iter);
                        let __hint = ::core::iter::Iterator::size_hint(&#it).0;
                        #hoisted
                        {
                            #(let mut #runs = #pv::run(&mut #runs, __hint);)*
                            #lab for #pat in #it { #start #inner }
                            #(#runs.done();)*
                        }
                    )
                } else {
                    let it = format_ident!("__it{}", lp);
                    quote!(
                        #pre
                        let #it = ::core::iter::IntoIterator::into_iter(#iter);
                        let __hint = ::core::iter::Iterator::size_hint(&#it).0;
                        #(#stacks.reserve(__hint);)*
                        #lab for #pat in #it { #start #inner }
                    )
                }
            }
            LoopHead::Loop => quote!(#pre #lab loop { #start #inner }),
        }
    }

    /// Saves a type witness (a zero-sized value) of `v` when its adjoint is
    /// indexed but `v` is out of scope in the reverse sweep.
    fn save_witness(&mut self, v: VarId, region: RegionId) -> TokenStream {
        if !self.an.active(v) || self.in_scope[v] || !self.indexed[v] {
            return quote!();
        }
        let pv = private();
        let w = format_ident!("__w{}", v);
        let name = &self.body.vars[v].name;
        if self.body.regions[region].loop_depth == 0 {
            self.top
                .push(quote!(let mut #w = ::core::option::Option::None;));
            self.witness
                .insert(v, (w.clone(), quote!(let #w = #pv::unslot(&mut #w);)));
            quote!(#w = ::core::option::Option::Some(#pv::witness(&#name));)
        } else {
            self.top.push(quote!(let mut #w = #pv::Stack::new();));
            self.stacks.push(w.clone());
            self.witness
                .insert(v, (w.clone(), quote!(let #w = #pv::pop(&mut #w);)));
            quote!(#w.push(#pv::witness(&#name));)
        }
    }

    /// Float literals that a rule reads (`x * 2.0`) become constants declared
    /// at the top of the function (`let __lit0 = 2.0;`), used in the primal
    /// expression, so rustc gives them the type the primal code implies (`f32`
    /// here, say) instead of defaulting a fresh literal in reverse code to `f64`.
    fn bind_literals(&mut self, id: StmtId, e: &Expr) -> Expr {
        let mut e = e.clone();
        let operands: Vec<&mut Atom> = match &mut e {
            Expr::Binary(_, a, b) => vec![a, b],
            Expr::Method { recv, args, .. } => {
                std::iter::once(recv).chain(args.iter_mut()).collect()
            }
            _ => Vec::new(),
        };
        let mut changed = false;
        for a in operands {
            if let Atom::Lit(l @ syn::Lit::Float(_)) = a {
                let c = format_ident!("__lit{}", self.n_consts);
                self.n_consts += 1;
                self.top.push(quote!(let #c = #l;));
                *a = Atom::Const(quote!(#c));
                changed = true;
            }
        }
        if changed {
            self.typed.insert(id, e.clone());
        }
        e
    }

    fn plan_let(&mut self, id: StmtId, region: RegionId, pat: &Pat, value: &Expr) {
        let d = format_ident!("__dummy");
        let out = match pat {
            Pat::Var(v) => Some(Atom::Place(Place {
                root: *v,
                proj: Vec::new(),
                wrap: Vec::new(),
                span: Span::call_site(),
            })),
            _ => None,
        };
        // Planning runs the same code as the reverse sweep; its tokens are dropped.
        let _ = self.rev_expr(id, region, value, out.as_ref(), &d, Span::call_site());
    }

    fn plan_assign(&mut self, id: StmtId, region: RegionId, place: &Place, value: &Expr) {
        let d = format_ident!("__dummy");
        let out = Atom::Place(place.clone());
        let _ = self.adj_mut(id, region, place);
        let _ = self.rev_expr(id, region, value, Some(&out), &d, Span::call_site());
    }

    // ------------------------------------------------------------ reverse

    /// Declarations of the adjoints of the active variables declared in `stmts`.
    fn adjoint_decls(&self, stmts: &[Stmt]) -> TokenStream {
        let pv = private();
        let mut out = TokenStream::new();
        for s in stmts {
            if let Stmt::Let { pat, .. } = s {
                let mut vs = Vec::new();
                pat_vars(pat, &mut vs);
                for v in vs {
                    if !self.an.active(v) {
                        continue;
                    }
                    let d = self.adj_name(v);
                    if self.in_scope[v] {
                        // A zero typed by the value (this also fixes the
                        // adjoint's type for arrays written by index).
                        let name = &self.body.vars[v].name;
                        let zero = self.zero_fn(v);
                        out.extend(quote!(let mut #d = #pv::#zero(&#name);));
                    } else if let Some((w, restore)) = self.witness.get(&v) {
                        // Out of scope: a zero of the type the saved witness names.
                        out.extend(quote!(#restore let mut #d = #pv::zero_for(#w);));
                    } else {
                        out.extend(quote!(let mut #d = #pv::zero();));
                    }
                }
            }
        }
        out
    }

    pub fn reverse_block(&mut self, b: &Block) -> TokenStream {
        let (decls, code) = self.reverse_seq(&b.stmts, b.region);
        quote!(#decls #code)
    }

    /// The reverse of a statement sequence, split at statements that may leave
    /// the block: `(adjoint declarations of the first segment, code)`. Each
    /// segment declares the adjoints of the variables it defines, so they exist
    /// only where the segment ran.
    fn reverse_seq(&mut self, stmts: &[Stmt], region: RegionId) -> (TokenStream, TokenStream) {
        let (head, rest) = match self.first_exit(stmts, region) {
            None => (stmts, &[][..]),
            Some(k) => stmts.split_at(k + 1),
        };
        let decls = self.adjoint_decls(head);
        let mut out = TokenStream::new();
        if !rest.is_empty() {
            let (rest_decls, rest_code) = self.reverse_seq(rest, region);
            if !rest_code.is_empty() {
                let exited = self.exited(head.last().unwrap(), region);
                // `let`s after the exit are recomputed only where they ran.
                let pre = self.replay_prelude(rest, region);
                out.extend(quote!(if !(#exited) { #pre #rest_decls #rest_code }));
            }
        }
        for s in head.iter().rev() {
            out.extend(self.reverse_stmt(s, region));
        }
        (decls, out)
    }

    /// The index of the first of `stmts` that may leave their block.
    fn first_exit(&self, stmts: &[Stmt], region: RegionId) -> Option<usize> {
        stmts
            .iter()
            .position(|s| !self.exits_of(s, region).is_empty())
    }

    /// Exit points inside `s` that leave `s` (and so its block).
    fn exits_of(&self, s: &Stmt, region: RegionId) -> Vec<ExitId> {
        let here = &self.body.regions[region].loops;
        let mut v = Vec::new();
        let mut visit = |s: &Stmt| match s {
            Stmt::Break(e, lp) | Stmt::Continue(e, lp) if here.contains(lp) => v.push(*e),
            Stmt::Return(e, _) => v.push(*e),
            _ => {}
        };
        visit(s);
        match s {
            Stmt::If { then, els, .. } => {
                walk(&then.stmts, &mut visit);
                walk(&els.stmts, &mut visit);
            }
            Stmt::Loop { body, .. } => walk(&body.stmts, &mut visit),
            _ => {}
        }
        v
    }

    /// Whether `s` left its block early, in reverse code at `region`.
    fn exited(&self, s: &Stmt, region: RegionId) -> TokenStream {
        let here = &self.body.regions[region].loops;
        let mut terms = Vec::new();
        for e in self.exits_of(s, region) {
            let exit = &self.body.exits[e];
            let n = (e + 1) as u32;
            let (record, lasts): (TokenStream, Vec<LoopId>) = match exit.kind {
                ExitKind::Return => (quote!(__ret == #n), here.clone()),
                ExitKind::Break => {
                    let t = exit.target.unwrap();
                    let b = format_ident!("__b{}", t);
                    let pos = here.iter().position(|l| *l == t).unwrap();
                    (quote!(#b == #n), here[pos..].to_vec())
                }
                ExitKind::Continue => {
                    let t = exit.target.unwrap();
                    let c = format_ident!("__c{}", t);
                    let pos = here.iter().position(|l| *l == t).unwrap();
                    (quote!(#c == #n), here[pos + 1..].to_vec())
                }
            };
            let lasts = lasts.iter().map(|l| format_ident!("__last{}", l));
            terms.push(quote!((#record #(&& #lasts)*)));
        }
        quote!(#(#terms)||*)
    }

    fn reverse_stmt(&mut self, s: &Stmt, region: RegionId) -> TokenStream {
        let pv = private();
        match s {
            // Undoes a write to a rewound counter.
            Stmt::Assign {
                place,
                value: Expr::Binary(_, _, k),
                compound: Some(op),
                ..
            } if self.rewound_slot.contains_key(&place.root) => {
                let name = &self.body.vars[place.root].name;
                let k = emit_atom(&self.body.vars, k);
                match op {
                    BinOp::Add => quote!(#name -= #k;),
                    _ => quote!(#name += #k;),
                }
            }
            Stmt::Let {
                id,
                pat,
                value: Some(value),
                span,
                ..
            } if self.an.has_rev.contains(id) => {
                let restores = self.restores(*id);
                if let (Pat::Tuple(ps), Expr::Tuple(xs)) = (pat, value) {
                    // `let (a, b) = (x, y)`: element by element, so an unused
                    // or constant element needs no tangent.
                    if ps.len() == xs.len() {
                        let mut code = restores;
                        for (p, x) in ps.iter().zip(xs) {
                            let Some(target) = self.active_place(x) else {
                                continue;
                            };
                            let d = match p {
                                Pat::Var(v) if self.an.active(*v) => {
                                    let d = self.adj_name(*v);
                                    quote!(#pv::take(&mut #d))
                                }
                                Pat::Tuple(_) => self.pat_tangent(p),
                                _ => continue,
                            };
                            let adj = self.adj_mut(*id, region, target);
                            code.extend(quote!(#pv::acc(#adj, #d);));
                        }
                        return code;
                    }
                }
                let (d, bind) = match pat {
                    Pat::Var(v) => (self.adj_name(*v), quote!()),
                    _ => {
                        let d = self.tmp();
                        let t = self.pat_tangent(pat);
                        (d.clone(), quote!(let #d = #t;))
                    }
                };
                let out = match pat {
                    Pat::Var(v) => Some(Atom::Place(Place {
                        root: *v,
                        proj: Vec::new(),
                        wrap: Vec::new(),
                        span: Span::call_site(),
                    })),
                    _ => None,
                };
                let value = self.typed.get(id).cloned().unwrap_or_else(|| value.clone());
                let code = self.rev_expr(*id, region, &value, out.as_ref(), &d, *span);
                quote!(#restores #bind #code)
            }
            Stmt::Assign {
                id,
                place,
                value,
                span,
                ..
            } if self.an.has_rev.contains(id) => {
                let restores = self.restores(*id);
                let d = self.tmp();
                let adj = self.adj_mut(*id, region, place);
                let out = Atom::Place(place.clone());
                let value = self.typed.get(id).cloned().unwrap_or_else(|| value.clone());
                let code = self.rev_expr(*id, region, &value, Some(&out), &d, *span);
                quote!(#restores let #d = #pv::take(#adj); #code)
            }
            Stmt::If {
                id,
                cond,
                then,
                els,
            } if self.an.has_rev.contains(id) => {
                let restores = self.restores(*id);
                let c = self.read(*id, region, cond, ReadKind::Plain, false);
                let mut t = self.reverse_block(then);
                let mut e = self.reverse_block(els);
                // The branches' recomputed `let`s, out of scope by now, and
                // the pop of what their heads saved (`once_push`).
                for (b, code) in [(then, &mut t), (els, &mut e)] {
                    let pops: Vec<TokenStream> = self
                        .region_restores
                        .get(&b.region)
                        .cloned()
                        .unwrap_or_default();
                    if !code.is_empty() || !pops.is_empty() {
                        let pre = self.replay_prelude(&b.stmts, b.region);
                        *code = quote!(#pre #(#pops)* #code);
                    }
                }
                if e.is_empty() {
                    quote!(#restores if #c { #t })
                } else {
                    quote!(#restores if #c { #t } else { #e })
                }
            }
            Stmt::Loop { id, lp, body, .. } if self.an.loop_rev[*lp] => {
                let mut promoted = Vec::new();
                let mut before = TokenStream::new();
                for (key, p) in self.promotable(*lp, body) {
                    if self.promoted.contains_key(&key) {
                        // An outer loop already keeps it in a local.
                        continue;
                    }
                    let local = format_ident!("__p{}", self.n_promoted);
                    self.n_promoted += 1;
                    before.extend(quote!(let mut #local = #pv::zero();));
                    self.promoted.insert(key.clone(), local.clone());
                    promoted.push((key, p, local));
                }
                let info = &self.body.loops[*lp];
                let nested = !info.outer.is_empty();
                let n = format_ident!("__n{}", lp);
                let b = format_ident!("__b{}", lp);
                let c = format_ident!("__c{}", lp);
                let last = format_ident!("__last{}", lp);
                let mut pre = TokenStream::new();
                let fused = self.fused == Some(*lp);
                if fused {
                    // Each reverse iteration runs inside its forward one.
                } else if let Some((iter, deps)) = self.counted.get(lp).cloned() {
                    // The trip count is the range's length, recomputed.
                    for d in deps {
                        self.need(d);
                    }
                    pre.extend(quote!(let #n = #pv::trip_count(#iter);));
                } else if nested {
                    pre.extend(quote!(let #n = #pv::pop(&mut #n);));
                    if info.has_break {
                        pre.extend(quote!(let #b = #pv::pop(&mut #b);));
                    }
                }
                let needs_last = self.body.exits.iter().any(|e| {
                    e.loops.contains(lp)
                        && !(matches!(e.kind, ExitKind::Continue) && e.target == Some(*lp))
                });
                let mut start = if needs_last && !fused {
                    quote!(let #last = __r == 0;)
                } else {
                    quote!()
                };
                if info.has_continue {
                    start.extend(quote!(let #c = #pv::pop(&mut #c);));
                }
                let inner = self.reverse_block(body);
                if let Some((v, lo, step)) = self.replay_loops.get(lp).cloned() {
                    if self.needed.contains(&v) && !fused {
                        // Iteration `k` from the start had `i = lo + k step`.
                        let (lo_n, ty) = (format_ident!("__lo{}", lp), format_ident!("__ty{}", lp));
                        let name = &self.body.vars[v].name;
                        pre.extend(quote!(let #lo_n = #lo;));
                        let k = match step {
                            Some(st) => {
                                let st_n = format_ident!("__st{}", lp);
                                pre.extend(quote!(let #st_n: usize = #st;));
                                quote!((#n - 1 - __r) * #st_n)
                            }
                            None => quote!(#n - 1 - __r),
                        };
                        start.extend(quote!(let #name = #pv::range_nth(&#ty, #lo_n, #k);));
                    }
                }
                if !fused {
                    // (A fused iteration still has the forward values.)
                    start.extend(self.replay_prelude(&body.stmts, body.region));
                }
                start.extend(
                    self.region_restores
                        .get(&body.region)
                        .cloned()
                        .into_iter()
                        .flatten(),
                );
                for (slot, hold) in self.hoisted.get(lp).into_iter().flatten() {
                    pre.extend(quote!(
                        let #hold = if #n > 0 {
                            ::core::option::Option::Some(#pv::pop(&mut #slot))
                        } else {
                            ::core::option::Option::None
                        };
                    ));
                }
                for s in &body.stmts {
                    if let Stmt::Let {
                        pat: Pat::Var(v), ..
                    } = s
                    {
                        if let Some(slot) = self.rewound_slot.get(v) {
                            let name = &self.body.vars[*v].name;
                            start.extend(quote!(let mut #name = #pv::pop(&mut #slot);));
                        }
                    }
                }
                let mut after = TokenStream::new();
                for (key, p, local) in promoted {
                    self.promoted.remove(&key);
                    let adj = self.adj_mut(*id, region, &p);
                    after.extend(quote!(#pv::acc(#adj, #local);));
                }
                if fused {
                    if let Some((head, fwd)) = self.fused_fwd.take() {
                        return quote!(#before #head { #fwd #start #inner } #after);
                    }
                }
                quote!(#before #pre for __r in 0..#n { #start #inner } #after)
            }
            Stmt::Tail(a) | Stmt::Return(_, a) => match self.active_place(a) {
                Some(p) => {
                    let adj = self.adj_mut(usize::MAX, region, p);
                    quote!(#pv::acc(#adj, #pv::take(&mut __seed));)
                }
                None => quote!(),
            },
            _ => quote!(),
        }
    }

    fn restores(&self, id: StmtId) -> TokenStream {
        match self.plans.get(&id) {
            Some(p) => {
                let r = &p.restores;
                quote!(#(#r)*)
            }
            None => quote!(),
        }
    }

    fn pat_tangent(&self, pat: &Pat) -> TokenStream {
        let pv = private();
        match pat {
            Pat::Var(v) if self.an.active(*v) => {
                let d = self.adj_name(*v);
                quote!(#pv::take(&mut #d))
            }
            Pat::Var(_) | Pat::Wild => quote!(#pv::zero()),
            Pat::Tuple(ps) => {
                let ts: Vec<_> = ps.iter().map(|p| self.pat_tangent(p)).collect();
                quote!((#(#ts,)*))
            }
        }
    }

    /// The reverse of a call of the function itself (`self_acc`): its
    /// `_adjoint_acc` adds into this call's own adjoint of a parameter passed
    /// through unchanged (`det(a, ..)` inside `det(a: &[f64], ..)`), so no
    /// zero-filled gradient is allocated, returned and added per call; any
    /// other argument gets a zero of the parameter's shape, added to the
    /// argument's adjoint afterwards.
    #[allow(clippy::too_many_arguments)]
    fn self_call(
        &mut self,
        id: StmtId,
        region: RegionId,
        callee: &Callee,
        args: &[Atom],
        rev_args: &[TokenStream],
        d: &Ident,
        span: proc_macro2::Span,
    ) -> Option<TokenStream> {
        let (name, params) = self.self_acc.clone()?;
        let Callee::Path(path) = callee else {
            return None;
        };
        if path.leading_colon.is_some()
            || path.segments.len() != 1
            || path.segments[0].ident != name
        {
            return None;
        }
        let pv = private();
        let param_ids: Vec<VarId> = (0..self.body.vars.len())
            .filter(|&v| self.body.vars[v].kind == VarKind::Param)
            .collect();
        if param_ids.len() != args.len() {
            return None;
        }
        let mut before = TokenStream::new();
        let mut after = TokenStream::new();
        let mut slots = Vec::new();
        let mut lent: HashSet<VarId> = HashSet::new();
        for &pvar in &params {
            let k = param_ids.iter().position(|&v| v == pvar)?;
            let a = &args[k];
            let through = matches!(a, Atom::Place(p) if p.root == pvar
                && p.proj.is_empty()
                && p.wrap.iter().all(|w| *w == Wrap::Ref)
                && self.stable[pvar]
                // (an adjoint element summed in a local, `promoted`: keep
                // the whole adjoint here)
                && self.promoted.is_empty());
            if through && lent.insert(pvar) {
                let adj = self.adj_name(pvar);
                slots.push(quote!(&mut #adj));
            } else {
                let z = self.tmp();
                let zero = self.zero_fn(pvar);
                let arg = &rev_args[k];
                before.extend(quote!(let mut #z = #pv::#zero(&#arg);));
                slots.push(quote!(&mut #z));
                if let Some(p) = self.active_place(a) {
                    let adj = self.adj_mut(id, region, p);
                    after.extend(quote!(#pv::acc_from(#adj, #z);));
                }
            }
        }
        let acc = format_ident!("{}_adjoint_acc", name);
        let call = quote::quote_spanned!(span=> #acc(#(#rev_args,)* #d, #(#slots),*));
        Some(quote!(#before let _ = #call; #after))
    }

    /// The declarations of the differentiated parameters' adjoints, and the
    /// code that hands them back. With `from_slots` (a self-calling
    /// function's `_adjoint_acc`), those of `self_acc` are taken from the
    /// caller's slots (`__acc_<name>`) and put back at the end; the others,
    /// and all without `from_slots`, start from zero.
    pub fn param_adjoints(&self, from_slots: bool) -> (TokenStream, TokenStream) {
        let pv = private();
        let mut take = TokenStream::new();
        let mut give = TokenStream::new();
        let lent: &[VarId] = match (&self.self_acc, from_slots) {
            (Some((_, p)), true) => p,
            _ => &[],
        };
        for (i, v) in self.body.vars.iter().enumerate() {
            if v.kind == VarKind::Param && self.an.varied[i] {
                let d = self.adj_name(i);
                let name = &v.name;
                if lent.contains(&i) {
                    let slot = format_ident!("__acc_{}", name);
                    take.extend(quote!(let mut #d = #pv::take(#slot);));
                    give.extend(quote!(*#slot = #d;));
                } else {
                    let zero = self.zero_fn(i);
                    take.extend(quote!(let mut #d = #pv::#zero(&#name);));
                }
            }
        }
        (take, give)
    }

    /// The zero an in-scope variable's adjoint starts from: shaped like the
    /// value for a container of fixed shape (`sized`), else shapeless.
    fn zero_fn(&self, v: VarId) -> Ident {
        if self.sized[v] {
            format_ident!("zero_shaped")
        } else {
            format_ident!("zero_of")
        }
    }

    pub fn adj_of_param(&self, name: &Ident) -> Ident {
        let i = self.body.vars.iter().position(|v| v.name == *name).unwrap();
        self.adj_name(i)
    }
}

/// Calls `f` on every statement with the region it is in, depth first.
fn walk_regions<'b>(b: &'b Block, f: &mut impl FnMut(&'b Stmt, RegionId)) {
    for s in &b.stmts {
        f(s, b.region);
        match s {
            Stmt::If { then, els, .. } => {
                walk_regions(then, f);
                walk_regions(els, f);
            }
            Stmt::Loop { body, .. } => walk_regions(body, f),
            _ => {}
        }
    }
}

fn has_ref(a: &Atom) -> bool {
    matches!(a, Atom::Place(p) if p.wrap.contains(&Wrap::Ref))
}

fn unparen(e: &syn::Expr) -> &syn::Expr {
    match e {
        syn::Expr::Paren(p) => unparen(&p.expr),
        syn::Expr::Group(g) => unparen(&g.expr),
        e => e,
    }
}

/// What `Gen::scratch` knows at a point of a loop body: the candidates not
/// yet disqualified, those written as a whole, and the elements written
/// (`v[i]`, by the index's text) in the enclosing blocks.
struct Scratch {
    cands: HashSet<VarId>,
    whole: HashSet<VarId>,
    elems: Vec<(VarId, String)>,
}

impl Scratch {
    fn covers(&self, g: &Gen<'_>, p: &Place) -> bool {
        if self.whole.contains(&p.root) {
            return true;
        }
        match p.proj.as_slice() {
            [Proj::Index(i)] => g
                .stable_key(i)
                .is_some_and(|k| self.elems.iter().any(|(v, e)| *v == p.root && *e == k)),
            _ => false,
        }
    }
}

/// `n` (as text) for a loop range `0..n`, `n` a literal or a single name.
fn range_from_zero(iter: &syn::Expr) -> Option<String> {
    let syn::Expr::Range(r) = iter else {
        return None;
    };
    if !matches!(r.limits, syn::RangeLimits::HalfOpen(_)) {
        return None;
    }
    match r.start.as_deref() {
        None => {}
        Some(syn::Expr::Lit(l)) if quote!(#l).to_string() == "0" => {}
        _ => return None,
    }
    match r.end.as_deref()? {
        syn::Expr::Lit(l) => Some(quote!(#l).to_string()),
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
}

/// Whether exit `e` ends a run of loop `lp` before its range is done: a
/// `return` from inside it, a `break` of it or of a loop around it, or a
/// `continue` of a loop around it.
fn leaves_early(e: &Exit, lp: LoopId) -> bool {
    let Some(at) = e.loops.iter().position(|l| *l == lp) else {
        return false;
    };
    let target = e.target.and_then(|t| e.loops.iter().position(|l| *l == t));
    match (&e.kind, target) {
        (ExitKind::Continue, Some(t)) => t < at,
        (ExitKind::Break, Some(t)) => t <= at,
        _ => true,
    }
}

/// Methods of the standard collections that change a container's length.
const RESIZING_METHODS: &[&str] = &[
    "push",
    "pop",
    "insert",
    "remove",
    "swap_remove",
    "extend",
    "extend_from_slice",
    "truncate",
    "resize",
    "resize_with",
    "clear",
    "append",
    "drain",
    "retain",
    "retain_mut",
    "split_off",
    "dedup",
    "dedup_by",
    "dedup_by_key",
];

/// The in-scope containers whose length never changes: indexed directly
/// (`v[i]`, never through a field first), never assigned as a whole, and never
/// the receiver of a resizing method or a `&mut` borrow in code the macro
/// leaves as it is. Their adjoint is allocated at the value's shape when the
/// reverse sweep starts (`zero_shaped`), so an index the primal code could
/// use is in range of the adjoint, and the reverse sweep indexes it
/// (`elem_in`) instead of growing it on demand (`elem_mut`), which keeps the
/// adjoint's pointer and length in registers.
fn fixed_shape(body: &Body, indexed: &[bool], in_scope: &[bool]) -> (Vec<bool>, HashSet<String>) {
    let mut fixed: Vec<bool> = (0..body.vars.len())
        .map(|v| indexed[v] && in_scope[v])
        .collect();
    let mut text: Vec<TokenStream> = Vec::new();
    let mut reshaped: Vec<VarId> = Vec::new();
    walk(&body.block.stmts, &mut |s| {
        // `assigned`: the place is written (`v = ..` reshapes `v`).
        let mut check = |p: &Place, assigned: bool| {
            let reshapes = match p.proj.first() {
                None => assigned,
                Some(first) => !matches!(first, Proj::Index(_)),
            };
            if reshapes {
                reshaped.push(p.root);
            }
        };
        stmt_places(s, &mut check);
        match s {
            Stmt::Assign { value, .. }
            | Stmt::Let {
                value: Some(value), ..
            } => {
                if let Expr::Opaque { expr, .. } = value {
                    text.push(quote!(#expr));
                }
            }
            Stmt::Loop {
                head: LoopHead::For { iter, .. },
                ..
            } => text.push(quote!(#iter)),
            Stmt::Opaque(t) => text.push(t.clone()),
            _ => {}
        }
    });
    for v in reshaped {
        fixed[v] = false;
    }
    let mut resized = HashSet::new();
    for t in text {
        resized_names(t, &mut resized);
    }
    for (v, var) in body.vars.iter().enumerate() {
        if resized.contains(&var.name.to_string()) {
            fixed[v] = false;
        }
    }
    (fixed, resized)
}

/// Names in `ts` followed by `.` and a resizing method, or after `&mut`.
fn resized_names(ts: TokenStream, out: &mut HashSet<String>) {
    use proc_macro2::TokenTree;
    let tt: Vec<TokenTree> = ts.into_iter().collect();
    for (k, t) in tt.iter().enumerate() {
        match t {
            TokenTree::Group(g) => resized_names(g.stream(), out),
            TokenTree::Ident(name) => {
                let method = match (tt.get(k + 1), tt.get(k + 2)) {
                    (Some(TokenTree::Punct(p)), Some(TokenTree::Ident(m)))
                        if p.as_char() == '.' =>
                    {
                        Some(m.to_string())
                    }
                    _ => None,
                };
                let borrowed_mut = k >= 2
                    && matches!(&tt[k - 1], TokenTree::Ident(m) if m == "mut")
                    && matches!(&tt[k - 2], TokenTree::Punct(p) if p.as_char() == '&');
                if borrowed_mut || method.is_some_and(|m| RESIZING_METHODS.contains(&m.as_str())) {
                    out.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
}

/// Calls `f` on every place statement `s` itself reads or writes (not those
/// of the blocks it holds), with `true` for the place an assignment writes.
fn stmt_places(s: &Stmt, f: &mut impl FnMut(&Place, bool)) {
    match s {
        Stmt::Assign { place, value, .. } => {
            f(place, true);
            expr_places(value, &mut |p| f(p, false));
        }
        Stmt::Let { value: Some(v), .. } => expr_places(v, &mut |p| f(p, false)),
        Stmt::If {
            cond: Atom::Place(p),
            ..
        }
        | Stmt::Tail(Atom::Place(p))
        | Stmt::Return(_, Atom::Place(p)) => f(p, false),
        _ => {}
    }
}

/// Calls `f` on every place an expression reads.
fn expr_places(e: &Expr, f: &mut impl FnMut(&Place)) {
    let mut atom = |a: &Atom| {
        if let Atom::Place(p) = a {
            f(p)
        }
    };
    match e {
        Expr::Atom(a)
        | Expr::Neg(a)
        | Expr::Cast(a, _)
        | Expr::Repeat(a, _)
        | Expr::StopGradient(a, _) => atom(a),
        Expr::VecRepeat(a, b) | Expr::Binary(_, a, b) => {
            atom(a);
            atom(b)
        }
        Expr::Method { recv, args, .. } => {
            atom(recv);
            args.iter().for_each(atom)
        }
        Expr::Call { args, .. } | Expr::Tuple(args) | Expr::Array(args) | Expr::VecList(args) => {
            args.iter().for_each(atom)
        }
        Expr::Opaque { .. } => {}
    }
}

fn pat_vars(p: &Pat, out: &mut Vec<VarId>) {
    match p {
        Pat::Var(v) => out.push(*v),
        Pat::Wild => {}
        Pat::Tuple(ps) => ps.iter().for_each(|p| pat_vars(p, out)),
    }
}

fn trait_of(rule: &rules::Rule) -> &'static str {
    match &rule.kind {
        RuleKind::Smooth { trait_name, .. } => trait_name,
        RuleKind::Constant | RuleKind::Identity => unreachable!("no rule trait"),
    }
}

fn partial_method(e: &Expr, k: usize) -> Ident {
    let rule: &rules::Rule = match e {
        Expr::Binary(op, ..) => rules::binary(*op),
        Expr::Neg(_) => &rules::NEG,
        Expr::Cast(..) => &rules::CAST,
        Expr::Method { rule, .. } => rule,
        _ => unreachable!(),
    };
    let RuleKind::Smooth { partials, .. } = &rule.kind else {
        unreachable!()
    };
    Ident::new(partials[k].as_ref().unwrap().method, Span::call_site())
}

/// The id of a statement that has one.
fn stmt_id(s: &Stmt) -> Option<StmtId> {
    match s {
        Stmt::Let { id, .. }
        | Stmt::Assign { id, .. }
        | Stmt::If { id, .. }
        | Stmt::Loop { id, .. } => Some(*id),
        _ => None,
    }
}

/// Whether the body calls the function itself by its bare name (`f(..)`).
pub fn calls_itself(body: &Body, name: &Ident) -> bool {
    let mut found = false;
    crate::analyse::walk(&body.block.stmts, &mut |s| {
        if let Stmt::Let {
            value:
                Some(Expr::Call {
                    callee: Callee::Path(p),
                    ..
                }),
            ..
        }
        | Stmt::Assign {
            value:
                Expr::Call {
                    callee: Callee::Path(p),
                    ..
                },
            ..
        } = s
        {
            if p.leading_colon.is_none() && p.segments.len() == 1 && p.segments[0].ident == *name {
                found = true;
            }
        }
    });
    found
}
