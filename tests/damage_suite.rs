//! A randomized damage suite over real store entries, with a fixed seed.
//!
//! One small pipeline is run once to fill a data directory: two of its outputs are larger
//! than 64 KiB, so they are files of their own, the other three are held in the index, and
//! two of its nodes have work directories. Its index rows and files are kept in memory as a
//! template. Each case restores the template, damages one or two entries at random (an
//! output in the index altered, truncated, extended, emptied or of another type; a row's
//! digest, size, place, stamp, task, node, work flag, duration, checksum or key altered, or
//! of another type, with its checksum left; a row deleted; what the index says of a node's
//! last entry deleted or pointed elsewhere; an output file truncated, altered, extended,
//! missing or replaced by a directory; a work directory removed; and mixes of these), reads
//! the damaged store through a reopened report, and runs the pipeline again. Whatever the
//! damage:
//!
//! - nothing panics and the run returns `Ok` with every node a success;
//! - every value read is the value of the undamaged run, never another one: an output the
//!   run keeps (a sink, a kept node) must be readable, any other may be an `Err`; and a
//!   node whose output reads has its work directory;
//! - no node runs more than once, and only damaged or forced nodes run at all;
//! - a third run finds everything repaired and runs nothing;
//! - no temporary or trash file is left behind.
//!
//! A failing case prints its number and its damage; the seed makes it reproducible.
//!
//! Three more scenarios: outputs forged with a matching row (size, digest and checksum
//! recorded), which only decoding can refuse; writes killed half way (no row, the writer's
//! temporaries left), which the next run must clean up; and entries replaced by forced runs
//! while another runner reads them, which must never look damaged.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pipewright::prelude::*;
use support::store::{self, Stored, Value};
use support::{count, take_runs};

const SEED: u64 = 0x5eed_da3a_9e5f_0001;
const CASES: usize = 600;
const FORGED_CASES: usize = 150;
const KILLED_CASES: usize = 120;
/// How many times the replacing runner forces every node while another reads them.
const REPLACING_RUNS: usize = 60;

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// How many numbers the pipeline starts from: enough that the outputs of `xs` and `sq` are
/// over 64 KiB, so files of their own.
const N: u64 = 25_000;

#[task]
fn numbers(n: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    (1..=n).collect()
}

#[task]
fn squares(xs: &Vec<u64>, ctx: &Ctx) -> std::io::Result<Vec<u64>> {
    count(ctx);
    fs::write(ctx.work_dir()?.join("part"), work_text("sq").unwrap())?;
    Ok(xs.iter().map(|x| x * x).collect())
}

/// The cubes of the multiples of 1000.
#[task]
fn cubes(xs: &Vec<u64>, ctx: &Ctx) -> std::io::Result<Vec<u64>> {
    count(ctx);
    fs::write(ctx.work_dir()?.join("part"), work_text("cu").unwrap())?;
    Ok(xs
        .iter()
        .filter(|x| x.is_multiple_of(1000))
        .map(|x| x * x * x)
        .collect())
}

#[task]
fn total(parts: &[&Vec<u64>], ctx: &Ctx) -> u64 {
    count(ctx);
    parts.iter().flat_map(|p| p.iter()).sum()
}

#[task]
fn describe(sum: &u64, xs: &Vec<u64>, ctx: &Ctx) -> String {
    count(ctx);
    format!("{} numbers, squared and cubed, add up to {sum}", xs.len())
}

/// What the node writes into its work directory, for those that have one.
fn work_text(node: &str) -> Option<&'static str> {
    match node {
        "sq" => Some("the squares"),
        "cu" => Some("the cubes"),
        _ => None,
    }
}

/// The node names, in the pipeline's order.
const NODES: [&str; 5] = ["xs", "sq", "cu", "sum", "text"];
/// The nodes whose output starts with a length prefix (a `Vec` or a `String`).
const PREFIXED: [&str; 4] = ["xs", "sq", "cu", "text"];

#[derive(Debug, Clone, PartialEq)]
enum Val {
    List(Vec<u64>),
    Num(u64),
    Text(String),
}

/// Reads node `node`'s output from `report` by name.
fn read(report: &RunReport, node: &str) -> Result<Val, String> {
    let result = match node {
        "sum" => report.get_as::<u64>(node).map(|v| Val::Num(*v)),
        "text" => report.get_as::<String>(node).map(|v| Val::Text(v.clone())),
        _ => report
            .get_as::<Vec<u64>>(node)
            .map(|v| Val::List(v.clone())),
    };
    result.map_err(|e| e.to_string())
}

/// Every node's output, computed here.
fn expected() -> BTreeMap<&'static str, Val> {
    let xs: Vec<u64> = (1..=N).collect();
    let sq: Vec<u64> = xs.iter().map(|x| x * x).collect();
    let cu: Vec<u64> = xs
        .iter()
        .filter(|x| x.is_multiple_of(1000))
        .map(|x| x * x * x)
        .collect();
    let sum: u64 = sq.iter().chain(&cu).sum();
    let text = format!("{N} numbers, squared and cubed, add up to {sum}");
    [
        ("xs", Val::List(xs)),
        ("sq", Val::List(sq)),
        ("cu", Val::List(cu)),
        ("sum", Val::Num(sum)),
        ("text", Val::Text(text)),
    ]
    .into()
}

/// The pipeline and the handles of the nodes a runner may keep.
struct Built {
    p: Pipeline,
    xs: Handle<Vec<u64>>,
    sq: Handle<Vec<u64>>,
    cu: Handle<Vec<u64>>,
    sum: Handle<u64>,
}

/// The pipeline, named `name` so that each scenario's run counts stay apart.
fn build(name: &str) -> Built {
    let mut b = Pipeline::builder(name);
    let xs = b.add("xs", numbers::node(N)).unwrap();
    let sq = b.add("sq", squares::node(xs)).unwrap();
    let cu = b.add("cu", cubes::node(xs)).unwrap();
    let sum = b.add("sum", total::node(vec![sq, cu])).unwrap();
    b.add("text", describe::node(sum, xs)).unwrap();
    Built {
        p: b.build(),
        xs,
        sq,
        cu,
        sum,
    }
}

/// The undamaged store: every row of its index and every file of its tasks' directories,
/// to put back before each case.
struct Template {
    conn: rusqlite::Connection,
    rows: store::Rows,
    /// The tasks' directories.
    dirs: Vec<PathBuf>,
    /// Every file under them, with its bytes.
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// Every directory under them that holds one of the files.
    holders: BTreeSet<PathBuf>,
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            files_under(&path, files);
        } else {
            files.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
}

/// Removes what is at `path`, a directory with all it holds or anything else.
fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).unwrap(),
        Ok(_) => fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

impl Template {
    fn take(data: &Path, tasks: &BTreeSet<String>) -> Self {
        let conn = store::open(data);
        let rows = store::rows(&conn);
        let dirs: Vec<PathBuf> = tasks.iter().map(|t| data.join(t)).collect();
        let mut files = BTreeMap::new();
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap();
            files_under(dir, &mut files);
        }
        let holders = files
            .keys()
            .flat_map(|f| f.ancestors().skip(1))
            .map(Path::to_owned)
            .collect();
        Template {
            conn,
            rows,
            dirs,
            files,
            holders,
        }
    }

    /// Puts every row and file back as it was, rewriting only the files that differ, and
    /// removes everything else in the tasks' directories.
    fn restore(&mut self) {
        store::restore_rows(&mut self.conn, &self.rows);
        let mut stack = self.dirs.clone();
        while let Some(dir) = stack.pop() {
            for item in fs::read_dir(&dir).unwrap() {
                let item = item.unwrap();
                let path = item.path();
                let kind = item.file_type().unwrap();
                if kind.is_dir() && self.holders.contains(&path) {
                    stack.push(path);
                } else if !(kind.is_file()
                    && self
                        .files
                        .get(&path)
                        .is_some_and(|bytes| fs::read(&path).is_ok_and(|now| now == *bytes)))
                {
                    remove(&path);
                }
            }
        }
        for (path, bytes) in &self.files {
            if !path.exists() {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, bytes).unwrap();
            }
        }
    }
}

/// Every path under `root` whose name marks a temporary or trashed entry.
fn stray_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        for item in items {
            let item = item.unwrap();
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            if name.starts_with(".tmp-") || name.starts_with(".trash-") {
                found.push(path.clone());
            }
            if item.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// The undamaged store's entries, which a damage may use.
struct Entries {
    data: PathBuf,
    /// Each node's entry, as the index says.
    stored: BTreeMap<&'static str, Stored>,
    /// Each node's encoded output.
    outputs: BTreeMap<&'static str, Vec<u8>>,
    /// The columns of each node's row that are not in [`Stored`], by node and column.
    columns: BTreeMap<(String, &'static str), Value>,
}

impl Entries {
    /// A column of the node's undamaged row.
    fn column(&self, node: &str, column: &'static str) -> &Value {
        &self.columns[&(node.to_owned(), column)]
    }

    fn blob(&self, node: &str, column: &'static str) -> Vec<u8> {
        match self.column(node, column) {
            Value::Blob(bytes) => bytes.clone(),
            other => panic!("{column} of `{node}` is {other:?}"),
        }
    }

    fn int(&self, node: &str, column: &'static str) -> i64 {
        match self.column(node, column) {
            Value::Integer(n) => *n,
            other => panic!("{column} of `{node}` is {other:?}"),
        }
    }
}

/// `value`, shortened for a case's description.
fn show(value: &Value) -> String {
    let text = match value {
        Value::Blob(b) if b.len() > 12 => format!("Blob({} bytes)", b.len()),
        other => format!("{other:?}"),
    };
    text.chars().take(60).collect()
}

/// Applies one random damage to the entry of `node`; says what it did.
fn damage(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let e = &entries.stored[node];
    match rng.below(10) {
        0..=3 => alter_row(rng, entries, node),
        4 => {
            store::delete_row(&entries.data, &e.key);
            "row deleted".into()
        }
        5 => alter_last(rng, entries, node),
        9 if e.work => remove_work(rng, entries, node),
        _ if e.inline => alter_inline(rng, entries, node),
        _ => alter_file(rng, entries, node),
    }
}

/// Sets one column of the node's row to a wrong value, or to a value of another type, and
/// leaves its checksum.
fn alter_row(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let e = &entries.stored[node];
    let other = *rng.pick(&NODES);
    let flip = |mut bytes: Vec<u8>, at: usize| {
        let at = at % bytes.len().max(1);
        if let Some(byte) = bytes.get_mut(at) {
            *byte ^= 1 << (at % 8);
        }
        bytes
    };
    let at = rng.below(32);
    let (column, value) = match rng.below(10) {
        0 => (
            "digest",
            match rng.below(5) {
                0 => Value::Blob(flip(entries.blob(node, "digest"), at)),
                1 if other != node => Value::Blob(entries.blob(other, "digest")),
                2 => Value::Blob(entries.blob(node, "digest")[..31].to_vec()),
                3 => Value::Text(e.digest.clone()),
                _ => Value::Blob(rng.bytes(32)),
            },
        ),
        1 => (
            "size",
            match rng.below(6) {
                0 => Value::Integer(e.size as i64 + 1),
                1 => Value::Integer(e.size as i64 - 1),
                2 => Value::Integer(0),
                3 => Value::Integer(-1),
                4 => Value::Integer(i64::MAX),
                _ => Value::Text(e.size.to_string()),
            },
        ),
        2 => (
            "place",
            match rng.below(4) {
                0 => Value::Integer(i64::from(e.inline)),
                1 => Value::Integer(2),
                2 => Value::Integer(-1),
                _ => Value::Text(if e.inline { "0" } else { "1" }.into()),
            },
        ),
        3 => {
            let stamp = entries.int(node, "stamp");
            (
                "stamp",
                match rng.below(4) {
                    0 => Value::Integer(stamp.wrapping_add(1)),
                    1 => Value::Integer(stamp ^ (1 << 40)),
                    2 => Value::Integer(0),
                    _ => Value::Real(1.5),
                },
            )
        }
        4 => (
            "task",
            match rng.below(4) {
                0 if other != node => Value::Text(entries.stored[other].task.clone()),
                1 => Value::Text(String::new()),
                2 => Value::Text(e.task.to_uppercase()),
                _ => Value::Blob(e.task.clone().into_bytes()),
            },
        ),
        5 => (
            "node",
            match rng.below(3) {
                0 if other != node => Value::Text(other.to_owned()),
                1 => Value::Text(format!("{node} ")),
                _ => Value::Integer(1),
            },
        ),
        6 => (
            "work",
            if rng.chance(70) {
                Value::Integer(i64::from(!e.work))
            } else {
                Value::Text("1".into())
            },
        ),
        7 => (
            "duration",
            rng.pick(&[Value::Real(1e9), Value::Real(-1.0), Value::Integer(3)])
                .clone(),
        ),
        8 => (
            "checksum",
            match rng.below(3) {
                0 => Value::Blob(flip(entries.blob(node, "checksum"), at)),
                1 => Value::Blob(Vec::new()),
                _ => Value::Text("sum".into()),
            },
        ),
        _ => (
            "key",
            if rng.chance(50) {
                Value::Blob(rng.bytes(32))
            } else {
                Value::Text(e.key.clone())
            },
        ),
    };
    let what = format!("row's {column} set to {}", show(&value));
    store::set_column(&entries.data, &e.key, column, value);
    what
}

/// Alters what the index records of the node's last entry: the entry stays.
fn alter_last(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let other = &entries.stored[*rng.pick(&NODES)].key;
    let sql = match rng.below(3) {
        0 => format!("DELETE FROM nodes WHERE node = '{node}'"),
        1 => format!("UPDATE nodes SET key = X'{other}' WHERE node = '{node}'"),
        _ => format!("UPDATE nodes SET meta = '{{ not json' WHERE node = '{node}'"),
    };
    store::execute(&entries.data, &sql);
    format!("last entry of the node: {sql}")
}

/// A length prefix no output this small can have, in bincode's variable-length encoding
/// (a `u64` tag, then the length).
fn huge_prefix(rng: &mut Rng) -> Vec<u8> {
    let length: u64 = *rng.pick(&[1 << 62, u64::MAX, 1 << 40, (1 << 34) + 1]);
    let mut prefix = vec![253];
    prefix.extend_from_slice(&length.to_le_bytes());
    prefix
}

/// `bytes` damaged one way or another; says how.
fn mangle(rng: &mut Rng, mut bytes: Vec<u8>) -> (Vec<u8>, String) {
    let what = match rng.below(5) {
        0 => {
            let at = rng.below(bytes.len().max(1));
            bytes.truncate(at);
            format!("truncated to {at} bytes")
        }
        1 if !bytes.is_empty() => {
            let mut flipped = Vec::new();
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(bytes.len());
                let mask = rng.range(1, 255) as u8;
                bytes[at] ^= mask;
                flipped.push((at, mask));
            }
            format!("bytes flipped (offset, mask): {flipped:?}")
        }
        2 => {
            let n = rng.range(1, 16);
            bytes.extend(rng.bytes(n));
            format!("{n} bytes appended")
        }
        _ => {
            let prefix = huge_prefix(rng);
            let end = prefix.len().min(bytes.len());
            bytes.splice(..end, prefix);
            "a huge length prefix".to_owned()
        }
    };
    (bytes, what)
}

/// Damages the output the index holds for the node.
fn alter_inline(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let key = &entries.stored[node].key;
    let output = entries.outputs[node].clone();
    let (value, what) = match rng.below(6) {
        0 => (Value::Null, "NULL".to_owned()),
        1 => (Value::Blob(Vec::new()), "empty".to_owned()),
        2 => (
            Value::Text(String::from_utf8_lossy(&output).into_owned()),
            "the same as text".to_owned(),
        ),
        3 => {
            let other = *rng.pick(&["cu", "sum", "text"]);
            (
                Value::Blob(entries.outputs[other].clone()),
                format!("the output of `{other}`"),
            )
        }
        _ => {
            let (bytes, what) = mangle(rng, output);
            (Value::Blob(bytes), what)
        }
    };
    store::set_column(&entries.data, key, "output", value);
    format!("output in the index: {what}")
}

/// Damages the node's output file.
fn alter_file(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let e = &entries.stored[node];
    let file = store::output_file(&entries.data, e);
    let what = match rng.below(6) {
        0 => {
            remove(&file);
            "missing".to_owned()
        }
        1 => {
            remove(&file);
            fs::create_dir_all(file.join("inner")).unwrap();
            "replaced by a directory".to_owned()
        }
        2 => {
            let other = if node == "xs" { "sq" } else { "xs" };
            let _ = fs::write(&file, &entries.outputs[other]);
            format!("the output of `{other}`")
        }
        _ => {
            let (bytes, what) = mangle(rng, fs::read(&file).unwrap_or_default());
            let _ = fs::write(&file, bytes);
            what
        }
    };
    format!("output file: {what}")
}

/// Removes the node's work directory, or its entry's directory.
fn remove_work(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let dir = store::entry_dir(&entries.data, &entries.stored[node]);
    match rng.below(3) {
        0 => {
            remove(&dir.join("work"));
            "work directory removed".into()
        }
        1 => {
            remove(&dir);
            "entry directory removed".into()
        }
        _ => {
            remove(&dir);
            fs::write(&dir, b"not a directory").unwrap();
            "entry directory replaced by a file".into()
        }
    }
}

/// Gives the node an output that does not decode, recorded with its size, its digest and a
/// row checksum that match: only decoding can tell.
fn forge(rng: &mut Rng, entries: &Entries, node: &'static str) -> String {
    let (mut bytes, what) = loop {
        let (bytes, what) = mangle(rng, entries.outputs[node].clone());
        if !what.starts_with("bytes flipped") {
            break (bytes, what);
        }
    };
    // Bytes that still decode, recorded whole, are a forged entry that no store can tell
    // from a real one; one byte more makes them undecodable.
    let what = if decodes(node, &bytes) {
        bytes.push(0);
        format!("{what}, then one byte more")
    } else {
        what
    };
    assert!(!decodes(node, &bytes), "{what}");
    store::forge_output(&entries.data, &entries.stored[node].key, &bytes);
    format!("output {what}, with its size, digest and checksum recorded")
}

/// Whether `bytes` decode as the output of `node`.
fn decodes(node: &str, bytes: &[u8]) -> bool {
    use pipewright::codec::{Bincode, Codec};
    match node {
        "text" => Bincode::decode::<String>(bytes).is_ok(),
        "sum" => Bincode::decode::<u64>(bytes).is_ok(),
        _ => Bincode::decode::<Vec<u64>>(bytes).is_ok(),
    }
}

/// What a writer killed while it wrote the entry of `node` leaves behind: no row, and its
/// temporaries, named as a writer of this host (`host_tag`) names them, with the id of a
/// process that is gone: the output file half written, the work directory, or what it had
/// moved into place already; and maybe what a killed remover had set aside.
fn killed_write(rng: &mut Rng, entries: &Entries, host_tag: &str, node: &'static str) -> String {
    let e = &entries.stored[node];
    let data = &entries.data;
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let pid = gone.id();
    let task_dir = data.join(&e.task);
    let temporary = |prefix: &str, stem: &str, n: usize| {
        task_dir.join(format!("{prefix}{stem}-{host_tag}-{pid}-{n}"))
    };
    store::delete_row(data, &e.key);
    let mut what = vec!["no row".to_owned()];
    if rng.chance(30) {
        store::execute(data, &format!("DELETE FROM nodes WHERE node = '{node}'"));
        what.push("no last entry".into());
    }
    let output = &entries.outputs[node];
    if !e.inline {
        let at = rng.below(output.len());
        let tmp = temporary(".tmp-", &e.key[..16], rng.below(100)).with_extension("bin");
        fs::write(&tmp, &output[..at]).unwrap();
        what.push(format!("{at} bytes of output in a temporary"));
        if rng.chance(50) {
            remove(&store::output_file(data, e));
        } else {
            what.push("the output file in place".into());
        }
    }
    if e.work {
        let tmp = temporary(".tmp-", &e.key[..16], rng.below(100));
        let part = rng.range(0, 4096);
        fs::create_dir_all(tmp.join("work")).unwrap();
        fs::write(tmp.join("work").join("part"), rng.bytes(part)).unwrap();
        what.push(format!("a temporary work directory of {part} bytes"));
        if rng.chance(50) {
            remove(&store::entry_dir(data, e));
        } else {
            what.push("the work directory in place".into());
        }
    }
    if rng.chance(50) {
        let trash = temporary(".trash-", &e.key, rng.below(100));
        fs::create_dir_all(trash.join("work")).unwrap();
        fs::write(trash.join("work").join("part"), b"set aside").unwrap();
        what.push("a removed entry set aside".into());
    }
    format!("killed while writing: {}", what.join(", "))
}

/// How a case runs the pipeline again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Force {
    Nothing,
    Node(usize),
    All,
}

/// Aborts the process with the current case if a case makes no progress for a minute.
struct Watchdog {
    done: Arc<AtomicBool>,
    cases: Arc<AtomicUsize>,
}

impl Watchdog {
    fn start(what: &'static str) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let cases = Arc::new(AtomicUsize::new(0));
        let (d, c) = (done.clone(), cases.clone());
        std::thread::spawn(move || {
            let mut last = (0, Instant::now());
            while !d.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                let now = c.load(Ordering::Acquire);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(60) {
                    eprintln!("{what}: case {now} hangs");
                    std::process::abort();
                }
            }
        });
        Watchdog { done, cases }
    }

    fn case(&self, n: usize) {
        self.cases.store(n, Ordering::Release);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

/// Runs the cases numbered `cases`, each damaging the store with `damage`, and fails with
/// every case that went wrong. A case depends on `seed` and its number only, so a range of
/// cases can be split between tests that run side by side.
fn suite(
    name: &'static str,
    seed: u64,
    cases: std::ops::Range<usize>,
    targets: &[&'static str],
    damage: &dyn Fn(&mut Rng, &Entries, &'static str) -> String,
) {
    // A run record asks git about the working directory; outside a work tree that is
    // one quick question instead of two.
    let _ = std::env::set_current_dir(std::env::temp_dir());
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let logs = sandbox.path().join("logs");
    let Built { p, xs, sq, cu, sum } = build(name);

    // The undamaged run, recorded apart, and the template of its store.
    let first = Runner::new(&data)
        .log_dir(sandbox.path().join("first"))
        .keep(xs)
        .keep(sq)
        .keep(cu)
        .keep(sum)
        .run(&p)
        .unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 5);
    take_runs(p.name());
    let expected = expected();
    for node in NODES {
        assert_eq!(read(&first, node).as_ref(), Ok(&expected[node]), "{node}");
    }
    let first_dir = first.run_dir().unwrap().to_owned();
    let stored: BTreeMap<&str, Stored> = NODES
        .iter()
        .map(|n| {
            (
                *n,
                store::entry(&data, first.node(n).unwrap().key().unwrap()).unwrap(),
            )
        })
        .collect();
    let places: Vec<(bool, bool)> = NODES
        .iter()
        .map(|n| (stored[n].inline, stored[n].work))
        .collect();
    assert_eq!(
        places,
        [
            (false, false),
            (false, true),
            (true, true),
            (true, false),
            (true, false)
        ],
        "where each output is, and which entries have a work directory"
    );
    let entries = Entries {
        outputs: NODES
            .iter()
            .map(|n| (*n, store::output(&data, &stored[n])))
            .collect(),
        columns: NODES
            .iter()
            .flat_map(|n| {
                let key = &stored[n].key;
                ["digest", "stamp", "checksum"]
                    .map(|c| (((*n).to_owned(), c), store::column(&data, key, c)))
            })
            .collect(),
        stored,
        data: data.clone(),
    };
    drop(first);
    let tasks = entries.stored.values().map(|e| e.task.clone()).collect();
    let mut template = Template::take(&data, &tasks);

    // One runner per way of running again; each keeps its worker pool across cases.
    let mut runners: BTreeMap<(bool, Force), Runner> = BTreeMap::new();
    let runner = |keep_sq: bool, force: Force| {
        let mut r = Runner::new(&data).log_dir(&logs).jobs(3);
        if keep_sq {
            r = r.keep(sq);
        }
        match force {
            Force::Nothing => r,
            Force::Node(i) => r.force(NODES[i]),
            Force::All => r.force_all(),
        }
    };
    for keep_sq in [false, true] {
        for force in [Force::Nothing, Force::All]
            .into_iter()
            .chain((0..NODES.len()).map(Force::Node))
        {
            runners.insert((keep_sq, force), runner(keep_sq, force));
        }
    }
    let again: BTreeMap<bool, Runner> = [false, true]
        .into_iter()
        .map(|keep_sq| (keep_sq, runner(keep_sq, Force::Nothing).jobs(1)))
        .collect();
    let consumers: BTreeMap<&str, &[&str]> = [
        ("xs", &["sq", "cu", "text"][..]),
        ("sq", &["sum"][..]),
        ("cu", &["sum"][..]),
        ("sum", &["text"][..]),
        ("text", &[][..]),
    ]
    .into_iter()
    .collect();

    let watchdog = Watchdog::start(name);
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let count = cases.len();
    for case in cases {
        watchdog.case(case);
        let mut rng = Rng::new(seed ^ (case as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        template.restore();
        let _ = fs::remove_dir_all(&logs);

        // The damage.
        let mut damaged = BTreeSet::new();
        let mut what = String::new();
        let hits = if rng.chance(80) { 1 } else { 2 };
        for _ in 0..hits {
            let node = *rng.pick(targets);
            if !damaged.insert(node) {
                continue;
            }
            for _ in 0..*rng.pick(&[1, 1, 1, 2, 3]) {
                let done = damage(&mut rng, &entries, node);
                let _ = write!(what, "[{node}: {done}] ");
            }
        }

        // How the pipeline runs again: plain, or forcing a consumer of a damaged node (so
        // the damaged output must be read), another node, or every node.
        let keep_sq = rng.chance(50);
        let force = match rng.below(10) {
            0..=3 => Force::Nothing,
            4..=7 => {
                let node = *damaged.iter().next().unwrap();
                match consumers[node] {
                    [] => Force::Nothing,
                    list => {
                        let consumer = *rng.pick(list);
                        Force::Node(NODES.iter().position(|n| *n == consumer).unwrap())
                    }
                }
            }
            8 => Force::Node(rng.below(NODES.len())),
            _ => Force::All,
        };
        let runner = &runners[&(keep_sq, force)];
        let label = format!("case {case}: {what}(keep sq: {keep_sq}, force: {force:?})");

        let outcome = catch_unwind(AssertUnwindSafe(|| {
            check_case(
                &Case {
                    first_dir: &first_dir,
                    runner,
                    again: &again[&keep_sq],
                    p: &p,
                    expected: &expected,
                    damaged: &damaged,
                    keep_sq,
                    force,
                    data: &data,
                },
                case % 4 == 0,
            )
        }));
        let problem = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(problem)) => Some(problem),
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
        };
        if let Some(problem) = problem {
            failures.push(format!("{label}\n    {problem}"));
        }
    }
    drop(watchdog);
    eprintln!(
        "{name}: {count} cases in {:.1?}, {} failed",
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing cases (seed {seed:#x}), the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(12)].join("\n")
    );
}

/// One case, once its store is damaged.
struct Case<'a> {
    /// The undamaged run's record.
    first_dir: &'a Path,
    /// The runner that runs again.
    runner: &'a Runner,
    /// The same runner without forcing, on one thread.
    again: &'a Runner,
    p: &'a Pipeline,
    expected: &'a BTreeMap<&'static str, Val>,
    damaged: &'a BTreeSet<&'static str>,
    keep_sq: bool,
    force: Force,
    data: &'a Path,
}

/// Checks what `report` reads: the right value or an error (where `must`, the right value),
/// and the work directory of a node whose value it reads.
fn check_reads(
    case: &Case<'_>,
    report: &RunReport,
    must: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), String> {
    for node in NODES {
        match read(report, node) {
            Ok(value) if value != case.expected[node] => {
                return Err(format!("{what} reads {value:?} for `{node}`"));
            }
            Ok(_) => {
                let (Some(text), Some(key)) =
                    (work_text(node), report.node(node).and_then(|n| n.key()))
                else {
                    continue;
                };
                let task = report.node(node).unwrap().task();
                let part = case.data.join(task).join(key).join("work").join("part");
                if fs::read_to_string(&part).ok().as_deref() != Some(text) {
                    return Err(format!(
                        "{what} reads `{node}`, whose work directory is not whole"
                    ));
                }
            }
            Err(e) if must(node) => {
                return Err(format!(
                    "{what} cannot read `{node}` ({:?}): {e}",
                    report.status(node)
                ));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// One case, after the damage: reads the damaged store through the reopened first run,
/// runs again, and checks everything the suite promises; in a `thorough` case, reopens the
/// run and runs a third time.
fn check_case(case: &Case<'_>, thorough: bool) -> Result<(), String> {
    let p = case.p;
    // Read directly: the right value or an error.
    let reopened = RunReport::open(case.first_dir).map_err(|e| format!("reopen: {e}"))?;
    check_reads(case, &reopened, |_| false, "the reopened first run")?;
    drop(reopened);

    // Run again.
    take_runs(p.name());
    let run = case
        .runner
        .run(p)
        .map_err(|e| format!("the run failed: {e}"))?;
    let runs = take_runs(p.name());
    for node in run.nodes() {
        if !node.status().is_success() {
            return Err(format!(
                "`{}` ended {:?}: {:?}",
                node.name(),
                node.status(),
                node.error().map(ToString::to_string)
            ));
        }
    }
    for (node, times) in &runs {
        let forced = match case.force {
            Force::Nothing => false,
            Force::Node(i) => NODES[i] == node,
            Force::All => true,
        };
        if *times > 1 || !(forced || case.damaged.contains(node.as_str())) {
            let log =
                fs::read_to_string(run.run_dir().unwrap().join("run.log")).unwrap_or_default();
            return Err(format!("`{node}` ran {times} times; runs: {runs:?}\n{log}"));
        }
    }
    let keep_sq = case.keep_sq;
    check_reads(
        case,
        &run,
        |node| node == "text" || (node == "sq" && keep_sq),
        "the run",
    )?;
    let stray = stray_files(case.data.parent().unwrap());
    if !stray.is_empty() {
        return Err(format!("stray files: {stray:?}"));
    }
    if !thorough {
        return Ok(());
    }

    // In every fourth case: the run reopened reads the same, and the same run again,
    // without forcing, finds everything repaired and runs nothing.
    let reopened = RunReport::open(run.run_dir().unwrap()).map_err(|e| format!("reopen: {e}"))?;
    check_reads(case, &reopened, |_| false, "the reopened run")?;
    drop((run, reopened));
    let run = case
        .again
        .run(p)
        .map_err(|e| format!("the third run failed: {e}"))?;
    let runs = take_runs(p.name());
    if !runs.is_empty() || run.count(NodeStatus::Cached) != NODES.len() {
        return Err(format!("the third run ran {runs:?}"));
    }
    check_reads(
        case,
        &run,
        |node| node == "text" || (node == "sq" && keep_sq),
        "the third run",
    )?;
    let stray = stray_files(case.data.parent().unwrap());
    if !stray.is_empty() {
        return Err(format!("stray files: {stray:?}"));
    }
    Ok(())
}

#[test]
fn damaged_entries_are_recomputed_or_refused_never_wrong() {
    suite("damage suite", SEED, 0..CASES / 2, &NODES, &damage);
}

/// The other half of the cases, on a second thread beside the first.
#[test]
fn damaged_entries_are_recomputed_or_refused_never_wrong_second_half() {
    suite(
        "damage suite, second half",
        SEED,
        CASES / 2..CASES,
        &NODES,
        &damage,
    );
}

/// Damage that keeps an output and its row consistent (size, digest and checksum), so that
/// only decoding can tell: a kept output must still be recomputed, never served.
#[test]
fn undecodable_entries_with_a_matching_row_are_recomputed() {
    suite(
        "forged suite",
        SEED.rotate_left(17),
        0..FORGED_CASES,
        &PREFIXED,
        &forge,
    );
}

/// Writes killed half way: the next run of the key computes the entry again and removes
/// what the killed writer left.
#[cfg(target_os = "linux")]
#[test]
fn killed_writes_are_redone_and_leave_nothing_behind() {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_tag = blake3::hash(host.trim().as_bytes()).to_hex()[..8].to_owned();
    suite(
        "killed suite",
        SEED.rotate_left(29),
        0..KILLED_CASES,
        &NODES,
        &|rng, entries, node| killed_write(rng, entries, &host_tag, node),
    );
}

/// Entries replaced while another runner reads them: one runner forces every node again
/// and again (each run replaces every entry with an equal one: rows, output files and work
/// directories), while another runs the pipeline and reads every output, through its
/// report and reopened from its record. The reader never runs a node and always reads the
/// right values.
#[test]
fn entries_replaced_while_they_are_read_are_never_damaged() {
    let _ = std::env::set_current_dir(std::env::temp_dir());
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let Built { p, xs, sq, cu, sum } = build("replaced while read");
    let first = Runner::new(&data).run(&p).unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 5);
    drop(first);
    let expected = expected();

    let forcer = Runner::new(&data)
        .log_dir(sandbox.path().join("forced"))
        .jobs(2)
        .force_all();
    let reader = Runner::new(&data)
        .log_dir(sandbox.path().join("read"))
        .jobs(2)
        .keep(xs)
        .keep(sq)
        .keep(cu)
        .keep(sum);
    let forced_done = AtomicBool::new(false);
    let problems = std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..REPLACING_RUNS {
                let run = forcer.run(&p).unwrap();
                assert_eq!(run.count(NodeStatus::Ran), 5, "{run}");
            }
            forced_done.store(true, Ordering::Release);
        });
        let mut problems = Vec::new();
        let mut reads = 0;
        while reads < REPLACING_RUNS || !forced_done.load(Ordering::Acquire) {
            reads += 1;
            let run = match reader.run(&p) {
                Ok(run) => run,
                Err(e) => {
                    problems.push(format!("run: {e}"));
                    continue;
                }
            };
            if run.count(NodeStatus::Cached) != NODES.len() {
                problems.push(format!("the reader's run: {run}"));
            }
            let reopened = RunReport::open(run.run_dir().unwrap()).unwrap();
            for report in [&run, &reopened] {
                for node in NODES {
                    match read(report, node) {
                        Ok(value) if value == expected[node] => {}
                        other => problems.push(format!("`{node}` reads {other:?}")),
                    }
                }
            }
        }
        problems
    });
    assert!(
        problems.is_empty(),
        "{} problems, the first ones: {:#?}",
        problems.len(),
        &problems[..problems.len().min(12)]
    );
    assert_eq!(stray_files(&data), Vec::<PathBuf>::new());
}
