use pipewright::{helper, task};

#[helper]
fn parse_row(line: &str) -> u32 {
    line.len() as u32
}

#[task(uses = [parse_row, self::parse_row, parse_row])]
fn rows(line: String) -> u32 {
    parse_row(&line)
}

#[task(uses = [parse_row], uses = [parse_row])]
fn more_rows(line: String) -> u32 {
    parse_row(&line)
}

fn main() {}
