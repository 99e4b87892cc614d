//! A `cache = false` task always runs and stores nothing; its consumers key on its output,
//! so they stay cached when it produced the same value.

use crate::support;

use std::sync::atomic::{AtomicU32, Ordering};

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

static READING: AtomicU32 = AtomicU32::new(20);

/// Reads the outside world: must run every time.
#[task(cache = false)]
fn sensor(ctx: &Ctx) -> u32 {
    count(ctx);
    READING.load(Ordering::SeqCst)
}

#[task]
fn celsius(raw: &u32, ctx: &Ctx) -> String {
    count(ctx);
    format!("{raw} °C")
}

#[test]
fn uncached_tasks_always_run_and_their_consumers_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "uncached";
        let raw = sensor();
        let text = celsius(raw);
    };
    let runner = Runner::new(dir.path());

    assert!(runner.run(&p).unwrap().succeeded());
    assert_eq!(take_runs("uncached").len(), 2);
    assert!(
        !dir.path()
            .join("sensor")
            .read_dir()
            .is_ok_and(|mut d| d.any(|e| e.unwrap().file_name().len() == 64))
    );

    // Same reading: the sensor runs, the consumer is cached.
    let run = runner.run(&p).unwrap();
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["raw"]));
    assert_eq!(
        run.node("raw").unwrap().reason().unwrap().to_string(),
        "`cache = false`"
    );
    assert_eq!(with_status(&run, NodeStatus::Cached), names(&["text"]));
    assert_eq!(
        take_runs("uncached").keys().cloned().collect::<Vec<_>>(),
        names(&["raw"])
    );

    // A new reading: both run.
    READING.store(21, Ordering::SeqCst);
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 2);
    assert_eq!(run.get(p.text).unwrap(), "21 °C");

    let plan = runner.plan(&p).unwrap();
    assert!(matches!(
        plan.node("raw").unwrap().decision,
        pipewright::Decision::Run {
            reason: pipewright::RunReason::NotCached,
            ..
        }
    ));
    assert!(matches!(
        plan.node("text").unwrap().decision,
        pipewright::Decision::Pending { .. }
    ));
}
