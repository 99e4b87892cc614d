//! The store's index as it may be found: rows that fail their checksum, the database torn
//! (truncated, garbage over its pages, its write-ahead log cut mid-frame) or deleted, an
//! index of a newer format, and a data directory of the previous format. A run recomputes
//! what it cannot read, or refuses with an error that names the index and says to run
//! `clean`; it never returns a wrong value, and after `clean` the next run works.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use pipewright::cli;
use pipewright::prelude::*;
use support::store::{self, Value};
use support::{count, names, take_runs, with_status};

/// Enough numbers that the outputs of `xs` and `sq` are files of their own.
const N: u64 = 20_000;

#[task(name = "store_index.numbers")]
fn numbers(n: u64, ctx: &Ctx) -> Vec<u64> {
    count(ctx);
    (0..n).collect()
}

#[task(name = "store_index.squares")]
fn squares(xs: &Vec<u64>, ctx: &Ctx) -> std::io::Result<Vec<u64>> {
    count(ctx);
    fs::write(ctx.work_dir()?.join("part"), b"squares")?;
    Ok(xs.iter().map(|x| x * x).collect())
}

#[task(name = "store_index.total")]
fn total(xs: &Vec<u64>, ctx: &Ctx) -> u64 {
    count(ctx);
    xs.iter().sum()
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).map(|x| x * x).sum()
}

/// The pipeline, and the handles of the nodes a runner keeps.
struct Built {
    p: Pipeline,
    xs: Handle<Vec<u64>>,
    sq: Handle<Vec<u64>>,
}

impl std::ops::Deref for Built {
    type Target = Pipeline;

    fn deref(&self) -> &Pipeline {
        &self.p
    }
}

/// The squares of `0..n` and their sum, as the pipeline `name`.
fn the_pipeline(name: &str, n: u64) -> Built {
    let mut b = Pipeline::builder(name);
    let xs = b.add("xs", numbers::node(n)).unwrap();
    let sq = b.add("sq", squares::node(xs)).unwrap();
    b.add("sum", total::node(sq)).unwrap();
    Built {
        p: b.build(),
        xs,
        sq,
    }
}

/// Every value `run` reads is right; where `all`, every one reads.
fn check_values(run: &RunReport, n: u64, all: bool) {
    let expected = [
        ("xs", (0..n).sum::<u64>()),
        ("sq", sum_of_squares(n)),
        ("sum", sum_of_squares(n)),
    ];
    for (node, want) in expected {
        let got = if node == "sum" {
            run.get_as::<u64>(node).copied()
        } else {
            run.get_as::<Vec<u64>>(node).map(|v| {
                assert_eq!(v.len() as u64, n, "{node}");
                v.iter().sum()
            })
        };
        match got {
            Ok(got) => assert_eq!(got, want, "{node}"),
            Err(e) => assert!(!all, "`{node}` does not read: {e}"),
        }
    }
}

/// One column of a row and a value it did not have.
type Alteration = (&'static str, fn(&store::Stored) -> Value);

const ALTERATIONS: [Alteration; 8] = [
    ("digest", |e| {
        let mut digest = store::unhex(&e.digest);
        digest[31] ^= 1;
        Value::Blob(digest)
    }),
    ("size", |e| Value::Integer(e.size as i64 - 1)),
    ("place", |e| Value::Integer(i64::from(e.inline))),
    ("stamp", |_| Value::Integer(7)),
    ("task", |_| Value::Text("total".into())),
    ("node", |_| Value::Text("xs".into())),
    ("work", |e| Value::Integer(i64::from(!e.work))),
    ("duration", |_| Value::Real(1e9)),
];

/// Any field of a row altered, its output left whole: the row's checksum no longer
/// matches, and that alone says the entry is damaged.
#[test]
fn a_row_that_fails_its_checksum_is_a_damaged_entry() {
    for (column, alter) in ALTERATIONS {
        for n in [10, N] {
            let what = format!("{column}, {n} numbers");
            let dir = tempfile::tempdir().unwrap();
            let p = the_pipeline("checksum", n);
            let runner = Runner::new(dir.path()).keep(p.sq);
            let first = runner.run(&p).unwrap();
            take_runs("checksum");
            let sq = store::entry(dir.path(), first.node("sq").unwrap().key().unwrap()).unwrap();

            store::set_column(dir.path(), &sq.key, column, alter(&sq));
            let run = runner.run(&p).unwrap();
            assert_eq!(with_status(&run, NodeStatus::Ran), names(&["sq"]), "{what}");
            assert_eq!(
                run.node("sq").unwrap().reason().unwrap().to_string(),
                "damaged entry: the index's row of the entry does not match its checksum",
                "{what}"
            );
            check_values(&run, n, true);
            assert_eq!(take_runs("checksum").get("sq"), Some(&1), "{what}");
            store::whole(dir.path(), &store::entry(dir.path(), &sq.key).unwrap()).unwrap();

            let run = runner.run(&p).unwrap();
            assert_eq!(run.count(NodeStatus::Cached), 3, "{what}");
        }
    }
}

/// Whether `error` names the index and says to run `clean`.
fn says_clean(error: &str, data: &Path) -> bool {
    error.contains(&store::index_path(data).display().to_string()) && error.contains("`clean`")
}

/// After `tear` damages the index of a store the pipeline filled, a run either refuses with
/// an error that names the index and says to run `clean`, or recomputes what it cannot read
/// (a node that cannot store its output fails with such an error); no value it reads is
/// wrong. After `clean`, the next run computes everything, and the one after runs nothing.
fn torn(what: &str, tear: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline("torn", N);
    let first = Runner::new(&data).run(&p).unwrap();
    assert_eq!(first.count(NodeStatus::Ran), 3);
    drop(first);
    tear(&data);

    let runner = Runner::new(&data).keep(p.xs).keep(p.sq);
    match runner.run(&p) {
        Err(e) => assert!(says_clean(&e.to_string(), &data), "{what}: {e}"),
        Ok(run) => {
            for node in run.nodes() {
                if let Some(error) = node.error() {
                    let chain = format!("{error}: {:?}", std::error::Error::source(error));
                    assert!(
                        says_clean(&chain, &data),
                        "{what}: `{}`: {chain}",
                        node.name()
                    );
                }
            }
            check_values(&run, N, false);
        }
    }
    take_runs("torn");

    let freed = runner.clean().unwrap();
    assert!(
        !store::index_path(&data).exists() || freed.entries > 0,
        "{what}: {freed}"
    );
    let run = Runner::new(&data).keep(p.xs).keep(p.sq).run(&p).unwrap();
    assert!(run.succeeded(), "{what}: {run}");
    check_values(&run, N, true);
    assert_eq!(run.count(NodeStatus::Ran), 3, "{what}");
    let run = Runner::new(&data).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 3, "{what}");
    for task in ["numbers", "squares", "total"] {
        assert_eq!(
            store::unaccounted(&data, task),
            Vec::<String>::new(),
            "{what}"
        );
    }
}

#[test]
fn a_truncated_index_is_recomputed_or_refused_never_misread() {
    torn("truncated to half", |data| {
        let path = store::index_path(data);
        let len = fs::metadata(&path).unwrap().len();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    });
}

#[test]
fn garbage_over_the_index_is_recomputed_or_refused_never_misread() {
    // Over its header, and over every page after the first.
    for from in [0, 4096] {
        torn(&format!("garbage from byte {from}"), |data| {
            let path = store::index_path(data);
            let mut bytes = fs::read(&path).unwrap();
            for (i, byte) in bytes.iter_mut().enumerate().skip(from) {
                *byte = (i as u8).wrapping_mul(37) ^ 0x5a;
            }
            fs::write(&path, bytes).unwrap();
        });
    }
}

/// The write-ahead log cut in the middle of a frame, as a crash of the machine may leave
/// it: the entries of the transactions it loses are computed again, the others are used.
#[test]
fn an_index_whose_log_is_cut_mid_frame_loses_only_whole_transactions() {
    let frame = 24 + 4096;
    for cut in [1, 3] {
        torn(&format!("log cut in frame {cut}"), |data| {
            // Another run commits its entries to the log, and is still open (so nothing is
            // checkpointed) when the store is copied aside as a crash would leave it.
            let live = Runner::new(data).force_all();
            let p = the_pipeline("torn", N);
            assert_eq!(live.run(&p).unwrap().count(NodeStatus::Ran), 3);
            let copy = data.with_file_name("copy");
            copy_dir(data, &copy);
            drop(live);
            fs::remove_dir_all(data).unwrap();
            fs::rename(&copy, data).unwrap();
            let wal = store::index_path(data).with_extension("db-wal");
            let len = fs::metadata(&wal).unwrap().len();
            assert!(len > 32 + cut * frame, "{len}");
            fs::File::options()
                .write(true)
                .open(&wal)
                .unwrap()
                .set_len(32 + cut * frame + 100)
                .unwrap();
        });
    }
}

/// Copies the directory `from` to `to`, but the index's shared memory file.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let name = item.file_name();
        if name.to_string_lossy().ends_with("-shm") {
            continue;
        }
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &to.join(&name));
        } else {
            fs::copy(item.path(), to.join(&name)).unwrap();
        }
    }
}

/// The index deleted, and the output files and work directories it described left: the
/// next run computes everything again, and no file of the old entries is left that the new
/// index does not account for.
#[test]
fn a_deleted_index_is_rebuilt_by_computing_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline("deleted", N);
    let runner = Runner::new(&data).keep(p.xs).keep(p.sq);
    drop(runner.run(&p).unwrap());
    let before = store::entries(&data);
    assert_eq!(before.iter().filter(|e| !e.inline).count(), 2, "{before:?}");
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", store::index_path(&data).display());
        let _ = fs::remove_file(path);
    }
    take_runs("deleted");

    let run = Runner::new(&data).keep(p.xs).keep(p.sq).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3, "{run}");
    for node in run.nodes() {
        assert_eq!(node.reason().unwrap().to_string(), "no entry");
    }
    check_values(&run, N, true);
    assert_eq!(take_runs("deleted").len(), 3);
    assert_eq!(store::entries(&data).len(), 3);
    for entry in store::entries(&data) {
        store::whole(&data, &entry).unwrap();
    }
    for task in ["numbers", "squares", "total"] {
        assert_eq!(store::unaccounted(&data, task), Vec::<String>::new());
    }
    let run = Runner::new(&data).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 3);
}

/// A directory where an entry's output file goes, and no row: the entry is written all the
/// same, and the directory does not stay.
#[test]
fn a_directory_where_an_output_file_goes_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let p = the_pipeline("in the way", N);
    let runner = Runner::new(dir.path()).keep(p.sq);
    let first = runner.run(&p).unwrap();
    let sq = store::entry(dir.path(), first.node("sq").unwrap().key().unwrap()).unwrap();
    assert!(!sq.inline);
    store::delete_row(dir.path(), &sq.key);
    let file = store::output_file(dir.path(), &sq);
    fs::remove_file(&file).unwrap();
    fs::create_dir_all(file.join("inner")).unwrap();
    take_runs("in the way");

    let run = runner.run(&p).unwrap();
    assert!(run.succeeded(), "{run}");
    assert_eq!(with_status(&run, NodeStatus::Ran), names(&["sq"]));
    check_values(&run, N, true);
    assert!(file.is_file());
    assert_eq!(
        store::unaccounted(dir.path(), "squares"),
        Vec::<String>::new()
    );
}

/// Runs the command line `args` against `data`; returns its exit code and what it printed.
fn cli(p: &Pipeline, data: &Path, args: &[&str]) -> (ExitCode, String) {
    let mut argv = vec!["pipeline".to_owned(), "--data".to_owned()];
    argv.push(data.display().to_string());
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut out = Vec::new();
    let code = cli::run_with(p, argv, &mut out);
    (code, String::from_utf8(out).unwrap())
}

/// An index of a newer format is refused by run, plan, explain and status, with an error
/// that names the format and says to run `clean`; `clean` removes it.
#[test]
fn an_index_of_a_newer_format_is_refused_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline("newer", 10);
    drop(Runner::new(&data).run(&p).unwrap());
    store::execute(&data, "PRAGMA user_version = 5");
    take_runs("newer");

    let runner = Runner::new(&data);
    let errors = [
        runner.run(&p).map(|_| ()).unwrap_err().to_string(),
        runner.plan(&p).map(|_| ()).unwrap_err().to_string(),
        runner
            .explain(&p, "sq")
            .map(|_| ())
            .unwrap_err()
            .to_string(),
    ];
    let (code, status) = cli(&p, &data, &["status"]);
    assert_ne!(code, ExitCode::SUCCESS, "{status}");
    assert_eq!(status, "", "status shows nothing of the run");
    let message = format!(
        "cannot use the store index `{}`: it was written by a newer pipewright (store format 5; \
         this version reads format 4 only); run `clean` to empty the store",
        store::index_path(&data).display()
    );
    for error in errors {
        assert_eq!(error, message);
    }
    assert!(take_runs("newer").is_empty(), "nothing ran");

    runner.clean().unwrap();
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3);
    check_values(&run, 10, true);
}

/// An index of format 2, whose pipewright locks keys in one file (`locks`), or of format 3,
/// whose pipewright spreads them over sixteen, where this one spreads them over four, is
/// refused: the two on one store could both compute a key.
#[test]
fn an_index_whose_keys_are_locked_elsewhere_is_refused() {
    for format in [2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let p = the_pipeline("locked_elsewhere", 10);
        drop(Runner::new(&data).run(&p).unwrap());
        store::execute(&data, &format!("PRAGMA user_version = {format}"));
        take_runs("locked_elsewhere");

        let runner = Runner::new(&data);
        let error = runner.run(&p).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "cannot use the store index `{}`: it has store format {format}, which this \
                 version does not read; run `clean` to empty the store",
                store::index_path(&data).display()
            )
        );
        assert!(take_runs("locked_elsewhere").is_empty(), "nothing ran");
    }
}

/// A data directory of the previous format: a lock file per key in `.locks`, and a
/// directory per entry holding `output.bin` and `meta.json`. It is refused with an error
/// that says to run `clean`, which removes it; then the next run works.
#[test]
fn a_data_directory_of_the_previous_format_is_refused_until_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "ab".repeat(32);
    fs::create_dir_all(data.join(".locks")).unwrap();
    fs::write(data.join(".locks").join(format!("{key}.lock")), b"").unwrap();
    let old_entry = data.join("numbers").join(&key);
    fs::create_dir_all(old_entry.join("work")).unwrap();
    fs::write(old_entry.join("output.bin"), b"\x01\x07").unwrap();
    fs::write(old_entry.join("meta.json"), br#"{"format": 1}"#).unwrap();
    fs::create_dir_all(data.join("numbers").join(".nodes")).unwrap();
    let p = the_pipeline("previous", 10);

    let runner = Runner::new(&data);
    let message = format!(
        "cannot use the data directory `{}`: it holds entries of an older store format (one \
         directory and `meta.json` per entry), which this version does not read; run `clean` \
         to remove them",
        data.display()
    );
    assert_eq!(runner.run(&p).map(|_| ()).unwrap_err().to_string(), message);
    assert_eq!(
        runner.plan(&p).map(|_| ()).unwrap_err().to_string(),
        message
    );
    assert!(!store::index_path(&data).exists(), "nothing was created");

    let freed = runner.clean().unwrap();
    assert_eq!(freed.entries, 1, "{freed}");
    assert!(!data.join(".locks").exists());
    assert!(!old_entry.exists());
    assert!(!data.join("numbers").join(".nodes").exists());
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3);
    check_values(&run, 10, true);
}

/// A run reopened after its nodes wrote newer entries still reads its own: they are in the
/// store, though no longer the last of their nodes.
#[test]
fn an_older_run_reads_its_own_entries_when_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let older = the_pipeline("reopened", 10);
    let newer = the_pipeline("reopened", 12);
    let runner = Runner::new(&data).log_dir(dir.path().join("runs"));
    let run = runner.run(&older).unwrap();
    let older_dir = run.run_dir().unwrap().to_owned();
    drop(run);
    assert_eq!(runner.run(&newer).unwrap().count(NodeStatus::Ran), 3);

    let reopened = RunReport::open(&older_dir).unwrap();
    check_values(&reopened, 10, true);
}

#[test]
fn a_runner_whose_data_directory_was_deleted_stores_into_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = the_pipeline("deleted-under-a-runner", 3000);
    let runner = Runner::new(&data);
    assert_eq!(runner.run(&p).unwrap().count(NodeStatus::Ran), 3);
    fs::remove_dir_all(&data).unwrap();

    // The same runner runs everything again, into a store at the same path...
    let run = runner.run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Ran), 3, "{run}");
    check_values(&run, 3000, true);
    assert_eq!(store::entries(&data).len(), 3);
    // ... which another runner (another process) finds whole.
    let run = Runner::new(&data).run(&p).unwrap();
    assert_eq!(run.count(NodeStatus::Cached), 3, "{run}");
    check_values(&run, 3000, true);
}
