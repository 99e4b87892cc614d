//! A fresh node whose consumers are all fresh is never read from disk, and a fresh kept
//! node is checked during the run but decoded only when the caller asks for it.

use std::sync::atomic::{AtomicUsize, Ordering};

use pipewright::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};

static DECODED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts how often it is decoded.
#[derive(Debug, Clone, Serialize)]
struct Counted(Vec<u32>);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, Ordering::SeqCst);
        Vec::deserialize(d).map(Counted)
    }
}

#[task]
fn make(n: u32) -> Counted {
    Counted((0..n).collect())
}

#[task]
fn grow(c: &Counted, by: u32) -> Counted {
    Counted(c.0.iter().map(|x| x + by).collect())
}

#[test]
fn nothing_is_decoded_that_is_not_needed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "lazy";
        let a = make(1000);
        let b = grow(a, 1);
        let c = grow(b, 1);
        let d = grow(a, 5);
    };
    assert!(Runner::new(dir.path()).run(&p).unwrap().succeeded());
    assert_eq!(
        DECODED.load(Ordering::SeqCst),
        0,
        "a first run decodes nothing"
    );

    // Everything is fresh: nothing is decoded, even the sinks.
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 4);
    assert_eq!(DECODED.load(Ordering::SeqCst), 0);

    // Asking for a sink decodes it, once.
    assert_eq!(run.get(p.c).unwrap().0[0], 2);
    assert_eq!(run.get(p.c).unwrap().0[999], 1001);
    assert_eq!(DECODED.load(Ordering::SeqCst), 1);

    // `d` changes: its input `a` is read from the store, once; `b` and `c` stay unread.
    let p2 = pipeline! {
        name = "lazy";
        let a = make(1000);
        let b = grow(a, 1);
        let c = grow(b, 1);
        let d = grow(a, 6);
    };
    let run = Runner::new(dir.path()).run(&p2).unwrap();
    assert_eq!(run.status("d"), Some(NodeStatus::Ran));
    assert_eq!(DECODED.load(Ordering::SeqCst), 2);
    assert_eq!(run.get(p2.d).unwrap().0[0], 6);
    assert_eq!(
        DECODED.load(Ordering::SeqCst),
        2,
        "a value that ran is held, not decoded"
    );
}
