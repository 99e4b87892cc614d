//! The graph rules of `pipeline!`: names are unique node names, and an argument naming a
//! binding is an edge to a binding defined above it (so no cycle can be written).

/// The longest node name, in bytes, as the runtime's `Builder::add` accepts it.
const MAX_NODE_NAME: usize = 200;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{Expr, Ident};

use super::parse::{Binding, PipelineDef};
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

/// The arguments of every binding, classified.
pub(crate) struct Wired<'a> {
    pub(crate) args: Vec<Vec<Arg<'a>>>,
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

    let mut args = Vec::new();
    for (i, binding) in def.bindings.iter().enumerate() {
        let mut classified = Vec::new();
        for arg in &binding.args {
            classified.push(classify(arg, i, &position, &mut diag));
        }
        if binding.is_value() {
            value(binding, &classified, &mut diag);
        }
        args.push(classified);
    }
    diag.finish()?;
    Ok(Wired { args })
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

fn classify<'a>(
    arg: &'a Expr,
    current: usize,
    position: &HashMap<String, usize>,
    diag: &mut Diagnostics,
) -> Arg<'a> {
    if let Some(ident) = bare_ident(arg)
        && let Some(&at) = position.get(&ident.to_string())
    {
        // An edge points to a binding above, so the graph cannot have a cycle.
        if at < current {
            return Arg::Edge(ident);
        }
        let message = if at == current {
            format!(
                "`{ident}` cannot use its own output; a node can only use the bindings above it"
            )
        } else {
            format!(
                "`{ident}` is used before it is defined; a node can only use the bindings above it"
            )
        };
        diag.at(ident, message);
        return Arg::Param(arg);
    }
    if let Expr::Array(array) = arg {
        let idents: Vec<_> = array.elems.iter().map(bare_ident).collect();
        let bound = |i: &&Ident| position.contains_key(&i.to_string());
        if !array.elems.is_empty() && idents.iter().flatten().any(bound) {
            // A gathered input lists bindings only, each defined above.
            let mut gathered = Vec::new();
            for (elem, ident) in array.elems.iter().zip(&idents) {
                match ident {
                    Some(ident) if bound(ident) => {
                        if let Arg::Edge(ident) = classify(elem, current, position, diag) {
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
        && position.contains_key(&ident.to_string())
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
        if position
            .get(&ident.to_string())
            .is_some_and(|&at| at < current)
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
