//! A randomized damage suite over real store entries, with a fixed seed.
//!
//! One small pipeline is run once to fill a data directory; its files are kept in memory as
//! a template. Each case restores the template, damages one or two entries at random
//! (truncated, altered, extended or missing files, junk or edited `meta.json`, huge length
//! prefixes, files replaced by directories, and mixes of these), reads the damaged store
//! through a reopened report, and runs the pipeline again. Whatever the damage:
//!
//! - nothing panics and the run returns `Ok` with every node a success;
//! - every value read is the value of the undamaged run, never another one: an output the
//!   run keeps (a sink, a kept node) must be readable, any other may be an `Err`;
//! - no node runs more than once, and only damaged or forced nodes run at all;
//! - a third run finds everything repaired and runs nothing;
//! - no temporary or trash file is left behind.
//!
//! A failing case prints its number and its damage; the seed makes it reproducible.
//!
//! Two more scenarios: writes killed half way (the entry missing, the writer's temporary
//! left), which the next run must clean up; and entries replaced by forced runs while
//! another runner reads them, which must never look damaged.

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
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use support::{count, take_runs};

const SEED: u64 = 0x5eed_da3a_9e5f_0001;
const CASES: usize = 3000;
const REHASHED_CASES: usize = 400;
const KILLED_CASES: usize = 300;
/// How many times the replacing runner forces every node while another reads them.
const REPLACING_RUNS: usize = 150;

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

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }
}

#[task]
fn numbers(n: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    (1..=n).collect()
}

#[task]
fn squares(xs: &Vec<u64>, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    xs.iter().map(|x| x * x).collect()
}

#[task]
fn cubes(xs: &Vec<u64>, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    xs.iter().map(|x| x * x * x).collect()
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

/// Bytes that encode as themselves: bincode writes a tuple of `u8` with no length prefix,
/// so the output digest of a node returning `Raw(bytes)` is the blake3 digest of `bytes`.
#[derive(Debug, Clone)]
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(Raw)
    }
}

#[task(cache = false)]
fn raw(bytes: Vec<u8>) -> Raw {
    Raw(bytes)
}

/// The blake3 digest of `bytes` in hex, as the store records it, computed by the store.
struct Digester {
    runner: Runner,
    dir: PathBuf,
}

impl Digester {
    fn new(dir: PathBuf) -> Self {
        Digester {
            runner: Runner::new(dir.join("data"))
                .log_dir(dir.join("logs"))
                .jobs(1),
            dir,
        }
    }

    fn digest(&self, bytes: &[u8]) -> String {
        let mut b = Pipeline::builder("digest");
        b.add("raw", raw::node(bytes.to_vec())).unwrap();
        let p = b.build();
        let run = self.runner.run(&p).unwrap();
        let digest = run.node("raw").unwrap().output_digest().unwrap().to_owned();
        let _ = fs::remove_dir_all(self.dir.join("logs"));
        digest
    }
}

/// The node names, in the pipeline's order, and the type each one's output has.
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

/// The undamaged store's files, to put back before each case.
struct Template {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Template {
    /// Takes the files of the entries in `dirs` (each holds `output.bin` and `meta.json`).
    fn take<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Self {
        let mut files = Vec::new();
        for dir in dirs {
            for name in ["output.bin", "meta.json"] {
                let path = dir.join(name);
                let bytes = fs::read(&path).unwrap();
                files.push((path, bytes));
            }
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|item| item.unwrap().file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["meta.json", "output.bin"], "{}", dir.display());
        }
        Template { files }
    }

    /// Puts every entry back as it was, rewriting only what differs, and removes every
    /// other entry of the entries' tasks.
    fn restore(&self) {
        let mut dirs = BTreeSet::new();
        for (path, bytes) in &self.files {
            let dir = path.parent().unwrap();
            dirs.insert(dir.to_owned());
            if fs::read(path).is_ok_and(|now| now == *bytes) {
                continue;
            }
            if dir.is_file() {
                fs::remove_file(dir).unwrap();
            }
            if path.is_dir() {
                fs::remove_dir_all(path).unwrap();
            }
            fs::create_dir_all(dir).unwrap();
            fs::write(path, bytes).unwrap();
        }
        for task in dirs
            .iter()
            .map(|d| d.parent().unwrap())
            .collect::<BTreeSet<_>>()
        {
            for item in fs::read_dir(task).unwrap() {
                let path = item.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy();
                // Leftovers a failed case reported are cleared too.
                let leftover = name.starts_with(".trash-") || name.starts_with(".tmp-");
                if (name.starts_with('.') && !leftover) || dirs.contains(&path) {
                    continue;
                }
                if path.is_dir() {
                    fs::remove_dir_all(&path).unwrap();
                } else {
                    fs::remove_file(&path).unwrap();
                }
            }
        }
        for dir in &dirs {
            for item in fs::read_dir(dir).unwrap() {
                let path = item.unwrap().path();
                if !self.files.iter().any(|(p, _)| *p == path) {
                    if path.is_dir() {
                        fs::remove_dir_all(&path).unwrap();
                    } else {
                        fs::remove_file(&path).unwrap();
                    }
                }
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
            if name.starts_with(".tmp-")
                || name.starts_with(".trash-")
                || name.starts_with(".probe-")
            {
                found.push(path.clone());
            }
            if item.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// The facts about the undamaged store a damage may use.
struct Entries {
    /// Each node's entry directory.
    dirs: BTreeMap<&'static str, PathBuf>,
    /// Each node's key.
    keys: BTreeMap<&'static str, String>,
    /// Each node's output digest.
    digests: BTreeMap<&'static str, String>,
}

/// The entry's `meta.json`, if it is a JSON object.
fn read_meta(entry: &Path) -> Option<serde_json::Value> {
    let bytes = fs::read(entry.join("meta.json")).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(serde_json::Value::is_object)
}

fn write_meta(entry: &Path, meta: &serde_json::Value) {
    let _ = fs::write(
        entry.join("meta.json"),
        serde_json::to_vec_pretty(meta).unwrap(),
    );
}

/// Applies one random damage to the entry of `node`; says what it did.
fn damage(rng: &mut Rng, entries: &Entries, node: &str) -> String {
    let entry = &entries.dirs[node];
    let output = entry.join("output.bin");
    let meta_path = entry.join("meta.json");
    match rng.below(14) {
        0 => {
            let Ok(bytes) = fs::read(&output) else {
                return "truncate: no output.bin".into();
            };
            let at = rng.below(bytes.len().max(1));
            let _ = fs::write(&output, &bytes[..at]);
            format!("truncate output.bin to {at} of {} bytes", bytes.len())
        }
        1 => {
            let Ok(mut bytes) = fs::read(&output) else {
                return "flip: no output.bin".into();
            };
            if bytes.is_empty() {
                return "flip: empty output.bin".into();
            }
            let mut flipped = Vec::new();
            for _ in 0..rng.range(1, 4) {
                let at = rng.below(bytes.len());
                let mask = rng.range(1, 255) as u8;
                bytes[at] ^= mask;
                flipped.push((at, mask));
            }
            let _ = fs::write(&output, &bytes);
            format!("flip bytes of output.bin (offset, mask): {flipped:?}")
        }
        2 => {
            let n = rng.range(1, 16);
            let extra = rng.bytes(n);
            let Ok(mut bytes) = fs::read(&output) else {
                return "append: no output.bin".into();
            };
            bytes.extend_from_slice(&extra);
            let _ = fs::write(&output, &bytes);
            format!("append {} bytes to output.bin", extra.len())
        }
        3 => {
            let _ = fs::remove_file(&output);
            "delete output.bin".into()
        }
        4 => {
            let _ = fs::remove_file(&meta_path);
            "delete meta.json".into()
        }
        5 => {
            let n = rng.below(64);
            let junk = if rng.chance(50) {
                rng.bytes(n)
            } else {
                rng.hex(n).into_bytes()
            };
            let _ = fs::write(&meta_path, &junk);
            format!("meta.json replaced by {} bytes of junk", junk.len())
        }
        6 => {
            let mut shapes: Vec<String> = [
                "null",
                "[]",
                "{}",
                "42",
                "\"meta\"",
                "true",
                "{\"format\": 1}",
                "[{\"format\": 1}]",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if let Some(meta) = read_meta(entry) {
                shapes.push(serde_json::json!([meta]).to_string());
                shapes.push(serde_json::json!({ "meta": meta }).to_string());
                for field in ["output_size", "output_digest", "key", "task", "format"] {
                    let mut without = meta.clone();
                    without.as_object_mut().unwrap().remove(field);
                    shapes.push(without.to_string());
                    let mut mistyped = meta.clone();
                    mistyped[field] = serde_json::json!([1, 2]);
                    shapes.push(mistyped.to_string());
                }
            }
            let shape = rng.pick(&shapes).clone();
            let _ = fs::write(&meta_path, &shape);
            format!("meta.json replaced by JSON of the wrong shape: {shape:.80}")
        }
        7 => edit_meta(rng, entries, node),
        8 => {
            let prefix = *rng.pick(&[1u64 << 62, u64::MAX, 1 << 40, 1 << 35, (1 << 34) + 1]);
            let Ok(mut bytes) = fs::read(&output) else {
                return "huge prefix: no output.bin".into();
            };
            if bytes.len() < 8 {
                bytes.resize(8, 0);
            }
            bytes[..8].copy_from_slice(&prefix.to_le_bytes());
            let _ = fs::write(&output, &bytes);
            let fix = rng.chance(50);
            if fix && let Some(mut meta) = read_meta(entry) {
                meta["output_size"] = serde_json::json!(bytes.len());
                write_meta(entry, &meta);
            }
            format!("length prefix {prefix} in output.bin (recorded size fixed: {fix})")
        }
        9 => {
            let _ = fs::remove_file(&output);
            let _ = fs::create_dir_all(output.join("inner"));
            "output.bin replaced by a directory".into()
        }
        10 => {
            let _ = fs::remove_file(&meta_path);
            let _ = fs::create_dir_all(&meta_path);
            "meta.json replaced by a directory".into()
        }
        11 => {
            if entry.is_dir() {
                let _ = fs::remove_dir_all(entry);
                let _ = fs::write(entry, b"not an entry");
            }
            "entry directory replaced by a file".into()
        }
        12 => {
            let Ok(bytes) = fs::read(&meta_path) else {
                return "truncate meta: no meta.json".into();
            };
            let at = rng.below(bytes.len().max(1));
            let _ = fs::write(&meta_path, &bytes[..at]);
            format!("truncate meta.json to {at} of {} bytes", bytes.len())
        }
        _ => {
            let _ = fs::remove_file(&output);
            let _ = fs::remove_file(&meta_path);
            "empty entry directory".into()
        }
    }
}

/// Changes one field of the entry's `meta.json` to a wrong value.
fn edit_meta(rng: &mut Rng, entries: &Entries, node: &str) -> String {
    let entry = &entries.dirs[node];
    let Some(mut meta) = read_meta(entry) else {
        return "edit meta.json: it is not a JSON object".into();
    };
    let other = *rng.pick(&NODES);
    let size = meta["output_size"].as_u64().unwrap_or(0);
    let digest = meta["output_digest"].as_str().unwrap_or("").to_owned();
    let random = rng.next() % 4096;
    let (field, value) = match rng.below(5) {
        0 => (
            "output_size",
            serde_json::json!(*rng.pick(&[
                0,
                size.wrapping_add(1),
                size.saturating_sub(1),
                size * 2 + 8,
                u64::MAX,
                random,
            ])),
        ),
        1 => (
            "output_digest",
            serde_json::json!(match rng.below(6) {
                0 => rng.hex(64),
                1 => rng.hex(63),
                2 => String::new(),
                3 => digest.to_uppercase(),
                4 => format!("{}zz", &digest[..62.min(digest.len())]),
                _ => entries.digests[other].clone(),
            }),
        ),
        2 => (
            "key",
            serde_json::json!(match rng.below(4) {
                0 => rng.hex(64),
                1 => String::new(),
                2 => "../../../escape".to_owned(),
                _ => entries.keys[other].clone(),
            }),
        ),
        3 => (
            "format",
            match rng.below(5) {
                0 => serde_json::json!(0),
                1 => serde_json::json!(2),
                2 => serde_json::json!(u64::from(u32::MAX) + 1),
                3 => serde_json::json!(-1),
                _ => serde_json::json!("1"),
            },
        ),
        _ => (
            "task",
            serde_json::json!(*rng.pick(&["", "other", "../squares", "squares ", "Squares"])),
        ),
    };
    meta[field] = value.clone();
    write_meta(entry, &meta);
    format!("meta.json field {field} set to {value}")
}

/// Applies a damage the store's digest cannot see: the output is made undecodable, and
/// `meta.json` records its new size and digest.
fn damage_consistently(
    rng: &mut Rng,
    entries: &Entries,
    digester: &Digester,
    node: &str,
) -> String {
    let entry = &entries.dirs[node];
    let output = entry.join("output.bin");
    let mut bytes = fs::read(&output).unwrap();
    let mut meta = read_meta(entry).unwrap();
    let what = match rng.below(3) {
        0 => {
            let at = rng.below(bytes.len());
            bytes.truncate(at);
            format!("truncate output.bin to {at} bytes")
        }
        1 => {
            let extra = rng.range(1, 16);
            bytes.extend(rng.bytes(extra));
            format!("append {extra} bytes to output.bin")
        }
        _ => {
            let prefix = *rng.pick(&[1u64 << 62, u64::MAX, (1 << 34) + 1, 1 << 40]);
            if bytes.len() < 8 {
                bytes.resize(8, 0);
            }
            bytes[..8].copy_from_slice(&prefix.to_le_bytes());
            format!("length prefix {prefix} in output.bin")
        }
    };
    // Bytes that still decode, with their digest recorded, are a forged entry that no store
    // can tell from a real one; one byte more makes them undecodable.
    let what = if decodes(node, &bytes) {
        bytes.push(0);
        format!("{what}, then one byte more")
    } else {
        what
    };
    fs::write(&output, &bytes).unwrap();
    meta["output_size"] = serde_json::json!(bytes.len());
    meta["output_digest"] = serde_json::json!(digester.digest(&bytes));
    write_meta(entry, &meta);
    format!("{what}, with its size and digest recorded")
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

/// What a writer killed while it wrote the entry of `node` leaves behind: no entry, and its
/// temporary directory, half written, named as a writer of this host (`host_tag`) names it,
/// with the id of a process that is gone.
fn killed_write(rng: &mut Rng, entries: &Entries, host_tag: &str, node: &str) -> String {
    let entry = &entries.dirs[node];
    let key = &entries.keys[node];
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let name = format!(
        ".tmp-{}-{host_tag}-{}-{}",
        &key[..16],
        gone.id(),
        rng.below(100)
    );
    let tmp = entry.with_file_name(&name);
    let output = fs::read(entry.join("output.bin")).unwrap_or_default();
    let at = rng.below(output.len().max(1));
    let work = rng.range(0, 4096);
    let work = rng.bytes(work);
    fs::create_dir_all(tmp.join("work")).unwrap();
    fs::write(tmp.join("work").join("part"), &work).unwrap();
    fs::write(tmp.join("output.bin"), &output[..at]).unwrap();
    if entry.is_dir() {
        fs::remove_dir_all(entry).unwrap();
    } else {
        let _ = fs::remove_file(entry);
    }
    format!(
        "killed while writing: no entry, {name} with {at} bytes of output.bin and {} of work",
        work.len()
    )
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

/// Runs `cases` cases, each damaging the store with `damage`, and fails with every case
/// that went wrong.
fn suite(
    name: &'static str,
    seed: u64,
    cases: usize,
    targets: &[&'static str],
    damage: &dyn Fn(&mut Rng, &Entries, &'static str) -> String,
) {
    // A run record asks git about the working directory; outside a work tree that is
    // one quick question instead of two.
    let _ = std::env::set_current_dir(std::env::temp_dir());
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let logs = sandbox.path().join("logs");
    // Each suite has its own pipeline name, so that their run counts stay apart.
    let mut b = Pipeline::builder(name);
    let xs = b.add("xs", numbers::node(12)).unwrap();
    let sq = b.add("sq", squares::node(xs)).unwrap();
    let cu = b.add("cu", cubes::node(xs)).unwrap();
    let sum = b.add("sum", total::node(vec![sq, cu])).unwrap();
    b.add("text", describe::node(sum, xs)).unwrap();
    let p = b.build();

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
    let expected: BTreeMap<&str, Val> = NODES
        .iter()
        .map(|n| (*n, read(&first, n).unwrap()))
        .collect();
    assert_eq!(expected["sum"], Val::Num(6084 + 650));
    let first_dir = first.run_dir().unwrap().to_owned();
    let entries = Entries {
        dirs: NODES
            .iter()
            .map(|n| {
                let node = first.node(n).unwrap();
                (*n, data.join(node.task()).join(node.key().unwrap()))
            })
            .collect(),
        keys: NODES
            .iter()
            .map(|n| (*n, first.node(n).unwrap().key().unwrap().to_owned()))
            .collect(),
        digests: NODES
            .iter()
            .map(|n| {
                (
                    *n,
                    first.node(n).unwrap().output_digest().unwrap().to_owned(),
                )
            })
            .collect(),
    };
    drop(first);
    let template = Template::take(entries.dirs.values());

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
    for case in 0..cases {
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
            damaged.insert(node);
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
                &first_dir,
                runner,
                &again[&keep_sq],
                &p,
                &expected,
                &damaged,
                keep_sq,
                force,
                &data,
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
        "{name}: {cases} cases in {:.1?}, {} failed",
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

/// One case, after the damage: reads the damaged store through the reopened first run,
/// runs again, and checks everything the suite promises.
#[allow(clippy::too_many_arguments)]
fn check_case(
    first_dir: &Path,
    runner: &Runner,
    again: &Runner,
    p: &Pipeline,
    expected: &BTreeMap<&str, Val>,
    damaged: &BTreeSet<&str>,
    keep_sq: bool,
    force: Force,
    data: &Path,
    thorough: bool,
) -> Result<(), String> {
    // Read directly: the right value or an error.
    let reopened = RunReport::open(first_dir).map_err(|e| format!("reopen: {e}"))?;
    for node in NODES {
        if let Ok(value) = read(&reopened, node)
            && value != expected[node]
        {
            return Err(format!(
                "the reopened first run reads {value:?} for `{node}`"
            ));
        }
    }
    drop(reopened);

    // Run again.
    take_runs(p.name());
    let run = runner.run(p).map_err(|e| format!("the run failed: {e}"))?;
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
        let forced = match force {
            Force::Nothing => false,
            Force::Node(i) => NODES[i] == node,
            Force::All => true,
        };
        if *times > 1 || !(forced || damaged.contains(node.as_str())) {
            let log =
                fs::read_to_string(run.run_dir().unwrap().join("run.log")).unwrap_or_default();
            return Err(format!("`{node}` ran {times} times; runs: {runs:?}\n{log}"));
        }
    }
    for node in NODES {
        let must = node == "text" || (node == "sq" && keep_sq);
        match read(&run, node) {
            Ok(value) if value != expected[node] => {
                return Err(format!("the run reads {value:?} for `{node}`"));
            }
            Err(e) if must => {
                return Err(format!(
                    "the run cannot read `{node}` ({:?}): {e}",
                    run.status(node)
                ));
            }
            _ => {}
        }
    }
    let stray = stray_files(data.parent().unwrap());
    if !stray.is_empty() {
        return Err(format!("stray files: {stray:?}"));
    }
    if !thorough {
        return Ok(());
    }

    // In every fourth case: the run reopened reads the same, and the same run again,
    // without forcing, finds everything repaired and runs nothing.
    let reopened = RunReport::open(run.run_dir().unwrap()).map_err(|e| format!("reopen: {e}"))?;
    for node in NODES {
        if let Ok(value) = read(&reopened, node)
            && value != expected[node]
        {
            return Err(format!("the reopened run reads {value:?} for `{node}`"));
        }
    }
    drop((run, reopened));
    let run = again
        .run(p)
        .map_err(|e| format!("the third run failed: {e}"))?;
    let runs = take_runs(p.name());
    if !runs.is_empty() || run.count(NodeStatus::Cached) != NODES.len() {
        return Err(format!("the third run ran {runs:?}"));
    }

    let stray = stray_files(data.parent().unwrap());
    if !stray.is_empty() {
        return Err(format!("stray files: {stray:?}"));
    }
    Ok(())
}

#[test]
fn damaged_entries_are_recomputed_or_refused_never_wrong() {
    suite("damage suite", SEED, CASES, &NODES, &damage);
}

/// Writes killed half way: the next run of the key computes the entry again and removes
/// what the killed writer left.
#[cfg(target_os = "linux")]
#[test]
fn killed_writes_are_redone_and_leave_nothing_behind() {
    let scratch = tempfile::tempdir().unwrap();
    let digester = Digester::new(scratch.path().to_owned());
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_tag = digester.digest(host.trim().as_bytes())[..8].to_owned();
    suite(
        "killed suite",
        SEED.rotate_left(29),
        KILLED_CASES,
        &NODES,
        &|rng, entries, node| killed_write(rng, entries, &host_tag, node),
    );
}

/// Entries replaced while another runner reads them: one runner forces every node again
/// and again (each run replaces every entry with an equal one), while another runs the
/// pipeline and reads every output, through its report and reopened from its record. The
/// reader never runs a node and always reads the right values.
#[test]
fn entries_replaced_while_they_are_read_are_never_damaged() {
    let _ = std::env::set_current_dir(std::env::temp_dir());
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let mut b = Pipeline::builder("replaced while read");
    let xs = b.add("xs", numbers::node(12)).unwrap();
    let sq = b.add("sq", squares::node(xs)).unwrap();
    let cu = b.add("cu", cubes::node(xs)).unwrap();
    let sum = b.add("sum", total::node(vec![sq, cu])).unwrap();
    b.add("text", describe::node(sum, xs)).unwrap();
    let p = b.build();
    let first = Runner::new(&data).run(&p).unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 5);
    drop(first);
    let expected: BTreeMap<&str, Val> = [
        ("xs", Val::List((1..=12).collect())),
        ("sq", Val::List((1..=12).map(|x| x * x).collect())),
        ("cu", Val::List((1..=12).map(|x| x * x * x).collect())),
        ("sum", Val::Num(6084 + 650)),
        (
            "text",
            Val::Text("12 numbers, squared and cubed, add up to 6734".to_owned()),
        ),
    ]
    .into();

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

/// Damage that keeps `output.bin` and its recorded size and digest consistent, so that
/// only decoding can tell: a kept output must still be recomputed, never served.
#[test]
fn undecodable_entries_with_a_matching_digest_are_recomputed() {
    let scratch = tempfile::tempdir().unwrap();
    let digester = Digester::new(scratch.path().to_owned());
    let bytes = b"abc";
    assert_eq!(
        digester.digest(bytes),
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        "the digest oracle"
    );
    suite(
        "undecodable suite",
        SEED.rotate_left(17),
        REHASHED_CASES,
        &PREFIXED,
        &|rng, entries, node| damage_consistently(rng, entries, &digester, node),
    );
}
