use pipewright::prelude::*;

#[task(retries = 2, retries = 3)]
fn load(path: String) -> String {
    path
}

fn main() {}
