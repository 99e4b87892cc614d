//! Helpers shared by the behaviour tests: a per-node run counter and report queries.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use pipewright::prelude::*;

static RUNS: Mutex<BTreeMap<(String, String), usize>> = Mutex::new(BTreeMap::new());

/// Counts one run of the calling node, keyed by pipeline and node.
pub fn count(ctx: &Ctx) {
    let key = (ctx.pipeline().to_owned(), ctx.node().to_owned());
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

/// How often each node of `pipeline` ran since the last call, by node name.
pub fn take_runs(pipeline: &str) -> BTreeMap<String, usize> {
    let mut runs = RUNS.lock().unwrap();
    let keys: Vec<_> = runs
        .keys()
        .filter(|(p, _)| p == pipeline)
        .cloned()
        .collect();
    keys.into_iter()
        .map(|key| {
            let n = runs.remove(&key).unwrap();
            (key.1, n)
        })
        .collect()
}

/// The names of the nodes that ended with `status`, sorted.
pub fn with_status(run: &RunReport, status: NodeStatus) -> Vec<String> {
    let mut names: Vec<String> = run
        .nodes()
        .filter(|n| n.status() == status)
        .map(|n| n.name().to_owned())
        .collect();
    names.sort();
    names
}

/// `names` as owned, sorted strings.
pub fn names(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Runs the scenarios of a test with its own `main` (those whose names contain one of the
/// command line's filters, or all), printing one line each; fails if any failed.
pub fn run_scenarios(scenarios: &[(&str, fn())]) -> std::process::ExitCode {
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, test) in scenarios {
        if !selected(name) {
            continue;
        }
        let ok = std::panic::catch_unwind(*test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed.push(*name);
        }
    }
    // The usual closing line of a test run, then the names of the failed ones.
    println!("{passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        println!("failed: {}", failed.join(", "));
    }
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Whether the command line selects scenario `name`: it names no filter, or one that is
/// part of `name`.
pub fn selected(name: &str) -> bool {
    let mut filters = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .peekable();
    filters.peek().is_none() || filters.any(|f| name.contains(f.as_str()))
}
