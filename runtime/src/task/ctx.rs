//! [`Ctx`]: what a running task can ask about its run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The pipeline's and the task's name in a context made by [`Ctx::for_test`].
const TEST_NAME: &str = "test";

/// The names a running task can ask for: its pipeline's and its node's, by node index.
/// One table per pipeline, shared by its runs, so that a task's context names its node
/// without a reference count of its own.
/// The node names are one text, each ending where `ends` says: the only copy of them, which
/// the pipeline reads too.
#[derive(Debug, Default)]
pub(crate) struct NodeNames {
    pub(crate) pipeline: Arc<str>,
    text: String,
    ends: Vec<usize>,
}

impl NodeNames {
    /// No node names yet, in the pipeline named `pipeline`.
    pub(crate) fn new(pipeline: Arc<str>) -> Self {
        NodeNames {
            pipeline,
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// The names of one node, `node`, of the pipeline named `pipeline`.
    pub(crate) fn one(pipeline: &str, node: &str) -> Self {
        let mut names = NodeNames::new(Arc::from(pipeline));
        names.push(node);
        names
    }

    /// Adds the name of the next node.
    pub(crate) fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.text.len());
    }

    /// The name of node `i`.
    ///
    /// # Panics
    ///
    /// If there is no node `i`.
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        &self.text[start..self.ends[i]]
    }

    /// The number of names.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Every name, in node order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Frees the room kept for more names.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// What a task can ask about the run it is part of; take it as a `&Ctx` argument.
///
/// A task that takes a `&Ctx` can return something made of the names it runs under, so its
/// key holds its pipeline's name and its node's name ([`TaskMeta::names_in_key`]): each of
/// its nodes has entries of its own, and renaming the node or the pipeline runs it again.
/// A task without `&Ctx` shares one entry between all nodes that run it on the same
/// parameters and inputs.
///
/// [`TaskMeta::names_in_key`]: super::TaskMeta::names_in_key
///
/// # Examples
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task]
/// fn greet(ctx: &Ctx) -> String {
///     format!("{} runs as node `{}`", ctx.task(), ctx.node())
/// }
///
/// fn main() -> pipewright::Result<()> {
///     let p = pipeline! {
///         name = "ctx-demo";
///         let hello = greet();
///     };
///     let dir = tempfile::tempdir().unwrap();
///     let run = Runner::new(dir.path()).run(&p)?;
///     assert_eq!(run.get(p.hello)?, "greet runs as node `hello`");
///     Ok(())
/// }
/// ```
pub struct Ctx {
    task: &'static str,
    names: Arc<NodeNames>,
    /// The node's index in `names`.
    node: usize,
    work_dir: Option<PathBuf>,
    /// Set when the run is cancelled.
    stop: Arc<AtomicBool>,
    /// When this run of the task times out.
    deadline: Option<Instant>,
    attempt: u32,
    /// Set when [`check_cancelled`](Ctx::check_cancelled) told this attempt to stop: an
    /// error it then returns, whatever its type, ends the node as cancelled.
    told_to_stop: AtomicBool,
}

impl Clone for Ctx {
    fn clone(&self) -> Self {
        Ctx {
            task: self.task,
            names: self.names.clone(),
            node: self.node,
            work_dir: self.work_dir.clone(),
            stop: self.stop.clone(),
            deadline: self.deadline,
            attempt: self.attempt,
            told_to_stop: AtomicBool::new(self.told_to_stop.load(Ordering::Relaxed)),
        }
    }
}

impl Ctx {
    /// A context for the nodes named in `names`, in a run that stops when `stop` is set.
    /// An executor makes one and points it at each node it runs in turn.
    pub(crate) fn new(names: Arc<NodeNames>, stop: Arc<AtomicBool>) -> Self {
        Ctx {
            task: "",
            names,
            node: 0,
            work_dir: None,
            stop,
            deadline: None,
            attempt: 1,
            told_to_stop: AtomicBool::new(false),
        }
    }

    /// A context for calling a task function directly, as a unit test does: node `node` of
    /// a pipeline named `test`, running a task named `test`. It is never cancelled, is on
    /// its first attempt, and has no work directory until [`with_work_dir`](Self::with_work_dir)
    /// gives one; [`with_pipeline`](Self::with_pipeline) and
    /// [`with_cancelled`](Self::with_cancelled) set the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use pipewright::prelude::*;
    ///
    /// #[task]
    /// fn label(count: &u32, ctx: &Ctx) -> Result<String, String> {
    ///     if ctx.cancelled() {
    ///         return Err("cancelled".to_string());
    ///     }
    ///     let path = ctx.work_dir().map_err(|e| e.to_string())?.join("note.txt");
    ///     std::fs::write(&path, "seen").map_err(|e| e.to_string())?;
    ///     Ok(format!("{}/{}: {count}", ctx.pipeline(), ctx.node()))
    /// }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let ctx = Ctx::for_test("sales").with_work_dir(dir.path());
    /// assert_eq!(label(&3, &ctx).unwrap(), "test/sales: 3");
    /// assert_eq!(std::fs::read_to_string(dir.path().join("note.txt")).unwrap(), "seen");
    ///
    /// let ctx = Ctx::for_test("sales").with_pipeline("daily");
    /// assert!(ctx.work_dir().is_err());
    /// assert!(label(&3, &ctx).is_err());
    /// assert!(label(&3, &Ctx::for_test("sales").with_cancelled(true)).is_err());
    /// ```
    pub fn for_test(node: &str) -> Self {
        let names = NodeNames::one(TEST_NAME, node);
        let mut ctx = Ctx::new(Arc::new(names), Arc::new(AtomicBool::new(false)));
        ctx.task = TEST_NAME;
        ctx
    }

    /// This context, in a pipeline named `pipeline`.
    pub fn with_pipeline(mut self, pipeline: &str) -> Self {
        self.names = Arc::new(NodeNames::one(pipeline, self.node()));
        self.node = 0;
        self
    }

    /// This context, with `dir` as the directory [`work_dir`](Self::work_dir) returns
    /// (created on first call).
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// This context, cancelled or not: [`cancelled`](Self::cancelled) returns `cancelled`.
    /// It has a flag of its own, so a context cloned from a run's does not cancel the run.
    pub fn with_cancelled(mut self, cancelled: bool) -> Self {
        self.stop = Arc::new(AtomicBool::new(cancelled));
        self
    }

    /// Points the context at node `node` (an index in its names), which runs `task` with
    /// the work directory `work_dir`.
    pub(crate) fn set_node(&mut self, task: &'static str, node: usize, work_dir: Option<PathBuf>) {
        self.task = task;
        self.node = node;
        self.work_dir = work_dir;
    }

    /// Points the context at attempt `attempt` of its node, which times out at `deadline`.
    pub(crate) fn set_attempt(&mut self, deadline: Option<Instant>, attempt: u32) {
        self.deadline = deadline;
        self.attempt = attempt;
        self.told_to_stop.store(false, Ordering::Relaxed);
    }

    /// Whether [`check_cancelled`](Self::check_cancelled) told this attempt to stop.
    pub(crate) fn told_to_stop(&self) -> bool {
        self.told_to_stop.load(Ordering::Relaxed)
    }

    /// Whether the task should stop: the run was cancelled (Ctrl-C, or
    /// [`Runner::cancel_handle`](crate::Runner::cancel_handle)), or this run of the task
    /// passed its `timeout`. A thread cannot be killed, so a long task should look at this
    /// now and then and return early; whatever it returns after its timeout, the node
    /// fails as timed out.
    pub fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// `Err(Cancelled)` when the task should stop (see [`cancelled`](Self::cancelled)), for
    /// a task to return with `?`: its node then ends as *cancelled*, not failed, and the
    /// nodes below it too. [`Cancelled`] converts into the usual error types of a task
    /// (`String`, `Box<dyn Error + Send + Sync>`, `std::io::Error`, `anyhow::Error`); once
    /// this has returned `Err`, any error the task returns ends its node as cancelled. A
    /// task that passed its `timeout` still ends as timed out.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] if the run was cancelled or this run of the task passed its timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use pipewright::prelude::*;
    ///
    /// #[task]
    /// fn count_up(to: u64, ctx: &Ctx) -> Result<u64, String> {
    ///     let mut sum = 0;
    ///     for i in 0..to {
    ///         if i % 1000 == 0 {
    ///             ctx.check_cancelled()?;
    ///         }
    ///         sum += i;
    ///     }
    ///     Ok(sum)
    /// }
    ///
    /// assert_eq!(count_up(10, &Ctx::for_test("sum")), Ok(45));
    /// let cancelled = Ctx::for_test("sum").with_cancelled(true);
    /// assert_eq!(count_up(10, &cancelled), Err("cancelled".to_string()));
    /// ```
    ///
    /// [`Cancelled`]: super::Cancelled
    pub fn check_cancelled(&self) -> Result<(), super::Cancelled> {
        if self.cancelled() {
            self.told_to_stop.store(true, Ordering::Relaxed);
            return Err(super::Cancelled);
        }
        Ok(())
    }

    /// Which attempt this is: 1, then 2 and on when `retries` tries a failed task again.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A directory private to this run of the task, for files it writes besides its
    /// output. It is created on first call and published with the task's cache entry
    /// (`DATA/<task>/<key>/work/`), so it is kept exactly as long as the output is; for a
    /// task with `cache = false` it is removed when the task ends.
    ///
    /// While the task runs, the directory is a temporary one that becomes the entry's when
    /// the output is committed: to return a file, return it as an
    /// [`OutputFile`](crate::OutputFile), whose path then follows it, not as a path.
    ///
    /// # Errors
    ///
    /// If the directory cannot be created, or the runner keeps nothing on disk
    /// ([`Runner::in_memory`](crate::Runner::in_memory)), or the context was made by
    /// [`for_test`](Self::for_test) without [`with_work_dir`](Self::with_work_dir).
    pub fn work_dir(&self) -> std::io::Result<&Path> {
        let dir = self.work_dir.as_deref().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this context has no work directory: the runner keeps nothing on disk, or a \
                 test context was made without `Ctx::with_work_dir`",
            )
        })?;
        std::fs::create_dir_all(dir)?;
        Ok(dir)
    }

    /// The name of the pipeline being run. It is part of the node's key, as the node's name
    /// is (see [`node`](Self::node)).
    pub fn pipeline(&self) -> &str {
        &self.names.pipeline
    }

    /// The name of the task being run.
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// The name of the node being run (the binding's name in `pipeline!`).
    ///
    /// Because a task may return something made of this name, the key of a task that takes
    /// a `&Ctx` holds its node's and its pipeline's names: two nodes of one task, with the
    /// same parameters and inputs, each get their own entry.
    pub fn node(&self) -> &str {
        self.names.get(self.node)
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("pipeline", &self.pipeline())
            .field("task", &self.task)
            .field("node", &self.node())
            .field("work_dir", &self.work_dir)
            .field("stop", &self.stop)
            .field("deadline", &self.deadline)
            .field("attempt", &self.attempt)
            .field("told_to_stop", &self.told_to_stop)
            .finish()
    }
}
