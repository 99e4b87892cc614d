//! `#[helper]` and `uses`: which helpers' code a task's key holds, by path, through chains
//! and diamonds of helpers, `impl` blocks and inline modules. This file denies every
//! warning, so the helpers' generated items add none, unused ones included.

#![deny(warnings)]

use pipewright::prelude::*;
use pipewright::{Task, TaskMeta, helper};

/// Helpers in another module, named by path.
mod util {
    use pipewright::helper;

    /// Uses `trim` and `lower`, which both use `chars`: a diamond.
    #[helper(uses = [trim, lower])]
    pub fn clean(s: &str) -> String {
        lower(&trim(s))
    }

    #[helper(uses = [chars])]
    pub fn trim(s: &str) -> String {
        chars(s).trim().to_owned()
    }

    #[helper(uses = [self::chars])]
    pub fn lower(s: &str) -> String {
        chars(s).to_lowercase()
    }

    #[helper]
    pub(crate) fn chars(s: &str) -> String {
        s.chars().collect()
    }

    /// Not a helper.
    pub fn plain() -> u32 {
        1
    }

    /// A private helper that no task names.
    #[helper]
    fn unnamed() -> u32 {
        2
    }

    /// Calls `unnamed`, so that the function itself is used.
    pub fn two() -> u32 {
        unnamed()
    }
}

/// A helper module that no task names, with a private function and a generic one.
#[helper]
mod unnamed_module {
    fn private() {}

    pub fn generic<T: Default>() -> T {
        private();
        T::default()
    }
}

struct Parser;

#[helper(uses = [util::chars])]
impl Parser {
    fn parse(s: &str) -> u32 {
        util::chars(s).len() as u32 + util::plain() + util::two() - 2
            + unnamed_module::generic::<u32>()
    }
}

/// A helper module: each of its functions stands for the whole module.
#[helper(uses = [super::util::trim])]
mod rows {
    pub fn first(s: &str) -> String {
        split(s).into_iter().next().unwrap_or_default()
    }

    pub(crate) fn split(s: &str) -> Vec<String> {
        s.split(',').map(super::util::trim).collect()
    }
}

#[task(uses = [util::clean])]
fn cleaned(s: String) -> String {
    util::clean(&s)
}

#[task(uses = [Parser, rows::first])]
fn parsed(s: String) -> u32 {
    Parser::parse(&rows::first(&s))
}

#[task]
fn alone(s: String) -> String {
    s
}

use util::trim as trimmed;

#[task(uses = [trimmed])]
fn aliased(s: String) -> String {
    trimmed(&s)
}

fn names(meta: TaskMeta) -> Vec<String> {
    meta.helpers()
        .iter()
        .map(|(name, _)| {
            name.strip_prefix("behaviour::helpers::")
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_task_holds_the_helpers_it_names_and_those_they_name_each_once() {
    assert_eq!(
        names(cleaned::META),
        ["util::chars", "util::clean", "util::lower", "util::trim"]
    );
    assert_eq!(
        names(parsed::META),
        ["Parser", "rows", "util::chars", "util::trim"]
    );
    assert_eq!(names(aliased::META), ["util::chars", "util::trim"]);
    assert!(alone::META.helpers().is_empty());
}

#[test]
fn the_functions_of_a_helper_module_give_the_module_fingerprint() {
    use pipewright::__private::Helper;
    let first = <rows::first as Helper>::__meta();
    let split = <rows::split as Helper>::__meta();
    assert!(std::ptr::eq(first, split));
}

#[test]
fn tasks_with_helpers_run() {
    let p = pipeline! {
        name = "helpers";
        let c = cleaned("  MiXed ".to_string());
        let n = parsed("ab, cd".to_string());
    };
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(run.get(p.c).unwrap(), "mixed");
    assert_eq!(*run.get(p.n).unwrap(), 3);
}
