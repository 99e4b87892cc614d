//! How long a 200-node fan-out takes on a Slurm cluster: submitting it, and running it to
//! the end, with the fan-out as one job array and as 200 jobs.
//!
//! Needs a cluster (`bash .ci/slurm-up.sh` starts a one-node one).
//! `cargo bench -p pipewright-benches --bench slurm`; the figures are in `benches/README.md`.
//! Each run is timed once per repetition: a run takes seconds, far above the noise
//! criterion is built to see through. The time to the last submission comes from the
//! `all jobs submitted` event in the run's `run.log`.

use std::path::Path;
use std::time::{Duration, Instant};

use pipewright::Slurm;
use pipewright::prelude::*;

/// Nodes of the fan-out, below its root.
const WIDTH: u64 = 200;

/// How often each variant runs.
const REPETITIONS: usize = 3;

#[task]
fn root(x: u64) -> u64 {
    x
}

#[task]
fn leaf(x: &u64, i: u64) -> u64 {
    x + i
}

/// The `elapsed` of the `all jobs submitted` event in the run's log.
fn submission_time(run_dir: &Path) -> Option<Duration> {
    let log = std::fs::read_to_string(run_dir.join("run.log")).ok()?;
    let line = log.lines().find(|l| l.contains("all jobs submitted"))?;
    let value = line.split("elapsed=").nth(1)?.split_whitespace().next()?;
    let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic() || c == 'µ')?);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" => 1e-6,
        _ => return None,
    };
    Some(Duration::from_secs_f64(number * scale))
}

#[pipewright::main]
fn main() {
    // `sinfo` answers only where a controller is up.
    let present = std::process::Command::new("sinfo")
        .arg("--noheader")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        println!("no Slurm cluster answers: start one with `bash .ci/slurm-up.sh`");
        if std::env::var("PIPEWRIGHT_REQUIRE_SLURM").as_deref() == Ok("1") {
            std::process::exit(1);
        }
        return;
    }
    let scratch = tempfile::tempdir().expect("a scratch directory");
    for arrays in [true, false] {
        for repetition in 0..REPETITIONS {
            let mut b = Pipeline::builder("fan-out");
            let r = b
                .add("root", root::node(repetition as u64))
                .expect("a node");
            for i in 0..WIDTH {
                b.add(format!("leaf{i}"), leaf::node(r, i)).expect("a node");
            }
            let p = b.build();
            let data = scratch.path().join(format!("{arrays}-{repetition}"));
            let runner = Runner::new(&data).executor(Executor::Slurm(Slurm::new().arrays(arrays)));
            let start = Instant::now();
            let run = runner.run(&p).expect("the run");
            let total = start.elapsed();
            if let Some(failed) = run.nodes().find(|n| n.error().is_some()) {
                panic!(
                    "{run}: `{}` failed: {}",
                    failed.name(),
                    failed.error().unwrap()
                );
            }
            assert_eq!(run.count(NodeStatus::Ran), p.len(), "{run}");
            let submitted = run.run_dir().and_then(submission_time).unwrap_or_default();
            println!(
                "{:<8} {} nodes: submitted in {:.2} s, done in {:.1} s",
                if arrays { "array" } else { "separate" },
                p.len(),
                submitted.as_secs_f64(),
                total.as_secs_f64()
            );
        }
    }
}
