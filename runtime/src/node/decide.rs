//! Deciding one node: whether its stored entry can be used, else why it runs.

use std::fmt;
use std::sync::Arc;

use crate::cache::{Entry, Look, Lookup, Store};
use crate::task::TaskMeta;

/// Why a node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunReason {
    /// No entry has its key.
    NoEntry,
    /// An entry has its key but cannot be used; says why.
    Damaged(String),
    /// The runner was told to run it again.
    Forced,
    /// Its task has `cache = false`.
    NotCached,
    /// The runner keeps nothing on disk.
    InMemory,
}

impl fmt::Display for RunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunReason::NoEntry => f.write_str("no entry"),
            RunReason::Damaged(why) => write!(f, "damaged entry: {why}"),
            RunReason::Forced => f.write_str("forced"),
            RunReason::NotCached => f.write_str("`cache = false`"),
            RunReason::InMemory => f.write_str("nothing is kept on disk"),
        }
    }
}

/// How a node's entry is looked at, beside what the entry itself says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    /// The node must run even if its entry exists.
    pub(crate) forced: bool,
    /// The entry's output digest is checked now (a kept node's), so that damage is found,
    /// and repaired, in this run.
    pub(crate) verify: bool,
    /// A damaged entry is removed, so that it is rewritten (a plan leaves it).
    pub(crate) repair: bool,
    /// How far the entry is looked for: a caller that will look again under the key's lock
    /// looks only among what the run read of the index; one that holds the lock asks the
    /// index afresh, as another process may have committed the entry since.
    pub(crate) look: Look,
}

/// Decides the node `node` of task `meta` under `key`, for the executors, the worker and
/// the planner alike: the entry's metadata if it can be used, else why the node runs.
pub(crate) fn decide(
    store: &Store,
    meta: &TaskMeta,
    node: &str,
    key: &str,
    check: Check,
) -> Result<Arc<Entry>, RunReason> {
    if check.forced {
        return Err(RunReason::Forced);
    }
    if !meta.cache {
        return Err(RunReason::NotCached);
    }
    let damaged = |why: String| {
        tracing::warn!(target: "pipewright", node, key, "damaged cache entry ({why}); it will be recomputed");
        if check.repair {
            store.remove_damaged(meta.name, key, None);
        }
        RunReason::Damaged(why)
    };
    match store.look(meta.name, key, check.look) {
        Lookup::Missing => Err(RunReason::NoEntry),
        Lookup::Damaged(why) => Err(damaged(why)),
        Lookup::Present(entry) if check.verify => match store.read_verified(&entry) {
            Ok(output) => Ok(output.replaced.unwrap_or(entry)),
            Err(why) => Err(damaged(why)),
        },
        Lookup::Present(entry) => Ok(entry),
    }
}
