//! From syntax to the task model: the `#[task(...)]` options and the role of each argument.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, Ident, Lit, Token};

use crate::diag::Diagnostics;
use crate::uses::{self, USES};

const NAME: &str = "name";
const VERSION: &str = "version";
const CACHE: &str = "cache";
const RETRIES: &str = "retries";
const TIMEOUT: &str = "timeout";
const CPUS: &str = "cpus";
const MEM: &str = "mem";
const TIME: &str = "time";
const CODEC: &str = "codec";
const CRATE: &str = "crate";
const KEYS: &[&str] = &[
    NAME, VERSION, CACHE, RETRIES, TIMEOUT, CPUS, MEM, TIME, CODEC, USES, CRATE,
];

/// The options of `#[task(...)]`, validated.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) cache: Option<bool>,
    pub(crate) retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cpus: Option<u32>,
    pub(crate) mem: Option<u64>,
    pub(crate) time: Option<Duration>,
    pub(crate) codec: Option<syn::Path>,
    /// The helpers named in `uses`.
    pub(crate) uses: Vec<syn::Path>,
    pub(crate) krate: Option<syn::Path>,
}

/// One `key = value` of the attribute.
pub(crate) struct KeyValue {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for KeyValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `Ident::parse_any` also accepts the keyword `crate`.
        let key = Ident::parse_any(input)?;
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(KeyValue { key, value })
    }
}

/// The `key = value` options of an attribute of `what` (`task`, `helper`), each one of
/// `keys` and given once; every other is a mistake, recorded in `diag`.
pub(crate) fn key_values(
    args: TokenStream,
    what: &str,
    keys: &[&str],
    diag: &mut Diagnostics,
) -> Vec<(String, KeyValue)> {
    let pairs = match Punctuated::<KeyValue, Token![,]>::parse_terminated.parse2(args) {
        Ok(pairs) => pairs,
        Err(err) => {
            diag.push(err);
            return Vec::new();
        }
    };
    let mut accepted: Vec<(String, KeyValue)> = Vec::new();
    for pair in pairs {
        let key = pair.key.to_string();
        if !keys.contains(&key.as_str()) {
            diag.at(
                &pair.key,
                format!(
                    "unknown {what} option `{}`; expected {}",
                    pair.key,
                    one_of(keys)
                ),
            );
        } else if accepted.iter().any(|(seen, _)| *seen == key) {
            diag.at(&pair.key, format!("`{}` given more than once", pair.key));
        } else {
            accepted.push((key, pair));
        }
    }
    accepted
}

/// Parses and validates the attribute's options, recording every mistake in `diag`.
pub(crate) fn options(args: TokenStream, diag: &mut Diagnostics) -> Options {
    let mut options = Options::default();
    for (key_str, KeyValue { value, .. }) in key_values(args, "task", KEYS, diag) {
        let result = match key_str.as_str() {
            NAME => task_name(&value).map(|v| options.name = Some(v)),
            VERSION => version(&value).map(|v| options.version = Some(v)),
            CACHE => boolean(&value).map(|v| options.cache = Some(v)),
            RETRIES => int(&value, RETRIES, 0).map(|v| options.retries = Some(v)),
            TIMEOUT => duration(&value, TIMEOUT).map(|v| options.timeout = Some(v)),
            CPUS => int(&value, CPUS, 1).map(|v| options.cpus = Some(v)),
            MEM => memory(&value).map(|v| options.mem = Some(v)),
            TIME => duration(&value, TIME).map(|v| options.time = Some(v)),
            CODEC => path(&value, CODEC, "pipewright::codec::Json", "a codec type")
                .map(|v| options.codec = Some(v)),
            USES => {
                options.uses = uses::parse(&value, diag);
                Ok(())
            }
            CRATE => path(
                &value,
                CRATE,
                "::my_reexport::pipewright",
                "the pipewright crate",
            )
            .map(|v| options.krate = Some(v)),
            _ => unreachable!("every key of KEYS is handled"),
        };
        if let Err(err) = result {
            diag.push(err);
        }
    }
    options
}

/// "`a`, `b` or `c`".
pub(crate) fn one_of(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

fn lit(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(expr) => Some(&expr.lit),
        _ => None,
    }
}

fn string(value: &Expr, key: &str, example: &str) -> syn::Result<(String, Span)> {
    match lit(value) {
        Some(Lit::Str(s)) => Ok((s.value(), s.span())),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a string, like `{key} = \"{example}\"`"),
        )),
    }
}

/// A task name is a directory name in the store: keep it to a safe alphabet.
fn task_name(value: &Expr) -> syn::Result<String> {
    let (name, span) = string(value, NAME, "load_csv")?;
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.is_empty() || name.len() > 100 || !ok_chars || name.starts_with('.') {
        return Err(syn::Error::new(
            span,
            format!(
                "invalid task name `{name}`; expected 1 to 100 ASCII letters, digits, `_`, `-` or `.`, not starting with `.`"
            ),
        ));
    }
    Ok(name)
}

fn version(value: &Expr) -> syn::Result<String> {
    match lit(value) {
        Some(Lit::Str(s)) if !s.value().is_empty() => Ok(s.value()),
        Some(Lit::Int(i)) => Ok(i.base10_digits().to_owned()),
        _ => Err(syn::Error::new_spanned(
            value,
            "`version` takes a non-empty string or an integer, like `version = \"2\"`",
        )),
    }
}

fn boolean(value: &Expr) -> syn::Result<bool> {
    match lit(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new_spanned(
            value,
            "`cache` takes `true` or `false`",
        )),
    }
}

fn int(value: &Expr, key: &str, min: u32) -> syn::Result<u32> {
    let parsed = match lit(value) {
        Some(Lit::Int(i)) => i.base10_parse::<u32>().ok(),
        _ => None,
    };
    parsed.filter(|n| *n >= min).ok_or_else(|| {
        syn::Error::new_spanned(
            value,
            format!("`{key}` takes a whole number from {min} to {}", u32::MAX),
        )
    })
}

fn duration(value: &Expr, key: &str) -> syn::Result<Duration> {
    let (text, span) = string(value, key, "30s")?;
    match humantime::parse_duration(&text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(syn::Error::new(
            span,
            format!("`{key}` must be longer than zero"),
        )),
        Err(_) => Err(syn::Error::new(
            span,
            format!("`{key}` takes a duration, like `{key} = \"90s\"`, \"15m\" or \"2h 30m\""),
        )),
    }
}

/// `"512M"`, `"4G"`, `"1T"` (powers of 1024, as Slurm reads them) or a number of bytes.
fn memory(value: &Expr) -> syn::Result<u64> {
    let (text, span) = string(value, MEM, "4G")?;
    parse_memory(&text).ok_or_else(|| {
        syn::Error::new(
            span,
            "`mem` takes a size in bytes, with an optional unit `K`, `M`, `G` or `T`, like `mem = \"512M\"` or \"4G\"",
        )
    })
}

fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or(unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    number.checked_mul(1u64 << shift).filter(|bytes| *bytes > 0)
}

/// A path without a `<T as Trait>` prefix, for `key`, which takes the path of `what`.
pub(crate) fn path(value: &Expr, key: &str, example: &str, what: &str) -> syn::Result<syn::Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes the path of {what}, like `{key} = {example}`"),
        )),
    }
}

/// The role of one argument of a task function.
pub(crate) enum Role {
    /// `&T`: the output of one upstream node.
    Input(syn::Type),
    /// `&[&T]`: the outputs of any number of upstream nodes.
    Gather(syn::Type),
    /// An owned value bound when the pipeline is built.
    Param(syn::Type),
    /// `&Ctx`.
    Ctx,
}

pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) role: Role,
}

/// What the function returns.
pub(crate) enum Output {
    /// Nothing: the output is `()`.
    Unit,
    /// `T`.
    Plain(syn::Type),
    /// `Result<T, E>`, both written out: the output is `T`, and `E` becomes the task's error.
    Result { ok: syn::Type, err: Box<syn::Type> },
    /// Another `Result` alias, like `io::Result<T>`: the runtime's `Fallible` unwraps it.
    Fallible(syn::Type),
}

/// The model of a task function.
pub(crate) struct TaskFn<'a> {
    pub(crate) func: &'a syn::ItemFn,
    pub(crate) options: Options,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Output,
}

impl<'a> TaskFn<'a> {
    /// Reads the role of every argument and the kind of return type.
    pub(crate) fn from_syn(
        func: &'a syn::ItemFn,
        options: Options,
        diag: &mut Diagnostics,
    ) -> Self {
        let mut args = Vec::new();
        let mut ctx_seen = false;
        for input in &func.sig.inputs {
            let syn::FnArg::Typed(arg) = input else {
                continue;
            };
            let syn::Pat::Ident(pat) = &*arg.pat else {
                continue;
            };
            let role = role(&arg.ty, diag);
            if matches!(role, Role::Ctx) {
                // The context is handed over once.
                if ctx_seen {
                    diag.at(&arg.ty, "a task takes at most one `&Ctx` argument");
                }
                ctx_seen = true;
            }
            args.push(Arg {
                ident: pat.ident.clone(),
                role,
            });
        }
        let output = match &func.sig.output {
            syn::ReturnType::Default => Output::Unit,
            syn::ReturnType::Type(_, ty) => output(ty),
        };
        TaskFn {
            func,
            options,
            args,
            output,
        }
    }

    /// The task's name: the `name` option, else the function's name.
    pub(crate) fn name(&self) -> String {
        self.options
            .name
            .clone()
            .unwrap_or_else(|| self.func.sig.ident.unraw().to_string())
    }
}

/// Sorts an argument by its type: `&Ctx`, `&[&T]`, `&T`, or an owned parameter.
fn role(ty: &syn::Type, diag: &mut Diagnostics) -> Role {
    let syn::Type::Reference(reference) = ty else {
        // A parameter is owned: it is stored with the task and sent to workers.
        if borrows(ty) {
            diag.at(ty, not_an_argument_form(ty));
        }
        return Role::Param(ty.clone());
    };
    let inner = &*reference.elem;
    if is_ctx(ty) {
        return Role::Ctx;
    }
    match inner {
        syn::Type::Slice(slice) => match &*slice.elem {
            syn::Type::Reference(elem) if elem.mutability.is_none() => {
                // An upstream output is owned: `&[&Vec<&T>]` can name none.
                if borrows(&elem.elem) {
                    diag.at(&elem.elem, not_an_argument_form(&elem.elem));
                }
                Role::Gather((*elem.elem).clone())
            }
            syn::Type::Reference(_) => {
                diag.at(
                    ty,
                    "a gathered input is written `&[&T]`: it borrows the outputs of several upstream nodes",
                );
                Role::Gather(inner.clone())
            }
            elem => {
                let elem = pretty(elem);
                diag.at(
                    ty,
                    format!(
                        "a gathered input is written `&[&{elem}]`: it borrows the outputs of several upstream nodes; \
                         to borrow one upstream `Vec<{elem}>`, write `&Vec<{elem}>`"
                    ),
                );
                Role::Gather(inner.clone())
            }
        },
        // An upstream output is owned: `&Vec<&T>` can name none.
        _ if borrows(inner) => {
            diag.at(inner, not_an_argument_form(inner));
            Role::Input(inner.clone())
        }
        syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
            diag.at(
                ty,
                "an input cannot be `&str`: it borrows an upstream task's output, which is sized; write `&String`",
            );
            Role::Input(inner.clone())
        }
        _ => Role::Input(inner.clone()),
    }
}

/// Whether `ty` holds a reference, or a lifetime other than `'static`.
fn borrows(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            self.0 |= lifetime.ident != "static";
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// What to say of an argument type that borrows where it cannot: the forms an argument
/// takes, after a hint for the mistakes seen most, `Vec<&T>` and `Option<&T>`.
fn not_an_argument_form(ty: &syn::Type) -> String {
    let hint = if last_segment_named(ty, "Vec") {
        "to gather the outputs of several nodes, write `&[&T]`, not `Vec<&T>`"
    } else if last_segment_named(ty, "Option") {
        "an input cannot be optional"
    } else {
        "this type borrows, which only an input can"
    };
    format!(
        "{hint}; a task argument is `&T` (the output of one upstream node), `&[&T]` (the \
         outputs of several), `&Ctx` (the context) or an owned type (a parameter)"
    )
}

/// Whether `ty` is a path whose last segment is `name`, with any generic arguments.
fn last_segment_named(ty: &syn::Type, name: &str) -> bool {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == name)
        }
        _ => false,
    }
}

/// `ty` as a user writes it: `Vec<u8>`, not the token stream's `Vec < u8 >`.
fn pretty(ty: &syn::Type) -> String {
    quote::quote!(#ty)
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" ,", ",")
        .replace("& ", "&")
}

/// Whether `ty` is `&Ctx` (by any path): the context, which the caller does not pass.
pub(crate) fn is_ctx(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Reference(reference) => last_segment_is(&reference.elem, "Ctx"),
        _ => false,
    }
}

fn last_segment_is(ty: &syn::Type, name: &str) -> bool {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == name && s.arguments.is_none()),
        _ => false,
    }
}

/// Sorts the return type: a `Result` is recognised by its spelling, `Result<T, E>`,
/// `io::Result<T>`, `anyhow::Result<T>`; the runtime's `Fallible` trait then unwraps any alias.
fn output(ty: &syn::Type) -> Output {
    let syn::Type::Path(p) = ty else {
        return Output::Plain(ty.clone());
    };
    let Some(last) = p.path.segments.last() else {
        return Output::Plain(ty.clone());
    };
    if p.qself.is_some() || last.ident != "Result" {
        return Output::Plain(ty.clone());
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return Output::Plain(ty.clone());
    };
    let types: Vec<&syn::Type> = args
        .args
        .iter()
        .filter_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    match types.as_slice() {
        [ok, err] if args.args.len() == 2 => Output::Result {
            ok: (*ok).clone(),
            err: Box::new((*err).clone()),
        },
        _ => Output::Fallible(ty.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Output, borrows, is_ctx, not_an_argument_form, one_of, output, parse_memory, pretty,
    };
    use syn::parse_quote;

    #[test]
    fn memory_units_are_powers_of_1024() {
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("512M"), Some(512 << 20));
        assert_eq!(parse_memory("4G"), Some(4 << 30));
        assert_eq!(parse_memory("4gb"), Some(4 << 30));
        assert_eq!(parse_memory("2 GiB"), Some(2 << 30));
        assert_eq!(parse_memory("1T"), Some(1 << 40));
        assert_eq!(parse_memory("0"), None);
        assert_eq!(parse_memory("G"), None);
        assert_eq!(parse_memory("4X"), None);
        assert_eq!(parse_memory("99999999999T"), None);
    }

    #[test]
    fn results_are_recognised_by_their_spelling() {
        let ok: syn::Type = parse_quote!(Vec<u32>);
        let err: syn::Type = parse_quote!(io::Error);
        match output(&parse_quote!(Result<Vec<u32>, io::Error>)) {
            Output::Result { ok: o, err: e } => assert!(o == ok && *e == err),
            _ => panic!("`Result<T, E>` names its error type"),
        }
        assert!(matches!(
            output(&parse_quote!(std::io::Result<u32>)),
            Output::Fallible(_)
        ));
        assert!(matches!(
            output(&parse_quote!(anyhow::Result<u32>)),
            Output::Fallible(_)
        ));
        assert!(matches!(
            output(&parse_quote!(fmt::Result)),
            Output::Plain(_)
        ));
        assert!(matches!(output(&parse_quote!(Vec<u32>)), Output::Plain(_)));
        assert!(matches!(
            output(&parse_quote!(<T as Tr>::Result<u32, E>)),
            Output::Plain(_)
        ));
    }

    #[test]
    fn the_context_is_a_reference_to_ctx() {
        assert!(is_ctx(&parse_quote!(&Ctx)));
        assert!(is_ctx(&parse_quote!(&pipewright::Ctx)));
        assert!(!is_ctx(&parse_quote!(Ctx)));
        assert!(!is_ctx(&parse_quote!(&Ctx<u32>)));
        assert!(!is_ctx(&parse_quote!(&Context)));
    }

    #[test]
    fn borrowed_types_are_found_at_any_depth() {
        assert!(borrows(&parse_quote!(Vec<&Sale>)));
        assert!(borrows(&parse_quote!(Option<&Sale>)));
        assert!(borrows(&parse_quote!(HashMap<String, Vec<&'a str>>)));
        assert!(borrows(&parse_quote!(Cow<'_, str>)));
        assert!(!borrows(&parse_quote!(Cow<'static, str>)));
        assert!(!borrows(&parse_quote!(Vec<Sale>)));
    }

    #[test]
    fn a_borrowed_argument_is_told_the_forms_arguments_take() {
        let vec = not_an_argument_form(&parse_quote!(Vec<&Sale>));
        assert!(vec.starts_with("to gather the outputs of several nodes, write `&[&T]`"));
        let option = not_an_argument_form(&parse_quote!(std::option::Option<&Sale>));
        assert!(option.starts_with("an input cannot be optional;"));
        for message in [vec, option] {
            assert!(message.contains("`&T` (the output of one upstream node), `&[&T]`"));
        }
    }

    #[test]
    fn types_print_as_written() {
        assert_eq!(pretty(&parse_quote!(Vec<u8>)), "Vec<u8>");
        assert_eq!(
            pretty(&parse_quote!(std::collections::HashMap<String, Vec<u8>>)),
            "std::collections::HashMap<String, Vec<u8>>"
        );
        assert_eq!(pretty(&parse_quote!(Sale)), "Sale");
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
