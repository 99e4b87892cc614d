//! Pictures of a pipeline: the graph and what a plan or a run does to each node, as text for
//! the terminal, DOT, Mermaid, SVG, and a self-contained HTML report.
//!
//! A [`GraphView`] is made from a pipeline alone, from a plan or from a run report; each
//! renderer is a pure function of a view that returns the picture as a `String`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::graph::Pipeline;
use crate::plan::{Decision, Plan};
use crate::report::{NodeStatus, RunReport};

mod dot;
mod html;
mod layout;
mod mermaid;
mod svg;
mod text;

pub use dot::dot;
pub use html::html;
#[cfg(feature = "cli")]
pub(crate) use html::write_report;
pub use mermaid::mermaid;
pub use svg::svg;
pub use text::{text, text_in};

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

impl NodeState {
    /// Every state, in the order summaries list them.
    const ALL: [NodeState; 9] = [
        NodeState::Ran,
        NodeState::Cached,
        NodeState::Failed,
        NodeState::UpstreamFailed,
        NodeState::NotNeeded,
        NodeState::Fresh,
        NodeState::WillRun,
        NodeState::Pending,
        NodeState::Unknown,
    ];

    /// The state in words: `ran`, `upstream failed`, `will run`.
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Fresh => "fresh",
            NodeState::WillRun => "will run",
            NodeState::Pending => "pending",
            NodeState::Ran => "ran",
            NodeState::Cached => "cached",
            NodeState::Failed => "failed",
            NodeState::UpstreamFailed => "upstream failed",
            NodeState::NotNeeded => "not needed",
        }
    }

    /// The state as an identifier, for class names: `ran`, `upstream_failed`.
    pub(crate) fn ident(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Fresh => "fresh",
            NodeState::WillRun => "will_run",
            NodeState::Pending => "pending",
            NodeState::Ran => "ran",
            NodeState::Cached => "cached",
            NodeState::Failed => "failed",
            NodeState::UpstreamFailed => "upstream_failed",
            NodeState::NotNeeded => "not_needed",
        }
    }

    /// Fill, stroke and text colours, and whether the outline is dashed (planned states).
    pub(crate) fn colors(self) -> Colors {
        let (fill, stroke, dashed) = match self {
            NodeState::Unknown => ("#ffffff", "#64748b", false),
            NodeState::Fresh => ("#e0ecff", "#3b6fd8", true),
            NodeState::WillRun => ("#dcf5e3", "#2f9e55", true),
            NodeState::Pending => ("#fdf4cf", "#b8900f", true),
            NodeState::Ran => ("#c6efd3", "#1e7b3c", false),
            NodeState::Cached => ("#dbe7f7", "#45699b", false),
            NodeState::Failed => ("#fbcaca", "#c62828", false),
            NodeState::UpstreamFailed => ("#fde0c2", "#d9690b", false),
            NodeState::NotNeeded => ("#f1f2f4", "#a3a8b0", false),
        };
        Colors {
            fill,
            stroke,
            text: "#1a1d21",
            dashed,
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How a state is painted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Colors {
    pub(crate) fill: &'static str,
    pub(crate) stroke: &'static str,
    pub(crate) text: &'static str,
    pub(crate) dashed: bool,
}

/// One node of a [`GraphView`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// For a mapped node, its branches; drawn as one stacked box with their counts.
    pub map: Option<MapView>,
}

/// What a picture shows of the branches of a mapped node: how many there were, and how
/// they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapView {
    /// How many branches it made in the run; in a plan, how many it had in the last
    /// recorded run. None when not known.
    pub branches: Option<usize>,
    /// Branches that ran.
    pub ran: usize,
    /// Branches that were cached.
    pub cached: usize,
    /// Branches that failed.
    pub failed: usize,
    /// Branches that did not run because something upstream failed.
    pub upstream_failed: usize,
}

impl MapView {
    /// The counts of the branches of mapped node `name` in `report`.
    fn of_report(report: &RunReport, name: &str) -> Self {
        let branches = report.branches_named(name);
        let mut map = MapView {
            branches: Some(branches.len()),
            ..MapView::default()
        };
        for (branch, _) in branches {
            match branch.status() {
                NodeStatus::Ran => map.ran += 1,
                NodeStatus::Cached => map.cached += 1,
                NodeStatus::Failed => map.failed += 1,
                NodeStatus::UpstreamFailed => map.upstream_failed += 1,
                NodeStatus::NotNeeded | NodeStatus::Cancelled => {}
            }
        }
        map
    }

    /// The counts of the branches of a mapped node as its run recorded them.
    fn of_record(node: &crate::record::schema::NodeRecord) -> Self {
        use crate::record::schema::RecordedStatus;
        let settled = !matches!(
            node.status,
            RecordedStatus::Pending | RecordedStatus::Cancelled
        );
        let mut map = MapView {
            branches: (settled || !node.branches.is_empty()).then_some(node.branches.len()),
            ..MapView::default()
        };
        for branch in &node.branches {
            match branch.status {
                RecordedStatus::Ran => map.ran += 1,
                RecordedStatus::Cached => map.cached += 1,
                RecordedStatus::Failed => map.failed += 1,
                RecordedStatus::UpstreamFailed => map.upstream_failed += 1,
                _ => {}
            }
        }
        map
    }

    /// The branches in words: `3 branches: 2 ran, 1 cached, 0 failed`, or, before they are
    /// made, `3 branches last run` or `mapped`.
    pub fn words(&self, state: NodeState) -> String {
        let Some(n) = self.branches else {
            return "mapped".to_owned();
        };
        let plural = if n == 1 { "" } else { "es" };
        let ended = matches!(
            state,
            NodeState::Ran
                | NodeState::Cached
                | NodeState::Failed
                | NodeState::UpstreamFailed
                | NodeState::NotNeeded
                | NodeState::Unknown
        );
        if !ended {
            return format!("{n} branch{plural} last run");
        }
        let mut out = format!(
            "{n} branch{plural}: {} ran, {} cached, {} failed",
            self.ran, self.cached, self.failed
        );
        if self.upstream_failed > 0 {
            out.push_str(&format!(", {} upstream failed", self.upstream_failed));
        }
        out
    }
}

impl NodeView {
    fn new(name: &str, task: &str, state: NodeState) -> Self {
        NodeView {
            name: name.to_owned(),
            task: task.to_owned(),
            state,
            started: None,
            duration: None,
            worker: None,
            error: None,
            map: None,
        }
    }

    /// The node's state in brackets, with how long it ran: `[ran 1.2s]`, `[FAILED]`, `[run]`;
    /// empty for [`NodeState::Unknown`].
    pub fn marker(&self) -> String {
        if let Some(map) = &self.map {
            let words = map.words(self.state);
            return match self.state {
                NodeState::Unknown if map.branches.is_none() => format!("[{words}]"),
                NodeState::Fresh | NodeState::WillRun | NodeState::Pending => {
                    format!("[{}: {words}]", self.state.label())
                }
                _ => format!("[{words}]"),
            };
        }
        let word = match self.state {
            NodeState::Unknown => return String::new(),
            NodeState::Fresh => "fresh",
            NodeState::WillRun => "run",
            NodeState::Pending => "pending",
            NodeState::Ran => "ran",
            NodeState::Cached => "cached",
            NodeState::Failed => "FAILED",
            NodeState::UpstreamFailed => "upstream failed",
            NodeState::NotNeeded => "not needed",
        };
        match (self.state, self.duration) {
            (NodeState::Ran | NodeState::Failed, Some(d)) => {
                format!("[{word} {}]", short_duration(d))
            }
            _ => format!("[{word}]"),
        }
    }
}

/// What the pictures are drawn from: nodes in topological order and edges between them.
///
/// # Examples
///
/// ```
/// use pipewright::prelude::*;
/// use pipewright::render::{self, GraphView, NodeState};
///
/// #[task]
/// fn load(n: u32) -> Vec<u32> {
///     (0..n).collect()
/// }
///
/// #[task]
/// fn count(xs: &Vec<u32>) -> usize {
///     xs.len()
/// }
///
/// let p = pipeline! {
///     name = "small";
///     let xs = load(3);
///     let n = count(xs);
/// };
/// let run = Runner::in_memory().run(&p).unwrap();
/// let view = GraphView::of_run(&p, &run);
/// assert_eq!(view.nodes[1].state, NodeState::Ran);
/// assert_eq!(view.edges, [(0, 1)]);
/// assert!(render::text(&view).contains("n (count)"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GraphView {
    /// The pipeline's name.
    pub pipeline: String,
    /// The nodes, in the pipeline's order (a topological order).
    pub nodes: Vec<NodeView>,
    /// Edges `(from, to)` as indices into `nodes`, from an upstream node to its consumer.
    pub edges: Vec<(usize, usize)>,
}

impl NodeView {
    /// The view of a node from its outcome in a run.
    fn of_report(
        node: crate::report::NodeReport<'_>,
        name: &str,
        task: &str,
        report: &RunReport,
    ) -> Self {
        let state = match node.status() {
            NodeStatus::Ran => NodeState::Ran,
            NodeStatus::Cached => NodeState::Cached,
            NodeStatus::Failed => NodeState::Failed,
            NodeStatus::UpstreamFailed => NodeState::UpstreamFailed,
            NodeStatus::NotNeeded => NodeState::NotNeeded,
            // The run stopped before the node settled: nothing is known of it.
            NodeStatus::Cancelled => NodeState::Unknown,
        };
        let ran = matches!(state, NodeState::Ran | NodeState::Failed);
        let error = match state {
            NodeState::Failed => node.error().map(ToString::to_string),
            NodeState::UpstreamFailed => node
                .failed_upstream()
                .map(|up| format!("upstream node `{up}` failed")),
            _ => None,
        };
        NodeView {
            started: node.worker().map(|_| node.started()),
            duration: (ran || node.worker().is_some()).then(|| node.duration()),
            worker: node.worker(),
            error,
            map: report
                .made_branches(name)
                .then(|| MapView::of_report(report, name)),
            ..NodeView::new(name, task, state)
        }
    }
}

impl GraphView {
    /// The graph alone: every node's state is [`NodeState::Unknown`].
    pub fn of_pipeline(pipeline: &Pipeline) -> Self {
        Self::with_states(pipeline, |name, task| {
            NodeView::new(name, task, NodeState::Unknown)
        })
    }

    /// The graph with what `plan` will do to each node: [`NodeState::Fresh`],
    /// [`NodeState::WillRun`] or [`NodeState::Pending`]. A node the plan does not name is
    /// [`NodeState::Unknown`].
    pub fn of_plan(pipeline: &Pipeline, plan: &Plan) -> Self {
        let planned: HashMap<&str, &Decision> = plan
            .nodes()
            .iter()
            .map(|n| (n.node.as_str(), &n.decision))
            .collect();
        Self::with_states(pipeline, |name, task| {
            let state = match planned.get(name) {
                Some(Decision::Fresh { .. }) => NodeState::Fresh,
                Some(Decision::Run { .. }) => NodeState::WillRun,
                Some(Decision::Pending { .. } | Decision::Mapped { .. }) => NodeState::Pending,
                None => NodeState::Unknown,
            };
            let mut view = NodeView::new(name, task, state);
            if let Some(Decision::Mapped { last_branches, .. }) = planned.get(name) {
                view.map = Some(MapView {
                    branches: *last_branches,
                    ..MapView::default()
                });
            }
            view
        })
    }

    /// The graph with what a run did to each node: [`NodeState::Ran`],
    /// [`NodeState::Cached`], [`NodeState::Failed`], [`NodeState::UpstreamFailed`] or
    /// [`NodeState::NotNeeded`], and when, where and how long it ran. A node the report does
    /// not name is [`NodeState::Unknown`].
    pub fn of_run(pipeline: &Pipeline, report: &RunReport) -> Self {
        Self::with_states(pipeline, |name, task| match report.node(name) {
            Some(node) => NodeView::of_report(node, name, task, report),
            None => NodeView::new(name, task, NodeState::Unknown),
        })
    }

    /// The graph of a recorded run, read from its run directory: the nodes with their
    /// outcomes, and the edges from each node's recorded parents.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Record`] if the run's `run.json` cannot be read.
    pub fn of_record(run_dir: &std::path::Path) -> crate::Result<Self> {
        let record = crate::record::schema::RunRecord::read(run_dir)?;
        let report = RunReport::open(run_dir)?;
        let index: std::collections::HashMap<&str, usize> = record
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let nodes = record
            .nodes
            .iter()
            .map(|n| {
                let mut view = match report.node(&n.name) {
                    Some(node) => NodeView::of_report(node, &n.name, &n.task, &report),
                    None => NodeView::new(&n.name, &n.task, NodeState::Unknown),
                };
                if n.over.is_some() && view.map.is_none() {
                    view.map = Some(MapView::of_record(n));
                }
                view
            })
            .collect();
        let edges = record
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                n.parents
                    .iter()
                    .filter_map(|p| index.get(p.as_str()).copied())
                    .map(move |up| (up, i))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(GraphView {
            pipeline: record.pipeline,
            nodes,
            edges,
        })
    }

    fn with_states(pipeline: &Pipeline, mut node: impl FnMut(&str, &str) -> NodeView) -> Self {
        let nodes = pipeline
            .all_nodes()
            .map(|n| {
                let mut view = node(n.name(), n.task().meta().name);
                if n.map().is_some() && view.map.is_none() {
                    view.map = Some(MapView::default());
                }
                view
            })
            .collect();
        let edges = pipeline
            .all_nodes()
            .enumerate()
            .flat_map(|(i, n)| n.upstream().iter().map(move |up| (up.index(), i)))
            .collect();
        GraphView {
            pipeline: pipeline.name().to_owned(),
            nodes,
            edges,
        }
    }

    /// How many nodes are in each state, in words: `6 nodes: 3 ran, 1 cached, 1 failed`.
    pub fn summary(&self) -> String {
        let n = self.nodes.len();
        let mut out = format!("{n} node{}", if n == 1 { "" } else { "s" });
        let mut first = true;
        for state in NodeState::ALL {
            let count = self.nodes.iter().filter(|n| n.state == state).count();
            if count == 0 || state == NodeState::Unknown {
                continue;
            }
            out.push_str(if first { ": " } else { ", " });
            first = false;
            out.push_str(&format!("{count} {}", summary_word(state)));
        }
        out
    }

    /// The end of the last node that ran, from the start of the run.
    pub(crate) fn span(&self) -> Duration {
        self.nodes
            .iter()
            .filter_map(|n| Some(n.started? + n.duration.unwrap_or_default()))
            .max()
            .unwrap_or_default()
    }
}

/// How a summary names the nodes in `state`.
fn summary_word(state: NodeState) -> &'static str {
    match state {
        NodeState::WillRun => "to run",
        other => other.label(),
    }
}

/// A duration in a few characters: `850µs`, `12ms`, `1.2s`, `3m05s`.
pub(crate) fn short_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 10_000 {
        format!("{:.1}ms", micros as f64 / 1e3)
    } else if micros < 1_000_000 {
        format!("{}ms", micros / 1_000)
    } else if micros < 60_000_000 {
        format!("{:.1}s", micros as f64 / 1e6)
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Escapes text for XML and HTML content and attribute values, dropping the control
/// characters XML cannot hold.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// How many terminal columns a character takes (two for wide East Asian characters and
/// most emoji, none for combining marks).
pub(crate) fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// How many terminal columns `s` takes.
pub(crate) fn text_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_escapes_markup_and_drops_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{7}é"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;é"
        );
    }

    #[test]
    fn widths_count_wide_characters_twice() {
        assert_eq!(text_width("abc"), 3);
        assert_eq!(text_width("データ"), 6);
        assert_eq!(text_width("café"), 4);
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(short_duration(Duration::from_micros(2_340)), "2.3ms");
        assert_eq!(short_duration(Duration::from_millis(120)), "120ms");
        assert_eq!(short_duration(Duration::from_millis(1_250)), "1.2s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m05s");
    }
}
