//! From syntax to the helper model: the `#[helper(...)]` options and what is marked.

use proc_macro2::TokenStream;
use syn::Ident;

use crate::diag::Diagnostics;
use crate::task::parse::{KeyValue, key_values, path};
use crate::uses::{self, USES};

const CRATE: &str = "crate";
const KEYS: &[&str] = &[USES, CRATE];

/// The options of `#[helper(...)]`, validated.
#[derive(Default)]
pub(crate) struct Options {
    /// The helpers named in `uses`.
    pub(crate) uses: Vec<syn::Path>,
    pub(crate) krate: Option<syn::Path>,
}

/// Parses and validates the attribute's options, recording every mistake in `diag`.
pub(crate) fn options(args: TokenStream, diag: &mut Diagnostics) -> Options {
    let mut options = Options::default();
    for (key, KeyValue { value, .. }) in key_values(args, "helper", KEYS, diag) {
        if key == USES {
            options.uses = uses::parse(&value, diag);
        } else {
            match path(
                &value,
                CRATE,
                "::my_reexport::pipewright",
                "the pipewright crate",
            ) {
                Ok(krate) => options.krate = Some(krate),
                Err(err) => diag.push(err),
            }
        }
    }
    options
}

/// What `#[helper]` marks.
pub(crate) enum Marked<'a> {
    /// A free function, named as it is.
    Fn(&'a syn::ItemFn),
    /// An inherent `impl` block, named by its type.
    Impl(&'a syn::ItemImpl),
    /// An inline module, named by each of its free functions (those not marked themselves).
    Mod {
        item: &'a syn::ItemMod,
        fns: Vec<&'a syn::ItemFn>,
    },
}

/// The model of a helper.
pub(crate) struct Helper<'a> {
    pub(crate) item: &'a syn::Item,
    pub(crate) marked: Marked<'a>,
    pub(crate) options: Options,
}

impl<'a> Helper<'a> {
    /// Reads what is marked; `None`, with the reason in `diag`, if it cannot be a helper.
    pub(crate) fn from_syn(
        item: &'a syn::Item,
        options: Options,
        diag: &mut Diagnostics,
    ) -> Option<Self> {
        let marked = match item {
            syn::Item::Fn(func) => {
                function(func, diag);
                Marked::Fn(func)
            }
            syn::Item::Impl(block) => {
                impl_block(block, diag);
                Marked::Impl(block)
            }
            syn::Item::Mod(module) => {
                let Some((_, items)) = &module.content else {
                    // The macro sees `mod name;` only, not the file's code.
                    diag.at(
                        module,
                        "`#[helper]` cannot read a module in another file; write the module inline, \
                         or mark its functions and `impl` blocks",
                    );
                    return None;
                };
                let fns = items
                    .iter()
                    .filter_map(|item| match item {
                        syn::Item::Fn(func) if !marked_otherwise(&func.attrs) => Some(func),
                        _ => None,
                    })
                    .collect();
                Marked::Mod { item: module, fns }
            }
            other => {
                diag.at(
                    keyword(other),
                    "`#[helper]` goes on a function, an `impl` block or an inline module, \
                     like `#[helper] fn parse_row(line: &str) -> Row`",
                );
                return None;
            }
        };
        Some(Helper {
            item,
            marked,
            options,
        })
    }
}

/// Checks a helper function.
fn function(func: &syn::ItemFn, diag: &mut Diagnostics) {
    // A method sits in an `impl` block, where the helper's struct cannot go.
    if let Some(receiver) = func.sig.receiver() {
        diag.at(
            receiver,
            "`#[helper]` cannot mark a method; mark its `impl` block",
        );
    }
    // A task has a struct of its own under the function's name, as a helper would.
    if let Some(attr) = func.attrs.iter().find(|a| is_named(a, "task")) {
        diag.at(
            attr,
            "a function cannot be both a task and a helper; move the shared code into a helper the task names in `uses`",
        );
    }
}

/// Checks a helper `impl` block: its type is what `uses` names, so it is one type.
fn impl_block(block: &syn::ItemImpl, diag: &mut Diagnostics) {
    if let Some((trait_path, _)) = &block.trait_ {
        diag.at(
            trait_path,
            "`#[helper]` marks an inherent `impl` block, which `uses` names by its type; \
             put a trait's `impl` in a helper module",
        );
    }
    if !block.generics.params.is_empty() {
        diag.at(
            &block.generics,
            "a helper `impl` block cannot be generic; put it in a helper module",
        );
    }
    match &*block.self_ty {
        syn::Type::Path(p)
            if p.qself.is_none() && p.path.segments.iter().all(|s| s.arguments.is_empty()) => {}
        other => diag.at(
            other,
            "a helper `impl` block is of a type named by a path without generic arguments, like `impl Parser`",
        ),
    }
}

/// Whether an item of a helper module is a task or a helper of its own.
fn marked_otherwise(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| is_named(a, "task") || is_named(a, "helper"))
}

/// Whether `attr` is `#[name]` or `#[path::to::name(...)]`.
fn is_named(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// The token that best names an item that cannot be a helper, for the error span.
fn keyword(item: &syn::Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(i) => i.struct_token.to_token_stream(),
        syn::Item::Enum(i) => i.enum_token.to_token_stream(),
        syn::Item::Trait(i) => i.trait_token.to_token_stream(),
        syn::Item::Const(i) => i.const_token.to_token_stream(),
        syn::Item::Static(i) => i.static_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// The name `ident` as written, without `r#`.
pub(crate) fn unraw(ident: &Ident) -> String {
    use syn::ext::IdentExt;
    ident.unraw().to_string()
}
