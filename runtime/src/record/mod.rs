//! Run records: every run with a store writes `LOG/<pipeline>_<UTC time>_<unique>/` holding
//! `journal.jsonl` (appended to while the run goes on: its nodes, then each node's outcome
//! as it settles), `run.json` (written once, at the end: the pipeline, every node's outcome,
//! and where the run happened), `run.log` (the run's `tracing` events) and
//! `failures/<node>.txt` (a failed node's error chain, and the panic message with its
//! backtrace).
//!
//! [`RunRecord`] is what `run.json` holds; `RunRecord::read` reads it back, or, for a run
//! that has not written it (in progress, or killed), what its journal holds so far.
//!
//! In the code, `schema.rs` (what `run.json` holds, and reading it) sits low, beside the
//! store, so that a pipeline and a report can be rebuilt from it; the rest writes a run and
//! sits above the executors.

pub(crate) mod log;
pub(crate) mod provenance;
pub(crate) mod schema;
pub(crate) mod write;

pub use schema::{
    BranchRecord, InputRecord, NodeRecord, Provenance, RECORD_FORMAT, RecordedStatus, RunRecord,
};
