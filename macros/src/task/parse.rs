//! From syntax to the task model: the `#[task(...)]` options and the role of each argument.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, Token};

use crate::diag::Diagnostics;

const NAME: &str = "name";
const VERSION: &str = "version";
const CACHE: &str = "cache";
const RETRIES: &str = "retries";
const TIMEOUT: &str = "timeout";
const CPUS: &str = "cpus";
const MEM: &str = "mem";
const TIME: &str = "time";
const CRATE: &str = "crate";
const KEYS: &[&str] = &[
    NAME, VERSION, CACHE, RETRIES, TIMEOUT, CPUS, MEM, TIME, CRATE,
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
    pub(crate) krate: Option<syn::Path>,
}

/// One `key = value` of the attribute.
struct KeyValue {
    key: Ident,
    value: Expr,
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

/// Parses and validates the attribute's options, recording every mistake in `diag`.
pub(crate) fn options(args: TokenStream, diag: &mut Diagnostics) -> Options {
    let mut options = Options::default();
    let pairs = match Punctuated::<KeyValue, Token![,]>::parse_terminated.parse2(args) {
        Ok(pairs) => pairs,
        Err(err) => {
            diag.push(err);
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for KeyValue { key, value } in pairs {
        let key_str = key.to_string();
        if !KEYS.contains(&key_str.as_str()) {
            diag.at(
                &key,
                format!("unknown task option `{key}`; expected {}", one_of(KEYS)),
            );
            continue;
        }
        if seen.contains(&key_str) {
            diag.at(&key, format!("`{key}` given more than once"));
            continue;
        }
        seen.push(key_str.clone());
        let result = match key_str.as_str() {
            NAME => task_name(&value).map(|v| options.name = Some(v)),
            VERSION => version(&value).map(|v| options.version = Some(v)),
            CACHE => boolean(&value).map(|v| options.cache = Some(v)),
            RETRIES => int(&value, RETRIES, 0).map(|v| options.retries = Some(v)),
            TIMEOUT => duration(&value, TIMEOUT).map(|v| options.timeout = Some(v)),
            CPUS => int(&value, CPUS, 1).map(|v| options.cpus = Some(v)),
            MEM => memory(&value).map(|v| options.mem = Some(v)),
            TIME => duration(&value, TIME).map(|v| options.time = Some(v)),
            CRATE => path(&value).map(|v| options.krate = Some(v)),
            _ => unreachable!("every key of KEYS is handled"),
        };
        if let Err(err) = result {
            diag.push(err);
        }
    }
    options
}

/// "`a`, `b` or `c`".
fn one_of(keys: &[&str]) -> String {
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
            "a task name is 1 to 100 ASCII letters, digits, `_`, `-` or `.`, not starting with `.`",
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
        Err(err) => Err(syn::Error::new(
            span,
            format!(
                "`{key}` is not a duration ({err}); write it like \"90s\", \"15m\" or \"2h 30m\""
            ),
        )),
    }
}

/// `"512M"`, `"4G"`, `"1T"` (powers of 1024, as Slurm reads them) or a number of bytes.
fn memory(value: &Expr) -> syn::Result<u64> {
    let (text, span) = string(value, MEM, "4G")?;
    parse_memory(&text).ok_or_else(|| {
        syn::Error::new(
            span,
            "`mem` is a whole number with an optional unit `K`, `M`, `G` or `T`, like \"512M\" or \"4G\"",
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

fn path(value: &Expr) -> syn::Result<syn::Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            "`crate` takes the path of the pipewright crate, like `crate = ::my_reexport::pipewright`",
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
    /// `Result<T, E>` (or an alias of it): the output is `T`.
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
            syn::ReturnType::Type(_, ty) if is_result(ty) => Output::Fallible((**ty).clone()),
            syn::ReturnType::Type(_, ty) => Output::Plain((**ty).clone()),
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
        return Role::Param(ty.clone());
    };
    let inner = &*reference.elem;
    if last_segment_is(inner, "Ctx") {
        return Role::Ctx;
    }
    match inner {
        syn::Type::Slice(slice) => match &*slice.elem {
            syn::Type::Reference(elem) if elem.mutability.is_none() => {
                Role::Gather((*elem.elem).clone())
            }
            _ => {
                diag.at(
                    ty,
                    "a gathered input is written `&[&T]`: it borrows the outputs of several upstream nodes",
                );
                Role::Gather(inner.clone())
            }
        },
        syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
            diag.at(
                ty,
                "an input borrows an upstream node's output, which is sized: write `&String`",
            );
            Role::Input(inner.clone())
        }
        _ => Role::Input(inner.clone()),
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

/// Whether the return type is spelled as a `Result`: `Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`; the runtime's `Fallible` trait then unwraps it whatever the alias.
fn is_result(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Result" && !s.arguments.is_none()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{one_of, parse_memory};

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
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
