//! Committing one node: its output encoded by its task's codec, digested, described, and
//! committed to the store under the node's key.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cache::{
    ENTRY_FORMAT, Entry, EntryMeta, FileRecord, InputDigests, KeyLock, NamedDigest, Note, Pending,
    Store, StoreError, Ticket,
};
use crate::erased::ErasedTask;
use crate::key::{Components, Digest, hex};
use crate::outputs;
use crate::task::{TaskError, Value};

/// A node's output just computed: the value, its content digest, and its new entry (none
/// where the entry is not kept).
pub(crate) struct Computed {
    pub(crate) value: Arc<Value>,
    pub(crate) digest: Digest,
    pub(crate) entry: Option<Arc<Entry>>,
    /// The commit of the entry, when it was queued (see [`NewEntry::compute_queued`]).
    pub(crate) ticket: Option<Ticket>,
}

/// The node whose output is computed and committed, as its new entry records it.
pub(crate) struct NewEntry<'a> {
    pub(crate) task: &'a dyn ErasedTask,
    /// The node's name.
    pub(crate) node: &'a str,
    /// The names of the nodes each input argument reads.
    pub(crate) input_nodes: Vec<Vec<String>>,
    /// The node's key, in hex, and what it is made of.
    pub(crate) key: &'a str,
    pub(crate) components: &'a Components,
    /// Whether the entry is committed; else the output is only computed and digested.
    pub(crate) keep: bool,
}

impl NewEntry<'_> {
    /// Begins the node's entry, runs `compute` with it (the task's work directory is
    /// there), and commits the output it returns; a failed computation leaves nothing
    /// behind.
    pub(crate) fn compute(
        self,
        store: &Store,
        compute: impl FnOnce(&Pending) -> Result<Arc<Value>, TaskError>,
    ) -> Result<Computed, TaskError> {
        self.compute_then(store, compute, |pending, meta, bytes, files| {
            Ok((store.commit(pending, meta, bytes, files)?, None))
        })
    }

    /// [`compute`](Self::compute), but the entry's row is queued and committed later, with
    /// others (see [`Store::commit_queued`]); the key's `lock` is released once it is, and
    /// `note` told. The caller reads what became of the commit with [`Store::failures`].
    pub(crate) fn compute_queued(
        self,
        store: &Store,
        lock: Option<KeyLock>,
        note: Option<Note>,
        compute: impl FnOnce(&Pending) -> Result<Arc<Value>, TaskError>,
    ) -> Result<Computed, TaskError> {
        self.compute_then(store, compute, |pending, meta, bytes, files| {
            store.commit_queued(pending, meta, bytes, files, lock, note)
        })
    }

    /// [`compute`](Self::compute), with the entry committed by `commit`.
    fn compute_then(
        self,
        store: &Store,
        compute: impl FnOnce(&Pending) -> Result<Arc<Value>, TaskError>,
        commit: impl FnOnce(
            Pending,
            &EntryMeta,
            &[u8],
            &[FileRecord],
        ) -> Result<(Entry, Option<Ticket>), StoreError>,
    ) -> Result<Computed, TaskError> {
        let task = self.task;
        let name = task.meta().name;
        let mut pending = store
            .begin(name, self.key, task.meta().names_in_key)
            .map_err(TaskError::Store)?;
        let keep = self.keep;
        let key = self.key;
        let result = (|| {
            let start = Instant::now();
            let value = compute(&pending)?;
            let duration = start.elapsed();
            // The output's files are read as it is encoded: their digests are in its bytes.
            let (bytes, files) =
                outputs::encoding_for(&pending.work_dir(), || self.task.encode(&*value));
            let bytes = bytes.map_err(TaskError::Encode)?;
            // A large output kept is written to its file while its digest is taken.
            let digest = if keep {
                store
                    .write_output_while(&mut pending, key, &bytes, || {
                        crate::digest::digest_beside_one(&bytes)
                    })
                    .map_err(TaskError::Store)?
            } else {
                crate::digest::digest(&bytes)
            };
            Ok::<_, TaskError>((value, bytes, files, *digest.as_bytes(), duration))
        })();
        let (mut value, bytes, files, digest, duration) = match result {
            Ok(done) => done,
            Err(error) => {
                store.discard(pending);
                return Err(error);
            }
        };
        if !self.keep {
            store.discard(pending);
            if let Some(file) = files.first() {
                return Err(TaskError::failed(format!(
                    "task `{name}` returns output file `{}`, but its work directory is \
                     removed when it ends, as the task has `cache = false`: a task that \
                     returns files must be cached",
                    file.path
                )));
            }
            return Ok(Computed {
                value,
                digest,
                entry: None,
                ticket: None,
            });
        }
        let meta = self.into_meta(&bytes, digest, duration);
        let (entry, ticket) = commit(pending, &meta, &bytes, &files).map_err(TaskError::Store)?;
        if !files.is_empty() {
            // The value the task returned names its files in the temporary directory the
            // entry was written in; read back, it names them where they are now.
            value =
                outputs::decoding_from(store.files_dir(&entry).as_deref(), || task.decode(&bytes))
                    .map_err(|e| {
                        TaskError::failed(format!(
                            "cannot read back the output just committed: {e}"
                        ))
                    })?;
        }
        Ok(Computed {
            value,
            digest,
            entry: Some(Arc::new(entry)),
            ticket,
        })
    }

    /// What the store records of the entry of an output `bytes` long, with content
    /// digest `digest`, that took the task `duration`.
    fn into_meta(self, bytes: &[u8], digest: Digest, duration: Duration) -> EntryMeta {
        let meta = self.task.meta();
        let inputs = self
            .input_nodes
            .into_iter()
            .zip(meta.inputs)
            .zip(&self.components.inputs)
            .map(|((nodes, spec), digests)| InputDigests {
                name: spec.name.to_owned(),
                nodes,
                digests: digests.iter().map(hex).collect(),
            })
            .collect();
        EntryMeta {
            format: ENTRY_FORMAT,
            task: meta.name.to_owned(),
            node: self.node.to_owned(),
            key: self.key.to_owned(),
            codec: self.components.codec.to_owned(),
            fingerprint: hex(&self.components.fingerprint),
            version: meta.version.map(str::to_owned),
            params: self.task.params_json(),
            param_digests: self
                .components
                .param_hex()
                .into_iter()
                .map(|(name, digest)| NamedDigest { name, digest })
                .collect(),
            helpers: meta
                .helpers()
                .into_iter()
                .map(|(name, digest)| NamedDigest {
                    name: name.to_owned(),
                    digest: hex(&digest),
                })
                .collect(),
            input_files: self.components.file_hex(),
            inputs,
            output_digest: hex(&digest),
            output_size: bytes.len() as u64,
            duration_secs: duration.as_secs_f64(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            pipewright: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}
