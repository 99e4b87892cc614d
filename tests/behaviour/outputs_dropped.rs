//! An output held in memory is dropped as soon as its last consumer has finished, unless it
//! is kept, so peak memory follows the graph's width, not its size.

use std::sync::Mutex;

use pipewright::prelude::*;
use serde::{Deserialize, Serialize};

/// Live values and the most that were ever live at once.
static LIVE: Mutex<(usize, usize)> = Mutex::new((0, 0));

fn live() -> usize {
    LIVE.lock().unwrap().0
}

fn reset_peak() {
    let mut live = LIVE.lock().unwrap();
    live.1 = live.0;
}

fn peak() -> usize {
    LIVE.lock().unwrap().1
}

/// A value that counts its live instances.
#[derive(Debug, Serialize, Deserialize)]
struct Block(u64);

impl Block {
    fn new(v: u64) -> Self {
        let mut live = LIVE.lock().unwrap();
        live.0 += 1;
        live.1 = live.1.max(live.0);
        Block(v)
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        LIVE.lock().unwrap().0 -= 1;
    }
}

#[task]
fn start(v: u64) -> Block {
    Block::new(v)
}

#[task(name = "outputs_dropped.step")]
fn step(prev: &Block) -> Block {
    Block::new(prev.0 + 1)
}

#[task(name = "outputs_dropped.pair")]
fn pair(a: &Block, b: &Block) -> Block {
    Block::new(a.0 + b.0)
}

#[task(name = "outputs_dropped.total")]
fn total(parts: &[&Block]) -> Block {
    Block::new(parts.iter().map(|b| b.0).sum())
}

fn chain(len: usize) -> (Pipeline, Vec<Handle<Block>>) {
    let mut b = Pipeline::builder("chain");
    let mut handles = vec![b.add("n0", start::node(0)).unwrap()];
    for i in 1..len {
        let prev = handles[i - 1];
        handles.push(b.add(format!("n{i}"), step::node(prev)).unwrap());
    }
    (b.build(), handles)
}

// One test drives the scenarios in turn, since they share the live counter.
#[test]
fn outputs_live_only_as_long_as_they_are_needed() {
    // A chain of 100 blocks: at any time one input and one new output are alive.
    let (p, handles) = chain(100);
    reset_peak();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(peak(), 2, "more than two blocks were alive at once");
    // Only the sink is left, in the report.
    assert_eq!(live(), 1);
    assert_eq!(run.get(handles[99]).unwrap().0, 99);
    let err = run.get(handles[50]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the output of node `n50` was not kept; keep it with `Runner::keep`"
    );
    drop(run);
    assert_eq!(live(), 0);

    // Kept nodes stay alive in the report, and only those.
    let run = Runner::in_memory()
        .jobs(2)
        .keep(handles[10])
        .keep(handles[20])
        .run(&p)
        .unwrap();
    assert_eq!(live(), 3);
    assert_eq!(run.get(handles[10]).unwrap().0, 10);
    assert_eq!(run.get(handles[20]).unwrap().0, 20);
    drop(run);
    assert_eq!(live(), 0);

    // Many consumers of one output: it lives until the last of them is done, then goes.
    let mut b = Pipeline::builder("fan");
    let root = b.add("root", start::node(7)).unwrap();
    let leaves: Vec<_> = (0..20)
        .map(|i| b.add(format!("leaf{i}"), step::node(root)).unwrap())
        .collect();
    let p = b.build();
    reset_peak();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(
        live(),
        20,
        "the root was not dropped after its last consumer"
    );
    assert!(leaves.iter().all(|h| run.get(*h).unwrap().0 == 8));
    assert!(run.get(root).is_err());
    drop(run);
    assert_eq!(live(), 0);

    // A consumer that reads one output through two arguments, or twice in one gathered
    // argument, is one consumer: the output goes once it is done.
    let mut b = Pipeline::builder("twice");
    let root = b.add("root", start::node(3)).unwrap();
    let both = b.add("both", pair::node(root, root)).unwrap();
    let sum = b.add("sum", total::node([both, both, root])).unwrap();
    let last = b.add("last", step::node(sum)).unwrap();
    let p = b.build();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(run.get(last).unwrap().0, 16);
    assert_eq!(live(), 1, "an output read twice by one node outlived it");
    drop(run);
    assert_eq!(live(), 0);
}
