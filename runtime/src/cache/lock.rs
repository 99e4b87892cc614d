//! The lock of one key, which keeps two processes (or two threads) from computing one entry
//! at once. On Linux every key is one byte of one of four files, `DATA/.store/locks-0` to
//! `locks-3` by the first two bits of the key, locked as an open file description's record
//! lock: no file per key, and the system releases it when its holder dies. The system keeps
//! a file's record locks in one list, which it walks on every lock and unlock; with hundreds
//! of keys locked at once (rows waiting to be committed), spread over several files, each
//! list is shorter. Each thread opens the files once, so two threads' locks exclude each
//! other as two processes' do. Elsewhere each key has a lock file of its own.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::thread::ThreadId;

use super::StoreError;

/// The key locks this process holds, by data directory and key, with the thread that holds
/// each (and how many times): a thread that holds a key's lock looks again at its entry
/// without taking the lock twice.
static HELD: LazyLock<Mutex<HeldKeys>> = LazyLock::new(Mutex::default);

type HeldKeys = HashMap<PathBuf, HashMap<String, (ThreadId, usize)>>;

fn held() -> std::sync::MutexGuard<'static, HeldKeys> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock of one key, from [`lock`] or [`try_lock`]; released when dropped.
#[derive(Debug)]
pub(crate) struct KeyLock {
    dir: PathBuf,
    key: String,
    _held: imp::Held,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let mut held = held();
        let Some(keys) = held.get_mut(&self.dir) else {
            return;
        };
        if let Some((_, count)) = keys.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                keys.remove(&self.key);
                if keys.is_empty() {
                    held.remove(&self.dir);
                }
            }
        }
    }
}

/// Whether this thread holds the lock of `key` in the store directory `dir`.
pub(crate) fn held_here(dir: &Path, key: &str) -> bool {
    let me = std::thread::current().id();
    held()
        .get(dir)
        .and_then(|keys| keys.get(key))
        .is_some_and(|(thread, _)| *thread == me)
}

fn holding(dir: &Path, key: &str, file: imp::Held) -> KeyLock {
    let me = std::thread::current().id();
    let mut held = held();
    let keys = match held.get_mut(dir) {
        Some(keys) => keys,
        None => held.entry(dir.to_owned()).or_default(),
    };
    keys.entry(key.to_owned())
        .and_modify(|(thread, count)| {
            *thread = me;
            *count += 1;
        })
        .or_insert((me, 1));
    KeyLock {
        dir: dir.to_owned(),
        key: key.to_owned(),
        _held: file,
    }
}

/// Forgets the lock files threads hold open, so that each is opened again at its path: a
/// store's directory was replaced.
pub(crate) fn reopen() {
    imp::reopen();
}

/// Takes the lock of `key` in the store directory `dir`, waiting while another process
/// (or thread) holds it.
pub(crate) fn lock(dir: &Path, key: &str) -> Result<KeyLock, StoreError> {
    match imp::lock(dir, key, true)? {
        Some(file) => Ok(holding(dir, key, file)),
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
    imp::lock(dir, key, false)
        .ok()
        .flatten()
        .map(|file| holding(dir, key, file))
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

    /// How many stores' lock files a thread keeps open.
    const OPEN_PER_THREAD: usize = 4;

    /// A store's lock files, as one thread opened them: the keys' files by the key's first
    /// two bits, and [`LOCKS`] last.
    type Files = [Option<Arc<File>>; KEY_FILES + 1];

    thread_local! {
        /// The lock files of each store this thread has locked a key of, each opened once,
        /// with the generation they were opened in.
        static FILES: RefCell<Vec<(PathBuf, Files, u64)>> = const { RefCell::new(Vec::new()) };
    }

    /// Counts the times a store found its directory replaced: a lock file opened before is
    /// opened again, as the path may name another file now.
    static GENERATION: AtomicU64 = AtomicU64::new(0);

    pub(super) fn reopen() {
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// A key's byte, locked on a thread's file description; unlocked when dropped, on
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

    /// The file (by its place in [`Files`]) and the byte of `key`: a key (a hex digest) is
    /// its first 63 bits in the file of its first two bits; any other name, the first 63 bits
    /// of its digest in [`LOCKS`].
    fn place(key: &str) -> (usize, i64) {
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
        (file, i64::try_from(bits >> 1).unwrap_or(i64::MAX))
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

    /// This thread's lock file at `place` of the store directory `dir`.
    fn file(dir: &Path, place: usize) -> Result<Arc<File>, StoreError> {
        let generation = GENERATION.load(Ordering::Relaxed);
        if let Some(file) = FILES.with_borrow_mut(|files| {
            files.retain(|(_, _, g)| *g == generation);
            files
                .iter()
                .find(|(d, _, _)| d == dir)
                .and_then(|(_, f, _)| f[place].clone())
        }) {
            return Ok(file);
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
        FILES.with_borrow_mut(|files| {
            let i = match files.iter().position(|(d, _, _)| d == dir) {
                Some(i) => i,
                None => {
                    // A thread that works on many stores in turn keeps the files of the
                    // last few.
                    if files.len() >= OPEN_PER_THREAD {
                        files.remove(0);
                    }
                    files.push((dir.to_owned(), Default::default(), generation));
                    files.len() - 1
                }
            };
            files[i].1[place] = Some(Arc::clone(&file));
        });
        Ok(file)
    }

    /// The key's lock; `None` if `wait` is false and another holds it.
    pub(super) fn lock(dir: &Path, key: &str, wait: bool) -> Result<Option<Held>, StoreError> {
        let (place, byte) = place(key);
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
