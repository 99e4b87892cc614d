#[pipewright::main]
fn start() {}

fn main() {
    start();
}
