//! Files as outputs: [`OutputFile`], a file a task wrote in its work directory and returns,
//! committed with its entry; and the copies of output files published at paths the user
//! chose ([`Published`]).
//!
//! An `OutputFile` holds its path relative to the work directory. Encoded as a task's
//! output while the entry is committed, it takes its file's size and content digest, so
//! that the output's digest changes exactly when a file's content does, and the store
//! lists the file to check it whenever the entry is read. Decoded from an entry, it
//! resolves its path against that entry's work directory, wherever the store is.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cache::{FileRecord, digest_file, temporary_name};
use crate::task::Ctx;

/// A file a task wrote in its work directory ([`Ctx::work_dir`]) and returns as its
/// output, or as part of it (a `Vec<OutputFile>`, a field of a struct).
///
/// The file is committed with the task's entry, and the output's digest covers its
/// content: a consumer runs again only if the file's bytes changed. A file of a stored
/// output that is deleted or changed makes the entry damaged, so its node is computed
/// again rather than handing out a file that is not what it wrote. [`path`](Self::path)
/// is where the file is now: in the entry's directory, `DATA/<task>/<key>/work/...`, once
/// the output is committed (in the run's report, and in the consumers' inputs).
///
/// To put a file at a path of your choice as well, see
/// [`Runner::publish`](crate::Runner::publish).
///
/// # Examples
///
/// ```
/// use pipewright::OutputFile;
/// use pipewright::prelude::*;
///
/// #[task]
/// fn title_page(title: String, ctx: &Ctx) -> std::io::Result<OutputFile> {
///     let file = OutputFile::new(ctx, "report.md")?;
///     std::fs::write(file.path(), format!("# {title}\n"))?;
///     Ok(file)
/// }
///
/// fn main() -> pipewright::Result<()> {
///     let p = pipeline! {
///         name = "output-file-doc";
///         let summary = title_page("Sales".to_string());
///     };
///     let dir = tempfile::tempdir().unwrap();
///     let run = Runner::new(dir.path()).run(&p)?;
///     let file = run.get(p.summary)?;
///     assert!(file.path().starts_with(dir.path()));
///     assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "# Sales\n");
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct OutputFile {
    /// The path in the work directory, components joined by `/`.
    relative: String,
    /// Where the file is: the work directory joined with `relative`, or `relative` alone
    /// where the work directory is not known.
    path: PathBuf,
    /// Its size and content digest, as its entry recorded them (none for a file not yet
    /// committed).
    committed: Option<(u64, blake3::Hash)>,
}

impl OutputFile {
    /// The file `path` of the work directory of `ctx`: a path relative to it, or one
    /// inside it. The file need not exist yet; the task must write it before it returns.
    ///
    /// # Errors
    ///
    /// If the context has no work directory (see [`Ctx::work_dir`]), or `path` is not
    /// inside it (an absolute path elsewhere, one with `..`, or none at all), or is not
    /// UTF-8.
    pub fn new(ctx: &Ctx, path: impl AsRef<Path>) -> io::Result<OutputFile> {
        let dir = ctx.work_dir()?;
        let path = path.as_ref();
        let inside = path.strip_prefix(dir).unwrap_or(path);
        let relative = relative_name(inside).map_err(|why| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "output file `{}` {why}: give a path inside the work directory `{}`",
                    path.display(),
                    dir.display()
                ),
            )
        })?;
        Ok(OutputFile {
            path: dir.join(&relative),
            relative,
            committed: None,
        })
    }

    /// Where the file is. For an output read from the store (in the run's report, or in a
    /// consumer), a path in its entry's directory; in the task that writes it, a path in
    /// its work directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's path relative to the work directory, as the task named it.
    pub fn relative_path(&self) -> &Path {
        Path::new(&self.relative)
    }

    /// The blake3 digest of the file's content, in hex, as its entry committed it (none
    /// before it is committed).
    pub fn digest(&self) -> Option<String> {
        self.committed
            .map(|(_, digest)| digest.to_hex().to_string())
    }
}

/// `path` as a relative name with `/` between its components, or why it cannot be one.
fn relative_name(path: &Path) -> Result<String, &'static str> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("is not UTF-8")?),
            Component::CurDir => {}
            Component::ParentDir => return Err("goes up with `..`"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is outside the work directory");
            }
        }
    }
    if parts.is_empty() {
        return Err("names no file");
    }
    Ok(parts.join("/"))
}

impl fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("digest", &self.digest())
            .finish()
    }
}

/// Two output files are equal when they are the same file: the same path.
impl PartialEq for OutputFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for OutputFile {}

impl Hash for OutputFile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

/// Ordered by path, so that a `BTreeSet` of the files of one task is in the order of
/// their names.
impl Ord for OutputFile {
    fn cmp(&self, other: &Self) -> Ordering {
        self.path.cmp(&other.path)
    }
}

impl PartialOrd for OutputFile {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What an encoded output file holds: no directory, so that the same bytes written under
/// another key encode the same.
#[derive(Serialize, Deserialize)]
#[serde(rename = "OutputFile")]
struct Encoded<P> {
    path: P,
    size: u64,
    digest: String,
}

/// The entry being committed on this thread: its work directory, and the output files its
/// output named so far.
struct Committing {
    work: PathBuf,
    files: Vec<FileRecord>,
}

thread_local! {
    /// Set while an output is encoded for its entry ([`encoding_for`]).
    static COMMITTING: RefCell<Option<Committing>> = const { RefCell::new(None) };
    /// Set while an output is decoded from an entry ([`decoding_from`]): its work directory.
    static DECODING: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Calls `encode`, which encodes an output to be committed with the work directory `work`;
/// returns what it returns and the output files the output holds, each read (size, time,
/// digest) once.
pub(crate) fn encoding_for<T>(work: &Path, encode: impl FnOnce() -> T) -> (T, Vec<FileRecord>) {
    /// Puts back what was there, also when `encode` panics.
    struct Reset(Option<Committing>);
    impl Drop for Reset {
        fn drop(&mut self) {
            COMMITTING.set(self.0.take());
        }
    }
    let reset = Reset(COMMITTING.replace(Some(Committing {
        work: work.to_owned(),
        files: Vec::new(),
    })));
    let encoded = encode();
    let files = COMMITTING
        .with_borrow_mut(|c| c.as_mut().map(|c| std::mem::take(&mut c.files)))
        .unwrap_or_default();
    drop(reset);
    (encoded, files)
}

/// Calls `decode`, which decodes an output of an entry whose work directory is `work`
/// (none if it has none); the output files in it are resolved against that directory.
pub(crate) fn decoding_from<T>(work: Option<&Path>, decode: impl FnOnce() -> T) -> T {
    /// Puts back what was there, also when `decode` panics.
    struct Reset(Option<PathBuf>);
    impl Drop for Reset {
        fn drop(&mut self) {
            DECODING.set(self.0.take());
        }
    }
    let _reset = Reset(DECODING.replace(work.map(Path::to_owned)));
    decode()
}

impl Serialize for OutputFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let committed = COMMITTING.with_borrow_mut(|committing| match committing {
            Some(committing) => commit_file(committing, self).map(Some),
            None => Ok(None),
        });
        let (size, digest) = match (committed.map_err(S::Error::custom)?, self.committed) {
            (Some(record), _) => (record.size, record.digest),
            (None, Some((size, digest))) => (size, digest.to_hex().to_string()),
            (None, None) => {
                let record = FileRecord::read(&self.relative, &self.path).map_err(|e| {
                    S::Error::custom(format!(
                        "cannot read output file `{}`: {e}",
                        self.path.display()
                    ))
                })?;
                (record.size, record.digest)
            }
        };
        Encoded {
            path: &self.relative,
            size,
            digest,
        }
        .serialize(serializer)
    }
}

/// The record of `file`, an output file of the entry being committed, read once.
fn commit_file(committing: &mut Committing, file: &OutputFile) -> Result<FileRecord, String> {
    if let Some(record) = committing.files.iter().find(|r| r.path == file.relative) {
        return Ok(record.clone());
    }
    let path = committing.work.join(&file.relative);
    if file.path != path {
        return Err(format!(
            "output file `{}` is not in this task's work directory `{}`: a task returns only \
             files it wrote there (copy the file there to return it)",
            file.path.display(),
            committing.work.display()
        ));
    }
    let record = FileRecord::read(&file.relative, &path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "output file `{}` does not exist: the task returned it without writing it",
            file.relative
        ),
        _ => format!("cannot read output file `{}`: {e}", file.relative),
    })?;
    committing.files.push(record.clone());
    Ok(record)
}

impl<'de> Deserialize<'de> for OutputFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let encoded = Encoded::<String>::deserialize(deserializer)?;
        let relative = relative_name(Path::new(&encoded.path))
            .map_err(|why| D::Error::custom(format!("output file `{}` {why}", encoded.path)))?;
        let digest = blake3::Hash::from_hex(&encoded.digest)
            .map_err(|e| D::Error::custom(format!("output file `{relative}`: {e}")))?;
        let path = DECODING.with_borrow(|work| match work {
            Some(work) => work.join(&relative),
            None => PathBuf::from(&relative),
        });
        Ok(OutputFile {
            relative,
            path,
            committed: Some((encoded.size, digest)),
        })
    }
}

/// An output file put at a path the user chose, by
/// [`Runner::publish`](crate::Runner::publish) or
/// [`Runner::publish_dir`](crate::Runner::publish_dir).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The node whose output it is.
    pub node: String,
    /// Where it was put.
    pub path: PathBuf,
    /// What was done there.
    pub action: PublishAction,
}

/// What publishing did at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishAction {
    /// The file there was already the output file's content: left as it was.
    Unchanged,
    /// The output file was hard-linked there (the store is on the same file system).
    Linked,
    /// The output file was copied there.
    Copied,
}

/// Puts the output file `source`, committed as `record`, at `dest`, unless a file with its
/// content is already there: hard-linked where the file system allows, else copied, into a
/// temporary beside `dest` renamed over it, so that `dest` is never half written.
pub(crate) fn publish_file(
    source: &Path,
    record: &FileRecord,
    dest: &Path,
) -> io::Result<PublishAction> {
    if same_file(source, dest)? || holds(dest, record)? {
        return Ok(PublishAction::Unchanged);
    }
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("output");
    let tmp = dir.join(temporary_name(".tmp-", name));
    let action = if fs::hard_link(source, &tmp).is_ok() {
        PublishAction::Linked
    } else {
        fs::copy(source, &tmp)?;
        if digest_file(&tmp)?.to_hex().as_str() != record.digest {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::other(format!(
                "the output file `{}` changed while it was copied",
                source.display()
            )));
        }
        PublishAction::Copied
    };
    fs::rename(&tmp, dest).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(action)
}

/// Whether `a` and `b` are the same file (hard links of one), where the system says.
fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let b = match fs::metadata(b) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let a = fs::metadata(a)?;
        Ok(a.dev() == b.dev() && a.ino() == b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// Whether `path` is a file with the content `record` describes.
fn holds(path: &Path, record: &FileRecord) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == record.size => {
            Ok(digest_file(path)?.to_hex().as_str() == record.digest)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_work_directory_are_names_of_output_files() {
        assert_eq!(
            relative_name(Path::new("a/./b.txt")),
            Ok("a/b.txt".to_owned())
        );
        assert_eq!(
            relative_name(Path::new("../b.txt")),
            Err("goes up with `..`")
        );
        assert_eq!(
            relative_name(Path::new("/etc/passwd")),
            Err("is outside the work directory")
        );
        assert_eq!(relative_name(Path::new(".")), Err("names no file"));
    }

    /// Publishing from another file system copies the file, and checks the copy.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_on_another_file_system_is_copied_and_checked() {
        use std::os::unix::fs::MetadataExt;
        let shm = Path::new("/dev/shm");
        let dest_dir = tempfile::tempdir().unwrap();
        let source_dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let other_fs = fs::metadata(source_dir.path()).unwrap().dev()
            != fs::metadata(dest_dir.path()).unwrap().dev();
        let source = source_dir.path().join("out.txt");
        fs::write(&source, "content").unwrap();
        let record = FileRecord::read("out.txt", &source).unwrap();
        let dest = dest_dir.path().join("sub/out.txt");

        let action = publish_file(&source, &record, &dest).unwrap();
        let expected = if other_fs {
            PublishAction::Copied
        } else {
            PublishAction::Linked
        };
        assert_eq!(action, expected);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "content");
        assert_eq!(
            publish_file(&source, &record, &dest).unwrap(),
            PublishAction::Unchanged
        );
        // Other bytes of the same length are replaced.
        fs::remove_file(&dest).unwrap();
        fs::write(&dest, "CONTENT").unwrap();
        assert_eq!(publish_file(&source, &record, &dest).unwrap(), expected);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "content");

        if other_fs {
            // A source that no longer matches its record is not published.
            fs::remove_file(&dest).unwrap();
            fs::write(&source, "changed").unwrap();
            let error = publish_file(&source, &record, &dest).unwrap_err();
            assert!(
                error.to_string().contains("changed while it was copied"),
                "{error}"
            );
            assert!(!dest.exists());
            let left: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
