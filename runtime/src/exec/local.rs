//! The in-process executor: a rayon pool driven by per-node dependency counters.
//!
//! A node is spawned the moment its last input is ready; nothing polls or sleeps. When a
//! node finishes, the first of its children that became ready runs next on the same thread
//! and the others are spawned, so a chain costs no spawns at all. A failed node poisons its
//! children, which end as *upstream failed* without starting, and so on down the graph;
//! independent branches run to the end.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rayon::{Scope, ThreadPool};

use crate::graph::{NodeId, Pipeline, Wire};
use crate::report::{NodeReport, NodeStatus};
use crate::task::{Ctx, InputValues, Inputs, TaskError, Value};

/// No failed upstream.
const NONE: u32 = u32::MAX;

/// The run-time state of one node.
struct Cell {
    /// Upstream nodes that have not settled yet.
    pending: AtomicU32,
    /// The first failed upstream, or [`NONE`].
    failed_upstream: AtomicU32,
    /// Consumers that have not finished with this node's output yet.
    consumers_left: AtomicU32,
    output: Mutex<Option<Arc<Value>>>,
    outcome: OnceLock<Outcome>,
}

struct Outcome {
    status: NodeStatus,
    duration: Duration,
    error: Option<Arc<TaskError>>,
}

struct Run<'p> {
    pipeline: &'p Pipeline,
    /// The run's span, parent of every node's span whatever thread the node runs on.
    span: &'p tracing::Span,
    keep: &'p [bool],
    cells: Vec<Cell>,
}

/// Runs every node of `pipeline` on `pool`. `keep[i]` says whether node `i`'s output must
/// outlive its consumers; the outputs of the other nodes are dropped as soon as their last
/// consumer is done.
pub(crate) fn run(
    pipeline: &Pipeline,
    span: &tracing::Span,
    pool: &ThreadPool,
    keep: &[bool],
) -> (Vec<NodeReport>, Vec<Option<Arc<Value>>>) {
    let run = Run {
        pipeline,
        span,
        keep,
        cells: pipeline
            .nodes
            .iter()
            .map(|node| Cell {
                pending: AtomicU32::new(node.upstream.len() as u32),
                failed_upstream: AtomicU32::new(NONE),
                consumers_left: AtomicU32::new(node.downstream.len() as u32),
                output: Mutex::new(None),
                outcome: OnceLock::new(),
            })
            .collect(),
    };
    let roots = pipeline
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.upstream.is_empty())
        .map(|(i, _)| NodeId(i as u32));

    let run_ref = &run;
    pool.scope(|scope| {
        for root in roots {
            scope.spawn(move |scope| run_ref.drive(scope, root));
        }
    });
    run.finish()
}

impl<'p> Run<'p> {
    /// Runs `first`, then each node it makes ready on this thread, until none is left.
    fn drive<'s>(&'s self, scope: &Scope<'s>, first: NodeId) {
        let mut next = Some(first);
        while let Some(id) = next {
            self.execute(id);
            next = self.settle(scope, id);
        }
    }

    /// Runs the task of node `id` and records its outcome.
    fn execute(&self, id: NodeId) {
        let node = &self.pipeline.nodes[id.index()];
        let meta = node.task.meta();
        let span = tracing::info_span!(
            target: "pipewright",
            parent: self.span,
            "node",
            node = %node.name,
            task = %meta.name,
        );
        let _entered = span.enter();
        tracing::debug!(target: "pipewright", "started");

        let ctx = Ctx::new(
            self.pipeline.shared_name().clone(),
            meta.name,
            node.name.clone(),
        );
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let slots: Vec<InputValues> = node.wires.iter().map(|w| self.inputs(w)).collect();
            node.task.run(&Inputs { slots: &slots }, &ctx)
        }))
        .unwrap_or_else(|payload| Err(TaskError::from_panic(payload)));
        let duration = start.elapsed();
        self.release_inputs(id);

        let cell = &self.cells[id.index()];
        let outcome = match result {
            Ok(value) => {
                tracing::info!(target: "pipewright", ?duration, "finished");
                if !node.downstream.is_empty() || self.keep[id.index()] {
                    *lock(&cell.output) = Some(value);
                }
                Outcome {
                    status: NodeStatus::Ran,
                    duration,
                    error: None,
                }
            }
            Err(error) => {
                tracing::error!(target: "pipewright", ?duration, error = %error, "failed");
                Outcome {
                    status: NodeStatus::Failed,
                    duration,
                    error: Some(Arc::new(error)),
                }
            }
        };
        let _ = cell.outcome.set(outcome);
    }

    /// The upstream outputs wired to one input argument.
    fn inputs(&self, wire: &Wire) -> InputValues {
        match wire {
            Wire::One(up) => InputValues::One(self.output_of(*up)),
            Wire::Many(ups) => {
                InputValues::Many(ups.iter().map(|up| self.output_of(*up)).collect())
            }
        }
    }

    fn output_of(&self, up: NodeId) -> Arc<Value> {
        lock(&self.cells[up.index()].output)
            .clone()
            .unwrap_or_else(|| {
                unreachable!("an upstream output is held until its consumers finish")
            })
    }

    /// Tells the upstream nodes of `id` that it is done with their outputs, and drops each
    /// output whose last consumer this was, unless it is kept.
    fn release_inputs(&self, id: NodeId) {
        for up in &self.pipeline.nodes[id.index()].upstream {
            let cell = &self.cells[up.index()];
            if cell.consumers_left.fetch_sub(1, Ordering::AcqRel) == 1 && !self.keep[up.index()] {
                let value = lock(&cell.output).take();
                drop(value);
            }
        }
    }

    /// Tells the children of the settled node `id` that it is done. Children that become
    /// ready are spawned, except the first, which is returned to run on this thread;
    /// children poisoned by a failure settle as *upstream failed* at once, and so on down.
    fn settle<'s>(&'s self, scope: &Scope<'s>, id: NodeId) -> Option<NodeId> {
        let mut next = None;
        // Nodes settled as upstream failed here, whose children must hear of it too; it
        // allocates only when something failed.
        let mut settled = Vec::new();
        let mut done = id;
        loop {
            let failed = !self.status(done).is_success();
            for &child in &self.pipeline.nodes[done.index()].downstream {
                let cell = &self.cells[child.index()];
                if failed {
                    let _ = cell.failed_upstream.compare_exchange(
                        NONE,
                        done.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
                if cell.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                    continue;
                }
                if cell.failed_upstream.load(Ordering::Acquire) != NONE {
                    self.skip(child);
                    settled.push(child);
                } else if next.is_none() {
                    next = Some(child);
                } else {
                    scope.spawn(move |scope| self.drive(scope, child));
                }
            }
            match settled.pop() {
                Some(more) => done = more,
                None => return next,
            }
        }
    }

    /// Settles node `id` as *upstream failed* without running it.
    fn skip(&self, id: NodeId) {
        self.release_inputs(id);
        let upstream = self.cells[id.index()]
            .failed_upstream
            .load(Ordering::Acquire);
        tracing::warn!(
            target: "pipewright",
            parent: self.span,
            node = %self.pipeline.nodes[id.index()].name,
            upstream = %self.pipeline.nodes[upstream as usize].name,
            "not run: upstream failed"
        );
        let _ = self.cells[id.index()].outcome.set(Outcome {
            status: NodeStatus::UpstreamFailed,
            duration: Duration::ZERO,
            error: None,
        });
    }

    fn status(&self, id: NodeId) -> NodeStatus {
        self.cells[id.index()]
            .outcome
            .get()
            .map_or(NodeStatus::UpstreamFailed, |o| o.status)
    }

    /// Turns the settled cells into the run's node reports and kept outputs.
    fn finish(self) -> (Vec<NodeReport>, Vec<Option<Arc<Value>>>) {
        let Run {
            pipeline, cells, ..
        } = self;
        cells
            .into_iter()
            .zip(&pipeline.nodes)
            .map(|(cell, node)| {
                let outcome = cell.outcome.into_inner().unwrap_or(Outcome {
                    status: NodeStatus::UpstreamFailed,
                    duration: Duration::ZERO,
                    error: None,
                });
                let failed = cell.failed_upstream.into_inner();
                let report = NodeReport {
                    name: node.name.clone(),
                    task: node.task.meta().name,
                    status: outcome.status,
                    duration: outcome.duration,
                    error: outcome.error,
                    upstream_failed: (outcome.status == NodeStatus::UpstreamFailed
                        && failed != NONE)
                        .then(|| pipeline.nodes[failed as usize].name.clone()),
                };
                let output = cell
                    .output
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner);
                (report, output)
            })
            .unzip()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
