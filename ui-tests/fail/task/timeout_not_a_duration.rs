use pipewright::prelude::*;

#[task(timeout = "soon")]
fn load(path: String) -> String {
    path
}

fn main() {}
