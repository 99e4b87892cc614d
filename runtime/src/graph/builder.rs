//! [`Builder`]: a pipeline added to node by node, its names and parameters checked.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::erased::ErasedTask;
use crate::error::{Error, Result};
use crate::hash::ParamLoss;
use crate::task::{NodeNames, Task};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::value::Constant;
use super::{Bound, Handle, NEXT_PIPELINE_ID, Node, NodeId, Pipeline, Slot, Wire};

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
    pub(super) fn error(&self) -> Error {
        Error::LossyParam {
            node: self.node.clone(),
            task: self.task,
            param: self.param,
            source: self.loss.clone(),
        }
    }
}

impl Builder {
    pub(super) fn new(name: String) -> Self {
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
