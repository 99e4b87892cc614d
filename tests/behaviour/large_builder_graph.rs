//! A builder graph of 10,000 nodes, made at run time, runs to the right result.

use pipewright::prelude::*;

#[task]
fn value(i: u64) -> u64 {
    i
}

#[task]
fn mix(a: &u64, b: &u64) -> u64 {
    a.wrapping_mul(3).wrapping_add(*b) % 1_000_003
}

#[task(name = "large_builder_graph.total")]
fn total(parts: &[&u64]) -> u64 {
    parts.iter().copied().sum()
}

#[test]
fn ten_thousand_nodes() {
    let mut b = Pipeline::builder("large");
    let values: Vec<_> = (0..5_000)
        .map(|i| b.add(format!("v{i}"), value::node(i)).unwrap())
        .collect();
    let mixed: Vec<_> = (0..4_999)
        .map(|i| {
            b.add(format!("m{i}"), mix::node(values[i], values[i + 1]))
                .unwrap()
        })
        .collect();
    let sum = b.add("sum", total::node(mixed)).unwrap();
    let p = b.build();
    assert_eq!(p.len(), 10_000);

    let expected: u64 = (0..4_999u64).map(|i| (i * 3 + i + 1) % 1_000_003).sum();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded());
    assert_eq!(run.count(NodeStatus::Ran), 10_000);
    assert_eq!(*run.get(sum).unwrap(), expected);
}

#[test]
fn a_long_chain_of_failures_settles_without_deep_recursion() {
    #[task]
    fn fail() -> Result<u64, String> {
        Err("no data".to_string())
    }

    let mut b = Pipeline::builder("failing-chain");
    let mut prev = b.add("head", fail::node()).unwrap();
    for i in 0..100_000 {
        prev = b.add(format!("n{i}"), total::node([prev])).unwrap();
    }
    let p = b.build();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Failed), 1);
    assert_eq!(run.count(NodeStatus::UpstreamFailed), 100_000);
    assert_eq!(
        run.get(prev).unwrap_err().to_string(),
        "node `n99999` did not run because its upstream `head` failed"
    );
}
