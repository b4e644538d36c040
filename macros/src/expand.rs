//! `#[differentiable]` and `#[derivative]`: the phases in order, and the items
//! written beside the user's function.

use crate::analyse;
use crate::ctxt::Ctxt;
use crate::ir::Stmt;
use crate::lower;
use crate::parse::{self, Options, Signature};
use crate::reverse::Gen;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ItemFn;

/// Lints the generated functions may trip although they are correct:
/// `dead_code` (a user need not call every companion), `unused_mut`/
/// `unused_variables`/`unused_labels` (a value or record that a
/// particular function's reverse sweep happens not to need), clippy's style
/// lints (A-normal form reads differently from hand-written code).
fn allows() -> TokenStream {
    quote! {
        #[allow(
            dead_code,
            unused_mut,
            unused_variables,
            unused_labels,
            unused_parens,
            unused_braces,
            unreachable_code,
            non_snake_case,
            clippy::all,
            clippy::pedantic,
            clippy::nursery
        )]
    }
}

pub fn differentiable(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let msg = syn::Error::new(
                e.span(),
                "`#[differentiable]` applies to functions and methods (`fn name(args) -> T { ... }`)",
            )
            .into_compile_error();
            return quote!(#msg #item);
        }
    };
    let cx = Ctxt::default();
    let opts = Options::parse(attr, &cx);
    let sig = parse::signature(&mut func, &opts, &cx);
    // Lowered even after signature errors, so body errors are reported too.
    let mut body = lower::lower(&func, &sig, &cx);
    let an = analyse::analyse(&mut body, &cx);
    if cx.has_errors() {
        return with_errors(cx, &func, &sig);
    }

    let mut g = Gen::new(&body, &an);
    let forward = g.forward_block(&body.block);
    let tail = body.block.stmts.iter().find_map(|s| match s {
        Stmt::Tail(a) => Some(crate::emit::emit_atom(&body.vars, a)),
        _ => None,
    });
    let param_adjoints = g.param_adjoints();
    let reverse = g.reverse_block(&body.block);
    let top = &g.top;
    let (forward, out) = if body.has_return {
        let ret = if body.has_return {
            quote!(let mut __ret = 0u32;)
        } else {
            quote!()
        };
        (
            quote! {
                #ret
                #(#top)*
                let __out = '__body: { #forward #tail };
            },
            quote!(__out),
        )
    } else {
        (
            quote! {
                #(#top)*
                #forward
            },
            tail.unwrap_or_else(|| quote!(::core::unreachable!())),
        )
    };
    // Parameter gradients were accumulated from shapeless zeros; hand them
    // out with the parameters' full shapes.
    let grads: Vec<TokenStream> = sig
        .active()
        .map(|p| {
            let d = g.adj_of_param(&p.name);
            let name = &p.name;
            quote!(__rt::complete(&#name, #d))
        })
        .collect();
    let grads = if grads.len() == 1 {
        let g = &grads[0];
        quote!(#g)
    } else {
        quote!((#(#grads,)*))
    };
    let original = sig.sibling(&func.sig.ident);
    let adjoint_body = quote! {
        use ::tapeless::__private as __rt;
        // Calling the gradient counts as using the function (no `dead_code` warning).
        let _ = #original;
        // Forward sweep: the primal, keeping what the reverse sweep reads.
        #forward
        // Reverse sweep: adjoints, last operation first.
        let mut __seed = d_out;
        #param_adjoints
        #reverse
        (#out, #grads)
    };
    items(&func, &sig, adjoint_body)
}

fn d_out_name() -> Ident {
    format_ident!("d_out")
}

/// The original function, `_adjoint` with `adjoint_body`, `_grad` and `_pullback`.
fn items(func: &ItemFn, sig: &Signature, adjoint_body: TokenStream) -> TokenStream {
    let vis = &func.vis;
    let name = &func.sig.ident;
    let generics = &func.sig.generics;
    let where_clause = &func.sig.generics.where_clause;
    // Without a trailing comma, so `d_out` can follow (`fn f(x: f64, y: f64,)`).
    let inputs: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]> =
        func.sig.inputs.iter().cloned().collect();
    let sep = if inputs.is_empty() {
        quote!()
    } else {
        quote!(,)
    };
    let ret = &sig.ret;
    let grad_ty = sig.grad_type();
    let dout_ty = parse::tangent_of(ret);
    let adjoint = format_ident!("{}_adjoint", name);
    let grad = format_ident!("{}_grad", name);
    let pullback = format_ident!("{}_pullback", name);
    let d_out = d_out_name();
    let args: Vec<&Ident> = sig.params.iter().map(|p| &p.name).collect();
    let allows = allows();
    let name_s = name.to_string();
    let adjoint_doc = format!(
        "Value of [`{name_s}`] and its vector-Jacobian product: the gradient of `<d_out, {name_s}(..)>` with respect to the differentiated parameters. Generated by `#[differentiable]`."
    );
    let grad_doc = format!(
        "Value and gradient of [`{name_s}`] with respect to its differentiated parameters. Generated by `#[differentiable]`."
    );
    let adjoint_path = sig.sibling(&adjoint);
    let grad_fn = sig.scalar_ret.then(|| {
        quote! {
            #[doc = #grad_doc]
            #[inline]
            #allows
            #vis fn #grad #generics (#inputs) -> (#ret, #grad_ty) #where_clause {
                #adjoint_path(#(#args,)* 1.0)
            }
        }
    });
    let n_active = sig.active().count();
    let mut k = 0usize;
    let mut spread = Vec::new();
    let mut slot_tys = Vec::new();
    for p in &sig.params {
        if p.active {
            if n_active == 1 {
                spread.push(quote!(__g));
            } else {
                let i = syn::Index::from(k);
                spread.push(quote!(__g.#i));
            }
            k += 1;
            slot_tys.push(p.tangent_type());
        } else {
            spread.push(quote!(::tapeless::__private::NoGrad));
            slot_tys.push(quote!(::tapeless::__private::NoGrad));
        }
    }
    quote! {
        #func

        #[doc = #adjoint_doc]
        #allows
        #vis fn #adjoint #generics (#inputs #sep #d_out: #dout_ty) -> (#ret, #grad_ty) #where_clause {
            #adjoint_body
        }

        #grad_fn

        /// The adjoint with one gradient slot per parameter (`NoGrad` for
        /// parameters that are not differentiated): what generated code calls.
        #[doc(hidden)]
        #[inline]
        #allows
        #vis fn #pullback #generics (#inputs #sep #d_out: #dout_ty) -> (#ret, (#(#slot_tys,)*)) #where_clause {
            let (__v, __g) = #adjoint_path(#(#args,)* #d_out);
            (__v, (#(#spread,)*))
        }
    }
}

/// On errors: the errors, the original function, and stub companions with the
/// right signatures so the rest of the crate still type-checks.
fn with_errors(cx: Ctxt, func: &ItemFn, sig: &Signature) -> TokenStream {
    let errors = match cx.check() {
        Err(e) => e.into_compile_error(),
        Ok(()) => quote!(),
    };
    // Types the companions cannot name (generic parameters, `impl Trait`)
    // would only add errors: then the original function stands alone.
    let unnameable = func.sig.generics.type_params().next().is_some()
        || func
            .sig
            .to_token_stream()
            .into_iter()
            .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "impl"))
        || matches!(&sig.ret, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option" || s.ident == "Result"));
    if unnameable {
        return quote!(#errors #func);
    }
    let stub = quote_spanned!(func.sig.ident.span()=> {
        ::core::unimplemented!("`#[differentiable]` reported an error for this function")
    });
    let items = items(func, sig, stub);
    quote!(#errors #items)
}

/// `#[derivative(of = g)]`: the user's function is `g`'s adjoint; writes `g_pullback`.
pub fn derivative(attr: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::default();
    let mut of: Option<syn::Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("of") {
            of = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("`#[derivative]` takes `of = function`"))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr.clone()) {
        return combine(e.into_compile_error(), item);
    }
    let Some(of) = of else {
        let e = syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[derivative]` needs `of = function`: `#[derivative(of = g)]`",
        );
        return combine(e.into_compile_error(), item);
    };
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "`#[derivative(of = g)]` applies to a function with `g`'s parameters plus `d_out`, returning `(value, gradients)`",
            );
            return combine(e.into_compile_error(), item);
        }
    };
    let of_name = of.segments.last().unwrap().ident.clone();
    let contract = format!(
        "`#[derivative(of = {of_name})]` needs `{of_name}`'s parameters plus `d_out`, returning `(value, gradients)`"
    );
    let ok_ret = matches!(&func.sig.output, syn::ReturnType::Type(_, t) if matches!(&**t, syn::Type::Tuple(tt) if tt.elems.len() == 2));
    if func.sig.inputs.is_empty() || !ok_ret {
        let e = syn::Error::new_spanned(&func.sig, contract);
        return combine(e.into_compile_error(), func.to_token_stream());
    }
    let opts = Options::default();
    let mut sig = parse::signature(&mut func, &opts, &cx);
    if let Err(e) = cx.check() {
        return combine(e.into_compile_error(), func.to_token_stream());
    }
    // The last parameter is the output's cotangent.
    let d_param = sig.params.pop().unwrap();
    let syn::Type::Tuple(rt) = &sig.ret else {
        unreachable!()
    };
    let value_ty = rt.elems[0].clone();
    let user = &func.sig.ident;
    let vis = &func.vis;
    let pullback = crate::emit::pullback_name(&of_name);
    let n_inputs = func.sig.inputs.len();
    let inputs: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]> =
        func.sig.inputs.iter().take(n_inputs - 1).cloned().collect();
    let sep = if inputs.is_empty() {
        quote!()
    } else {
        quote!(,)
    };
    let args: Vec<&Ident> = sig.params.iter().map(|p| &p.name).collect();
    let d_ty = &d_param.ty;
    let n_active = sig.active().count();
    let mut k = 0;
    let mut spread = Vec::new();
    let mut slot_tys = Vec::new();
    for p in &sig.params {
        if p.active {
            spread.push(if n_active == 1 {
                quote!(__g)
            } else {
                let i = syn::Index::from(k);
                quote!(__g.#i)
            });
            k += 1;
            slot_tys.push(p.tangent_type());
        } else {
            spread.push(quote!(::tapeless::__private::NoGrad));
            slot_tys.push(quote!(::tapeless::__private::NoGrad));
        }
    }
    let user_path = if sig.qualify_self {
        quote!(Self::#user)
    } else {
        quote!(#user)
    };
    let allows = allows();
    quote! {
        #func

        /// The custom adjoint with one gradient slot per parameter: what generated code calls.
        #[doc(hidden)]
        #[inline]
        #allows
        #vis fn #pullback(#inputs #sep d_out: #d_ty) -> (#value_ty, (#(#slot_tys,)*)) {
            let (__v, __g) = #user_path(#(#args,)* d_out);
            (__v, (#(#spread,)*))
        }
    }
}

fn combine(err: TokenStream, item: TokenStream) -> TokenStream {
    quote!(#err #item)
}
