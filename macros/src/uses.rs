//! `uses = [...]`, the helpers a task or a helper names: the list read from the attribute,
//! and the code that finds each helper's description, or says at its path that it is not
//! a helper.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Expr;

use crate::diag::Diagnostics;

pub(crate) const USES: &str = "uses";

const EXAMPLE: &str = "like `uses = [parse_row, util::clean]`";

/// The paths of `uses = [a, b::c]`; a value of another form, an entry that is not a plain
/// path and an entry named twice are recorded in `diag`.
pub(crate) fn parse(value: &Expr, diag: &mut Diagnostics) -> Vec<syn::Path> {
    let Expr::Array(list) = value else {
        diag.at(
            value,
            format!("`uses` takes a list of helpers in brackets, {EXAMPLE}"),
        );
        return Vec::new();
    };
    let mut paths: Vec<syn::Path> = Vec::new();
    for entry in &list.elems {
        let path = match entry {
            Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => &p.path,
            _ => {
                diag.at(entry, format!("`uses` names helpers by path, {EXAMPLE}"));
                continue;
            }
        };
        // A helper is an item, found by `use`: no generic arguments.
        if let Some(segment) = path.segments.iter().find(|s| !s.arguments.is_empty()) {
            diag.at(
                &segment.arguments,
                format!("`uses` names helpers by path, without generic arguments, {EXAMPLE}"),
            );
            continue;
        }
        // Each helper is named once.
        if paths.iter().any(|p| same_path(p, path)) {
            diag.at(
                path,
                format!("`{}` is named twice in `uses`", written(path)),
            );
            continue;
        }
        paths.push(path.clone());
    }
    paths
}

/// Whether two paths without generic arguments name the same item the same way.
fn same_path(a: &syn::Path, b: &syn::Path) -> bool {
    a.leading_colon.is_some() == b.leading_colon.is_some()
        && a.segments.len() == b.segments.len()
        && a.segments
            .iter()
            .zip(&b.segments)
            .all(|(x, y)| x.ident == y.ident)
}

/// `path` as written: `util::parse_row`.
fn written(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// The items that find the helpers at `paths` (to go in a block where `__pw` is the
/// runtime's private module), and the expression of their descriptions,
/// `&[fn() -> &'static HelperMeta]`.
///
/// Each path is imported under a name of its own, beside a glob import of a stand-in of
/// that name in the type namespace: an item the user marked brings its own type (a
/// helper function's hidden struct, an `impl` block's type), which shadows the stand-in,
/// while an unmarked function brings none, so the stand-in is found, and it is not a
/// helper. The bound that asks for one says so in the words of a trait made for that path,
/// at the path.
pub(crate) fn resolve(paths: &[syn::Path]) -> (TokenStream, TokenStream) {
    if paths.is_empty() {
        return (TokenStream::new(), quote!(&[]));
    }
    let mut items = Vec::new();
    let mut stand_ins = Vec::new();
    let mut list = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        // Located at the path, so that rustc's errors point there.
        let at = path
            .to_token_stream()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span())
            .resolved_at(Span::mixed_site());
        let alias = format_ident!("__pw_uses_{}", i, span = at);
        let check = format_ident!("__PwUses{}", i, span = at);
        let message = format!(
            "`{}` is not a helper: mark it `#[pipewright::helper]`",
            written(path)
        );
        stand_ins.push(quote_spanned!(at=> pub struct #alias;));
        items.push(quote! {
            use #path as #alias;

            #[diagnostic::on_unimplemented(
                message = #message,
                label = "not a helper",
                note = "`uses` names functions, `impl` blocks' types and functions of inline modules marked `#[pipewright::helper]`"
            )]
            trait #check {
                fn __meta() -> &'static __pw::HelperMeta;
            }

            #[diagnostic::do_not_recommend]
            impl<T: __pw::Helper> #check for T {
                fn __meta() -> &'static __pw::HelperMeta {
                    <T as __pw::Helper>::__meta()
                }
            }
        });
        list.push(quote_spanned!(at=> <#alias as #check>::__meta));
    }
    let fallback = format_ident!("__pw_not_helpers", span = Span::mixed_site());
    let items = quote! {
        #(#items)*

        #[allow(non_camel_case_types, dead_code)]
        mod #fallback {
            #(#stand_ins)*
        }

        #[allow(unused_imports)]
        use #fallback::*;
    };
    (items, quote!(&[#(#list),*]))
}
