//! The Slurm executor: every node that must run becomes a batch job running this program
//! as a worker, submitted in dependency order with `--dependency=afterok:...`, so that the
//! cluster holds the order. Nodes whose entries are stored are never submitted.
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

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Stop;
use super::worker::{Job, JobFiles, JobStatus, WORKER_ARG, input_refs};
use crate::cache::{Lookup, Store, write_atomically};
use crate::error::{Error, Result};
use crate::graph::{NodeId, Pipeline};
use crate::plan::{Decision, RunReason};
use crate::progress::Progress;
use crate::record::node_file_name;
use crate::report::{Details, NodeOutcome, NodeStatus, nanos};
use crate::task::{TaskError, WorkerExit};

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
    /// default) rather than a job each.
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

/// What became of a node.
enum State {
    /// Not needed by the run's targets.
    NotNeeded,
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
    Failed(TaskError),
    UpstreamFailed(NodeId),
    Cancelled,
}

/// One node's files in the run directory.
struct Files {
    /// Its job, status and log (the log is set once its job is submitted).
    job: JobFiles,
    /// The exit code of its worker, which the job script writes.
    rc: PathBuf,
}

/// Runs `pipeline` on a Slurm cluster; see the module docs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    pipeline: &Pipeline,
    slurm: &Slurm,
    store: &Store,
    run_dir: &Path,
    keep: &[bool],
    forced: &[bool],
    needed: &[bool],
    stop: &Stop,
    progress: Option<&Progress>,
) -> Result<Vec<NodeOutcome>> {
    let started = Instant::now();
    let (plan, _) = crate::plan::plan(pipeline, Some(store), keep, forced)?;
    // Jobs may start in another directory, on another machine: every path is absolute.
    let run_dir = std::path::absolute(run_dir)
        .map_err(|e| Error::Executor(format!("cannot make the run directory absolute: {e}")))?;
    let jobs_dir = run_dir.join("jobs");
    let slurm_dir = run_dir.join("slurm");
    for dir in [&jobs_dir, &slurm_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::cache::StoreError::new("cannot create", dir, e))?;
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Executor(format!("cannot find this program's path: {e}")))?;
    let data_dir = std::path::absolute(store.root())
        .map_err(|e| Error::Executor(format!("cannot make the data directory absolute: {e}")))?;

    let n = pipeline.len();
    let mut states: Vec<State> = Vec::with_capacity(n);
    let mut files: Vec<Option<Files>> = (0..n).map(|_| None).collect();
    let mut submitted_at = vec![Duration::ZERO; n];
    // The nodes to submit, in the pipeline's (topological) order, with the submitted
    // upstream nodes each waits on.
    let mut to_submit: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
    for (i, node) in pipeline.nodes.iter().enumerate() {
        let id = NodeId(i as u32);
        if !needed[i] {
            states.push(State::NotNeeded);
            continue;
        }
        let (key, replace) = match &plan.nodes[i].decision {
            Decision::Fresh { key } => {
                states.push(State::Stored {
                    key: key.clone(),
                    ran: false,
                    duration: Duration::ZERO,
                });
                continue;
            }
            Decision::Run { key, reason } => (
                key.clone(),
                matches!(reason, RunReason::Forced | RunReason::NotCached),
            ),
            Decision::Pending { .. } => (None, forced[i] || !node.task.meta().cache),
        };
        let name = node_file_name(&node.name);
        let node_files = Files {
            job: JobFiles::new(&jobs_dir, &name, PathBuf::new()),
            rc: jobs_dir.join(format!("{name}.rc")),
        };
        let Ok(inputs) = input_refs(pipeline, node, |up| {
            let key = match &states[up.index()] {
                State::Stored { key, .. } => Some(key.clone()),
                _ => None,
            };
            let status = files[up.index()].as_ref().map(|f| f.job.status.clone());
            Ok::<_, Infallible>((key, status))
        });
        let job = Job::new(
            pipeline,
            node,
            data_dir.clone(),
            key,
            inputs,
            replace,
            node_files.job.status.clone(),
        );
        job.write(&node_files.job.spec)?;
        let _ = std::fs::remove_file(&node_files.job.status);
        let _ = std::fs::remove_file(&node_files.rc);
        let deps = node
            .upstream
            .iter()
            .copied()
            .filter(|up| files[up.index()].is_some())
            .collect();
        files[i] = Some(node_files);
        // Placeholder until submitted.
        states.push(State::Cancelled);
        to_submit.push((id, deps));
    }

    // Group the nodes into jobs: with arrays, nodes of one task with the same resource
    // hints that wait on the same jobs share one job array.
    let mut groups: Vec<Vec<(NodeId, Vec<NodeId>)>> = Vec::new();
    let mut group_of: HashMap<(&'static str, Vec<NodeId>, bool), usize> = HashMap::new();
    for (id, deps) in to_submit {
        let node = &pipeline.nodes[id.index()];
        let replace = forced[id.index()];
        let slot = slurm
            .arrays
            .then(|| (node.task.meta().name, deps.clone(), replace));
        match slot.as_ref().and_then(|k| group_of.get(k)) {
            Some(&g) => groups[g].push((id, deps)),
            None => {
                if let Some(k) = slot {
                    group_of.insert(k, groups.len());
                }
                groups.push(vec![(id, deps)]);
            }
        }
    }

    // Submit the groups in order: a group waits only on nodes before its first member.
    for group in &groups {
        let members: Vec<NodeId> = group.iter().map(|(id, _)| *id).collect();
        let deps = &group[0].1;
        if stop.is_set() {
            for id in &members {
                states[id.index()] = State::Cancelled;
            }
            continue;
        }
        if let Some(failed) = deps
            .iter()
            .find(|d| !matches!(states[d.index()], State::Open { .. }))
        {
            for id in &members {
                states[id.index()] = State::UpstreamFailed(*failed);
            }
            continue;
        }
        let dependency: Vec<String> = deps
            .iter()
            .filter_map(|d| match &states[d.index()] {
                State::Open { job, .. } => Some(job.name()),
                _ => None,
            })
            .collect();
        let first = &pipeline.nodes[members[0].index()];
        let base = node_file_name(&first.name);
        let array = members.len() > 1;
        let script = slurm_dir.join(format!("{base}.sh"));
        let specs: Vec<&Path> = members
            .iter()
            .filter_map(|id| files[id.index()].as_ref().map(|f| f.job.spec.as_path()))
            .collect();
        write_atomically(&script, job_script(&exe, &specs).as_bytes())?;
        let (out, err) = if array {
            (
                slurm_dir.join(format!("{base}_%a.out")),
                slurm_dir.join(format!("{base}_%a.err")),
            )
        } else {
            (
                slurm_dir.join(format!("{base}.out")),
                slurm_dir.join(format!("{base}.err")),
            )
        };
        let mut sbatch = Command::new("sbatch");
        sbatch
            .arg("--parsable")
            .arg(format!(
                "--job-name=pw-{}-{}",
                pipeline.name(),
                if array {
                    first.task.meta().name
                } else {
                    &first.name
                }
            ))
            .arg(format!("--output={}", out.display()))
            .arg(format!("--error={}", err.display()));
        if array {
            sbatch.arg(format!("--array=0-{}", members.len() - 1));
        }
        if !dependency.is_empty() {
            sbatch
                .arg(format!("--dependency=afterok:{}", dependency.join(":")))
                .arg("--kill-on-invalid-dep=yes");
        }
        sbatch.args(resource_args(first.task.meta().resources));
        if let Some(partition) = &slurm.partition {
            sbatch.arg(format!("--partition={partition}"));
        }
        if let Some(account) = &slurm.account {
            sbatch.arg(format!("--account={account}"));
        }
        sbatch.args(&slurm.sbatch_args).arg(&script);
        let submitted = sbatch.output();
        let at = started.elapsed();
        let id = match submitted {
            Ok(out) if out.status.success() => parse_sbatch(&String::from_utf8_lossy(&out.stdout)),
            Ok(out) => Err(format!(
                "sbatch failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run sbatch: {e}")),
        };
        match id {
            Ok(id) => {
                tracing::info!(target: "pipewright", job = %id, nodes = members.len(), "job submitted");
                for (index, member) in members.iter().enumerate() {
                    let job = JobRef {
                        id: id.clone(),
                        index: array.then_some(index),
                    };
                    if let Some(f) = files[member.index()].as_mut() {
                        f.job.log = if array {
                            slurm_dir.join(format!("{base}_{index}.out"))
                        } else {
                            out.clone()
                        };
                    }
                    submitted_at[member.index()] = at;
                    states[member.index()] = State::Open { job, ended: None };
                    if let Some(progress) = progress {
                        progress.started(&pipeline.nodes[member.index()].name);
                    }
                }
            }
            Err(why) => {
                tracing::error!(target: "pipewright", node = %first.name, "{why}");
                for member in &members {
                    states[member.index()] = State::Failed(TaskError::failed(why.clone()));
                }
            }
        }
    }

    tracing::info!(
        target: "pipewright",
        jobs = groups.len(),
        nodes = submitted_at.iter().filter(|t| !t.is_zero()).count(),
        elapsed = ?started.elapsed(),
        "all jobs submitted"
    );
    follow(pipeline, &mut states, &files, stop, progress);

    // The outcome of every node, with the entry of each stored one.
    let mut outcomes = Vec::with_capacity(n);
    for (i, state) in states.into_iter().enumerate() {
        let node = &pipeline.nodes[i];
        let mut outcome = NodeOutcome::new(NodeStatus::NotNeeded);
        match state {
            State::NotNeeded => {}
            State::Stored { key, ran, duration } => {
                let mut details = Details {
                    reason: match (ran, &plan.nodes[i].decision) {
                        (true, Decision::Run { reason, .. }) => Some(reason.clone()),
                        _ => None,
                    },
                    ..Details::default()
                };
                match store.lookup(node.task.meta().name, &key) {
                    Lookup::Present(meta) => {
                        details.output_digest = Some(meta.output_digest.clone());
                        details.entry = Some(meta);
                        if ran {
                            outcome.status = NodeStatus::Ran;
                            outcome.started = nanos(submitted_at[i]);
                            outcome.duration = nanos(duration);
                        } else {
                            outcome.status = NodeStatus::Cached;
                        }
                    }
                    _ => {
                        outcome.status = NodeStatus::Failed;
                        details.error = Some(Arc::new(TaskError::failed(
                            "the worker reported an output, but its entry is not in the store",
                        )));
                    }
                }
                details.key = Some(key);
                outcome.details = Some(Box::new(details));
            }
            State::Failed(error) => {
                outcome.status = NodeStatus::Failed;
                outcome.started = nanos(submitted_at[i]);
                outcome.details_mut().error = Some(Arc::new(error));
            }
            State::UpstreamFailed(up) => {
                outcome.status = NodeStatus::UpstreamFailed;
                outcome.failed_upstream = up.0;
            }
            State::Cancelled | State::Open { .. } => outcome.status = NodeStatus::Cancelled,
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Waits for every submitted node to end, asking Slurm every [`POLL`]; on stop, cancels
/// the jobs still open.
fn follow(
    pipeline: &Pipeline,
    states: &mut [State],
    files: &[Option<Files>],
    stop: &Stop,
    progress: Option<&Progress>,
) {
    loop {
        let open: Vec<usize> = (0..states.len())
            .filter(|&i| matches!(states[i], State::Open { .. }))
            .collect();
        if open.is_empty() {
            return;
        }
        if stop.is_set() {
            let ids: Vec<String> = open
                .iter()
                .filter_map(|&i| match &states[i] {
                    State::Open { job, .. } => Some(job.id.clone()),
                    _ => None,
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            tracing::warn!(target: "pipewright", jobs = ids.len(), "cancelling the submitted jobs");
            let _ = Command::new("scancel").args(&ids).status();
            for i in open {
                // A job that ended before the cancel keeps its outcome.
                let settled = files[i]
                    .as_ref()
                    .and_then(|f| JobStatus::read(&f.job.status))
                    .map(|status| from_status(status, &pipeline.nodes[i]));
                states[i] = settled.unwrap_or(State::Cancelled);
            }
            return;
        }
        let queue = squeue(open.iter().filter_map(|&i| match &states[i] {
            State::Open { job, .. } => Some(job.id.as_str()),
            _ => None,
        }));
        let now = Instant::now();
        // In the pipeline's order, so that an upstream node settles before the nodes
        // Slurm cancelled because of it.
        for i in open {
            let Some(node_files) = &files[i] else {
                continue;
            };
            if let Some(status) = JobStatus::read(&node_files.job.status) {
                states[i] = from_status(status, &pipeline.nodes[i]);
            } else {
                let State::Open { job, ended } = &mut states[i] else {
                    continue;
                };
                let slurm_state = match &queue {
                    Some(queue) => queue.get(&job.name()).cloned().or_else(|| {
                        // Not listed: ended and purged, or never known.
                        Some(SlurmState {
                            state: "UNKNOWN".to_owned(),
                            reason: "the cluster no longer knows the job".to_owned(),
                        })
                    }),
                    None => None,
                };
                let Some(slurm_state) = slurm_state else {
                    continue;
                };
                if !slurm_state.is_terminal() {
                    continue;
                }
                let ended_at = *ended.get_or_insert(now);
                let dependency_failed = slurm_state.state == "CANCELLED"
                    && slurm_state.reason == "DependencyNeverSatisfied";
                if !dependency_failed
                    && now.duration_since(ended_at) < GRACE
                    && !node_files.rc.exists()
                {
                    // Give a shared file system time to show the worker's files.
                    continue;
                }
                let job = job.clone();
                states[i] = if dependency_failed {
                    let upstream = pipeline.nodes[i]
                        .upstream
                        .iter()
                        .find(|up| {
                            matches!(
                                states[up.index()],
                                State::Failed(_) | State::UpstreamFailed(_) | State::Cancelled
                            )
                        })
                        .or_else(|| pipeline.nodes[i].upstream.first())
                        .copied();
                    match upstream {
                        Some(up) => State::UpstreamFailed(up),
                        None => State::Failed(job_error(&job, &slurm_state, node_files)),
                    }
                } else {
                    State::Failed(job_error(&job, &slurm_state, node_files))
                };
            }
            if let (Some(progress), false) = (progress, matches!(states[i], State::Open { .. })) {
                progress.settled(&pipeline.nodes[i].name, status_of(&states[i]));
            }
        }
        let guard = stop.guard();
        if !stop.is_set() {
            drop(stop.wait(guard, Some(Instant::now() + POLL)));
        }
    }
}

/// The status a settled state shows in the progress bar.
fn status_of(state: &State) -> NodeStatus {
    match state {
        State::Stored { ran: true, .. } => NodeStatus::Ran,
        State::Stored { ran: false, .. } => NodeStatus::Cached,
        State::Failed(_) => NodeStatus::Failed,
        State::UpstreamFailed(_) => NodeStatus::UpstreamFailed,
        State::NotNeeded => NodeStatus::NotNeeded,
        State::Cancelled | State::Open { .. } => NodeStatus::Cancelled,
    }
}

/// The state a worker's status file gives its node.
fn from_status(status: JobStatus, node: &crate::graph::Node) -> State {
    if status.ok {
        return match status.key {
            Some(key) => State::Stored {
                key,
                ran: !status.cached,
                duration: Duration::from_secs_f64(status.duration_secs.max(0.0)),
            },
            None => State::Failed(TaskError::failed(format!(
                "the worker of `{}` reported an output without its key",
                node.name
            ))),
        };
    }
    State::Failed(status.into_error(node.task.meta().timeout))
}

/// The error of a job that ended without a status file: from the exit code its script
/// wrote, else from Slurm's state and reason.
fn job_error(job: &JobRef, state: &SlurmState, files: &Files) -> TaskError {
    let rc = std::fs::read_to_string(&files.rc)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    match rc {
        // bash gives a command killed by signal N the status 128 + N.
        Some(rc) if rc != 0 => TaskError::Crashed(WorkerExit {
            code: (rc <= 128).then_some(rc),
            signal: (rc > 128).then_some(rc - 128),
            last_output: String::new(),
            log: files.job.log.clone(),
        }),
        _ => TaskError::failed(format!(
            "Slurm job {} ended {}: {} (log: `{}`)",
            job.name(),
            state.state,
            state.describe(),
            files.job.log.display()
        )),
    }
}

/// A job's state and reason, as `squeue` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlurmState {
    state: String,
    reason: String,
}

impl SlurmState {
    /// Whether the job has ended.
    fn is_terminal(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "UNKNOWN"
        )
    }

    /// What the state means for the node.
    fn describe(&self) -> String {
        let what = match self.state.as_str() {
            "COMPLETED" => "the job completed, but its worker left no status",
            "FAILED" => "the job failed",
            "CANCELLED" if self.reason == "DependencyNeverSatisfied" => {
                "an upstream job failed, so the job never started"
            }
            "CANCELLED" => "the job was cancelled",
            "TIMEOUT" => "the job ran past its time limit (`time` of the task)",
            "OUT_OF_MEMORY" => "the job ran out of memory (`mem` of the task)",
            "NODE_FAIL" => "the cluster node running the job failed",
            "PREEMPTED" => "the job was preempted",
            "BOOT_FAIL" => "the cluster node could not boot",
            "DEADLINE" => "the job missed its deadline",
            _ => "the job is lost",
        };
        if self.reason.is_empty() || self.reason == "None" {
            what.to_owned()
        } else {
            format!("{what} (reason: {})", self.reason)
        }
    }
}

/// The states of the given jobs (and of their array tasks), by `ID` or `ID_INDEX`; `None`
/// if `squeue` could not be asked.
fn squeue<'a>(ids: impl Iterator<Item = &'a str>) -> Option<HashMap<String, SlurmState>> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%T|%r", "-j"])
        .arg(ids.join(","))
        .output()
        .ok()?;
    if !out.status.success() {
        // A lone id Slurm has forgotten is an error; several are left out of the answer.
        let stderr = String::from_utf8_lossy(&out.stderr);
        return stderr.contains("Invalid job id").then(HashMap::new);
    }
    Some(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `squeue -o '%i|%T|%r'` lines. Array tasks still pending together, shown as one
/// line (`ID_[3-9,12]` or `ID_[3-99%8]`), each get that line's state.
fn parse_squeue(text: &str) -> HashMap<String, SlurmState> {
    let mut states = HashMap::new();
    for line in text.lines() {
        let mut parts = line.trim().splitn(3, '|');
        let (Some(id), Some(state)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (id, reason) = (id.trim(), parts.next().unwrap_or("").trim());
        // Some versions add a suffix to a state (`CANCELLED by 0`).
        let state = state.split_whitespace().next().unwrap_or("").to_owned();
        if id.is_empty() || state.is_empty() {
            continue;
        }
        let state = SlurmState {
            state,
            reason: reason.to_owned(),
        };
        match id.split_once("_[") {
            Some((array, ranges)) => {
                let ranges = ranges.trim_end_matches(']');
                let ranges = ranges.split('%').next().unwrap_or("");
                for range in ranges.split(',') {
                    let (first, last) = range.split_once('-').unwrap_or((range, range));
                    let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>())
                    else {
                        continue;
                    };
                    for index in first..=last.min(first + 1_000_000) {
                        states.insert(format!("{array}_{index}"), state.clone());
                    }
                }
            }
            None => {
                states.insert(id.to_owned(), state);
            }
        }
    }
    states
}

/// The job id `sbatch --parsable` printed (`ID` or `ID;CLUSTER`).
fn parse_sbatch(stdout: &str) -> Result<String, String> {
    let id = stdout.trim().split(';').next().unwrap_or("").trim();
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(format!("sbatch printed no job id: {:?}", stdout.trim()))
    }
}

/// `sbatch` arguments for a task's resource hints.
fn resource_args(resources: crate::task::Resources) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(cpus) = resources.cpus {
        args.push(format!("--cpus-per-task={cpus}"));
    }
    if let Some(mem) = resources.mem {
        args.push(format!("--mem={}M", mem.div_ceil(1 << 20).max(1)));
    }
    if let Some(time) = resources.time {
        let secs = time.as_secs() + u64::from(time.subsec_nanos() > 0);
        let secs = secs.max(60);
        args.push(format!(
            "--time={}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
    }
    args
}

/// The batch script of a job: runs the worker on the spec of its array task (or its only
/// spec), then writes the worker's exit code beside the spec, after the worker returned.
fn job_script(exe: &Path, specs: &[&Path]) -> String {
    let mut script =
        String::from("#!/bin/bash\n# A pipewright job: each array task runs one node.\nspecs=(\n");
    for spec in specs {
        let _ = writeln!(script, "  {}", quote(&spec.display().to_string()));
    }
    let _ = write!(
        script,
        ")\nspec=${{specs[${{SLURM_ARRAY_TASK_ID:-0}}]}}\n{} {WORKER_ARG} \"$spec\"\nrc=$?\n\
         # Written here, after the worker returned: never from an EXIT trap, which reports 0\n\
         # for a job that scancel or a time limit ended.\n\
         printf '%s\\n' \"$rc\" > \"${{spec%.json}}.rc.tmp\" && mv \"${{spec%.json}}.rc.tmp\" \"${{spec%.json}}.rc\"\n\
         exit \"$rc\"\n",
        quote(&exe.display().to_string())
    );
    script
}

/// `text` quoted for bash.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_states() {
        let states = parse_squeue(
            "12|COMPLETED|None\n13|CANCELLED|DependencyNeverSatisfied\n16_3|RUNNING|None\n\
             16_[4-9,12]|PENDING|Resources\n17|CANCELLED by 0|None\n18_[0-2%1]|PENDING|None\n",
        );
        assert_eq!(states.len(), 4 + 7 + 3);
        assert_eq!(states["16_12"].state, "PENDING");
        assert_eq!(states["16_4"].reason, "Resources");
        assert!(!states.contains_key("16_10"));
        assert!(states.contains_key("18_2"));
        assert_eq!(states["12"].state, "COMPLETED");
        assert!(states["12"].is_terminal());
        assert_eq!(states["13"].reason, "DependencyNeverSatisfied");
        assert!(!states["16_3"].is_terminal());
        assert_eq!(states["17"].state, "CANCELLED");
    }

    #[test]
    fn states_say_what_happened() {
        let state = |s: &str, r: &str| SlurmState {
            state: s.to_owned(),
            reason: r.to_owned(),
        };
        assert_eq!(
            state("TIMEOUT", "TimeLimit").describe(),
            "the job ran past its time limit (`time` of the task) (reason: TimeLimit)"
        );
        assert_eq!(
            state("OUT_OF_MEMORY", "None").describe(),
            "the job ran out of memory (`mem` of the task)"
        );
        assert_eq!(
            state("NODE_FAIL", "None").describe(),
            "the cluster node running the job failed"
        );
        for terminal in [
            "COMPLETED",
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
        ] {
            assert!(state(terminal, "None").is_terminal());
        }
        for running in ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"] {
            assert!(!state(running, "None").is_terminal());
        }
    }

    #[test]
    fn sbatch_ids_and_resources() {
        assert_eq!(parse_sbatch("123\n"), Ok("123".to_owned()));
        assert_eq!(parse_sbatch("123;cluster\n"), Ok("123".to_owned()));
        assert!(parse_sbatch("Submitted batch job 5").is_err());
        let resources = crate::task::Resources::new(
            Some(2),
            Some(1_500_000_000),
            Some(Duration::from_secs(5400)),
        );
        assert_eq!(
            resource_args(resources),
            ["--cpus-per-task=2", "--mem=1431M", "--time=1:30:00"]
        );
    }

    #[test]
    fn scripts_quote_their_paths() {
        let script = job_script(
            Path::new("/opt/it's here/prog"),
            &[Path::new("/runs/a.json"), Path::new("/runs/b.json")],
        );
        assert!(script.contains("'/opt/it'\\''s here/prog' __pipewright-worker \"$spec\""));
        assert!(script.contains("  '/runs/b.json'\n"));
        assert!(script.contains("exit \"$rc\""));
    }
}
