//! `pipeline!`: `let` bindings that read like calls of the task functions, expanded to calls
//! of the typed builder.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(out) => out,
        // In a block, as several errors are several `compile_error!` calls and the macro
        // stands where one expression goes.
        Err(err) => {
            let errors = err.into_compile_error();
            quote::quote!({ #errors })
        }
    }
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let pipeline = syn::parse2::<parse::PipelineDef>(input)?;
    let wired = check::pipeline(&pipeline)?;
    Ok(expand::pipeline(&pipeline, &wired))
}
