//! The built-in `value` task: a node that returns the value it was given.

use std::fmt;

use crate::hash::{HashError, ParamLoss, Params, canonical_digest, encode_param};
use crate::task::{Ctx, Inputs, Resources, Task, TaskError, TaskMeta, TaskMetaFields};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The name of the built-in task behind [`Builder::value`](super::Builder::value) and `value(...)` in `pipeline!`.
/// A `#[task]` function cannot take it by mistake: its name would be `value`.
pub(crate) const VALUE_TASK: &str = "pipewright.value";

/// The built-in task behind [`Builder::value`](super::Builder::value): its one parameter is the value it returns,
/// so the value is hashed into the node's key as any parameter is.
#[doc(hidden)]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct Constant<T> {
    pub(super) value: T,
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

    // The one parameter is hashed and checked as its own type, as `#[task]` does, so that
    // the node's key keeps its canonical encoding. The codec writes a struct as its fields,
    // so the value's encoding is the task's.
    fn __param_digests(&self) -> Result<Vec<(&'static str, [u8; 32])>, HashError> {
        Ok(vec![("value", canonical_digest(&self.value)?)])
    }

    fn __encode_params(&self, out: &mut Params<'_>) -> Result<(), (&'static str, ParamLoss)> {
        encode_param(&self.value, |_, _| None, out).map_err(|loss| ("value", loss))
    }
}
