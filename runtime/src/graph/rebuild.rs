//! Rebuilding the pipeline of a past run from its `run.json`.

use std::collections::HashMap;
use std::path::Path;

use super::{Pipeline, Wire};
use crate::error::{Error, Result};
use crate::key::{Digest, Names, hex, parse_hex};
use crate::record::schema::{RUN_JSON, RunRecord};
use crate::registry::find_task;
use crate::task::InputKind;
use crate::text::parse_hex_bytes;

impl Pipeline {
    /// Rebuilds the pipeline of a past run through the registry, by task name and recorded
    /// parameters, and checks that every rebuilt node has the key the run recorded: running
    /// it again reproduces that run.
    ///
    /// # Errors
    ///
    /// [`Error::Record`](crate::Error::Record) if the record cannot be read, if a node's parameters or
    /// wiring do not fit its task, or if a key differs (the task's code, version or
    /// parameters changed since); [`Error::UnknownTask`](crate::Error::UnknownTask) if a task is not linked
    /// into this binary.
    pub fn from_record(run_dir: impl AsRef<Path>) -> Result<Pipeline> {
        let run_dir = run_dir.as_ref();
        let record = RunRecord::read(run_dir)?;
        let path = run_dir.join(RUN_JSON);
        let mismatch = |reason: String| Error::Record {
            path: path.clone(),
            reason,
        };
        let digests: HashMap<&str, Option<Digest>> = record
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.output_digest.as_deref().and_then(parse_hex),
                )
            })
            .collect();

        let mut builder = Pipeline::builder(record.pipeline.clone());
        for node in &record.nodes {
            if node.over.is_some() {
                return Err(mismatch(format!(
                    "node `{}` is a mapped node, which a pipeline rebuilt from a record cannot hold",
                    node.name
                )));
            }
            let registration = find_task(&node.task)?;
            let params = node
                .encoded_params
                .as_deref()
                .and_then(parse_hex_bytes)
                .ok_or_else(|| {
                    mismatch(format!(
                        "node `{}` has no encoded parameters (a record of an older version)",
                        node.name
                    ))
                })?;
            let task = registration.build(&params).map_err(|e| {
                mismatch(format!(
                    "the parameters of node `{}` do not fit task `{}`: {e}",
                    node.name, node.task
                ))
            })?;
            let specs = task.meta().inputs;
            if specs.len() != node.inputs.len() {
                return Err(mismatch(format!(
                    "node `{}` has {} inputs, but task `{}` takes {}",
                    node.name,
                    node.inputs.len(),
                    node.task,
                    specs.len()
                )));
            }
            let mut wired = Vec::with_capacity(node.inputs.len());
            for (input, spec) in node.inputs.iter().zip(specs) {
                let ids = input
                    .nodes
                    .iter()
                    .map(|name| {
                        builder.node(name).ok_or_else(|| {
                            mismatch(format!(
                                "node `{}` reads `{name}`, which is not recorded before it",
                                node.name
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let gathered = spec.kind == InputKind::Many;
                if !gathered && ids.len() != 1 {
                    return Err(mismatch(format!(
                        "input `{}` of node `{}` takes one node, but {} are recorded",
                        spec.name,
                        node.name,
                        ids.len()
                    )));
                }
                wired.push((gathered, ids));
            }
            let wires: Vec<Wire<'_>> = wired
                .iter()
                .map(|(gathered, ids)| match (gathered, ids.as_slice()) {
                    (false, [id]) => Wire::One(id),
                    _ => Wire::Many(ids),
                })
                .collect();
            if let Some(recorded) = &node.key {
                let inputs = node
                    .inputs
                    .iter()
                    .map(|input| {
                        input
                            .nodes
                            .iter()
                            .map(|n| digests.get(n.as_str()).copied().flatten())
                            .collect::<Option<Vec<_>>>()
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        mismatch(format!(
                            "an input of node `{}` has no recorded output",
                            node.name
                        ))
                    })?;
                let names = Names {
                    pipeline: &record.pipeline,
                    node: &node.name,
                };
                let key = task
                    .components(names, inputs)
                    .map_err(|source| Error::Params {
                        node: node.name.clone(),
                        source,
                    })?
                    .key();
                if hex(&key) != *recorded {
                    return Err(mismatch(format!(
                        "node `{}` does not have the recorded key any more: the code, version \
                         or parameters of task `{}` changed since the run",
                        node.name, node.task
                    )));
                }
            }
            builder.add_node(&node.name, task, &params, &wires)?;
        }
        Ok(builder.build())
    }
}
