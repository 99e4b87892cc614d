//! When an upstream node runs again and produces the same bytes, its consumers stay cached.

use crate::support;

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

/// Rounds to tens: many parameters give the same output.
#[task]
fn round(x: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    x / 10 * 10
}

#[task]
fn expensive(x: &u32, ctx: &Ctx) -> String {
    count(ctx);
    format!("{x} squared is {}", x * x)
}

#[task]
fn shout(s: &String, ctx: &Ctx) -> String {
    count(ctx);
    s.to_uppercase()
}

fn build(x: u32) -> impl std::ops::Deref<Target = Pipeline> {
    pipeline! {
        name = "cutoff";
        let r = round(x);
        let e = expensive(r);
        let s = shout(e);
    }
}

#[test]
fn same_bytes_upstream_keep_consumers_cached() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    assert!(runner.run(&build(41)).unwrap().succeeded());
    take_runs("cutoff");

    // 42 rounds to 40 as 41 did: `r` runs, `e` and `s` do not.
    let run = runner.run(&build(42)).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["r"]));
    assert_eq!(with_status(&run, NodeStatus::Cached), names(&["e", "s"]));
    assert_eq!(
        take_runs("cutoff").keys().cloned().collect::<Vec<_>>(),
        names(&["r"])
    );
    assert_eq!(run.get_as::<String>("s").unwrap(), "40 SQUARED IS 1600");

    // 55 rounds to 50: everything runs.
    let run = runner.run(&build(55)).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3);
}

/// Forcing is early cut-off's twin: a forced node runs, what is below it only if the
/// output changed.
#[test]
fn forcing_runs_the_node_and_what_its_new_output_changes() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "forcing";
        let r = round(7);
        let e = expensive(r);
        let s = shout(e);
    };
    assert!(Runner::new(dir.path()).run(&p).unwrap().succeeded());
    take_runs("forcing");

    let run = Runner::new(dir.path()).force("r").run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["r"]));
    assert_eq!(
        run.node("r").unwrap().reason().unwrap().to_string(),
        "forced"
    );
    assert_eq!(
        take_runs("forcing").keys().cloned().collect::<Vec<_>>(),
        names(&["r"])
    );

    let run = Runner::new(dir.path())
        .force("e")
        .force("s")
        .run(&p)
        .unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["e", "s"]));

    let run = Runner::new(dir.path()).force_all().run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3);
    assert_eq!(take_runs("forcing").values().sum::<usize>(), 2 + 3);

    let err = Runner::new(dir.path()).force("nope").run(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `forcing` has no node named `nope`"
    );
}
