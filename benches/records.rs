//! What a run costs beside its nodes: its record (`run.json`, `run.log`, the progress
//! journal) and its provenance, measured as fully cached runs of one node and of 10,000
//! nodes with a store, on tmpfs (`/dev/shm`) and on the temporary directory's file system.
//!
//! `cargo bench -p pipewright-benches --bench records`; see `benches/README.md` for the figures.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use pipewright::{Handle, NodeStatus, Pipeline, Runner, task};
use tempfile::TempDir;

/// Worker threads of every runner.
const THREADS: usize = 2;

/// A source: returns its parameter.
#[task]
fn source(x: u64) -> u64 {
    x
}

/// A node of a layer: the sum of its two inputs and its own index.
#[task]
fn combine(a: &u64, b: &u64, index: u64) -> u64 {
    a.wrapping_add(*b).wrapping_add(index)
}

/// One source.
fn one_node() -> Pipeline {
    let mut b = Pipeline::builder("one_node");
    b.add("s", source::node(1)).expect("a node");
    b.build()
}

/// 100 layers of 100 nodes; node `j` of a layer takes nodes `j` and `j + 1` (wrapping) of
/// the layer before, and its own index, so that every node has a key of its own.
fn layers() -> Pipeline {
    let width = 100;
    let mut b = Pipeline::builder("layers_100x100");
    let mut handles: Vec<Handle<u64>> = (0..width as u64)
        .map(|j| b.add(format!("n0_{j}"), source::node(j)).expect("a node"))
        .collect();
    for layer in 1..100 {
        handles = (0..width)
            .map(|j| {
                let index = (layer * width + j) as u64;
                let node = combine::node(handles[j], handles[(j + 1) % width], index);
                b.add(format!("n{layer}_{j}"), node).expect("a node")
            })
            .collect();
    }
    b.build()
}

/// The file systems to measure on: tmpfs, if `/dev/shm` is there, and the temporary
/// directory's.
fn places() -> Vec<(&'static str, PathBuf)> {
    let mut places = Vec::new();
    if Path::new("/dev/shm").is_dir() {
        places.push(("shm", PathBuf::from("/dev/shm")));
    }
    places.push(("tmp", std::env::temp_dir()));
    places
}

/// Fully cached runs: the store is populated once, then every timed run finds every node
/// in it and writes its record.
fn cached_runs(c: &mut Criterion, scratch: &[(&'static str, TempDir)]) {
    let mut group = c.benchmark_group("cached_run");
    group.sampling_mode(SamplingMode::Flat);
    for p in [one_node(), layers()] {
        for (place, dir) in scratch {
            let runner = Runner::new(dir.path().join(p.name())).jobs(THREADS);
            let mut populated = false;
            group.bench_function(BenchmarkId::new(p.name(), place), |b| {
                if !populated {
                    let first = runner.run(&p).expect("the run");
                    assert_eq!(first.count(NodeStatus::Ran), p.len(), "{first}");
                    let again = runner.run(&p).expect("the run");
                    assert_eq!(again.count(NodeStatus::Cached), p.len(), "{again}");
                    assert!(
                        again
                            .run_dir()
                            .is_some_and(|d| d.join("run.json").is_file())
                    );
                    populated = true;
                }
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let report = runner.run(&p).expect("the run");
                        total += start.elapsed();
                        drop(black_box(report));
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

fn main() {
    let scratch: Vec<(&'static str, TempDir)> = places()
        .into_iter()
        .map(|(name, dir)| (name, TempDir::new_in(dir).expect("a temporary directory")))
        .collect();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    cached_runs(&mut c, &scratch);
    c.final_summary();
}
