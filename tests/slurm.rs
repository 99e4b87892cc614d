//! The Slurm executor against a real Slurm (`.ci/slurm-up.sh` starts a one-node cluster):
//! every node that must run is a batch job running this test's own executable as a worker.
//!
//! Skipped, with a message, where `sbatch` is missing or no controller answers;
//! `PIPEWRIGHT_REQUIRE_SLURM=1` (as in CI) makes that a failure. This file has its own
//! `main`, which the workers need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pipewright::prelude::*;
use pipewright::{RunReason, Slurm, TaskError};

mod support;
use support::{names, with_status, write_dated};

/// A value and the Slurm job (or array job and task) that computed it.
type Stamped = (u64, String);

/// The job this process runs in, as Slurm names it.
fn job() -> String {
    match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(array), Ok(task)) => format!("{array}_{task}"),
        _ => std::env::var("SLURM_JOB_ID").unwrap_or_default(),
    }
}

#[task]
fn source(x: u64) -> Stamped {
    (x, job())
}

#[task]
fn double(a: &Stamped) -> Stamped {
    (a.0 * 2, job())
}

#[task]
fn add(a: &Stamped, b: &Stamped) -> Stamped {
    (a.0 + b.0, job())
}

#[task]
fn sum_all(parts: &[&Stamped]) -> Stamped {
    (parts.iter().map(|p| p.0).sum(), job())
}

#[task]
fn scale(a: &Stamped, factor: u64) -> Stamped {
    (a.0 * factor, job())
}

#[task]
fn refuse(a: &Stamped) -> Result<Stamped, String> {
    Err(format!("refusing {}", a.0))
}

/// Sleeps past its timeout without looking at its context.
#[task(timeout = "2s")]
fn oversleep(a: &Stamped) -> Stamped {
    std::thread::sleep(Duration::from_secs(120));
    a.clone()
}

/// Runs past the one minute of its Slurm time limit.
#[task(time = "1m")]
fn overrun(a: &Stamped) -> Stamped {
    std::thread::sleep(Duration::from_secs(600));
    a.clone()
}

/// What `scontrol show job` says about the job running this task.
#[task(cpus = 2, mem = "300M", time = "10m")]
fn describe_own_job(a: &Stamped) -> String {
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", &std::env::var("SLURM_JOB_ID").unwrap()])
        .output()
        .unwrap();
    format!("{} {}", a.0, String::from_utf8_lossy(&out.stdout))
}

/// Writes its job id to `marker`, then sleeps.
#[task]
fn sleeper(a: &Stamped, marker: PathBuf) -> Stamped {
    std::fs::write(&marker, job()).unwrap();
    std::thread::sleep(Duration::from_secs(300));
    a.clone()
}

fn slurm_runner(dir: &Path) -> Runner {
    Runner::new(dir).executor(Executor::Slurm(Slurm::new()))
}

/// The files in `dir` whose names end with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// What `squeue -t all` says of job `id`: its state and reason.
fn squeue(id: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%T|%r", "-j", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn a_diamond_runs_as_jobs_and_then_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-diamond";
        let a = source(20);
        let b = double(a);
        let c = source(1);
        let d = add(b, c);
        let e = sum_all([a, b, c, d]);
    };
    let runner = slurm_runner(dir.path());
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.count(NodeStatus::Ran), 5);
    assert_eq!(run.get(p.d).unwrap().0, 41);
    assert_eq!(run.get(p.e).unwrap().0, 20 + 40 + 1 + 41);
    // Every node ran in a Slurm job: `a` and `c` (one task, no upstream) as one job array.
    let jobs = [
        &run.get(p.a).unwrap().1,
        &run.get(p.b).unwrap().1,
        &run.get(p.c).unwrap().1,
        &run.get(p.d).unwrap().1,
        &run.get(p.e).unwrap().1,
    ];
    assert!(jobs.iter().all(|j| !j.is_empty()), "{jobs:?}");
    assert!(
        jobs[0].ends_with("_0") && jobs[2].ends_with("_1"),
        "{jobs:?}"
    );
    let run_dir = run.run_dir().unwrap();
    assert_eq!(files_ending(&run_dir.join("slurm"), ".sh").len(), 4);
    let record = pipewright::record::RunRecord::read(run_dir).unwrap();
    assert_eq!(record.status, "succeeded");

    // A second run submits nothing.
    let again = runner.run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 5, "{again}");
    assert_eq!(again.get(p.e).unwrap(), run.get(p.e).unwrap());
    let again_dir = again.run_dir().unwrap();
    assert!(files_ending(&again_dir.join("slurm"), ".sh").is_empty());
    assert!(files_ending(&again_dir.join("jobs"), ".json").is_empty());
}

fn a_failure_cancels_what_is_below_and_a_rerun_submits_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-failure";
        let a = source(3);
        let bad = refuse(a);
        let below = double(bad);
        let further = double(below);
        let fine = scale(a, 7);
    };
    let runner = slurm_runner(dir.path());
    let run = runner.run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["a", "fine"]));
    assert_eq!(run.get(p.fine).unwrap().0, 21);
    let bad = run.node("bad").unwrap();
    assert_eq!(bad.status(), NodeStatus::Failed);
    assert_eq!(bad.error().unwrap().to_string(), "refusing 3");
    assert_eq!(
        with_status(&run, NodeStatus::UpstreamFailed),
        names(&["below", "further"])
    );
    assert_eq!(run.node("below").unwrap().failed_upstream(), Some("bad"));
    assert_eq!(run.node("further").unwrap().failed_upstream(), Some("bad"));
    // Slurm itself cancelled the jobs below the failure: they never started.
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    assert_eq!(record.status, "failed");
    let below_job = std::fs::read_to_string(run.run_dir().unwrap().join("slurm/below.sh"))
        .map(|_| ())
        .is_ok();
    assert!(below_job, "`below` was not submitted");
    assert!(
        !run.run_dir()
            .unwrap()
            .join("jobs/below.status.json")
            .exists(),
        "`below` ran"
    );

    // Again: what is stored is not submitted; only the failure and what is below it are.
    let again = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&again, NodeStatus::Cached),
        names(&["a", "fine"])
    );
    assert_eq!(again.status("bad"), Some(NodeStatus::Failed));
    assert_eq!(
        files_ending(&again.run_dir().unwrap().join("jobs"), ".json")
            .iter()
            .filter(|f| !f.ends_with(".status.json"))
            .count(),
        3
    );
}

fn a_fan_out_of_fifty_is_one_job_array() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("slurm-fan-out");
    let root = b.add("root", source::node(2)).unwrap();
    let parts: Vec<_> = (0..50u64)
        .map(|i| b.add(format!("part{i}"), scale::node(root, i)).unwrap())
        .collect();
    let total = b.add("total", sum_all::node(parts.clone())).unwrap();
    let p = b.build();
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.get(total).unwrap().0, 2 * (0..50).sum::<u64>());
    // Three submissions: the root, one array of 50, the sink.
    let run_dir = run.run_dir().unwrap();
    assert_eq!(files_ending(&run_dir.join("slurm"), ".sh").len(), 3);
    let mut tasks = std::collections::BTreeSet::new();
    let mut arrays = std::collections::BTreeSet::new();
    for part in &parts {
        let (array, task) = run.get(*part).unwrap().1.split_once('_').unwrap();
        arrays.insert(array.to_owned());
        tasks.insert(task.parse::<u32>().unwrap());
    }
    assert_eq!(arrays.len(), 1, "{arrays:?}");
    assert_eq!(tasks, (0..50).collect());
}

fn a_task_past_its_timeout_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-timeout";
        let a = source(1);
        let slow = oversleep(a);
        let after = double(slow);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert!(matches!(
        run.node("slow").unwrap().error(),
        Some(TaskError::TimedOut(t)) if *t == Duration::from_secs(2)
    ));
    assert_eq!(run.status("after"), Some(NodeStatus::UpstreamFailed));
}

/// Slurm itself ends the job at its time limit (a minute, checked every 30 s), so this
/// takes 60 to 100 s; `main` runs it beside the other scenarios.
fn a_job_past_its_time_limit_ends_as_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-time-limit";
        let a = source(1);
        let slow = overrun(a);
        let after = double(slow);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    let error = run.node("slow").unwrap().error().unwrap().to_string();
    assert!(error.contains(" ended TIMEOUT: "), "{error}");
    assert!(error.contains("ran past its time limit"), "{error}");
    assert_eq!(run.status("after"), Some(NodeStatus::UpstreamFailed));
    let record = std::fs::read_to_string(run.run_dir().unwrap().join("failures/slow.txt")).unwrap();
    assert!(record.contains("TIMEOUT"), "{record}");
}

fn resource_hints_reach_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-resources";
        let a = source(1);
        let seen = describe_own_job(a);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    let seen = run.get(p.seen).unwrap();
    assert!(seen.contains("NumCPUs=2"), "{seen}");
    assert!(seen.contains("mem=300M"), "{seen}");
    assert!(seen.contains("TimeLimit=00:10:00"), "{seen}");
}

fn cancelling_cancels_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let p = pipeline! {
        name = "slurm-cancel";
        let a = source(1);
        let slow = sleeper(a, marker.clone());
        let after = double(slow);
    };
    let runner = slurm_runner(&dir.path().join("data"));
    let cancel = runner.cancel_handle();
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| runner.run(&p));
        let start = Instant::now();
        while !marker.exists() {
            assert!(start.elapsed() < Duration::from_secs(60), "never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        cancel.cancel();
        run.join().unwrap().unwrap()
    });
    assert!(run.cancelled());
    assert_eq!(run.status("a"), Some(NodeStatus::Ran));
    assert_eq!(run.status("slow"), Some(NodeStatus::Cancelled));
    assert_eq!(run.status("after"), Some(NodeStatus::Cancelled));
    let job = std::fs::read_to_string(&marker).unwrap();
    // scancel reached the job.
    let start = Instant::now();
    loop {
        let state = squeue(&job);
        if state.starts_with("CANCELLED") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job {job} is {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a job received: each parameter, floats by their bits and maps sorted, and the job.
type Carried = (
    u64,
    u128,
    Vec<((u32, u32), String)>,
    Vec<(i64, String)>,
    String,
);

#[task]
fn carry(
    x: f64,
    big: u128,
    pairs: HashMap<(u32, u32), String>,
    ints: HashMap<i64, String>,
) -> Carried {
    (
        x.to_bits(),
        big,
        support::sorted(pairs),
        support::sorted(ints),
        job(),
    )
}

fn parameters_reach_the_jobs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("slurm-params");
    let mut expected = Vec::new();
    for (name, (x, big, pairs, ints)) in support::unjsonable_params() {
        let sent = (
            x.to_bits(),
            big,
            support::sorted(pairs.clone()),
            support::sorted(ints.clone()),
        );
        let handle = b.add(name, carry::node(x, big, pairs, ints)).unwrap();
        expected.push((handle, sent));
    }
    let p = b.build();
    let runner = slurm_runner(dir.path());
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.count(NodeStatus::Ran), 6, "{run}");
    for (handle, (bits, big, pairs, ints)) in &expected {
        let carried = run.get(*handle).unwrap();
        assert_eq!(
            (&carried.0, &carried.1, &carried.2, &carried.3),
            (bits, big, pairs, ints)
        );
        assert!(!carried.4.is_empty(), "not run in a Slurm job");
    }
    // The jobs stored under the keys this process computes.
    let again = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 6, "{again}");
}

#[task]
fn shout(file: pipewright::InputFile, ctx: &Ctx) -> std::io::Result<pipewright::OutputFile> {
    let text = std::fs::read_to_string(file.path())?;
    let loud = pipewright::OutputFile::new(ctx, "loud.txt")?;
    std::fs::write(loud.path(), text.to_uppercase())?;
    Ok(loud)
}

#[task]
fn length_of(file: &pipewright::OutputFile) -> std::io::Result<(u64, String)> {
    Ok((std::fs::read_to_string(file.path())?.len() as u64, job()))
}

fn input_and_output_files_behave_in_jobs_as_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("quiet.txt");
    write_dated(&input, "hello", 0);
    let mut b = Pipeline::builder("slurm-files");
    let loud = b
        .add("loud", shout::node(pipewright::InputFile::new(&input)))
        .unwrap();
    let length = b.add("length", length_of::node(loud)).unwrap();
    let p = b.build();
    let runner = slurm_runner(&dir.path().join("data"));

    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.count(NodeStatus::Ran), 2);
    // The file a job wrote is in the store, at the path the report gives.
    let file = run.get(loud).unwrap().path().to_owned();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "HELLO");
    let (len, job) = run.get(length).unwrap().clone();
    assert_eq!(len, 5);
    assert!(!job.is_empty(), "`length` ran outside a job");

    // Touched, same bytes: nothing is submitted.
    write_dated(&input, "hello", 10);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 2, "{run}");

    // Edited: both run again, in jobs.
    write_dated(&input, "hello world", 20);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 2, "{run}");
    let file = run.get(loud).unwrap().path().to_owned();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "HELLO WORLD");
    assert_eq!(run.get(length).unwrap().0, 11);

    // The output file deleted in the store: `loud` is not read by a run that has nothing
    // to compute, but reading it finds the damage, never the missing file...
    std::fs::remove_file(&file).unwrap();
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 2, "{run}");
    let error = run.get(loud).unwrap_err().to_string();
    assert!(
        error.contains("output file `loud.txt` is missing"),
        "{error}"
    );
    // ... and the next run computes it again, in a job, writing the same bytes, so that
    // `length` stays cached.
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["loud"]),
        "{run}"
    );
    assert_eq!(
        with_status(&run, NodeStatus::Cached),
        names(&["length"]),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "HELLO WORLD");
}

#[task]
fn spread(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// Ten times its element, the job it ran in, and the node its context names.
#[task]
fn tenfold(x: &u64, ctx: &Ctx) -> (u64, String, String) {
    (x * 10, job(), ctx.node().to_owned())
}

#[task]
fn plus_one(x: &(u64, String, String)) -> Stamped {
    (x.0 + 1, job())
}

#[task]
fn refuse_two(x: &u64) -> Result<Stamped, String> {
    if *x == 2 {
        Err(format!("refusing element {x}"))
    } else {
        Ok((*x, job()))
    }
}

/// `factor`, after `secs` seconds.
#[task]
fn slow_factor(factor: u64, secs: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(secs));
    factor
}

#[task]
fn times(a: &Stamped, factor: &u64) -> Stamped {
    (a.0 * factor, job())
}

#[task]
fn scale_by(x: &u64, factor: &u64) -> Stamped {
    (x * factor, job())
}

/// The job arrays that ran `values`' branches, each with the tasks it ran.
fn arrays_of<'a>(
    jobs: impl IntoIterator<Item = &'a String>,
) -> std::collections::BTreeMap<String, Vec<u32>> {
    let mut arrays = std::collections::BTreeMap::<String, Vec<u32>>::new();
    for job in jobs {
        let (array, task) = job.split_once('_').expect("an array task");
        arrays
            .entry(array.to_owned())
            .or_default()
            .push(task.parse().unwrap());
    }
    arrays
}

/// The job descriptions a run wrote (not the status files its workers wrote).
fn job_specs(run: &RunReport) -> Vec<String> {
    files_ending(&run.run_dir().unwrap().join("jobs"), ".json")
        .into_iter()
        .filter(|f| !f.ends_with(".status.json"))
        .collect()
}

fn maps_run_as_job_arrays_with_the_keys_they_have_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let build = |n: u64| {
        pipeline! {
            name = "slurm-map";
            let list = spread(n);
            let tens = for x in list { tenfold(x) };
            let next = for t in tens { plus_one(t) };
            let total = sum_all(next);
        }
    };
    let p = build(3);
    let runner = slurm_runner(dir.path());
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    let tens = run.branches(p.tens).unwrap();
    assert_eq!(tens.iter().map(|t| t.0).collect::<Vec<_>>(), [10, 20, 30]);
    // Each branch saw its mapped node's name, and ran as a task of one job array.
    assert!(tens.iter().all(|t| t.2 == "tens"), "{tens:?}");
    let tens_arrays = arrays_of(tens.iter().map(|t| &t.1));
    assert_eq!(tens_arrays.values().collect::<Vec<_>>(), [&vec![0, 1, 2]]);
    // The map over the map: one more array, branch `i` paired with branch `i`.
    let next = run.branches(p.next).unwrap();
    assert_eq!(next.iter().map(|t| t.0).collect::<Vec<_>>(), [11, 21, 31]);
    let next_arrays = arrays_of(next.iter().map(|t| &t.1));
    assert_eq!(next_arrays.values().collect::<Vec<_>>(), [&vec![0, 1, 2]]);
    assert_ne!(tens_arrays.keys().next(), next_arrays.keys().next());
    assert_eq!(run.get(p.total).unwrap().0, 11 + 21 + 31);
    for name in [
        "list", "tens", "next", "total", "tens[0]", "tens[2]", "next[1]",
    ] {
        assert_eq!(run.status(name), Some(NodeStatus::Ran), "{name}");
    }
    // The list, each map's array and the total: four submissions.
    assert_eq!(
        files_ending(&run.run_dir().unwrap().join("slurm"), ".sh").len(),
        4
    );
    // The record lists every branch.
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    assert_eq!(record.status, "succeeded");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.run_dir().unwrap().join("run.json")).unwrap())
            .unwrap();
    let next_record = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "next")
        .unwrap();
    let names: Vec<&str> = next_record["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["next[0]", "next[1]", "next[2]"]);
    // The journal, which `status` reads while the run goes on, had every branch too.
    assert_eq!(
        journaled_branches(run.run_dir().unwrap()),
        recorded_branches(&record)
    );

    // The branches' entries are those the in-process executor looks for.
    let here = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(here.count(NodeStatus::Ran), 0, "{here}");
    assert_eq!(here.get(p.total).unwrap().0, 63);

    // One more element: one more branch of each map, each alone in its array.
    let p = build(4);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    for name in [
        "tens[0]", "tens[1]", "tens[2]", "next[0]", "next[1]", "next[2]",
    ] {
        assert_eq!(run.status(name), Some(NodeStatus::Cached), "{name}");
    }
    assert_eq!(run.status("tens[3]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("next[3]"), Some(NodeStatus::Ran));
    assert!(run.branches(p.tens).unwrap()[3].1.ends_with("_0"));
    assert!(run.branches(p.next).unwrap()[3].1.ends_with("_0"));
    assert_eq!(run.get(p.total).unwrap().0, 63 + 41);
    let specs = job_specs(&run);
    assert_eq!(specs.len(), 4, "{specs:?}");
    assert!(specs.iter().any(|s| s.starts_with("tens_3_")), "{specs:?}");
    assert!(specs.iter().any(|s| s.starts_with("next_3_")), "{specs:?}");

    // Nothing changed: nothing is submitted.
    let again = runner.run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Ran), 0, "{again}");
    assert!(job_specs(&again).is_empty());
}

fn a_failed_branch_fails_alone_with_what_is_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-map-failure";
        let list = spread(3);
        let each = for x in list { refuse_two(x) };
        let tens = for e in each { scale(e, 10) };
        let total = sum_all(tens);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert_eq!(run.status("each[1]"), Some(NodeStatus::Failed));
    assert_eq!(
        run.node("each[1]").unwrap().error().unwrap().to_string(),
        "refusing element 2"
    );
    for name in ["each[0]", "each[2]", "tens[0]", "tens[2]"] {
        assert_eq!(run.status(name), Some(NodeStatus::Ran), "{name}");
    }
    // The paired branch below never started; Slurm held it back.
    assert_eq!(run.status("tens[1]"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(
        run.node("tens[1]").unwrap().failed_upstream(),
        Some("each[1]")
    );
    assert!(run.branches(p.tens).is_err());
    let each = run.node("each").unwrap();
    assert_eq!(each.status(), NodeStatus::Failed);
    assert_eq!(
        each.error().unwrap().to_string(),
        "1 of 3 branches failed, the first `each[1]`"
    );
    assert_eq!(run.status("tens"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(run.status("total"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(
        run.node("total").unwrap().failed_upstream(),
        Some("each[1]")
    );
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    assert_eq!(record.status, "failed");
    let journaled = journaled_branches(run.run_dir().unwrap());
    assert_eq!(journaled, recorded_branches(&record));
    let blamed = (
        "tens[1]".to_owned(),
        "UpstreamFailed".to_owned(),
        Some("each[1]".to_owned()),
        vec![],
    );
    assert!(journaled.contains(&blamed), "{journaled:?}");
    let failed = (
        "each[1]".to_owned(),
        "Failed".to_owned(),
        None,
        vec!["refusing element 2".to_owned()],
    );
    assert!(journaled.contains(&failed), "{journaled:?}");

    // Every node and branch ends as it does in process.
    let here_dir = tempfile::tempdir().unwrap();
    let here = Runner::new(here_dir.path()).run(&p).unwrap();
    assert_eq!(ends(&run), ends(&here));
    assert_eq!(ends(&run).len(), 4 + 3 + 3);
}

/// A branch named as a target runs alone below what its map needs whole, and has the
/// entry a whole run finds; a branch forced runs again alone; a position beyond the list
/// fails the mapped node, as in process.
fn a_branch_can_be_a_target_and_be_forced() {
    use NodeStatus::{Cached, NotNeeded, Ran};
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-map-target";
        let list = spread(3);
        let tens = for x in list { tenfold(x) };
        let next = for t in tens { plus_one(t) };
        let total = sum_all(next);
    };
    let names = [
        "list", "tens[0]", "tens[1]", "tens[2]", "next[0]", "next[1]", "next[2]", "total",
    ];
    let statuses = |run: &RunReport| names.map(|name| run.status(name));
    let run = slurm_runner(dir.path()).target("next[1]").run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(
        statuses(&run),
        [Ran, Ran, Ran, Ran, NotNeeded, Ran, NotNeeded, NotNeeded].map(Some)
    );
    assert_eq!(run.get_as::<Stamped>("next[1]").unwrap().0, 21);
    assert_eq!(run.status("next"), Some(Ran));

    // A whole run finds that branch's entry, and runs the two others.
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert_eq!(
        statuses(&run),
        [Cached, Cached, Cached, Cached, Ran, Cached, Ran, Ran].map(Some)
    );
    assert_eq!(run.get(p.total).unwrap().0, 11 + 21 + 31);

    // A forced branch runs again, alone of its map: its output names its new job, so its
    // paired branch below and the total run again too.
    let run = slurm_runner(dir.path()).force("tens[2]").run(&p).unwrap();
    assert_eq!(
        statuses(&run),
        [Cached, Cached, Cached, Ran, Cached, Cached, Ran, Ran].map(Some)
    );
    assert_eq!(
        run.node("tens[2]").unwrap().reason(),
        Some(&RunReason::Forced)
    );

    // A position beyond the list fails the mapped node, saying how long the list is; the
    // journal says so too.
    let run = slurm_runner(dir.path()).target("next[5]").run(&p).unwrap();
    assert!(!run.succeeded());
    let error = "there is no branch `next[5]`: `tens` has 3 branches";
    assert_eq!(
        run.node("next").unwrap().error().unwrap().to_string(),
        error
    );
    let journaled = journaled_record(run.run_dir().unwrap());
    let next = journaled.nodes.iter().find(|n| n.name == "next").unwrap();
    assert_eq!(
        (format!("{:?}", next.status), next.error.clone()),
        ("Failed".to_owned(), vec![error.to_owned()])
    );
}

/// A submission Slurm refuses fails its node, and what is below it, mapped or not, ends as
/// upstream failed: the run goes on deciding after the last job it could follow.
fn a_refused_submission_fails_what_is_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-map-refused";
        let list = spread(3);
        let each = for x in list { refuse_two(x) };
        let total = sum_all(each);
    };
    let runner = Runner::new(dir.path())
        .executor(Executor::Slurm(Slurm::new().partition("no-such-partition")));
    let run = runner.run(&p).unwrap();
    assert_eq!(run.status("list"), Some(NodeStatus::Failed), "{run}");
    let error = run.node("list").unwrap().error().unwrap().to_string();
    assert!(error.contains("sbatch"), "{error}");
    for name in ["each", "total"] {
        assert_eq!(run.status(name), Some(NodeStatus::UpstreamFailed), "{name}");
        assert_eq!(run.node(name).unwrap().failed_upstream(), Some("list"));
    }
}

/// How each node and branch of `run` ended: its name, its status, and the node whose
/// failure kept it from running.
fn ends(run: &RunReport) -> Vec<(String, NodeStatus, Option<String>)> {
    run.nodes()
        .map(|n| {
            (
                n.name().to_owned(),
                n.status(),
                n.failed_upstream().map(str::to_owned),
            )
        })
        .collect()
}

/// The maps `scaled` and `tens` also wait on `factor`, which is stored only after `each`
/// settled (its branches are a second or two of work, `factor` five seconds): the branches
/// of `tens` are made after the branch above them failed, and the others run all the
/// same; those of `scaled` are made after those of `each`, which comes after it.
fn a_map_over_a_failed_map_runs_the_branches_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "slurm-map-after-failure";
        let list = spread(3);
        let factor = slow_factor(10, 5);
        let scaled = for x in list { scale_by(x, factor) };
        let each = for x in list { refuse_two(x) };
        let tens = for e in each { times(e, factor) };
        let total = sum_all(tens);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    let scaled = run.branches(p.scaled).unwrap();
    assert_eq!(scaled.iter().map(|s| s.0).collect::<Vec<_>>(), [10, 20, 30]);
    assert_eq!(run.status("each"), Some(NodeStatus::Failed));
    for (name, value) in [("tens[0]", 10), ("tens[2]", 30)] {
        assert_eq!(run.status(name), Some(NodeStatus::Ran), "{name}");
        assert_eq!(run.get_as::<Stamped>(name).unwrap().0, value, "{name}");
    }
    assert_eq!(run.status("tens[1]"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(
        run.node("tens[1]").unwrap().failed_upstream(),
        Some("each[1]")
    );
    assert_eq!(
        run.node("total").unwrap().failed_upstream(),
        Some("each[1]")
    );
    let here_dir = tempfile::tempdir().unwrap();
    let here = Runner::new(here_dir.path()).run(&p).unwrap();
    assert_eq!(ends(&run), ends(&here));
}

fn a_stored_list_is_mapped_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // The list alone, stored by a run in this process.
    let mut b = Pipeline::builder("slurm-map-stored-list");
    b.add("list", spread::node(3)).unwrap();
    let listed = Runner::new(dir.path()).run(&b.build()).unwrap();
    assert_eq!(listed.count(NodeStatus::Ran), 1, "{listed}");

    let p = pipeline! {
        name = "slurm-map-stored-list";
        let list = spread(3);
        let tens = for x in list { tenfold(x) };
        let next = for t in tens { plus_one(t) };
        let total = sum_all(next);
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.status("list"), Some(NodeStatus::Cached));
    assert_eq!(
        run.branches(p.tens)
            .unwrap()
            .iter()
            .map(|t| t.0)
            .collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert_eq!(run.get(p.total).unwrap().0, 63);
    // The list was read from the store, and the map's branches made before anything was
    // submitted: both maps and the total went in the first pass.
    let specs = job_specs(&run);
    assert_eq!(specs.len(), 7, "{specs:?}");
    assert!(!specs.iter().any(|s| s.starts_with("list")), "{specs:?}");
    let log = std::fs::read_to_string(run.run_dir().unwrap().join("run.log")).unwrap();
    let passes: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            ["branches made", "submitting"]
                .into_iter()
                .find(|m| l.contains(m))
        })
        .collect();
    assert_eq!(
        passes,
        ["branches made", "branches made", "submitting"],
        "{log}"
    );
}

/// A map over a stored list of more elements than a run makes branches fails its node
/// when its branches would be made, before any job of it is submitted.
fn a_map_over_more_elements_than_a_run_makes_fails_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let n = (1 << 20) + 1;
    let mut b = Pipeline::builder("slurm-map-too-many");
    b.add("list", spread::node(n)).unwrap();
    let listed = Runner::new(dir.path()).run(&b.build()).unwrap();
    assert_eq!(listed.count(NodeStatus::Ran), 1, "{listed}");

    let p = pipeline! {
        name = "slurm-map-too-many";
        let list = spread(n);
        let tens = for x in list { tenfold(x) };
    };
    let run = slurm_runner(dir.path()).run(&p).unwrap();
    assert_eq!(run.status("list"), Some(NodeStatus::Cached), "{run}");
    assert_eq!(run.status("tens"), Some(NodeStatus::Failed), "{run}");
    assert_eq!(
        run.node("tens").unwrap().error().unwrap().to_string(),
        "the map would make 1048577 branches, more than the 1048576 a run may make"
    );
    assert_eq!(job_specs(&run), Vec::<String>::new());
}

/// How long a controller that is up takes at most to answer `sinfo`; one that is down keeps
/// it retrying for about ten seconds.
const CONTROLLER_ANSWERS: Duration = Duration::from_secs(3);

/// Whether `program arg` exits successfully within `limit` (it is killed after that).
fn succeeds_within(program: &str, arg: &str, limit: Duration) -> bool {
    let Ok(mut child) = Command::new(program)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[pipewright::main]
fn main() -> std::process::ExitCode {
    let missing = if !succeeds_within("sbatch", "--version", Duration::from_secs(10)) {
        Some("no sbatch here (start a cluster with .ci/slurm-up.sh)")
    } else if !succeeds_within("sinfo", "--noheader", CONTROLLER_ANSWERS) {
        Some("no Slurm controller answers (start a cluster with .ci/slurm-up.sh)")
    } else {
        None
    };
    // The slowest scenario starts first, on a thread of its own, while the others run one
    // after the other on the second thread.
    let scenarios: [(&str, fn()); 16] = [
        (
            "a_job_past_its_time_limit_ends_as_timeout",
            a_job_past_its_time_limit_ends_as_timeout,
        ),
        (
            "a_diamond_runs_as_jobs_and_then_from_the_store",
            a_diamond_runs_as_jobs_and_then_from_the_store,
        ),
        (
            "a_failure_cancels_what_is_below_and_a_rerun_submits_only_that",
            a_failure_cancels_what_is_below_and_a_rerun_submits_only_that,
        ),
        (
            "a_fan_out_of_fifty_is_one_job_array",
            a_fan_out_of_fifty_is_one_job_array,
        ),
        (
            "a_task_past_its_timeout_fails",
            a_task_past_its_timeout_fails,
        ),
        ("resource_hints_reach_the_job", resource_hints_reach_the_job),
        ("cancelling_cancels_the_jobs", cancelling_cancels_the_jobs),
        (
            "parameters_reach_the_jobs_intact",
            parameters_reach_the_jobs_intact,
        ),
        (
            "input_and_output_files_behave_in_jobs_as_in_process",
            input_and_output_files_behave_in_jobs_as_in_process,
        ),
        (
            "maps_run_as_job_arrays_with_the_keys_they_have_in_process",
            maps_run_as_job_arrays_with_the_keys_they_have_in_process,
        ),
        (
            "a_failed_branch_fails_alone_with_what_is_below_it",
            a_failed_branch_fails_alone_with_what_is_below_it,
        ),
        (
            "a_stored_list_is_mapped_at_once",
            a_stored_list_is_mapped_at_once,
        ),
        (
            "a_branch_can_be_a_target_and_be_forced",
            a_branch_can_be_a_target_and_be_forced,
        ),
        (
            "a_refused_submission_fails_what_is_below_it",
            a_refused_submission_fails_what_is_below_it,
        ),
        (
            "a_map_over_a_failed_map_runs_the_branches_it_can",
            a_map_over_a_failed_map_runs_the_branches_it_can,
        ),
        (
            "a_map_over_more_elements_than_a_run_makes_fails_its_node",
            a_map_over_more_elements_than_a_run_makes_fails_its_node,
        ),
    ];
    support::run_trials_on(
        scenarios
            .into_iter()
            .map(|(name, test)| {
                support::needing(
                    name,
                    test,
                    missing.map(str::to_owned),
                    "PIPEWRIGHT_REQUIRE_SLURM",
                )
            })
            .collect(),
        2,
    )
}

/// The record of the run in `run_dir` as its journal alone says, without `run.json`.
fn journaled_record(run_dir: &Path) -> pipewright::record::RunRecord {
    let only = tempfile::tempdir().unwrap();
    std::fs::copy(
        run_dir.join("journal.jsonl"),
        only.path().join("journal.jsonl"),
    )
    .unwrap();
    pipewright::record::RunRecord::read(only.path()).unwrap()
}

/// A branch's name, status, failed upstream branch and error, as a record says.
type Branch = (String, String, Option<String>, Vec<String>);

/// Each branch as the run's journal alone says.
fn journaled_branches(run_dir: &Path) -> Vec<Branch> {
    recorded_branches(&journaled_record(run_dir))
}

/// Each branch as `record` says.
fn recorded_branches(record: &pipewright::record::RunRecord) -> Vec<Branch> {
    record
        .nodes
        .iter()
        .flat_map(|n| &n.branches)
        .map(|b| {
            (
                b.name.clone(),
                format!("{:?}", b.status),
                b.upstream_failed.clone(),
                b.error.clone(),
            )
        })
        .collect()
}
