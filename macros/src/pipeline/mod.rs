//! `pipeline!`: `let` bindings that read like calls of the task functions, expanded to calls
//! of the typed builder.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(out) => out,
        Err(err) => err.into_compile_error(),
    }
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let pipeline = syn::parse2::<parse::PipelineDef>(input)?;
    let wired = check::pipeline(&pipeline)?;
    Ok(expand::pipeline(&pipeline, &wired))
}
