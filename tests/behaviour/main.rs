//! The behaviour tests that need nothing of the process they run in: one module per
//! scenario, all in one test binary, so that they are compiled and linked once and run on
//! parallel threads. A new scenario is a file here and a `mod` line below.
//!
//! A scenario that changes the process (its working directory, its global tracing
//! subscriber, its registry of tasks) or runs its own executable again has a binary of its
//! own beside this folder.

#[path = "../support/mod.rs"]
mod support;

mod bad_storage;
mod builder_errors;
mod cache_false;
mod cache_hit;
mod cancellation;
mod canonical_hash_laws;
mod cli;
mod code_fingerprint;
mod damaged_entries;
mod dependency_order;
mod dynamic_branching;
mod early_cutoff;
mod fail_fast;
mod failure_isolation;
mod failures_are_not_cached;
mod graph_queries;
mod helper_edits;
mod helpers;
mod independent_nodes_run_concurrently;
mod input_files;
mod large_builder_graph;
mod last_entries_read_at_start;
mod lazy_loading;
mod lint_clean;
mod lossy_params;
mod mapped_files;
mod node_names_in_key;
mod node_timings;
mod output_files;
mod outputs_dropped;
mod params_change_invalidates;
mod params_encoded_once;
mod plan_and_explain;
mod process_executor_requirements;
mod queued_commits;
mod retries_and_timeouts;
mod run_records;
mod runs_each_node_once;
mod same_task_many_names;
mod store_index;
mod targets_and_gc;
mod testing_tasks;
mod unsafe_names;
mod work_dir;
