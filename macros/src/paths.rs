//! The paths generated code uses to reach the runtime.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// The path of the `pipewright` crate: `::pipewright` unless `#[task(crate = ...)]` says
/// otherwise.
pub(crate) fn krate(custom: Option<&syn::Path>) -> TokenStream {
    match custom {
        Some(path) => path.to_token_stream(),
        None => quote!(::pipewright),
    }
}

/// `<crate>::__private`, the only way into the runtime.
pub(crate) fn private(custom: Option<&syn::Path>) -> TokenStream {
    let krate = krate(custom);
    quote!(#krate::__private)
}
