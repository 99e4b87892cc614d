use pipewright::prelude::*;

#[task(codec = String)]
fn load(path: String) -> String {
    path
}

fn main() {}
