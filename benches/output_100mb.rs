//! One 100 MB output stored and loaded by a run, against the same work done plainly with
//! `std::fs` and the same codec, the two taken in turn in one loop (pipewright then plain,
//! plain then pipewright, and so on), so that both meet the same state of the machine.
//!
//! The criterion benchmark `cache -- output_100MB` times each side in a block of its own;
//! on a machine whose memory or disk moves between blocks, the ratio of two blocks moves
//! with it. Here every round has one of each.
//!
//! `cargo bench -p pipewright-benches --bench output_100mb [-- ROUNDS]` (40 rounds unless
//! told), on the file system of `$TMPDIR`; see `benches/README.md` for the figures.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use pipewright::codec::{Bincode, Codec};
use pipewright::{NodeStatus, Pipeline, RunReport, Runner, task};

/// Elements of the output: 12,500,000 `u64`s, 100,000,000 bytes (plus the 8-byte length
/// prefix bincode writes).
const LEN: usize = 12_500_000;

/// The output: `len` pseudo-random `u64`s.
#[task]
fn block(len: usize, seed: u64) -> Vec<u64> {
    values(len, seed)
}

fn values(len: usize, seed: u64) -> Vec<u64> {
    (0..len as u64)
        .map(|i| (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect()
}

/// Deletes `dir` and everything in it, if it exists.
fn clear(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot delete `{}`: {e}", dir.display()),
    }
}

/// Times `work`; what it returns is dropped after the timing.
fn time<O>(work: impl FnOnce() -> O) -> Duration {
    let start = Instant::now();
    let output = work();
    let elapsed = start.elapsed();
    drop(black_box(output));
    elapsed
}

/// Fastest, median and mean, in milliseconds.
fn summary(times: &[Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (ms[0], ms[ms.len() / 2], mean)
}

fn report(what: &str, pipewright: &[Duration], plain: &[Duration]) {
    let (a, b) = (summary(pipewright), summary(plain));
    println!(
        "{what}: pipewright {:.1} / {:.1} / {:.1} ms, plain {:.1} / {:.1} / {:.1} ms \
         (fastest / median / mean): {:.2}× / {:.2}× / {:.2}×",
        a.0,
        a.1,
        a.2,
        b.0,
        b.1,
        b.2,
        a.0 / b.0,
        a.1 / b.1,
        a.2 / b.2
    );
    // The rounds at least half as long again as the plain median, on each side.
    let slow = |times: &[Duration]| {
        times
            .iter()
            .filter(|t| t.as_secs_f64() * 1e3 > 1.5 * b.1)
            .count()
    };
    println!(
        "{what}: rounds over 1.5× the plain median: pipewright {}, plain {}, of {}",
        slow(pipewright),
        slow(plain),
        plain.len()
    );
}

/// Times `first` and `second` `rounds` times each, in turn: `first` first in even rounds,
/// `second` first in odd ones.
fn in_turn(
    rounds: usize,
    mut first: impl FnMut() -> Duration,
    mut second: impl FnMut() -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            a.push(first());
            b.push(second());
        } else {
            b.push(second());
            a.push(first());
        }
    }
    (a, b)
}

fn run_all(runner: &Runner, pipeline: &Pipeline, status: NodeStatus) -> RunReport {
    let report = runner.run(pipeline).expect("the run starts");
    assert_eq!(report.count(status), pipeline.len(), "{report}");
    report
}

#[pipewright::main]
fn main() {
    // `cargo bench` passes `--bench`; a number is the count of rounds.
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(40);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let data = scratch.path().join("data");
    let plain_dir = scratch.path().join("plain");
    let plain_file = plain_dir.join("output.bin");
    let seed = 7;
    let mut b = Pipeline::builder("large_output");
    let handle = b.add("block", block::node(LEN, seed)).expect("a node");
    let pipeline = b.build();
    let runner = Runner::new(&data).jobs(2);

    // Both sides write the same bytes and read back the same value.
    let expected = values(LEN, seed);
    let bytes = Bincode::encode(&expected).expect("encodes");
    let stored = run_all(&runner, &pipeline, NodeStatus::Ran);
    assert_eq!(stored.get(handle).expect("the output"), &expected);
    drop(stored);
    let cached = run_all(&runner, &pipeline, NodeStatus::Cached);
    let key = cached.nodes().next().and_then(|n| n.key()).expect("a key");
    let entry = data.join("block").join(format!("{key}.bin"));
    assert_eq!(fs::read(&entry).expect("read"), bytes);
    drop((cached, expected));
    fs::create_dir_all(&plain_dir).expect("a directory");
    fs::write(&plain_file, &bytes).expect("written");
    drop(bytes);

    // Store: a run on an empty data directory, against encoding the value, writing it into
    // an empty directory and freeing the encoding; each side computes the value, and drops
    // it (the run's report holds it) untimed.
    let store_pipewright = || {
        clear(&data);
        time(|| runner.run(&pipeline).expect("the run"))
    };
    let store_plain = || {
        clear(&plain_dir);
        fs::create_dir(&plain_dir).expect("a directory");
        time(|| {
            let value = values(LEN, seed);
            let bytes = Bincode::encode(&value).expect("encodes");
            fs::write(&plain_file, &bytes).expect("written");
            drop(bytes);
            value
        })
    };
    // Load: the output of a cached run's report (the run itself untimed): read, digest
    // checked, decoded; against reading the file and decoding it.
    let load_pipewright = || {
        let report = runner.run(&pipeline).expect("the run");
        time(|| {
            black_box(report.get(handle).expect("the output").len());
            report
        })
    };
    let load_plain = || {
        time(|| {
            let bytes = fs::read(&plain_file).expect("read");
            Bincode::decode::<Vec<u64>>(&bytes).expect("decodes")
        })
    };

    let (stored, stored_plainly) = in_turn(rounds, store_pipewright, store_plain);
    let (loaded, loaded_plainly) = in_turn(rounds, load_pipewright, load_plain);
    println!("{rounds} rounds, in {}", scratch.path().display());
    report("stored", &stored, &stored_plainly);
    report("loaded", &loaded, &loaded_plainly);
}
