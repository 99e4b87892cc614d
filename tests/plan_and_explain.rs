//! The plan says what a run would do to each node and why; `explain` says what changed
//! since a node last wrote an entry: its code, its version, a parameter or an input.

use pipewright::prelude::*;
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

/// `v1::normalize` reformatted, with comments: the same code.
mod v1_reformatted {
    use super::Norm;
    use pipewright::prelude::*;

    /// Normalizes (doc comments do not count either).
    #[task(name = "normalize")]
    pub fn normalize(
        xs: &Vec<f64>,
        norm: Norm, // which norm
    ) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        /* scale */
        xs.iter().map(|x| x / n).collect()
    }
}

/// `v1::normalize` with an edited body.
mod v2 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task(name = "normalize")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n.max(1e-12)).collect()
    }
}

/// `v2::normalize` with a version salt.
mod v3 {
    use super::Norm;
    use pipewright::prelude::*;

    #[task(name = "normalize", version = "2")]
    pub fn normalize(xs: &Vec<f64>, norm: Norm) -> Vec<f64> {
        let n: f64 = match norm {
            Norm::L1 => xs.iter().map(|x| x.abs()).sum(),
            Norm::L2 => xs.iter().map(|x| x * x).sum::<f64>().sqrt(),
            Norm::Max => xs.iter().fold(0.0, |m, x| x.abs().max(m)),
        };
        xs.iter().map(|x| x / n.max(1e-12)).collect()
    }
}

use v1::{evaluate, load};

#[test]
fn reformatting_keeps_the_fingerprint_and_editing_changes_it() {
    use pipewright::Task;
    let fp = |m: pipewright::TaskMeta| m.fingerprint;
    assert_eq!(fp(v1::normalize::META), fp(v1_reformatted::normalize::META));
    assert_ne!(fp(v1::normalize::META), fp(v2::normalize::META));
    assert_ne!(fp(v2::normalize::META), fp(v3::normalize::META));
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

    runner.run(&p).unwrap();
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
    runner.run(&p2).unwrap();

    // The code changes; reformatting alone does not.
    let reformatted = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v1_reformatted::normalize(raw, Norm::Max);
    };
    assert_eq!(runner.plan(&reformatted).unwrap().counts(), (2, 0, 0));
    let edited = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v2::normalize(raw, Norm::Max);
    };
    assert_eq!(
        runner.explain(&edited, "l1").unwrap().to_string(),
        "`l1` will run (no entry)\n  - code of `normalize` changed"
    );
    runner.run(&edited).unwrap();

    // The version changes.
    let salted = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v3::normalize(raw, Norm::Max);
    };
    assert_eq!(
        runner.explain(&salted, "l1").unwrap().to_string(),
        "`l1` will run (no entry)\n  - version changed (none → `2`)"
    );

    // An input changes.
    let more = pipeline! {
        name = "explained";
        let raw = load(5);
        let l1 = v2::normalize(raw, Norm::Max);
    };
    runner.run(&more).unwrap();
    let back = pipeline! {
        name = "explained";
        let raw = load(4);
        let l1 = v2::normalize(raw, Norm::Max);
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
