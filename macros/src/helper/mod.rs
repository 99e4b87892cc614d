//! `#[helper]`: a function, an `impl` block or an inline module whose code the keys of the
//! tasks that name it in `uses` hold. It stays as written; beside it, a type that implements
//! the runtime's `Helper` (a function's hidden struct of the same name, an `impl` block's
//! own type, a struct for each function of a module) gives its code's fingerprint.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::diag::Diagnostics;

/// Expands `#[helper(args)] item`; on error, the errors and the item as written.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(err) => return err.into_compile_error(),
    };
    let mut diag = Diagnostics::default();
    let options = parse::options(args, &mut diag);
    let helper = parse::Helper::from_syn(&parsed, options, &mut diag);
    match (diag.finish(), helper) {
        (Ok(()), Some(helper)) => expand::helper(&helper),
        (Err(err), _) => {
            let err = err.into_compile_error();
            quote!(#err #item)
        }
        // `from_syn` records why it made no helper.
        (Ok(()), None) => item,
    }
}
