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
    g.find_fused();
    // A free function that calls itself accumulates into its caller's
    // gradient (`_adjoint_acc`) instead of returning a fresh one per call.
    let recursive = !sig.params.iter().any(|p| p.is_receiver)
        && crate::reverse::calls_itself(&body, &func.sig.ident);
    if recursive {
        let params: Vec<usize> = sig
            .active()
            .filter_map(|p| {
                body.vars
                    .iter()
                    .position(|v| v.kind == crate::ir::VarKind::Param && v.name == p.name)
            })
            .collect();
        if params.iter().all(|&v| an.varied[v]) && params.len() == sig.active().count() {
            g.self_acc = Some((func.sig.ident.clone(), params));
        }
    }
    let forward = g.forward_block(&body.block);
    let tail = body.block.stmts.iter().find_map(|s| match s {
        Stmt::Tail(a) => Some(crate::emit::emit_atom(&body.vars, a)),
        _ => None,
    });
    let reverse = g.reverse_block(&body.block);
    let stacks = &g.stacks;
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
    let forward_items = if opts.any_forward() {
        forward_items(&func, &sig, &opts, &body, &an)
    } else {
        quote!()
    };
    // With `self_acc`, the sweeps go into `_adjoint_acc`, which takes the
    // parameters' adjoints from the caller's slots and returns the value, and
    // `_adjoint` wraps it; otherwise they are `_adjoint`'s body.
    let lend = g.self_acc.is_some();
    let (decls, give_back) = g.param_adjoints(lend);
    let result = if lend {
        quote!(#out)
    } else {
        quote!((#out, #grads))
    };
    let sweeps = quote! {
        use ::tapeless::__private as __rt;
        // Calling the gradient counts as using the function (no `dead_code` warning).
        let _ = #original;
        // Forward sweep: the primal, keeping what the reverse sweep reads.
        #forward
        // Reverse sweep: adjoints, last operation first.
        let mut __seed = d_out;
        #decls
        #reverse
        // The stacks' buffers go back to the per-thread pool for the next call.
        #(__rt::recycle(&mut #stacks);)*
        #give_back
        #result
    };
    if lend {
        let acc_path = sig.sibling(&format_ident!("{}_adjoint_acc", func.sig.ident));
        let call_args: Vec<&Ident> = sig.params.iter().map(|p| &p.name).collect();
        let slots: Vec<TokenStream> = sig
            .active()
            .map(|p| {
                let d = g.adj_of_param(&p.name);
                quote!(&mut #d)
            })
            .collect();
        let (zeros, _) = g.param_adjoints(false);
        let adjoint_body = quote! {
            use ::tapeless::__private as __rt;
            #zeros
            let __out = #acc_path(#(#call_args,)* d_out, #(#slots),*);
            (__out, #grads)
        };
        let items = items(&func, &sig, adjoint_body);
        let acc_fn = acc_item(&func, &sig, sweeps);
        return quote!(#items #acc_fn #forward_items);
    }
    let adjoint_body = sweeps;
    let items = items(&func, &sig, adjoint_body);
    quote!(#items #forward_items)
}

/// Derivatives of the generated `_grad` and `_tangent`, so differentiable
/// code can call them (nested differentiation), all from Hessian-vector
/// products: the pullback and the pushforward of `∇f` along `c` are both
/// `H c` (`H` is symmetric); the pushforward of `(f, ∇f · v)` along `(u, w)`
/// is `(∇f · u, uᵀ H v + ∇f · w)`.
fn nested_companions(
    func: &ItemFn,
    sig: &Signature,
    hvp: &Ident,
    d_params: &[TokenStream],
    inputs: &syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    sep: &TokenStream,
) -> TokenStream {
    use crate::forward::tangent_name;
    let fwd = quote!(::tapeless::__private::fwd);
    let hvp = sig.sibling(hvp);
    let ret = &sig.ret;
    let grad_ty = sig.grad_type();
    let actives: Vec<&parse::Param> = sig.active().collect();
    let n = actives.len();
    let part = |base: &TokenStream, i: usize| part_of(base, i, n);
    let args: Vec<TokenStream> = sig
        .params
        .iter()
        .map(|p| {
            let n = &p.name;
            quote!(#n)
        })
        .collect();
    let reuse = reusable_args(sig);
    let fn_name = func.sig.ident.clone();
    let grad_pullback = format_ident!("{}_grad_pullback", fn_name);
    let grad_pushforward = format_ident!("{}_grad_pushforward", fn_name);
    let tangent_pushforward = format_ident!("{}_tangent_pushforward", fn_name);
    let allows = allows();
    let vis = &func.vis;
    let hv = quote!(__hv);
    let g = quote!(__g);
    let slot_tys = sig.slot_types();
    let tan_params: Vec<TokenStream> = sig
        .params
        .iter()
        .map(|p| {
            let t = tangent_name(&p.name);
            let ty = pushforward_tangent_type(p);
            quote!(#t: #ty)
        })
        .collect();
    // The tangents as references (reference parameters' tangents already are).
    let tan_refs: Vec<TokenStream> = actives
        .iter()
        .map(|p| {
            let t = tangent_name(&p.name);
            if is_ref_param(p) {
                quote!(#t)
            } else {
                quote!(&#t)
            }
        })
        .collect();
    // `_tangent`'s direction parameters and their tangents.
    let d_names: Vec<Ident> = d_params
        .iter()
        .map(|t| {
            let mut it = t.clone().into_iter();
            match it.next() {
                Some(proc_macro2::TokenTree::Ident(i)) => i,
                _ => unreachable!("a `name: type` parameter"),
            }
        })
        .collect();
    let w_params: Vec<TokenStream> = actives
        .iter()
        .zip(&d_names)
        .map(|(p, d)| {
            let w = tangent_name(d);
            let ty = p.tangent_type();
            quote!(#w: #ty)
        })
        .collect();
    let w_names: Vec<Ident> = d_names.iter().map(tangent_name).collect();
    let dot = |_x: &Ident, a: TokenStream, b: TokenStream| quote!(#fwd::dot(&#a, #b));
    let names: Vec<&Ident> = actives.iter().map(|p| &p.name).collect();
    let ydot: Vec<TokenStream> = (0..n)
        .map(|i| {
            let d = &d_names[i];
            dot(names[i], part(&g, i), quote!(&#d))
        })
        .collect();
    let y_u: Vec<TokenStream> = (0..n)
        .map(|i| dot(names[i], part(&g, i), tan_refs[i].clone()))
        .collect();
    let hv_u: Vec<TokenStream> = (0..n)
        .map(|i| dot(names[i], part(&hv, i), tan_refs[i].clone()))
        .collect();
    let g_w: Vec<TokenStream> = (0..n)
        .map(|i| {
            let w = &w_names[i];
            dot(names[i], part(&g, i), quote!(&#w))
        })
        .collect();
    let d_clones: Vec<TokenStream> = d_names
        .iter()
        .map(|d| quote!(::core::clone::Clone::clone(&#d)))
        .collect();
    let adjoint = sig.sibling(&format_ident!("{}_adjoint", fn_name));
    let pf_adjoint = sig.sibling(&format_ident!("{}_pushforward_adjoint", fn_name));
    let tangent_pullback = format_ident!("{}_tangent_pullback", fn_name);
    let c = quote!(__c);
    // The pushforward's tangent arguments: `vs[k]` for active parameter `k`.
    let tangent_args = |vs: &[TokenStream]| sig.per_param(|p, k| lend(p, vs[k].clone()), zero_for);
    let g_out = quote!(d_out.1);
    let dv: Vec<TokenStream> = (0..n).map(|i| part(&g_out, i)).collect();
    let grad_pullback_targs = tangent_args(&dv);
    let c_slots = sig.per_param(|_, k| field(&c, k), |_| no_grad());
    let d_slots: Vec<TokenStream> = (0..n).map(|i| field(&c, n + i)).collect();
    let d_slot_tys: Vec<TokenStream> = actives.iter().map(|p| p.tangent_type()).collect();
    let d_vals: Vec<TokenStream> = d_names.iter().map(|d| quote!(#d)).collect();
    let tangent_pullback_targs = tangent_args(&d_vals);
    // Owned copies of the tangents, for `_hvp`.
    let tan_clones: Vec<TokenStream> = tan_refs
        .iter()
        .map(|t| quote!(::std::borrow::ToOwned::to_owned(#t)))
        .collect();
    let y_v: Vec<TokenStream> = (0..n)
        .map(|i| dot(names[i], part(&g, i), tan_refs[i].clone()))
        .collect();
    quote! {
        /// The pullback of the generated `_grad` (reverse over reverse):
        /// `d_out.0 ∇f + H d_out.1`, the adjoint of the tangent seeded with `(d_out.0, 1)`.
        #[doc(hidden)]
        #allows
        #vis fn #grad_pullback(#inputs #sep d_out: (#ret, #grad_ty)) -> ((#ret, #grad_ty), (#(#slot_tys,)*)) {
            let (__y, __g) = #adjoint(#(#reuse,)* 1.0);
            let (_, __c) = #pf_adjoint(#(#args,)* #(#grad_pullback_targs,)* (d_out.0, 1.0));
            ((__y, __g), (#(#c_slots,)*))
        }

        /// The pushforward of the generated `_grad` (forward over reverse): `(∇f · v, H v)`.
        #[doc(hidden)]
        #allows
        #vis fn #grad_pushforward(#inputs #sep #(#tan_params),*) -> ((#ret, #grad_ty), (#ret, #grad_ty)) {
            let (__y, __g, __hv) = #hvp(#(#reuse,)* #(#tan_clones),*);
            let __ydot = 0.0 #(+ #y_v)*;
            ((__y, __g), (__ydot as #ret, __hv))
        }

        /// The pullback of the generated `_tangent`: the adjoint of the pushforward.
        #[doc(hidden)]
        #allows
        #vis fn #tangent_pullback(
            #inputs #sep #(#d_params,)* d_out: (#ret, #ret)
        ) -> ((#ret, #ret), (#(#slot_tys,)* #(#d_slot_tys,)*)) {
            let (__v, __c) = #pf_adjoint(#(#args,)* #(#tangent_pullback_targs,)* d_out);
            (__v, (#(#c_slots,)* #(#d_slots,)*))
        }

        /// The pushforward of the generated `_tangent` (forward over forward):
        /// `(∇f · u, uᵀ H v + ∇f · w)` along `(u, w)`.
        #[doc(hidden)]
        #allows
        #vis fn #tangent_pushforward(
            #inputs #sep #(#d_params,)* #(#tan_params,)* #(#w_params),*
        ) -> ((#ret, #ret), (#ret, #ret)) {
            let (__y, __g, __hv) = #hvp(#(#reuse,)* #(#d_clones),*);
            let __ydot = 0.0 #(+ #ydot)*;
            let __y_u = 0.0 #(+ #y_u)*;
            let __ydot_u = 0.0 #(+ #hv_u)* #(+ #g_w)*;
            ((__y, __ydot as #ret), (__y_u as #ret, __ydot_u as #ret))
        }
    }
}

/// `NoGrad`: the slot of a parameter that is not differentiated.
fn no_grad() -> TokenStream {
    quote!(::tapeless::__private::NoGrad)
}

/// Part `i` of a value with one item per differentiated parameter (`n` of
/// them): the value itself when there is one, else its field `i`.
fn part_of(base: &TokenStream, i: usize, n: usize) -> TokenStream {
    if n == 1 {
        base.clone()
    } else {
        field(base, i)
    }
}

/// Field `i` of a tuple.
fn field(base: &TokenStream, i: usize) -> TokenStream {
    let i = syn::Index::from(i);
    quote!(#base.#i)
}

/// A parameter's tangent as the pushforward takes it: a reference for a
/// reference parameter (`&[f64]` for `&[f64]`, `&Model` for `&Model`), so an
/// array's tangent coerces to a slice's; owned otherwise.
fn pushforward_tangent_type(p: &parse::Param) -> TokenStream {
    match &p.ty {
        syn::Type::Reference(r) => {
            let mut elem = &*r.elem;
            while let syn::Type::Reference(inner) = elem {
                elem = &inner.elem;
            }
            match elem {
                syn::Type::Slice(sl) => {
                    let e = &sl.elem;
                    quote!(&[<#e as ::tapeless::Differentiable>::Tangent])
                }
                other => quote!(&<#other as ::tapeless::Differentiable>::Tangent),
            }
        }
        _ => p.tangent_type(),
    }
}

fn is_ref_param(p: &parse::Param) -> bool {
    matches!(p.ty, syn::Type::Reference(_))
}

/// An owned tangent `t` of parameter `p`, as the pushforward takes it.
fn lend(p: &parse::Param, t: TokenStream) -> TokenStream {
    if is_ref_param(p) {
        quote!(&#t)
    } else {
        t
    }
}

/// A zero tangent for parameter `p`, as the pushforward takes it.
fn zero_for(p: &parse::Param) -> TokenStream {
    let n = &p.name;
    lend(p, quote!(::tapeless::__private::fwd::zero(&#n)))
}

/// The unit tangent `k` of parameter `p`, as the pushforward takes it.
fn unit_for(p: &parse::Param, k: &Ident) -> TokenStream {
    let n = &p.name;
    lend(p, quote!(::tapeless::__private::fwd::unit(&#n, #k)))
}

/// A parameter type that may hold a struct with `#[no_grad]` fields (not a
/// float, nor a slice, array or `Vec` of floats): its tangent is sanitised.
fn derive_like(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Reference(r) => derive_like(&r.elem),
        syn::Type::Slice(s) => derive_like(&s.elem),
        syn::Type::Array(a) => derive_like(&a.elem),
        syn::Type::Path(p) => {
            let last = p.path.segments.last().map(|s| s.ident.to_string());
            match last.as_deref() {
                Some("f32" | "f64") => false,
                Some("Vec") => match &p.path.segments.last().unwrap().arguments {
                    syn::PathArguments::AngleBracketed(a) => a.args.iter().any(|g| match g {
                        syn::GenericArgument::Type(t) => derive_like(t),
                        _ => true,
                    }),
                    _ => true,
                },
                _ => true,
            }
        }
        _ => true,
    }
}

/// The value arguments of a call of a sibling that may be called several
/// times: parameters taken by value are cloned (a copy for `Copy` types).
fn reusable_args(sig: &Signature) -> Vec<TokenStream> {
    sig.params
        .iter()
        .map(|p| {
            let n = &p.name;
            if matches!(p.ty, syn::Type::Reference(_)) || p.is_receiver {
                quote!(#n)
            } else {
                quote!(::core::clone::Clone::clone(&#n))
            }
        })
        .collect()
}

/// The forward-mode companions: `_pushforward` (hidden, one tangent per
/// parameter), `_tangent`, and as asked `_jacobian`, `_hvp`, `_hessian`.
fn forward_items(
    func: &ItemFn,
    sig: &Signature,
    opts: &Options,
    body: &crate::ir::Body,
    an: &analyse::Analysis,
) -> TokenStream {
    use crate::forward::{pushforward_name, tangent_name, Fwd};
    let ref_params: Vec<bool> = sig.params.iter().map(is_ref_param).collect();
    let mut fw = Fwd::new(body, an, ref_params);
    let fbody = fw.block(&body.block);
    if !fw.errors.is_empty() {
        let errs = fw.errors.iter().map(syn::Error::to_compile_error);
        return quote!(#(#errs)*);
    }
    let fwd = quote!(::tapeless::__private::fwd);
    let vis = &func.vis;
    let name = &func.sig.ident;
    let name_s = name.to_string();
    let allows = allows();
    let (inputs, sep) = inputs_of(func);
    let ret = &sig.ret;
    let ret_tan = parse::tangent_of(ret);
    let pushforward = pushforward_name(name);
    let pushforward_path = sig.sibling(&pushforward);
    // One tangent per parameter, owned; reference parameters see theirs
    // through a reference again, so tangents mirror the values they follow.
    let mut tan_params = Vec::new();
    let mut rebinds = Vec::new();
    // A parameter that is not differentiated takes a tangent of any type,
    // which the pushforward never reads: `_tangent` passes `NoGrad`, so the
    // parameter's type need not be `Differentiable` and no zero tangent is
    // built (a `#[no_grad]` field would be copied into it). Generated callers
    // still pass a zero tangent of the argument. (Not with `hessian`: the
    // pushforward is then itself `#[differentiable]`, which takes no generic
    // type parameters.)
    let mut tan_generics: Vec<TokenStream> = Vec::new();
    for (i, p) in sig.params.iter().enumerate() {
        let t = tangent_name(&p.name);
        let ty = if p.active || opts.hessian {
            pushforward_tangent_type(p)
        } else {
            let g = format_ident!("__Tan{}", i);
            if is_ref_param(p) {
                tan_generics.push(quote!(#g: ?Sized));
                quote!(&#g)
            } else {
                tan_generics.push(quote!(#g));
                quote!(#g)
            }
        };
        tan_params.push(quote!(#t: #ty));
        if p.active && derive_like(&p.ty) {
            let n = &p.name;
            if is_ref_param(p) {
                let own = format_ident!("{}_own", t);
                rebinds.push(quote!(let #own = #fwd::sanitize(&#n, #t); let #t = &#own;));
            } else {
                rebinds.push(quote!(let #t = #fwd::sanitize(&#n, &#t);));
            }
        }
    }
    // Differentiated in the parameters and in their tangents: a caller's
    // tangent argument (`2 a ȧ` for `g(a * a)`) depends on its parameters.
    let mut wrt_names: Vec<Ident> = sig.active().map(|p| p.name.clone()).collect();
    wrt_names.extend(sig.active().map(|p| tangent_name(&p.name)));
    let hess_attr = if opts.hessian {
        quote!(#[::tapeless::differentiable(wrt(#(#wrt_names),*))])
    } else {
        quote!()
    };
    let pf_doc =
        "The pushforward with one tangent per parameter: what generated forward-mode code calls.";
    let pushforward_fn = quote! {
        #[doc = #pf_doc]
        #[doc(hidden)]
        #hess_attr
        #allows
        #vis fn #pushforward <#(#tan_generics),*> (#inputs #sep #(#tan_params),*) -> (#ret, #ret_tan) {
            #(#rebinds)*
            #fbody
        }
    };

    // `_tangent`: tangents for the differentiated parameters only.
    let args_plain: Vec<TokenStream> = sig
        .params
        .iter()
        .map(|p| {
            let n = &p.name;
            quote!(#n)
        })
        .collect();
    let taken: Vec<String> = sig.params.iter().map(|p| p.name.to_string()).collect();
    let d_name = |p: &parse::Param| -> Ident {
        let n = format!("d_{}", p.name);
        if taken.contains(&n) {
            tangent_name(&p.name)
        } else {
            format_ident!("{}", n)
        }
    };
    let d_params: Vec<TokenStream> = sig
        .active()
        .map(|p| {
            let d = d_name(p);
            let ty = p.tangent_type();
            quote!(#d: #ty)
        })
        .collect();
    // What the pushforward gets for a parameter that is not differentiated.
    let inactive = |p: &parse::Param| {
        if opts.hessian {
            zero_for(p)
        } else {
            lend(p, quote!(::tapeless::__private::NoGrad))
        }
    };
    let d_args = sig.per_param(
        |p, _| {
            let d = d_name(p);
            lend(p, quote!(#d))
        },
        inactive,
    );
    let tangent = format_ident!("{}_tangent", name);
    let tangent_doc = format!(
        "Value of [`{name_s}`] and its Jacobian-vector product (forward mode): the derivative of `{name_s}` along the given tangents of its differentiated parameters. Generated by `#[differentiable(forward)]`."
    );
    let tangent_fn = quote! {
        #[doc = #tangent_doc]
        #[inline]
        #allows
        #vis fn #tangent (#inputs #sep #(#d_params),*) -> (#ret, #ret_tan) {
            #pushforward_path(#(#args_plain,)* #(#d_args),*)
        }
    };

    let reuse = reusable_args(sig);
    // Tangent arguments with a unit tangent for active parameter `i` at `k`.
    let unit_args = |i: usize, k: &Ident| -> Vec<TokenStream> {
        sig.per_param(
            |p, j| if j == i { unit_for(p, k) } else { zero_for(p) },
            inactive,
        )
    };
    let actives: Vec<&parse::Param> = sig.active().collect();
    let n_active = actives.len();
    let k = format_ident!("__k");
    // The number of scalars in each differentiated parameter.
    let lens: Vec<TokenStream> = actives
        .iter()
        .map(|p| {
            let n = &p.name;
            quote!(#fwd::flat_len_of(&#n))
        })
        .collect();

    let jacobian_fn = if opts.jacobian {
        let jac = format_ident!("{}_jacobian", name);
        let pullback = sig.sibling(&format_ident!("{}_pullback", name));
        let original = sig.sibling(name);
        let mut fwd_cols = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let targs = unit_args(i, &k);
            fwd_cols.push(quote! {
                for #k in 0..#len {
                    let (_, __dy) = #pushforward_path(#(#reuse,)* #(#targs),*);
                    let mut __off = 0usize;
                    #fwd::write_col_at(&mut __j, __col, &mut __off, &__dy);
                    __col += 1;
                }
            });
        }
        let g = format_ident!("__g");
        let mut rev_rows = Vec::new();
        let slot = |i: usize| -> TokenStream {
            let i = syn::Index::from(i);
            quote!(#g.#i)
        };
        for (i, p) in sig.params.iter().enumerate() {
            if p.active {
                let s = slot(i);
                rev_rows.push(quote!(#fwd::write_row_at(&mut __j, __i, &mut __off, &#s);));
            }
        }
        let doc = format!(
            "Value of [`{name_s}`] and its Jacobian with respect to the differentiated parameters: a dense row-major matrix with one row per scalar of the output and one column per scalar of the inputs (parameters in order). Uses one forward sweep per input scalar when there are no more inputs than outputs, otherwise one reverse sweep per output scalar. Generated by `#[differentiable(jacobian)]`."
        );
        quote! {
            #[doc = #doc]
            #allows
            #vis fn #jac (#inputs) -> (#ret, ::tapeless::Jacobian) {
                let __y = #original(#(#reuse),*);
                let __n_in: usize = 0 #(+ #lens)*;
                let __n_out = #fwd::flat_len_of(&__y);
                let mut __j = ::tapeless::Jacobian::new(__n_out, __n_in);
                if __n_in <= __n_out {
                    // Forward mode: column by column.
                    let mut __col = 0usize;
                    #(#fwd_cols)*
                } else {
                    // Reverse mode: row by row.
                    for __i in 0..__n_out {
                        let (_, #g) = #pullback(#(#reuse,)* #fwd::unit(&__y, __i));
                        let mut __off = 0usize;
                        #(#rev_rows)*
                    }
                }
                (__y, __j)
            }
        }
    } else {
        quote!()
    };

    let hessian_fns = if opts.hessian {
        if !sig.scalar_ret {
            return syn::Error::new_spanned(
                &func.sig.output,
                "`hessian` needs a function returning `f32` or `f64`; for vector outputs use `jacobian`",
            )
            .to_compile_error();
        }
        let adjoint = sig.sibling(&format_ident!("{}_adjoint", name));
        let pf_adjoint = sig.sibling(&format_ident!("{}_pushforward_adjoint", name));
        let grad_ty = sig.grad_type();
        // The direction's parameters: `v_x` for `x`, `v_self` for the receiver.
        let v_name = |p: &parse::Param| format_ident!("v_{}", p.name.to_string());
        let v_params: Vec<TokenStream> = actives
            .iter()
            .map(|p| {
                let v = v_name(p);
                let ty = p.tangent_type();
                quote!(#v: #ty)
            })
            .collect();
        let v_args = sig.per_param(
            |p, _| {
                let v = v_name(p);
                lend(p, quote!(#v))
            },
            zero_for,
        );
        let hvp = format_ident!("{}_hvp", name);
        let hessian = format_ident!("{}_hessian", name);
        let nested = nested_companions(func, sig, &hvp, &d_params, &inputs, &sep);
        let hvp_doc = format!(
            "Value, gradient and Hessian-vector product `H v` of [`{name_s}`] with respect to its differentiated parameters (`v` has one tangent per differentiated parameter). `H v` is the reverse-mode derivative of the forward-mode tangent along `v` (reverse-over-forward). Generated by `#[differentiable(hessian)]`."
        );
        let hess_doc = format!(
            "Value, gradient and dense Hessian of [`{name_s}`] with respect to its differentiated parameters (parameters' scalars in order), one Hessian-vector product per input scalar: for small inputs. Generated by `#[differentiable(hessian)]`."
        );
        let hv = quote!(__hv);
        // The adjoint also returns the tangents' gradients: the first
        // `n_active` parts are `H v`.
        let hv_part = |i: usize| field(&hv, i);
        let hv_parts = if n_active == 1 {
            hv_part(0)
        } else {
            let ps: Vec<TokenStream> = (0..n_active).map(hv_part).collect();
            quote!((#(#ps,)*))
        };
        let col_writes: Vec<TokenStream> = (0..n_active)
            .map(|i| {
                let pt = hv_part(i);
                quote!(#fwd::write_col_at(&mut __h, __col, &mut __off, &#pt);)
            })
            .collect();
        let mut cols = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let targs = unit_args(i, &k);
            cols.push(quote! {
                for #k in 0..#len {
                    let (_, #hv) = #pf_adjoint(#(#reuse,)* #(#targs,)* (0.0, 1.0));
                    let mut __off = 0usize;
                    #(#col_writes)*
                    __col += 1;
                }
            });
        }
        quote! {
            #[doc = #hvp_doc]
            #allows
            #vis fn #hvp (#inputs #sep #(#v_params),*) -> (#ret, #grad_ty, #grad_ty) {
                let (__y, __g) = #adjoint(#(#reuse,)* 1.0);
                let (_, __hv) = #pf_adjoint(#(#args_plain,)* #(#v_args,)* (0.0, 1.0));
                (__y, __g, #hv_parts)
            }

            #nested

            #[doc = #hess_doc]
            #allows
            #vis fn #hessian (#inputs) -> (#ret, #grad_ty, ::tapeless::Jacobian) {
                let (__y, __g) = #adjoint(#(#reuse,)* 1.0);
                let __n: usize = 0 #(+ #lens)*;
                let mut __h = ::tapeless::Jacobian::new(__n, __n);
                let mut __col = 0usize;
                #(#cols)*
                (__y, __g, __h)
            }
        }
    } else {
        quote!()
    };
    quote! {
        #pushforward_fn
        #tangent_fn
        #jacobian_fn
        #hessian_fns
    }
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
    let (inputs, sep) = inputs_of(func);
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
    let spread = sig.per_param(|_, k| part_of(&quote!(__g), k, n_active), |_| no_grad());
    let slot_tys = sig.slot_types();
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

/// The function's parameters for a companion's signature, without a
/// trailing comma, and the separator that lets more parameters follow
/// (`fn f(x: f64, y: f64,)` would otherwise end in `,,`).
fn inputs_of(
    func: &ItemFn,
) -> (
    syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    TokenStream,
) {
    let inputs: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]> =
        func.sig.inputs.iter().cloned().collect();
    let sep = if inputs.is_empty() {
        quote!()
    } else {
        quote!(,)
    };
    (inputs, sep)
}

/// `_adjoint_acc` of a function that calls itself: the adjoint with the
/// gradient of each differentiated parameter added into `__acc_<name>`
/// instead of returned; returns the value.
fn acc_item(func: &ItemFn, sig: &Signature, body: TokenStream) -> TokenStream {
    let vis = &func.vis;
    let name = &func.sig.ident;
    let generics = &func.sig.generics;
    let where_clause = &func.sig.generics.where_clause;
    let (inputs, sep) = inputs_of(func);
    let ret = &sig.ret;
    let dout_ty = parse::tangent_of(ret);
    let acc = format_ident!("{}_adjoint_acc", name);
    let d_out = d_out_name();
    let slots: Vec<TokenStream> = sig
        .active()
        .map(|p| {
            let slot = format_ident!("__acc_{}", p.name);
            let ty = p.tangent_type();
            quote!(#slot: &mut #ty)
        })
        .collect();
    let allows = allows();
    quote! {
        /// The adjoint with the differentiated parameters' gradients added
        /// into the given slots (what the function's own reverse sweep calls).
        #[doc(hidden)]
        #allows
        #vis fn #acc #generics (#inputs #sep #d_out: #dout_ty, #(#slots),*) -> #ret #where_clause {
            #body
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
    let spread = sig.per_param(|_, k| part_of(&quote!(__g), k, n_active), |_| no_grad());
    let slot_tys = sig.slot_types();
    let user_path = if sig.qualify_self {
        quote!(Self::#user)
    } else {
        quote!(#user)
    };
    let allows = allows();
    // Forward mode through the custom rule, for scalar results: the tangent
    // is the gradient (one reverse sweep) dotted with the parameters' tangents.
    let scalar =
        matches!(&value_ty, syn::Type::Path(p) if p.path.is_ident("f64") || p.path.is_ident("f32"));
    let pushforward_fn = if scalar {
        let pushforward = crate::forward::pushforward_name(&of_name);
        let tan_params: Vec<TokenStream> = sig
            .params
            .iter()
            .map(|p| {
                let t = crate::forward::tangent_name(&p.name);
                let ty = pushforward_tangent_type(p);
                quote!(#t: #ty)
            })
            .collect();
        let dots: Vec<TokenStream> = sig
            .params
            .iter()
            .zip(&spread)
            .filter(|(p, _)| p.active)
            .map(|(p, g)| {
                let t = crate::forward::tangent_name(&p.name);
                let t = if is_ref_param(p) {
                    quote!(#t)
                } else {
                    quote!(&#t)
                };
                quote!(+ ::tapeless::__private::fwd::dot(&#g, #t))
            })
            .collect();
        quote! {
            /// Forward mode through the custom rule: the gradient dotted with the tangents.
            #[doc(hidden)]
            #allows
            #vis fn #pushforward(#inputs #sep #(#tan_params),*) -> (#value_ty, #value_ty) {
                let (__v, __g) = #user_path(#(#args,)* 1.0);
                let __t = 0.0 #(#dots)*;
                (__v, __t as #value_ty)
            }
        }
    } else {
        quote!()
    };
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

        #pushforward_fn
    }
}

fn combine(err: TokenStream, item: TokenStream) -> TokenStream {
    quote!(#err #item)
}
