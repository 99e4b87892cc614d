//! What the store costs: a fully cached re-run of a 10,000-node graph, storing and reading
//! back one 100 MB output (against plain `std::fs` with the same codec), and the cost per
//! node of writing entries for trivial tasks (against the same graph run in memory, and
//! with each node in a worker process of its own).
//!
//! Every data directory is under one temporary directory (`$TMPDIR`), deleted when
//! the benchmark ends. Whatever must not be timed (populating a store, deleting a file,
//! dropping a report that holds 100 MB) happens outside the timing, with `iter_custom`.
//! The runs of trivial nodes each get a new data directory rather than one emptied by
//! deleting its files: on an ext4 file system without a journal, creating files soon after
//! thousands were deleted is several times slower (see `benches/README.md`).
//!
//! `cargo bench -p pipewright-benches --bench cache`; see `benches/README.md` for the figures.

use std::cell::OnceCell;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use pipewright::codec::{Bincode, Codec};
use pipewright::render::{GraphView, html};
use pipewright::{Executor, Handle, NodeStatus, Pipeline, RunReport, Runner, task};
use tempfile::TempDir;

/// Worker threads of every runner.
const THREADS: usize = 2;

/// Elements of the large output: 12,500,000 `u64`s, 100,000,000 bytes (plus the 8-byte length
/// prefix bincode writes).
const LARGE_LEN: usize = 12_500_000;

/// The size of the large output's encoding: the length prefix and the elements.
const LARGE_BYTES: u64 = 8 + 8 * LARGE_LEN as u64;

/// Independent nodes in the cache-on overhead benchmark.
const TRIVIAL_NODES: usize = 1_000;

/// A source: returns its parameter.
#[task]
fn source(x: u64) -> u64 {
    x
}

/// A node of a layer: the sum of its two inputs and its own index, so that every node has a
/// key of its own.
#[task]
fn combine(a: &u64, b: &u64, index: u64) -> u64 {
    a.wrapping_add(*b).wrapping_add(index)
}

/// Gathers any number of outputs: their sum.
#[task]
fn gather(parts: &[&u64]) -> u64 {
    parts.iter().fold(0u64, |acc, &&p| acc.wrapping_add(p))
}

/// A large output: `len` pseudo-random `u64`s.
#[task]
fn block(len: usize, seed: u64) -> Vec<u64> {
    (0..len as u64)
        .map(|i| (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect()
}

/// Times `routine` once per iteration. `setup` runs before each iteration and what `routine`
/// returns is dropped after it, both outside the timing.
fn timed<S, O>(
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut routine: impl FnMut(S) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        let output = routine(input);
        total += start.elapsed();
        drop(black_box(output));
    }
    total
}

/// Where every data directory of the benchmark goes; deleted when it is dropped, at the end.
struct Scratch {
    dir: TempDir,
    next: AtomicU64,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: TempDir::new().expect("a temporary directory"),
            next: AtomicU64::new(0),
        }
    }

    /// A path under the scratch directory that nothing has used yet.
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("{what}-{n}"))
    }
}

/// Deletes `dir` and everything in it, if it exists.
fn clear(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot delete `{}`: {e}", dir.display()),
    }
}

/// Runs `pipeline` and checks that every node ended with `status`.
fn run_all(runner: &Runner, pipeline: &Pipeline, status: NodeStatus) -> RunReport {
    let report = runner.run(pipeline).expect("the run starts");
    assert_eq!(
        report.count(status),
        pipeline.len(),
        "{}: {report}",
        pipeline.name()
    );
    report
}

/// A 10,000-node graph for the cached re-run, with the handles of its sinks and what each
/// sink must hold.
struct Graph {
    pipeline: Pipeline,
    sinks: Vec<(Handle<u64>, u64)>,
}

impl Graph {
    /// 10,000 sources gathered by one sink (10,001 nodes).
    fn fan_in(n: usize) -> Self {
        let mut b = Pipeline::builder(format!("fan_in_{n}"));
        let sources: Vec<Handle<u64>> = (0..n as u64)
            .map(|i| b.add(format!("s{i}"), source::node(i)).expect("a node"))
            .collect();
        let sink = b
            .add("sum", gather::node(sources.iter().copied()))
            .expect("a node");
        let expected = (0..n as u64).fold(0u64, u64::wrapping_add);
        Graph {
            pipeline: b.build(),
            sinks: vec![(sink, expected)],
        }
    }

    /// `layers` layers of `width` nodes; node `j` of a layer takes nodes `j` and `j + 1`
    /// (wrapping) of the layer before. The last layer's nodes are the sinks.
    fn layered(layers: usize, width: usize) -> Self {
        let mut b = Pipeline::builder(format!("layers_{layers}x{width}"));
        let mut values: Vec<u64> = (0..width as u64).collect();
        let mut handles: Vec<Handle<u64>> = (0..width as u64)
            .map(|j| b.add(format!("n0_{j}"), source::node(j)).expect("a node"))
            .collect();
        for layer in 1..layers {
            let mut next_values = Vec::with_capacity(width);
            let mut next = Vec::with_capacity(width);
            for j in 0..width {
                let k = (j + 1) % width;
                let index = (layer * width + j) as u64;
                next_values.push(combine(&values[j], &values[k], index));
                let node = combine::node(handles[j], handles[k], index);
                next.push(b.add(format!("n{layer}_{j}"), node).expect("a node"));
            }
            values = next_values;
            handles = next;
        }
        Graph {
            pipeline: b.build(),
            sinks: handles.into_iter().zip(values).collect(),
        }
    }

    /// Checks the sinks' outputs in `report`.
    fn check(&self, report: &RunReport) {
        for &(handle, expected) in &self.sinks {
            assert_eq!(*report.get(handle).expect("a sink's output"), expected);
        }
    }
}

/// (a) A fully cached re-run: the store is populated once, then every timed run plans every
/// node from the index, verifies the sinks' output digests and decodes nothing.
fn cached_rerun(c: &mut Criterion, scratch: &Scratch) {
    let mut group = c.benchmark_group("cached_rerun");
    group.sampling_mode(SamplingMode::Flat);
    for graph in [Graph::fan_in(10_000), Graph::layered(100, 100)] {
        let p = &graph.pipeline;
        let runner = Runner::new(scratch.fresh(p.name())).jobs(THREADS);
        // Populated once, untimed, and only if a benchmark of this graph is selected.
        let populated = OnceCell::new();
        let populate = || {
            populated.get_or_init(|| {
                graph.check(&run_all(&runner, p, NodeStatus::Ran));
                graph.check(&run_all(&runner, p, NodeStatus::Cached));
            })
        };
        group.throughput(Throughput::Elements(p.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(p.name()), |b| {
            populate();
            b.iter_custom(|iters| timed(iters, || (), |()| runner.run(p).expect("the run")));
        });
        // The HTML report of such a run, which `status` writes on demand.
        group.bench_function(format!("{}/report_html", p.name()), |b| {
            populate();
            let report = run_all(&runner, p, NodeStatus::Cached);
            b.iter_custom(|iters| timed(iters, || (), |()| html(&GraphView::of_run(p, &report))));
        });
    }
    group.finish();
}

/// (b) One 100 MB output: stored by a run and read back from a cached run's report, against
/// encoding and writing it, and reading and decoding it, with `std::fs` and the same codec.
fn large_output(c: &mut Criterion, scratch: &Scratch) {
    let data = scratch.fresh("large");
    let plain_dir = scratch.fresh("plain");
    let seed = 7;

    let mut b = Pipeline::builder("large_output");
    let handle = b
        .add("block", block::node(LARGE_LEN, seed))
        .expect("a node");
    let p = b.build();
    let runner = Runner::new(&data).jobs(THREADS);

    let plain_file = plain_dir.join("output.bin");

    // Checks, untimed and only if one of these benchmarks is selected: pipewright and the
    // plain way write the same bytes and read back the same value.
    let checked = OnceCell::new();
    let check = || {
        checked.get_or_init(|| {
            let expected = block(LARGE_LEN, seed);
            let bytes = Bincode::encode(&expected).expect("encodes");
            assert_eq!(bytes.len() as u64, LARGE_BYTES);
            clear(&data);
            let stored = run_all(&runner, &p, NodeStatus::Ran);
            assert_eq!(stored.get(handle).expect("the output"), &expected);
            drop(stored);
            let cached = run_all(&runner, &p, NodeStatus::Cached);
            assert_eq!(cached.get(handle).expect("the output"), &expected);
            let key = cached.nodes().next().and_then(|n| n.key()).expect("a key");
            // An output this large is a file of its own beside the index.
            let output = data.join("block").join(format!("{key}.bin"));
            assert_eq!(fs::read(output).expect("read"), bytes);
            drop(cached);
            fs::create_dir_all(&plain_dir).expect("a directory");
            fs::write(&plain_file, &bytes).expect("written");
            let decoded: Vec<u64> =
                Bincode::decode(&fs::read(&plain_file).expect("read")).expect("decodes");
            assert_eq!(decoded, expected);
        })
    };

    let mut group = c.benchmark_group("output_100MB");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(LARGE_BYTES));

    // Store: a run on an empty data directory (computing the value, encoding, hashing,
    // writing the entry). The report, which holds the value, is dropped untimed.
    group.bench_function("store/pipewright", |b| {
        check();
        b.iter_custom(|iters| {
            timed(
                iters,
                || clear(&data),
                |()| runner.run(&p).expect("the run"),
            )
        });
    });
    // Store, plainly: computing the value, encoding it, writing it into an empty directory,
    // and freeing the encoding, as a run frees its own; the value is dropped untimed, as
    // the run's report is.
    group.bench_function("store/plain", |b| {
        check();
        b.iter_custom(|iters| {
            timed(
                iters,
                || {
                    clear(&plain_dir);
                    fs::create_dir(&plain_dir).expect("a directory");
                },
                |()| {
                    let value = block(LARGE_LEN, seed);
                    let bytes = Bincode::encode(&value).expect("encodes");
                    fs::write(&plain_file, &bytes).expect("written");
                    drop(bytes);
                    value
                },
            )
        });
    });

    // The loads read the entry the checks or the store benchmark left, and the plain file.
    // Load: `get` on the report of a cached run (made untimed): reads the output's file, checks
    // its digest, decodes it.
    group.bench_function("load/pipewright", |b| {
        check();
        let _ = run_all(&runner, &p, NodeStatus::Cached);
        b.iter_custom(|iters| {
            timed(
                iters,
                || runner.run(&p).expect("the run"),
                |report| {
                    black_box(report.get(handle).expect("the output").len());
                    report
                },
            )
        });
    });
    // Load, plainly: reading the file and decoding it.
    group.bench_function("load/plain", |b| {
        check();
        b.iter_custom(|iters| {
            timed(
                iters,
                || (),
                |()| {
                    let bytes = fs::read(&plain_file).expect("read");
                    Bincode::decode::<Vec<u64>>(&bytes).expect("decodes")
                },
            )
        });
    });
    // The cached run itself: the output is a sink, so its digest is checked (read and
    // hashed), but it is not decoded.
    group.bench_function("load/cached_run", |b| {
        check();
        let _ = run_all(&runner, &p, NodeStatus::Cached);
        b.iter_custom(|iters| timed(iters, || (), |()| runner.run(&p).expect("the run")));
    });
    group.finish();
}

/// (c) What storing costs per node: 1,000 independent trivial nodes run on an empty data
/// directory (each writes its entry), and the same graph run in memory.
fn trivial_nodes(c: &mut Criterion, scratch: &Scratch) {
    let mut b = Pipeline::builder(format!("trivial_{TRIVIAL_NODES}"));
    for i in 0..TRIVIAL_NODES as u64 {
        b.add(format!("s{i}"), source::node(i)).expect("a node");
    }
    let p = b.build();
    let in_memory = Runner::in_memory().jobs(THREADS);
    // Checks, untimed and only if one of these benchmarks is selected.
    let checked = OnceCell::new();
    let check = || {
        checked.get_or_init(|| {
            let stored = Runner::new(scratch.fresh(p.name())).jobs(THREADS);
            let _ = run_all(&stored, &p, NodeStatus::Ran);
            let _ = run_all(&stored, &p, NodeStatus::Cached);
            let _ = run_all(&in_memory, &p, NodeStatus::Ran);
            let process = Runner::new(scratch.fresh(p.name()))
                .jobs(THREADS)
                .executor(Executor::Process);
            let _ = run_all(&process, &p, NodeStatus::Ran);
            let _ = run_all(&process, &p, NodeStatus::Cached);
        })
    };

    let mut group = c.benchmark_group(p.name());
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(p.len() as u64));
    // Each run has a data directory of its own, which nothing has used. The runner is made
    // before the timing, but its two worker threads start inside it, in its first run.
    group.bench_function("store", |b| {
        check();
        b.iter_custom(|iters| {
            timed(
                iters,
                || Runner::new(scratch.fresh(p.name())).jobs(THREADS),
                |runner| runner.run(&p).expect("the run"),
            )
        });
    });
    group.bench_function("in_memory", |b| {
        check();
        b.iter_custom(|iters| timed(iters, || (), |()| in_memory.run(&p).expect("the run")));
    });
    // The floor of a store that writes a file per node: each of the same 1,000 outputs
    // encoded, written to a file of its own in a new directory and renamed into place, on
    // two threads as the runs have.
    group.bench_function("file_per_node", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || {
                    let dir = scratch.fresh("files");
                    fs::create_dir_all(&dir).expect("a directory");
                    dir
                },
                |dir| {
                    std::thread::scope(|s| {
                        for half in 0..THREADS as u64 {
                            let dir = &dir;
                            s.spawn(move || {
                                for i in (half..TRIVIAL_NODES as u64).step_by(THREADS) {
                                    let bytes = Bincode::encode(&i).expect("encodes");
                                    let tmp = dir.join(format!(".tmp-{i}"));
                                    fs::write(&tmp, &bytes).expect("a write");
                                    fs::rename(&tmp, dir.join(format!("{i}.bin")))
                                        .expect("a rename");
                                }
                            });
                        }
                    });
                },
            )
        });
    });
    // The same, each node in a worker process of its own: spawn, load, run, store.
    group.bench_function("process", |b| {
        check();
        b.iter_custom(|iters| {
            timed(
                iters,
                || {
                    Runner::new(scratch.fresh(p.name()))
                        .jobs(THREADS)
                        .executor(Executor::Process)
                },
                |runner| runner.run(&p).expect("the run"),
            )
        });
    });
    group.finish();
}

/// Runs the three benchmarks as `criterion_main!` would, but keeps the scratch directory
/// (so every file the benchmarks write) until the last one has finished. Marked, because
/// the process executor's workers are this program.
#[pipewright::main]
fn main() {
    let scratch = Scratch::new();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    cached_rerun(&mut c, &scratch);
    large_output(&mut c, &scratch);
    trivial_nodes(&mut c, &scratch);
    c.final_summary();
}
