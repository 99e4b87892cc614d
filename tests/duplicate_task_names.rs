//! Two tasks of one name in two modules, each with a helper of its own and another output
//! type. A worker finds tasks by name and could not tell them apart, so a pipeline with
//! either is refused: by `Builder::add` when the node is added, and by the runner for
//! `pipeline!`, which cannot return an error. This binary registers the pair, so every
//! pipeline in it that uses one of them is refused.

use pipewright::Error;
use pipewright::prelude::*;

mod a {
    use pipewright::prelude::*;

    fn helper() -> u64 {
        u64::MAX
    }

    #[task]
    pub fn load() -> u64 {
        helper()
    }
}

mod b {
    use pipewright::prelude::*;

    fn helper() -> (u32, u32) {
        (1, 2)
    }

    #[task]
    pub fn load() -> (u32, u32) {
        helper()
    }
}

/// A task of this name of its own: it is not refused.
#[task(name = "load-c")]
fn load() -> u8 {
    3
}

const REFUSED: &str = "two tasks are registered as `load`: in `duplicate_task_names::a` and \
                       in `duplicate_task_names::b`; rename one with `#[task(name = \"...\")]`";

#[test]
fn a_run_of_the_two_tasks_is_refused_naming_both_modules() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "twins";
        let first = a::load();
        let second = b::load();
    };
    let runner = Runner::new(dir.path());
    let err = runner.run(&p).unwrap_err();
    assert!(matches!(&err, Error::DuplicateTask { name, .. } if name == "load"));
    assert_eq!(err.to_string(), REFUSED);
    assert_eq!(runner.plan(&p).unwrap_err().to_string(), REFUSED);
    assert_eq!(
        runner.explain(&p, "first").unwrap_err().to_string(),
        REFUSED
    );
    // Nothing ran, so nothing was stored.
    assert!(!dir.path().join("load").exists());

    let in_memory = Runner::in_memory().run(&p).unwrap_err();
    assert_eq!(in_memory.to_string(), REFUSED);
}

#[test]
fn the_builder_refuses_either_task_when_it_is_added() {
    let mut builder = Pipeline::builder("twins");
    let err = builder.add("first", a::load::node()).unwrap_err();
    assert_eq!(err.to_string(), REFUSED);
    let err = builder.add("second", b::load::node()).unwrap_err();
    assert_eq!(err.to_string(), REFUSED);
    assert!(builder.is_empty());

    // A task with a name of its own is added and runs.
    let c = builder.add("third", load::node()).unwrap();
    let p = builder.build();
    assert_eq!(*Runner::in_memory().run(&p).unwrap().get(c).unwrap(), 3);
}
