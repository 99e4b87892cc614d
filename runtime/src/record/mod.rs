//! Run records: every run with a store writes `LOG/<pipeline>_<UTC time>_<unique>/` holding
//! `run.json` (the pipeline, every node's outcome, and where the run happened), `run.log`
//! (the run's `tracing` events) and `failures/<node>.txt` (a failed node's error chain, and
//! the panic message with its backtrace).
//!
//! `schema` (what `run.json` holds, and reading it) sits low, beside the store, so that a
//! pipeline and a report can be rebuilt from it; the rest writes a run and sits above the
//! executors.

pub(crate) mod log;
pub(crate) mod provenance;
pub(crate) mod schema;
pub(crate) mod write;

pub use schema::{InputRecord, NodeRecord, Provenance, RECORD_FORMAT, RecordedStatus, RunRecord};
