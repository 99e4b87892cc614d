//! `#[task]`: a plain function becomes a task: a parameter struct of the same name that
//! implements the runtime's `Task`, a `node` constructor for the typed builder, and a
//! registry entry.

mod check;
mod expand;
pub(crate) mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diag::Diagnostics;

/// Expands `#[task(args)] item`. On error: the errors, the item as written and a stand-in
/// for the task, so that calls of the function and uses in `pipeline!` do not cascade into
/// more errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => func,
        Ok(other) => {
            let err = syn::Error::new_spanned(
                item_keyword(&other),
                "`#[task]` goes on a free function, like `#[task] fn load(path: String) -> Data`",
            );
            let err = err.into_compile_error();
            return quote!(#err #item);
        }
        Err(err) => return err.into_compile_error(),
    };
    // Left out of what is emitted, so that the error is not followed by the helper's own.
    let (helpers, attrs) = func.attrs.into_iter().partition(check::is_helper);
    func.attrs = attrs;
    match try_expand(args, &func, &helpers) {
        Ok(out) => out,
        Err((err, stand_in)) => {
            let err = err.into_compile_error();
            quote!(#err #stand_in)
        }
    }
}

/// The task's items, or the errors and what to emit in place of the task.
fn try_expand(
    args: TokenStream,
    func: &syn::ItemFn,
    helpers: &[syn::Attribute],
) -> Result<TokenStream, (syn::Error, TokenStream)> {
    let mut diag = Diagnostics::default();
    let options = parse::options(args, &mut diag);
    check::signature(&func.sig, &mut diag);
    check::helper_attributes(helpers, &mut diag);
    let task = parse::TaskFn::from_syn(func, options, &mut diag);
    match diag.finish() {
        Ok(()) => Ok(expand::task(&task)),
        Err(err) => Err((err, expand::stand_in(&task))),
    }
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
