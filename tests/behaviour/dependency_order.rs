//! Every node starts only after all of its parents have finished.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use pipewright::prelude::*;

static CLOCK: AtomicUsize = AtomicUsize::new(0);
static EVENTS: Mutex<Vec<(String, usize, usize)>> = Mutex::new(Vec::new());

fn record<T>(ctx: &Ctx, work: impl FnOnce() -> T) -> T {
    let start = CLOCK.fetch_add(1, Ordering::SeqCst);
    std::thread::yield_now();
    let out = work();
    let end = CLOCK.fetch_add(1, Ordering::SeqCst);
    EVENTS
        .lock()
        .unwrap()
        .push((ctx.node().to_owned(), start, end));
    out
}

#[task]
fn source(ctx: &Ctx, x: u64) -> u64 {
    record(ctx, || x)
}

#[task(name = "dependency_order.add")]
fn add(a: &u64, b: &u64, ctx: &Ctx) -> u64 {
    record(ctx, || a + b)
}

#[task(name = "dependency_order.double")]
fn double(a: &u64, ctx: &Ctx) -> u64 {
    record(ctx, || a * 2)
}

#[task(name = "dependency_order.total")]
fn total(ctx: &Ctx, parts: &[&u64]) -> u64 {
    record(ctx, || parts.iter().copied().sum())
}

#[test]
fn parents_finish_before_children_start() {
    let p = pipeline! {
        name = "order";
        let a = source(1);
        let b = source(2);
        let c = source(3);
        let ab = add(a, b);
        let bc = add(b, c);
        let d1 = double(ab);
        let d2 = double(bc);
        let d3 = double(d1);
        let all = total([d3, d2, c, ab]);
    };
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(*run.get(p.all).unwrap(), 12 + 10 + 3 + 3);

    let events = EVENTS.lock().unwrap();
    let by_node: HashMap<&str, (usize, usize)> = events
        .iter()
        .map(|(n, s, e)| (n.as_str(), (*s, *e)))
        .collect();
    assert_eq!(by_node.len(), p.len(), "every node ran: {events:?}");
    for name in p.node_names() {
        let id = p.node(name).unwrap();
        let (start, _) = by_node[name];
        for parent in p.parents(id) {
            let parent_name = p.node_name(*parent);
            let (_, parent_end) = by_node[parent_name];
            assert!(
                parent_end < start,
                "`{name}` started at {start} before its parent `{parent_name}` ended at {parent_end}"
            );
        }
    }
    // The graph as wired: gathered inputs count once per distinct parent.
    let parents = |n: &str| -> Vec<&str> {
        p.parents(p.node(n).unwrap())
            .iter()
            .map(|id| p.node_name(*id))
            .collect()
    };
    assert_eq!(parents("all"), ["d3", "d2", "c", "ab"]);
    assert_eq!(parents("bc"), ["b", "c"]);
    assert!(parents("a").is_empty());
}
