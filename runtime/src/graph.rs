//! The typed graph: [`Builder`] adds nodes and returns [`Handle`]s, [`Pipeline`] is the
//! finished graph (a `petgraph` DAG) that a [`Runner`](crate::Runner) executes.

use std::any::type_name;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::erased::ErasedTask;
use crate::error::Result;
use crate::hash::HashError;
use crate::key::{Components, Digest, Names};
use crate::task::{NodeNames, Task, TaskMeta};

mod builder;
mod rebuild;
mod value;

pub use builder::Builder;
use builder::Refused;

/// Gives every builder a distinct id, so a handle cannot be used with another pipeline.
static NEXT_PIPELINE_ID: AtomicU64 = AtomicU64::new(1);

/// The position of a node in its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The node's index in the order nodes were added (a topological order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A typed reference to a node of a pipeline whose output is a `T`.
///
/// Handles are returned by [`Builder::add`] (and are the fields of the value `pipeline!`
/// returns); pass one to a task's `node` constructor to wire an edge, or to
/// [`RunReport::get`](crate::RunReport::get) to read the output. They are `Copy`.
pub struct Handle<T> {
    pipeline: u64,
    id: NodeId,
    _output: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    /// The node this handle refers to.
    pub fn id(self) -> NodeId {
        self.id
    }

    pub(crate) fn pipeline(self) -> u64 {
        self.pipeline
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle<{}>(#{})", type_name::<T>(), self.id.0)
    }
}

/// How one input argument of a bound task is wired: to one upstream node or to many.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum Slot {
    One(u64, NodeId),
    Many(Vec<(u64, NodeId)>),
}

impl Slot {
    /// Wires an `&T` argument.
    pub fn one<T>(handle: Handle<T>) -> Self {
        Slot::One(handle.pipeline, handle.id)
    }

    /// Wires an `&[&T]` argument.
    pub fn many<T>(handles: impl Gather<T>) -> Self {
        Slot::Many(handles.into_iter().map(|h| (h.pipeline, h.id)).collect())
    }
}

/// What a gathered `&[&T]` input takes in a task's `node` constructor: any collection of
/// handles. A single handle is refused with a hint to put it in brackets.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a gathered input takes a list of nodes, and `{Self}` is not one",
    label = "expected a list of nodes, like `[a, b]`",
    note = "to gather a single node, put it in brackets: write `[t5]`, not `t5`"
)]
pub trait Gather<T>: IntoIterator<Item = Handle<T>> {}

impl<T, I: IntoIterator<Item = Handle<T>>> Gather<T> for I {}

/// A task with its parameters bound and its inputs wired, ready to be added to a
/// [`Builder`]. Made by the `node` constructor that `#[task]` generates:
/// `normalize::node(rows, Norm::L1)` takes the same arguments as `normalize`, with a
/// [`Handle`] in place of each input (a collection of handles for an `&[&T]` input).
pub struct Bound<T: Task> {
    task: T,
    slots: Vec<Slot>,
}

impl<T: Task> Bound<T> {
    #[doc(hidden)]
    pub fn new(task: T, slots: Vec<Slot>) -> Self {
        Bound { task, slots }
    }

    /// The task with its parameters.
    pub fn task(&self) -> &T {
        &self.task
    }
}

impl<T: Task> fmt::Debug for Bound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound")
            .field("task", &self.task)
            .field("slots", &self.slots)
            .finish()
    }
}

/// The wiring of one input argument inside a pipeline.
#[derive(Debug, Clone)]
pub(crate) enum Wire {
    One(NodeId),
    Many(Vec<NodeId>),
}

impl Wire {
    /// The nodes the input reads, in order.
    pub(crate) fn ids(&self) -> &[NodeId] {
        match self {
            Wire::One(id) => std::slice::from_ref(id),
            Wire::Many(ids) => ids,
        }
    }
}

/// One node of a pipeline.
pub(crate) struct Node {
    pub(crate) name: Arc<str>,
    pub(crate) task: Arc<dyn ErasedTask>,
    /// The task's parameters encoded with the default codec: what a worker process, or a
    /// pipeline rebuilt from a run record, makes the task from.
    pub(crate) params: Box<[u8]>,
    pub(crate) wires: Vec<Wire>,
    /// Distinct upstream nodes, in first-use order.
    pub(crate) upstream: Vec<NodeId>,
    /// Distinct downstream nodes.
    pub(crate) downstream: Vec<NodeId>,
    /// Whether each upstream node is read by one input only, so that the inputs, in
    /// argument order, are `upstream` itself.
    pub(crate) distinct_inputs: bool,
}

impl Node {
    /// The key components of this node of pipeline `pipeline`, on inputs with the given
    /// output digests.
    pub(crate) fn components(
        &self,
        pipeline: &str,
        inputs: Vec<Vec<Digest>>,
    ) -> Result<Components, HashError> {
        let names = Names {
            pipeline,
            node: &self.name,
        };
        self.task.components(names, inputs)
    }

    /// The output digests of this node's inputs, in argument order.
    pub(crate) fn input_digests(&self, digest: impl Fn(NodeId) -> Digest) -> Vec<Vec<Digest>> {
        self.wires
            .iter()
            .map(|wire| match wire {
                Wire::One(id) => vec![digest(*id)],
                Wire::Many(ids) => ids.iter().map(|id| digest(*id)).collect(),
            })
            .collect()
    }
}

/// A finished graph of tasks, ready to run. Made by `pipeline!` or [`Pipeline::builder`].
pub struct Pipeline {
    id: u64,
    name: Arc<str>,
    graph: DiGraph<(), ()>,
    /// Shared with the reports of runs, which read the nodes' names and tasks from it.
    pub(crate) nodes: Arc<[Node]>,
    /// What the tasks' contexts read their names from.
    pub(crate) names: Arc<NodeNames>,
    index: Arc<HashMap<Arc<str>, NodeId>>,
    /// The first parameter `pipeline!` added that does not survive encoding.
    refused: Option<Refused>,
}

impl Pipeline {
    /// Starts a pipeline named `name`; see [`Builder`].
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name.into())
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the pipeline has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node named `name`, if any.
    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Every node's name, in the order the nodes were added.
    pub fn node_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.nodes.iter().map(|n| &*n.name)
    }

    /// The name of node `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.nodes[id.index()].name
    }

    /// The name of the task node `id` runs.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn task_of(&self, id: NodeId) -> &'static TaskMeta {
        self.nodes[id.index()].task.meta()
    }

    /// The distinct nodes whose outputs node `id` consumes, in argument order.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn parents(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id.index()].upstream
    }

    /// The nodes that consume the output of node `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id.index()].downstream
    }

    /// The nodes in a topological order: every node after all of its parents.
    pub fn topological_order(&self) -> Vec<NodeId> {
        // Handles only point to earlier nodes, so the graph is acyclic by construction.
        petgraph::algo::toposort(&self.graph, None)
            .unwrap_or_else(|cycle| unreachable!("a pipeline has no cycle: {cycle:?}"))
            .into_iter()
            .map(|i| NodeId(i.index() as u32))
            .collect()
    }

    /// `target` and every node it depends on, directly or not, in topological order.
    ///
    /// # Panics
    ///
    /// If `target` is not a node of this pipeline.
    pub fn ancestors(&self, target: NodeId) -> Vec<NodeId> {
        let reversed = Reversed(&self.graph);
        let mut dfs = Dfs::new(reversed, NodeIndex::new(target.index()));
        let mut found = Vec::new();
        while let Some(i) = dfs.next(reversed) {
            found.push(NodeId(i.index() as u32));
        }
        found.sort_unstable();
        found
    }

    /// The nodes no other node consumes.
    pub fn sinks(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.graph
            .externals(Direction::Outgoing)
            .map(|i| NodeId(i.index() as u32))
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the pipeline can run: [`Error::LossyParam`] if `pipeline!` added a parameter
    /// that does not survive encoding.
    pub(crate) fn check_params(&self) -> Result<()> {
        match &self.refused {
            Some(refused) => Err(refused.error()),
            None => Ok(()),
        }
    }

    /// The index of nodes by name, shared with the reports of runs.
    pub(crate) fn index(&self) -> &Arc<HashMap<Arc<str>, NodeId>> {
        &self.index
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Nodes<'a>(&'a [Node]);
        impl fmt::Debug for Nodes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|n| (&n.name, n.task.params())))
                    .finish()
            }
        }
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("nodes", &Nodes(&self.nodes))
            .finish()
    }
}
