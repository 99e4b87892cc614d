//! Cancelling a run stops it starting nodes, tells the running ones, and keeps what
//! finished; the next run resumes from there.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use pipewright::Cancel;
use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

/// The handle of the run under test, for the task that plays Ctrl-C.
static CANCEL: Mutex<Option<Cancel>> = Mutex::new(None);

#[task]
fn step(i: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    i
}

/// Cancels the run while it runs, then waits to be told.
#[task]
fn interrupt(x: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    if let Some(cancel) = CANCEL.lock().unwrap().as_ref() {
        cancel.cancel();
    }
    for _ in 0..1000 {
        if ctx.cancelled() {
            return x + 100;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the task was never told of the cancellation");
}

#[task]
fn after(x: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    x + 1
}

#[test]
fn a_cancelled_run_keeps_what_finished_and_the_next_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cancel";
        let first = step(1);
        let stop = interrupt(first);
        let later = after(stop);
        let last = after(later);
    };
    let runner = Runner::new(dir.path()).jobs(1);
    *CANCEL.lock().unwrap() = Some(runner.cancel_handle());
    let run = runner.run(&p).unwrap();
    *CANCEL.lock().unwrap() = None;

    assert!(run.cancelled());
    assert!(!run.succeeded());
    // The running task finished and was stored; nothing started after the cancellation.
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["first", "stop"])
    );
    assert_eq!(
        with_status(&run, NodeStatus::Cancelled),
        names(&["later", "last"])
    );
    let record = pipewright::RunRecord::read(run.run_dir().unwrap()).unwrap();
    assert_eq!(record.status, "cancelled");
    assert_eq!(take_runs("cancel").len(), 2);

    // The next run resumes: what finished is cached.
    let run = runner.run(&p).unwrap();
    assert!(!run.cancelled());
    assert_eq!(
        with_status(&run, NodeStatus::Cached),
        names(&["first", "stop"])
    );
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["later", "last"])
    );
    assert_eq!(*run.get(p.last).unwrap(), 103);
}
