//! Phase 5: tokens. Places, atoms and primal expressions as Rust syntax, and
//! the generated items around the forward and reverse sweeps.

use crate::ir::*;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The expression reading `p` in the primal code (`x`, `&x[i]`, `self.w[j]`).
pub fn emit_place_read(vars: &[Var], p: &Place) -> TokenStream {
    let name = &vars[p.root].name;
    emit_place_on(vars, p, quote!(#name))
}

/// `p`'s projections and `&`/`*` applied to `root` in place of its variable
/// (forward mode reads a tangent `__tan_x[i]` where the primal reads `x[i]`).
pub fn emit_place_on(vars: &[Var], p: &Place, root: TokenStream) -> TokenStream {
    let mut t = root;
    for proj in &p.proj {
        t = match proj {
            Proj::Field(m) => quote!(#t.#m),
            Proj::Index(i) => {
                let i = emit_atom(vars, i);
                quote!(#t[#i])
            }
        };
    }
    // Parenthesised: `(*e).sin()` must not become `*e.sin()`.
    for w in &p.wrap {
        t = match w {
            Wrap::Ref => quote!((&#t)),
            Wrap::Deref => quote!((*#t)),
        };
    }
    t
}

/// The place without its `&` / `*`.
pub fn emit_place_bare(vars: &[Var], p: &Place) -> TokenStream {
    let mut p = p.clone();
    p.wrap.clear();
    emit_place_read(vars, &p)
}

pub fn emit_atom(vars: &[Var], a: &Atom) -> TokenStream {
    match a {
        Atom::Place(p) => emit_place_read(vars, p),
        Atom::Lit(l) => quote!(#l),
        Atom::Const(t) => t.clone(),
    }
}

/// A primal expression, as the user would write it.
pub fn emit_expr(vars: &[Var], e: &Expr) -> TokenStream {
    let a = |x: &Atom| emit_atom(vars, x);
    match e {
        Expr::Atom(x) => a(x),
        Expr::Binary(op, l, r) => {
            let (l, r) = (a(l), a(r));
            match op {
                BinOp::Add => quote!(#l + #r),
                BinOp::Sub => quote!(#l - #r),
                BinOp::Mul => quote!(#l * #r),
                BinOp::Div => quote!(#l / #r),
            }
        }
        Expr::Neg(x) => {
            let x = a(x);
            quote!(-#x)
        }
        Expr::Method {
            recv,
            args,
            name,
            path_form,
            ..
        } => {
            let recv = a(recv);
            let args: Vec<_> = args.iter().map(a).collect();
            match path_form {
                Some(path) => quote!(#path(#recv #(, #args)*)),
                None => quote!(#recv.#name(#(#args),*)),
            }
        }
        Expr::Call { callee, args, span } => {
            let args: Vec<_> = args.iter().map(a).collect();
            match callee {
                Callee::Path(p) => quote_spanned!(*span=> #p(#(#args),*)),
                Callee::Method(m) => {
                    let recv = &args[0];
                    let rest = &args[1..];
                    quote!(#recv.#m(#(#rest),*))
                }
            }
        }
        Expr::Cast(x, ty) => {
            let x = a(x);
            quote!(#x as #ty)
        }
        Expr::Tuple(xs) => {
            let xs: Vec<_> = xs.iter().map(a).collect();
            quote!((#(#xs,)*))
        }
        Expr::Array(xs) => {
            let xs: Vec<_> = xs.iter().map(a).collect();
            quote!([#(#xs),*])
        }
        Expr::Repeat(x, n) => {
            let x = a(x);
            quote!([#x; #n])
        }
        Expr::VecList(xs) => {
            let xs: Vec<_> = xs.iter().map(a).collect();
            quote!(::std::vec![#(#xs),*])
        }
        Expr::VecRepeat(x, n) => {
            let (x, n) = (a(x), a(n));
            quote!(::std::vec![#x; #n])
        }
        Expr::StopGradient(x, path) => {
            let x = a(x);
            quote!(#path(#x))
        }
        Expr::Opaque { expr, .. } => quote!(#expr),
    }
}

/// A binding pattern: a name, `_`, or a tuple of patterns.
pub fn emit_pat(vars: &[Var], p: &Pat) -> TokenStream {
    match p {
        Pat::Var(v) => {
            let n = &vars[*v].name;
            quote!(#n)
        }
        Pat::Wild => quote!(_),
        Pat::Tuple(ps) => {
            let ts: Vec<_> = ps.iter().map(|p| emit_pat(vars, p)).collect();
            quote!((#(#ts,)*))
        }
    }
}

/// The label generated code gives loop `lp` (user labels are replaced).
pub fn loop_label(lp: LoopId) -> syn::Lifetime {
    syn::Lifetime::new(&format!("'__l{lp}"), proc_macro2::Span::call_site())
}

/// What a `break`/`continue` of loop `lp` names from `region`: nothing when
/// `lp` is the innermost loop there, its label otherwise.
pub fn exit_label(body: &Body, lp: LoopId, region: RegionId) -> TokenStream {
    if body.regions[region].loops.last().copied() == Some(lp) {
        quote!()
    } else {
        let l = loop_label(lp);
        quote!(#l)
    }
}

/// The pullback a call site uses: `g` -> `g_pullback`.
pub fn pullback_name(ident: &proc_macro2::Ident) -> proc_macro2::Ident {
    let mut i = format_ident!("{}_pullback", ident);
    i.set_span(ident.span());
    i
}
