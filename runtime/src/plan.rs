//! Planning: what a run would do to each node, decided before anything runs, and why.
//!
//! Walking the graph in topological order, a node is *fresh* when its key is known and its
//! entry is in the store, *run* when its entry is missing or damaged, it is forced, or its
//! task is not cached, and *pending* when its key waits on an upstream node that will run
//! (its inputs' digests are known only once they exist). The executor makes the same
//! decisions, pending nodes included, the moment their inputs exist.

use std::fmt;

use crate::cache::{Look, Store};
use crate::error::{Error, Result};
use crate::graph::{NodeId, Pipeline};
use crate::key::{Digest, hex, with_input_files};
pub use crate::node::RunReason;
use crate::node::decide::{Check, decide};

/// What a run will do to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Its output is in the store under `key`.
    Fresh {
        /// The node key, in hex.
        key: String,
    },
    /// It will run.
    Run {
        /// The node key, in hex (absent in a runner that keeps nothing on disk).
        key: Option<String>,
        /// Why.
        reason: RunReason,
    },
    /// It will be decided when `upstream`, which runs, has produced its output.
    Pending {
        /// The first of its upstream nodes that will run.
        upstream: String,
    },
    /// A mapped node: its branches are made, and each decided as a node is, when `over`,
    /// the node it maps over, has its output.
    Mapped {
        /// The node it maps over.
        over: String,
        /// How many branches it had in the last recorded run of the pipeline, if any.
        last_branches: Option<usize>,
    },
}

/// One node's line of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedNode {
    /// The node's name.
    pub node: String,
    /// Its task's name.
    pub task: &'static str,
    /// What will happen to it.
    pub decision: Decision,
}

/// What a run would do, node by node, in the pipeline's order. Made by
/// [`Runner::plan`](crate::Runner::plan); printing it shows one line per node.
#[derive(Debug, Clone)]
#[must_use = "a plan only says what a run would do: read or print it"]
pub struct Plan {
    pub(crate) pipeline: String,
    pub(crate) nodes: Vec<PlannedNode>,
}

impl Plan {
    /// Every node's line, in the pipeline's order.
    pub fn nodes(&self) -> &[PlannedNode] {
        &self.nodes
    }

    /// The line of the node named `name`.
    pub fn node(&self, name: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| n.node == name)
    }

    /// How many nodes are fresh, will run, and are pending (mapped nodes among them).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for n in &self.nodes {
            match n.decision {
                Decision::Fresh { .. } => counts.0 += 1,
                Decision::Run { .. } => counts.1 += 1,
                Decision::Pending { .. } | Decision::Mapped { .. } => counts.2 += 1,
            }
        }
        counts
    }

    /// Notes how many branches each mapped node had in the last run, as `last` says by
    /// the mapped node's name.
    pub(crate) fn set_last_branches(&mut self, last: impl Fn(&str) -> Option<usize>) {
        for n in &mut self.nodes {
            if let Decision::Mapped { last_branches, .. } = &mut n.decision {
                *last_branches = last(&n.node);
            }
        }
    }
}

/// `plan for `p` (5 nodes: 2 fresh, 1 to run, 2 pending)` then one line per node.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (fresh, run, pending) = self.counts();
        let total = self.nodes.len();
        writeln!(
            f,
            "plan for `{}` ({total} {}: {fresh} fresh, {run} to run, {pending} pending)",
            self.pipeline,
            if total == 1 { "node" } else { "nodes" }
        )?;
        let width = self.nodes.iter().map(|n| n.node.len()).max().unwrap_or(0);
        for n in &self.nodes {
            let (word, why) = match &n.decision {
                Decision::Fresh { key } => ("fresh", format!("cached {}", &key[..12])),
                Decision::Run { reason, .. } => ("run", reason.to_string()),
                Decision::Pending { upstream } => ("pending", format!("waits on `{upstream}`")),
                Decision::Mapped {
                    over,
                    last_branches,
                } => (
                    "mapped",
                    match last_branches {
                        Some(n) => {
                            format!("branches made when `{over}` is ready ({n} in the last run)")
                        }
                        None => format!("branches made when `{over}` is ready"),
                    },
                ),
            };
            writeln!(f, "  {word:<7}  {:<width$}  {:<16}  {why}", n.node, n.task)?;
        }
        Ok(())
    }
}

/// Plans `pipeline`: see the module docs. `keep[i]` says whether node `i` is kept (its
/// entry is verified), `forced[i]` whether it must run. Also returns the output digest of
/// each fresh node.
pub(crate) fn plan(
    pipeline: &Pipeline,
    store: Option<&Store>,
    keep: &[bool],
    forced: &[bool],
) -> Result<(Plan, Vec<Option<Digest>>)> {
    let mut digests: Vec<Option<Digest>> = vec![None; pipeline.len()];
    let mut nodes = Vec::with_capacity(pipeline.len());
    for (i, node) in pipeline.all_nodes().enumerate() {
        let meta = node.task().meta();
        let decision = match store {
            // Its list is known only once the node it maps over has run or been read.
            _ if let Some(map) = node.map() => Decision::Mapped {
                over: pipeline.node_name(map.over).to_owned(),
                last_branches: None,
            },
            None => Decision::Run {
                key: None,
                reason: RunReason::InMemory,
            },
            Some(store) => match node
                .upstream()
                .iter()
                .find(|up| digests[up.index()].is_none())
            {
                Some(up) => Decision::Pending {
                    upstream: pending_root(pipeline, &nodes, *up),
                },
                None => {
                    let inputs = node.input_digests(|up| digests[up.index()].unwrap_or_default());
                    // An input file is read only if its stat changed since it was hashed.
                    let components =
                        with_input_files(Some(store), || node.components(pipeline.name(), inputs))
                            .map_err(|e| Error::key(node.name(), e))?;
                    let key = hex(&components.key());
                    let check = Check {
                        forced: forced[i],
                        verify: keep[i],
                        repair: false,
                        look: Look::Index,
                    };
                    match decide(store, meta, node.name(), &key, check) {
                        Ok(entry) => {
                            digests[i] = Some(entry.digest);
                            Decision::Fresh { key }
                        }
                        Err(reason) => Decision::Run {
                            key: Some(key),
                            reason,
                        },
                    }
                }
            },
        };
        nodes.push(PlannedNode {
            node: node.name().to_string(),
            task: meta.name,
            decision,
        });
    }
    let plan = Plan {
        pipeline: pipeline.name().to_owned(),
        nodes,
    };
    Ok((plan, digests))
}

/// The upstream node that will run which `up` (itself running or pending) waits on.
fn pending_root(pipeline: &Pipeline, planned: &[PlannedNode], up: NodeId) -> String {
    match &planned[up.index()].decision {
        Decision::Pending { upstream } => upstream.clone(),
        _ => pipeline.node_name(up).to_owned(),
    }
}
