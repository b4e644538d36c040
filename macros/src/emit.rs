//! Phase 5: tokens. Places, atoms and primal expressions as Rust syntax, and
//! the generated items around the forward and reverse sweeps.

use crate::ir::*;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The expression reading `p` in the primal code (`x`, `&x[i]`, `self.w[j]`).
pub fn emit_place_read(vars: &[Var], p: &Place) -> TokenStream {
    let mut t = {
        let name = &vars[p.root].name;
        quote!(#name)
    };
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

/// The pullback a call site uses: `g` -> `g_pullback`.
pub fn pullback_name(ident: &proc_macro2::Ident) -> proc_macro2::Ident {
    let mut i = format_ident!("{}_pullback", ident);
    i.set_span(ident.span());
    i
}
