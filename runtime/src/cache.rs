// Over 500 lines: the store is one format and one design, to be redesigned as a whole, not split.
//! The store of outputs: one entry per task and key, `DATA/<task>/<key>/` holding
//! `output.bin` (the encoded output), `meta.json` (what went into the key, for people and for
//! explanations) and `work/` (the task's own files).
//!
//! An entry is written into a temporary directory beside its final place and renamed into
//! place, so no reader ever sees half an entry. The output's digest is kept in `meta.json`
//! and checked whenever the output is read, so a torn, truncated or altered entry is a miss,
//! never a wrong value. One lock file per key keeps two processes from computing the same
//! entry at once; entries are replaced and removed only under it, and a reader that finds an
//! entry damaged looks again under it before it says so, since what it saw may have been a
//! replacement in progress.
//!
//! Temporary directories are named after their writer, `<host>-<pid>`, so that the next
//! writer of a key removes what a killed one left, and nothing a live one is writing.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::ThreadId;

use serde::{Deserialize, Serialize};

/// The layout of entries; part of every key.
pub(crate) const ENTRY_FORMAT: u32 = 1;

const OUTPUT: &str = "output.bin";
const META: &str = "meta.json";
const WORK: &str = "work";
const LOCKS: &str = ".locks";
pub(crate) const NODES: &str = ".nodes";

/// What `meta.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// The code fingerprint of each helper the task uses, in hex, by name (an entry written
    /// before helpers were recorded has none).
    #[serde(default)]
    pub helpers: Vec<NamedDigest>,
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
#[non_exhaustive]
pub struct NamedDigest {
    /// The parameter's name.
    pub name: String,
    /// Its digest, in hex.
    pub digest: String,
}

/// The digests of one input argument's upstream outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// The name of this host (`uname`'s node name on Unix).
pub(crate) fn host_name() -> String {
    #[cfg(unix)]
    let name = Some(
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    );
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// This host in the names of temporaries: 8 hex digits of its name's digest.
fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| blake3::hash(host_name().as_bytes()).to_hex()[..8].to_owned())
}

/// A name unique to this process and call, for a temporary beside `<stem>`:
/// `<prefix><stem>-<host tag>-<pid>-<n>`.
fn temporary_name(prefix: &str, stem: &str) -> String {
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{stem}-{}-{}-{n}", host_tag(), std::process::id())
}

/// Whether process `pid` of this host is gone. Without a way to ask (off Unix), no process
/// is taken for gone.
pub(crate) fn process_gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Whether the temporary named `name` (`.tmp-…` or `.trash-…`) was written by a process of
/// this host that is gone, so that no one will finish or remove it.
pub(crate) fn writer_gone(name: &str) -> bool {
    let mut fields = name.rsplitn(4, '-');
    let (Some(n), Some(pid), Some(host)) = (fields.next(), fields.next(), fields.next()) else {
        return false;
    };
    n.parse::<u64>().is_ok()
        && host == host_tag()
        && pid
            .parse::<u32>()
            .is_ok_and(|pid| pid != std::process::id() && process_gone(pid))
}

/// The key locks this process holds, by lock file, with the thread that holds each: a
/// thread that holds a key's lock looks again at its entry without taking the lock twice.
static HELD: Mutex<Vec<(PathBuf, ThreadId)>> = Mutex::new(Vec::new());

/// The lock of one key, from [`Store::lock`]; released when dropped.
#[derive(Debug)]
pub(crate) struct KeyLock {
    path: PathBuf,
    _file: File,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = held.iter().position(|(path, _)| *path == self.path) {
            held.swap_remove(i);
        }
    }
}

/// What [`Store::read_verified`] read.
#[derive(Debug)]
pub(crate) struct Output {
    /// The output's bytes, which match their entry's digest.
    pub(crate) bytes: Vec<u8>,
    /// The entry they belong to, when it is not the one asked for: it was replaced meanwhile
    /// by a complete entry with another output.
    pub(crate) replaced: Option<Box<EntryMeta>>,
}

/// The entries under one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
    /// The tasks whose directories this store has swept of dead writers' temporaries in the
    /// current run: each once, before its first new entry, so that a run does not list a
    /// task's directory again for every node it stores.
    swept: Arc<Mutex<HashSet<String>>>,
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Self {
        Store {
            root,
            swept: Arc::default(),
        }
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

    /// Removes the temporary entries for `key` whose writers are gone (killed while they
    /// wrote); those of live writers, with or without the key's lock, stay.
    pub(crate) fn discard_unfinished(&self, task: &str, key: &str) {
        let prefix = format!(".tmp-{}-", &key[..16.min(key.len())]);
        let Ok(dir) = fs::read_dir(self.root.join(task)) else {
            return;
        };
        for entry in dir.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && writer_gone(n))
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Starts a run: every task's directory is swept again before its first new entry.
    pub(crate) fn new_run(&self) {
        self.swept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Removes, once per run and task, the temporaries in `task`'s directory (`.tmp-…`
    /// and `.trash-…`, of any key) whose writers are gone. Listing the directory costs in
    /// proportion to the task's entries, so it is done before the task's first new entry
    /// only, not before each.
    fn sweep(&self, task: &str) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
            if !swept.insert(task.to_owned()) {
                return;
            }
        }
        let Ok(dir) = fs::read_dir(self.root.join(task)) else {
            return;
        };
        for entry in dir.flatten() {
            if entry.file_name().to_str().is_some_and(|n| {
                (n.starts_with(".tmp-") || n.starts_with(".trash-")) && writer_gone(n)
            }) {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }

    pub(crate) fn entry_dir(&self, task: &str, key: &str) -> PathBuf {
        self.root.join(task).join(key)
    }

    /// Reads the entry's `meta.json` and checks that it belongs to `key` and that
    /// `output.bin` has the recorded size. The output's digest is checked when it is read.
    /// An entry that looks damaged is looked at again under the key's lock, as a replacement
    /// in progress can look damaged from outside it.
    pub(crate) fn lookup(&self, task: &str, key: &str) -> Lookup {
        match self.lookup_once(task, key) {
            Lookup::Damaged(_) => self.under_lock(key, || self.lookup_once(task, key)),
            found => found,
        }
    }

    /// [`lookup`](Self::lookup), without looking again.
    fn lookup_once(&self, task: &str, key: &str) -> Lookup {
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
        if blake3::Hash::from_hex(&meta.output_digest).is_err() {
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

    /// Reads the output of the entry `meta` describes and checks its digest. On a mismatch
    /// (or a missing file) it looks again under the key's lock, since the entry may have been
    /// replaced since `meta` was read, and reads the entry found there if it is complete.
    /// An error says why the entry is damaged.
    pub(crate) fn read_verified(&self, meta: &EntryMeta) -> Result<Output, String> {
        if let Ok(bytes) = self.read_output(meta) {
            return Ok(Output {
                bytes,
                replaced: None,
            });
        }
        self.under_lock(&meta.key, || {
            match self.lookup_once(&meta.task, &meta.key) {
                Lookup::Present(now) => {
                    let bytes = self.read_output(&now)?;
                    let replaced = (now.output_digest != meta.output_digest).then_some(now);
                    Ok(Output { bytes, replaced })
                }
                Lookup::Damaged(why) => Err(why),
                Lookup::Missing => Err("the entry is gone".to_owned()),
            }
        })
    }

    /// Removes the entry of `task` and `key` under the key's lock, if it is still damaged
    /// then: missing files, or an output that does not match its digest, or, when `seen` is
    /// given, still that entry (whose output its reader could not use). A complete entry
    /// that replaced the damaged one stays.
    pub(crate) fn remove_damaged(&self, task: &str, key: &str, seen: Option<&EntryMeta>) {
        self.under_lock(key, || {
            let damaged = match self.lookup_once(task, key) {
                Lookup::Missing => false,
                Lookup::Damaged(_) => true,
                Lookup::Present(now) => {
                    seen.is_some_and(|seen| *seen == *now) || self.read_output(&now).is_err()
                }
            };
            if damaged {
                self.remove(&self.entry_dir(task, key));
            }
        });
    }

    /// Calls `f` holding the lock of `key`: taken for it, unless this thread holds it. If
    /// the lock cannot be taken, `f` is called all the same.
    fn under_lock<T>(&self, key: &str, f: impl FnOnce() -> T) -> T {
        let path = self.lock_path(key);
        let held = HELD
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(p, thread)| *p == path && *thread == std::thread::current().id());
        let _lock = if held { None } else { self.lock(key).ok() };
        f()
    }

    /// Reads the entry's output and checks its digest, once.
    fn read_output(&self, meta: &EntryMeta) -> Result<Vec<u8>, String> {
        let path = self.entry_dir(&meta.task, &meta.key).join(OUTPUT);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read `{OUTPUT}`: {e}"))?;
        let digest = blake3::hash(&bytes).to_hex().to_string();
        if digest == meta.output_digest {
            Ok(bytes)
        } else {
            Err(format!("`{OUTPUT}` does not match its recorded digest"))
        }
    }

    /// Starts a new entry for `task` and `key` in a temporary directory, named after this
    /// process. Before the first new entry of `task`, removes what writers of any of its
    /// keys that are gone left (see [`sweep`](Self::sweep)).
    pub(crate) fn begin(&self, task: &str, key: &str) -> Result<Pending, StoreError> {
        let parent = self.root.join(task);
        fs::create_dir_all(&parent)
            .map_err(|e| StoreError::new("cannot create the task directory", &parent, e))?;
        self.sweep(task);
        let tmp = parent.join(temporary_name(".tmp-", &key[..16]));
        fs::create_dir(&tmp)
            .map_err(|e| StoreError::new("cannot create a temporary entry", &tmp, e))?;
        Ok(Pending {
            tmp,
            dest: parent.join(key),
        })
    }

    /// Writes the output and `meta.json` into the pending entry and renames it into place;
    /// the caller holds the key's lock. If a complete entry is already there (another
    /// process was faster), it is kept. With `replace`, an entry already there is replaced
    /// (a forced node's new output), so that readers find the old entry or the new one at
    /// every moment, never none.
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
        let placed = match fs::rename(&pending.tmp, &pending.dest) {
            Ok(()) => Ok(()),
            Err(_)
                if !replace
                    && matches!(self.lookup_once(&meta.task, &meta.key), Lookup::Present(_)) =>
            {
                self.discard(pending);
                Ok(())
            }
            // A forced node's old entry, or a damaged one, is in the way.
            Err(_) => self.swap_in(&pending),
        };
        placed?;
        self.write_index(meta, &json);
        Ok(())
    }

    /// The file that records the last entry node `node` of `task` wrote, for explanations.
    fn index_path(&self, task: &str, node: &str) -> PathBuf {
        let name = blake3::hash(node.as_bytes()).to_hex()[..32].to_owned();
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
                crate::chain::chain(&e).join(": ")
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

    /// Puts the pending entry in the place of the entry at its destination, then deletes
    /// the old one. Where the system can swap two directories atomically, the place always
    /// holds one of them; elsewhere the old entry is moved aside just before the new one
    /// moves in.
    fn swap_in(&self, pending: &Pending) -> Result<(), StoreError> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::{CWD, RenameFlags, renameat_with};
            if renameat_with(CWD, &pending.tmp, CWD, &pending.dest, RenameFlags::EXCHANGE).is_ok() {
                // The old entry is now at the temporary name, named after this process.
                let _ = if pending.tmp.is_dir() {
                    fs::remove_dir_all(&pending.tmp)
                } else {
                    fs::remove_file(&pending.tmp)
                };
                return Ok(());
            }
        }
        self.remove(&pending.dest);
        fs::rename(&pending.tmp, &pending.dest).map_err(|e| {
            let err = StoreError::new("cannot move the new entry into place", &pending.dest, e);
            let _ = fs::remove_dir_all(&pending.tmp);
            err
        })
    }

    /// Drops a pending entry.
    pub(crate) fn discard(&self, pending: Pending) {
        let _ = fs::remove_dir_all(&pending.tmp);
    }

    /// Removes an entry: renamed aside first, so that readers never see it half deleted,
    /// then deleted. The caller holds the key's lock.
    fn remove(&self, dir: &Path) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
        let aside = dir.with_file_name(temporary_name(".trash-", name));
        if fs::rename(dir, &aside).is_ok() {
            // What is in the way may be a file rather than an entry directory.
            let _ = if aside.is_dir() {
                fs::remove_dir_all(&aside)
            } else {
                fs::remove_file(&aside)
            };
        }
    }

    /// The lock of `key`, if no other process (or thread) holds it.
    pub(crate) fn try_lock(&self, key: &str) -> Option<KeyLock> {
        let path = self.lock_path(key);
        fs::create_dir_all(path.parent()?).ok()?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ok()?;
        file.try_lock().ok()?;
        if !same_file(&file, &path) {
            return None;
        }
        HELD.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((path.clone(), std::thread::current().id()));
        Some(KeyLock { path, _file: file })
    }

    /// The lock file of `key`.
    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join(LOCKS).join(format!("{key}.lock"))
    }

    /// Takes the lock of `key`, waiting while another process (or thread) holds it. The OS
    /// releases it if the holder dies.
    pub(crate) fn lock(&self, key: &str) -> Result<KeyLock, StoreError> {
        let path = self.lock_path(key);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| StoreError::new("cannot create", dir, e))?;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::new("cannot open the lock", &path, e))?;
            file.lock()
                .map_err(|e| StoreError::new("cannot take the lock", &path, e))?;
            // Garbage collection unlinks a lock file it could lock: one locked after that
            // locks nothing that others see, so open the file at the path again.
            if same_file(&file, &path) {
                HELD.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((path.clone(), std::thread::current().id()));
                return Ok(KeyLock { path, _file: file });
            }
        }
    }
}

/// Whether `file` is the file at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
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

    #[cfg(unix)]
    #[test]
    fn only_temporaries_whose_writer_is_gone_are_discarded() {
        use std::process::{Child, Command, Stdio};

        /// Killed if the test fails first.
        struct Live(Child);
        impl Drop for Live {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }

        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_owned());
        let key = "ab".repeat(32);
        let mut live = Live(
            Command::new("sleep")
                .arg("1000")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut dead = Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        let temporary = |pid: u32| {
            let path =
                dir.path()
                    .join("task")
                    .join(format!(".tmp-{}-{}-{pid}-0", &key[..16], host_tag()));
            fs::create_dir_all(path.join(WORK)).unwrap();
            path
        };
        let (of_live, of_dead) = (temporary(live.0.id()), temporary(dead.id()));
        // Written elsewhere: another host's process ids say nothing here.
        let elsewhere =
            dir.path()
                .join("task")
                .join(format!(".tmp-{}-00000000-{}-0", &key[..16], dead.id()));
        fs::create_dir_all(&elsewhere).unwrap();

        let pending = store.begin("task", &key).unwrap();
        assert!(!of_dead.exists());
        assert!(of_live.exists() && elsewhere.exists() && pending.tmp.exists());

        live.0.kill().unwrap();
        live.0.wait().unwrap();
        store.discard_unfinished("task", &key);
        assert!(!of_live.exists());
        // This process's own temporary, and the other host's, stay.
        assert!(pending.tmp.exists() && elsewhere.exists());

        // A run sweeps a task's directory before its first new entry only: listing it before
        // every entry would cost a run in proportion to entries times nodes.
        let later = temporary(dead.id()).with_file_name(format!(
            ".tmp-{}-{}-{}-1",
            "cd".repeat(8),
            host_tag(),
            dead.id()
        ));
        fs::create_dir_all(&later).unwrap();
        let other_key = "cd".repeat(32);
        store.discard(store.begin("task", &other_key).unwrap());
        assert!(later.exists(), "the same run listed the directory again");
        store.new_run();
        store.discard(store.begin("task", &other_key).unwrap());
        assert!(!later.exists(), "the next run did not sweep the directory");
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
