//! [`Builder`]: a pipeline added to node by node, its names and parameters checked.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::erased::ErasedTask;
use crate::error::{Error, Result};
use crate::hash::{ParamLoss, Params};
use crate::task::{NodeNames, Task};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::nodes::{Nodes, WireEnd};
use super::value::Constant;
use super::{
    Bound, ELEMENT, Handle, MapSpec, Mapped, NEXT_PIPELINE_ID, NodeId, Over, Pipeline, Slot, Wire,
};

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
///     let data = tempfile::tempdir().unwrap();
///     let run = Runner::new(data.path()).run(&p)?;
///     assert_eq!(*run.get(sum)?, 385);
///     Ok(())
/// }
/// ```
pub struct Builder {
    id: u64,
    names: NodeNames,
    nodes: Nodes,
    /// Per node, the last node that found it among its inputs, plus one: how a node's
    /// distinct upstream nodes are found.
    seen: Vec<u32>,
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
            names: NodeNames::new(name.into()),
            nodes: Nodes::default(),
            seen: Vec::new(),
            refused: None,
        }
    }

    /// Adds a node named `name` running `bound` and returns the handle of its output. The
    /// name is copied from what is passed: a `&str`, a `String`, or a reference to one.
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
        name: impl AsRef<str>,
        bound: Bound<T>,
    ) -> Result<Handle<T::Output>> {
        crate::registry::check_unique(&T::META)?;
        self.add_bound(name.as_ref(), bound, None)
    }

    /// Adds a node running `bound`: encodes its parameters, keeping their canonical
    /// encodings for its key, then checks its wires and its name. A parameter that does not
    /// survive encoding is an error, or, given `refused`, is kept there to refuse the
    /// pipeline when it runs, and the node has no parameters.
    fn add_bound<T: Task>(
        &mut self,
        name: &str,
        bound: Bound<T>,
        refused: Option<&mut Option<Refused>>,
    ) -> Result<Handle<T::Output>> {
        let kept_before = self.nodes.kept.ends.len();
        let params_before = self.nodes.params.len();
        let mut params = Params::keeping(&mut self.nodes.params, &mut self.nodes.kept);
        let encoded = bound.task.__encode_params(&mut params);
        let mut kept = self.nodes.kept.ends.len() - kept_before == T::META.params.len()
            && !self.nodes.kept.whole;
        if let Err((param, loss)) = encoded {
            kept = false;
            let why = Refused {
                node: name.to_owned(),
                task: T::META.name,
                param,
                loss,
            };
            match refused {
                Some(refused) => {
                    refused.get_or_insert(why);
                }
                None => {
                    self.nodes.kept.truncate(kept_before);
                    return Err(why.error());
                }
            }
        }
        if !kept {
            // Not one encoding per parameter: the key asks the task for its digests.
            self.nodes.kept.truncate(kept_before);
        }
        let wired = bound
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::One(..) => 1,
                Slot::Many(handles) => handles.len(),
            })
            .sum();
        let checked = self
            .check_slots(name, &bound.slots)
            .and_then(|()| self.check_new(name, bound.slots.len(), wired));
        let hash = match checked {
            Ok(hash) => hash,
            Err(error) => {
                self.nodes.kept.truncate(kept_before);
                self.nodes.params.truncate(params_before);
                return Err(error);
            }
        };
        for slot in &bound.slots {
            let many = match slot {
                Slot::One(_, id) => {
                    self.nodes.wired.push(*id);
                    false
                }
                Slot::Many(handles) => {
                    self.nodes.wired.extend(handles.iter().map(|(_, id)| *id));
                    true
                }
            };
            let end = self.nodes.wired.len();
            self.nodes.wires.push(WireEnd { end, many });
        }
        self.nodes.tasks.push(bound.task);
        let id = self.push(name, hash, kept);
        Ok(Handle {
            pipeline: self.id,
            id,
            _output: PhantomData,
        })
    }

    /// Checks that every handle wired in `slots` is one of this pipeline's, and none is the
    /// element of a map.
    fn check_slots(&self, node: &str, slots: &[Slot]) -> Result<()> {
        let element = slots.iter().any(|slot| match slot {
            Slot::One(_, id) => *id == ELEMENT,
            Slot::Many(handles) => handles.iter().any(|(_, id)| *id == ELEMENT),
        });
        if element {
            return Err(Error::ElementOutsideMap {
                node: node.to_owned(),
            });
        }
        let ours = slots.iter().all(|slot| match slot {
            Slot::One(pipeline, _) => *pipeline == self.id,
            Slot::Many(handles) => handles.iter().all(|(pipeline, _)| *pipeline == self.id),
        });
        if ours {
            Ok(())
        } else {
            Err(Error::ForeignHandle {
                node: node.to_owned(),
                pipeline: self.names.pipeline.to_string(),
            })
        }
    }

    /// Checks that `name` can name one more node, with `wires` input arguments that read
    /// `wired` nodes in all; returns its hash in the index.
    fn check_new(&self, name: &str, wires: usize, wired: usize) -> Result<u32> {
        check_node_name(name)?;
        let (hash, new) = self.nodes.is_new(&self.names, name);
        if !new {
            return Err(Error::DuplicateNode {
                pipeline: self.names.pipeline.to_string(),
                node: name.to_owned(),
            });
        }
        if !self.nodes.fits(wires, wired) {
            return Err(Error::TooManyNodes);
        }
        Ok(hash)
    }

    /// Adds node `name`, checked to be new, whose name has the hash `hash`, whose task,
    /// wires and encoded parameters are pushed.
    fn push(&mut self, name: &str, hash: u32, params_kept: bool) -> NodeId {
        // Its name is pushed last of all: the names so far are those of the nodes before.
        let id = NodeId::at(self.names.len());
        self.names.push(name);
        self.nodes.index(id, hash);
        self.nodes.close(params_kept, &mut self.seen);
        id
    }

    /// Adds a node running `task`, whose parameters are encoded as `params`, with its inputs
    /// wired as `wires` (whose nodes exist), without the check that the task's name is its
    /// own; its key asks the task for its parameters' digests.
    pub(crate) fn add_node(
        &mut self,
        name: &str,
        task: Arc<dyn ErasedTask>,
        params: &[u8],
        wires: &[Wire<'_>],
    ) -> Result<NodeId> {
        let wired = wires.iter().map(|wire| wire.ids().len()).sum();
        let hash = self.check_new(name, wires.len(), wired)?;
        for wire in wires {
            self.nodes.wired.extend_from_slice(wire.ids());
            let end = self.nodes.wired.len();
            let many = matches!(wire, Wire::Many(_));
            self.nodes.wires.push(WireEnd { end, many });
        }
        self.nodes.params.extend_from_slice(params);
        self.nodes.tasks.push_shared(task);
        Ok(self.push(name, hash, false))
    }

    /// The node named `name`, if it was added.
    pub(crate) fn node(&self, name: &str) -> Option<NodeId> {
        self.nodes.find(&self.names, name)
    }

    /// Adds a node whose name `pipeline!` has already checked to be new and valid. A task
    /// whose name another registered task has, or a parameter that does not survive
    /// encoding, cannot be reported here, as `pipeline!` returns no `Result`: the pipeline
    /// is refused when it is run, planned or explained.
    #[doc(hidden)]
    pub fn __add_checked<T: Task>(&mut self, name: &str, bound: Bound<T>) -> Handle<T::Output> {
        let mut refused = self.refused.take();
        let added = self.add_bound(name, bound, Some(&mut refused));
        self.refused = refused;
        match added {
            Ok(handle) => handle,
            // Names are checked when `pipeline!` compiles; a handle of another pipeline in a
            // parameter expression is the one mistake left to find here.
            Err(error) => not_added(name, error),
        }
    }

    /// Adds a mapped node named `name`: a node that runs once per element of `over`, each
    /// run a *branch*, and returns its handle.
    ///
    /// `over` is the [`Handle`] of a node whose output is a `Vec<T>` (one branch per
    /// element, made when that node's output is known), or a [`Mapped`] node (branch `i`
    /// takes branch `i`'s output). `body` gets the element's `Handle<T>` and returns the
    /// bound task each branch runs, made by its `node` constructor: the element in place of
    /// one of its inputs (or several), the other arguments as for [`add`](Self::add).
    ///
    /// A branch is cached by its element's content, not its position: an element added to
    /// the list runs one more branch, and one removed or moved runs none. Branch `i` is
    /// named `name[i]` in reports. Pass the returned [`Mapped`] where a gathered `&[&U]`
    /// input is expected to take every branch's output in order (an empty list gathers an
    /// empty slice), and read them with [`RunReport::branches`](crate::RunReport::branches).
    /// A run makes at most 2^20 (1,048,576) branches, all its mapped nodes together: a
    /// mapped node that would make more fails with
    /// [`TaskError::TooManyBranches`](crate::TaskError::TooManyBranches).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add), and [`Error::InvalidMap`] if the body does not take its
    /// element, or gathers it into a `&[&T]` input.
    ///
    /// # Examples
    ///
    /// ```
    /// use pipewright::prelude::*;
    ///
    /// #[task]
    /// fn split_words(text: String) -> Vec<String> {
    ///     text.split(' ').map(str::to_owned).collect()
    /// }
    ///
    /// #[task]
    /// fn word_length(word: &String, times: usize) -> usize {
    ///     word.len() * times
    /// }
    ///
    /// #[task]
    /// fn add_lengths(counts: &[&usize]) -> usize {
    ///     counts.iter().copied().sum()
    /// }
    ///
    /// fn main() -> pipewright::Result<()> {
    ///     let mut b = Pipeline::builder("mapped");
    ///     let list = b.add("words", split_words::node("a bb ccc".to_owned()))?;
    ///     let counts = b.map("counts", list, |w| word_length::node(w, 2))?;
    ///     let sum = b.add("total", add_lengths::node(counts))?;
    ///     let p = b.build();
    ///
    ///     let data = tempfile::tempdir().unwrap();
    ///     let run = Runner::new(data.path())
    ///         .keep_branches(counts)
    ///         .run(&p)?;
    ///     assert_eq!(*run.get(sum)?, 12);
    ///     assert_eq!(run.branches(counts)?, [&2, &4, &6]);
    ///     Ok(())
    /// }
    /// ```
    pub fn map<T, U: Task>(
        &mut self,
        name: impl AsRef<str>,
        over: impl Over<T>,
        body: impl FnOnce(Handle<T>) -> Bound<U>,
    ) -> Result<Mapped<U::Output>> {
        crate::registry::check_unique(&U::META)?;
        self.map_bound(name.as_ref(), over, body, None)
    }

    /// [`map`](Self::map) for `for x in xs { task(x) }` in `pipeline!`, which has checked the
    /// name: what it cannot refuse here it treats as
    /// [`__add_checked`](Self::__add_checked) does.
    #[doc(hidden)]
    pub fn __map_checked<T, U: Task>(
        &mut self,
        name: &str,
        over: impl Over<T>,
        body: impl FnOnce(Handle<T>) -> Bound<U>,
    ) -> Mapped<U::Output> {
        let mut refused = self.refused.take();
        let added = self.map_bound(name, over, body, Some(&mut refused));
        self.refused = refused;
        match added {
            Ok(mapped) => mapped,
            Err(error) => panic!("`pipeline!` cannot add node `{name}`: {error}"),
        }
    }

    /// Adds mapped node `name`: its body's bound task, with the element's inputs wired to
    /// the node mapped over, and what the executor needs to make its branches.
    fn map_bound<T, U: Task>(
        &mut self,
        name: &str,
        over: impl Over<T>,
        body: impl FnOnce(Handle<T>) -> Bound<U>,
        refused: Option<&mut Option<Refused>>,
    ) -> Result<Mapped<U::Output>> {
        let over = over.__over();
        if over.pipeline != self.id {
            return Err(Error::ForeignHandle {
                node: name.to_owned(),
                pipeline: self.names.pipeline.to_string(),
            });
        }
        let element = Handle {
            pipeline: self.id,
            id: ELEMENT,
            _output: PhantomData,
        };
        let mut bound = body(element);
        let invalid = |reason| Error::InvalidMap {
            node: name.to_owned(),
            reason,
        };
        let mut element_inputs = Vec::new();
        for (i, slot) in bound.slots.iter_mut().enumerate() {
            match slot {
                Slot::One(_, id) if *id == ELEMENT => {
                    *id = over.id;
                    element_inputs.push(i);
                }
                Slot::Many(handles) if handles.iter().any(|(_, id)| *id == ELEMENT) => {
                    return Err(invalid(
                        "its body gathers the element into a list: take it as a single input",
                    ));
                }
                _ => {}
            }
        }
        if element_inputs.is_empty() {
            return Err(invalid("its body does not take the element"));
        }
        let handle = self.add_bound(name, bound, refused)?;
        self.nodes.maps.push(MapSpec {
            node: handle.id,
            over: over.id,
            element_inputs: element_inputs.into(),
            elements: over.elements,
        });
        Ok(Mapped::new(self.id, handle.id))
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
    ///     let data = tempfile::tempdir().unwrap();
    ///     let run = Runner::new(data.path()).run(&p)?;
    ///     assert_eq!(*run.get(sum)?, 6);
    ///     Ok(())
    /// }
    /// ```
    pub fn value<T>(&mut self, name: impl AsRef<str>, value: T) -> Result<Handle<T>>
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

    /// The number of nodes added so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node has been added yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 0
    }

    /// Finishes the graph. Handles only refer to nodes added before, so it has no cycle.
    pub fn build(mut self) -> Pipeline {
        self.nodes.finish();
        self.names.shrink_to_fit();
        Pipeline {
            id: self.id,
            names: Arc::new(self.names),
            nodes: Arc::new(self.nodes),
            refused: self.refused,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.names.pipeline)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// The longest node name accepted, in bytes.
const MAX_NODE_NAME: usize = 200;

/// Whether `name` has the form of a branch's name, `counts[3]`.
fn is_branch_name(name: &str) -> bool {
    name.strip_suffix(']')
        .and_then(|rest| rest.rsplit_once('['))
        .is_some_and(|(_, digits)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The bytes a name's closer look starts from: the control characters, `/` and `\`, and
/// 0xC2, the first byte of a C1 control (0xC2 0x80 to 0xC2 0x9F).
const UNUSUAL: [bool; 256] = {
    let mut unusual = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        unusual[b] = true;
        b += 1;
    }
    unusual[0x7f] = true;
    unusual[0xc2] = true;
    unusual[b'/' as usize] = true;
    unusual[b'\\' as usize] = true;
    unusual
};

/// Node names become file names later on: reject what cannot be one, and what a branch
/// is named.
fn check_node_name(name: &str) -> Result<()> {
    // A name without an unusual byte has no separator and no control character, which a
    // name seldom has: it needs no closer look. Every byte is looked up, without a branch
    // per byte.
    let unusual = name
        .bytes()
        .fold(false, |unusual, b| unusual | UNUSUAL[usize::from(b)]);
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NODE_NAME {
        "it is longer than 200 bytes"
    } else if name == "." || name == ".." {
        "it names a directory"
    } else if unusual && name.contains(['/', '\\']) {
        "it contains a path separator"
    } else if unusual && name.chars().any(char::is_control) {
        "it contains a control character"
    } else if is_branch_name(name) {
        "a name that ends in `[` digits `]` is a branch's (`counts[3]` is branch 3 of the \
         mapped node `counts`)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidNodeName {
        name: name.to_owned(),
        reason,
    })
}

/// The panic of [`Builder::__add_checked`], out of line so that each task does not
/// instantiate it.
#[cold]
fn not_added(name: &str, error: Error) -> ! {
    panic!("`pipeline!` cannot add node `{name}`: {error}")
}
