//! Forward mode: the pushforward (Jacobian-vector product) of a lowered body,
//! written as ordinary Rust *source* in the language `#[differentiable]`
//! accepts.
//!
//! Every variable `v` that depends on a differentiated parameter (*varied*)
//! gets a tangent `__tan_v`, computed right beside `v` by the chain rule:
//! arithmetic is written as arithmetic (`ȧ * b + a * ḃ`), every other
//! primitive calls the runtime's `fwd::<rule>_<partial>` function (the same
//! derivative rule as the reverse mode: a scalar linear map is its own
//! transpose), a call of another differentiable function calls its
//! `_pushforward`. Control flow is copied unchanged, so nothing is stored.
//!
//! Because the result stays inside the macro's own language, the reverse mode
//! can differentiate it again: `hessian` puts `#[differentiable]` on the
//! pushforward, and the adjoint of the tangent is the Hessian-vector product.

use crate::analyse::Analysis;
use crate::emit::{
    emit_atom, emit_expr, emit_pat, emit_place_on, emit_place_read, exit_label, loop_label,
};
use crate::ir::*;
use crate::rules::{Operand, RuleKind};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

/// Rule traits with a forward-mode function in the runtime (`fwd::<snake>_<method>`).
/// Tensor rules have none: forward mode covers `f32`/`f64` code.
const FORWARD_TRAITS: &[&str] = &[
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Atan2",
    "Sinh",
    "Cosh",
    "Tanh",
    "Sigmoid",
    "Asinh",
    "Acosh",
    "Atanh",
    "Exp",
    "Exp2",
    "ExpM1",
    "Ln",
    "Ln1p",
    "Log",
    "Log2",
    "Log10",
    "Sqrt",
    "Cbrt",
    "Powi",
    "Powf",
    "Hypot",
    "Abs",
    "Recip",
    "MulAdd",
    "Max",
    "Min",
    "Clamp",
    "Fract",
    "ToDegrees",
    "ToRadians",
];

/// `Sin` -> `sin`, `ExpM1` -> `exp_m1`, `Ln1p` -> `ln1p`, `DivOp` -> `div_op`.
fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// The name of `v`'s tangent.
pub fn tangent_name(name: &Ident) -> Ident {
    let s = name.to_string();
    let base = s.strip_prefix("__").unwrap_or(&s);
    let base = base.strip_prefix("r#").unwrap_or(base);
    format_ident!("__tan_{}", base)
}

fn fwd() -> TokenStream {
    quote!(::tapeless::__private::fwd)
}

pub struct Fwd<'b> {
    body: &'b Body,
    an: &'b Analysis,
    n_tmp: usize,
    /// Parameters declared with a reference type (`x: &[f64]`, `&self`).
    ref_params: Vec<bool>,
    /// Errors: constructs forward mode does not support (spanned).
    pub errors: Vec<syn::Error>,
}

impl<'b> Fwd<'b> {
    /// `ref_params[k]`: parameter `k` (the body's variable `k`) is a reference.
    pub fn new(body: &'b Body, an: &'b Analysis, ref_params: Vec<bool>) -> Self {
        Fwd {
            body,
            an,
            n_tmp: 0,
            ref_params,
            errors: Vec::new(),
        }
    }

    /// The atom is a reference: `&x`, or a reference parameter as it is.
    fn is_ref(&self, a: &Atom) -> bool {
        match a {
            Atom::Place(p) => match p.wrap.last() {
                Some(Wrap::Ref) => true,
                Some(Wrap::Deref) => false,
                None => p.proj.is_empty() && self.ref_params.get(p.root).copied().unwrap_or(false),
            },
            Atom::Const(t) => t.to_string().starts_with('&'),
            Atom::Lit(_) => false,
        }
    }

    fn varied(&self, v: VarId) -> bool {
        self.an.varied[v]
    }

    fn tmp(&mut self, what: &str) -> Ident {
        self.n_tmp += 1;
        format_ident!("__f{}{}", what, self.n_tmp)
    }

    fn vars(&self) -> &'b [Var] {
        &self.body.vars
    }

    /// The tangent of a place whose root is varied: the same projections and
    /// `&`/`*` applied to the root's tangent.
    fn tan_place(&self, p: &Place) -> Option<TokenStream> {
        if !self.varied(p.root) {
            return None;
        }
        let vars = self.vars();
        let name = tangent_name(&vars[p.root].name);
        Some(emit_place_on(vars, p, quote!(#name)))
    }

    fn tan_atom(&self, a: &Atom) -> Option<TokenStream> {
        match a {
            Atom::Place(p) => self.tan_place(p),
            _ => None,
        }
    }

    /// The tangent of `a`, or a zero of its shape.
    fn tan_or_zero(&self, a: &Atom) -> TokenStream {
        self.tan_atom(a).unwrap_or_else(|| {
            if let Some(z) = literal_zero(a) {
                return z;
            }
            let f = fwd();
            let x = emit_atom(self.vars(), a);
            quote!(#f::zero(&#x))
        })
    }

    /// What a call passes for parameter `a`'s tangent: the tangent as it is
    /// (a reference for a reference parameter, so an array's tangent coerces
    /// to a slice's), or a zero of `a`'s shape.
    fn call_arg(&self, a: &Atom, receiver: bool) -> TokenStream {
        let f = fwd();
        match self.tan_atom(a) {
            Some(t) if receiver => quote!(&#t),
            Some(t) => t,
            None => {
                if let Some(z) = literal_zero(a) {
                    return z;
                }
                let x = emit_atom(self.vars(), a);
                if receiver || self.is_ref(a) {
                    quote!(&#f::zero(&#x))
                } else {
                    quote!(#f::zero(&#x))
                }
            }
        }
    }

    /// The tangent of a value expression whose result is `out`, or `None` when
    /// no operand is varied. `out` must hold the primal result already when a
    /// rule reads it.
    fn tan_expr(&mut self, e: &Expr, out: &TokenStream, span: Span) -> Option<TokenStream> {
        let vars = self.vars();
        let f = fwd();
        match e {
            Expr::Atom(a) => self.tan_atom(a),
            Expr::Binary(op, l, r) => {
                let (tl, tr) = (self.tan_atom(l), self.tan_atom(r));
                let (pl, pr) = (emit_atom(vars, l), emit_atom(vars, r));
                match op {
                    BinOp::Add => match (tl, tr) {
                        (Some(a), Some(b)) => Some(quote!(#a + #b)),
                        (Some(a), None) | (None, Some(a)) => Some(a),
                        (None, None) => None,
                    },
                    BinOp::Sub => match (tl, tr) {
                        (Some(a), Some(b)) => Some(quote!(#a - #b)),
                        (Some(a), None) => Some(a),
                        (None, Some(b)) => Some(quote!(-#b)),
                        (None, None) => None,
                    },
                    BinOp::Mul => match (tl, tr) {
                        (Some(a), Some(b)) => Some(quote!(#a * #pr + #pl * #b)),
                        (Some(a), None) => Some(quote!(#a * #pr)),
                        (None, Some(b)) => Some(quote!(#pl * #b)),
                        (None, None) => None,
                    },
                    BinOp::Div => {
                        // Guarded rules: a zero tangent stays zero at `rhs = 0`.
                        let a = tl.map(|a| quote_spanned!(span=> #f::div_op_d_lhs(#pr, #a)));
                        let b = tr.map(|b| quote_spanned!(span=> #f::div_op_d_rhs(#pr, #out, #b)));
                        match (a, b) {
                            (Some(a), Some(b)) => Some(quote!(#a + #b)),
                            (Some(a), None) => Some(a),
                            (None, Some(b)) => Some(b),
                            (None, None) => None,
                        }
                    }
                }
            }
            Expr::Neg(a) => self.tan_atom(a).map(|t| quote!(-#t)),
            Expr::Cast(a, ty) => self.tan_atom(a).map(|t| quote!(#t as #ty)),
            Expr::Method {
                rule,
                recv,
                args,
                name,
                ..
            } => match &rule.kind {
                RuleKind::Constant => None,
                RuleKind::Identity => self.tan_atom(recv).map(|t| quote!(#t.#name())),
                RuleKind::Smooth {
                    trait_name,
                    partials,
                } => {
                    let mut ops = vec![recv];
                    ops.extend(args.iter());
                    if !ops.iter().any(|o| self.tan_atom(o).is_some()) {
                        return None;
                    }
                    if !FORWARD_TRAITS.contains(trait_name) {
                        self.errors.push(syn::Error::new(
                            name.span(),
                            format!(
                                "forward mode (`forward`, `jacobian`, `hessian`) has no rule for `{name}`: it differentiates `f32`/`f64` code, and tensor operations have no forward-mode rules yet; leave the option out for this function"
                            ),
                        ));
                        return None;
                    }
                    let mut terms = Vec::new();
                    for (k, p) in partials.iter().enumerate() {
                        let Some(p) = p else { continue };
                        let Some(t) = self.tan_atom(ops[k]) else {
                            continue;
                        };
                        let mut fname = format_ident!("{}_{}", snake(trait_name), p.method);
                        fname.set_span(name.span());
                        let mut call_args = Vec::new();
                        for r in p.reads {
                            match *r {
                                Operand::Value(j) | Operand::Int(j) => {
                                    call_args.push(emit_atom(vars, ops[j]))
                                }
                                Operand::Out => call_args.push(out.clone()),
                                Operand::D => call_args.push(t.clone()),
                                Operand::Shape(_) => {}
                            }
                        }
                        terms.push(
                            quote_spanned!(name.span()=> ::tapeless::__private::fwd::#fname(#(#call_args),*)),
                        );
                    }
                    Some(quote!(#(#terms)+*))
                }
            },
            Expr::Tuple(xs) | Expr::Array(xs) | Expr::VecList(xs) => {
                if !xs.iter().any(|x| self.tan_atom(x).is_some()) {
                    return None;
                }
                let ts: Vec<_> = xs.iter().map(|x| self.tan_or_zero(x)).collect();
                Some(match e {
                    Expr::Tuple(_) => quote!((#(#ts,)*)),
                    Expr::Array(_) => quote!([#(#ts),*]),
                    _ => quote!(::std::vec![#(#ts),*]),
                })
            }
            Expr::Repeat(x, n) => self.tan_atom(x).map(|t| quote!([#t; #n])),
            Expr::VecRepeat(x, n) => {
                let n = emit_atom(vars, n);
                self.tan_atom(x).map(|t| quote!(::std::vec![#t; #n]))
            }
            Expr::StopGradient(..) | Expr::Opaque { .. } => None,
            Expr::Call { .. } => unreachable!("calls are handled by the statement"),
        }
    }

    /// `g_pushforward(args.., tangents..)` for a call whose value is varied.
    fn pushforward_call(&self, callee: &Callee, args: &[Atom], span: Span) -> TokenStream {
        let vars = self.vars();
        let prim: Vec<_> = args.iter().map(|a| emit_atom(vars, a)).collect();
        let recv = matches!(callee, Callee::Method(_));
        let tans: Vec<_> = args
            .iter()
            .enumerate()
            .map(|(k, a)| self.call_arg(a, recv && k == 0))
            .collect();
        match callee {
            Callee::Path(path) => {
                let mut path = path.clone();
                let last = path.segments.last_mut().unwrap();
                last.ident = pushforward_name(&last.ident);
                quote_spanned!(span=> #path(#(#prim,)* #(#tans),*))
            }
            Callee::Method(m) => {
                let m = pushforward_name(m);
                let recv = &prim[0];
                let rest = &prim[1..];
                quote_spanned!(span=> #recv.#m(#(#rest,)* #(#tans),*))
            }
        }
    }

    fn call_varied(&self, args: &[Atom]) -> bool {
        args.iter().any(|a| self.tan_atom(a).is_some())
    }

    pub fn block(&mut self, b: &Block) -> TokenStream {
        let mut out = TokenStream::new();
        for s in &b.stmts {
            out.extend(self.stmt(s, b.region));
        }
        out
    }

    fn tan_pat(&self, p: &Pat) -> TokenStream {
        match p {
            Pat::Var(v) if self.varied(*v) => {
                let n = tangent_name(&self.vars()[*v].name);
                quote!(#n)
            }
            Pat::Var(_) | Pat::Wild => quote!(_),
            Pat::Tuple(ps) => {
                let ts: Vec<_> = ps.iter().map(|p| self.tan_pat(p)).collect();
                quote!((#(#ts,)*))
            }
        }
    }

    fn pat_varied(&self, p: &Pat) -> bool {
        match p {
            Pat::Var(v) => self.varied(*v),
            Pat::Wild => false,
            Pat::Tuple(ps) => ps.iter().any(|p| self.pat_varied(p)),
        }
    }

    fn stmt(&mut self, s: &Stmt, region: RegionId) -> TokenStream {
        let vars = self.vars();
        match s {
            Stmt::Let {
                pat,
                mutable,
                ty,
                value,
                span,
                ..
            } => {
                let m = if *mutable { quote!(mut) } else { quote!() };
                let pat_t = emit_pat(vars, pat);
                let ty_t = ty.as_ref().map(|t| quote!(: #t));
                let varied = self.pat_varied(pat);
                let Some(value) = value else {
                    let tp = self.tan_pat(pat);
                    let tdecl = if varied {
                        quote!(let #m #tp;)
                    } else {
                        quote!()
                    };
                    return quote!(let #m #pat_t #ty_t; #tdecl);
                };
                if !varied {
                    let e = emit_expr(vars, value);
                    return quote!(let #m #pat_t #ty_t = #e;);
                }
                let tp = self.tan_pat(pat);
                if let Expr::Call { callee, args, span } = value {
                    let call = if self.call_varied(args) {
                        self.pushforward_call(callee, args, *span)
                    } else {
                        // No tangent flows in: the plain call, and a zero.
                        let e = emit_expr(vars, value);
                        let f = fwd();
                        let tmp = self.tmp("v");
                        return quote!(
                            let #tmp = #e;
                            let #m #tp = #f::zero(&#tmp);
                            let #m #pat_t #ty_t = #tmp;
                        );
                    };
                    if *mutable {
                        // `let (mut a, mut b) = ..` loses its `mut`s when
                        // differentiated again: bind, then move.
                        let (pv, tv) = (self.tmp("v"), self.tmp("t"));
                        return quote!(let (#pv, #tv) = #call; let mut #pat_t #ty_t = #pv; let mut #tp = #tv;);
                    }
                    return quote!(let (#pat_t, #tp) = #call;);
                }
                let e = emit_expr(vars, value);
                let primal = quote!(let #m #pat_t #ty_t = #e;);
                match pat {
                    Pat::Var(v) => {
                        let name = &vars[*v].name;
                        let out = quote!(#name);
                        let t = self.tan_expr(value, &out, *span).unwrap_or_else(|| {
                            let f = fwd();
                            quote!(#f::zero(&#name))
                        });
                        let tn = tangent_name(name);
                        quote!(#primal let #m #tn = #t;)
                    }
                    Pat::Tuple(ps)
                        if matches!(value, Expr::Tuple(xs) if xs.len() == ps.len())
                            && ps.iter().all(|p| matches!(p, Pat::Var(_) | Pat::Wild)) =>
                    {
                        // `let (a, b) = (x, y)`: element by element.
                        let Expr::Tuple(xs) = value else {
                            unreachable!()
                        };
                        let mut code = primal;
                        for (p, x) in ps.iter().zip(xs) {
                            if let Pat::Var(v) = p {
                                if self.varied(*v) {
                                    let tn = tangent_name(&vars[*v].name);
                                    let t = self.tan_or_zero(x);
                                    code.extend(quote!(let #m #tn = #t;));
                                }
                            }
                        }
                        code
                    }
                    _ => {
                        // A tuple pattern: the tangent of the whole value, destructured.
                        let tmp = self.tmp("v");
                        let out = quote!(#tmp);
                        let t = self.tan_expr(value, &out, *span).unwrap_or_else(|| {
                            let f = fwd();
                            quote!(#f::zero(&#tmp))
                        });
                        quote!(
                            let #tmp = #e;
                            let #m #tp = #t;
                            let #m #pat_t #ty_t = #tmp;
                        )
                    }
                }
            }
            Stmt::Assign {
                place,
                value,
                compound,
                span,
                ..
            } => {
                let lhs = emit_place_read(vars, place);
                let primal_stmt = |vars: &[Var]| match (compound, value) {
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
                let Some(tl) = self.tan_place(place) else {
                    return primal_stmt(vars);
                };
                if let Expr::Call { callee, args, span } = value {
                    let f = fwd();
                    let (pv, tv) = (self.tmp("v"), self.tmp("t"));
                    if self.call_varied(args) {
                        let call = self.pushforward_call(callee, args, *span);
                        return quote!(let (#pv, #tv) = #call; #lhs = #pv; #tl = #tv;);
                    }
                    let e = emit_expr(vars, value);
                    return quote!(let #pv = #e; #tl = #f::zero(&#pv); #lhs = #pv;);
                }
                // `s += t` / `s -= t`: the tangent is updated the same way.
                if let (Some(op @ (BinOp::Add | BinOp::Sub)), Expr::Binary(_, _, rhs)) =
                    (compound, value)
                {
                    let primal = primal_stmt(vars);
                    let tan = match (self.tan_atom(rhs), op) {
                        (Some(t), BinOp::Add) => quote!(#tl += #t;),
                        (Some(t), _) => quote!(#tl -= #t;),
                        (None, _) => quote!(),
                    };
                    return quote!(#primal #tan);
                }
                // Rules may read the old value of the place and the new one:
                // compute both first, then write.
                let pv = self.tmp("v");
                let e = emit_expr(vars, value);
                let out = quote!(#pv);
                let t = self.tan_expr(value, &out, *span).unwrap_or_else(|| {
                    let f = fwd();
                    quote!(#f::zero(&#pv))
                });
                let tv = self.tmp("t");
                quote!(let #pv = #e; let #tv = #t; #lhs = #pv; #tl = #tv;)
            }
            Stmt::If {
                cond, then, els, ..
            } => {
                let c = emit_atom(vars, cond);
                let t = self.block(then);
                if els.stmts.is_empty() {
                    quote!(if #c { #t })
                } else {
                    let e = self.block(els);
                    quote!(if #c { #t } else { #e })
                }
            }
            Stmt::Loop { lp, head, body, .. } => {
                let inner = self.block(body);
                let lab = if self.body.has_inner_exit(*lp) {
                    let l = loop_label(*lp);
                    quote!(#l:)
                } else {
                    quote!()
                };
                match head {
                    LoopHead::For { pat, iter, .. } => quote!(#lab for #pat in #iter { #inner }),
                    LoopHead::Loop => quote!(#lab loop { #inner }),
                }
            }
            Stmt::Break(_, lp) => {
                let l = exit_label(self.body, *lp, region);
                quote!(break #l;)
            }
            Stmt::Continue(_, lp) => {
                let l = exit_label(self.body, *lp, region);
                quote!(continue #l;)
            }
            Stmt::Return(_, a) => {
                let v = emit_atom(vars, a);
                let (pre, t) = self.out_tangent(a);
                quote!(#pre return (#v, #t);)
            }
            Stmt::Tail(a) => {
                let v = emit_atom(vars, a);
                let (pre, t) = self.out_tangent(a);
                quote!(#pre (#v, #t))
            }
            Stmt::Opaque(t) => t.clone(),
        }
    }

    /// The output's tangent; a zero is made before the output moves.
    fn out_tangent(&mut self, a: &Atom) -> (TokenStream, TokenStream) {
        if self.tan_atom(a).is_some() || literal_zero(a).is_some() {
            return (quote!(), self.tan_or_zero(a));
        }
        let z = self.tmp("z");
        let t = self.tan_or_zero(a);
        (quote!(let #z = #t;), quote!(#z))
    }
}

/// The zero tangent of a number literal, as a literal the context types
/// (`0.0` is an `f32` where `1.5` is): `fwd::zero(&1.5)` would fix `f64`.
fn literal_zero(a: &Atom) -> Option<TokenStream> {
    match a {
        Atom::Lit(syn::Lit::Float(f)) => {
            let z = syn::LitFloat::new(&format!("0.0{}", f.suffix()), f.span());
            Some(quote!(#z))
        }
        Atom::Lit(syn::Lit::Int(i)) => {
            let z = syn::LitInt::new(&format!("0{}", i.suffix()), i.span());
            Some(quote!(#z))
        }
        _ => None,
    }
}

/// The pushforward a call site uses: `g` -> `g_pushforward`.
pub fn pushforward_name(ident: &Ident) -> Ident {
    let mut i = format_ident!("{}_pushforward", ident);
    i.set_span(ident.span());
    i
}
