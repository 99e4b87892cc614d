// Over 500 lines: the scheduler loop and the calls it inlines stay in one file, as one hot path.
//! The in-process executor: a rayon pool driven by per-node dependency counters.
//!
//! A node is spawned the moment its last input is ready; nothing polls or sleeps. When a
//! node finishes, the first of its children that became ready runs next on the same thread
//! and the others are spawned, so a chain costs no spawns at all. A failed node poisons its
//! children, which end as *upstream failed* without starting, and so on down the graph;
//! independent branches run to the end.
//!
//! With a store, each node is decided when it becomes ready: its key is computed from its
//! inputs' output digests, and a usable entry makes it *cached* without reading its output.
//! Outputs are read from the store only when a node that runs needs them; an entry that
//! turns out damaged then is recomputed on the spot, with its damaged ancestors, in
//! dependency order and without recursion.

//!
//! This module is the scheduler: the run's state, the loop that drives each thread from
//! node to node, and how a settled node makes its children ready. `cells` holds each
//! node's state and what the report reads of it; `stored` decides and computes a node
//! with a store; `repair` reads stored outputs and recomputes damaged ones.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rayon::{Scope, ThreadPool};
use smallvec::SmallVec;

use super::{Settings, Stop};
use crate::cache::{Committed, Pending, Store, StoreError, Ticket};
use crate::graph::{Node, NodeId, Pipeline, Wire};
use crate::node::compute::{self, Retries, call};
use crate::progress::Progress;
use crate::report::{MapOutcomes, NO_WORKER, NodeOutcome, NodeStatus, nanos};
use crate::task::{Ctx, InputValues, TaskError, Value};
use cells::{Cell, Slot, UNSETTLED};
use stored::{Done, Looked};

mod branches;
mod cells;
mod repair;
mod stored;

/// The inputs of one node; most nodes have a few, which then need no allocation.
type Gathered = SmallVec<[InputValues; 4]>;

/// No failed upstream.
const NONE: u32 = u32::MAX;

/// The clock that times nodes: the CPU's time-stamp counter where it runs at a constant
/// rate (read in a few nanoseconds, where the OS clock takes a few tens), else the OS's
/// monotonic clock. Calibrated against the OS clock once per process, by the first run:
/// typically in under a millisecond, at most in 200 ms.
static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// The output of a node handed to the node run next on the same thread, its only
/// consumer, which reads it as its one input: it does not go through the producer's cell.
struct Handoff {
    from: NodeId,
    to: NodeId,
    value: Arc<Value>,
}

struct Run<'p> {
    pipeline: &'p Pipeline,
    /// Set when the run is cancelled.
    stop: Arc<Stop>,
    /// Set when a failure stops a fail-fast run.
    halt: AtomicBool,
    /// The node clock's reading when the run started.
    started: u64,
    /// The run's span, parent of every node's span whatever thread the node runs on.
    span: &'p tracing::Span,
    settings: Settings<'p>,
    cells: Vec<Cell>,
    /// A task context for each thread of the pool, so that a loop of nodes started there
    /// takes no reference counts for one.
    contexts: Vec<ThreadCtx>,
    /// The settled nodes whose output a thread is reading from the store or recomputing;
    /// see [`load`](Run::load).
    loading: Mutex<HashSet<NodeId>>,
    /// Woken when a node leaves `loading`.
    loaded: Condvar,
    /// The branches of each mapped node (in the order of the pipeline's maps), once made.
    maps: Vec<OnceLock<Arc<branches::Branches>>>,
    /// How many branches the mapped nodes made, all together.
    branches_made: AtomicUsize,
    /// The nodes whose entries were queued to be committed, with their commits.
    commits: Mutex<Vec<(NodeId, Ticket)>>,
    /// Who hears that a node's queued entry is committed, by the node's index: the journal.
    committed: Option<Arc<dyn Committed>>,
}

/// The task context of one thread, on a cache line of its own.
#[repr(align(128))]
struct ThreadCtx(Mutex<Ctx>);

/// Runs every node of `pipeline` on `pool` and returns how each ended, with the outputs
/// that are kept, and how each branch of its mapped nodes ended.
pub(crate) fn run(
    pipeline: &Pipeline,
    span: &tracing::Span,
    pool: &ThreadPool,
    settings: Settings<'_>,
) -> (Vec<NodeOutcome>, Vec<MapOutcomes>) {
    // The cells are made, and turned into outcomes at the end, on a thread of the pool,
    // which runs nodes in between: their memory is then in a worker's cache, not this
    // thread's.
    pool.install(|| run_here(pipeline, span, settings))
}

/// [`run`], on a thread of the pool.
fn run_here(
    pipeline: &Pipeline,
    span: &tracing::Span,
    settings: Settings<'_>,
) -> (Vec<NodeOutcome>, Vec<MapOutcomes>) {
    let needed = settings.needed;
    let committed = settings.progress.and_then(Progress::committed);
    let run = Run {
        pipeline,
        stop: settings.stop.clone(),
        halt: AtomicBool::new(false),
        started: CLOCK.raw(),
        span,
        contexts: (0..rayon::current_num_threads())
            .map(|_| ThreadCtx(Mutex::new(run_ctx(pipeline, &settings.stop))))
            .collect(),
        settings,
        cells: pipeline
            .all_nodes()
            .map(|node| {
                let consumers = node
                    .downstream()
                    .iter()
                    .filter(|d| needed[d.index()])
                    .count() as u32;
                Cell {
                    pending: AtomicU32::new(node.upstream().len() as u32),
                    failed_upstream: AtomicU32::new(NONE),
                    status: AtomicU8::new(UNSETTLED),
                    worker: AtomicU32::new(NO_WORKER),
                    started: AtomicU64::new(0),
                    duration: AtomicU64::new(0),
                    consumers,
                    slot: Mutex::new(Slot {
                        consumers_left: consumers,
                        value: None,
                        stored: None,
                        details: None,
                    }),
                }
            })
            .collect(),
        loading: Mutex::default(),
        loaded: Condvar::new(),
        maps: pipeline
            .nodes
            .maps()
            .iter()
            .map(|_| OnceLock::new())
            .collect(),
        branches_made: AtomicUsize::new(0),
        commits: Mutex::default(),
        committed,
    };
    let roots = pipeline
        .all_nodes()
        .enumerate()
        .filter(|(i, node)| node.upstream().is_empty() && run.settings.needed[*i])
        .map(|(i, _)| NodeId(i as u32));

    if let Some(store) = run.settings.store {
        read_last_entries(pipeline, needed, store);
    }
    let run_ref = &run;
    rayon::scope(|scope| {
        for root in roots {
            scope.spawn(move |scope| run_ref.drive(scope, root));
        }
    });
    run.log_cached();
    let mut run = run;
    let uncommitted = run.uncommitted();
    let progress = run.settings.progress;
    let made = std::mem::take(&mut run.maps);
    let mut outcomes = run.finish();
    let failed = fail_uncommitted(pipeline, progress, &mut outcomes, uncommitted);
    let mut branches = branches::outcomes(pipeline.nodes.maps(), made, &mut outcomes);
    // The branches of a mapped node below a failed commit were built on what the store
    // does not hold, as the node itself.
    for map in &mut branches {
        if failed.get(map.node.index()) == Some(&true) {
            let up = outcomes[map.node.index()].failed_upstream;
            for outcome in &mut map.outcomes {
                if !matches!(
                    outcome.status,
                    NodeStatus::NotNeeded | NodeStatus::UpstreamFailed
                ) {
                    *outcome = NodeOutcome::new(NodeStatus::UpstreamFailed);
                    outcome.failed_upstream = up;
                }
            }
        }
    }
    (outcomes, branches)
}

/// Nodes per part in which a run reads its tasks' last entries, each part on a thread of
/// the pool and a connection of its own: a smaller run reads them on this thread alone.
const NODES_PER_PART: usize = 1_000;

/// Reads the last entries of every cached task of the nodes `needed` of `pipeline` before
/// the first node runs, as their lookups will ask for them all.
fn read_last_entries(pipeline: &Pipeline, needed: &[bool], store: &Store) {
    let mut tasks: Vec<&str> = Vec::new();
    let mut nodes = 0;
    for (node, _) in pipeline.all_nodes().zip(needed).filter(|(_, n)| **n) {
        let meta = node.task().meta();
        nodes += 1;
        if meta.cache && !tasks.contains(&meta.name) {
            tasks.push(meta.name);
        }
    }
    let parts = (nodes / NODES_PER_PART).clamp(1, rayon::current_num_threads());
    store.read_last_entries(&tasks, parts);
}

impl<'p> Run<'p> {
    /// Runs `first`, then each node it makes ready on this thread, until none is left.
    fn drive<'s>(&'s self, scope: &Scope<'s>, first: NodeId) {
        if let Some(dispatch) = self.settings.dispatch {
            return tracing::dispatcher::with_default(dispatch, || self.drive_here(scope, first));
        }
        self.drive_here(scope, first);
    }

    fn drive_here<'s>(&'s self, scope: &Scope<'s>, first: NodeId) {
        let mut next = Some(first);
        let worker = rayon::current_thread_index();
        // One context for the nodes run here, pointed at each in turn: this thread's,
        // unless a task on this thread that waits on the pool runs this loop inside its own.
        let mut guard = worker
            .and_then(|w| self.contexts.get(w))
            .and_then(|c| c.0.try_lock().ok());
        let mut own = None;
        let ctx = match &mut guard {
            Some(guard) => &mut **guard,
            None => own.insert(self.new_ctx()),
        };
        let worker = worker.map_or(NO_WORKER, |w| w as u32);
        // One clock reading per node: the end of one node is the start of the next.
        let mut start = self.clock();
        let mut handed = None;
        while let Some(id) = next {
            if self.is_mapped(id) {
                // Its branches run on their own; the last of them settles it.
                next = self.start_map(scope, id);
                start = self.clock();
                continue;
            }
            let input = handed.take().map(|h: Handoff| h.value);
            let (end, output) = self.execute(id, start, input, worker, ctx);
            start = end;
            next = self.settle(scope, id);
            if let Some(output) = output {
                // The only consumer reads nothing else, so this node made it ready.
                debug_assert_eq!(next, Some(output.to));
                if next == Some(output.to) {
                    handed = Some(output);
                } else {
                    self.put(output.from, output.value, None, None);
                }
            }
        }
    }

    /// Logs the nodes settled on their entries, in one line: a cached node has no span and
    /// no line of its own.
    fn log_cached(&self) {
        let log = || {
            if !tracing::enabled!(target: "pipewright", tracing::Level::DEBUG) {
                return;
            }
            let mut names = String::new();
            let mut count = 0usize;
            for i in 0..self.cells.len() {
                let id = NodeId::at(i);
                if self.status(id) == NodeStatus::Cached {
                    if count > 0 {
                        names.push_str(", ");
                    }
                    names.push_str(self.pipeline.node_name(id));
                    count += 1;
                }
            }
            if count > 0 {
                tracing::debug!(target: "pipewright", parent: self.span, "cached {count}: {names}");
            }
        };
        match self.settings.dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, log),
            None => log(),
        }
    }

    /// Records in `outcome` that its node's (or branch's) work ended after `duration` with
    /// `error`: cancelled, or failed, which halts the run under fail-fast.
    fn ended_with(&self, outcome: &mut NodeOutcome, error: TaskError, duration: Duration) {
        outcome.duration = nanos(duration);
        if matches!(error, TaskError::Cancelled) {
            tracing::warn!(target: "pipewright", ?duration, "cancelled while running");
            outcome.status = NodeStatus::Cancelled;
            return;
        }
        tracing::error!(target: "pipewright", ?duration, error = %error, "failed");
        if self.settings.fail_fast {
            self.halt.store(true, Ordering::Release);
        }
        outcome.status = NodeStatus::Failed;
        let details = outcome.details_mut();
        details.backtrace = matches!(error, TaskError::Panicked(_))
            .then(crate::backtrace::take_backtrace)
            .flatten()
            .map(Arc::from);
        details.error = Some(Arc::new(error));
    }

    /// A context for the tasks of this run.
    fn new_ctx(&self) -> Ctx {
        run_ctx(self.pipeline, &self.stop)
    }

    /// The time since the start of the run, in nanoseconds.
    fn clock(&self) -> u64 {
        CLOCK.delta_as_nanos(self.started, CLOCK.raw())
    }

    /// Decides node `id`, which started at `start` (see [`clock`](Self::clock)), runs its
    /// task if it must, and records its outcome. `input` is its one input, when the node
    /// run before on this thread handed it over. Returns when it finished, and its output
    /// if it hands it over to its only consumer in turn.
    fn execute(
        &self,
        id: NodeId,
        start: u64,
        input: Option<Arc<Value>>,
        worker: u32,
        ctx: &mut Ctx,
    ) -> (u64, Option<Handoff>) {
        let node = &self.pipeline.node_at(id);
        let meta = node.task().meta();
        let mut looked = None;
        if let Some(store) = self.settings.store
            && !self.stopped()
        {
            match self.look(id, node, store) {
                Ok(Looked::Cached(Done::Cached { key })) => {
                    self.release_inputs(id);
                    let end = self.clock();
                    let mut outcome = NodeOutcome::new(NodeStatus::Cached);
                    outcome.started = start;
                    outcome.worker = worker;
                    outcome.details_mut().key = Some(key);
                    self.settle_with(id, outcome, None);
                    return (end, None);
                }
                other => looked = Some(other),
            }
        }
        let span = tracing::info_span!(
            target: "pipewright",
            parent: self.span,
            "node",
            node = %node.name(),
            task = %meta.name,
        );
        let _entered = span.enter();

        if self.stopped() {
            drop(input);
            self.release_inputs(id);
            self.settle_without_running(id, NodeStatus::Cancelled, NONE);
            return (self.clock(), None);
        }
        let result = match self.settings.store {
            // Inputs are released as they are gathered.
            None => match self.run_in_memory(id, node, input, ctx) {
                Ok(value) => {
                    let end = self.clock();
                    let duration = end.saturating_sub(start);
                    tracing::info!(
                        target: "pipewright",
                        duration = ?Duration::from_nanos(duration),
                        "finished"
                    );
                    return (end, self.settle_ran(id, start, duration, worker, value));
                }
                Err(error) => Err(error),
            },
            Some(store) => {
                let result = match looked.unwrap_or_else(|| self.look(id, node, store)) {
                    Ok(Looked::Cached(done)) => Ok(done),
                    Ok(Looked::Unsettled(keyed)) => self.work(id, node, store, keyed),
                    Err(error) => Err(error),
                };
                self.release_inputs(id);
                result
            }
        };
        let end = self.clock();
        let duration = Duration::from_nanos(end.saturating_sub(start));
        let mut outcome = NodeOutcome::new(NodeStatus::Ran);
        outcome.started = start;
        outcome.worker = worker;

        match result {
            Ok(Done::Ran {
                key,
                reason,
                queued,
            }) => {
                tracing::info!(target: "pipewright", ?duration, "finished");
                outcome.duration = nanos(duration);
                outcome.queued = queued;
                let details = outcome.details_mut();
                details.key = key;
                details.reason = Some(reason);
            }
            Ok(Done::Cached { key }) => {
                outcome.status = NodeStatus::Cached;
                outcome.details_mut().key = Some(key);
            }
            Err(error) => self.ended_with(&mut outcome, error, duration),
        }
        self.settle_with(id, outcome, None);
        (end, None)
    }

    /// Records that node `id` ran in memory from `start` for `duration` nanoseconds on
    /// `worker`, with output `value`; returns the handoff of the output to its only
    /// consumer, if that consumer reads it as its one input.
    fn settle_ran(
        &self,
        id: NodeId,
        start: u64,
        duration: u64,
        worker: u32,
        value: Arc<Value>,
    ) -> Option<Handoff> {
        let mut outcome = NodeOutcome::new(NodeStatus::Ran);
        outcome.started = start;
        outcome.duration = duration;
        outcome.worker = worker;
        match self.sole_reader(id) {
            Some(to) => {
                self.settle_with(id, outcome, None);
                Some(Handoff {
                    from: id,
                    to,
                    value,
                })
            }
            None => {
                self.settle_with(id, outcome, Some(value));
                None
            }
        }
    }

    /// The only consumer of node `id`'s output, if that consumer reads it as its one input
    /// and the output is not kept: that consumer becomes ready when `id` settles.
    fn sole_reader(&self, id: NodeId) -> Option<NodeId> {
        if self.cells[id.index()].consumers != 1 || self.settings.keep[id.index()] {
            return None;
        }
        let needed = self.settings.needed;
        let to = *self
            .pipeline
            .node_at(id)
            .downstream()
            .iter()
            .find(|d| needed[d.index()])?;
        let mut wires = self.pipeline.node_at(to).wires();
        // A mapped node reads the list it goes over from the cell, for all its branches.
        (matches!((wires.next(), wires.next()), (Some(Wire::One(_)), None)) && !self.is_mapped(to))
            .then_some(to)
    }

    /// Runs `node` on inputs held in memory and returns its output. The inputs are
    /// released as they are gathered: each stays alive until the task returns.
    fn run_in_memory(
        &self,
        id: NodeId,
        node: &Node<'_>,
        input: Option<Arc<Value>>,
        ctx: &mut Ctx,
    ) -> Result<Arc<Value>, TaskError> {
        let inputs = if let Some(input) = input {
            smallvec::smallvec![InputValues::One(input)]
        } else if node.distinct_inputs() {
            self.take_inputs(node)?
        } else {
            let inputs = self.gather(node);
            self.release(node);
            inputs?
        };
        self.invoke(id, node, &inputs, None, ctx)
    }

    /// Computes `node` on `inputs`, in `pending`'s work directory if there is one: one
    /// attempt, or as many as its retries allow.
    fn invoke(
        &self,
        id: NodeId,
        node: &Node<'_>,
        inputs: &[InputValues],
        pending: Option<&Pending>,
        ctx: &mut Ctx,
    ) -> Result<Arc<Value>, TaskError> {
        if let Some(progress) = self.settings.progress {
            progress.started(node.name());
        }
        let meta = node.task().meta();
        let work_dir = pending.map(Pending::work_dir);
        ctx.set_node(meta.name, id.index(), work_dir.clone());
        if meta.retries == 0 && meta.timeout.is_none() {
            // One attempt, without a deadline: what `attempts` would make of it.
            tracing::debug!(target: "pipewright", attempt = 1, "started");
            ctx.set_attempt(None, 1);
            return call(node.task(), inputs, ctx);
        }
        self.retries(node).run(|attempt| {
            // Each attempt starts from an empty work directory.
            if attempt > 1
                && let Some(dir) = &work_dir
            {
                let _ = std::fs::remove_dir_all(dir);
            }
            compute::attempt(node.task(), inputs, ctx, attempt, meta.timeout)
        })
    }

    /// When the attempts at `node` stop.
    fn retries<'a>(&'a self, node: &Node<'_>) -> Retries<'a> {
        Retries {
            retries: node.task().meta().retries,
            stop: &self.stop,
            halt: Some(&self.halt),
        }
    }

    /// Whether the run starts no more nodes.
    fn stopped(&self) -> bool {
        self.stop.is_set() || self.halt.load(Ordering::Acquire)
    }

    /// Tells the upstream nodes of `id` that it is done with their outputs, and drops each
    /// output whose last consumer this was, unless it is kept.
    fn release_inputs(&self, id: NodeId) {
        self.release(&self.pipeline.node_at(id));
    }

    /// [`release_inputs`](Self::release_inputs) of `node`.
    fn release(&self, node: &Node<'_>) {
        for up in node.upstream() {
            drop(self.take(*up));
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
            for &child in self.pipeline.node_at(done).downstream() {
                if !self.settings.needed[child.index()] {
                    continue;
                }
                // A map over a mapped node was told when its branches were made.
                if self.pairs_with(child, done) {
                    continue;
                }
                let cell = &self.cells[child.index()];
                if failed {
                    let _ = cell.failed_upstream.compare_exchange(
                        NONE,
                        done.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
                // Each upstream node counts itself off once, so one left is this one: the
                // child is ready without a write to the counter.
                if cell.pending.load(Ordering::Acquire) != 1
                    && cell.pending.fetch_sub(1, Ordering::AcqRel) != 1
                {
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

    /// Settles node `id`, whose upstream node failed or was cancelled, the same way
    /// without running it.
    fn skip(&self, id: NodeId) {
        self.release_inputs(id);
        let upstream = self.cells[id.index()]
            .failed_upstream
            .load(Ordering::Acquire);
        let upstream = NodeId(upstream);
        if self.status(upstream) == NodeStatus::Cancelled {
            self.settle_without_running(id, NodeStatus::Cancelled, NONE);
            return;
        }
        tracing::warn!(
            target: "pipewright",
            parent: self.span,
            node = %self.pipeline.node_at(id).name(),
            upstream = %self.pipeline.node_name(upstream),
            "not run: upstream failed"
        );
        self.settle_without_running(id, NodeStatus::UpstreamFailed, upstream.0);
    }

    /// Records that node `id` ended as `status` without running, after the failed
    /// upstream node `failed_upstream` (or [`NONE`]).
    fn settle_without_running(&self, id: NodeId, status: NodeStatus, failed_upstream: u32) {
        let mut outcome = NodeOutcome::new(status);
        outcome.started = self.clock();
        outcome.failed_upstream = failed_upstream;
        self.settle_with(id, outcome, None);
    }
}

impl Run<'_> {
    /// Waits for every row this run queued to be committed, and returns the nodes whose
    /// rows were not, with why.
    fn uncommitted(&mut self) -> Vec<(NodeId, StoreError)> {
        let commits = std::mem::take(
            self.commits
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let Some(store) = self.settings.store else {
            return Vec::new();
        };
        let tickets: Vec<Ticket> = commits.iter().map(|(_, ticket)| *ticket).collect();
        let mut failed = store.failures(&tickets);
        commits
            .into_iter()
            .filter_map(|(id, ticket)| Some((id, failed.remove(&ticket)?)))
            .collect()
    }
}

/// Fails each node of `uncommitted` with the error its entry's commit failed with, as if
/// the commit had failed while it ran, and makes every node below it *upstream failed*,
/// as if it had never started: no node is reported as built on an output that is not in
/// the store, and no output computed from one is handed out. The journal hears of each
/// node again; the bar counts it once still. Returns whether each node failed here or is
/// below one that did (empty if none did).
fn fail_uncommitted(
    pipeline: &Pipeline,
    progress: Option<&Progress>,
    outcomes: &mut [NodeOutcome],
    uncommitted: Vec<(NodeId, StoreError)>,
) -> Vec<bool> {
    let Some(first) = uncommitted.iter().map(|(id, _)| id.index()).min() else {
        return Vec::new();
    };
    let mut errors: Vec<Option<StoreError>> = (0..outcomes.len()).map(|_| None).collect();
    for (id, error) in uncommitted {
        errors[id.index()] = Some(error);
    }
    // Whether each node failed here, or is below one that did.
    let mut failed = vec![false; outcomes.len()];
    // Node indices are a topological order: a node comes after the nodes above it.
    for i in first..outcomes.len() {
        let node = pipeline.node_at(NodeId::at(i));
        let above = node.upstream().iter().find(|up| failed[up.index()]);
        let outcome = &mut outcomes[i];
        let before = outcome.status;
        if let Some(up) = above {
            failed[i] = true;
            if matches!(
                outcome.status,
                NodeStatus::NotNeeded | NodeStatus::UpstreamFailed
            ) {
                continue;
            }
            *outcome = NodeOutcome::new(NodeStatus::UpstreamFailed);
            outcome.failed_upstream = up.0;
        } else if let Some(error) = errors[i].take() {
            failed[i] = true;
            tracing::error!(target: "pipewright", node = %node.name(), error = %error, "failed");
            outcome.status = NodeStatus::Failed;
            outcome.value = None;
            let details = outcome.details_mut();
            details.entry = None;
            details.output_digest = None;
            details.error = Some(Arc::new(TaskError::Store(error)));
        } else {
            continue;
        }
        // Settled once already: counted once.
        if let Some(progress) = progress {
            progress.resettled(i, before, outcome);
        }
    }
    failed
}

/// A context for the tasks of a run of `pipeline` that stops when `stop` is set.
fn run_ctx(pipeline: &Pipeline, stop: &Stop) -> Ctx {
    Ctx::new(pipeline.names.clone(), stop.flag.clone())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(test, feature = "progress"))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::codec::DefaultCodec;
    use crate::erased::ErasedTask;
    use crate::task::{Inputs, Task, TaskMeta};

    /// A task that is never run here: the nodes only need one.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Idle;

    impl Task for Idle {
        type Output = u32;
        type Codec = DefaultCodec;
        const META: TaskMeta = TaskMeta::for_tests("local_tests_idle", "exec::local::tests");

        fn run(&self, _: &Inputs<'_>, _: &Ctx) -> Result<u32, TaskError> {
            Ok(0)
        }
    }

    #[test]
    fn nodes_settled_again_after_a_failed_commit_are_counted_once() {
        // `a` above `b` above `c`, and `d` apart.
        let mut builder = Pipeline::builder("counted-once");
        let task: Arc<dyn ErasedTask> = Arc::new(Idle);
        let a = builder.add_node("a", task.clone(), &[], &[]).unwrap();
        let b = builder
            .add_node("b", task.clone(), &[], &[Wire::One(&a)])
            .unwrap();
        builder
            .add_node("c", task.clone(), &[], &[Wire::One(&b)])
            .unwrap();
        builder.add_node("d", task, &[], &[]).unwrap();
        let p = builder.build();
        let progress = Progress::with_hidden_bar(4);
        let mut outcomes: Vec<NodeOutcome> = [
            NodeStatus::Ran,
            NodeStatus::Ran,
            NodeStatus::Cached,
            NodeStatus::Ran,
        ]
        .into_iter()
        .map(NodeOutcome::new)
        .collect();
        for (i, outcome) in outcomes.iter().enumerate() {
            progress.settled(i, p.node_name(NodeId::at(i)), outcome);
        }
        assert_eq!(progress.counts(), Some((4, Some(4), 1)));

        // The commit of `a`'s entry failed after every node settled.
        let error = StoreError::with_message(
            "refused".to_owned(),
            Path::new("/data/.store"),
            std::io::Error::other("refused"),
        );
        let failed = fail_uncommitted(&p, Some(&progress), &mut outcomes, vec![(a, error)]);
        assert_eq!(failed, [true, true, true, false]);
        let statuses: Vec<NodeStatus> = outcomes.iter().map(|o| o.status).collect();
        assert_eq!(
            statuses,
            [
                NodeStatus::Failed,
                NodeStatus::UpstreamFailed,
                NodeStatus::UpstreamFailed,
                NodeStatus::Ran
            ]
        );
        // Each node is counted once still, and `c` no longer as cached.
        assert_eq!(progress.counts(), Some((4, Some(4), 0)));
    }
}
