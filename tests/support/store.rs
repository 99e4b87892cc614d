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
    // What a test writes needs no sync to the disk.
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes written as pairs of hex digits.
pub fn unhex(text: &str) -> Vec<u8> {
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

/// A value as SQLite holds it, in any column.
pub use rusqlite::types::Value;

/// Sets column `column` of the row under `key` to `value`, of whatever type, and nothing
/// else: the row's checksum stays.
pub fn set_column(data: &Path, key: &str, column: &str, value: Value) {
    open(data)
        .execute(
            &format!("UPDATE entries SET {column} = ?2 WHERE key = ?1"),
            params![unhex(key), value],
        )
        .unwrap();
}

/// Column `column` of the row under `key`, as SQLite holds it.
pub fn column(data: &Path, key: &str, column: &str) -> Value {
    open(data)
        .query_row(
            &format!("SELECT {column} FROM entries WHERE key = ?1"),
            params![unhex(key)],
            |r| r.get(0),
        )
        .unwrap()
}

/// Removes the row of the entry under `key` (what the `nodes` table says of it stays).
pub fn delete_row(data: &Path, key: &str) {
    open(data)
        .execute("DELETE FROM entries WHERE key = ?1", params![unhex(key)])
        .unwrap();
}

/// The checksum the store keeps of a row whose fields are these.
#[allow(clippy::too_many_arguments)]
pub fn checksum(
    task: &str,
    node: &str,
    key: &str,
    digest: &[u8],
    size: u64,
    place: u8,
    work: bool,
    stamp: i64,
    duration: f64,
) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    for text in [task, node, key] {
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.update(digest);
    h.update(&size.to_le_bytes());
    h.update(&[place, u8::from(work)]);
    h.update(&stamp.to_le_bytes());
    h.update(&duration.to_le_bytes());
    h.finalize().as_bytes()[..16].to_vec()
}

/// Gives the row under `key` the output `bytes`, with their size and digest and a checksum
/// that matches: a forged entry, sound as far as the store can see. The output goes where
/// the row says it is.
pub fn forge_output(data: &Path, key: &str, bytes: &[u8]) {
    let conn = open(data);
    let (task, node, place, work, stamp, duration): (String, String, i64, i64, i64, f64) = conn
        .query_row(
            "SELECT task, node, place, work, stamp, duration FROM entries WHERE key = ?1",
            params![unhex(key)],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    let digest = blake3::hash(bytes).as_bytes().to_vec();
    let sum = checksum(
        &task,
        &node,
        key,
        &digest,
        bytes.len() as u64,
        place as u8,
        work != 0,
        stamp,
        duration,
    );
    let inline = (place == 0).then_some(bytes);
    conn.execute(
        "UPDATE entries SET digest = ?2, size = ?3, checksum = ?4, output = ?5 WHERE key = ?1",
        params![unhex(key), digest, bytes.len() as i64, sum, inline],
    )
    .unwrap();
    if place != 0 {
        std::fs::write(data.join(&task).join(format!("{key}.bin")), bytes).unwrap();
    }
}

/// Every row of both tables of the index, as SQLite holds them, to put back with
/// [`restore_rows`].
#[derive(Debug, Clone)]
pub struct Rows {
    entries: Vec<Vec<Value>>,
    nodes: Vec<Vec<Value>>,
}

fn all_rows(conn: &Connection, table: &str) -> Vec<Vec<Value>> {
    let mut s = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Every row of the index of `data`.
pub fn rows(conn: &Connection) -> Rows {
    Rows {
        entries: all_rows(conn, "entries"),
        nodes: all_rows(conn, "nodes"),
    }
}

/// Makes the index hold exactly `rows`, in one transaction, through `conn`: the runners'
/// own connections see the change as any other process's commit.
pub fn restore_rows(conn: &mut Connection, rows: &Rows) {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute_batch("DELETE FROM entries; DELETE FROM nodes;")
        .unwrap();
    for (table, rows) in [("entries", &rows.entries), ("nodes", &rows.nodes)] {
        for row in rows {
            let marks = vec!["?"; row.len()].join(", ");
            tx.execute(
                &format!("INSERT INTO {table} VALUES ({marks})"),
                rusqlite::params_from_iter(row),
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The fields of a row the store checks, as they are.
struct Raw {
    digest: Vec<u8>,
    size: i64,
    place: i64,
    work: i64,
    stamp: i64,
    duration: f64,
    checksum: Vec<u8>,
    output: Option<Vec<u8>>,
}

fn raw(data: &Path, key: &str) -> rusqlite::Result<Raw> {
    open(data).query_row(
        "SELECT digest, size, place, work, stamp, duration, checksum, output FROM entries \
         WHERE key = ?1",
        params![unhex(key)],
        |r| {
            Ok(Raw {
                digest: r.get(0)?,
                size: r.get(1)?,
                place: r.get(2)?,
                work: r.get(3)?,
                stamp: r.get(4)?,
                duration: r.get(5)?,
                checksum: r.get(6)?,
                output: r.get(7)?,
            })
        },
    )
}

/// Whether the entry of `stored` is whole, as the store would check it and more: its row
/// matches its checksum, its output (wherever it is) has its size and digest, and its work
/// directory is there if it has one; else what is wrong.
pub fn whole(data: &Path, stored: &Stored) -> Result<(), String> {
    let Raw {
        digest,
        size,
        place,
        work,
        stamp,
        duration,
        checksum: sum,
        output: inline,
    } = raw(data, &stored.key).map_err(|e| format!("its row cannot be read: {e}"))?;
    let expected = checksum(
        &stored.task,
        &stored.node,
        &stored.key,
        &digest,
        size as u64,
        place as u8,
        work != 0,
        stamp,
        duration,
    );
    if sum != expected {
        return Err("its row does not match its checksum".into());
    }
    let output = match place {
        0 => inline.ok_or("its output is not in the index")?,
        _ => std::fs::read(output_file(data, stored))
            .map_err(|e| format!("its output file cannot be read: {e}"))?,
    };
    if output.len() as i64 != size || blake3::hash(&output).as_bytes()[..] != digest[..] {
        return Err(format!(
            "its output ({} bytes) is not the one its row records",
            output.len()
        ));
    }
    if work != 0 && !entry_dir(data, stored).join("work").is_dir() {
        return Err("its work directory is gone".into());
    }
    Ok(())
}

/// The names in the directory of `task` that no entry of the index accounts for: neither
/// an output file nor the directory of an entry that has one.
pub fn unaccounted(data: &Path, task: &str) -> Vec<String> {
    let entries = entries(data);
    let mut names: Vec<String> = std::fs::read_dir(data.join(task))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            !entries.iter().any(|e| {
                e.task == task
                    && ((!e.inline && *name == format!("{}.bin", e.key))
                        || (e.work && *name == e.key))
            })
        })
        .collect();
    names.sort();
    names
}

/// How many entries the index of `data` holds: none while it is not made yet.
pub fn count(data: &Path) -> usize {
    if !index_path(data).exists() {
        return 0;
    }
    open(data)
        .query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as usize)
}
