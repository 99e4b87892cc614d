//! The path of one node, whichever executor runs it: deciding whether its entry can be
//! used ([`decide`]), computing it ([`compute`]: attempts, timeout, panics) and committing
//! its output as an entry ([`commit`]).
//!
//! The in-process executor takes this path on its threads; the worker takes it in a child
//! process or a cluster job, which is how the process and Slurm executors use it. An
//! executor only says where a node runs and how its end is learned.

pub(crate) mod commit;
pub(crate) mod compute;
pub(crate) mod decide;

pub use decide::RunReason;

#[cfg(test)]
mod tests;
