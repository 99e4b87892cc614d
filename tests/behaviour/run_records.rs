//! Every run with a store is recorded: `run.json` with every node and the run's
//! provenance, `run.log` with the run's events, and the failures with their error chains and
//! backtraces. A record can be reopened, and its pipeline rebuilt and checked.

use std::fs;
use std::path::Path;

use pipewright::Error;
use pipewright::prelude::*;
use pipewright::record::{RecordedStatus, RunRecord};

#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot load the table")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[task]
fn numbers(n: u32) -> Vec<u32> {
    tracing::info!(n, "making numbers");
    (1..=n).collect()
}

#[task]
fn total(parts: &[&Vec<u32>], offset: u32) -> u32 {
    parts.iter().flat_map(|p| p.iter()).sum::<u32>() + offset
}

#[task]
fn load_table(_n: &Vec<u32>) -> Result<u32, Outer> {
    Err(Outer(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "table.csv is missing",
    )))
}

#[task]
fn crash(_n: &Vec<u32>) -> u32 {
    panic!("the crash task always crashes")
}

#[task]
fn after(x: &u32) -> u32 {
    *x
}

fn only_run_dir(log: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = fs::read_dir(log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[test]
fn a_run_records_every_node_and_where_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "recorded run";
        let a = numbers(3);
        let b = numbers(4);
        let sum = total([a, b, a], 100);
        let table = load_table(a);
        let boom = crash(b);
        let later = after(table);
    };
    let run = Runner::new(dir.path().join("data")).run(&p).unwrap();
    let run_dir = run.run_dir().unwrap().to_owned();
    assert_eq!(
        run_dir.parent().unwrap(),
        dir.path().join("data").join("runs")
    );
    let name = run_dir.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("recorded_run_2"), "{name}");

    let record = RunRecord::read(&run_dir).unwrap();
    let json = serde_json::to_string(&record).unwrap();
    assert_eq!(
        serde_json::from_str::<RunRecord>(&json).unwrap(),
        record,
        "round trip"
    );
    assert_eq!(record.pipeline, "recorded run");
    assert_eq!(record.status, "failed");
    assert!(record.ended.is_some() && record.elapsed_secs.unwrap() > 0.0);
    assert_eq!(
        record.data_dir,
        std::path::absolute(dir.path().join("data")).unwrap()
    );
    let node = |n: &str| record.nodes.iter().find(|r| r.name == n).unwrap();

    let sum = node("sum");
    assert_eq!(sum.task, "total");
    assert_eq!(sum.params, serde_json::json!({ "offset": 100 }));
    assert_eq!(sum.parents, ["a", "b"]);
    assert_eq!(sum.inputs[0].nodes, ["a", "b", "a"]);
    assert!(sum.inputs[0].gathered);
    assert_eq!(sum.status, "ran");
    assert!(!sum.cached);
    assert_eq!(sum.key.as_deref(), run.node("sum").unwrap().key());
    assert_eq!(sum.reason.as_deref(), Some("no entry"));
    assert!(sum.duration_secs.is_some() && sum.started_secs.is_some() && sum.worker.is_some());

    assert_eq!(node("table").status, "failed");
    assert_eq!(
        node("table").error,
        ["cannot load the table", "table.csv is missing"]
    );
    assert_eq!(
        node("boom").error,
        ["task panicked: the crash task always crashes"]
    );
    assert_eq!(node("later").status, "upstream failed");
    assert_eq!(node("later").upstream_failed.as_deref(), Some("table"));
    assert!(node("later").duration_secs.is_none());

    let prov = &record.provenance;
    assert!(!prov.host.is_empty());
    assert!(prov.os.contains(std::env::consts::OS));
    assert!(prov.cpus >= 1);
    assert_eq!(
        prov.executable.as_deref(),
        std::env::current_exe().ok().as_deref()
    );
    assert_eq!(prov.executable_blake3.as_ref().unwrap().len(), 64);
    assert_eq!(prov.cwd.as_deref(), std::env::current_dir().ok().as_deref());
    assert_eq!(prov.pipewright, env!("CARGO_PKG_VERSION"));
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(prov.git_commit.is_some(), in_git);
    assert_eq!(prov.git_dirty.is_some(), in_git);

    // The failures, with their chains and the panic's backtrace.
    let table = fs::read_to_string(run_dir.join("failures/table.txt")).unwrap();
    assert!(
        table.starts_with("node `table` (task `load_table`) failed\n"),
        "{table}"
    );
    assert!(
        table.contains("  0: cannot load the table\n  1: table.csv is missing"),
        "{table}"
    );
    let boom = fs::read_to_string(run_dir.join("failures/boom.txt")).unwrap();
    assert!(boom.contains("the crash task always crashes"), "{boom}");
    assert!(
        boom.contains("backtrace:") && boom.contains("run_records"),
        "{boom}"
    );

    // The run's events, the tasks' own included.
    let log = fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("run{pipeline=\"recorded run\"}"), "{log}");
    assert!(
        log.contains("node{node=a task=numbers}") && log.contains("making numbers n=3"),
        "{log}"
    );
    assert!(
        log.contains("failed") && log.contains("cannot load the table"),
        "{log}"
    );

    // A second run makes a second record; `table` fails again.
    assert!(
        !Runner::new(dir.path().join("data"))
            .run(&p)
            .unwrap()
            .succeeded()
    );
    assert_eq!(
        fs::read_dir(dir.path().join("data/runs")).unwrap().count(),
        2
    );
}

#[test]
fn a_record_reopens_and_rebuilds_its_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs");
    let p = pipeline! {
        name = "reopen";
        let a = numbers(3);
        let b = numbers(4);
        let sum = total([a, b], 1);
        let table = load_table(a);
    };
    let run = Runner::new(dir.path().join("data"))
        .log_dir(&log)
        .run(&p)
        .unwrap();
    assert_eq!(run.status("table"), Some(NodeStatus::Failed));
    let run_dir = only_run_dir(&log);

    let report = pipewright::RunReport::open(&run_dir).unwrap();
    assert_eq!(report.pipeline(), "reopen");
    assert_eq!(report.status("sum"), Some(NodeStatus::Ran));
    assert_eq!(report.status("table"), Some(NodeStatus::Failed));
    assert_eq!(*report.get_as::<u32>("sum").unwrap(), 17);
    assert_eq!(report.get_as::<Vec<u32>>("a").unwrap(), &vec![1, 2, 3]);
    let err = report.get_as::<u32>("table").unwrap_err();
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "cannot load the table"
    );
    assert_eq!(
        report.node("table").unwrap().error().unwrap().to_string(),
        "cannot load the table"
    );
    assert_eq!(report.run_dir(), Some(run_dir.as_path()));

    // Rebuilt through the registry, with every key checked; it runs from the store.
    let rebuilt = Pipeline::from_record(&run_dir).unwrap();
    assert_eq!(rebuilt.name(), "reopen");
    assert_eq!(
        rebuilt.node_names().collect::<Vec<_>>(),
        ["a", "b", "sum", "table"]
    );
    let again = Runner::new(dir.path().join("data")).run(&rebuilt).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 3);
    assert_eq!(*again.get_as::<u32>("sum").unwrap(), 17);

    // A record whose parameters no longer give the recorded key is rejected.
    let path = run_dir.join("run.json");
    let text = fs::read_to_string(&path).unwrap();
    // `offset` is the only parameter of `sum`: a `u32`, little-endian.
    assert!(text.contains("\"encoded_params\":\"01000000\""), "{text}");
    fs::write(
        &path,
        text.replace(
            "\"encoded_params\":\"01000000\"",
            "\"encoded_params\":\"02000000\"",
        ),
    )
    .unwrap();
    let err = Pipeline::from_record(&run_dir).unwrap_err();
    assert!(
        err.to_string().contains(
            "node `sum` does not have the recorded key any more: the code, version or \
             parameters of task `total` changed since the run"
        ),
        "{err}"
    );

    // An unknown task, and a record that does not parse.
    fs::write(
        &path,
        text.replace("\"task\":\"total\"", "\"task\":\"totally\""),
    )
    .unwrap();
    let err = Pipeline::from_record(&run_dir).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTask(name) if name == "totally"),
        "{err}"
    );
    fs::write(&path, "{ not json").unwrap();
    let err = Pipeline::from_record(&run_dir).unwrap_err();
    assert!(
        err.to_string().contains("run.json`: it does not parse"),
        "{err}"
    );
    assert!(matches!(
        pipewright::RunReport::open(&run_dir),
        Err(Error::Record { .. })
    ));
}

#[test]
fn the_log_of_a_failed_run_holds_every_event_in_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs");
    // Far more events than the log keeps before it writes them.
    let nodes = 600u32;
    let mut b = Pipeline::builder("logged");
    let mut first = None;
    for i in 0..nodes {
        let node = b.add(format!("n{i}"), numbers::node(i)).unwrap();
        first.get_or_insert(node);
    }
    b.add("table", load_table::node(first.unwrap())).unwrap();
    let p = b.build();
    let run = Runner::new(dir.path().join("data"))
        .log_dir(&log)
        .run(&p)
        .unwrap();
    assert!(!run.succeeded());
    let text = fs::read_to_string(only_run_dir(&log).join("run.log")).unwrap();
    assert!(text.len() > 128 * 1024, "{}", text.len());
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        // Each line is one event: its time, then its level.
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.starts_with("20"), "{line}");
        assert!(
            rest.trim_start().starts_with(['I', 'D', 'W', 'E', 'T']),
            "{line}"
        );
    }
    let made: std::collections::BTreeSet<u32> = text
        .lines()
        .filter_map(|line| {
            line.split_once("task=numbers}: behaviour::run_records: making numbers n=")
        })
        .map(|(_, n)| n.parse().unwrap())
        .collect();
    assert_eq!(made, (0..nodes).collect());
    assert!(text.contains("cannot load the table"));
    let last = text.lines().last().unwrap();
    assert!(last.contains("601 nodes: 600 ran, 1 failed in "), "{last}");
}

#[task]
fn awkward(x: f64, big: u128, pairs: std::collections::HashMap<(u8, u8), u8>) -> u64 {
    x.to_bits() ^ big as u64 ^ pairs.len() as u64
}

#[test]
fn a_record_rebuilds_parameters_that_json_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let p = pipeline! {
        name = "awkward";
        let nan = awkward(f64::NAN, u128::MAX, [((1, 2), 3)].into());
        let inf = awkward(f64::NEG_INFINITY, 1, Default::default());
    };
    let runner = Runner::new(dir.path().join("data")).log_dir(&log);
    let first = runner.run(&p).unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 2, "{first}");
    let run_dir = only_run_dir(&log);

    // The same parameters come back: the keys match, and the outputs are in the store.
    let rebuilt = Pipeline::from_record(&run_dir).unwrap();
    let again = Runner::new(dir.path().join("data")).run(&rebuilt).unwrap();
    assert_eq!(again.count(NodeStatus::Cached), 2, "{again}");
    assert_eq!(
        again.get_as::<u64>("nan").unwrap(),
        first.get(p.nan).unwrap()
    );
    let reopened = pipewright::RunReport::open(&run_dir).unwrap();
    assert_eq!(
        reopened.get_as::<u64>("inf").unwrap(),
        first.get(p.inf).unwrap()
    );
}

#[test]
fn an_in_memory_run_is_not_recorded() {
    let p = pipeline! {
        name = "unrecorded";
        let a = numbers(2);
    };
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(run.run_dir(), None);
}

#[test]
fn a_record_with_an_unknown_node_status_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs");
    let p = pipeline! {
        name = "statuses";
        let a = numbers(3);
    };
    let run = Runner::new(dir.path().join("data"))
        .log_dir(&log)
        .run(&p)
        .unwrap();
    assert_eq!(run.status("a"), Some(NodeStatus::Ran));
    let run_dir = only_run_dir(&log);
    let path = run_dir.join("run.json");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"status\":\"ran\""), "{text}");
    assert_eq!(RunRecord::read(&run_dir).unwrap().nodes[0].status, "ran");

    fs::write(
        &path,
        text.replace("\"status\":\"ran\"", "\"status\":\"exploded\""),
    )
    .unwrap();
    match RunRecord::read(&run_dir) {
        Err(Error::Record { path: at, reason }) => {
            assert_eq!(at, path);
            assert!(reason.contains("unknown variant `exploded`"), "{reason}");
        }
        other => panic!("expected a record error, got {other:?}"),
    }
    let err = pipewright::RunReport::open(&run_dir).unwrap_err();
    assert!(matches!(err, Error::Record { .. }), "{err:?}");
}

#[test]
fn cached_nodes_are_logged_in_one_line_and_have_no_spans_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("logged cache");
    let a = b.add("a", numbers::node(2)).unwrap();
    let c = b.add("c", numbers::node(3)).unwrap();
    let sum = b.add("sum", total::node([a, c], 1)).unwrap();
    let p = b.build();
    let runner = Runner::new(dir.path().join("data")).log_dir(dir.path().join("runs"));
    assert!(runner.run(&p).unwrap().succeeded());

    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 3, "{run}");
    assert_eq!(*run.get(sum).unwrap(), 10);
    let log = fs::read_to_string(run.run_dir().unwrap().join("run.log")).unwrap();
    assert!(log.contains("cached 3: a, c, sum"), "{log}");
    assert!(!log.contains("node{"), "{log}");
    assert!(log.contains("3 nodes: 0 ran, 3 cached"), "{log}");
}

#[task(name = "run_records.words")]
fn words(words: Vec<String>) -> Vec<String> {
    words
}

#[task(name = "run_records.measure")]
fn measure(word: &String, note: String) -> usize {
    assert_ne!(word, "bad", "cannot measure `bad` ({note})");
    word.len()
}

#[task(name = "run_records.gather")]
fn gather(parts: &[&usize]) -> usize {
    parts.iter().copied().sum()
}

/// `run.json` is, byte for byte, what [`RunRecord`]'s own serializer writes of the record
/// read back from it: the same fields in the same order, the same escapes and numbers.
fn assert_written_as_the_record_writes(run: &RunReport) {
    let run_dir = run.run_dir().unwrap();
    let written = fs::read_to_string(run_dir.join("run.json")).unwrap();
    let record = RunRecord::read(run_dir).unwrap();
    assert_eq!(written, serde_json::to_string(&record).unwrap());
}

#[test]
fn run_json_is_what_its_record_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("a \"quoted\" name\\with\tescapes, é");
    let list = b
        .add(
            "list \"of\" words",
            words::node(["a", "bad", "ccc"].map(str::to_owned).to_vec()),
        )
        .unwrap();
    let lengths = b
        .map("lengths", list, |w| {
            measure::node(w, "quote \" and \u{1}".to_owned())
        })
        .unwrap();
    b.add("total", gather::node(lengths)).unwrap();
    let a = b.add("a", numbers::node(3)).unwrap();
    let c = b.add("c", numbers::node(4)).unwrap();
    b.add("sum", total::node([a, c, a], 100)).unwrap();
    b.add("table", load_table::node(a)).unwrap();
    let p = b.build();
    let runner = Runner::new(dir.path().join("data")).record_params(serde_json::json!({
        "text": "tab\there",
        "n": 1.5,
    }));
    // The first run: nodes that ran, failed (with error chains), a mapped node with
    // failed branches and a node upstream failed below it.
    let first = runner.run(&p).unwrap();
    assert!(!first.succeeded());
    assert_written_as_the_record_writes(&first);
    let record = RunRecord::read(first.run_dir().unwrap()).unwrap();
    let node = |n: &str| record.nodes.iter().find(|r| r.name == n).unwrap();
    assert_eq!(node("lengths").branches.len(), 3);
    assert_eq!(node("total").upstream_failed.as_deref(), Some("lengths[1]"));
    assert!(!node("table").error.is_empty());
    assert!(node("sum").inputs[0].gathered);
    // The second: cached nodes beside those that fail again.
    let second = runner.run(&p).unwrap();
    assert!(second.count(NodeStatus::Cached) >= 4, "{second}");
    assert_written_as_the_record_writes(&second);
}

/// A map over an empty list, nodes a target does not need, and no parameters recorded:
/// the same.
#[test]
fn run_json_of_an_empty_map_and_a_targeted_run_is_what_its_record_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("targeted");
    let none = b.add("none", words::node(Vec::new())).unwrap();
    let lengths = b
        .map("lengths", none, |w| measure::node(w, String::new()))
        .unwrap();
    b.add("total", gather::node(lengths)).unwrap();
    let a = b.add("a", numbers::node(3)).unwrap();
    b.add("sum", total::node([a], 1)).unwrap();
    let p = b.build();
    let data = dir.path().join("data");
    let all = Runner::new(&data).run(&p).unwrap();
    assert!(all.succeeded(), "{all}");
    assert_written_as_the_record_writes(&all);
    let record = RunRecord::read(all.run_dir().unwrap()).unwrap();
    let lengths = record.nodes.iter().find(|n| n.name == "lengths").unwrap();
    assert!(lengths.over.is_some() && lengths.branches.is_empty());
    assert!(record.params.is_none());

    let targeted = Runner::new(&data).target("a").run(&p).unwrap();
    assert_eq!(targeted.count(NodeStatus::NotNeeded), 4, "{targeted}");
    assert_written_as_the_record_writes(&targeted);
    let record = RunRecord::read(targeted.run_dir().unwrap()).unwrap();
    let statuses: Vec<RecordedStatus> = record.nodes.iter().map(|n| n.status).collect();
    assert_eq!(
        statuses,
        [
            RecordedStatus::NotNeeded,
            RecordedStatus::NotNeeded,
            RecordedStatus::NotNeeded,
            RecordedStatus::Cached,
            RecordedStatus::NotNeeded,
        ]
    );
}

/// Thousands of nodes, written out through the buffer many times over: the same.
#[test]
fn run_json_of_thousands_of_nodes_is_what_its_record_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Pipeline::builder("wide");
    let firsts: Vec<_> = (0..5_000)
        .map(|i| b.add(format!("n{i}"), numbers::node(i % 3)).unwrap())
        .collect();
    b.add("all", total::node(firsts, 0)).unwrap();
    let p = b.build();
    let run = Runner::new(dir.path().join("data")).run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_written_as_the_record_writes(&run);
    let record = RunRecord::read(run.run_dir().unwrap()).unwrap();
    let names: Vec<&str> = record.nodes.iter().map(|n| n.name.as_str()).collect();
    let expected: Vec<String> = (0..5_000)
        .map(|i| format!("n{i}"))
        .chain(["all".to_owned()])
        .collect();
    assert_eq!(names, expected);
}
