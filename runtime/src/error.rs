//! The error type of pipewright's own operations (building, running, reading results).

use std::sync::Arc;

use crate::hash::Unreadable;
use crate::key::KeyError;
use crate::task::TaskError;

/// What can go wrong while building a pipeline, running it, or reading its results.
///
/// A task that fails is not an error of the run: it is recorded in the
/// [`RunReport`](crate::RunReport), and reading its output returns [`Error::NodeFailed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two nodes of one pipeline were given the same name.
    #[error("node `{node}` is defined twice in pipeline `{pipeline}`")]
    DuplicateNode {
        /// The pipeline.
        pipeline: String,
        /// The repeated name.
        node: String,
    },

    /// A node name that cannot be used.
    #[error("invalid node name {name:?}: {reason}")]
    InvalidNodeName {
        /// The name as given.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// A handle made by another pipeline's builder.
    #[error("node `{node}` refers to a handle of another pipeline than `{pipeline}`")]
    ForeignHandle {
        /// The node being added, or the handle's position.
        node: String,
        /// The pipeline it was used with.
        pipeline: String,
    },

    /// A map whose body does not take its element as it must.
    #[error("map `{node}`: {reason}")]
    InvalidMap {
        /// The mapped node being added.
        node: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// The handle of a map's element, used outside that map's body.
    #[error(
        "node `{node}` takes the element of a map: only the node a map's body returns can take it"
    )]
    ElementOutsideMap {
        /// The node being added.
        node: String,
    },

    /// The report holds no branches of this mapped node: it made none in this run.
    #[error("mapped node `{node}` made no branches in this run")]
    NotMapped {
        /// The node.
        node: String,
    },

    /// A pipeline with more than `u32::MAX` nodes, or more parameters, input arguments or
    /// upstream nodes of its nodes in all.
    #[error(
        "a pipeline holds at most 4294967295 nodes, and at most as many parameters, input \
         arguments and upstream nodes of its nodes in all"
    )]
    TooManyNodes,

    /// No node has this name.
    #[error("pipeline `{pipeline}` has no node named `{node}`")]
    UnknownNode {
        /// The pipeline.
        pipeline: String,
        /// The name asked for.
        node: String,
    },

    /// The node's task failed, so it has no output.
    #[error("node `{node}` failed")]
    NodeFailed {
        /// The node.
        node: String,
        /// Why it failed.
        #[source]
        source: Arc<TaskError>,
    },

    /// The node never ran because a node it depends on failed.
    #[error("node `{node}` did not run because its upstream `{upstream}` failed")]
    UpstreamFailed {
        /// The node.
        node: String,
        /// The failed upstream node it waited on.
        upstream: String,
    },

    /// The node's output was dropped once its consumers were done.
    #[error("the output of node `{node}` was not kept; keep it with `Runner::keep`")]
    NotKept {
        /// The node.
        node: String,
    },

    /// The node's output is of another type than the one asked for.
    #[error("node `{node}` outputs `{actual}`, not `{requested}`")]
    WrongType {
        /// The node.
        node: String,
        /// Its output type.
        actual: &'static str,
        /// The type asked for.
        requested: &'static str,
    },

    /// A node's parameters could not be hashed.
    #[error("cannot hash the parameters of node `{node}`")]
    Params {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: crate::hash::HashError,
    },

    /// An input file or directory that a node's parameters name cannot be read, so the
    /// node's key cannot be made.
    #[error("node `{node}`: {kind} `{}` cannot be read", path.display())]
    InputFile {
        /// The node.
        node: String,
        /// The path, as the parameter names it.
        path: std::path::PathBuf,
        /// `input file` or `input directory`.
        kind: &'static str,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },

    /// A parameter that does not come back intact from its encoding, so that it could share
    /// a key with a different value, or reach a worker process changed.
    #[error("parameter `{param}` of node `{node}` (task `{task}`) does not survive encoding")]
    LossyParam {
        /// The node.
        node: String,
        /// Its task.
        task: &'static str,
        /// The parameter.
        param: &'static str,
        /// How it does not survive.
        #[source]
        source: crate::hash::ParamLoss,
    },

    /// The data directory cannot be used.
    #[error(transparent)]
    Store(#[from] crate::cache::StoreError),

    /// A stored output could not be read back.
    #[error("the stored output of node `{node}` cannot be read: {reason}")]
    Damaged {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },

    /// An output file could not be published at the path the runner was given.
    #[error("cannot publish the output of node `{node}` at `{}`", path.display())]
    Publish {
        /// The node.
        node: String,
        /// Where it was to be published.
        path: std::path::PathBuf,
        /// Why it could not be.
        #[source]
        source: std::io::Error,
    },

    /// A run record that cannot be read, or does not match.
    #[error("run record `{}`: {reason}", path.display())]
    Record {
        /// The record's path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// No task of this name is linked into the binary.
    #[error("no task named `{0}` is registered in this binary")]
    UnknownTask(String),

    /// Two tasks were registered under one name.
    #[error(
        "two tasks are registered as `{name}`: in `{first}` and in `{second}`; rename one with `#[task(name = \"...\")]`"
    )]
    DuplicateTask {
        /// The shared name.
        name: String,
        /// The module of one of them.
        first: &'static str,
        /// The module of the other.
        second: &'static str,
    },

    /// The runner's executor cannot run in this program; says why.
    #[error("{0}")]
    Executor(String),

    /// The worker threads could not be started.
    #[error("cannot start {jobs} worker threads")]
    ThreadPool {
        /// How many were asked for.
        jobs: usize,
        /// Why it failed.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

impl Error {
    /// The error of node `node`, whose key cannot be made.
    pub(crate) fn key(node: &str, error: KeyError) -> Error {
        match error {
            KeyError::Params(source) => Error::Params {
                node: node.to_owned(),
                source,
            },
            KeyError::InputFile(Unreadable { path, kind, source }) => Error::InputFile {
                node: node.to_owned(),
                path,
                kind: kind.as_str(),
                source,
            },
        }
    }
}

/// `Result` with pipewright's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
