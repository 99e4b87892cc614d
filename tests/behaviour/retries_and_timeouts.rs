//! `retries = N` tries a failed task again, and only the last outcome counts; `timeout`
//! fails a run that takes too long, and tells the task through `Ctx::cancelled`.

use crate::support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pipewright::TaskError;
use pipewright::prelude::*;
use support::{count, take_runs};

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then works.
#[task(name = "retries_and_timeouts.flaky", retries = 2)]
fn flaky(ctx: &Ctx) -> Result<u32, String> {
    count(ctx);
    let call = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    assert_eq!(ctx.attempt(), call);
    if call < 3 {
        Err(format!("attempt {call} failed"))
    } else {
        Ok(call)
    }
}

/// Always fails.
#[task(retries = 1)]
fn hopeless(ctx: &Ctx) -> Result<u32, String> {
    count(ctx);
    Err(format!("attempt {} failed", ctx.attempt()))
}

/// Panics on the first attempt only.
#[task(retries = 1)]
fn shaky(ctx: &Ctx) -> u32 {
    count(ctx);
    assert!(ctx.attempt() > 1, "first attempt panics");
    7
}

#[test]
fn retries_try_again_and_only_the_last_outcome_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "retries";
        let a = flaky();
        let b = hopeless();
        let c = shaky();
    };
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(*run.get(p.a).unwrap(), 3);
    assert_eq!(run.status("b"), Some(NodeStatus::Failed));
    assert_eq!(
        run.node("b").unwrap().error().unwrap().to_string(),
        "attempt 2 failed"
    );
    assert_eq!(*run.get(p.c).unwrap(), 7);
    let runs = take_runs("retries");
    assert_eq!((runs["a"], runs["b"], runs["c"]), (3, 2, 2));
}

/// Works until told to stop, then returns what it has.
#[task(timeout = "200ms")]
fn patient(ctx: &Ctx) -> u32 {
    let mut rounds = 0;
    while !ctx.cancelled() {
        std::thread::sleep(Duration::from_millis(5));
        rounds += 1;
    }
    rounds
}

/// Ignores the deadline.
#[task(timeout = "100ms")]
fn stubborn() -> u32 {
    std::thread::sleep(Duration::from_millis(300));
    1
}

#[task(timeout = "10s")]
fn quick(ctx: &Ctx) -> bool {
    ctx.cancelled()
}

#[test]
fn a_task_past_its_timeout_fails_and_is_told_to_stop() {
    let p = pipeline! {
        name = "timeouts";
        let a = patient();
        let b = stubborn();
        let c = quick();
    };
    let start = Instant::now();
    let run = Runner::in_memory().jobs(3).run(&p).unwrap();
    // The cooperative task stopped soon after its deadline, not never.
    assert!(start.elapsed() < Duration::from_secs(10));
    for node in ["a", "b"] {
        assert_eq!(run.status(node), Some(NodeStatus::Failed), "{node}");
    }
    let error = run.node("a").unwrap().error().unwrap();
    assert!(matches!(error, TaskError::TimedOut(d) if *d == Duration::from_millis(200)));
    assert_eq!(error.to_string(), "timed out after 200ms");
    assert_eq!(
        run.node("b").unwrap().error().unwrap().to_string(),
        "timed out after 100ms"
    );
    assert_eq!(run.get(p.c).unwrap(), &false);
}
