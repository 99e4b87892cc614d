use pipewright::prelude::*;

struct Oops;

#[task]
fn parse(text: String) -> Result<u32, Oops> {
    text.parse().map_err(|_| Oops)
}

fn main() {}
