//! Clearing the store: `clean` removes every entry, `gc` removes old run records and the
//! entries that no kept record refers to. Neither removes an entry whose lock another
//! process holds, nor what a live writer is writing.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cache::{
    Entry, Lookup, OLD_LOCKS, OLD_NODES, Place, STORE_DIR, Store, StoreError, writer_gone,
};
use crate::error::Result;
use crate::record::schema::{RunRecord, is_run_dir};

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Freed {
    /// Run records removed.
    pub runs: usize,
    /// Cache entries removed.
    pub entries: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Runs recorded as running whose process is gone, now recorded as interrupted.
    pub interrupted: usize,
}

impl std::fmt::Display for Freed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "removed {} {} and {} {}, {} {} freed",
            self.entries,
            plural(self.entries, "entry", "entries"),
            self.runs,
            plural(self.runs, "run record", "run records"),
            self.bytes,
            if self.bytes == 1 { "byte" } else { "bytes" }
        )?;
        if self.interrupted > 0 {
            let runs = if self.interrupted == 1 { "run" } else { "runs" };
            write!(f, "; {} interrupted {runs}", self.interrupted)?;
        }
        Ok(())
    }
}

/// Temporaries older than this belong to no running process, wherever it ran.
const STALE: Duration = Duration::from_secs(3600);

/// The bytes under `path`.
fn size(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

fn remove(path: &Path, freed: &mut Freed) -> Result<()> {
    let bytes = size(path);
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.map_err(|e| StoreError::new("cannot remove", path, e))?;
    freed.bytes += bytes;
    Ok(())
}

fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE)
}

/// Removes from `data_dir` every entry for which `keep(task, key)` is false (unless its
/// key's lock is held), the files of no entry (what a writer killed before it committed
/// left, and the entries of an older store format), and temporaries whose writer is gone or
/// that are stale; `log_dir`, if it is inside, is left alone. Where `clean` and the index
/// cannot be read (it is damaged, or of another format), the index itself is removed.
pub(crate) fn sweep(
    data_dir: &Path,
    log_dir: Option<&Path>,
    keep: impl Fn(&str, &str) -> bool,
    clean: bool,
    freed: &mut Freed,
) -> Result<()> {
    if !data_dir.is_dir() {
        return Ok(());
    }
    let store = Store::new(data_dir.to_owned());
    // What stays in the index, by task and key: their files stay too.
    let mut kept: HashMap<(String, String), Entry> = HashMap::new();
    match store.entries() {
        Ok((sound, damaged)) => {
            for entry in damaged {
                if store.remove_unlocked(&entry.task, &entry.key) {
                    freed.entries += 1;
                }
            }
            for entry in sound {
                let at = (entry.task.clone(), entry.key.clone());
                if keep(&entry.task, &entry.key) {
                    kept.insert(at, entry);
                    continue;
                }
                let work = if entry.work {
                    size(&store.entry_dir(&entry.task, &entry.key))
                } else {
                    0
                };
                if store.remove_unlocked(&entry.task, &entry.key) {
                    freed.entries += 1;
                    freed.bytes += entry.size + work;
                } else {
                    kept.insert(at, entry);
                }
            }
        }
        Err(_) if clean => {
            let dir = data_dir.join(STORE_DIR);
            for name in ["index.db", "index.db-wal", "index.db-shm"] {
                let path = dir.join(name);
                if path.exists() {
                    remove(&path, freed)?;
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    let Ok(tasks) = fs::read_dir(data_dir) else {
        return Ok(());
    };
    for task_dir in tasks.flatten() {
        let path = task_dir.path();
        let task = task_dir.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || Some(path.as_path()) == log_dir || task == STORE_DIR {
            continue;
        }
        if task == OLD_LOCKS {
            // An older format's lock files, one per key: no process of this version takes them.
            remove(&path, freed)?;
            continue;
        }
        for file in fs::read_dir(&path).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let temporary = name.starts_with(".tmp-") || name.starts_with(".trash-");
            if temporary {
                if writer_gone(&name) || is_stale(&file.path()) {
                    remove(&file.path(), freed)?;
                }
                continue;
            }
            if name == OLD_NODES {
                remove(&file.path(), freed)?;
                continue;
            }
            let (key, is_output) = match name.strip_suffix(".bin") {
                Some(key) => (key, true),
                None => (name.as_str(), false),
            };
            if !is_key(key) {
                continue;
            }
            let wanted = kept.get(&(task.clone(), key.to_owned())).is_some_and(|e| {
                if is_output {
                    e.place == Place::File
                } else {
                    e.work
                }
            });
            if wanted {
                continue;
            }
            // A writer holds the key's lock from its first file to its row; one that
            // committed since the index was read has a row now.
            if let Some(_held) = store.try_lock(key) {
                let committed = matches!(store.lookup(&task, key), Lookup::Present(e)
                    if if is_output { e.place == Place::File } else { e.work });
                if !committed {
                    let old_entry = !is_output && file.path().join("meta.json").exists();
                    remove(&file.path(), freed)?;
                    freed.entries += usize::from(old_entry);
                }
            }
        }
    }
    let old_locks = data_dir.join(OLD_LOCKS);
    if old_locks.is_dir() {
        remove(&old_locks, freed)?;
    }
    Ok(())
}

/// The run records under `log_dir`, newest first.
pub(crate) fn runs(log_dir: &Path) -> Vec<(std::path::PathBuf, Option<RunRecord>)> {
    let mut runs: Vec<_> = fs::read_dir(log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_run_dir(p))
        .map(|p| {
            let record = RunRecord::read(&p).ok();
            (p, record)
        })
        .collect();
    runs.sort_by(|(a, ra), (b, rb)| {
        let started = |r: &Option<RunRecord>| r.as_ref().map(|r| r.started.clone());
        started(rb).cmp(&started(ra)).then_with(|| b.cmp(a))
    });
    runs
}

/// Keeps the newest `keep_runs` records under `log_dir`, removes the others, and removes
/// every entry of `data_dir` that no kept record refers to. A run still in progress keeps
/// its record and every entry of its tasks (its record names its entries only at its end);
/// a run recorded as running whose process is gone is recorded as interrupted.
pub(crate) fn gc(data_dir: &Path, log_dir: &Path, keep_runs: usize) -> Result<Freed> {
    let mut freed = Freed::default();
    let mut referenced: HashSet<(String, String)> = HashSet::new();
    let mut in_progress: HashSet<String> = HashSet::new();
    let mut kept = 0;
    for (path, mut record) in runs(log_dir) {
        if let Some(record) = &mut record
            && record.status == "running"
        {
            if record.interrupted() {
                record.mark_interrupted(&path)?;
                freed.interrupted += 1;
            } else {
                in_progress.extend(record.nodes.iter().map(|n| n.task.clone()));
                continue;
            }
        }
        if kept < keep_runs {
            kept += 1;
            for node in record.iter().flat_map(|r| &r.nodes) {
                if let Some(key) = &node.key {
                    referenced.insert((node.task.clone(), key.clone()));
                }
                // A mapped node's entries are its branches'.
                for branch in &node.branches {
                    if let Some(key) = &branch.key {
                        referenced.insert((node.task.clone(), key.clone()));
                    }
                }
            }
        } else {
            remove(&path, &mut freed)?;
            freed.runs += 1;
        }
    }
    sweep(
        data_dir,
        Some(log_dir),
        |task, key| {
            in_progress.contains(task) || referenced.contains(&(task.to_owned(), key.to_owned()))
        },
        false,
        &mut freed,
    )?;
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::Freed;

    #[test]
    fn what_was_freed_reads_in_the_singular_for_one() {
        let one = Freed {
            runs: 1,
            entries: 1,
            bytes: 1,
            interrupted: 1,
        };
        assert_eq!(
            one.to_string(),
            "removed 1 entry and 1 run record, 1 byte freed; 1 interrupted run"
        );
        let two = Freed {
            runs: 2,
            entries: 2,
            bytes: 2,
            interrupted: 2,
        };
        assert_eq!(
            two.to_string(),
            "removed 2 entries and 2 run records, 2 bytes freed; 2 interrupted runs"
        );
    }
}
