//! [`Cancel`]: the runs of a runner in progress, each with its own stop flag, and cancelling them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::exec::Stop;

/// The runs of one [`Runner`] in progress, each with its own stop flag, and whether the
/// next run to start is cancelled.
///
/// [`Runner`]: super::Runner
#[derive(Debug, Default)]
pub(super) struct Runs(Mutex<RunsState>);

#[derive(Debug, Default)]
struct RunsState {
    active: Vec<Arc<Stop>>,
    /// A cancellation issued while no run was in progress, for the next run to start.
    pending: bool,
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

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        self.runs
            .state()
            .active
            .retain(|stop| !Arc::ptr_eq(stop, &self.stop));
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

    /// Whether a cancellation is in effect: a run in progress was cancelled, or the next
    /// run to start will be.
    pub fn is_cancelled(&self) -> bool {
        let state = self.0.state();
        state.pending || state.active.iter().any(|stop| stop.is_set())
    }
}
