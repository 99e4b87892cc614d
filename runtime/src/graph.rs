//! The typed graph: [`Builder`] adds nodes and returns [`Handle`]s, [`Pipeline`] is the
//! finished graph that a [`Runner`](crate::Runner) executes, its nodes kept in flat vectors
//! ([`Nodes`]).

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::error::Result;
use crate::task::{NodeNames, Task, TaskMeta};

mod builder;
mod map;
mod nodes;
mod rebuild;
mod value;

pub use builder::Builder;
use builder::Refused;
pub(crate) use map::{ELEMENT, Elements, MapSpec, branch_name, branch_of};
pub use map::{Mapped, Over};
pub(crate) use nodes::{Node, Nodes, Wire};

/// Gives every builder a distinct id, so a handle cannot be used with another pipeline.
static NEXT_PIPELINE_ID: AtomicU64 = AtomicU64::new(1);

/// The position of a node in its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The node at index `i` (below `u32::MAX`, as every node's is).
    pub(crate) fn at(i: usize) -> NodeId {
        NodeId(i as u32)
    }

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
        Slot::Many(handles.__wired())
    }
}

/// What a gathered `&[&T]` input takes in a task's `node` constructor: any collection of
/// handles, or a [`Mapped`] node (every branch, in order). A single handle is refused with
/// a hint to put it in brackets.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a gathered input takes a list of nodes, and `{Self}` is not one",
    label = "expected a list of nodes, like `[a, b]`",
    note = "to gather a single node `n`, put it in brackets: write `[n]`, not `n`"
)]
pub trait Gather<T> {
    /// The nodes gathered, each with its pipeline's id.
    fn __wired(self) -> Vec<(u64, NodeId)>;
}

impl<T, I: IntoIterator<Item = Handle<T>>> Gather<T> for I {
    fn __wired(self) -> Vec<(u64, NodeId)> {
        self.into_iter().map(|h| (h.pipeline, h.id)).collect()
    }
}

/// A mapped node is wired as itself: the executor reads every branch's output in its place
/// (no [`Handle`] names a mapped node, so a gathered mapped node is never mistaken for one).
impl<T> Gather<T> for Mapped<T> {
    fn __wired(self) -> Vec<(u64, NodeId)> {
        vec![(self.pipeline, self.id)]
    }
}

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

/// A finished graph of tasks, ready to run. Made by `pipeline!` or [`Pipeline::builder`].
pub struct Pipeline {
    id: u64,
    /// The pipeline's and the nodes' names, shared with the tasks' contexts and the reports
    /// of runs.
    pub(crate) names: Arc<NodeNames>,
    /// Shared with the reports of runs, which read the nodes' tasks from it.
    pub(crate) nodes: Arc<Nodes>,
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
        &self.names.pipeline
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the pipeline has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 0
    }

    /// The node named `name`, if any.
    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.nodes.find(&self.names, name)
    }

    /// The mapped node and position of the branch named `name` (`counts[3]`), if `name`
    /// names a branch of one of its mapped nodes; whether the list has that many elements
    /// is known only when the run makes it.
    pub(crate) fn branch(&self, name: &str) -> Option<(NodeId, usize)> {
        let (mapped, i) = branch_of(name)?;
        let id = self.node(mapped)?;
        self.nodes.map(id).is_some().then_some((id, i))
    }

    /// Every node's name, in the order the nodes were added.
    pub fn node_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.names.iter()
    }

    /// The name of node `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn node_name(&self, id: NodeId) -> &str {
        self.names.get(id.index())
    }

    /// The name of the task node `id` runs.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn task_of(&self, id: NodeId) -> &'static TaskMeta {
        self.node_at(id).task().meta()
    }

    /// The distinct nodes whose outputs node `id` consumes, in argument order.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn parents(&self, id: NodeId) -> &[NodeId] {
        self.node_at(id).upstream()
    }

    /// The nodes that consume the output of node `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        self.node_at(id).downstream()
    }

    /// The nodes in a topological order: every node after all of its parents.
    pub fn topological_order(&self) -> Vec<NodeId> {
        // A handle only points to a node added before it, so the order of addition is one.
        (0..self.nodes.len()).map(NodeId::at).collect()
    }

    /// `target` and every node it depends on, directly or not, in topological order.
    ///
    /// # Panics
    ///
    /// If `target` is not a node of this pipeline.
    pub fn ancestors(&self, target: NodeId) -> Vec<NodeId> {
        // Parents come before their children, so one pass from `target` down finds them all.
        let mut wanted = vec![false; target.index() + 1];
        wanted[target.index()] = true;
        let mut found = Vec::new();
        for i in (0..=target.index()).rev() {
            if wanted[i] {
                found.push(NodeId::at(i));
                for up in self.node_at(NodeId::at(i)).upstream() {
                    wanted[up.index()] = true;
                }
            }
        }
        found.reverse();
        found
    }

    /// The nodes no other node consumes.
    pub fn sinks(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.all_nodes()
            .filter(|node| node.downstream().is_empty())
            .map(|node| node.id())
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Node `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this pipeline.
    pub(crate) fn node_at(&self, id: NodeId) -> Node<'_> {
        self.nodes.at(&self.names, id)
    }

    /// Every node, in the order they were added.
    pub(crate) fn all_nodes(&self) -> impl ExactSizeIterator<Item = Node<'_>> + '_ {
        self.nodes.iter(&self.names)
    }

    /// Whether the pipeline can run: [`Error::LossyParam`](crate::Error::LossyParam) if
    /// `pipeline!` added a parameter that does not survive encoding.
    pub(crate) fn check_params(&self) -> Result<()> {
        match &self.refused {
            Some(refused) => Err(refused.error()),
            None => Ok(()),
        }
    }
}

/// So that what takes a pipeline takes it owned, borrowed, or as the nodes `pipeline!`
/// gives.
impl AsRef<Pipeline> for Pipeline {
    fn as_ref(&self) -> &Pipeline {
        self
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Params<'a>(&'a Pipeline);
        impl fmt::Debug for Params<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.all_nodes().map(|n| (n.name(), n.task().params())))
                    .finish()
            }
        }
        f.debug_struct("Pipeline")
            .field("name", &self.name())
            .field("nodes", &Params(self))
            .finish()
    }
}
