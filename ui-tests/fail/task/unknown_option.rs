use pipewright::prelude::*;

#[task(retry = 3)]
fn load(path: String) -> String {
    path
}

fn main() {}
