//! Writing a run directory: the journal's header when the run starts, then `run.json`,
//! with every node and its outcome, and the failures when it ends.

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::provenance::Gathering;
use serde::Serialize;

use super::schema::{
    BranchRecord, JOURNAL, JournalHeader, Provenance, RECORD_FORMAT, RUN_JSON, RecordedStatus,
    RunRecord,
};
use crate::cache::{
    StoreError, json, write_atomically, write_atomically_with, write_json_atomically,
};
use crate::chain::chain;
use crate::graph::{Node, Pipeline, Wire};
use crate::progress::{Journal, recorded};
use crate::report::{NodeReport, RunReport};
use crate::text::{node_file_name, push_hex, safe_name};

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
        let ended = now();
        let provenance = self.provenance.join();
        let record = FinishedRun {
            format: RECORD_FORMAT,
            pipeline,
            report,
            status,
            started: &self.started,
            ended: &ended,
            elapsed_secs: elapsed.as_secs_f64(),
            data_dir: &self.data_dir,
            jobs: self.jobs,
            provenance: &provenance,
            params: self.params.as_ref(),
        };
        write_atomically_with(&self.dir.join(RUN_JSON), |file| record.write(file))?;
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

/// A finished run, written as [`RunRecord`] reads it: the same JSON as the record's own
/// serializer writes (its fields in the same order, the same escapes and numbers), each
/// node written straight from the pipeline and the report into a buffer that is written
/// out whenever it fills, so that a run of a million nodes never holds the records of all
/// of them.
struct FinishedRun<'a> {
    format: u32,
    pipeline: &'a Pipeline,
    report: &'a RunReport,
    status: &'a str,
    started: &'a str,
    ended: &'a str,
    elapsed_secs: f64,
    data_dir: &'a Path,
    jobs: usize,
    provenance: &'a Provenance,
    params: Option<&'a serde_json::Value>,
}

/// How many bytes of JSON are gathered before they are written.
const JSON_BUFFER: usize = 256 * 1024;

impl FinishedRun<'_> {
    /// Writes the record to `file`.
    fn write(&self, file: &mut fs::File) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(JSON_BUFFER + JSON_BUFFER / 4);
        out.extend_from_slice(b"{\"format\":");
        json::number(&mut out, u64::from(self.format));
        out.extend_from_slice(b",\"pipeline\":");
        json::string(&mut out, self.pipeline.name());
        out.extend_from_slice(b",\"status\":");
        json::string(&mut out, self.status);
        out.extend_from_slice(b",\"started\":");
        json::string(&mut out, self.started);
        out.extend_from_slice(b",\"ended\":");
        json::string(&mut out, self.ended);
        out.extend_from_slice(b",\"elapsed_secs\":");
        json_value(&mut out, &self.elapsed_secs)?;
        out.extend_from_slice(b",\"data_dir\":");
        json_value(&mut out, self.data_dir)?;
        out.extend_from_slice(b",\"jobs\":");
        json::number(&mut out, self.jobs as u64);
        out.extend_from_slice(b",\"nodes\":[");
        for (i, (node, outcome)) in self
            .pipeline
            .all_nodes()
            .zip(self.report.nodes())
            .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            write_node(&mut out, self.pipeline, self.report, node, &outcome)?;
            if out.len() >= JSON_BUFFER {
                file.write_all(&out)?;
                out.clear();
            }
        }
        out.extend_from_slice(b"],\"provenance\":");
        json_value(&mut out, self.provenance)?;
        out.extend_from_slice(b",\"pid\":");
        json::number(&mut out, u64::from(std::process::id()));
        if let Some(params) = self.params {
            out.extend_from_slice(b",\"params\":");
            json_value(&mut out, params)?;
        }
        out.push(b'}');
        file.write_all(&out)
    }
}

/// Writes `node` of `pipeline`, which ended as `outcome` says in `report`, as a
/// [`NodeRecord`](super::schema::NodeRecord) serializes it.
fn write_node(
    out: &mut Vec<u8>,
    pipeline: &Pipeline,
    report: &RunReport,
    node: Node<'_>,
    outcome: &NodeReport<'_>,
) -> std::io::Result<()> {
    let task = node.task();
    let meta = task.meta();
    out.extend_from_slice(b"{\"name\":");
    json::string(out, node.name());
    out.extend_from_slice(b",\"task\":");
    json::string(out, meta.name);
    out.extend_from_slice(b",\"params\":");
    json_value(out, &task.params_json())?;
    out.extend_from_slice(b",\"encoded_params\":\"");
    push_hex(out, node.params());
    out.push(b'"');
    let mut wires = node.wires().zip(meta.inputs).peekable();
    if wires.peek().is_some() {
        out.extend_from_slice(b",\"inputs\":[");
        for (i, (wire, spec)) in wires.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            json::string(out, spec.name);
            if matches!(wire, Wire::Many(_)) {
                out.extend_from_slice(b",\"gathered\":true");
            }
            out.extend_from_slice(b",\"nodes\":[");
            for (j, id) in wire.ids().iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                json::string(out, pipeline.node_name(*id));
            }
            out.extend_from_slice(b"]}");
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"status\":");
    json::string(out, recorded(outcome.status()).as_str());
    if let Some(key) = outcome.key() {
        out.extend_from_slice(b",\"key\":");
        json::string(out, key);
    }
    if let Some(digest) = outcome.output_digest() {
        out.extend_from_slice(b",\"output_digest\":");
        json::string(out, digest);
    }
    if let Some(reason) = outcome.reason() {
        out.extend_from_slice(b",\"reason\":");
        json::string(out, &reason.to_string());
    }
    let (started_secs, duration_secs) = outcome.times_secs();
    if let Some(secs) = started_secs {
        out.extend_from_slice(b",\"started_secs\":");
        json_value(out, &secs)?;
    }
    if let Some(secs) = duration_secs {
        out.extend_from_slice(b",\"duration_secs\":");
        json_value(out, &secs)?;
    }
    if let Some(worker) = outcome.worker() {
        out.extend_from_slice(b",\"worker\":");
        json::number(out, worker as u64);
    }
    if let Some(error) = outcome.error() {
        let lines = chain(error);
        if !lines.is_empty() {
            out.extend_from_slice(b",\"error\":");
            json_value(out, &lines)?;
        }
    }
    if let Some(name) = outcome.failed_upstream() {
        out.extend_from_slice(b",\"upstream_failed\":");
        json::string(out, name);
    }
    if let Some(map) = node.map() {
        out.extend_from_slice(b",\"over\":");
        json::string(out, pipeline.node_name(map.over));
        // Only a mapped node has branches.
        let branches: Vec<BranchRecord> = report
            .branches_named(node.name())
            .map(|(branch, element)| branch_record(branch, element))
            .collect();
        if !branches.is_empty() {
            out.extend_from_slice(b",\"branches\":");
            json_value(out, &branches)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// Appends `value` as serde_json writes it.
fn json_value(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)
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
    use super::*;

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
}
