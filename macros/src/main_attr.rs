//! `#[pipewright::main]`: makes the program re-enterable as a worker of the process
//! executor, by calling the runtime's worker entry before the body of `main`.

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::diag::Diagnostics;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item.clone()) {
        Ok(tokens) => tokens,
        // The item is kept as written, so that a mistake here does not also read as a
        // missing `main`.
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(item);
            tokens
        }
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut diag = Diagnostics::default();
    if !args.is_empty() {
        diag.at(&args, "`#[pipewright::main]` takes no arguments");
    }
    let mut function: syn::ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`#[pipewright::main]` goes on the program's `fn main`",
        )
    })?;
    let sig = &function.sig;
    if sig.ident != "main" {
        diag.at(
            &sig.ident,
            format_args!(
                "`#[pipewright::main]` goes on the program's `fn main`, not on `fn {}`",
                sig.ident
            ),
        );
    }
    if !sig.inputs.is_empty() {
        diag.at(&sig.inputs, "`main` takes no arguments");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        diag.at(&sig.generics, "`main` cannot be generic");
    }
    diag.finish()?;

    let private = crate::paths::private(None);
    let entry: syn::Stmt = syn::parse_quote! {
        // Started as a worker of the process executor, the program runs its job and exits
        // here; otherwise this only records that it can be.
        #private::main_entry();
    };
    function.block.stmts.insert(0, entry);
    Ok(function.into_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn the_entry_comes_first() {
        let out = expand(
            TokenStream::new(),
            quote! { fn main() -> Result<(), String> { run()?; Ok(()) } },
        )
        .to_string();
        let entry = out.find("main_entry").unwrap();
        assert!(entry < out.find("run").unwrap(), "{out}");
        assert!(out.contains("-> Result < () , String >"), "{out}");
    }
}
