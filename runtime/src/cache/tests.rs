//! The store's files and temporaries.

use super::files::host_tag;
use super::*;

#[test]
fn writing_atomically_replaces_the_file_and_leaves_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    write_atomically(&path, b"first").unwrap();
    write_atomically(&path, b"second").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.json"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Created as `fs::write` creates a file: 0o666 less the umask, whatever it is.
        let plain = dir.path().join("plain");
        fs::write(&plain, b"").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&plain));
    }
}

#[cfg(unix)]
#[test]
fn only_temporaries_whose_writer_is_gone_are_discarded() {
    use std::process::{Child, Command, Stdio};

    /// Killed if the test fails first.
    struct Live(Child);
    impl Drop for Live {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let key = "ab".repeat(32);
    let mut live = Live(
        Command::new("sleep")
            .arg("1000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut dead = Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let temporary = |pid: u32| {
        let path =
            dir.path()
                .join("task")
                .join(format!(".tmp-{}-{}-{pid}-0", &key[..16], host_tag()));
        fs::create_dir_all(path.join(WORK)).unwrap();
        path
    };
    let (of_live, of_dead) = (temporary(live.0.id()), temporary(dead.id()));
    // Written elsewhere: another host's process ids say nothing here.
    let elsewhere =
        dir.path()
            .join("task")
            .join(format!(".tmp-{}-00000000-{}-0", &key[..16], dead.id()));
    fs::create_dir_all(&elsewhere).unwrap();

    let pending = store.begin("task", &key, true).unwrap();
    fs::create_dir_all(pending.work_dir()).unwrap();
    assert!(!of_dead.exists());
    assert!(of_live.exists() && elsewhere.exists() && pending.tmp.exists());

    live.0.kill().unwrap();
    live.0.wait().unwrap();
    store.discard_unfinished("task", &key);
    assert!(!of_live.exists());
    // This process's own temporary, and the other host's, stay.
    assert!(pending.tmp.exists() && elsewhere.exists());

    // A run sweeps a task's directory before its first new entry only: listing it before
    // every entry would cost a run in proportion to entries times nodes.
    let later = temporary(dead.id()).with_file_name(format!(
        ".tmp-{}-{}-{}-1",
        "cd".repeat(8),
        host_tag(),
        dead.id()
    ));
    fs::create_dir_all(&later).unwrap();
    let other_key = "cd".repeat(32);
    store.discard(store.begin("task", &other_key, true).unwrap());
    assert!(later.exists(), "the same run listed the directory again");
    store.new_run();
    store.discard(store.begin("task", &other_key, true).unwrap());
    assert!(!later.exists(), "the next run did not sweep the directory");
}

#[test]
fn a_failed_write_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("run.json");
    let error = write_atomically(&path, b"x").unwrap_err();
    assert_eq!(error.path(), path);
    assert_eq!(
        error.to_string(),
        format!("cannot write `{}`", path.display())
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_key_lock_excludes_other_threads_until_it_is_dropped_wherever() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let key = "ab".repeat(32);
    let other = "cd".repeat(32);
    let held = store.lock(&key).unwrap();
    assert!(
        !free_elsewhere(&store, &key),
        "another thread took a held key"
    );
    // Another key is free.
    assert!(free_elsewhere(&store, &other));
    // Dropped on another thread than the one that took it, it is released all the same.
    std::thread::scope(|s| {
        s.spawn(move || drop(held));
    });
    assert!(free_elsewhere(&store, &key), "the key stayed locked");
}

/// Whether another thread of the process can take the lock of `key` now.
fn free_elsewhere(store: &Store, key: &str) -> bool {
    std::thread::scope(|s| s.spawn(|| store.try_lock(key).is_some()).join().unwrap())
}

/// A thread that waits for a key another thread of the process holds takes it once that
/// one is released, never before; a key a thread takes twice stays locked until both of its
/// locks are dropped.
#[test]
fn a_key_lock_waited_for_within_a_process_is_taken_only_once_released() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let key = "ab".repeat(32);
    let held = store.lock(&key).unwrap();
    let released = AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let taken = store.lock(&key).unwrap();
            assert!(released.load(SeqCst), "taken while another thread held it");
            taken
        });
        std::thread::sleep(Duration::from_millis(50));
        released.store(true, SeqCst);
        drop(held);
        drop(waiter.join().unwrap());
    });

    let first = store.lock(&key).unwrap();
    let second = store.lock(&key).unwrap();
    drop(first);
    assert!(
        !free_elsewhere(&store, &key),
        "released while a lock of it was alive"
    );
    drop(second);
    assert!(free_elsewhere(&store, &key), "the key stayed locked");

    // Two keys of one lock (the same first 63 bits) exclude each other within the process
    // as across processes: the lock is not given to a second thread, and then released
    // under the first.
    let alike = format!("{}{}", &key[..16], "0".repeat(48));
    let held = store.lock(&key).unwrap();
    assert!(
        !free_elsewhere(&store, &alike),
        "another thread took a held lock"
    );
    drop(held);
}

/// However many threads take keys' locks, the process opens each of a store's lock files
/// once: a run of hundreds of jobs does not run out of file descriptors.
#[cfg(target_os = "linux")]
#[test]
fn a_process_opens_each_lock_file_once_whatever_its_threads() {
    use std::sync::{RwLock, mpsc};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let locks = dir.path().canonicalize().unwrap().join(STORE_DIR);
    let threads = 64;
    // Each thread holds its locks until the descriptors are counted.
    let counting = RwLock::new(());
    let (taken, locked) = mpsc::channel();
    let open = std::thread::scope(|s| {
        let counted = counting.write().unwrap();
        for thread in 0..threads {
            let (store, counting, taken) = (&store, &counting, taken.clone());
            s.spawn(move || {
                // A key in each of the four files (a key's lock is its first 63 bits).
                let held: Vec<_> = ["0", "4", "8", "c"]
                    .iter()
                    .map(|first| {
                        let key = format!("{first}{thread:014x}{}", "0".repeat(49));
                        store.lock(&key).unwrap()
                    })
                    .collect();
                taken.send(()).unwrap();
                drop(counting.read());
                drop(held);
            });
        }
        for _ in 0..threads {
            locked
                .recv_timeout(Duration::from_secs(60))
                .expect("every thread took its keys' locks");
        }
        let open = fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| fs::read_link(fd.unwrap().path()).ok())
            .filter(|target| target.starts_with(&locks))
            .count();
        drop(counted);
        open
    });
    // Four for the keys' files, where each thread opened its own before; a few more only
    // if other tests' stores pushed this one out of the files the process keeps meanwhile.
    assert!(
        (4..threads).contains(&open),
        "{open} descriptors of the lock files, with {threads} threads"
    );
}

/// A claim that does not become a lock (the lock file cannot be opened) is withdrawn: no
/// other thread waits for it.
#[test]
fn a_lock_that_cannot_be_taken_leaves_no_claim() {
    let dir = tempfile::tempdir().unwrap();
    // The store's directory is a file: its lock files cannot be created.
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"").unwrap();
    let key = "ab".repeat(32);
    assert!(lock::lock(&not_a_dir, &key).is_err());
    assert_eq!(lock::claims(&not_a_dir), 0);
    assert!(lock::try_lock(&not_a_dir, &key).is_none());
    assert_eq!(lock::claims(&not_a_dir), 0);
}

/// Keys' locks are spread over files by the key's first two bits, so that no file's list
/// of locks grows long; another name's lock (the index's creation) stays in `locks`, where
/// an older pipewright takes it too.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_keys_lock_is_a_byte_of_the_file_of_its_first_two_bits() {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let locks = dir.path().join(STORE_DIR);
    // Whether another open file description finds a lock anywhere in `name`.
    let locked = |name: &str| {
        let Ok(file) = fs::File::options().write(true).open(locks.join(name)) else {
            return false;
        };
        let mut range = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&file, FcntlArg::F_OFD_GETLK(&mut range)).unwrap();
        range.l_type != libc::F_UNLCK as libc::c_short
    };
    let key = "ab".repeat(32);
    let held = store.lock(&key).unwrap();
    // `a` is `1010`: the key's first two bits are 2.
    assert!(locked("locks-2"));
    assert!(!locked("locks") && !locked("locks-3"));
    assert!(lock::held_here(store.dir(), &key));
    std::thread::scope(|s| {
        s.spawn(|| assert!(!lock::held_here(store.dir(), &key)));
    });
    // Taken again by the thread that holds it: another process still finds it locked
    // once either of the two is dropped, and free once both are.
    let again = store.lock(&key).unwrap();
    drop(held);
    assert!(locked("locks-2"));
    drop(again);
    assert!(!locked("locks-2"));
    assert!(!lock::held_here(store.dir(), &key));
    let creating = lock::lock(store.dir(), "creating the index").unwrap();
    assert!(locked("locks"));
    drop(creating);
}

/// What the store records of an entry of task `task` under `key`, for `output`.
fn meta(task: &str, node: &str, key: &str, output: &[u8]) -> EntryMeta {
    EntryMeta {
        format: ENTRY_FORMAT,
        task: task.to_owned(),
        node: node.to_owned(),
        key: key.to_owned(),
        codec: "bincode".to_owned(),
        fingerprint: "00".repeat(32),
        version: None,
        params: serde_json::Value::Null,
        param_digests: Vec::new(),
        helpers: Vec::new(),
        input_files: Vec::new(),
        inputs: Vec::new(),
        output_digest: blake3::hash(output).to_hex().to_string(),
        output_size: output.len() as u64,
        duration_secs: 0.0,
        created: String::new(),
        pipewright: String::new(),
    }
}

#[test]
fn commits_of_many_threads_are_each_in_the_index_when_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    store.prepare().unwrap();
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let store = store.clone();
            let root = dir.path().to_owned();
            s.spawn(move || {
                // Another process's view: its own connection, which remembers nothing.
                let other = Store::new(root);
                for i in 0..40u32 {
                    let key = blake3::hash(&[t.to_le_bytes(), i.to_le_bytes()].concat())
                        .to_hex()
                        .to_string();
                    let output = format!("{t}-{i}").into_bytes();
                    let _lock = store.lock(&key).unwrap();
                    let pending = store.begin("task", &key, true).unwrap();
                    let node = format!("n{t}-{i}");
                    store
                        .commit(pending, &meta("task", &node, &key, &output), &output, &[])
                        .unwrap();
                    match other.lookup_fresh("task", &key) {
                        Lookup::Present(entry) => {
                            assert_eq!(other.read_verified(&entry).unwrap().bytes, output);
                        }
                        found => panic!("{node} is not in the index once committed: {found:?}"),
                    }
                }
            });
        }
    });
    let (sound, damaged) = store.entries().unwrap();
    assert_eq!((sound.len(), damaged.len()), (320, 0));
}

/// Commits `output` as the entry of node `node` of task `t` under `key` through `store`.
fn commit_entry(store: &Store, key: &str, node: &str, output: &[u8]) {
    let _lock = store.lock(key).unwrap();
    let pending = store.begin("t", key, false).unwrap();
    store
        .commit(pending, &meta("t", node, key, output), output, &[])
        .unwrap();
}

#[test]
fn entries_read_in_parts_at_the_start_of_a_run_leave_later_commits_to_fresh_lookups() {
    let dir = tempfile::tempdir().unwrap();
    // Another process: a connection of its own.
    let other = Store::new(dir.path().to_owned());
    other.prepare().unwrap();
    let key = |i: u32| blake3::hash(&i.to_le_bytes()).to_hex().to_string();
    for i in 0..300 {
        commit_entry(&other, &key(i), &format!("n{i}"), &i.to_le_bytes());
    }
    // One row that does not match its checksum.
    let conn = rusqlite::Connection::open(dir.path().join(STORE_DIR).join(index::INDEX)).unwrap();
    let damaged = key(7);
    conn.execute(
        "UPDATE entries SET size = size + 1 WHERE key = ?1",
        [crate::text::parse_hex_bytes(&damaged).unwrap()],
    )
    .unwrap();

    for parts in [1, 2, 3] {
        let store = Store::new(dir.path().to_owned());
        store.prepare().unwrap();
        store.read_last_entries(&["t"], parts);
        // Committed by the other process after the entries were read.
        let late = key(1_000 + parts as u32);
        commit_entry(&other, &late, &format!("late{parts}"), b"late");
        let replaced = key(5);
        commit_entry(&other, &replaced, "n5", format!("again{parts}").as_bytes());

        for i in (0..300).filter(|i| *i != 7 && *i != 5) {
            match store.look("t", &key(i), Look::Remembered) {
                Lookup::Present(entry) => assert_eq!(entry.node, format!("n{i}")),
                found => panic!("n{i} was not read in {parts} parts: {found:?}"),
            }
        }
        assert!(matches!(
            store.look("t", &damaged, Look::Remembered),
            Lookup::Missing
        ));
        assert!(matches!(
            store.look("t", &damaged, Look::Fresh),
            Lookup::Damaged(_)
        ));
        // The task's entries were read: what came after is not looked for among them, but
        // in the index, when the key is looked up afresh.
        assert!(matches!(
            store.look("t", &late, Look::Remembered),
            Lookup::Missing
        ));
        match store.look("t", &late, Look::Fresh) {
            Lookup::Present(entry) => {
                assert_eq!(store.read_verified(&entry).unwrap().bytes, b"late");
            }
            found => panic!("the late entry is not found afresh: {found:?}"),
        }
        // An entry replaced since it was read is read as the replacement.
        let Lookup::Present(seen) = store.look("t", &replaced, Look::Remembered) else {
            panic!("n5 was not read");
        };
        let read = store.read_verified(&seen).unwrap();
        assert_eq!(read.bytes, format!("again{parts}").as_bytes());
        assert!(read.replaced.is_some());
    }
}

/// The node whose rows [`Store::put_rows`] panics on, in tests.
pub(super) const PANICS: &str = "panics on commit";

/// Queues the entry of node `node` of task `t` under `key` for `output` through `store`;
/// its ticket.
fn queue_entry(store: &Store, key: &str, node: &str, output: &[u8]) -> Ticket {
    let pending = store.begin("t", key, false).unwrap();
    let meta = meta("t", node, key, output);
    let (_, ticket) = store
        .commit_queued(pending, &meta, output, &[], None, None)
        .unwrap();
    ticket.expect("a row without a directory is queued")
}

/// What another process finds under `key` in the store of `dir`.
fn found(dir: &Path, key: &str) -> Option<Vec<u8>> {
    let other = Store::new(dir.to_owned());
    match other.lookup_fresh("t", key) {
        Lookup::Present(entry) => Some(other.read_verified(&entry).unwrap().bytes),
        Lookup::Missing => None,
        Lookup::Damaged(why) => panic!("damaged: {why}"),
    }
}

fn key_of(i: u32) -> String {
    blake3::hash(&i.to_le_bytes()).to_hex().to_string()
}

#[test]
fn a_failed_batch_leaves_the_rows_queued_after_it_to_be_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    store.prepare().unwrap();
    // Another connection makes the index refuse the rows of one node.
    let conn = rusqlite::Connection::open(dir.path().join(STORE_DIR).join(index::INDEX)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.node = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .unwrap();
    let refused = queue_entry(&store, &key_of(0), "refused", b"no");
    let failed = store.failures(&[refused]);
    let why = failed
        .get(&refused)
        .expect("the refused row failed")
        .to_string();
    assert!(why.starts_with("cannot write the store index"), "{why}");
    assert_eq!(found(dir.path(), &key_of(0)), None);

    // A row queued after the failure, of another node, is committed as any other.
    let later = queue_entry(&store, &key_of(1), "later", b"yes");
    let failed = store.failures(&[later]);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(found(dir.path(), &key_of(1)).as_deref(), Some(&b"yes"[..]));
}

/// A store in `dir` whose queued rows wait for a flush, to be committed in one batch: no
/// committer thread is started.
fn store_without_committer(dir: &Path) -> Store {
    let store = Store::new(dir.to_owned());
    store.prepare().unwrap();
    store.queue().committer = true;
    store
}

#[test]
fn a_panic_while_committing_fails_the_batch_and_leaves_the_queue_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_without_committer(dir.path());
    let panics = queue_entry(&store, &key_of(0), PANICS, b"no");
    let beside = queue_entry(&store, &key_of(1), "beside", b"no");
    let failed = store.failures(&[panics, beside]);
    for ticket in [panics, beside] {
        let why = failed.get(&ticket).map(ToString::to_string);
        assert_eq!(
            why.as_deref(),
            Some("committing to the store index panicked")
        );
    }
    assert_eq!(found(dir.path(), &key_of(1)), None);
    // Their keys are free again, and the rows queued next are committed.
    assert!(store.try_lock(&key_of(0)).is_some());
    assert!(store.try_lock(&key_of(1)).is_some());
    let later = queue_entry(&store, &key_of(2), "later", b"yes");
    let failed = store.failures(&[later]);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(found(dir.path(), &key_of(2)).as_deref(), Some(&b"yes"[..]));
}

/// Hears which rows were committed.
#[derive(Default)]
struct Heard(Mutex<Vec<Vec<u32>>>);

impl Committed for Heard {
    fn committed(&self, rows: &[u32]) {
        self.0.lock().unwrap().push(rows.to_vec());
    }
}

#[test]
fn who_asked_hears_of_each_queued_row_once_it_is_committed_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_without_committer(dir.path());
    let (first, second) = (Arc::new(Heard::default()), Arc::new(Heard::default()));
    let queue = |i: u32, node: &str, to: &Arc<Heard>| {
        let key = key_of(i);
        let pending = store.begin("t", &key, false).unwrap();
        let note = Note {
            to: to.clone(),
            row: i,
        };
        store
            .commit_queued(
                pending,
                &meta("t", node, &key, b"x"),
                b"x",
                &[],
                None,
                Some(note),
            )
            .unwrap()
            .1
            .unwrap()
    };
    let tickets = [
        queue(0, "a", &first),
        queue(1, "b", &first),
        queue(2, "c", &second),
        queue(3, "d", &first),
    ];
    assert!(first.0.lock().unwrap().is_empty(), "told before the commit");
    assert!(store.failures(&tickets).is_empty());
    assert_eq!(*first.0.lock().unwrap(), [vec![0, 1], vec![3]]);
    assert_eq!(*second.0.lock().unwrap(), [vec![2]]);

    // A row whose commit fails is not told of.
    let conn = rusqlite::Connection::open(dir.path().join(STORE_DIR).join(index::INDEX)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.node = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .unwrap();
    let refused = queue(4, "refused", &second);
    assert_eq!(store.failures(&[refused]).len(), 1);
    assert_eq!(*second.0.lock().unwrap(), [vec![2]]);
}

#[test]
fn a_large_output_written_beside_its_digest_is_removed_with_its_discarded_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    let key = "cd".repeat(32);
    let output: Vec<u8> = (0..(5 << 20) as u32).map(|i| (i % 251) as u8).collect();
    let mut pending = store.begin("task", &key, false).unwrap();
    let digest = store
        .write_output_while(&mut pending, &key, &output, || {
            crate::digest::digest_beside_one(&output)
        })
        .unwrap();
    assert_eq!(digest, blake3::hash(&output));
    let files = || -> Vec<PathBuf> {
        fs::read_dir(dir.path().join("task"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    // Written whole to a temporary, which no reader takes for an entry's output.
    let written = files();
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(".tmp-"), "{name}");
    assert_eq!(fs::read(&written[0]).unwrap(), output);
    store.discard(pending);
    assert_eq!(files(), Vec::<PathBuf>::new());

    // A small output is left to the commit: nothing is written beside its digest.
    let mut pending = store.begin("task", &key, false).unwrap();
    let small = vec![1u8; 100];
    let digest = store
        .write_output_while(&mut pending, &key, &small, || blake3::hash(&small))
        .unwrap();
    assert_eq!(digest, blake3::hash(&small));
    assert_eq!(files(), Vec::<PathBuf>::new());
    store.discard(pending);

    // A digest that panics, beside the writer or after it, leaves no temporary behind.
    for len in [5 << 20, 200 << 10] {
        let mut pending = store.begin("task", &key, false).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write_output_while(&mut pending, &key, &output[..len], || panic!("digest"))
        }));
        assert!(panicked.is_err());
        assert_eq!(files(), Vec::<PathBuf>::new(), "{len} bytes");
        store.discard(pending);
    }
}

#[test]
fn a_large_output_decoded_beside_its_digest_is_never_returned_when_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    store.prepare().unwrap();
    let key = key_of(7);
    let output: Vec<u8> = (0..5u32 << 20).map(|i| (i % 251) as u8).collect();
    assert!(output.len() >= DECODE_BESIDE_MIN);
    commit_entry(&store, &key, "big", &output);
    let entry = match store.lookup_fresh("t", &key) {
        Lookup::Present(entry) => entry,
        found => panic!("not found: {found:?}"),
    };
    let (value, replaced) = store
        .read_decoded(&entry, |bytes, _| Ok(bytes.to_vec()))
        .unwrap();
    assert!(value == output && replaced.is_none());
    // A decoder that panics on sound bytes panics, as it would without the store.
    let sound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.read_decoded(&entry, |_, _| -> Result<(), String> { panic!("a bug") })
    }));
    assert!(sound.is_err());

    // One byte changed in the file: whatever decoding makes of it is never returned, and a
    // decoder that panics on it finds the entry damaged.
    let mut damaged = output.clone();
    damaged[3 << 20] ^= 1;
    fs::write(store.output_file("t", &key), &damaged).unwrap();
    let read = store.read_decoded(&entry, |bytes, _| Ok(bytes.to_vec()));
    assert_eq!(read.unwrap_err(), DIGEST_MISMATCH);
    let read = store.read_decoded(&entry, |_, _| -> Result<(), String> { panic!("garbage") });
    assert_eq!(read.unwrap_err(), DIGEST_MISMATCH);
}

#[test]
fn a_commit_waiting_for_another_processs_write_leaves_lookups_going() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_owned());
    store.prepare().unwrap();
    commit_entry(&store, &key_of(1), "before", b"one");
    // Another process is writing to the index.
    let other = rusqlite::Connection::open(dir.path().join(STORE_DIR).join(index::INDEX)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let ticket = queue_entry(&store, &key_of(2), "queued", b"two");
    std::thread::scope(|s| {
        let flushing = s.spawn(|| store.flush());
        while !store.queue().committing {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The commit waits for the other write; a lookup meanwhile does not wait for it.
        match store.lookup_fresh("t", &key_of(1)) {
            Lookup::Present(entry) => assert_eq!(entry.node, "before"),
            found => panic!("not found: {found:?}"),
        }
        assert!(
            store.queue().committing,
            "the lookup returned only once the commit had given up"
        );
        other.execute_batch("ROLLBACK").unwrap();
        flushing.join().unwrap();
    });
    assert!(store.failures(&[ticket]).is_empty());
    assert_eq!(found(dir.path(), &key_of(2)), Some(b"two".to_vec()));
}
