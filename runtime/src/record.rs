//! Run records: every run with a store writes `LOG/<pipeline>_<UTC time>_<unique>/` holding
//! `run.json` (the pipeline, every node's outcome, and where the run happened), `run.log`
//! (the run's `tracing` events) and `failures/<node>.txt` (a failed node's error chain, and
//! the panic message with its backtrace).

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cache::{StoreError, write_atomically, write_json_atomically};
use crate::graph::{Pipeline, Wire};
use crate::report::{NodeReport, NodeStatus, RunReport};
use crate::task::{TaskError, hex};

/// The layout of `run.json`.
pub const RECORD_FORMAT: u32 = 1;

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub ended: Option<String>,
    /// Its wall time in seconds.
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
    #[serde(default)]
    pub pid: Option<u32>,
}

/// One node of a [`RunRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// Its task's name.
    pub task: String,
    /// Its parameters, as JSON, for people (JSON cannot hold every value).
    pub params: serde_json::Value,
    /// Its parameters encoded with the default codec, in hex: what the node's task is
    /// rebuilt from. Absent from records of older versions.
    #[serde(default)]
    pub encoded_params: Option<String>,
    /// The nodes wired to each input argument, in argument order.
    pub inputs: Vec<InputRecord>,
    /// Its distinct parents.
    pub parents: Vec<String>,
    /// `pending` while the run goes on, then `ran`, `cached`, `failed` or
    /// `upstream failed`.
    pub status: String,
    /// Whether its output came from the store.
    pub cached: bool,
    /// Its node key, in hex.
    pub key: Option<String>,
    /// The content digest of its output, in hex.
    pub output_digest: Option<String>,
    /// Why it ran.
    pub reason: Option<String>,
    /// When it started, in seconds from the start of the run.
    pub started_secs: Option<f64>,
    /// How long it ran, in seconds.
    pub duration_secs: Option<f64>,
    /// The worker that ran it.
    pub worker: Option<usize>,
    /// Why it failed: the error and its sources, outermost first.
    pub error: Vec<String>,
    /// The failed upstream node it waited on.
    pub upstream_failed: Option<String>,
}

/// One input argument of a [`NodeRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// The argument's name.
    pub name: String,
    /// Whether it gathers (`&[&T]`).
    pub gathered: bool,
    /// The upstream nodes wired to it.
    pub nodes: Vec<String>,
}

/// Where and with what a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Whether that work tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The pipewright version.
    pub pipewright: String,
}

impl RunRecord {
    /// Reads `run.json` from a run directory.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Record`] if it cannot be read or does not parse.
    pub fn read(run_dir: &Path) -> crate::Result<Self> {
        let path = run_dir.join(RUN_JSON);
        let bytes = fs::read(&path).map_err(|e| crate::Error::Record {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let record: RunRecord =
            serde_json::from_slice(&bytes).map_err(|e| crate::Error::Record {
                path: path.clone(),
                reason: format!("it does not parse: {e}"),
            })?;
        if record.format != RECORD_FORMAT {
            return Err(crate::Error::Record {
                path,
                reason: format!("its format {} is not {RECORD_FORMAT}", record.format),
            });
        }
        Ok(record)
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
        write_json_atomically(&run_dir.join(RUN_JSON), self, true)
    }
}

pub(crate) const RUN_JSON: &str = "run.json";
pub(crate) const RUN_LOG: &str = "run.log";
pub(crate) const REPORT_HTML: &str = "report.html";

/// Writes `report.html` into a run directory, drawn from its `run.json`, and returns its
/// path.
pub(crate) fn write_report(run_dir: &Path) -> crate::Result<PathBuf> {
    let view = crate::render::GraphView::of_record(run_dir)?;
    let path = run_dir.join(REPORT_HTML);
    write_atomically(&path, crate::render::html(&view).as_bytes())?;
    Ok(path)
}
const FAILURES: &str = "failures";

/// The time now, RFC 3339 in UTC to the microsecond, so that records sort by it.
fn now() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// A run directory being written.
pub(crate) struct RunDir {
    pub(crate) dir: PathBuf,
    record: RunRecord,
}

/// Makes run directory names unique within a process.
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

impl RunDir {
    /// Creates the run directory under `log_dir` and writes the first `run.json`.
    pub(crate) fn create(
        log_dir: &Path,
        pipeline: &Pipeline,
        data_dir: &Path,
        jobs: usize,
    ) -> Result<Self, StoreError> {
        fs::create_dir_all(log_dir)
            .map_err(|e| StoreError::new("cannot create the log directory", log_dir, e))?;
        let started = now();
        let stamp: String = started
            .chars()
            .take_while(|c| *c != '.')
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let unique = {
            let n = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let seed = format!("{}-{nanos}-{n}", std::process::id());
            hex(&blake3::hash(seed.as_bytes()).as_bytes()[..4])
        };
        let dir = log_dir.join(format!("{}_{stamp}_{unique}", safe_name(pipeline.name())));
        fs::create_dir(&dir)
            .map_err(|e| StoreError::new("cannot create the run directory", &dir, e))?;
        let nodes = pipeline
            .nodes
            .iter()
            .map(|node| NodeRecord {
                name: node.name.to_string(),
                task: node.task.meta().name.to_owned(),
                params: node.task.params_json(),
                encoded_params: Some(hex(&node.params)),
                inputs: node
                    .wires
                    .iter()
                    .zip(node.task.meta().inputs)
                    .map(|(wire, spec)| InputRecord {
                        name: spec.name.to_owned(),
                        gathered: matches!(wire, Wire::Many(_)),
                        nodes: match wire {
                            Wire::One(id) => vec![pipeline.node_name(*id).to_owned()],
                            Wire::Many(ids) => ids
                                .iter()
                                .map(|id| pipeline.node_name(*id).to_owned())
                                .collect(),
                        },
                    })
                    .collect(),
                parents: node
                    .upstream
                    .iter()
                    .map(|id| pipeline.node_name(*id).to_owned())
                    .collect(),
                status: "pending".to_owned(),
                cached: false,
                key: None,
                output_digest: None,
                reason: None,
                started_secs: None,
                duration_secs: None,
                worker: None,
                error: Vec::new(),
                upstream_failed: None,
            })
            .collect();
        let record = RunRecord {
            format: RECORD_FORMAT,
            pipeline: pipeline.name().to_owned(),
            status: "running".to_owned(),
            started,
            ended: None,
            elapsed_secs: None,
            data_dir: data_dir.to_owned(),
            jobs,
            nodes,
            provenance: provenance(),
            pid: Some(std::process::id()),
        };
        let run = RunDir { dir, record };
        run.write(false)?;
        Ok(run)
    }

    /// Writes `run.json` atomically: a temporary file renamed into place; indented for
    /// people at the end of the run, compact (and quick) at its start.
    fn write(&self, pretty: bool) -> Result<(), StoreError> {
        write_json_atomically(&self.dir.join(RUN_JSON), &self.record, pretty)
    }

    /// Records every node's outcome, writes the failures, and rewrites `run.json`.
    pub(crate) fn finish(mut self, report: &RunReport) -> Result<PathBuf, StoreError> {
        let (elapsed, cancelled) = (report.elapsed(), report.cancelled());
        let succeeded = report.succeeded();
        for (record, node) in self.record.nodes.iter_mut().zip(report.nodes()) {
            record.status = node.status().to_string();
            record.cached = node.status() == NodeStatus::Cached;
            record.key = node.key().map(str::to_owned);
            record.output_digest = node.output_digest().map(str::to_owned);
            record.reason = node.reason().map(ToString::to_string);
            record.worker = node.worker();
            record.upstream_failed = node.failed_upstream().map(str::to_owned);
            if !matches!(
                node.status(),
                NodeStatus::UpstreamFailed | NodeStatus::NotNeeded
            ) {
                record.started_secs = Some(node.started().as_secs_f64());
                record.duration_secs = Some(node.duration().as_secs_f64());
            }
            if let Some(error) = node.error() {
                record.error = chain(error);
            }
        }
        let failures: Vec<NodeReport<'_>> =
            report.nodes().filter(|n| n.error().is_some()).collect();
        if !failures.is_empty() {
            let dir = self.dir.join(FAILURES);
            fs::create_dir_all(&dir).map_err(|e| StoreError::new("cannot create", &dir, e))?;
            for node in failures {
                let path = dir.join(format!("{}.txt", node_file_name(node.name())));
                let mut text = format!("node `{}` (task `{}`) failed\n", node.name(), node.task());
                for (i, line) in node
                    .error()
                    .map(|error| chain(error))
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    text.push_str(&format!("{:>3}: {line}\n", i));
                }
                if let Some(backtrace) = node.backtrace() {
                    text.push_str("\nbacktrace:\n");
                    text.push_str(backtrace);
                    text.push('\n');
                }
                write_atomically(&path, text.as_bytes())?;
            }
        }
        self.record.status = if cancelled {
            "cancelled"
        } else if succeeded {
            "succeeded"
        } else {
            "failed"
        }
        .to_owned();
        self.record.ended = Some(now());
        self.record.elapsed_secs = Some(elapsed.as_secs_f64());
        self.write(true)?;
        Ok(self.dir)
    }
}

/// An error and its sources, outermost first.
pub(crate) fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut lines = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        let text = err.to_string();
        if lines.last() != Some(&text) {
            lines.push(text);
        }
        source = err.source();
    }
    lines
}

/// A file name for node `name`: the name itself where it is a safe file name, else its
/// [`safe_name`] with a digest of the name, so that two nodes never share a file.
pub(crate) fn node_file_name(name: &str) -> String {
    let safe = safe_name(name);
    if safe == name {
        safe
    } else {
        format!(
            "{safe}-{}",
            hex(&blake3::hash(name.as_bytes()).as_bytes()[..4])
        )
    }
}

/// `name` with every character that is not safe in a file name replaced by `_`.
pub(crate) fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// Where and with what this process runs; the executable's digest is taken once.
fn provenance() -> Provenance {
    static EXECUTABLE: OnceLock<(Option<PathBuf>, Option<String>)> = OnceLock::new();
    let (executable, executable_blake3) = EXECUTABLE
        .get_or_init(|| {
            let exe = std::env::current_exe().ok();
            let digest = exe.as_ref().and_then(|p| {
                let mut hasher = blake3::Hasher::new();
                hasher.update_reader(fs::File::open(p).ok()?).ok()?;
                Some(hasher.finalize().to_hex().to_string())
            });
            (exe, digest)
        })
        .clone();
    let cwd = std::env::current_dir().ok();
    let (git_commit, git_dirty) = cwd.as_deref().map_or((None, None), git_state);
    Provenance {
        host: crate::cache::host_name(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        executable,
        executable_blake3,
        cwd,
        git_commit,
        git_dirty,
        pipewright: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// The commit and dirty flag of the git work tree at `dir`, if `git` is there to ask.
fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return (None, None);
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.trim().is_empty());
    (Some(commit.trim().to_owned()), dirty)
}

thread_local! {
    /// The backtrace of the last panic in a task call on this thread, taken by the hook
    /// below; its symbols are resolved only when it is read.
    static LAST_BACKTRACE: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
    /// Whether this thread is inside a task call: the hook captures nothing elsewhere.
    static IN_TASK_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that keeps the backtrace of each panic inside a task call
/// (see [`task_call`]) for the failure record, then hands the panic on to the hook that was
/// there before. Any other panic goes straight to that hook.
pub(crate) fn capture_backtraces() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TASK_CALL.get() {
                let backtrace = Backtrace::force_capture();
                LAST_BACKTRACE.with(|b| *b.borrow_mut() = Some(backtrace));
            }
            previous(info);
        }));
    });
}

/// Calls `call`, a task's code, so that a panic in it leaves its backtrace for
/// [`take_backtrace`].
pub(crate) fn task_call<T>(call: impl FnOnce() -> T) -> T {
    /// Puts back the flag as it was, also when `call` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_TASK_CALL.set(self.0);
        }
    }
    let _restore = Restore(IN_TASK_CALL.replace(true));
    call()
}

/// The backtrace of the last panic in a task call on this thread, taken out.
pub(crate) fn take_backtrace() -> Option<String> {
    LAST_BACKTRACE
        .with(|b| b.borrow_mut().take())
        .map(|b| b.to_string())
}

/// A `tracing` subscriber that writes the run's events to `run.log`.
pub(crate) fn log_dispatch(dir: &Path) -> Result<tracing::Dispatch, StoreError> {
    use tracing_subscriber::layer::SubscriberExt;
    let path = dir.join(RUN_LOG);
    let file = fs::File::create(&path).map_err(|e| StoreError::new("cannot create", &path, e))?;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_thread_names(true)
        .with_writer(Mutex::new(file));
    let subscriber = tracing_subscriber::registry().with(layer);
    Ok(tracing::Dispatch::new(subscriber))
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::{capture_backtraces, safe_name, take_backtrace, task_call};

    #[test]
    fn only_panics_in_task_calls_leave_a_backtrace() {
        // What a run installs.
        capture_backtraces();
        assert!(catch_unwind(|| panic!("outside a task")).is_err());
        assert_eq!(take_backtrace(), None);

        assert!(task_call(|| catch_unwind(|| panic!("in a task"))).is_err());
        assert!(take_backtrace().is_some());
        assert_eq!(take_backtrace(), None, "taken out");

        // Back outside: nothing is captured again.
        assert!(catch_unwind(|| panic!("outside again")).is_err());
        assert_eq!(take_backtrace(), None);
    }

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(safe_name("multi-path"), "multi-path");
        assert_eq!(safe_name("a/b c"), "a_b_c");
        assert_eq!(safe_name(".."), "_..");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("données"), "donn_es");
        assert_eq!(safe_name(&"x".repeat(300)).len(), 80);
    }
}

/// An error read back from a record: its message and, as its source, the rest of the chain.
#[derive(Debug)]
pub(crate) struct RecordedError {
    message: String,
    source: Option<Box<RecordedError>>,
}

impl RecordedError {
    pub(crate) fn from_chain(chain: &[String]) -> Option<Box<Self>> {
        let (message, rest) = chain.split_first()?;
        Some(Box::new(RecordedError {
            message: message.clone(),
            source: Self::from_chain(rest),
        }))
    }
}

impl std::fmt::Display for RecordedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn status_of(text: &str) -> NodeStatus {
    match text {
        "ran" => NodeStatus::Ran,
        "cached" => NodeStatus::Cached,
        "failed" => NodeStatus::Failed,
        "upstream failed" => NodeStatus::UpstreamFailed,
        "not needed" => NodeStatus::NotNeeded,
        _ => NodeStatus::Cancelled,
    }
}

impl crate::report::RunReport {
    /// Reopens a past run from its run directory: every node's status, timing and error,
    /// and its output, read from the store by its recorded key when asked for with
    /// [`get_as`](Self::get_as) (which needs the node's task linked into this binary).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Record`] if `run.json` cannot be read or does not parse.
    pub fn open(run_dir: impl AsRef<Path>) -> crate::Result<Self> {
        use std::sync::Arc;

        use crate::cache::{Lookup, Store};
        use crate::key::parse_hex_bytes;
        use crate::report::{NodeOutcome, RecordedNode, nanos};

        let run_dir = run_dir.as_ref();
        let record = RunRecord::read(run_dir)?;
        let store = Store::new(record.data_dir.clone());
        let secs = |s: Option<f64>| {
            std::time::Duration::try_from_secs_f64(s.unwrap_or(0.0)).unwrap_or_default()
        };
        let position: std::collections::HashMap<&str, u32> = record
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i as u32))
            .collect();
        let mut nodes = Vec::with_capacity(record.nodes.len());
        let mut outcomes = Vec::with_capacity(record.nodes.len());
        for node in &record.nodes {
            let status = status_of(&node.status);
            let task = crate::registry::find_task(&node.task)
                .ok()
                .zip(node.encoded_params.as_deref().and_then(parse_hex_bytes))
                .and_then(|(reg, params)| reg.build(&params).ok());
            let entry = match (&node.key, status.is_success()) {
                (Some(key), true) => match store.lookup(&node.task, key) {
                    Lookup::Present(meta) => Some(meta),
                    _ => None,
                },
                _ => None,
            };
            let mut outcome = NodeOutcome::new(status);
            outcome.started = nanos(secs(node.started_secs));
            if let Some(worker) = node.worker {
                outcome.worker = u32::try_from(worker).unwrap_or(crate::report::NO_WORKER);
            }
            outcome.duration = nanos(secs(node.duration_secs));
            if let Some(upstream) = &node.upstream_failed {
                outcome.failed_upstream = position
                    .get(upstream.as_str())
                    .copied()
                    .unwrap_or(crate::report::NO_NODE);
            }
            let details = outcome.details_mut();
            details.error =
                RecordedError::from_chain(&node.error).map(|e| Arc::new(TaskError::Failed(e)));
            details.key = node.key.clone();
            details.output_digest = node.output_digest.clone();
            details.entry = entry;
            nodes.push(RecordedNode {
                name: node.name.as_str().into(),
                task,
            });
            outcomes.push(outcome);
        }
        Ok(crate::report::RunReport::reopened(
            record.pipeline,
            nodes,
            outcomes,
            store,
            secs(record.elapsed_secs),
            run_dir.to_owned(),
            matches!(
                record.status.as_str(),
                "cancelled" | "running" | "interrupted"
            ),
        ))
    }
}

impl Pipeline {
    /// Rebuilds the pipeline of a past run through the registry, by task name and recorded
    /// parameters, and checks that every rebuilt node has the key the run recorded: running
    /// it again reproduces that run.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Record`] if the record cannot be read, if a node's parameters or
    /// wiring do not fit its task, or if a key differs (the task's code, version or
    /// parameters changed since); [`crate::Error::UnknownTask`] if a task is not linked
    /// into this binary.
    pub fn from_record(run_dir: impl AsRef<Path>) -> crate::Result<Pipeline> {
        use crate::graph::Wire;
        use crate::key::{parse_hex, parse_hex_bytes};

        let run_dir = run_dir.as_ref();
        let record = RunRecord::read(run_dir)?;
        let path = run_dir.join(RUN_JSON);
        let mismatch = |reason: String| crate::Error::Record {
            path: path.clone(),
            reason,
        };
        let digests: std::collections::HashMap<&str, Option<crate::key::Digest>> = record
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.output_digest.as_deref().and_then(parse_hex),
                )
            })
            .collect();

        let mut builder = Pipeline::builder(record.pipeline.clone());
        for node in &record.nodes {
            let registration = crate::registry::find_task(&node.task)?;
            let params = node
                .encoded_params
                .as_deref()
                .and_then(parse_hex_bytes)
                .ok_or_else(|| {
                    mismatch(format!(
                        "node `{}` has no encoded parameters (a record of an older version)",
                        node.name
                    ))
                })?;
            let task = registration.build(&params).map_err(|e| {
                mismatch(format!(
                    "the parameters of node `{}` do not fit task `{}`: {e}",
                    node.name, node.task
                ))
            })?;
            let specs = task.meta().inputs;
            if specs.len() != node.inputs.len() {
                return Err(mismatch(format!(
                    "node `{}` has {} inputs, but task `{}` takes {}",
                    node.name,
                    node.inputs.len(),
                    node.task,
                    specs.len()
                )));
            }
            let mut wires = Vec::with_capacity(node.inputs.len());
            for (input, spec) in node.inputs.iter().zip(specs) {
                let ids = input
                    .nodes
                    .iter()
                    .map(|name| {
                        builder.node(name).ok_or_else(|| {
                            mismatch(format!(
                                "node `{}` reads `{name}`, which is not recorded before it",
                                node.name
                            ))
                        })
                    })
                    .collect::<crate::Result<Vec<_>>>()?;
                let gathered = spec.kind == crate::task::InputKind::Many;
                wires.push(match (gathered, ids.as_slice()) {
                    (true, _) => Wire::Many(ids),
                    (false, [id]) => Wire::One(*id),
                    (false, _) => {
                        return Err(mismatch(format!(
                            "input `{}` of node `{}` takes one node, but {} are recorded",
                            spec.name,
                            node.name,
                            ids.len()
                        )));
                    }
                });
            }
            if let Some(recorded) = &node.key {
                let inputs = node
                    .inputs
                    .iter()
                    .map(|input| {
                        input
                            .nodes
                            .iter()
                            .map(|n| digests.get(n.as_str()).copied().flatten())
                            .collect::<Option<Vec<_>>>()
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        mismatch(format!(
                            "an input of node `{}` has no recorded output",
                            node.name
                        ))
                    })?;
                let names = crate::key::Names {
                    pipeline: &record.pipeline,
                    node: &node.name,
                };
                let key = task
                    .components(names, inputs)
                    .map_err(|source| crate::Error::Params {
                        node: node.name.clone(),
                        source,
                    })?
                    .key();
                if hex(&key) != *recorded {
                    return Err(mismatch(format!(
                        "node `{}` does not have the recorded key any more: the code, version \
                         or parameters of task `{}` changed since the run",
                        node.name, node.task
                    )));
                }
            }
            builder.add_node(node.name.clone(), task, params.into(), wires)?;
        }
        Ok(builder.build())
    }
}
