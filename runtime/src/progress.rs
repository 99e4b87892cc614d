//! A progress bar on the terminal while a run goes on: nodes settled out of those to
//! settle, how many were cached, and which tasks are running.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::NodeStatus;

/// The bar of one run.
pub(crate) struct Progress {
    bar: ProgressBar,
    cached: AtomicU64,
    running: Mutex<BTreeSet<String>>,
}

impl Progress {
    /// A bar for `total` nodes on stderr, if stderr is a terminal.
    pub(crate) fn on_terminal(total: usize) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} nodes {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(Progress {
            bar,
            cached: AtomicU64::new(0),
            running: Mutex::new(BTreeSet::new()),
        })
    }

    /// Node `node` started running.
    pub(crate) fn started(&self, node: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(node.to_owned());
        self.show(&running);
    }

    /// Node `node` settled with `status`.
    pub(crate) fn settled(&self, node: &str, status: NodeStatus) {
        if status == NodeStatus::Cached {
            self.cached.fetch_add(1, Ordering::Relaxed);
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(node);
        self.bar.inc(1);
        self.show(&running);
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

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
