//! The typed graph: [`Builder`] adds nodes and returns [`Handle`]s, [`Pipeline`] is the
//! finished graph (a `petgraph` DAG) that a [`Runner`](crate::Runner) executes.

use std::any::type_name;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::erased::ErasedTask;
use crate::error::{Error, Result};
use crate::hash::{HashError, ParamLoss};
use crate::key::{Components, Digest, Names};
use crate::task::{Ctx, Inputs, NodeNames, Resources, Task, TaskError, TaskMeta, TaskMetaFields};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod rebuild;

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

/// The name of the built-in task behind [`Builder::value`] and `value(...)` in `pipeline!`.
/// A `#[task]` function cannot take it by mistake: its name would be `value`.
pub(crate) const VALUE_TASK: &str = "pipewright.value";

/// The built-in task behind [`Builder::value`]: its one parameter is the value it returns,
/// so the value is hashed into the node's key as any parameter is.
#[doc(hidden)]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct Constant<T> {
    value: T,
}

impl<T> Task for Constant<T>
where
    T: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
{
    type Output = T;
    type Codec = crate::codec::DefaultCodec;

    const META: TaskMeta = TaskMeta::__new(TaskMetaFields {
        name: VALUE_TASK,
        module_path: module_path!(),
        fingerprint: *b"pipewright built-in value task 1",
        version: None,
        cache: true,
        retries: 0,
        timeout: None,
        resources: Resources::NONE,
        inputs: &[],
        params: &["value"],
        names_in_key: false,
    });

    fn run(&self, _: &Inputs<'_>, _: &Ctx) -> Result<T, TaskError> {
        Ok(self.value.clone())
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

/// Builds a [`Pipeline`] node by node, at run time: the typed API that `pipeline!` expands to.
///
/// # Examples
///
/// A parameter sweep with one node per value, gathered by one sink:
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[task]
/// fn total(parts: &[&u64]) -> u64 {
///     parts.iter().copied().sum()
/// }
///
/// fn main() -> pipewright::Result<()> {
///     let mut b = Pipeline::builder("sweep");
///     let squares = (1..=10)
///         .map(|x| b.add(format!("square_{x}"), square::node(x)))
///         .collect::<pipewright::Result<Vec<_>>>()?;
///     let sum = b.add("total", total::node(squares))?;
///     let p = b.build();
///
///     let run = Runner::new(std::env::temp_dir().join("pipewright-doc-builder")).run(&p)?;
///     assert_eq!(*run.get(sum)?, 385);
///     Ok(())
/// }
/// ```
pub struct Builder {
    id: u64,
    name: Arc<str>,
    graph: DiGraph<(), ()>,
    nodes: Vec<Node>,
    index: HashMap<Arc<str>, NodeId>,
    /// The first parameter `pipeline!` added that does not survive encoding; the pipeline
    /// refuses to run with it.
    refused: Option<Refused>,
}

/// A parameter refused by [`Builder::add`], kept to be reported when the pipeline is run.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    node: String,
    task: &'static str,
    param: &'static str,
    loss: ParamLoss,
}

impl Refused {
    fn error(&self) -> Error {
        Error::LossyParam {
            node: self.node.clone(),
            task: self.task,
            param: self.param,
            source: self.loss.clone(),
        }
    }
}

impl Builder {
    fn new(name: String) -> Self {
        Builder {
            id: NEXT_PIPELINE_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            graph: DiGraph::new(),
            nodes: Vec::new(),
            index: HashMap::new(),
            refused: None,
        }
    }

    /// Adds a node named `name` running `bound` and returns the handle of its output.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateNode`] if the name is taken, [`Error::InvalidNodeName`] if it is
    /// empty, too long, or not usable as a file name, [`Error::ForeignHandle`] if an input
    /// handle belongs to another pipeline, [`Error::DuplicateTask`] if another task
    /// registered in this program has the task's name, and [`Error::LossyParam`] if a
    /// parameter does not come back intact from its encoding (see [`ParamLoss`]).
    pub fn add<T: Task>(
        &mut self,
        name: impl Into<String>,
        bound: Bound<T>,
    ) -> Result<Handle<T::Output>> {
        crate::registry::check_unique(&T::META)?;
        let name = name.into();
        let params = match encode_params(&bound.task) {
            Ok(params) => params,
            Err((param, loss)) => {
                return Err(Refused {
                    node: name,
                    task: T::META.name,
                    param,
                    loss,
                }
                .error());
            }
        };
        self.add_encoded(name, bound, params)
    }

    /// Adds a node whose parameters are encoded as `params`, without the check that the
    /// task's name is its own.
    fn add_encoded<T: Task>(
        &mut self,
        name: String,
        bound: Bound<T>,
        params: Box<[u8]>,
    ) -> Result<Handle<T::Output>> {
        let wires = bound
            .slots
            .iter()
            .map(|slot| self.wire(&name, slot))
            .collect::<Result<Vec<_>>>()?;
        let id = self.add_node(name, Arc::new(bound.task), params, wires)?;
        Ok(Handle {
            pipeline: self.id,
            id,
            _output: PhantomData,
        })
    }

    /// Adds a node running `task`, whose parameters are encoded as `params`, with its inputs
    /// wired as `wires` (whose nodes exist).
    pub(crate) fn add_node(
        &mut self,
        name: String,
        task: Arc<dyn ErasedTask>,
        params: Box<[u8]>,
        wires: Vec<Wire>,
    ) -> Result<NodeId> {
        check_node_name(&name)?;
        if self.index.contains_key(name.as_str()) {
            return Err(Error::DuplicateNode {
                pipeline: self.name.to_string(),
                node: name,
            });
        }
        // Distinct upstream nodes in first-use order.
        let mut seen = std::collections::HashSet::new();
        let upstream: Vec<NodeId> = wires
            .iter()
            .flat_map(|wire| match wire {
                Wire::One(id) => std::slice::from_ref(id),
                Wire::Many(ids) => ids.as_slice(),
            })
            .copied()
            .filter(|id| seen.insert(*id))
            .collect();
        let distinct_inputs =
            wires.iter().map(|wire| wire.ids().len()).sum::<usize>() == upstream.len();

        let index = self.graph.add_node(());
        let id = NodeId(u32::try_from(index.index()).map_err(|_| Error::TooManyNodes)?);
        for up in &upstream {
            self.graph.add_edge(NodeIndex::new(up.index()), index, ());
            self.nodes[up.index()].downstream.push(id);
        }
        let name: Arc<str> = name.into();
        self.index.insert(name.clone(), id);
        self.nodes.push(Node {
            name,
            task,
            params,
            wires,
            upstream,
            downstream: Vec::new(),
            distinct_inputs,
        });
        Ok(id)
    }

    /// The node named `name`, if it was added.
    pub(crate) fn node(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Adds a node whose name `pipeline!` has already checked to be new and valid. A task
    /// whose name another registered task has, or a parameter that does not survive
    /// encoding, cannot be reported here, as `pipeline!` returns no `Result`: the pipeline
    /// is refused when it is run, planned or explained.
    #[doc(hidden)]
    pub fn __add_checked<T: Task>(&mut self, name: &str, bound: Bound<T>) -> Handle<T::Output> {
        let params = encode_params(&bound.task).unwrap_or_else(|(param, loss)| {
            self.refused.get_or_insert(Refused {
                node: name.to_owned(),
                task: T::META.name,
                param,
                loss,
            });
            Box::default()
        });
        match self.add_encoded(name.to_owned(), bound, params) {
            Ok(handle) => handle,
            // Names are checked when `pipeline!` compiles; a handle of another pipeline in a
            // parameter expression is the one mistake left to find here.
            Err(error) => panic!("`pipeline!` cannot add node `{name}`: {error}"),
        }
    }

    /// Adds a node named `name` whose output is `value`: a constant fed into the inputs of
    /// other nodes, without a task written to return it. The value is the node's parameter
    /// (of the built-in task `pipewright.value`), so it is hashed into the node's key and
    /// stored like any output: changing it runs the nodes that read it again.
    ///
    /// Workers cannot rebuild the built-in task, which has no entry in the registry (that
    /// holds one entry per task, and this task has one type per value type): a pipeline
    /// with value nodes runs with the in-process executor, not with
    /// [`Executor::Process`](crate::Executor::Process) or Slurm, and
    /// [`Pipeline::from_record`] cannot rebuild it.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add): a taken or invalid name, or a value that does not come back
    /// intact from its encoding.
    ///
    /// # Examples
    ///
    /// ```
    /// use pipewright::prelude::*;
    ///
    /// #[task]
    /// fn add_up(rows: &Vec<u32>) -> u32 {
    ///     rows.iter().sum()
    /// }
    ///
    /// fn main() -> pipewright::Result<()> {
    ///     let mut b = Pipeline::builder("values");
    ///     let rows = b.value("rows", vec![1, 2, 3])?;
    ///     let sum = b.add("sum", add_up::node(rows))?;
    ///     let p = b.build();
    ///
    ///     let run = Runner::new(std::env::temp_dir().join("pipewright-doc-value")).run(&p)?;
    ///     assert_eq!(*run.get(sum)?, 6);
    ///     Ok(())
    /// }
    /// ```
    pub fn value<T>(&mut self, name: impl Into<String>, value: T) -> Result<Handle<T>>
    where
        T: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
    {
        self.add(name, Bound::new(Constant { value }, Vec::new()))
    }

    /// [`value`](Self::value) for `value(...)` in `pipeline!`, which has checked the name, as
    /// [`__add_checked`](Self::__add_checked) does.
    #[doc(hidden)]
    pub fn __value_checked<T>(&mut self, name: &str, value: T) -> Handle<T>
    where
        T: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
    {
        self.__add_checked(name, Bound::new(Constant { value }, Vec::new()))
    }

    fn wire(&self, node: &str, slot: &Slot) -> Result<Wire> {
        let check = |(pipeline, id): (u64, NodeId)| {
            if pipeline == self.id {
                Ok(id)
            } else {
                Err(Error::ForeignHandle {
                    node: node.to_owned(),
                    pipeline: self.name.to_string(),
                })
            }
        };
        Ok(match slot {
            Slot::One(p, id) => Wire::One(check((*p, *id))?),
            Slot::Many(handles) => {
                Wire::Many(handles.iter().map(|h| check(*h)).collect::<Result<_>>()?)
            }
        })
    }

    /// The number of nodes added so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node has been added yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Finishes the graph. Handles only refer to nodes added before, so it has no cycle.
    pub fn build(self) -> Pipeline {
        let names = Arc::new(NodeNames {
            pipeline: self.name.clone(),
            nodes: self.nodes.iter().map(|node| node.name.clone()).collect(),
        });
        Pipeline {
            id: self.id,
            name: self.name,
            graph: self.graph,
            nodes: self.nodes.into(),
            names,
            index: Arc::new(self.index),
            refused: self.refused,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// The parameters of `task` encoded with the default codec, each checked to survive it; the
/// parameter refused first otherwise, with why.
fn encode_params<T: Task>(task: &T) -> Result<Box<[u8]>, (&'static str, ParamLoss)> {
    task.__encode_params().map(Vec::into_boxed_slice)
}

/// The longest node name accepted, in bytes.
const MAX_NODE_NAME: usize = 200;

/// Node names become file names later on: reject what cannot be one.
fn check_node_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NODE_NAME {
        "it is longer than 200 bytes"
    } else if name == "." || name == ".." {
        "it names a directory"
    } else if name.contains(['/', '\\']) {
        "it contains a path separator"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidNodeName {
        name: name.to_owned(),
        reason,
    })
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
