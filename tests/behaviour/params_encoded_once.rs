//! A parameter is encoded when its node is added, and never again for its key: planning,
//! running and re-running reuse what `Builder::add` made.

use std::sync::atomic::{AtomicUsize, Ordering};

use pipewright::prelude::*;
use serde::{Deserialize, Serialize, Serializer};

/// How many times a `Counted` was serialized, by any serializer.
static SERIALIZED: AtomicUsize = AtomicUsize::new(0);

/// A parameter that counts its serializations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Counted(u64);

impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_u64(self.0)
    }
}

#[task]
fn scaled(by: Counted) -> u64 {
    by.0 * 2
}

#[task]
fn plus(x: &u64, n: u64) -> u64 {
    x + n
}

fn serialized() -> usize {
    SERIALIZED.load(Ordering::SeqCst)
}

#[test]
fn keys_reuse_the_encodings_made_when_the_node_was_added() {
    let mut b = Pipeline::builder("encoded_once");
    let s = b.add("scaled", scaled::node(Counted(21))).unwrap();
    // The codec's encoding, and the canonical encodings of the value and of the value
    // rebuilt from the codec's bytes, which must agree.
    assert_eq!(serialized(), 3);
    let p = b.add("plus", plus::node(s, 1)).unwrap();
    let pipeline = b.build();

    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    let before = serialized();
    let plan = runner.plan(&pipeline).unwrap();
    assert_eq!(plan.nodes().len(), 2);
    assert_eq!(serialized(), before, "planning encoded the parameter again");

    let run = runner.run(&pipeline).unwrap();
    assert_eq!(*run.get(p).unwrap(), 43);
    let again = runner.run(&pipeline).unwrap();
    assert_eq!(again.status("scaled"), Some(NodeStatus::Cached));
    assert_eq!(again.status("plus"), Some(NodeStatus::Cached));
}
