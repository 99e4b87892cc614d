//! Input files and directories as parameters ([`InputFile`], [`InputDir`]), which a node's
//! key holds by their content, and the stat cache through which a key hashes them
//! ([`StatCache`]): a file whose stat has not changed since it was hashed is not read again.

use std::fmt;
use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::cache::{FileRow, FileStat, Store};
use crate::hash::{Contents, DIR_MARK, FILE_MARK, Kind, dir_digest, file_digest};

/// A parameter that is a file the task reads: the node's key holds the blake3 digest of
/// the file's content, not its path, so the node runs again when the content changes,
/// and not when the file is only touched, copied or moved.
///
/// The content is hashed when the key is made (at plan time, and when the node is about
/// to run), not when the pipeline is built, so the file may change, or appear, in
/// between. A file that is missing or cannot be read then fails the node, with an error
/// that names it. The path reaches worker processes as given, so a relative path is
/// relative to each process's working directory.
///
/// # Examples
///
/// ```
/// use pipewright::InputFile;
///
/// let sales = InputFile::new("data/sales.csv");
/// assert_eq!(sales.path(), std::path::Path::new("data/sales.csv"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputFile {
    path: PathBuf,
}

/// A parameter that is a directory of files the task reads: the node's key holds a digest
/// of every file under it, at any depth, by its path relative to the directory and its
/// content, so adding, removing, renaming or editing a file makes the node run again.
///
/// Files and directories whose names start with `.` are left out, a symbolic link counts
/// as the file or directory it points to (one that leads back into a directory it is in
/// is an error), and empty directories count for nothing. Each file goes through the
/// same stat cache as an [`InputFile`].
///
/// # Examples
///
/// ```
/// use pipewright::{InputDir, InputFile};
///
/// let raw = InputDir::new("data/raw");
/// assert_eq!(raw, InputFile::dir("data/raw"));
/// assert_eq!(raw.path(), std::path::Path::new("data/raw"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputDir {
    path: PathBuf,
}

impl InputFile {
    /// The input file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        InputFile { path: path.into() }
    }

    /// The input directory at `path`: the same as [`InputDir::new`].
    pub fn dir(path: impl Into<PathBuf>) -> InputDir {
        InputDir::new(path)
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl InputDir {
    /// The input directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        InputDir { path: path.into() }
    }

    /// The directory's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Both are serialized as a newtype struct of the path whose name the canonical encoding
/// recognizes, which every codec encodes as the path itself.
macro_rules! newtype_path {
    ($($ty:ident => $mark:ident;)*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_newtype_struct($mark, &self.path)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_newtype_struct($mark, PathVisitor(PhantomData))
                    .map(|path| $ty { path })
            }
        }
    )*};
}

newtype_path! {
    InputFile => FILE_MARK;
    InputDir => DIR_MARK;
}

/// Reads the path of an [`InputFile`] or an [`InputDir`].
struct PathVisitor(PhantomData<PathBuf>);

impl<'de> Visitor<'de> for PathVisitor {
    type Value = PathBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a path")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<PathBuf, D::Error> {
        PathBuf::deserialize(d)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PathBuf, E> {
        Ok(PathBuf::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PathBuf, E> {
        Ok(PathBuf::from(v))
    }
}

/// How long after a file's modification time its hash must have been taken for the stat
/// cache to trust it: the coarsest timestamp granularity of common file systems (FAT's),
/// which also covers the clock of a network file server running a little ahead. A file
/// modified again within it, with the same size, could keep its stat.
pub(crate) const RACY_NS: i64 = 2_000_000_000;

/// The content digests of input files, through `store`'s stat cache: a file whose size,
/// modification time, inode and change time are those it had when it was hashed is not
/// read again, unless it was hashed within [`RACY_NS`] of its modification time ("racily
/// clean", as git's index says), when it is hashed again. Without a store, every file is
/// read.
pub(crate) struct StatCache {
    store: Option<Store>,
}

impl StatCache {
    pub(crate) fn new(store: Option<&Store>) -> Self {
        StatCache {
            store: store.cloned(),
        }
    }

    /// The content digest of the file `path`.
    fn file(&self, path: &Path) -> io::Result<[u8; 32]> {
        let Some(store) = &self.store else {
            return file_digest(path);
        };
        let meta = fs::metadata(path)?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a directory (an `InputDir`, not an `InputFile`, names one)",
            ));
        }
        let stat = stat_of(&meta);
        let absolute = std::path::absolute(path)?;
        if let Some(row) = store.input_file(&absolute)
            && row.stat == stat
            && row.hashed_at_ns.saturating_sub(stat.mtime_ns) > RACY_NS
        {
            return Ok(row.digest);
        }
        // Taken before the file is read: a write after it is then within the racy window.
        let hashed_at_ns = now_ns();
        let digest = file_digest(path)?;
        let row = FileRow {
            stat,
            digest,
            hashed_at_ns,
        };
        store.put_input_file(&absolute, &row);
        Ok(digest)
    }
}

impl Contents for StatCache {
    fn digest(&self, path: &Path, kind: Kind) -> io::Result<[u8; 32]> {
        match kind {
            Kind::File => self.file(path),
            Kind::Dir => dir_digest(path, &mut |file| self.file(file)),
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Nanoseconds since the Unix epoch of `time` (before it, negative).
fn ns_of(time: io::Result<SystemTime>) -> i64 {
    match time {
        Ok(time) => match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
        },
        Err(_) => 0,
    }
}

/// What the stat cache compares of `meta`.
#[cfg(unix)]
fn stat_of(meta: &fs::Metadata) -> FileStat {
    use std::os::unix::fs::MetadataExt;
    FileStat {
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mtime_ns: ns_of(meta.modified()),
        inode: meta.ino() as i64,
        ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
    }
}

/// What the stat cache compares of `meta`: no inode and no change time here.
#[cfg(not(unix))]
fn stat_of(meta: &fs::Metadata) -> FileStat {
    FileStat {
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mtime_ns: ns_of(meta.modified()),
        inode: 0,
        ctime_ns: 0,
    }
}
