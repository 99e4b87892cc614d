//! A run killed (`kill -9`) while a task writes its entry: garbage collection beside it
//! keeps what it uses, `status` shows the nodes that finished while it runs and once it is
//! killed, then as interrupted, and the next run of the same key removes the half-written
//! entry it left.
//!
//! This file has its own `main`: the test re-runs its own executable as the run that is
//! killed (`PIPEWRIGHT_CHILD=1`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use pipewright::cli;
use pipewright::prelude::*;

mod support;

#[task]
fn first(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// Writes 4 MiB into its work directory; while `hang` exists, then says so in `ready` and
/// sleeps until it is killed.
#[task]
fn slow_write(xs: &Vec<u64>, hang: PathBuf, ready: PathBuf, ctx: &Ctx) -> u64 {
    let work = ctx.work_dir().unwrap();
    for i in 0..4 {
        fs::write(work.join(format!("part-{i}")), vec![i as u8; 1 << 20]).unwrap();
    }
    if hang.exists() {
        fs::write(&ready, std::process::id().to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(1000));
    }
    xs.iter().sum()
}

fn the_pipeline(dir: &Path) -> Pipeline {
    let (hang, ready) = (dir.join("hang"), dir.join("ready"));
    let mut b = Pipeline::builder("killed");
    let numbers = b.add("numbers", first::node(1000)).unwrap();
    b.add("sum", slow_write::node(numbers, hang, ready))
        .unwrap();
    b.build()
}

/// Runs the command line `args` against `data`; returns what it printed.
fn cli(p: &Pipeline, data: &Path, args: &[&str]) -> (ExitCode, String) {
    let mut argv = vec!["pipeline".to_owned(), "--data".to_owned()];
    argv.push(data.display().to_string());
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut out = Vec::new();
    let code = cli::run_with(p, argv, &mut out);
    (code, String::from_utf8(out).unwrap())
}

/// The names under `dir` that start with a dot, but for the node index.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".nodes")
        .collect();
    names.sort();
    names
}

/// The only run directory under `data/runs`.
fn the_run(data: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = fs::read_dir(data.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn status_in(run_dir: &Path) -> String {
    pipewright::record::RunRecord::read(run_dir).unwrap().status
}

/// The line of node `node` in what `status` printed.
fn line_of<'a>(out: &'a str, node: &str) -> &'a str {
    out.lines()
        .find(|line| line.trim_start().starts_with(&format!("{node} ")))
        .unwrap_or_else(|| panic!("no line for `{node}` in:\n{out}"))
}

/// A child process, killed if the test fails before it does.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn a_killed_run_is_interrupted_and_its_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline(dir.path());
    fs::write(dir.path().join("hang"), b"").unwrap();
    let mut child = Killed(
        Command::new(std::env::current_exe().unwrap())
            .env("PIPEWRIGHT_CHILD", "1")
            .env("PIPEWRIGHT_DIR", dir.path())
            .spawn()
            .unwrap(),
    );
    let ready = dir.path().join("ready");
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the task never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Beside the run in progress: its record and its entries stay, and so does the lock
    // file of the key it computes, however old, as it is held.
    let locks: Vec<PathBuf> = fs::read_dir(data.join(".locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for lock in &locks {
        let file = fs::File::options().write(true).open(lock).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
    }
    let (_, out) = cli(&p, &data, &["gc", "--keep-runs", "0"]);
    assert!(
        out.starts_with("removed 0 entries and 0 run records"),
        "{out}"
    );
    let run_dir = the_run(&data);
    assert_eq!(hidden(&data.join("first")), Vec::<String>::new());
    assert_eq!(
        fs::read_dir(data.join("first")).unwrap().count(),
        2,
        "the entry of `first` and its node index"
    );
    let held: Vec<PathBuf> = locks.iter().filter(|l| l.exists()).cloned().collect();
    assert_eq!(held.len(), 1, "the lock the run holds: {locks:?}");

    // While it runs, `status` shows what finished.
    let (_, out) = cli(&p, &data, &["status"]);
    assert!(out.contains("running in process "), "{out}");
    assert!(line_of(&out, "numbers").contains(" ran "), "{out}");

    child.0.kill().unwrap();
    child.0.wait().unwrap();

    // Killed: the record still says running, and the half-written entry is there.
    assert_eq!(status_in(&run_dir), "running");
    let leftovers = hidden(&data.join("slow_write"));
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert!(leftovers[0].starts_with(".tmp-"), "{leftovers:?}");
    let (_, out) = cli(&p, &data, &["status"]);
    assert!(out.contains("interrupted: its process ("), "{out}");
    assert!(line_of(&out, "numbers").contains(" ran "), "{out}");
    assert!(!line_of(&out, "sum").contains(" ran "), "{out}");

    // The next run of the same key removes what the killed one left.
    fs::remove_file(dir.path().join("hang")).unwrap();
    let (code, out) = cli(&p, &data, &["run", "--quiet"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(hidden(&data.join("slow_write")), Vec::<String>::new());

    // Garbage collection records the killed run as interrupted.
    let (_, out) = cli(&p, &data, &["gc", "--keep-runs", "5"]);
    assert!(out.contains("; 1 interrupted runs"), "{out}");
    assert_eq!(status_in(&run_dir), "interrupted");
}

fn main() -> ExitCode {
    if std::env::var_os("PIPEWRIGHT_CHILD").is_some() {
        let dir = PathBuf::from(std::env::var_os("PIPEWRIGHT_DIR").unwrap());
        let p = the_pipeline(&dir);
        let _ = Runner::new(dir.join("data")).run(&p);
        return ExitCode::SUCCESS;
    }
    support::run_scenarios(&[(
        "a_killed_run_is_interrupted_and_its_leftovers_are_removed",
        a_killed_run_is_interrupted_and_its_leftovers_are_removed,
    )])
}
