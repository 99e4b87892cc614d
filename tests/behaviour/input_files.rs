//! Input files and directories are parameters tracked by their content: a changed file
//! re-runs exactly the nodes that read it, a touched one re-runs nothing, and a missing
//! one is an error that names the node and the path.

use crate::support;

use std::fs;
use std::path::Path;

use pipewright::prelude::*;
use pipewright::{Error, InputDir, InputFile, TaskError};
use support::{count, names, set_mtime, take_runs, with_status, write_dated};

#[task(name = "input_files.load")]
fn load(file: InputFile, ctx: &Ctx) -> String {
    count(ctx);
    fs::read_to_string(file.path()).unwrap_or_default()
}

#[task]
fn length(text: &String, ctx: &Ctx) -> usize {
    count(ctx);
    text.len()
}

#[task(name = "input_files.constant")]
fn constant(n: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    n
}

/// The files under a directory, by relative path, with their contents.
#[task]
fn listing(dir: InputDir, ctx: &Ctx) -> Vec<(String, String)> {
    count(ctx);
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir.path()).unwrap();
                files.push((
                    rel.display().to_string(),
                    fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    files.sort();
    files
}

fn two_files(pipeline: &str, a: &Path, b: &Path) -> Pipeline {
    let mut p = Pipeline::builder(pipeline);
    let load_a = p.add("load_a", load::node(InputFile::new(a))).unwrap();
    let load_b = p.add("load_b", load::node(InputFile::new(b))).unwrap();
    p.add("len_a", length::node(load_a)).unwrap();
    p.add("len_b", length::node(load_b)).unwrap();
    p.add("other", constant::node(7)).unwrap();
    p.build()
}

/// When the stat cache of the store in `data` last hashed `file`.
fn hashed_at(data: &Path, file: &Path) -> Option<i64> {
    let path = std::path::absolute(file).unwrap();
    support::store::open(data)
        .query_row(
            "SELECT hashed_at_ns FROM files WHERE path = ?1",
            [path.as_os_str().as_encoded_bytes()],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_changed_file_reruns_exactly_the_nodes_that_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    write_dated(&a, "1,2,3", 0);
    write_dated(&b, "4,5", 0);
    let data = dir.path().join("data");
    let runner = Runner::new(&data);
    let p = two_files("changed", &a, &b);
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Ran), 5);
    take_runs("changed");

    // The same path, new content: the plan sees it before anything runs.
    write_dated(&b, "4,5,6", 10);
    let plan = runner.plan(&p).unwrap();
    assert_eq!(plan.counts(), (3, 1, 1), "{plan}");
    let why = runner.explain(&p, "load_b").unwrap();
    assert_eq!(
        why.changes,
        [format!("input file `{}` changed (content)", b.display())],
        "{why}"
    );

    let run = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["load_b", "len_b"])
    );
    assert_eq!(
        take_runs("changed").keys().cloned().collect::<Vec<_>>(),
        names(&["load_b", "len_b"])
    );
    assert_eq!(*run.get_as::<usize>("len_b").unwrap(), 5);
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 5);
}

#[test]
fn a_file_moved_with_its_content_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    write_dated(&a, "same", 0);
    write_dated(&b, "other", 0);
    let runner = Runner::new(dir.path().join("data"));
    assert!(runner.run(&two_files("moved", &a, &b)).unwrap().succeeded());

    let moved = dir.path().join("moved.csv");
    fs::rename(&a, &moved).unwrap();
    let run = runner.run(&two_files("moved", &moved, &b)).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 5, "{run}");
}

#[test]
fn a_touched_file_reruns_nothing_and_is_hashed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    write_dated(&a, "1,2,3", 0);
    write_dated(&b, "4,5", 0);
    let data = dir.path().join("data");
    let runner = Runner::new(&data);
    let p = two_files("touched", &a, &b);
    assert!(runner.run(&p).unwrap().succeeded());
    let first = hashed_at(&data, &a).expect("the file is in the stat cache");
    // Unchanged: not hashed again.
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 5);
    assert_eq!(hashed_at(&data, &a), Some(first));

    // Touched: the same bytes, another modification time.
    set_mtime(&a, 60);
    let plan = runner.plan(&p).unwrap();
    assert_eq!(plan.counts(), (5, 0, 0), "{plan}");
    let rehashed = hashed_at(&data, &a).unwrap();
    assert!(rehashed > first, "the touched file is hashed again");
    take_runs("touched");
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 5, "{run}");
    assert!(take_runs("touched").is_empty());
    // Once: the plan's hash is trusted by the run, and by the next.
    assert_eq!(hashed_at(&data, &a), Some(rehashed));
    assert!(runner.run(&p).unwrap().succeeded());
    assert_eq!(hashed_at(&data, &a), Some(rehashed));
}

/// A file edited with its size and modification time kept, and its change time and
/// inode as the stat cache recorded them: what a file system whose timestamps are coarse
/// shows of a second write within the same tick. Made here by rewriting the stat cache's
/// row to the file's new stat.
#[test]
fn a_racily_clean_file_edited_in_the_same_tick_is_still_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    // Written now: hashed within the racy window of its modification time.
    fs::write(&a, "aaaa").unwrap();
    write_dated(&b, "bb", 0);
    let data = dir.path().join("data");
    let runner = Runner::new(&data);
    let p = two_files("racy", &a, &b);
    assert!(runner.run(&p).unwrap().succeeded());
    let mtime = fs::metadata(&a).unwrap().modified().unwrap();

    fs::write(&a, "bbbb").unwrap();
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    same_stat_in_cache(&data, &a);

    let run = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["load_a", "len_a"]),
        "{run}"
    );
    assert_eq!(run.get_as::<String>("load_a").unwrap().as_str(), "bbbb");
}

/// Rewrites the stat cache's row of `file` to the file's stat now, keeping its digest and
/// when it was hashed.
fn same_stat_in_cache(data: &Path, file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(file).unwrap();
    let path = std::path::absolute(file).unwrap();
    let changed = support::store::open(data)
        .execute(
            "UPDATE files SET size = ?2, mtime_ns = ?3, inode = ?4, ctime_ns = ?5 WHERE path = ?1",
            rusqlite::params![
                path.as_os_str().as_encoded_bytes(),
                meta.len() as i64,
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                meta.ino() as i64,
                meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn a_missing_file_is_an_error_naming_the_node_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let missing = dir.path().join("missing.csv");
    write_dated(&a, "1", 0);
    let runner = Runner::new(dir.path().join("data"));
    // The pipeline is built while the file is missing: nothing reads it then.
    let p = two_files("missing", &a, &missing);

    let err = runner.plan(&p).unwrap_err();
    match &err {
        Error::InputFile {
            node, path, source, ..
        } => {
            assert_eq!(node, "load_b");
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("not an input file error: {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "node `load_b`: input file `{}` cannot be read",
            missing.display()
        )
    );

    let run = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Failed),
        names(&["load_b"]),
        "{run}"
    );
    assert_eq!(
        with_status(&run, NodeStatus::UpstreamFailed),
        names(&["len_b"])
    );
    match run.node("load_b").unwrap().error() {
        Some(TaskError::InputFile { path, .. }) => assert_eq!(path, &missing),
        other => panic!("not an input file error: {other:?}"),
    }

    // Once it is there, the node runs.
    write_dated(&missing, "22", 0);
    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(*run.get_as::<usize>("len_b").unwrap(), 2);
}

fn one_dir(dir: &Path) -> Pipeline {
    let mut p = Pipeline::builder("dir");
    p.add("listing", listing::node(InputFile::dir(dir)))
        .unwrap();
    p.add("other", constant::node(1)).unwrap();
    p.build()
}

#[test]
fn a_directory_sees_files_added_removed_renamed_and_edited() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    fs::create_dir_all(raw.join("sub")).unwrap();
    write_dated(&raw.join("one.txt"), "1", 0);
    write_dated(&raw.join("sub/two.txt"), "2", 0);
    let runner = Runner::new(dir.path().join("data"));
    let p = one_dir(&raw);
    assert!(runner.run(&p).unwrap().succeeded());
    let reruns = |what: &str| {
        let run = runner.run(&p).unwrap();
        assert_eq!(
            with_status(&run, NodeStatus::Ran),
            names(&["listing"]),
            "{what}: {run}"
        );
        run.get_as::<Vec<(String, String)>>("listing")
            .unwrap()
            .clone()
    };
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };

    write_dated(&raw.join("three.txt"), "3", 0);
    assert_eq!(
        reruns("added"),
        pairs(&[("one.txt", "1"), ("sub/two.txt", "2"), ("three.txt", "3")])
    );
    fs::remove_file(raw.join("one.txt")).unwrap();
    assert_eq!(
        reruns("removed"),
        pairs(&[("sub/two.txt", "2"), ("three.txt", "3")])
    );
    fs::rename(raw.join("three.txt"), raw.join("sub/three.txt")).unwrap();
    assert_eq!(
        reruns("renamed"),
        pairs(&[("sub/three.txt", "3"), ("sub/two.txt", "2")])
    );
    write_dated(&raw.join("sub/two.txt"), "9", 30);
    assert_eq!(
        reruns("edited"),
        pairs(&[("sub/three.txt", "3"), ("sub/two.txt", "9")])
    );
    // A hidden file is not part of the directory.
    write_dated(&raw.join(".hidden"), "x", 0);
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 2);
}
