//! Cancelling a run stops it starting nodes, tells the running ones, and keeps what
//! finished; the next run resumes from there.

use crate::support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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

#[task(name = "cancellation.after")]
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
    let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
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

#[test]
fn a_cancel_before_a_run_cancels_that_run_and_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cancel-early";
        let first = step(1);
        let last = after(first);
    };
    let runner = Runner::new(dir.path());
    let cancel = runner.cancel_handle();
    cancel.cancel();
    assert!(cancel.is_cancelled());

    let run = runner.run(&p).unwrap();
    assert!(run.cancelled());
    assert_eq!(
        with_status(&run, NodeStatus::Cancelled),
        names(&["first", "last"])
    );
    assert!(take_runs("cancel-early").is_empty());

    // Spent on that run: the next one runs.
    assert!(!cancel.is_cancelled());
    let run = runner.run(&p).unwrap();
    assert!(!run.cancelled());
    assert_eq!(*run.get(p.last).unwrap(), 2);
}

/// The handle `hold` cancels its run with.
static HOLD_CANCEL: Mutex<Option<Cancel>> = Mutex::new(None);
/// Set once `hold` has cancelled its run.
static HELD: AtomicBool = AtomicBool::new(false);
/// Set once the other run is over.
static OTHER_DONE: AtomicBool = AtomicBool::new(false);

/// Cancels its run, then waits for the other run to end before it returns.
#[task]
fn hold(x: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    if let Some(cancel) = HOLD_CANCEL.lock().unwrap().as_ref() {
        cancel.cancel();
    }
    HELD.store(true, Ordering::SeqCst);
    for _ in 0..2000 {
        if OTHER_DONE.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    *x
}

/// A run that starts while another run of the same runner is cancelled neither lifts that
/// cancellation nor is cancelled by it.
#[test]
fn concurrent_runs_of_one_runner_keep_their_own_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let held = pipeline! {
        name = "cancel-held";
        let first = step(1);
        let stop = hold(first);
        let later = after(stop);
    };
    let other = pipeline! {
        name = "cancel-other";
        let first = step(5);
        let later = after(first);
    };
    let runner = Runner::new(dir.path()).jobs(2);
    *HOLD_CANCEL.lock().unwrap() = Some(runner.cancel_handle());
    let (held_run, other_run) = std::thread::scope(|scope| {
        let held_run = scope.spawn(|| runner.run(&held));
        for _ in 0..2000 {
            if HELD.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            HELD.load(Ordering::SeqCst),
            "the held run never cancelled itself"
        );
        let other_run = runner.run(&other);
        OTHER_DONE.store(true, Ordering::SeqCst);
        (held_run.join().unwrap().unwrap(), other_run.unwrap())
    });
    *HOLD_CANCEL.lock().unwrap() = None;

    assert!(held_run.cancelled());
    assert_eq!(held_run.status("later"), Some(NodeStatus::Cancelled));
    assert!(!other_run.cancelled());
    assert_eq!(*other_run.get(other.later).unwrap(), 6);
    assert_eq!(take_runs("cancel-held").len(), 2);
}

/// The handle the tasks below cancel their run with.
static QUIT_CANCEL: Mutex<Option<Cancel>> = Mutex::new(None);

/// Cancels its run, then stops the way a task is told to.
fn cancel_and_wait(ctx: &Ctx) {
    if let Some(cancel) = QUIT_CANCEL.lock().unwrap().as_ref() {
        cancel.cancel();
    }
    for _ in 0..1000 {
        if ctx.cancelled() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the task was never told of the cancellation");
}

/// Stops with `check_cancelled()?` into a `String` error.
#[task]
fn quits_as_string(x: &u32, ctx: &Ctx) -> Result<u32, String> {
    cancel_and_wait(ctx);
    ctx.check_cancelled()?;
    Ok(*x)
}

/// Stops with `check_cancelled()?` into an `std::io::Error`.
#[task]
fn quits_as_io(x: &u32, ctx: &Ctx) -> std::io::Result<u32> {
    cancel_and_wait(ctx);
    ctx.check_cancelled()?;
    Ok(*x)
}

/// Returns `Cancelled` boxed, without asking its context.
#[task]
fn quits_boxed(x: &u32, ctx: &Ctx) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    cancel_and_wait(ctx);
    if *x > 0 {
        return Err(Box::new(pipewright::Cancelled));
    }
    Ok(*x)
}

/// A task that stops because its run was cancelled ends as cancelled, not failed, and so do
/// the nodes below it, whatever error type it made of `Cancelled`.
#[test]
fn a_task_that_says_cancelled_ends_its_node_and_those_below_as_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let string = pipeline! {
        name = "quit-string";
        let first = step(1);
        let stop = quits_as_string(first);
        let later = after(stop);
        let last = after(later);
    };
    let io = pipeline! {
        name = "quit-io";
        let first = step(1);
        let stop = quits_as_io(first);
        let later = after(stop);
        let last = after(later);
    };
    let boxed = pipeline! {
        name = "quit-boxed";
        let first = step(1);
        let stop = quits_boxed(first);
        let later = after(stop);
        let last = after(later);
    };
    let pipelines: [&Pipeline; 3] = [&string, &io, &boxed];
    for p in pipelines {
        let runner = Runner::new(dir.path()).jobs(1);
        *QUIT_CANCEL.lock().unwrap() = Some(runner.cancel_handle());
        let run = runner.run(p).unwrap();
        *QUIT_CANCEL.lock().unwrap() = None;

        assert!(run.cancelled(), "{}", p.name());
        assert_eq!(
            with_status(&run, NodeStatus::Cancelled),
            names(&["stop", "later", "last"]),
            "{}: {run:?}",
            p.name()
        );
        assert_eq!(run.count(NodeStatus::Failed), 0, "{}", p.name());
        assert_eq!(run.count(NodeStatus::UpstreamFailed), 0, "{}", p.name());
        assert!(run.node("stop").unwrap().error().is_none(), "{run:?}");
        let record = pipewright::record::RunRecord::read(run.run_dir().unwrap()).unwrap();
        assert_eq!(record.status, "cancelled");
        assert_eq!(record.nodes[1].status, "cancelled");
    }
}
