//! [`Runner`]: where a pipeline's outputs are stored, what is forced, and how many workers
//! run it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::cache::Store;
use crate::error::{Error, Result};
use crate::exec::{self, Executor, Picked};
use crate::explain::{self, Explanation};
use crate::gc::Freed;
use crate::graph::{Handle, Mapped, NodeId, Pipeline};
use crate::outputs::OutputFile;
use crate::plan::{self, Plan};
use crate::progress::Progress;
use crate::record::log::RunLog;
use crate::record::schema::RunRecord;
use crate::record::write::RunDir;
use crate::report::RunReport;

mod cancel;
mod publish;

pub use cancel::Cancel;
use cancel::Runs;
use publish::Publication;

/// Runs pipelines: owns the data directory, what to force, and the worker pool.
///
/// Every output is stored under `DATA/<task>/<key>/`, where the key hashes the task's code,
/// its parameters and the content of its inputs; a later run reuses every entry whose key
/// it computes again, and runs only the rest.
///
/// # Examples
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task]
/// fn numbers(n: u32) -> Vec<u32> {
///     (1..=n).collect()
/// }
///
/// #[task]
/// fn sum(xs: &Vec<u32>) -> u32 {
///     xs.iter().sum()
/// }
///
/// fn main() -> pipewright::Result<()> {
///     let p = pipeline! {
///         name = "runner-demo";
///         let xs = numbers(4);
///         let total = sum(xs);
///     };
///     let data = std::env::temp_dir().join(format!("pipewright-doc-runner-{}", std::process::id()));
///     let runner = Runner::new(&data).jobs(2);
///
///     let first = runner.run(&p)?;
///     assert_eq!(first.count(NodeStatus::Ran), 2);
///     assert_eq!(*first.get(p.total)?, 10);
///
///     // Nothing changed: nothing runs, and outputs are read from the store on demand.
///     let second = runner.run(&p)?;
///     assert_eq!(second.count(NodeStatus::Cached), 2);
///     assert_eq!(second.get(p.xs)?, &vec![1, 2, 3, 4]);
///     # std::fs::remove_dir_all(&data).unwrap();
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Runner {
    data_dir: PathBuf,
    log_dir: Option<PathBuf>,
    store: Option<Store>,
    jobs: usize,
    keep: Vec<(u64, NodeId)>,
    force_all: bool,
    force: Vec<String>,
    targets: Vec<String>,
    progress: bool,
    fail_fast: bool,
    executor: Executor,
    runs: Arc<Runs>,
    pool: OnceLock<Arc<ThreadPool>>,
    publish: Vec<Publication>,
    params: Option<serde_json::Value>,
}

impl Runner {
    /// A runner whose outputs are stored under `data_dir` (created on the first run), with
    /// one worker per available core.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Runner {
            store: Some(Store::new(data_dir.clone())),
            log_dir: Some(data_dir.join("runs")),
            data_dir,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep: Vec::new(),
            force_all: false,
            force: Vec::new(),
            targets: Vec::new(),
            progress: false,
            fail_fast: false,
            executor: Executor::InProcess,
            runs: Arc::default(),
            pool: OnceLock::new(),
            publish: Vec::new(),
            params: None,
        }
    }

    /// A runner that keeps nothing on disk: every node runs, nothing is hashed or stored.
    /// For tests and measurements of the scheduler.
    pub fn in_memory() -> Self {
        Runner {
            store: None,
            log_dir: None,
            ..Runner::new(PathBuf::new())
        }
    }

    /// Runs at most `jobs` tasks at once (at least one).
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self.pool = OnceLock::new();
        self
    }

    /// Keeps the output of `node` in memory after its consumers are done. Sinks (nodes
    /// nothing consumes) are always kept; other outputs are dropped as soon as their last
    /// consumer has finished, so memory follows the graph's width, not its size. (A stored
    /// output can still be read from the report; it is then loaded from the store.)
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn keep<T>(mut self, node: Handle<T>) -> Self {
        self.keep.push((node.pipeline(), node.id()));
        self
    }

    /// Keeps the outputs of every branch of the mapped node `node` in memory, as
    /// [`keep`](Self::keep) does a node's, for
    /// [`RunReport::branches`](crate::RunReport::branches).
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn keep_branches<T>(mut self, node: Mapped<T>) -> Self {
        self.keep.push((node.pipeline, node.id()));
        self
    }

    /// Puts the output file of `node` at `path` after each run: hard-linked from the store
    /// where it is on the same file system, else copied, and replaced whenever it differs
    /// from the node's output, so a deleted or changed `path` comes back and a node that
    /// changed updates it, with no need to run the node again. The run's report lists what
    /// was published ([`RunReport::published`]). The node's output is kept, so its file is
    /// checked in every run, and computed again if it was damaged in the store.
    ///
    /// # Examples
    ///
    /// ```
    /// use pipewright::OutputFile;
    /// use pipewright::prelude::*;
    ///
    /// #[task]
    /// fn total_report(total: u32, ctx: &Ctx) -> std::io::Result<OutputFile> {
    ///     let file = OutputFile::new(ctx, "report.txt")?;
    ///     std::fs::write(file.path(), format!("total: {total}\n"))?;
    ///     Ok(file)
    /// }
    ///
    /// fn main() -> pipewright::Result<()> {
    ///     let p = pipeline! {
    ///         name = "publish-doc";
    ///         let summary = total_report(42);
    ///     };
    ///     let dir = tempfile::tempdir().unwrap();
    ///     let out = dir.path().join("out/report.txt");
    ///     let runner = Runner::new(dir.path().join("data")).publish(p.summary, &out);
    ///     runner.run(&p)?;
    ///     assert_eq!(std::fs::read_to_string(&out).unwrap(), "total: 42\n");
    ///
    ///     // Deleted, it comes back; the node stays cached.
    ///     std::fs::remove_file(&out).unwrap();
    ///     let again = runner.run(&p)?;
    ///     assert_eq!(again.count(NodeStatus::Cached), 1);
    ///     assert_eq!(again.published()[0].path, out);
    ///     assert!(out.is_file());
    ///     Ok(())
    /// }
    /// ```
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn publish(mut self, node: Handle<OutputFile>, path: impl Into<PathBuf>) -> Self {
        self.publish.push(Publication {
            pipeline: node.pipeline(),
            node: node.id(),
            path: path.into(),
            dir: false,
        });
        self
    }

    /// Puts every output file of `node` (whatever its output type: a `Vec<OutputFile>`, a
    /// struct with `OutputFile` fields) in the directory `dir` after each run, each at its
    /// path in the task's work directory; as [`publish`](Self::publish) does with one file.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn publish_dir<T>(mut self, node: Handle<T>, dir: impl Into<PathBuf>) -> Self {
        self.publish.push(Publication {
            pipeline: node.pipeline(),
            node: node.id(),
            path: dir.into(),
            dir: true,
        });
        self
    }

    /// Runs every node again, whatever the store holds. What is below a node runs again
    /// only if that node's output changed.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn force_all(mut self) -> Self {
        self.force_all = true;
        self
    }

    /// Runs the node named `node` again, whatever the store holds. What is below it runs
    /// again only if its output changed. A branch of a mapped node, `counts[3]`, runs
    /// again alone; a position beyond the list its run makes fails the mapped node.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn force(mut self, node: impl Into<String>) -> Self {
        self.force.push(node.into());
        self
    }

    /// Records each run under `log_dir` instead of `DATA/runs`.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn log_dir(mut self, log_dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(log_dir.into());
        self
    }

    /// Runs only the node named `node` and what it depends on; the other nodes end as
    /// *not needed*. Several targets run what any of them needs.
    ///
    /// A branch of a mapped node, `counts[3]`, is the branch at that position of the list
    /// the run makes: what the mapped node depends on runs, and of its branches that one
    /// only (those of several such targets), the others ending as *not needed*; a position
    /// beyond the list fails the mapped node with an error that says how long the list
    /// is. A branch's entry is the one a whole run finds, as it is keyed by its element.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn target(mut self, node: impl Into<String>) -> Self {
        self.targets.push(node.into());
        self
    }

    /// Stops starting nodes at the first failure: the nodes not started by then end as
    /// *cancelled*. By default a run keeps going: only what depends on a failed node is
    /// left out.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn fail_fast(mut self, stop: bool) -> Self {
        self.fail_fast = stop;
        self
    }

    /// Where the nodes that must run are run: on this process's thread pool (the default)
    /// or each in a child process; see [`Executor`].
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn executor(mut self, executor: Executor) -> Self {
        self.executor = executor;
        self
    }

    /// A handle that cancels this runner's runs from anywhere (a signal handler, another
    /// thread); see [`Cancel`].
    pub fn cancel_handle(&self) -> Cancel {
        Cancel(self.runs.clone())
    }

    /// Shows a progress bar on stderr while a run goes on, if stderr is a terminal and the
    /// `progress` feature is on (it is by default).
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Records `params`, the parameters the program was started with, in each run's
    /// `run.json` (as its `params`). They are for people and for `plan`; what a node
    /// computes depends on its own parameters only.
    #[must_use = "a builder method returns the changed runner, which must be used"]
    pub fn record_params(mut self, params: serde_json::Value) -> Self {
        self.params = Some(params);
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The number of workers.
    pub fn job_count(&self) -> usize {
        self.jobs
    }

    /// Runs `pipeline`: every node whose entry is in the store is *cached* and the others
    /// run, in parallel where the graph allows.
    ///
    /// A task that fails or panics fails its node only: the nodes below it end as
    /// *upstream failed* and independent branches run to the end. So this returns `Err`
    /// only when the run itself cannot proceed; check [`RunReport::succeeded`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the data directory cannot be created or written,
    /// [`Error::UnknownNode`] if a forced node does not exist, [`Error::DuplicateTask`] if
    /// a node's task shares its name with another registered task, [`Error::LossyParam`] if
    /// `pipeline!` was given a parameter that does not survive encoding, and
    /// [`Error::ThreadPool`] if the worker threads cannot be started.
    pub fn run(&self, pipeline: &Pipeline) -> Result<RunReport> {
        let Flags {
            keep,
            forced,
            needed,
            picked,
        } = self.flags(pipeline)?;
        self.check_executor()?;
        let active = self.runs.start();
        let stop = &active.stop;
        if let Some(store) = &self.store {
            store.prepare()?;
            store.new_run();
        }
        let pool = self.pool()?;
        let mut record = match &self.log_dir {
            Some(log_dir) => {
                crate::backtrace::capture_backtraces();
                Some(RunDir::create(
                    log_dir,
                    pipeline,
                    &self.data_dir,
                    self.jobs,
                    self.params.as_ref(),
                )?)
            }
            None => None,
        };
        // The run's events go to `run.log` unless the program has a subscriber of its own.
        let (dispatch, log) = match &record {
            Some(record)
                if tracing::dispatcher::get_default(|d| {
                    d.is::<tracing::subscriber::NoSubscriber>()
                }) =>
            {
                let (dispatch, log) = crate::record::log::log_dispatch(&record.dir)?;
                (Some(dispatch), Some(log))
            }
            _ => (None, None),
        };
        let journal = record.as_mut().and_then(RunDir::take_journal);
        if let (Some(record), Some(journal)) = (&record, &journal) {
            active.recorded_in(record.dir.clone(), journal.handle());
        }
        let progress = Progress::new(
            self.progress,
            needed.iter().filter(|n| **n).count(),
            journal,
        );
        let run = || {
            let span = tracing::info_span!(target: "pipewright", "run", pipeline = pipeline.name());
            let _entered = span.enter();
            tracing::info!(target: "pipewright", nodes = pipeline.len(), jobs = self.jobs, "run started");
            let start = Instant::now();
            let settings = exec::Settings {
                store: self.store.as_ref(),
                keep: &keep,
                forced: &forced,
                dispatch: dispatch.as_ref(),
                needed: &needed,
                progress: progress.as_ref(),
                fail_fast: self.fail_fast,
                stop: stop.clone(),
                in_child: self.executor == Executor::Process,
                run_dir: record.as_ref().map(|r| r.dir.as_path()),
                picked: &picked,
            };
            let (outcomes, branches) = match (&self.executor, &self.store, &record) {
                #[cfg(feature = "slurm")]
                (Executor::Slurm(slurm), Some(_), Some(_)) => {
                    exec::slurm::run(pipeline, slurm, &settings)?
                }
                _ => exec::local::run(pipeline, &span, &pool, settings),
            };
            let report = RunReport::new(
                pipeline,
                outcomes,
                branches,
                self.store.clone(),
                start.elapsed(),
            );
            tracing::info!(target: "pipewright", "{}", report.summary());
            Ok::<_, Error>(report)
        };

        let ran = match &dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, run),
            None => run(),
        };
        // What is buffered is written whether the run could finish or not; a run that could
        // not returns its own error.
        let finished = progress.map_or(Ok(()), Progress::finish);
        let flushed = log.as_ref().map_or(Ok(()), RunLog::flush);
        let mut report = ran?;
        finished?;
        flushed?;
        report.set_cancelled(stop.is_set());
        if let Some(record) = record {
            let dir = record.finish(pipeline, &report)?;
            report.set_run_dir(dir);
        }
        if let Some(store) = &self.store {
            let published = publish::publish(store, pipeline, &report, &self.publish)?;
            report.set_published(published);
        }
        Ok(report)
    }

    /// What [`run`](Self::run) would do to each node, and why, without running anything.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownNode`] if a forced node does not exist, [`Error::DuplicateTask`] and
    /// [`Error::LossyParam`] as for [`run`](Self::run), [`Error::Params`] if a node's
    /// parameters cannot be hashed.
    pub fn plan(&self, pipeline: &Pipeline) -> Result<Plan> {
        let flags = self.flags(pipeline)?;
        let (mut plan, _) = plan::plan(pipeline, self.store.as_ref(), &flags.keep, &flags.forced)?;
        self.note_last_branches(pipeline, &mut plan);
        Ok(plan)
    }

    /// Notes in `plan` how many branches each mapped node of `pipeline` had in its last
    /// recorded run.
    fn note_last_branches(&self, pipeline: &Pipeline, plan: &mut Plan) {
        if pipeline.nodes.maps().is_empty() {
            return;
        }
        if let Some((_, record)) = self.last_record(pipeline) {
            plan.set_last_branches(|name| {
                let node = record.nodes.iter().find(|n| n.name == name)?;
                node.over.is_some().then_some(node.branches.len())
            });
        }
    }

    /// The directory and record of the last finished run of `pipeline`, if runs are
    /// recorded.
    fn last_record(&self, pipeline: &Pipeline) -> Option<(PathBuf, RunRecord)> {
        let log_dir = self.log_dir.as_ref()?;
        crate::gc::runs(log_dir)
            .into_iter()
            .find_map(|(dir, record)| {
                record
                    .filter(|r| r.pipeline == pipeline.name() && r.ended.is_some())
                    .map(|r| (dir, r))
            })
    }

    /// Why the node named `node` will run: what changed since it last wrote an entry.
    ///
    /// # Errors
    ///
    /// As [`plan`](Self::plan), and [`Error::UnknownNode`] if there is no such node.
    pub fn explain(&self, pipeline: &Pipeline, node: &str) -> Result<Explanation> {
        let flags = self.flags(pipeline)?;
        let unknown = || Error::UnknownNode {
            pipeline: pipeline.name().to_owned(),
            node: node.to_owned(),
        };
        let id = match pipeline.node(node) {
            Some(id) => id,
            None => {
                // A branch, `mapped[i]`, is explained from the last run.
                let (mapped, i) = explain::branch_of(node).ok_or_else(unknown)?;
                let id = pipeline.node(mapped).ok_or_else(unknown)?;
                let map = pipeline.node_at(id).map().ok_or_else(unknown)?;
                let last = self.last_record(pipeline);
                let recorded = last.as_ref().and_then(|(dir, record)| {
                    let mapped = record.nodes.iter().find(|n| n.name == mapped)?;
                    Some((dir.as_path(), mapped.branches.len(), mapped.branches.get(i)))
                });
                return Ok(explain::branch(
                    node,
                    pipeline.node_name(map.over),
                    pipeline.node_at(id).task().meta().name,
                    recorded,
                    self.store.as_ref(),
                ));
            }
        };
        let (mut plan, digests) =
            plan::plan(pipeline, self.store.as_ref(), &flags.keep, &flags.forced)?;
        self.note_last_branches(pipeline, &mut plan);
        Ok(explain::explain(
            pipeline,
            self.store.as_ref(),
            &plan,
            &digests,
            id,
        ))
    }

    /// Removes every cache entry from the data directory (run records stay).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if something cannot be removed.
    pub fn clean(&self) -> Result<Freed> {
        let mut freed = Freed::default();
        crate::gc::sweep(
            &self.data_dir,
            self.log_dir.as_deref(),
            |_, _| false,
            true,
            &mut freed,
        )?;
        Ok(freed)
    }

    /// Keeps the newest `keep_runs` run records, removes the older ones, and removes every
    /// cache entry that no kept record refers to.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if something cannot be removed.
    pub fn gc(&self, keep_runs: usize) -> Result<Freed> {
        match &self.log_dir {
            Some(log_dir) => crate::gc::gc(&self.data_dir, log_dir, keep_runs),
            None => Ok(Freed::default()),
        }
    }

    /// The directory runs are recorded in, if they are.
    pub fn log_dir_path(&self) -> Option<&Path> {
        self.log_dir.as_deref()
    }

    /// Whether this runner's executor can run here.
    fn check_executor(&self) -> Result<()> {
        let name = match &self.executor {
            Executor::InProcess => return Ok(()),
            Executor::Process => "process",
            #[cfg(feature = "slurm")]
            Executor::Slurm(_) => "Slurm",
        };
        if cfg!(not(unix)) {
            return Err(Error::Executor(format!(
                "the {name} executor runs on Unix only"
            )));
        }
        if self.store.is_none() || self.log_dir.is_none() {
            return Err(Error::Executor(format!(
                "the {name} executor passes outputs through the store, so it needs a runner \
                 with a data directory, not `Runner::in_memory`"
            )));
        }
        if !exec::worker::main_marked() {
            return Err(Error::Executor(format!(
                "the {name} executor runs each task in this program, started again as a \
                 worker: mark its `main` with `#[pipewright::main]`"
            )));
        }
        #[cfg(feature = "slurm")]
        if let Executor::Slurm(_) = &self.executor {
            exec::slurm::check_tools()?;
        }
        Ok(())
    }

    /// Which nodes are kept, which forced, and which needed, for `pipeline`; or why the
    /// pipeline cannot run: a task whose name another registered task has, or a parameter
    /// that does not survive encoding (which `pipeline!` cannot refuse when it adds the node).
    fn flags(&self, pipeline: &Pipeline) -> Result<Flags> {
        // A store of another format is refused before anything is decided from it.
        if let Some(store) = &self.store {
            store.check()?;
        }
        for node in pipeline.all_nodes() {
            crate::registry::check_unique(node.task().meta())?;
        }
        pipeline.check_params()?;
        // A node, or a branch of a mapped node (`counts[3]`).
        let find = |name: &String| match pipeline.node(name) {
            Some(id) => Ok((id, None)),
            None => pipeline
                .branch(name)
                .map(|(id, i)| (id, Some(i)))
                .ok_or_else(|| Error::UnknownNode {
                    pipeline: pipeline.name().to_owned(),
                    node: name.clone(),
                }),
        };
        let mut keep = vec![false; pipeline.len()];
        let mut needed = vec![self.targets.is_empty(); pipeline.len()];
        // The nodes the targets need whole: a targeted branch needs its mapped node's
        // branch only, and what is above the mapped node whole.
        let mut whole = needed.clone();
        let mut only: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        if self.targets.is_empty() {
            for sink in pipeline.sinks() {
                keep[sink.index()] = true;
            }
        }
        for target in &self.targets {
            let (id, branch) = find(target)?;
            keep[id.index()] = true;
            if let Some(i) = branch {
                only.entry(id).or_default().push(i);
            }
            for up in pipeline.ancestors(id) {
                needed[up.index()] = true;
                whole[up.index()] |= branch.is_none() || up != id;
            }
        }
        let published = self.publish.iter().map(|p| (p.pipeline, p.node));
        for (owner, id) in self.keep.iter().copied().chain(published) {
            if owner == pipeline.id() && id.index() < keep.len() {
                keep[id.index()] = true;
            }
        }
        let mut forced = vec![self.force_all; pipeline.len()];
        let mut forced_branches: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for name in &self.force {
            match find(name)? {
                (id, None) => forced[id.index()] = true,
                (id, Some(i)) => forced_branches.entry(id).or_default().push(i),
            }
        }
        only.retain(|id, _| !whole[id.index()]);
        let picked: Vec<Picked> = only
            .keys()
            .chain(forced_branches.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|&node| {
                let sorted = |branches: Option<&Vec<usize>>| {
                    branches.map(|b| {
                        b.iter()
                            .copied()
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect()
                    })
                };
                Picked {
                    node,
                    only: sorted(only.get(&node)),
                    forced: sorted(forced_branches.get(&node)).unwrap_or_default(),
                }
            })
            .collect();
        Ok(Flags {
            keep,
            forced,
            needed,
            picked,
        })
    }

    fn pool(&self) -> Result<Arc<ThreadPool>> {
        if let Some(pool) = self.pool.get() {
            return Ok(pool.clone());
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(self.jobs)
            .thread_name(|i| format!("pipewright-{i}"))
            .build()
            .map_err(|source| Error::ThreadPool {
                jobs: self.jobs,
                source,
            })?;
        Ok(self.pool.get_or_init(|| Arc::new(pool)).clone())
    }
}

/// What a runner does to each node of one pipeline.
struct Flags {
    keep: Vec<bool>,
    forced: Vec<bool>,
    needed: Vec<bool>,
    /// The branches of mapped nodes that the targets or forced nodes name.
    picked: Vec<Picked>,
}
