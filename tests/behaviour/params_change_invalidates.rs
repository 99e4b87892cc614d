//! A changed parameter re-runs exactly that node and what depends on it.

use crate::support;

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

#[task(name = "params_change_invalidates.source")]
fn source(n: u32, ctx: &Ctx) -> Vec<u32> {
    count(ctx);
    (0..n).collect()
}

#[task(name = "params_change_invalidates.scale")]
fn scale(xs: &Vec<u32>, by: u32, ctx: &Ctx) -> Vec<u32> {
    count(ctx);
    xs.iter().map(|x| x * by).collect()
}

#[task(name = "params_change_invalidates.sum")]
fn sum(parts: &[&Vec<u32>], ctx: &Ctx) -> u32 {
    count(ctx);
    parts.iter().flat_map(|p| p.iter()).sum()
}

fn build(n: u32, a: u32, b: u32) -> impl std::ops::Deref<Target = Pipeline> {
    pipeline! {
        name = "params";
        let src = source(n);
        let by_a = scale(src, a);
        let by_b = scale(src, b);
        let total_a = sum([by_a]);
        let total = sum([by_a, by_b]);
    }
}

#[test]
fn only_the_changed_node_and_its_descendants_run() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());

    let run = runner.run(&build(4, 2, 3)).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 5);
    take_runs("params");

    // `b` changes: `by_b` and `total` run; `src`, `by_a`, `total_a` are cached.
    let run = runner.run(&build(4, 2, 5)).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["by_b", "total"])
    );
    assert_eq!(
        with_status(&run, NodeStatus::Cached),
        names(&["src", "by_a", "total_a"])
    );
    assert_eq!(
        take_runs("params").keys().cloned().collect::<Vec<_>>(),
        names(&["by_b", "total"])
    );
    assert_eq!(*run.get_as::<u32>("total").unwrap(), 6 * 2 + 6 * 5);

    // The source changes: everything below it runs.
    let run = runner.run(&build(5, 2, 5)).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 5);

    // Back to an earlier set of parameters: all of it is still stored.
    let run = runner.run(&build(4, 2, 3)).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 5);
    assert_eq!(*run.get_as::<u32>("total").unwrap(), 6 * 2 + 6 * 3);
}
