//! Generates a helper's items: what was marked, as written, and beside it a type that
//! implements the runtime's `Helper` with the fingerprint of its code.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use super::parse::{Helper, Marked, unraw};
use crate::fingerprint;
use crate::paths;
use crate::uses;

pub(crate) fn helper(helper: &Helper<'_>) -> TokenStream {
    let pw = paths::private(helper.options.krate.as_ref());
    let fingerprint = fingerprint::helper(helper.item.to_token_stream());
    let (uses_items, uses_list) = uses::resolve(&helper.options.uses);
    let meta = |name: TokenStream| {
        quote! {
            #[allow(dead_code)]
            static __PW_HELPER: __pw::HelperMeta = __pw::HelperMeta::__new(
                #name,
                [#(#fingerprint),*],
                #uses_list,
            );
        }
    };
    match &helper.marked {
        Marked::Fn(func) => {
            let ident = &func.sig.ident;
            let vis = &func.vis;
            let cfgs = cfgs(&func.attrs);
            let name = unraw(ident);
            let meta = meta(quote!(::core::concat!(::core::module_path!(), "::", #name)));
            quote! {
                #func

                // The function's name in the type namespace, for `uses` to find.
                #[doc(hidden)]
                #[allow(non_camel_case_types, dead_code)]
                #(#cfgs)*
                #vis struct #ident {}

                #(#cfgs)*
                const _: () = {
                    use #pw as __pw;

                    #uses_items

                    #[automatically_derived]
                    impl __pw::Helper for #ident {
                        fn __meta() -> &'static __pw::HelperMeta {
                            #meta
                            &__PW_HELPER
                        }
                    }
                };
            }
        }
        Marked::Impl(block) => {
            let item = helper.item;
            let self_ty = &block.self_ty;
            let cfgs = cfgs(&block.attrs);
            let name = self_ty.to_token_stream().to_string().replace(' ', "");
            let meta = meta(quote!(::core::concat!(::core::module_path!(), "::", #name)));
            quote! {
                #item

                #(#cfgs)*
                const _: () = {
                    use #pw as __pw;

                    #uses_items

                    #[automatically_derived]
                    impl __pw::Helper for #self_ty {
                        fn __meta() -> &'static __pw::HelperMeta {
                            #meta
                            &__PW_HELPER
                        }
                    }
                };
            }
        }
        Marked::Mod { item, fns } => {
            let meta = meta(quote!(::core::module_path!()));
            let markers = fns.iter().map(|func| {
                let ident = &func.sig.ident;
                let vis = &func.vis;
                let cfgs = cfgs(&func.attrs);
                quote! {
                    #[doc(hidden)]
                    #[allow(non_camel_case_types, dead_code)]
                    #(#cfgs)*
                    #vis struct #ident {}
                }
            });
            let impls = fns.iter().map(|func| {
                let ident = &func.sig.ident;
                let cfgs = cfgs(&func.attrs);
                quote! {
                    #(#cfgs)*
                    #[automatically_derived]
                    impl __pw::Helper for #ident {
                        fn __meta() -> &'static __pw::HelperMeta {
                            &__PW_HELPER
                        }
                    }
                }
            });
            let mut module = (*item).clone();
            if let Some((_, items)) = &mut module.content {
                let added: syn::File = syn::parse_quote! {
                    #(#markers)*

                    // The module's fingerprint, which each of its functions gives.
                    const _: () = {
                        use #pw as __pw;

                        #uses_items

                        #meta

                        #(#impls)*
                    };
                };
                items.extend(added.items);
            }
            module.to_token_stream()
        }
    }
}

/// The `#[cfg(...)]` attributes of an item, which its helper items share.
fn cfgs(attrs: &[syn::Attribute]) -> Vec<&syn::Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}
