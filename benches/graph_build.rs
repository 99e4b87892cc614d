//! Graph construction: what `Builder::add` costs per node, on a graph of 100,000 independent
//! nodes, for a task with a `u64` parameter and for a task with a small struct parameter.
//!
//! Only the calls to `add` and the final `build` are timed: the node names and the parameter
//! values are made before the timer starts, and the pipeline is dropped after it stops. The
//! names are passed as a user who keeps them passes them, by reference (`add` copies a
//! name, whether it is given a `&str` or a `String`), and freed after the timer stops.
//!
//! `cargo bench -p pipewright-benches --bench graph_build`; the figures are in
//! `benches/README.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use pipewright::{Pipeline, task};
use serde::{Deserialize, Serialize};

/// Nodes in each graph.
const NODES: usize = 100_000;

/// A small struct parameter: a float, an integer pair and a short string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    scale: f64,
    window: (u32, u32),
    label: String,
}

#[task]
fn source(x: u64) -> u64 {
    x
}

#[task]
fn configured(settings: Settings) -> u64 {
    settings.window.0 as u64 + settings.label.len() as u64
}

/// The names of the nodes, made outside the timing.
fn names() -> Vec<String> {
    (0..NODES).map(|i| format!("n{i}")).collect()
}

/// The struct parameters of the nodes, made outside the timing.
fn settings() -> Vec<Settings> {
    (0..NODES)
        .map(|i| Settings {
            scale: i as f64 * 0.5,
            window: (i as u32, i as u32 + 16),
            label: format!("s{}", i % 1000),
        })
        .collect()
}

/// Builds one graph of `u64`-parameter nodes; returns the time of the adds and the build.
fn build_u64() -> Duration {
    let names = names();
    let start = Instant::now();
    let mut b = Pipeline::builder("graph_build_u64");
    for (i, name) in names.iter().enumerate() {
        b.add(name, source::node(i as u64)).expect("a valid node");
    }
    let pipeline = b.build();
    let elapsed = start.elapsed();
    drop(black_box(pipeline));
    drop(names);
    elapsed
}

/// Builds one graph of struct-parameter nodes; returns the time of the adds and the build.
fn build_struct() -> Duration {
    let names = names();
    let settings = settings();
    let start = Instant::now();
    let mut b = Pipeline::builder("graph_build_struct");
    for (name, s) in names.iter().zip(settings) {
        b.add(name, configured::node(s)).expect("a valid node");
    }
    let pipeline = b.build();
    let elapsed = start.elapsed();
    drop(black_box(pipeline));
    drop(names);
    elapsed
}

fn graph_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("graph_build");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(NODES as u64));
    group.bench_function(BenchmarkId::new("u64_param", NODES), |bench| {
        bench.iter_custom(|iters| (0..iters).map(|_| build_u64()).sum());
    });
    group.bench_function(BenchmarkId::new("struct_param", NODES), |bench| {
        bench.iter_custom(|iters| (0..iters).map(|_| build_struct()).sum());
    });
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = graph_build
}
criterion::criterion_main!(benches);
