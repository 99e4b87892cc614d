//! The progress of a run while it goes on: a bar on the terminal (nodes settled out of those
//! to settle, how many were cached, and which tasks are running), and the journal in its
//! run directory (a line for each node as it settles, and one for each batch of the entries
//! committed after their nodes settled).

use std::borrow::Cow;
#[cfg(feature = "progress")]
use std::collections::BTreeSet;
use std::fs;
#[cfg(feature = "progress")]
use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
#[cfg(feature = "progress")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cache::{Committed, StoreError};
use crate::chain::chain;
use crate::record::schema::{JournalLine, RecordedStatus, StoredLine};
use crate::report::{NO_NODE, NO_WORKER, NodeOutcome, NodeStatus};

/// The progress of one run: its bar, its journal, or both.
pub(crate) struct Progress {
    bar: Option<Bar>,
    journal: Option<Journal>,
}

impl Progress {
    /// The progress of a run: a bar for `total` nodes on stderr if `bar` and stderr is a
    /// terminal (and the `progress` feature is on), and `journal`; `None` if there is
    /// neither.
    pub(crate) fn new(bar: bool, total: usize, journal: Option<Journal>) -> Option<Self> {
        let bar = if bar { Bar::on_stderr(total) } else { None };
        (bar.is_some() || journal.is_some()).then_some(Progress { bar, journal })
    }

    /// Node `node` started running.
    pub(crate) fn started(&self, node: &str) {
        if let Some(bar) = &self.bar {
            bar.started(node);
        }
    }

    /// Node `node`, at `index` in the pipeline, settled with `outcome`.
    pub(crate) fn settled(&self, index: usize, node: &str, outcome: &NodeOutcome) {
        if let Some(journal) = &self.journal {
            journal.settled(index, outcome);
        }
        if let Some(bar) = &self.bar {
            bar.settled(node, outcome.status == NodeStatus::Cached);
        }
    }

    /// Node `index`, which settled as `before`, settled again with `outcome` (its entry's
    /// commit failed after it settled, or one above it did): the journal has its new line,
    /// and the bar, which counted it once, counts it as it is now.
    pub(crate) fn resettled(&self, index: usize, before: NodeStatus, outcome: &NodeOutcome) {
        if let Some(journal) = &self.journal {
            journal.settled(index, outcome);
        }
        if let Some(bar) = &self.bar {
            bar.resettled(
                before == NodeStatus::Cached,
                outcome.status == NodeStatus::Cached,
            );
        }
    }

    /// Who hears, by node index, that the entries of nodes whose rows were queued are
    /// committed: the journal, which says so.
    pub(crate) fn committed(&self) -> Option<Arc<dyn Committed>> {
        let journal = self.journal.as_ref()?;
        Some(journal.shared.clone())
    }

    /// Mapped node `index` made `branches` branches.
    pub(crate) fn branches_made(&self, index: usize, branches: usize) {
        if let Some(journal) = &self.journal {
            journal.branches_made(index, branches);
        }
    }

    /// Branch `branch` of mapped node `index` (named `node`) settled with `outcome`, after
    /// the failed branch `failed_upstream` (a mapped node's index, and its branch) if it did
    /// not run because of it.
    pub(crate) fn branch_settled(
        &self,
        index: usize,
        node: &str,
        branch: usize,
        outcome: &NodeOutcome,
        failed_upstream: Option<(usize, usize)>,
    ) {
        if let Some(journal) = &self.journal {
            journal.branch_settled(index, branch, outcome, failed_upstream);
        }
        if let Some(bar) = &self.bar {
            bar.branch_settled(node, branch);
        }
    }

    /// Removes the bar, and writes and closes the journal.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the journal could not be written.
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        match self.journal {
            Some(journal) => journal.close(),
            None => Ok(()),
        }
    }
}

#[cfg(all(test, feature = "progress"))]
impl Progress {
    /// The progress of a run of `total` nodes with a bar drawn nowhere, and no journal.
    pub(crate) fn with_hidden_bar(total: usize) -> Self {
        Progress {
            bar: Some(Bar::new(total, indicatif::ProgressDrawTarget::hidden())),
            journal: None,
        }
    }

    /// How many nodes the bar counts as settled, out of how many, and how many of them as
    /// cached.
    pub(crate) fn counts(&self) -> Option<(u64, Option<u64>, u64)> {
        let bar = self.bar.as_ref()?;
        Some((
            bar.bar.position(),
            bar.bar.length(),
            bar.cached.load(Ordering::Relaxed),
        ))
    }
}

/// The bar of one run.
#[cfg(feature = "progress")]
struct Bar {
    bar: indicatif::ProgressBar,
    cached: AtomicU64,
    running: Mutex<BTreeSet<String>>,
}

#[cfg(feature = "progress")]
impl Bar {
    /// A bar for `total` nodes on stderr, if stderr is a terminal.
    fn on_stderr(total: usize) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = Self::new(total, indicatif::ProgressDrawTarget::stderr());
        bar.bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }

    /// A bar for `total` nodes, drawn on `target`.
    fn new(total: usize, target: indicatif::ProgressDrawTarget) -> Self {
        use indicatif::{ProgressBar, ProgressStyle};

        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} nodes {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Bar {
            bar,
            cached: AtomicU64::new(0),
            running: Mutex::new(BTreeSet::new()),
        }
    }

    fn started(&self, node: &str) {
        let mut running = lock(&self.running);
        running.insert(node.to_owned());
        self.show(&running);
    }

    /// A branch is not counted, as the bar counts nodes, but is no longer running.
    fn branch_settled(&self, node: &str, branch: usize) {
        let mut running = lock(&self.running);
        if !running.is_empty() && running.remove(&crate::graph::branch_name(node, branch)) {
            self.show(&running);
        }
    }

    fn settled(&self, node: &str, cached: bool) {
        if cached {
            self.cached.fetch_add(1, Ordering::Relaxed);
        }
        let mut running = lock(&self.running);
        running.remove(node);
        self.bar.inc(1);
        self.show(&running);
    }

    /// A node counted already settled again: only whether it counts as cached may change.
    fn resettled(&self, was_cached: bool, cached: bool) {
        if was_cached == cached {
            return;
        }
        if cached {
            self.cached.fetch_add(1, Ordering::Relaxed);
        } else {
            self.cached.fetch_sub(1, Ordering::Relaxed);
        }
        self.show(&lock(&self.running));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn show(&self, running: &BTreeSet<String>) {
        let mut names: Vec<&str> = running.iter().map(String::as_str).take(4).collect();
        if running.len() > 4 {
            names.push("…");
        }
        self.bar.set_message(format!(
            "({} cached) {}",
            self.cached.load(Ordering::Relaxed),
            names.join(", ")
        ));
    }
}

/// No bar: the `progress` feature is off.
#[cfg(not(feature = "progress"))]
enum Bar {}

#[cfg(not(feature = "progress"))]
impl Bar {
    fn on_stderr(_total: usize) -> Option<Self> {
        None
    }

    fn started(&self, _node: &str) {
        match *self {}
    }

    fn branch_settled(&self, _node: &str, _branch: usize) {
        match *self {}
    }

    fn settled(&self, _node: &str, _cached: bool) {
        match *self {}
    }

    fn resettled(&self, _was_cached: bool, _cached: bool) {
        match *self {}
    }

    fn finish(&self) {
        match *self {}
    }
}

/// A run's journal, appended to by a thread of its own: a node that settles adds its
/// whole line to what is waiting, and the thread writes all that waits with one `write`,
/// at once if its last write was [`GATHER`] ago or more, else when that time has passed.
/// So the file holds only whole lines but for its last one (if the process is killed
/// during a write), a line is on disk at most [`GATHER`] after its node settled, and a run
/// that settles thousands of nodes a second wakes the thread and writes a hundred times a
/// second at most, not once per node.
pub(crate) struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
}

/// The least time between two writes of the journal's thread, in which it gathers the
/// lines that come; a flush or the journal's end cuts it short.
const GATHER: Duration = Duration::from_millis(10);

/// What the nodes and the journal's thread share.
struct Shared {
    waiting: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    /// Whole lines not written yet.
    lines: Vec<u8>,
    /// No line comes any more: write what waits and stop.
    closed: bool,
    /// The thread is writing lines it took.
    writing: bool,
    /// The thread waits for a first line, and must be woken when one comes.
    idle: bool,
    /// Someone waits for what was added to be written: the thread stops gathering.
    hurry: bool,
    /// Why a write failed; lines are dropped from then on.
    failed: Option<std::io::Error>,
}

impl Journal {
    /// Starts the journal's thread, which creates the journal at `path` (off the run's
    /// path: a new file can take a file system a while), with `header` (a whole line) as
    /// the first line to write. A journal that cannot be created fails as a write does.
    pub(crate) fn create(path: &Path, header: Vec<u8>) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting {
                lines: header,
                ..Waiting::default()
            }),
            wake: Condvar::new(),
        });
        let (theirs, at) = (shared.clone(), path.to_owned());
        let writer = std::thread::Builder::new()
            .name("pipewright-journal".to_owned())
            .spawn(move || write_lines(&theirs, &at))
            .map_err(|e| StoreError::new("cannot start the writer of", path, e))?;
        Ok(Journal {
            shared,
            writer: Some(writer),
            path: path.to_owned(),
        })
    }

    /// A handle that waits for the lines added so far to be written, from another thread.
    pub(crate) fn handle(&self) -> JournalHandle {
        JournalHandle(self.shared.clone())
    }

    /// Adds the line of node `index`, settled with `outcome`.
    fn settled(&self, index: usize, outcome: &NodeOutcome) {
        let mut line = settled_line(index, outcome);
        line.upstream_failed = (outcome.status == NodeStatus::UpstreamFailed
            && outcome.failed_upstream != NO_NODE)
            .then_some(outcome.failed_upstream);
        line.queued = outcome.queued;
        self.add(&line);
    }

    /// Adds the line that says mapped node `index` made `branches` branches.
    fn branches_made(&self, index: usize, branches: usize) {
        let mut line = JournalLine::new(position(index), RecordedStatus::Pending);
        line.branches = Some(position(branches));
        self.add(&line);
    }

    /// Adds the line of branch `branch` of mapped node `index`, settled with `outcome`
    /// after the failed branch `failed_upstream`, if any.
    fn branch_settled(
        &self,
        index: usize,
        branch: usize,
        outcome: &NodeOutcome,
        failed_upstream: Option<(usize, usize)>,
    ) {
        let mut line = settled_line(index, outcome);
        line.branch = Some(position(branch));
        if let Some((up, i)) = failed_upstream {
            line.upstream_failed = Some(position(up));
            line.upstream_branch = Some(position(i));
        }
        self.add(&line);
    }

    /// Adds `line`.
    fn add(&self, line: &JournalLine) {
        self.shared.add(line);
    }

    /// Writes every line that waits, stops the thread, and says whether every write
    /// succeeded.
    pub(crate) fn close(mut self) -> Result<(), StoreError> {
        self.stop();
        match lock(&self.shared.waiting).failed.take() {
            Some(e) => Err(StoreError::new("cannot write the journal", &self.path, e)),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        lock(&self.shared.waiting).closed = true;
        self.shared.wake.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Shared {
    /// Adds `line`, encoded whole before the lock is taken.
    fn add(&self, line: &impl Serialize) {
        // A line that cannot be encoded (it always can) is left out, never written in part.
        let Ok(mut bytes) = serde_json::to_vec(line) else {
            return;
        };
        bytes.push(b'\n');
        let mut waiting = lock(&self.waiting);
        if waiting.failed.is_some() {
            return;
        }
        waiting.lines.extend_from_slice(&bytes);
        let idle = std::mem::take(&mut waiting.idle);
        drop(waiting);
        // Only a thread waiting for a first line is woken; one that gathers writes this line
        // with the others. All are woken, as a thread flushing the journal waits on the same
        // condition.
        if idle {
            self.wake.notify_all();
        }
    }
}

/// The nodes whose queued entries were committed have a line that says so, one for each
/// batch of them.
impl Committed for Shared {
    fn committed(&self, rows: &[u32]) {
        self.add(&StoredLine {
            stored: Cow::Borrowed(rows),
        });
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A handle to a run's journal, for a thread that must see what settled so far on disk
/// before the process exits.
#[derive(Clone)]
pub(crate) struct JournalHandle(Arc<Shared>);

impl JournalHandle {
    /// Waits until every line added so far is written, or the writes failed, or `patience`
    /// passed; returns whether every line is written.
    pub(crate) fn flush(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut waiting = lock(&self.0.waiting);
        loop {
            if waiting.failed.is_some() {
                return false;
            }
            if waiting.lines.is_empty() && !waiting.writing {
                return true;
            }
            if !waiting.lines.is_empty() && !waiting.hurry {
                waiting.hurry = true;
                self.0.wake.notify_all();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            waiting = self
                .0
                .wake
                .wait_timeout(waiting, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The journal's thread: creates the journal at `path`, then writes what waits, whole,
/// until the journal is closed and nothing waits.
fn write_lines(shared: &Shared, path: &Path) {
    let opened = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(e) => {
            let mut waiting = lock(&shared.waiting);
            waiting.failed = Some(e);
            waiting.lines = Vec::new();
            drop(waiting);
            shared.wake.notify_all();
            return;
        }
    };
    let mut lines = Vec::new();
    let mut last: Option<Instant> = None;
    loop {
        {
            let mut waiting = lock(&shared.waiting);
            while waiting.lines.is_empty() && !waiting.closed {
                waiting.idle = true;
                waiting = shared
                    .wake
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            waiting.idle = false;
            if waiting.lines.is_empty() {
                return;
            }
            // Within GATHER of the last write, lines that come meanwhile are written with
            // this one, in one `write`, when GATHER has passed.
            let until = last.map_or_else(Instant::now, |last| last + GATHER);
            while !waiting.closed && !waiting.hurry {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                waiting = shared
                    .wake
                    .wait_timeout(waiting, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            waiting.hurry = false;
            std::mem::swap(&mut lines, &mut waiting.lines);
            waiting.writing = true;
        }
        let written = file.write_all(&lines);
        last = Some(Instant::now());
        let mut waiting = lock(&shared.waiting);
        waiting.writing = false;
        if let Err(e) = written {
            waiting.failed = Some(e);
            waiting.lines = Vec::new();
        }
        let failed = waiting.failed.is_some();
        drop(waiting);
        // Who waits for the lines to be written hears of it.
        shared.wake.notify_all();
        if failed {
            return;
        }
        lines.clear();
    }
}

/// A position (of a node, a branch, or a count of branches) as a journal line holds it.
fn position(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// The line of node (or branch of mapped node) `index`, settled with `outcome`, without
/// what it waited on.
fn settled_line(index: usize, outcome: &NodeOutcome) -> JournalLine {
    let (started_secs, duration_secs) = outcome.times_secs();
    let mut line = JournalLine::new(position(index), recorded(outcome.status));
    line.started_secs = started_secs;
    line.duration_secs = duration_secs;
    line.worker = (outcome.worker != NO_WORKER).then_some(outcome.worker);
    line.error = outcome
        .details
        .as_ref()
        .and_then(|d| d.error.as_deref())
        .map(|e| chain(e))
        .unwrap_or_default();
    line
}

/// How a node's status is recorded.
pub(crate) fn recorded(status: NodeStatus) -> RecordedStatus {
    match status {
        NodeStatus::Ran => RecordedStatus::Ran,
        NodeStatus::Cached => RecordedStatus::Cached,
        NodeStatus::Failed => RecordedStatus::Failed,
        NodeStatus::UpstreamFailed => RecordedStatus::UpstreamFailed,
        NodeStatus::NotNeeded => RecordedStatus::NotNeeded,
        NodeStatus::Cancelled => RecordedStatus::Cancelled,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the journal at `path`.
    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_flush_writes_the_lines_gathered_since_the_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::record::schema::JOURNAL);
        let journal = Journal::create(&path, b"{\"header\":true}\n".to_vec()).unwrap();
        let handle = journal.handle();
        assert!(handle.flush(Duration::from_secs(60)));
        for index in 0..1000 {
            journal.settled(index, &NodeOutcome::new(NodeStatus::Cached));
        }
        assert!(handle.flush(Duration::from_secs(60)));
        let written = lines(&path);
        assert_eq!(written.len(), 1001);
        let last: JournalLine = serde_json::from_str(&written[1000]).unwrap();
        assert_eq!((last.node, last.status), (999, RecordedStatus::Cached));
        journal.close().unwrap();
        assert_eq!(lines(&path).len(), 1001);
    }
}
