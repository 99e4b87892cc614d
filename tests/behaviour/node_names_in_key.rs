//! A task that takes `&Ctx` can return what it reads there, so its key holds its pipeline's
//! and its node's names: two nodes of it never share an entry. A task without `&Ctx` has
//! no such names in its key, and its nodes with equal parameters and inputs share one.

use std::sync::atomic::{AtomicUsize, Ordering};

use pipewright::prelude::*;

use crate::support;

#[task]
fn whoami(ctx: &Ctx) -> String {
    format!("{}/{}", ctx.pipeline(), ctx.node())
}

static CONSTANT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task]
fn constant(value: u32) -> u32 {
    CONSTANT_RUNS.fetch_add(1, Ordering::SeqCst);
    value
}

/// The statuses of the nodes of a run, by name, in order.
fn statuses(run: &RunReport) -> Vec<(String, NodeStatus)> {
    run.nodes()
        .map(|n| (n.name().to_owned(), n.status()))
        .collect()
}

/// The number of entries the task `task` has in the store: its directories named by a key.
fn entries(data: &std::path::Path, task: &str) -> usize {
    support::store::entries(data)
        .iter()
        .filter(|e| e.task == task)
        .count()
}

#[test]
fn each_node_of_a_task_that_reads_its_names_has_its_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "compass";
        let north = whoami();
        let south = whoami();
    };

    let first = Runner::new(dir.path()).jobs(1).run(&p).unwrap();
    assert_eq!(first.get(p.north).unwrap(), "compass/north");
    assert_eq!(first.get(p.south).unwrap(), "compass/south");
    assert_eq!(
        statuses(&first),
        [
            ("north".to_owned(), NodeStatus::Ran),
            ("south".to_owned(), NodeStatus::Ran)
        ]
    );
    assert_eq!(entries(dir.path(), "whoami"), 2);

    // From the store, each node gets its own output back.
    let second = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(
        statuses(&second),
        [
            ("north".to_owned(), NodeStatus::Cached),
            ("south".to_owned(), NodeStatus::Cached)
        ]
    );
    assert_eq!(second.get(p.north).unwrap(), "compass/north");
    assert_eq!(second.get(p.south).unwrap(), "compass/south");

    // Another pipeline with a node of the same name has an entry of its own too.
    let other = pipeline! {
        name = "map";
        let north = whoami();
    };
    assert_eq!(
        Runner::new(dir.path())
            .explain(&other, "north")
            .unwrap()
            .to_string(),
        "`north` will run (no entry)\n  - task `whoami` takes `&Ctx`, so its key holds the \
         pipeline's name (now `map`), which may have changed"
    );
    let run = Runner::new(dir.path()).run(&other).unwrap();
    assert_eq!(run.status("north"), Some(NodeStatus::Ran));
    assert_eq!(run.get(other.north).unwrap(), "map/north");
    assert_eq!(entries(dir.path(), "whoami"), 3);
}

#[test]
fn nodes_of_a_task_without_ctx_share_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "constants";
        let left = constant(7);
        let right = constant(7);
    };
    let run = Runner::new(dir.path()).jobs(1).run(&p).unwrap();
    // Whichever of the two runs first, the other finds its entry.
    assert_eq!(
        (run.count(NodeStatus::Ran), run.count(NodeStatus::Cached)),
        (1, 1)
    );
    assert_eq!(
        (*run.get(p.left).unwrap(), *run.get(p.right).unwrap()),
        (7, 7)
    );
    assert_eq!(CONSTANT_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(entries(dir.path(), "constant"), 1);
}
