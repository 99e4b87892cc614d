//! The graph rules of `pipeline!`: names are unique node names, and an argument naming a
//! binding is an edge to a binding defined above it (so no cycle can be written). A map
//! goes over a binding above, and its body passes the element as a whole input.

/// The longest node name, in bytes, as the runtime's `Builder::add` accepts it.
const MAX_NODE_NAME: usize = 200;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{Expr, Ident};

use super::parse::{Binding, MapOver, PipelineDef};
use crate::diag::Diagnostics;

/// What one argument of a task call is.
pub(crate) enum Arg<'a> {
    /// The output of an earlier binding.
    Edge(&'a Ident),
    /// `[a, b, c]`: the outputs of several earlier bindings, gathered.
    Gather(Vec<&'a Ident>),
    /// An expression evaluated once, when the pipeline is built.
    Param(&'a Expr),
}

/// The arguments of every binding, classified, and the binding each map goes over.
pub(crate) struct Wired<'a> {
    pub(crate) args: Vec<Vec<Arg<'a>>>,
    pub(crate) over: Vec<Option<&'a Ident>>,
}

/// What the arguments of a binding may name: the bindings above it, and the element of
/// its map.
struct Scope<'s> {
    position: &'s HashMap<String, usize>,
    /// The bindings that are maps: their branches are gathered whole, never listed.
    mapped: &'s HashSet<String>,
    current: usize,
    elem: Option<&'s Ident>,
}

pub(crate) fn pipeline(def: &PipelineDef) -> syn::Result<Wired<'_>> {
    let mut diag = Diagnostics::default();
    // Position of each binding, by name; the first definition wins.
    let mut position: HashMap<String, usize> = HashMap::new();
    for (i, binding) in def.bindings.iter().enumerate() {
        let name = binding.ident.to_string();
        // A binding's name is its node's name, which names files: at most 200 bytes.
        let len = binding.ident.unraw().to_string().len();
        if len > MAX_NODE_NAME {
            diag.at(
                &binding.ident,
                format!(
                    "this binding's name is {len} bytes long; a node's name is at most \
                     {MAX_NODE_NAME} bytes, as it names files in the store"
                ),
            );
        }
        // A binding's name is its node's name: each names one node.
        match position.entry(name) {
            Entry::Occupied(entry) => diag.at(
                &binding.ident,
                format!(
                    "`{}` is already defined in this pipeline; give each node its own name",
                    entry.key()
                ),
            ),
            Entry::Vacant(entry) => {
                entry.insert(i);
            }
        }
    }

    let mapped: HashSet<String> = def
        .bindings
        .iter()
        .filter(|b| b.map.is_some())
        .map(|b| b.ident.to_string())
        .collect();
    let mut args = Vec::new();
    let mut over = Vec::new();
    for (i, binding) in def.bindings.iter().enumerate() {
        let scope = Scope {
            position: &position,
            mapped: &mapped,
            current: i,
            elem: binding.map.as_ref().map(|m| &m.elem),
        };
        let mut classified = Vec::new();
        for arg in &binding.args {
            classified.push(classify(arg, &scope, &mut diag));
        }
        if binding.is_value() {
            value(binding, &classified, &mut diag);
        }
        over.push(
            binding
                .map
                .as_ref()
                .and_then(|map| map_over(binding, map, &classified, &scope, &mut diag)),
        );
        args.push(classified);
    }
    diag.finish()?;
    Ok(Wired { args, over })
}

/// The binding a map goes over, if it is one above; and its element must be an input of
/// the body's call.
fn map_over<'a>(
    binding: &Binding,
    map: &'a MapOver,
    args: &[Arg<'_>],
    scope: &Scope<'_>,
    diag: &mut Diagnostics,
) -> Option<&'a Ident> {
    let elem = &map.elem;
    let takes_elem = args
        .iter()
        .any(|arg| matches!(arg, Arg::Edge(ident) if *ident == elem));
    if !takes_elem && !mentions(binding, elem) {
        diag.at(
            elem,
            format!(
                "the element `{elem}` is not passed to `{}`: each branch takes its element as \
                 one of the task's inputs",
                path_name(&binding.task),
            ),
        );
    }
    let Some(ident) = bare_ident(&map.over) else {
        diag.at(
            &map.over,
            "a map goes over a binding above, like `for line in lines { ... }`",
        );
        return None;
    };
    match scope.position.get(&ident.to_string()) {
        Some(&at) if at < scope.current => Some(ident),
        Some(&at) => {
            diag.at(ident, order_message(ident, at == scope.current));
            None
        }
        None => {
            diag.at(
                ident,
                format!(
                    "`{ident}` is not a binding of this pipeline; a map goes over a binding \
                     above, like `for line in lines {{ ... }}`"
                ),
            );
            None
        }
    }
}

/// Whether an argument names `elem` anywhere, so that a misuse already reported is not
/// also reported as the element going unused.
fn mentions(binding: &Binding, elem: &Ident) -> bool {
    binding
        .args
        .iter()
        .any(|arg| mentioned(arg).contains(&elem))
}

/// The last segment of a task's path, as the user calls it.
fn path_name(path: &syn::Path) -> String {
    path.segments
        .last()
        .map_or_else(String::new, |s| s.ident.unraw().to_string())
}

/// Why a binding cannot be used where it is: it is the current one, or one below.
fn order_message(ident: &Ident, own: bool) -> String {
    if own {
        format!("`{ident}` cannot use its own output; a node can only use the bindings above it")
    } else {
        format!("`{ident}` is used before it is defined; a node can only use the bindings above it")
    }
}

/// `value!(...)` takes one expression, the node's output; a node is already a value.
fn value(binding: &Binding, args: &[Arg<'_>], diag: &mut Diagnostics) {
    match args {
        [Arg::Param(_)] => {}
        [Arg::Edge(ident)] => diag.at(
            ident,
            format!("`{ident}` is a node already: use it directly instead of `value!({ident})`"),
        ),
        [Arg::Gather(_)] => diag.at(
            &binding.call.args,
            "`value!(...)` takes a value, not a list of nodes; gather nodes in a task's input",
        ),
        _ => diag.at(
            &binding.call,
            "`value!(...)` takes one argument, the node's output, like `value!(vec![1, 2, 3])`",
        ),
    }
}

fn classify<'a>(arg: &'a Expr, scope: &Scope<'_>, diag: &mut Diagnostics) -> Arg<'a> {
    let position = scope.position;
    let is_elem = |ident: &Ident| scope.elem.is_some_and(|elem| elem == ident);
    if let Some(ident) = bare_ident(arg) {
        // The element of a map is an input of the body, whatever bindings are named alike.
        if is_elem(ident) {
            return Arg::Edge(ident);
        }
        if let Some(&at) = position.get(&ident.to_string()) {
            // An edge points to a binding above, so the graph cannot have a cycle.
            if at < scope.current {
                return Arg::Edge(ident);
            }
            diag.at(ident, order_message(ident, at == scope.current));
            return Arg::Param(arg);
        }
    }
    if let Expr::Array(array) = arg {
        let idents: Vec<_> = array.elems.iter().map(bare_ident).collect();
        let bound = |i: &&Ident| is_elem(i) || position.contains_key(&i.to_string());
        if !array.elems.is_empty() && idents.iter().flatten().any(bound) {
            // A gathered input lists bindings only, each defined above.
            let mut gathered = Vec::new();
            for (elem, ident) in array.elems.iter().zip(&idents) {
                match ident {
                    Some(ident) if is_elem(ident) => diag.at(
                        ident,
                        format!(
                            "`{ident}` is the map's element, one input of each branch: pass it \
                             as `{ident}`, not in a list"
                        ),
                    ),
                    Some(ident) if scope.mapped.contains(&ident.to_string()) => diag.at(
                        ident,
                        format!(
                            "`{ident}` is a map: pass it as `{ident}`, not in a list, to gather \
                             the outputs of all its branches"
                        ),
                    ),
                    Some(ident) if bound(ident) => {
                        if let Arg::Edge(ident) = classify(elem, scope, diag) {
                            gathered.push(ident);
                        }
                    }
                    _ => diag.at(
                        elem,
                        "a gathered input lists bindings only, like `merge([a, b, c])`",
                    ),
                }
            }
            return Arg::Gather(gathered);
        }
    }
    if let Expr::Reference(reference) = arg
        && let Some(ident) = bare_ident(&reference.expr)
        && (is_elem(ident) || position.contains_key(&ident.to_string()))
    {
        // Edges are written as the binding's name; the task borrows it.
        diag.at(
            arg,
            format!("write the binding as `{ident}`, without `&`: the task borrows its output"),
        );
        return Arg::Param(arg);
    }
    // Bindings are nodes, not values: a parameter expression cannot compute with them.
    for ident in mentioned(arg) {
        if is_elem(ident) {
            diag.at(
                ident,
                format!(
                    "`{ident}` is the map's element, a node, not a value: pass it as a whole \
                     argument, an input of each branch"
                ),
            );
        } else if position
            .get(&ident.to_string())
            .is_some_and(|&at| at < scope.current)
        {
            diag.at(
                ident,
                format!(
                    "`{ident}` is a node, not a value: pass it as a whole argument to wire an edge"
                ),
            );
        }
    }
    Arg::Param(arg)
}

/// The identifier if `expr` is nothing but one.
fn bare_ident(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

/// Every single-identifier path an expression mentions (outside macros).
fn mentioned(expr: &Expr) -> Vec<&Ident> {
    struct Finder<'a>(Vec<&'a Ident>);
    impl<'a> Visit<'a> for Finder<'a> {
        fn visit_expr_path(&mut self, node: &'a syn::ExprPath) {
            if let Some(ident) = node.path.get_ident() {
                self.0.push(ident);
            }
        }
    }
    let mut finder = Finder(Vec::new());
    finder.visit_expr(expr);
    finder.0
}
