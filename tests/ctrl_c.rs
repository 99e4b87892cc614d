//! Ctrl-C on a pipeline binary: SIGINT stops the run from starting nodes, tells the running
//! task, records the run as cancelled and exits with 130; the next run resumes.
//!
//! This file has its own `main`: the test runs its own executable as the pipeline binary
//! (`PIPEWRIGHT_CHILD=1`) and interrupts it.

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

#[task]
fn after(x: &u32) -> u32 {
    x * 10
}

fn child(dir: &Path) -> std::process::ExitCode {
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

fn interrupted_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(dir.path());
    let marker = dir.path().join("marker");
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow task never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
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

fn main() -> std::process::ExitCode {
    if let Some(dir) = std::env::var_os("PIPEWRIGHT_CHILD") {
        return child(Path::new(&dir));
    }
    let ok = std::panic::catch_unwind(interrupted_runs_resume).is_ok();
    println!(
        "test interrupted_runs_resume ... {}",
        if ok { "ok" } else { "FAILED" }
    );
    println!("{} passed, {} failed", u8::from(ok), u8::from(!ok));
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
