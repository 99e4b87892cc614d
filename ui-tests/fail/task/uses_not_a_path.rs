use pipewright::{helper, task};

#[helper]
fn parse_row(line: &str) -> u32 {
    line.len() as u32
}

#[task(uses = [parse_row, "clean", parse_row(1)])]
fn rows(line: String) -> u32 {
    parse_row(&line)
}

fn main() {}
