//! `OutputFile`: files a task writes in its work directory and returns live in its entry;
//! a file deleted or changed in the store is damage, recomputed; files published at a path
//! of the user's come back and follow their node, which stays cached.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use pipewright::prelude::*;
use pipewright::{OutputFile, PublishAction, RunReason};
use support::{count, names, take_runs, with_status};

#[task]
fn write_report(title: String, ctx: &Ctx) -> std::io::Result<OutputFile> {
    count(ctx);
    let file = OutputFile::new(ctx, "report.md")?;
    fs::write(file.path(), format!("# {title}\n"))?;
    Ok(file)
}

/// Writes a file whose content depends on the parity of its input only.
#[task]
fn parity(n: &u32, ctx: &Ctx) -> std::io::Result<OutputFile> {
    count(ctx);
    let file = OutputFile::new(ctx, "parity/out.txt")?;
    fs::create_dir_all(file.path().parent().unwrap())?;
    let word = if n.is_multiple_of(2) { "even" } else { "odd" };
    fs::write(file.path(), word)?;
    Ok(file)
}

#[task(name = "output_files.number")]
fn number(n: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    n
}

/// Reads the file its upstream wrote, where the input says it is.
#[task]
fn read_back(file: &OutputFile, suffix: String, ctx: &Ctx) -> std::io::Result<String> {
    count(ctx);
    Ok(fs::read_to_string(file.path())? + &suffix)
}

/// Writes several files, returned as a vector.
#[task]
fn pages(n: u32, ctx: &Ctx) -> std::io::Result<Vec<OutputFile>> {
    count(ctx);
    (1..=n)
        .map(|i| {
            let file = OutputFile::new(ctx, format!("pages/{i}.txt"))?;
            fs::create_dir_all(file.path().parent().unwrap())?;
            fs::write(file.path(), format!("page {i}"))?;
            Ok(file)
        })
        .collect()
}

#[task]
fn forgets_to_write(ctx: &Ctx) -> std::io::Result<OutputFile> {
    OutputFile::new(ctx, "never.txt")
}

#[task(cache = false)]
fn uncached_file(ctx: &Ctx) -> std::io::Result<OutputFile> {
    let file = OutputFile::new(ctx, "gone.txt")?;
    fs::write(file.path(), "x")?;
    Ok(file)
}

#[task]
fn escapes(ctx: &Ctx) -> std::io::Result<OutputFile> {
    OutputFile::new(ctx, "../outside.txt")
}

/// The store's file of the output of the node `node` of `task`, from the report.
fn stored_file(data: &Path, run: &RunReport, task: &str, node: &str, rel: &str) -> PathBuf {
    let key = run.node(node).unwrap().key().unwrap();
    data.join(task).join(key).join("work").join(rel)
}

fn damaged_reason(run: &RunReport, node: &str) -> String {
    match run.node(node).unwrap().reason() {
        Some(RunReason::Damaged(why)) => why.clone(),
        other => panic!("`{node}` did not run for a damaged entry: {other:?} ({run})"),
    }
}

#[test]
fn the_paths_in_the_report_and_the_inputs_exist_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = pipeline! {
        name = "files-paths";
        let report = write_report("Sales".to_string());
        let text = read_back(report, "!".to_string());
        let book = pages(3);
    };
    let runner = Runner::new(&data).keep(p.report);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    let file = run.get(p.report).unwrap();
    assert_eq!(
        file.path(),
        stored_file(&data, &run, "write_report", "report", "report.md")
    );
    assert_eq!(fs::read_to_string(file.path()).unwrap(), "# Sales\n");
    assert_eq!(file.relative_path(), Path::new("report.md"));
    assert!(file.digest().is_some());
    // The consumer read the file where its input said it was.
    assert_eq!(run.get(p.text).unwrap(), "# Sales\n!");
    let book = run.get(p.book).unwrap();
    assert_eq!(book.len(), 3);
    for (i, page) in book.iter().enumerate() {
        assert!(page.path().starts_with(data.join("pages")), "{page:?}");
        assert_eq!(
            fs::read_to_string(page.path()).unwrap(),
            format!("page {}", i + 1)
        );
    }

    // Read back from the store, in a later run, the paths are the same.
    let again = runner.run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 3, "{again}");
    assert_eq!(again.get(p.report).unwrap().path(), file.path());
    assert_eq!(again.get(p.book).unwrap(), book);
}

#[test]
fn an_output_file_deleted_from_the_store_is_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = pipeline! {
        name = "files-deleted";
        let report = write_report("Q1".to_string());
    };
    let runner = Runner::new(&data);
    let run = runner.run(&p).unwrap();
    let path = run.get(p.report).unwrap().path().to_owned();
    take_runs("files-deleted");
    fs::remove_file(&path).unwrap();

    // Plan and explain say why it will run, naming the file.
    let plan = runner.plan(&p).unwrap();
    let line = plan.to_string();
    assert!(
        line.contains("damaged entry: its output file `report.md` is missing"),
        "{line}"
    );
    let why = runner.explain(&p, "report").unwrap().to_string();
    assert!(
        why.contains("its output file `report.md` is missing"),
        "{why}"
    );
    assert!(take_runs("files-deleted").is_empty(), "planning ran a task");

    let run = runner.run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["report"]));
    let why = damaged_reason(&run, "report");
    assert!(why.contains("`report.md` is missing"), "{why}");
    assert_eq!(take_runs("files-deleted")["report"], 1);
    assert_eq!(fs::read_to_string(&path).unwrap(), "# Q1\n");
    assert_eq!(run.get(p.report).unwrap().path(), path);

    // Whole again: cached.
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 1, "{run}");
}

#[test]
fn an_entry_directory_removed_or_its_file_list_damaged_is_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = pipeline! {
        name = "files-entry-gone";
        let report = write_report("Gone".to_string());
    };
    let runner = Runner::new(&data);
    let run = runner.run(&p).unwrap();
    let entry = data
        .join("write_report")
        .join(run.node("report").unwrap().key().unwrap());
    fs::remove_dir_all(&entry).unwrap();
    let run = runner.run(&p).unwrap();
    let why = damaged_reason(&run, "report");
    assert!(why.contains("work directory is gone"), "{why}");
    assert!(entry.join("work/report.md").is_file());

    fs::write(entry.join("outputs.json"), "not a list").unwrap();
    let run = runner.run(&p).unwrap();
    let why = damaged_reason(&run, "report");
    assert!(why.contains("list of output files"), "{why}");
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 1);
}

#[test]
fn an_output_file_changed_in_the_store_is_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = pipeline! {
        name = "files-changed";
        let report = write_report("Q2".to_string());
    };
    let runner = Runner::new(&data);
    let run = runner.run(&p).unwrap();
    let path = run.get(p.report).unwrap().path().to_owned();
    // As many bytes as before, other ones.
    fs::write(&path, "# Q9\n").unwrap();

    let run = runner.run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["report"]));
    let why = damaged_reason(&run, "report");
    assert!(why.contains("`report.md` does not match"), "{why}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "# Q2\n");

    // Another size is found without reading the file.
    fs::write(&path, "longer than before").unwrap();
    let run = runner.run(&p).unwrap();
    let why = damaged_reason(&run, "report");
    assert!(why.contains("has 18 bytes, not the 5 committed"), "{why}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "# Q2\n");
}

#[test]
fn a_damaged_file_of_an_inner_node_is_computed_again_for_its_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let build = |suffix: &str| {
        pipeline! {
            name = "files-inner";
            let report = write_report("Inner".to_string());
            let text = read_back(report, suffix.to_string());
        }
    };
    let runner = Runner::new(&data);
    let run = runner.run(&build("1")).unwrap();
    let path = stored_file(&data, &run, "write_report", "report", "report.md");
    take_runs("files-inner");
    fs::remove_file(&path).unwrap();

    // The consumer runs and reads the inner node's file: it is computed again first.
    let run = runner.run(&build("2")).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["report", "text"])
    );
    damaged_reason(&run, "report");
    assert_eq!(run.get_as::<String>("text").unwrap(), "# Inner\n2");
    assert!(path.is_file());
}

#[test]
fn the_same_bytes_in_a_file_keep_its_consumers_cached() {
    let dir = tempfile::tempdir().unwrap();
    let build = |x: u32| {
        pipeline! {
            name = "files-cutoff";
            let n = number(x);
            let word = parity(n);
            let text = read_back(word, ".".to_string());
        }
    };
    let runner = Runner::new(dir.path());
    let run = runner.run(&build(2)).unwrap();
    assert_eq!(run.get_as::<String>("text").unwrap(), "even.");
    take_runs("files-cutoff");

    // 4 is even as 2 was: the file has the same bytes under another key.
    let run = runner.run(&build(4)).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["n", "word"]));
    assert_eq!(with_status(&run, NodeStatus::Cached), names(&["text"]));
    assert!(!take_runs("files-cutoff").contains_key("text"));

    // 5 is odd: the bytes differ, and the consumer runs.
    let run = runner.run(&build(5)).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3, "{run}");
    assert_eq!(run.get_as::<String>("text").unwrap(), "odd.");
}

#[test]
fn a_published_file_comes_back_and_follows_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out").join("report.md");
    let build = |title: &str| {
        pipeline! {
            name = "files-published";
            let report = write_report(title.to_string());
        }
    };
    let p = build("First");
    let runner = Runner::new(&data).publish(p.report, &out);
    let run = runner.run(&p).unwrap();
    assert_eq!(fs::read_to_string(&out).unwrap(), "# First\n");
    let published = run.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].node, "report");
    assert_eq!(published[0].path, out);
    assert_eq!(published[0].action, PublishAction::Linked);

    // Nothing changed: nothing is written.
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 1);
    assert_eq!(run.published()[0].action, PublishAction::Unchanged);

    // Deleted, it comes back, and the node does not run.
    take_runs("files-published");
    fs::remove_file(&out).unwrap();
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 1, "{run}");
    assert!(take_runs("files-published").is_empty());
    assert_eq!(run.published()[0].action, PublishAction::Linked);
    assert_eq!(fs::read_to_string(&out).unwrap(), "# First\n");

    // Replaced by another file, it is put back.
    fs::remove_file(&out).unwrap();
    fs::write(&out, "edited").unwrap();
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 1, "{run}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "# First\n");

    // The node changes: the published file follows.
    let p = build("Second");
    let runner = Runner::new(&data).publish(p.report, &out);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 1, "{run}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "# Second\n");
}

#[test]
fn every_file_of_a_node_is_published_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let p = pipeline! {
        name = "files-dir";
        let book = pages(2);
    };
    let runner = Runner::new(dir.path().join("data")).publish_dir(p.book, &out);
    let run = runner.run(&p).unwrap();
    let paths: Vec<_> = run.published().iter().map(|p| p.path.clone()).collect();
    assert_eq!(
        paths,
        [out.join("pages/1.txt"), out.join("pages/2.txt")],
        "{:?}",
        run.published()
    );
    assert_eq!(
        fs::read_to_string(out.join("pages/2.txt")).unwrap(),
        "page 2"
    );
}

#[test]
fn a_file_that_is_not_written_or_not_kept_fails_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "files-mistakes";
        let missing = forgets_to_write();
        let uncached = uncached_file();
        let outside = escapes();
    };
    let run = Runner::new(dir.path()).run(&p).unwrap();
    let error = |node: &str| {
        let node = run.node(node).unwrap();
        assert_eq!(node.status(), NodeStatus::Failed);
        let mut text = String::new();
        let mut error: Option<&dyn std::error::Error> = node.error().map(|e| e as _);
        while let Some(e) = error {
            text += &format!("{e}: ");
            error = e.source();
        }
        text
    };
    let missing = error("missing");
    assert!(
        missing.contains("output file `never.txt` does not exist"),
        "{missing}"
    );
    let uncached = error("uncached");
    assert!(uncached.contains("`cache = false`"), "{uncached}");
    let outside = error("outside");
    assert!(outside.contains("goes up with `..`"), "{outside}");
}
