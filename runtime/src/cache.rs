//! The store of outputs. Each entry is a task's output under a node key, described in one
//! store-wide index, `DATA/.store/index.db` (see [`index`]): its digest, its size and where
//! its output is. A small output is held in the index itself; a large one is one file,
//! `DATA/<task>/<key>.bin`, written beside its place and renamed into it. A task that asks
//! for a work directory gets one, published with its entry as `DATA/<task>/<key>/work/`;
//! the files in it that the task returned as its output are listed beside it (see
//! [`manifest`]) and checked whenever the output is read, so that a file deleted or
//! changed in the store makes the entry damaged.
//!
//! An entry becomes visible when its row is committed to the index, after its files are in
//! place, so no reader ever sees half an entry. The output's digest is checked whenever the
//! output is read, and each row carries a checksum of what it says, so a torn, truncated or
//! altered entry is a miss, never a wrong value. A cached node is settled from the index
//! with no file access of its own: the entries each node of a task wrote last are read into
//! memory, at once, when the run starts (see [`Store::read_last_entries`]), or else the
//! first time the run asks for one of that task.
//!
//! The lock of a key (see [`lock`]) keeps two processes from computing the same entry at
//! once; entries are replaced and removed only under it, and a reader that finds an entry
//! damaged looks again under it before it says so, since what it saw may have been a
//! replacement in progress. Temporaries are named after their writer, `<host>-<pid>`, so
//! that a later writer removes what a killed one left, and nothing a live one is writing.

mod files;
mod index;
pub(crate) mod json;
mod lock;
mod manifest;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use files::remove_aside;
pub(crate) use files::temporary_name;
pub(crate) use files::{
    host_name, process_gone, remove_any, write_atomically, write_atomically_with,
    write_json_atomically, writer_gone,
};
pub(crate) use index::{FileRow, FileStat};
use index::{Index, NewRow};
pub(crate) use lock::KeyLock;
pub(crate) use manifest::{FileRecord, digest_file};

/// The layout of entries; part of every key.
pub(crate) const ENTRY_FORMAT: u32 = 2;

/// The store's own directory in the data directory: the index and the lock file.
pub(crate) const STORE_DIR: &str = ".store";

/// What an older format kept in the data directory: one lock file per key.
pub(crate) const OLD_LOCKS: &str = ".locks";

/// What an older format kept in each task's directory: the last entry of each node.
pub(crate) const OLD_NODES: &str = ".nodes";

/// Outputs up to this size are held in the index; larger ones are files of their own.
const INLINE_MAX: usize = 64 * 1024;

/// Outputs from this size on, without files of their own, are decoded while their digest
/// is checked on another thread when they are read.
const DECODE_BESIDE_MIN: usize = 4 << 20;

/// Why an output read is not the one its entry recorded.
const DIGEST_MISMATCH: &str = "its output does not match its recorded digest";

/// Outputs from this size on are written while their digest is taken on a thread of its
/// own; below it, starting the thread costs about as much as the overlap saves.
const WRITE_BESIDE_MIN: usize = 1 << 20;

const WORK: &str = "work";

/// What went into an entry, as the index keeps it for the last entry of each node: for
/// people, and for explaining what changed since.
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
    /// The codec of the output.
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
    /// The input files and directories the parameters name, by path as given, with their
    /// content digests in hex, in the order they were met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_files: Vec<NamedDigest>,
    /// The content digests of each input's upstream outputs, in argument order.
    pub inputs: Vec<InputDigests>,
    /// The output's content digest (blake3 of its encoded bytes), in hex.
    pub output_digest: String,
    /// The size of the encoded output in bytes.
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

/// Where an entry's output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the index, beside the entry's row.
    Inline = 0,
    /// In the file `DATA/<task>/<key>.bin`.
    File = 1,
}

/// One entry, as the index describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) task: String,
    /// The node that wrote it.
    pub(crate) node: String,
    /// The key, in hex.
    pub(crate) key: String,
    /// The output's content digest.
    pub(crate) digest: [u8; 32],
    /// The output's size in bytes.
    pub(crate) size: u64,
    pub(crate) place: Place,
    /// Whether the entry has a directory, `DATA/<task>/<key>/`, holding the task's work
    /// directory.
    pub(crate) work: bool,
    /// Tells this writing of the entry from any other under the same key.
    pub(crate) stamp: i64,
    /// How long the task ran, in seconds.
    pub(crate) duration_secs: f64,
}

impl Entry {
    /// The output's content digest, in hex.
    #[cfg_attr(
        not(feature = "slurm"),
        expect(
            dead_code,
            reason = "only the Slurm executor reads an entry's digest from the store"
        )
    )]
    pub(crate) fn output_digest(&self) -> String {
        crate::text::hex_bytes(&self.digest)
    }

    /// A checksum of everything the row of this entry says, but its output (whose own
    /// digest is checked when it is read).
    fn checksum(&self) -> [u8; 16] {
        // What is hashed, gathered first: blake3 hashes it at once faster than in pieces.
        // On the stack: every row read is checked.
        let mut bytes: SmallVec<[u8; 256]> = SmallVec::new();
        for text in [&self.task, &self.node, &self.key] {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.extend_from_slice(&self.digest);
        bytes.extend_from_slice(&self.size.to_le_bytes());
        bytes.extend_from_slice(&[self.place as u8, u8::from(self.work)]);
        bytes.extend_from_slice(&self.stamp.to_le_bytes());
        bytes.extend_from_slice(&self.duration_secs.to_le_bytes());
        let mut sum = [0; 16];
        sum.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..16]);
        sum
    }
}

/// How far a lookup looks for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// Among the entries this run read of the index (each node's last entry, and what it
    /// looked up or committed since): a key not there is taken for missing. For a caller
    /// that looks again, [`Fresh`](Look::Fresh), under the key's lock before it computes.
    Remembered,
    /// Among those, then in the index.
    Index,
    /// In the index as it is now.
    Fresh,
}

/// What the store holds under one key.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// No entry.
    Missing,
    /// An entry that cannot be used, and why.
    Damaged(String),
    /// An entry whose row is sound (its output's digest is checked when it is read),
    /// shared with what the store remembers of it.
    Present(Arc<Entry>),
}

/// An entry being written. Its work directory, if the task asks for one, is made in a
/// temporary directory that becomes the entry's directory on [`Store::commit`].
#[derive(Debug)]
pub(crate) struct Pending {
    task: String,
    tmp: PathBuf,
    /// Whether the task can make its work directory: only one that takes a `&Ctx`, which
    /// hands it out. Otherwise none is looked for.
    work: bool,
    /// The temporary file a large output was written to (see
    /// [`Store::write_output_while`]), renamed into place when the entry is committed.
    output: Option<PathBuf>,
}

impl Pending {
    /// The task's private work directory, created on first use.
    pub(crate) fn work_dir(&self) -> PathBuf {
        self.tmp.join(WORK)
    }
}

/// An I/O failure of the store, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    message: String,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl StoreError {
    /// `action` (a phrase such as "cannot write") on `path`.
    pub(crate) fn new(action: &str, path: &Path, source: io::Error) -> Self {
        Self::with_message(format!("{action} `{}`", path.display()), path, source)
    }

    /// A failure said in full by `message`.
    pub(crate) fn with_message(message: String, path: &Path, source: io::Error) -> Self {
        StoreError {
            message,
            path: path.to_owned(),
            source,
        }
    }

    /// The path that could not be read or written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What [`Store::read_verified`] read.
#[derive(Debug)]
pub(crate) struct Output {
    /// The output's bytes, which match their entry's digest.
    pub(crate) bytes: Vec<u8>,
    /// The entry they belong to, when it is not the one asked for: it was replaced meanwhile
    /// by a complete entry with another output.
    pub(crate) replaced: Option<Arc<Entry>>,
}

/// A key as the index holds it: the 32 bytes of a key in hex, or of any other name its
/// digest (as [`index`] makes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyId([u8; 32]);

impl KeyId {
    /// The id of `key`.
    pub(crate) fn of(key: &str) -> Self {
        let mut id = [0; 32];
        if key.len() == 64 && crate::text::hex_into(key, &mut id) {
            KeyId(id)
        } else {
            KeyId(*blake3::hash(key.as_bytes()).as_bytes())
        }
    }

    /// The id of the key that is the hex of `digest`.
    pub(crate) fn of_digest(digest: [u8; 32]) -> Self {
        KeyId(digest)
    }

    /// The id of the key whose bytes are `bytes`, if they are a key's 32.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(KeyId)
    }
}

impl std::hash::Hash for KeyId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // A key is a digest: any 8 of its bytes are as good a hash as a hash of all 32.
        let mut word = [0; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// Hashes a [`KeyId`] by the word it writes, as it is.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `KeyId` is hashed here, which writes one word; anything else is mixed in.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 ^= word;
    }
}

/// The entries a run read of the index, by key, each shared with the lookups that found it.
pub(crate) type Known = HashMap<KeyId, Arc<Entry>, std::hash::BuildHasherDefault<KeyHasher>>;

/// The last entries of one task whose keys are in one part of the range, as one connection
/// read them, and whether it could.
#[derive(Default)]
struct Part {
    entries: Vec<(KeyId, Arc<Entry>)>,
    read: bool,
}

/// The index, once opened, and the entries of it read so far in this run.
#[derive(Debug, Default)]
struct State {
    index: Option<Index>,
    /// Entries by key.
    known: Known,
    /// The tasks whose nodes' last entries are in `known`.
    loaded: HashSet<String>,
    /// More connections to the index, each to read a part of the last entries at once.
    readers: Vec<Index>,
    /// The tasks whose directories were swept of dead writers' temporaries in this run:
    /// each once, before its first new entry, so that a run does not list a task's
    /// directory again for every node it stores.
    swept: HashSet<String>,
}

/// The temporary file, in `task_dir`, that a large output of the entry under `key` is written
/// to before it is renamed into place.
fn temporary_output(task_dir: &Path, key: &str) -> PathBuf {
    task_dir.join(format!(
        "{}.bin",
        temporary_name(".tmp-", &key[..16.min(key.len())])
    ))
}

/// The index of the store directory `dir` held in `slot`, opened into it if need be
/// (created if `create`); `None` if there is none and `create` is false.
fn open_index<'a>(
    slot: &'a mut Option<Index>,
    dir: &Path,
    create: bool,
) -> Result<Option<&'a mut Index>, StoreError> {
    if slot.is_none() {
        *slot = Index::open(dir, create)?;
    }
    Ok(slot.as_mut())
}

/// The entries under one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
    /// The store's own directory, `root/.store`: the index and the lock files.
    dir: PathBuf,
    state: Arc<Mutex<State>>,
    /// The connection rows are committed on, apart from [`State`]'s: a commit that waits
    /// for another process's write holds only this one, and lookups go on meanwhile.
    writer: Arc<Mutex<Option<Index>>>,
    commits: Arc<Commits>,
}

/// Rows waiting to be committed to the index. Whoever commits first takes every row
/// waiting, its own and those that came while another commit was under way, and commits
/// them in one transaction, then the rows that came meanwhile, until none is left; the
/// others wait for it, or go on (see [`Store::commit_queued`]). A row whose writer went on
/// waits, with its key's lock, at most [`QUEUE_DELAY`], when the store's committer thread
/// commits it; sooner once [`QUEUE_ROWS`] rows wait, while a thread of this process waits
/// for a key's lock, when its key is to be locked again, and when the run flushes the
/// queue (before a child process reads the store for it, and at its end).
#[derive(Debug, Default)]
struct Commits {
    queue: Mutex<Queue>,
    settled: Condvar,
    /// Wakes the committer thread: a row came into an empty queue.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Rows waiting, in the order of their tickets.
    rows: Vec<Queued>,
    /// The next ticket.
    next: u64,
    /// Every ticket below this one is settled: committed, or failed.
    settled: u64,
    /// Whether a writer is committing rows now.
    committing: bool,
    /// Why the commit of a settled ticket failed, until its writer reads it.
    failed: HashMap<u64, String>,
    /// The keys of the rows waiting or being committed, with the last ticket of each: a
    /// key's lock is taken again only once its row is committed.
    keys: HashMap<String, u64>,
    /// The bytes of the outputs waiting.
    bytes: usize,
    /// The threads waiting for a key's lock: while there are any, rows are committed as
    /// they are queued.
    waiting: usize,
    /// When the first of the rows waiting came.
    since: Option<Instant>,
    /// Whether the committer thread runs.
    committer: bool,
}

/// A row waiting, with the lock of its key, released once the row is committed.
#[derive(Debug)]
struct Queued {
    ticket: u64,
    row: NewRow,
    /// Held until the row is committed.
    _lock: Option<KeyLock>,
    /// Who hears that the row is committed.
    note: Option<Note>,
}

/// Who hears which queued rows were committed, each by the number its writer gave it with
/// a [`Note`]: the journal of the run that queued them.
pub(crate) trait Committed: Send + Sync {
    /// The rows numbered `rows` are committed.
    fn committed(&self, rows: &[u32]);
}

/// What a queued row's writer asks to be told once the row is committed: `row` is told to
/// `to`.
pub(crate) struct Note {
    pub(crate) to: Arc<dyn Committed>,
    pub(crate) row: u32,
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Note").field("row", &self.row).finish()
    }
}

/// Tells who asked of each row of `rows` (all committed) that it is, in one call for each
/// run of rows with the same listener.
fn tell_committed(rows: &[Queued]) {
    let mut to: Option<&Arc<dyn Committed>> = None;
    let mut numbers = Vec::new();
    for note in rows.iter().filter_map(|q| q.note.as_ref()) {
        if let Some(current) = to
            && !Arc::ptr_eq(current, &note.to)
        {
            current.committed(&numbers);
            numbers.clear();
        }
        to = Some(&note.to);
        numbers.push(note.row);
    }
    if let Some(to) = to {
        to.committed(&numbers);
    }
}

/// A commit handed to the store's queue, whose outcome its writer reads later with
/// [`Store::failures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ticket(u64);

/// Queued rows are committed once this many wait, or their outputs take this many bytes.
const QUEUE_ROWS: usize = 256;
const QUEUE_BYTES: usize = 8 << 20;

/// The committer thread of a store (see [`Store::commit_queued`]): it commits the rows
/// queued once [`QUEUE_DELAY`] has passed since the first of them came, and ends once no
/// row has come for [`COMMITTER_IDLE`], or the store is gone.
fn committer(
    root: PathBuf,
    state: std::sync::Weak<Mutex<State>>,
    writer: std::sync::Weak<Mutex<Option<Index>>>,
    commits: Arc<Commits>,
) {
    let lock = || commits.queue.lock().unwrap_or_else(PoisonError::into_inner);
    let mut queue = lock();
    loop {
        if queue.committing || queue.rows.is_empty() {
            let (next, waited) = commits
                .wake
                .wait_timeout(queue, COMMITTER_IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            queue = next;
            if waited.timed_out() && queue.rows.is_empty() {
                break;
            }
            continue;
        }
        let due = queue.since.map_or_else(Instant::now, |t| t + QUEUE_DELAY);
        let now = Instant::now();
        if now < due {
            queue = commits
                .wake
                .wait_timeout(queue, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let (Some(state), Some(writer)) = (state.upgrade(), writer.upgrade()) else {
            break;
        };
        let store = Store {
            dir: root.join(STORE_DIR),
            root: root.clone(),
            state,
            writer,
            commits: Arc::clone(&commits),
        };
        drop(store.commit_waiting(queue));
        // The store is let go of before the queue is locked again: the last handle of its
        // index may be this one.
        drop(store);
        queue = lock();
    }
    queue.committer = false;
}

/// How long a queued row waits for others to be committed with it, at most: the rows of
/// nodes that finished are in the index this soon, while the run goes on.
const QUEUE_DELAY: Duration = Duration::from_millis(5);

/// How long the committer thread waits for a row before it ends.
const COMMITTER_IDLE: Duration = Duration::from_secs(1);

/// Makes each writing of an entry's stamp unique within a process.
static NEXT_STAMP: AtomicI64 = AtomicI64::new(0);

/// A stamp no other writing of an entry has: the time, this process and a count.
fn new_stamp() -> i64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let n = NEXT_STAMP.fetch_add(1, Ordering::Relaxed);
    nanos ^ (i64::from(std::process::id() as i32) << 40) ^ n.wrapping_mul(0x9E37_79B9)
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Self {
        Store {
            dir: root.join(STORE_DIR),
            root,
            state: Arc::default(),
            writer: Arc::default(),
            commits: Arc::default(),
        }
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The store's own directory: the index and the lock file.
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the data directory and the store's index, or opens it (again, if the one
    /// it had open is no longer at its path), and checks that it is of this version's
    /// format.
    pub(crate) fn prepare(&self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.root)
            .map_err(|e| StoreError::new("cannot create the data directory", &self.root, e))?;
        self.refuse_old_format()?;
        let mut state = self.state();
        if state
            .index
            .as_ref()
            .is_some_and(|index| !index.is_current())
        {
            // The data directory was deleted, or its index replaced, since the last run:
            // what this store holds open or remembers of it is of another store.
            state.index = None;
            state.readers.clear();
            state.known.clear();
            state.loaded.clear();
            lock::reopen();
        }
        open_index(&mut state.index, self.dir(), true)?;
        Ok(())
    }

    /// Checks, without creating anything, that the store (if there is one) is of this
    /// version's format.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        self.refuse_old_format()?;
        self.with_index(|_| Ok(())).map(|_| ())
    }

    /// An error if the data directory holds a store of the first format, whose entries
    /// this version does not read.
    fn refuse_old_format(&self) -> Result<(), StoreError> {
        let old = self.root.join(OLD_LOCKS);
        if old.is_dir() && !self.dir().join(index::INDEX).exists() {
            let why = "it holds entries of an older store format (one directory and `meta.json` \
                       per entry), which this version does not read";
            return Err(StoreError::with_message(
                format!(
                    "cannot use the data directory `{}`: {why}; run `clean` to remove them",
                    self.root.display()
                ),
                &self.root,
                io::Error::other(why),
            ));
        }
        Ok(())
    }

    /// Calls `f` with the index, opened if need be (created if `create`); `None` if there
    /// is no index.
    fn with_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut state = self.state();
        match open_index(&mut state.index, self.dir(), false)? {
            Some(index) => f(index).map(Some),
            None => Ok(None),
        }
    }

    /// Removes the temporaries for `key` whose writers are gone (killed while they
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
                remove_any(&entry.path());
            }
        }
    }

    /// Starts a run: what this store read of the index is read again, and every task's
    /// directory is swept again before its first new entry.
    pub(crate) fn new_run(&self) {
        let mut state = self.state();
        state.swept.clear();
        state.known.clear();
        state.loaded.clear();
    }

    /// Reads the entry each node of each of `tasks` wrote last, as the first lookup of a task
    /// in a run does, in `parts` parts at once on threads of the current pool, each on a
    /// connection of its own: a run asks for them all, so none of its workers waits for
    /// another to read them. A task whose entries cannot be read is left to its first
    /// lookup, which says why.
    pub(crate) fn read_last_entries(&self, tasks: &[&str], parts: usize) {
        let mut state = self.state();
        let tasks: Vec<&str> = tasks
            .iter()
            .copied()
            .filter(|task| !state.loaded.contains(*task))
            .collect();
        if tasks.is_empty()
            || !matches!(open_index(&mut state.index, self.dir(), false), Ok(Some(_)))
        {
            return;
        }
        if parts <= 1 {
            let State {
                index,
                known,
                loaded,
                ..
            } = &mut *state;
            let Some(index) = index else {
                return;
            };
            for task in tasks {
                if index.last_of_task(task, known).is_ok() {
                    loaded.insert(task.to_owned());
                }
            }
            return;
        }
        let mut readers = std::mem::take(&mut state.readers);
        drop(state);
        while readers.len() < parts {
            match Index::open(self.dir(), false) {
                Ok(Some(reader)) => readers.push(reader),
                _ => return self.read_last_entries(&tasks, 1),
            }
        }
        let n = readers.len();
        // Part `i` of task `t` is `parts[i * tasks.len() + t]`.
        let mut parts: Vec<Part> = Vec::new();
        parts.resize_with(n * tasks.len(), Part::default);
        rayon::scope(|scope| {
            for (i, (reader, parts)) in readers
                .iter_mut()
                .zip(parts.chunks_mut(tasks.len()))
                .enumerate()
            {
                let tasks = &tasks;
                scope.spawn(move |_| {
                    let reader = &*reader;
                    for (task, part) in tasks.iter().zip(parts) {
                        part.read = reader
                            .last_of_task_in(task, (i, n), |id, entry| {
                                part.entries.push((id, entry));
                            })
                            .is_ok();
                    }
                });
            }
        });
        let mut state = self.state();
        state.readers = readers;
        let State { known, loaded, .. } = &mut *state;
        known.reserve(parts.iter().map(|part| part.entries.len()).sum());
        for (t, task) in tasks.iter().enumerate() {
            if !parts[t..].iter().step_by(tasks.len()).all(|part| part.read) {
                continue;
            }
            for part in parts[t..].iter_mut().step_by(tasks.len()) {
                for (id, entry) in part.entries.drain(..) {
                    // What a lookup or a commit put here meanwhile is at least as new.
                    known.entry(id).or_insert(entry);
                }
            }
            loaded.insert((*task).to_owned());
        }
    }

    /// Removes, once per run and task, the temporaries in `task`'s directory (`.tmp-…`
    /// and `.trash-…`, of any key) whose writers are gone. Listing the directory costs in
    /// proportion to the task's files, so it is done before the task's first new entry
    /// only, not before each.
    fn sweep(&self, task: &str) {
        if !self.state().swept.insert(task.to_owned()) {
            return;
        }
        let Ok(dir) = fs::read_dir(self.root.join(task)) else {
            return;
        };
        for entry in dir.flatten() {
            if entry.file_name().to_str().is_some_and(|n| {
                (n.starts_with(".tmp-") || n.starts_with(".trash-")) && writer_gone(n)
            }) {
                remove_any(&entry.path());
            }
        }
    }

    /// The directory of the entry `key` of `task`, which holds its work directory.
    pub(crate) fn entry_dir(&self, task: &str, key: &str) -> PathBuf {
        self.root.join(task).join(key)
    }

    /// The work directory of `entry`, which holds its output files, if it has one.
    pub(crate) fn files_dir(&self, entry: &Entry) -> Option<PathBuf> {
        entry
            .work
            .then(|| self.entry_dir(&entry.task, &entry.key).join(WORK))
    }

    /// The output files of `entry`, as committed: none if it has no work directory. An
    /// error says why the list cannot be read.
    pub(crate) fn output_files(&self, entry: &Entry) -> Result<Vec<FileRecord>, String> {
        if !entry.work {
            return Ok(Vec::new());
        }
        manifest::read(&self.entry_dir(&entry.task, &entry.key))
    }

    /// Checks that the directory of `entry`, if it has one, is there, and that each of its
    /// output files is as committed (see [`manifest::check`]).
    fn check_files(&self, entry: &Entry) -> Result<(), String> {
        if !entry.work {
            return Ok(());
        }
        let dir = self.entry_dir(&entry.task, &entry.key);
        if !dir.is_dir() {
            return Err(format!("its directory `{}` is missing", dir.display()));
        }
        manifest::check(&dir.join(WORK), &manifest::read(&dir)?)
    }

    /// The file of the entry `key` of `task` when its output is not in the index.
    fn output_file(&self, task: &str, key: &str) -> PathBuf {
        self.root.join(task).join(format!("{key}.bin"))
    }

    /// The entry of `task` under `key`, if the index holds a sound one. The output's
    /// digest is checked when it is read. An entry that looks damaged is looked at again
    /// under the key's lock, as a replacement in progress can look damaged from outside it.
    ///
    /// The first lookup of a task in a run reads the entries each of its nodes wrote last
    /// (unless the run read them when it started), which later lookups find in memory; a
    /// key that is not among them is looked up in the index. An entry found in memory may have been replaced or removed by another process
    /// since (its output is still checked when read); where that matters, ask
    /// [`lookup_fresh`](Self::lookup_fresh).
    pub(crate) fn lookup(&self, task: &str, key: &str) -> Lookup {
        self.look(task, key, Look::Index)
    }

    /// [`lookup`](Self::lookup), from the index as it is now.
    pub(crate) fn lookup_fresh(&self, task: &str, key: &str) -> Lookup {
        self.look(task, key, Look::Fresh)
    }

    /// [`lookup`](Self::lookup), as far as `look` says.
    pub(crate) fn look(&self, task: &str, key: &str, look: Look) -> Lookup {
        self.look_id(task, key, KeyId::of(key), look)
    }

    /// [`look`](Self::look), for `key` whose id is `id`.
    pub(crate) fn look_id(&self, task: &str, key: &str, id: KeyId, look: Look) -> Lookup {
        match self.lookup_once(task, key, id, look) {
            Lookup::Damaged(_) => {
                self.under_lock(key, || self.lookup_once(task, key, id, Look::Fresh))
            }
            found => found,
        }
    }

    /// [`look`](Self::look), without looking again.
    fn look_once(&self, task: &str, key: &str, look: Look) -> Lookup {
        self.lookup_once(task, key, KeyId::of(key), look)
    }

    /// [`look_once`](Self::look_once), for `key` whose id is `id`.
    fn lookup_once(&self, task: &str, key: &str, id: KeyId, look: Look) -> Lookup {
        let mut state = self.state();
        let State {
            index,
            known,
            loaded,
            ..
        } = &mut *state;
        let index = match open_index(index, self.dir(), false) {
            Ok(Some(index)) => index,
            Ok(None) => return Lookup::Missing,
            Err(e) => return Lookup::Damaged(e.to_string()),
        };
        if look != Look::Fresh {
            if !loaded.contains(task) {
                loaded.insert(task.to_owned());
                if let Err(e) = index.last_of_task(task, known) {
                    return Lookup::Damaged(e.to_string());
                }
            }
            if let Some(entry) = known.get(&id) {
                return Self::present(task, Arc::clone(entry));
            }
            if look == Look::Remembered {
                return Lookup::Missing;
            }
        }
        match index.get(key) {
            Ok(None) => {
                known.remove(&id);
                Lookup::Missing
            }
            Ok(Some((_, false))) => {
                Lookup::Damaged("the index's row of the entry does not match its checksum".into())
            }
            Ok(Some((entry, true))) => {
                let entry = Arc::new(entry);
                known.insert(id, Arc::clone(&entry));
                Self::present(task, entry)
            }
            Err(e) => Lookup::Damaged(e.to_string()),
        }
    }

    fn present(task: &str, entry: Arc<Entry>) -> Lookup {
        if entry.task == task {
            Lookup::Present(entry)
        } else {
            Lookup::Damaged(format!(
                "the entry under the key belongs to task `{}`",
                entry.task
            ))
        }
    }

    /// Reads the output of `entry` and checks its digest. On a mismatch (or a missing
    /// output) it looks again under the key's lock, since the entry may have been replaced
    /// since it was looked up, and reads the entry found there if it is complete. An error
    /// says why the entry is damaged.
    pub(crate) fn read_verified(&self, entry: &Entry) -> Result<Output, String> {
        self.read_checked(entry, |read| self.read_output(read))
            .map(|(bytes, replaced)| Output { bytes, replaced })
    }

    /// What `read` makes of the output of `entry`, read and checked; if it cannot, what it
    /// makes of the entry under the key's lock, since the entry may have been replaced
    /// since it was looked up, with that entry if it is another.
    fn read_checked<T>(
        &self,
        entry: &Entry,
        read: impl Fn(&Entry) -> Result<T, String>,
    ) -> Result<(T, Option<Arc<Entry>>), String> {
        if let Ok(value) = read(entry) {
            return Ok((value, None));
        }
        self.under_lock(&entry.key, || {
            match self.look_once(&entry.task, &entry.key, Look::Fresh) {
                Lookup::Present(now) => {
                    let value = read(&now)?;
                    let replaced = (now.digest != entry.digest).then_some(now);
                    Ok((value, replaced))
                }
                Lookup::Damaged(why) => Err(why),
                Lookup::Missing => Err("the entry is gone".to_owned()),
            }
        })
    }

    /// Removes the entry of `task` and `key` under the key's lock, if it is still damaged
    /// then: a row that does not match its checksum, an output that is missing or does not
    /// match its digest, or, when `seen` is given, still that entry (whose output its reader
    /// could not use). A complete entry that replaced the damaged one stays.
    pub(crate) fn remove_damaged(&self, task: &str, key: &str, seen: Option<&Entry>) {
        self.under_lock(key, || {
            let damaged = match self.look_once(task, key, Look::Fresh) {
                Lookup::Missing => false,
                Lookup::Damaged(_) => true,
                Lookup::Present(now) => {
                    seen.is_some_and(|seen| seen.stamp == now.stamp)
                        || self.read_output(&now).is_err()
                }
            };
            if damaged {
                self.remove(task, key);
            }
        });
    }

    /// Removes the entry of `task` under `key`: its row, then its files. The caller holds
    /// the key's lock.
    fn remove(&self, task: &str, key: &str) {
        {
            let mut state = self.state();
            state.known.remove(&KeyId::of(key));
            if let Some(index) = &state.index
                && let Err(e) = index.remove(key)
            {
                tracing::warn!(target: "pipewright", key, "{e}");
            }
        }
        for path in [self.output_file(task, key), self.entry_dir(task, key)] {
            if path.exists() {
                remove_aside(&path);
            }
        }
    }

    /// Calls `f` holding the lock of `key`: taken for it, unless this thread holds it. If
    /// the lock cannot be taken, `f` is called all the same.
    fn under_lock<T>(&self, key: &str, f: impl FnOnce() -> T) -> T {
        self.settle_key(key);
        let _lock = if lock::held_here(self.dir(), key) {
            None
        } else {
            self.lock(key).ok()
        };
        f()
    }

    /// Reads the entry's output and checks its size and digest, and its output files,
    /// once; an entry whose work directory is gone is damaged too, as its output may name
    /// files in it.
    fn read_output(&self, entry: &Entry) -> Result<Vec<u8>, String> {
        let bytes = self.read_bytes(entry)?;
        if *crate::digest::digest(&bytes).as_bytes() != entry.digest {
            return Err(DIGEST_MISMATCH.to_owned());
        }
        self.check_files(entry)?;
        Ok(bytes)
    }

    /// Reads the entry's output and checks its size, not yet its digest.
    fn read_bytes(&self, entry: &Entry) -> Result<Vec<u8>, String> {
        if entry.work && !self.entry_dir(&entry.task, &entry.key).join(WORK).is_dir() {
            return Err("its work directory is gone".to_owned());
        }
        let bytes = match entry.place {
            Place::Inline => {
                let found = self
                    .with_index(|index| index.output(&entry.key, entry.stamp))
                    .map_err(|e| e.to_string())?
                    .flatten();
                found.ok_or("the entry's output is gone from the index")?
            }
            Place::File => fs::read(self.output_file(&entry.task, &entry.key))
                .map_err(|e| format!("cannot read its output file: {e}"))?,
        };
        if bytes.len() as u64 != entry.size {
            return Err(format!(
                "its output has {} bytes, not the {} recorded",
                bytes.len(),
                entry.size
            ));
        }
        Ok(bytes)
    }

    /// [`read_verified`](Self::read_verified), then the output decoded by `decode` (given
    /// its bytes and the entry they belong to). Returns the value, and the entry it came
    /// from if that replaced `entry` meanwhile.
    pub(crate) fn read_decoded<T>(
        &self,
        entry: &Entry,
        decode: impl Fn(&[u8], &Entry) -> Result<T, String>,
    ) -> Result<(T, Option<Arc<Entry>>), String> {
        self.read_checked(entry, |read| self.read_output_decoded(read, &decode))
    }

    /// The entry's output read, checked as [`read_output`](Self::read_output) checks it,
    /// and decoded. A large output without files of its own is decoded on this thread
    /// while its digest is taken on another: a value decoded from bytes that do not match
    /// the digest is dropped, never returned, and a panic while decoding them is taken for
    /// the damage it comes from.
    fn read_output_decoded<T>(
        &self,
        entry: &Entry,
        decode: &impl Fn(&[u8], &Entry) -> Result<T, String>,
    ) -> Result<T, String> {
        if entry.work || entry.size < DECODE_BESIDE_MIN as u64 {
            let bytes = self.read_output(entry)?;
            return decode(&bytes, entry);
        }
        let bytes = self.read_bytes(entry)?;
        let matches = || *crate::digest::digest_beside_one(&bytes).as_bytes() == entry.digest;
        std::thread::scope(|s| {
            // Where no thread can be started, the digest is checked first, as for others.
            let digest = std::thread::Builder::new().name("pipewright-digest".to_owned());
            let Ok(digest) = digest.spawn_scoped(s, matches) else {
                return if matches() {
                    decode(&bytes, entry)
                } else {
                    Err(DIGEST_MISMATCH.to_owned())
                };
            };
            let decoded =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(&bytes, entry)));
            match digest.join() {
                Ok(true) => decoded.unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Ok(false) => Err(DIGEST_MISMATCH.to_owned()),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts a new entry for `task` and `key`, with a work directory if `work` (the task
    /// takes a `&Ctx`, through which it gets one). Before the first new entry of `task` in a
    /// run, removes what writers of any of its keys that are gone left (see
    /// [`sweep`](Self::sweep)).
    pub(crate) fn begin(&self, task: &str, key: &str, work: bool) -> Result<Pending, StoreError> {
        self.sweep(task);
        Ok(Pending {
            task: task.to_owned(),
            tmp: self
                .root
                .join(task)
                .join(temporary_name(".tmp-", &key[..16.min(key.len())])),
            work,
            output: None,
        })
    }

    /// Writes `output`, if it is too large for the index, to a temporary file beside where
    /// the entry of `pending` (under `key`) will have it, while `beside` (the output's
    /// digest) runs on a thread of its own if the output is a megabyte or more, else
    /// before it, and returns what `beside` returned. The file is
    /// renamed into place when the entry is committed, and removed if it is discarded; a
    /// smaller output is left to the commit.
    pub(crate) fn write_output_while<R>(
        &self,
        pending: &mut Pending,
        key: &str,
        output: &[u8],
        beside: impl FnOnce() -> R + Send,
    ) -> Result<R, StoreError>
    where
        R: Send,
    {
        if output.len() <= INLINE_MAX {
            return Ok(beside());
        }
        let task_dir = self.root.join(&pending.task);
        fs::create_dir_all(&task_dir)
            .map_err(|e| StoreError::new("cannot create the task directory", &task_dir, e))?;
        let tmp = temporary_output(&task_dir, key);
        // Removes the temporary file unless it is handed to the entry: a failed write, or a
        // panic of the digest or of the writer, leaves nothing behind.
        struct Unfinished<'a>(Option<&'a Path>);
        impl Drop for Unfinished<'_> {
            fn drop(&mut self) {
                if let Some(path) = self.0 {
                    let _ = fs::remove_file(path);
                }
            }
        }
        let mut unfinished = Unfinished(Some(&tmp));
        let write = || fs::write(&tmp, output);
        let (written, result) = if output.len() < WRITE_BESIDE_MIN {
            let result = beside();
            (write(), result)
        } else {
            // This thread writes and a new one runs `beside`: the thread that made the
            // output's bytes is the one that gets the file's pages (on a virtual machine
            // whose host takes freed memory back, a new thread's writes more often landed
            // on pages the host had to supply again; see `benches/README.md`).
            let beside = Mutex::new(Some(beside));
            let run_beside = || {
                let beside = beside.lock().unwrap_or_else(PoisonError::into_inner).take();
                beside.map(|beside| beside())
            };
            let (written, result) = std::thread::scope(|s| {
                let digest = std::thread::Builder::new().name("pipewright-digest".to_owned());
                let Ok(other) = digest.spawn_scoped(s, run_beside) else {
                    // Where no thread can be started, the output is written after `beside`.
                    let result = run_beside();
                    return (write(), result);
                };
                let written = write();
                let result = other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (written, result)
            });
            let result = result.expect("`beside` is taken once, by the thread that runs it");
            (written, result)
        };
        written.map_err(|e| StoreError::new("cannot write", &tmp, e))?;
        unfinished.0 = None;
        drop(unfinished);
        pending.output = Some(tmp);
        Ok(result)
    }

    /// Commits `output` as the entry `meta` describes: its files (a large output, the
    /// work directory with the list of the output `files` in it) into place, then its row
    /// into the index, in place of any entry under the key (a forced node's old output), so
    /// that readers find the old entry or the new one at every moment, never none. The
    /// caller holds the key's lock, and has looked under it that no other process committed
    /// the entry meanwhile. Returns the new entry.
    pub(crate) fn commit(
        &self,
        pending: Pending,
        meta: &EntryMeta,
        output: &[u8],
        files: &[FileRecord],
    ) -> Result<Entry, StoreError> {
        let row = self.place(&pending, meta, output, files).inspect_err(|_| {
            self.discard(pending);
        })?;
        let entry = row.entry.clone();
        self.commit_row(row)?;
        Ok(entry)
    }

    /// [`commit`](Self::commit), but the row is queued and the caller goes on: it is
    /// committed with others in one transaction, by whichever writer commits next, and the
    /// key's `lock` is released once it is; `note` is told then, if it is. What became of
    /// it is read with [`failures`](Self::failures), after [`flush`](Self::flush). An entry
    /// committed at once has no ticket, and its `note` is not told.
    pub(crate) fn commit_queued(
        &self,
        pending: Pending,
        meta: &EntryMeta,
        output: &[u8],
        files: &[FileRecord],
        lock: Option<KeyLock>,
        note: Option<Note>,
    ) -> Result<(Entry, Option<Ticket>), StoreError> {
        let row = self.place(&pending, meta, output, files).inspect_err(|_| {
            self.discard(pending);
        })?;
        let entry = row.entry.clone();
        if entry.work {
            // Its directory (work files, the list of its output files) is in place already,
            // beside the row of any entry it replaces: its own row follows at once.
            self.commit_row(row)?;
            drop(lock);
            return Ok((entry, None));
        }
        let ticket = self.queue_row(row, lock, note);
        Ok((entry, Some(ticket)))
    }

    /// Puts the files of the entry `meta` describes into place, and returns its row.
    fn place(
        &self,
        pending: &Pending,
        meta: &EntryMeta,
        output: &[u8],
        files: &[FileRecord],
    ) -> Result<NewRow, StoreError> {
        let key = &meta.key;
        let task_dir = self.root.join(&pending.task);
        let place = if output.len() > INLINE_MAX {
            fs::create_dir_all(&task_dir)
                .map_err(|e| StoreError::new("cannot create the task directory", &task_dir, e))?;
            let dest = self.output_file(&pending.task, key);
            // Written already, as its digest was taken, or written now.
            let (tmp, written) = match &pending.output {
                Some(tmp) => (tmp.clone(), Ok(())),
                None => {
                    let tmp = temporary_output(&task_dir, key);
                    let written = fs::write(&tmp, output);
                    (tmp, written)
                }
            };
            written
                .and_then(|()| {
                    fs::rename(&tmp, &dest).or_else(|e| {
                        // A directory where the output goes is no entry's (the caller
                        // holds the key's lock): it is set aside, not left in the way.
                        if !dest.is_dir() {
                            return Err(e);
                        }
                        remove_aside(&dest);
                        fs::rename(&tmp, &dest)
                    })
                })
                .map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    StoreError::new("cannot write", &dest, e)
                })?;
            Place::File
        } else {
            Place::Inline
        };
        if !files.is_empty() {
            manifest::write(&pending.tmp, files)?;
        }
        let work = (pending.work || !files.is_empty()) && pending.tmp.exists();
        if work {
            self.move_into_place(&pending.tmp, &self.entry_dir(&pending.task, key))?;
        }
        let entry = Entry {
            task: meta.task.clone(),
            node: meta.node.clone(),
            key: key.clone(),
            digest: crate::text::parse_hex_bytes(&meta.output_digest)
                .and_then(|d| d.try_into().ok())
                .unwrap_or_else(|| *crate::digest::digest(output).as_bytes()),
            size: output.len() as u64,
            place,
            work,
            stamp: new_stamp(),
            duration_secs: meta.duration_secs,
        };
        let json = json::to_string(meta).map_err(|e| {
            StoreError::new("cannot encode the entry of", &task_dir, io::Error::other(e))
        })?;
        Ok(NewRow {
            entry,
            output: (place == Place::Inline).then(|| output.to_vec()),
            meta: json,
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.commits
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `row` to the queue, with the lock of its key if the caller holds one, and who
    /// to tell once it is committed.
    fn push(queue: &mut Queue, row: NewRow, lock: Option<KeyLock>, note: Option<Note>) -> u64 {
        let ticket = queue.next;
        queue.next += 1;
        queue.bytes += row.output.as_ref().map_or(0, Vec::len);
        queue.keys.insert(row.entry.key.clone(), ticket);
        queue.rows.push(Queued {
            ticket,
            row,
            _lock: lock,
            note,
        });
        ticket
    }

    /// Commits `row` to the index, with whatever other rows wait (see [`Commits`]), and
    /// returns once it is committed.
    fn commit_row(&self, row: NewRow) -> Result<(), StoreError> {
        let mut queue = self.queue();
        let ticket = Self::push(&mut queue, row, None, None);
        loop {
            if queue.settled > ticket {
                return match queue.failed.remove(&ticket) {
                    None => Ok(()),
                    Some(why) => Err(self.commit_error(why)),
                };
            }
            if queue.committing {
                queue = self.wait(queue);
                continue;
            }
            queue = self.commit_waiting(queue);
        }
    }

    /// Queues `row`, its key's `lock` and its `note`, and commits what waits if there is
    /// enough of it.
    fn queue_row(&self, row: NewRow, lock: Option<KeyLock>, note: Option<Note>) -> Ticket {
        let mut queue = self.queue();
        let first = queue.rows.is_empty();
        let ticket = Self::push(&mut queue, row, lock, note);
        if queue.committing {
            // A commit under way (perhaps waiting for another process's write): the writers
            // wait for it once the queue is full, rather than hold ever more rows and locks.
            while queue.committing && (queue.rows.len() >= QUEUE_ROWS || queue.bytes >= QUEUE_BYTES)
            {
                queue = self
                    .commits
                    .settled
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            return Ticket(ticket);
        }
        if queue.waiting > 0 || queue.rows.len() >= QUEUE_ROWS || queue.bytes >= QUEUE_BYTES {
            drop(self.commit_waiting(queue));
        } else if first {
            queue.since = Some(Instant::now());
            if queue.committer {
                self.commits.wake.notify_one();
            } else if self.start_committer() {
                queue.committer = true;
            } else {
                drop(self.commit_waiting(queue));
            }
        }
        Ticket(ticket)
    }

    /// Starts the thread that commits the rows queued once [`QUEUE_DELAY`] has passed since
    /// the first of them came; whether it started.
    fn start_committer(&self) -> bool {
        let root = self.root.clone();
        let state = Arc::downgrade(&self.state);
        let writer = Arc::downgrade(&self.writer);
        let commits = Arc::clone(&self.commits);
        std::thread::Builder::new()
            .name("pipewright-commits".to_owned())
            .spawn(move || committer(root, state, writer, commits))
            .is_ok()
    }

    /// Commits every row waiting, and returns once they are committed (or have failed).
    pub(crate) fn flush(&self) {
        let through = self.queue().next;
        self.commit_while(|queue| queue.settled < through);
    }

    /// Commits the rows waiting, or waits for whoever commits them, while `unsettled` says
    /// of the queue.
    fn commit_while(&self, unsettled: impl Fn(&Queue) -> bool) {
        let mut queue = self.queue();
        while unsettled(&queue) {
            queue = if queue.committing {
                self.wait(queue)
            } else {
                self.commit_waiting(queue)
            };
        }
    }

    /// Why each of `tickets` whose commit failed did: the queue is flushed first.
    pub(crate) fn failures(&self, tickets: &[Ticket]) -> HashMap<Ticket, StoreError> {
        self.flush();
        let mut queue = self.queue();
        if queue.failed.is_empty() {
            return HashMap::new();
        }
        tickets
            .iter()
            .filter_map(|t| {
                let why = queue.failed.remove(&t.0)?;
                Some((*t, self.commit_error(why)))
            })
            .collect()
    }

    fn commit_error(&self, why: String) -> StoreError {
        StoreError::with_message(why.clone(), self.dir(), io::Error::other(why))
    }

    fn wait<'q>(&self, queue: MutexGuard<'q, Queue>) -> MutexGuard<'q, Queue> {
        self.commits
            .settled
            .wait(queue)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no row of `key` waits to be committed, committing the queue if no one
    /// is: the key's lock may be taken again then, and its entry is in the index.
    fn settle_key(&self, key: &str) {
        self.commit_while(|queue| queue.keys.contains_key(key));
    }

    /// Commits the rows waiting, and those that come meanwhile, until none is left; the
    /// caller found no one committing.
    fn commit_waiting<'q>(&'q self, mut queue: MutexGuard<'q, Queue>) -> MutexGuard<'q, Queue> {
        queue.committing = true;
        loop {
            let rows = std::mem::take(&mut queue.rows);
            queue.bytes = 0;
            queue.since = None;
            if rows.is_empty() {
                queue.committing = false;
                return queue;
            }
            let through = queue.next;
            drop(queue);
            // A row built on one whose commit failed is still right for its key: the report,
            // not the store, says that it was built on an output the store does not hold.
            // A panic while committing fails the rows like an error, so that no writer waits
            // for them for ever.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.put_rows(rows.iter().map(|q| &q.row))
            }))
            .unwrap_or_else(|_| {
                Err(self.commit_error("committing to the store index panicked".to_owned()))
            });
            if result.is_ok() {
                tell_committed(&rows);
            }
            // The rows are in the index (or not): their keys' locks are released before
            // anyone is told.
            let settled: Vec<(u64, String)> = rows
                .into_iter()
                .map(|q| (q.ticket, q.row.entry.key))
                .collect();
            queue = self.queue();
            if let Err(e) = &result {
                let why = e.to_string();
                for (ticket, _) in &settled {
                    queue.failed.insert(*ticket, why.clone());
                }
            }
            for (ticket, key) in settled {
                if queue.keys.get(&key) == Some(&ticket) {
                    queue.keys.remove(&key);
                }
            }
            queue.settled = through;
            self.commits.settled.notify_all();
        }
    }

    /// Commits `rows` to the index in one transaction, and remembers their entries.
    fn put_rows<'a>(
        &self,
        rows: impl Iterator<Item = &'a NewRow> + Clone,
    ) -> Result<(), StoreError> {
        // A test's way to make a commit panic: a row of the node it names.
        #[cfg(test)]
        if rows.clone().any(|row| row.entry.node == tests::PANICS) {
            panic!("a commit made to panic by a test");
        }
        {
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if writer.as_ref().is_some_and(|index| !index.is_current()) {
                // The data directory was deleted, or its index replaced, since the last
                // commit: rows go into the index now at its path.
                *writer = None;
            }
            let Some(index) = open_index(&mut writer, self.dir(), true)? else {
                return Err(StoreError::with_message(
                    "the store index is missing".to_owned(),
                    self.dir(),
                    io::Error::from(io::ErrorKind::NotFound),
                ));
            };
            index.put_all(rows.clone())?;
        }
        // The transaction is over: lookups that went on meanwhile find the rows in the
        // index, and from now on among the entries known.
        let mut state = self.state();
        for row in rows {
            state
                .known
                .insert(KeyId::of(&row.entry.key), Arc::new(row.entry.clone()));
        }
        Ok(())
    }

    /// Puts the directory `from` at `to`. Where something is already there, the two are
    /// swapped atomically where the system can, so the place always holds one of them, and
    /// the old one is deleted; elsewhere the old one is moved aside just before the new one
    /// moves in.
    fn move_into_place(&self, from: &Path, to: &Path) -> Result<(), StoreError> {
        if fs::rename(from, to).is_ok() {
            return Ok(());
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::{CWD, RenameFlags, renameat_with};
            if renameat_with(CWD, from, CWD, to, RenameFlags::EXCHANGE).is_ok() {
                // The old directory is now at the temporary name, named after this process.
                remove_any(from);
                return Ok(());
            }
        }
        remove_aside(to);
        fs::rename(from, to).map_err(|e| {
            remove_any(from);
            StoreError::new("cannot move the new entry into place", to, e)
        })
    }

    /// What the last entry node `node` of `task` wrote was made of, if it is recorded.
    pub(crate) fn last_entry(&self, task: &str, node: &str) -> Option<EntryMeta> {
        let json = self
            .with_index(|index| index.node_meta(task, node))
            .ok()
            .flatten()
            .flatten()?;
        serde_json::from_str(&json).ok()
    }

    /// Every sound entry, and the rows that are not (what they say of their task and key),
    /// for garbage collection; an error if the index cannot be read.
    pub(crate) fn entries(&self) -> Result<(Vec<Entry>, Vec<Entry>), StoreError> {
        let rows = self.with_index(|index| index.all())?.unwrap_or_default();
        let mut sound = Vec::with_capacity(rows.len());
        let mut damaged = Vec::new();
        for (entry, ok) in rows {
            if ok {
                sound.push(entry);
            } else {
                damaged.push(entry);
            }
        }
        Ok((sound, damaged))
    }

    /// Removes the entry of `task` under `key` if no one holds its lock; returns whether
    /// it did.
    pub(crate) fn remove_unlocked(&self, task: &str, key: &str) -> bool {
        match self.try_lock(key) {
            Some(_held) => {
                self.remove(task, key);
                true
            }
            None => false,
        }
    }

    /// Drops a pending entry.
    pub(crate) fn discard(&self, pending: Pending) {
        if let Some(output) = &pending.output {
            let _ = fs::remove_file(output);
        }
        if pending.work && pending.tmp.exists() {
            let _ = fs::remove_dir_all(&pending.tmp);
        }
    }

    /// The lock of `key`, if no other process (or thread) holds it.
    pub(crate) fn try_lock(&self, key: &str) -> Option<KeyLock> {
        self.settle_key(key);
        lock::try_lock(self.dir(), key)
    }

    /// Takes the lock of `key`, waiting while another process (or thread) holds it. The OS
    /// releases it if the holder dies. Before it waits, the rows this process queued are
    /// committed, and their keys' locks released: whoever holds this one may be waiting
    /// for one of them.
    pub(crate) fn lock(&self, key: &str) -> Result<KeyLock, StoreError> {
        self.settle_key(key);
        let dir = self.dir();
        if let Some(held) = lock::try_lock(dir, key) {
            return Ok(held);
        }
        // While this thread waits, rows are committed as they come: the holder, in another
        // process, may be waiting for a key whose row this process would otherwise keep
        // queued, while its own queued rows hold the key this thread waits for.
        self.queue().waiting += 1;
        self.flush();
        let held = lock::lock(dir, key);
        self.queue().waiting -= 1;
        held
    }
}

#[cfg(test)]
mod tests;
