//! A graph of a million nodes, built, planned and run in memory: 1,000 layers of 1,000
//! nodes, each node of a layer reading two nodes of the layer before.
//!
//! `cargo run --release --example million_nodes [LAYERS] [WIDTH]`; prints how long each
//! step took. `/usr/bin/time -v` around it gives the peak memory. With
//! `MILLION_NODES_DATA=DIR`, the runner stores every output under `DIR` instead: the graph
//! is run once to fill the store (not counted), then planned and run again, every node
//! cached. This workspace's release profile builds SQLite without optimization, for a
//! shorter first build; measure the store with `--profile bench` instead of `--release`.

use std::time::Instant;

use pipewright::prelude::*;

#[task]
fn source(x: u64) -> u64 {
    x
}

#[task]
fn combine(a: &u64, b: &u64) -> u64 {
    a.wrapping_add(*b).wrapping_add(1)
}

fn main() -> pipewright::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let layers = args.next().and_then(Result::ok).unwrap_or(1_000);
    let width = args.next().and_then(Result::ok).unwrap_or(1_000);

    let start = Instant::now();
    let mut b = Pipeline::builder("million_nodes");
    let mut layer = (0..width)
        .map(|j| b.add(format!("s{j}"), source::node(j as u64)))
        .collect::<pipewright::Result<Vec<_>>>()?;
    for i in 1..layers {
        layer = (0..width)
            .map(|j| {
                let (x, y) = (layer[j], layer[(j + 1) % width]);
                b.add(format!("n{i}_{j}"), combine::node(x, y))
            })
            .collect::<pipewright::Result<Vec<_>>>()?;
    }
    let pipeline = b.build();
    let built = start.elapsed();

    let runner = match std::env::var_os("MILLION_NODES_DATA") {
        Some(dir) => {
            let runner = Runner::new(dir).progress(false);
            let filled = runner.run(&pipeline)?;
            assert!(filled.succeeded(), "{filled}");
            runner
        }
        None => Runner::in_memory(),
    };
    let start = Instant::now();
    let plan = runner.plan(&pipeline)?;
    let planned = start.elapsed();
    drop(plan);

    let start = Instant::now();
    let run = runner.run(&pipeline)?;
    let ran = start.elapsed();
    let sum = layer
        .iter()
        .map(|h| run.get(*h).copied())
        .try_fold(0u64, |s, x| x.map(|x| s.wrapping_add(x)))?;

    println!(
        "{} nodes: built in {:.2} s, planned in {:.2} s, ran in {:.2} s ({} cached; sinks sum \
         to {sum})",
        pipeline.len(),
        built.as_secs_f64(),
        planned.as_secs_f64(),
        ran.as_secs_f64(),
        run.count(NodeStatus::Cached)
    );
    Ok(())
}
