//! `#[task]`: a plain function becomes a task: a parameter struct of the same name that
//! implements the runtime's `Task`, a `node` constructor for the typed builder, and a
//! registry entry.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diag::Diagnostics;

/// Expands `#[task(args)] item`; on error, the errors plus the item as written, so that
/// calls of the function do not cascade into more errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => func,
        Ok(other) => {
            let err = syn::Error::new_spanned(
                item_keyword(&other),
                "`#[task]` goes on a free function, like `#[task] fn load(path: String) -> Data`",
            );
            return err.into_compile_error();
        }
        Err(err) => return err.into_compile_error(),
    };
    match try_expand(args, &func) {
        Ok(out) => out,
        Err(err) => {
            let err = err.into_compile_error();
            let name = &func.sig.ident;
            let vis = &func.vis;
            quote! {
                #err
                #func
                #[allow(non_camel_case_types, dead_code)]
                #vis struct #name {}
            }
        }
    }
}

fn try_expand(args: TokenStream, func: &syn::ItemFn) -> syn::Result<TokenStream> {
    let mut diag = Diagnostics::default();
    let options = parse::options(args, &mut diag);
    check::signature(&func.sig, &mut diag);
    let task = parse::TaskFn::from_syn(func, options, &mut diag);
    diag.finish()?;
    Ok(expand::task(&task))
}

/// The token that best names a non-function item, for the error span.
fn item_keyword(item: &syn::Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(i) => i.struct_token.to_token_stream(),
        syn::Item::Enum(i) => i.enum_token.to_token_stream(),
        syn::Item::Impl(i) => i.impl_token.to_token_stream(),
        syn::Item::Mod(i) => i.mod_token.to_token_stream(),
        syn::Item::Trait(i) => i.trait_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}
