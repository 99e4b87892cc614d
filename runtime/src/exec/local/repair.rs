//! Outputs read back from the store when a node that runs needs them, and damaged
//! entries found then, recomputed with their damaged ancestors in dependency order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::cells::{Stored, status_code};
use super::{Gathered, Run, lock};
use crate::cache::Store;
use crate::graph::{Node, NodeId, Wire};
use crate::key::hex;
use crate::node::RunReason;
use crate::outputs;
use crate::report::{NO_WORKER, NodeStatus};
use crate::task::{InputValues, TaskError, Value};

/// The nodes one thread claimed in [`Run::loading`]; released when dropped.
pub(super) struct Claims<'r, 'p> {
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

impl<'p> Run<'p> {
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
    pub(super) fn load(&self, target: NodeId) -> Result<Arc<Value>, TaskError> {
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
                // A mapped node has no entry of its own: its branches' are read.
                None if self.is_mapped(id) => self.load_branches(id)?,
                None => {
                    claims.claim(id);
                    match self.in_memory(id) {
                        Some(value) => value,
                        None => match self.read_stored(store, id)? {
                            Ok(value) => value,
                            Err(why) => {
                                let node = &self.pipeline.node_at(id);
                                wanted.extend(node.upstream().iter().copied());
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
            for up in self.pipeline.node_at(*id).upstream() {
                *readers.entry(*up).or_default() += 1;
            }
        }
        for (id, why) in damaged {
            let node = &self.pipeline.node_at(id);
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
                let mut inputs = Gathered::with_capacity(node.wires().len());
                for wire in node.wires() {
                    inputs.push(match wire {
                        Wire::One(up) => InputValues::One(input(up)?),
                        Wire::Many(ups) => {
                            let mut values = Vec::with_capacity(ups.len());
                            for up in ups {
                                let value = input(up)?;
                                if self.is_mapped(*up) {
                                    self.expand(*up, &value, &mut values)?;
                                } else {
                                    values.push(value);
                                }
                            }
                            InputValues::Many(values)
                        }
                    });
                }
                self.repair(id, node, &inputs, store, why)?
            };
            for up in node.upstream() {
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

    /// Reads and decodes the stored output of the settled node `id`: `Ok(Err(why))` when
    /// its entry is damaged, which is then removed.
    pub(super) fn read_stored(
        &self,
        store: &Store,
        id: NodeId,
    ) -> Result<Result<Arc<Value>, String>, TaskError> {
        let node = &self.pipeline.node_at(id);
        // Only a node whose damaged entry was computed again here can have settled so.
        match self.status(id) {
            NodeStatus::Failed => {
                return Err(TaskError::failed(format!(
                    "the entry of `{}` was damaged, and computing it again failed",
                    node.name()
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
                node.name()
            )));
        };
        let loaded = store
            .read_decoded(&entry, |bytes, read| {
                let files = store.files_dir(read);
                outputs::decoding_from(files.as_deref(), || node.task().decode(bytes))
                    .map_err(|e| e.to_string())
            })
            .map(|(value, replaced)| {
                if let Some(now) = replaced {
                    // Replaced meanwhile: its consumers' keys take the output they read.
                    self.set_entry(id, now);
                }
                value
            });
        if let Err(why) = &loaded {
            tracing::warn!(
                target: "pipewright",
                node = %node.name(),
                "damaged cache entry ({why}); recomputing it"
            );
            store.remove_damaged(&entry.task, &entry.key, Some(&entry));
        }
        Ok(loaded)
    }

    /// Computes again, from `inputs`, the settled node `id`, whose entry was damaged
    /// (`why`), and stores its output; it is then reported as *ran* for that reason, or as
    /// *failed* or *cancelled*.
    pub(super) fn repair(
        &self,
        id: NodeId,
        node: &Node<'_>,
        inputs: &[InputValues],
        store: &Store,
        why: String,
    ) -> Result<Arc<Value>, TaskError> {
        let span = tracing::info_span!(
            target: "pipewright",
            parent: self.span,
            "node",
            node = %node.name(),
            task = %node.task().meta().name,
        );
        let _entered = span.enter();
        let start = self.clock();
        // Its inputs may have been computed again with new bytes: its key is made again.
        let result = self
            .components(node, &self.input_digests(node))
            .and_then(|components| {
                let key = hex(&components.key());
                let entry = self.new_entry(node, &key, &components);
                let computed = self.compute(id, node, inputs, store, entry)?;
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
                    node.name()
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
}
