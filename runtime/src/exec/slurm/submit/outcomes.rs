//! How each node and branch of a run on the cluster ended, as the report reads it.

use std::sync::Arc;
use std::time::Duration;

use super::Submission;
use crate::cache::Lookup;
use crate::exec::mapped::{BranchSlot, MadeBranches, map_outcomes};
use crate::exec::slurm::State;
use crate::graph::NodeId;
use crate::plan::RunReason;
use crate::report::{Details, MapOutcomes, NO_NODE, NodeOutcome, NodeStatus, nanos};
use crate::task::TaskError;

impl Submission<'_> {
    /// The outcome of every node, with the entry of each stored one, and of every branch.
    pub(super) fn outcomes(mut self) -> (Vec<NodeOutcome>, Vec<MapOutcomes>) {
        let n = self.pipeline.len();
        let at: Vec<(NodeId, Option<usize>)> =
            self.slots.iter().map(|s| (s.node, s.branch)).collect();
        let slots = std::mem::take(&mut self.slots);
        let mut outcomes = Vec::with_capacity(n);
        // Each mapped node's branches, in the order the maps were made.
        let mut branches: Vec<Option<BranchSlot>> = Vec::with_capacity(slots.len() - n);
        for slot in slots {
            let mut up = None;
            let mut outcome = self.outcome(
                slot.node,
                slot.state,
                slot.submitted_at,
                slot.reason,
                &mut up,
            );
            let mut failed_upstream = None;
            if let Some(up) = up {
                match (at[up], slot.branch) {
                    // A branch that waited on a branch above.
                    ((node, Some(i)), Some(_)) => failed_upstream = Some((node, i)),
                    // A node waits on the mapped node, pointed at its first bad branch.
                    ((node, _), _) => outcome.failed_upstream = node.0,
                }
            }
            if slot.branch.is_none() {
                outcomes.push(outcome);
            } else {
                branches.push(Some(BranchSlot {
                    outcome: Some(outcome),
                    digest: None,
                    entry: None,
                    failed_upstream,
                }));
            }
        }
        let made = std::mem::take(&mut self.made)
            .into_iter()
            .map(|made| {
                let made = made?;
                let first = made.first - n;
                Some(MadeBranches {
                    elements: made.elements,
                    slots: branches[first..first + made.n]
                        .iter_mut()
                        .filter_map(Option::take)
                        .collect(),
                    first_bad: made.first_bad,
                })
            })
            .collect();
        let maps = map_outcomes(self.pipeline.nodes.maps(), made, &mut outcomes, |_, _| None);
        (outcomes, maps)
    }

    /// The outcome of a slot of node `node` in `state`, submitted at `submitted_at`, run
    /// for `reason`; `up` is set to the slot that kept it from running.
    fn outcome(
        &self,
        node: NodeId,
        state: State,
        submitted_at: Duration,
        reason: Option<RunReason>,
        up: &mut Option<usize>,
    ) -> NodeOutcome {
        let mut outcome = NodeOutcome::new(NodeStatus::NotNeeded);
        match state {
            State::NotNeeded => {}
            State::Stored { key, ran, duration } => {
                let mut details = Details {
                    reason: reason.filter(|_| ran),
                    ..Details::default()
                };
                match self
                    .store
                    .lookup_fresh(self.pipeline.task_of(node).name, &key)
                {
                    Lookup::Present(meta) => {
                        details.output_digest = Some(meta.output_digest());
                        details.entry = Some(meta);
                        if ran {
                            outcome.status = NodeStatus::Ran;
                            outcome.started = nanos(submitted_at);
                            outcome.duration = nanos(duration);
                        } else {
                            outcome.status = NodeStatus::Cached;
                        }
                    }
                    _ => {
                        outcome.status = NodeStatus::Failed;
                        details.error = Some(Arc::new(TaskError::failed(
                            "the worker reported an output, but its entry is not in the store",
                        )));
                    }
                }
                details.key = Some(key);
                outcome.details = Some(Box::new(details));
            }
            State::Failed(error) => {
                outcome.status = NodeStatus::Failed;
                outcome.started = nanos(submitted_at);
                outcome.details_mut().error = Some(Arc::new(error));
            }
            State::UpstreamFailed(slot) => {
                outcome.status = NodeStatus::UpstreamFailed;
                outcome.failed_upstream = NO_NODE;
                *up = Some(slot);
            }
            State::Mapped {
                settled: Some(settled),
            } => outcome = settled,
            State::Cancelled
            | State::Waiting
            | State::Queued
            | State::Open { .. }
            | State::Mapped { settled: None } => outcome.status = NodeStatus::Cancelled,
        }
        outcome
    }
}
