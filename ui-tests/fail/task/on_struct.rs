use pipewright::prelude::*;

#[task]
struct Load {
    path: String,
}

fn main() {}
