//! Expands a checked `pipeline!` into calls of the typed builder and a value that derefs to
//! `Pipeline` with one `Handle` field per binding.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::check::{Arg, Wired};
use super::parse::PipelineDef;
use crate::paths;

pub(crate) fn pipeline(def: &PipelineDef, wired: &Wired<'_>) -> TokenStream {
    let pw = paths::private(None);
    let builder = format_ident!("__pw_builder", span = Span::mixed_site());
    let name = &def.name;

    let adds =
        def.bindings
            .iter()
            .zip(&wired.args)
            .zip(&wired.over)
            .map(|((binding, args), over)| {
                let ident = &binding.ident;
                // `let r#type` is the node `type`.
                let node_name = ident.unraw().to_string();
                if binding.is_value()
                    && let [Arg::Param(expr)] = args.as_slice()
                {
                    return quote! {
                        let #ident = #builder.__value_checked(#node_name, #expr);
                    };
                }
                let task = &binding.task;
                let args = args.iter().map(|arg| match arg {
                    Arg::Edge(ident) => quote!(#ident),
                    Arg::Gather(idents) => quote!([#(#idents),*]),
                    Arg::Param(expr) => quote!(#expr),
                });
                let paren = binding.call.paren_token;
                let mut call_args = TokenStream::new();
                paren.surround(&mut call_args, |tokens| tokens.extend(quote!(#(#args),*)));
                let constructor = quote_spanned!(task.span()=> <#task>::node);
                if let (Some(map), Some(over)) = (&binding.map, over) {
                    // The body is called once, when the node is added, with the element's handle.
                    let elem = &map.elem;
                    // At what is mapped over, so that a node that is not a list is reported there.
                    let map_checked = quote_spanned!(over.span()=> __map_checked);
                    return quote! {
                        let #ident = #builder.#map_checked(
                            #node_name,
                            #over,
                            |#elem| #constructor #call_args,
                        );
                    };
                }
                quote! {
                    let #ident = #builder.__add_checked(#node_name, #constructor #call_args);
                }
            });

    let idents: Vec<_> = def.bindings.iter().map(|b| &b.ident).collect();
    let generics: Vec<_> = (0..idents.len())
        .map(|i| format_ident!("__T{}", i, span = Span::mixed_site()))
        .collect();
    let inner = inner_field(&idents);

    quote! {
        {
            let mut #builder = #pw::Pipeline::builder(#name);
            #(#adds)*

            // In a block of its own, so that no binding meets the struct's name.
            {
                /// A pipeline built by `pipeline!`: derefs to `Pipeline`, with one `Handle`
                /// field per binding.
                // A binding named `N` warns once, at the binding, not again at its field.
                #[allow(non_snake_case)]
                struct PipelineNodes<#(#generics),*> {
                    #(#idents: #generics,)*
                    #inner: #pw::Pipeline,
                }

                impl<#(#generics),*> #pw::core::ops::Deref for PipelineNodes<#(#generics),*> {
                    type Target = #pw::Pipeline;
                    fn deref(&self) -> &#pw::Pipeline {
                        &self.#inner
                    }
                }

                impl<#(#generics),*> #pw::core::convert::AsRef<#pw::Pipeline> for PipelineNodes<#(#generics),*> {
                    fn as_ref(&self) -> &#pw::Pipeline {
                        &self.#inner
                    }
                }

                impl<#(#generics),*> #pw::core::fmt::Debug for PipelineNodes<#(#generics),*> {
                    fn fmt(&self, f: &mut #pw::core::fmt::Formatter<'_>) -> #pw::core::fmt::Result {
                        #pw::core::fmt::Debug::fmt(&self.#inner, f)
                    }
                }

                PipelineNodes {
                    #(#idents,)*
                    #inner: #builder.build(),
                }
            }
        }
    }
}

/// The name of the field that holds the `Pipeline`: one that no binding has, as the
/// bindings name the other fields.
fn inner_field(bindings: &[&syn::Ident]) -> syn::Ident {
    let mut name = "__pipewright_pipeline".to_owned();
    while bindings.iter().any(|b| b.unraw() == name) {
        name.push('_');
    }
    format_ident!("{}", name, span = Span::mixed_site())
}
