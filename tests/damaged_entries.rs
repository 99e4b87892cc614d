//! A damaged entry is a miss, never a crash or a wrong value: a truncated `output.bin`,
//! garbage in `meta.json`, a missing file and a flipped byte each cause exactly one
//! recompute, after which the entry is whole again.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

#[task]
fn numbers(n: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    (0..n).collect()
}

#[task]
fn squares(xs: &Vec<u64>, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    xs.iter().map(|x| x * x).collect()
}

#[task]
fn total(xs: &Vec<u64>, ctx: &Ctx) -> u64 {
    count(ctx);
    xs.iter().sum()
}

fn entry(dir: &Path, run: &RunReport, node: &str) -> PathBuf {
    let report = run.node(node).unwrap();
    dir.join(report.task()).join(report.key().unwrap())
}

type Damage = fn(&Path);

fn truncate(entry: &Path) {
    let path = entry.join("output.bin");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
}

fn garbage_meta(entry: &Path) {
    fs::write(entry.join("meta.json"), b"{ this is not json").unwrap();
}

fn missing_output(entry: &Path) {
    fs::remove_file(entry.join("output.bin")).unwrap();
}

fn missing_meta(entry: &Path) {
    fs::remove_file(entry.join("meta.json")).unwrap();
}

fn flipped_byte(entry: &Path) {
    let path = entry.join("output.bin");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, bytes).unwrap();
}

const DAMAGES: [(&str, Damage); 5] = [
    ("truncated output.bin", truncate),
    ("garbage meta.json", garbage_meta),
    ("missing output.bin", missing_output),
    ("missing meta.json", missing_meta),
    ("flipped byte", flipped_byte),
];

/// The damaged node is kept, so its entry is checked in full during the run.
#[test]
fn a_damaged_kept_entry_is_recomputed_once() {
    for (what, damage) in DAMAGES {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline! {
            name = "damaged-kept";
            let xs = numbers(10);
            let sq = squares(xs);
            let sum = total(sq);
        };
        let runner = Runner::new(dir.path()).keep(p.sq);
        let first = runner.run(&p).unwrap();
        take_runs("damaged-kept");

        damage(&entry(dir.path(), &first, "sq"));
        let run = runner.run(&p).unwrap();
        assert_eq!(with_status(&run, NodeStatus::Ran), names(&["sq"]), "{what}");
        assert_eq!(
            take_runs("damaged-kept").into_iter().collect::<Vec<_>>(),
            [("sq".to_owned(), 1)],
            "{what}"
        );
        let reason = run.node("sq").unwrap().reason().unwrap().to_string();
        assert!(reason.starts_with("damaged entry: "), "{what}: {reason}");
        assert_eq!(run.get(p.sq).unwrap()[9], 81, "{what}");
        assert_eq!(*run.get(p.sum).unwrap(), 285, "{what}");

        // Repaired: the next run runs nothing.
        let run = runner.run(&p).unwrap();
        assert_eq!(run.count(NodeStatus::Cached), 3, "{what}");
        assert!(take_runs("damaged-kept").is_empty(), "{what}");
    }
}

/// The damaged node is read by a consumer that runs: it is recomputed on the spot, and
/// the consumer gets the right value.
#[test]
fn a_damaged_input_of_a_running_node_is_recomputed_once() {
    for (what, damage) in DAMAGES {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline! {
            name = "damaged-input";
            let xs = numbers(10);
            let sq = squares(xs);
            let sum = total(sq);
        };
        let first = Runner::new(dir.path()).run(&p).unwrap();
        take_runs("damaged-input");

        damage(&entry(dir.path(), &first, "sq"));
        let run = Runner::new(dir.path()).force("sum").run(&p).unwrap();
        assert_eq!(*run.get(p.sum).unwrap(), 285, "{what}");
        let runs = take_runs("damaged-input");
        assert_eq!(runs.get("sq"), Some(&1), "{what}: {runs:?}");
        assert_eq!(runs.get("sum"), Some(&1), "{what}: {runs:?}");
        assert_eq!(runs.get("xs"), None, "{what}: {runs:?}");

        let run = Runner::new(dir.path()).run(&p).unwrap();
        assert_eq!(run.count(NodeStatus::Cached), 3, "{what}");
        assert!(take_runs("damaged-input").is_empty(), "{what}");
    }
}

/// An entry damaged after the run is an error when read from the report, not a panic or
/// a wrong value.
#[test]
fn reading_a_damaged_output_from_a_report_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "damaged-report";
        let xs = numbers(5);
        let sq = squares(xs);
    };
    assert!(Runner::new(dir.path()).run(&p).unwrap().succeeded());
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(run.status("xs"), Some(NodeStatus::Cached));
    flipped_byte(&entry(dir.path(), &run, "xs"));
    let err = run.get(p.xs).unwrap_err();
    let entry_dir = entry(dir.path(), &run, "xs");
    assert!(!entry_dir.exists(), "the damaged entry is removed");
    assert_eq!(
        err.to_string(),
        "the stored output of node `xs` cannot be read: `output.bin` does not match its recorded \
         digest; the entry is removed, so the next run computes it again"
    );
    take_runs("damaged-report");
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["xs"]));
    assert_eq!(run.get(p.xs).unwrap(), &vec![0, 1, 2, 3, 4]);
}
