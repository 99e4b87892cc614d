//! Procedural macros of pipewright. Use them through the `pipewright` crate, whose docs
//! describe them in full.

#![forbid(unsafe_code)]

mod diag;
mod fingerprint;
mod helper;
mod main_attr;
mod paths;
mod pipeline;
mod task;
mod uses;

use proc_macro::TokenStream;

/// Declares a cached task. Full docs and examples: the `pipewright` crate.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Marks a function, an `impl` block or an inline module as a helper of tasks, whose code
/// the keys of the tasks that name it in `uses` hold. Full docs: the `pipewright` crate.
#[proc_macro_attribute]
pub fn helper(args: TokenStream, item: TokenStream) -> TokenStream {
    helper::expand(args.into(), item.into()).into()
}

/// Marks the program's `main`, so that the process executor can run its tasks in workers.
/// Full docs: the `pipewright` crate.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    main_attr::expand(args.into(), item.into()).into()
}

/// Wires tasks into a pipeline. Full docs and examples: the `pipewright` crate.
#[proc_macro]
pub fn pipeline(input: TokenStream) -> TokenStream {
    pipeline::expand(input.into()).into()
}
