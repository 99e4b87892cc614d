//! Writing a run directory: the journal's header when the run starts, then `run.json`,
//! with every node and its outcome, and the failures when it ends.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::provenance::Gathering;
use serde::Serialize;

use super::schema::{
    BranchRecord, JOURNAL, JournalHeader, Provenance, RECORD_FORMAT, RUN_JSON, RecordedStatus,
    RunRecord,
};
use crate::cache::{StoreError, write_atomically, write_json_atomically};
use crate::chain::chain;
use crate::graph::{Node, Pipeline, Wire};
use crate::progress::{Journal, recorded};
use crate::report::{NodeReport, RunReport};
use crate::text::{hex_bytes, node_file_name, safe_name};

/// The folder of a run directory that holds one file per failed node.
const FAILURES: &str = "failures";

/// The time now, RFC 3339 in UTC to the microsecond, so that records sort by it.
fn now() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// A run directory being written.
pub(crate) struct RunDir {
    pub(crate) dir: PathBuf,
    started: String,
    data_dir: PathBuf,
    jobs: usize,
    params: Option<serde_json::Value>,
    /// The run's journal, until the run's progress takes it.
    journal: Option<Journal>,
    provenance: Gathering,
}

/// Makes run directory names unique within a process.
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

impl RunDir {
    /// Creates the run directory under `log_dir` and its journal, and starts gathering
    /// the run's provenance; `params` are the program's parameters, recorded as they are.
    pub(crate) fn create(
        log_dir: &Path,
        pipeline: &Pipeline,
        data_dir: &Path,
        jobs: usize,
        params: Option<&serde_json::Value>,
    ) -> Result<Self, StoreError> {
        let provenance = Gathering::start();
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
            blake3::hash(seed.as_bytes()).to_hex()[..8].to_owned()
        };
        let dir = log_dir.join(format!("{}_{stamp}_{unique}", safe_name(pipeline.name())));
        fs::create_dir(&dir)
            .map_err(|e| StoreError::new("cannot create the run directory", &dir, e))?;
        let header = JournalHeader {
            format: RECORD_FORMAT,
            pipeline: Cow::Borrowed(pipeline.name()),
            started: Cow::Borrowed(&started),
            data_dir: Cow::Borrowed(data_dir),
            jobs,
            host: crate::cache::host_name(),
            pid: std::process::id(),
            params: params.cloned(),
            nodes: pipeline
                .all_nodes()
                .map(|node| {
                    (
                        Cow::Borrowed(node.name()),
                        Cow::Borrowed(node.task().meta().name),
                        node.upstream().iter().map(|id| id.index() as u32).collect(),
                    )
                })
                .collect(),
            maps: pipeline
                .nodes
                .maps()
                .iter()
                .map(|map| (map.node.index() as u32, map.over.index() as u32))
                .collect(),
        };
        let journal_path = dir.join(JOURNAL);
        let mut line = serde_json::to_vec(&header).map_err(|e| {
            StoreError::new("cannot encode", &journal_path, std::io::Error::other(e))
        })?;
        line.push(b'\n');
        let journal = Journal::create(&journal_path, line)?;
        Ok(RunDir {
            dir,
            started,
            data_dir: data_dir.to_owned(),
            jobs,
            params: params.cloned(),
            journal: Some(journal),
            provenance,
        })
    }

    /// The run's journal, which its progress appends to while it goes on.
    pub(crate) fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take()
    }

    /// Writes the failures and `run.json`, with every node of `pipeline` and its outcome
    /// in `report`; `run.json` is what is read from then on.
    pub(crate) fn finish(
        mut self,
        pipeline: &Pipeline,
        report: &RunReport,
    ) -> Result<PathBuf, StoreError> {
        if let Some(journal) = self.journal.take() {
            journal.close()?;
        }
        let (elapsed, cancelled) = (report.elapsed(), report.cancelled());
        let status = if cancelled {
            "cancelled"
        } else if report.succeeded() {
            "succeeded"
        } else {
            "failed"
        };
        self.write_failures(report)?;
        let record = FinishedRun {
            format: RECORD_FORMAT,
            pipeline: pipeline.name(),
            status,
            started: &self.started,
            ended: Some(now()),
            elapsed_secs: Some(elapsed.as_secs_f64()),
            data_dir: &self.data_dir,
            jobs: self.jobs,
            nodes: NodeRecords { pipeline, report },
            provenance: self.provenance.join(),
            pid: Some(std::process::id()),
            params: self.params,
        };
        write_json_atomically(&self.dir.join(RUN_JSON), &record, false)?;
        Ok(self.dir)
    }

    /// Writes the record of a run in progress in `dir`, which the process is about to leave,
    /// from its journal: the run is cancelled, the nodes that settled keep how they ended,
    /// and those that did not are cancelled. A run that wrote its `run.json` is left as it
    /// is.
    pub(crate) fn abandon(dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(RUN_JSON);
        if path.exists() {
            return Ok(());
        }
        let mut record = RunRecord::read(dir).map_err(|e| {
            StoreError::new("cannot read", &dir.join(JOURNAL), std::io::Error::other(e))
        })?;
        record.status = "cancelled".to_owned();
        record.ended = Some(now());
        for node in &mut record.nodes {
            if node.status == RecordedStatus::Pending {
                node.status = RecordedStatus::Cancelled;
            }
            for branch in &mut node.branches {
                if branch.status == RecordedStatus::Pending {
                    branch.status = RecordedStatus::Cancelled;
                }
            }
        }
        write_json_atomically(&path, &record, false)
    }

    /// Writes a file for each failed node under `failures/`: its error chain, and the
    /// backtrace of a panic.
    fn write_failures(&self, report: &RunReport) -> Result<(), StoreError> {
        let failures: Vec<NodeReport<'_>> =
            report.nodes().filter(|n| n.error().is_some()).collect();
        if failures.is_empty() {
            return Ok(());
        }
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
        Ok(())
    }
}

/// A finished run as [`RunRecord`] serializes it, its nodes made one at a time as they are
/// written: a run of a million nodes never holds the records of all of them.
#[derive(Serialize)]
struct FinishedRun<'a> {
    format: u32,
    pipeline: &'a str,
    status: &'a str,
    started: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_secs: Option<f64>,
    data_dir: &'a Path,
    jobs: usize,
    nodes: NodeRecords<'a>,
    provenance: Provenance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<serde_json::Value>,
}

/// Every node of a pipeline with its outcome in a report, serialized as a sequence of
/// [`NodeRecord`](super::schema::NodeRecord)s.
struct NodeRecords<'a> {
    pipeline: &'a Pipeline,
    report: &'a RunReport,
}

impl Serialize for NodeRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.pipeline
                .all_nodes()
                .zip(self.report.nodes())
                .map(|(node, outcome)| NodeOut::of(self.pipeline, self.report, node, &outcome)),
        )
    }
}

/// A node as [`NodeRecord`](super::schema::NodeRecord) serializes it, borrowing what the
/// pipeline and the report hold instead of copying it.
#[derive(Serialize)]
struct NodeOut<'a> {
    name: &'a str,
    task: &'a str,
    params: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoded_params: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<InputOut<'a>>,
    status: RecordedStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    error: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_failed: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    over: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    branches: Vec<BranchRecord>,
}

/// An input as [`InputRecord`](super::schema::InputRecord) serializes it.
#[derive(Serialize)]
struct InputOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    gathered: bool,
    nodes: Vec<&'a str>,
}

impl<'a> NodeOut<'a> {
    /// `node` of `pipeline`, which ended as `outcome` says in `report`.
    fn of(
        pipeline: &'a Pipeline,
        report: &RunReport,
        node: Node<'a>,
        outcome: &NodeReport<'a>,
    ) -> Self {
        let (started_secs, duration_secs) = outcome.times_secs();
        let task = node.task();
        NodeOut {
            name: node.name(),
            task: task.meta().name,
            params: task.params_json(),
            encoded_params: Some(hex_bytes(node.params())),
            inputs: node
                .wires()
                .zip(task.meta().inputs)
                .map(|(wire, spec)| InputOut {
                    name: spec.name,
                    gathered: matches!(wire, Wire::Many(_)),
                    nodes: wire
                        .ids()
                        .iter()
                        .map(|id| pipeline.node_name(*id))
                        .collect(),
                })
                .collect(),
            status: recorded(outcome.status()),
            key: outcome.key(),
            output_digest: outcome.output_digest(),
            reason: outcome.reason().map(ToString::to_string),
            started_secs,
            duration_secs,
            worker: outcome.worker(),
            error: outcome.error().map(|e| chain(e)).unwrap_or_default(),
            upstream_failed: outcome.failed_upstream(),
            over: node.map().map(|m| pipeline.node_name(m.over)),
            branches: report
                .branches_named(node.name())
                .map(|(branch, element)| branch_record(branch, element))
                .collect(),
        }
    }
}

/// The record of one branch of a mapped node, whose element's short digest is `element`.
fn branch_record(branch: NodeReport<'_>, element: Option<String>) -> BranchRecord {
    let (started_secs, duration_secs) = branch.times_secs();
    BranchRecord {
        name: branch.name().to_owned(),
        element,
        status: recorded(branch.status()),
        key: branch.key().map(str::to_owned),
        output_digest: branch.output_digest().map(str::to_owned),
        reason: branch.reason().map(ToString::to_string),
        started_secs,
        duration_secs,
        worker: branch.worker(),
        error: branch.error().map(|e| chain(e)).unwrap_or_default(),
        upstream_failed: branch.failed_upstream().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::NodeRecord;
    use super::*;

    /// `node` written, read back as a [`NodeRecord`] and written again.
    fn round_trip(node: &NodeOut<'_>) -> (String, String) {
        let written = serde_json::to_string(node).unwrap();
        let read: NodeRecord = serde_json::from_str(&written).unwrap();
        (written, serde_json::to_string(&read).unwrap())
    }

    #[test]
    fn an_abandoned_run_records_what_had_not_settled_as_cancelled() {
        use super::super::schema::{JournalHeader, JournalLine};
        let dir = tempfile::tempdir().unwrap();
        let header = JournalHeader {
            format: RECORD_FORMAT,
            pipeline: "p".into(),
            started: "2026-01-01T00:00:00.000000Z".into(),
            data_dir: Path::new("/data").into(),
            jobs: 1,
            host: "here".to_owned(),
            pid: 7,
            params: None,
            nodes: vec![
                ("list".into(), "t".into(), vec![]),
                ("m".into(), "u".into(), vec![0]),
            ],
            maps: vec![(1, 0)],
        };
        let lines = [
            serde_json::to_string(&header).unwrap(),
            serde_json::to_string(&JournalLine::new(0, RecordedStatus::Ran)).unwrap(),
            serde_json::to_string(&JournalLine {
                branches: Some(2),
                ..JournalLine::new(1, RecordedStatus::Pending)
            })
            .unwrap(),
            serde_json::to_string(&JournalLine {
                branch: Some(0),
                ..JournalLine::new(1, RecordedStatus::Ran)
            })
            .unwrap(),
        ];
        fs::write(dir.path().join(JOURNAL), lines.join("\n") + "\n").unwrap();
        RunDir::abandon(dir.path()).unwrap();
        let record = RunRecord::read(dir.path()).unwrap();
        assert_eq!(record.status, "cancelled");
        let mapped = &record.nodes[1];
        assert_eq!(mapped.status, RecordedStatus::Cancelled);
        let branches: Vec<(&str, RecordedStatus)> = mapped
            .branches
            .iter()
            .map(|b| (b.name.as_str(), b.status))
            .collect();
        assert_eq!(
            branches,
            [
                ("m[0]", RecordedStatus::Ran),
                ("m[1]", RecordedStatus::Cancelled)
            ]
        );
    }

    #[test]
    fn a_node_is_written_as_its_record_writes_it() {
        let full = NodeOut {
            name: "n",
            task: "t",
            params: serde_json::json!({"x": 1}),
            encoded_params: Some("01".to_owned()),
            inputs: vec![
                InputOut {
                    name: "a",
                    gathered: false,
                    nodes: vec!["m"],
                },
                InputOut {
                    name: "b",
                    gathered: true,
                    nodes: vec!["m", "k"],
                },
            ],
            status: RecordedStatus::Failed,
            key: Some("ab"),
            output_digest: Some("cd"),
            reason: Some("new".to_owned()),
            started_secs: Some(0.5),
            duration_secs: Some(0.25),
            worker: Some(1),
            error: vec!["it failed".to_owned(), "because".to_owned()],
            upstream_failed: Some("k"),
            over: Some("m"),
            branches: Vec::new(),
        };
        let (written, again) = round_trip(&full);
        assert_eq!(written, again);
        let read: NodeRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(read.parents, ["m", "k"]);
        assert_eq!(read.inputs[1].nodes, ["m", "k"]);
        assert!(read.inputs[1].gathered && !read.inputs[0].gathered);
        assert_eq!(read.upstream_failed.as_deref(), Some("k"));

        let empty = NodeOut {
            name: "n",
            task: "t",
            params: serde_json::Value::Null,
            encoded_params: None,
            inputs: Vec::new(),
            status: RecordedStatus::NotNeeded,
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
        };
        let (written, again) = round_trip(&empty);
        assert_eq!(written, again);
        assert_eq!(
            written,
            r#"{"name":"n","task":"t","params":null,"status":"not needed"}"#
        );
    }
}
