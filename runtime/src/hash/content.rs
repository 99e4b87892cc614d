//! Input files and directories in the canonical encoding: a parameter that names one is
//! hashed as its content's digest, not its path. How the content is digested is up to
//! whoever computes a key ([`resolving`]); the default reads it.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::mem;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{HashError, Out, encode};

/// The serde name of a parameter that is an input file: its one field is the path.
pub(crate) const FILE_MARK: &str = "pipewright::InputFile";

/// The serde name of a parameter that is an input directory: its one field is the path.
pub(crate) const DIR_MARK: &str = "pipewright::InputDir";

/// An input file, or an input directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
}

/// An input file or directory met while a key was computed, with its content's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The path as the parameter names it.
    pub(crate) path: PathBuf,
    pub(crate) kind: Kind,
    pub(crate) digest: [u8; 32],
}

/// An input file or directory that could not be read while a key was computed.
#[derive(Debug)]
pub(crate) struct Unreadable {
    /// The path as the parameter names it.
    pub(crate) path: PathBuf,
    pub(crate) kind: Kind,
    pub(crate) source: io::Error,
}

/// How the content of input files is digested while a key is computed.
pub(crate) trait Contents {
    /// The digest of the content of the file or directory `path`.
    fn digest(&self, path: &Path, kind: Kind) -> io::Result<[u8; 32]>;
}

/// How input files are encoded on this thread now.
enum Mode {
    /// As their content's digest, read from the files ([`file_digest`], [`dir_digest`]).
    Read,
    /// As their paths, reading nothing: for the check of a parameter when its node is added
    /// (the files may change, or appear, before the run). `met` is set when one is met.
    Paths { met: bool },
    /// As their content's digest, as `by` gives it; the files met, and the first that could
    /// not be read, are noted.
    Resolve {
        by: Rc<dyn Contents>,
        seen: Vec<Seen>,
        failed: Option<Unreadable>,
    },
}

thread_local! {
    static MODE: RefCell<Mode> = const { RefCell::new(Mode::Read) };
}

/// Puts the mode that was in force back when dropped, even if a `Serialize` impl panics,
/// so that modes nest.
struct Restore(Option<Mode>);

impl Restore {
    /// Puts `mode` in force on this thread, until [`leave`](Self::leave) or a drop.
    #[inline]
    fn enter(mode: Mode) -> Self {
        Restore(Some(
            MODE.with(|m| mem::replace(&mut *m.borrow_mut(), mode)),
        ))
    }

    /// Puts the mode that was in force back; returns the one that is replaced.
    #[inline]
    fn leave(mut self) -> Mode {
        let before = self.0.take().unwrap_or(Mode::Read);
        MODE.with(|m| mem::replace(&mut *m.borrow_mut(), before))
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(mode) = self.0.take() {
            MODE.with(|m| *m.borrow_mut() = mode);
        }
    }
}

/// Runs `f` with `mode` in force on this thread; returns its result and the mode as `f`
/// left it. (Generic over `f` only in its call: each task's parameters instantiate it.)
fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> (R, Mode) {
    let restore = Restore::enter(mode);
    let result = f();
    (result, restore.leave())
}

/// Runs `f` with input files encoded as their paths, reading nothing; returns its result
/// and whether it met one.
pub(crate) fn paths_only<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let (result, after) = with_mode(Mode::Paths { met: false }, f);
    (result, matches!(after, Mode::Paths { met: true }))
}

/// Runs `f` with input files encoded as the digests `by` gives; returns its result, the
/// files met in the order they were met, and the first that could not be read.
pub(crate) fn resolving<R>(
    by: Rc<dyn Contents>,
    f: impl FnOnce() -> R,
) -> (R, Vec<Seen>, Option<Unreadable>) {
    let mode = Mode::Resolve {
        by,
        seen: Vec::new(),
        failed: None,
    };
    match with_mode(mode, f) {
        (result, Mode::Resolve { seen, failed, .. }) => (result, seen, failed),
        (result, _) => (result, Vec::new(), None),
    }
}

/// Encodes the input file or directory whose path `value` serializes, as the mode in
/// force says.
pub(super) fn encode_input<T: serde::Serialize + ?Sized>(
    kind: Kind,
    value: &T,
    out: &mut Out,
) -> Result<(), HashError> {
    let path = path_of(value)?;
    let by = MODE.with(|m| match &mut *m.borrow_mut() {
        Mode::Paths { met } => {
            *met = true;
            None
        }
        Mode::Read => Some(None),
        Mode::Resolve { by, .. } => Some(Some(Rc::clone(by))),
    });
    let Some(by) = by else {
        out.push(match kind {
            Kind::File => super::canonical::tag::FILE_PATH,
            Kind::Dir => super::canonical::tag::DIR_PATH,
        });
        out.extend_from_slice(&(path.len() as u64).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        return Ok(());
    };
    let path = PathBuf::from(path);
    // No borrow of the mode is held meanwhile: `by` may compute other keys.
    let digest = match &by {
        Some(by) => by.digest(&path, kind),
        None => read_digest(&path, kind),
    };
    let digest = match digest {
        Ok(digest) => digest,
        Err(source) => {
            let message = format!("{} `{}` cannot be read: {source}", kind, path.display());
            MODE.with(|m| {
                if let Mode::Resolve { failed, .. } = &mut *m.borrow_mut() {
                    failed.get_or_insert(Unreadable { path, kind, source });
                }
            });
            return Err(HashError(message));
        }
    };
    MODE.with(|m| {
        if let Mode::Resolve { seen, .. } = &mut *m.borrow_mut() {
            seen.push(Seen { path, kind, digest });
        }
    });
    out.push(match kind {
        Kind::File => super::canonical::tag::FILE,
        Kind::Dir => super::canonical::tag::DIR,
    });
    out.extend_from_slice(&digest);
    Ok(())
}

impl Kind {
    /// `input file` or `input directory`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::File => "input file",
            Kind::Dir => "input directory",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path an input's `Serialize` impl gives: a string.
fn path_of<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, HashError> {
    let mut inner = Out::default();
    encode(value, &mut inner)?;
    let bytes = inner.bytes;
    if bytes.first() == Some(&super::canonical::tag::STR)
        && bytes.len() >= 9
        && let Ok(text) = std::str::from_utf8(&bytes[9..])
    {
        return Ok(text.to_owned());
    }
    Err(HashError("an input file's path is not a string".into()))
}

/// The digest of the content of `path`, read with no cache.
fn read_digest(path: &Path, kind: Kind) -> io::Result<[u8; 32]> {
    match kind {
        Kind::File => file_digest(path),
        Kind::Dir => dir_digest(path, &mut |file| file_digest(file)),
    }
}

/// The blake3 digest of the content of the file `path`: read and hashed on the calling
/// thread if it is small, in blocks on several threads of its own if it is large (see
/// [`digest_file`](crate::digest::digest_file)). An error if it is not a file.
pub(crate) fn file_digest(path: &Path) -> io::Result<[u8; 32]> {
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a file",
        ));
    }
    crate::digest::digest_file(&file, meta.len()).map(|hash| *hash.as_bytes())
}

/// The digest of the directory `root`: of every file under it, at any depth, by its path
/// relative to `root` (with `/` between names) and its content's digest as `file` gives
/// it, sorted by path. Files and directories whose names start with `.` are left out; a
/// symbolic link counts as what it points to. Empty directories add nothing.
///
/// # Errors
///
/// If `root` is not a directory, or a file or directory under it cannot be read, or a
/// symbolic link leads back into a directory it is in.
pub(crate) fn dir_digest(
    root: &Path,
    file: &mut dyn FnMut(&Path) -> io::Result<[u8; 32]>,
) -> io::Result<[u8; 32]> {
    if !fs::metadata(root)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a directory",
        ));
    }
    let mut files = Vec::new();
    let mut ancestors = vec![fs::canonicalize(root)?];
    walk(root, "", &mut ancestors, &mut files)?;
    files.sort_unstable();
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pipewright input directory\0");
    hasher.update(&(files.len() as u64).to_le_bytes());
    for rel in &files {
        let digest = file(&root.join(rel))?;
        hasher.update(&(rel.len() as u64).to_le_bytes());
        hasher.update(rel.as_bytes());
        hasher.update(&digest);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Adds to `files` the path, relative to the root, of every file under `dir`, whose own
/// relative path is `prefix`; `ancestors` are the directories walked into, resolved.
fn walk(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    files: &mut Vec<String>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name: OsString = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the name {name:?} under `{}` is not UTF-8", dir.display()),
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        // Follows a symbolic link.
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            let resolved = fs::canonicalize(&path)?;
            if ancestors.contains(&resolved) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the symbolic link `{}` leads back into a directory it is in",
                        path.display()
                    ),
                ));
            }
            ancestors.push(resolved);
            walk(&path, &rel, ancestors, files)?;
            ancestors.pop();
        } else if meta.is_file() {
            files.push(rel);
        }
    }
    Ok(())
}
