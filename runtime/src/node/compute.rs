//! Computing one node: calling its task with a panic caught, one attempt against its
//! deadline, and the attempts its retries allow, with a growing wait between them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::erased::ErasedTask;
use crate::stop::Stop;
use crate::task::{Ctx, InputValues, Inputs, TaskError, Value};

/// How long the first retry of a failed task waits; each further retry waits twice as
/// long as the one before.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Calls `task` on `inputs`, catching a panic. An error returned after
/// [`Ctx::check_cancelled`] told the task to stop is [`TaskError::Cancelled`], whatever
/// type the task made of it.
#[inline]
pub(crate) fn call(
    task: &dyn ErasedTask,
    inputs: &[InputValues],
    ctx: &Ctx,
) -> Result<Arc<Value>, TaskError> {
    crate::backtrace::task_call(|| {
        catch_unwind(AssertUnwindSafe(|| {
            task.run(&Inputs { slots: inputs }, ctx)
        }))
    })
    .unwrap_or_else(|payload| Err(TaskError::from_panic(payload)))
    .map_err(|error| match error {
        TaskError::Failed(_) if ctx.told_to_stop() => TaskError::Cancelled,
        error => error,
    })
}

/// Attempt number `number` at `task` on `inputs`, on this thread: `ctx` is told the
/// attempt and its deadline, and whatever the task returns after the deadline, it timed
/// out.
pub(crate) fn attempt(
    task: &dyn ErasedTask,
    inputs: &[InputValues],
    ctx: &mut Ctx,
    number: u32,
    timeout: Option<Duration>,
) -> Result<Arc<Value>, TaskError> {
    // The clock is read only for a task that can time out.
    let deadline = timeout.map(|t| Instant::now() + t);
    ctx.set_attempt(deadline, number);
    past_deadline(call(task, inputs, ctx), timeout, deadline)
}

/// Attempt number `number` at `task` on `inputs`, on a thread of its own that is given up
/// at the deadline: the process's exit then ends it, as no thread can be killed otherwise.
pub(crate) fn attempt_on_thread(
    task: Arc<dyn ErasedTask>,
    inputs: Vec<InputValues>,
    mut ctx: Ctx,
    number: u32,
    timeout: Option<Duration>,
) -> Result<Arc<Value>, TaskError> {
    let Some(timeout) = timeout else {
        return attempt(&*task, &inputs, &mut ctx, number, None);
    };
    let deadline = Instant::now() + timeout;
    ctx.set_attempt(Some(deadline), number);
    let (send, receive) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("task".to_owned())
        // The stack a task has on the main thread.
        .stack_size(8 << 20)
        .spawn(move || {
            let _ = send.send(call(&*task, &inputs, &ctx));
        });
    if let Err(e) = spawned {
        return Err(TaskError::failed(format!(
            "cannot start the task's thread: {e}"
        )));
    }
    let result = receive
        .recv_timeout(timeout)
        .unwrap_or(Err(TaskError::TimedOut(timeout)));
    past_deadline(result, Some(timeout), Some(deadline))
}

/// `result`, unless it came after `deadline`: then the task timed out.
fn past_deadline<T>(
    result: Result<T, TaskError>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<T, TaskError> {
    match (timeout, deadline) {
        (Some(timeout), Some(deadline)) if Instant::now() > deadline => {
            Err(TaskError::TimedOut(timeout))
        }
        _ => result,
    }
}

/// When a node's attempts stop: its retries, and the run's stop flag, which also ends the
/// wait before a retry.
pub(crate) struct Retries<'a> {
    /// How many times a failed attempt is retried.
    pub(crate) retries: u32,
    /// The run's stop flag.
    pub(crate) stop: &'a Stop,
    /// Set when a failure stops a fail-fast run.
    pub(crate) halt: Option<&'a AtomicBool>,
}

impl Retries<'_> {
    /// Whether the run starts nothing more.
    fn stopped(&self) -> bool {
        self.stop.is_set() || self.halt.is_some_and(|h| h.load(Ordering::Acquire))
    }

    /// Makes attempts until one succeeds, the retries are used up, or the run stops;
    /// waits longer before each retry. Returns the last attempt's outcome.
    pub(crate) fn run<T>(
        &self,
        mut attempt_at: impl FnMut(u32) -> Result<T, TaskError>,
    ) -> Result<T, TaskError> {
        let mut attempt = 1;
        loop {
            tracing::debug!(target: "pipewright", attempt, "started");
            let error = match attempt_at(attempt) {
                Ok(done) => return Ok(done),
                Err(error) => error,
            };
            if attempt > self.retries || self.stopped() || matches!(error, TaskError::Cancelled) {
                return Err(error);
            }
            let backoff = RETRY_BACKOFF * 2u32.saturating_pow(attempt - 1).min(64);
            tracing::warn!(
                target: "pipewright",
                attempt,
                error = %error,
                "attempt failed; trying again in {backoff:?}"
            );
            // A run stopped meanwhile makes no more attempts.
            if self.stop.sleep(backoff) || self.stopped() {
                return Err(error);
            }
            attempt += 1;
        }
    }
}
