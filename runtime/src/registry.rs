//! The registry of the tasks linked into a binary, filled by `#[task]` through `inventory`
//! and looked up by name (never by registration order, which depends on link order).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::codec::{Codec, CodecError, DefaultCodec};
use crate::erased::ErasedTask;
use crate::error::{Error, Result};
use crate::task::{StoredOutput, Task, TaskMeta, Value};

/// Makes a task from its parameters encoded with the default codec.
type Build = fn(&[u8]) -> Result<Arc<dyn ErasedTask>, CodecError>;

/// One task's entry in the registry.
pub struct Registration {
    meta: &'static TaskMeta,
    build: Build,
    decode: fn(&[u8]) -> Result<Arc<Value>, CodecError>,
    output_type: fn() -> &'static str,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Decodes a stored output of task `T`, with the task's codec.
fn decode<T: Task>(bytes: &[u8]) -> Result<Arc<Value>, CodecError> {
    <T::Output as StoredOutput<T>>::__decode::<T::Codec>(bytes).map(|v| Arc::new(v) as Arc<Value>)
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
            output_type: std::any::type_name::<T::Output>,
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

    /// The name of the task's output type.
    pub(crate) fn output_type(&self) -> &'static str {
        (self.output_type)()
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

/// Refuses task `meta` if another registered task has its name: a worker could not tell
/// them apart. The names registered more than once are found once per process, so the
/// check costs one lookup in an empty map in a program without them.
///
/// # Errors
///
/// [`Error::DuplicateTask`], naming both modules.
pub(crate) fn check_unique(meta: &TaskMeta) -> Result<()> {
    static DUPLICATES: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> =
        OnceLock::new();
    let duplicates = DUPLICATES.get_or_init(|| {
        let mut modules: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for reg in registered_tasks() {
            modules
                .entry(reg.meta.name)
                .or_default()
                .push(reg.meta.module_path);
        }
        modules
            .into_iter()
            .filter_map(|(name, mut modules)| {
                modules.sort_unstable();
                match modules[..] {
                    [first, second, ..] => Some((name, (first, second))),
                    _ => None,
                }
            })
            .collect()
    });
    if duplicates.is_empty() {
        return Ok(());
    }
    match duplicates.get(meta.name) {
        Some(&(first, second)) => Err(Error::DuplicateTask {
            name: meta.name.to_owned(),
            first,
            second,
        }),
        None => Ok(()),
    }
}

/// Names the two modules in a stable order, whatever the link order was.
fn ordered(a: &'static str, b: &'static str) -> (&'static str, &'static str) {
    if a <= b { (a, b) } else { (b, a) }
}
