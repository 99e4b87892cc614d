//! The registry of the tasks linked into a binary, filled by `#[task]` through `inventory`
//! and looked up by name (never by registration order, which depends on link order).

use std::fmt;
use std::sync::Arc;

use crate::codec::{Codec, CodecError, DefaultCodec};
use crate::error::{Error, Result};
use crate::graph::ErasedTask;
use crate::task::{Task, TaskMeta, Value};

/// Makes a task from its parameters encoded with the default codec.
type Build = fn(&[u8]) -> Result<Arc<dyn ErasedTask>, CodecError>;

/// One task's entry in the registry.
pub struct Registration {
    meta: &'static TaskMeta,
    build: Build,
    decode: fn(&[u8]) -> Result<Arc<Value>, CodecError>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Decodes a stored output of task `T`.
fn decode<T: Task>(bytes: &[u8]) -> Result<Arc<Value>, CodecError> {
    DefaultCodec::decode::<T::Output>(bytes).map(|v| Arc::new(v) as Arc<Value>)
}

/// Makes task `T` from its parameters encoded with the default codec.
fn build<T: Task>(params: &[u8]) -> Result<Arc<dyn ErasedTask>, CodecError> {
    DefaultCodec::decode::<T>(params).map(|task| Arc::new(task) as Arc<dyn ErasedTask>)
}

impl Registration {
    /// The entry of task `T`; `#[task]` submits one for every task.
    #[doc(hidden)]
    pub const fn of<T: Task>() -> Self {
        Registration {
            meta: const { &T::META },
            build: build::<T>,
            decode: decode::<T>,
        }
    }

    /// The task with the parameters encoded as `params` (with the default codec).
    pub(crate) fn build(&self, params: &[u8]) -> Result<Arc<dyn ErasedTask>, CodecError> {
        (self.build)(params)
    }

    /// Decodes a stored output of the task.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Arc<Value>, CodecError> {
        (self.decode)(bytes)
    }

    /// The task's description.
    pub fn meta(&self) -> &'static TaskMeta {
        self.meta
    }
}

inventory::collect!(Registration);

/// Every task linked into this binary, in no particular order.
pub fn registered_tasks() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}

/// The task registered as `name`.
///
/// # Errors
///
/// [`Error::UnknownTask`] if no task has that name, [`Error::DuplicateTask`] if two have.
///
/// # Examples
///
/// ```
/// use pipewright::prelude::*;
///
/// #[task(version = "3")]
/// fn tokenize(text: String) -> Vec<String> {
///     text.split_whitespace().map(str::to_owned).collect()
/// }
///
/// let found = pipewright::find_task("tokenize").unwrap();
/// assert_eq!(found.meta().version, Some("3"));
/// assert!(pipewright::find_task("no_such_task").is_err());
/// ```
pub fn find_task(name: &str) -> Result<&'static Registration> {
    let mut found: Option<&'static Registration> = None;
    for reg in registered_tasks().filter(|r| r.meta.name == name) {
        if let Some(first) = found {
            let (first, second) = ordered(first.meta.module_path, reg.meta.module_path);
            return Err(Error::DuplicateTask {
                name: name.to_owned(),
                first,
                second,
            });
        }
        found = Some(reg);
    }
    found.ok_or_else(|| Error::UnknownTask(name.to_owned()))
}

/// Names the two modules in a stable order, whatever the link order was.
fn ordered(a: &'static str, b: &'static str) -> (&'static str, &'static str) {
    if a <= b { (a, b) } else { (b, a) }
}
