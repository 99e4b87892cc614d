//! The grammar of `pipeline!`:
//!
//! ```text
//! name = "my-pipeline";
//! let csv = load_csv("data.csv".to_string());
//! let l1  = normalize(csv, Norm::L1);
//! ```

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token};

const NAME: &str = "name";

/// A whole `pipeline! { ... }`.
pub(crate) struct PipelineDef {
    pub(crate) name: LitStr,
    pub(crate) bindings: Vec<Binding>,
}

/// `let ident = task(args);`
pub(crate) struct Binding {
    pub(crate) ident: Ident,
    pub(crate) task: syn::Path,
    pub(crate) call: syn::ExprCall,
    pub(crate) args: Punctuated<Expr, Token![,]>,
    /// Whether this binding is `value!(...)`, a constant, rather than the call of a task.
    pub(crate) value: bool,
}

/// The name of the built-in form `let rows = value!(vec![1, 2, 3]);`: a node whose output
/// is the expression's value. It is written as a macro call, so that it can never be taken
/// for the call of a task named `value`.
pub(crate) const VALUE: &str = "value";

impl Binding {
    /// Whether this binding is `value!(...)`, a constant, rather than the call of a task.
    pub(crate) fn is_value(&self) -> bool {
        self.value
    }
}

impl Parse for PipelineDef {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut name = None;
        while !input.is_empty() && !input.peek(Token![let]) {
            let key = Ident::parse_any(input)?;
            if key != NAME {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown pipeline option `{key}`; expected `{NAME} = \"...\";` followed by `let` bindings"
                    ),
                ));
            }
            if name.is_some() {
                return Err(syn::Error::new(key.span(), "`name` given more than once"));
            }
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "the pipeline's `name` is a string, like `name = \"etl\";`",
                )
            })?;
            if value.value().is_empty() {
                return Err(syn::Error::new(
                    value.span(),
                    "the pipeline's `name` cannot be empty",
                ));
            }
            input.parse::<Token![;]>()?;
            name = Some(value);
        }
        let Some(name) = name else {
            let span = if input.is_empty() {
                Span::call_site()
            } else {
                input.span()
            };
            return Err(syn::Error::new(
                span,
                "a pipeline starts with its name: `name = \"my-pipeline\";` before the first `let`",
            ));
        };

        let mut bindings = Vec::new();
        while !input.is_empty() {
            bindings.push(input.parse()?);
        }
        if bindings.is_empty() {
            return Err(syn::Error::new(
                name.span(),
                "a pipeline needs at least one node, like `let data = load(\"data.csv\".to_string());`",
            ));
        }
        Ok(PipelineDef { name, bindings })
    }
}

impl Parse for Binding {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.parse::<Token![let]>()?;
        let ident: Ident = input.parse().map_err(|err| {
            syn::Error::new(
                err.span(),
                "a node is bound to a plain name: `let name = task(...);`",
            )
        })?;
        input.parse::<Token![=]>()?;
        let expr: Expr = input.parse()?;
        input.parse::<Token![;]>()?;
        let (call, value) = match expr {
            Expr::Call(call) => (call, false),
            Expr::Macro(mac) if mac.mac.path.is_ident(VALUE) => {
                let args = mac
                    .mac
                    .parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
                let call = syn::ExprCall {
                    attrs: mac.attrs,
                    func: Box::new(Expr::Path(syn::ExprPath {
                        attrs: Vec::new(),
                        qself: None,
                        path: mac.mac.path,
                    })),
                    paren_token: syn::token::Paren {
                        span: *mac.mac.delimiter.span(),
                    },
                    args,
                };
                (call, true)
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "a node is a call of a task, like `normalize(rows, Norm::L1)`",
                ));
            }
        };
        let task = match &*call.func {
            Expr::Path(p) if p.qself.is_none() => p.path.clone(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected the name or path of a `#[task]` function",
                ));
            }
        };
        let args = call.args.clone();
        Ok(Binding {
            ident,
            task,
            call,
            args,
            value,
        })
    }
}
