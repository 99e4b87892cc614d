//! A task waiting to be tried again stops waiting when its run is cancelled, and makes no
//! more attempts.

mod support;

use std::sync::Mutex;

use pipewright::Cancel;
use pipewright::prelude::*;
use support::{count, take_runs};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The handle of the run under test.
static CANCEL: Mutex<Option<Cancel>> = Mutex::new(None);

/// Cancels the run under test when a failed attempt announces its retry: after the run
/// last checked whether it was cancelled, and before it waits to try again.
struct CancelOnRetry;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CancelOnRetry {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.contains("trying again")
            && let Some(cancel) = CANCEL.lock().unwrap().as_ref()
        {
            cancel.cancel();
        }
    }
}

/// Always fails, and would be tried many times, each after a longer wait.
#[task(retries = 20)]
fn doomed(ctx: &Ctx) -> Result<u32, String> {
    count(ctx);
    Err(format!("attempt {} failed", ctx.attempt()))
}

#[test]
fn a_cancelled_run_makes_no_more_attempts() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CancelOnRetry))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cancelled-retries";
        let a = doomed();
    };
    let runner = Runner::new(dir.path());
    *CANCEL.lock().unwrap() = Some(runner.cancel_handle());
    let run = runner.run(&p).unwrap();
    *CANCEL.lock().unwrap() = None;

    assert!(run.cancelled());
    assert_eq!(run.status("a"), Some(NodeStatus::Failed));
    assert_eq!(
        run.node("a").unwrap().error().unwrap().to_string(),
        "attempt 1 failed"
    );
    // Cancelled while waiting for its second attempt, which never came.
    assert_eq!(take_runs("cancelled-retries")["a"], 1);
}
