//! The branches of a mapped node under Slurm: made once the node's inputs are there, each
//! decided by its key where the client can compute it, the others submitted as job
//! arrays; and the mapped node settled once they all have.

use std::sync::Arc;
use std::time::Duration;

use super::{ARRAY_TASKS, Decided, Made, Submission, Unit};
use crate::cache::{Look, Lookup};
use crate::error::Result;
use crate::exec::Picked;
use crate::exec::mapped::{Tally, branch_digests, branch_name, more_branches};
use crate::exec::slurm::follow::outcome_of;
use crate::exec::slurm::{Slot, State};
use crate::graph::{Node, NodeId, Wire};
use crate::key::{Digest, KeyError, hex, with_input_files};
use crate::node::decide::{Check, decide};
use crate::outputs;
use crate::plan::RunReason;
use crate::report::{NodeStatus, nanos};
use crate::task::{TaskError, Value};

impl Submission<'_> {
    /// Makes the branches of the mapped node `id`, whose inputs are there, and queues
    /// into `units` those whose entries are not stored, as job arrays.
    pub(super) fn make(&mut self, id: NodeId, units: &mut Vec<Unit>) -> Result<()> {
        let node = self.pipeline.node_at(id);
        let Some(spec) = node.map() else {
            return Ok(());
        };
        let Some(k) = self.pipeline.nodes.map_index(id) else {
            return Ok(());
        };
        // The digests of the inputs that do not take the element, all stored.
        let mut digests = Vec::with_capacity(node.wires().len());
        for (w, wire) in node.wires().enumerate() {
            if spec.element_inputs.contains(&w) {
                digests.push(Vec::new());
                continue;
            }
            match self.wire_digests(wire) {
                Some(d) => digests.push(d),
                None => {
                    self.slots[id.index()].state = State::Failed(TaskError::failed(format!(
                        "an input of `{}` is not in the store",
                        node.name()
                    )));
                    return Ok(());
                }
            }
        }
        // The branches the run's other mapped nodes made.
        let made: usize = self.made.iter().flatten().map(|made| made.n).sum();
        let (n, elements) = match spec.elements {
            Some(read) => {
                let listed = self.read_list(spec.over).and_then(|list| {
                    let n = (read.len)(&*list);
                    more_branches(made, n)?;
                    (0..n)
                        .map(|i| {
                            (read.digest)(&*list, i).map_err(|e| {
                                TaskError::failed(format!(
                                    "element {i} of `{}` cannot be hashed: {e}",
                                    self.pipeline.node_name(spec.over)
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
                match listed {
                    Ok(elements) => (elements.len(), elements),
                    Err(error) => {
                        self.slots[id.index()].state = State::Failed(error);
                        return Ok(());
                    }
                }
            }
            None => {
                let n = self.branch_slots(spec.over).len();
                if let Err(error) = more_branches(made, n) {
                    self.slots[id.index()].state = State::Failed(error);
                    return Ok(());
                }
                (n, Vec::new())
            }
        };
        let settings = self.settings;
        let picked = settings.picked(id);
        if let Some(error) = Picked::beyond(picked, self.pipeline, id, spec, n) {
            self.slots[id.index()].state = State::Failed(error);
            return Ok(());
        }
        let first = self.slots.len();
        let over_first = self.branch_slots(spec.over).start;
        // The branches to submit: those that wait on nothing, then those of each array
        // above whose tasks they pair with, by that array.
        let mut free = Vec::new();
        let mut paired: Vec<(usize, Vec<usize>)> = Vec::new();
        let uncached = !node.task().meta().cache;
        for i in 0..n {
            let s = self.slots.len();
            self.slots.push(Slot::new(id, Some(i), State::Waiting));
            // Only the branches the targets name run; the others are not needed.
            if !Picked::runs(picked, i) {
                self.slots[s].state = State::NotNeeded;
                continue;
            }
            let forced = settings.forced[id.index()] || Picked::forces(picked, i);
            let name = branch_name(node.name(), i);
            let element = match spec.elements {
                Some(_) => elements.get(i).copied(),
                None => {
                    let up = over_first + i;
                    match &self.slots[up].state {
                        State::Stored { .. } => self.digest_of(up),
                        state if state.pending() => {
                            self.write_job(s, None, forced || uncached, None)?;
                            self.slots[s].deps = vec![up];
                            let array = self.slots[up].array.unwrap_or(up);
                            match paired.iter_mut().find(|(a, _)| *a == array) {
                                Some((_, members)) => members.push(s),
                                None => paired.push((array, vec![s])),
                            }
                            continue;
                        }
                        State::Cancelled => {
                            self.slots[s].state = State::Cancelled;
                            continue;
                        }
                        _ => {
                            self.slots[s].state = State::UpstreamFailed(up);
                            continue;
                        }
                    }
                }
            };
            let Some(element) = element else {
                self.slots[s].state = State::Failed(TaskError::failed(format!(
                    "the output of `{}` is not in the store",
                    branch_name(self.pipeline.node_name(spec.over), i)
                )));
                continue;
            };
            let digests = branch_digests(spec, digests.clone(), element);
            match self.decide_key(id, &node, &name, digests, forced) {
                Ok(Decided::Stored(key)) => {
                    self.slots[s].state = State::Stored {
                        key,
                        ran: false,
                        duration: Duration::ZERO,
                    };
                }
                Ok(Decided::Run(key, reason)) => {
                    let replace = matches!(reason, RunReason::Forced | RunReason::NotCached);
                    self.slots[s].reason = Some(reason);
                    let element = spec.elements.map(|_| hex(&element));
                    self.write_job(s, Some(key), replace, element)?;
                    free.push(s);
                }
                Err(error) => self.slots[s].state = State::Failed(error),
            }
        }
        for members in free.chunks(ARRAY_TASKS) {
            units.push(array_unit(&mut self.slots, members.to_vec(), false));
        }
        for (_, members) in paired {
            units.push(array_unit(&mut self.slots, members, true));
        }
        self.made[k] = Some(Made {
            first,
            n,
            elements,
            first_bad: None,
        });
        self.slots[id.index()].state = State::Mapped { settled: None };
        tracing::info!(target: "pipewright", node = %node.name(), branches = n, "branches made");
        if let Some(progress) = self.settings.progress {
            progress.branches_made(id.index(), n);
        }
        Ok(())
    }

    /// Settles mapped node `id` if its branches were made and have all settled.
    pub(super) fn settle_map(&mut self, id: NodeId) {
        let range = self.branch_slots(id);
        if !matches!(
            self.slots[id.index()].state,
            State::Mapped { settled: None }
        ) || range
            .clone()
            .any(|s| self.slots[s].state.settled().is_none())
        {
            return;
        }
        let mut tally = Tally::default();
        for (i, s) in range.enumerate() {
            // A branch the targets do not need is not counted.
            let outcome = outcome_of(&self.slots[s]);
            tally.add(
                i,
                (outcome.status != NodeStatus::NotNeeded).then_some(&outcome),
            );
        }
        let name = self.pipeline.node_name(id);
        let mut outcome = tally.outcome(name, true, nanos(self.started.elapsed()));
        if outcome.status == NodeStatus::UpstreamFailed {
            // Pointed at its first branch that did not run when the report is made.
            outcome.failed_upstream = id.0;
        }
        if let Some(k) = self.pipeline.nodes.map_index(id)
            && let Some(made) = self.made[k].as_mut()
        {
            made.first_bad = tally.first_bad();
        }
        self.slots[id.index()].state = State::Mapped {
            settled: Some(outcome),
        };
    }

    /// Reads the list that node `over`, stored, made.
    fn read_list(&self, over: NodeId) -> Result<Arc<Value>, TaskError> {
        let name = self.pipeline.node_name(over);
        let State::Stored { key, .. } = &self.slots[over.index()].state else {
            return Err(TaskError::failed(format!(
                "the list of `{name}` is not stored"
            )));
        };
        let task = self.pipeline.node_at(over).task();
        let entry = match self.store.lookup_fresh(task.meta().name, key) {
            Lookup::Present(entry) => entry,
            Lookup::Missing => {
                return Err(TaskError::failed(format!(
                    "the stored list of `{name}` is missing"
                )));
            }
            Lookup::Damaged(why) => {
                return Err(TaskError::failed(format!(
                    "the stored list of `{name}` is damaged: {why}"
                )));
            }
        };
        let output = self.store.read_verified(&entry).map_err(|why| {
            TaskError::failed(format!("the stored list of `{name}` is damaged: {why}"))
        })?;
        let files = self
            .store
            .files_dir(output.replaced.as_deref().unwrap_or(&entry));
        outputs::decoding_from(files.as_deref(), || task.decode(&output.bytes)).map_err(|e| {
            TaskError::failed(format!("the stored list of `{name}` cannot be read: {e}"))
        })
    }

    /// The output digest of the stored slot `s`.
    fn digest_of(&self, s: usize) -> Option<Digest> {
        let slot = &self.slots[s];
        let State::Stored { key, .. } = &slot.state else {
            return None;
        };
        match self
            .store
            .lookup_fresh(self.pipeline.task_of(slot.node).name, key)
        {
            Lookup::Present(entry) => Some(entry.digest),
            _ => None,
        }
    }

    /// The output digests `wire` reads, if they are all stored: each node's, and each
    /// branch's of a mapped node, in order.
    fn wire_digests(&self, wire: Wire<'_>) -> Option<Vec<Digest>> {
        let mut digests = Vec::with_capacity(wire.ids().len());
        for &up in wire.ids() {
            if self.pipeline.nodes.map(up).is_some() {
                for s in self.branch_slots(up) {
                    digests.push(self.digest_of(s)?);
                }
            } else {
                digests.push(self.digest_of(up.index())?);
            }
        }
        Some(digests)
    }

    /// The output digests of `node`'s inputs, if they are all stored.
    pub(super) fn input_digests(&self, node: &Node<'_>) -> Option<Vec<Vec<Digest>>> {
        node.wires().map(|wire| self.wire_digests(wire)).collect()
    }

    /// The key of node `id` (or of its branch `name`) on inputs with output digests
    /// `digests`, and whether its entry can be used (never when `forced`).
    pub(super) fn decide_key(
        &self,
        id: NodeId,
        node: &Node<'_>,
        name: &str,
        digests: Vec<Vec<Digest>>,
        forced: bool,
    ) -> Result<Decided, TaskError> {
        let components = with_input_files(Some(self.store), || {
            node.components(self.pipeline.name(), digests)
        })
        .map_err(KeyError::into_task_error)?;
        let key = hex(&components.key());
        let check = Check {
            forced,
            verify: self.settings.keep[id.index()],
            repair: false,
            look: Look::Fresh,
        };
        Ok(
            match decide(self.store, node.task().meta(), name, &key, check) {
                Ok(_) => Decided::Stored(key),
                Err(reason) => Decided::Run(key, reason),
            },
        )
    }
}

/// The job array of the branches `members`, each of which waits on the task of the array
/// above that is its first dep when `corr` is set; each member is marked as in it.
fn array_unit(slots: &mut [Slot], members: Vec<usize>, corr: bool) -> Unit {
    for &s in &members {
        slots[s].array = Some(members[0]);
    }
    Unit {
        members,
        deps: Vec::new(),
        corr,
        array: true,
    }
}
