//! The panic hook that keeps the backtrace of a panic inside a task call, for the node's
//! failure record.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    /// The backtrace of the last panic in a task call on this thread, taken by the hook
    /// below; its symbols are resolved only when it is read.
    static LAST_BACKTRACE: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
    /// Whether this thread is inside a task call: the hook captures nothing elsewhere.
    static IN_TASK_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that keeps the backtrace of each panic inside a task call
/// (see [`task_call`]) for the failure record, then hands the panic on to the hook that was
/// there before. Any other panic goes straight to that hook.
pub(crate) fn capture_backtraces() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TASK_CALL.get() {
                let backtrace = Backtrace::force_capture();
                LAST_BACKTRACE.with(|b| *b.borrow_mut() = Some(backtrace));
            }
            previous(info);
        }));
    });
}

/// Calls `call`, a task's code, so that a panic in it leaves its backtrace for
/// [`take_backtrace`].
pub(crate) fn task_call<T>(call: impl FnOnce() -> T) -> T {
    /// Puts back the flag as it was, also when `call` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_TASK_CALL.set(self.0);
        }
    }
    let _restore = Restore(IN_TASK_CALL.replace(true));
    call()
}

/// The backtrace of the last panic in a task call on this thread, taken out.
pub(crate) fn take_backtrace() -> Option<String> {
    LAST_BACKTRACE
        .with(|b| b.borrow_mut().take())
        .map(|b| b.to_string())
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::{capture_backtraces, take_backtrace, task_call};

    #[test]
    fn only_panics_in_task_calls_leave_a_backtrace() {
        // What a run installs.
        capture_backtraces();
        assert!(catch_unwind(|| panic!("outside a task")).is_err());
        assert_eq!(take_backtrace(), None);

        assert!(task_call(|| catch_unwind(|| panic!("in a task"))).is_err());
        assert!(take_backtrace().is_some());
        assert_eq!(take_backtrace(), None, "taken out");

        // Back outside: nothing is captured again.
        assert!(catch_unwind(|| panic!("outside again")).is_err());
        assert_eq!(take_backtrace(), None);
    }
}
