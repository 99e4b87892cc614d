//! The lock of one key, which keeps two processes (or two threads) from computing one entry
//! at once. Within a process, the key's lock is claimed in a table before the system's lock
//! is taken, so two threads never take one lock at once. On Linux every key is one byte
//! of one of four files, `DATA/.store/locks-0` to `locks-3` by the first two bits of the
//! key, locked as an open file description's record lock: no file per key, and the system
//! releases it when its holder dies. The system keeps a file's record locks in one list,
//! which it walks on every lock and unlock; with hundreds of keys locked at once (rows
//! waiting to be committed), spread over several files, each list is shorter. A process
//! opens each file once, whatever its number of threads. Elsewhere each key has a lock file
//! of its own.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

use super::StoreError;

/// The key locks this process holds or is taking, and the condition its threads wait on for
/// a lock another of them holds.
static HELD: LazyLock<(Mutex<Table>, Condvar)> = LazyLock::new(Default::default);

/// The locks of this process, by data directory and lock, and how many of its threads wait
/// for one (no other thread is woken when a lock is released and none waits).
#[derive(Default)]
struct Table {
    locks: HashMap<PathBuf, HashMap<imp::Place, Claim>>,
    waiting: usize,
}

/// A lock of this process: the thread that claimed it, how many of its [`KeyLock`]s are
/// alive (a thread that holds a lock may take it again, for the same key or another key of
/// the same lock), and the system's lock, once taken.
#[derive(Debug)]
struct Claim {
    thread: ThreadId,
    count: usize,
    held: Option<imp::Held>,
}

fn locked_table() -> MutexGuard<'static, Table> {
    HELD.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock of one key, from [`lock`] or [`try_lock`]; released when the last of a key's
/// locks in this process is dropped, on whichever thread.
#[derive(Debug)]
pub(crate) struct KeyLock {
    dir: PathBuf,
    place: imp::Place,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let mut table = locked_table();
        let Some(keys) = table.locks.get_mut(&self.dir) else {
            return;
        };
        let Some(claim) = keys.get_mut(&self.place) else {
            return;
        };
        claim.count -= 1;
        if claim.count == 0 {
            withdraw(table, &self.dir, &self.place);
        }
    }
}

/// Removes the claim at `place` of `dir` from `table`, releasing its system lock if it has
/// one, and wakes the threads that wait for a lock, if any. The system's lock is released
/// before the claim, under the table's mutex: a thread that claims the lock next takes the
/// system's lock after this one let it go.
fn withdraw(mut table: MutexGuard<'_, Table>, dir: &Path, place: &imp::Place) {
    if let Some(keys) = table.locks.get_mut(dir) {
        keys.remove(place);
        if keys.is_empty() {
            table.locks.remove(dir);
        }
    }
    let waiting = table.waiting > 0;
    drop(table);
    if waiting {
        HELD.1.notify_all();
    }
}

/// Whether this thread holds the lock of `key` in the store directory `dir`.
pub(crate) fn held_here(dir: &Path, key: &str) -> bool {
    let me = std::thread::current().id();
    locked_table()
        .locks
        .get(dir)
        .and_then(|keys| keys.get(&imp::place(key)))
        .is_some_and(|claim| claim.thread == me && claim.held.is_some())
}

/// How many locks of the store directory `dir` this process holds or is taking.
#[cfg(test)]
pub(crate) fn claims(dir: &Path) -> usize {
    locked_table().locks.get(dir).map_or(0, HashMap::len)
}

/// Forgets the lock files this process holds open, so that each is opened again at its
/// path: a store's directory was replaced.
pub(crate) fn reopen() {
    imp::reopen();
}

/// Takes the lock of `key` in the store directory `dir`, waiting while another process
/// (or thread) holds it.
pub(crate) fn lock(dir: &Path, key: &str) -> Result<KeyLock, StoreError> {
    match take(dir, key, true)? {
        Some(lock) => Ok(lock),
        // A lock that waits is always taken.
        None => Err(StoreError::new(
            "cannot take a key's lock in",
            dir,
            std::io::Error::from(std::io::ErrorKind::WouldBlock),
        )),
    }
}

/// The lock of `key`, if no other process (or thread) holds it.
pub(crate) fn try_lock(dir: &Path, key: &str) -> Option<KeyLock> {
    take(dir, key, false).ok().flatten()
}

/// Claims the lock of `key` in this process (waiting, if `wait`, while another thread holds
/// it), then takes the system's lock; `None` if `wait` is false and another holds it.
fn take(dir: &Path, key: &str, wait: bool) -> Result<Option<KeyLock>, StoreError> {
    let me = std::thread::current().id();
    let place = imp::place(key);
    let lock = || KeyLock {
        dir: dir.to_owned(),
        place: place.clone(),
    };
    let mut table = locked_table();
    loop {
        let keys = match table.locks.get_mut(dir) {
            Some(keys) => keys,
            None => table.locks.entry(dir.to_owned()).or_default(),
        };
        match keys.get_mut(&place) {
            None => {
                keys.insert(
                    place.clone(),
                    Claim {
                        thread: me,
                        count: 1,
                        held: None,
                    },
                );
                break;
            }
            // This thread holds it already (a claim without the system's lock is this
            // thread's only while it takes that lock, so it is not here).
            Some(claim) if claim.thread == me && claim.held.is_some() => {
                claim.count += 1;
                return Ok(Some(lock()));
            }
            Some(_) if !wait => return Ok(None),
            Some(_) => {
                table.waiting += 1;
                table = HELD.1.wait(table).unwrap_or_else(PoisonError::into_inner);
                table.waiting -= 1;
            }
        }
    }
    drop(table);
    // Removes the claim unless the system's lock is taken: an error, or a panic while
    // taking it, leaves no claim that other threads would wait on for ever.
    let mut unclaim = Unclaim {
        dir,
        place: &place,
        armed: true,
    };
    // The claim is this thread's: no other thread of the process takes this system lock
    // until it is released, so one open file description serves every thread.
    let Some(system) = imp::lock(dir, &place, wait)? else {
        return Ok(None);
    };
    let mut table = locked_table();
    let claim = Claim {
        thread: me,
        count: 1,
        held: Some(system),
    };
    match table
        .locks
        .get_mut(dir)
        .and_then(|keys| keys.get_mut(&place))
    {
        Some(claimed) => *claimed = claim,
        // Only this thread removes its claim; were it gone, it is made again.
        None => {
            let keys = table.locks.entry(dir.to_owned()).or_default();
            keys.insert(place.clone(), claim);
        }
    }
    drop(table);
    unclaim.armed = false;
    Ok(Some(lock()))
}

/// A claim of this thread that did not become a lock, removed when dropped while `armed`.
struct Unclaim<'a> {
    dir: &'a Path,
    place: &'a imp::Place,
    armed: bool,
}

impl Drop for Unclaim<'_> {
    fn drop(&mut self) {
        if self.armed {
            withdraw(locked_table(), self.dir, self.place);
        }
    }
}

/// Every key's lock is a byte of one file.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;

    /// The file of the locks of names that are not keys (the index's creation), as it
    /// was before the keys' locks were spread: an older pipewright and this one create a
    /// store's index one at a time, then each refuses the other's format.
    pub(super) const LOCKS: &str = "locks";

    /// How many files the keys' locks are spread over, by the first two bits of the key:
    /// `locks-0` to `locks-3`. Four files keep each list a quarter as long; more would
    /// shorten them further, but each is a file a new store creates, and on a disk that is
    /// slow to create files (ext4 soon after many deletions, half a millisecond a file)
    /// sixteen cost a run of a thousand nodes more than their shorter lists save.
    pub(super) const KEY_FILES: usize = 4;

    /// How many stores' lock files a process keeps open.
    const OPEN_STORES: usize = 16;

    /// A store's lock files, as the process opened them: the keys' files by the key's first
    /// two bits, and [`LOCKS`] last.
    type Files = [Option<Arc<File>>; KEY_FILES + 1];

    /// The lock files of each store a thread of this process has locked a key of, each
    /// opened once, with the generation they were opened in.
    static FILES: Mutex<Vec<(PathBuf, Files, u64)>> = Mutex::new(Vec::new());

    thread_local! {
        /// The process's lock files of the store this thread locked a key of last, so that
        /// a thread takes one store's locks in turn without the process's mutex.
        static LAST: RefCell<Option<(PathBuf, Files, u64)>> = const { RefCell::new(None) };
    }

    /// Counts the times a store found its directory replaced: a lock file opened before is
    /// opened again, as the path may name another file now.
    static GENERATION: AtomicU64 = AtomicU64::new(0);

    pub(super) fn reopen() {
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// A key's byte, locked on the process's file description; unlocked when dropped, on
    /// whichever thread.
    #[derive(Debug)]
    pub(crate) struct Held {
        file: Arc<File>,
        byte: i64,
    }

    impl Drop for Held {
        fn drop(&mut self) {
            let range = range(libc::F_UNLCK, self.byte);
            while fcntl(&*self.file, FcntlArg::F_OFD_SETLK(&range)) == Err(Errno::EINTR) {}
        }
    }

    /// Where a key's lock is: the file (by its place in [`Files`]) and the byte.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub(super) struct Place {
        file: usize,
        byte: i64,
    }

    /// The file and the byte of `key`: a key (a hex digest) is its first 63 bits in the file
    /// of its first two bits; any other name, the first 63 bits of its digest in [`LOCKS`].
    /// Two keys may share a lock (once in 2^63 pairs), which then excludes both.
    pub(super) fn place(key: &str) -> Place {
        let (file, bits) = match key
            .get(..16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        {
            Some(bits) => ((bits >> 62) as usize, bits),
            None => {
                let digest = blake3::hash(key.as_bytes());
                let mut first = [0; 8];
                first.copy_from_slice(&digest.as_bytes()[..8]);
                (KEY_FILES, u64::from_le_bytes(first))
            }
        };
        Place {
            file,
            byte: i64::try_from(bits >> 1).unwrap_or(i64::MAX),
        }
    }

    /// The name of the lock file at `place` in [`Files`].
    fn name(place: usize) -> String {
        if place < KEY_FILES {
            format!("{LOCKS}-{place}")
        } else {
            LOCKS.to_owned()
        }
    }

    fn range(kind: libc::c_int, byte: i64) -> libc::flock {
        libc::flock {
            l_type: kind as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: byte,
            l_len: 1,
            l_pid: 0,
        }
    }

    /// The process's lock file at `place` of the store directory `dir`.
    fn file(dir: &Path, place: usize) -> Result<Arc<File>, StoreError> {
        let generation = GENERATION.load(Ordering::Relaxed);
        let known = LAST
            .try_with(|last| match &*last.borrow() {
                Some((d, files, g)) if *g == generation && d == dir => files[place].clone(),
                _ => None,
            })
            .ok()
            .flatten();
        if let Some(file) = known {
            return Ok(file);
        }
        let (file, generation) = open_file(dir, place)?;
        // Not kept by a thread whose locals are being destroyed.
        let _ = LAST.try_with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some((d, _, g)) if *g == generation && d == dir => {}
                _ => *last = Some((dir.to_owned(), Files::default(), generation)),
            }
            if let Some((_, files, _)) = &mut *last {
                files[place] = Some(Arc::clone(&file));
            }
        });
        Ok(file)
    }

    /// [`file`], from the process's files, opening it if it is not among them; with the
    /// generation it belongs to.
    fn open_file(dir: &Path, place: usize) -> Result<(Arc<File>, u64), StoreError> {
        let mut files = FILES.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the mutex: no thread drops the files of a later generation.
        let generation = GENERATION.load(Ordering::Relaxed);
        files.retain(|(_, _, g)| *g == generation);
        let i = match files.iter().position(|(d, _, _)| d == dir) {
            // The store used last goes last, so the one dropped is the least recently used.
            Some(i) => {
                files[i..].rotate_left(1);
                files.len() - 1
            }
            None => {
                // A process that works on many stores in turn keeps the files of the last
                // few; a lock still held keeps its file open.
                if files.len() >= OPEN_STORES {
                    files.remove(0);
                }
                files.push((dir.to_owned(), Default::default(), generation));
                files.len() - 1
            }
        };
        if let Some(file) = &files[i].1[place] {
            return Ok((Arc::clone(file), generation));
        }
        let path = dir.join(name(place));
        let open = || {
            File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        };
        let file = open()
            .or_else(|e| {
                fs::create_dir_all(dir)?;
                open().map_err(|_| e)
            })
            .map(Arc::new)
            .map_err(|e| StoreError::new("cannot open the lock file", &path, e))?;
        files[i].1[place] = Some(Arc::clone(&file));
        Ok((file, generation))
    }

    /// The lock at `place`; `None` if `wait` is false and another process holds it.
    pub(super) fn lock(
        dir: &Path,
        &Place { file: place, byte }: &Place,
        wait: bool,
    ) -> Result<Option<Held>, StoreError> {
        let file = file(dir, place)?;
        let range = range(libc::F_WRLCK, byte);
        loop {
            let arg = if wait {
                FcntlArg::F_OFD_SETLKW(&range)
            } else {
                FcntlArg::F_OFD_SETLK(&range)
            };
            match fcntl(&*file, arg) {
                Ok(_) => return Ok(Some(Held { file, byte })),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN | Errno::EACCES) if !wait => return Ok(None),
                Err(e) => {
                    return Err(StoreError::new(
                        "cannot take a key's lock in",
                        &dir.join(name(place)),
                        std::io::Error::from(e),
                    ));
                }
            }
        }
    }
}

/// A lock file per key, under `DATA/.store/keys/`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use super::*;

    /// Nothing is held open between locks.
    pub(super) fn reopen() {}

    /// A key's lock file, locked; unlocked when closed.
    pub(crate) type Held = File;

    /// A key's lock is its own.
    pub(super) type Place = String;

    pub(super) fn place(key: &str) -> Place {
        key.to_owned()
    }

    /// The lock of `key`; `None` if `wait` is false and another process holds it.
    pub(super) fn lock(dir: &Path, key: &str, wait: bool) -> Result<Option<Held>, StoreError> {
        let keys = dir.join("keys");
        fs::create_dir_all(&keys).map_err(|e| StoreError::new("cannot create", &keys, e))?;
        let path = keys.join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::new("cannot open the lock", &path, e))?;
        if wait {
            file.lock()
                .map_err(|e| StoreError::new("cannot take the lock", &path, e))?;
            Ok(Some(file))
        } else {
            Ok(file.try_lock().ok().map(|()| file))
        }
    }
}
