//! A task can store its outputs as JSON (`#[task(codec = pipewright::codec::Json)]`): its
//! stored output is JSON people can read, it is read back as the value, reused by the next
//! run, named in what the store records, and read by workers of the process executor too.
//!
//! This file has its own `main`, which the workers need; each scenario is a function.

use std::path::Path;

use pipewright::codec::{Bincode, Codec, Json};
use pipewright::prelude::*;
use serde::{Deserialize, Serialize};

mod support;
use support::{count, names, take_runs, with_status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    name: String,
    count: u32,
    mean: f64,
}

#[task(codec = pipewright::codec::Json)]
fn summarize(values: Vec<u32>, ctx: &Ctx) -> Summary {
    count(ctx);
    Summary {
        name: "values".to_owned(),
        count: values.len() as u32,
        mean: f64::from(values.iter().sum::<u32>()) / values.len() as f64,
    }
}

/// The same task with the default codec.
#[task]
fn summarize_bincode(values: Vec<u32>, ctx: &Ctx) -> Summary {
    count(ctx);
    Summary {
        name: "values".to_owned(),
        count: values.len() as u32,
        mean: f64::from(values.iter().sum::<u32>()) / values.len() as f64,
    }
}

#[task]
fn total(summary: &Summary, ctx: &Ctx) -> f64 {
    count(ctx);
    summary.mean * f64::from(summary.count)
}

/// The encoded output, and what the store records, of the entry `node` of `run` wrote for
/// `task`.
fn entry(dir: &Path, task: &str, run: &RunReport, node: &str) -> (Vec<u8>, serde_json::Value) {
    let key = run.node(node).unwrap().key().unwrap().to_owned();
    let entry = support::store::entry(dir, &key).unwrap();
    assert_eq!(entry.task, task);
    (
        support::store::output(dir, &entry),
        support::store::meta_of(dir, node),
    )
}

fn expected() -> Summary {
    Summary {
        name: "values".to_owned(),
        count: 3,
        mean: 2.0,
    }
}

fn json_outputs_are_readable_round_trip_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "json-codec";
        let json = summarize(vec![1, 2, 3]);
        let bin = summarize_bincode(vec![1, 2, 3]);
        let sum = total(json);
    };
    let first = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(
        with_status(&first, NodeStatus::Ran),
        names(&["json", "bin", "sum"])
    );
    assert_eq!(first.get(p.json).unwrap(), &expected());
    assert_eq!(*first.get(p.sum).unwrap(), 6.0);

    // The JSON task's output is JSON, named so in `meta.json`.
    let (output, meta) = entry(dir.path(), "summarize", &first, "json");
    assert_eq!(
        String::from_utf8(output.clone()).unwrap(),
        r#"{"name":"values","count":3,"mean":2.0}"#
    );
    assert_eq!(
        serde_json::from_slice::<Summary>(&output).unwrap(),
        expected()
    );
    assert_eq!(meta["codec"], Json::ID);
    // The same task with the default codec stores bincode, and has another key.
    let (output, meta) = entry(dir.path(), "summarize_bincode", &first, "bin");
    assert_eq!(Bincode::decode::<Summary>(&output).unwrap(), expected());
    assert!(serde_json::from_slice::<Summary>(&output).is_err());
    assert_eq!(meta["codec"], Bincode::ID);
    assert_ne!(
        first.node("json").unwrap().key(),
        first.node("bin").unwrap().key()
    );
    take_runs("json-codec");

    // A new runner reuses the entries; `sum` runs again on the JSON entry, read back.
    let second = Runner::new(dir.path()).force("sum").run(&p).unwrap();
    assert_eq!(
        with_status(&second, NodeStatus::Cached),
        names(&["json", "bin"])
    );
    assert_eq!(
        take_runs("json-codec").into_keys().collect::<Vec<_>>(),
        ["sum"]
    );
    assert_eq!(second.get(p.json).unwrap(), &expected());
    assert_eq!(*second.get(p.sum).unwrap(), 6.0);
    for (a, b) in first.nodes().zip(second.nodes()) {
        assert_eq!(a.key(), b.key());
        assert_eq!(a.output_digest(), b.output_digest());
    }
}

fn workers_write_and_read_json_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "json-codec-workers";
        let json = summarize(vec![2, 4, 6, 8]);
        let sum = total(json);
    };
    let run = Runner::new(dir.path())
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert!(run.succeeded(), "{run}");
    // `sum` ran in a worker, which read the JSON entry its upstream's worker wrote.
    assert_eq!(*run.get(p.sum).unwrap(), 20.0);
    let (output, meta) = entry(dir.path(), "summarize", &run, "json");
    assert_eq!(
        String::from_utf8(output).unwrap(),
        r#"{"name":"values","count":4,"mean":5.0}"#
    );
    assert_eq!(meta["codec"], Json::ID);
    // The workers stored under the parent's keys.
    let again = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 2, "{again}");
    assert_eq!(again.get(p.json).unwrap().mean, 5.0);
}

#[pipewright::main]
fn main() -> std::process::ExitCode {
    support::run_scenarios(&[
        (
            "json_outputs_are_readable_round_trip_and_are_cached",
            json_outputs_are_readable_round_trip_and_are_cached,
        ),
        (
            "workers_write_and_read_json_outputs",
            workers_write_and_read_json_outputs,
        ),
    ])
}
