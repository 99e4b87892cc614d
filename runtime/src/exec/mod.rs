//! Executors: how the nodes of a pipeline get run.

use std::path::Path;
use std::sync::Arc;

pub(crate) mod local;
pub(crate) mod mapped;
#[cfg(unix)]
pub(crate) mod process;
#[cfg(feature = "slurm")]
pub(crate) mod slurm;
pub(crate) mod worker;

pub(crate) use crate::stop::Stop;

#[cfg(feature = "slurm")]
pub use slurm::Slurm;

use crate::cache::Store;
use crate::progress::Progress;

/// How a run treats its nodes, whichever executor runs them.
pub(crate) struct Settings<'a> {
    /// Where outputs are stored; `None` keeps nothing on disk.
    pub(crate) store: Option<&'a Store>,
    /// Whether each node's output must outlive its consumers.
    pub(crate) keep: &'a [bool],
    /// Whether each node must run even if its entry exists.
    pub(crate) forced: &'a [bool],
    /// The subscriber of the run's log, when the run writes one.
    pub(crate) dispatch: Option<&'a tracing::Dispatch>,
    /// Whether each node is needed by the run's targets (all are, without targets).
    pub(crate) needed: &'a [bool],
    /// The progress bar, when there is one.
    pub(crate) progress: Option<&'a Progress>,
    /// Whether the first failure stops the run: nodes not started by then are cancelled.
    pub(crate) fail_fast: bool,
    /// Set to stop the run: nodes not started are cancelled, running ones are told.
    pub(crate) stop: Arc<Stop>,
    /// Whether each node that must run runs in a child process (the process executor).
    pub(crate) in_child: bool,
    /// The run's directory, where the process executor keeps each node's job and log.
    pub(crate) run_dir: Option<&'a Path>,
    /// The branches of mapped nodes that the run's targets or forced nodes name by
    /// position, in the order of the mapped nodes.
    pub(crate) picked: &'a [Picked],
}

/// The branches of one mapped node that a run names by position (`counts[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picked {
    /// The mapped node.
    pub(crate) node: crate::graph::NodeId,
    /// The only branches to run, in order, when targets name branches of it and nothing the
    /// run needs takes it whole; `None` runs them all.
    pub(crate) only: Option<Vec<usize>>,
    /// The branches that run whatever the store holds, in order.
    pub(crate) forced: Vec<usize>,
}

impl Picked {
    /// Whether branch `i` runs: the run's targets name it, or no branch of this node.
    pub(crate) fn runs(picked: Option<&Picked>, i: usize) -> bool {
        picked
            .and_then(|p| p.only.as_ref())
            .is_none_or(|only| only.binary_search(&i).is_ok())
    }

    /// Whether branch `i` is forced by name.
    pub(crate) fn forces(picked: Option<&Picked>, i: usize) -> bool {
        picked.is_some_and(|p| p.forced.binary_search(&i).is_ok())
    }

    /// The error of mapped node `id` (`spec`), which made `n` branches, if the run names
    /// one by a position beyond them.
    pub(crate) fn beyond(
        picked: Option<&Picked>,
        pipeline: &crate::graph::Pipeline,
        id: crate::graph::NodeId,
        spec: &crate::graph::MapSpec,
        n: usize,
    ) -> Option<crate::task::TaskError> {
        let beyond = picked?
            .only
            .iter()
            .flatten()
            .chain(&picked?.forced)
            .copied()
            .find(|&i| i >= n)?;
        let over = pipeline.node_name(spec.over);
        let plural = if n == 1 { "" } else { "s" };
        let has = match spec.elements {
            Some(_) => format!("the list of `{over}` has {n} element{plural}"),
            None => format!("`{over}` has {n} branch{}", if n == 1 { "" } else { "es" }),
        };
        Some(crate::task::TaskError::failed(format!(
            "there is no branch `{}`: {has}",
            mapped::branch_name(pipeline.node_name(id), beyond)
        )))
    }
}

impl Settings<'_> {
    /// What the run names of the branches of mapped node `id`, if anything.
    pub(crate) fn picked(&self, id: crate::graph::NodeId) -> Option<&Picked> {
        self.picked
            .binary_search_by_key(&id, |p| p.node)
            .ok()
            .map(|k| &self.picked[k])
    }
}

/// Where the nodes that must run are run.
///
/// # Examples
///
/// ```no_run
/// use pipewright::prelude::*;
///
/// # #[task] fn one() -> u32 { 1 }
/// #[pipewright::main]
/// fn main() -> pipewright::Result<()> {
///     let p = pipeline! {
///         name = "isolated";
///         let x = one();
///     };
///     // Each task runs in a child process: a crash fails its node, not the run.
///     let report = Runner::new("data").executor(Executor::Process).run(&p)?;
///     assert!(report.succeeded());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Executor {
    /// On the runner's thread pool, in this process (the default). A panic fails its node
    /// only, but a crash of native code, an `abort` or running out of memory ends the
    /// whole program.
    #[default]
    InProcess,
    /// Each node in a child process: this program re-entered as a worker, which reads the
    /// node's inputs from the store and writes its output there. An abort, a segfault, an
    /// exit or an out-of-memory kill fails that node only, a task past its `timeout` is
    /// killed, and a task's stdout and stderr go to `logs/<node>.log` in the run directory.
    /// At most [`jobs`](crate::Runner::jobs) children run at once.
    ///
    /// The program's `main` must be marked `#[pipewright::main]`, the
    /// runner must have a store (not [`Runner::in_memory`](crate::Runner::in_memory)), and
    /// every task's output goes through the store, also for tasks with `cache = false`
    /// (their entry is replaced on every run and never used as a cached result).
    ///
    /// Unix only.
    Process,
    /// Each node as a job of a Slurm cluster, submitted with `sbatch` in dependency order
    /// so that the cluster holds the order, and a mapped node's branches as job arrays
    /// once its list is stored; see [`Slurm`] for what a cluster needs.
    #[cfg(feature = "slurm")]
    Slurm(Slurm),
}
