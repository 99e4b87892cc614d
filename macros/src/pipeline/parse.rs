//! The grammar of `pipeline!`:
//!
//! ```text
//! name = "my-pipeline";
//! let csv = load_csv("data.csv".to_string());
//! let l1  = normalize(csv, Norm::L1);
//! let lines = split(csv);
//! let counts = for line in lines { count(line, 3) };
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
    /// `for x in xs { task(...) }`: the call runs once per element of `xs`.
    pub(crate) map: Option<MapOver>,
}

/// The head of `for elem in over { ... }`: a mapped node's element and what it goes over.
pub(crate) struct MapOver {
    /// The loop variable: the element's handle inside the body.
    pub(crate) elem: Ident,
    /// What the loop goes over: a binding above, checked later.
    pub(crate) over: Expr,
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
        let (expr, map) = match expr {
            Expr::ForLoop(for_loop) => {
                let (map, body) = map_over(for_loop)?;
                (body, Some(map))
            }
            other => (other, None),
        };
        let (call, value) = match expr {
            Expr::Call(call) => (call, false),
            Expr::Macro(mac) if map.is_some() && mac.mac.path.is_ident(VALUE) => {
                return Err(syn::Error::new_spanned(
                    mac,
                    "a map's body calls a task once per element; `value!(...)` is a single node: \
                     write it on its own `let` above",
                ));
            }
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
            other if map.is_some() => {
                return Err(syn::Error::new_spanned(
                    other,
                    "a map's body is one call of a task, like `{ count(line, 3) }`",
                ));
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
            map,
        })
    }
}

/// Reads `for elem in over { body }`, whose body is one expression: the call of a task.
fn map_over(for_loop: syn::ExprForLoop) -> syn::Result<(MapOver, Expr)> {
    if let Some(label) = &for_loop.label {
        return Err(syn::Error::new_spanned(
            label,
            "a map is not a loop to break out of: remove the label",
        ));
    }
    let elem = match *for_loop.pat {
        syn::Pat::Ident(pat)
            if pat.by_ref.is_none() && pat.mutability.is_none() && pat.subpat.is_none() =>
        {
            pat.ident
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "a map's element is a plain name, like `for line in lines { ... }`",
            ));
        }
    };
    let one_call = "a map's body is one call of a task, like `{ count(line, 3) }`";
    let braces = for_loop.body.brace_token.span.join();
    let mut stmts = for_loop.body.stmts;
    let body = match (stmts.pop(), stmts.is_empty()) {
        (Some(syn::Stmt::Expr(expr, _)), true) => expr,
        (Some(other), true) => return Err(syn::Error::new_spanned(other, one_call)),
        _ => return Err(syn::Error::new(braces, one_call)),
    };
    let over = *for_loop.expr;
    Ok((MapOver { elem, over }, body))
}
