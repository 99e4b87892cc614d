use pipewright::prelude::*;

#[task(codec = "json")]
fn load(path: String) -> String {
    path
}

fn main() {}
