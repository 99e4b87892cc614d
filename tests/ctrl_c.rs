//! Ctrl-C on a pipeline binary: SIGINT stops the run from starting nodes, tells the running
//! task, records the run as cancelled and exits with 130; the next run resumes. A second
//! SIGINT exits at once, with what finished recorded.
//!
//! This file has its own `main`: the test runs its own executable as the pipeline binary
//! (`PIPEWRIGHT_CHILD=DIR`, and `PIPEWRIGHT_STUBBORN=1` for a task that does not stop when
//! told) and interrupts it.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipewright::prelude::*;

#[task]
fn first() -> u32 {
    1
}

/// Says it started (by creating `marker`), then works until told to stop.
#[task]
fn slow(x: &u32, marker: std::path::PathBuf, ctx: &Ctx) -> u32 {
    std::fs::write(&marker, b"started").unwrap();
    let start = Instant::now();
    while !ctx.cancelled() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    x + 1
}

/// Says it started (by creating `marker`), then works for a minute whatever it is told.
#[task]
fn stubborn(x: &u32, marker: std::path::PathBuf) -> u32 {
    std::fs::write(&marker, b"started").unwrap();
    std::thread::sleep(Duration::from_secs(60));
    x + 1
}

#[task]
fn after(x: &u32) -> u32 {
    x * 10
}

fn child(dir: &Path) -> std::process::ExitCode {
    if std::env::var_os("PIPEWRIGHT_STUBBORN").is_some() {
        let p = pipeline! {
            name = "ctrl-c-twice";
            let a = first();
            let b = stubborn(a, dir.join("marker"));
            let c = after(b);
        };
        return pipewright::cli::main(&p);
    }
    let p = pipeline! {
        name = "ctrl-c";
        let a = first();
        let b = slow(a, dir.join("marker"));
        let c = after(b);
    };
    pipewright::cli::main(&p)
}

fn spawn(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--data",
            &dir.join("data").display().to_string(),
            "run",
            "--jobs",
            "1",
        ])
        .env("PIPEWRIGHT_CHILD", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `marker` exists.
fn wait_for(marker: &Path) {
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow task never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT to `child`.
fn interrupt(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

fn interrupted_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(dir.path());
    let marker = dir.path().join("marker");
    wait_for(&marker);
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 nodes: 2 ran, 1 cancelled"), "{stdout}");
    assert!(
        stdout.contains("cancelled; what finished is stored"),
        "{stdout}"
    );
    assert!(stderr.contains("cancelling"), "{stderr}");

    let runs = dir.path().join("data/runs");
    let record_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = pipewright::record::RunRecord::read(&record_dir).unwrap();
    assert_eq!(record.status, "cancelled");

    // The next run resumes: `first` and `slow` are stored, `after` runs.
    std::fs::remove_file(&marker).unwrap();
    let output = spawn(dir.path()).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("3 nodes: 1 ran, 2 cached"), "{stdout}");
    assert!(!marker.exists(), "the slow task ran again");
}

/// A second Ctrl-C, while a task goes on that does not stop when told, exits at once, and
/// the run's record says it was cancelled, with the node that finished.
fn a_second_ctrl_c_records_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--data", &dir.path().join("data").display().to_string()])
        .args(["run", "--jobs", "1"])
        .env("PIPEWRIGHT_CHILD", dir.path())
        .env("PIPEWRIGHT_STUBBORN", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    wait_for(&dir.path().join("marker"));
    interrupt(&child);
    // The first signal is taken when the child says so; then the second.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("cancelling") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{said}");
        said.push_str(&line);
    }
    interrupt(&child);
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(30), "it did not exit");
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("exiting: what finished is recorded"),
        "{said}"
    );

    let runs = dir.path().join("data/runs");
    let record_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(record_dir.join("run.json").is_file());
    let record = pipewright::record::RunRecord::read(&record_dir).unwrap();
    assert_eq!(record.status, "cancelled");
    let statuses: Vec<(&str, &str)> = record
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [("a", "ran"), ("b", "cancelled"), ("c", "cancelled")]
    );
    assert!(record.ended.is_some());
}

fn main() -> std::process::ExitCode {
    if let Some(dir) = std::env::var_os("PIPEWRIGHT_CHILD") {
        return child(Path::new(&dir));
    }
    support::run_scenarios(&[
        ("interrupted_runs_resume", interrupted_runs_resume),
        (
            "a_second_ctrl_c_records_what_finished",
            a_second_ctrl_c_records_what_finished,
        ),
    ])
}
