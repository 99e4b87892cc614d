//! Errors and panics are never cached: a failed node stores nothing and runs again next
//! time, while its finished siblings stay cached.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

static BROKEN: AtomicBool = AtomicBool::new(true);

#[task]
fn fine(x: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    x
}

#[task]
fn flaky(x: &u32, ctx: &Ctx) -> Result<u32, String> {
    count(ctx);
    if BROKEN.load(Ordering::SeqCst) {
        Err(format!("cannot handle {x} yet"))
    } else {
        Ok(x + 1)
    }
}

#[task(name = "failures_are_not_cached.fragile")]
fn fragile(x: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    assert!(!BROKEN.load(Ordering::SeqCst), "fragile broke on {x}");
    x + 2
}

#[task]
fn join(a: &u32, b: &u32, c: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    a + b + c
}

#[test]
fn failed_nodes_run_again_and_finished_ones_stay_cached() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "failures";
        let base = fine(1);
        let other = fine(2);
        let f = flaky(base);
        let g = fragile(base);
        let all = join(f, g, other);
    };
    let runner = Runner::new(dir.path());

    let run = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["base", "other"])
    );
    assert_eq!(with_status(&run, NodeStatus::Failed), names(&["f", "g"]));
    assert!(run.node("f").unwrap().key().is_none());
    // Only the two finished nodes left entries.
    let stored: Vec<String> = support::store::entries(dir.path())
        .into_iter()
        .map(|e| e.task)
        .collect();
    assert_eq!(stored, ["fine", "fine"]);
    take_runs("failures");

    BROKEN.store(false, Ordering::SeqCst);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(
        with_status(&run, NodeStatus::Cached),
        names(&["base", "other"])
    );
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["f", "g", "all"])
    );
    assert_eq!(
        take_runs("failures").keys().cloned().collect::<Vec<_>>(),
        names(&["f", "g", "all"])
    );
    assert_eq!(*run.get(p.all).unwrap(), 2 + 3 + 2);
}
