//! Dynamic branching: a task mapped over a list made at run time, one branch per element,
//! each cached by its element's content.

use crate::support;

use std::cell::Cell;
use std::path::Path;
use std::sync::Mutex;

use pipewright::prelude::*;
use pipewright::{Decision, Error, RunReason, TaskError};
use support::{store, with_status};

/// What the tasks below computed, as `tag:task:element`, since the last `take`.
static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note(tag: &str, task: &str, element: impl std::fmt::Display) {
    RAN.lock().unwrap().push(format!("{tag}:{task}:{element}"));
}

/// What the tasks tagged `tag` computed since the last call, sorted.
fn take(tag: &str) -> Vec<String> {
    let mut ran = RAN.lock().unwrap();
    let prefix = format!("{tag}:");
    let mut mine: Vec<String> = ran
        .iter()
        .filter(|r| r.starts_with(&prefix))
        .map(|r| r[prefix.len()..].to_owned())
        .collect();
    ran.retain(|r| !r.starts_with(&prefix));
    mine.sort();
    mine
}

#[task(name = "dynamic_branching.list")]
fn list(words: Vec<String>) -> Vec<String> {
    words
}

#[task(name = "dynamic_branching.measure")]
fn measure(word: &String, tag: String) -> usize {
    note(&tag, "measure", word);
    if word == "bad" {
        panic!("cannot measure `bad`");
    }
    word.len()
}

#[task(name = "dynamic_branching.double")]
fn double(n: &usize, tag: String) -> usize {
    note(&tag, "double", n);
    n * 2
}

#[task(name = "dynamic_branching.sum")]
fn sum(parts: &[&usize], tag: String) -> usize {
    note(&tag, "sum", parts.len());
    parts.iter().copied().sum()
}

#[task(name = "dynamic_branching.label")]
fn label(word: &String, tag: String, ctx: &Ctx) -> String {
    note(&tag, "label", word);
    format!("{}:{word}", ctx.node())
}

/// A pipeline that measures each word of `words` and sums the lengths.
fn measured(tag: &str, words: &[&str]) -> (Pipeline, Mapped<usize>, Handle<usize>) {
    let mut b = Pipeline::builder("measured");
    let words = words.iter().map(|w| (*w).to_owned()).collect();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b
        .map("lengths", list, |w| measure::node(w, tag.to_owned()))
        .unwrap();
    let total = b.add("total", sum::node(lengths, tag.to_owned())).unwrap();
    (b.build(), lengths, total)
}

fn run_in(dir: &Path, p: &Pipeline) -> RunReport {
    Runner::new(dir).run(p).unwrap()
}

#[test]
fn branches_run_in_memory_and_are_gathered_in_order() {
    let (p, lengths, total) = measured("memory", &["a", "bbb", "cc"]);
    // Not kept: the branches' outputs are dropped once the gather is done with them.
    let run = Runner::in_memory().run(&p).unwrap();
    assert!(matches!(
        run.branches(lengths),
        Err(Error::NotKept { node }) if node == "lengths[0]"
    ));
    take("memory");
    let run = Runner::in_memory().keep_branches(lengths).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(*run.get(total).unwrap(), 6);
    assert_eq!(run.branches(lengths).unwrap(), [&1, &3, &2]);
    let names: Vec<&str> = run.nodes().map(|n| n.name()).collect();
    assert_eq!(
        names,
        [
            "list",
            "lengths",
            "total",
            "lengths[0]",
            "lengths[1]",
            "lengths[2]"
        ]
    );
    assert_eq!(run.status("lengths[1]"), Some(NodeStatus::Ran));
    assert_eq!(
        run.node("lengths[1]").unwrap().task(),
        "dynamic_branching.measure"
    );
    assert_eq!(
        take("memory"),
        ["measure:a", "measure:bbb", "measure:cc", "sum:3"]
    );
}

#[test]
fn a_branch_is_cached_by_its_element_not_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "identity";
    let (p, _, total) = measured(tag, &["a", "bb", "ccc"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(total).unwrap(), 6);
    assert_eq!(
        take(tag),
        ["measure:a", "measure:bb", "measure:ccc", "sum:3"]
    );

    // One element added: one branch runs, and the gather below.
    let (p, _, total) = measured(tag, &["a", "bb", "ccc", "dddd"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(total).unwrap(), 10);
    assert_eq!(take(tag), ["measure:dddd", "sum:4"]);
    assert_eq!(run.status("lengths[3]"), Some(NodeStatus::Ran));
    for cached in ["lengths[0]", "lengths[1]", "lengths[2]"] {
        assert_eq!(run.status(cached), Some(NodeStatus::Cached), "{cached}");
    }

    // Reordered: no branch runs; the gather does, as the order of its inputs changed.
    let (p, lengths, total) = measured(tag, &["dddd", "ccc", "a", "bb"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(total).unwrap(), 10);
    assert_eq!(take(tag), ["sum:4"]);
    assert_eq!(run.branches(lengths).unwrap(), [&4, &3, &1, &2]);

    // Removed: no branch runs; the gather's inputs are those of the first run again.
    let (p, lengths, total) = measured(tag, &["a", "bb", "ccc"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(total).unwrap(), 6);
    assert_eq!(take(tag), Vec::<String>::new());
    assert_eq!(run.status("total"), Some(NodeStatus::Cached));
    assert_eq!(run.status("lengths"), Some(NodeStatus::Cached));
    assert_eq!(run.branches(lengths).unwrap(), [&1, &2, &3]);
}

#[test]
fn a_map_over_a_map_pairs_branch_with_branch() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "pairs";
    let build = |words: &[&str]| {
        let mut b = Pipeline::builder("pairs");
        let words = words.iter().map(|w| (*w).to_owned()).collect();
        let list = b.add("list", list::node(words)).unwrap();
        let lengths = b
            .map("lengths", list, |w| measure::node(w, tag.to_owned()))
            .unwrap();
        let doubled = b
            .map("doubled", lengths, |n| double::node(n, tag.to_owned()))
            .unwrap();
        let total = b.add("total", sum::node(doubled, tag.to_owned())).unwrap();
        (b.build(), doubled, total)
    };
    let (p, doubled, total) = build(&["a", "bbb"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(run.branches(doubled).unwrap(), [&2, &6]);
    assert_eq!(*run.get(total).unwrap(), 8);
    assert_eq!(
        take(tag),
        ["double:1", "double:3", "measure:a", "measure:bbb", "sum:2"]
    );

    let (p, doubled, _) = build(&["a", "bbb", "cc"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(run.branches(doubled).unwrap(), [&2, &6, &4]);
    assert_eq!(take(tag), ["double:2", "measure:cc", "sum:3"]);
    assert_eq!(run.status("doubled[2]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("doubled[0]"), Some(NodeStatus::Cached));
}

#[test]
fn a_failed_branch_fails_what_depends_on_it_and_the_others_run() {
    let tag = "failing";
    let mut b = Pipeline::builder("failing");
    let words = ["a", "bad", "ccc"].map(str::to_owned).to_vec();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b
        .map("lengths", list, |w| measure::node(w, tag.to_owned()))
        .unwrap();
    let doubled = b
        .map("doubled", lengths, |n| double::node(n, tag.to_owned()))
        .unwrap();
    let total = b.add("total", sum::node(lengths, tag.to_owned())).unwrap();
    let p = b.build();
    let run = Runner::in_memory().run(&p).unwrap();
    assert!(!run.succeeded());
    assert_eq!(run.status("lengths[1]"), Some(NodeStatus::Failed));
    assert_eq!(run.status("lengths[0]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("lengths[2]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("lengths"), Some(NodeStatus::Failed));
    // The paired branch waits on the failed one only.
    assert_eq!(run.status("doubled[0]"), Some(NodeStatus::Ran));
    assert_eq!(run.status("doubled[1]"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(run.status("doubled[2]"), Some(NodeStatus::Ran));
    assert_eq!(
        run.node("doubled[1]").unwrap().failed_upstream(),
        Some("lengths[1]")
    );
    assert_eq!(run.status("total"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(
        run.node("total").unwrap().failed_upstream(),
        Some("lengths[1]")
    );
    let err = run.get(total).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `total` did not run because its upstream `lengths[1]` failed"
    );
    assert!(run.branches(doubled).is_err());
    let text = run.to_string();
    assert!(text.contains("`lengths[1]` failed: "), "{text}");
    assert!(
        text.contains("`lengths` failed: 1 of 3 branches failed, the first `lengths[1]`"),
        "{text}"
    );
    assert_eq!(
        take(tag),
        [
            "double:1",
            "double:3",
            "measure:a",
            "measure:bad",
            "measure:ccc"
        ]
    );

    // With the failed branch as the only target, the count is of the branches the run
    // needed.
    let dir = tempfile::tempdir().unwrap();
    let run = Runner::new(dir.path())
        .target("lengths[1]")
        .run(&p)
        .unwrap();
    assert_eq!(
        run.node("lengths").unwrap().error().unwrap().to_string(),
        "1 of 1 branch failed, the first `lengths[1]`"
    );
    take(tag);
}

#[test]
fn damage_in_one_branch_recomputes_that_branch_only() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "damage";
    let (p, _, _) = measured(tag, &["a", "bb", "ccc"]);
    let run = run_in(dir.path(), &p);
    take(tag);
    let key = run.node("lengths[1]").unwrap().key().unwrap().to_owned();
    let entry = store::entry(dir.path(), &key).unwrap();
    store::set_output(dir.path(), &entry, b"garbage");

    // The gather runs again (its tag changed), reads every branch, and finds the damage.
    let mut b = Pipeline::builder("measured");
    let words = ["a", "bb", "ccc"].map(str::to_owned).to_vec();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b
        .map("lengths", list, |w| measure::node(w, tag.to_owned()))
        .unwrap();
    let total = b
        .add("total", sum::node(lengths, "again".to_owned()))
        .unwrap();
    let p = b.build();
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(total).unwrap(), 6);
    assert_eq!(take(tag), ["measure:bb"]);
    assert_eq!(take("again"), ["sum:3"]);
    assert_eq!(run.status("lengths[1]"), Some(NodeStatus::Ran));
    assert!(matches!(
        run.node("lengths[1]").unwrap().reason(),
        Some(RunReason::Damaged(_))
    ));
    assert_eq!(run.status("lengths[0]"), Some(NodeStatus::Cached));
    assert_eq!(run.status("lengths[2]"), Some(NodeStatus::Cached));
}

#[test]
fn an_empty_list_makes_no_branch_and_gathers_an_empty_slice() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lengths, total) = measured("empty", &[]);
    let run = run_in(dir.path(), &p);
    assert!(run.succeeded(), "{run}");
    assert_eq!(*run.get(total).unwrap(), 0);
    assert!(run.branches(lengths).unwrap().is_empty());
    assert_eq!(run.nodes().len(), 3);
    assert_eq!(take("empty"), ["sum:0"]);
}

#[test]
fn equal_elements_share_one_branch_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "equal";
    let (p, lengths, _) = measured(tag, &["aa", "b", "aa", "aa"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(run.branches(lengths).unwrap(), [&2, &1, &2, &2]);
    assert_eq!(take(tag), ["measure:aa", "measure:b", "sum:4"]);
    let key = |name| run.node(name).unwrap().key().unwrap().to_owned();
    assert_eq!(key("lengths[0]"), key("lengths[2]"));
    assert_ne!(key("lengths[0]"), key("lengths[1]"));
    assert_eq!(with_status(&run, NodeStatus::Cached).len(), 2);
}

#[test]
fn a_task_taking_ctx_is_cached_across_reordering() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "ctx";
    let build = |words: &[&str]| {
        let mut b = Pipeline::builder("ctx");
        let words = words.iter().map(|w| (*w).to_owned()).collect();
        let list = b.add("list", list::node(words)).unwrap();
        let labels = b
            .map("labels", list, |w| label::node(w, tag.to_owned()))
            .unwrap();
        (b.build(), labels)
    };
    let (p, labels) = build(&["x", "y"]);
    let run = run_in(dir.path(), &p);
    // A branch's task sees the mapped node's name, as its key holds that name only.
    assert_eq!(run.branches(labels).unwrap(), [&"labels:x", &"labels:y"]);
    assert_eq!(take(tag), ["label:x", "label:y"]);
    let (p, labels) = build(&["y", "x"]);
    let run = run_in(dir.path(), &p);
    assert_eq!(run.branches(labels).unwrap(), [&"labels:y", &"labels:x"]);
    assert_eq!(take(tag), Vec::<String>::new());
}

#[task(name = "dynamic_branching.words")]
fn words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task(name = "dynamic_branching.count")]
fn count(word: &String, times: usize) -> usize {
    word.len() * times
}

#[task(name = "dynamic_branching.gathered")]
fn gathered(words: &[&String]) -> usize {
    words.len()
}

#[task(name = "dynamic_branching.total")]
fn total(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

#[test]
fn a_map_body_must_take_its_element() {
    let mut b = Pipeline::builder("unused");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let other = b.value("other", "x".to_owned()).unwrap();
    let err = b
        .map("counts", list, |_w: Handle<String>| count::node(other, 1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMap { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "map `counts`: its body does not take the element"
    );
    // Nothing was added.
    assert_eq!(b.len(), 2);
}

#[test]
fn a_map_body_cannot_gather_its_element() {
    let mut b = Pipeline::builder("gathering");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let err = b.map("counts", list, |w| gathered::node([w])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "map `counts`: its body gathers the element into a list: take it as a single input"
    );
}

#[test]
fn the_element_cannot_be_used_outside_its_map() {
    let mut b = Pipeline::builder("leaked");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let leaked = Cell::new(None);
    b.map("counts", list, |w| {
        leaked.set(Some(w));
        count::node(w, 1)
    })
    .unwrap();
    let err = b
        .add("outside", count::node(leaked.get().unwrap(), 1))
        .unwrap_err();
    assert!(matches!(err, Error::ElementOutsideMap { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("node `outside` takes the element of a map")
    );
}

#[test]
fn a_map_over_another_pipelines_node_is_refused() {
    let mut a = Pipeline::builder("a");
    let list = a.add("words", words::node("a b".to_owned())).unwrap();
    let mut b = Pipeline::builder("b");
    let err = b.map("counts", list, |w| count::node(w, 1)).unwrap_err();
    assert!(matches!(err, Error::ForeignHandle { .. }), "{err:?}");
}

#[test]
fn a_mapped_node_is_one_node_of_the_graph_wired_to_its_list() {
    let mut b = Pipeline::builder("shape");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let counts = b.map("counts", list, |w| count::node(w, 1)).unwrap();
    let again = b.map("again", counts, |c| total::node([c])); // gathering the element
    assert!(again.is_err());
    let sum = b.add("total", total::node(counts)).unwrap();
    let p = b.build();
    assert_eq!(p.len(), 3);
    assert_eq!(p.parents(counts.id()), [list.id()]);
    assert_eq!(p.parents(sum.id()), [counts.id()]);
}

#[test]
fn run_json_and_a_reopened_report_list_every_branch() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "record";
    let (p, _, _) = measured(tag, &["a", "bad", "ccc"]);
    let run = run_in(dir.path(), &p);
    let run_dir = run.run_dir().unwrap().to_owned();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    let lengths = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "lengths")
        .unwrap();
    assert_eq!(lengths["over"], "list");
    let branches = lengths["branches"].as_array().unwrap();
    let names: Vec<&str> = branches
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lengths[0]", "lengths[1]", "lengths[2]"]);
    let statuses: Vec<&str> = branches
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ran", "failed", "ran"]);
    // The element's short digest, the one its key holds: that of the word, as a parameter
    // of the same value would be hashed.
    let digest = pipewright::canonical_digest(&"a".to_owned()).unwrap();
    let short: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(branches[0]["element"], short[..12]);
    assert_eq!(
        branches[0]["key"].as_str(),
        run.node("lengths[0]").unwrap().key()
    );
    let total = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "total")
        .unwrap();
    assert_eq!(total["upstream_failed"], "lengths[1]");
    let failures: Vec<String> = std::fs::read_dir(run_dir.join("failures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        failures.iter().any(|f| f.starts_with("lengths_1_-")),
        "{failures:?}"
    );

    let reopened = RunReport::open(&run_dir).unwrap();
    assert_eq!(reopened.status("lengths[1]"), Some(NodeStatus::Failed));
    assert_eq!(reopened.status("lengths[2]"), Some(NodeStatus::Ran));
    assert_eq!(
        reopened.node("total").unwrap().failed_upstream(),
        Some("lengths[1]")
    );
    assert_eq!(reopened.get_as::<usize>("lengths[2]").unwrap(), &3);
    assert_eq!(reopened.nodes().len(), 6);
    take(tag);
}

#[test]
fn garbage_collection_keeps_the_entries_of_recorded_branches() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _, _) = measured("gc", &["a", "bb"]);
    let runner = Runner::new(dir.path());
    let run = runner.run(&p).unwrap();
    let keys: Vec<String> = (0..2)
        .map(|i| {
            run.node(&format!("lengths[{i}]"))
                .unwrap()
                .key()
                .unwrap()
                .to_owned()
        })
        .collect();
    runner.gc(1).unwrap();
    for key in &keys {
        assert!(store::entry(dir.path(), key).is_some(), "{key} was removed");
    }
    take("gc");
}

#[test]
fn a_plan_says_when_branches_are_made_and_how_many_there_were() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "plan";
    let (p, _, _) = measured(tag, &["a", "bb", "ccc"]);
    let runner = Runner::new(dir.path());
    let plan = runner.plan(&p).unwrap();
    assert_eq!(
        plan.node("lengths").unwrap().decision,
        Decision::Mapped {
            over: "list".to_owned(),
            last_branches: None
        }
    );
    assert!(matches!(
        &plan.node("total").unwrap().decision,
        Decision::Pending { upstream } if upstream == "lengths"
    ));
    let _ = runner.run(&p).unwrap();
    let plan = runner.plan(&p).unwrap();
    assert_eq!(
        plan.node("lengths").unwrap().decision,
        Decision::Mapped {
            over: "list".to_owned(),
            last_branches: Some(3)
        }
    );
    let text = plan.to_string();
    assert!(
        text.contains("branches made when `list` is ready (3 in the last run)"),
        "{text}"
    );

    let explained = runner.explain(&p, "lengths[1]").unwrap().to_string();
    assert!(
        explained.starts_with("`lengths[1]` is a branch"),
        "{explained}"
    );
    let digest = pipewright::canonical_digest(&"bb".to_owned()).unwrap();
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    assert!(
        explained.contains(&format!("took the element with digest {short} and ran")),
        "{explained}"
    );
    assert!(explained.contains("is in the store"), "{explained}");
    let explained = runner.explain(&p, "lengths[7]").unwrap().to_string();
    assert!(
        explained.contains("had 3 branches, not this one"),
        "{explained}"
    );
    assert!(matches!(
        runner.explain(&p, "list[0]"),
        Err(Error::UnknownNode { .. })
    ));
    take(tag);
}

static CANCEL: Mutex<Option<pipewright::Cancel>> = Mutex::new(None);

#[task(name = "dynamic_branching.stopping")]
fn stopping(word: &String, tag: String) -> usize {
    note(&tag, "stopping", word);
    if word == "stop" {
        CANCEL.lock().unwrap().as_ref().unwrap().cancel();
    }
    word.len()
}

#[test]
fn a_cancelled_run_settles_every_branch_once() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "cancel";
    let mut b = Pipeline::builder("cancelled");
    // With one worker, the first branches of the list run in its order, one after the
    // other, so the first one cancels the run before the others start.
    let words = ["stop", "a", "b", "c", "d"].map(str::to_owned).to_vec();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b
        .map("lengths", list, |w| stopping::node(w, tag.to_owned()))
        .unwrap();
    b.add("total", sum::node(lengths, tag.to_owned())).unwrap();
    let p = b.build();
    let runner = Runner::new(dir.path()).jobs(1);
    *CANCEL.lock().unwrap() = Some(runner.cancel_handle());
    let run = runner.run(&p).unwrap();
    assert!(run.cancelled());
    assert_eq!(run.nodes().len(), 8);
    assert_eq!(run.status("lengths[0]"), Some(NodeStatus::Ran));
    for i in 1..5 {
        let name = format!("lengths[{i}]");
        assert_eq!(run.status(&name), Some(NodeStatus::Cancelled), "{name}");
    }
    assert_eq!(run.status("lengths"), Some(NodeStatus::Cancelled));
    assert_eq!(run.status("total"), Some(NodeStatus::Cancelled));
    assert_eq!(take(tag), ["stopping:stop"]);
}

#[test]
fn fail_fast_cancels_the_branches_not_started() {
    let tag = "fast";
    // With one worker, the first branches of the list run in its order, one after the
    // other, so the failing one, first, runs before the others start.
    let (p, _, _) = measured(tag, &["bad", "a", "b", "c"]);
    let run = Runner::in_memory().jobs(1).fail_fast(true).run(&p).unwrap();
    assert_eq!(run.status("lengths[0]"), Some(NodeStatus::Failed));
    for i in 1..4 {
        let name = format!("lengths[{i}]");
        assert_eq!(run.status(&name), Some(NodeStatus::Cancelled), "{name}");
    }
    assert_eq!(run.status("lengths"), Some(NodeStatus::Failed));
    assert_eq!(run.status("total"), Some(NodeStatus::UpstreamFailed));
    assert_eq!(
        run.node("total").unwrap().failed_upstream(),
        Some("lengths[0]")
    );
    assert_eq!(take(tag), ["measure:bad"]);
}

#[test]
fn forcing_a_mapped_node_forces_its_branches() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "force";
    let (p, _, _) = measured(tag, &["a", "bb"]);
    let _ = run_in(dir.path(), &p);
    take(tag);
    let run = Runner::new(dir.path()).force("lengths").run(&p).unwrap();
    // The same outputs again: the gather below stays cached.
    assert_eq!(take(tag), ["measure:a", "measure:bb"]);
    assert_eq!(run.status("total"), Some(NodeStatus::Cached));
    assert_eq!(
        run.node("lengths[1]").unwrap().reason(),
        Some(&RunReason::Forced)
    );
    assert_eq!(run.status("list"), Some(NodeStatus::Cached));
}

#[test]
fn a_mapped_node_can_be_a_target() {
    let tag = "target";
    let (p, lengths, _) = measured(tag, &["a", "bb"]);
    let run = Runner::in_memory().target("lengths").run(&p).unwrap();
    assert_eq!(run.status("total"), Some(NodeStatus::NotNeeded));
    assert_eq!(run.branches(lengths).unwrap(), [&1, &2]);
    assert_eq!(take(tag), ["measure:a", "measure:bb"]);
}

#[task(name = "dynamic_branching.plus")]
fn plus(total: &usize, n: usize) -> usize {
    total + n
}

#[test]
fn a_damaged_gather_below_a_map_is_recomputed_from_the_stored_branches() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "below";
    let build = |n: usize| {
        let mut b = Pipeline::builder("below");
        let words = ["a", "bb", "ccc"].map(str::to_owned).to_vec();
        let list = b.add("list", list::node(words)).unwrap();
        let lengths = b
            .map("lengths", list, |w| measure::node(w, tag.to_owned()))
            .unwrap();
        let total = b.add("total", sum::node(lengths, tag.to_owned())).unwrap();
        let more = b.add("more", plus::node(total, n)).unwrap();
        (b.build(), more)
    };
    let (p, _) = build(1);
    let run = run_in(dir.path(), &p);
    take(tag);
    let key = run.node("total").unwrap().key().unwrap().to_owned();
    let entry = store::entry(dir.path(), &key).unwrap();
    store::set_output(dir.path(), &entry, b"garbage");

    // `more` runs and reads `total`, whose entry is damaged: it is computed again from the
    // branches' entries, which are whole, and no branch runs.
    let (p, more) = build(2);
    let run = run_in(dir.path(), &p);
    assert_eq!(*run.get(more).unwrap(), 8);
    assert_eq!(take(tag), ["sum:3"]);
    assert_eq!(run.status("total"), Some(NodeStatus::Ran));
    for i in 0..3 {
        let name = format!("lengths[{i}]");
        assert_eq!(run.status(&name), Some(NodeStatus::Cached), "{name}");
    }
}

/// Whether `double` ran on the length of "fast", and its signal.
static FAST_DOUBLED: (Mutex<bool>, std::sync::Condvar) =
    (Mutex::new(false), std::sync::Condvar::new());

#[task(name = "dynamic_branching.measure_after")]
fn measure_after(word: &String) -> usize {
    if word == "slow" {
        // Waits for the paired branch of "fast" below to have run; long enough never to
        // give up when the branches below start as they may, short enough not to hang.
        let (done, signal) = &FAST_DOUBLED;
        let done = signal
            .wait_timeout_while(
                done.lock().unwrap(),
                std::time::Duration::from_secs(60),
                |d| !*d,
            )
            .unwrap()
            .0;
        if !*done {
            panic!("the branch below `fast` did not start before `slow` was done");
        }
    }
    word.len()
}

#[task(name = "dynamic_branching.double_fast")]
fn double_fast(n: &usize) -> usize {
    if *n == 4 {
        let (done, signal) = &FAST_DOUBLED;
        *done.lock().unwrap() = true;
        signal.notify_all();
    }
    n * 2
}

#[test]
fn a_paired_branch_starts_once_its_own_branch_above_settled() {
    let mut b = Pipeline::builder("pipelined");
    let words = ["fast", "slow"].map(str::to_owned).to_vec();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b.map("lengths", list, measure_after::node).unwrap();
    let doubled = b.map("doubled", lengths, double_fast::node).unwrap();
    let p = b.build();
    let run = Runner::in_memory().jobs(2).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(run.branches(doubled).unwrap(), [&8, &8]);
}

/// The status of each node and branch of `run` named in `names`.
fn statuses(run: &RunReport, names: &[&str]) -> Vec<Option<NodeStatus>> {
    names.iter().map(|name| run.status(name)).collect()
}

#[test]
fn a_branch_can_be_a_target_and_be_forced() {
    use NodeStatus::{Cached, NotNeeded, Ran};
    let dir = tempfile::tempdir().unwrap();
    let tag = "branch-target";
    let (p, _, _) = measured(tag, &["a", "bb", "ccc"]);
    let names = ["list", "lengths[0]", "lengths[1]", "lengths[2]", "total"];

    // The list and that branch run, nothing else.
    let run = Runner::new(dir.path())
        .target("lengths[1]")
        .run(&p)
        .unwrap();
    assert_eq!(take(tag), ["measure:bb"]);
    assert!(run.succeeded());
    assert_eq!(
        statuses(&run, &names),
        [
            Some(Ran),
            Some(NotNeeded),
            Some(Ran),
            Some(NotNeeded),
            Some(NotNeeded)
        ]
    );
    assert_eq!(run.status("lengths"), Some(Ran));
    assert_eq!(run.get_as::<usize>("lengths[1]").unwrap(), &2);

    // Its entry is the one a whole run finds.
    let run = Runner::new(dir.path()).run(&p).unwrap();
    assert_eq!(take(tag), ["measure:a", "measure:ccc", "sum:3"]);
    assert_eq!(run.status("lengths[1]"), Some(Cached));

    // A forced branch runs again alone; its output is the same, so the sum stays cached.
    let run = Runner::new(dir.path()).force("lengths[2]").run(&p).unwrap();
    assert_eq!(take(tag), ["measure:ccc"]);
    assert_eq!(
        statuses(&run, &names),
        [
            Some(Cached),
            Some(Cached),
            Some(Cached),
            Some(Ran),
            Some(Cached)
        ]
    );
    assert_eq!(
        run.node("lengths[2]").unwrap().reason(),
        Some(&RunReason::Forced)
    );

    // Two branches, forced: those two run.
    let run = Runner::new(dir.path())
        .target("lengths[0]")
        .target("lengths[2]")
        .force("lengths[0]")
        .run(&p)
        .unwrap();
    assert_eq!(take(tag), ["measure:a"]);
    assert_eq!(
        statuses(&run, &names),
        [
            Some(Cached),
            Some(Ran),
            Some(NotNeeded),
            Some(Cached),
            Some(NotNeeded)
        ]
    );

    // A position beyond the list fails the mapped node, saying how long the list is.
    for runner in [
        Runner::new(dir.path()).target("lengths[3]"),
        Runner::new(dir.path()).force("lengths[7]"),
    ] {
        let run = runner.run(&p).unwrap();
        assert!(!run.succeeded());
        let error = run.node("lengths").unwrap().error().unwrap().to_string();
        assert!(
            error.starts_with("there is no branch `lengths[")
                && error.ends_with("]`: the list of `list` has 3 elements"),
            "{error}"
        );
        assert_eq!(take(tag), Vec::<String>::new());
    }

    // A branch of a node that is not mapped, or of no node, is an unknown node.
    for name in ["total[0]", "lenghts[0]", "lengths[x]"] {
        let err = Runner::new(dir.path()).target(name).run(&p).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownNode { node, .. } if node == name),
            "{err}"
        );
        let err = Runner::new(dir.path()).force(name).plan(&p).unwrap_err();
        assert!(matches!(err, Error::UnknownNode { .. }), "{err}");
    }
}

#[test]
fn a_branch_of_a_map_over_a_map_can_be_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let tag = "paired-target";
    let mut b = Pipeline::builder("paired-target");
    let words = ["a", "bb", "ccc"].map(str::to_owned).to_vec();
    let list = b.add("list", list::node(words)).unwrap();
    let lengths = b
        .map("lengths", list, |w| measure::node(w, tag.to_owned()))
        .unwrap();
    b.map("doubled", lengths, |n| double::node(n, tag.to_owned()))
        .unwrap();
    let p = b.build();
    // What is above the mapped node runs whole; of the mapped node, the branch only.
    let run = Runner::new(dir.path())
        .target("doubled[2]")
        .run(&p)
        .unwrap();
    assert_eq!(
        take(tag),
        ["double:3", "measure:a", "measure:bb", "measure:ccc"]
    );
    assert_eq!(run.get_as::<usize>("doubled[2]").unwrap(), &6);
    assert_eq!(run.status("doubled[0]"), Some(NodeStatus::NotNeeded));

    let run = Runner::new(dir.path())
        .target("doubled[3]")
        .run(&p)
        .unwrap();
    let error = run.node("doubled").unwrap().error().unwrap().to_string();
    assert_eq!(
        error,
        "there is no branch `doubled[3]`: `lengths` has 3 branches"
    );
}

#[task(name = "dynamic_branching.numbers")]
fn numbers(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[task(name = "dynamic_branching.halve")]
fn halve(n: &u64, tag: String) -> u64 {
    note(&tag, "halve", n);
    n / 2
}

#[test]
fn a_map_that_would_make_more_branches_than_a_run_makes_fails_before_any_runs() {
    let tag = "too-many";
    let mut b = Pipeline::builder("too-many");
    let list = b.add("numbers", numbers::node((1 << 20) + 1)).unwrap();
    let halves = b
        .map("halves", list, |n| halve::node(n, tag.to_owned()))
        .unwrap();
    let p = b.build();
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(run.status("numbers"), Some(NodeStatus::Ran));
    assert_eq!(run.status("halves"), Some(NodeStatus::Failed));
    let error = run.node("halves").unwrap().error().unwrap();
    assert!(
        matches!(
            error,
            TaskError::TooManyBranches {
                branches: 1_048_577,
                made: 0,
                limit: 1_048_576,
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the map would make 1048577 branches, more than the 1048576 a run may make"
    );
    assert!(run.branches(halves).is_err());
    assert_eq!(take(tag), Vec::<String>::new());
}
