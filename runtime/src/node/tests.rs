use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::RunReason;
use super::commit::NewEntry;
use super::compute::{Retries, attempt, call};
use super::decide::{Check, decide};
use crate::cache::{Look, Store};
use crate::erased::ErasedTask;
use crate::key::{Components, Names, hex};
use crate::stop::Stop;
use crate::task::{Ctx, Inputs, NodeNames, Task, TaskError, TaskMeta, Value};

/// A task that returns 7, or panics when told to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seven {
    panics: bool,
}

impl Task for Seven {
    type Output = u32;
    type Codec = crate::codec::DefaultCodec;
    const META: TaskMeta = TaskMeta::for_tests("seven", "node::tests");

    fn run(&self, _: &Inputs<'_>, _: &Ctx) -> Result<u32, TaskError> {
        assert!(!self.panics, "told to panic");
        Ok(7)
    }
}

/// An empty store of its own for the test named `name`.
fn store(name: &str) -> Store {
    let root: PathBuf =
        std::env::temp_dir().join(format!("pipewright-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    Store::new(root)
}

fn ctx() -> Ctx {
    let names = Arc::new(NodeNames::one("p", "n"));
    Ctx::new(names, Arc::new(AtomicBool::new(false)))
}

fn components(task: &dyn ErasedTask) -> Components {
    let names = Names {
        pipeline: "p",
        node: "n",
    };
    task.components(names, Vec::new()).unwrap()
}

fn check(forced: bool) -> Check {
    Check {
        forced,
        verify: true,
        repair: true,
        look: Look::Fresh,
    }
}

/// Computes `task` as node `n` and commits it under its key when `keep` says so.
fn commit(
    store: &Store,
    task: &Seven,
    keep: bool,
) -> (String, Result<super::commit::Computed, TaskError>) {
    let components = components(task);
    let key = hex(&components.key());
    let entry = NewEntry {
        task,
        node: "n",
        input_nodes: Vec::new(),
        key: &key,
        components: &components,
        keep,
    };
    let computed = entry.compute(store, |_| call(task, &[], &ctx()));
    (key, computed)
}

#[test]
fn a_committed_output_is_decided_cached_unless_forced() {
    let store = store("committed");
    let task = Seven { panics: false };
    assert_eq!(
        decide(
            &store,
            task.meta(),
            "n",
            "0".repeat(64).as_str(),
            check(false)
        )
        .unwrap_err(),
        RunReason::NoEntry
    );
    let (key, computed) = commit(&store, &task, true);
    let computed = computed.unwrap();
    assert_eq!(computed.value.downcast_ref::<u32>(), Some(&7));
    let entry = decide(&store, task.meta(), "n", &key, check(false)).unwrap();
    assert_eq!(entry.digest, computed.digest);
    assert_eq!(entry.node, "n");
    assert_eq!(
        decide(&store, task.meta(), "n", &key, check(true)).unwrap_err(),
        RunReason::Forced
    );
    let _ = std::fs::remove_dir_all(store.root());
}

#[test]
fn an_output_not_kept_or_failed_leaves_no_entry() {
    let store = store("unkept");
    let (key, computed) = commit(&store, &Seven { panics: false }, false);
    assert!(computed.unwrap().entry.is_none());
    let meta = Seven::META;
    assert_eq!(
        decide(&store, &meta, "n", &key, check(false)).unwrap_err(),
        RunReason::NoEntry
    );
    let (key, computed) = commit(&store, &Seven { panics: true }, true);
    assert!(
        matches!(&computed, Err(TaskError::Panicked(m)) if m.contains("told to panic")),
        "{:?}",
        computed.err()
    );
    assert_eq!(
        decide(&store, &meta, "n", &key, check(false)).unwrap_err(),
        RunReason::NoEntry
    );
    let _ = std::fs::remove_dir_all(store.root());
}

#[test]
fn an_uncached_task_is_decided_to_run() {
    let store = store("uncached");
    let meta = TaskMeta {
        cache: false,
        ..Seven::META
    };
    assert_eq!(
        decide(&store, &meta, "n", "0".repeat(64).as_str(), check(false)).unwrap_err(),
        RunReason::NotCached
    );
}

#[test]
fn attempts_stop_at_the_retries_or_when_the_run_stops() {
    let stop = Stop::default();
    let retries = Retries {
        retries: 2,
        stop: &stop,
        halt: None,
    };
    let mut made = Vec::new();
    let result: Result<(), _> = retries.run(|n| {
        made.push(n);
        Err(TaskError::failed(format!("attempt {n}")))
    });
    assert_eq!(made, [1, 2, 3]);
    assert_eq!(result.unwrap_err().to_string(), "attempt 3");

    let mut made = Vec::new();
    let result = retries.run(|n| {
        made.push(n);
        if n < 2 {
            Err(TaskError::failed("once"))
        } else {
            Ok(n)
        }
    });
    assert_eq!(result.unwrap(), 2);

    stop.set();
    let mut made = 0;
    let result: Result<(), _> = retries.run(|_| {
        made += 1;
        Err(TaskError::failed("no more"))
    });
    assert_eq!(made, 1);
    assert!(result.is_err());
}

#[test]
fn an_attempt_catches_a_panic() {
    let result = attempt(&Seven { panics: true }, &[], &mut ctx(), 1, None);
    assert!(matches!(result, Err(TaskError::Panicked(m)) if m.contains("told to panic")));
    let value: Arc<Value> = attempt(&Seven { panics: false }, &[], &mut ctx(), 1, None).unwrap();
    assert_eq!(value.downcast_ref::<u32>(), Some(&7));
}

#[test]
fn a_worker_status_becomes_its_task_error() {
    use crate::exec::worker::JobStatus;
    use std::time::Duration;
    let status = |f: fn(&mut JobStatus)| {
        let mut status = JobStatus::default();
        f(&mut status);
        status
    };
    let timeout = Some(Duration::from_secs(3));
    let timed_out = status(|s| s.timed_out = true).into_error(timeout);
    assert!(matches!(timed_out, TaskError::TimedOut(t) if t == Duration::from_secs(3)));
    let panicked = status(|s| {
        s.panicked = true;
        s.error = vec!["task panicked: boom".to_owned()];
    })
    .into_error(timeout);
    assert!(
        matches!(&panicked, TaskError::Panicked(m) if m == "boom"),
        "{panicked:?}"
    );
    let failed = status(|s| s.error = vec!["outer".to_owned(), "inner".to_owned()]);
    let failed = failed.into_error(timeout);
    assert!(matches!(failed, TaskError::Failed(_)));
    assert_eq!(crate::chain::chain(&failed), ["outer", "inner"]);
    let silent = status(|_| {}).into_error(None);
    assert_eq!(
        silent.to_string(),
        "the worker reported a failure without a message"
    );
}
