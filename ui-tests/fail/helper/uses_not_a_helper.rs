use pipewright::helper;

fn clean(line: &str) -> &str {
    line.trim()
}

#[helper(uses = [clean])]
fn parse_row(line: &str) -> u32 {
    clean(line).len() as u32
}

fn main() {}
