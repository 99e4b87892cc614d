//! Scheduler overhead: trivial tasks on three graph shapes, run by pipewright, by a
//! hand-written rayon executor with atomic dependency counters (the floor), and by `dagx`.
//!
//! Every task returns a `u64` computed from its inputs, so the time measured is almost all
//! scheduling. Each implementation runs on two worker threads. Only the run itself is timed:
//! graphs are built before the timer starts and results are dropped after it stops.
//!
//! `cargo bench -p pipewright-benches --bench scheduler`; see `benches/README.md` for the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Worker threads for every implementation.
const THREADS: usize = 2;

/// One node of a graph shape. Inputs are indices of earlier nodes, so the list is in
/// topological order.
#[derive(Debug, Clone)]
enum Op {
    /// No input: returns its constant.
    Source(u64),
    /// One input: returns it plus one.
    Step(usize),
    /// Two inputs: returns their sum plus one.
    Combine(usize, usize),
    /// Any number of inputs: returns their sum.
    Gather(Vec<usize>),
}

impl Op {
    /// Calls `f` with each input, in order.
    fn for_each_input(&self, mut f: impl FnMut(usize)) {
        match self {
            Op::Source(_) => {}
            Op::Step(p) => f(*p),
            Op::Combine(a, b) => {
                f(*a);
                f(*b);
            }
            Op::Gather(ps) => ps.iter().copied().for_each(f),
        }
    }

    /// The node's value given a way to read its inputs' values.
    fn eval(&self, value: impl Fn(usize) -> u64) -> u64 {
        match self {
            Op::Source(x) => *x,
            Op::Step(p) => value(*p).wrapping_add(1),
            Op::Combine(a, b) => value(*a).wrapping_add(value(*b)).wrapping_add(1),
            Op::Gather(ps) => ps.iter().fold(0u64, |acc, &p| acc.wrapping_add(value(p))),
        }
    }
}

/// A graph shape: its name and its nodes in topological order.
struct Shape {
    name: String,
    ops: Vec<Op>,
}

impl Shape {
    /// (a) `n` independent sources gathered by one sink.
    fn fan_in(n: usize) -> Self {
        let mut ops: Vec<Op> = (0..n as u64).map(Op::Source).collect();
        ops.push(Op::Gather((0..n).collect()));
        Shape {
            name: format!("fan_in_{n}"),
            ops,
        }
    }

    /// (b) a chain of `n` nodes.
    fn chain(n: usize) -> Self {
        let mut ops = vec![Op::Source(0)];
        ops.extend((1..n).map(|i| Op::Step(i - 1)));
        Shape {
            name: format!("chain_{n}"),
            ops,
        }
    }

    /// (c) `layers` layers of `width` nodes; node `j` of a layer depends on nodes `j` and
    /// `j + 1` (wrapping) of the layer before.
    fn layered(layers: usize, width: usize) -> Self {
        let mut ops: Vec<Op> = (0..width as u64).map(Op::Source).collect();
        for layer in 1..layers {
            let prev = (layer - 1) * width;
            ops.extend((0..width).map(|j| Op::Combine(prev + j, prev + (j + 1) % width)));
        }
        Shape {
            name: format!("layers_{layers}x{width}"),
            ops,
        }
    }

    fn len(&self) -> usize {
        self.ops.len()
    }

    /// The value of every node, computed sequentially: what every implementation must find.
    fn reference(&self) -> Vec<u64> {
        let mut values = Vec::with_capacity(self.len());
        for op in &self.ops {
            let v = op.eval(|i| values[i]);
            values.push(v);
        }
        values
    }

    /// The nodes nothing consumes.
    fn sinks(&self) -> Vec<usize> {
        let mut consumed = vec![false; self.len()];
        for op in &self.ops {
            op.for_each_input(|i| consumed[i] = true);
        }
        (0..self.len()).filter(|&i| !consumed[i]).collect()
    }
}

/// pipewright: the graph built once with the typed builder, one in-memory [`Runner`] reused
/// (so that its thread pool is too).
mod pw {
    use pipewright::{Handle, Pipeline, Runner, task};

    use super::{Op, Shape};

    #[task]
    fn source(x: u64) -> u64 {
        x
    }

    #[task]
    fn step(prev: &u64) -> u64 {
        prev.wrapping_add(1)
    }

    #[task]
    fn combine(a: &u64, b: &u64) -> u64 {
        a.wrapping_add(*b).wrapping_add(1)
    }

    #[task]
    fn gather(parts: &[&u64]) -> u64 {
        parts.iter().fold(0u64, |acc, &&p| acc.wrapping_add(p))
    }

    /// Builds `shape` as a pipeline; returns it with the handle of every node.
    pub(super) fn build(shape: &Shape) -> (Pipeline, Vec<Handle<u64>>) {
        let mut b = Pipeline::builder(shape.name.as_str());
        let mut handles: Vec<Handle<u64>> = Vec::with_capacity(shape.len());
        for (i, op) in shape.ops.iter().enumerate() {
            let name = format!("n{i}");
            let handle = match op {
                Op::Source(x) => b.add(name, source::node(*x)),
                Op::Step(p) => b.add(name, step::node(handles[*p])),
                Op::Combine(x, y) => b.add(name, combine::node(handles[*x], handles[*y])),
                Op::Gather(ps) => b.add(name, gather::node(ps.iter().map(|&p| handles[p]))),
            }
            .expect("a valid node");
            handles.push(handle);
        }
        (b.build(), handles)
    }

    /// A runner that keeps nothing on disk, so that every node runs in every run.
    pub(super) fn runner() -> Runner {
        Runner::in_memory().jobs(super::THREADS)
    }
}

/// The floor: a rayon pool, one `AtomicUsize` counter of missing inputs per node, a node
/// spawned the moment its counter reaches zero, results stored as `AtomicU64`s.
mod baseline {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use rayon::{Scope, ThreadPool};

    use super::{Op, Shape};

    /// The graph in the form the executor walks, computed once.
    pub(super) struct Graph {
        ops: Vec<Op>,
        children: Vec<Vec<usize>>,
        in_degree: Vec<usize>,
        roots: Vec<usize>,
    }

    impl Graph {
        pub(super) fn new(shape: &Shape) -> Self {
            let n = shape.len();
            let mut children = vec![Vec::new(); n];
            let mut in_degree = vec![0; n];
            for (i, op) in shape.ops.iter().enumerate() {
                op.for_each_input(|p| {
                    children[p].push(i);
                    in_degree[i] += 1;
                });
            }
            let roots = (0..n).filter(|&i| in_degree[i] == 0).collect();
            Graph {
                ops: shape.ops.clone(),
                children,
                in_degree,
                roots,
            }
        }
    }

    struct State<'g> {
        graph: &'g Graph,
        pending: Vec<AtomicUsize>,
        results: Vec<AtomicU64>,
    }

    impl State<'_> {
        fn execute<'s>(&'s self, scope: &Scope<'s>, i: usize) {
            let value = self.graph.ops[i].eval(|p| self.results[p].load(Ordering::Relaxed));
            self.results[i].store(value, Ordering::Relaxed);
            for &child in &self.graph.children[i] {
                // AcqRel: publishes this result to whoever takes the counter to zero.
                if self.pending[child].fetch_sub(1, Ordering::AcqRel) == 1 {
                    scope.spawn(move |scope| self.execute(scope, child));
                }
            }
        }
    }

    /// Runs every node of `graph` on `pool` and returns every node's value.
    pub(super) fn run(graph: &Graph, pool: &ThreadPool) -> Vec<AtomicU64> {
        let state = State {
            graph,
            pending: graph
                .in_degree
                .iter()
                .map(|&d| AtomicUsize::new(d))
                .collect(),
            results: (0..graph.ops.len()).map(|_| AtomicU64::new(0)).collect(),
        };
        let state_ref = &state;
        pool.scope(|scope| {
            for &root in &graph.roots {
                scope.spawn(move |scope| state_ref.execute(scope, root));
            }
        });
        state.results
    }
}

/// `dagx` 0.3: a `DagRunner` runs once, so a fresh one is built before each timed run.
/// Its futures are spawned on a `futures-executor` thread pool of two threads, and
/// `DagRunner::run` is driven by `futures_executor::block_on` on the calling thread.
///
/// dagx takes at most eight inputs per task, so a `Gather` node cannot be expressed: it is
/// left out, and its inputs become sinks whose outputs dagx keeps.
mod dx {
    use dagx::{DagRunner, Task, TaskHandle, task};

    use super::{Op, Shape};

    struct Source(u64);

    #[task]
    impl Source {
        async fn run(&self) -> u64 {
            self.0
        }
    }

    struct Step;

    #[task]
    impl Step {
        async fn run(prev: &u64) -> u64 {
            prev.wrapping_add(1)
        }
    }

    struct Combine;

    #[task]
    impl Combine {
        async fn run(a: &u64, b: &u64) -> u64 {
            a.wrapping_add(*b).wrapping_add(1)
        }
    }

    /// The number of nodes dagx runs for `shape`.
    pub(super) fn node_count(shape: &Shape) -> usize {
        shape
            .ops
            .iter()
            .filter(|op| !matches!(op, Op::Gather(_)))
            .count()
    }

    /// Builds `shape` as a dagx graph; returns it with the handle of every node it holds.
    pub(super) fn build(shape: &Shape) -> (DagRunner, Vec<Option<TaskHandle<u64>>>) {
        let dag = DagRunner::new();
        let mut handles: Vec<Option<TaskHandle<u64>>> = Vec::with_capacity(shape.len());
        for op in &shape.ops {
            let get = |i: usize| handles[i].expect("inputs of a dagx node are dagx nodes");
            let handle = match op {
                Op::Source(x) => Some(dag.add_task(Source(*x)).into()),
                Op::Step(p) => Some(dag.add_task(Step).depends_on(get(*p))),
                Op::Combine(a, b) => Some(dag.add_task(Combine).depends_on((&get(*a), &get(*b)))),
                Op::Gather(_) => None,
            };
            handles.push(handle);
        }
        (dag, handles)
    }
}

/// Checks once, outside the timings, that every implementation computes the reference.
fn check(
    shape: &Shape,
    rayon_pool: &rayon::ThreadPool,
    futures_pool: &futures_executor::ThreadPool,
) {
    let expected = shape.reference();
    let sinks = shape.sinks();

    let (pipeline, handles) = pw::build(shape);
    let report = pw::runner().run(&pipeline).expect("the run starts");
    assert!(report.succeeded(), "{}: pipewright run failed", shape.name);
    for &s in &sinks {
        assert_eq!(
            *report.get(handles[s]).expect("a sink is kept"),
            expected[s]
        );
    }

    let graph = baseline::Graph::new(shape);
    let results = baseline::run(&graph, rayon_pool);
    for &s in &sinks {
        assert_eq!(
            results[s].load(std::sync::atomic::Ordering::Relaxed),
            expected[s]
        );
    }

    let (dag, handles) = dx::build(shape);
    futures_executor::block_on(dag.run(|fut| futures_pool.spawn_ok(fut))).expect("dagx run");
    for (i, op) in shape.ops.iter().enumerate() {
        let value = |j: usize| {
            dag.get(handles[j].expect("a dagx node"))
                .expect("an output")
        };
        match op {
            Op::Gather(_) => assert_eq!(op.eval(value), expected[i]),
            _ if sinks.contains(&i) => assert_eq!(value(i), expected[i]),
            _ => {}
        }
    }
}

fn scheduler(c: &mut Criterion) {
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .expect("a rayon pool");
    let futures_pool = futures_executor::ThreadPool::builder()
        .pool_size(THREADS)
        .create()
        .expect("a futures pool");

    let shapes = [
        Shape::fan_in(10_000),
        Shape::chain(1_000),
        Shape::layered(100, 100),
    ];
    for shape in &shapes {
        check(shape, &rayon_pool, &futures_pool);

        let mut group = c.benchmark_group(shape.name.as_str());

        group.throughput(Throughput::Elements(shape.len() as u64));
        let (pipeline, _) = pw::build(shape);
        let runner = pw::runner();
        group.bench_function(BenchmarkId::from_parameter("pipewright"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let report = runner.run(&pipeline).expect("the run starts");
                    total += start.elapsed();
                    drop(black_box(report));
                }
                total
            });
        });

        let graph = baseline::Graph::new(shape);
        group.bench_function(BenchmarkId::from_parameter("baseline"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let results = baseline::run(&graph, &rayon_pool);
                    total += start.elapsed();
                    drop(black_box(results));
                }
                total
            });
        });

        group.throughput(Throughput::Elements(dx::node_count(shape) as u64));
        group.bench_function(BenchmarkId::from_parameter("dagx"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (dag, handles) = dx::build(shape);
                    let start = Instant::now();
                    futures_executor::block_on(dag.run(|fut| futures_pool.spawn_ok(fut)))
                        .expect("dagx run");
                    total += start.elapsed();
                    drop(black_box((dag, handles)));
                }
                total
            });
        });

        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = scheduler
}
criterion_main!(benches);
