//! Worker mode: a program marked `#[pipewright::main]` started with [`WORKER_ARG`] and the
//! path of a [`Job`] runs that one node and exits, instead of running its own `main`.
//!
//! The worker finds the node's task in the registry by name, rebuilds it from its recorded
//! parameters, reads its inputs from the store, checks that they give the key the parent
//! computed, runs the task and commits its output as a store entry. It reports how the task
//! ended in a [`JobStatus`] file, written atomically; a worker that leaves none crashed,
//! and the parent reads its exit status instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cache::{Look, Lookup, Store, StoreError, write_json_atomically};
use crate::chain::RecordedError;
use crate::graph::{Node, NodeId, Pipeline};
use crate::key::{KeyError, Names, fingerprint, hex, with_input_files};
use crate::node::commit::NewEntry;
use crate::node::compute::attempt_on_thread;
use crate::node::decide::{Check, decide};
use crate::outputs;
use crate::registry::find_task;
use crate::task::{Ctx, InputKind, InputValues, NodeNames, TaskError};
use crate::text::{hex_bytes, parse_hex_bytes};

/// The first argument that turns a program marked `#[pipewright::main]` into a worker.
pub(crate) const WORKER_ARG: &str = "__pipewright-worker";

/// The exit code of a worker whose task failed (its status file says how).
pub(crate) const EXIT_FAILED: i32 = 1;

/// The exit code of a worker that could not even read its job.
pub(crate) const EXIT_NO_JOB: i32 = 2;

/// Set by `#[pipewright::main]`: this program can be re-entered as a worker.
static MAIN_MARKED: AtomicBool = AtomicBool::new(false);

/// Whether this program's `main` is marked `#[pipewright::main]`.
pub(crate) fn main_marked() -> bool {
    MAIN_MARKED.load(Ordering::Acquire)
}

/// What a worker is asked to do. The parent writes it as JSON into the run directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The data directory of the store.
    pub(crate) data_dir: PathBuf,
    pub(crate) pipeline: String,
    pub(crate) node: String,
    pub(crate) task: String,
    /// The identity of the task the parent planned with (`key::fingerprint`): its code
    /// fingerprint, module and output type.
    pub(crate) fingerprint: String,
    /// The task's parameters encoded with the default codec, in hex. JSON would lose NaN,
    /// the infinities, integers past `u64` and maps whose keys are not strings; the run's
    /// `run.json` holds them as JSON for people.
    pub(crate) params: String,
    /// The key the parent computed, which the worker must arrive at too; without one (a
    /// cluster job submitted before its inputs existed) the worker's key counts, and an
    /// entry already stored under it is used instead of running the task.
    pub(crate) key: Option<String>,
    /// Whether the worker takes the key's lock itself (the parent does not hold it).
    pub(crate) lock: bool,
    /// The entries each input argument reads, in argument order.
    pub(crate) inputs: Vec<Vec<InputRef>>,
    /// Whether an entry already under the key is replaced (a forced or uncached node).
    pub(crate) replace: bool,
    pub(crate) attempt: u32,
    /// The task's timeout, after which `Ctx::cancelled` turns true.
    pub(crate) timeout_secs: Option<f64>,
    /// A limit on the worker's address space, in bytes.
    pub(crate) mem_limit: Option<u64>,
    /// Where the worker writes its [`JobStatus`].
    pub(crate) status: PathBuf,
    /// The name its entry is recorded under, when it is not the node's: a branch's
    /// (`counts[3]`), whose key and context hold its mapped node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) entry_node: Option<String>,
}

impl Job {
    /// The job of running `node` of `pipeline` on the store in `data_dir`, with the inputs
    /// `inputs`, under `key` where it is known, reporting to `status`. The worker takes the
    /// key's lock itself, and its memory is not limited.
    pub(crate) fn new(
        pipeline: &Pipeline,
        node: &Node<'_>,
        data_dir: PathBuf,
        key: Option<String>,
        inputs: Vec<Vec<InputRef>>,
        replace: bool,
        status: PathBuf,
    ) -> Job {
        let meta = node.task().meta();
        Job {
            data_dir,
            pipeline: pipeline.name().to_owned(),
            node: node.name().to_string(),
            task: meta.name.to_owned(),
            fingerprint: hex(&crate::key::fingerprint(meta, node.task().output_type())),
            params: hex_bytes(node.params()),
            key,
            lock: true,
            inputs,
            replace,
            attempt: 1,
            timeout_secs: meta.timeout.map(|t| t.as_secs_f64()),
            mem_limit: None,
            status,
            entry_node: None,
        }
    }

    /// Writes the job, as JSON for people to read too, into `path`, atomically.
    pub(crate) fn write(&self, path: &Path) -> Result<(), StoreError> {
        write_json_atomically(path, self, true)
    }
}

/// Where a worker finds one stored output: its key, when it is known, else the status file
/// of the worker that computes it, which will hold the key.
pub(crate) type Location = (Option<String>, Option<PathBuf>);

/// The inputs of `node` as a worker finds them in the store, in argument order; of its
/// branch `i` when `branch` is `Some((i, element))`, whose element is element `i` of the
/// list it maps over, with the digest `element` (in hex), or branch `i` of the mapped node
/// it maps over. A gathered mapped node gives each of its branches, in order:
/// `branches(up)` is the number of branches of the mapped node `up`, `None` for a node.
/// `locate(up, i)` says where the output of node `up` is, or that of its branch `i`.
pub(crate) fn input_refs<E>(
    pipeline: &Pipeline,
    node: &Node<'_>,
    branch: Option<(usize, Option<&str>)>,
    branches: impl Fn(NodeId) -> Option<usize>,
    mut locate: impl FnMut(NodeId, Option<usize>) -> Result<Location, E>,
) -> Result<Vec<Vec<InputRef>>, E> {
    let map = node.map().filter(|_| branch.is_some());
    let mut refs = Vec::with_capacity(node.wires().len());
    for (w, wire) in node.wires().enumerate() {
        let mut wire_refs = Vec::with_capacity(wire.ids().len());
        if let (Some(spec), Some((i, element))) = (map, branch)
            && spec.element_inputs.contains(&w)
        {
            let mut input = match element {
                Some(_) => input_ref(pipeline, spec.over, None, locate(spec.over, None)?),
                None => input_ref(pipeline, spec.over, Some(i), locate(spec.over, Some(i))?),
            };
            input.element = element.map(|digest| ElementRef {
                index: i,
                digest: digest.to_owned(),
            });
            refs.push(vec![input]);
            continue;
        }
        for &up in wire.ids() {
            match branches(up) {
                Some(n) => {
                    for i in 0..n {
                        wire_refs.push(input_ref(pipeline, up, Some(i), locate(up, Some(i))?));
                    }
                }
                None => wire_refs.push(input_ref(pipeline, up, None, locate(up, None)?)),
            }
        }
        refs.push(wire_refs);
    }
    Ok(refs)
}

/// The input that is the output of node `up`, or of its branch `branch`, found at `at`.
fn input_ref(pipeline: &Pipeline, up: NodeId, branch: Option<usize>, at: Location) -> InputRef {
    let name = pipeline.node_name(up);
    let (key, status) = at;
    InputRef {
        node: match branch {
            Some(i) => crate::exec::mapped::branch_name(name, i),
            None => name.to_owned(),
        },
        task: pipeline.task_of(up).name.to_owned(),
        key,
        status,
        element: None,
    }
}

/// Where one node's job, status and log are kept in a run directory.
pub(crate) struct JobFiles {
    /// The [`Job`] the worker reads.
    pub(crate) spec: PathBuf,
    /// The [`JobStatus`] the worker writes.
    pub(crate) status: PathBuf,
    /// What the task prints.
    pub(crate) log: PathBuf,
}

impl JobFiles {
    /// The files of the node whose file name is `file_name`: its job and status in the
    /// directory `jobs`, its log at `log`.
    pub(crate) fn new(jobs: &Path, file_name: &str, log: PathBuf) -> Self {
        JobFiles {
            spec: jobs.join(format!("{file_name}.json")),
            status: jobs.join(format!("{file_name}.status.json")),
            log,
        }
    }
}

/// One stored output a worker reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InputRef {
    pub(crate) node: String,
    pub(crate) task: String,
    /// The input's key, when it was known at submission.
    pub(crate) key: Option<String>,
    /// Otherwise, the status file of the worker that computes it, which holds its key.
    pub(crate) status: Option<PathBuf>,
    /// For the element of a branch: which element of the stored list is the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) element: Option<ElementRef>,
}

/// The element of a branch, as its worker reads it: element `index` of a stored list,
/// whose canonical digest, which the branch's key holds, the parent computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ElementRef {
    pub(crate) index: usize,
    /// In hex.
    pub(crate) digest: String,
}

/// How a worker's task ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JobStatus {
    /// The output is stored under `key`.
    pub(crate) ok: bool,
    /// The entry was already stored, so the task did not run.
    pub(crate) cached: bool,
    /// The node's key, once the worker knows it.
    pub(crate) key: Option<String>,
    pub(crate) panicked: bool,
    pub(crate) timed_out: bool,
    /// The task said it was cancelled (it returned `Cancelled`).
    #[serde(default)]
    pub(crate) cancelled: bool,
    /// The error and its sources, outermost first.
    pub(crate) error: Vec<String>,
    pub(crate) backtrace: Option<String>,
    /// How long the task itself ran.
    pub(crate) duration_secs: f64,
}

impl JobStatus {
    /// Reads a status file; `None` if there is none or it does not parse.
    pub(crate) fn read(path: &Path) -> Option<JobStatus> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// The error of a worker that reported a failure, for a task with `timeout`.
    pub(crate) fn into_error(self, timeout: Option<Duration>) -> TaskError {
        if self.timed_out
            && let Some(timeout) = timeout
        {
            return TaskError::TimedOut(timeout);
        }
        if self.cancelled {
            return TaskError::Cancelled;
        }
        if self.panicked {
            let message = self.error.first().map_or("", String::as_str);
            let message = message.strip_prefix("task panicked: ").unwrap_or(message);
            return TaskError::Panicked(message.to_owned());
        }
        match RecordedError::from_chain(&self.error) {
            Some(error) => TaskError::Failed(error),
            None => TaskError::failed("the worker reported a failure without a message"),
        }
    }

    /// Writes the status file atomically.
    fn write(&self, path: &Path) -> Result<(), StoreError> {
        write_json_atomically(path, self, false)
    }
}

/// Called first thing by a `main` marked `#[pipewright::main]`: records the mark and, when
/// the program was started as a worker, runs its job and exits.
pub fn main_entry() {
    MAIN_MARKED.store(true, Ordering::Release);
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(WORKER_ARG)) {
        return;
    }
    let code = match args.next() {
        Some(job) => run_job_file(Path::new(&job)),
        None => {
            let _ = writeln!(std::io::stderr(), "pipewright worker: no job file given");
            EXIT_NO_JOB
        }
    };
    std::process::exit(code);
}

/// Runs the job described in `path`; returns the exit code.
fn run_job_file(path: &Path) -> i32 {
    let job: Job = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "pipewright worker: cannot read the job `{}`: {e}",
                path.display()
            );
            return EXIT_NO_JOB;
        }
    };
    install_log();
    let status = run(&job);
    if let Err(e) = status.write(&job.status) {
        let _ = writeln!(
            std::io::stderr(),
            "pipewright worker: {}",
            crate::chain::chain(&e).join(": ")
        );
        return EXIT_FAILED;
    }
    if status.ok { 0 } else { EXIT_FAILED }
}

/// Sends the worker's `tracing` events, the task's own included, to stderr, which the
/// parent captures into the node's log.
fn install_log() {
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Runs `job` and says how it ended.
fn run(job: &Job) -> JobStatus {
    let start = Instant::now();
    let mut key = None;
    let mut status = match execute(job, &mut key) {
        Ok(cached) => JobStatus {
            ok: true,
            cached,
            ..JobStatus::default()
        },
        Err(error) => {
            tracing::error!(target: "pipewright", node = %job.node, error = %error, "failed");
            JobStatus {
                panicked: matches!(error, TaskError::Panicked(_)),
                timed_out: matches!(error, TaskError::TimedOut(_)),
                cancelled: matches!(error, TaskError::Cancelled),
                backtrace: matches!(error, TaskError::Panicked(_))
                    .then(crate::backtrace::take_backtrace)
                    .flatten(),
                error: crate::chain::chain(&error),
                ..JobStatus::default()
            }
        }
    };
    status.duration_secs = start.elapsed().as_secs_f64();
    status.key = key;
    status
}

/// Fails the job with `message`.
fn fail(message: impl Into<String>) -> TaskError {
    TaskError::failed(message.into())
}

/// Runs the job; `Ok(true)` if its entry was already stored. Sets `key` once it is known.
fn execute(job: &Job, key_out: &mut Option<String>) -> Result<bool, TaskError> {
    #[cfg(unix)]
    if let Some(limit) = job.mem_limit {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let limit = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        setrlimit(Resource::As, limit)
            .map_err(|e| fail(format!("cannot limit the worker's memory: {e}")))?;
    }
    let registration = find_task(&job.task).map_err(|e| fail(e.to_string()))?;
    let meta = registration.meta();
    if hex(&fingerprint(meta, registration.output_type())) != job.fingerprint {
        return Err(fail(format!(
            "the code of task `{}` in this program is not the one the run was planned with; \
             was the program rebuilt during the run?",
            job.task
        )));
    }
    let params = parse_hex_bytes(&job.params)
        .ok_or_else(|| fail("the job's parameters are not written in hex"))?;
    let task = registration
        .build(&params)
        .map_err(|e| fail(format!("cannot rebuild the task from its parameters: {e}")))?;
    let store = Store::new(job.data_dir.clone());

    let mut values = Vec::with_capacity(job.inputs.len());
    let mut digests = Vec::with_capacity(job.inputs.len());
    for (input_index, (refs, spec)) in job.inputs.iter().zip(meta.inputs).enumerate() {
        if let [input] = refs.as_slice()
            && let Some(element) = &input.element
        {
            let (list, _) = read_input(&store, input)?;
            let read = task.element_reader();
            if read(input_index, &*list, element.index).is_none() {
                return Err(fail(format!(
                    "the stored output of input node `{}` has no element {} of the type \
                     input `{}` takes",
                    input.node, element.index, spec.name
                )));
            }
            let digest = parse_hex_bytes(&element.digest)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| fail("the job's element digest is not 32 bytes in hex"))?;
            values.push(InputValues::Listed {
                list,
                i: element.index,
                input: input_index,
                read,
            });
            digests.push(vec![digest]);
            continue;
        }
        let mut read = Vec::with_capacity(refs.len());
        let mut wire_digests = Vec::with_capacity(refs.len());
        for input in refs {
            let (value, digest) = read_input(&store, input)?;
            read.push(value);
            wire_digests.push(digest);
        }
        values.push(match spec.kind {
            InputKind::One if read.len() == 1 => InputValues::One(read.remove(0)),
            InputKind::One => return Err(fail("a single input is wired to several nodes")),
            InputKind::Many => InputValues::Many(read),
        });
        digests.push(wire_digests);
    }
    let names = Names {
        pipeline: &job.pipeline,
        node: &job.node,
    };
    let components = with_input_files(Some(&store), || task.components(names, digests))
        .map_err(KeyError::into_task_error)?;
    let key = hex(&components.key());
    *key_out = Some(key.clone());
    if let Some(expected) = &job.key
        && key != *expected
    {
        return Err(fail(format!(
            "the worker computes key {key} for node `{}`, not the parent's {expected}: its \
             parameters, rebuilt from the job, do not hash as the parent's did",
            job.node
        )));
    }
    let _lock = if job.lock && meta.cache {
        Some(store.lock(&key).map_err(TaskError::Store)?)
    } else {
        None
    };
    let check = Check {
        forced: job.replace,
        verify: false,
        repair: false,
        look: Look::Fresh,
    };
    if job.key.is_none() && decide(&store, meta, &job.node, &key, check).is_ok() {
        return Ok(true);
    }

    let names = Arc::new(NodeNames::one(&job.pipeline, &job.node));
    let timeout = job.timeout_secs.map(Duration::from_secs_f64);
    let entry = NewEntry {
        task: &*task,
        node: job.entry_node.as_deref().unwrap_or(&job.node),
        input_nodes: job
            .inputs
            .iter()
            .map(|refs| refs.iter().map(|r| r.node.clone()).collect())
            .collect(),
        key: &key,
        components: &components,
        // Every output a worker computes goes through the store, also an uncached one.
        keep: true,
    };
    entry.compute(&store, |pending| {
        let mut ctx = Ctx::new(names, Arc::new(AtomicBool::new(false)));
        ctx.set_node(meta.name, 0, Some(pending.work_dir()));
        crate::backtrace::capture_backtraces();
        attempt_on_thread(task.clone(), values, ctx, job.attempt, timeout)
    })?;
    Ok(false)
}

/// Reads and decodes one input's stored output, with its digest. A damaged entry is
/// removed, so that the next run recomputes it.
fn read_input(
    store: &Store,
    input: &InputRef,
) -> Result<(Arc<crate::task::Value>, crate::key::Digest), TaskError> {
    let damaged = |key: &str, seen: Option<&crate::cache::Entry>, why: String| {
        store.remove_damaged(&input.task, key, seen);
        fail(format!(
            "the stored output of input node `{}` is damaged ({why}); it was removed, and the \
             next run computes it again",
            input.node
        ))
    };
    let key = match (&input.key, &input.status) {
        (Some(key), _) => key.clone(),
        (None, Some(status)) => JobStatus::read(status)
            .and_then(|s| s.key.filter(|_| s.ok))
            .ok_or_else(|| {
                fail(format!(
                    "input node `{}` reports no output in `{}`",
                    input.node,
                    status.display()
                ))
            })?,
        (None, None) => return Err(fail(format!("input node `{}` has no key", input.node))),
    };
    let meta = match store.lookup_fresh(&input.task, &key) {
        Lookup::Present(meta) => meta,
        Lookup::Missing => {
            return Err(fail(format!(
                "the stored output of input node `{}` is missing",
                input.node
            )));
        }
        Lookup::Damaged(why) => return Err(damaged(&key, None, why)),
    };
    let output = store
        .read_verified(&meta)
        .map_err(|why| damaged(&key, None, why))?;
    let meta = output.replaced.unwrap_or(meta);
    let registration = find_task(&input.task).map_err(|e| fail(e.to_string()))?;
    let files = store.files_dir(&meta);
    let value = outputs::decoding_from(files.as_deref(), || registration.decode(&output.bytes))
        .map_err(|e| damaged(&key, Some(&meta), e.to_string()))?;
    let digest = meta.digest;
    Ok((value, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DefaultCodec;
    use crate::graph::Bound;
    use crate::task::{Inputs, Task, TaskMeta};

    /// A task registered in this test program, as `#[task]` registers one.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Answer {
        base: u32,
    }

    impl Task for Answer {
        type Output = u32;
        type Codec = DefaultCodec;
        const META: TaskMeta = TaskMeta::for_tests("worker_tests_answer", "exec::worker::tests");

        fn run(&self, _: &Inputs<'_>, _: &Ctx) -> Result<u32, TaskError> {
            Ok(self.base + 42)
        }
    }

    inventory::submit! { crate::registry::Registration::of::<Answer>() }

    /// The job of the one node of a pipeline running `Answer`, on a store in `dir`.
    fn job(dir: &Path) -> Job {
        let mut b = Pipeline::builder("worker-tests");
        b.add("answer", Bound::new(Answer { base: 0 }, Vec::new()))
            .unwrap();
        let p = b.build();
        let node = &p.node_at(NodeId::at(0));
        Job::new(
            &p,
            node,
            dir.join("data"),
            None,
            Vec::new(),
            false,
            dir.join("status.json"),
        )
    }

    #[test]
    fn a_worker_refuses_another_task_or_another_key_than_the_parents() {
        let dir = tempfile::tempdir().unwrap();
        let mut key = None;
        assert!(
            !execute(&job(dir.path()), &mut key).unwrap(),
            "not stored yet"
        );
        assert!(key.is_some());

        // A program rebuilt with other code for the task: its identity differs.
        let mut rebuilt = job(dir.path());
        rebuilt.fingerprint = "0".repeat(64);
        let error = execute(&rebuilt, &mut None).unwrap_err().to_string();
        assert!(
            error.contains("is not the one the run was planned with"),
            "{error}"
        );

        // Parameters that hash otherwise in the worker than in the parent.
        let mut other_key = job(dir.path());
        other_key.key = Some("f".repeat(64));
        let error = execute(&other_key, &mut None).unwrap_err().to_string();
        assert!(error.contains("not the parent's"), "{error}");
    }
}
