//! The process executor refuses to start where it cannot work, with an error that says
//! what to do, before it runs or records anything.

use pipewright::Error;
use pipewright::prelude::*;

#[task(name = "process_executor_requirements.one")]
fn one() -> u32 {
    1
}

#[test]
fn an_unmarked_main_is_refused() {
    // This test binary's `main` comes from the test harness, without `#[pipewright::main]`:
    // a child started from it would run the tests again instead of a task.
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "unmarked";
        let x = one();
    };
    let err = Runner::new(dir.path())
        .executor(Executor::Process)
        .run(&p)
        .unwrap_err();
    assert!(matches!(err, Error::Executor(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("mark its `main` with `#[pipewright::main]`"),
        "{err}"
    );
    assert!(!dir.path().join("runs").exists(), "a run was recorded");
}

#[test]
fn a_runner_without_a_store_is_refused() {
    let p = pipeline! {
        name = "no-store";
        let x = one();
    };
    let err = Runner::in_memory()
        .executor(Executor::Process)
        .run(&p)
        .unwrap_err();
    assert!(err.to_string().contains("not `Runner::in_memory`"), "{err}");
}
