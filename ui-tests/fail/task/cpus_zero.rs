use pipewright::prelude::*;

#[task(cpus = 0)]
fn load(path: String) -> String {
    path
}

fn main() {}
