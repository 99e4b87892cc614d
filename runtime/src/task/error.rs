//! [`TaskError`]: why one run of a task did not produce an output, and how a worker ended;
//! [`Cancelled`]: what a task returns when it stops because its run was cancelled.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why one run of a task did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task returned `Err`.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The task panicked; holds the panic message.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The task ran past its `timeout`.
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// The run was cancelled before the task finished, or the task said so by returning
    /// [`Cancelled`].
    #[error("cancelled")]
    Cancelled,
    /// The task's parameters could not be hashed.
    #[error("cannot hash the parameters: {0}")]
    Params(#[source] crate::hash::HashError),
    /// An input file or directory that the task's parameters name cannot be read, so the
    /// node's key cannot be made.
    #[error("{kind} `{}` cannot be read", path.display())]
    InputFile {
        /// The path, as the parameter names it.
        path: PathBuf,
        /// `input file` or `input directory`.
        kind: &'static str,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The task's output could not be encoded.
    #[error("cannot encode the output")]
    Encode(#[source] crate::codec::CodecError),
    /// The task's output could not be stored.
    #[error("cannot store the output")]
    Store(#[source] crate::cache::StoreError),
    /// The worker process running the task ended without a result: it crashed, was
    /// killed, or exited (process executor).
    #[error(transparent)]
    Crashed(WorkerExit),
    /// No worker process could be started for the task (process executor).
    #[error("cannot start a worker process")]
    Spawn(#[source] std::io::Error),
    /// A mapped node would make more branches than a run may make in all: the record of
    /// a run with more would take too much memory to read.
    #[error("{}", too_many_branches(*branches, *made, *limit))]
    TooManyBranches {
        /// The branches the mapped node would make.
        branches: usize,
        /// The branches the run's other mapped nodes made before it.
        made: usize,
        /// The most branches a run makes.
        limit: usize,
    },
}

/// What [`TaskError::TooManyBranches`] says.
fn too_many_branches(branches: usize, made: usize, limit: usize) -> String {
    let before = if made == 0 {
        String::new()
    } else {
        format!(" which with the {made} its run made before is")
    };
    format!("the map would make {branches} branches,{before} more than the {limit} a run may make")
}

/// What a task returns to stop because its run was cancelled, as
/// [`Ctx::check_cancelled`](super::Ctx::check_cancelled) gives it: its node then ends as
/// cancelled, not failed, and so do the nodes below it.
///
/// It converts into the error types a task usually returns: `?` turns it into a `String`,
/// a `Box<dyn Error + Send + Sync>`, an `std::io::Error` (of kind `Interrupted`), an
/// `anyhow::Error` or a [`TaskError`]. Whatever it became, the node is cancelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

impl From<Cancelled> for String {
    fn from(cancelled: Cancelled) -> Self {
        cancelled.to_string()
    }
}

impl From<Cancelled> for std::io::Error {
    fn from(cancelled: Cancelled) -> Self {
        std::io::Error::new(std::io::ErrorKind::Interrupted, cancelled)
    }
}

impl From<Cancelled> for TaskError {
    fn from(_: Cancelled) -> Self {
        TaskError::Cancelled
    }
}

/// How a worker process ended without reporting a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct WorkerExit {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The last lines it wrote (stdout and stderr), which often say why.
    pub last_output: String,
    /// Its log, with everything it wrote.
    pub log: PathBuf,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.signal, self.code) {
            (Some(signal), _) => match signal_name(signal) {
                Some(name) => write!(
                    f,
                    "the worker process was killed by signal {signal} ({name})"
                )?,
                None => write!(f, "the worker process was killed by signal {signal}")?,
            },
            (None, Some(code)) => write!(f, "the worker process exited with code {code}")?,
            (None, None) => f.write_str("the worker process ended without a result")?,
        }
        if !self.last_output.is_empty() {
            write!(f, "; its last output: {}", self.last_output)?;
        }
        write!(f, " (log: `{}`)", self.log.display())
    }
}

/// The name of a common signal, as `kill -l` gives it, in this platform's numbering.
#[cfg(unix)]
fn signal_name(signal: i32) -> Option<&'static str> {
    use rustix::process::Signal;
    Some(match Signal::from_named_raw(signal)? {
        Signal::HUP => "SIGHUP",
        Signal::INT => "SIGINT",
        Signal::QUIT => "SIGQUIT",
        Signal::ILL => "SIGILL",
        Signal::TRAP => "SIGTRAP",
        Signal::ABORT => "SIGABRT",
        Signal::BUS => "SIGBUS",
        Signal::FPE => "SIGFPE",
        Signal::KILL => "SIGKILL",
        Signal::SEGV => "SIGSEGV",
        Signal::PIPE => "SIGPIPE",
        Signal::ALARM => "SIGALRM",
        Signal::TERM => "SIGTERM",
        Signal::XCPU => "SIGXCPU",
        Signal::XFSZ => "SIGXFSZ",
        _ => return None,
    })
}

/// No signal has a name where there are no Unix signals.
#[cfg(not(unix))]
fn signal_name(_signal: i32) -> Option<&'static str> {
    None
}

impl TaskError {
    /// Wraps an error a task returned: [`Cancelled`] (or an `std::io::Error` made from
    /// it) is [`TaskError::Cancelled`], a `TaskError` is itself, anything else failed.
    pub fn failed(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let error = error.into();
        if is_cancelled(&*error) {
            return TaskError::Cancelled;
        }
        match error.downcast::<TaskError>() {
            Ok(error) => *error,
            Err(error) => TaskError::Failed(error),
        }
    }

    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(s) => (*s).to_owned(),
                Err(_) => "a panic with a non-string payload".to_owned(),
            },
        };
        TaskError::Panicked(message)
    }
}

/// Whether `error` is [`Cancelled`], or an `std::io::Error` made from it.
fn is_cancelled(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<Cancelled>()
        || error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<Cancelled>())
}

/// The return types of a task function that can fail: `Result<T, E>` where `E` converts
/// into a boxed error (any `std::error::Error + Send + Sync`, `String`, `&str`, `anyhow::Error`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of a task",
    note = "a task returns `T` or `Result<T, E>` where `E` converts into `Box<dyn std::error::Error + Send + Sync>`"
)]
pub trait Fallible {
    /// The success type.
    type Ok;
    /// Converts into the executor's result.
    fn into_task_result(self) -> Result<Self::Ok, TaskError>;
}

impl<T, E> Fallible for Result<T, E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Ok = T;
    fn into_task_result(self) -> Result<T, TaskError> {
        self.map_err(TaskError::failed)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use rustix::process::Signal;

    use super::signal_name;

    #[test]
    fn signals_are_named_by_this_platforms_numbers() {
        assert_eq!(signal_name(Signal::KILL.as_raw()), Some("SIGKILL"));
        assert_eq!(signal_name(Signal::BUS.as_raw()), Some("SIGBUS"));
        assert_eq!(signal_name(Signal::SEGV.as_raw()), Some("SIGSEGV"));
        assert_eq!(signal_name(Signal::ALARM.as_raw()), Some("SIGALRM"));
        assert_eq!(signal_name(Signal::USR1.as_raw()), None);
        assert_eq!(signal_name(0), None);
    }
}
