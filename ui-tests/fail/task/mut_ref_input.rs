use pipewright::prelude::*;

#[task]
fn sort(rows: &mut Vec<u32>) -> Vec<u32> {
    rows.sort();
    rows.clone()
}

fn main() {}
