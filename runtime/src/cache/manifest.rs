//! The output files of an entry: the files its task returned as `OutputFile`s, in its work
//! directory, listed with their sizes, modification times and digests in
//! `DATA/<task>/<key>/outputs.json`, and checked whenever the entry's output is read: a file
//! whose size and modification time are as committed is taken as it was, any other is
//! digested again.

use std::fs;
use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// The list of an entry's output files, in the entry's directory beside `work/`.
pub(crate) const MANIFEST: &str = "outputs.json";

/// One output file of an entry, as it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    /// Its path in the work directory, components joined by `/`.
    pub(crate) path: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its modification time, in nanoseconds since the Unix epoch, where the system says.
    pub(crate) mtime: Option<u64>,
    /// The blake3 digest of its content, in hex.
    pub(crate) digest: String,
}

impl FileRecord {
    /// The record of the file at `path` (its path in the work directory being `name`):
    /// its size, modification time and content digest, read now.
    pub(crate) fn read(name: &str, path: &Path) -> io::Result<FileRecord> {
        let (size, mtime) = stat(path)?;
        let digest = digest_file(path)?;
        Ok(FileRecord {
            path: name.to_owned(),
            size,
            mtime,
            digest: digest.to_hex().to_string(),
        })
    }
}

/// The size and modification time of the regular file at `path`.
fn stat(path: &Path) -> io::Result<(u64, Option<u64>)> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    Ok((meta.len(), mtime))
}

/// The blake3 digest of the content of the file at `path`.
pub(crate) fn digest_file(path: &Path) -> io::Result<blake3::Hash> {
    let file = fs::File::open(path)?;
    Ok(blake3::Hasher::new().update_reader(file)?.finalize())
}

/// Writes the list of `files` into the entry directory `dir`.
pub(crate) fn write(dir: &Path, files: &[FileRecord]) -> Result<(), StoreError> {
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec(files)
        .map_err(|e| StoreError::new("cannot encode", &path, io::Error::other(e)))?;
    fs::create_dir_all(dir)
        .and_then(|()| fs::write(&path, json))
        .map_err(|e| StoreError::new("cannot write", &path, e))
}

/// The output files listed in the entry directory `dir`: none if it has no list.
pub(crate) fn read(dir: &Path) -> Result<Vec<FileRecord>, String> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(json) => serde_json::from_slice(&json).map_err(|e| {
            format!(
                "its list of output files `{}` is damaged: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!(
            "cannot read its list of output files `{}`: {e}",
            path.display()
        )),
    }
}

/// Checks that each of `files` is in the work directory `work` as committed: stat first,
/// and the content's digest only where the size is the same but the modification time
/// is not. An error says which file is not.
pub(crate) fn check(work: &Path, files: &[FileRecord]) -> Result<(), String> {
    for file in files {
        let path = work.join(&file.path);
        let (size, mtime) = stat(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("its output file `{}` is missing", file.path),
            _ => format!("cannot read its output file `{}`: {e}", file.path),
        })?;
        if size != file.size {
            return Err(format!(
                "its output file `{}` has {size} bytes, not the {} committed",
                file.path, file.size
            ));
        }
        if mtime.is_some() && mtime == file.mtime {
            continue;
        }
        let digest = digest_file(&path)
            .map_err(|e| format!("cannot read its output file `{}`: {e}", file.path))?;
        if digest.to_hex().as_str() != file.digest {
            return Err(format!(
                "its output file `{}` does not match its committed digest",
                file.path
            ));
        }
    }
    Ok(())
}
