use pipewright::prelude::*;

#[task]
fn total(parts: &[u64]) -> u64 {
    parts.iter().sum()
}

fn main() {}
