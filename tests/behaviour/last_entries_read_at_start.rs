//! A run of many nodes reads its tasks' last entries when it starts, in parts on its threads,
//! each on a connection of its own kept from run to run: what another runner (as another
//! process would) wrote since is what the next run reads.

use std::sync::atomic::{AtomicU64, Ordering};

use pipewright::prelude::*;

/// Sources in the pipeline: enough for two parts on two threads.
const SOURCES: u64 = 2_500;

static DRAWS: AtomicU64 = AtomicU64::new(0);

/// Another output at each call.
#[task(name = "last_entries_read_at_start.draw")]
fn draw(i: u64) -> u64 {
    i * 1_000_000 + DRAWS.fetch_add(1, Ordering::Relaxed)
}

#[task(name = "last_entries_read_at_start.total")]
fn total(parts: &[&u64]) -> u64 {
    parts.iter().copied().sum()
}

fn build() -> Pipeline {
    let mut b = Pipeline::builder("last_entries_read_at_start");
    let sources: Vec<Handle<u64>> = (0..SOURCES)
        .map(|i| b.add(format!("d{i}"), draw::node(i)).unwrap())
        .collect();
    b.add("total", total::node(sources)).unwrap();
    b.build()
}

#[test]
fn a_run_reads_what_another_runner_wrote_since_its_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = build();
    let runner = Runner::new(dir.path()).jobs(2);
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Ran), p.len());
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), p.len());
    let before = *run.get_as::<u64>("total").unwrap();

    // Another runner on the same data directory draws `d7` again: its entry is replaced
    // under the same key, and `total` is stored under a new key.
    let other = Runner::new(dir.path()).jobs(2).force("d7");
    let run = other.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 2);
    let after = *run.get_as::<u64>("total").unwrap();
    assert_ne!(after, before);

    // The first runner reads `d7`'s new entry, so `total` under its new key.
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), p.len());
    assert_eq!(*run.get_as::<u64>("total").unwrap(), after);
}
