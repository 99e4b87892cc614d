//! A node's entry is committed with others, after its consumers may have started: a commit
//! that fails fails its node and everything below it, and a cancelled run loses none of
//! the entries of the nodes that finished, and shows none of the others.

use crate::support;

use std::path::PathBuf;
use std::sync::Mutex;

use pipewright::Cancel;
use pipewright::prelude::*;
use pipewright::record::RecordedStatus;
use support::{count, names, take_runs, with_status};

/// Breaks the store's index while it runs (its table of entries is dropped by another
/// connection), so that the commit of its own entry fails after it returns.
#[task(name = "queued_commits.break_index")]
fn break_index(data: PathBuf, ctx: &Ctx) -> u64 {
    count(ctx);
    let index = rusqlite::Connection::open(data.join(".store").join("index.db")).unwrap();
    index.execute_batch("DROP TABLE entries").unwrap();
    1
}

#[task(name = "queued_commits.next")]
fn next(x: &u64, ctx: &Ctx) -> u64 {
    count(ctx);
    x + 1
}

#[test]
fn a_failed_commit_fails_its_node_and_what_was_computed_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("failed-commit");
    let broken = b
        .add("broken", break_index::node(dir.path().to_owned()))
        .unwrap();
    let second = b.add("second", next::node(broken)).unwrap();
    let third = b.add("third", next::node(second)).unwrap();
    let p = b.build();
    let run = Runner::new(dir.path()).jobs(2).run(&p).unwrap();

    assert!(!run.succeeded(), "{run}");
    assert_eq!(with_status(&run, NodeStatus::Failed), names(&["broken"]));
    let error = run.node("broken").unwrap().error().unwrap();
    assert!(
        matches!(error, pipewright::TaskError::Store(_)),
        "{error:?}"
    );
    let why = std::error::Error::source(error).unwrap().to_string();
    assert!(why.starts_with("cannot write the store index"), "{why}");
    // The nodes below started from the output in memory before the commit failed, and are
    // reported as never having had an input.
    assert_eq!(
        with_status(&run, NodeStatus::UpstreamFailed),
        names(&["second", "third"])
    );
    assert!(run.get(second).is_err());
    assert!(run.get(third).is_err());
    assert_eq!(take_runs("failed-commit").get("broken"), Some(&1));
    // The run's record says the same.
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    let status = |name: &str| record.nodes.iter().find(|n| n.name == name).unwrap().status;
    assert_eq!(
        [status("broken"), status("second"), status("third")],
        [
            RecordedStatus::Failed,
            RecordedStatus::UpstreamFailed,
            RecordedStatus::UpstreamFailed
        ]
    );
}

#[task(name = "queued_commits.spread")]
fn spread(x: &u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    vec![*x, x + 1, x + 2]
}

#[test]
fn the_branches_below_a_failed_commit_are_not_reported_as_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("failed-commit-map");
    let broken = b
        .add("broken", break_index::node(dir.path().to_owned()))
        .unwrap();
    let list = b.add("list", spread::node(broken)).unwrap();
    let each = b.map("each", list, next::node).unwrap();
    let p = b.build();
    let run = Runner::new(dir.path()).jobs(2).run(&p).unwrap();

    assert!(!run.succeeded(), "{run}");
    assert_eq!(with_status(&run, NodeStatus::Failed), names(&["broken"]));
    assert_eq!(
        run.node("each").unwrap().status(),
        NodeStatus::UpstreamFailed
    );
    for i in 0..3 {
        let branch = run.node(&format!("each[{i}]")).unwrap();
        assert_eq!(branch.status(), NodeStatus::UpstreamFailed, "each[{i}]");
    }
    assert!(run.branches(each).is_err());
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
    let mapped = record.nodes.iter().find(|n| n.name == "each").unwrap();
    assert!(
        mapped
            .branches
            .iter()
            .all(|b| b.status == RecordedStatus::UpstreamFailed),
        "{:?}",
        mapped.branches.iter().map(|b| b.status).collect::<Vec<_>>()
    );
    take_runs("failed-commit-map");
}

#[task(name = "queued_commits.with_file")]
fn with_file(text: String, ctx: &Ctx) -> std::io::Result<pipewright::OutputFile> {
    count(ctx);
    let file = pipewright::OutputFile::new(ctx, "out.txt")?;
    std::fs::write(file.path(), text)?;
    Ok(file)
}

/// How many rows of the index name node `node`, read while the run goes on.
#[task(name = "queued_commits.rows_now")]
fn rows_now(_file: &pipewright::OutputFile, data: PathBuf, node: String, ctx: &Ctx) -> i64 {
    count(ctx);
    let index = rusqlite::Connection::open(data.join(".store").join("index.db")).unwrap();
    index
        .query_row(
            "SELECT COUNT(*) FROM entries WHERE node = ?1",
            [&node],
            |row| row.get(0),
        )
        .unwrap()
}

#[test]
fn an_entry_with_files_of_its_own_is_committed_before_its_consumers_start() {
    // Its files are in place before its row: the row follows at once, not with a batch.
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("files-committed");
    let file = b
        .add("with_file", with_file::node("text".to_owned()))
        .unwrap();
    let rows = b
        .add(
            "rows",
            rows_now::node(file, dir.path().to_owned(), "with_file".to_owned()),
        )
        .unwrap();
    let p = b.build();
    let run = Runner::new(dir.path()).jobs(2).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(*run.get(rows).unwrap(), 1);
    take_runs("files-committed");
}

/// The handle of the run that `stop_all` cancels.
static CANCEL: Mutex<Option<Cancel>> = Mutex::new(None);

#[task(name = "queued_commits.piece")]
fn piece(i: u64, ctx: &Ctx) -> u64 {
    count(ctx);
    i
}

/// Cancels its run once every piece before it has finished.
#[task(name = "queued_commits.stop_all")]
fn stop_all(pieces: &[&u64], ctx: &Ctx) -> u64 {
    count(ctx);
    if let Some(cancel) = CANCEL.lock().unwrap().as_ref() {
        cancel.cancel();
    }
    pieces.iter().copied().sum()
}

#[test]
fn a_cancelled_run_commits_every_entry_it_computed_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("cancelled-commits");
    let pieces: Vec<_> = (0..100)
        .map(|i| b.add(format!("p{i}"), piece::node(i)).unwrap())
        .collect();
    let stop = b.add("stop", stop_all::node(pieces)).unwrap();
    for i in 0..20 {
        b.add(format!("after{i}"), next::node(stop)).unwrap();
    }
    let p = b.build();
    let runner = Runner::new(dir.path()).jobs(2);
    *CANCEL.lock().unwrap() = Some(runner.cancel_handle());
    let run = runner.run(&p).unwrap();
    *CANCEL.lock().unwrap() = None;
    assert!(run.cancelled(), "{run}");
    let ran = with_status(&run, NodeStatus::Ran);
    assert_eq!(ran.len(), 101, "{ran:?}");
    assert_eq!(run.count(NodeStatus::Cancelled), 20);
    take_runs("cancelled-commits");

    // Another runner, with a store of its own on the same data directory, finds exactly
    // the entries of the nodes that ran.
    let run = Runner::new(dir.path()).jobs(2).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(with_status(&run, NodeStatus::Cached), ran);
    assert_eq!(run.count(NodeStatus::Ran), 20);
    assert_eq!(take_runs("cancelled-commits").len(), 20);
}
