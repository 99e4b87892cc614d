#[pipewright::helper]
struct Row {
    len: u32,
}

fn main() {}
