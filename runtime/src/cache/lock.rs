//! The lock of one key, which keeps two processes (or two threads) from computing one entry
//! at once. On Linux every key is one byte of one file, `DATA/.store/locks`, locked as an
//! open file description's record lock: no file per key, and the system releases it when
//! its holder dies. Each thread opens the file once, so two threads' locks exclude each
//! other as two processes' do. Elsewhere each key has a lock file of its own.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;

use super::StoreError;

/// The key locks this process holds, by data directory and key, with the thread that holds
/// each: a thread that holds a key's lock looks again at its entry without taking the lock
/// twice.
static HELD: Mutex<Vec<(PathBuf, String, ThreadId)>> = Mutex::new(Vec::new());

/// The lock of one key, from [`lock`] or [`try_lock`]; released when dropped.
#[derive(Debug)]
pub(crate) struct KeyLock {
    dir: PathBuf,
    key: String,
    _held: imp::Held,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = held
            .iter()
            .position(|(dir, key, _)| *dir == self.dir && *key == self.key)
        {
            held.swap_remove(i);
        }
    }
}

/// Whether this thread holds the lock of `key` in the store directory `dir`.
pub(crate) fn held_here(dir: &Path, key: &str) -> bool {
    let me = std::thread::current().id();
    HELD.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|(d, k, thread)| d == dir && k == key && *thread == me)
}

fn holding(dir: &Path, key: &str, held: imp::Held) -> KeyLock {
    HELD.lock().unwrap_or_else(PoisonError::into_inner).push((
        dir.to_owned(),
        key.to_owned(),
        std::thread::current().id(),
    ));
    KeyLock {
        dir: dir.to_owned(),
        key: key.to_owned(),
        _held: held,
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

    pub(super) const LOCKS: &str = "locks";

    /// How many stores' lock files a thread keeps open.
    const OPEN_PER_THREAD: usize = 4;

    thread_local! {
        /// The lock file of each store this thread has locked a key of, opened once, with
        /// the generation it was opened in.
        static FILES: RefCell<Vec<(PathBuf, Arc<File>, u64)>> = const { RefCell::new(Vec::new()) };
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

    /// The byte of `key`: its first 63 bits (keys are hex digests), or those of its digest.
    fn byte(key: &str) -> i64 {
        let bits = key
            .get(..16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or_else(|| {
                let digest = blake3::hash(key.as_bytes());
                let mut first = [0; 8];
                first.copy_from_slice(&digest.as_bytes()[..8]);
                u64::from_le_bytes(first)
            });
        i64::try_from(bits >> 1).unwrap_or(i64::MAX)
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

    /// This thread's lock file of the store directory `dir`.
    fn file(dir: &Path) -> Result<Arc<File>, StoreError> {
        let generation = GENERATION.load(Ordering::Relaxed);
        if let Some(file) = FILES.with_borrow_mut(|files| {
            files.retain(|(_, _, g)| *g == generation);
            files
                .iter()
                .find(|(d, _, _)| d == dir)
                .map(|(_, f, _)| Arc::clone(f))
        }) {
            return Ok(file);
        }
        let path = dir.join(LOCKS);
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
            // A thread that works on many stores in turn keeps the files of the last few.
            if files.len() >= OPEN_PER_THREAD {
                files.remove(0);
            }
            files.push((dir.to_owned(), Arc::clone(&file), generation));
        });
        Ok(file)
    }

    /// The key's lock; `None` if `wait` is false and another holds it.
    pub(super) fn lock(dir: &Path, key: &str, wait: bool) -> Result<Option<Held>, StoreError> {
        let file = file(dir)?;
        let byte = byte(key);
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
                        &dir.join(LOCKS),
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
