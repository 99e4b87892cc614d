//! The tests that need a tool of the machine (Graphviz, Chromium, mounting a tmpfs), run by
//! a harness that lists one whose tool is missing as ignored and says why.
//! `PIPEWRIGHT_REQUIRE_TOOLS=1` makes a missing tool a failure instead.

#[path = "../support/mod.rs"]
mod support;

mod full_disk;
mod render;

fn main() -> std::process::ExitCode {
    let mut trials = render::trials();
    trials.extend(full_disk::trials());
    // Each test makes its own directories: they can run side by side.
    support::run_trials_on(trials, 2)
}
