//! Writing a run directory: the first `run.json` when the run starts, then every node's
//! outcome and the failures when it ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::provenance::provenance;
use super::schema::{InputRecord, NodeRecord, RECORD_FORMAT, RUN_JSON, RecordedStatus, RunRecord};
use crate::cache::{StoreError, write_atomically, write_json_atomically};
use crate::chain::chain;
use crate::graph::{Pipeline, Wire};
use crate::report::{NodeReport, NodeStatus, RunReport};
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
            blake3::hash(seed.as_bytes()).to_hex()[..8].to_owned()
        };
        let dir = log_dir.join(format!("{}_{stamp}_{unique}", safe_name(pipeline.name())));
        fs::create_dir(&dir)
            .map_err(|e| StoreError::new("cannot create the run directory", &dir, e))?;
        let nodes = pipeline
            .all_nodes()
            .map(|node| NodeRecord {
                name: node.name().to_string(),
                task: node.task().meta().name.to_owned(),
                params: node.task().params_json(),
                encoded_params: Some(hex_bytes(node.params())),
                inputs: node
                    .wires()
                    .zip(node.task().meta().inputs)
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
                    .upstream()
                    .iter()
                    .map(|id| pipeline.node_name(*id).to_owned())
                    .collect(),
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
            record.status = recorded(node.status());
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

/// How a node's status is recorded.
fn recorded(status: NodeStatus) -> RecordedStatus {
    match status {
        NodeStatus::Ran => RecordedStatus::Ran,
        NodeStatus::Cached => RecordedStatus::Cached,
        NodeStatus::Failed => RecordedStatus::Failed,
        NodeStatus::UpstreamFailed => RecordedStatus::UpstreamFailed,
        NodeStatus::NotNeeded => RecordedStatus::NotNeeded,
        NodeStatus::Cancelled => RecordedStatus::Cancelled,
    }
}
