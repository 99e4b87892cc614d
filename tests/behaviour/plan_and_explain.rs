//! The plan says what a run would do to each node and why; `explain` says what changed
//! since a node last wrote an entry: its code, its version, a parameter or an input. (How
//! code edits change a task's fingerprint is in `code_fingerprint.rs`: one program cannot
//! run two versions of a task.)

use std::path::Path;

use pipewright::prelude::*;

use crate::support;
use pipewright::{Decision, RunReason};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Norm {
    L1,
    L2,
    Max,
}

mod v1 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task]
    pub fn load(n: u32) -> Vec<f64> {
        (1..=n).map(f64::from).collect()
    }

    #[task(name = "normalize")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n).collect()
    }

    #[task]
    pub fn evaluate(a: &Vec<f64>, b: &Vec<f64>) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
    }
}

use v1::{evaluate, load};

/// Rewrites what the store recorded as the last entry of node `node` of task `task`, as a
/// build of the program with other code would have left it.
fn edit_last_entry(data: &Path, task: &str, node: &str, edit: impl Fn(&mut serde_json::Value)) {
    let conn = support::store::open(data);
    let json: String = conn
        .query_row(
            "SELECT meta FROM nodes WHERE task = ?1 AND node = ?2",
            [task, node],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no last entry of node `{node}`: {e}"));
    let mut entry: serde_json::Value = serde_json::from_str(&json).unwrap();
    edit(&mut entry);
    conn.execute(
        "UPDATE nodes SET meta = ?3 WHERE task = ?1 AND node = ?2",
        [task, node, &entry.to_string()],
    )
    .unwrap();
}

#[test]
fn plan_then_explain() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    let p = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v1::normalize(raw, Norm::L1);
        let l2 = v1::normalize(raw, Norm::L2);
        let eval = evaluate(l1, l2);
    };

    // Nothing stored yet: the source runs, the rest waits on it.
    let plan = runner.plan(&p).unwrap();
    assert_eq!(plan.counts(), (0, 1, 3));
    assert!(matches!(
        &plan.node("raw").unwrap().decision,
        Decision::Run { reason: RunReason::NoEntry, key: Some(k) } if k.len() == 64
    ));
    assert_eq!(
        plan.node("eval").unwrap().decision,
        Decision::Pending {
            upstream: "raw".to_owned()
        }
    );
    let text = plan.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "plan for `explained` (4 nodes: 0 fresh, 1 to run, 3 pending)"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["run", "raw", "load", "no", "entry"]
    );
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["pending", "eval", "evaluate", "waits", "on", "`raw`"]
    );
    assert_eq!(
        runner.explain(&p, "l1").unwrap().to_string(),
        "`l1` waits on `raw`, which runs; it is decided once its inputs exist\n  \
         - no entry of task `normalize` was ever written for this node"
    );

    assert!(runner.run(&p).unwrap().succeeded());
    let plan = runner.plan(&p).unwrap();
    assert_eq!(plan.counts(), (4, 0, 0));
    assert!(
        plan.to_string()
            .lines()
            .skip(1)
            .all(|l| l.trim_start().starts_with("fresh"))
    );
    assert!(
        runner
            .explain(&p, "l1")
            .unwrap()
            .to_string()
            .starts_with("`l1` is fresh: its entry ")
    );

    // A parameter changes.
    let p2 = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v1::normalize(raw, Norm::Max);
        let l2 = v1::normalize(raw, Norm::L2);
        let eval = evaluate(l1, l2);
    };
    assert_eq!(
        runner.explain(&p2, "l1").unwrap().to_string(),
        "`l1` will run (no entry)\n  - parameter digest changed (`norm`: \"L1\" → \"Max\")"
    );
    assert_eq!(
        runner.explain(&p2, "eval").unwrap().to_string(),
        "`eval` waits on `l1`, which runs; it is decided once its inputs exist\n  \
         - input `a` is recomputed first (its upstream runs)"
    );
    // Once it ran, `eval` has an entry of its own for the new inputs.
    assert!(runner.run(&p2).unwrap().succeeded());

    // The code changes: the node's last entry is of other code than this program's.
    let force_l1 = Runner::new(dir.path()).force("l1");
    let p3 = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v1::normalize(raw, Norm::Max);
    };
    edit_last_entry(dir.path(), "normalize", "l1", |entry| {
        entry["fingerprint"] = "0".repeat(64).into();
    });
    assert_eq!(
        force_l1.explain(&p3, "l1").unwrap().to_string(),
        "`l1` will run (forced)\n  - code of `normalize` changed"
    );

    // The version changes.
    edit_last_entry(dir.path(), "normalize", "l1", |entry| {
        entry["version"] = "2".into();
    });
    assert_eq!(
        force_l1.explain(&p3, "l1").unwrap().to_string(),
        "`l1` will run (forced)\n  - version changed (`2` → none)"
    );
    assert!(force_l1.run(&p3).unwrap().succeeded());

    // An input changes.
    let more = pipeline! {
        name = "explained";
        let raw = load(5);
        let l1 = v1::normalize(raw, Norm::Max);
    };
    assert!(runner.run(&more).unwrap().succeeded());
    let back = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v1::normalize(raw, Norm::Max);
    };
    // `raw` with 4 is stored, so `l1`'s input is known and differs from its last entry.
    let explanation = runner.explain(&back, "l1").unwrap();
    assert!(
        matches!(explanation.decision, Decision::Fresh { .. }),
        "{explanation}"
    );
    let forced = Runner::new(dir.path()).force("l1");
    assert_eq!(
        forced.explain(&back, "l1").unwrap().to_string(),
        "`l1` will run (forced)\n  - input `xs` changed"
    );

    assert_eq!(
        runner.explain(&p, "nope").unwrap_err().to_string(),
        "pipeline `explained` has no node named `nope`"
    );
}

#[test]
fn a_plan_of_one_node_says_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "single";
        let raw = load(3);
    };
    let plan = Runner::new(dir.path()).plan(&p).unwrap().to_string();
    assert!(
        plan.starts_with("plan for `single` (1 node: 0 fresh, 1 to run, 0 pending)"),
        "{plan}"
    );
}
