//! Scheduler benchmarks.

fn main() {}
