//! The store's index: one SQLite database in WAL mode, `DATA/.store/index.db`, which every
//! process working on the data directory opens. It holds each entry's place, digest and
//! size, the output itself when it is small, and what each node's last entry was made of.
//! A commit is one transaction, so a writer killed at any point leaves the index as it was
//! before or after it, never between.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{Entry, KeyId, Known, Place, StoreError};

/// The index's file, in the store's own directory.
pub(crate) const INDEX: &str = "index.db";

/// The format of the index, kept as its `user_version`; a store of another format is
/// refused, never misread. Format 4 is format 2 with the keys' locks spread over four files
/// by the key's first two bits (see `lock.rs`); format 2 locked every key in one file, and
/// format 3 over sixteen by the key's first digit. A pipewright of another format locks a
/// key elsewhere, so the two must not work on one store, where both could compute one key
/// at once.
pub(crate) const FORMAT: i64 = 4;

/// The index's `application_id`: `pwst`.
const APPLICATION_ID: i64 = 0x7077_7374;

/// How long a write waits for another process's write to end.
const BUSY: Duration = Duration::from_secs(120);

const SCHEMA: &str = "
CREATE TABLE entries (
    key BLOB NOT NULL UNIQUE,
    task TEXT NOT NULL,
    node TEXT NOT NULL,
    digest BLOB NOT NULL,
    size INTEGER NOT NULL,
    place INTEGER NOT NULL,
    work INTEGER NOT NULL,
    stamp INTEGER NOT NULL,
    duration REAL NOT NULL,
    checksum BLOB NOT NULL,
    output BLOB
);
CREATE TABLE nodes (
    task TEXT NOT NULL,
    node TEXT NOT NULL,
    key BLOB NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (task, node)
) WITHOUT ROWID;
";

/// The key of each node's last entry, by task, apart from what the entry was made of: the
/// first lookup of a task in a run reads its nodes' keys from here, a few pages, instead of
/// the whole `nodes` table, which is mostly that record. An index made before it existed
/// gets it on its first write; an older pipewright reads and updates it as it is.
const NODES_BY_KEY: &str = "CREATE INDEX IF NOT EXISTS nodes_by_key ON nodes (task, key);";

/// The stat cache of input files: what each file's stat was when its content was hashed,
/// and when that was. An index made before it existed gets it on the first write: an older
/// pipewright, which does not know it, reads the index as before.
const FILES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest BLOB NOT NULL,
    hashed_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A file's stat, as far as the stat cache compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) size: i64,
    pub(crate) mtime_ns: i64,
    pub(crate) inode: i64,
    pub(crate) ctime_ns: i64,
}

/// A row of the stat cache: the content digest of a file that had `stat` when it was
/// hashed, `hashed_at_ns` (nanoseconds since the Unix epoch, taken before the file was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRow {
    pub(crate) stat: FileStat,
    pub(crate) digest: [u8; 32],
    pub(crate) hashed_at_ns: i64,
}

/// The columns of an entry, without its output, in the order [`row`] reads them.
macro_rules! columns {
    () => {
        "key, task, node, digest, size, place, work, stamp, duration, checksum"
    };
}
const COLUMNS: &str = columns!();

/// An entry to commit: its row, its output if the index holds it, and what it was made of
/// (its `EntryMeta` as JSON).
#[derive(Debug)]
pub(crate) struct NewRow {
    pub(crate) entry: Entry,
    pub(crate) output: Option<Vec<u8>>,
    pub(crate) meta: String,
}

/// An open index.
pub(crate) struct Index {
    /// The file opened, as the system names it, to tell whether the path still names it.
    file: Option<(u64, u64)>,
    conn: Connection,
    path: PathBuf,
    /// Whether the stat cache's table is known to exist.
    files_table: bool,
    /// Whether the index of the nodes' keys is known to exist.
    nodes_by_key: bool,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

/// An entry as a row holds it, and whether its checksum holds: a row damaged on disk is
/// found here and never used.
pub(crate) type Row = (Entry, bool);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    keyed_row(r).map(|(_, row)| row)
}

/// [`row`], with the key's id; a blob column of another type makes the row unsound.
fn keyed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Option<KeyId>, Row)> {
    fn blob<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
        Ok(match r.get_ref(i)? {
            ValueRef::Blob(b) => b,
            _ => &[],
        })
    }
    let key = blob(r, 0)?;
    let digest = blob(r, 3)?;
    let place = match r.get::<_, i64>(5)? {
        0 => Some(Place::Inline),
        1 => Some(Place::File),
        _ => None,
    };
    let mut entry = Entry {
        key: crate::text::hex_bytes(key),
        task: r.get(1)?,
        node: r.get(2)?,
        digest: digest.try_into().unwrap_or([0; 32]),
        size: r.get::<_, i64>(4)?.try_into().unwrap_or(u64::MAX),
        place: place.unwrap_or(Place::Inline),
        work: r.get::<_, i64>(6)? != 0,
        stamp: r.get(7)?,
        duration_secs: r.get(8)?,
    };
    let id = KeyId::from_bytes(key);
    let sound = place.is_some()
        && id.is_some()
        && digest.len() == 32
        && blob(r, 9)? == entry.checksum().as_slice();
    if !sound {
        // What a damaged row says is not to be trusted, not even for a message.
        entry.size = 0;
    }
    Ok((id, (entry, sound)))
}

/// The 32 bytes of a key in hex, or of any other name as its digest.
fn key_bytes(key: &str) -> Vec<u8> {
    crate::text::parse_hex_bytes(key)
        .filter(|b| b.len() == 32)
        .unwrap_or_else(|| blake3::hash(key.as_bytes()).as_bytes().to_vec())
}

impl Index {
    /// Opens the index of the store directory `dir`: `None` if there is none and `create`
    /// is false. An index of another format, or one that is not an index at all, is an
    /// error that says so.
    pub(crate) fn open(dir: &Path, create: bool) -> Result<Option<Index>, StoreError> {
        let path = dir.join(INDEX);
        if !create && !path.exists() {
            return Ok(None);
        }
        if create {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::new("cannot create the store directory", dir, e))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | if create {
                OpenFlags::SQLITE_OPEN_CREATE
            } else {
                OpenFlags::empty()
            };
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| damaged(&path, e))?;
        conn.busy_timeout(BUSY).map_err(|e| damaged(&path, e))?;
        let mut index = Index {
            file: file_id(&path),
            conn,
            path,
            files_table: false,
            nodes_by_key: false,
        };
        if !index.check_format(create)? {
            return Ok(None);
        }
        index
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| damaged(&index.path, e))?;
        Ok(Some(index))
    }

    /// Checks the index's format, and gives a new one its tables if `create`: whether the
    /// index is ready (an empty one, not created, is not).
    fn check_format(&mut self, create: bool) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let damaged = |e: rusqlite::Error| damaged(&path, e);
        let (id, version) = self.format().map_err(damaged)?;
        if id == APPLICATION_ID && version == FORMAT {
            return Ok(true);
        }
        if id == 0 && version == 0 {
            // One process makes the index; the others wait for it, then find it made.
            let dir = path.parent().unwrap_or(Path::new("."));
            let _creating = super::lock::lock(dir, "creating the index")?;
            let (id, version) = self.format().map_err(damaged)?;
            if id == 0 && version == 0 {
                if !create {
                    return Ok(false);
                }
                self.conn
                    .pragma_update(None, "journal_mode", "WAL")
                    .map_err(damaged)?;
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Exclusive)
                    .map_err(damaged)?;
                tx.execute_batch(SCHEMA).map_err(damaged)?;
                tx.execute_batch(FILES_SCHEMA).map_err(damaged)?;
                tx.execute_batch(NODES_BY_KEY).map_err(damaged)?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(damaged)?;
                tx.pragma_update(None, "user_version", FORMAT)
                    .map_err(damaged)?;
                tx.commit().map_err(damaged)?;
            }
            return self.check_format(false);
        }
        let why = if id != APPLICATION_ID {
            "it is not a pipewright store's index".to_owned()
        } else if version > FORMAT {
            format!(
                "it was written by a newer pipewright (store format {version}; this version reads format {FORMAT} only)"
            )
        } else {
            format!("it has store format {version}, which this version does not read")
        };
        Err(StoreError::with_message(
            format!(
                "cannot use the store index `{}`: {why}; run `clean` to empty the store",
                path.display()
            ),
            &path,
            std::io::Error::other(why),
        ))
    }

    /// The index's `application_id` and `user_version`, read at one moment.
    fn format(&self) -> rusqlite::Result<(i64, i64)> {
        self.conn.query_row(
            "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Whether the index's path still names the file opened: not if the data directory
    /// was deleted, or the index replaced, since.
    pub(crate) fn is_current(&self) -> bool {
        self.file.is_none() || file_id(&self.path) == self.file
    }

    /// The entry under `key`.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Row>, StoreError> {
        self.conn
            .prepare_cached(concat!(
                "SELECT ",
                columns!(),
                " FROM entries WHERE key = ?1"
            ))
            .and_then(|mut s| s.query_row(params![key_bytes(key)], row).optional())
            .map_err(|e| damaged(&self.path, e))
    }

    /// Puts into `known` the entry that each node of `task` wrote last, which the next run
    /// of the same pipeline most likely asks for: each whose row is sound.
    pub(crate) fn last_of_task(&self, task: &str, known: &mut Known) -> Result<(), StoreError> {
        self.last_of_task_in(task, (0, 1), |id, entry| {
            known.insert(id, entry);
        })
    }

    /// [`last_of_task`](Self::last_of_task), of the keys in part `i` of `n` (`(i, n)`: the
    /// keys whose first byte is in the `i`th of `n` even ranges), each given to `found`.
    pub(crate) fn last_of_task_in(
        &self,
        task: &str,
        (i, n): (usize, usize),
        mut found: impl FnMut(KeyId, Arc<Entry>),
    ) -> Result<(), StoreError> {
        // Blobs compare byte by byte, then by length: a key is at least `[b]` when its first
        // byte is at least `b`, and every key is below 33 bytes `ff`.
        let bound = |i: usize| match 256 * i / n.max(1) {
            b @ 0..=255 => vec![b as u8],
            _ => vec![0xff; 33],
        };
        let (from, to) = (bound(i), bound(i + 1));
        let mut read = || {
            let mut s = self.conn.prepare_cached(&last_of_task_query())?;
            let mut rows = s.query(params![task, from, to])?;
            while let Some(r) = rows.next()? {
                if let (Some(id), (entry, true)) = keyed_row(r)? {
                    found(id, Arc::new(entry));
                }
            }
            Ok(())
        };
        read().map_err(|e: rusqlite::Error| damaged(&self.path, e))
    }

    /// Every entry, for garbage collection.
    pub(crate) fn all(&self) -> Result<Vec<Row>, StoreError> {
        self.conn
            .prepare(&format!("SELECT {COLUMNS} FROM entries"))
            .and_then(|mut s| s.query_map([], row)?.collect())
            .map_err(|e| damaged(&self.path, e))
    }

    /// The output held in the index for the entry `key` written as `stamp`, if that entry
    /// is still there.
    pub(crate) fn output(&self, key: &str, stamp: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT output FROM entries WHERE key = ?1 AND stamp = ?2")
            .and_then(|mut s| {
                s.query_row(params![key_bytes(key), stamp], |r| {
                    r.get::<_, Option<Vec<u8>>>(0)
                })
                .optional()
            })
            .map(Option::flatten)
            .map_err(|e| damaged(&self.path, e))
    }

    /// Puts each new entry in place of any entry under its key, with its output if it is
    /// held here, and records its `meta` as what its node's last entry was made of: all in
    /// one transaction.
    pub(crate) fn put_all<'a>(
        &mut self,
        rows: impl IntoIterator<Item = &'a NewRow>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let failed = |e: rusqlite::Error| not_written(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        if !self.nodes_by_key {
            tx.execute_batch(NODES_BY_KEY).map_err(failed)?;
        }
        for NewRow {
            entry,
            output,
            meta,
        } in rows
        {
            let key = key_bytes(&entry.key);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO entries (key, task, node, digest, size, place, work, \
                 stamp, duration, checksum, output) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    entry.task,
                    entry.node,
                    &entry.digest[..],
                    i64::try_from(entry.size).unwrap_or(i64::MAX),
                    entry.place as i64,
                    i64::from(entry.work),
                    entry.stamp,
                    entry.duration_secs,
                    &entry.checksum()[..],
                    output,
                ])
            })
            .map_err(failed)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO nodes (task, node, key, meta) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![entry.task, entry.node, key, meta]))
            .map_err(failed)?;
        }
        tx.commit().map_err(failed)?;
        self.nodes_by_key = true;
        Ok(())
    }

    /// Removes the entry under `key`; returns whether there was one.
    pub(crate) fn remove(&self, key: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM entries WHERE key = ?1")
            .and_then(|mut s| s.execute(params![key_bytes(key)]))
            .map(|n| n > 0)
            .map_err(|e| not_written(&self.path, e))
    }

    /// What the last entry node `node` of `task` wrote was made of, as JSON.
    pub(crate) fn node_meta(&self, task: &str, node: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT meta FROM nodes WHERE task = ?1 AND node = ?2")
            .and_then(|mut s| s.query_row(params![task, node], |r| r.get(0)).optional())
            .map_err(|e| damaged(&self.path, e))
    }
}

impl Index {
    /// The stat cache's row of the file `path` (an absolute path), if it has one.
    pub(crate) fn file(&self, path: &Path) -> Result<Option<FileRow>, StoreError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT size, mtime_ns, inode, ctime_ns, digest, hashed_at_ns FROM files \
                 WHERE path = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![path.as_os_str().as_encoded_bytes()], |r| {
                    let digest: Vec<u8> = r.get(4)?;
                    let stat = FileStat {
                        size: r.get(0)?,
                        mtime_ns: r.get(1)?,
                        inode: r.get(2)?,
                        ctime_ns: r.get(3)?,
                    };
                    let hashed_at_ns = r.get(5)?;
                    // A damaged digest is no digest: the file is hashed again.
                    Ok(digest.as_slice().try_into().ok().map(|digest| FileRow {
                        stat,
                        digest,
                        hashed_at_ns,
                    }))
                })
                .optional()
            });
        match found {
            Ok(row) => Ok(row.flatten()),
            // An index made before the stat cache: no file is known.
            Err(rusqlite::Error::SqliteFailure(_, Some(message)))
                if message.starts_with("no such table") =>
            {
                Ok(None)
            }
            Err(e) => Err(damaged(&self.path, e)),
        }
    }

    /// Records `row` as the stat cache's row of the file `path` (an absolute path).
    pub(crate) fn put_file(&mut self, path: &Path, row: &FileRow) -> Result<(), StoreError> {
        let index = self.path.clone();
        let failed = |e: rusqlite::Error| {
            StoreError::new(
                "cannot write the store index",
                &index,
                std::io::Error::other(e),
            )
        };
        if !self.files_table {
            self.conn.execute_batch(FILES_SCHEMA).map_err(failed)?;
            self.files_table = true;
        }
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, ctime_ns, digest, \
                 hashed_at_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    path.as_os_str().as_encoded_bytes(),
                    row.stat.size,
                    row.stat.mtime_ns,
                    row.stat.inode,
                    row.stat.ctime_ns,
                    &row.digest[..],
                    row.hashed_at_ns,
                ])
            })
            .map(drop)
            .map_err(failed)
    }
}

impl super::Store {
    /// The stat cache's row of the file `path` (an absolute path); `None` also when the
    /// index cannot be read, which the entries' own reads report.
    pub(crate) fn input_file(&self, path: &Path) -> Option<FileRow> {
        self.with_index(|index| index.file(path))
            .unwrap_or_else(|e| {
                tracing::debug!(target: "pipewright", "stat cache not read: {e}");
                None
            })
            .flatten()
    }

    /// Records `row` in the stat cache for the file `path` (an absolute path), if the store
    /// has an index; a failure only costs the file being hashed again next time.
    pub(crate) fn put_input_file(&self, path: &Path, row: &FileRow) {
        if let Err(e) = self.with_index(|index| index.put_file(path, row)) {
            tracing::debug!(target: "pipewright", "stat cache not written: {e}");
        }
    }
}

/// The device and inode of the file at `path`, where the system says.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// An index that cannot be read: not a database, or damaged inside.
fn damaged(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::with_message(
        format!(
            "cannot read the store index `{}` ({e}); if it is damaged, run `clean` to empty the store",
            path.display()
        ),
        path,
        std::io::Error::other(e),
    )
}

/// An index that cannot be written: damaged inside (said as [`damaged`] says it), or for
/// another reason (a full disk, say).
fn not_written(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            damaged(path, e)
        }
        _ => StoreError::new(
            "cannot write the store index",
            path,
            std::io::Error::other(e),
        ),
    }
}

/// The query of [`Index::last_of_task`].
fn last_of_task_query() -> String {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns} FROM nodes n JOIN entries e ON e.key = n.key \
         WHERE n.task = ?1 AND n.key >= ?2 AND n.key < ?3"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Entry, Place};

    /// A new row of node `node` of task `t`, under a key of its own.
    fn new_row(node: &str) -> NewRow {
        NewRow {
            entry: Entry {
                task: "t".to_owned(),
                node: node.to_owned(),
                key: crate::text::hex_bytes(blake3::hash(node.as_bytes()).as_bytes()),
                digest: [7; 32],
                size: 1,
                place: Place::Inline,
                work: false,
                stamp: 1,
                duration_secs: 0.5,
            },
            output: Some(vec![1]),
            meta: "{}".to_owned(),
        }
    }

    /// How SQLite reads the nodes' last entries of a task.
    fn plan(index: &Index) -> String {
        let mut s = index
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", last_of_task_query()))
            .unwrap();
        let steps = s
            .query_map(params!["t", vec![0u8], vec![0xffu8; 33]], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        steps.join("; ")
    }

    #[test]
    fn the_last_entries_of_a_task_are_found_by_the_index_of_keys_even_in_an_older_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::open(dir.path(), true).unwrap().unwrap();
        index.put_all(&[new_row("a")]).unwrap();
        assert!(
            plan(&index).contains("COVERING INDEX nodes_by_key"),
            "{}",
            plan(&index)
        );
        // An index made before the index of keys existed gets it on its first write.
        index.conn.execute_batch("DROP INDEX nodes_by_key").unwrap();
        drop(index);
        let mut index = Index::open(dir.path(), false).unwrap().unwrap();
        assert!(!plan(&index).contains("nodes_by_key"), "{}", plan(&index));
        let last = |index: &Index| {
            let mut known = Known::default();
            index.last_of_task("t", &mut known).unwrap();
            let mut nodes: Vec<_> = known.into_values().map(|e| e.node.clone()).collect();
            nodes.sort();
            nodes
        };
        assert_eq!(last(&index), ["a"]);
        index.put_all(&[new_row("b")]).unwrap();
        assert!(
            plan(&index).contains("COVERING INDEX nodes_by_key"),
            "{}",
            plan(&index)
        );
        assert_eq!(last(&index), ["a", "b"]);
    }
}
