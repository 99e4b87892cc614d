//! Every `#[task]` is registered under its name and found by name; two tasks under one name
//! are an error that names both.

use pipewright::prelude::*;
use pipewright::{Error, InputKind, find_task, registered_tasks};

#[task(
    name = "load-v2",
    version = 2,
    cache = false,
    retries = 3,
    timeout = "1m 30s",
    cpus = 4,
    mem = "2G",
    time = "2h"
)]
fn load(path: String, ctx: &Ctx, limit: usize) -> Vec<String> {
    let _ = ctx;
    vec![path; limit]
}

#[task]
fn join(parts: &[&Vec<String>], sep: &String) -> String {
    parts.iter().map(|p| p.join(sep)).collect()
}

mod first {
    use pipewright::prelude::*;

    #[task]
    pub fn twin() -> u8 {
        1
    }
}

mod second {
    use pipewright::prelude::*;

    #[task]
    pub fn twin() -> u8 {
        2
    }
}

#[test]
fn tasks_are_found_by_name_with_their_options() {
    let meta = find_task("load-v2").unwrap().meta();
    assert_eq!(meta.name, "load-v2");
    assert_eq!(meta.module_path, "registry");
    assert_eq!(meta.version, Some("2"));
    assert!(!meta.cache);
    assert_eq!(meta.retries, 3);
    assert_eq!(meta.timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(meta.resources.cpus, Some(4));
    assert_eq!(meta.resources.mem, Some(2 << 30));
    assert_eq!(
        meta.resources.time,
        Some(std::time::Duration::from_secs(7200))
    );
    assert_eq!(meta.params, ["path", "limit"]);
    assert!(meta.inputs.is_empty());
    assert_eq!(meta.fingerprint_hex().len(), 64);

    let join = find_task("join").unwrap().meta();
    assert!(join.cache);
    assert_eq!(join.version, None);
    assert_eq!(join.inputs.len(), 2);
    assert_eq!(
        (join.inputs[0].name, join.inputs[0].kind),
        ("parts", InputKind::Many)
    );
    assert_eq!(
        (join.inputs[1].name, join.inputs[1].kind),
        ("sep", InputKind::One)
    );
    assert_ne!(meta.fingerprint, join.fingerprint);

    let mut names: Vec<&str> = registered_tasks().map(|r| r.meta().name).collect();
    names.sort_unstable();
    assert_eq!(names, ["join", "load-v2", "twin", "twin"]);
}

#[test]
fn an_unknown_name_is_an_error() {
    let err = find_task("load").unwrap_err();
    assert!(matches!(&err, Error::UnknownTask(name) if name == "load"));
    assert_eq!(
        err.to_string(),
        "no task named `load` is registered in this binary"
    );
}

#[test]
fn two_tasks_under_one_name_are_an_error_naming_both() {
    let err = find_task("twin").unwrap_err();
    assert_eq!(
        err.to_string(),
        "two tasks are registered as `twin`: in `registry::first` and in `registry::second`; \
         rename one with `#[task(name = \"...\")]`"
    );
}
