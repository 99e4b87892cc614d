//! One process forces a node again and again while another runs the same pipeline
//! normally on the same data directory: the normal runs find every node cached, read every
//! output, and never take a replacement in progress for a damaged entry.
//!
//! This file has its own `main`: the test re-runs its own executable as the two processes
//! (`PIPEWRIGHT_CHILD=force|normal`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::SystemTime;

use pipewright::prelude::*;

mod support;

/// How many times the forcing process runs the pipeline.
const FORCED_RUNS: usize = 20;
/// How many times the normal process runs it at least; it goes on until the forcing
/// process is done.
const NORMAL_RUNS: usize = 20;
/// How many files the forced task writes into its work directory.
const WORK_FILES: usize = 500;
/// How many numbers it outputs.
const NUMBERS: u64 = 1 << 16;

/// Numbers and the time they were made.
type Stamped = (Vec<u64>, u128);

/// Numbers, stamped with the time they were made: each forced run replaces the entry with
/// another output. Its work directory has many files, so that deleting an old entry takes a
/// while.
#[task]
fn numbers(n: u64, ctx: &Ctx) -> Stamped {
    let work = ctx.work_dir().unwrap();
    for i in 0..WORK_FILES {
        std::fs::write(work.join(format!("part-{i}")), i.to_le_bytes()).unwrap();
    }
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    ((0..n).collect(), stamp)
}

/// Reads its input at every run, from the store.
#[task(cache = false)]
fn count(xs: &Stamped) -> usize {
    xs.0.len()
}

fn the_pipeline() -> (Pipeline, Handle<Stamped>, Handle<usize>) {
    let mut b = Pipeline::builder("forced-beside-normal");
    let numbers = b.add("numbers", numbers::node(NUMBERS)).unwrap();
    let count = b.add("count", count::node(numbers)).unwrap();
    (b.build(), numbers, count)
}

/// Runs the pipeline `FORCED_RUNS` times with `numbers` forced, or normally at least
/// `NORMAL_RUNS` times and until `done` exists; prints `errors=N warnings=N reruns=N
/// runs=N`, where a rerun is a cached node that ran.
fn child(role: &str, data: &Path, done: &Path) {
    let captured = support::Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .without_time()
        .init();
    let (p, numbers, count) = the_pipeline();
    let (mut errors, mut reruns) = (Vec::new(), 0);
    let mut runs = 0;
    while if role == "force" {
        runs < FORCED_RUNS
    } else {
        runs < NORMAL_RUNS || !done.exists()
    } {
        runs += 1;
        let runner = Runner::new(data);
        let runner = if role == "force" {
            runner.force("numbers")
        } else {
            runner
        };
        let run = match runner.run(&p) {
            Ok(run) => run,
            Err(e) => {
                errors.push(format!("run: {e}"));
                continue;
            }
        };
        if !run.succeeded() {
            errors.push(format!("run: {run}"));
        }
        if role == "normal" && run.status("numbers") == Some(NodeStatus::Ran) {
            reruns += 1;
        }
        match run.get(numbers) {
            Ok(xs) if xs.0.len() as u64 == NUMBERS => {}
            Ok(xs) => errors.push(format!("numbers has {} items", xs.0.len())),
            Err(e) => errors.push(format!("numbers: {e}")),
        }
        match run.get(count) {
            Ok(n) if *n as u64 == NUMBERS => {}
            other => errors.push(format!("count: {other:?}")),
        }
    }
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    for line in errors
        .iter()
        .map(String::as_str)
        .chain(warnings.iter().copied())
    {
        eprintln!("{role}: {line}");
    }
    println!(
        "errors={} warnings={} reruns={reruns} runs={runs}",
        errors.len(),
        warnings.len()
    );
}

fn spawn(role: &str, data: &Path, done: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env("PIPEWRIGHT_CHILD", role)
        .env("PIPEWRIGHT_DATA", data)
        .env("PIPEWRIGHT_DONE", done)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `(errors, warnings, reruns)` a child printed, and how many runs it made.
fn summary(child: std::process::Child) -> ((u64, u64, u64), u64) {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let field = |name: &str| -> u64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no `{name}` in {text:?}"))
            .parse()
            .unwrap()
    };
    (
        (field("errors"), field("warnings"), field("reruns")),
        field("runs"),
    )
}

fn a_forced_node_replaced_beside_a_normal_run_is_never_damaged_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (p, ..) = the_pipeline();
    let first = Runner::new(&data).run(&p).unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 2);

    let done = dir.path().join("done");
    let normal = spawn("normal", &data, &done);
    let force = spawn("force", &data, &done);
    let force = summary(force);
    std::fs::write(&done, b"").unwrap();
    let normal = summary(normal);
    assert_eq!(
        force,
        ((0, 0, 0), FORCED_RUNS as u64),
        "the forcing process"
    );
    assert_eq!(
        normal.0,
        (0, 0, 0),
        "the normal process: errors, warnings, reruns"
    );
    // The replaced entries left nothing behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(data.join("numbers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter(|p| !p.ends_with(".nodes"))
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new());
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var("PIPEWRIGHT_CHILD") {
        let data = PathBuf::from(std::env::var_os("PIPEWRIGHT_DATA").unwrap());
        let done = PathBuf::from(std::env::var_os("PIPEWRIGHT_DONE").unwrap());
        child(&role, &data, &done);
        return ExitCode::SUCCESS;
    }
    support::run_scenarios(&[(
        "a_forced_node_replaced_beside_a_normal_run_is_never_damaged_or_missing",
        a_forced_node_replaced_beside_a_normal_run_is_never_damaged_or_missing,
    )])
}
