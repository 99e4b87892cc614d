//! The first run runs every node; a second run on the same data directory runs none and
//! returns equal values; a new runner (a new process, in effect) finds the same entries.

use crate::support;

use pipewright::codec::Codec;
use pipewright::prelude::*;
use support::{count, names, store, take_runs, with_status};

#[task]
fn words(text: String, ctx: &Ctx) -> Vec<String> {
    count(ctx);
    text.split_whitespace().map(str::to_owned).collect()
}

#[task]
fn lengths(words: &Vec<String>, ctx: &Ctx) -> Vec<usize> {
    count(ctx);
    words.iter().map(String::len).collect()
}

#[task]
fn longest(lengths: &Vec<usize>, words: &Vec<String>, ctx: &Ctx) -> String {
    count(ctx);
    let (i, _) = lengths.iter().enumerate().max_by_key(|(_, l)| **l).unwrap();
    words[i].clone()
}

#[test]
fn a_second_run_runs_nothing_and_returns_equal_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cache-hit";
        let w = words("the quickest brown fox jumps".to_string());
        let l = lengths(w);
        let best = longest(l, w);
    };

    let first = Runner::new(dir.path()).keep(p.l).run(&p).unwrap();
    assert_eq!(
        with_status(&first, NodeStatus::Ran),
        names(&["w", "l", "best"])
    );
    assert_eq!(take_runs("cache-hit").values().sum::<usize>(), 3);
    let best = first.get(p.best).unwrap().clone();
    let lens = first.get(p.l).unwrap().clone();
    assert_eq!(best, "quickest");
    for node in first.nodes() {
        assert_eq!(node.key().unwrap().len(), 64);
        assert_eq!(node.output_digest().unwrap().len(), 64);
    }

    let second = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(
        with_status(&second, NodeStatus::Cached),
        names(&["w", "l", "best"])
    );
    assert!(take_runs("cache-hit").is_empty(), "a cached node ran");
    assert_eq!(second.get(p.best).unwrap(), &best);
    // Not kept in memory, but stored: read on demand.
    assert_eq!(second.get(p.l).unwrap(), &lens);
    assert_eq!(
        second.to_string().split(" in ").next(),
        Some("3 nodes: 0 ran, 3 cached")
    );
    for (a, b) in first.nodes().zip(second.nodes()) {
        assert_eq!(a.key(), b.key());
        assert_eq!(a.output_digest(), b.output_digest());
    }
}

#[test]
fn entries_are_recorded_in_the_index_by_task_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "layout";
        let w = words("a b".to_string());
    };
    let run = Runner::new(dir.path()).run(&p).unwrap();
    let key = run.node("w").unwrap().key().unwrap().to_owned();
    let entry = store::entry(dir.path(), &key).unwrap();
    assert_eq!((entry.task.as_str(), entry.node.as_str()), ("words", "w"));
    // A small output is held in the index: no file, no directory.
    assert!(entry.inline && !entry.work);
    assert!(!dir.path().join("words").exists());
    assert_eq!(
        store::output(dir.path(), &entry),
        pipewright::codec::Bincode::encode(&vec!["a".to_owned(), "b".to_owned()]).unwrap()
    );
    let meta = store::meta_of(dir.path(), "w");
    assert_eq!(meta["task"], "words");
    assert_eq!(meta["node"], "w");
    assert_eq!(meta["key"], key.as_str());
    assert_eq!(meta["params"], serde_json::json!({ "text": "a b" }));
    assert_eq!(meta["param_digests"][0]["name"], "text");
    assert_eq!(meta["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(
        meta["output_digest"],
        run.node("w").unwrap().output_digest().unwrap()
    );
    assert_eq!(meta["output_digest"], entry.digest.as_str());
    assert_eq!(meta["output_size"].as_u64().unwrap(), entry.size);
    assert_eq!(meta["pipewright"], env!("CARGO_PKG_VERSION"));
    assert!(meta["created"].as_str().unwrap().ends_with('Z'));
}

#[task]
fn bulk(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_large_output_is_one_file_renamed_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "large";
        let small = bulk(1000);
        let large = bulk(200_000);
    };
    let run = Runner::new(dir.path()).run(&p).unwrap();
    let small = store::entry(dir.path(), run.node("small").unwrap().key().unwrap()).unwrap();
    let large = store::entry(dir.path(), run.node("large").unwrap().key().unwrap()).unwrap();
    assert!(small.inline);
    assert!(!large.inline);
    let file = store::output_file(dir.path(), &large);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        pipewright::codec::Bincode::encode(&bulk(200_000)).unwrap()
    );
    // The task's directory holds that file and nothing else: no temporary is left.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("bulk"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("{}.bin", large.key)]);
    let again = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 2);
    assert_eq!(*again.get(p.large).unwrap(), bulk(200_000));
}
