//! What `run.json` holds, and reading it back.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{StoreError, write_json_atomically};

/// The layout of `run.json`.
pub const RECORD_FORMAT: u32 = 1;

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
#[non_exhaustive]
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
    /// `pending` while the run goes on, then how the node ended.
    pub status: RecordedStatus,
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
    pub gathered: bool,
    /// The upstream nodes wired to it.
    pub nodes: Vec<String>,
}

/// Where and with what a run ran.
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
    /// [`crate::error::Error::Record`] if it cannot be read or does not parse.
    pub fn read(run_dir: &Path) -> crate::error::Result<Self> {
        let path = run_dir.join(RUN_JSON);
        let bytes = fs::read(&path).map_err(|e| crate::error::Error::Record {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let record: RunRecord =
            serde_json::from_slice(&bytes).map_err(|e| crate::error::Error::Record {
                path: path.clone(),
                reason: format!("it does not parse: {e}"),
            })?;
        if record.format != RECORD_FORMAT {
            return Err(crate::error::Error::Record {
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

/// The file of a run directory that holds its record.
pub(crate) const RUN_JSON: &str = "run.json";
