struct Parser<T>(T);

#[pipewright::helper]
impl<T> Parser<T> {
    fn parse(line: &str) -> u32 {
        line.len() as u32
    }
}

fn main() {}
