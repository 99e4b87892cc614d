//! The state of each node in a run: how it ended, its output, and what the report reads
//! of it; and how a node reads its inputs from its upstream nodes' cells.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Gathered, Run, lock};
use crate::cache::Entry;
use crate::graph::{Node, NodeId, Wire};
use crate::key::{Digest, hex};
use crate::report::{Details, NodeOutcome, NodeStatus};
use crate::task::{InputValues, TaskError, Value};

/// The run-time state of one node. How it ended is written once, by the thread that
/// settles it, and read by the others only after its status; the report reads it when the
/// run is over. Only its output and what few nodes have (an entry, an error) take a lock.
pub(super) struct Cell {
    /// Upstream nodes that have not settled yet; the last of them leaves it at one.
    pub(super) pending: AtomicU32,
    /// The first failed upstream, or [`NONE`].
    pub(super) failed_upstream: AtomicU32,
    /// How the node ended, as [`status_code`], or [`UNSETTLED`].
    pub(super) status: AtomicU8,
    /// The worker that ran or settled it, or [`NO_WORKER`].
    pub(super) worker: AtomicU32,
    /// When it started or was settled, in nanoseconds from the start of the run.
    pub(super) started: AtomicU64,
    /// How long its task ran, in nanoseconds.
    pub(super) duration: AtomicU64,
    /// Its consumers in this run.
    pub(super) consumers: u32,
    pub(super) slot: Mutex<Slot>,
}

/// The status of a node that has not settled yet.
pub(super) const UNSETTLED: u8 = 0;

/// What [`Cell::status`] holds for a node that ended as `status`.
#[inline]
pub(super) fn status_code(status: NodeStatus) -> u8 {
    status as u8 + 1
}

/// Every status, in the order of their codes.
pub(super) const STATUSES: [NodeStatus; 6] = [
    NodeStatus::Ran,
    NodeStatus::Cached,
    NodeStatus::Failed,
    NodeStatus::UpstreamFailed,
    NodeStatus::NotNeeded,
    NodeStatus::Cancelled,
];

/// The status of a node whose [`Cell::status`] is `code`.
#[inline]
pub(super) fn status_of(code: u8) -> NodeStatus {
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
pub(super) struct Slot {
    /// Consumers that have not taken this node's output yet. Counted under the lock that
    /// guards the output, so that the last of them can take it instead of sharing it.
    pub(super) consumers_left: u32,
    pub(super) value: Option<Arc<Value>>,
    /// Where the output is stored (with a store); boxed, so that a cell takes less memory
    /// in a run without one.
    pub(super) stored: Option<Box<Stored>>,
    /// What only some outcomes have: an error, a key.
    pub(super) details: Option<Box<Details>>,
}

/// A node's output as a store knows it.
pub(super) struct Stored {
    /// The output's content digest.
    pub(super) digest: Option<Digest>,
    /// The entry holding the output (none for a task that is not cached).
    pub(super) entry: Option<Arc<Entry>>,
}

impl<'p> Run<'p> {
    /// Records a settled node's output where its consumers and the report find it.
    #[inline]
    pub(super) fn put(
        &self,
        id: NodeId,
        value: Arc<Value>,
        digest: Option<Digest>,
        entry: Option<Arc<Entry>>,
    ) {
        let mut slot = lock(&self.cells[id.index()].slot);
        if slot.consumers_left > 0 || self.settings.keep[id.index()] {
            slot.value = Some(value);
        }
        if digest.is_some() || entry.is_some() {
            slot.stored = Some(Box::new(Stored { digest, entry }));
        }
    }

    /// Records that the output of node `id` is stored in `entry`.
    #[inline]
    pub(super) fn set_entry(&self, id: NodeId, entry: Arc<Entry>) {
        lock(&self.cells[id.index()].slot).stored = Some(Box::new(Stored {
            digest: Some(entry.digest),
            entry: Some(entry),
        }));
    }

    /// The values of `node`'s inputs, read from the store where they are not in memory.
    #[inline]
    pub(super) fn gather(&self, node: &Node<'_>) -> Result<Gathered, TaskError> {
        let mut inputs = Gathered::with_capacity(node.wires().len());
        for wire in node.wires() {
            inputs.push(self.gather_wire(wire)?);
        }
        Ok(inputs)
    }

    /// The values of one input argument, read from the store where they are not in
    /// memory; a gathered mapped node gives every branch's output.
    #[inline]
    pub(super) fn gather_wire(&self, wire: Wire<'_>) -> Result<InputValues, TaskError> {
        Ok(match wire {
            Wire::One(up) => InputValues::One(self.obtain(*up)?),
            Wire::Many(ups) => {
                let mut values = Vec::with_capacity(ups.len());
                for up in ups {
                    let value = self.obtain(*up)?;
                    if self.is_mapped(*up) {
                        self.expand(*up, &value, &mut values)?;
                    } else {
                        values.push(value);
                    }
                }
                InputValues::Many(values)
            }
        })
    }

    /// The values of the inputs of `node`, whose inputs read distinct nodes, each released
    /// as it is taken: the last consumer of an output takes it instead of sharing it.
    #[inline]
    pub(super) fn take_inputs(&self, node: &Node<'_>) -> Result<Gathered, TaskError> {
        let mut inputs = Gathered::with_capacity(node.wires().len());
        let mut missing = None;
        let mut take = |up: NodeId| {
            let value = self.take(up);
            if value.is_none() && missing.is_none() {
                missing = Some(up);
            }
            value
        };
        for wire in node.wires() {
            match wire {
                Wire::One(up) => {
                    if let Some(value) = take(*up) {
                        inputs.push(InputValues::One(value));
                    }
                }
                Wire::Many(ups) => {
                    let mut values = Vec::with_capacity(ups.len());
                    for up in ups {
                        let value = take(*up);
                        match value {
                            Some(value) if self.is_mapped(*up) => {
                                self.expand(*up, &value, &mut values)?;
                            }
                            value => values.extend(value),
                        }
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
    #[inline]
    pub(super) fn take(&self, up: NodeId) -> Option<Arc<Value>> {
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
    #[inline]
    pub(super) fn obtain(&self, up: NodeId) -> Result<Arc<Value>, TaskError> {
        if let Some(value) = &lock(&self.cells[up.index()].slot).value {
            return Ok(value.clone());
        }
        self.load(up)
    }

    /// The output of node `id` if it is in memory.
    #[inline]
    pub(super) fn in_memory(&self, id: NodeId) -> Option<Arc<Value>> {
        lock(&self.cells[id.index()].slot).value.clone()
    }

    /// Keeps the output of node `id`, just loaded, in memory while its consumers need it.
    #[inline]
    pub(super) fn hold(&self, id: NodeId, value: &Arc<Value>) {
        let mut slot = lock(&self.cells[id.index()].slot);
        if slot.consumers_left > 0 || self.settings.keep[id.index()] {
            slot.value = Some(value.clone());
        }
    }

    /// The output digests of `node`'s inputs as they stand.
    #[inline]
    pub(super) fn input_digests(&self, node: &Node<'_>) -> Vec<Vec<Digest>> {
        if !self.maps.is_empty() {
            // A gathered mapped node gives every branch's output digest.
            return node
                .wires()
                .map(|wire| match wire {
                    Wire::Many(ups) => ups
                        .iter()
                        .flat_map(|up| match self.is_mapped(*up) {
                            true => self.branch_digests_of(*up),
                            false => vec![self.digest_of(*up)],
                        })
                        .collect(),
                    Wire::One(up) => vec![self.digest_of(*up)],
                })
                .collect();
        }
        node.input_digests(|up| self.digest_of(up))
    }

    /// The output digest of the settled node `up`, as it stands.
    #[inline]
    fn digest_of(&self, up: NodeId) -> Digest {
        lock(&self.cells[up.index()].slot)
            .stored
            .as_ref()
            .and_then(|stored| stored.digest)
            .unwrap_or_default()
    }

    /// Records how node `id` ended, with its in-memory `output` if it has one that is
    /// still needed, where its children and the report find it. The outcome's value, failed
    /// upstream node and in-memory mark are not read: the cell has them.
    #[inline]
    pub(super) fn settle_with(&self, id: NodeId, outcome: NodeOutcome, output: Option<Arc<Value>>) {
        if let Some(progress) = self.settings.progress {
            progress.settled(id.index(), self.pipeline.node_at(id).name(), &outcome);
        }
        let NodeOutcome {
            status,
            worker,
            started,
            duration,
            details,
            ..
        } = outcome;
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

    #[inline]
    pub(super) fn status(&self, id: NodeId) -> NodeStatus {
        status_of(self.cells[id.index()].status.load(Ordering::Acquire))
    }

    /// Turns the settled cells into the outcomes the report reads, with the outputs that
    /// are kept and, with a store, each output's digest and entry.
    pub(super) fn finish(self) -> Vec<NodeOutcome> {
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
