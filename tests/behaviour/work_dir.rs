//! `Ctx::work_dir` gives a task a private directory that is published with its entry and
//! kept as long as the output is.

use std::path::PathBuf;

use pipewright::prelude::*;

/// Writes a file beside its output and returns the file's path relative to the entry.
#[task]
fn render(text: String, ctx: &Ctx) -> std::io::Result<String> {
    let dir = ctx.work_dir()?;
    std::fs::write(dir.join("page.txt"), &text)?;
    Ok("work/page.txt".to_owned())
}

#[task]
fn fails_after_writing(ctx: &Ctx) -> Result<u8, String> {
    std::fs::write(
        ctx.work_dir().map_err(|e| e.to_string())?.join("partial"),
        b"x",
    )
    .map_err(|e| e.to_string())?;
    Err("gave up".into())
}

#[test]
fn the_work_directory_lives_in_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "work";
        let page = render("hello".to_string());
        let broken = fails_after_writing();
    };
    let run = Runner::new(dir.path()).run(&p).unwrap();
    let node = run.node("page").unwrap();
    let entry: PathBuf = dir.path().join("render").join(node.key().unwrap());
    let rel = run.get(p.page).unwrap();
    assert_eq!(std::fs::read_to_string(entry.join(rel)).unwrap(), "hello");

    // A failed task leaves nothing behind, in its entry or elsewhere.
    assert_eq!(run.status("broken"), Some(NodeStatus::Failed));
    let task_dir = dir.path().join("fails_after_writing");
    let left: Vec<_> = std::fs::read_dir(&task_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // In memory, there is no work directory: an error, not a panic.
    let run = Runner::in_memory().run(&p).unwrap();
    let err = run.get(p.page).unwrap_err();
    assert_eq!(err.to_string(), "node `page` failed");
    assert!(
        run.node("page")
            .unwrap()
            .error()
            .unwrap()
            .to_string()
            .contains("keeps nothing on disk"),
        "{:?}",
        run.node("page").unwrap().error()
    );
}
