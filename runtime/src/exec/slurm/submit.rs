//! Submitting a run's nodes, in passes: each node's job written, nodes grouped into jobs
//! and job arrays, `sbatch` called in dependency order; and each node's outcome once all
//! ended.
//!
//! The first pass submits every node that does not wait on a mapped node; each later one,
//! after the client has asked Slurm which jobs ended, what that made ready. A mapped
//! node's branches are made once its inputs are stored (a map over a mapped node: once
//! that node's branches are made), each decided by its key as in process: those whose
//! entries are not stored are submitted as job arrays of up to 1000 tasks, and the nodes
//! that gather them wait on those with `afterok`. The branches of a map over a mapped node wait on their
//! paired branches above with `aftercorr`: task `j` of their array waits on task `j` of
//! the array above, so each starts when its own input is there, and a failed branch keeps
//! only its paired branch below from running. Its key is then known only to its worker.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::follow::{poll, report_settled};
use super::{Files, JobRef, POLL, Slot, Slurm, State};
use crate::cache::{Store, write_atomically};
use crate::error::{Error, Result};
use crate::exec::Settings;
use crate::exec::mapped::branch_name;
use crate::exec::worker::{Job, JobFiles, WORKER_ARG, input_refs};
use crate::graph::{Node, NodeId, Pipeline};
use crate::key::Digest;
use crate::plan::{Decision, Plan, RunReason};
use crate::report::{MapOutcomes, NodeOutcome};
use crate::task::TaskError;
use crate::text::node_file_name;

mod maps;
mod outcomes;

/// The most tasks of one job array: Slurm's default `MaxArraySize` (1001) allows the
/// indices 0 to 1000. More branches go in more arrays; a map over them pairs with each.
const ARRAY_TASKS: usize = 1000;

/// Runs `pipeline` on a Slurm cluster as `settings` say; see the module docs. Returns how
/// each node ended, and each branch of its mapped nodes.
pub(crate) fn run(
    pipeline: &Pipeline,
    slurm: &Slurm,
    settings: &Settings<'_>,
) -> Result<(Vec<NodeOutcome>, Vec<MapOutcomes>)> {
    let (Some(store), Some(run_dir)) = (settings.store, settings.run_dir) else {
        return Err(Error::Executor(
            "the Slurm executor needs a store and a run directory".to_owned(),
        ));
    };
    let started = Instant::now();
    let (plan, _) = crate::plan::plan(pipeline, Some(store), settings.keep, settings.forced)?;
    let mut submission = Submission::new(pipeline, slurm, settings, store, run_dir, started)?;
    loop {
        let before = submission.unsettled();
        if let Err(error) = submission.advance(&plan) {
            // The jobs submitted so far would run on with no one to follow them.
            settings.stop.set();
            poll(pipeline, &mut submission.slots, &settings.stop);
            return Err(error);
        }
        report_settled(settings.progress, pipeline, &mut submission.slots);
        if !submission
            .slots
            .iter()
            .any(|s| matches!(s.state, State::Open { .. }))
        {
            // What settled in that pass without a job (a submission that failed, a map
            // whose branches are all stored) may let more be decided: pass again, until a
            // pass changes nothing.
            if submission.unsettled() == before {
                break;
            }
            continue;
        }
        let guard = settings.stop.guard();
        if !settings.stop.is_set() {
            drop(settings.stop.wait(guard, Some(Instant::now() + POLL)));
        }
        poll(pipeline, &mut submission.slots, &settings.stop);
        report_settled(settings.progress, pipeline, &mut submission.slots);
    }
    tracing::info!(
        target: "pipewright",
        jobs = submission.jobs,
        slots = submission.slots.iter().filter(|s| !s.submitted_at.is_zero()).count(),
        elapsed = ?started.elapsed(),
        "all jobs ended"
    );
    Ok(submission.outcomes())
}

/// The nodes and branches of a run on the cluster, from their jobs' files to how each
/// ended.
struct Submission<'a> {
    pipeline: &'a Pipeline,
    slurm: &'a Slurm,
    settings: &'a Settings<'a>,
    store: &'a Store,
    /// When the run started.
    started: Instant,
    /// This program, which every job runs as a worker.
    exe: PathBuf,
    /// The store's directory, absolute.
    data_dir: PathBuf,
    /// The directories of the jobs' files and of Slurm's scripts and logs.
    jobs_dir: PathBuf,
    slurm_dir: PathBuf,
    /// Each node, by its index, then the branches of each mapped node, in the order they
    /// were made.
    slots: Vec<Slot>,
    /// The branches of each mapped node (in the order of the pipeline's maps), once made.
    made: Vec<Option<Made>>,
    /// How many tasks each job array submitted has.
    arrays: HashMap<String, usize>,
    /// How many jobs and job arrays were submitted.
    jobs: usize,
}

/// The branches of a mapped node, once made: the slots `first..first + n`.
struct Made {
    first: usize,
    n: usize,
    /// Each branch's element digest (over a list).
    elements: Vec<Digest>,
    /// The first branch that did not succeed, once the mapped node settled.
    first_bad: Option<usize>,
}

/// Slots submitted together: one job, or a job array with a task per slot.
struct Unit {
    members: Vec<usize>,
    /// The slots whose jobs every member waits on.
    deps: Vec<usize>,
    /// Whether each member waits on the task of a job array above that its first dep is,
    /// and takes that task's index in its own array (a map over a mapped node).
    corr: bool,
    /// Whether it is a job array even with one member (a mapped node's branches).
    array: bool,
}

/// Whether a node that waits can be decided now.
enum Ready {
    /// Not yet: an input it needs is not there.
    NotYet,
    /// Never: the slot given did not succeed.
    Blocked(usize),
    Yes,
}

/// What a store says of a key.
enum Decided {
    /// Its entry can be used.
    Stored(String),
    /// It must run, for the reason given.
    Run(String, RunReason),
}

impl<'a> Submission<'a> {
    /// Makes the run's directories; every path is absolute, as jobs may start in another
    /// directory, on another machine.
    fn new(
        pipeline: &'a Pipeline,
        slurm: &'a Slurm,
        settings: &'a Settings<'a>,
        store: &'a Store,
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
        let slots = (0..pipeline.len())
            .map(|i| {
                let state = if settings.needed[i] {
                    State::Waiting
                } else {
                    State::NotNeeded
                };
                Slot::new(NodeId::at(i), None, state)
            })
            .collect();
        Ok(Submission {
            pipeline,
            slurm,
            settings,
            store,
            started,
            exe,
            data_dir,
            jobs_dir,
            slurm_dir,
            slots,
            made: pipeline.nodes.maps().iter().map(|_| None).collect(),
            arrays: HashMap::new(),
            jobs: 0,
        })
    }

    /// One pass: settles the mapped nodes whose branches all settled, decides every
    /// waiting node that can be decided now (as `plan` did, where it could), makes the
    /// branches of each mapped node whose inputs are there, and submits what must run.
    fn advance(&mut self, plan: &Plan) -> Result<()> {
        let stopped = self.settings.stop.is_set();
        let mut units = Vec::new();
        for i in 0..self.pipeline.len() {
            let id = NodeId::at(i);
            match self.slots[i].state {
                State::Mapped { settled: None } => {
                    self.settle_map(id);
                    continue;
                }
                State::Waiting => {}
                _ => continue,
            }
            if stopped {
                self.slots[i].state = State::Cancelled;
                continue;
            }
            match self.readiness(id) {
                Ready::NotYet => continue,
                Ready::Blocked(up) => self.slots[i].state = State::UpstreamFailed(up),
                Ready::Yes if self.pipeline.node_at(id).map().is_some() => {
                    self.make(id, &mut units)?;
                    self.settle_map(id);
                    continue;
                }
                Ready::Yes => self.queue_node(plan, id, &mut units)?,
            }
        }
        let units = self.group(units);
        if !units.is_empty() {
            tracing::info!(target: "pipewright", units = units.len(), "submitting");
        }
        for unit in &units {
            self.submit(unit)?;
        }
        Ok(())
    }

    /// How many slots have not settled, and how many there are: a pass that changes
    /// neither decided nothing.
    fn unsettled(&self) -> (usize, usize) {
        let open = self.slots.iter().filter(|s| s.state.settled().is_none());
        (open.count(), self.slots.len())
    }

    /// Whether the waiting node `id` can be decided now: its inputs are stored or their
    /// jobs submitted; a mapped node's inputs must be stored, but for the mapped node it
    /// maps over, whose branches need only be made.
    fn readiness(&self, id: NodeId) -> Ready {
        let node = self.pipeline.node_at(id);
        let paired = node.map().filter(|m| m.elements.is_none()).map(|m| m.over);
        let mut ready = Ready::Yes;
        for &up in node.upstream() {
            let state = &self.slots[up.index()].state;
            if paired == Some(up) && matches!(state, State::Mapped { .. }) {
                // Each branch waits only on its own branch above, failed or not.
                continue;
            }
            match state.settled() {
                Some(false) => return Ready::Blocked(up.index()),
                Some(true) => continue,
                None => {}
            }
            match state {
                State::Mapped { .. } if node.map().is_none() => {
                    // A branch that already failed would never give its output.
                    let bad = self
                        .branch_slots(up)
                        .find(|&s| self.slots[s].state.settled() == Some(false));
                    if let Some(bad) = bad {
                        return Ready::Blocked(bad);
                    }
                }
                State::Queued | State::Open { .. } if node.map().is_none() => {}
                _ => ready = Ready::NotYet,
            }
        }
        ready
    }

    /// The slots of the branches of mapped node `id`, once made.
    fn branch_slots(&self, id: NodeId) -> std::ops::Range<usize> {
        self.made_of(id).map_or(0..0, |m| m.first..m.first + m.n)
    }

    /// The branches of mapped node `id`, once made.
    fn made_of(&self, id: NodeId) -> Option<&Made> {
        let k = self.pipeline.nodes.map_index(id)?;
        self.made[k].as_ref()
    }

    /// The name of a slot: its node's, or its branch's.
    fn slot_name(&self, s: usize) -> String {
        let slot = &self.slots[s];
        let name = self.pipeline.node_name(slot.node);
        match slot.branch {
            Some(i) => branch_name(name, i),
            None => name.to_owned(),
        }
    }

    /// Decides node `id`, whose inputs are stored or submitted: stored as `plan` or its
    /// inputs' entries say, else its job written and queued into `units`.
    fn queue_node(&mut self, plan: &Plan, id: NodeId, units: &mut Vec<Unit>) -> Result<()> {
        let i = id.index();
        let node = self.pipeline.node_at(id);
        let decided = match &plan.nodes[i].decision {
            Decision::Fresh { key } => Some(Decided::Stored(key.clone())),
            Decision::Run {
                key: Some(key),
                reason,
            } => Some(Decided::Run(key.clone(), reason.clone())),
            // Its inputs are known now if they are all stored.
            _ => match self.input_digests(&node) {
                Some(digests) => match self.decide_key(
                    id,
                    &node,
                    node.name(),
                    digests,
                    self.settings.forced[id.index()],
                ) {
                    Ok(decided) => Some(decided),
                    Err(error) => {
                        self.slots[i].state = State::Failed(error);
                        return Ok(());
                    }
                },
                None => None,
            },
        };
        let (key, replace) = match decided {
            Some(Decided::Stored(key)) => {
                self.slots[i].state = State::Stored {
                    key,
                    ran: false,
                    duration: Duration::ZERO,
                };
                return Ok(());
            }
            Some(Decided::Run(key, reason)) => {
                let replace = matches!(reason, RunReason::Forced | RunReason::NotCached);
                self.slots[i].reason = Some(reason);
                (Some(key), replace)
            }
            None => (None, self.settings.forced[i] || !node.task().meta().cache),
        };
        self.write_job(i, key, replace, None)?;
        let deps = self.deps_of(&node);
        self.slots[i].deps.clone_from(&deps);
        units.push(Unit {
            members: vec![i],
            deps,
            corr: false,
            array: false,
        });
        Ok(())
    }

    /// The submitted slots whose outputs `node` reads: its upstream nodes', and the
    /// branches' of each mapped node it gathers.
    fn deps_of(&self, node: &Node<'_>) -> Vec<usize> {
        let mut deps = Vec::new();
        for &up in node.upstream() {
            match &self.slots[up.index()].state {
                State::Mapped { settled: None } => deps.extend(
                    self.branch_slots(up)
                        .filter(|&s| self.slots[s].state.pending()),
                ),
                state if state.pending() => deps.push(up.index()),
                _ => {}
            }
        }
        deps
    }

    /// Writes the job of slot `s`, under `key` where it is known, with the digest of its
    /// element (in hex) for a branch over a list; the slot is then queued.
    fn write_job(
        &mut self,
        s: usize,
        key: Option<String>,
        replace: bool,
        element: Option<String>,
    ) -> Result<()> {
        let name = self.slot_name(s);
        let file = node_file_name(&name);
        let files = Files {
            job: JobFiles::new(&self.jobs_dir, &file, PathBuf::new()),
            rc: self.jobs_dir.join(format!("{file}.rc")),
        };
        let slot = &self.slots[s];
        let node = self.pipeline.node_at(slot.node);
        let branch = slot.branch.map(|i| (i, element.as_deref()));
        let branches = |up| {
            self.pipeline
                .nodes
                .map(up)
                .map(|_| self.branch_slots(up).len())
        };
        let Ok(inputs) = input_refs(self.pipeline, &node, branch, branches, |up, i| {
            let at = match i {
                Some(i) => self.branch_slots(up).start + i,
                None => up.index(),
            };
            let key = match &self.slots[at].state {
                State::Stored { key, .. } => Some(key.clone()),
                _ => None,
            };
            let status = self.slots[at].files.as_ref().map(|f| f.job.status.clone());
            Ok::<_, Infallible>((key, status))
        });
        let mut job = Job::new(
            self.pipeline,
            &node,
            self.data_dir.clone(),
            key,
            inputs,
            replace,
            files.job.status.clone(),
        );
        if slot.branch.is_some() {
            job.entry_node = Some(name);
        }
        job.write(&files.job.spec)?;
        let _ = std::fs::remove_file(&files.job.status);
        let _ = std::fs::remove_file(&files.rc);
        let slot = &mut self.slots[s];
        slot.files = Some(files);
        slot.state = State::Queued;
        Ok(())
    }

    /// Groups the units of single nodes: with arrays, nodes of one task with the same
    /// resource hints that wait on the same jobs share one job array.
    fn group(&self, units: Vec<Unit>) -> Vec<Unit> {
        let mut groups: Vec<Unit> = Vec::new();
        let mut group_of: HashMap<(&'static str, Vec<usize>, bool), usize> = HashMap::new();
        for unit in units {
            if unit.array || unit.members.len() != 1 || !self.slurm.arrays {
                groups.push(unit);
                continue;
            }
            let node = self.slots[unit.members[0]].node;
            let slot = (
                self.pipeline.task_of(node).name,
                unit.deps.clone(),
                self.settings.forced[node.index()],
            );
            match group_of.get(&slot) {
                Some(&g) => groups[g].members.extend(unit.members),
                None => {
                    group_of.insert(slot, groups.len());
                    groups.push(unit);
                }
            }
        }
        groups
    }

    /// The `--dependency` of `unit`: `afterok` on the jobs it waits on (a whole array by
    /// its id), and `aftercorr` on the array `corr` it pairs with.
    fn dependency(&self, unit: &Unit, corr: Option<&str>) -> Option<String> {
        let mut by_job: Vec<(&str, Vec<String>)> = Vec::new();
        for d in &unit.deps {
            if let State::Open { job, .. } = &self.slots[*d].state {
                match by_job.iter_mut().find(|(id, _)| *id == job.id) {
                    Some((_, names)) => names.push(job.name()),
                    None => by_job.push((&job.id, vec![job.name()])),
                }
            }
        }
        let mut names = Vec::new();
        for (id, tasks) in by_job {
            if self.arrays.get(id) == Some(&tasks.len()) {
                names.push(id.to_owned());
            } else {
                names.extend(tasks);
            }
        }
        let mut parts = Vec::new();
        if !names.is_empty() {
            parts.push(format!("afterok:{}", names.join(":")));
        }
        if let Some(corr) = corr {
            parts.push(format!("aftercorr:{corr}"));
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// Submits one unit, which waits only on slots submitted before it.
    fn submit(&mut self, unit: &Unit) -> Result<()> {
        let mut members = unit.members.clone();
        if self.settings.stop.is_set() {
            for &s in &members {
                self.slots[s].state = State::Cancelled;
            }
            return Ok(());
        }
        let open = |s: usize| matches!(self.slots[s].state, State::Open { .. });
        if let Some(&failed) = unit.deps.iter().find(|&&d| !open(d)) {
            for &s in &members {
                self.slots[s].state = State::UpstreamFailed(failed);
            }
            return Ok(());
        }
        // Each task's index in the array: a paired array takes those of the tasks above,
        // which `aftercorr` pairs it with.
        let mut indices: Vec<usize> = (0..members.len()).collect();
        let mut corr = None;
        if unit.corr {
            indices.clear();
            members.retain(|&s| {
                let up = self.slots[s].deps.first().copied().unwrap_or(s);
                match &self.slots[up].state {
                    State::Open {
                        job:
                            JobRef {
                                id,
                                index: Some(index),
                            },
                        ..
                    } => {
                        corr = Some(id.clone());
                        indices.push(*index);
                        true
                    }
                    _ => false,
                }
            });
            for &s in &unit.members {
                if !members.contains(&s) {
                    let up = self.slots[s].deps.first().copied().unwrap_or(s);
                    self.slots[s].state = State::UpstreamFailed(up);
                }
            }
            if members.is_empty() {
                return Ok(());
            }
        }
        let dependency = self.dependency(unit, corr.as_deref());
        let first = self.pipeline.node_at(self.slots[members[0]].node);
        let base = node_file_name(&self.slot_name(members[0]));
        let branches = self.slots[members[0]].branch.is_some();
        let array = unit.array || members.len() > 1;
        let script = self.slurm_dir.join(format!("{base}.sh"));
        let specs: Vec<(usize, &Path)> = members
            .iter()
            .zip(&indices)
            .filter_map(|(&s, &index)| {
                let files = self.slots[s].files.as_ref()?;
                Some((index, files.job.spec.as_path()))
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
        let job_name = if array && !branches {
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
            sbatch.arg(format!("--array={}", array_indices(&indices)));
        }
        if let Some(dependency) = dependency {
            sbatch
                .arg(format!("--dependency={dependency}"))
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
                for &s in &members {
                    self.slots[s].state = State::Failed(TaskError::failed(why.clone()));
                }
                return Ok(());
            }
        };
        tracing::info!(target: "pipewright", job = %id, nodes = members.len(), "job submitted");
        self.jobs += 1;
        if array {
            self.arrays.insert(id.clone(), members.len());
        }
        for (&index, &s) in indices.iter().zip(&members) {
            let name = self.slot_name(s);
            let slot = &mut self.slots[s];
            if let Some(f) = slot.files.as_mut() {
                f.job.log = if array {
                    self.slurm_dir.join(format!("{base}_{index}.out"))
                } else {
                    out.clone()
                };
            }
            slot.submitted_at = at;
            slot.state = State::Open {
                job: JobRef {
                    id: id.clone(),
                    index: array.then_some(index),
                },
                ended: None,
            };
            if let Some(progress) = self.settings.progress {
                progress.started(&name);
            }
        }
        Ok(())
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
fn job_script(exe: &Path, specs: &[(usize, &Path)]) -> String {
    let mut script =
        String::from("#!/bin/bash\n# A pipewright job: each array task runs one node.\nspecs=(\n");
    for (index, spec) in specs {
        let _ = writeln!(script, "  [{index}]={}", quote(&spec.display().to_string()));
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

/// The `--array` indices of an array's tasks: a range where they are one.
fn array_indices(indices: &[usize]) -> String {
    match indices {
        [first, .., last] if indices.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("{first}-{last}")
        }
        _ => indices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
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
            &[
                (0, Path::new("/runs/a.json")),
                (3, Path::new("/runs/b.json")),
            ],
        );
        assert!(script.contains("'/opt/it'\\''s here/prog' __pipewright-worker \"$spec\""));
        assert!(script.contains("  [3]='/runs/b.json'\n"));
        assert!(script.contains("exit \"$rc\""));
    }

    #[test]
    fn array_indices_are_a_range_where_they_can_be() {
        assert_eq!(array_indices(&[0, 1, 2]), "0-2");
        assert_eq!(array_indices(&[4]), "4");
        assert_eq!(array_indices(&[0, 2, 3]), "0,2,3");
    }
}
