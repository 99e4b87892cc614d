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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rayon::{Scope, ThreadPool};
use smallvec::SmallVec;

use super::Stop;
use crate::cache::{EntryMeta, Lookup, Pending, Store};
use crate::graph::{Node, NodeId, Pipeline, Wire};
use crate::key::{Components, Digest, hex, parse_hex};
use crate::plan::{RunReason, cached_entry};
use crate::progress::Progress;
use crate::report::{Details, NO_WORKER, NodeOutcome, NodeStatus, nanos};
use crate::task::{Ctx, InputValues, Inputs, TaskError, Value};

/// The inputs of one node; most nodes have a few, which then need no allocation.
type Gathered = SmallVec<[InputValues; 4]>;

/// How long the first retry of a failed task waits; each further retry waits twice as
/// long as the one before.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// No failed upstream.
const NONE: u32 = u32::MAX;

/// The clock that times nodes: the CPU's time-stamp counter where it runs at a constant
/// rate (read in a few nanoseconds, where the OS clock takes a few tens), else the OS's
/// monotonic clock. Calibrated against the OS clock once per process, by the first run:
/// typically in under a millisecond, at most in 200 ms.
static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// How a run treats its nodes.
pub(crate) struct Settings<'a> {
    /// Where outputs are stored; `None` keeps nothing on disk.
    pub(crate) store: Option<&'a Store>,
    /// Whether each node's output must outlive its consumers.
    pub(crate) keep: &'a [bool],
    /// Whether each node must run even if its entry exists.
    pub(crate) forced: &'a [bool],
    /// The subscriber of the run's log, when the run writes one.
    pub(crate) dispatch: Option<&'a tracing::Dispatch>,
    /// Whether each node is needed by the run's targets (all are, without targets).
    pub(crate) needed: &'a [bool],
    /// The progress bar, when there is one.
    pub(crate) progress: Option<&'a Progress>,
    /// Whether the first failure stops the run: nodes not started by then are cancelled.
    pub(crate) fail_fast: bool,
    /// Set to stop the run: nodes not started are cancelled, running ones are told.
    pub(crate) stop: Arc<Stop>,
    /// Whether each node that must run runs in a child process (the process executor).
    pub(crate) in_child: bool,
    /// The run's directory, where the process executor keeps each node's job and log.
    pub(crate) run_dir: Option<&'a Path>,
}

/// The run-time state of one node. How it ended is written once, by the thread that
/// settles it, and read by the others only after its status; the report reads it when the
/// run is over. Only its output and what few nodes have (an entry, an error) take a lock.
struct Cell {
    /// Upstream nodes that have not settled yet; the last of them leaves it at one.
    pending: AtomicU32,
    /// The first failed upstream, or [`NONE`].
    failed_upstream: AtomicU32,
    /// How the node ended, as [`status_code`], or [`UNSETTLED`].
    status: AtomicU8,
    /// The worker that ran or settled it, or [`NO_WORKER`].
    worker: AtomicU32,
    /// When it started or was settled, in nanoseconds from the start of the run.
    started: AtomicU64,
    /// How long its task ran, in nanoseconds.
    duration: AtomicU64,
    /// Its consumers in this run.
    consumers: u32,
    slot: Mutex<Slot>,
}

/// The status of a node that has not settled yet.
const UNSETTLED: u8 = 0;

/// What [`Cell::status`] holds for a node that ended as `status`.
fn status_code(status: NodeStatus) -> u8 {
    status as u8 + 1
}

/// Every status, in the order of their codes.
const STATUSES: [NodeStatus; 6] = [
    NodeStatus::Ran,
    NodeStatus::Cached,
    NodeStatus::Failed,
    NodeStatus::UpstreamFailed,
    NodeStatus::NotNeeded,
    NodeStatus::Cancelled,
];

/// The status of a node whose [`Cell::status`] is `code`.
fn status_of(code: u8) -> NodeStatus {
    // An unsettled node has no output, as if its upstream failed.
    match code
        .checked_sub(1)
        .and_then(|i| STATUSES.get(usize::from(i)))
    {
        Some(status) => *status,
        None => NodeStatus::UpstreamFailed,
    }
}

/// A settled node's output: in memory, in the store, or both.
struct Slot {
    /// Consumers that have not taken this node's output yet. Counted under the lock that
    /// guards the output, so that the last of them can take it instead of sharing it.
    consumers_left: u32,
    value: Option<Arc<Value>>,
    /// Where the output is stored (with a store); boxed, so that a cell takes less memory
    /// in a run without one.
    stored: Option<Box<Stored>>,
    /// What only some outcomes have: an error, a key.
    details: Option<Box<Details>>,
}

/// A node's output as a store knows it.
struct Stored {
    /// The output's content digest.
    digest: Option<Digest>,
    /// The entry holding the output (none for a task that is not cached).
    entry: Option<Box<EntryMeta>>,
}

/// A node's output just computed: the value, its content digest, and its new entry
/// (none for a task that is not cached).
struct Computed {
    value: Arc<Value>,
    digest: Digest,
    entry: Option<Box<EntryMeta>>,
}

/// The output of a node handed to the node run next on the same thread, its only
/// consumer, which reads it as its one input: it does not go through the producer's cell.
struct Handoff {
    from: NodeId,
    to: NodeId,
    value: Arc<Value>,
}

/// The nodes one thread claimed in [`Run::loading`]; released when dropped.
struct Claims<'r, 'p> {
    run: &'r Run<'p>,
    held: HashSet<NodeId>,
}

impl Claims<'_, '_> {
    /// Claims node `id`, once no other thread holds it.
    fn claim(&mut self, id: NodeId) {
        let mut loading = lock(&self.run.loading);
        while loading.contains(&id) {
            loading = self
                .run
                .loaded
                .wait(loading)
                .unwrap_or_else(PoisonError::into_inner);
        }
        loading.insert(id);
        self.held.insert(id);
    }

    /// Releases node `id`, if it is held, and wakes the threads waiting for it.
    fn release(&mut self, id: NodeId) {
        if self.held.remove(&id) {
            lock(&self.run.loading).remove(&id);
            self.run.loaded.notify_all();
        }
    }
}

impl Drop for Claims<'_, '_> {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut loading = lock(&self.run.loading);
        for id in self.held.drain() {
            loading.remove(&id);
        }
        drop(loading);
        self.run.loaded.notify_all();
    }
}

/// What the work on one node ended with.
enum Done {
    Ran {
        key: Option<String>,
        reason: RunReason,
    },
    Cached {
        key: String,
    },
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
}

/// The task context of one thread, on a cache line of its own.
#[repr(align(128))]
struct ThreadCtx(Mutex<Ctx>);

/// Runs every node of `pipeline` on `pool` and returns how each ended, with the outputs
/// that are kept.
pub(crate) fn run(
    pipeline: &Pipeline,
    span: &tracing::Span,
    pool: &ThreadPool,
    settings: Settings<'_>,
) -> Vec<NodeOutcome> {
    // The cells are made, and turned into outcomes at the end, on a thread of the pool,
    // which runs nodes in between: their memory is then in a worker's cache, not this
    // thread's.
    pool.install(|| run_here(pipeline, span, settings))
}

/// [`run`], on a thread of the pool.
fn run_here(pipeline: &Pipeline, span: &tracing::Span, settings: Settings<'_>) -> Vec<NodeOutcome> {
    let needed = settings.needed;
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
            .nodes
            .iter()
            .map(|node| {
                let consumers = node.downstream.iter().filter(|d| needed[d.index()]).count() as u32;
                Cell {
                    pending: AtomicU32::new(node.upstream.len() as u32),
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
    };
    let roots = pipeline
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, node)| node.upstream.is_empty() && run.settings.needed[*i])
        .map(|(i, _)| NodeId(i as u32));

    let run_ref = &run;
    rayon::scope(|scope| {
        for root in roots {
            scope.spawn(move |scope| run_ref.drive(scope, root));
        }
    });
    run.finish()
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
                let result = self.work(id, node, store);
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
            Ok(Done::Ran { key, reason }) => {
                tracing::info!(target: "pipewright", ?duration, "finished");
                outcome.duration = nanos(duration);
                let details = outcome.details_mut();
                details.key = key;
                details.reason = Some(reason);
            }
            Ok(Done::Cached { key }) => {
                tracing::debug!(target: "pipewright", key = %&key[..12], "cached");
                outcome.status = NodeStatus::Cached;
                outcome.details_mut().key = Some(key);
            }
            Err(TaskError::Cancelled) => {
                tracing::warn!(target: "pipewright", ?duration, "cancelled while running");
                outcome.status = NodeStatus::Cancelled;
                outcome.duration = nanos(duration);
            }
            Err(error) => {
                tracing::error!(target: "pipewright", ?duration, error = %error, "failed");
                if self.settings.fail_fast {
                    self.halt.store(true, Ordering::Release);
                }
                outcome.status = NodeStatus::Failed;
                outcome.duration = nanos(duration);
                let details = outcome.details_mut();
                details.backtrace = matches!(error, TaskError::Panicked(_))
                    .then(crate::backtrace::take_backtrace)
                    .flatten()
                    .map(Arc::from);
                details.error = Some(Arc::new(error));
            }
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
        let to = *self.pipeline.nodes[id.index()]
            .downstream
            .iter()
            .find(|d| needed[d.index()])?;
        matches!(
            self.pipeline.nodes[to.index()].wires.as_slice(),
            [Wire::One(_)]
        )
        .then_some(to)
    }

    /// Runs `node` on inputs held in memory and returns its output. The inputs are
    /// released as they are gathered: each stays alive until the task returns.
    fn run_in_memory(
        &self,
        id: NodeId,
        node: &Node,
        input: Option<Arc<Value>>,
        ctx: &mut Ctx,
    ) -> Result<Arc<Value>, TaskError> {
        let inputs = if let Some(input) = input {
            smallvec::smallvec![InputValues::One(input)]
        } else if node.distinct_inputs {
            self.take_inputs(node)?
        } else {
            let inputs = self.gather(node);
            self.release(node);
            inputs?
        };
        self.invoke(id, node, &inputs, None, ctx)
    }

    /// The work on one node with a store: decide from its key whether its entry can be
    /// used, else run it.
    fn work(&self, id: NodeId, node: &Node, store: &Store) -> Result<Done, TaskError> {
        let meta = node.task.meta();
        let forced = self.settings.forced[id.index()];
        let verify = self.settings.keep[id.index()];
        let use_entry = |key: &str| -> Result<Box<EntryMeta>, RunReason> {
            if forced {
                Err(RunReason::Forced)
            } else if !meta.cache {
                Err(RunReason::NotCached)
            } else {
                cached_entry(store, meta.name, &node.name, key, verify, true)
            }
        };

        let mut digests = self.input_digests(node);
        let mut components = self.components(node, &digests)?;
        let mut key = hex(&components.key());
        let mut reason = match use_entry(&key) {
            Ok(entry) => return Ok(self.cached(id, key, entry)),
            Err(reason) => reason,
        };
        // One process computes a key at a time; who waited may find the entry made.
        let mut lock = if meta.cache {
            Some(store.lock(&key).map_err(TaskError::Store)?)
        } else {
            None
        };
        if matches!(reason, RunReason::NoEntry)
            && let Ok(entry) = use_entry(&key)
        {
            return Ok(self.cached(id, key, entry));
        }

        if self.settings.in_child {
            self.run_in_child(id, node, store, &key, forced || !meta.cache)?;
            drop(lock);
            return Ok(Done::Ran {
                key: Some(key),
                reason,
            });
        }
        let inputs = self.gather(node)?;
        // Reading the inputs may have recomputed a damaged upstream entry, with new bytes.
        let now = self.input_digests(node);
        if now != digests {
            digests = now;
            components = self.components(node, &digests)?;
            key = hex(&components.key());
            drop(lock.take());
            match use_entry(&key) {
                Ok(entry) => return Ok(self.cached(id, key, entry)),
                Err(why) => reason = why,
            }
            if meta.cache {
                lock = Some(store.lock(&key).map_err(TaskError::Store)?);
            }
        }
        let computed = self.compute(id, node, &inputs, &components, store, &key, forced)?;
        self.put(id, computed.value, Some(computed.digest), computed.entry);
        drop(lock);
        Ok(Done::Ran {
            key: Some(key),
            reason,
        })
    }

    /// Settles node `id` on its stored entry, without reading the output.
    fn cached(&self, id: NodeId, key: String, entry: Box<EntryMeta>) -> Done {
        lock(&self.cells[id.index()].slot).stored = Some(Box::new(Stored {
            digest: parse_hex(&entry.output_digest),
            entry: Some(entry),
        }));
        Done::Cached { key }
    }

    /// What the key of `node` is made of, on inputs with output digests `digests`.
    fn components(&self, node: &Node, digests: &[Vec<Digest>]) -> Result<Components, TaskError> {
        node.components(self.pipeline.name(), digests.to_vec())
            .map_err(TaskError::Params)
    }

    /// The output digests of `node`'s inputs as they stand.
    fn input_digests(&self, node: &Node) -> Vec<Vec<Digest>> {
        node.input_digests(|up| {
            lock(&self.cells[up.index()].slot)
                .stored
                .as_ref()
                .and_then(|stored| stored.digest)
                .unwrap_or_default()
        })
    }

    /// Runs `node`'s task on `inputs`, encodes its output and stores it under `key` (unless
    /// its task is not cached). Returns the output, its digest and its entry.
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[InputValues],
        components: &Components,
        store: &Store,
        key: &str,
        replace: bool,
    ) -> Result<Computed, TaskError> {
        let meta = node.task.meta();
        let pending = store.begin(meta.name, key).map_err(TaskError::Store)?;
        let result = (|| {
            let start = Instant::now();
            let value = self.invoke(id, node, inputs, Some(&pending), &mut self.new_ctx())?;
            let duration = start.elapsed();
            let bytes = node.task.encode(&*value).map_err(TaskError::Encode)?;
            let digest = *blake3::hash(&bytes).as_bytes();
            Ok::<_, TaskError>((value, bytes, digest, duration))
        })();
        let (value, bytes, digest, duration) = match result {
            Ok(done) => done,
            Err(error) => {
                store.discard(pending);
                return Err(error);
            }
        };
        if !meta.cache {
            store.discard(pending);
            return Ok(Computed {
                value,
                digest,
                entry: None,
            });
        }
        let entry = self.entry_meta(node, key, components, &bytes, digest, duration);
        store
            .commit(pending, &entry, &bytes, replace)
            .map_err(TaskError::Store)?;
        Ok(Computed {
            value,
            digest,
            entry: Some(Box::new(entry)),
        })
    }

    /// What `meta.json` records for a new entry of `node`.
    fn entry_meta(
        &self,
        node: &Node,
        key: &str,
        components: &Components,
        bytes: &[u8],
        digest: Digest,
        duration: Duration,
    ) -> EntryMeta {
        super::new_entry(
            &*node.task,
            &node.name,
            self.input_names(node),
            key,
            components,
            bytes,
            digest,
            duration,
        )
    }

    /// The names of the nodes each input argument of `node` reads.
    fn input_names(&self, node: &Node) -> Vec<Vec<String>> {
        node.wires
            .iter()
            .map(|wire| match wire {
                Wire::One(id) => vec![self.pipeline.node_name(*id).to_owned()],
                Wire::Many(ids) => ids
                    .iter()
                    .map(|id| self.pipeline.node_name(*id).to_owned())
                    .collect(),
            })
            .collect()
    }

    /// Calls the task, catching a panic.
    fn invoke(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[InputValues],
        pending: Option<&Pending>,
        ctx: &mut Ctx,
    ) -> Result<Arc<Value>, TaskError> {
        if let Some(progress) = self.settings.progress {
            progress.started(&node.name);
        }
        let meta = node.task.meta();
        let work_dir = pending.map(Pending::work_dir);
        ctx.set_node(meta.name, id.index(), work_dir.clone());
        if meta.retries == 0 && meta.timeout.is_none() {
            // One attempt, without a deadline: what `attempts` would make of it.
            tracing::debug!(target: "pipewright", attempt = 1, "started");
            ctx.set_attempt(None, 1);
            return call(node, inputs, ctx);
        }
        self.attempts(node, |attempt| {
            // Each attempt starts from an empty work directory.
            if attempt > 1
                && let Some(dir) = &work_dir
            {
                let _ = std::fs::remove_dir_all(dir);
            }
            // The clock is read only for a task that can time out.
            let deadline = meta.timeout.map(|t| Instant::now() + t);
            ctx.set_attempt(deadline, attempt);
            let result = call(node, inputs, ctx);
            // Whatever the task returned after its deadline, it timed out.
            match (meta.timeout, deadline) {
                (Some(timeout), Some(deadline)) if Instant::now() > deadline => {
                    Err(TaskError::TimedOut(timeout))
                }
                _ => result,
            }
        })
    }

    /// Makes attempts at `node` until one succeeds, its `retries` are used up, or the run
    /// stops; waits longer before each retry, and stops waiting when the run is cancelled.
    /// Returns the last attempt's outcome.
    fn attempts<T>(
        &self,
        node: &Node,
        mut attempt_at: impl FnMut(u32) -> Result<T, TaskError>,
    ) -> Result<T, TaskError> {
        let retries = node.task.meta().retries;
        let mut attempt = 1;
        loop {
            tracing::debug!(target: "pipewright", attempt, "started");
            let error = match attempt_at(attempt) {
                Ok(done) => return Ok(done),
                Err(error) => error,
            };
            if attempt > retries || self.stopped() || matches!(error, TaskError::Cancelled) {
                return Err(error);
            }
            let backoff = RETRY_BACKOFF * 2u32.saturating_pow(attempt - 1).min(64);
            tracing::warn!(
                target: "pipewright",
                attempt,
                error = %error,
                "attempt failed; trying again in {backoff:?}"
            );
            // A run stopped meanwhile makes no more attempts.
            if self.stop.sleep(backoff) || self.stopped() {
                return Err(error);
            }
            attempt += 1;
        }
    }

    /// Runs `node` in a child process that reads its inputs from the store and commits
    /// its output under `key`; then settles it on that entry.
    fn run_in_child(
        &self,
        id: NodeId,
        node: &Node,
        store: &Store,
        key: &str,
        replace: bool,
    ) -> Result<(), TaskError> {
        #[cfg(unix)]
        {
            use super::process::{job_files, run_job};
            use super::worker::{Job, input_refs};

            if let Some(progress) = self.settings.progress {
                progress.started(&node.name);
            }
            let meta = node.task.meta();
            let run_dir = self.settings.run_dir.ok_or_else(|| {
                TaskError::failed("the process executor needs a run directory for its jobs")
            })?;
            let files = job_files(run_dir, &crate::text::node_file_name(&node.name))
                .map_err(TaskError::Store)?;
            let inputs = input_refs(self.pipeline, node, |up| {
                let slot = lock(&self.cells[up.index()].slot);
                match slot.stored.as_ref().and_then(|s| s.entry.as_ref()) {
                    Some(entry) => Ok((Some(entry.key.clone()), None)),
                    None => Err(TaskError::failed(format!(
                        "the output of `{}` is not stored",
                        self.pipeline.node_name(up)
                    ))),
                }
            })?;
            let job = Job::new(
                self.pipeline,
                node,
                store.root().to_owned(),
                Some(key.to_owned()),
                inputs,
                replace,
                files.status.clone(),
            );
            // This process holds the key's lock, and the worker may be told how much
            // memory it can have.
            let mut job = Job {
                lock: false,
                mem_limit: meta.resources.mem,
                ..job
            };
            let outcome = self.attempts(node, |attempt| {
                job.attempt = attempt;
                let outcome = run_job(&job, &files, meta.timeout, &self.stop);
                if outcome.is_err() && meta.cache {
                    // This process holds the key's lock: what is half written under it
                    // was left by the worker that just ended.
                    store.discard_unfinished(meta.name, key);
                }
                outcome
            });
            outcome?;
            let entry = match store.lookup(meta.name, key) {
                Lookup::Present(entry) => entry,
                Lookup::Missing => {
                    return Err(TaskError::failed(
                        "the worker reported success, but its entry is not in the store",
                    ));
                }
                Lookup::Damaged(why) => {
                    return Err(TaskError::failed(format!(
                        "the worker reported success, but its entry is damaged: {why}"
                    )));
                }
            };
            lock(&self.cells[id.index()].slot).stored = Some(Box::new(Stored {
                digest: parse_hex(&entry.output_digest),
                entry: Some(entry),
            }));
            Ok(())
        }
        #[cfg(not(unix))]
        {
            let _ = (id, node, store, key, replace);
            Err(TaskError::failed("the process executor runs on Unix only"))
        }
    }

    /// Whether the run starts no more nodes.
    fn stopped(&self) -> bool {
        self.stop.is_set() || self.halt.load(Ordering::Acquire)
    }

    /// Records a settled node's output where its consumers and the report find it.
    fn put(
        &self,
        id: NodeId,
        value: Arc<Value>,
        digest: Option<Digest>,
        entry: Option<Box<EntryMeta>>,
    ) {
        let mut slot = lock(&self.cells[id.index()].slot);
        if slot.consumers_left > 0 || self.settings.keep[id.index()] {
            slot.value = Some(value);
        }
        if digest.is_some() || entry.is_some() {
            slot.stored = Some(Box::new(Stored { digest, entry }));
        }
    }

    /// The values of `node`'s inputs, read from the store where they are not in memory.
    fn gather(&self, node: &Node) -> Result<Gathered, TaskError> {
        let mut inputs = Gathered::with_capacity(node.wires.len());
        for wire in &node.wires {
            inputs.push(match wire {
                Wire::One(up) => InputValues::One(self.obtain(*up)?),
                Wire::Many(ups) => {
                    let mut values = Vec::with_capacity(ups.len());
                    for up in ups {
                        values.push(self.obtain(*up)?);
                    }
                    InputValues::Many(values)
                }
            });
        }
        Ok(inputs)
    }

    /// The values of the inputs of `node`, whose inputs read distinct nodes, each released
    /// as it is taken: the last consumer of an output takes it instead of sharing it.
    fn take_inputs(&self, node: &Node) -> Result<Gathered, TaskError> {
        let mut inputs = Gathered::with_capacity(node.wires.len());
        let mut missing = None;
        let mut take = |up: NodeId| {
            let value = self.take(up);
            if value.is_none() && missing.is_none() {
                missing = Some(up);
            }
            value
        };
        for wire in &node.wires {
            match wire {
                Wire::One(up) => {
                    if let Some(value) = take(*up) {
                        inputs.push(InputValues::One(value));
                    }
                }
                Wire::Many(ups) => {
                    let mut values = Vec::with_capacity(ups.len());
                    for up in ups {
                        values.extend(take(*up));
                    }
                    inputs.push(InputValues::Many(values));
                }
            }
        }
        match missing {
            None => Ok(inputs),
            Some(up) => Err(TaskError::failed(format!(
                "the output of `{}` is not in memory",
                self.pipeline.node_name(up)
            ))),
        }
    }

    /// The in-memory output of the settled node `up`, for one of its consumers, which is
    /// done with it once it drops it.
    fn take(&self, up: NodeId) -> Option<Arc<Value>> {
        let mut slot = lock(&self.cells[up.index()].slot);
        slot.consumers_left -= 1;
        if slot.consumers_left == 0 && !self.settings.keep[up.index()] {
            slot.value.take()
        } else {
            slot.value.clone()
        }
    }

    /// The output of the settled node `up`: from memory, else from its entry; a damaged
    /// entry is recomputed and stored again (see [`load`](Self::load)).
    fn obtain(&self, up: NodeId) -> Result<Arc<Value>, TaskError> {
        if let Some(value) = &lock(&self.cells[up.index()].slot).value {
            return Ok(value.clone());
        }
        self.load(up)
    }

    /// The output of the settled node `target`, which is not in memory, read from its
    /// entry. Where entries turn out damaged, the walk goes on up to the outputs their
    /// nodes need, highest node first and without recursion; the damaged nodes are then
    /// recomputed in dependency order (node ids are one), each from inputs that are now
    /// whole, so that one recomputed with new bytes gives its consumers new keys.
    ///
    /// A node read or recomputed here is claimed in [`Run::loading`] for that time: a
    /// thread that needs it too waits, then finds its value or its new entry, so it is
    /// recomputed once. Claims are taken in decreasing node order, and a thread waits only
    /// on a node below all it holds, so waits cannot form a cycle; no lock is held while a
    /// task or a decoder runs.
    #[cold]
    fn load(&self, target: NodeId) -> Result<Arc<Value>, TaskError> {
        let Some(store) = self.settings.store else {
            return Err(TaskError::failed(format!(
                "the output of `{}` is neither in memory nor stored",
                self.pipeline.node_name(target)
            )));
        };
        let mut claims = Claims {
            run: self,
            held: HashSet::new(),
        };
        // The outputs read or recomputed here, until no node still to recompute reads them.
        let mut values = HashMap::new();
        // The damaged nodes, claimed, with why their entry was damaged.
        let mut damaged = BTreeMap::new();
        let mut wanted = BTreeSet::from([target]);
        while let Some(id) = wanted.pop_last() {
            let value = match self.in_memory(id) {
                Some(value) => value,
                None => {
                    claims.claim(id);
                    match self.in_memory(id) {
                        Some(value) => value,
                        None => match self.read_stored(store, id)? {
                            Ok(value) => value,
                            Err(why) => {
                                let node = &self.pipeline.nodes[id.index()];
                                wanted.extend(node.upstream.iter().copied());
                                damaged.insert(id, why);
                                continue;
                            }
                        },
                    }
                }
            };
            self.hold(id, &value);
            claims.release(id);
            values.insert(id, value);
        }

        // How many of the damaged nodes read each output.
        let mut readers = HashMap::<NodeId, u32>::new();
        for id in damaged.keys() {
            for up in &self.pipeline.nodes[id.index()].upstream {
                *readers.entry(*up).or_default() += 1;
            }
        }
        for (id, why) in damaged {
            let node = &self.pipeline.nodes[id.index()];
            let value = {
                // Each input was read or recomputed above: it is upstream of this node.
                let input = |up: &NodeId| {
                    values.get(up).cloned().ok_or_else(|| {
                        TaskError::failed(format!(
                            "the output of `{}` was not loaded",
                            self.pipeline.node_name(*up)
                        ))
                    })
                };
                let mut inputs = Gathered::with_capacity(node.wires.len());
                for wire in &node.wires {
                    inputs.push(match wire {
                        Wire::One(up) => InputValues::One(input(up)?),
                        Wire::Many(ups) => {
                            InputValues::Many(ups.iter().map(input).collect::<Result<_, _>>()?)
                        }
                    });
                }
                self.repair(id, node, &inputs, store, why)?
            };
            for up in &node.upstream {
                let left = readers.get_mut(up).map(|n| {
                    *n -= 1;
                    *n
                });
                if left == Some(0) && *up != target {
                    values.remove(up);
                }
            }
            self.hold(id, &value);
            claims.release(id);
            values.insert(id, value);
        }
        values.remove(&target).ok_or_else(|| {
            TaskError::failed(format!(
                "the output of `{}` was not loaded",
                self.pipeline.node_name(target)
            ))
        })
    }

    /// The output of node `id` if it is in memory.
    fn in_memory(&self, id: NodeId) -> Option<Arc<Value>> {
        lock(&self.cells[id.index()].slot).value.clone()
    }

    /// Keeps the output of node `id`, just loaded, in memory while its consumers need it.
    fn hold(&self, id: NodeId, value: &Arc<Value>) {
        let mut slot = lock(&self.cells[id.index()].slot);
        if slot.consumers_left > 0 || self.settings.keep[id.index()] {
            slot.value = Some(value.clone());
        }
    }

    /// Reads and decodes the stored output of the settled node `id`: `Ok(Err(why))` when
    /// its entry is damaged, which is then removed.
    fn read_stored(
        &self,
        store: &Store,
        id: NodeId,
    ) -> Result<Result<Arc<Value>, String>, TaskError> {
        let node = &self.pipeline.nodes[id.index()];
        // Only a node whose damaged entry was computed again here can have settled so.
        match self.status(id) {
            NodeStatus::Failed => {
                return Err(TaskError::failed(format!(
                    "the entry of `{}` was damaged, and computing it again failed",
                    node.name
                )));
            }
            NodeStatus::Cancelled => return Err(TaskError::Cancelled),
            _ => {}
        }
        let entry = lock(&self.cells[id.index()].slot)
            .stored
            .as_ref()
            .and_then(|s| s.entry.clone());
        let Some(entry) = entry else {
            return Err(TaskError::failed(format!(
                "the output of `{}` is neither in memory nor stored",
                node.name
            )));
        };
        let loaded = store.read_verified(&entry).and_then(|output| {
            let value = node.task.decode(&output.bytes).map_err(|e| e.to_string())?;
            if let Some(now) = output.replaced {
                // Replaced meanwhile: its consumers' keys take the output they read.
                lock(&self.cells[id.index()].slot).stored = Some(Box::new(Stored {
                    digest: parse_hex(&now.output_digest),
                    entry: Some(now),
                }));
            }
            Ok(value)
        });
        if let Err(why) = &loaded {
            tracing::warn!(
                target: "pipewright",
                node = %node.name,
                "damaged cache entry ({why}); recomputing it"
            );
            store.remove_damaged(&entry.task, &entry.key, Some(&entry));
        }
        Ok(loaded)
    }

    /// Computes again, from `inputs`, the settled node `id`, whose entry was damaged
    /// (`why`), and stores its output; it is then reported as *ran* for that reason, or as
    /// *failed* or *cancelled*.
    fn repair(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[InputValues],
        store: &Store,
        why: String,
    ) -> Result<Arc<Value>, TaskError> {
        let span = tracing::info_span!(
            target: "pipewright",
            parent: self.span,
            "node",
            node = %node.name,
            task = %node.task.meta().name,
        );
        let _entered = span.enter();
        let start = self.clock();
        // Its inputs may have been computed again with new bytes: its key is made again.
        let result = self
            .components(node, &self.input_digests(node))
            .and_then(|components| {
                let key = hex(&components.key());
                let computed = self.compute(id, node, inputs, &components, store, &key, true)?;
                Ok((key, computed))
            });
        let end = self.clock();
        let cell = &self.cells[id.index()];
        let worker = rayon::current_thread_index().map_or(NO_WORKER, |w| w as u32);
        cell.worker.store(worker, Ordering::Relaxed);
        cell.started.store(start, Ordering::Relaxed);
        cell.duration
            .store(end.saturating_sub(start), Ordering::Relaxed);
        let duration = Duration::from_nanos(end.saturating_sub(start));
        let mut slot = lock(&cell.slot);
        let details = slot.details.get_or_insert_with(Box::default);
        match result {
            Ok((key, computed)) => {
                tracing::info!(target: "pipewright", ?duration, "finished");
                details.key = Some(key);
                details.reason = Some(RunReason::Damaged(why));
                slot.stored = Some(Box::new(Stored {
                    digest: Some(computed.digest),
                    entry: computed.entry,
                }));
                drop(slot);
                cell.status
                    .store(status_code(NodeStatus::Ran), Ordering::Release);
                Ok(computed.value)
            }
            Err(TaskError::Cancelled) => {
                tracing::warn!(target: "pipewright", ?duration, "cancelled while running");
                slot.stored = None;
                drop(slot);
                cell.status
                    .store(status_code(NodeStatus::Cancelled), Ordering::Release);
                Err(TaskError::Cancelled)
            }
            Err(error) => {
                tracing::error!(target: "pipewright", ?duration, error = %error, "failed");
                let message = format!(
                    "the entry of `{}` was damaged, and computing it again failed: {error}",
                    node.name
                );
                details.backtrace = matches!(error, TaskError::Panicked(_))
                    .then(crate::backtrace::take_backtrace)
                    .flatten()
                    .map(Arc::from);
                details.error = Some(Arc::new(error));
                slot.stored = None;
                drop(slot);
                cell.status
                    .store(status_code(NodeStatus::Failed), Ordering::Release);
                Err(TaskError::failed(message))
            }
        }
    }

    /// Tells the upstream nodes of `id` that it is done with their outputs, and drops each
    /// output whose last consumer this was, unless it is kept.
    fn release_inputs(&self, id: NodeId) {
        self.release(&self.pipeline.nodes[id.index()]);
    }

    /// [`release_inputs`](Self::release_inputs) of `node`.
    fn release(&self, node: &Node) {
        for up in &node.upstream {
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
            for &child in &self.pipeline.nodes[done.index()].downstream {
                if !self.settings.needed[child.index()] {
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
            node = %self.pipeline.nodes[id.index()].name,
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

    /// Records how node `id` ended, with its in-memory `output` if it has one that is
    /// still needed, where its children and the report find it. The outcome's value, failed
    /// upstream node and in-memory mark are not read: the cell has them.
    fn settle_with(&self, id: NodeId, outcome: NodeOutcome, output: Option<Arc<Value>>) {
        let NodeOutcome {
            status,
            worker,
            started,
            duration,
            details,
            ..
        } = outcome;
        if let Some(progress) = self.settings.progress {
            progress.settled(&self.pipeline.nodes[id.index()].name, status);
        }
        let cell = &self.cells[id.index()];
        // Read after the run, or by another thread only once it has read the status.
        cell.worker.store(worker, Ordering::Relaxed);
        cell.started.store(started, Ordering::Relaxed);
        cell.duration.store(duration, Ordering::Relaxed);
        let output = output.filter(|_| cell.consumers > 0 || self.settings.keep[id.index()]);
        match (output, details) {
            (None, None) => {}
            (output, details) => {
                let mut slot = lock(&cell.slot);
                if output.is_some() {
                    slot.value = output;
                }
                if details.is_some() {
                    slot.details = details;
                }
            }
        }
        cell.status.store(status_code(status), Ordering::Release);
    }

    fn status(&self, id: NodeId) -> NodeStatus {
        status_of(self.cells[id.index()].status.load(Ordering::Acquire))
    }

    /// Turns the settled cells into the outcomes the report reads, with the outputs that
    /// are kept and, with a store, each output's digest and entry.
    fn finish(self) -> Vec<NodeOutcome> {
        let with_store = self.settings.store.is_some();
        self.cells
            .into_iter()
            .map(|cell| {
                let slot = cell
                    .slot
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner);
                let status = match cell.status.into_inner() {
                    UNSETTLED => NodeStatus::NotNeeded,
                    code => status_of(code),
                };
                let mut outcome = NodeOutcome::new(status);
                outcome.worker = cell.worker.into_inner();
                outcome.started = cell.started.into_inner();
                outcome.duration = cell.duration.into_inner();
                outcome.details = slot.details;
                // Without a store, a node that ran ran because nothing is kept on disk.
                outcome.in_memory = !with_store && status == NodeStatus::Ran;
                if status == NodeStatus::UpstreamFailed {
                    outcome.failed_upstream = cell.failed_upstream.into_inner();
                }
                outcome.value = slot.value;
                if let Some(stored) = slot.stored {
                    let details = outcome.details_mut();
                    details.output_digest = stored.digest.map(|d| hex(&d));
                    details.entry = stored.entry;
                }
                outcome
            })
            .collect()
    }
}

/// Calls the task of `node`, catching a panic.
fn call(node: &Node, inputs: &[InputValues], ctx: &Ctx) -> Result<Arc<Value>, TaskError> {
    crate::backtrace::task_call(|| {
        catch_unwind(AssertUnwindSafe(|| {
            node.task.run(&Inputs { slots: inputs }, ctx)
        }))
    })
    .unwrap_or_else(|payload| Err(TaskError::from_panic(payload)))
}

/// A context for the tasks of a run of `pipeline` that stops when `stop` is set.
fn run_ctx(pipeline: &Pipeline, stop: &Stop) -> Ctx {
    Ctx::new(pipeline.names.clone(), stop.flag.clone())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip() {
        for status in STATUSES {
            assert_ne!(status_code(status), UNSETTLED);
            assert_eq!(status_of(status_code(status)), status);
        }
        assert_eq!(status_of(UNSETTLED), NodeStatus::UpstreamFailed);
    }
}
