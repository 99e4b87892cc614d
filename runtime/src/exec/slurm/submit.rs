//! Submitting a run's nodes: each node's job written, nodes grouped into jobs and job
//! arrays, `sbatch` called in dependency order; and each node's outcome once all ended.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::follow::follow;
use super::{Files, JobRef, Slurm, State};
use crate::cache::{Lookup, Store, write_atomically};
use crate::error::{Error, Result};
use crate::exec::Settings;
use crate::exec::worker::{Job, JobFiles, WORKER_ARG, input_refs};
use crate::graph::{NodeId, Pipeline};
use crate::plan::{Decision, Plan, RunReason};
use crate::report::{Details, NodeOutcome, NodeStatus, nanos};
use crate::task::TaskError;
use crate::text::node_file_name;

/// Runs `pipeline` on a Slurm cluster as `settings` say; see the module docs.
pub(crate) fn run(
    pipeline: &Pipeline,
    slurm: &Slurm,
    settings: &Settings<'_>,
) -> Result<Vec<NodeOutcome>> {
    let (Some(store), Some(run_dir)) = (settings.store, settings.run_dir) else {
        return Err(Error::Executor(
            "the Slurm executor needs a store and a run directory".to_owned(),
        ));
    };
    let started = Instant::now();
    let (plan, _) = crate::plan::plan(pipeline, Some(store), settings.keep, settings.forced)?;
    let mut submission = Submission::new(pipeline, slurm, settings, store, run_dir, started)?;
    let to_submit = submission.prepare(&plan)?;
    let groups = submission.group(to_submit);
    for group in &groups {
        submission.submit(group)?;
    }
    tracing::info!(
        target: "pipewright",
        jobs = groups.len(),
        nodes = submission.submitted_at.iter().filter(|t| !t.is_zero()).count(),
        elapsed = ?started.elapsed(),
        "all jobs submitted"
    );
    follow(
        pipeline,
        &mut submission.states,
        &submission.files,
        &settings.stop,
        settings.progress,
    );
    Ok(submission.outcomes(store, &plan))
}

/// The nodes of a run on the cluster, from their jobs' files to how each ended.
struct Submission<'a> {
    pipeline: &'a Pipeline,
    slurm: &'a Slurm,
    settings: &'a Settings<'a>,
    /// When the run started.
    started: Instant,
    /// This program, which every job runs as a worker.
    exe: PathBuf,
    /// The store's directory, absolute.
    data_dir: PathBuf,
    /// The directories of the jobs' files and of Slurm's scripts and logs.
    jobs_dir: PathBuf,
    slurm_dir: PathBuf,
    /// What became of each node.
    states: Vec<State>,
    /// The files of each node that is submitted.
    files: Vec<Option<Files>>,
    /// When each node was submitted, from the start of the run (zero if it was not).
    submitted_at: Vec<Duration>,
}

/// A node to submit, with the submitted upstream nodes it waits on.
type ToSubmit = (NodeId, Vec<NodeId>);

impl<'a> Submission<'a> {
    /// Makes the run's directories; every path is absolute, as jobs may start in another
    /// directory, on another machine.
    fn new(
        pipeline: &'a Pipeline,
        slurm: &'a Slurm,
        settings: &'a Settings<'a>,
        store: &Store,
        run_dir: &Path,
        started: Instant,
    ) -> Result<Self> {
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
        let data_dir = std::path::absolute(store.root()).map_err(|e| {
            Error::Executor(format!("cannot make the data directory absolute: {e}"))
        })?;
        let n = pipeline.len();
        Ok(Submission {
            pipeline,
            slurm,
            settings,
            started,
            exe,
            data_dir,
            jobs_dir,
            slurm_dir,
            states: Vec::with_capacity(n),
            files: (0..n).map(|_| None).collect(),
            submitted_at: vec![Duration::ZERO; n],
        })
    }

    /// Writes the job of every node that must run, as `plan` decided, and returns them
    /// in the pipeline's (topological) order.
    fn prepare(&mut self, plan: &Plan) -> Result<Vec<ToSubmit>> {
        let pipeline = self.pipeline;
        let mut to_submit = Vec::new();
        for (i, node) in pipeline.all_nodes().enumerate() {
            let id = NodeId(i as u32);
            if !self.settings.needed[i] {
                self.states.push(State::NotNeeded);
                continue;
            }
            let (key, replace) = match &plan.nodes[i].decision {
                Decision::Fresh { key } => {
                    self.states.push(State::Stored {
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
                // The runner refuses a pipeline with a mapped node before this.
                Decision::Pending { .. } | Decision::Mapped { .. } => {
                    (None, self.settings.forced[i] || !node.task().meta().cache)
                }
            };
            let name = node_file_name(node.name());
            let node_files = Files {
                job: JobFiles::new(&self.jobs_dir, &name, PathBuf::new()),
                rc: self.jobs_dir.join(format!("{name}.rc")),
            };
            let Ok(inputs) = input_refs(
                pipeline,
                &node,
                None,
                |_| None,
                |up, _| {
                    let key = match &self.states[up.index()] {
                        State::Stored { key, .. } => Some(key.clone()),
                        _ => None,
                    };
                    let status = self.files[up.index()]
                        .as_ref()
                        .map(|f| f.job.status.clone());
                    Ok::<_, Infallible>((key, status))
                },
            );
            let job = Job::new(
                pipeline,
                &node,
                self.data_dir.clone(),
                key,
                inputs,
                replace,
                node_files.job.status.clone(),
            );
            job.write(&node_files.job.spec)?;
            let _ = std::fs::remove_file(&node_files.job.status);
            let _ = std::fs::remove_file(&node_files.rc);
            let deps = node
                .upstream()
                .iter()
                .copied()
                .filter(|up| self.files[up.index()].is_some())
                .collect();
            self.files[i] = Some(node_files);
            // Placeholder until submitted.
            self.states.push(State::Cancelled);
            to_submit.push((id, deps));
        }
        Ok(to_submit)
    }

    /// Groups the nodes into jobs: with arrays, nodes of one task with the same resource
    /// hints that wait on the same jobs share one job array.
    fn group(&self, to_submit: Vec<ToSubmit>) -> Vec<Vec<ToSubmit>> {
        let mut groups: Vec<Vec<ToSubmit>> = Vec::new();
        let mut group_of: HashMap<(&'static str, Vec<NodeId>, bool), usize> = HashMap::new();
        for (id, deps) in to_submit {
            let node = &self.pipeline.node_at(id);
            let replace = self.settings.forced[id.index()];
            let slot = self
                .slurm
                .arrays
                .then(|| (node.task().meta().name, deps.clone(), replace));
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
        groups
    }

    /// Submits one group, which waits only on nodes before its first member: groups are
    /// submitted in order.
    fn submit(&mut self, group: &[ToSubmit]) -> Result<()> {
        let members: Vec<NodeId> = group.iter().map(|(id, _)| *id).collect();
        let deps = &group[0].1;
        if self.settings.stop.is_set() {
            for id in &members {
                self.states[id.index()] = State::Cancelled;
            }
            return Ok(());
        }
        if let Some(failed) = deps
            .iter()
            .find(|d| !matches!(self.states[d.index()], State::Open { .. }))
        {
            for id in &members {
                self.states[id.index()] = State::UpstreamFailed(*failed);
            }
            return Ok(());
        }
        let dependency: Vec<String> = deps
            .iter()
            .filter_map(|d| match &self.states[d.index()] {
                State::Open { job, .. } => Some(job.name()),
                _ => None,
            })
            .collect();
        let first = self.pipeline.node_at(members[0]);
        let base = node_file_name(first.name());
        let array = members.len() > 1;
        let script = self.slurm_dir.join(format!("{base}.sh"));
        let specs: Vec<&Path> = members
            .iter()
            .filter_map(|id| {
                self.files[id.index()]
                    .as_ref()
                    .map(|f| f.job.spec.as_path())
            })
            .collect();
        write_atomically(&script, job_script(&self.exe, &specs).as_bytes())?;
        let out = if array {
            self.slurm_dir.join(format!("{base}_%a.out"))
        } else {
            self.slurm_dir.join(format!("{base}.out"))
        };
        let err = if array {
            self.slurm_dir.join(format!("{base}_%a.err"))
        } else {
            self.slurm_dir.join(format!("{base}.err"))
        };
        let job_name = if array {
            first.task().meta().name
        } else {
            first.name()
        };
        let mut sbatch = Command::new("sbatch");
        sbatch
            .arg("--parsable")
            .arg(format!("--job-name=pw-{}-{job_name}", self.pipeline.name()))
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
        sbatch.args(resource_args(first.task().meta().resources));
        if let Some(partition) = &self.slurm.partition {
            sbatch.arg(format!("--partition={partition}"));
        }
        if let Some(account) = &self.slurm.account {
            sbatch.arg(format!("--account={account}"));
        }
        sbatch.args(&self.slurm.sbatch_args).arg(&script);
        let submitted = sbatch.output();
        let at = self.started.elapsed();
        let id = match submitted {
            Ok(out) if out.status.success() => parse_sbatch(&String::from_utf8_lossy(&out.stdout)),
            Ok(out) => Err(format!(
                "sbatch failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run sbatch: {e}")),
        };
        let id = match id {
            Ok(id) => id,
            Err(why) => {
                tracing::error!(target: "pipewright", node = %first.name(), "{why}");
                for member in &members {
                    self.states[member.index()] = State::Failed(TaskError::failed(why.clone()));
                }
                return Ok(());
            }
        };
        tracing::info!(target: "pipewright", job = %id, nodes = members.len(), "job submitted");
        for (index, member) in members.iter().enumerate() {
            let job = JobRef {
                id: id.clone(),
                index: array.then_some(index),
            };
            if let Some(f) = self.files[member.index()].as_mut() {
                f.job.log = if array {
                    self.slurm_dir.join(format!("{base}_{index}.out"))
                } else {
                    out.clone()
                };
            }
            self.submitted_at[member.index()] = at;
            self.states[member.index()] = State::Open { job, ended: None };
            if let Some(progress) = self.settings.progress {
                progress.started(self.pipeline.node_at(*member).name());
            }
        }
        Ok(())
    }

    /// The outcome of every node, with the entry of each stored one.
    fn outcomes(self, store: &Store, plan: &Plan) -> Vec<NodeOutcome> {
        let mut outcomes = Vec::with_capacity(self.states.len());
        for (i, state) in self.states.into_iter().enumerate() {
            let node = &self.pipeline.node_at(NodeId::at(i));
            let submitted_at = self.submitted_at[i];
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
                    match store.lookup_fresh(node.task().meta().name, &key) {
                        Lookup::Present(meta) => {
                            details.output_digest = Some(meta.output_digest());
                            details.entry = Some(meta);
                            if ran {
                                outcome.status = NodeStatus::Ran;
                                outcome.started = nanos(submitted_at);
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
                    outcome.started = nanos(submitted_at);
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
        outcomes
    }
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
