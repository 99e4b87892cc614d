//! Programs that must compile, and give the right values when run: corner cases of
//! `#[task]` and `pipeline!` (hygiene, paths, aliases, returns, maps). Each file reads as a
//! user's program, and its `main` runs here as a test; being a module of this crate, a path
//! from the crate root names the file's module first.

#![allow(clippy::ptr_arg)] // The cases take `&String` and `&Vec<T>` as users write them.

#[path = "pass/ctx_positions.rs"]
mod ctx_positions;
#[path = "pass/gather.rs"]
mod gather;
#[path = "pass/hygiene.rs"]
mod hygiene;
#[path = "pass/map.rs"]
mod map;
#[path = "pass/one_task_many_nodes.rs"]
mod one_task_many_nodes;
#[path = "pass/paths.rs"]
mod paths;
#[path = "pass/pipewright_main.rs"]
mod pipewright_main;
#[path = "pass/result_returns.rs"]
mod result_returns;
#[path = "pass/task_in_other_module.rs"]
mod task_in_other_module;
#[path = "pass/task_named_value.rs"]
mod task_named_value;
#[path = "pass/use_alias.rs"]
mod use_alias;

/// A data directory of the calling program's own, removed when it is dropped: each run
/// starts from an empty store.
pub(crate) fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn ctx_positions() -> impl std::process::Termination {
    ctx_positions::main()
}

#[test]
fn gather() -> impl std::process::Termination {
    gather::main()
}

#[test]
fn hygiene() -> impl std::process::Termination {
    hygiene::main()
}

#[test]
fn map() -> impl std::process::Termination {
    map::main()
}

#[test]
fn one_task_many_nodes() -> impl std::process::Termination {
    one_task_many_nodes::main()
}

#[test]
fn paths() -> impl std::process::Termination {
    paths::main()
}

#[test]
fn pipewright_main() -> impl std::process::Termination {
    pipewright_main::main()
}

#[test]
fn result_returns() -> impl std::process::Termination {
    result_returns::main()
}

#[test]
fn task_in_other_module() -> impl std::process::Termination {
    task_in_other_module::main()
}

#[test]
fn task_named_value() -> impl std::process::Termination {
    task_named_value::main()
}

#[test]
fn use_alias() -> impl std::process::Termination {
    use_alias::main()
}
