//! Where and with what a run ran: host, system, executable, working directory and git state,
//! gathered beside the run so that it does not wait for them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use super::schema::Provenance;

/// The provenance of a run, being gathered.
pub(crate) enum Gathering {
    /// Everything was known already.
    Ready(Provenance),
    /// A thread asks `git` and hashes the executable.
    Thread(JoinHandle<Provenance>),
}

impl Gathering {
    /// Starts gathering the provenance of a run in this process's working directory: at
    /// once if this process knows it already, else on a thread of its own.
    pub(crate) fn start() -> Self {
        let cwd = std::env::current_dir().ok();
        if let Some(known) = known(cwd.as_deref()) {
            return Gathering::Ready(known);
        }
        let for_thread = cwd.clone();
        std::thread::Builder::new()
            .name("pipewright-provenance".to_owned())
            .spawn(move || provenance(for_thread))
            .map_or_else(|_| Gathering::Ready(provenance(cwd)), Gathering::Thread)
    }

    /// The provenance, once gathered.
    pub(crate) fn join(self) -> Provenance {
        match self {
            Gathering::Ready(provenance) => provenance,
            // A thread that panicked leaves what it could not learn unknown.
            Gathering::Thread(thread) => thread.join().unwrap_or_else(|_| Provenance {
                host: crate::cache::host_name(),
                os: os(),
                cpus: cpus(),
                executable: None,
                executable_blake3: None,
                cwd: std::env::current_dir().ok(),
                git_commit: None,
                git_dirty: None,
                pipewright: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        }
    }
}

/// The executable and its digest, taken once per process: the code that runs does not
/// change while it runs.
static EXECUTABLE: OnceLock<(Option<PathBuf>, Option<String>)> = OnceLock::new();

/// The git commit and dirty flag of each working directory, taken once per process, for
/// the same reason.
static GIT: Mutex<Option<HashMap<PathBuf, GitState>>> = Mutex::new(None);

type GitState = (Option<String>, Option<bool>);

/// The provenance of a run in `cwd`, if this process has gathered everything it needs.
fn known(cwd: Option<&Path>) -> Option<Provenance> {
    let (executable, executable_blake3) = EXECUTABLE.get()?.clone();
    let (git_commit, git_dirty) = match cwd {
        Some(cwd) => GIT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()?
            .get(cwd)?
            .clone(),
        None => (None, None),
    };
    Some(Provenance {
        host: crate::cache::host_name(),
        os: os(),
        cpus: cpus(),
        executable,
        executable_blake3,
        cwd: cwd.map(Path::to_owned),
        git_commit,
        git_dirty,
        pipewright: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// The provenance of a run in `cwd`: what this process knows, and what it does not yet,
/// learned now (the executable's digest, the git state of `cwd`).
fn provenance(cwd: Option<PathBuf>) -> Provenance {
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
    let (git_commit, git_dirty) = match cwd.as_deref() {
        Some(dir) => {
            let known = GIT
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|states| states.get(dir).cloned());
            known.unwrap_or_else(|| {
                let state = git_state(dir);
                GIT.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(HashMap::new)
                    .insert(dir.to_owned(), state.clone());
                state
            })
        }
        None => (None, None),
    };
    Provenance {
        host: crate::cache::host_name(),
        os: os(),
        cpus: cpus(),
        executable,
        executable_blake3,
        cwd,
        git_commit,
        git_dirty,
        pipewright: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

fn os() -> String {
    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The commit and dirty flag of the git work tree at `dir`, if `git` is there to ask: one
/// `git status`, whose header names the commit and whose other lines are the tracked files
/// that changed.
fn git_state(dir: &Path) -> GitState {
    let output = std::process::Command::new("git")
        .args([
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=no",
        ])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(output) = output else {
        return (None, None);
    };
    parse_git_status(&String::from_utf8_lossy(&output.stdout))
}

/// The commit and dirty flag in the output of `git status --porcelain=v2 --branch`; none
/// before the first commit.
fn parse_git_status(status: &str) -> GitState {
    let commit = status
        .lines()
        .find_map(|line| line.strip_prefix("# branch.oid "))
        .map(str::trim)
        .filter(|oid| !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_hexdigit()));
    match commit {
        Some(commit) => {
            let dirty = status
                .lines()
                .any(|line| !line.is_empty() && !line.starts_with('#'));
            (Some(commit.to_owned()), Some(dirty))
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_and_dirty_flag_are_read_from_one_status() {
        let clean = "# branch.oid 44eedbbeb15f3b11a6256fb29ecb2809ab08ca7e\n\
                     # branch.head main\n";
        assert_eq!(
            parse_git_status(clean),
            (
                Some("44eedbbeb15f3b11a6256fb29ecb2809ab08ca7e".to_owned()),
                Some(false)
            )
        );
        let dirty = format!("{clean}1 .M N... 100644 100644 100644 aa bb src/lib.rs\n");
        assert_eq!(parse_git_status(&dirty).1, Some(true));
        let before_the_first_commit = "# branch.oid (initial)\n# branch.head main\n";
        assert_eq!(parse_git_status(before_the_first_commit), (None, None));
    }

    #[test]
    fn a_run_in_a_git_work_tree_records_its_commit_off_the_calling_thread() {
        let in_git = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let provenance = Gathering::start().join();
        assert_eq!(provenance.git_commit, in_git);
        assert_eq!(provenance.git_dirty.is_some(), in_git.is_some());
        assert_eq!(provenance.executable_blake3.map(|d| d.len()), Some(64));
        // Known now: the next run's is ready at once, and the same.
        let again = Gathering::start();
        assert!(matches!(again, Gathering::Ready(_)));
        assert_eq!(again.join().git_commit, in_git);
    }
}
