//! The report's timings are measured: each node's duration covers its task, a node starts
//! after the node it waits on has finished, and all of it falls within the run.
//!
//! The report's clock (the CPU's time-stamp counter, where it can be trusted) is calibrated
//! against the OS clock the tasks read here; [`slack`] allows for what the two may differ.

use std::time::{Duration, Instant};

use pipewright::prelude::*;

/// What the two clocks may differ by over `d`: a hundredth of it, and a microsecond. The
/// counter's rate is measured against the OS clock over a fraction of a millisecond, which
/// on a busy machine (the process preempted while it measures) can be off by a few tenths
/// of a percent; a duration that left out the task, or most of it, is still far outside.
fn slack(d: Duration) -> Duration {
    d / 100 + Duration::from_micros(1)
}

/// Sleeps `millis` and returns how long it really took, as the task saw it.
#[task]
fn nap(millis: u64) -> Duration {
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(millis));
    start.elapsed()
}

/// Sleeps `millis` after its input has been computed.
#[task]
fn nap_after(_before: &Duration, millis: u64) -> Duration {
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(millis));
    start.elapsed()
}

#[test]
fn durations_and_starts_are_measured() {
    let p = pipeline! {
        name = "timings";
        let first = nap(40);
        let second = nap_after(first, 25);
        let third = nap_after(first, 10);
        let aside = nap(30);
    };
    let run = Runner::in_memory().jobs(2).keep(p.first).run(&p).unwrap();
    assert!(run.succeeded());

    let nodes = [
        ("first", p.first),
        ("second", p.second),
        ("third", p.third),
        ("aside", p.aside),
    ];
    for (name, handle) in nodes {
        let node = run.node(name).unwrap();
        let inside = *run.get(handle).unwrap();
        // The recorded duration holds the task's own measure of itself, and is no longer
        // than the whole run.
        assert!(
            node.duration() + slack(inside) >= inside,
            "`{name}` recorded {:?}, its task took {inside:?}",
            node.duration()
        );
        assert!(
            node.started() + node.duration() <= run.elapsed() + slack(run.elapsed()),
            "`{name}` ends at {:?}, after the run's {:?}",
            node.started() + node.duration(),
            run.elapsed()
        );
    }

    // `first` makes both of its consumers ready: one runs next on the same thread, the
    // other is spawned and reads the clock afresh, on whichever thread takes it.
    let first = run.node("first").unwrap();
    let end = first.started() + first.duration();
    for name in ["second", "third"] {
        let started = run.node(name).unwrap().started();
        assert!(
            started >= end,
            "`{name}` started at {started:?}, before `first` ended at {end:?}"
        );
    }
}
