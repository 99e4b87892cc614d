//! The store as an adversary sees it: its index (an SQLite database) and its files, read
//! and altered directly, around the runtime.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// One entry as the index's row says.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub task: String,
    pub node: String,
    /// The key, in hex.
    pub key: String,
    /// Whether the output is in the index (else in `DATA/<task>/<key>.bin`).
    pub inline: bool,
    /// Whether the entry has a directory holding its work directory.
    pub work: bool,
    pub size: u64,
    pub digest: String,
}

/// The index of the store in `data`.
pub fn index_path(data: &Path) -> PathBuf {
    data.join(".store").join("index.db")
}

/// The index, opened as another process would.
pub fn open(data: &Path) -> Connection {
    let conn = Connection::open(index_path(data)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .unwrap();
    conn
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        key: hex(&r.get::<_, Vec<u8>>(0)?),
        task: r.get(1)?,
        node: r.get(2)?,
        inline: r.get::<_, i64>(3)? == 0,
        work: r.get::<_, i64>(4)? != 0,
        size: r.get::<_, i64>(5)? as u64,
        digest: hex(&r.get::<_, Vec<u8>>(6)?),
    })
}

const COLUMNS: &str = "key, task, node, place, work, size, digest";

/// Every entry in the store of `data`, sorted by task and key.
pub fn entries(data: &Path) -> Vec<Stored> {
    if !index_path(data).exists() {
        return Vec::new();
    }
    let conn = open(data);
    let mut s = conn
        .prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY task, key"))
        .unwrap();
    s.query_map([], stored)
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The entry under `key`, if there is one.
pub fn entry(data: &Path, key: &str) -> Option<Stored> {
    let conn = open(data);
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM entries WHERE key = ?1"),
        params![unhex(key)],
        stored,
    )
    .optional()
    .unwrap()
}

/// The last entry node `node` wrote.
pub fn entry_of(data: &Path, node: &str) -> Stored {
    let conn = open(data);
    let key: Vec<u8> = conn
        .query_row(
            "SELECT key FROM nodes WHERE node = ?1",
            params![node],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no entry of node `{node}`: {e}"));
    entry(data, &hex(&key)).unwrap_or_else(|| panic!("the entry of node `{node}` is gone"))
}

/// What the index records of the last entry of node `node` (its `EntryMeta`), as JSON.
pub fn meta_of(data: &Path, node: &str) -> serde_json::Value {
    let conn = open(data);
    let json: String = conn
        .query_row(
            "SELECT meta FROM nodes WHERE node = ?1",
            params![node],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

/// The file holding the output of `entry`, when it is not in the index.
pub fn output_file(data: &Path, entry: &Stored) -> PathBuf {
    data.join(&entry.task).join(format!("{}.bin", entry.key))
}

/// The directory of `entry`, which holds the work directory of its task.
pub fn entry_dir(data: &Path, entry: &Stored) -> PathBuf {
    data.join(&entry.task).join(&entry.key)
}

/// The encoded output of `entry`, wherever it is.
pub fn output(data: &Path, entry: &Stored) -> Vec<u8> {
    if entry.inline {
        open(data)
            .query_row(
                "SELECT output FROM entries WHERE key = ?1",
                params![unhex(&entry.key)],
                |r| r.get(0),
            )
            .unwrap()
    } else {
        std::fs::read(output_file(data, entry)).unwrap()
    }
}

/// Replaces the encoded output of `entry` with `bytes`, wherever it is, and nothing else:
/// its recorded digest and size stay.
pub fn set_output(data: &Path, entry: &Stored, bytes: &[u8]) {
    if entry.inline {
        open(data)
            .execute(
                "UPDATE entries SET output = ?2 WHERE key = ?1",
                params![unhex(&entry.key), bytes],
            )
            .unwrap();
    } else {
        std::fs::write(output_file(data, entry), bytes).unwrap();
    }
}

/// Runs `sql` on the index of `data`.
pub fn execute(data: &Path, sql: &str) {
    open(data).execute_batch(sql).unwrap();
}
