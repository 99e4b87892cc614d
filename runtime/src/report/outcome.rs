//! A node's outcome as the executor leaves it and the report reads it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::cache::Entry;
use crate::plan::RunReason;
use crate::task::{TaskError, Value};

use super::NodeStatus;

/// A node's outcome, as the executor leaves it and the report reads it: small, and for a
/// node that ran in memory, free of allocations. What only some nodes have (an error, a
/// key, a stored entry) is in [`Details`].
pub(crate) struct NodeOutcome {
    pub(crate) status: NodeStatus,
    /// It ran because the runner keeps nothing on disk ([`RunReason::InMemory`]).
    pub(crate) in_memory: bool,
    /// Its entry's row was queued when it settled, to be committed with others: the journal
    /// says it is stored once the row is.
    pub(crate) queued: bool,
    /// The worker that ran or settled it, or [`NO_WORKER`].
    pub(crate) worker: u32,
    /// The failed upstream node it waited on (with [`NodeStatus::UpstreamFailed`]), or
    /// [`NO_NODE`].
    pub(crate) failed_upstream: u32,
    /// When it started, in nanoseconds from the start of the run.
    pub(crate) started: u64,
    /// How long its task ran, in nanoseconds.
    pub(crate) duration: u64,
    /// Its output, if it is held in memory.
    pub(crate) value: Option<Arc<Value>>,
    pub(crate) details: Option<Box<Details>>,
}

/// No worker: the node never started.
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// No node.
pub(crate) const NO_NODE: u32 = u32::MAX;

/// What only some outcomes have.
#[derive(Default)]
pub(crate) struct Details {
    pub(crate) error: Option<Arc<TaskError>>,
    pub(crate) backtrace: Option<Arc<str>>,
    pub(crate) key: Option<String>,
    pub(crate) reason: Option<RunReason>,
    pub(crate) output_digest: Option<String>,
    /// The stored entry holding the output.
    pub(crate) entry: Option<Arc<Entry>>,
    /// The output, once read from the store on demand.
    pub(crate) loaded: OnceLock<Arc<Value>>,
}

impl NodeOutcome {
    /// An outcome with `status` and nothing else.
    pub(crate) fn new(status: NodeStatus) -> Self {
        NodeOutcome {
            status,
            in_memory: false,
            queued: false,
            worker: NO_WORKER,
            failed_upstream: NO_NODE,
            started: 0,
            duration: 0,
            value: None,
            details: None,
        }
    }

    /// Its details, made if it has none yet.
    pub(crate) fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    /// When it started and how long it took, in seconds from the start of the run, as
    /// records hold them; none for a node or branch that never started (upstream failed,
    /// or not needed).
    pub(crate) fn times_secs(&self) -> (Option<f64>, Option<f64>) {
        let started = !matches!(
            self.status,
            NodeStatus::UpstreamFailed | NodeStatus::NotNeeded
        );
        let secs = |nanos: u64| Duration::from_nanos(nanos).as_secs_f64();
        (
            started.then(|| secs(self.started)),
            started.then(|| secs(self.duration)),
        )
    }
}

/// A duration in whole nanoseconds, as an outcome holds it (enough for 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The branches of one mapped node, as the executor leaves them: each branch's outcome,
/// and the content digest of its element (with a store).
pub(crate) struct MapOutcomes {
    /// The mapped node.
    pub(crate) node: crate::graph::NodeId,
    /// Each branch's element digest, in branch order; empty without a store.
    pub(crate) elements: Vec<[u8; 32]>,
    /// Each branch's outcome, in branch order. A branch that waited on a failed one has, as
    /// its failed upstream, that one's index among every node and branch of the run.
    pub(crate) outcomes: Vec<NodeOutcome>,
}
