use pipewright::prelude::*;

#[task(name = "etl/load")]
fn load(path: String) -> String {
    path
}

fn main() {}
