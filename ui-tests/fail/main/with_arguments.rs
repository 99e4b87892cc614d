#[pipewright::main(workers = 4)]
fn main(args: Vec<String>) {
    let _ = args;
}
