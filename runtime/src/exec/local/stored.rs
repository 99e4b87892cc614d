//! A node decided and computed with a store: its key made from its inputs' digests, its
//! entry used if it can be, else its task run here or in a child process and its output
//! committed.

use std::sync::Arc;

use super::{Run, lock};
use crate::cache::{Entry, KeyId, Look, Lookup, Note, Store};
use crate::exec::mapped::branch_name;
use crate::exec::worker::{InputRef, input_refs};
use crate::graph::{Node, NodeId, Wire};
use crate::key::{Components, Digest, KeyError, hex, with_input_files};
use crate::node::RunReason;
use crate::node::commit::{Computed, NewEntry};
use crate::node::decide::{Check, decide};
use crate::task::{InputValues, TaskError};

/// What the work on one node ended with.
pub(super) enum Done {
    Ran {
        key: Option<String>,
        reason: RunReason,
        /// Its entry's row was queued, to be committed after the node settles.
        queued: bool,
    },
    Cached {
        key: String,
    },
}

/// A node's key, and what it is made of.
pub(super) struct Keyed {
    digests: Vec<Vec<Digest>>,
    components: Components,
    key: String,
}

/// What a first look at a node's entry found.
pub(super) enum Looked {
    /// Its entry, which it settled on.
    Cached(Done),
    /// Not an entry it can settle on without a closer look.
    Unsettled(Keyed),
}

impl<'p> Run<'p> {
    /// Makes the key of node `id` and settles the node on its entry if the entries this
    /// run read of the index hold one for the key, the node is neither forced nor kept (a
    /// kept output is read, to check it), and its task is cached. Logs nothing: a node it
    /// settles needs no span of its own.
    pub(super) fn look(
        &self,
        id: NodeId,
        node: &Node<'_>,
        store: &Store,
    ) -> Result<Looked, TaskError> {
        let meta = node.task().meta();
        let digests = self.input_digests(node);
        let components = self.components(node, &digests)?;
        let digest = components.key();
        let key = hex(&digest);
        let plain =
            meta.cache && !self.settings.forced[id.index()] && !self.settings.keep[id.index()];
        if plain
            && let Lookup::Present(entry) =
                store.look_id(meta.name, &key, KeyId::of_digest(digest), Look::Remembered)
        {
            return Ok(Looked::Cached(self.cached(id, key, entry)));
        }
        Ok(Looked::Unsettled(Keyed {
            digests,
            components,
            key,
        }))
    }

    /// The work on one node with a store, whose key is `keyed`: decide whether its entry
    /// can be used, else run it.
    pub(super) fn work(
        &self,
        id: NodeId,
        node: &Node<'_>,
        store: &Store,
        keyed: Keyed,
    ) -> Result<Done, TaskError> {
        let meta = node.task().meta();
        let forced = self.settings.forced[id.index()];
        let verify = self.settings.keep[id.index()];
        let check = Check {
            forced,
            verify,
            repair: true,
            look: Look::Remembered,
        };
        let use_entry = |key: &str| decide(store, meta, node.name(), key, check);
        // Under the key's lock: an entry another process committed meanwhile is found.
        let use_entry_now = |key: &str| {
            let check = Check {
                look: Look::Fresh,
                ..check
            };
            decide(store, meta, node.name(), key, check)
        };

        let Keyed {
            mut digests,
            mut components,
            mut key,
        } = keyed;
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
        // What the index says now, under the lock, is also why the node runs: a row found
        // damaged there is no missing entry.
        if matches!(reason, RunReason::NoEntry) {
            match use_entry_now(&key) {
                Ok(entry) => return Ok(self.cached(id, key, entry)),
                Err(why) => reason = why,
            }
        }

        if self.settings.in_child {
            self.run_in_child(id, node, store, &key, forced || !meta.cache)?;
            drop(lock);
            return Ok(Done::Ran {
                key: Some(key),
                reason,
                queued: false,
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
            // Under the new key's lock, as above: who held it may have made the entry.
            if meta.cache {
                lock = Some(store.lock(&key).map_err(TaskError::Store)?);
            }
            match use_entry_now(&key) {
                Ok(entry) => return Ok(self.cached(id, key, entry)),
                Err(why) => reason = why,
            }
        }
        let entry = self.new_entry(node, &key, &components);
        let mut ctx = self.new_ctx();
        // The row is committed later, with others; the key's lock goes with it, released
        // once it is committed. Its consumers start now, from the output in memory.
        // The journal hears when it is committed.
        let note = self.committed.as_ref().map(|to| Note {
            to: Arc::clone(to),
            row: id.0,
        });
        let computed = entry.compute_queued(store, lock, note, |pending| {
            self.invoke(id, node, &inputs, Some(pending), &mut ctx)
        })?;
        let queued = computed.ticket.is_some();
        if let Some(ticket) = computed.ticket {
            super::lock(&self.commits).push((id, ticket));
        }
        self.put(id, computed.value, Some(computed.digest), computed.entry);
        Ok(Done::Ran {
            key: Some(key),
            reason,
            queued,
        })
    }

    /// Settles node `id` on its stored entry, without reading the output.
    pub(super) fn cached(&self, id: NodeId, key: String, entry: Arc<Entry>) -> Done {
        self.set_entry(id, entry);
        Done::Cached { key }
    }

    /// What the key of `node` is made of, on inputs with output digests `digests`.
    pub(super) fn components(
        &self,
        node: &Node<'_>,
        digests: &[Vec<Digest>],
    ) -> Result<Components, TaskError> {
        with_input_files(self.settings.store, || {
            node.components(self.pipeline.name(), digests.to_vec())
        })
        .map_err(KeyError::into_task_error)
    }

    /// The new entry of `node` under `key`, made of `components`, which replaces any entry
    /// already there; kept unless its task is not cached.
    pub(super) fn new_entry<'a>(
        &self,
        node: &'a Node<'a>,
        key: &'a str,
        components: &'a Components,
    ) -> NewEntry<'a> {
        NewEntry {
            task: node.task(),
            node: node.name(),
            input_nodes: self.input_names(node),
            key,
            components,
            keep: node.task().meta().cache,
        }
    }

    /// Runs `node`'s task on `inputs` and commits its output as `entry`. Returns the
    /// output, its digest and its entry.
    pub(super) fn compute(
        &self,
        id: NodeId,
        node: &Node<'_>,
        inputs: &[InputValues],
        store: &Store,
        entry: NewEntry<'_>,
    ) -> Result<Computed, TaskError> {
        entry.compute(store, |pending| {
            self.invoke(id, node, inputs, Some(pending), &mut self.new_ctx())
        })
    }

    /// The names of the nodes each input argument of `node` reads.
    pub(super) fn input_names(&self, node: &Node<'_>) -> Vec<Vec<String>> {
        node.wires()
            .map(|wire| match wire {
                Wire::One(id) => vec![self.pipeline.node_name(*id).to_owned()],
                Wire::Many(ids) => ids
                    .iter()
                    .flat_map(|id| match self.is_mapped(*id) {
                        true => self.branch_names_of(*id),
                        false => vec![self.pipeline.node_name(*id).to_owned()],
                    })
                    .collect(),
            })
            .collect()
    }

    /// Runs `node` in a child process that reads its inputs from the store and commits
    /// its output under `key`; then settles it on that entry.
    pub(super) fn run_in_child(
        &self,
        id: NodeId,
        node: &Node<'_>,
        store: &Store,
        key: &str,
        replace: bool,
    ) -> Result<(), TaskError> {
        let inputs = self.stored_inputs(node, None)?;
        let entry = self.job_in_child(node, node.name(), store, key, replace, inputs)?;
        self.set_entry(id, entry);
        Ok(())
    }

    /// Where a worker finds the inputs of `node` (of its branch, as `branch` says for
    /// [`input_refs`]): each node's entry, and each branch's of a mapped node, in order.
    pub(super) fn stored_inputs(
        &self,
        node: &Node<'_>,
        branch: Option<(usize, Option<&str>)>,
    ) -> Result<Vec<Vec<InputRef>>, TaskError> {
        let branches = |up| {
            self.is_mapped(up)
                .then(|| self.branches_of(up).map_or(0, |b| b.len()))
        };
        input_refs(self.pipeline, node, branch, branches, |up, i| {
            let key = match i {
                Some(i) => self.branch_key(up, i),
                None => lock(&self.cells[up.index()].slot)
                    .stored
                    .as_ref()
                    .and_then(|s| s.entry.as_ref())
                    .map(|entry| entry.key.clone()),
            };
            let key = key.ok_or_else(|| {
                let name = self.pipeline.node_name(up);
                let name = i.map_or_else(|| name.to_owned(), |i| branch_name(name, i));
                TaskError::failed(format!("the output of `{name}` is not stored"))
            })?;
            Ok((Some(key), None))
        })
    }

    /// Runs `node`'s task in a child process, as the node (or branch) `name`, on the
    /// stored inputs `inputs`, and returns the entry it committed under `key`.
    pub(super) fn job_in_child(
        &self,
        node: &Node<'_>,
        name: &str,
        store: &Store,
        key: &str,
        replace: bool,
        inputs: Vec<Vec<InputRef>>,
    ) -> Result<Arc<Entry>, TaskError> {
        #[cfg(unix)]
        {
            use crate::exec::process::{job_files, run_node};
            use crate::exec::worker::Job;

            if let Some(progress) = self.settings.progress {
                progress.started(name);
            }
            let run_dir = self.settings.run_dir.ok_or_else(|| {
                TaskError::failed("the process executor needs a run directory for its jobs")
            })?;
            let files =
                job_files(run_dir, &crate::text::node_file_name(name)).map_err(TaskError::Store)?;
            // The worker reads its inputs from the index: every row queued is committed.
            store.flush();
            let mut job = Job::new(
                self.pipeline,
                node,
                store.root().to_owned(),
                Some(key.to_owned()),
                inputs,
                replace,
                files.status.clone(),
            );
            if name != node.name() {
                job.entry_node = Some(name.to_owned());
            }
            run_node(job, &files, store, node.task().meta(), &self.retries(node))
        }
        #[cfg(not(unix))]
        {
            let _ = (node, name, store, key, replace, inputs);
            Err(TaskError::failed("the process executor runs on Unix only"))
        }
    }
}
