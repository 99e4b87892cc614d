use pipewright::{helper, task};

#[helper]
#[task]
fn parse_row(line: String) -> u32 {
    line.len() as u32
}

fn main() {}
