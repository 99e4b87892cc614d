//! Pictures of a pipeline: the graph and what a plan or a run does to each node, as text for
//! the terminal, DOT, Mermaid, SVG, and a self-contained HTML report.

use std::time::Duration;

/// What a picture shows of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeState {
    /// No plan or run: the graph alone.
    Unknown,
    /// Planned: its entry is in the store.
    Fresh,
    /// Planned: it will run.
    WillRun,
    /// Planned: it waits on an upstream node that runs.
    Pending,
    /// Run: it ran.
    Ran,
    /// Run: it was cached.
    Cached,
    /// Run: it failed.
    Failed,
    /// Run: an upstream node failed.
    UpstreamFailed,
    /// Run: it was not needed for the targets of the run.
    NotNeeded,
}

/// One node of a [`GraphView`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// Its task's name.
    pub task: String,
    /// What happened or will happen to it.
    pub state: NodeState,
    /// When it started, from the start of the run.
    pub started: Option<Duration>,
    /// How long it ran.
    pub duration: Option<Duration>,
    /// The worker that ran it.
    pub worker: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What the pictures are drawn from: nodes in topological order and edges between them.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphView {
    /// The pipeline's name.
    pub pipeline: String,
    /// The nodes, in the pipeline's order (a topological order).
    pub nodes: Vec<NodeView>,
    /// Edges `(from, to)` as indices into `nodes`, from an upstream node to its consumer.
    pub edges: Vec<(usize, usize)>,
}
