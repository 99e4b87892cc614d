//! A run keeps going past a failure by default; with `fail_fast` it stops starting nodes at
//! the first failure, and the nodes it never started end as cancelled.

use pipewright::prelude::*;

#[task(name = "fail_fast.source")]
fn source() -> u32 {
    1
}

#[task]
fn fails(_x: &u32) -> Result<u32, String> {
    Err("no".into())
}

#[task(name = "fail_fast.step")]
fn step(x: &u32) -> u32 {
    x + 1
}

fn pipeline() -> (Pipeline, Handle<u32>) {
    // On one worker, `bad` runs right after `first` (its first child), before `second`.
    let mut b = Pipeline::builder("fail-fast");
    let first = b.add("first", source::node()).unwrap();
    b.add("bad", fails::node(first)).unwrap();
    let second = b.add("second", step::node(first)).unwrap();
    let third = b.add("third", step::node(second)).unwrap();
    (b.build(), third)
}

#[test]
fn by_default_independent_nodes_run_past_a_failure() {
    let (p, third) = pipeline();
    let run = Runner::in_memory().jobs(1).run(&p).unwrap();
    assert_eq!(run.status("bad"), Some(NodeStatus::Failed));
    assert_eq!(*run.get(third).unwrap(), 3);
}

#[test]
fn fail_fast_cancels_what_has_not_started() {
    let (p, third) = pipeline();
    let run = Runner::in_memory().jobs(1).fail_fast(true).run(&p).unwrap();
    assert_eq!(run.status("first"), Some(NodeStatus::Ran));
    assert_eq!(run.status("bad"), Some(NodeStatus::Failed));
    assert_eq!(run.status("second"), Some(NodeStatus::Cancelled));
    assert_eq!(run.status("third"), Some(NodeStatus::Cancelled));
    assert!(!run.succeeded());
    assert!(run.get(third).is_err());
    assert!(
        run.to_string().contains("1 ran, 1 failed, 2 cancelled"),
        "{run}"
    );
}
