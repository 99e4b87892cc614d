//! A run's stop flag, which tasks read through their context and waiting threads sleep on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A run's stop flag that threads can also sleep on: [`Stop::set`] wakes them.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    /// Read by tasks through their `Ctx`.
    pub(crate) flag: Arc<AtomicBool>,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Stop {
    /// Raises the flag and wakes every thread waiting on it.
    pub(crate) fn set(&self) {
        self.flag.store(true, Ordering::Release);
        let _guard = self.guard();
        self.wake.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Wakes the threads waiting on the flag, so that they look again at what they wait
    /// for.
    pub(crate) fn notify(&self) {
        let _guard = self.guard();
        self.wake.notify_all();
    }

    /// The lock under which waiters check their condition.
    pub(crate) fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration`, or less if the flag is raised meanwhile; returns whether it
    /// was.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut guard = self.guard();
        // `set` raises the flag before it takes the lock to wake: checked under the lock,
        // a raised flag is never missed.
        while !self.is_set() {
            if Instant::now() >= deadline {
                return false;
            }
            guard = self.wait(guard, Some(deadline));
        }
        true
    }

    /// Waits under `guard` until notified, or until `deadline` if there is one.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, ()>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, ()> {
        match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.wake
                    .wait_timeout(guard, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
        }
    }
}
