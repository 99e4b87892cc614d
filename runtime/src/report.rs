//! What a run returns: every node's outcome and the outputs that were kept.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cache::{Entry, Store};
use crate::erased::ErasedTask;
use crate::error::{Error, Result};
use crate::graph::{self, Handle, Mapped, NodeId, Pipeline};
use crate::key::hex;
use crate::outputs::{self, Published};
use crate::plan::RunReason;
use crate::task::{NodeNames, TaskError};

mod open;
mod outcome;

pub(crate) use outcome::{Details, MapOutcomes, NO_NODE, NO_WORKER, NodeOutcome, nanos};

/// How a node ended in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeStatus {
    /// The task ran and returned an output.
    Ran,
    /// The output was already in the store: the task did not run.
    Cached,
    /// The task returned `Err` or panicked.
    Failed,
    /// The task never started because a node it depends on failed.
    UpstreamFailed,
    /// The node was not needed by the targets of the run.
    NotNeeded,
    /// The run stopped before the node finished: it was cancelled (and the task stopped, or
    /// said so with [`Cancelled`](crate::Cancelled)), a node above was cancelled, an
    /// earlier failure stopped a fail-fast run, or the record of a run that did not finish
    /// was reopened.
    Cancelled,
}

impl NodeStatus {
    /// Whether the node has an output.
    pub fn is_success(self) -> bool {
        matches!(self, NodeStatus::Ran | NodeStatus::Cached)
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeStatus::Ran => "ran",
            NodeStatus::Cached => "cached",
            NodeStatus::Failed => "failed",
            NodeStatus::UpstreamFailed => "upstream failed",
            NodeStatus::NotNeeded => "not needed",
            NodeStatus::Cancelled => "cancelled",
        })
    }
}

/// The nodes a report is about: those of the pipeline that ran, then the branches of its
/// mapped nodes; or those of a recorded run, branches included.
enum Nodes {
    Pipeline(Arc<NodeNames>, Arc<graph::Nodes>, Branched),
    Recorded {
        nodes: Vec<RecordedNode>,
        index: HashMap<Arc<str>, NodeId>,
    },
}

/// The branches of the mapped nodes of a run, after the pipeline's nodes in its report.
/// Their names are made when first asked for, as most runs never ask.
#[derive(Default)]
struct Branched {
    /// Each mapped node that made branches, with how many, in the order of its branches.
    maps: Vec<(NodeId, usize)>,
    names: OnceLock<Vec<Arc<str>>>,
    /// The branches by name.
    index: OnceLock<HashMap<Arc<str>, NodeId>>,
}

impl Branched {
    /// Each branch's name, `mapped[i]`, in order.
    fn names(&self, names: &NodeNames) -> &[Arc<str>] {
        self.names.get_or_init(|| {
            self.maps
                .iter()
                .flat_map(|&(node, n)| {
                    let name = names.get(node.index());
                    (0..n).map(move |i| Arc::from(crate::graph::branch_name(name, i)))
                })
                .collect()
        })
    }

    /// The mapped node of branch `b` (counted among the branches).
    fn mapped(&self, mut b: usize) -> NodeId {
        for &(node, n) in &self.maps {
            if b < n {
                return node;
            }
            b -= n;
        }
        panic!("no branch {b}")
    }

    /// The branch named `name`, as a node of the report whose pipeline's names are `names`.
    fn find(&self, names: &NodeNames, name: &str) -> Option<NodeId> {
        if self.maps.is_empty() {
            return None;
        }
        let statics = names.len();
        self.index
            .get_or_init(|| {
                self.names(names)
                    .iter()
                    .enumerate()
                    .map(|(b, name)| (name.clone(), NodeId::at(statics + b)))
                    .collect()
            })
            .get(name)
            .copied()
    }
}

/// Where the branches of one mapped node are among the nodes of a report.
pub(crate) struct MapBranches {
    /// The mapped node.
    pub(crate) node: NodeId,
    /// Its first branch's index among the report's nodes.
    pub(crate) first: usize,
    /// Each branch's element digest (with a store), in branch order.
    pub(crate) elements: Vec<[u8; 32]>,
    /// How many branches it has.
    pub(crate) len: usize,
}

/// A node of a recorded run.
pub(crate) struct RecordedNode {
    pub(crate) name: Arc<str>,
    /// The task, to decode the output; absent if it is not linked into this binary.
    pub(crate) task: Option<Arc<dyn ErasedTask>>,
}

impl Nodes {
    fn name(&self, i: usize) -> &str {
        match self {
            Nodes::Pipeline(names, _, branched) => match i.checked_sub(names.len()) {
                None => names.get(i),
                Some(b) => &branched.names(names)[b],
            },
            Nodes::Recorded { nodes, .. } => &nodes[i].name,
        }
    }

    fn task(&self, i: usize) -> Option<&dyn ErasedTask> {
        match self {
            Nodes::Pipeline(names, nodes, branched) => {
                let id = match i.checked_sub(names.len()) {
                    None => NodeId::at(i),
                    Some(b) => branched.mapped(b),
                };
                Some(nodes.at(names, id).task())
            }
            Nodes::Recorded { nodes, .. } => nodes[i].task.as_deref(),
        }
    }

    /// The node named `name`, if any.
    fn find(&self, name: &str) -> Option<NodeId> {
        match self {
            Nodes::Pipeline(names, nodes, branched) => nodes
                .find(names, name)
                .or_else(|| branched.find(names, name)),
            Nodes::Recorded { index, .. } => index.get(name).copied(),
        }
    }
}

/// The reason of every node that ran in memory.
static IN_MEMORY: RunReason = RunReason::InMemory;

/// The outcome of one node: a view into its [`RunReport`].
#[derive(Clone, Copy)]
pub struct NodeReport<'r> {
    report: &'r RunReport,
    id: usize,
    outcome: &'r NodeOutcome,
}

impl<'r> NodeReport<'r> {
    fn details(&self) -> Option<&'r Details> {
        self.outcome.details.as_deref()
    }

    /// The node's name.
    pub fn name(&self) -> &'r str {
        self.report.nodes.name(self.id)
    }

    /// The name of the task it runs (`?` in a recorded run whose task is not linked into
    /// this binary).
    pub fn task(&self) -> &'static str {
        self.report
            .nodes
            .task(self.id)
            .map_or("?", |task| task.meta().name)
    }

    /// How it ended.
    pub fn status(&self) -> NodeStatus {
        self.outcome.status
    }

    /// When it started (or was settled), counted from the start of the run.
    pub fn started(&self) -> Duration {
        Duration::from_nanos(self.outcome.started)
    }

    /// The index of the worker that ran or settled it (none for a node that never started).
    pub fn worker(&self) -> Option<usize> {
        (self.outcome.worker != NO_WORKER).then_some(self.outcome.worker as usize)
    }

    /// How long its task ran (zero if it never started).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.outcome.duration)
    }

    /// When it started and how long it took, in seconds, as records hold them (see
    /// [`NodeOutcome::times_secs`]).
    pub(crate) fn times_secs(&self) -> (Option<f64>, Option<f64>) {
        self.outcome.times_secs()
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&'r TaskError> {
        self.details().and_then(|d| d.error.as_deref())
    }

    /// The backtrace of the panic it failed with, if it panicked.
    pub fn backtrace(&self) -> Option<&'r str> {
        self.details().and_then(|d| d.backtrace.as_deref())
    }

    /// The node whose failure kept it from running, if its status is
    /// [`NodeStatus::UpstreamFailed`]: the node that failed, however far up, not the
    /// nearest one that did not run because of it.
    pub fn failed_upstream(&self) -> Option<&'r str> {
        let outcomes = &self.report.outcomes;
        let mut outcome = self.outcome;
        // Each step goes up from a node that did not run to the one it waited on; a chain
        // is never longer than the nodes, unless a record was edited into a circle.
        for _ in 0..outcomes.len() {
            if outcome.status != NodeStatus::UpstreamFailed {
                break;
            }
            let up = outcome.failed_upstream as usize;
            match outcomes.get(up) {
                Some(above) if above.status == NodeStatus::UpstreamFailed => outcome = above,
                Some(_) => return Some(self.report.nodes.name(up)),
                None => break,
            }
        }
        None
    }

    /// The node key its output is stored under, in hex, if it has one.
    pub fn key(&self) -> Option<&'r str> {
        self.details().and_then(|d| d.key.as_deref())
    }

    /// Why it ran, if it did.
    pub fn reason(&self) -> Option<&'r RunReason> {
        if self.outcome.in_memory {
            return Some(&IN_MEMORY);
        }
        self.details().and_then(|d| d.reason.as_ref())
    }

    /// The content digest of its output, in hex, if it has one (runs with a store only).
    pub fn output_digest(&self) -> Option<&'r str> {
        self.details().and_then(|d| d.output_digest.as_deref())
    }
}

impl fmt::Debug for NodeReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeReport")
            .field("name", &self.name())
            .field("task", &self.task())
            .field("status", &self.status())
            .field("started", &self.started())
            .field("worker", &self.worker())
            .field("duration", &self.duration())
            .field("error", &self.error())
            .field("failed_upstream", &self.failed_upstream())
            .field("key", &self.key())
            .field("reason", &self.reason())
            .field("output_digest", &self.output_digest())
            .finish_non_exhaustive()
    }
}

/// What a run did: every node's outcome, and access to the outputs: those held in memory
/// (every sink, and the nodes passed to [`Runner::keep`](crate::Runner::keep)) and those in
/// the store, read when asked for.
#[must_use = "a run's failed nodes are only in its report: check `succeeded()`"]
pub struct RunReport {
    pipeline: String,
    pipeline_id: u64,
    nodes: Nodes,
    /// Each node's outcome, in the pipeline's order.
    outcomes: Vec<NodeOutcome>,
    store: Option<Store>,
    elapsed: Duration,
    run_dir: Option<PathBuf>,
    cancelled: bool,
    /// The output files published after the run.
    published: Vec<Published>,
    /// The branches of each mapped node that made them.
    maps: Vec<MapBranches>,
}

impl RunReport {
    /// A report of the nodes and outcomes of a run that is not running now (a record).
    pub(crate) fn reopened(
        pipeline: String,
        nodes: Vec<RecordedNode>,
        outcomes: Vec<NodeOutcome>,
        store: Store,
        elapsed: Duration,
        run_dir: PathBuf,
        cancelled: bool,
    ) -> Self {
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), NodeId(i as u32)))
            .collect();
        RunReport {
            pipeline,
            pipeline_id: 0,
            nodes: Nodes::Recorded { nodes, index },
            outcomes,
            store: Some(store),
            elapsed,
            run_dir: Some(run_dir),
            cancelled,
            published: Vec::new(),
            maps: Vec::new(),
        }
    }

    /// The report of a run of `pipeline` whose nodes ended as `outcomes`, and the
    /// branches of its mapped nodes as `branches`.
    pub(crate) fn new(
        pipeline: &Pipeline,
        mut outcomes: Vec<NodeOutcome>,
        branches: Vec<MapOutcomes>,
        store: Option<Store>,
        elapsed: Duration,
    ) -> Self {
        let mut branched = Branched::default();
        let mut maps = Vec::with_capacity(branches.len());
        for map in branches {
            let first = outcomes.len();
            branched.maps.push((map.node, map.outcomes.len()));
            maps.push(MapBranches {
                node: map.node,
                first,
                len: map.outcomes.len(),
                elements: map.elements,
            });
            outcomes.extend(map.outcomes);
        }
        RunReport {
            pipeline: pipeline.name().to_owned(),
            pipeline_id: pipeline.id(),
            nodes: Nodes::Pipeline(pipeline.names.clone(), pipeline.nodes.clone(), branched),
            maps,
            outcomes,
            store,
            elapsed,
            run_dir: None,
            cancelled: false,
            published: Vec::new(),
        }
    }

    pub(crate) fn set_cancelled(&mut self, cancelled: bool) {
        self.cancelled = cancelled;
    }

    /// Whether the run was cancelled before it could finish.
    pub fn cancelled(&self) -> bool {
        self.cancelled
    }

    pub(crate) fn set_run_dir(&mut self, dir: PathBuf) {
        self.run_dir = Some(dir);
    }

    pub(crate) fn set_published(&mut self, published: Vec<Published>) {
        self.published = published;
    }

    /// The output files published after the run (see
    /// [`Runner::publish`](crate::Runner::publish)), each with what was done at its path:
    /// nothing where the file there was already the output's, else a new link or copy.
    pub fn published(&self) -> &[Published] {
        &self.published
    }

    /// The stored entry of node `id`'s output, if it succeeded and has one.
    pub(crate) fn entry(&self, id: NodeId) -> Option<&Entry> {
        let outcome = self.outcomes.get(id.index())?;
        if !outcome.status.is_success() {
            return None;
        }
        outcome.details.as_deref()?.entry.as_deref()
    }

    /// The directory this run was recorded in (`run.json`, `run.log`, `failures/`), if it
    /// was recorded.
    pub fn run_dir(&self) -> Option<&Path> {
        self.run_dir.as_deref()
    }

    /// The output of the node behind `handle`.
    ///
    /// # Errors
    ///
    /// [`Error::NodeFailed`] or [`Error::UpstreamFailed`] if the node has no output,
    /// [`Error::NotKept`] if its output was dropped after its consumers were done, and
    /// [`Error::ForeignHandle`] if the handle belongs to another pipeline.
    pub fn get<T: 'static>(&self, handle: Handle<T>) -> Result<&T> {
        if handle.pipeline() != self.pipeline_id || handle.id().index() >= self.outcomes.len() {
            return Err(Error::ForeignHandle {
                node: format!("#{}", handle.id().index()),
                pipeline: self.pipeline.clone(),
            });
        }
        self.output(handle.id())
    }

    /// The outputs of every branch of the mapped node behind `mapped`, in the order of the
    /// list it went over.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), for the first branch that has no output; and
    /// [`Error::NotMapped`] if the report does not hold the node's branches.
    pub fn branches<T: 'static>(&self, mapped: Mapped<T>) -> Result<Vec<&T>> {
        if mapped.pipeline != self.pipeline_id || mapped.id.index() >= self.outcomes.len() {
            return Err(Error::ForeignHandle {
                node: format!("#{}", mapped.id.index()),
                pipeline: self.pipeline.clone(),
            });
        }
        let Some(map) = self.branches_of(mapped.id) else {
            let node = self.report_of(mapped.id.index());
            // A mapped node that made no branches has no output either.
            if !node.status().is_success() {
                self.value(mapped.id)?;
            }
            return Err(Error::NotMapped {
                node: node.name().to_owned(),
            });
        };
        (map.first..map.first + map.len)
            .map(|i| self.output(NodeId::at(i)))
            .collect()
    }

    /// The branches of mapped node `id`, if it made them in this run.
    pub(crate) fn branches_of(&self, id: NodeId) -> Option<&MapBranches> {
        self.maps.iter().find(|m| m.node == id)
    }

    /// Whether the node named `name` is a mapped node that made its branches in this run
    /// (none, for an empty list).
    #[cfg_attr(not(feature = "render"), expect(dead_code, reason = "pictures use it"))]
    pub(crate) fn made_branches(&self, name: &str) -> bool {
        self.nodes
            .find(name)
            .is_some_and(|id| self.branches_of(id).is_some())
    }

    /// The reports of the branches of the node named `name`, each with its element's short
    /// digest (with a store); empty if it is not a mapped node that made branches.
    pub fn branches_named(
        &self,
        name: &str,
    ) -> impl ExactSizeIterator<Item = (NodeReport<'_>, Option<String>)> + '_ {
        let map = self.nodes.find(name).and_then(|id| self.branches_of(id));
        let (first, len) = map.map_or((0, 0), |m| (m.first, m.len));
        (first..first + len).map(move |i| {
            let element = map
                .and_then(|m| m.elements.get(i - first))
                .map(|d| hex(d)[..12].to_owned());
            (self.report_of(i), element)
        })
    }

    /// The output of the node named `name`, which must be a `T`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), plus [`Error::UnknownNode`] and [`Error::WrongType`].
    pub fn get_as<T: 'static>(&self, name: &str) -> Result<&T> {
        let id = self.id(name)?;
        self.output(id)
    }

    fn id(&self, name: &str) -> Result<NodeId> {
        self.nodes.find(name).ok_or_else(|| Error::UnknownNode {
            pipeline: self.pipeline.clone(),
            node: name.to_owned(),
        })
    }

    fn output<T: 'static>(&self, id: NodeId) -> Result<&T> {
        let (value, task) = self.value(id)?;
        value.downcast_ref::<T>().ok_or_else(|| Error::WrongType {
            node: self.nodes.name(id.index()).to_owned(),
            actual: task.output_type(),
            requested: std::any::type_name::<T>(),
        })
    }

    /// The output of the node named `name` as JSON, read from the store if it is not in
    /// memory; the inner error says why the value has no JSON form.
    #[cfg_attr(
        not(feature = "cli"),
        expect(dead_code, reason = "only the command line shows an output")
    )]
    pub(crate) fn get_json(
        &self,
        name: &str,
    ) -> Result<std::result::Result<serde_json::Value, String>> {
        let (value, task) = self.value(self.id(name)?)?;
        Ok(task.output_json(&**value))
    }

    /// The output of node `id`, with its task; see [`get`](Self::get).
    fn value(&self, id: NodeId) -> Result<(&Arc<crate::task::Value>, &dyn ErasedTask)> {
        let node = self.report_of(id.index());
        let name = || node.name().to_owned();
        let outcome =
            match node.outcome {
                outcome if outcome.status.is_success() => outcome,
                _ => {
                    return Err(match node.status() {
                        NodeStatus::Failed => Error::NodeFailed {
                            node: name(),
                            source: node.details().and_then(|d| d.error.clone()).unwrap_or_else(
                                || Arc::new(TaskError::Panicked("no error was recorded".into())),
                            ),
                        },
                        NodeStatus::UpstreamFailed => Error::UpstreamFailed {
                            node: name(),
                            upstream: node.failed_upstream().unwrap_or("?").to_owned(),
                        },
                        _ => Error::NotKept { node: name() },
                    });
                }
            };
        let Some(task) = self.nodes.task(id.index()) else {
            return Err(Error::UnknownTask(node.task().to_owned()));
        };
        let details = node.details();
        let value = match (&outcome.value, details.and_then(|d| d.loaded.get())) {
            (Some(value), _) | (None, Some(value)) => value,
            (None, None) => {
                let (Some(store), Some(details)) = (&self.store, details) else {
                    return Err(Error::NotKept { node: name() });
                };
                let Some(entry) = &details.entry else {
                    return Err(Error::NotKept { node: name() });
                };
                let value = store
                    .read_decoded(entry, |bytes, read| {
                        let files = store.files_dir(read);
                        outputs::decoding_from(files.as_deref(), || task.decode(bytes))
                            .map_err(|e| e.to_string())
                    })
                    .map(|(value, _)| value)
                    .map_err(|reason| {
                        // A damaged entry must not stay fresh: the next run computes it again.
                        store.remove_damaged(&entry.task, &entry.key, Some(entry));
                        Error::Damaged {
                            node: name(),
                            reason: format!(
                                "{reason}; the entry is removed, so the next run computes it again"
                            ),
                        }
                    })?;
                details.loaded.get_or_init(|| value)
            }
        };
        Ok((value, task))
    }

    /// The outcome of node `i`.
    fn report_of(&self, i: usize) -> NodeReport<'_> {
        NodeReport {
            report: self,
            id: i,
            outcome: &self.outcomes[i],
        }
    }

    /// The status of the node named `name`, if there is one.
    pub fn status(&self, name: &str) -> Option<NodeStatus> {
        self.node(name).map(|n| n.status())
    }

    /// The outcome of the node named `name`, if there is one.
    pub fn node(&self, name: &str) -> Option<NodeReport<'_>> {
        self.nodes.find(name).map(|id| self.report_of(id.index()))
    }

    /// Every node's outcome, in the pipeline's order.
    pub fn nodes(
        &self,
    ) -> impl ExactSizeIterator<Item = NodeReport<'_>> + DoubleEndedIterator + Clone + '_ {
        (0..self.outcomes.len()).map(|i| self.report_of(i))
    }

    /// Whether every node the run needed has an output.
    pub fn succeeded(&self) -> bool {
        self.statuses()
            .all(|s| s.is_success() || s == NodeStatus::NotNeeded)
    }

    /// How many nodes ended with `status`.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.statuses().filter(|s| *s == status).count()
    }

    /// Every node's status, in the pipeline's order.
    fn statuses(&self) -> impl Iterator<Item = NodeStatus> + '_ {
        self.outcomes.iter().map(|o| o.status)
    }

    /// The name of the pipeline that ran.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The wall time of the whole run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The counts of the run in one line, without the failures that its `Display` lists
    /// below them: `24 nodes: 20 ran, 2 cached, 1 failed, 1 upstream failed in 1.20s`.
    pub fn summary(&self) -> impl fmt::Display + '_ {
        Summary(self)
    }
}

impl fmt::Debug for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunReport")
            .field("pipeline", &self.pipeline)
            .field("nodes", &self.nodes().collect::<Vec<_>>())
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

/// The summary of a run in one line, as [`RunReport::summary`] gives it.
struct Summary<'r>(&'r RunReport);

/// The summary (see [`RunReport::summary`]), then a line for each failed node with the
/// first line of its error:
///
/// ```text
/// 24 nodes: 20 ran, 2 cached, 1 failed, 1 upstream failed in 1.20s
///   `parse` failed: invalid digit found in string
/// ```
impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())?;
        for node in self.nodes().filter(|n| n.status() == NodeStatus::Failed) {
            let error = node.error().map(ToString::to_string).unwrap_or_default();
            let first = error.lines().next().unwrap_or("no error was recorded");
            write!(f, "\n  `{}` failed: {first}", node.name())?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary(report) = *self;
        let total = report.outcomes.len();
        write!(f, "{total} {}:", if total == 1 { "node" } else { "nodes" })?;
        let mut first = true;
        for status in [
            NodeStatus::Ran,
            NodeStatus::Cached,
            NodeStatus::Failed,
            NodeStatus::UpstreamFailed,
            NodeStatus::Cancelled,
            NodeStatus::NotNeeded,
        ] {
            let n = report.count(status);
            if n > 0 || status == NodeStatus::Ran {
                write!(f, "{} {n} {status}", if first { "" } else { "," })?;
                first = false;
            }
        }
        write!(f, " in {:.2?}", report.elapsed)
    }
}
