//! [`Cancel`]: the runs of a runner in progress, each with its own stop flag, and cancelling them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::exec::Stop;
use crate::progress::JournalHandle;
use crate::record::write::RunDir;

/// The runs of one [`Runner`] in progress, each with its own stop flag, and whether the
/// next run to start is cancelled.
///
/// [`Runner`]: super::Runner
#[derive(Debug, Default)]
pub(super) struct Runs(Mutex<RunsState>);

#[derive(Default)]
struct RunsState {
    active: Vec<Arc<Stop>>,
    /// The run directories of the runs in progress that are recorded, with their journals.
    recorded: Vec<Recorded>,
    /// A cancellation issued while no run was in progress, for the next run to start.
    pending: bool,
}

/// A run in progress that is recorded: its stop flag, its directory and its journal.
struct Recorded {
    stop: Arc<Stop>,
    dir: PathBuf,
    journal: JournalHandle,
}

impl std::fmt::Debug for RunsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunsState")
            .field("active", &self.active)
            .field(
                "recorded",
                &self.recorded.iter().map(|r| &r.dir).collect::<Vec<_>>(),
            )
            .field("pending", &self.pending)
            .finish()
    }
}

impl Runs {
    fn state(&self) -> MutexGuard<'_, RunsState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a run with a flag of its own, raised at once if a cancellation was waiting for
    /// it; the run is in progress until the returned guard is dropped.
    pub(super) fn start(&self) -> ActiveRun<'_> {
        let stop = Arc::new(Stop::default());
        let mut state = self.state();
        if std::mem::take(&mut state.pending) {
            stop.set();
        }
        state.active.push(stop.clone());
        ActiveRun { runs: self, stop }
    }
}

/// A run in progress; it ends when this is dropped.
pub(super) struct ActiveRun<'r> {
    runs: &'r Runs,
    pub(super) stop: Arc<Stop>,
}

impl ActiveRun<'_> {
    /// Says that the run is recorded in `dir`, with `journal`.
    pub(super) fn recorded_in(&self, dir: PathBuf, journal: JournalHandle) {
        self.runs.state().recorded.push(Recorded {
            stop: self.stop.clone(),
            dir,
            journal,
        });
    }
}

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        let mut state = self.runs.state();
        state.active.retain(|stop| !Arc::ptr_eq(stop, &self.stop));
        state.recorded.retain(|r| !Arc::ptr_eq(&r.stop, &self.stop));
    }
}

/// Cancels the runs of a [`Runner`]; see [`Runner::cancel_handle`]. Clone it freely.
///
/// [`cancel`](Self::cancel) stops every run of the runner in progress: no node starts any
/// more, running tasks see [`Ctx::cancelled`](crate::Ctx::cancelled), what finished stays
/// stored, and the report says [`cancelled`](crate::RunReport::cancelled). Issued while no run is
/// in progress, it cancels the next run to start, which then starts no node. Either way it
/// is then spent: a run started after the runs it stopped is not cancelled by it, and each
/// run of the runner, also when several run at once on different threads, has its own
/// flag that no other run lowers.
///
/// [`Runner`]: super::Runner
/// [`Runner::cancel_handle`]: super::Runner::cancel_handle
#[derive(Debug, Clone)]
pub struct Cancel(pub(super) Arc<Runs>);

impl Cancel {
    /// Stops the runs in progress, or else the next run to start.
    pub fn cancel(&self) {
        let mut state = self.0.state();
        if state.active.is_empty() {
            state.pending = true;
        }
        for stop in &state.active {
            stop.set();
        }
    }

    /// Records the runs in progress as they stand, for a process that exits before they
    /// end: each run's journal is written out (waiting at most `patience` for each), and its
    /// `run.json` says it was cancelled, with what finished and the rest cancelled. Returns
    /// the run directories it could not write.
    #[cfg_attr(
        not(feature = "cli"),
        expect(
            dead_code,
            reason = "only the command line records the runs of a process that exits before they end"
        )
    )]
    pub(crate) fn record_now(&self, patience: Duration) -> Vec<PathBuf> {
        let state = self.0.state();
        state
            .recorded
            .iter()
            .filter(|run| !(run.journal.flush(patience) && RunDir::abandon(&run.dir).is_ok()))
            .map(|run| run.dir.clone())
            .collect()
    }

    /// Whether a cancellation is in effect: a run in progress was cancelled, or the next
    /// run to start will be.
    pub fn is_cancelled(&self) -> bool {
        let state = self.0.state();
        state.pending || state.active.iter().any(|stop| stop.is_set())
    }
}
