struct Parser;

impl Parser {
    #[pipewright::helper]
    fn parse(&self, line: &str) -> u32 {
        line.len() as u32
    }
}

fn main() {}
