//! The [`Task`] trait that `#[task]` implements, its static description ([`TaskMeta`]), and
//! what a task sees when it runs ([`Ctx`], its inputs, [`TaskError`]).

use std::any::{Any, type_name};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::codec::{Codec, CodecError};
use crate::hash::{HashError, ParamLoss, Params};
use serde::de::DeserializeOwned;

mod ctx;
mod error;

pub use ctx::Ctx;
pub(crate) use ctx::NodeNames;
pub use error::{Cancelled, Fallible, TaskError, WorkerExit};

/// A type-erased value held by the executor: a task's output.
pub(crate) type Value = dyn Any + Send + Sync;

/// What the output of task `T` must be to be stored on disk and read back by the tasks that
/// use it: every type that is `Serialize` and `Deserialize` is one. The runtime encodes and
/// decodes outputs through it, so that its message is the only error for an output that
/// lacks them, at the task's return type.
#[diagnostic::on_unimplemented(
    message = "the output `{Self}` of task `{T}` must implement `Serialize` and `Deserialize` to be stored",
    label = "an output needs `Serialize` and `Deserialize`",
    note = "a task's output is stored on disk and read back by the tasks that use it: derive `serde::Serialize, serde::Deserialize` for `{Self}`"
)]
pub trait StoredOutput<T: ?Sized> {
    /// The value encoded with codec `C`.
    #[doc(hidden)]
    fn __encode<C: Codec>(&self) -> Result<Vec<u8>, CodecError>;

    /// A value decoded with codec `C`.
    #[doc(hidden)]
    fn __decode<C: Codec>(bytes: &[u8]) -> Result<Self, CodecError>
    where
        Self: Sized;

    /// The value as JSON.
    #[doc(hidden)]
    fn __json(&self) -> Result<serde_json::Value, serde_json::Error>;
}

impl<O, T: ?Sized> StoredOutput<T> for O
where
    O: Serialize + DeserializeOwned,
{
    fn __encode<C: Codec>(&self) -> Result<Vec<u8>, CodecError> {
        C::encode(self)
    }

    fn __decode<C: Codec>(bytes: &[u8]) -> Result<Self, CodecError> {
        C::decode(bytes)
    }

    fn __json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// A unit of work of a pipeline, implemented by `#[task]` on a plain function.
///
/// The implementing type is the braced struct of the task's parameters that `#[task]`
/// generates under the function's name, so `normalize { norm: Norm::L1 }` is one bound
/// instance of the task `normalize`. Write tasks with `#[task]`; implementing this trait by
/// hand is possible but not needed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pipewright task",
    label = "not a task",
    note = "mark the function with `#[task]` to make it one"
)]
pub trait Task: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static {
    /// What the task returns on success; it is what its consumers borrow as `&Self::Output`.
    type Output: StoredOutput<Self> + Send + Sync + 'static;

    /// How the task's outputs are stored: [`DefaultCodec`](crate::codec::DefaultCodec)
    /// unless `#[task(codec = ...)]` names another. The codec's [`ID`](Codec::ID) is part
    /// of the task's keys and of each entry's `meta.json`.
    type Codec: Codec;

    /// The task's name, options and code fingerprint, fixed at compile time.
    const META: TaskMeta;

    /// Runs the task on its inputs, one entry per input argument in argument order.
    fn run(&self, inputs: &Inputs<'_>, ctx: &Ctx) -> Result<Self::Output, TaskError>;

    /// The canonical digest of each parameter, by name, in argument order. `#[task]` hashes
    /// each parameter as its own type, so that a `HashSet` parameter is recognized as one;
    /// by default, each field of `Self` is hashed as serialized.
    #[doc(hidden)]
    fn __param_digests(&self) -> Result<Vec<(&'static str, [u8; 32])>, HashError> {
        crate::hash::field_digests(self)
    }

    /// Appends `Self` encoded with the default codec to `out`, once each parameter is checked
    /// to survive the trip; or returns the first parameter that does not, by name, with
    /// `out` as it was. `#[task]` checks each parameter
    /// as its own type, with its `PartialEq` where it has one, and puts their encodings one
    /// after the other, as the codec encodes a struct; by default, `Self` is checked as one
    /// value.
    ///
    /// Where it checks the parameters one by one, with `encode_param`, in argument order, a
    /// pipeline keeps the canonical encodings that check makes for the node's key, whose
    /// digests must then be those of `__param_digests`; by default, it keeps none, and the
    /// key asks `__param_digests`.
    #[doc(hidden)]
    fn __encode_params(&self, out: &mut Params<'_>) -> Result<(), (&'static str, ParamLoss)> {
        crate::hash::encode_whole(self, out).map_err(|loss| (type_name::<Self>(), loss))
    }

    /// Element `i` of `list`, if `list` is a `Vec` of the type of input argument `input`
    /// (counted among the inputs): how a worker process reads the element of a branch from
    /// the list it read from the store. `#[task]` reads each single input so; by default,
    /// none.
    #[doc(hidden)]
    fn __element(input: usize, list: &(dyn Any + Send + Sync), i: usize) -> Option<&dyn Any> {
        let _ = (input, list, i);
        None
    }
}

/// Element `i` of `list`, if it is a `Vec<T>` that long: what `#[task]` reads a branch's
/// element `&T` with.
#[doc(hidden)]
pub fn element_of<T: 'static>(list: &(dyn Any + Send + Sync), i: usize) -> Option<&dyn Any> {
    list.downcast_ref::<Vec<T>>()?
        .get(i)
        .map(|element| element as &dyn Any)
}

/// The static description of a task, generated by `#[task]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskMeta {
    /// The task's name: the function's name unless `#[task(name = "...")]` says otherwise.
    pub name: &'static str,
    /// `module_path!()` where the task is defined.
    pub module_path: &'static str,
    /// blake3 of the task's name, its function's tokens (doc comments left out) and its
    /// `version`, taken at compile time.
    pub fingerprint: [u8; 32],
    /// The `version` salt, if any.
    pub version: Option<&'static str>,
    /// Whether the task's outputs are cached (`cache = false` turns it off).
    pub cache: bool,
    /// How many times a failed run is retried.
    pub retries: u32,
    /// How long one run may take.
    pub timeout: Option<Duration>,
    /// Resource hints for cluster executors.
    pub resources: Resources,
    /// The input arguments, in argument order.
    pub inputs: &'static [InputSpec],
    /// The names of the parameters, in argument order.
    pub params: &'static [&'static str],
    /// Whether the task takes a `&Ctx`, and so may return something made of the names it
    /// runs under ([`Ctx::pipeline`], [`Ctx::node`]): its key then holds its pipeline's
    /// name and its node's name, so that two nodes of the task never share an entry.
    pub names_in_key: bool,
    /// The helpers named in `#[task(uses = [...])]`; [`TaskMeta::helpers`] lists them with
    /// the helpers they use in turn.
    pub(crate) uses: Uses,
}

/// The fields of a [`TaskMeta`], as code generated by `#[task]` fills them in; `TaskMeta`
/// may grow, so other code cannot build one from its fields.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct TaskMetaFields {
    pub name: &'static str,
    pub module_path: &'static str,
    pub fingerprint: [u8; 32],
    pub version: Option<&'static str>,
    pub cache: bool,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub resources: Resources,
    pub inputs: &'static [InputSpec],
    pub params: &'static [&'static str],
    pub names_in_key: bool,
}

impl TaskMeta {
    #[doc(hidden)]
    pub const fn __new(fields: TaskMetaFields) -> Self {
        let TaskMetaFields {
            name,
            module_path,
            fingerprint,
            version,
            cache,
            retries,
            timeout,
            resources,
            inputs,
            params,
            names_in_key,
        } = fields;
        TaskMeta {
            name,
            module_path,
            fingerprint,
            version,
            cache,
            retries,
            timeout,
            resources,
            inputs,
            params,
            names_in_key,
            uses: Uses(&[]),
        }
    }

    /// This description with the helpers named in `#[task(uses = [...])]`.
    #[doc(hidden)]
    pub const fn __with_helpers(self, uses: &'static [fn() -> &'static HelperMeta]) -> Self {
        TaskMeta {
            uses: Uses(uses),
            ..self
        }
    }

    /// The helpers whose code the task's key holds: those named in
    /// `#[task(uses = [...])]` and, in turn, those each of them names in
    /// `#[helper(uses = [...])]`, each once, by name (its module path and its name), with
    /// the fingerprint of its own code.
    pub fn helpers(&self) -> Vec<(&'static str, [u8; 32])> {
        self.uses.flatten()
    }

    /// A task named `name` in `module_path`, with every option at its default, for tests.
    #[cfg(test)]
    pub(crate) const fn for_tests(name: &'static str, module_path: &'static str) -> Self {
        TaskMeta::__new(TaskMetaFields {
            name,
            module_path,
            fingerprint: [7; 32],
            version: None,
            cache: true,
            retries: 0,
            timeout: None,
            resources: Resources::NONE,
            inputs: &[],
            params: &[],
            names_in_key: false,
        })
    }

    /// The fingerprint as 64 lowercase hex digits.
    pub fn fingerprint_hex(&self) -> String {
        blake3::Hash::from_bytes(self.fingerprint)
            .to_hex()
            .to_string()
    }
}

/// The helpers a task names, as functions that return each one's description (so that
/// helpers may name each other in a circle).
#[derive(Clone, Copy)]
pub(crate) struct Uses(pub(crate) &'static [fn() -> &'static HelperMeta]);

impl Uses {
    /// Every helper reachable from these, each once, sorted by name.
    fn flatten(&self) -> Vec<(&'static str, [u8; 32])> {
        let mut seen: Vec<&'static HelperMeta> = Vec::new();
        let mut next: Vec<&'static HelperMeta> = self.0.iter().map(|meta| meta()).collect();
        while let Some(helper) = next.pop() {
            if seen.iter().any(|s| std::ptr::eq(*s, helper)) {
                continue;
            }
            seen.push(helper);
            next.extend(helper.uses.iter().map(|meta| meta()));
        }
        let mut all: Vec<_> = seen.iter().map(|h| (h.name, h.fingerprint)).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl PartialEq for Uses {
    fn eq(&self, other: &Self) -> bool {
        self.flatten() == other.flatten()
    }
}

impl Eq for Uses {}

impl fmt::Debug for Uses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let helpers = self.flatten();
        f.debug_list()
            .entries(helpers.iter().map(|(name, _)| name))
            .finish()
    }
}

/// A helper's description, generated by `#[helper]` on a function, an `impl` block or an
/// inline module: its name, the fingerprint of its own code, and the helpers it names.
#[doc(hidden)]
pub struct HelperMeta {
    name: &'static str,
    fingerprint: [u8; 32],
    uses: &'static [fn() -> &'static HelperMeta],
}

impl HelperMeta {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        fingerprint: [u8; 32],
        uses: &'static [fn() -> &'static HelperMeta],
    ) -> Self {
        HelperMeta {
            name,
            fingerprint,
            uses,
        }
    }
}

/// What `#[helper]` implements on the items it marks (a helper function's hidden struct of
/// the same name, an `impl` block's type), so that `uses = [...]` finds their code's
/// fingerprint.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a helper",
    label = "not a helper",
    note = "mark it `#[pipewright::helper]`"
)]
pub trait Helper {
    /// The helper's description.
    fn __meta() -> &'static HelperMeta;
}

/// Resource hints of a task (`cpus`, `mem`, `time`), used by cluster executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Resources {
    /// CPUs one run needs.
    pub cpus: Option<u32>,
    /// Memory one run needs, in bytes.
    pub mem: Option<u64>,
    /// Wall time one run needs.
    pub time: Option<Duration>,
}

impl Resources {
    /// No hints.
    pub const NONE: Resources = Resources {
        cpus: None,
        mem: None,
        time: None,
    };

    #[doc(hidden)]
    pub const fn new(cpus: Option<u32>, mem: Option<u64>, time: Option<Duration>) -> Self {
        Resources { cpus, mem, time }
    }
}

/// One input argument of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputSpec {
    /// The argument's name.
    pub name: &'static str,
    /// Whether it borrows one upstream output or gathers many.
    pub kind: InputKind,
}

impl InputSpec {
    #[doc(hidden)]
    pub const fn new(name: &'static str, kind: InputKind) -> Self {
        InputSpec { name, kind }
    }
}

/// How an input argument is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputKind {
    /// `&T`: the output of one upstream node.
    One,
    /// `&[&T]`: the outputs of any number of upstream nodes, in the order given.
    Many,
}

/// The upstream outputs handed to [`Task::run`], one entry per input argument.
#[doc(hidden)]
pub struct Inputs<'a> {
    pub(crate) slots: &'a [InputValues],
}

/// The values of one input argument.
pub(crate) enum InputValues {
    One(Arc<Value>),
    Many(Vec<Arc<Value>>),
    /// Element `.1` of the list `.0`, read in place by `.2`: a branch's element.
    Element(Arc<Value>, usize, fn(&Value, usize) -> &Value),
    /// Element `i` of `list`, read by the task's own [`Task::__element`] as input argument
    /// `input`: a branch's element in a worker process, which knows the task but not the
    /// map.
    Listed {
        list: Arc<Value>,
        i: usize,
        input: usize,
        read: ElementReader,
    },
}

/// How a task reads element `i` of a list as its input argument `input`
/// ([`Task::__element`]).
pub(crate) type ElementReader = for<'a> fn(usize, &'a Value, usize) -> Option<&'a dyn Any>;

impl Inputs<'_> {
    /// The single upstream output of argument `index`.
    ///
    /// The typed builder guarantees the kind and type, so a mismatch is a bug of pipewright
    /// and panics (the executor turns the panic into a failed node).
    pub fn one<T: 'static>(&self, index: usize) -> &T {
        match &self.slots[index] {
            InputValues::One(value) => downcast(value),
            InputValues::Element(list, i, get) => downcast_ref(get(&**list, *i)),
            InputValues::Listed {
                list,
                i,
                input,
                read,
            } => read(*input, &**list, *i)
                .and_then(|element| element.downcast_ref())
                .unwrap_or_else(|| {
                    panic!(
                        "input {index} is not element {i} of a list of `{}`: the graph was \
                         wired wrongly",
                        type_name::<T>()
                    )
                }),
            InputValues::Many(_) => panic!("input {index} is gathered, not single"),
        }
    }

    /// The gathered upstream outputs of argument `index`, in wiring order.
    pub fn many<T: 'static>(&self, index: usize) -> Vec<&T> {
        match &self.slots[index] {
            InputValues::Many(values) => values.iter().map(|v| downcast(v)).collect(),
            InputValues::One(_) | InputValues::Element(..) | InputValues::Listed { .. } => {
                panic!("input {index} is single, not gathered")
            }
        }
    }
}

fn downcast<T: 'static>(value: &Arc<Value>) -> &T {
    downcast_ref(&**value)
}

fn downcast_ref<T: 'static>(value: &Value) -> &T {
    value.downcast_ref::<T>().unwrap_or_else(|| {
        panic!(
            "an input is not of type `{}`: the graph was wired wrongly",
            std::any::type_name::<T>()
        )
    })
}
