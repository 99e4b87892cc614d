//! What every executor shares of a mapped node's branches: their names, how the mapped
//! node settles from them, and how the report receives them.

use std::sync::Arc;

use crate::cache::Entry;
use crate::graph::{MapSpec, NodeId};
use crate::key::Digest;
use crate::record::schema::MOST_BRANCHES;
use crate::report::{MapOutcomes, NO_NODE, NodeOutcome, NodeStatus};
use crate::task::TaskError;

pub(crate) use crate::graph::branch_name;

/// The input digests of one branch of the mapped node `spec` describes: `digests`, the
/// node's, with `element`'s digest for each input that takes the element. Its key is made
/// from them, so every executor gives a branch the same key.
pub(crate) fn branch_digests(
    spec: &MapSpec,
    mut digests: Vec<Vec<Digest>>,
    element: Digest,
) -> Vec<Vec<Digest>> {
    for &w in &spec.element_inputs {
        digests[w] = vec![element];
    }
    digests
}

/// The branches of a run, `made` by its mapped nodes so far and `n` more that a mapped
/// node would make, if they are at most [`MOST_BRANCHES`]: a run makes no more, so that its
/// record reads back.
pub(crate) fn more_branches(made: usize, n: usize) -> Result<usize, TaskError> {
    let limit = MOST_BRANCHES as usize;
    match made.checked_add(n) {
        Some(total) if total <= limit => Ok(total),
        _ => Err(TaskError::TooManyBranches {
            branches: n,
            made,
            limit,
        }),
    }
}

/// How one branch ended.
#[derive(Default)]
pub(crate) struct BranchSlot {
    pub(crate) outcome: Option<NodeOutcome>,
    /// Its output's digest and entry (with a store).
    pub(crate) digest: Option<Digest>,
    pub(crate) entry: Option<Arc<Entry>>,
    /// The branch of another mapped node whose failure kept it from running.
    pub(crate) failed_upstream: Option<(NodeId, usize)>,
}

/// The branches of one mapped node once the run is over.
pub(crate) struct MadeBranches {
    /// Each branch's element digest (with a store).
    pub(crate) elements: Vec<Digest>,
    pub(crate) slots: Vec<BranchSlot>,
    /// The first branch that did not succeed.
    pub(crate) first_bad: Option<usize>,
}

/// How the branches of a mapped node ended, counted as they are read in order; the mapped
/// node's own outcome is made from it.
pub(crate) struct Tally {
    n: usize,
    ran: usize,
    failed: usize,
    upstream_failed: usize,
    cancelled: usize,
    first_bad: Option<usize>,
    first_failed: Option<usize>,
    started: u64,
    ended: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            n: 0,
            ran: 0,
            failed: 0,
            upstream_failed: 0,
            cancelled: 0,
            first_bad: None,
            first_failed: None,
            started: u64::MAX,
            ended: 0,
        }
    }
}

impl Tally {
    /// Counts branch `i`, which ended as `outcome` (none: it never settled, or the run did
    /// not need it, and it is not counted).
    pub(crate) fn add(&mut self, i: usize, outcome: Option<&NodeOutcome>) {
        let Some(outcome) = outcome else {
            return;
        };
        self.n += 1;
        self.started = self.started.min(outcome.started);
        self.ended = self
            .ended
            .max(outcome.started.saturating_add(outcome.duration));
        match outcome.status {
            NodeStatus::Ran => self.ran += 1,
            NodeStatus::Cached => {}
            status => {
                self.first_bad.get_or_insert(i);
                match status {
                    NodeStatus::Failed => {
                        self.failed += 1;
                        self.first_failed.get_or_insert(i);
                    }
                    NodeStatus::UpstreamFailed => self.upstream_failed += 1,
                    _ => self.cancelled += 1,
                }
            }
        }
    }

    /// The first branch that did not succeed: the first that failed, else the first that
    /// did not run.
    pub(crate) fn first_bad(&self) -> Option<usize> {
        self.first_failed.or(self.first_bad)
    }

    /// The outcome of mapped node `name`, whose branches were all counted: it succeeded if
    /// they all did, and ran if one ran (or nothing is stored). `now` is its start if it
    /// has no branch.
    pub(crate) fn outcome(&self, name: &str, stored: bool, now: u64) -> NodeOutcome {
        let status = if self.failed > 0 {
            NodeStatus::Failed
        } else if self.upstream_failed > 0 {
            NodeStatus::UpstreamFailed
        } else if self.cancelled > 0 {
            NodeStatus::Cancelled
        } else if self.ran > 0 || !stored {
            NodeStatus::Ran
        } else {
            NodeStatus::Cached
        };
        let mut outcome = NodeOutcome::new(status);
        outcome.started = if self.n == 0 { now } else { self.started };
        outcome.duration = self.ended.saturating_sub(outcome.started);
        if let Some(i) = self.first_failed {
            outcome.details_mut().error = Some(Arc::new(TaskError::failed(format!(
                "{} of {} branch{} failed, the first `{}`",
                self.failed,
                self.n,
                if self.n == 1 { "" } else { "es" },
                branch_name(name, i)
            ))));
        }
        outcome
    }
}

/// The branches of every mapped node of a run that is over (`made`, in the order of
/// `maps`; none for a node that made none), as the report reads them. `outcomes`, those of
/// the pipeline's nodes, lose the mapped nodes' own outputs (`kept` reads them: the
/// outputs kept of each branch), and a node that waited on a mapped node with a failed
/// branch is pointed at that branch.
pub(crate) fn map_outcomes(
    maps: &[MapSpec],
    made: Vec<Option<MadeBranches>>,
    outcomes: &mut [NodeOutcome],
    kept: impl Fn(&NodeOutcome, usize) -> Option<Arc<crate::task::Value>>,
) -> Vec<MapOutcomes> {
    // Where each mapped node's branches start among every node and branch of the run.
    let mut first = Vec::with_capacity(maps.len());
    let mut next = outcomes.len();
    for branches in &made {
        first.push(next);
        next += branches.as_ref().map_or(0, |b| b.slots.len());
    }
    let global = |node: NodeId, i: usize| {
        maps.binary_search_by_key(&node, |m| m.node)
            .map_or(NO_NODE, |k| (first[k] + i) as u32)
    };
    let mut all = Vec::with_capacity(made.len());
    for (k, branches) in made.into_iter().enumerate() {
        let Some(branches) = branches else {
            continue;
        };
        let node = maps[k].node;
        let mut branch_outcomes = Vec::with_capacity(branches.slots.len());
        for (i, slot) in branches.slots.into_iter().enumerate() {
            let mut outcome = slot
                .outcome
                .unwrap_or_else(|| NodeOutcome::new(NodeStatus::Cancelled));
            if let Some(value) = kept(&outcomes[node.index()], i) {
                outcome.value = Some(value);
            }
            if let Some(entry) = slot.entry {
                outcome.details_mut().entry = Some(entry);
            }
            if let Some((up, j)) = slot.failed_upstream {
                outcome.failed_upstream = global(up, j);
            }
            branch_outcomes.push(outcome);
        }
        outcomes[node.index()].value = None;
        if let Some(i) = branches.first_bad {
            // The nodes that waited on the mapped node waited on this branch.
            let bad = (first[k] + i) as u32;
            for outcome in outcomes.iter_mut() {
                if outcome.status == NodeStatus::UpstreamFailed && outcome.failed_upstream == node.0
                {
                    outcome.failed_upstream = bad;
                }
            }
        }
        all.push(MapOutcomes {
            node,
            elements: branches.elements,
            outcomes: branch_outcomes,
        });
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_makes_at_most_its_limit_of_branches_over_all_its_maps() {
        let limit = MOST_BRANCHES as usize;
        assert_eq!(more_branches(0, limit).unwrap(), limit);
        assert_eq!(more_branches(limit - 3, 3).unwrap(), limit);
        let error = more_branches(limit - 3, 4).unwrap_err();
        assert!(
            matches!(
                error,
                TaskError::TooManyBranches { branches: 4, made, limit: l }
                    if made == limit - 3 && l == limit
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the map would make 4 branches, which with the 1048573 its run made before is \
             more than the 1048576 a run may make"
        );
        assert_eq!(
            more_branches(0, limit + 1).unwrap_err().to_string(),
            "the map would make 1048577 branches, more than the 1048576 a run may make"
        );
        assert!(more_branches(usize::MAX, 1).is_err());
    }
}
