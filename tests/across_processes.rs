//! Two processes and one data directory: a `HashMap` parameter gives the same key in every
//! process, and two processes running one pipeline at once compute each node once, also
//! when one waits for a key whose entry the other has queued to be committed, and when a
//! node's key is known only once a damaged input is recomputed.
//!
//! This file has its own `main`: the test re-runs its own executable as the second
//! process (`PIPEWRIGHT_CHILD=<scenario>`).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use pipewright::prelude::*;

mod support;

/// Appends the node's name to `log`, one line per run.
///
/// The line is built first and written in one call: with `O_APPEND`, one `write` of a short
/// line lands whole, while `writeln!` may issue two writes that another process can split.
fn log_run(log: &Path, ctx: &Ctx) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let line = format!("{}\n", ctx.node());
    file.write_all(line.as_bytes()).unwrap();
}

#[task]
fn weigh(weights: HashMap<String, u64>, log: PathBuf, ctx: &Ctx) -> u64 {
    log_run(&log, ctx);
    weights.values().sum()
}

#[task]
fn slow(i: u32, log: PathBuf, ctx: &Ctx) -> u32 {
    log_run(&log, ctx);
    std::thread::sleep(Duration::from_millis(200));
    i * i
}

#[task]
fn add_up(parts: &[&u32], log: PathBuf, ctx: &Ctx) -> u32 {
    log_run(&log, ctx);
    parts.iter().copied().sum()
}

#[task]
fn quick(i: u32, log: PathBuf, ctx: &Ctx) -> u32 {
    log_run(&log, ctx);
    i + 1
}

/// The text in `value`, which is no parameter: computed again after `value` changed, its
/// output differs under the same key.
#[task]
fn read_value(value: PathBuf, log: PathBuf, ctx: &Ctx) -> String {
    log_run(&log, ctx);
    std::fs::read_to_string(value).unwrap()
}

/// Once `gate` exists, says in it that this process's run started (after it read the
/// entries of the store it remembers), and waits until another process has said so too.
#[task(cache = false)]
fn both_started(gate: PathBuf) -> u32 {
    if !gate.exists() {
        return 0;
    }
    std::fs::write(gate.join(std::process::id().to_string()), b"").unwrap();
    let start = std::time::Instant::now();
    while std::fs::read_dir(&gate).unwrap().count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the other process never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    0
}

#[task]
fn slow_len(text: &String, _started: &u32, log: PathBuf, ctx: &Ctx) -> u32 {
    log_run(&log, ctx);
    // Long enough for the other process to look for the entry while this one computes it.
    std::thread::sleep(Duration::from_secs(1));
    text.len() as u32
}

/// `source`; and if `with_sink`, `sink` below it and `started`, which it waits for, so that
/// in two processes each has read the entries it remembers (the damaged one of `source`
/// among them) before either reads the output of `source`.
fn repaired_pipeline(dir: &Path, log: &Path, with_sink: bool) -> (Pipeline, Option<Handle<u32>>) {
    let mut b = Pipeline::builder("repaired");
    let source = b
        .add(
            "source",
            read_value::node(dir.join("value"), log.to_owned()),
        )
        .unwrap();
    let sink = with_sink.then(|| {
        let started = b
            .add("started", both_started::node(dir.join("gate")))
            .unwrap();
        b.add("sink", slow_len::node(source, started, log.to_owned()))
            .unwrap()
    });
    (b.build(), sink)
}

/// How many quick nodes the pipeline of queued entries has.
const QUICK: u32 = 400;

/// Many quick nodes, whose entries each process queues and commits in batches, holding
/// each key's lock until its entry is committed.
fn quick_pipeline(log: &Path) -> (Pipeline, Handle<u32>) {
    let mut b = Pipeline::builder("quick");
    let parts: Vec<_> = (0..QUICK)
        .map(|i| {
            b.add(format!("quick_{i}"), quick::node(i, log.to_owned()))
                .unwrap()
        })
        .collect();
    let sum = b.add("sum", add_up::node(parts, log.to_owned())).unwrap();
    (b.build(), sum)
}

fn shared_pipeline(log: &Path) -> (Pipeline, Handle<u32>) {
    let mut b = Pipeline::builder("shared");
    let parts: Vec<_> = (0..6)
        .map(|i| {
            b.add(format!("slow_{i}"), slow::node(i, log.to_owned()))
                .unwrap()
        })
        .collect();
    let sum = b.add("sum", add_up::node(parts, log.to_owned())).unwrap();
    (b.build(), sum)
}

/// Runs one scenario in this process and prints `ran=N cached=N value=V`.
fn child(scenario: &str, data: &Path, log: &Path) {
    let runner = Runner::new(data).jobs(2);
    let (run, value) = match scenario {
        "weights" => {
            // Built afresh in each process, whose iteration order differs.
            let weights: HashMap<String, u64> =
                (0..300).map(|i| (format!("item-{i}"), i)).collect();
            let log = log.to_owned();
            let p = pipeline! {
                name = "weights";
                let total = weigh(weights, log);
            };
            let run = runner.run(&p).unwrap();
            let value = *run.get(p.total).unwrap();
            (run, value)
        }
        "repaired" => {
            let dir = data.parent().unwrap();
            let (p, sink) = repaired_pipeline(dir, log, true);
            let run = runner.run(&p).unwrap();
            let value = u64::from(*run.get(sink.unwrap()).unwrap());
            (run, value)
        }
        "shared" | "quick" => {
            let (p, sum) = match scenario {
                "shared" => shared_pipeline(log),
                _ => quick_pipeline(log),
            };
            let run = runner.run(&p).unwrap();
            let value = u64::from(*run.get(sum).unwrap());
            (run, value)
        }
        other => panic!("unknown scenario {other}"),
    };
    println!(
        "ran={} cached={} value={value}",
        run.count(NodeStatus::Ran),
        run.count(NodeStatus::Cached)
    );
}

fn spawn(scenario: &str, data: &Path, log: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env("PIPEWRIGHT_CHILD", scenario)
        .env("PIPEWRIGHT_DATA", data)
        .env("PIPEWRIGHT_LOG", log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `(ran, cached, value)` from a child's output.
fn summary(output: Output) -> (usize, usize, u64) {
    assert!(output.status.success(), "child failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let fields: HashMap<&str, u64> = text
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    (
        fields["ran"] as usize,
        fields["cached"] as usize,
        fields["value"],
    )
}

fn log_lines(log: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn a_hash_map_parameter_is_cached_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let first = summary(spawn("weights", &data, &log).wait_with_output().unwrap());
    assert_eq!(first, (1, 0, (0..300).sum()));
    let second = summary(spawn("weights", &data, &log).wait_with_output().unwrap());
    assert_eq!(
        second,
        (0, 1, (0..300).sum()),
        "the key changed between processes"
    );
    assert_eq!(log_lines(&log), ["total"]);
}

fn two_processes_compute_each_node_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let a = spawn("shared", &data, &log);
    let b = spawn("shared", &data, &log);
    let (a, b) = (
        summary(a.wait_with_output().unwrap()),
        summary(b.wait_with_output().unwrap()),
    );
    let expected: u64 = (0..6u64).map(|i| i * i).sum();
    assert_eq!((a.2, b.2), (expected, expected));
    // Seven nodes, each computed by exactly one of the two.
    assert_eq!(a.0 + b.0, 7, "{a:?} {b:?}");
    assert_eq!(a.0 + a.1, 7);
    assert_eq!(b.0 + b.1, 7);
    let mut expected_log: Vec<String> = (0..6).map(|i| format!("slow_{i}")).collect();
    expected_log.push("sum".to_owned());
    expected_log.sort();
    assert_eq!(log_lines(&log), expected_log);
}

/// Two processes run many quick nodes at once: each waits for keys whose entries the other
/// has queued, and finds them committed once it has their locks.
fn a_key_whose_entry_is_queued_is_computed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let a = spawn("quick", &data, &log);
    let b = spawn("quick", &data, &log);
    let (a, b) = (
        summary(a.wait_with_output().unwrap()),
        summary(b.wait_with_output().unwrap()),
    );
    let expected: u64 = (1..=u64::from(QUICK)).sum();
    assert_eq!((a.2, b.2), (expected, expected));
    let nodes = QUICK as usize + 1;
    assert_eq!(a.0 + b.0, nodes, "{a:?} {b:?}");
    assert_eq!((a.0 + a.1, b.0 + b.1), (nodes, nodes));
    let mut expected_log: Vec<String> = (0..QUICK).map(|i| format!("quick_{i}")).collect();
    expected_log.push("sum".to_owned());
    expected_log.sort();
    assert_eq!(log_lines(&log), expected_log);
}

/// Two processes run a node whose input's entry is damaged, and recomputed with other
/// bytes, so that the node's key is known only once its inputs are read: the one that
/// waited for the new key's lock finds the entry the other committed under it.
fn a_key_known_once_a_damaged_input_is_recomputed_is_computed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    std::fs::write(dir.path().join("value"), "one").unwrap();
    let (first, _) = repaired_pipeline(dir.path(), &log, false);
    assert!(Runner::new(&data).run(&first).unwrap().succeeded());
    // The entry of `source` is damaged, and computed again it gives other bytes.
    let entry = support::store::entry_of(&data, "source");
    support::store::set_output(&data, &entry, b"damaged");
    std::fs::write(dir.path().join("value"), "two!").unwrap();
    std::fs::create_dir(dir.path().join("gate")).unwrap();

    let a = spawn("repaired", &data, &log);
    let b = spawn("repaired", &data, &log);
    let (a, b) = (
        summary(a.wait_with_output().unwrap()),
        summary(b.wait_with_output().unwrap()),
    );
    assert_eq!((a.2, b.2), (4, 4));
    // `source` computed by the first run, then once again; `sink` once.
    assert_eq!(log_lines(&log), ["sink", "source", "source"]);
}

fn main() -> ExitCode {
    if let Ok(scenario) = std::env::var("PIPEWRIGHT_CHILD") {
        let data = PathBuf::from(std::env::var_os("PIPEWRIGHT_DATA").unwrap());
        let log = PathBuf::from(std::env::var_os("PIPEWRIGHT_LOG").unwrap());
        child(&scenario, &data, &log);
        return ExitCode::SUCCESS;
    }
    support::run_scenarios(&[
        (
            "a_hash_map_parameter_is_cached_across_processes",
            a_hash_map_parameter_is_cached_across_processes,
        ),
        (
            "two_processes_compute_each_node_once",
            two_processes_compute_each_node_once,
        ),
        (
            "a_key_whose_entry_is_queued_is_computed_once",
            a_key_whose_entry_is_queued_is_computed_once,
        ),
        (
            "a_key_known_once_a_damaged_input_is_recomputed_is_computed_once",
            a_key_known_once_a_damaged_input_is_recomputed_is_computed_once,
        ),
    ])
}
