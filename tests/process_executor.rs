//! The process executor: every task runs in a child process (this test's own executable,
//! re-entered as a worker through `#[pipewright::main]`), so an abort, a segfault, an exit,
//! a stack overflow or running out of memory fails that node only.
//!
//! This file has its own `main`, which the workers need; each scenario is a function.

// The segfault is a real one, inside a C library call, as a broken native library makes it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipewright::prelude::*;
use pipewright::{TaskError, WorkerExit};

mod support;
use support::{names, with_status, write_dated};

/// A value and the process that computed it.
type Stamped = (u64, u32);

#[task]
fn source(x: u64) -> Stamped {
    (x, std::process::id())
}

#[task]
fn add(a: &Stamped, b: &Stamped) -> Stamped {
    (a.0 + b.0, std::process::id())
}

#[task]
fn double(a: &Stamped) -> Stamped {
    (a.0 * 2, std::process::id())
}

#[task]
fn sum_all(parts: &[&Stamped]) -> Stamped {
    (parts.iter().map(|p| p.0).sum(), std::process::id())
}

fn the_diamond_runs_in_workers() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-diamond";
        let a = source(20);
        let b = double(a);
        let c = source(1);
        let d = add(b, c);
        let e = sum_all([a, b, c, d]);
    };
    let runner = Runner::new(dir.path()).jobs(2).executor(Executor::Process);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.count(NodeStatus::Ran), 5);
    assert_eq!(run.get(p.d).unwrap().0, 41);
    assert_eq!(run.get(p.e).unwrap().0, 20 + 40 + 1 + 41);
    // Each node ran in a process of its own, none in this one.
    let pids: std::collections::BTreeSet<u32> = [
        run.get(p.a).unwrap().1,
        run.get(p.b).unwrap().1,
        run.get(p.c).unwrap().1,
        run.get(p.d).unwrap().1,
        run.get(p.e).unwrap().1,
    ]
    .into();
    assert_eq!(pids.len(), 5, "{pids:?}");
    assert!(!pids.contains(&std::process::id()));
    // Each node has its job and its log in the run directory.
    let run_dir = run.run_dir().unwrap();
    for node in ["a", "b", "c", "d", "e"] {
        assert!(
            run_dir.join(format!("jobs/{node}.json")).is_file(),
            "{node}"
        );
        assert!(run_dir.join(format!("logs/{node}.log")).is_file(), "{node}");
    }

    // The workers' entries are the cache: nothing runs again, in or out of process.
    let again = runner.run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 5, "{again}");
    let in_process = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(in_process.count(NodeStatus::Cached), 5, "{in_process}");
    assert_eq!(in_process.get(p.e).unwrap().0, 102);
}

unsafe extern "C" {
    fn strlen(s: *const std::ffi::c_char) -> usize;
}

#[task]
fn segfault(x: &Stamped) -> Stamped {
    // SAFETY: none; this crashes on purpose, in C, as a buggy native library would.
    let n = unsafe { strlen(std::ptr::null()) };
    (x.0 + n as u64, 0)
}

#[task]
fn abort(x: &Stamped) -> Stamped {
    if x.0 < u64::MAX {
        std::process::abort();
    }
    *x
}

#[task]
fn exit3(x: &Stamped) -> Stamped {
    if x.0 < u64::MAX {
        std::process::exit(3);
    }
    *x
}

fn recurse(depth: u64, pad: [u8; 256]) -> u64 {
    let pad = std::hint::black_box(pad);
    if depth == 0 {
        return u64::from(pad[0]);
    }
    recurse(depth - 1, pad) + u64::from(pad[depth as usize % 256])
}

#[task]
fn overflow(x: &Stamped) -> Stamped {
    (recurse(u64::MAX / 2 + x.0, [1; 256]), 0)
}

/// Allocates (and touches) 4 GiB, under a memory limit of 256 MiB.
#[task(mem = "256M")]
fn hungry(x: &Stamped) -> Stamped {
    let big = vec![1u8; 4 << 30];
    (x.0 + u64::from(big[big.len() - 1]), 0)
}

#[task]
fn panics(x: &Stamped) -> Stamped {
    panic!("no good value for {}", x.0)
}

#[task]
fn gives_up(x: &Stamped) -> Result<Stamped, pipewright::Cancelled> {
    let _ = x;
    Err(pipewright::Cancelled)
}

/// A task that says it was cancelled, in a worker, ends its node as cancelled, and what is
/// below it too, as in process.
fn a_task_that_says_cancelled_in_a_worker_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-gives-up";
        let a = source(1);
        let quit = gives_up(a);
        let below = double(quit);
        let other = double(a);
    };
    let run = Runner::new(dir.path())
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Cancelled),
        names(&["below", "quit"]),
        "{run}"
    );
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["a", "other"]),
        "{run}"
    );
    assert_eq!(run.count(NodeStatus::Failed), 0, "{run}");
}

#[task]
fn fails(x: &Stamped) -> Result<Stamped, String> {
    Err(format!("cannot use {}", x.0))
}

#[task]
fn talks(x: &Stamped) -> Stamped {
    println!("a line on stdout");
    eprintln!("a line on stderr");
    *x
}

fn the_error(run: &RunReport, node: &str) -> String {
    let node = run.node(node).unwrap();
    assert_eq!(node.status(), NodeStatus::Failed, "{}", node.name());
    node.error().unwrap().to_string()
}

fn worker_exit<'r>(run: &'r RunReport, node: &str) -> &'r WorkerExit {
    match run.node(node).unwrap().error() {
        Some(TaskError::Crashed(exit)) => exit,
        other => panic!("`{node}` did not crash: {other:?}"),
    }
}

fn crashes_fail_their_node_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-crashes";
        let x = source(1);
        let segv = segfault(x);
        let aborted = abort(x);
        let exited = exit3(x);
        let overflowed = overflow(x);
        let oom = hungry(x);
        let panicked = panics(x);
        let failed = fails(x);
        let fine = double(x);
        let talker = talks(fine);
        let below = double(segv);
        let joined = sum_all([fine, aborted]);
    };
    let runner = Runner::new(dir.path()).jobs(2).executor(Executor::Process);
    let run = runner.run(&p).unwrap();

    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["x", "fine", "talker"])
    );
    assert_eq!(run.get(p.talker).unwrap().0, 2);
    assert_eq!(
        with_status(&run, NodeStatus::UpstreamFailed),
        names(&["below", "joined"])
    );

    let segv = worker_exit(&run, "segv");
    assert_eq!(segv.signal, Some(11));
    assert!(
        the_error(&run, "segv").starts_with("the worker process was killed by signal 11 (SIGSEGV)"),
        "{}",
        the_error(&run, "segv")
    );
    assert_eq!(worker_exit(&run, "aborted").signal, Some(6));
    assert!(the_error(&run, "aborted").contains("signal 6 (SIGABRT)"));

    let exited = worker_exit(&run, "exited");
    assert_eq!((exited.code, exited.signal), (Some(3), None));
    assert!(
        the_error(&run, "exited").starts_with("the worker process exited with code 3"),
        "{}",
        the_error(&run, "exited")
    );

    let overflowed = worker_exit(&run, "overflowed");
    assert!(overflowed.signal.is_some(), "{overflowed:?}");
    assert!(
        overflowed.last_output.contains("has overflowed its stack"),
        "{overflowed:?}"
    );

    let oom = worker_exit(&run, "oom");
    assert_eq!(oom.signal, Some(6), "{oom:?}");
    assert!(
        oom.last_output
            .contains("memory allocation of 4294967296 bytes failed"),
        "{oom:?}"
    );

    assert_eq!(
        the_error(&run, "panicked"),
        "task panicked: no good value for 1"
    );
    assert!(matches!(
        run.node("panicked").unwrap().error(),
        Some(TaskError::Panicked(_))
    ));
    assert_eq!(the_error(&run, "failed"), "cannot use 1");

    // The task's own output went to its log.
    let log = std::fs::read_to_string(run.run_dir().unwrap().join("logs/talker.log")).unwrap();
    assert!(log.contains("a line on stdout"), "{log}");
    assert!(log.contains("a line on stderr"), "{log}");
    // The failure record names the signal too.
    let record = std::fs::read_to_string(run.run_dir().unwrap().join("failures/segv.txt")).unwrap();
    assert!(record.contains("SIGSEGV"), "{record}");
    // No half-written entry of a crashed node is left in the store.
    for task in ["segfault", "abort", "exit3", "overflow", "hungry"] {
        let dir = dir.path().join(task);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{task}: {left:?}");
    }

    // What succeeded is cached; the crashes are tried again, and crash again.
    let again = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&again, NodeStatus::Cached),
        names(&["x", "fine", "talker"])
    );
    assert_eq!(again.count(NodeStatus::Failed), 7);
}

/// Writes this process's id to `pid_file`, then sleeps without looking at its context.
#[task(timeout = "1s")]
fn stuck(pid_file: PathBuf, done_file: PathBuf) -> Stamped {
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
    std::fs::write(&done_file, b"woke up").unwrap();
    (1, 0)
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn a_worker_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let done_file = dir.path().join("done");
    let p = pipeline! {
        name = "process-timeout";
        let s = stuck(pid_file.clone(), done_file.clone());
        let after = double(s);
    };
    let run = Runner::new(dir.path().join("data"))
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert!(matches!(
        run.node("s").unwrap().error(),
        Some(TaskError::TimedOut(t)) if *t == Duration::from_secs(1)
    ));
    assert_eq!(run.status("after"), Some(NodeStatus::UpstreamFailed));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(gone(&pid), "worker {pid} still runs");
    assert!(!done_file.exists());
}

/// Crashes on its first attempt, succeeds on the second.
#[task(retries = 1)]
fn flaky(x: &Stamped, ctx: &Ctx) -> Stamped {
    if ctx.attempt() == 1 {
        std::process::abort();
    }
    (x.0 + 100, ctx.attempt())
}

fn a_crash_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-retry";
        let x = source(1);
        let y = flaky(x);
    };
    let run = Runner::new(dir.path())
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.get(p.y).unwrap(), &(101, 2));
    let log = std::fs::read_to_string(run.run_dir().unwrap().join("run.log")).unwrap();
    assert!(log.contains("attempt failed"), "{log}");
}

/// Writes its process id to `pid_file`, then sleeps.
#[task]
fn sleeper(x: &Stamped, pid_file: PathBuf) -> Stamped {
    std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
    *x
}

/// Prints 2 MiB of lines, then its last words, then aborts.
#[task]
fn loud_abort(x: &Stamped) -> Stamped {
    for i in 0..32 << 10 {
        println!("line {i:>6} of the noise before the crash, {:>20}", x.0);
    }
    eprintln!("the last words before the crash");
    std::process::abort();
}

fn a_crash_quotes_the_end_of_a_long_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-long-log";
        let x = source(1);
        let loud = loud_abort(x);
    };
    let run = Runner::new(dir.path())
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    let exit = worker_exit(&run, "loud");
    assert!(
        std::fs::metadata(&exit.log).unwrap().len() > 2 << 20,
        "the log is over 2 MiB"
    );
    assert!(
        exit.last_output
            .ends_with("the last words before the crash"),
        "{}",
        exit.last_output
    );
    assert!(
        exit.last_output.contains("line  32767 of the noise"),
        "{}",
        exit.last_output
    );
}

/// Starts a process that writes its id to `pid_file` and sleeps, and leaves it running.
#[task]
#[expect(
    clippy::zombie_processes,
    reason = "the process is left running on purpose"
)]
fn leaves_a_child(x: &Stamped, pid_file: PathBuf) -> Stamped {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 1000")
        .arg(&pid_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !pid_file.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    *x
}

fn what_a_task_started_ends_with_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let p = pipeline! {
        name = "process-grandchild";
        let x = source(2);
        let y = leaves_a_child(x, pid_file.clone());
    };
    let run = Runner::new(dir.path().join("data"))
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert!(run.succeeded(), "{run}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    // The kill is sent before the run ends; give the system a moment to carry it out.
    let start = Instant::now();
    while !gone(pid) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended = gone(pid);
    if !ended {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    assert!(ended, "process {pid}, started by the task, still runs");
}

fn cancelling_kills_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let p = pipeline! {
        name = "process-cancel";
        let x = source(5);
        let slow = sleeper(x, pid_file.clone());
        let after = double(slow);
    };
    let runner = Runner::new(dir.path().join("data")).executor(Executor::Process);
    let cancel = runner.cancel_handle();
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| runner.run(&p));
        let start = Instant::now();
        while !pid_file.exists() {
            assert!(start.elapsed() < Duration::from_secs(60), "never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        cancel.cancel();
        run.join().unwrap().unwrap()
    });
    assert!(run.cancelled());
    assert_eq!(run.status("x"), Some(NodeStatus::Ran));
    assert_eq!(run.status("slow"), Some(NodeStatus::Cancelled));
    assert_eq!(run.status("after"), Some(NodeStatus::Cancelled));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(gone(&pid), "worker {pid} still runs");
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    assert_eq!(record.status, "cancelled");

    // The next run starts from what finished.
    assert_eq!(runner.plan(&p).unwrap().counts(), (1, 1, 1));
}

fn the_command_line_takes_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-cli";
        let x = source(3);
        let y = double(x);
    };
    let data = dir.path().display().to_string();
    let mut out = Vec::new();
    let code = pipewright::cli::run_with(
        &p,
        [
            "prog",
            "--data",
            &data,
            "run",
            "--executor",
            "process",
            "-v",
        ],
        &mut out,
    );
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{out}");
    assert!(out.contains("2 nodes: 2 ran"), "{out}");
    let stamped = Runner::new(dir.path()).run(&p).unwrap();
    assert_ne!(stamped.get(p.y).unwrap().1, std::process::id());
}

/// What a worker received: each parameter, floats by their bits and maps sorted, and the
/// worker's process id.
type Carried = (
    u64,
    u128,
    Vec<((u32, u32), String)>,
    Vec<(i64, String)>,
    u32,
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
        std::process::id(),
    )
}

fn parameters_reach_the_workers_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("process-params");
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
    let runner = Runner::new(dir.path()).jobs(2).executor(Executor::Process);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.count(NodeStatus::Ran), 6, "{run}");
    for (handle, (bits, big, pairs, ints)) in &expected {
        let carried = run.get(*handle).unwrap();
        assert_eq!(
            (&carried.0, &carried.1, &carried.2, &carried.3),
            (bits, big, pairs, ints)
        );
        assert_ne!(carried.4, std::process::id());
    }
    // The workers stored under the parent's keys.
    let again = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 6, "{again}");
}

/// Writes a page in its work directory, in a worker.
#[task]
fn page(title: String, ctx: &Ctx) -> std::io::Result<pipewright::OutputFile> {
    let file = pipewright::OutputFile::new(ctx, "page.md")?;
    std::fs::write(file.path(), format!("# {title}\n{}\n", title.len()))?;
    Ok(file)
}

/// Reads the page its input names, in another worker.
#[task]
fn page_text(page: &pipewright::OutputFile) -> std::io::Result<(String, u32)> {
    Ok((std::fs::read_to_string(page.path())?, std::process::id()))
}

fn output_files_are_committed_and_published_by_workers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("site/page.md");
    let build = |title: &str| {
        pipeline! {
            name = "process-files";
            let md = page(title.to_string());
            let text = page_text(md);
        }
    };
    let p = build("Workers");
    let runner = Runner::new(&data)
        .jobs(2)
        .executor(Executor::Process)
        .keep(p.md)
        .publish(p.md, &out);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    let key = run.node("md").unwrap().key().unwrap().to_owned();
    let stored = data.join("page").join(&key).join("work/page.md");
    assert_eq!(run.get(p.md).unwrap().path(), stored);
    let (text, pid) = run.get(p.text).unwrap();
    assert_eq!(text, "# Workers\n7\n");
    assert_ne!(*pid, std::process::id());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# Workers\n7\n");
    assert_eq!(run.published().len(), 1);

    // A published file deleted comes back; nothing runs.
    std::fs::remove_file(&out).unwrap();
    let again = runner.run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 2, "{again}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# Workers\n7\n");

    // A file deleted from the store is damage: its node runs again, in a worker.
    std::fs::remove_file(&stored).unwrap();
    let again = runner.run(&p).unwrap();
    assert_eq!(with_status(&again, NodeStatus::Ran), names(&["md"]));
    assert!(
        matches!(
            again.node("md").unwrap().reason(),
            Some(pipewright::RunReason::Damaged(why)) if why.contains("`page.md` is missing")
        ),
        "{:?}",
        again.node("md").unwrap().reason()
    );
    assert!(stored.is_file());
    // The same bytes again: its consumer stays cached.
    assert_eq!(with_status(&again, NodeStatus::Cached), names(&["text"]));

    // Changed in the store, likewise.
    std::fs::write(&stored, "# Elsewhere\n9\n").unwrap();
    let again = runner.run(&p).unwrap();
    assert_eq!(with_status(&again, NodeStatus::Ran), names(&["md"]));
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "# Workers\n7\n");

    // The node changes: the published file follows.
    let p = build("Changed");
    let runner = Runner::new(&data)
        .executor(Executor::Process)
        .publish(p.md, &out);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 2, "{run}");
    assert_eq!(run.get(p.text).unwrap().0, "# Changed\n7\n");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# Changed\n7\n");
}

#[task]
fn spread(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

#[task]
fn tenfold(x: &u64, ctx: &Ctx) -> (u64, u32, String) {
    (x * 10, std::process::id(), ctx.node().to_owned())
}

#[task]
fn restamp(x: &(u64, u32, String)) -> Stamped {
    (x.0 + 1, std::process::id())
}

fn branches_run_in_workers_with_the_keys_they_have_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let build = |n: u64| {
        pipeline! {
            name = "process-map";
            let list = spread(n);
            let tens = for x in list { tenfold(x) };
            let next = for t in tens { restamp(t) };
            let total = sum_all(next);
        }
    };
    let p = build(3);
    let workers = Runner::new(dir.path())
        .jobs(2)
        .executor(Executor::Process)
        .keep_branches(p.tens);
    let run = workers.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    let tens = run.branches(p.tens).unwrap();
    assert_eq!(tens.iter().map(|t| t.0).collect::<Vec<_>>(), [10, 20, 30]);
    // Each branch ran in a worker, which saw the mapped node's name.
    assert!(
        tens.iter()
            .all(|t| t.1 != std::process::id() && t.2 == "tens")
    );
    assert_eq!(run.get(p.total).unwrap().0, 11 + 21 + 31);
    for name in ["tens[0]", "tens[2]", "next[1]"] {
        assert_eq!(run.status(name), Some(NodeStatus::Ran), "{name}");
    }

    // The branches' entries are those the in-process executor looks for.
    let here = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(here.count(NodeStatus::Ran), 0, "{here}");
    assert_eq!(here.get(p.total).unwrap().0, 63);

    // One more element: one more branch of each map runs, in a worker.
    let p = build(4);
    let run = workers.keep_branches(p.tens).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.status("tens[3]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("next[3]"), Some(NodeStatus::Ran));
    for name in [
        "tens[0]", "tens[1]", "tens[2]", "next[0]", "next[1]", "next[2]",
    ] {
        assert_eq!(run.status(name), Some(NodeStatus::Cached), "{name}");
    }
    assert_ne!(run.branches(p.tens).unwrap()[3].1, std::process::id());
    assert_eq!(run.get(p.total).unwrap().0, 63 + 41);
}

#[task]
fn crash_on_two(x: &u64) -> Stamped {
    if *x == 2 {
        std::process::abort();
    }
    (*x, std::process::id())
}

fn a_crashed_branch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "process-map-crash";
        let list = spread(3);
        let each = for x in list { crash_on_two(x) };
        let total = sum_all(each);
    };
    let run = Runner::new(dir.path())
        .jobs(2)
        .executor(Executor::Process)
        .run(&p)
        .unwrap();
    assert_eq!(run.status("each[1]"), Some(NodeStatus::Failed));
    assert_eq!(worker_exit(&run, "each[1]").signal, Some(6));
    assert_eq!(run.status("each[0]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("each[2]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("total"), Some(NodeStatus::UpstreamFailed));
}

#[pipewright::main]
fn main() -> std::process::ExitCode {
    support::run_scenarios(&[
        ("the_diamond_runs_in_workers", the_diamond_runs_in_workers),
        ("crashes_fail_their_node_only", crashes_fail_their_node_only),
        (
            "a_task_that_says_cancelled_in_a_worker_is_cancelled",
            a_task_that_says_cancelled_in_a_worker_is_cancelled,
        ),
        (
            "a_worker_past_its_timeout_is_killed",
            a_worker_past_its_timeout_is_killed,
        ),
        ("a_crash_is_retried", a_crash_is_retried),
        (
            "a_crash_quotes_the_end_of_a_long_log",
            a_crash_quotes_the_end_of_a_long_log,
        ),
        (
            "what_a_task_started_ends_with_its_node",
            what_a_task_started_ends_with_its_node,
        ),
        ("cancelling_kills_the_workers", cancelling_kills_the_workers),
        (
            "the_command_line_takes_the_executor",
            the_command_line_takes_the_executor,
        ),
        (
            "parameters_reach_the_workers_intact",
            parameters_reach_the_workers_intact,
        ),
        (
            "input_files_are_tracked_by_content_in_workers",
            input_files_are_tracked_by_content_in_workers,
        ),
        (
            "output_files_are_committed_and_published_by_workers",
            output_files_are_committed_and_published_by_workers,
        ),
        (
            "branches_run_in_workers_with_the_keys_they_have_in_process",
            branches_run_in_workers_with_the_keys_they_have_in_process,
        ),
        ("a_crashed_branch_fails_alone", a_crashed_branch_fails_alone),
    ])
}

#[task]
fn read_file(file: pipewright::InputFile) -> (String, u32) {
    (
        std::fs::read_to_string(file.path()).unwrap_or_default(),
        std::process::id(),
    )
}

fn input_files_are_tracked_by_content_in_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    write_dated(&a, "alpha", 0);
    write_dated(&b, "beta", 0);
    let mut p = Pipeline::builder("process-files");
    p.add("a", read_file::node(pipewright::InputFile::new(&a)))
        .unwrap();
    p.add("b", read_file::node(pipewright::InputFile::new(&b)))
        .unwrap();
    let p = p.build();
    let runner = Runner::new(dir.path().join("data"))
        .jobs(2)
        .executor(Executor::Process);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.get_as::<(String, u32)>("a").unwrap().0, "alpha");
    assert_ne!(
        run.get_as::<(String, u32)>("a").unwrap().1,
        std::process::id()
    );

    // Edited: only its node runs, in a worker that makes the parent's key of it.
    write_dated(&b, "betamax", 10);
    let run = runner.run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["b"]), "{run}");
    assert_eq!(run.get_as::<(String, u32)>("b").unwrap().0, "betamax");
    // Touched: nothing runs.
    write_dated(&a, "alpha", 20);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 2, "{run}");

    // Missing: the node fails in the parent, naming the file.
    std::fs::remove_file(&a).unwrap();
    let run = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Failed),
        names(&["a"]),
        "{run}"
    );
    match run.node("a").unwrap().error() {
        Some(TaskError::InputFile { path, .. }) => assert_eq!(path, &a),
        other => panic!("not an input file error: {other:?}"),
    }
}
