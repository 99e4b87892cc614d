//! Each node of a run executes exactly once, however the graph is shaped.

use std::collections::HashMap;
use std::sync::Mutex;

use pipewright::prelude::*;

static RUNS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn count(ctx: &Ctx) {
    *RUNS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(ctx.node().to_owned())
        .or_default() += 1;
}

#[task]
fn leaf(seed: u32, ctx: &Ctx) -> u32 {
    count(ctx);
    seed
}

#[task(name = "runs_each_node_once.pair")]
fn pair(a: &u32, b: &u32, ctx: &Ctx) -> u32 {
    count(ctx);
    a.wrapping_mul(31).wrapping_add(*b)
}

#[test]
fn a_diamond_lattice_runs_every_node_once() {
    // Eight layers of eight nodes; each node reads two nodes of the layer above, so most
    // nodes have several consumers and several parents.
    let mut b = Pipeline::builder("lattice");
    let mut layer: Vec<_> = (0..8)
        .map(|i| b.add(format!("l0_{i}"), leaf::node(i)).unwrap())
        .collect();
    for depth in 1..8 {
        layer = (0..8)
            .map(|i| {
                let node = pair::node(layer[i], layer[(i + 1) % 8]);
                b.add(format!("l{depth}_{i}"), node).unwrap()
            })
            .collect();
    }
    let p = b.build();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(run.count(NodeStatus::Ran), 64);

    let runs = RUNS.lock().unwrap().take().unwrap();
    assert_eq!(runs.len(), 64);
    for name in p.node_names() {
        assert_eq!(runs.get(name), Some(&1), "node `{name}`");
    }
}
