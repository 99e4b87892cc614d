use pipewright::prelude::*;

#[task(mem = "lots")]
fn load(path: String) -> String {
    path
}

fn main() {}
