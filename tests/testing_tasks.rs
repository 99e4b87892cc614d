//! Tasks are tested as plain functions: a test context stands in for a run's.

use pipewright::prelude::*;

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
