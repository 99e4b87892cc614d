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
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(
                store.try_lock(&key).is_none(),
                "another thread took a held key"
            );
            // Another key is free.
            assert!(store.try_lock(&other).is_some());
        });
    });
    // Dropped on another thread than the one that took it, it is released all the same.
    std::thread::scope(|s| {
        s.spawn(move || drop(held));
    });
    std::thread::scope(|s| {
        s.spawn(|| assert!(store.try_lock(&key).is_some(), "the key stayed locked"));
    });
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
}
