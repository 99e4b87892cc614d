//! Tasks are tested as plain functions: a test context stands in for a run's, and a
//! constant feeds an input through `value!(...)` (or `Builder::value`) with no task written
//! to return it; the constant is hashed and cached as a parameter is.

use crate::support;

use pipewright::prelude::*;
use support::{count, names, take_runs, with_status};

#[task]
fn describe(rows: &Vec<u32>, ctx: &Ctx) -> Result<String, String> {
    if ctx.cancelled() {
        return Err(format!("`{}` was cancelled", ctx.node()));
    }
    let dir = ctx.work_dir().map_err(|e| e.to_string())?;
    std::fs::write(dir.join("rows.txt"), format!("{rows:?}")).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}/{}/{} attempt {}: {} rows",
        ctx.pipeline(),
        ctx.task(),
        ctx.node(),
        ctx.attempt(),
        rows.len()
    ))
}

#[task(name = "testing_tasks.total")]
fn total(rows: &Vec<u32>, ctx: &Ctx) -> u32 {
    count(ctx);
    rows.iter().sum()
}

#[task]
fn label(prefix: &String, n: &u32, ctx: &Ctx) -> String {
    count(ctx);
    format!("{prefix}{n}")
}

#[test]
fn a_task_function_is_called_with_a_test_context() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let ctx = Ctx::for_test("summary").with_work_dir(&work);
    assert_eq!(
        describe(&vec![1, 2, 3], &ctx).unwrap(),
        "test/test/summary attempt 1: 3 rows"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("rows.txt")).unwrap(),
        "[1, 2, 3]"
    );

    let ctx = Ctx::for_test("summary").with_pipeline("daily");
    assert_eq!(ctx.pipeline(), "daily");
    assert_eq!(ctx.node(), "summary");
    assert!(!ctx.cancelled());
    let no_dir = ctx.work_dir().unwrap_err();
    assert_eq!(no_dir.kind(), std::io::ErrorKind::Unsupported);
    assert!(
        no_dir.to_string().contains("`Ctx::with_work_dir`"),
        "{no_dir}"
    );

    let cancelled = Ctx::for_test("summary").with_cancelled(true);
    assert_eq!(
        describe(&vec![1], &cancelled).unwrap_err(),
        "`summary` was cancelled"
    );
}

fn build(numbers: Vec<u32>, start: &str) -> impl std::ops::Deref<Target = Pipeline> {
    pipeline! {
        name = "values";
        let rows = value!(numbers);
        let prefix = value!(start.to_string());
        let sum = total(rows);
        let text = label(prefix, sum);
    }
}

#[test]
fn a_value_feeds_inputs_and_is_cached_as_a_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());

    let p = build(vec![1, 2, 3], "sum=");
    assert_eq!(p.task_of(p.node("rows").unwrap()).name, "pipewright.value");
    let run = runner.run(&p).unwrap();
    assert_eq!(run.get_as::<Vec<u32>>("rows").unwrap(), &vec![1, 2, 3]);
    assert_eq!(run.get_as::<String>("text").unwrap(), "sum=6");
    assert_eq!(run.count(NodeStatus::Ran), 4);
    take_runs("values");

    // The same values: everything is stored.
    let run = runner.run(&build(vec![1, 2, 3], "sum=")).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 4);
    assert!(take_runs("values").is_empty());

    // Another prefix: only its node and the label run again.
    let run = runner.run(&build(vec![1, 2, 3], "total ")).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["prefix", "text"])
    );
    assert_eq!(run.get_as::<String>("text").unwrap(), "total 6");
    assert_eq!(
        take_runs("values").keys().cloned().collect::<Vec<_>>(),
        names(&["text"])
    );

    // Other rows: the sum runs, and the label, whose input changed.
    let run = runner.run(&build(vec![4, 5], "total ")).unwrap();
    assert_eq!(
        with_status(&run, NodeStatus::Ran),
        names(&["rows", "sum", "text"])
    );
    assert_eq!(run.get_as::<String>("text").unwrap(), "total 9");
}

#[test]
fn the_builder_adds_values_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("builder-values");
    let rows = b.value("rows", vec![10_u32, 20]).unwrap();
    let sum = b.add("sum", total::node(rows)).unwrap();
    assert!(matches!(
        b.value("rows", vec![1_u32]),
        Err(pipewright::Error::DuplicateNode { .. })
    ));
    let p = b.build();
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(*run.get(sum).unwrap(), 30);
}

#[test]
fn values_of_different_types_have_different_keys() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(dir.path());
    let mut b = Pipeline::builder("typed-values");
    let small = b.value("small", 7_u32).unwrap();
    let large = b.value("large", 7_u64).unwrap();
    let p = b.build();
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 2);
    assert_eq!(*run.get(small).unwrap(), 7);
    assert_eq!(*run.get(large).unwrap(), 7);
    let small_key = run.node("small").unwrap().key().unwrap().to_owned();
    let large_key = run.node("large").unwrap().key().unwrap().to_owned();
    assert_ne!(small_key, large_key);
}
