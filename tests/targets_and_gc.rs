//! `Runner::target` runs only what a node needs; `clean` and `gc` clear the store, `gc`
//! keeping what the newest run records refer to.

mod support;

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

#[task]
fn leaf(x: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    vec![x; 1000]
}

#[task]
fn add(a: &Vec<u64>, b: &Vec<u64>, ctx: &Ctx) -> u64 {
    count(ctx);
    a.iter().chain(b).sum()
}

#[test]
fn a_target_runs_only_its_ancestors() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "targets";
        let a = leaf(1);
        let b = leaf(2);
        let c = leaf(3);
        let ab = add(a, b);
        let bc = add(b, c);
    };
    let run = Runner::new(dir.path()).target("ab").run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["a", "b", "ab"]));
    assert_eq!(
        with_status(&run, NodeStatus::NotNeeded),
        names(&["c", "bc"])
    );
    assert_eq!(
        take_runs("targets").keys().cloned().collect::<Vec<_>>(),
        names(&["a", "b", "ab"])
    );
    assert_eq!(*run.get(p.ab).unwrap(), 3000);
    assert!(run.get(p.bc).is_err());
    assert!(run.to_string().contains("2 not needed"), "{run}");

    // The rest runs later, reusing what the target made.
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["c", "bc"]));
    assert_eq!(*run.get(p.bc).unwrap(), 5000);

    let err = Runner::new(dir.path()).target("nope").run(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline `targets` has no node named `nope`"
    );
}

fn entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|task| task.path().is_dir() && task.file_name() != "runs")
        .flat_map(|task| std::fs::read_dir(task.path()).unwrap().flatten())
        .filter(|e| e.file_name().len() == 64)
        .count()
}

#[test]
fn gc_keeps_what_kept_runs_need_and_clean_removes_all() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    let old = pipeline! {
        name = "gc";
        let a = leaf(10);
        let b = leaf(20);
        let ab = add(a, b);
    };
    assert!(runner.run(&old).unwrap().succeeded());
    let new = pipeline! {
        name = "gc";
        let a = leaf(10);
        let b = leaf(21);
        let ab = add(a, b);
    };
    assert!(runner.run(&new).unwrap().succeeded());
    assert_eq!(entries(dir.path()), 5);

    // Keeping both runs keeps every entry.
    let freed = runner.gc(2).unwrap();
    assert_eq!((freed.entries, freed.runs, freed.bytes), (0, 0, 0));

    // Keeping the newest run frees the old `b` and `ab`, and the old record.
    let freed = runner.gc(1).unwrap();
    assert_eq!((freed.entries, freed.runs), (2, 1));
    assert!(freed.bytes > 8000, "{freed}");
    assert_eq!(entries(dir.path()), 3);
    let run = runner.run(&new).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 3);
    take_runs("gc");

    // The old pipeline runs again where gc removed its entries.
    let run = runner.run(&old).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["b", "ab"]));

    let freed = runner.clean().unwrap();
    assert_eq!(freed.entries, 5);
    assert_eq!(entries(dir.path()), 0);
    assert!(
        dir.path().join("runs").read_dir().unwrap().count() > 0,
        "records stay"
    );
    assert_eq!(runner.run(&new).unwrap().count(NodeStatus::Ran), 3);
}

#[test]
fn gc_removes_what_crashed_writers_left_once_it_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    let p = pipeline! {
        name = "strays";
        let a = leaf(1);
    };
    assert!(runner.run(&p).unwrap().succeeded());
    let task = dir.path().join("leaf");
    let nodes = task.join(".nodes");
    let records = || {
        let mut names: Vec<_> = std::fs::read_dir(&nodes)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let recorded = records();
    assert_eq!(recorded.len(), 1, "the node's last entry is recorded");

    // What a writer killed half-way leaves: a temporary entry and a temporary record of
    // the node's last entry, each an hour and a half old, and the same just written.
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(5400);
    let stray = |path: std::path::PathBuf, dir: bool, stale: bool| {
        if dir {
            std::fs::create_dir(&path).unwrap();
        } else {
            std::fs::write(&path, b"{").unwrap();
        }
        if stale {
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        path
    };
    let old_entry = stray(task.join(".tmp-0123456789abcdef-1-0"), true, true);
    let old_record = stray(nodes.join(".tmp-Ab12Cd"), false, true);
    let new_entry = stray(task.join(".tmp-fedcba9876543210-1-0"), true, false);
    let new_record = stray(nodes.join(".tmp-Ef34Gh"), false, false);

    runner.gc(1).unwrap();
    assert!(
        !old_entry.exists() && !old_record.exists(),
        "stale temporaries go"
    );
    // A fresh one may belong to a writer still at work.
    assert!(
        new_entry.exists() && new_record.exists(),
        "fresh temporaries stay"
    );
    let mut left = recorded.clone();
    left.push(new_record.clone());
    left.sort();
    assert_eq!(records(), left, "the record itself stays");
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 1);
}
