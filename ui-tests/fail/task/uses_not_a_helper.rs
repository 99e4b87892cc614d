use pipewright::task;

mod util {
    pub fn parse_row(line: &str) -> u32 {
        line.len() as u32
    }
}

#[task(uses = [util::parse_row])]
fn rows(line: String) -> u32 {
    util::parse_row(&line)
}

fn main() {}
