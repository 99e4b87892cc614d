//! The Slurm executor: every node that must run becomes a batch job running this program
//! as a worker, submitted in dependency order with `--dependency=afterok:...`, so that the
//! cluster holds the order. Nodes whose entries are stored are never submitted.
//!
//! A mapped node's branches are made once its list is stored, which the client reads:
//! they become job arrays of up to 1000 tasks, the nodes below wait on them, and the
//! branches of a map over it pair with its tasks through `--dependency=aftercorr:...` (see
//! `submit`).
//!
//! A node's key hashes its inputs' content, so the key of a node below one that runs is
//! not known at submission: its worker computes it from the entries its inputs wrote (their
//! workers' status files name them) and uses an entry already stored under it instead of
//! running the task.
//!
//! The client learns how each job ended from the status file its worker writes into the
//! run directory (trusted first), then from the exit code the job script writes after the
//! worker returns, and from `squeue -t all` for jobs that ended without either (never
//! started, cancelled, past their time limit, lost with their node).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::worker::JobFiles;
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::plan::RunReason;
use crate::report::NodeOutcome;
use crate::task::TaskError;

mod follow;
mod submit;

pub(crate) use submit::run;

/// How often the client asks Slurm about the jobs that have not ended.
const POLL: Duration = Duration::from_millis(500);

/// How long a job Slurm says has ended may take to show its status file (a shared file
/// system may show it late).
const GRACE: Duration = Duration::from_secs(5);

/// Options of the Slurm executor ([`Executor::Slurm`](crate::Executor::Slurm)).
///
/// The data directory, the run directory and this program must be on a file system that
/// every node of the cluster shares, at the same paths: each job runs this program (as
/// `#[pipewright::main]` allows) to read its inputs from the store and write its output
/// there.
///
/// A mapped node's branches run as job arrays of up to 1000 tasks, submitted once the list
/// they go over is stored, with the keys they have in process; a map over a mapped node pairs each of
/// its tasks with one above (`--dependency=aftercorr`).
///
/// # Examples
///
/// ```
/// use pipewright::{Executor, Slurm};
///
/// let slurm = Slurm::new()
///     .partition("batch")
///     .account("genomics")
///     .sbatch_arg("--qos=short");
/// let executor = Executor::Slurm(slurm);
/// # let _ = executor;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Slurm {
    /// `--partition` of every job.
    pub partition: Option<String>,
    /// `--account` of every job.
    pub account: Option<String>,
    /// Further `sbatch` arguments for every job.
    pub sbatch_args: Vec<String>,
    /// Whether nodes of one task that wait on the same jobs go in one job array (the
    /// default) rather than a job each. A mapped node's branches are a job array either
    /// way.
    pub arrays: bool,
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm {
            partition: None,
            account: None,
            sbatch_args: Vec::new(),
            arrays: true,
        }
    }
}

impl Slurm {
    /// Jobs on the cluster's default partition and account, fan-outs as job arrays.
    pub fn new() -> Self {
        Slurm::default()
    }

    /// Submits to `partition`.
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// Charges `account`.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Passes `arg` to every `sbatch` (e.g. `--qos=short`, `--constraint=avx2`).
    pub fn sbatch_arg(mut self, arg: impl Into<String>) -> Self {
        self.sbatch_args.push(arg.into());
        self
    }

    /// Whether fan-outs go in job arrays (the default) or a job per node.
    pub fn arrays(mut self, arrays: bool) -> Self {
        self.arrays = arrays;
        self
    }
}

/// Checks that `sbatch` and `squeue` can be run here.
pub(crate) fn check_tools() -> Result<()> {
    for tool in ["sbatch", "squeue", "scancel"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(Error::Executor(format!(
                "the Slurm executor needs `{tool}`, which cannot be run here"
            )));
        }
    }
    Ok(())
}

/// A submitted job, or one task of a job array.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobRef {
    id: String,
    index: Option<usize>,
}

impl JobRef {
    /// How `squeue` and `--dependency` name it: `ID` or `ID_INDEX`.
    fn name(&self) -> String {
        match self.index {
            Some(i) => format!("{}_{i}", self.id),
            None => self.id.clone(),
        }
    }
}

/// A node, or a branch of a mapped node, as the client follows it.
struct Slot {
    node: NodeId,
    /// Which branch of the mapped node `node` it is, if it is one.
    branch: Option<usize>,
    state: State,
    /// Its files, once its job is written.
    files: Option<Files>,
    /// When it was submitted, from the start of the run (zero if it was not).
    submitted_at: Duration,
    /// Why it runs, when that was known before it was submitted.
    reason: Option<RunReason>,
    /// The slots whose jobs its job waits on.
    deps: Vec<usize>,
    /// For a branch in a job array: the first slot of that array, which names it.
    array: Option<usize>,
    /// Whether the journal and the progress bar were told how it settled.
    reported: bool,
}

impl Slot {
    fn new(node: NodeId, branch: Option<usize>, state: State) -> Self {
        Slot {
            node,
            branch,
            state,
            files: None,
            submitted_at: Duration::ZERO,
            reason: None,
            deps: Vec::new(),
            array: None,
            reported: false,
        }
    }
}

/// What became of a node or a branch.
enum State {
    /// Not needed by the run's targets.
    NotNeeded,
    /// Not submitted yet: it waits on an upstream node whose job is not submitted, or on a
    /// mapped node whose branches are not made (with a mapped node, on its inputs).
    Waiting,
    /// Its job is written, and is submitted at the end of the pass that wrote it.
    Queued,
    /// Its entry is stored: fresh at submission, or found by its worker.
    Stored {
        key: String,
        ran: bool,
        duration: Duration,
    },
    /// Submitted and not ended yet.
    Open {
        job: JobRef,
        ended: Option<Instant>,
    },
    /// A mapped node whose branches are made; its outcome once they all settled.
    Mapped {
        settled: Option<NodeOutcome>,
    },
    Failed(TaskError),
    /// Kept from running by the slot given, which did not succeed.
    UpstreamFailed(usize),
    Cancelled,
}

impl State {
    /// Whether it will not change any more (`Some`), and then whether it succeeded.
    fn settled(&self) -> Option<bool> {
        match self {
            State::Waiting | State::Queued | State::Open { .. } => None,
            State::Mapped { settled } => settled.as_ref().map(|o| o.status.is_success()),
            State::Stored { .. } => Some(true),
            State::NotNeeded | State::Failed(_) | State::UpstreamFailed(_) | State::Cancelled => {
                Some(false)
            }
        }
    }

    /// Whether its job is submitted, or about to be, and has not ended.
    fn pending(&self) -> bool {
        matches!(self, State::Queued | State::Open { .. })
    }
}

/// One node's files in the run directory.
struct Files {
    /// Its job, status and log (the log is set once its job is submitted).
    job: JobFiles,
    /// The exit code of its worker, which the job script writes.
    rc: PathBuf,
}
