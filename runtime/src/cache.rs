//! The store of outputs: one entry per task and key, `DATA/<task>/<key>/` holding
//! `output.bin` (the encoded output), `meta.json` (what went into the key, for people and for
//! explanations) and `work/` (the task's own files).
//!
//! An entry is written into a temporary directory beside its final place and renamed into
//! place, so no reader ever sees half an entry. The output's digest is kept in `meta.json`
//! and checked whenever the output is read, so a torn, truncated or altered entry is a miss,
//! never a wrong value. One lock file per key keeps two processes from computing the same
//! entry at once.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::key::parse_hex;
use crate::task::hex;

/// The layout of entries; part of every key.
pub(crate) const ENTRY_FORMAT: u32 = 1;

const OUTPUT: &str = "output.bin";
const META: &str = "meta.json";
const WORK: &str = "work";
const LOCKS: &str = ".locks";
pub(crate) const NODES: &str = ".nodes";

/// What `meta.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// The entry layout version.
    pub format: u32,
    /// The task's name.
    pub task: String,
    /// The node that wrote the entry.
    pub node: String,
    /// The node key, in hex.
    pub key: String,
    /// The codec of `output.bin`.
    pub codec: String,
    /// The task's code fingerprint, in hex.
    pub fingerprint: String,
    /// The task's `version` salt.
    pub version: Option<String>,
    /// The parameters, as JSON, for people to read.
    pub params: serde_json::Value,
    /// The digest of each parameter, in hex, by name.
    pub param_digests: Vec<NamedDigest>,
    /// The content digests of each input's upstream outputs, in argument order.
    pub inputs: Vec<InputDigests>,
    /// The output's content digest (blake3 of `output.bin`), in hex.
    pub output_digest: String,
    /// The size of `output.bin` in bytes.
    pub output_size: u64,
    /// How long the task ran, in seconds.
    pub duration_secs: f64,
    /// When the entry was written (RFC 3339, UTC).
    pub created: String,
    /// The pipewright version that wrote it.
    pub pipewright: String,
}

/// A named digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedDigest {
    /// The parameter's name.
    pub name: String,
    /// Its digest, in hex.
    pub digest: String,
}

/// The digests of one input argument's upstream outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigests {
    /// The argument's name.
    pub name: String,
    /// The upstream nodes wired to it, in order.
    pub nodes: Vec<String>,
    /// Their output digests, in hex, in order.
    pub digests: Vec<String>,
}

/// What the store holds under one key.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// No entry.
    Missing,
    /// An entry that cannot be used, and why.
    Damaged(String),
    /// A complete-looking entry (its output's digest is checked when it is read).
    Present(Box<EntryMeta>),
}

/// An entry being written: a temporary directory that becomes the entry on [`Store::commit`].
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) tmp: PathBuf,
    pub(crate) dest: PathBuf,
}

impl Pending {
    /// The task's private work directory, created on first use.
    pub(crate) fn work_dir(&self) -> PathBuf {
        self.tmp.join(WORK)
    }
}

/// An I/O failure of the store, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{}`", path.display())]
pub struct StoreError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl StoreError {
    pub(crate) fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        StoreError {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The path that could not be read or written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `bytes` to `path` as a whole: into a temporary file beside it, named `.tmp-…`,
/// then renamed over `path`. A reader sees the old file or the new one, never part of
/// either, and a failure leaves no temporary file behind (garbage collection removes one
/// that a crash leaves in the store).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // As `fs::write` would create it: readable by others unless the umask says otherwise.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir)
        .and_then(|mut tmp| {
            tmp.write_all(bytes)?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        })
        .map_err(|e| StoreError::new("cannot write", path, e))
}

/// Writes `value` as JSON to `path` through [`write_atomically`]: indented for people to
/// read where `pretty`, else compact.
pub(crate) fn write_json_atomically(
    path: &Path,
    value: &impl Serialize,
    pretty: bool,
) -> Result<(), StoreError> {
    let json = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .map_err(|e| StoreError::new("cannot encode", path, io::Error::other(e)))?;
    write_atomically(path, &json)
}

/// Makes the names of temporary directories unique within a process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// The entries under one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Self {
        Store { root }
    }

    /// Creates the data directory and checks that it is a writable directory.
    pub(crate) fn prepare(&self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.root)
            .map_err(|e| StoreError::new("cannot create the data directory", &self.root, e))?;
        let probe = self.root.join(format!(".probe-{}", std::process::id()));
        File::create(&probe)
            .map_err(|e| StoreError::new("cannot write into the data directory", &self.root, e))?;
        let _ = fs::remove_file(&probe);
        Ok(())
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the temporary entries for `key` that writers of any process left behind;
    /// only for the holder of the key's lock, when no writer of it can be running.
    pub(crate) fn discard_unfinished(&self, task: &str, key: &str) {
        let prefix = format!(".tmp-{}-", &key[..16.min(key.len())]);
        let Ok(dir) = fs::read_dir(self.root.join(task)) else {
            return;
        };
        for entry in dir.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    pub(crate) fn entry_dir(&self, task: &str, key: &str) -> PathBuf {
        self.root.join(task).join(key)
    }

    /// Reads the entry's `meta.json` and checks that it belongs to `key` and that
    /// `output.bin` has the recorded size. The output's digest is checked when it is read.
    pub(crate) fn lookup(&self, task: &str, key: &str) -> Lookup {
        let dir = self.entry_dir(task, key);
        let meta_path = dir.join(META);
        let bytes = match fs::read(&meta_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return if dir.exists() {
                    Lookup::Damaged(format!("`{META}` is missing"))
                } else {
                    Lookup::Missing
                };
            }
            Err(e) => return Lookup::Damaged(format!("cannot read `{META}`: {e}")),
        };
        let meta: EntryMeta = match serde_json::from_slice(&bytes) {
            Ok(meta) => meta,
            Err(e) => return Lookup::Damaged(format!("`{META}` does not parse: {e}")),
        };
        if meta.format != ENTRY_FORMAT || meta.key != key || meta.task != task {
            return Lookup::Damaged(format!("`{META}` describes another entry"));
        }
        if parse_hex(&meta.output_digest).is_none() {
            return Lookup::Damaged(format!("`{META}` holds no valid output digest"));
        }
        match fs::metadata(dir.join(OUTPUT)) {
            Ok(m) if m.len() == meta.output_size => Lookup::Present(Box::new(meta)),
            Ok(m) => Lookup::Damaged(format!(
                "`{OUTPUT}` has {} bytes, not the {} recorded",
                m.len(),
                meta.output_size
            )),
            Err(e) => Lookup::Damaged(format!("cannot read `{OUTPUT}`: {e}")),
        }
    }

    /// Reads the entry's output and checks its digest.
    pub(crate) fn read_output(&self, meta: &EntryMeta) -> Result<Vec<u8>, String> {
        let path = self.entry_dir(&meta.task, &meta.key).join(OUTPUT);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read `{OUTPUT}`: {e}"))?;
        let digest = hex(blake3::hash(&bytes).as_bytes());
        if digest == meta.output_digest {
            Ok(bytes)
        } else {
            Err(format!("`{OUTPUT}` does not match its recorded digest"))
        }
    }

    /// Starts a new entry for `task` and `key` in a temporary directory.
    pub(crate) fn begin(&self, task: &str, key: &str) -> Result<Pending, StoreError> {
        let parent = self.root.join(task);
        fs::create_dir_all(&parent)
            .map_err(|e| StoreError::new("cannot create the task directory", &parent, e))?;
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".tmp-{}-{}-{n}", &key[..16], std::process::id()));
        fs::create_dir(&tmp)
            .map_err(|e| StoreError::new("cannot create a temporary entry", &tmp, e))?;
        Ok(Pending {
            tmp,
            dest: parent.join(key),
        })
    }

    /// Writes the output and `meta.json` into the pending entry and renames it into place.
    /// If a complete entry is already there (another process was faster), it is kept.
    /// With `replace`, an entry already there is replaced (a forced node's new output).
    pub(crate) fn commit(
        &self,
        pending: Pending,
        meta: &EntryMeta,
        output: &[u8],
        replace: bool,
    ) -> Result<(), StoreError> {
        let json = match self.write_entry(&pending, meta, output) {
            Ok(json) => json,
            Err(err) => {
                self.discard(pending);
                return Err(err);
            }
        };
        if replace {
            self.remove(&pending.dest);
        }
        let placed = match fs::rename(&pending.tmp, &pending.dest) {
            Ok(()) => Ok(()),
            Err(_) if matches!(self.lookup(&meta.task, &meta.key), Lookup::Present(_)) => {
                self.discard(pending);
                Ok(())
            }
            Err(_) => {
                // A damaged entry is in the way: move it aside, then try once more.
                self.remove(&pending.dest);
                fs::rename(&pending.tmp, &pending.dest).map_err(|e| {
                    let err =
                        StoreError::new("cannot move the new entry into place", &pending.dest, e);
                    let _ = fs::remove_dir_all(&pending.tmp);
                    err
                })
            }
        };
        placed?;
        self.write_index(meta, &json);
        Ok(())
    }

    /// The file that records the last entry node `node` of `task` wrote, for explanations.
    fn index_path(&self, task: &str, node: &str) -> PathBuf {
        let name = hex(&blake3::hash(node.as_bytes()).as_bytes()[..16]);
        self.root
            .join(task)
            .join(NODES)
            .join(format!("{name}.json"))
    }

    /// Records `meta` (encoded as `json`) as the last entry its node wrote. It only serves
    /// explanations, so a failure to write it is logged, not raised.
    fn write_index(&self, meta: &EntryMeta, json: &[u8]) {
        let path = self.index_path(&meta.task, &meta.node);
        let dir = path.parent().unwrap_or(&self.root);
        let result = fs::create_dir_all(dir)
            .map_err(|e| StoreError::new("cannot create", dir, e))
            .and_then(|()| write_atomically(&path, json));
        if let Err(e) = result {
            tracing::warn!(
                target: "pipewright",
                path = %path.display(),
                "cannot record the node's last entry: {}",
                crate::record::chain(&e).join(": ")
            );
        }
    }

    /// The last entry node `node` of `task` wrote, if it is recorded.
    pub(crate) fn last_entry(&self, task: &str, node: &str) -> Option<EntryMeta> {
        let bytes = fs::read(self.index_path(task, node)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the output and `meta.json` into the pending entry; returns the JSON written.
    fn write_entry(
        &self,
        pending: &Pending,
        meta: &EntryMeta,
        output: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let output_path = pending.tmp.join(OUTPUT);
        fs::write(&output_path, output)
            .map_err(|e| StoreError::new("cannot write", &output_path, e))?;
        let meta_path = pending.tmp.join(META);
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| StoreError::new("cannot encode", &meta_path, io::Error::other(e)))?;
        fs::write(&meta_path, &json).map_err(|e| StoreError::new("cannot write", &meta_path, e))?;
        Ok(json)
    }

    /// Drops a pending entry.
    pub(crate) fn discard(&self, pending: Pending) {
        let _ = fs::remove_dir_all(&pending.tmp);
    }

    /// Removes a damaged entry: renamed aside first, so that readers never see it half
    /// deleted, then deleted.
    pub(crate) fn remove(&self, dir: &Path) {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
        let aside = dir.with_file_name(format!(".trash-{name}-{}-{n}", std::process::id()));
        if fs::rename(dir, &aside).is_ok() {
            // What is in the way may be a file rather than an entry directory.
            let _ = if aside.is_dir() {
                fs::remove_dir_all(&aside)
            } else {
                fs::remove_file(&aside)
            };
        }
    }

    /// Takes the lock of `key`, waiting while another process holds it. The OS releases it
    /// if the holder dies.
    pub(crate) fn lock(&self, key: &str) -> Result<File, StoreError> {
        let dir = self.root.join(LOCKS);
        fs::create_dir_all(&dir).map_err(|e| StoreError::new("cannot create", &dir, e))?;
        let path = dir.join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::new("cannot open the lock", &path, e))?;
        file.lock()
            .map_err(|e| StoreError::new("cannot take the lock", &path, e))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_atomically_replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["run.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Created as `fs::write` creates a file: 0o666 less the umask, whatever it is.
            let plain = dir.path().join("plain");
            fs::write(&plain, b"").unwrap();
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&plain));
        }
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("run.json");
        let error = write_atomically(&path, b"x").unwrap_err();
        assert_eq!(error.path(), path);
        assert_eq!(
            error.to_string(),
            format!("cannot write `{}`", path.display())
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
