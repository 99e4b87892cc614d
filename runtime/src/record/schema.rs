//! What `run.json` holds, and reading it back; and the journal a run appends to while it
//! goes on, which stands for `run.json` until the run writes it at its end.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{StoreError, write_json_atomically};
use crate::error::Error;

/// The layout of `run.json` and of the journal.
///
/// Format 2 writes `run.json` compact, leaves out what is absent (a field that is `null`,
/// `false` or empty), and leaves out each node's `parents` and `cached`, which are read back
/// from its inputs and its status.
pub const RECORD_FORMAT: u32 = 2;

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The layout version of this file.
    pub format: u32,
    /// The pipeline's name.
    pub pipeline: String,
    /// `running` while the run goes on, then `succeeded`, `failed` or `cancelled`; or
    /// `interrupted`, written by garbage collection when the run's process is gone (see
    /// [`interrupted`](Self::interrupted)).
    pub status: String,
    /// When the run started (RFC 3339, UTC, to the microsecond).
    pub started: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Its wall time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_secs: Option<f64>,
    /// The data directory it used.
    pub data_dir: PathBuf,
    /// How many workers it had.
    pub jobs: usize,
    /// Every node, in the pipeline's order.
    pub nodes: Vec<NodeRecord>,
    /// Where and with what it ran.
    pub provenance: Provenance,
    /// The id of the process that ran it, on the host of its provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The parameters the program was started with (a pipeline binary's command-line
    /// parameters, by field name), if it declares any. Absent from older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

/// One node of a [`RunRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredNode")]
#[non_exhaustive]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// Its task's name.
    pub task: String,
    /// Its parameters, as JSON, for people (JSON cannot hold every value).
    pub params: serde_json::Value,
    /// Its parameters encoded with the default codec, in hex: what the node's task is
    /// rebuilt from. Absent from the journal of a run that has not finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoded_params: Option<String>,
    /// The nodes wired to each input argument, in argument order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputRecord>,
    /// Its distinct parents, in the order its inputs first name them. Not stored: read back
    /// from the inputs.
    #[serde(skip_serializing)]
    pub parents: Vec<String>,
    /// `pending` while the run goes on, then how the node ended.
    pub status: RecordedStatus,
    /// Whether its output came from the store. Not stored: read back from the status.
    #[serde(skip_serializing)]
    pub cached: bool,
    /// Its node key, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The content digest of its output, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<String>,
    /// Why it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it started, in seconds from the start of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_secs: Option<f64>,
    /// How long it ran, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// The worker that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    /// Why it failed: the error and its sources, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// The failed upstream node it waited on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_failed: Option<String>,
    /// For a mapped node, the node it goes over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over: Option<String>,
    /// The branches of a mapped node, in the order of the list it went over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<BranchRecord>,
    /// Whether it ran but its entry is not recorded as committed to the store: only in the
    /// record of a run that has not ended, or never did (killed), read from its journal,
    /// for a node whose entry was to be committed after it settled. The store may not hold
    /// its output.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uncommitted: bool,
}

/// One branch of a mapped node in a [`NodeRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BranchRecord {
    /// The branch's name: its mapped node's, then its position in the list (`counts[3]`).
    pub name: String,
    /// The first 12 hex digits of its element's content digest, which its key holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// How it ended.
    pub status: RecordedStatus,
    /// Its node key, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The content digest of its output, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<String>,
    /// Why it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it started, in seconds from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_secs: Option<f64>,
    /// How long it ran, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// The worker that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    /// Why it failed: the error and its sources, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// The failed node or branch it waited on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_failed: Option<String>,
}

/// A [`NodeRecord`] as `run.json` stores it: without what is read back from the rest.
#[derive(Deserialize)]
struct StoredNode {
    name: String,
    task: String,
    params: serde_json::Value,
    #[serde(default)]
    encoded_params: Option<String>,
    #[serde(default)]
    inputs: Vec<InputRecord>,
    status: RecordedStatus,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    output_digest: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    started_secs: Option<f64>,
    #[serde(default)]
    duration_secs: Option<f64>,
    #[serde(default)]
    worker: Option<usize>,
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    upstream_failed: Option<String>,
    #[serde(default)]
    over: Option<String>,
    #[serde(default)]
    branches: Vec<BranchRecord>,
    #[serde(default)]
    uncommitted: bool,
}

impl From<StoredNode> for NodeRecord {
    fn from(node: StoredNode) -> Self {
        let mut seen = std::collections::HashSet::new();
        let parents: Vec<String> = node
            .inputs
            .iter()
            .flat_map(|input| &input.nodes)
            .filter(|name| seen.insert(name.as_str()))
            .cloned()
            .collect();
        NodeRecord {
            name: node.name,
            task: node.task,
            params: node.params,
            encoded_params: node.encoded_params,
            inputs: node.inputs,
            parents,
            cached: node.status == RecordedStatus::Cached,
            status: node.status,
            key: node.key,
            output_digest: node.output_digest,
            reason: node.reason,
            started_secs: node.started_secs,
            duration_secs: node.duration_secs,
            worker: node.worker,
            error: node.error,
            upstream_failed: node.upstream_failed,
            over: node.over,
            branches: node.branches,
            uncommitted: node.uncommitted,
        }
    }
}

/// The status of a node in `run.json`, stored by the name each variant gives. Reading a
/// name that is not one of these is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecordedStatus {
    /// The run has not settled the node yet (`pending`).
    #[serde(rename = "pending")]
    Pending,
    /// The task ran (`ran`).
    #[serde(rename = "ran")]
    Ran,
    /// The output came from the store (`cached`).
    #[serde(rename = "cached")]
    Cached,
    /// The task failed (`failed`).
    #[serde(rename = "failed")]
    Failed,
    /// A node it depends on failed (`upstream failed`).
    #[serde(rename = "upstream failed")]
    UpstreamFailed,
    /// The targets of the run did not need it (`not needed`).
    #[serde(rename = "not needed")]
    NotNeeded,
    /// The run stopped before it started (`cancelled`).
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl RecordedStatus {
    /// The name it is stored by.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedStatus::Pending => "pending",
            RecordedStatus::Ran => "ran",
            RecordedStatus::Cached => "cached",
            RecordedStatus::Failed => "failed",
            RecordedStatus::UpstreamFailed => "upstream failed",
            RecordedStatus::NotNeeded => "not needed",
            RecordedStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for RecordedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for RecordedStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RecordedStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One input argument of a [`NodeRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputRecord {
    /// The argument's name.
    pub name: String,
    /// Whether it gathers (`&[&T]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gathered: bool,
    /// The upstream nodes wired to it.
    pub nodes: Vec<String>,
}

/// Where and with what a run ran. The record of a run that has not finished names its host
/// only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Provenance {
    /// The host name.
    pub host: String,
    /// The operating system and architecture.
    pub os: String,
    /// The available parallelism.
    pub cpus: usize,
    /// The running executable.
    pub executable: Option<PathBuf>,
    /// blake3 of the executable, in hex.
    pub executable_blake3: Option<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// The working directory's git commit, when it is in a git work tree.
    pub git_commit: Option<String>,
    /// Whether that work tree had uncommitted changes to tracked files. Both are taken
    /// once per process and working directory, when the process first records a run there.
    pub git_dirty: Option<bool>,
    /// The pipewright version.
    pub pipewright: String,
}

impl Provenance {
    /// The provenance of a run known by its host only.
    fn of_host(host: String) -> Self {
        Provenance {
            host,
            os: String::new(),
            cpus: 0,
            executable: None,
            executable_blake3: None,
            cwd: None,
            git_commit: None,
            git_dirty: None,
            pipewright: String::new(),
        }
    }
}

impl RunRecord {
    /// Reads the record of a run directory: its `run.json`, or, while the run goes on or
    /// if it never finished, what its journal says so far (every node, and how each node
    /// that settled ended; a last line left incomplete by a killed run is left out).
    ///
    /// # Errors
    ///
    /// [`crate::error::Error::Record`] if neither can be read, if it does not parse, or
    /// if it is of another format than [`RECORD_FORMAT`].
    pub fn read(run_dir: &Path) -> crate::error::Result<Self> {
        let path = run_dir.join(RUN_JSON);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let journal = run_dir.join(JOURNAL);
                return match fs::read(&journal) {
                    Ok(bytes) => from_journal(&journal, &bytes),
                    Err(_) => Err(record_error(&path, e.to_string())),
                };
            }
            Err(e) => return Err(record_error(&path, e.to_string())),
        };
        match serde_json::from_slice::<RunRecord>(&bytes) {
            Ok(record) => {
                check_format(&path, record.format)?;
                Ok(record)
            }
            Err(e) => {
                // A record of another format may not parse as this one: say which it is.
                if let Ok(Format { format }) = serde_json::from_slice(&bytes) {
                    check_format(&path, format)?;
                }
                Err(record_error(&path, format!("it does not parse: {e}")))
            }
        }
    }

    /// Whether the run ended without finishing: it is recorded as running, but its process,
    /// on this host, is gone (killed, or the machine restarted); or it was recorded as
    /// interrupted. A run recorded on another host counts as running.
    pub fn interrupted(&self) -> bool {
        match self.status.as_str() {
            "interrupted" => true,
            "running" => self.pid.is_some_and(|pid| {
                self.provenance.host == crate::cache::host_name() && crate::cache::process_gone(pid)
            }),
            _ => false,
        }
    }

    /// The status to show: `interrupted` for an interrupted run, else the recorded one.
    pub fn shown_status(&self) -> &str {
        if self.interrupted() {
            "interrupted"
        } else {
            &self.status
        }
    }

    /// Records the run in `run_dir` as interrupted, in its `run.json`.
    pub(crate) fn mark_interrupted(&mut self, run_dir: &Path) -> Result<(), StoreError> {
        self.status = "interrupted".to_owned();
        write_json_atomically(&run_dir.join(RUN_JSON), self, false)
    }
}

/// The file of a run directory that holds its record, written at the end of the run.
pub(crate) const RUN_JSON: &str = "run.json";

/// The file of a run directory that the run appends to while it goes on: a header line,
/// then a line for each node as it settles, and one for each batch of entries committed
/// after their nodes settled. It stays once `run.json` is written, which is then what is
/// read (removing it would cost the next new files of some file systems more than it
/// saves).
pub(crate) const JOURNAL: &str = "journal.jsonl";

/// Whether `dir` holds the record of a run, finished or not.
pub(crate) fn is_run_dir(dir: &Path) -> bool {
    dir.join(RUN_JSON).is_file() || dir.join(JOURNAL).is_file()
}

/// The format of a record, read alone.
#[derive(Deserialize)]
struct Format {
    format: u32,
}

fn record_error(path: &Path, reason: String) -> Error {
    Error::Record {
        path: path.to_owned(),
        reason,
    }
}

/// Refuses a record of another format than this version's.
fn check_format(path: &Path, format: u32) -> crate::error::Result<()> {
    if format == RECORD_FORMAT {
        return Ok(());
    }
    let made_by = if format < RECORD_FORMAT {
        "an older"
    } else {
        "a newer"
    };
    Err(record_error(
        path,
        format!(
            "it is of record format {format}, written by {made_by} version of pipewright; \
             this version reads format {RECORD_FORMAT} only"
        ),
    ))
}

/// The first line of a journal: the run, and its nodes in the pipeline's order.
#[derive(Serialize, Deserialize)]
pub(crate) struct JournalHeader<'a> {
    pub(crate) format: u32,
    pub(crate) pipeline: Cow<'a, str>,
    pub(crate) started: Cow<'a, str>,
    pub(crate) data_dir: Cow<'a, Path>,
    pub(crate) jobs: usize,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The run's parameters, if the program declares any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) params: Option<serde_json::Value>,
    /// Each node: its name, its task's name, and the positions of its distinct parents.
    pub(crate) nodes: Vec<(Cow<'a, str>, Cow<'a, str>, Vec<u32>)>,
    /// Each mapped node's position, with that of the node it goes over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) maps: Vec<(u32, u32)>,
}

/// A line of a journal after the header: how one node settled; or how one branch of a
/// mapped node settled (`branch`); or how many branches a mapped node made (`branches`,
/// with the node still `pending`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JournalLine {
    /// The node's position in the pipeline.
    pub(crate) node: u32,
    /// The branch's position in its mapped node's list, for a branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) branch: Option<u32>,
    /// How many branches the mapped node made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) branches: Option<u32>,
    pub(crate) status: RecordedStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) worker: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) error: Vec<String>,
    /// The position of the failed upstream node it waited on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_failed: Option<u32>,
    /// For a branch that waited on a failed branch, that branch's position in the mapped
    /// node `upstream_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_branch: Option<u32>,
    /// The node's entry was queued to be committed after it settled: the store holds it
    /// once a [`StoredLine`] names the node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) queued: bool,
}

/// A line of a journal that says that the entries of the nodes it names (by position),
/// queued when they settled, are committed to the store.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredLine<'a> {
    pub(crate) stored: Cow<'a, [u32]>,
}

/// The most branches a run makes, all its mapped nodes together: every executor fails a
/// mapped node that would make more, and a journal whose lines claim more is damaged. A
/// record of that many takes a few hundred megabytes to read.
pub(crate) const MOST_BRANCHES: u32 = 1 << 20;

impl JournalLine {
    /// The line of node `node` with `status` and nothing else.
    pub(crate) fn new(node: u32, status: RecordedStatus) -> Self {
        JournalLine {
            node,
            branch: None,
            branches: None,
            status,
            started_secs: None,
            duration_secs: None,
            worker: None,
            error: Vec::new(),
            upstream_failed: None,
            upstream_branch: None,
            queued: false,
        }
    }
}

/// The record of a run that has not written its `run.json`, read from its journal at
/// `path`: the run is `running`, its nodes are those of the header, and each node with a
/// complete line has the outcome of its last one. A last line without its end (the run was
/// killed while writing it) is left out.
fn from_journal(path: &Path, bytes: &[u8]) -> crate::error::Result<RunRecord> {
    // Only lines that end in a newline are complete.
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..end],
        None => &[][..],
    };
    let mut lines = complete.split(|b| *b == b'\n');
    let first = lines
        .next()
        .filter(|line| !line.is_empty())
        .ok_or_else(|| {
            record_error(
                path,
                "the journal has no complete header line yet".to_owned(),
            )
        })?;
    let header: JournalHeader<'_> = match serde_json::from_slice(first) {
        Ok(header) => header,
        Err(e) => {
            if let Ok(Format { format }) = serde_json::from_slice(first) {
                check_format(path, format)?;
            }
            return Err(record_error(
                path,
                format!("its header does not parse: {e}"),
            ));
        }
    };
    check_format(path, header.format)?;
    let names: Vec<String> = header.nodes.iter().map(|n| n.0.to_string()).collect();
    let name_of = |at: u32, line: usize| {
        names.get(at as usize).cloned().ok_or_else(|| {
            record_error(
                path,
                format!(
                    "line {line} names node {at}, but the run has {}",
                    names.len()
                ),
            )
        })
    };
    let mut nodes = Vec::with_capacity(header.nodes.len());
    for (name, task, parents) in &header.nodes {
        nodes.push(NodeRecord {
            name: name.to_string(),
            task: task.to_string(),
            params: serde_json::Value::Null,
            encoded_params: None,
            inputs: Vec::new(),
            parents: parents
                .iter()
                .map(|&p| name_of(p, 1))
                .collect::<crate::error::Result<_>>()?,
            status: RecordedStatus::Pending,
            cached: false,
            key: None,
            output_digest: None,
            reason: None,
            started_secs: None,
            duration_secs: None,
            worker: None,
            error: Vec::new(),
            upstream_failed: None,
            over: None,
            branches: Vec::new(),
            uncommitted: false,
        });
    }
    for &(node, over) in &header.maps {
        let over = name_of(over, 1)?;
        name_of(node, 1)?;
        nodes[node as usize].over = Some(over);
    }
    // Whether each node's last line said its entry was queued, and whether a line said
    // that its entry was committed since (which may come first).
    let mut queued = vec![false; nodes.len()];
    let mut stored = vec![false; nodes.len()];
    // How many branches each mapped node's last count line said it made, and how many
    // branches the record holds so far, all nodes together.
    let mut counts: Vec<Option<u32>> = vec![None; nodes.len()];
    let mut held = 0;
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        let settled: JournalLine = match serde_json::from_slice(line) {
            Ok(settled) => settled,
            Err(e) => {
                let Ok(StoredLine { stored: committed }) = serde_json::from_slice(line) else {
                    return Err(record_error(
                        path,
                        format!("line {number} does not parse: {e}"),
                    ));
                };
                for &at in committed.iter() {
                    name_of(at, number)?;
                    stored[at as usize] = true;
                }
                continue;
            }
        };
        name_of(settled.node, number)?;
        if settled.branch.is_some() || settled.branches.is_some() {
            let at = settled.node as usize;
            held = check_branches(&settled, &nodes[at], counts[at], held)
                .map_err(|why| record_error(path, format!("line {number} is damaged: {why}")))?;
            if settled.branch.is_none() {
                counts[at] = settled.branches;
            }
            let upstream = settled
                .upstream_failed
                .map(|up| name_of(up, number))
                .transpose()?;
            let node = &mut nodes[settled.node as usize];
            branch_line(node, settled, upstream);
            continue;
        }
        queued[settled.node as usize] = settled.queued;
        let node = &mut nodes[settled.node as usize];
        node.status = settled.status;
        node.cached = settled.status == RecordedStatus::Cached;
        node.started_secs = settled.started_secs;
        node.duration_secs = settled.duration_secs;
        node.worker = settled.worker.map(|w| w as usize);
        node.error = settled.error;
        node.upstream_failed = settled
            .upstream_failed
            .map(|up| name_of(up, number))
            .transpose()?;
    }
    for ((node, queued), stored) in nodes.iter_mut().zip(queued).zip(stored) {
        node.uncommitted = queued && !stored;
    }
    Ok(RunRecord {
        format: header.format,
        pipeline: header.pipeline.into_owned(),
        status: "running".to_owned(),
        started: header.started.into_owned(),
        ended: None,
        elapsed_secs: None,
        data_dir: header.data_dir.into_owned(),
        jobs: header.jobs,
        nodes,
        provenance: Provenance::of_host(header.host),
        pid: Some(header.pid),
        params: header.params,
    })
}

/// How many branches a record holds, `held` before `line` about branches of `node`, once
/// the line is read; or why the line cannot be true: the node is not mapped, the line
/// names a branch beyond the `count` its node's last count line gave, or the record would
/// hold more branches than a run makes ([`MOST_BRANCHES`]).
fn check_branches(
    line: &JournalLine,
    node: &NodeRecord,
    count: Option<u32>,
    held: usize,
) -> Result<usize, String> {
    if node.over.is_none() {
        return Err(format!(
            "it gives branches to `{}`, which is not a mapped node",
            node.name
        ));
    }
    let has = node.branches.len();
    let claimed = match (line.branch, line.branches) {
        (Some(branch), _) => {
            if let Some(count) = count.filter(|count| branch >= *count) {
                return Err(format!(
                    "it names branch {branch} of `{}`, which made {count}",
                    node.name
                ));
            }
            (branch as usize).saturating_add(1).max(has)
        }
        (None, Some(n)) => n as usize,
        (None, None) => has,
    };
    let others = held - has;
    if others.saturating_add(claimed) > MOST_BRANCHES as usize {
        let beside = if others == 0 {
            String::new()
        } else {
            format!(" which with the {others} of other nodes is")
        };
        return Err(format!(
            "it claims {claimed} branches of `{}`,{beside} more than the {MOST_BRANCHES} \
             a run makes",
            node.name
        ));
    }
    Ok(others + claimed)
}

/// Records in mapped node `node` what a journal line about its branches says: how many it
/// made (each pending until its own line comes), or how one of them settled, after the
/// failed node `upstream` (a branch of it, if the line names one).
fn branch_line(node: &mut NodeRecord, line: JournalLine, upstream: Option<String>) {
    let pending = |name: &str, i: usize| BranchRecord {
        name: format!("{name}[{i}]"),
        element: None,
        status: RecordedStatus::Pending,
        key: None,
        output_digest: None,
        reason: None,
        started_secs: None,
        duration_secs: None,
        worker: None,
        error: Vec::new(),
        upstream_failed: None,
    };
    let made = match (line.branch, line.branches) {
        (Some(branch), _) => (branch as usize + 1).max(node.branches.len()),
        (None, Some(n)) => n as usize,
        (None, None) => return,
    };
    let name = node.name.clone();
    let len = node.branches.len();
    node.branches.truncate(made);
    node.branches.extend((len..made).map(|i| pending(&name, i)));
    let Some(i) = line.branch else {
        return;
    };
    let branch = &mut node.branches[i as usize];
    branch.status = line.status;
    branch.started_secs = line.started_secs;
    branch.duration_secs = line.duration_secs;
    branch.worker = line.worker.map(|w| w as usize);
    branch.error = line.error;
    branch.upstream_failed = match line.upstream_branch {
        Some(j) => upstream.map(|up| format!("{up}[{j}]")),
        None => upstream,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal of three nodes, `a` and `b` above `c`, in which `a` ran and `b` failed.
    fn journal() -> String {
        let header = JournalHeader {
            format: RECORD_FORMAT,
            pipeline: "p".into(),
            started: "2026-01-01T00:00:00.000000Z".into(),
            data_dir: Path::new("/data").into(),
            jobs: 2,
            host: "here".to_owned(),
            pid: 7,
            params: None,
            nodes: vec![
                ("a".into(), "ta".into(), vec![]),
                ("b".into(), "tb".into(), vec![]),
                ("c".into(), "tc".into(), vec![0, 1]),
            ],
            maps: Vec::new(),
        };
        let ran = JournalLine {
            started_secs: Some(0.5),
            duration_secs: Some(1.5),
            worker: Some(1),
            ..JournalLine::new(0, RecordedStatus::Ran)
        };
        let failed = JournalLine {
            node: 1,
            status: RecordedStatus::Failed,
            error: vec!["outer".to_owned(), "inner".to_owned()],
            ..ran.clone()
        };
        let mut text = String::new();
        for line in [
            serde_json::to_string(&header).unwrap(),
            serde_json::to_string(&ran).unwrap(),
            serde_json::to_string(&failed).unwrap(),
        ] {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    #[test]
    fn a_journal_reads_as_a_running_record_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        // The run was killed while it wrote the line of `c`.
        let text = journal() + r#"{"node":2,"status":"upstream fai"#;
        fs::write(dir.path().join(JOURNAL), &text).unwrap();
        let record = RunRecord::read(dir.path()).unwrap();
        assert_eq!(record.status, "running");
        assert_eq!((record.pipeline.as_str(), record.jobs), ("p", 2));
        assert_eq!(
            (record.provenance.host.as_str(), record.pid),
            ("here", Some(7))
        );
        let names: Vec<&str> = record.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let (a, b, c) = (&record.nodes[0], &record.nodes[1], &record.nodes[2]);
        assert_eq!((a.status, a.task.as_str()), (RecordedStatus::Ran, "ta"));
        assert_eq!(
            (a.started_secs, a.duration_secs, a.worker),
            (Some(0.5), Some(1.5), Some(1))
        );
        assert_eq!(b.status, RecordedStatus::Failed);
        assert_eq!(b.error, ["outer", "inner"]);
        assert_eq!(c.status, RecordedStatus::Pending);
        assert_eq!(c.parents, ["a", "b"]);

        // The same line whole is read.
        let whole =
            journal() + r#"{"node":2,"status":"upstream failed","upstream_failed":1}"# + "\n";
        fs::write(dir.path().join(JOURNAL), whole).unwrap();
        let c = RunRecord::read(dir.path()).unwrap().nodes.remove(2);
        assert_eq!(c.status, RecordedStatus::UpstreamFailed);
        assert_eq!(c.upstream_failed.as_deref(), Some("b"));

        // A line that does not parse before the last one is an error that names it.
        let broken = journal().replacen("\"node\":1", "\"node\":", 1) + "{}\n";
        fs::write(dir.path().join(JOURNAL), broken).unwrap();
        let err = RunRecord::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("journal.jsonl`: line 3 does not parse"),
            "{err}"
        );

        // Once `run.json` is there, it is what is read.
        fs::write(dir.path().join(JOURNAL), journal()).unwrap();
        let mut finished = RunRecord::read(dir.path()).unwrap();
        finished.status = "succeeded".to_owned();
        write_json_atomically(&dir.path().join(RUN_JSON), &finished, false).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap().status, "succeeded");
    }

    #[test]
    fn a_journal_reads_back_the_branches_that_settled() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = journal().replacen("\"nodes\":[", "\"maps\":[[1,0],[2,1]],\"nodes\":[", 1);
        let lines = [
            // `b` maps over `a` and made three branches; `c` maps over `b`.
            JournalLine {
                branches: Some(3),
                ..JournalLine::new(1, RecordedStatus::Pending)
            },
            JournalLine {
                branch: Some(0),
                started_secs: Some(1.0),
                duration_secs: Some(0.5),
                worker: Some(0),
                ..JournalLine::new(1, RecordedStatus::Ran)
            },
            JournalLine {
                branch: Some(2),
                error: vec!["no".to_owned()],
                ..JournalLine::new(1, RecordedStatus::Failed)
            },
            // A branch of `c` whose paired branch of `b` failed.
            JournalLine {
                branch: Some(2),
                upstream_failed: Some(1),
                upstream_branch: Some(2),
                ..JournalLine::new(2, RecordedStatus::UpstreamFailed)
            },
        ];
        for line in &lines {
            text.push_str(&serde_json::to_string(line).unwrap());
            text.push('\n');
        }
        // `journal()` settled `b` as failed: lines about its branches leave that as it is.
        fs::write(dir.path().join(JOURNAL), &text).unwrap();
        let record = RunRecord::read(dir.path()).unwrap();
        let (b, c) = (&record.nodes[1], &record.nodes[2]);
        assert_eq!(b.over.as_deref(), Some("a"));
        assert_eq!(c.over.as_deref(), Some("b"));
        assert_eq!(b.status, RecordedStatus::Failed);
        let shown: Vec<(&str, RecordedStatus)> = b
            .branches
            .iter()
            .map(|br| (br.name.as_str(), br.status))
            .collect();
        assert_eq!(
            shown,
            [
                ("b[0]", RecordedStatus::Ran),
                ("b[1]", RecordedStatus::Pending),
                ("b[2]", RecordedStatus::Failed),
            ]
        );
        assert_eq!(
            (b.branches[0].started_secs, b.branches[0].worker),
            (Some(1.0), Some(0))
        );
        assert_eq!(b.branches[2].error, ["no"]);
        // A branch line before its made line still reads, its earlier siblings pending.
        assert_eq!(c.branches.len(), 3);
        assert_eq!(c.branches[2].status, RecordedStatus::UpstreamFailed);
        assert_eq!(c.branches[2].upstream_failed.as_deref(), Some("b[2]"));
        assert_eq!(c.branches[0].status, RecordedStatus::Pending);
        assert_eq!(c.status, RecordedStatus::Pending);
    }

    #[test]
    fn a_node_whose_queued_entry_no_line_says_is_committed_reads_as_uncommitted() {
        let dir = tempfile::tempdir().unwrap();
        let read = |lines: &[&str]| {
            let text = lines
                .iter()
                .fold(journal(), |text, line| text + line + "\n");
            fs::write(dir.path().join(JOURNAL), text).unwrap();
            RunRecord::read(dir.path())
        };
        let queued = r#"{"node":2,"status":"ran","queued":true}"#;
        let c = read(&[queued]).unwrap().nodes.remove(2);
        assert_eq!((c.status, c.uncommitted), (RecordedStatus::Ran, true));
        // Said committed, after its line or before it (the commit may be told first).
        for lines in [
            [queued, r#"{"stored":[0,2]}"#],
            [r#"{"stored":[2]}"#, queued],
        ] {
            let record = read(&lines).unwrap();
            assert!(record.nodes.iter().all(|n| !n.uncommitted), "{lines:?}");
            assert_eq!(record.nodes[2].status, RecordedStatus::Ran);
        }
        // A node settled again after its commit failed is failed, not uncommitted.
        let failed = r#"{"node":2,"status":"failed","error":["cannot write"]}"#;
        let c = read(&[queued, failed]).unwrap().nodes.remove(2);
        assert_eq!((c.status, c.uncommitted), (RecordedStatus::Failed, false));
        // A line that names a node the run does not have is refused.
        let err = read(&[r#"{"stored":[2,3]}"#]).unwrap_err().to_string();
        assert!(
            err.ends_with("line 4 names node 3, but the run has 3"),
            "{err}"
        );
        // Written to a record, the field is left out where it is false, and read back.
        let record = read(&[queued]).unwrap();
        let json = serde_json::to_string(&record.nodes[0]).unwrap();
        assert!(!json.contains("uncommitted"), "{json}");
        let json = serde_json::to_string(&record.nodes[2]).unwrap();
        let back: NodeRecord = serde_json::from_str(&json).unwrap();
        assert!(back.uncommitted, "{json}");
    }

    #[test]
    fn a_line_that_claims_branches_no_record_can_hold_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        // `b` maps over `a`; `c` is not mapped.
        let mapped = journal().replacen("\"nodes\":[", "\"maps\":[[1,0]],\"nodes\":[", 1);
        let read = |line: &str| {
            fs::write(dir.path().join(JOURNAL), mapped.clone() + line + "\n").unwrap();
            RunRecord::read(dir.path())
        };
        for (line, claimed) in [
            (
                r#"{"node":1,"status":"pending","branches":4000000000}"#,
                4_000_000_000u64,
            ),
            (
                r#"{"node":1,"branch":4294967295,"status":"ran"}"#,
                4_294_967_296,
            ),
        ] {
            let err = read(line).unwrap_err().to_string();
            assert!(
                err.ends_with(&format!(
                    "line 4 is damaged: it claims {claimed} branches of `b`, more than the \
                     {MOST_BRANCHES} a run makes"
                )),
                "{err}"
            );
        }
        let err = read(r#"{"node":2,"branch":0,"status":"ran"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "line 4 is damaged: it gives branches to `c`, which is not a mapped node"
            ),
            "{err}"
        );
        // As many as a record holds are read.
        let record = read(r#"{"node":1,"branch":9,"status":"ran"}"#).unwrap();
        assert_eq!(record.nodes[1].branches.len(), 10);
        // A branch beyond the count its node made is damaged; one below it is read.
        let made = r#"{"node":1,"status":"pending","branches":3}"#;
        let err = read(&format!(
            "{made}\n{}",
            r#"{"node":1,"branch":3,"status":"ran"}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("line 5 is damaged: it names branch 3 of `b`, which made 3"),
            "{err}"
        );
        let record = read(&format!(
            "{made}\n{}",
            r#"{"node":1,"branch":2,"status":"ran"}"#
        ))
        .unwrap();
        let statuses: Vec<_> = record.nodes[1].branches.iter().map(|b| b.status).collect();
        let (pending, ran) = (RecordedStatus::Pending, RecordedStatus::Ran);
        assert_eq!(statuses, [pending, pending, ran]);
    }

    #[test]
    fn a_journal_whose_mapped_nodes_claim_more_branches_than_a_run_makes_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        // `m1` to `m4` map over `list`.
        let header = JournalHeader {
            nodes: std::iter::once(("list".into(), "t".into(), vec![]))
                .chain((1..=4).map(|i| (format!("m{i}").into(), "t".into(), vec![0])))
                .collect(),
            maps: (1..=4).map(|i| (i, 0)).collect(),
            ..serde_json::from_str(journal().lines().next().unwrap()).unwrap()
        };
        let mut text = serde_json::to_string(&header).unwrap() + "\n";
        // Each claims as many as a run makes.
        for i in 1..=4 {
            let line = JournalLine {
                branches: Some(MOST_BRANCHES),
                ..JournalLine::new(i, RecordedStatus::Pending)
            };
            text += &(serde_json::to_string(&line).unwrap() + "\n");
        }
        fs::write(dir.path().join(JOURNAL), text).unwrap();
        // Not `unwrap_err`, which would print every branch of a record read.
        let Err(err) = RunRecord::read(dir.path()) else {
            panic!("a journal of more branches than a run makes was read");
        };
        let err = err.to_string();
        assert!(
            err.ends_with(&format!(
                "line 3 is damaged: it claims {MOST_BRANCHES} branches of `m2`, which with \
                 the {MOST_BRANCHES} of other nodes is more than the {MOST_BRANCHES} a run \
                 makes"
            )),
            "{err}"
        );
    }

    #[test]
    fn a_record_of_another_format_is_refused_with_its_format() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(JOURNAL), journal()).unwrap();
        let record = RunRecord::read(dir.path()).unwrap();
        let json = serde_json::to_string(&record).unwrap();
        // The parents and the cached flag are not stored, but read back.
        assert!(
            !json.contains("parents") && !json.contains("cached"),
            "{json}"
        );
        let text = |format: u32| json.replacen("\"format\":2", &format!("\"format\":{format}"), 1);
        for (format, made_by) in [(1, "an older"), (3, "a newer")] {
            fs::write(dir.path().join(RUN_JSON), text(format)).unwrap();
            let err = RunRecord::read(dir.path()).unwrap_err().to_string();
            assert!(
                err.ends_with(&format!(
                    "run.json`: it is of record format {format}, written by {made_by} \
                     version of pipewright; this version reads format 2 only"
                )),
                "{err}"
            );
        }
        // Even when the rest does not parse as this format's.
        fs::write(dir.path().join(RUN_JSON), r#"{"format":3,"nodes":{}}"#).unwrap();
        let err = RunRecord::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("it is of record format 3"), "{err}");
    }

    #[test]
    fn the_parameters_of_a_run_are_read_back_and_older_records_have_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(JOURNAL), journal()).unwrap();
        let mut record = RunRecord::read(dir.path()).unwrap();
        assert_eq!(record.params, None);
        let older = serde_json::to_string(&record).unwrap();
        assert!(!older.contains("params\":{"), "{older}");
        fs::write(dir.path().join(RUN_JSON), &older).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap().params, None);

        record.params = Some(serde_json::json!({ "rows": 3 }));
        write_json_atomically(&dir.path().join(RUN_JSON), &record, false).unwrap();
        assert_eq!(
            RunRecord::read(dir.path()).unwrap().params,
            Some(serde_json::json!({ "rows": 3 }))
        );
    }
}
