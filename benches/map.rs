//! What dynamic branching costs: a 10,000- and a 100,000-branch map run in memory
//! against a static graph of the same shape built with the builder (one node per element,
//! each taking its element as a parameter, and the same gather), and a re-run of a stored
//! 10,000-branch map after one element was added (one branch runs, the others are cached,
//! the gather runs) against the static graph with one node added (the same work).
//!
//! Pipelines are built outside the timing, with `iter_custom`: only runs are timed. Every
//! data directory is under one temporary directory, deleted when the benchmark ends.
//!
//! `cargo bench -p pipewright-benches --bench map`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use pipewright::{Handle, Mapped, Pipeline, Runner, task};
use tempfile::TempDir;

/// Branches of the map, and nodes of the static graph's middle layer.
const BRANCHES: u64 = 10_000;

/// Worker threads of every runner.
const THREADS: usize = 2;

/// The list the map goes over: `0..n`, then `extra`.
#[task]
fn numbers(n: u64, extra: Vec<u64>) -> Vec<u64> {
    (0..n).chain(extra).collect()
}

/// One branch: a trivial function of its element.
#[task]
fn step(x: &u64, salt: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add(salt)
}

/// The static graph's node: the same function, of a parameter.
#[task]
fn step_of(x: u64, salt: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add(salt)
}

/// Gathers every branch, or every node of the static graph.
#[task]
fn fold(parts: &[&u64]) -> u64 {
    parts.iter().fold(0u64, |acc, &&p| acc.wrapping_add(p))
}

/// The mapped pipeline over `0..n` and `extra`, and its gather.
fn mapped(n: u64, extra: Vec<u64>) -> (Pipeline, Mapped<u64>, Handle<u64>) {
    let mut b = Pipeline::builder("map_bench");
    let list = b.add("numbers", numbers::node(n, extra)).unwrap();
    let steps = b.map("steps", list, |x| step::node(x, 7)).unwrap();
    let total = b.add("total", fold::node(steps)).unwrap();
    (b.build(), steps, total)
}

/// The static pipeline of the same shape: a node per element of `0..n` and `extra`, and
/// the gather.
fn static_graph(n: u64, extra: &[u64]) -> (Pipeline, Handle<u64>) {
    let mut b = Pipeline::builder("static_bench");
    let steps: Vec<_> = (0..n)
        .chain(extra.iter().copied())
        .map(|x| b.add(format!("step_{x}"), step_of::node(x, 7)).unwrap())
        .collect();
    let total = b.add("total", fold::node(steps)).unwrap();
    (b.build(), total)
}

/// Times one run of `p` by `runner`.
fn time_run(runner: &Runner, p: &Pipeline) -> Duration {
    let start = Instant::now();
    let run = runner.run(p).unwrap();
    let elapsed = start.elapsed();
    assert!(run.succeeded());
    drop(black_box(run));
    elapsed
}

fn in_memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_in_memory");
    group.sampling_mode(SamplingMode::Flat);
    let runner = Runner::in_memory().jobs(THREADS);
    for n in [BRANCHES, 10 * BRANCHES] {
        group.throughput(Throughput::Elements(n));
        let (p, _, _) = mapped(n, Vec::new());
        group.bench_function(BenchmarkId::new("mapped", n), |bench| {
            bench.iter_custom(|iters| (0..iters).map(|_| time_run(&runner, &p)).sum());
        });
        let (p, _) = static_graph(n, &[]);
        group.bench_function(BenchmarkId::new("static", n), |bench| {
            bench.iter_custom(|iters| (0..iters).map(|_| time_run(&runner, &p)).sum());
        });
    }
    group.finish();
}

fn cached(c: &mut Criterion) {
    let scratch = TempDir::new().unwrap();
    let mut group = c.benchmark_group("map_cached_rerun");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BRANCHES));

    let data = scratch.path().join("mapped");
    let runner = Runner::new(&data).jobs(THREADS);
    let (p, _, _) = mapped(BRANCHES, Vec::new());
    time_run(&runner, &p);
    // Each iteration adds an element no run has seen: one branch runs, and the gather.
    let next = AtomicU64::new(BRANCHES);
    group.bench_function(BenchmarkId::new("mapped_plus_one", BRANCHES), |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let extra = next.fetch_add(1, Ordering::Relaxed);
                    let (p, _, _) = mapped(BRANCHES, vec![extra]);
                    time_run(&runner, &p)
                })
                .sum()
        });
    });

    // The same for the static graph: one node more each time, the others cached, and the
    // gather runs again on every output, as it does below the map.
    let data = scratch.path().join("static");
    let runner = Runner::new(&data).jobs(THREADS);
    let (p, _) = static_graph(BRANCHES, &[]);
    time_run(&runner, &p);
    let next = AtomicU64::new(BRANCHES);
    group.bench_function(BenchmarkId::new("static_plus_one", BRANCHES), |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let extra = next.fetch_add(1, Ordering::Relaxed);
                    let (p, _) = static_graph(BRANCHES, &[extra]);
                    time_run(&runner, &p)
                })
                .sum()
        });
    });
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    targets = in_memory, cached
}
criterion::criterion_main!(benches);
