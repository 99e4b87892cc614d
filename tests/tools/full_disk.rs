//! A full disk: the data directory is a 1 MiB tmpfs, and one task's output does not fit.
//! That node fails with a typed error naming the file and the cause; the cache keeps no
//! partial entry, nothing stored before is lost, and once there is room the next run
//! computes only what is missing.
//!
//! Mounting needs root (as in CI). Elsewhere the test is ignored, saying why, unless
//! `PIPEWRIGHT_REQUIRE_TOOLS=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use pipewright::TaskError;
use pipewright::prelude::*;

use libtest_mimic::Trial;

use crate::support::{self, names, with_status};

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[task]
fn small(seed: u8) -> Vec<u8> {
    vec![seed; 10_000]
}

/// 4 MB: more than the whole file system.
#[task]
fn big(parts: &[&Vec<u8>]) -> Vec<u8> {
    vec![parts.len() as u8; 4_000_000]
}

#[task]
fn length(data: &Vec<u8>) -> usize {
    data.len()
}

#[task(name = "full_disk.total")]
fn total(parts: &[&Vec<u8>]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// Every file and directory under `dir` whose name starts with `prefix`.
fn leftovers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(leftovers(&path, prefix));
        }
    }
    found
}

/// The test of this file, ignored where a tmpfs cannot be mounted.
pub fn trials() -> Vec<Trial> {
    let missing = Tmpfs::mount("1m")
        .is_none()
        .then(|| "cannot mount a tmpfs (that needs root)".to_owned());
    vec![support::needing(
        "full_disk::an_output_that_does_not_fit_fails_its_node_only",
        an_output_that_does_not_fit_fails_its_node_only,
        missing,
        "PIPEWRIGHT_REQUIRE_TOOLS",
    )]
}

fn an_output_that_does_not_fit_fails_its_node_only() {
    let disk = Tmpfs::mount("1m").expect("mounted when listed");
    let logs = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "full-disk";
        let a = small(1);
        let b = small(2);
        let c = small(3);
        let huge = big([a, b, c]);
        let huge_len = length(huge);
        let sum = total([a, b, c]);
    };
    let runner = Runner::new(disk.path()).log_dir(logs.path()).jobs(1);
    let run = runner.run(&p).unwrap();

    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["a", "b", "c", "sum"])
    );
    assert_eq!(run.status("huge"), Some(NodeStatus::Failed));
    assert_eq!(run.status("huge_len"), Some(NodeStatus::UpstreamFailed));
    let error = run.node("huge").unwrap().error().unwrap();
    let TaskError::Store(store) = error else {
        panic!("not a store error: {error:?}");
    };
    assert!(store.path().starts_with(disk.path().join("big")), "{store}");
    assert!(store.to_string().starts_with("cannot write `"), "{store}");
    let cause = std::error::Error::source(store).unwrap().to_string();
    assert!(cause.contains("No space left on device"), "{cause}");
    // The failure record says it too.
    let record = std::fs::read_to_string(run.run_dir().unwrap().join("failures/huge.txt")).unwrap();
    assert!(record.contains("No space left on device"), "{record}");

    // No half-written entry is left, and no entry of `big` at all.
    assert_eq!(leftovers(disk.path(), ".tmp-"), Vec::<PathBuf>::new());
    let big_entries: Vec<_> = std::fs::read_dir(disk.path().join("big"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(big_entries.is_empty(), "{big_entries:?}");

    // What finished is stored and reads back intact.
    let again = runner.run(&p).unwrap();
    assert_eq!(
        with_status(&again, NodeStatus::Cached),
        names(&["a", "b", "c", "sum"])
    );
    assert_eq!(again.get(p.a).unwrap(), &vec![1u8; 10_000]);
    assert_eq!(*again.get(p.sum).unwrap(), 30_000);
    assert_eq!(again.status("huge"), Some(NodeStatus::Failed));

    // With room, only the missing part runs.
    disk.resize("16m");
    let fixed = runner.run(&p).unwrap();
    assert!(fixed.succeeded(), "{fixed}");
    assert_eq!(
        with_status(&fixed, NodeStatus::Ran),
        names(&["huge", "huge_len"])
    );
    assert_eq!(*fixed.get(p.huge_len).unwrap(), 4_000_000);
}
