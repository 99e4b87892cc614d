//! The type-erased task object: what a pipeline's node, the registry and the executors hold
//! in place of a concrete [`Task`].

use std::any::type_name;
use std::fmt;
use std::sync::Arc;

use crate::codec::{Codec, CodecError};
use crate::hash::HashError;
use crate::key::{Components, Digest, Names};
use crate::task::{Ctx, ElementReader, Inputs, StoredOutput, Task, TaskError, TaskMeta, Value};

/// A task object with its type erased, as the executor holds it.
pub(crate) trait ErasedTask: Send + Sync {
    fn meta(&self) -> &'static TaskMeta;
    fn run(&self, inputs: &Inputs<'_>, ctx: &Ctx) -> Result<Arc<Value>, TaskError>;
    fn params(&self) -> &dyn fmt::Debug;
    /// The parameters as JSON, for people; `Debug` text where JSON cannot hold them.
    fn params_json(&self) -> serde_json::Value;
    fn output_type(&self) -> &'static str;
    /// The [`ID`](Codec::ID) of the codec the task's outputs are stored with.
    fn codec(&self) -> &'static str;
    /// The key components of this task as node `names`, on inputs with the given output
    /// digests.
    fn components(
        &self,
        names: Names<'_>,
        inputs: Vec<Vec<Digest>>,
    ) -> Result<Components, HashError>;
    /// Encodes an output of this task.
    fn encode(&self, value: &Value) -> Result<Vec<u8>, CodecError>;
    /// Decodes an output of this task.
    fn decode(&self, bytes: &[u8]) -> Result<Arc<Value>, CodecError>;
    /// An output of this task as JSON, for people.
    fn output_json(&self, value: &Value) -> Result<serde_json::Value, String>;
    /// How the task reads a branch's element from a list, as one of its inputs.
    fn element_reader(&self) -> ElementReader;
}

impl<T: Task> ErasedTask for T {
    fn meta(&self) -> &'static TaskMeta {
        // A reference to an associated const of a concrete type is promoted to 'static.
        const { &T::META }
    }

    fn run(&self, inputs: &Inputs<'_>, ctx: &Ctx) -> Result<Arc<Value>, TaskError> {
        Task::run(self, inputs, ctx).map(|out| Arc::new(out) as Arc<Value>)
    }

    fn params(&self) -> &dyn fmt::Debug {
        self
    }

    fn params_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| format!("{self:?}").into())
    }

    fn output_type(&self) -> &'static str {
        type_name::<T::Output>()
    }

    fn codec(&self) -> &'static str {
        T::Codec::ID
    }

    fn components(
        &self,
        names: Names<'_>,
        inputs: Vec<Vec<Digest>>,
    ) -> Result<Components, HashError> {
        Ok(Components::new(
            &T::META,
            type_name::<T::Output>(),
            T::Codec::ID,
            names,
            self.__param_digests()?,
            inputs,
        ))
    }

    fn encode(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        let value = value.downcast_ref::<T::Output>().ok_or_else(|| {
            CodecError::Encode(format!("the value is not a `{}`", type_name::<T::Output>()))
        })?;
        StoredOutput::<T>::__encode::<T::Codec>(value)
    }

    fn element_reader(&self) -> ElementReader {
        T::__element
    }

    fn decode(&self, bytes: &[u8]) -> Result<Arc<Value>, CodecError> {
        <T::Output as StoredOutput<T>>::__decode::<T::Codec>(bytes)
            .map(|v| Arc::new(v) as Arc<Value>)
    }

    fn output_json(&self, value: &Value) -> Result<serde_json::Value, String> {
        let value = value
            .downcast_ref::<T::Output>()
            .ok_or_else(|| format!("the value is not a `{}`", type_name::<T::Output>()))?;
        StoredOutput::<T>::__json(value).map_err(|e| e.to_string())
    }
}
