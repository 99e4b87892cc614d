//! Executors: how the nodes of a pipeline get run.

pub(crate) mod local;
