#![deny(unused_must_use)]

use pipewright::prelude::*;

fn main() {
    let runner = Runner::in_memory();
    runner.jobs(2);
}
