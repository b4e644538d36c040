//! Phase 1: the attribute's options and the function's signature.
//!
//! Decides which parameters are active (differentiated), and the types of the
//! gradients the generated functions return.

use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

/// Options of `#[differentiable(...)]`.
#[derive(Default)]
pub struct Options {
    /// `wrt(a, b)`: the parameters to differentiate, in place of the default.
    pub wrt: Option<Vec<Ident>>,
    /// `forward`: also write `NAME_tangent` (and the hidden `NAME_pushforward`).
    pub forward: bool,
    /// `jacobian`: also write `NAME_jacobian` (implies `forward`).
    pub jacobian: bool,
    /// `hessian`: also write `NAME_hvp` and `NAME_hessian` (implies `forward`).
    pub hessian: bool,
}

impl Options {
    /// Whether any forward-mode companion is asked for.
    pub fn any_forward(&self) -> bool {
        self.forward || self.jacobian || self.hessian
    }
}

impl Options {
    pub fn parse(attr: TokenStream, cx: &Ctxt) -> Options {
        let mut opts = Options::default();
        if attr.is_empty() {
            return opts;
        }
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("wrt") {
                if opts.wrt.is_some() {
                    return Err(meta.error("`wrt` given twice"));
                }
                if !meta.input.peek(syn::token::Paren) {
                    return Err(
                        meta.error("write the parameters to differentiate as a list: `wrt(x, y)`")
                    );
                }
                let content;
                syn::parenthesized!(content in meta.input);
                let names = content.parse_terminated(parse_wrt_name, syn::Token![,])?;
                opts.wrt = Some(names.into_iter().collect());
                Ok(())
            } else if meta.path.is_ident("forward") {
                opts.forward = true;
                Ok(())
            } else if meta.path.is_ident("jacobian") {
                opts.jacobian = true;
                Ok(())
            } else if meta.path.is_ident("hessian") {
                opts.hessian = true;
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown option `{}`: `#[differentiable]` takes `wrt(param, ...)`, `forward`, `jacobian` and `hessian`",
                    meta.path.to_token_stream()
                )))
            }
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
            cx.error(e.span(), e);
        }
        opts
    }
}

fn parse_wrt_name(input: syn::parse::ParseStream) -> syn::Result<Ident> {
    if input.peek(syn::Token![self]) {
        let s: syn::Token![self] = input.parse()?;
        Ok(Ident::new("self", s.span))
    } else {
        input.parse()
    }
}

/// One parameter of the function.
pub struct Param {
    /// The name (`self` for the receiver).
    pub name: Ident,
    /// The declared type (`Self`/`&Self` for the receiver).
    pub ty: Type,
    pub active: bool,
    pub is_receiver: bool,
}

impl Param {
    /// `<T as Differentiable>::Tangent`, with leading references stripped so
    /// the type needs no lifetime.
    pub fn tangent_type(&self) -> TokenStream {
        tangent_of(&self.ty)
    }
}

pub fn tangent_of(ty: &Type) -> TokenStream {
    let mut ty = ty;
    while let Type::Reference(r) = ty {
        ty = &r.elem;
    }
    let span = ty.span();
    quote_spanned!(span=> <#ty as ::tapeless::Differentiable>::Tangent)
}

pub struct Signature {
    pub params: Vec<Param>,
    pub ret: Type,
    /// The return type is `f32` or `f64`: a `_grad` is generated.
    pub scalar_ret: bool,
    /// Generated siblings are called as `Self::name` (methods, or functions mentioning `Self`).
    pub qualify_self: bool,
}

impl Signature {
    pub fn active(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.active)
    }

    /// The gradient type: the one active parameter's tangent, or a tuple of them.
    pub fn grad_type(&self) -> TokenStream {
        let tys: Vec<_> = self.active().map(Param::tangent_type).collect();
        if tys.len() == 1 {
            tys[0].clone()
        } else {
            quote!((#(#tys,)*))
        }
    }

    /// One item per parameter: `active(p, k)` for the `k`-th differentiated
    /// parameter, `inactive(p)` for the others.
    pub fn per_param<T>(
        &self,
        mut active: impl FnMut(&Param, usize) -> T,
        mut inactive: impl FnMut(&Param) -> T,
    ) -> Vec<T> {
        let mut k = 0;
        self.params
            .iter()
            .map(|p| {
                if p.active {
                    k += 1;
                    active(p, k - 1)
                } else {
                    inactive(p)
                }
            })
            .collect()
    }

    /// A pullback's gradient slot types: each differentiated parameter's
    /// tangent, `NoGrad` for the others.
    pub fn slot_types(&self) -> Vec<TokenStream> {
        self.per_param(
            |p, _| p.tangent_type(),
            |_| quote!(::tapeless::__private::NoGrad),
        )
    }

    /// The path to call a generated sibling `name` by.
    pub fn sibling(&self, name: &Ident) -> TokenStream {
        if self.qualify_self {
            quote!(Self::#name)
        } else {
            quote!(#name)
        }
    }
}

const INACTIVE_SCALARS: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "bool",
    "char", "str", "String",
];

/// Types that cannot carry a derivative: integers, `bool`, `char`, strings, and
/// references, slices, arrays, `Vec`s and tuples of them.
pub fn is_inactive_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_inactive_type(&r.elem),
        Type::Slice(s) => is_inactive_type(&s.elem),
        Type::Array(a) => is_inactive_type(&a.elem),
        Type::Paren(p) => is_inactive_type(&p.elem),
        Type::Group(g) => is_inactive_type(&g.elem),
        Type::Tuple(t) => !t.elems.is_empty() && t.elems.iter().all(is_inactive_type),
        // Function pointers and raw pointers carry no derivative.
        Type::BareFn(_) | Type::Ptr(_) => true,
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return false;
            };
            let name = last.ident.to_string();
            if INACTIVE_SCALARS.contains(&name.as_str()) {
                return true;
            }
            if name == "Vec" || name == "Option" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(t)) = args.args.first() {
                        return is_inactive_type(t);
                    }
                }
            }
            false
        }
        _ => false,
    }
}

/// Types whose values operators copy rather than move: references, floats,
/// integers, `bool`, `char`, and arrays and tuples of them.
pub fn is_copy_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => r.mutability.is_none(),
        Type::Array(a) => is_copy_type(&a.elem),
        Type::Paren(p) => is_copy_type(&p.elem),
        Type::Tuple(t) => t.elems.iter().all(is_copy_type),
        Type::Path(p) if p.qself.is_none() => p.path.get_ident().is_some_and(|i| {
            matches!(i.to_string().as_str(), "f32" | "f64" | "bool" | "char")
                || INACTIVE_SCALARS.contains(&i.to_string().as_str()) && i != "str" && i != "String"
        }),
        _ => false,
    }
}

fn is_float(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && (p.path.is_ident("f64") || p.path.is_ident("f32")))
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => mentions_self(g.stream()),
        _ => false,
    })
}

/// Checks the signature and strips `#[no_grad]` from `func`'s parameters.
pub fn signature(func: &mut ItemFn, opts: &Options, cx: &Ctxt) -> Signature {
    let sig = &func.sig;
    if let Some(t) = &sig.asyncness {
        cx.error_spanned(
            t,
            "`async fn` cannot be differentiated; make it a plain `fn`",
        );
    }
    if let Some(t) = &sig.constness {
        cx.error_spanned(t, "`const fn` cannot be differentiated; remove `const`");
    }
    if let Some(t) = &sig.unsafety {
        cx.error_spanned(t, "`unsafe fn` cannot be differentiated; make it safe");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned(
            abi,
            "`extern` functions cannot be differentiated; remove the ABI",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned(v, "variadic functions cannot be differentiated");
    }
    for g in &sig.generics.params {
        match g {
            syn::GenericParam::Lifetime(_) => {}
            syn::GenericParam::Type(t) => cx.error_spanned(
                t,
                "generic type parameters are not supported by `#[differentiable]`; write the function for `f64` or `f32` (or a concrete type)",
            ),
            syn::GenericParam::Const(c) => cx.error_spanned(
                c,
                "const generic parameters are not supported by `#[differentiable]`; use a fixed size or a slice",
            ),
        }
    }

    let ret = match &sig.output {
        ReturnType::Default => {
            cx.error(
                sig.ident.span(),
                format!(
                    "`{}` returns nothing, so there is nothing to differentiate; return the value to differentiate (`-> f64`)",
                    sig.ident
                ),
            );
            syn::parse_quote!(f64)
        }
        ReturnType::Type(_, t) => {
            if let Type::ImplTrait(_) = **t {
                cx.error_spanned(
                    t,
                    "`impl Trait` return types cannot be differentiated; name the type",
                );
            }
            if let Type::Path(p) = &**t {
                let last = p.path.segments.last().map(|s| s.ident.to_string());
                if let Some(kind @ ("Option" | "Result")) = last.as_deref() {
                    cx.error_spanned(
                        t,
                        format!("an `{kind}` has no derivative; differentiate a function that returns the value itself, and handle the failure case in a caller"),
                    );
                }
            }
            (**t).clone()
        }
    };

    let mut params = Vec::new();
    let qualify_self =
        mentions_self(sig.to_token_stream()) || mentions_self(func.block.to_token_stream());
    let sig = &mut func.sig;
    for arg in sig.inputs.iter_mut() {
        match arg {
            FnArg::Receiver(r) => {
                let no_grad = take_no_grad(&mut r.attrs, cx);
                if r.mutability.is_some() && r.reference.is_some() {
                    cx.error_spanned(
                        &*r,
                        "`&mut self` cannot be differentiated; take `&self` and return the new value instead",
                    );
                }
                let ty = (*r.ty).clone();
                params.push(Param {
                    name: Ident::new("self", r.self_token.span),
                    ty,
                    active: !no_grad,
                    is_receiver: true,
                });
            }
            FnArg::Typed(pt) => {
                let no_grad = take_no_grad(&mut pt.attrs, cx);
                let name = match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        pi.ident.clone()
                    }
                    other => {
                        cx.error_spanned(
                            other,
                            "parameter patterns are not supported by `#[differentiable]`; bind the parameter to a name and destructure it in the body",
                        );
                        format_ident!("__invalid_param_{}", params.len())
                    }
                };
                let ty = (*pt.ty).clone();
                let mut active = !no_grad && !is_inactive_type(&ty);
                if let Type::Reference(r) = &ty {
                    if r.mutability.is_some() && !no_grad {
                        cx.error_spanned(
                            &pt.ty,
                            "`&mut` parameters cannot be differentiated; return the value instead (or mark the parameter `#[no_grad]`)",
                        );
                        active = false;
                    }
                }
                if let Type::ImplTrait(_) = ty {
                    cx.error_spanned(
                        &pt.ty,
                        "`impl Trait` parameters cannot be differentiated; name the type",
                    );
                    active = false;
                }
                params.push(Param {
                    name,
                    ty,
                    active,
                    is_receiver: false,
                });
            }
        }
    }

    if let Some(wrt) = &opts.wrt {
        for p in params.iter_mut() {
            p.active = false;
        }
        for name in wrt {
            match params.iter_mut().find(|p| p.name == *name) {
                None => cx.error(
                    name.span(),
                    format!("`wrt({name})` names no parameter of this function"),
                ),
                Some(p) if !p.is_receiver && is_inactive_type(&p.ty) => cx.error(
                    name.span(),
                    format!(
                        "`{name}` has type `{}`, which has no derivative; `wrt` takes float, array, slice, `Vec`, tuple or `Differentiable` parameters",
                        p.ty.to_token_stream()
                    ),
                ),
                Some(p) => p.active = true,
            }
        }
    }

    Signature {
        scalar_ret: is_float(&ret),
        ret,
        params,
        qualify_self: qualify_self || func.sig.receiver().is_some(),
    }
}

fn take_no_grad(attrs: &mut Vec<syn::Attribute>, cx: &Ctxt) -> bool {
    let before = attrs.len();
    attrs.retain(|a| {
        if a.path().is_ident("no_grad") {
            if !matches!(a.meta, syn::Meta::Path(_)) {
                cx.error_spanned(a, "`#[no_grad]` takes no arguments");
            }
            false
        } else {
            true
        }
    });
    attrs.len() != before
}
