//! `Runner::target` runs only what a node needs; `clean` and `gc` clear the store, `gc`
//! keeping what the newest run records refer to.

use crate::support;

use pipewright::prelude::*;
use support::{count, names, store, take_runs, with_status};

#[task(name = "targets_and_gc.leaf")]
fn leaf(x: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    vec![x; 1000]
}

#[task(name = "targets_and_gc.add")]
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
    store::entries(dir).len()
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
    let before = store::entries(dir.path());
    let freed = runner.gc(1).unwrap();
    assert_eq!((freed.entries, freed.runs), (2, 1));
    let after = store::entries(dir.path());
    let removed: u64 = before
        .iter()
        .filter(|e| !after.contains(e))
        .map(|e| e.size)
        .sum();
    assert!(freed.bytes >= removed && removed > 0, "{freed}");
    assert_eq!(after.len(), 3);
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
    std::fs::create_dir_all(&task).unwrap();

    // What writers killed half-way leave, on a host whose processes cannot be asked about
    // (so only their age tells): a work directory and a large output being written, each
    // an hour and a half old, and the same just written.
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(5400);
    let stray = |path: std::path::PathBuf, dir: bool, stale: bool| {
        if dir {
            std::fs::create_dir(&path).unwrap();
        } else {
            std::fs::write(&path, b"partial").unwrap();
        }
        if stale {
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        path
    };
    let old_dir = stray(task.join(".tmp-0123456789abcdef-00000000-1-0"), true, true);
    let old_file = stray(
        task.join(".tmp-0123456789abcdef-00000000-1-1.bin"),
        false,
        true,
    );
    let new_dir = stray(task.join(".tmp-fedcba9876543210-00000000-1-0"), true, false);
    let new_file = stray(
        task.join(".tmp-fedcba9876543210-00000000-1-1.bin"),
        false,
        false,
    );
    // An output file whose row was never committed, and no one holds its key's lock.
    let orphan = stray(task.join(format!("{}.bin", "ab".repeat(32))), false, false);

    runner.gc(1).unwrap();
    assert!(
        !old_dir.exists() && !old_file.exists(),
        "stale temporaries go"
    );
    // A fresh one may belong to a writer still at work.
    assert!(
        new_dir.exists() && new_file.exists(),
        "fresh temporaries stay"
    );
    assert!(!orphan.exists(), "a file of no entry goes");
    assert_eq!(entries(dir.path()), 1, "the entry itself stays");
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Cached), 1);
}
