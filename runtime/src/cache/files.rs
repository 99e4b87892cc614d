//! Files of the data directory written whole, and the names of temporaries, which say which
//! host and process writes them.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::StoreError;

/// Writes `bytes` to `path` as a whole: into a temporary file beside it, named `.tmp-…`,
/// then renamed over `path`. A reader sees the old file or the new one, never part of
/// either, and a failure leaves no temporary file behind (garbage collection removes one
/// that a crash leaves in the store).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`], the temporary written by `write`.
pub(crate) fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // As `fs::write` would create it: readable by others unless the umask says otherwise.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir)
        .and_then(|mut tmp| {
            write(tmp.as_file_mut())?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        })
        .map_err(|e| StoreError::new("cannot write", path, e))
}

/// Writes `value` as JSON to `path` as [`write_atomically`] writes bytes: indented for
/// people to read where `pretty`, else compact. The JSON is encoded into the temporary
/// through a buffer, never whole in memory.
pub(crate) fn write_json_atomically(
    path: &Path,
    value: &impl Serialize,
    pretty: bool,
) -> Result<(), StoreError> {
    write_atomically_with(path, |file| {
        let mut out = io::BufWriter::with_capacity(JSON_BUFFER, file);
        if pretty {
            serde_json::to_writer_pretty(&mut out, value)
        } else {
            serde_json::to_writer(&mut out, value)
        }
        .map_err(io::Error::other)?;
        out.flush()
    })
}

/// How many bytes of JSON are encoded before they are written.
const JSON_BUFFER: usize = 256 * 1024;

/// Makes the names of temporaries unique within a process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// The name of this host (`uname`'s node name on Unix).
pub(crate) fn host_name() -> String {
    #[cfg(unix)]
    let name = Some(
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    );
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// This host in the names of temporaries: 8 hex digits of its name's digest.
pub(crate) fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| blake3::hash(host_name().as_bytes()).to_hex()[..8].to_owned())
}

/// A name unique to this process and call, for a temporary beside `<stem>`:
/// `<prefix><stem>-<host tag>-<pid>-<n>`.
pub(crate) fn temporary_name(prefix: &str, stem: &str) -> String {
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{stem}-{}-{}-{n}", host_tag(), std::process::id())
}

/// Whether process `pid` of this host is gone. Without a way to ask (off Unix), no process
/// is taken for gone.
pub(crate) fn process_gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Whether the temporary named `name` (`.tmp-…` or `.trash-…`, with or without an
/// extension) was written by a process of this host that is gone, so that no one will
/// finish or remove it.
pub(crate) fn writer_gone(name: &str) -> bool {
    let name = name.split_once('.').map_or(name, |(_, rest)| rest);
    let name = name.split_once('.').map_or(name, |(stem, _)| stem);
    let mut fields = name.rsplitn(4, '-');
    let (Some(n), Some(pid), Some(host)) = (fields.next(), fields.next(), fields.next()) else {
        return false;
    };
    n.parse::<u64>().is_ok()
        && host == host_tag()
        && pid
            .parse::<u32>()
            .is_ok_and(|pid| pid != std::process::id() && process_gone(pid))
}

/// Removes what is at `path`, a directory with all it holds or a file: renamed aside first
/// (to a `.trash-…` name of this process), so that no reader sees it half deleted.
pub(crate) fn remove_aside(path: &Path) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let aside = path.with_file_name(temporary_name(
        ".trash-",
        name.split('.').next().unwrap_or(name),
    ));
    if fs::rename(path, &aside).is_ok() {
        remove_any(&aside);
    }
}

/// Removes a directory with all it holds, or a file.
pub(crate) fn remove_any(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
}
