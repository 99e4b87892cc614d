//! Helpers shared by the behaviour tests: a per-node run counter and report queries.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Completion, Trial};
use pipewright::prelude::*;

pub mod store;

static RUNS: Mutex<BTreeMap<(String, String), usize>> = Mutex::new(BTreeMap::new());

/// Counts one run of the calling node, keyed by pipeline and node.
pub fn count(ctx: &Ctx) {
    let key = (ctx.pipeline().to_owned(), ctx.node().to_owned());
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

/// How often each node of `pipeline` ran since the last call, by node name.
pub fn take_runs(pipeline: &str) -> BTreeMap<String, usize> {
    let mut runs = RUNS.lock().unwrap();
    let keys: Vec<_> = runs
        .keys()
        .filter(|(p, _)| p == pipeline)
        .cloned()
        .collect();
    keys.into_iter()
        .map(|key| {
            let n = runs.remove(&key).unwrap();
            (key.1, n)
        })
        .collect()
}

/// The names of the nodes that ended with `status`, sorted.
pub fn with_status(run: &RunReport, status: NodeStatus) -> Vec<String> {
    let mut names: Vec<String> = run
        .nodes()
        .filter(|n| n.status() == status)
        .map(|n| n.name().to_owned())
        .collect();
    names.sort();
    names
}

/// `names` as owned, sorted strings.
pub fn names(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Runs the scenarios of a test with its own `main` as the usual test harness runs tests:
/// `--list` lists them, the command line's filters choose, each prints its line and the
/// run closes with the usual summary; one at a time unless `--test-threads` says otherwise.
pub fn run_scenarios(scenarios: &[(&str, fn())]) -> std::process::ExitCode {
    run_trials(
        scenarios
            .iter()
            .map(|&(name, test)| scenario(name, test))
            .collect(),
    )
}

/// Runs `trials` as [`run_scenarios`] runs scenarios.
pub fn run_trials(trials: Vec<Trial>) -> std::process::ExitCode {
    // These scenarios start processes and time them: side by side they would slow each
    // other down past their deadlines.
    run_trials_on(trials, 1)
}

/// Runs `trials` as [`run_trials`] does, on `threads` threads unless `--test-threads` says
/// otherwise; they start in order, each when a thread is free.
pub fn run_trials_on(trials: Vec<Trial>, threads: usize) -> std::process::ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(threads);
    }
    if !args.list {
        for trial in trials.iter().filter(|t| !args.is_filtered_out(t)) {
            if let Some(reason) = IGNORED.lock().unwrap().get(trial.name()) {
                eprintln!("{}: ignored, {reason}", trial.name());
            }
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// The reason of each trial that [`needing`] made ignored, by name.
static IGNORED: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Scenario `test` as a trial named `name`.
pub fn scenario(name: &str, test: fn()) -> Trial {
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// Scenario `test`, which needs what `missing` says is missing if it is `Some`. Then the
/// trial is ignored, saying why (`--include-ignored` runs it, to say why again), unless
/// `required` names an environment variable that is `1`: then it fails.
pub fn needing(name: &str, test: fn(), missing: Option<String>, required: &str) -> Trial {
    let Some(missing) = missing else {
        return scenario(name, test);
    };
    if std::env::var(required).as_deref() == Ok("1") {
        let message = format!("{missing}, and {required}=1 requires this test");
        return Trial::test(name, move || Err(message.into()));
    }
    IGNORED
        .lock()
        .unwrap()
        .insert(name.to_owned(), missing.clone());
    Trial::ignorable_test(name, move || Ok(Completion::ignored_with(missing)))
        .with_ignored_flag(true)
}

/// Parameters that JSON cannot carry: a float, an integer past `u64`, a map keyed by tuples
/// and one keyed by integers.
pub type Unjsonable = (f64, u128, HashMap<(u32, u32), String>, HashMap<i64, String>);

/// One case per value that JSON loses or mangles (NaN, the infinities, `u128::MAX`,
/// tuple keys, integer keys), by node name.
pub fn unjsonable_params() -> Vec<(&'static str, Unjsonable)> {
    let pairs: HashMap<(u32, u32), String> =
        [((1, 2), "a".to_owned()), ((3, 4), "b".to_owned())].into();
    let ints: HashMap<i64, String> = [(-5, "c".to_owned()), (1 << 40, "d".to_owned())].into();
    vec![
        ("nan", (f64::NAN, 7, HashMap::new(), HashMap::new())),
        ("inf", (f64::INFINITY, 7, HashMap::new(), HashMap::new())),
        (
            "neg_inf",
            (f64::NEG_INFINITY, 7, HashMap::new(), HashMap::new()),
        ),
        ("u128_max", (1.5, u128::MAX, HashMap::new(), HashMap::new())),
        ("tuple_keys", (1.5, 7, pairs, HashMap::new())),
        ("int_keys", (1.5, 7, HashMap::new(), ints)),
    ]
}

/// A map's entries, sorted.
pub fn sorted<K: Ord, V: Ord>(map: HashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<_> = map.into_iter().collect();
    entries.sort();
    entries
}

/// What a `tracing` subscriber writes, kept in memory: give the subscriber a clone as its
/// writer, and read the bytes from the original.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Dates `path` an hour ago plus `seconds`: old enough that the store's stat cache trusts
/// the hash it takes of the file at once.
pub fn set_mtime(path: &std::path::Path, seconds: u64) {
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(3600)
        + std::time::Duration::from_secs(seconds);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// Writes `text` to `path`, dated as [`set_mtime`] dates it.
pub fn write_dated(path: &std::path::Path, text: &str, seconds: u64) {
    std::fs::write(path, text).unwrap();
    set_mtime(path, seconds);
}
