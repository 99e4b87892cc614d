//! What input files cost: planning a node whose input, a 1 GiB file, is unchanged (a stat
//! and a stat cache lookup) against the same node with a plain parameter; hashing that file
//! again once its stat changed, against blake3 hashing the same bytes in memory; and a
//! cached run of 1,000 nodes that each read an input file, against 1,000 nodes with plain
//! parameters.
//!
//! The files and the data directories are under one temporary directory on the machine's
//! disk, deleted when the benchmark ends. The files are dated an hour back, so that their
//! hashes are trusted at once (a file modified within 2 s of its hash is hashed again).
//!
//! `cargo bench -p pipewright-benches --bench input_files`; the figures are in
//! `benches/README.md`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput};
use pipewright::{InputFile, NodeStatus, Pipeline, Runner, task};

/// The size of the large input.
const LARGE: usize = 1 << 30;

/// Nodes, and input files, of the cached run.
const FILES: usize = 1_000;

/// Reads an input file's length.
#[task]
fn measure(file: InputFile) -> u64 {
    fs::metadata(file.path()).map_or(0, |m| m.len())
}

/// Returns its parameter.
#[task]
fn plain(x: u64) -> u64 {
    x
}

/// Dates `path` an hour back, plus `seconds`.
fn date(path: &Path, seconds: u64) {
    let at = SystemTime::now() - Duration::from_secs(3600) + Duration::from_secs(seconds);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// Writes the 1 GiB file: pseudo-random bytes, 1 MiB at a time.
fn write_large(path: &Path) {
    let mut file = fs::File::create(path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..LARGE / block.len() {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.sync_all().unwrap();
    date(path, 0);
}

/// When the stat cache of the store in `data` last hashed `file`.
fn hashed_at(data: &Path, file: &Path) -> i64 {
    let path = std::path::absolute(file).unwrap();
    rusqlite::Connection::open(data.join(".store/index.db"))
        .unwrap()
        .query_row(
            "SELECT hashed_at_ns FROM files WHERE path = ?1",
            [path.as_os_str().as_encoded_bytes()],
            |r| r.get(0),
        )
        .unwrap()
}

fn one_node(name: &str, file: Option<&Path>) -> Pipeline {
    let mut b = Pipeline::builder(name);
    match file {
        Some(file) => b.add("n", measure::node(InputFile::new(file))).map(drop),
        None => b.add("n", plain::node(1)).map(drop),
    }
    .unwrap();
    b.build()
}

fn large_file(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let large = dir.path().join("large.bin");
    write_large(&large);
    let runner = Runner::new(dir.path().join("data")).jobs(2);
    let with_file = one_node("large", Some(&large));
    let without = one_node("plain", None);
    for p in [&with_file, &without] {
        assert!(runner.run(p).unwrap().succeeded());
    }

    let runner_data = dir.path().join("data");
    let hashed_before = hashed_at(&runner_data, &large);
    let mut g = c.benchmark_group("input_files");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Unchanged: a stat, and the stat cache's row.
    g.bench_function("plan_unchanged_1gib_file", |b| {
        b.iter(|| {
            let plan = runner.plan(&with_file).unwrap();
            assert_eq!(plan.counts(), (1, 0, 0));
        })
    });
    g.bench_function("plan_plain_parameter", |b| {
        b.iter(|| {
            let plan = runner.plan(&without).unwrap();
            assert_eq!(plan.counts(), (1, 0, 0));
        })
    });

    // Changed stat (touched, outside the timing): the file is hashed again.
    g.throughput(Throughput::Bytes(LARGE as u64));
    let mut seconds = 0;
    g.bench_function("plan_rehashes_1gib_file", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seconds += 1;
                date(&large, seconds);
                let start = Instant::now();
                let plan = runner.plan(&with_file).unwrap();
                total += start.elapsed();
                assert_eq!(plan.counts(), (1, 0, 0));
            }
            total
        })
    });
    assert_ne!(
        hashed_at(&runner_data, &large),
        hashed_before,
        "the touched file was hashed again"
    );
    // blake3's own limit on this machine: the same bytes, in memory, on every thread.
    let bytes = fs::read(&large).unwrap();
    g.bench_function("blake3_in_memory_1gib", |b| {
        b.iter(|| blake3::Hasher::new().update_rayon(&bytes).finalize())
    });
    g.finish();
}

fn many_files(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs");
    fs::create_dir(&inputs).unwrap();
    let mut with_files = Pipeline::builder("files");
    let mut plain_params = Pipeline::builder("plain");
    for i in 0..FILES {
        let file = inputs.join(format!("{i}.csv"));
        fs::write(&file, format!("{i},{}\n", i * 7)).unwrap();
        date(&file, 0);
        with_files
            .add(format!("n{i}"), measure::node(InputFile::new(&file)))
            .unwrap();
        plain_params
            .add(format!("n{i}"), plain::node(i as u64))
            .unwrap();
    }
    let with_files = with_files.build();
    let plain_params = plain_params.build();
    let runner = Runner::new(dir.path().join("data")).jobs(2);
    for p in [&with_files, &plain_params] {
        assert!(runner.run(p).unwrap().succeeded());
    }

    let mut g = c.benchmark_group("input_files");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(FILES as u64));
    for (name, p) in [
        ("cached_run_1000_input_files", &with_files),
        ("cached_run_1000_plain_parameters", &plain_params),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let run = runner.run(p).unwrap();
                assert_eq!(run.count(NodeStatus::Cached), FILES);
            })
        });
    }
    g.finish();
}

criterion::criterion_group!(benches, large_file, many_files);
criterion::criterion_main!(benches);
