//! Where and with what a run ran: host, system, executable, working directory and git state.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::schema::Provenance;

/// Where and with what this process runs; the executable's digest is taken once.
pub(crate) fn provenance() -> Provenance {
    static EXECUTABLE: OnceLock<(Option<PathBuf>, Option<String>)> = OnceLock::new();
    let (executable, executable_blake3) = EXECUTABLE
        .get_or_init(|| {
            let exe = std::env::current_exe().ok();
            let digest = exe.as_ref().and_then(|p| {
                let mut hasher = blake3::Hasher::new();
                hasher.update_reader(fs::File::open(p).ok()?).ok()?;
                Some(hasher.finalize().to_hex().to_string())
            });
            (exe, digest)
        })
        .clone();
    let cwd = std::env::current_dir().ok();
    let (git_commit, git_dirty) = cwd.as_deref().map_or((None, None), git_state);
    Provenance {
        host: crate::cache::host_name(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        executable,
        executable_blake3,
        cwd,
        git_commit,
        git_dirty,
        pipewright: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// The commit and dirty flag of the git work tree at `dir`, if `git` is there to ask.
fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return (None, None);
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.trim().is_empty());
    (Some(commit.trim().to_owned()), dirty)
}
