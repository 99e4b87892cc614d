//! A task that returns `Err` and a task that panics each fail their own node only: what
//! depends on them ends as *upstream failed* without running, and independent branches run
//! to the end with their results intact.

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::Mutex;

use pipewright::Error;
use pipewright::prelude::*;

static STARTED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn started(ctx: &Ctx) {
    let node = (ctx.pipeline().to_owned(), ctx.node().to_owned());
    STARTED.lock().unwrap().push(node);
}

#[derive(Debug)]
struct BadInput(&'static str);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad input: {}", self.0)
    }
}

impl std::error::Error for BadInput {}

#[task]
fn number(x: i64, ctx: &Ctx) -> i64 {
    started(ctx);
    x
}

#[task]
fn refuse(x: &i64, ctx: &Ctx) -> Result<i64, BadInput> {
    started(ctx);
    if *x > 0 {
        Err(BadInput("positive"))
    } else {
        Ok(-x)
    }
}

#[task]
fn explode(x: &i64, ctx: &Ctx) -> i64 {
    started(ctx);
    if *x > 0 {
        panic!("exploded on {x}");
    }
    *x
}

#[task(name = "failure_isolation.inc")]
fn inc(x: &i64, ctx: &Ctx) -> i64 {
    started(ctx);
    x + 1
}

#[task]
fn sum(parts: &[&i64], ctx: &Ctx) -> i64 {
    started(ctx);
    parts.iter().copied().sum()
}

#[test]
fn failures_stop_their_descendants_and_nothing_else() {
    let p = pipeline! {
        name = "faults";
        let one = number(1);
        let two = number(2);
        let refused = refuse(one);
        let exploded = explode(two);
        let after_refused = inc(refused);
        let after_after = inc(after_refused);
        let after_exploded = inc(exploded);
        let both_failed = sum([after_refused, exploded]);
        let healthy = inc(one);
        let healthy_sum = sum([healthy, two, one]);
    };
    let run = Runner::in_memory()
        .jobs(2)
        .keep(p.one)
        .keep(p.two)
        .keep(p.healthy)
        .run(&p)
        .unwrap();

    assert!(!run.succeeded());
    assert_eq!(run.status("refused"), Some(NodeStatus::Failed));
    assert_eq!(run.status("exploded"), Some(NodeStatus::Failed));
    for name in [
        "after_refused",
        "after_after",
        "after_exploded",
        "both_failed",
    ] {
        assert_eq!(run.status(name), Some(NodeStatus::UpstreamFailed), "{name}");
    }
    assert_eq!(run.count(NodeStatus::Ran), 4);
    assert_eq!(run.count(NodeStatus::Failed), 2);
    assert_eq!(run.count(NodeStatus::UpstreamFailed), 4);

    // The independent branch and the failed nodes' own inputs are intact.
    assert_eq!(*run.get(p.healthy).unwrap(), 2);
    assert_eq!(*run.get(p.healthy_sum).unwrap(), 5);
    assert_eq!(*run.get(p.one).unwrap(), 1);
    assert_eq!(*run.get(p.two).unwrap(), 2);

    // Nodes below a failure never started.
    let started: HashSet<String> = STARTED
        .lock()
        .unwrap()
        .iter()
        .filter(|(pipeline, _)| pipeline == "faults")
        .map(|(_, node)| node.clone())
        .collect();
    let expected: HashSet<String> = [
        "one",
        "two",
        "refused",
        "exploded",
        "healthy",
        "healthy_sum",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(started, expected);

    // The errors say what failed and why.
    let err = run.get(p.refused).unwrap_err();
    assert!(matches!(&err, Error::NodeFailed { node, .. } if node == "refused"));
    assert_eq!(err.to_string(), "node `refused` failed");
    assert_eq!(err.source().unwrap().to_string(), "bad input: positive");
    assert_eq!(
        run.node("refused").unwrap().error().unwrap().to_string(),
        "bad input: positive"
    );

    let err = run.get(p.exploded).unwrap_err();
    assert_eq!(
        err.source().unwrap().to_string(),
        "task panicked: exploded on 2"
    );

    // Blame goes to the node that failed, however far up, not to the nearest node that did
    // not run.
    let err = run.get(p.after_after).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `after_after` did not run because its upstream `refused` failed"
    );
    assert_eq!(
        run.node("after_after").unwrap().failed_upstream(),
        Some("refused")
    );
    assert_eq!(
        run.node("after_refused").unwrap().failed_upstream(),
        Some("refused")
    );
    let both = run.node("both_failed").unwrap().failed_upstream().unwrap();
    assert!(both == "refused" || both == "exploded", "{both}");

    // Printed, the report lists each failed node with the first line of its error.
    let text = run.to_string();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("10 nodes: 4 ran, 2 failed, 4 upstream failed in "),
        "{text}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        [
            "  `refused` failed: bad input: positive",
            "  `exploded` failed: task panicked: exploded on 2",
        ]
    );
    assert!(!run.summary().to_string().contains('\n'));
}

#[task]
fn multi_line(x: &i64, ctx: &Ctx) -> Result<i64, String> {
    started(ctx);
    Err(format!("{x} is wrong\nsee the manual"))
}

/// The summary counts nodes in the singular and the plural; a failure shows the first line
/// of its error only.
#[test]
fn the_summary_says_node_or_nodes() {
    let one = pipeline! {
        name = "one-node";
        let only = number(1);
    };
    let run = Runner::in_memory().run(&one).unwrap();
    assert!(run.to_string().starts_with("1 node: 1 ran in "), "{run}");

    let two = pipeline! {
        name = "two-nodes";
        let first = number(1);
        let wrong = multi_line(first);
    };
    let run = Runner::in_memory().run(&two).unwrap();
    let text = run.to_string();
    assert!(text.starts_with("2 nodes: 1 ran, 1 failed in "), "{text}");
    assert!(text.ends_with("\n  `wrong` failed: 1 is wrong"), "{text}");
}

#[test]
fn a_run_with_no_failure_reports_success() {
    let p = pipeline! {
        name = "no-faults";
        let zero = number(0);
        let refused = refuse(zero);
        let exploded = explode(zero);
        let total = sum([refused, exploded]);
    };
    let run = Runner::in_memory().run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(*run.get(p.total).unwrap(), 0);
    assert_eq!(run.to_string().split(" in ").next(), Some("4 nodes: 4 ran"));
}
