//! Following submitted jobs: their workers' status files first, then the exit codes their
//! scripts write, then `squeue -t all`, asked every half second; and cancelling them.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Files, GRACE, JobRef, Slot, State};
use crate::exec::Stop;
use crate::exec::worker::JobStatus;
use crate::graph::Pipeline;
use crate::progress::Progress;
use crate::report::{NodeOutcome, NodeStatus, nanos};
use crate::task::{TaskError, WorkerExit};

/// Asks Slurm once about the slots whose jobs have not ended, and settles those that have;
/// on stop, cancels the jobs still open instead, and settles every open slot.
pub(super) fn poll(pipeline: &Pipeline, slots: &mut [Slot], stop: &Stop) {
    let open: Vec<usize> = (0..slots.len())
        .filter(|&i| matches!(slots[i].state, State::Open { .. }))
        .collect();
    if open.is_empty() {
        return;
    }
    if stop.is_set() {
        let ids: Vec<String> = open
            .iter()
            .filter_map(|&i| match &slots[i].state {
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
            let slot = &slots[i];
            let settled = slot
                .files
                .as_ref()
                .and_then(|f| JobStatus::read(&f.job.status))
                .map(|status| from_status(status, &pipeline.node_at(slot.node)));
            slots[i].state = settled.unwrap_or(State::Cancelled);
        }
        return;
    }
    let queue = squeue(open.iter().filter_map(|&i| match &slots[i].state {
        State::Open { job, .. } => Some(job.id.as_str()),
        _ => None,
    }));
    let now = Instant::now();
    for i in open {
        let slot = &slots[i];
        let Some(node_files) = &slot.files else {
            continue;
        };
        let node = pipeline.node_at(slot.node);
        let state = if let Some(status) = JobStatus::read(&node_files.job.status) {
            from_status(status, &node)
        } else {
            let State::Open { job, ended } = &slot.state else {
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
            let ended_at = ended.unwrap_or(now);
            let dependency_failed = slurm_state.state == "CANCELLED"
                && slurm_state.reason == "DependencyNeverSatisfied";
            if dependency_failed {
                // Blamed on the job it waited on that did not succeed, once that one has
                // settled: slots are read in order, and a branch comes after its nodes.
                let deps = &slot.deps;
                match deps
                    .iter()
                    .find(|&&d| slots[d].state.settled() == Some(false))
                {
                    Some(&up) => State::UpstreamFailed(up),
                    None if deps.iter().any(|&d| slots[d].state.settled().is_none()) => continue,
                    None => match deps.first() {
                        Some(&up) => State::UpstreamFailed(up),
                        None => State::Failed(job_error(job, &slurm_state, node_files)),
                    },
                }
            } else if now.duration_since(ended_at) < GRACE && !node_files.rc.exists() {
                // Give a shared file system time to show the worker's files.
                if let State::Open { ended, .. } = &mut slots[i].state {
                    ended.get_or_insert(now);
                }
                continue;
            } else {
                State::Failed(job_error(job, &slurm_state, node_files))
            }
        };
        slots[i].state = state;
    }
}

/// Tells the progress bar and the journal how each slot, a node or a branch, settled, once:
/// those that settled since the last call.
pub(super) fn report_settled(progress: Option<&Progress>, pipeline: &Pipeline, slots: &mut [Slot]) {
    let Some(progress) = progress else {
        return;
    };
    for i in 0..slots.len() {
        if slots[i].reported || slots[i].state.settled().is_none() {
            continue;
        }
        slots[i].reported = true;
        let slot = &slots[i];
        let mut outcome = outcome_of(slot);
        match slot.branch {
            None => {
                // A node kept from running by a failed node names it; by a failed branch,
                // or a mapped node by its own branches, nothing.
                if let State::UpstreamFailed(up) = slot.state
                    && up < pipeline.len()
                {
                    outcome.failed_upstream = up as u32;
                }
                progress.settled(slot.node.index(), pipeline.node_name(slot.node), &outcome);
            }
            Some(branch) => {
                // The branch it paired with above, if that one failed it.
                let upstream = match slot.state {
                    State::UpstreamFailed(up) => {
                        slots[up].branch.map(|j| (slots[up].node.index(), j))
                    }
                    _ => None,
                };
                progress.branch_settled(
                    slot.node.index(),
                    pipeline.node_name(slot.node),
                    branch,
                    &outcome,
                    upstream,
                );
            }
        }
    }
}

/// How a settled slot ended, as far as the client knows without reading its entry: its
/// status, error, submission time and, once stored, how long its task ran.
pub(super) fn outcome_of(slot: &Slot) -> NodeOutcome {
    let mut outcome = NodeOutcome::new(status_of(&slot.state));
    if !slot.submitted_at.is_zero() {
        outcome.started = nanos(slot.submitted_at);
    }
    match &slot.state {
        State::Stored { duration, .. } => outcome.duration = nanos(*duration),
        State::Failed(error) => {
            outcome.details_mut().error = Some(Arc::new(TaskError::failed(error.to_string())));
        }
        State::Mapped {
            settled: Some(settled),
        } => {
            outcome.started = settled.started;
            outcome.duration = settled.duration;
            outcome.details_mut().error = settled.details.as_ref().and_then(|d| d.error.clone());
        }
        _ => {}
    }
    outcome
}

/// The status a settled state shows in the progress bar.
fn status_of(state: &State) -> NodeStatus {
    match state {
        State::Stored { ran: true, .. } => NodeStatus::Ran,
        State::Stored { ran: false, .. } => NodeStatus::Cached,
        State::Failed(_) => NodeStatus::Failed,
        State::UpstreamFailed(_) => NodeStatus::UpstreamFailed,
        State::NotNeeded => NodeStatus::NotNeeded,
        State::Mapped {
            settled: Some(outcome),
        } => outcome.status,
        State::Cancelled
        | State::Open { .. }
        | State::Waiting
        | State::Queued
        | State::Mapped { settled: None } => NodeStatus::Cancelled,
    }
}

/// The state a worker's status file gives its node.
fn from_status(status: JobStatus, node: &crate::graph::Node<'_>) -> State {
    if status.ok {
        return match status.key {
            Some(key) => State::Stored {
                key,
                ran: !status.cached,
                duration: Duration::from_secs_f64(status.duration_secs.max(0.0)),
            },
            None => State::Failed(TaskError::failed(format!(
                "the worker of `{}` reported an output without its key",
                node.name()
            ))),
        };
    }
    State::Failed(status.into_error(node.task().meta().timeout))
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
}
