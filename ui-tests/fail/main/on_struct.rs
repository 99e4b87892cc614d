#[pipewright::main]
struct Main;

fn main() {}
