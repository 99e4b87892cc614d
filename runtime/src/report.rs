//! What a run returns: every node's outcome and the outputs that were kept.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cache::{EntryMeta, Store};
use crate::error::{Error, Result};
use crate::graph::{ErasedTask, Handle, NodeId, Pipeline};
use crate::plan::RunReason;
use crate::task::{TaskError, Value};

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
    /// The run stopped before the node started: an earlier failure stopped a fail-fast
    /// run, or the record of a run that did not finish was reopened.
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

/// The outcome of one node.
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub(crate) name: Arc<str>,
    pub(crate) task: &'static str,
    pub(crate) status: NodeStatus,
    pub(crate) started: Duration,
    pub(crate) worker: Option<usize>,
    pub(crate) duration: Duration,
    pub(crate) error: Option<Arc<TaskError>>,
    pub(crate) backtrace: Option<Arc<str>>,
    pub(crate) upstream_failed: Option<Arc<str>>,
    pub(crate) key: Option<String>,
    pub(crate) reason: Option<RunReason>,
    pub(crate) output_digest: Option<String>,
}

impl NodeReport {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the task it runs.
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// How it ended.
    pub fn status(&self) -> NodeStatus {
        self.status
    }

    /// When it started (or was settled), counted from the start of the run.
    pub fn started(&self) -> Duration {
        self.started
    }

    /// The index of the worker that ran or settled it (none for a node that never started).
    pub fn worker(&self) -> Option<usize> {
        self.worker
    }

    /// How long its task ran (zero if it never started).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&TaskError> {
        self.error.as_deref()
    }

    /// The backtrace of the panic it failed with, if it panicked.
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }

    /// The failed upstream node it waited on, if its status is
    /// [`NodeStatus::UpstreamFailed`].
    pub fn failed_upstream(&self) -> Option<&str> {
        self.upstream_failed.as_deref()
    }

    /// The node key its output is stored under, in hex, if it has one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Why it ran, if it did.
    pub fn reason(&self) -> Option<&RunReason> {
        self.reason.as_ref()
    }

    /// The content digest of its output, in hex, if it has one (runs with a store only).
    pub fn output_digest(&self) -> Option<&str> {
        self.output_digest.as_deref()
    }
}

/// One node's output as a report holds it: in memory, or in the store to be read on
/// demand.
pub(crate) struct Output {
    pub(crate) value: OnceLock<Arc<Value>>,
    pub(crate) entry: Option<Box<EntryMeta>>,
    /// The task, to decode the output; absent in a reopened record whose task is not
    /// linked into this binary.
    pub(crate) task: Option<Arc<dyn ErasedTask>>,
}

/// What a run did: every node's outcome, and access to the outputs: those held in memory
/// (every sink, and the nodes passed to [`Runner::keep`](crate::Runner::keep)) and those in
/// the store, read when asked for.
pub struct RunReport {
    pipeline: String,
    pipeline_id: u64,
    nodes: Vec<NodeReport>,
    outputs: Vec<Output>,
    store: Option<Store>,
    index: Arc<HashMap<Arc<str>, NodeId>>,
    elapsed: Duration,
    run_dir: Option<PathBuf>,
    cancelled: bool,
}

impl RunReport {
    /// A report of the nodes and outputs of a run that is not running now (a record).
    pub(crate) fn reopened(
        pipeline: String,
        nodes: Vec<NodeReport>,
        outputs: Vec<Output>,
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
            nodes,
            outputs,
            store: Some(store),
            index: Arc::new(index),
            elapsed,
            run_dir: Some(run_dir),
            cancelled,
        }
    }

    pub(crate) fn new(
        pipeline: &Pipeline,
        nodes: Vec<NodeReport>,
        outputs: Vec<Output>,
        store: Option<Store>,
        elapsed: Duration,
    ) -> Self {
        RunReport {
            pipeline: pipeline.name().to_owned(),
            pipeline_id: pipeline.id(),
            index: pipeline.index().clone(),
            nodes,
            outputs,
            store,
            elapsed,
            run_dir: None,
            cancelled: false,
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
        if handle.pipeline() != self.pipeline_id || handle.id().index() >= self.nodes.len() {
            return Err(Error::ForeignHandle {
                node: format!("#{}", handle.id().index()),
                pipeline: self.pipeline.clone(),
            });
        }
        self.output(handle.id())
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
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownNode {
                pipeline: self.pipeline.clone(),
                node: name.to_owned(),
            })
    }

    fn output<T: 'static>(&self, id: NodeId) -> Result<&T> {
        let node = &self.nodes[id.index()];
        match node.status {
            NodeStatus::Ran | NodeStatus::Cached => {}
            NodeStatus::Failed => {
                return Err(Error::NodeFailed {
                    node: node.name.to_string(),
                    source: node.error.clone().unwrap_or_else(|| {
                        Arc::new(TaskError::Panicked("no error was recorded".into()))
                    }),
                });
            }
            NodeStatus::Cancelled | NodeStatus::NotNeeded => {
                return Err(Error::NotKept {
                    node: node.name.to_string(),
                });
            }
            NodeStatus::UpstreamFailed => {
                return Err(Error::UpstreamFailed {
                    node: node.name.to_string(),
                    upstream: node.upstream_failed.as_deref().unwrap_or("?").to_owned(),
                });
            }
        }
        let output = &self.outputs[id.index()];
        let Some(task) = &output.task else {
            return Err(Error::UnknownTask(node.task.to_owned()));
        };
        let value = match output.value.get() {
            Some(value) => value,
            None => {
                let (Some(store), Some(entry)) = (&self.store, &output.entry) else {
                    return Err(Error::NotKept {
                        node: node.name.to_string(),
                    });
                };
                let value = store
                    .read_output(entry)
                    .and_then(|bytes| task.decode(&bytes).map_err(|e| e.to_string()))
                    .map_err(|reason| {
                        // A damaged entry must not stay fresh: the next run computes it again.
                        store.remove(&store.entry_dir(&entry.task, &entry.key));
                        Error::Damaged {
                            node: node.name.to_string(),
                            reason: format!(
                                "{reason}; the entry is removed, so the next run computes it again"
                            ),
                        }
                    })?;
                output.value.get_or_init(|| value)
            }
        };
        value.downcast_ref::<T>().ok_or_else(|| Error::WrongType {
            node: node.name.to_string(),
            actual: task.output_type(),
            requested: std::any::type_name::<T>(),
        })
    }

    /// The status of the node named `name`, if there is one.
    pub fn status(&self, name: &str) -> Option<NodeStatus> {
        self.node(name).map(NodeReport::status)
    }

    /// The outcome of the node named `name`, if there is one.
    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.index.get(name).map(|id| &self.nodes[id.index()])
    }

    /// Every node's outcome, in the pipeline's order.
    pub fn nodes(&self) -> &[NodeReport] {
        &self.nodes
    }

    /// Whether every node the run needed has an output.
    pub fn succeeded(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.status.is_success() || n.status == NodeStatus::NotNeeded)
    }

    /// How many nodes ended with `status`.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.nodes.iter().filter(|n| n.status == status).count()
    }

    /// The name of the pipeline that ran.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The wall time of the whole run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

impl fmt::Debug for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunReport")
            .field("pipeline", &self.pipeline)
            .field("nodes", &self.nodes)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

/// A one-line summary: `24 nodes: 20 ran, 2 cached, 1 failed, 1 upstream failed in 1.20s`.
impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} nodes:", self.nodes.len())?;
        let mut first = true;
        for status in [
            NodeStatus::Ran,
            NodeStatus::Cached,
            NodeStatus::Failed,
            NodeStatus::UpstreamFailed,
            NodeStatus::Cancelled,
            NodeStatus::NotNeeded,
        ] {
            let n = self.count(status);
            if n > 0 || status == NodeStatus::Ran {
                write!(f, "{} {n} {status}", if first { "" } else { "," })?;
                first = false;
            }
        }
        write!(f, " in {:.2?}", self.elapsed)
    }
}
