//! Names that would be unsafe as paths: node names are refused by the builder, and
//! pipeline names of any kind run with their records inside the log directory, under a
//! safe name, and nothing is written outside the data directory.

use std::fs;
use std::path::Path;

use pipewright::Error;
use pipewright::prelude::*;

#[task]
fn seed(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[task(name = "unsafe_names.sum")]
fn sum(xs: &Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[test]
fn node_names_unsafe_as_paths_are_rejected() {
    let long = "n".repeat(201);
    let long_multibyte = "é".repeat(101);
    let names: Vec<&str> = vec![
        "",
        ".",
        "..",
        "a/b",
        "/abs",
        "../up",
        "a\\b",
        "..\\up",
        "a\0b",
        "\0",
        "tab\there",
        "new\nline",
        "cr\r",
        "bell\u{7}",
        "del\u{7f}",
        "c1\u{85}",
        &long,
        &long_multibyte,
    ];
    let mut b = Pipeline::builder("unsafe-nodes");
    for name in names {
        let err = b.add(name, seed::node(3)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidNodeName { name: n, .. } if n == name),
            "{name:?}: {err}"
        );
    }
    assert!(b.is_empty());

    // At the limits, and merely unusual: accepted.
    for name in [
        "n".repeat(200),
        "é".repeat(100),
        "...".to_owned(),
        ".hidden".to_owned(),
        "a..b".to_owned(),
        "spaces and ünïcödé".to_owned(),
    ] {
        b.add(name.clone(), seed::node(3))
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
}

/// Every file and directory under `root`, relative to it.
fn tree(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn pipeline_names_of_any_kind_are_recorded_inside_the_log_directory() {
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let names = [
        "a/b".to_owned(),
        "../../escape".to_owned(),
        "/etc/passwd".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        "".to_owned(),
        "nul\0byte".to_owned(),
        "back\\slash".to_owned(),
        "new\nline".to_owned(),
        "ünïcödé パイプライン 🚀".to_owned(),
        "p".repeat(300),
        "../".repeat(100),
        "C:\\windows".to_owned(),
    ];
    let runs = data.join("runs");
    for name in &names {
        let mut b = Pipeline::builder(name.clone());
        let xs = b.add("xs", seed::node(4)).unwrap();
        let total = b.add("total", sum::node(xs)).unwrap();
        let p = b.build();
        let run = Runner::new(&data)
            .jobs(1)
            .run(&p)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(run.succeeded(), "{name:?}");
        assert_eq!(run.pipeline(), name);
        assert_eq!(*run.get(total).unwrap(), 6, "{name:?}");

        let dir = run.run_dir().unwrap();
        assert_eq!(
            dir.parent(),
            Some(runs.as_path()),
            "{name:?}: {}",
            dir.display()
        );
        let file_name = dir.file_name().unwrap().to_str().unwrap();
        assert!(!file_name.starts_with('.'), "{name:?}: {file_name:?}");
        assert!(
            file_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "{name:?}: {file_name:?}"
        );
        assert!(dir.join("run.json").is_file(), "{name:?}");

        // The record reads back under the same name.
        let reopened = RunReport::open(dir).unwrap();
        assert_eq!(reopened.pipeline(), name);
        assert_eq!(*reopened.get_as::<u64>("total").unwrap(), 6, "{name:?}");
    }
    assert_eq!(fs::read_dir(&runs).unwrap().count(), names.len());

    // Nothing was written beside the data directory.
    let top: Vec<String> = fs::read_dir(sandbox.path())
        .unwrap()
        .map(|item| item.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["data"], "{:#?}", tree(sandbox.path()));
}

/// With the records elsewhere, they stay in the log directory given.
#[test]
fn pipeline_names_stay_inside_a_log_directory_of_their_own() {
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let logs = data.join("logs");
    for name in ["../../../../outside", "a/../../b", &"/".repeat(300)] {
        let mut b = Pipeline::builder(name);
        b.add("xs", seed::node(2)).unwrap();
        let p = b.build();
        let run = Runner::new(&data).log_dir(&logs).run(&p).unwrap();
        assert_eq!(
            run.run_dir().unwrap().parent(),
            Some(logs.as_path()),
            "{name:?}"
        );
    }
    assert_eq!(fs::read_dir(&logs).unwrap().count(), 3);
    assert!(!data.join("runs").exists());
    let top: Vec<String> = fs::read_dir(sandbox.path())
        .unwrap()
        .map(|item| item.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["data"], "{:#?}", tree(sandbox.path()));
}
