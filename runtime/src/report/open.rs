//! Reopening the report of a past run from its run directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{NO_NODE, NO_WORKER, NodeOutcome, NodeStatus, RecordedNode, RunReport, nanos};
use crate::cache::{Lookup, Store};
use crate::chain::RecordedError;
use crate::error::Result;
use crate::record::schema::{RecordedStatus, RunRecord};
use crate::registry::find_task;
use crate::task::TaskError;
use crate::text::parse_hex_bytes;

/// How a recorded node ended; a node still pending in the record of a run that did not
/// finish counts as cancelled.
fn status_of(status: RecordedStatus) -> NodeStatus {
    match status {
        RecordedStatus::Ran => NodeStatus::Ran,
        RecordedStatus::Cached => NodeStatus::Cached,
        RecordedStatus::Failed => NodeStatus::Failed,
        RecordedStatus::UpstreamFailed => NodeStatus::UpstreamFailed,
        RecordedStatus::NotNeeded => NodeStatus::NotNeeded,
        RecordedStatus::Pending | RecordedStatus::Cancelled => NodeStatus::Cancelled,
    }
}

impl RunReport {
    /// Reopens a past run from its run directory: every node's status, timing and error,
    /// and its output, read from the store by its recorded key when asked for with
    /// [`get_as`](Self::get_as) (which needs the node's task linked into this binary).
    ///
    /// # Errors
    ///
    /// [`Error::Record`](crate::Error::Record) if `run.json` cannot be read or does not parse.
    pub fn open(run_dir: impl AsRef<Path>) -> Result<Self> {
        let run_dir = run_dir.as_ref();
        let record = RunRecord::read(run_dir)?;
        let store = Store::new(record.data_dir.clone());
        let secs =
            |s: Option<f64>| Duration::try_from_secs_f64(s.unwrap_or(0.0)).unwrap_or_default();
        // The nodes, then the branches of each mapped node, as the report lists them.
        let position: HashMap<&str, u32> = record
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(
                record
                    .nodes
                    .iter()
                    .flat_map(|n| n.branches.iter().map(|b| b.name.as_str())),
            )
            .enumerate()
            .map(|(i, name)| (name, i as u32))
            .collect();
        let mut branches = Vec::new();
        let mut nodes = Vec::with_capacity(record.nodes.len());
        let mut outcomes = Vec::with_capacity(record.nodes.len());
        for node in &record.nodes {
            let status = status_of(node.status);
            let task = find_task(&node.task)
                .ok()
                .zip(node.encoded_params.as_deref().and_then(parse_hex_bytes))
                .and_then(|(reg, params)| reg.build(&params).ok());
            // Asked of the index as it is: a past run's entries need not be the last ones
            // their nodes wrote, which a lookup reads first.
            let entry = match (&node.key, status.is_success()) {
                (Some(key), true) => match store.lookup_fresh(&node.task, key) {
                    Lookup::Present(meta) => Some(meta),
                    _ => None,
                },
                _ => None,
            };
            let mut outcome = NodeOutcome::new(status);
            outcome.started = nanos(secs(node.started_secs));
            if let Some(worker) = node.worker {
                outcome.worker = u32::try_from(worker).unwrap_or(NO_WORKER);
            }
            outcome.duration = nanos(secs(node.duration_secs));
            if let Some(upstream) = &node.upstream_failed {
                outcome.failed_upstream =
                    position.get(upstream.as_str()).copied().unwrap_or(NO_NODE);
            }
            let details = outcome.details_mut();
            details.error =
                RecordedError::from_chain(&node.error).map(|e| Arc::new(TaskError::Failed(e)));
            details.key = node.key.clone();
            details.output_digest = node.output_digest.clone();
            details.entry = entry;
            for branch in &node.branches {
                let status = status_of(branch.status);
                let entry = match (&branch.key, status.is_success()) {
                    (Some(key), true) => match store.lookup_fresh(&node.task, key) {
                        Lookup::Present(meta) => Some(meta),
                        _ => None,
                    },
                    _ => None,
                };
                let mut outcome = NodeOutcome::new(status);
                outcome.started = nanos(secs(branch.started_secs));
                if let Some(worker) = branch.worker {
                    outcome.worker = u32::try_from(worker).unwrap_or(NO_WORKER);
                }
                outcome.duration = nanos(secs(branch.duration_secs));
                if let Some(upstream) = &branch.upstream_failed {
                    outcome.failed_upstream =
                        position.get(upstream.as_str()).copied().unwrap_or(NO_NODE);
                }
                let details = outcome.details_mut();
                details.error = RecordedError::from_chain(&branch.error)
                    .map(|e| Arc::new(TaskError::Failed(e)));
                details.key = branch.key.clone();
                details.output_digest = branch.output_digest.clone();
                details.entry = entry;
                let node = RecordedNode {
                    name: branch.name.as_str().into(),
                    task: task.clone(),
                };
                branches.push((node, outcome));
            }
            nodes.push(RecordedNode {
                name: node.name.as_str().into(),
                task,
            });
            outcomes.push(outcome);
        }
        for (node, outcome) in branches {
            nodes.push(node);
            outcomes.push(outcome);
        }
        Ok(RunReport::reopened(
            record.pipeline,
            nodes,
            outcomes,
            store,
            secs(record.elapsed_secs),
            run_dir.to_owned(),
            matches!(
                record.status.as_str(),
                "cancelled" | "running" | "interrupted"
            ),
        ))
    }
}
