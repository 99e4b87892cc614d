//! Two independent nodes run at the same time on a pool of two workers: each waits, with a
//! timeout, for the other to arrive, so a sequential executor fails the assertion instead
//! of hanging.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use pipewright::prelude::*;

static ARRIVED: Mutex<usize> = Mutex::new(0);
static BOTH_THERE: Condvar = Condvar::new();

/// Arrives at the rendezvous and reports whether the other node arrived within 10 s.
#[task]
fn meet() -> bool {
    let mut arrived = ARRIVED.lock().unwrap();
    *arrived += 1;
    BOTH_THERE.notify_all();
    let (arrived, timeout) = BOTH_THERE
        .wait_timeout_while(arrived, Duration::from_secs(10), |n| *n < 2)
        .unwrap();
    !timeout.timed_out() && *arrived >= 2
}

#[task]
fn both(a: &bool, b: &bool) -> (bool, bool) {
    (*a, *b)
}

#[test]
fn independent_nodes_overlap_on_two_workers() {
    let p = pipeline! {
        name = "rendezvous";
        let left = meet();
        let right = meet();
        let met = both(left, right);
    };
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert_eq!(
        run.get(p.met).unwrap(),
        &(true, true),
        "the two nodes did not overlap"
    );
}
