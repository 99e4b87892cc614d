//! Clearing the store: `clean` removes every entry, `gc` removes old run records and the
//! entries that no kept record refers to. Neither removes an entry or a lock file that
//! another process holds the lock of, nor what a live writer is writing.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cache::{NODES, Store, StoreError, writer_gone};
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
        write!(
            f,
            "removed {} entries and {} run records, {} bytes freed",
            self.entries, self.runs, self.bytes
        )?;
        if self.interrupted > 0 {
            write!(f, "; {} interrupted runs", self.interrupted)?;
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

/// The lock file at `path`, locked, if no other process holds it.
fn try_lock(path: &Path) -> Option<File> {
    let file = File::options().write(true).open(path).ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Removes from `data_dir` every entry for which `keep(task, key)` is false (unless its
/// key's lock is held), temporaries whose writer is gone or that are stale (of entries, and
/// of the files that record each node's last entry), and stale lock files no one holds;
/// `log_dir`, if it is inside, is left alone.
pub(crate) fn sweep(
    data_dir: &Path,
    log_dir: Option<&Path>,
    keep: impl Fn(&str, &str) -> bool,
    freed: &mut Freed,
) -> Result<()> {
    let Ok(tasks) = fs::read_dir(data_dir) else {
        return Ok(());
    };
    let store = Store::new(data_dir.to_owned());
    for task_dir in tasks.flatten() {
        let path = task_dir.path();
        if !path.is_dir() || Some(path.as_path()) == log_dir {
            continue;
        }
        let task = task_dir.file_name().to_string_lossy().into_owned();
        if task == ".locks" {
            for lock in fs::read_dir(&path).into_iter().flatten().flatten() {
                let name = lock.file_name().to_string_lossy().into_owned();
                let unused = is_stale(&lock.path())
                    || name.strip_suffix(".lock").is_some_and(|k| !is_key(k));
                // Unlinked while locked here: a process that opened it before takes the
                // lock after this one, sees that the path names another file, and opens it
                // again.
                if unused && let Some(_held) = try_lock(&lock.path()) {
                    let _ = fs::remove_file(lock.path());
                }
            }
            continue;
        }
        for entry in fs::read_dir(&path).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == NODES {
                // Each node's last entry, written atomically: a crash may leave a temporary.
                for file in fs::read_dir(entry.path()).into_iter().flatten().flatten() {
                    let stray = file.file_name().to_string_lossy().starts_with(".tmp-");
                    if stray && is_stale(&file.path()) {
                        let _ = fs::remove_file(file.path());
                    }
                }
                continue;
            }
            let temporary = name.starts_with(".tmp-") || name.starts_with(".trash-");
            if temporary && (writer_gone(&name) || is_stale(&entry.path())) {
                remove(&entry.path(), freed)?;
            } else if is_key(&name) && !keep(&task, &name) {
                // A process that holds the key's lock is writing or replacing the entry.
                if let Some(_held) = store.try_lock(&name) {
                    remove(&entry.path(), freed)?;
                    freed.entries += 1;
                }
            }
        }
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
        &mut freed,
    )?;
    Ok(freed)
}
