//! `#[derive(Differentiable)]` for parameter structs: the struct is its own
//! tangent, so a whole model's gradient is one value of the model's type.
//!
//! Every field's type must be its own tangent (`f32`, `f64`, `Tensor`,
//! arrays and `Vec`s of them, other derived structs). Fields marked
//! `#[no_grad]` (hyper-parameters, sizes) are carried along: copied into
//! tangents built from a value, `Default` in the shapeless zero, and never
//! accumulated.
//!
//! It also implements `tapeless::params::Parameters`, visiting the fields
//! that are not `#[no_grad]` in declaration order under their names (`w`,
//! or `0`, `1`, ... for tuple structs), so optimizers and checkpoints can walk
//! the model's buffers by dotted path (`layers.0.w`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub fn derive(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(t) => t,
        Err(e) => e.into_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let item: syn::DeriveInput = syn::parse2(input)?;
    let name = &item.ident;
    let (impl_g, ty_g, where_c) = item.generics.split_for_impl();
    let syn::Data::Struct(data) = &item.data else {
        return Err(syn::Error::new_spanned(
            &item.ident,
            "`#[derive(Differentiable)]` supports structs; for enums write the impl by hand",
        ));
    };
    let fields: Vec<(TokenStream, bool, &syn::Field)> = data
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let member = match &f.ident {
                Some(id) => quote!(#id),
                None => {
                    let idx = syn::Index::from(i);
                    quote!(#idx)
                }
            };
            let no_grad = f.attrs.iter().any(|a| a.path().is_ident("no_grad"));
            (member, no_grad, f)
        })
        .collect();
    let p = quote!(::tapeless);
    let zero_like = fields.iter().map(|(m, ng, f)| {
        if *ng {
            quote_spanned!(f.span()=> #m: ::core::clone::Clone::clone(&self.#m))
        } else {
            quote_spanned!(f.span()=> #m: #p::Differentiable::zero_tangent(&self.#m))
        }
    });
    let zero = fields.iter().map(|(m, ng, f)| {
        if *ng {
            quote_spanned!(f.span()=> #m: ::core::default::Default::default())
        } else {
            quote_spanned!(f.span()=> #m: #p::Tangent::zero())
        }
    });
    let acc = fields.iter().filter(|(_, ng, _)| !ng).map(
        |(m, _, f)| quote_spanned!(f.span()=> #p::Tangent::accumulate(&mut self.#m, other.#m);),
    );
    let build = |inits: Vec<TokenStream>| match &data.fields {
        syn::Fields::Named(_) => quote!(#name { #(#inits),* }),
        syn::Fields::Unnamed(_) => {
            let vals = inits.iter().map(|t| {
                // `0: expr` is valid struct-literal syntax for tuple structs.
                quote!(#t)
            });
            quote!(#name { #(#vals),* })
        }
        syn::Fields::Unit => quote!(#name),
    };
    // `Parameters`: one call per differentiated field, under its name.
    let params_calls = |call: &dyn Fn(&TokenStream) -> TokenStream| -> Vec<TokenStream> {
        fields
            .iter()
            .filter(|(_, ng, _)| !ng)
            .map(|(m, _, f)| {
                // `r#type` is named `type`.
                let seg = m.to_string().trim_start_matches("r#").to_owned();
                let call = call(m);
                quote_spanned! {f.span()=>
                    let __len = #p::params::push_name(__name, #seg);
                    #call;
                    __name.truncate(__len);
                }
            })
            .collect()
    };
    let visit = params_calls(&|m| quote!(#p::params::Parameters::visit(&self.#m, __name, __f)));
    let visit_mut =
        params_calls(&|m| quote!(#p::params::Parameters::visit_mut(&mut self.#m, __name, __f)));
    let zip_mut = params_calls(
        &|m| quote!(#p::params::Parameters::zip_mut(&mut self.#m, &__grad.#m, __name, __f)),
    );
    let complete = fields.iter().map(|(m, ng, f)| {
        if *ng {
            quote_spanned!(f.span()=> #m: ::core::clone::Clone::clone(&self.#m))
        } else {
            quote_spanned!(f.span()=> #m: #p::Differentiable::complete_tangent(&self.#m, t.#m))
        }
    });
    let diff: Vec<&TokenStream> = fields
        .iter()
        .filter(|(_, ng, _)| !ng)
        .map(|(m, _, _)| m)
        .collect();
    let fwd_t = fields.iter().map(|(m, ng, f)| {
        if *ng {
            quote_spanned!(f.span()=> #m: ::core::default::Default::default())
        } else {
            quote_spanned!(f.span()=> #m: #p::Differentiable::forward_tangent(&self.#m, t.#m))
        }
    });
    let fwd_t = build(fwd_t.collect());
    let cpl = build(complete.collect());
    let zl = build(zero_like.collect());
    let z = build(zero.collect());
    Ok(quote! {
        #[automatically_derived]
        impl #impl_g #p::Differentiable for #name #ty_g #where_c {
            type Tangent = Self;
            fn zero_tangent(&self) -> Self {
                #zl
            }
            fn complete_tangent(&self, t: Self) -> Self {
                #cpl
            }
            fn forward_tangent(&self, t: Self) -> Self {
                #fwd_t
            }
        }

        #[automatically_derived]
        impl #impl_g #p::Tangent for #name #ty_g #where_c {
            fn zero() -> Self {
                #z
            }
            fn accumulate(&mut self, other: Self) {
                #(#acc)*
                let _ = other;
            }
        }

        /// The differentiated fields' scalars, in declaration order (`_jacobian`, `_hessian`).
        #[automatically_derived]
        impl #impl_g #p::Flat for #name #ty_g #where_c {
            fn flat_len(&self) -> usize {
                0 #(+ #p::Flat::flat_len(&self.#diff))*
            }
            fn write_flat(&self, __out: &mut [f64]) {
                let mut __off = 0usize;
                #(
                    let __n = #p::Flat::flat_len(&self.#diff);
                    #p::Flat::write_flat(&self.#diff, &mut __out[__off..__off + __n]);
                    __off += __n;
                )*
                let _ = (__out, __off);
            }
            fn set_flat(&mut self, mut __k: usize, __v: f64) {
                #(
                    let __n = #p::Flat::flat_len(&self.#diff);
                    if __k < __n {
                        return #p::Flat::set_flat(&mut self.#diff, __k, __v);
                    }
                    __k -= __n;
                )*
                let _ = (__k, __v);
                ::core::panic!("flat index out of range")
            }
        }

        #[automatically_derived]
        impl #impl_g #p::params::Parameters for #name #ty_g #where_c {
            fn visit(
                &self,
                __name: &mut ::std::string::String,
                __f: &mut #p::params::VisitFn<'_>,
            ) {
                #(#visit)*
                let _ = (__name, __f);
            }
            fn visit_mut(
                &mut self,
                __name: &mut ::std::string::String,
                __f: &mut #p::params::VisitMutFn<'_>,
            ) {
                #(#visit_mut)*
                let _ = (__name, __f);
            }
            fn zip_mut(
                &mut self,
                __grad: &Self,
                __name: &mut ::std::string::String,
                __f: &mut #p::params::ZipFn<'_>,
            ) {
                #(#zip_mut)*
                let _ = (__grad, __name, __f);
            }
        }

        #[automatically_derived]
        impl #impl_g #p::__private::Prim for #name #ty_g #where_c {
            type Target = Self;
            #[inline(always)]
            fn prim(&self) -> &Self {
                self
            }
        }
    })
}
