//! Mapped nodes in a run. When a mapped node is ready, the list it goes over is known: its
//! branches are made then, one per element, each spawned on the pool, decided, run and
//! settled as a node is, and the last of them to settle settles the mapped node, which
//! its consumers then read as every branch's output, in order. A map over a mapped node is
//! ready once that node's branches are made, and each of its branches starts when its
//! paired branch above has settled.
//!
//! A branch's element is read in place from the list's `Arc` (through a function made for
//! the element type when the map was added), never cloned or encoded; with a store, its key
//! holds the element's canonical digest where a node's holds an input's output digest, and
//! the mapped node's name, never the branch's position, so that a branch is found again
//! wherever its element moves in the list.
//!
//! A run's targets and forced nodes may name branches by position (`counts[3]`): those are
//! checked against the list once it is made, only the targeted ones run (the others are
//! not needed), and the forced ones run whatever the store holds.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rayon::Scope;

use super::{Gathered, NONE, Run, lock};
use crate::cache::{Entry, Look, Store};
use crate::exec::Picked;
use crate::exec::mapped::{self, BranchSlot, MadeBranches, Tally, branch_name, map_outcomes};
use crate::graph::{Elements, MapSpec, Node, NodeId};
use crate::key::{Digest, hex};
use crate::node::RunReason;
use crate::node::commit::NewEntry;
use crate::node::decide::{Check, decide};
use crate::outputs;
use crate::report::{MapOutcomes, NO_WORKER, NodeOutcome, NodeStatus, nanos};
use crate::task::{InputValues, TaskError, Value};

/// The branches of one mapped node in a run.
pub(super) struct Branches {
    /// Each branch's element digest: its identity in its key (with a store).
    elements: Vec<Digest>,
    slots: Vec<Mutex<BranchSlot>>,
    /// Branches that have not settled yet.
    left: AtomicUsize,
    /// Each mapped node that maps over this one, with, per branch, what its paired branch
    /// waits on: this branch to settle, and that node to be ready (two, counted off).
    paired: Vec<(NodeId, Box<[AtomicU8]>)>,
    /// The first branch that did not succeed, once the mapped node settled.
    first_bad: OnceLock<Option<usize>>,
}

impl Branches {
    /// How many branches there are.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// Where a mapped node's elements come from.
#[derive(Clone)]
enum Source {
    /// The `Vec` output of the node mapped over.
    List(Arc<Value>, Elements),
    /// The branches of the mapped node `.0` mapped over: branch `i` takes branch `i`'s
    /// output, which it reads once that branch settled.
    Paired(NodeId),
}

/// The output of a settled mapped node, as its consumers read it: each branch's output in
/// order, where it is in memory (a cached branch's is read from its entry when needed).
pub(super) struct BranchValues(pub(super) Vec<Option<Arc<Value>>>);

/// How many branches of a list one job of the pool runs, one after the other.
const BRANCHES_PER_JOB: usize = 16;

impl<'p> Run<'p> {
    /// The branches of mapped node `id`, once they are made.
    pub(super) fn branches_of(&self, id: NodeId) -> Option<&Arc<Branches>> {
        let k = self.pipeline.nodes.map_index(id)?;
        self.maps[k].get()
    }

    /// Whether node `id` is a mapped node.
    #[inline]
    pub(super) fn is_mapped(&self, id: NodeId) -> bool {
        !self.maps.is_empty() && self.pipeline.nodes.map(id).is_some()
    }

    /// Whether `child` maps over the mapped node `done`, whose branches were made: it is
    /// not kept from running when some of them failed, as each of its branches waits only
    /// on its own.
    pub(super) fn pairs_with(&self, child: NodeId, done: NodeId) -> bool {
        !self.maps.is_empty()
            && self
                .pipeline
                .nodes
                .map(child)
                .is_some_and(|spec| spec.over == done)
            && self.branches_of(done).is_some()
    }

    /// Starts mapped node `id`, which is ready: reads the list it goes over, makes its
    /// branches and spawns them. Returns the node to run next on this thread, if the
    /// mapped node settled at once (no branch, or no list).
    pub(super) fn start_map<'s>(&'s self, scope: &Scope<'s>, id: NodeId) -> Option<NodeId> {
        let node = self.pipeline.node_at(id);
        let spec = node.map().expect("a mapped node has a map");
        if self.stopped() {
            self.release_inputs(id);
            self.settle_without_running(id, NodeStatus::Cancelled, NONE);
            return self.settle(scope, id);
        }
        let made = match spec.elements {
            Some(_) => self
                .obtain(spec.over)
                .and_then(|over| self.make(id, spec, Some(over))),
            None => self.make(id, spec, None),
        };
        let made = made.and_then(|(branches, source)| {
            let picked = self.settings.picked(id);
            match Picked::beyond(picked, self.pipeline, id, spec, branches.slots.len()) {
                Some(error) => {
                    self.uncount_branches(branches.slots.len());
                    Err(error)
                }
                None => Ok((branches, source)),
            }
        });
        let (mut branches, source) = match made {
            Ok(made) => made,
            Err(error) => {
                let status = if matches!(error, TaskError::Cancelled) {
                    NodeStatus::Cancelled
                } else {
                    NodeStatus::Failed
                };
                let mut outcome = NodeOutcome::new(status);
                outcome.started = self.clock();
                outcome.details_mut().error = Some(Arc::new(error));
                self.release_inputs(id);
                self.settle_with(id, outcome, None);
                return self.settle(scope, id);
            }
        };
        let n = branches.slots.len();
        // Only the branches the targets name run; the others are not needed.
        let only = self.settings.picked(id).and_then(|p| p.only.as_deref());
        if let Some(only) = only {
            *branches.left.get_mut() = only.len();
            for (i, slot) in branches.slots.iter_mut().enumerate() {
                if only.binary_search(&i).is_err() {
                    slot.get_mut()
                        .unwrap_or_else(PoisonError::into_inner)
                        .outcome = Some(NodeOutcome::new(NodeStatus::NotNeeded));
                }
            }
        }
        let k = self
            .pipeline
            .nodes
            .map_index(id)
            .expect("a mapped node has a map");
        let _ = self.maps[k].set(Arc::new(branches));
        if let Some(progress) = self.settings.progress {
            progress.branches_made(id.index(), n);
            if let Some(only) = only {
                let not_needed = NodeOutcome::new(NodeStatus::NotNeeded);
                for i in (0..n).filter(|i| only.binary_search(i).is_err()) {
                    progress.branch_settled(
                        id.index(),
                        self.pipeline.node_name(id),
                        i,
                        &not_needed,
                        None,
                    );
                }
            }
        }
        // The maps over this one need only their own branch of it: they are ready as soon
        // as its branches are made, not when they all settle.
        let paired: Vec<NodeId> = self.branches_of(id).map_or_else(Vec::new, |b| {
            b.paired.iter().map(|(child, _)| *child).collect()
        });
        for child in paired {
            self.count_off(scope, child);
        }
        if n == 0 {
            return self.finish_map(scope, id);
        }
        match spec.elements {
            // Each branch holds the list until it is done with it. The few the targets name
            // are a job each.
            Some(_) if only.is_some() => {
                for &i in only.into_iter().flatten() {
                    let source = source.clone();
                    scope.spawn(move |scope| self.drive_branch(scope, id, i, source));
                }
            }
            // A job runs a few branches in turn: spawning one job per branch would cost more
            // than a trivial branch does.
            Some(_) => {
                for first in (0..n).step_by(BRANCHES_PER_JOB) {
                    let source = source.clone();
                    scope.spawn(move |scope| {
                        for i in first..n.min(first + BRANCHES_PER_JOB) {
                            self.drive_branch(scope, id, i, source.clone());
                        }
                    });
                }
            }
            None => {
                // Each branch starts once its paired branch above has settled too.
                let gates = self.branches_of(spec.over).and_then(|up| {
                    up.paired
                        .iter()
                        .find(|(child, _)| *child == id)
                        .map(|(_, gates)| gates)
                });
                for i in 0..n {
                    if !Picked::runs(self.settings.picked(id), i) {
                        continue;
                    }
                    if gates.is_none_or(|g| g[i].fetch_sub(1, Ordering::AcqRel) == 1) {
                        let source = source.clone();
                        scope.spawn(move |scope| self.drive_branch(scope, id, i, source));
                    }
                }
            }
        }
        None
    }

    /// Tells `child`, which maps over a mapped node whose branches were just made, that it
    /// need not wait for that node to settle; runs it if that was all it waited on.
    fn count_off<'s>(&'s self, scope: &Scope<'s>, child: NodeId) {
        let cell = &self.cells[child.index()];
        if cell.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if cell.failed_upstream.load(Ordering::Acquire) != NONE {
            self.skip(child);
            if let Some(next) = self.settle(scope, child) {
                scope.spawn(move |scope| self.drive(scope, next));
            }
        } else {
            scope.spawn(move |scope| self.drive(scope, child));
        }
    }

    /// The branches of mapped node `id` (`spec`) over `over`, the output of the node it
    /// goes over, with their element digests (with a store); or, over a mapped node (and
    /// no `over`), one per branch of that node, whose digests are read as each settles.
    fn make(
        &self,
        id: NodeId,
        spec: &MapSpec,
        over: Option<Arc<Value>>,
    ) -> Result<(Branches, Source), TaskError> {
        let (source, n, elements) = match (spec.elements, over) {
            (Some(read), Some(over)) => {
                let n = (read.len)(&*over);
                self.count_branches(n)?;
                let mut elements = Vec::new();
                if self.settings.store.is_some() {
                    elements.reserve_exact(n);
                    for i in 0..n {
                        let digest = (read.digest)(&*over, i).map_err(|e| {
                            self.uncount_branches(n);
                            TaskError::failed(format!(
                                "element {i} of `{}` cannot be hashed: {e}",
                                self.pipeline.node_name(spec.over)
                            ))
                        })?;
                        elements.push(digest);
                    }
                }
                (Source::List(over, read), n, elements)
            }
            _ => {
                let n = self.branches_of(spec.over).map_or(0, |up| up.slots.len());
                self.count_branches(n)?;
                (Source::Paired(spec.over), n, Vec::new())
            }
        };
        let needed = self.settings.needed;
        let paired = self
            .pipeline
            .node_at(id)
            .downstream()
            .iter()
            .filter(|child| needed[child.index()])
            .filter(|child| {
                self.pipeline
                    .nodes
                    .map(**child)
                    .is_some_and(|m| m.over == id)
            })
            .map(|child| (*child, (0..n).map(|_| AtomicU8::new(2)).collect()))
            .collect();
        let branches = Branches {
            elements,
            slots: (0..n).map(|_| Mutex::default()).collect(),
            left: AtomicUsize::new(n),
            paired,
            first_bad: OnceLock::new(),
        };
        Ok((branches, source))
    }

    /// Counts the `n` branches a mapped node is about to make into the run's; an error,
    /// and nothing counted, if the run would make more than a run may.
    fn count_branches(&self, n: usize) -> Result<(), TaskError> {
        let mut made = self.branches_made.load(Ordering::Acquire);
        loop {
            let total = mapped::more_branches(made, n)?;
            match self.branches_made.compare_exchange_weak(
                made,
                total,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => made = now,
            }
        }
    }

    /// Takes back the `n` branches counted for a mapped node that did not make them.
    fn uncount_branches(&self, n: usize) {
        self.branches_made.fetch_sub(n, Ordering::AcqRel);
    }

    /// Runs branch `i` of mapped node `id`, and settles the mapped node if it was the last
    /// branch, going on with the nodes that makes ready.
    fn drive_branch<'s>(&'s self, scope: &Scope<'s>, id: NodeId, i: usize, source: Source) {
        let run = || {
            let branches = self.branches_of(id).expect("branches are made");
            let slot = self.run_branch(id, branches, i, &source);
            drop(source);
            if let (Some(progress), Some(outcome)) = (self.settings.progress, &slot.outcome) {
                let upstream = slot.failed_upstream.map(|(up, j)| (up.index(), j));
                progress.branch_settled(
                    id.index(),
                    self.pipeline.node_name(id),
                    i,
                    outcome,
                    upstream,
                );
            }
            *lock(&branches.slots[i]) = slot;
            // The paired branches below whose node is ready start now.
            for (child, gates) in &branches.paired {
                if gates[i].fetch_sub(1, Ordering::AcqRel) == 1
                    && Picked::runs(self.settings.picked(*child), i)
                {
                    let child = *child;
                    let paired = Source::Paired(id);
                    scope.spawn(move |scope| self.drive_branch(scope, child, i, paired));
                }
            }
            if branches.left.fetch_sub(1, Ordering::AcqRel) == 1
                && let Some(next) = self.finish_map(scope, id)
            {
                self.drive_here(scope, next);
            }
        };
        match self.settings.dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, run),
            None => run(),
        }
    }

    /// Decides branch `i` of mapped node `id`, runs its task if it must, and returns how it
    /// ended.
    fn run_branch(&self, id: NodeId, branches: &Branches, i: usize, source: &Source) -> BranchSlot {
        let node = self.pipeline.node_at(id);
        let spec = node.map().expect("a mapped node has a map");
        let span = tracing::info_span!(
            target: "pipewright",
            parent: self.span,
            "node",
            node = %node.name(),
            branch = i,
            task = %node.task().meta().name,
        );
        let _entered = span.enter();
        let start = self.clock();
        let worker = rayon::current_thread_index().map_or(NO_WORKER, |w| w as u32);
        let mut slot = BranchSlot::default();
        let mut outcome = NodeOutcome::new(NodeStatus::Ran);
        outcome.started = start;
        outcome.worker = worker;

        if self.stopped() {
            outcome.status = NodeStatus::Cancelled;
            slot.outcome = Some(outcome);
            return slot;
        }
        if let Source::Paired(up) = source {
            let status = self.branch_status(*up, i);
            if !status.is_success() {
                outcome.status = if status == NodeStatus::Cancelled {
                    NodeStatus::Cancelled
                } else {
                    slot.failed_upstream = Some((*up, i));
                    NodeStatus::UpstreamFailed
                };
                slot.outcome = Some(outcome);
                return slot;
            }
        }
        let result = match self.settings.store {
            None => self
                .branch_inputs(&node, spec, source, i)
                .and_then(|inputs| self.with_ctx(|ctx| self.invoke(id, &node, &inputs, None, ctx)))
                .map(|value| {
                    outcome.in_memory = true;
                    outcome.value = Some(value);
                    None
                }),
            Some(store) => {
                let name = branch_name(node.name(), i);
                let digests = self.branch_digests(&node, spec, branches, i);
                self.work_branch(id, &node, &name, source, i, store, digests)
                    .map(Some)
            }
        };
        let end = self.clock();
        let duration = std::time::Duration::from_nanos(end.saturating_sub(start));
        match result {
            Ok(None) => {
                tracing::info!(target: "pipewright", ?duration, "finished");
                outcome.duration = nanos(duration);
            }
            Ok(Some(done)) => match done {
                BranchDone::Ran {
                    key,
                    reason,
                    value,
                    digest,
                    entry,
                } => {
                    tracing::info!(target: "pipewright", ?duration, "finished");
                    outcome.duration = nanos(duration);
                    outcome.value = value;
                    let details = outcome.details_mut();
                    details.key = Some(key);
                    details.reason = Some(reason);
                    details.output_digest = Some(hex(&digest));
                    slot.digest = Some(digest);
                    slot.entry = entry;
                }
                BranchDone::Cached { key, entry } => {
                    tracing::debug!(target: "pipewright", key = %&key[..12], "cached");
                    outcome.status = NodeStatus::Cached;
                    let details = outcome.details_mut();
                    details.key = Some(key);
                    details.output_digest = Some(hex(&entry.digest));
                    slot.digest = Some(entry.digest);
                    slot.entry = Some(entry);
                }
            },
            Err(error) => self.ended_with(&mut outcome, error, duration),
        }
        slot.outcome = Some(outcome);
        slot
    }

    /// Calls `f` with this thread's task context, or a new one if it is taken (by a task
    /// of this thread that waits on the pool).
    fn with_ctx<R>(&self, f: impl FnOnce(&mut crate::task::Ctx) -> R) -> R {
        let guard = rayon::current_thread_index()
            .and_then(|w| self.contexts.get(w))
            .and_then(|c| c.0.try_lock().ok());
        match guard {
            Some(mut guard) => f(&mut guard),
            None => f(&mut self.new_ctx()),
        }
    }

    /// How branch `i` of the mapped node `id` ended (or `UpstreamFailed` if it has no
    /// such branch).
    fn branch_status(&self, id: NodeId, i: usize) -> NodeStatus {
        self.branches_of(id)
            .and_then(|b| b.slots.get(i))
            .and_then(|slot| lock(slot).outcome.as_ref().map(|o| o.status))
            .unwrap_or(NodeStatus::UpstreamFailed)
    }

    /// The input digests of branch `i` of `node`: its element's in place of the list's.
    fn branch_digests(
        &self,
        node: &Node<'_>,
        spec: &MapSpec,
        branches: &Branches,
        i: usize,
    ) -> Vec<Vec<Digest>> {
        let element = match spec.elements {
            Some(_) => branches.elements[i],
            // The paired branch above has settled: its output's digest is known.
            None => self
                .branches_of(spec.over)
                .map_or_else(Digest::default, |up| {
                    lock(&up.slots[i]).digest.unwrap_or_default()
                }),
        };
        mapped::branch_digests(spec, self.input_digests(node), element)
    }

    /// The inputs of branch `i` of `node`, whose elements come from `source`.
    fn branch_inputs(
        &self,
        node: &Node<'_>,
        spec: &MapSpec,
        source: &Source,
        i: usize,
    ) -> Result<Gathered, TaskError> {
        let mut inputs = Gathered::with_capacity(node.wires().len());
        for (w, wire) in node.wires().enumerate() {
            if spec.element_inputs.contains(&w) {
                inputs.push(match source {
                    Source::List(list, read) => InputValues::Element(list.clone(), i, read.get),
                    Source::Paired(up) => InputValues::One(self.branch_output(*up, i)?),
                });
            } else {
                inputs.push(self.gather_wire(wire)?);
            }
        }
        Ok(inputs)
    }

    /// The work on branch `i` (named `name`) of mapped node `id` with a store: decide from
    /// its key whether its entry can be used, else run it.
    #[expect(clippy::too_many_arguments, reason = "one branch's whole context")]
    fn work_branch(
        &self,
        id: NodeId,
        node: &Node<'_>,
        name: &str,
        source: &Source,
        i: usize,
        store: &Store,
        digests: Vec<Vec<Digest>>,
    ) -> Result<BranchDone, TaskError> {
        let meta = node.task().meta();
        let forced =
            self.settings.forced[id.index()] || Picked::forces(self.settings.picked(id), i);
        let check = Check {
            forced,
            verify: self.settings.keep[id.index()],
            repair: true,
            look: Look::Remembered,
        };
        let components = self.components(node, &digests)?;
        let key = hex(&components.key());
        let mut reason = match decide(store, meta, name, &key, check) {
            Ok(entry) => return Ok(BranchDone::Cached { key, entry }),
            Err(reason) => reason,
        };
        // One process computes a key at a time; equal elements share a key, and so one
        // computes it and the others find its entry.
        let lock = if meta.cache {
            Some(store.lock(&key).map_err(TaskError::Store)?)
        } else {
            None
        };
        if matches!(reason, RunReason::NoEntry) {
            let now = Check {
                look: Look::Fresh,
                ..check
            };
            match decide(store, meta, name, &key, now) {
                Ok(entry) => return Ok(BranchDone::Cached { key, entry }),
                Err(why) => reason = why,
            }
        }
        let spec = node.map().expect("a mapped node has a map");
        if self.settings.in_child {
            let replace = forced || !meta.cache;
            let entry =
                self.branch_in_child(node, name, spec, source, i, &digests, store, &key, replace)?;
            drop(lock);
            return Ok(BranchDone::Ran {
                key,
                reason,
                value: None,
                digest: entry.digest,
                entry: Some(entry),
            });
        }
        let inputs = self.branch_inputs(node, spec, source, i)?;
        let entry = NewEntry {
            task: node.task(),
            node: name,
            input_nodes: self.input_names(node),
            key: &key,
            components: &components,
            keep: meta.cache,
        };
        let computed = self.compute(id, node, &inputs, store, entry)?;
        drop(lock);
        Ok(BranchDone::Ran {
            key,
            reason,
            value: Some(computed.value),
            digest: computed.digest,
            entry: computed.entry,
        })
    }

    /// Runs branch `i` (named `name`) of mapped node `node` in a child process, which reads
    /// its element from the stored list (or the paired branch's entry) and its other
    /// inputs from the store, and commits its output under `key`. `digests` are the
    /// branch's input digests, the element's among them.
    #[expect(clippy::too_many_arguments, reason = "one branch's whole context")]
    fn branch_in_child(
        &self,
        node: &Node<'_>,
        name: &str,
        spec: &MapSpec,
        source: &Source,
        i: usize,
        digests: &[Vec<Digest>],
        store: &Store,
        key: &str,
        replace: bool,
    ) -> Result<Arc<Entry>, TaskError> {
        let element = match source {
            Source::List(..) => spec
                .element_inputs
                .first()
                .and_then(|&w| digests.get(w)?.first())
                .map(hex),
            Source::Paired(_) => None,
        };
        let inputs = self.stored_inputs(node, Some((i, element.as_deref())))?;
        self.job_in_child(node, name, store, key, replace, inputs)
    }

    /// The output of branch `i` of the settled mapped node `id`, read from its entry; a
    /// damaged entry is removed and the branch computed again, alone.
    pub(super) fn load_branch(&self, id: NodeId, i: usize) -> Result<Arc<Value>, TaskError> {
        let node = self.pipeline.node_at(id);
        let name = branch_name(node.name(), i);
        let branches = self
            .branches_of(id)
            .ok_or_else(|| TaskError::failed(format!("`{name}` was never made")))?;
        let entry = {
            let slot = lock(&branches.slots[i]);
            if let Some(value) = slot.outcome.as_ref().and_then(|o| o.value.clone()) {
                return Ok(value);
            }
            slot.entry.clone()
        };
        let (Some(store), Some(entry)) = (self.settings.store, entry) else {
            return Err(TaskError::failed(format!(
                "the output of `{name}` is neither in memory nor stored"
            )));
        };
        let loaded = store
            .read_decoded(&entry, |bytes, read| {
                let files = store.files_dir(read);
                outputs::decoding_from(files.as_deref(), || node.task().decode(bytes))
                    .map_err(|e| e.to_string())
            })
            .map(|(value, _)| value);
        let why = match loaded {
            Ok(value) => return Ok(value),
            Err(why) => why,
        };
        tracing::warn!(
            target: "pipewright",
            node = %name,
            "damaged cache entry ({why}); recomputing it"
        );
        store.remove_damaged(&entry.task, &entry.key, Some(&entry));
        let spec = node.map().expect("a mapped node has a map");
        // The mapped node settled, so its source is gone: it is read again.
        let source = match spec.elements {
            Some(read) => Source::List(self.obtain(spec.over)?, read),
            None => Source::Paired(spec.over),
        };
        let start = self.clock();
        let digests = self.branch_digests(&node, spec, branches, i);
        let components = self.components(&node, &digests)?;
        let key = hex(&components.key());
        let inputs = self.branch_inputs(&node, spec, &source, i)?;
        let new = NewEntry {
            task: node.task(),
            node: &name,
            input_nodes: self.input_names(&node),
            key: &key,
            components: &components,
            keep: node.task().meta().cache,
        };
        let computed = self.compute(id, &node, &inputs, store, new);
        let end = self.clock();
        let mut slot = lock(&branches.slots[i]);
        let outcome = slot
            .outcome
            .get_or_insert_with(|| NodeOutcome::new(NodeStatus::Ran));
        outcome.started = start;
        outcome.duration = end.saturating_sub(start);
        match computed {
            Ok(computed) => {
                outcome.status = NodeStatus::Ran;
                let details = outcome.details_mut();
                details.key = Some(key);
                details.reason = Some(RunReason::Damaged(why));
                details.output_digest = Some(hex(&computed.digest));
                slot.digest = Some(computed.digest);
                slot.entry = computed.entry;
                Ok(computed.value)
            }
            Err(error) => {
                let message = format!(
                    "the entry of `{name}` was damaged, and computing it again failed: {error}"
                );
                outcome.status = NodeStatus::Failed;
                outcome.details_mut().error = Some(Arc::new(error));
                slot.entry = None;
                Err(TaskError::failed(message))
            }
        }
    }

    /// The output of the settled branch `i` of mapped node `id`: where the branch left
    /// it, else where the mapped node settled with it, else from its entry.
    fn branch_output(&self, id: NodeId, i: usize) -> Result<Arc<Value>, TaskError> {
        if let Some(value) = self
            .branches_of(id)
            .and_then(|b| lock(&b.slots[i]).outcome.as_ref()?.value.clone())
        {
            return Ok(value);
        }
        if let Some(values) = self.in_memory(id)
            && let Some(Some(value)) = branch_values(&values).0.get(i)
        {
            return Ok(value.clone());
        }
        self.load_branch(id, i)
    }

    /// The output of the settled mapped node `id` once its consumers let it go: every
    /// branch's output, read from its entry.
    pub(super) fn load_branches(&self, id: NodeId) -> Result<Arc<Value>, TaskError> {
        let n = self.branches_of(id).map_or(0, |b| b.slots.len());
        let values = (0..n)
            .map(|i| self.load_branch(id, i).map(Some))
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(BranchValues(values)))
    }

    /// The output digests of the branches of the settled mapped node `id`, in order.
    pub(super) fn branch_digests_of(&self, id: NodeId) -> Vec<Digest> {
        self.branches_of(id).map_or_else(Vec::new, |branches| {
            branches
                .slots
                .iter()
                .map(|slot| lock(slot).digest.unwrap_or_default())
                .collect()
        })
    }

    /// The names of the branches of the settled mapped node `id`, in order.
    pub(super) fn branch_names_of(&self, id: NodeId) -> Vec<String> {
        let name = self.pipeline.node_name(id);
        let n = self.branches_of(id).map_or(0, |b| b.slots.len());
        (0..n).map(|i| branch_name(name, i)).collect()
    }

    /// The key of the entry of branch `i` of the mapped node `id`, once it settled on one.
    pub(super) fn branch_key(&self, id: NodeId, i: usize) -> Option<String> {
        let branches = self.branches_of(id)?;
        let slot = lock(branches.slots.get(i)?);
        slot.entry.as_ref().map(|e| e.key.clone())
    }

    /// Appends to `values` the output of each branch of the mapped node `id`, whose
    /// output `value` is.
    pub(super) fn expand(
        &self,
        id: NodeId,
        value: &Arc<Value>,
        values: &mut Vec<Arc<Value>>,
    ) -> Result<(), TaskError> {
        let outputs = &branch_values(value).0;
        values.reserve(outputs.len());
        for (i, output) in outputs.iter().enumerate() {
            values.push(match output {
                Some(output) => output.clone(),
                None => self.load_branch(id, i)?,
            });
        }
        Ok(())
    }

    /// Settles mapped node `id`, whose branches all settled: it succeeded if they all
    /// did. Returns the node to run next on this thread.
    fn finish_map<'s>(&'s self, scope: &Scope<'s>, id: NodeId) -> Option<NodeId> {
        let branches = self.branches_of(id).expect("branches are made");
        let name = self.pipeline.node_name(id);
        let mut values = Vec::with_capacity(branches.slots.len());
        let mut tally = Tally::default();
        for (i, slot) in branches.slots.iter().enumerate() {
            let slot = lock(slot);
            // A branch the targets do not need is neither counted nor gathered.
            let outcome = slot
                .outcome
                .as_ref()
                .filter(|o| o.status != NodeStatus::NotNeeded);
            tally.add(i, outcome);
            values.push(outcome.and_then(|o| o.value.clone()));
        }
        let _ = branches.first_bad.set(tally.first_bad());
        let outcome = tally.outcome(name, self.settings.store.is_some(), self.clock());
        if outcome.status == NodeStatus::UpstreamFailed {
            // Pointed at its first branch that did not run when the report is made.
            self.cells[id.index()]
                .failed_upstream
                .store(id.0, Ordering::Release);
        }
        self.release_inputs(id);
        self.settle_with(
            id,
            outcome,
            Some(Arc::new(BranchValues(values)) as Arc<Value>),
        );
        // Read from the mapped node's output from now on (a paired branch below may
        // still read them), so that they go when it does.
        for slot in &branches.slots {
            if let Some(outcome) = lock(slot).outcome.as_mut() {
                outcome.value = None;
            }
        }
        self.settle(scope, id)
    }
}

/// What the work on one branch with a store ended with.
enum BranchDone {
    Ran {
        key: String,
        reason: RunReason,
        /// None when a worker process computed it: it is read from its entry when needed.
        value: Option<Arc<Value>>,
        digest: Digest,
        entry: Option<Arc<Entry>>,
    },
    Cached {
        key: String,
        entry: Arc<Entry>,
    },
}

/// A mapped node's output as its consumers read it.
fn branch_values(value: &Arc<Value>) -> &BranchValues {
    value
        .downcast_ref::<BranchValues>()
        .expect("a mapped node's output is its branches' outputs")
}

/// The branches of every mapped node of a run that is over, as the report reads them;
/// `outcomes`, those of the pipeline's nodes, get the outputs kept of the branches and
/// lose the mapped nodes' own, and a node that waited on a mapped node with a failed
/// branch is pointed at that branch.
pub(super) fn outcomes(
    maps: &[MapSpec],
    made: Vec<OnceLock<Arc<Branches>>>,
    outcomes: &mut [NodeOutcome],
) -> Vec<MapOutcomes> {
    let made = made
        .into_iter()
        .map(|branches| {
            let branches = branches.into_inner()?;
            let branches = Arc::try_unwrap(branches).unwrap_or_else(|shared| Branches {
                elements: shared.elements.clone(),
                slots: shared
                    .slots
                    .iter()
                    .map(|slot| Mutex::new(std::mem::take(&mut *lock(slot))))
                    .collect(),
                left: AtomicUsize::new(0),
                paired: Vec::new(),
                first_bad: OnceLock::new(),
            });
            let first_bad = branches.first_bad.get().copied().flatten();
            Some(MadeBranches {
                elements: branches.elements,
                slots: branches
                    .slots
                    .into_iter()
                    .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
                    .collect(),
                first_bad,
            })
        })
        .collect();
    map_outcomes(maps, made, outcomes, |mapped, i| {
        mapped
            .value
            .as_ref()
            .and_then(|kept| branch_values(kept).0.get(i).cloned().flatten())
    })
}
