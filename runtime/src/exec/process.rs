//! The parent's side of the process executor: runs one job in a child process (this program
//! re-entered as a worker, see [`super::worker`]) and waits for it without polling.
//!
//! The thread that runs the node blocks in `waitid` until the child has exited, without
//! reaping it; a watcher thread sleeps until the task's deadline or until the run is
//! stopped, and then kills the child's process group. Both look at whether the child was
//! reaped under one lock, so a kill never reaches a process id the system has reused. When
//! the child has exited, and before it is reaped, what is left of its group (processes the
//! task started and left running) is killed too.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

use super::Stop;
use super::worker::{Job, JobFiles, JobStatus, WORKER_ARG};
use crate::cache::{Entry, Lookup, Store, StoreError};
use crate::node::compute::Retries;
use crate::task::{TaskError, TaskMeta, WorkerExit};

/// How many lines of a crashed worker's output its error quotes.
const LAST_LINES: usize = 3;

/// How much of the end of a crashed worker's log is read for its last lines.
const LOG_TAIL: u64 = 64 << 10;

/// The files of the node whose file name is `file_name`, under `run_dir`: its job and
/// status in `jobs/`, its log in `logs/`.
pub(crate) fn job_files(run_dir: &Path, file_name: &str) -> Result<JobFiles, StoreError> {
    let jobs = run_dir.join("jobs");
    let logs = run_dir.join("logs");
    for dir in [&jobs, &logs] {
        fs::create_dir_all(dir).map_err(|e| StoreError::new("cannot create", dir, e))?;
    }
    Ok(JobFiles::new(
        &jobs,
        file_name,
        logs.join(format!("{file_name}.log")),
    ))
}

/// Runs `job`, of a task described by `meta`, in a child process per attempt, as many as `retries` allow, while this
/// process holds the key's lock; returns the entry the worker committed.
pub(crate) fn run_node(
    job: Job,
    files: &JobFiles,
    store: &Store,
    meta: &TaskMeta,
    retries: &Retries<'_>,
) -> Result<Arc<Entry>, TaskError> {
    let key = job.key.clone().unwrap_or_default();
    // This process holds the key's lock, and the worker may be told how much memory it
    // can have.
    let mut job = Job {
        lock: false,
        mem_limit: meta.resources.mem,
        ..job
    };
    retries.run(|attempt| {
        job.attempt = attempt;
        let outcome = run_job(&job, files, meta.timeout, retries.stop);
        if outcome.is_err() && meta.cache {
            // This process holds the key's lock: what is half written under it was left
            // by the worker that just ended.
            store.discard_unfinished(meta.name, &key);
        }
        outcome
    })?;
    match store.lookup_fresh(meta.name, &key) {
        Lookup::Present(entry) => Ok(entry),
        Lookup::Missing => Err(TaskError::failed(
            "the worker reported success, but its entry is not in the store",
        )),
        Lookup::Damaged(why) => Err(TaskError::failed(format!(
            "the worker reported success, but its entry is damaged: {why}"
        ))),
    }
}

/// Why the parent killed a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    TimedOut,
    Cancelled,
}

/// Runs `job` in a child process and says how it ended: `Ok` with the task's run time once
/// its output is committed under the job's key.
pub(crate) fn run_job(
    job: &Job,
    files: &JobFiles,
    timeout: Option<Duration>,
    stop: &Stop,
) -> Result<Duration, TaskError> {
    job.write(&files.spec).map_err(TaskError::Store)?;
    let _ = fs::remove_file(&files.status);

    let log = File::options()
        .create(true)
        .append(true)
        .open(&files.log)
        .map_err(|e| TaskError::Store(StoreError::new("cannot open", &files.log, e)))?;
    let log_start = log.metadata().map_or(0, |m| m.len());
    let err_log = log
        .try_clone()
        .map_err(|e| TaskError::Store(StoreError::new("cannot open", &files.log, e)))?;
    let exe = std::env::current_exe().map_err(TaskError::Spawn)?;
    let mut child = Command::new(exe)
        .arg(WORKER_ARG)
        .arg(&files.spec)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        // Its own process group: a terminal's Ctrl-C reaches the parent only, which then
        // kills the whole group, the task's own children included.
        .process_group(0)
        .spawn()
        .map_err(TaskError::Spawn)?;
    let pid = Pid::from_raw(child.id() as i32).ok_or_else(|| {
        TaskError::Spawn(std::io::Error::other("the worker has no valid process id"))
    })?;
    tracing::debug!(target: "pipewright", pid = child.id(), attempt = job.attempt, "worker started");

    let deadline = timeout.map(|t| Instant::now() + t);
    let reaped = AtomicBool::new(false);
    let (status, killed) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch(stop, deadline, &reaped, pid));
        // Wait for the exit without reaping: until the watcher knows, the id stays ours.
        while let Err(rustix::io::Errno::INTR) = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {}
        // The node has ended: so has everything it started. Until the child is reaped, its
        // process id, and so its group's, cannot be reused.
        let _ = kill_process_group(pid, Signal::KILL);
        let status = {
            let _guard = stop.guard();
            let status = child.wait();
            reaped.store(true, Ordering::Release);
            status
        };
        stop.notify();
        let killed = watcher.join().unwrap_or(None);
        (status, killed)
    });

    match killed {
        Some(Killed::TimedOut) => {
            return Err(TaskError::TimedOut(timeout.unwrap_or_default()));
        }
        Some(Killed::Cancelled) => return Err(TaskError::Cancelled),
        None => {}
    }
    if let Some(status) = JobStatus::read(&files.status) {
        return if status.ok {
            Ok(Duration::from_secs_f64(status.duration_secs))
        } else {
            Err(status.into_error(timeout))
        };
    }
    let status = status.map_err(TaskError::Spawn)?;
    Err(TaskError::Crashed(WorkerExit {
        code: status.code(),
        signal: status.signal(),
        last_output: last_lines(&files.log, log_start),
        log: files.log.clone(),
    }))
}

/// Sleeps until the child was reaped, the deadline passed or the run was stopped; kills the
/// child's process group in the last two cases.
fn watch(stop: &Stop, deadline: Option<Instant>, reaped: &AtomicBool, pid: Pid) -> Option<Killed> {
    let mut guard = stop.guard();
    loop {
        if reaped.load(Ordering::Acquire) {
            return None;
        }
        let why = if stop.is_set() {
            Some(Killed::Cancelled)
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Killed::TimedOut)
        } else {
            None
        };
        if let Some(why) = why {
            // The child is not reaped (checked under the lock the reaper takes), so its
            // process group id is still its own.
            let _ = kill_process_group(pid, Signal::KILL);
            drop(guard);
            return Some(why);
        }
        guard = stop.wait(guard, deadline);
    }
}

/// The last few lines written to `log` after `start`, joined by ` | `, leaving out empty
/// lines and backtraces; read from the end of the log.
fn last_lines(log: &Path, start: u64) -> String {
    let mut bytes = Vec::new();
    let mut from = start;
    if let Ok(mut file) = File::open(log) {
        let end = file.metadata().map_or(start, |m| m.len());
        from = start.max(end.saturating_sub(LOG_TAIL));
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.take(LOG_TAIL).read_to_end(&mut bytes);
    }
    // Read from the middle of a line: that line is not whole.
    if from > start {
        let whole = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.drain(..whole);
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_backtrace(l))
        .collect();
    let tail = &lines[lines.len().saturating_sub(LAST_LINES)..];
    let joined = tail.join(" | ");
    match joined.char_indices().nth(400) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// Whether `line` belongs to a printed backtrace, which says less than the lines before it.
fn is_backtrace(line: &str) -> bool {
    let frame = line
        .split_once(':')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    frame
        || line.starts_with("at ")
        || line == "stack backtrace:"
        || line.starts_with("note: Some details are omitted")
}
