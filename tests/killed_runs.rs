//! Runs killed (`kill -9`). One killed while a task writes its entry: garbage collection
//! beside it keeps what it uses, `status` shows the nodes that finished while it runs and
//! once it is killed, then as interrupted, and the next run of the same key removes the
//! half-written entry it left. Others killed in the middle of many commits: every entry
//! they committed is whole, and the next run uses it and computes the rest.
//!
//! This file has its own `main`: the test re-runs its own executable as the run that is
//! killed (`PIPEWRIGHT_CHILD` names which).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use pipewright::cli;
use pipewright::prelude::*;
use pipewright::record::RecordedStatus;

mod support;

use support::store;

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

/// The names under `dir` that start with a dot.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
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

impl Killed {
    /// This test program again, as the child `role`, working in `dir`.
    fn spawn(role: &str, dir: &Path) -> Killed {
        Killed(
            Command::new(std::env::current_exe().unwrap())
                .env("PIPEWRIGHT_CHILD", role)
                .env("PIPEWRIGHT_DIR", dir)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits, looking every `every`, until `done`; fails, saying that `what` never happened,
/// after two minutes.
fn wait_until(what: &str, every: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(every);
    }
}

fn a_killed_run_is_interrupted_and_its_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline(dir.path());
    fs::write(dir.path().join("hang"), b"").unwrap();
    let mut child = Killed::spawn("1", dir.path());
    let ready = dir.path().join("ready");
    wait_until("the task never started", Duration::from_millis(20), || {
        ready.exists()
    });

    // Beside the run in progress: its record, its entries and the temporary directory
    // its task writes in stay.
    let (_, out) = cli(&p, &data, &["gc", "--keep-runs", "0"]);
    assert!(
        out.starts_with("removed 0 entries and 0 run records"),
        "{out}"
    );
    let run_dir = the_run(&data);
    let entries = store::entries(&data);
    assert_eq!(entries.len(), 1, "the entry of `first`: {entries:?}");
    assert_eq!(entries[0].task, "first");
    let writing = hidden(&data.join("slow_write"));
    assert_eq!(writing.len(), 1, "{writing:?}");
    assert!(writing[0].starts_with(".tmp-"), "{writing:?}");

    // While it runs, `status` shows what finished, and what did not as pending.
    let (_, out) = cli(&p, &data, &["status"]);
    assert!(out.contains("running in process "), "{out}");
    let status = |node: &str| line_of(&out, node).split_whitespace().nth(1);
    assert_eq!(status("numbers"), Some("ran"), "{out}");
    assert_eq!(status("sum"), Some("pending"), "{out}");

    child.0.kill().unwrap();
    child.0.wait().unwrap();

    // Killed: the record still says running, the half-written entry is there, and the
    // index holds no row of it.
    assert_eq!(status_in(&run_dir), "running");
    assert_eq!(hidden(&data.join("slow_write")), writing);
    assert_eq!(store::entries(&data).len(), 1);
    let (_, out) = cli(&p, &data, &["status"]);
    assert!(out.contains("interrupted: its process ("), "{out}");
    assert!(line_of(&out, "numbers").contains(" ran "), "{out}");
    assert!(!line_of(&out, "sum").contains(" ran "), "{out}");

    // The next run of the same key removes what the killed one left.
    fs::remove_file(dir.path().join("hang")).unwrap();
    let (code, out) = cli(&p, &data, &["run", "--quiet"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(hidden(&data.join("slow_write")), Vec::<String>::new());
    let sum = store::entry_of(&data, "sum");
    assert!(sum.work, "{sum:?}");
    assert_eq!(
        fs::read_dir(store::entry_dir(&data, &sum).join("work"))
            .unwrap()
            .count(),
        4
    );

    // Garbage collection records the killed run as interrupted.
    let (_, out) = cli(&p, &data, &["gc", "--keep-runs", "5"]);
    assert!(out.contains("; 1 interrupted run\n"), "{out}");
    assert_eq!(status_in(&run_dir), "interrupted");
}

#[task]
fn quick(i: u64) -> u64 {
    i + 1
}

/// `i + 1`, once `ready` exists.
#[task]
fn once_ready(i: u64, ready: PathBuf) -> u64 {
    while !ready.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    i + 1
}

/// Says so in `ready`, then sleeps until it is killed.
#[task]
fn hang_ready(ready: PathBuf) -> u64 {
    fs::write(&ready, b"").unwrap();
    std::thread::sleep(Duration::from_secs(1000));
    0
}

/// A quick node, whose entry is queued to be committed with others, and beside it a node
/// that hangs. The quick one returns only once the other runs, so that no node asks the
/// store for anything once its entry is queued.
fn queued_pipeline(dir: &Path) -> Pipeline {
    let mut b = Pipeline::builder("queued");
    b.add("fresh", once_ready::node(1, dir.join("ready")))
        .unwrap();
    b.add("hang", hang_ready::node(dir.join("ready"))).unwrap();
    b.build()
}

/// A run killed while the entry of a node that ran is queued, not committed (another
/// connection holds the index's write lock): neither its journal nor `status` says that
/// the node's entry is stored, and the next run computes it again.
fn a_run_killed_with_an_entry_queued_does_not_record_it_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The index, made by a run of another pipeline.
    let mut b = Pipeline::builder("first");
    b.add("zero", quick::node(0)).unwrap();
    assert!(Runner::new(&data).run(&b.build()).unwrap().succeeded());
    let earlier: Vec<PathBuf> = fs::read_dir(data.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let writer = store::open(&data);
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut child = Killed::spawn("queued", dir.path());
    let run_dir = || {
        fs::read_dir(data.join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|path| !earlier.contains(path))
    };
    // Once `hang` runs, and the journal has the line of `fresh`.
    let settled = |run_dir: &Path| {
        pipewright::record::RunRecord::read(run_dir)
            .is_ok_and(|record| record.nodes[0].status == RecordedStatus::Ran)
    };
    wait_until("`fresh` never settled", Duration::from_millis(20), || {
        dir.path().join("ready").exists() && run_dir().is_some_and(|run| settled(&run))
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);

    let run_dir = run_dir().unwrap();
    assert!(
        store::entries(&data)
            .iter()
            .all(|entry| entry.node != "fresh"),
        "the entry of `fresh` was committed"
    );
    let record = pipewright::record::RunRecord::read(&run_dir).unwrap();
    let fresh = &record.nodes[0];
    assert_eq!(
        (fresh.name.as_str(), fresh.status, fresh.uncommitted),
        ("fresh", RecordedStatus::Ran, true)
    );
    let p = queued_pipeline(dir.path());
    let (_, out) = cli(&p, &data, &["status", run_dir.to_str().unwrap()]);
    assert!(out.contains("interrupted: its process ("), "{out}");
    let line = line_of(&out, "fresh");
    assert!(line.contains(" ran "), "{out}");
    assert!(
        line.ends_with("its entry is not recorded as stored"),
        "{out}"
    );
    assert!(line_of(&out, "hang").contains(" pending"), "{out}");

    // The next run computes it again.
    let mut b = Pipeline::builder("queued");
    let fresh = b
        .add("fresh", once_ready::node(1, dir.path().join("ready")))
        .unwrap();
    let run = Runner::new(&data).run(&b.build()).unwrap();
    assert_eq!(run.node("fresh").unwrap().status(), NodeStatus::Ran);
    assert_eq!(*run.get(fresh).unwrap(), 2);
    // Its journal, read as a killed run's would be, says that the entry is stored.
    let copy = dir.path().join("copy");
    fs::create_dir(&copy).unwrap();
    let journal = run.run_dir().unwrap().join("journal.jsonl");
    fs::copy(&journal, copy.join("journal.jsonl")).unwrap();
    let record = pipewright::record::RunRecord::read(&copy).unwrap();
    assert_eq!(
        (record.nodes[0].status, record.nodes[0].uncommitted),
        (RecordedStatus::Ran, false)
    );
}

/// How many nodes the run killed in the middle of its commits has.
const PIECES: u64 = 240;

/// Node `i`'s output: a file of its own for every third node, else held in the index; and
/// a work directory for every fifth. It takes a few milliseconds, so that the run is
/// still committing when it is killed.
#[task]
fn piece(i: u64, ctx: &Ctx) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(1));
    if i.is_multiple_of(5) {
        let work = ctx.work_dir().unwrap();
        fs::write(work.join("part"), vec![i as u8; 300_000]).unwrap();
    }
    expected_piece(i)
}

fn expected_piece(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(3) { 600_000 } else { 100 } + i as usize;
    vec![i as u8; len]
}

fn pieces() -> (Pipeline, Vec<Handle<Vec<u8>>>) {
    let mut b = Pipeline::builder("pieces");
    let handles = (0..PIECES)
        .map(|i| b.add(format!("p{i}"), piece::node(i)).unwrap())
        .collect();
    (b.build(), handles)
}

/// Every entry in the store of `data`, by node, each checked whole.
fn whole_entries(data: &Path) -> Vec<String> {
    let mut nodes = Vec::new();
    for entry in store::entries(data) {
        if let Err(why) = store::whole(data, &entry) {
            panic!("the entry of `{}` is not whole: {why}", entry.node);
        }
        nodes.push(entry.node);
    }
    nodes.sort();
    nodes
}

/// Runs of `pieces` killed (`kill -9`) three times, each once the index holds more entries:
/// what each left is a consistent index of whole entries, and the next run uses every one
/// of them, computes the others, and leaves nothing of the killed runs behind.
fn runs_killed_in_the_middle_of_their_commits_leave_only_whole_entries() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut committed = Vec::new();
    for at in [10, 50, 90, 130, 170, 210] {
        let mut child = Killed::spawn("pieces", dir.path());
        wait_until(
            &format!("the run never committed {at} entries"),
            Duration::from_millis(2),
            || store::count(&data) >= at,
        );
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "the run ended before it was killed ({status})"
        );
        let integrity: String = store::open(&data)
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let now = whole_entries(&data);
        eprintln!(
            "killed at {} entries, leaving {:?}",
            now.len(),
            hidden(&data.join("piece"))
        );
        assert!(
            committed.iter().all(|node| now.contains(node)),
            "an entry committed before is gone"
        );
        committed = now;
    }
    assert!((committed.len() as u64) < PIECES, "{committed:?}");

    let (p, handles) = pieces();
    let runner = handles
        .iter()
        .fold(Runner::new(&data).jobs(2), |runner, h| runner.keep(*h));
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(support::with_status(&run, NodeStatus::Cached), committed);
    let ran = support::with_status(&run, NodeStatus::Ran);
    assert_eq!(ran.len() + committed.len(), PIECES as usize);
    for node in &ran {
        let reason = run.node(node).unwrap().reason().unwrap().to_string();
        assert_eq!(reason, "no entry", "{node}");
    }
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(*run.get(*h).unwrap(), expected_piece(i as u64), "p{i}");
    }
    assert_eq!(whole_entries(&data).len(), PIECES as usize);
    assert_eq!(store::unaccounted(&data, "piece"), Vec::<String>::new());

    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), PIECES as usize);
}

fn main() -> ExitCode {
    if let Some(child) = std::env::var_os("PIPEWRIGHT_CHILD") {
        let dir = PathBuf::from(std::env::var_os("PIPEWRIGHT_DIR").unwrap());
        let data = dir.join("data");
        let _ = if child == "pieces" {
            Runner::new(data).jobs(2).run(&pieces().0)
        } else if child == "queued" {
            Runner::new(data).jobs(2).run(&queued_pipeline(&dir))
        } else {
            Runner::new(data).run(&the_pipeline(&dir))
        };
        return ExitCode::SUCCESS;
    }
    support::run_scenarios(&[
        (
            "a_killed_run_is_interrupted_and_its_leftovers_are_removed",
            a_killed_run_is_interrupted_and_its_leftovers_are_removed,
        ),
        (
            "a_run_killed_with_an_entry_queued_does_not_record_it_as_stored",
            a_run_killed_with_an_entry_queued_does_not_record_it_as_stored,
        ),
        (
            "runs_killed_in_the_middle_of_their_commits_leave_only_whole_entries",
            runs_killed_in_the_middle_of_their_commits_leave_only_whole_entries,
        ),
    ])
}
