//! A map over input files: each branch is known by its file's content, read when the
//! branches are made, so an edited file runs its branch again even when the list that names
//! it is cached.

use std::path::PathBuf;
use std::sync::Mutex;

use pipewright::InputFile;
use pipewright::prelude::*;

/// The files each run read, in any order.
static READ: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[task(name = "mapped_files.list")]
fn list(paths: Vec<PathBuf>) -> Vec<InputFile> {
    paths.into_iter().map(InputFile::new).collect()
}

#[task(name = "mapped_files.size")]
fn size(file: &InputFile) -> std::io::Result<usize> {
    let text = std::fs::read_to_string(file.path())?;
    let name = file.path().file_name().unwrap().to_string_lossy();
    READ.lock().unwrap().push(name.into_owned());
    Ok(text.len())
}

#[task(name = "mapped_files.sizes")]
fn sizes(each: &[&usize]) -> Vec<usize> {
    each.iter().map(|n| **n).collect()
}

fn read() -> Vec<String> {
    let mut read = std::mem::take(&mut *READ.lock().unwrap());
    read.sort();
    read
}

#[test]
fn an_edited_file_runs_its_branch_again_under_a_cached_list() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = ["a.txt", "b.txt", "c.txt"]
        .iter()
        .map(|n| files.path().join(n))
        .collect();
    for (path, text) in paths.iter().zip(["1", "22", "333"]) {
        std::fs::write(path, text).unwrap();
    }
    let p = pipeline! {
        name = "mapped-files";
        let named = list(paths.clone());
        let each = for file in named { size(file) };
        let all = sizes(each);
    };

    let run = Runner::new(data.path()).run(&p).unwrap();
    assert_eq!(run.get(p.all).unwrap(), &[1, 2, 3]);
    assert_eq!(read(), ["a.txt", "b.txt", "c.txt"]);

    let run = Runner::new(data.path()).run(&p).unwrap();
    assert_eq!(run.status("named"), Some(NodeStatus::Cached));
    assert_eq!(run.get(p.all).unwrap(), &[1, 2, 3]);
    assert!(read().is_empty());

    // The list is the same; one file's content is not.
    std::fs::write(&paths[1], "4444").unwrap();
    let run = Runner::new(data.path()).run(&p).unwrap();
    assert_eq!(run.status("named"), Some(NodeStatus::Cached));
    assert_eq!(run.status("each[1]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("each[0]"), Some(NodeStatus::Cached));
    assert_eq!(run.status("each[2]"), Some(NodeStatus::Cached));
    assert_eq!(run.get(p.all).unwrap(), &[1, 4, 3]);
    assert_eq!(read(), ["b.txt"]);
}
