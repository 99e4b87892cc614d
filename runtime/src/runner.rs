//! [`Runner`]: where a pipeline runs and with how many workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};
use crate::exec;
use crate::graph::{Handle, NodeId, Pipeline};
use crate::report::RunReport;

/// Runs pipelines: owns the data directory and the worker pool.
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
///     let run = Runner::new(std::env::temp_dir().join("pipewright-doc-runner"))
///         .jobs(2)
///         .keep(p.xs)
///         .run(&p)?;
///     assert!(run.succeeded());
///     assert_eq!(run.get(p.xs)?, &vec![1, 2, 3, 4]);
///     assert_eq!(*run.get(p.total)?, 10);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Runner {
    data_dir: PathBuf,
    jobs: usize,
    keep: Vec<(u64, NodeId)>,
    pool: OnceLock<Arc<ThreadPool>>,
}

impl Runner {
    /// A runner whose outputs live under `data_dir`, with one worker per available core.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Runner {
            data_dir: data_dir.into(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep: Vec::new(),
            pool: OnceLock::new(),
        }
    }

    /// Runs at most `jobs` tasks at once (at least one).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self.pool = OnceLock::new();
        self
    }

    /// Keeps the output of `node` in the report after its consumers are done. Sinks (nodes
    /// nothing consumes) are always kept; other outputs are dropped as soon as their last
    /// consumer has finished, so memory follows the graph's width, not its size.
    pub fn keep<T>(mut self, node: Handle<T>) -> Self {
        self.keep.push((node.pipeline(), node.id()));
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

    /// Runs every node of `pipeline` and reports how each ended.
    ///
    /// A task that fails or panics fails its node only: the nodes below it end as
    /// *upstream failed* and independent branches run to the end. So this returns `Err`
    /// only when the run itself cannot proceed; check [`RunReport::succeeded`].
    ///
    /// # Errors
    ///
    /// [`Error::ThreadPool`] if the worker threads cannot be started.
    pub fn run(&self, pipeline: &Pipeline) -> Result<RunReport> {
        let pool = self.pool()?;
        let mut keep = vec![false; pipeline.len()];
        for sink in pipeline.sinks() {
            keep[sink.index()] = true;
        }
        for &(owner, id) in &self.keep {
            if owner == pipeline.id() && id.index() < keep.len() {
                keep[id.index()] = true;
            }
        }

        let span = tracing::info_span!(target: "pipewright", "run", pipeline = pipeline.name());
        let _entered = span.enter();
        tracing::info!(target: "pipewright", nodes = pipeline.len(), jobs = self.jobs, "run started");
        let start = Instant::now();
        let (nodes, outputs) = exec::local::run(pipeline, &span, &pool, &keep);
        let report = RunReport::new(pipeline, nodes, outputs, start.elapsed());
        tracing::info!(target: "pipewright", "{report}");
        Ok(report)
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
