use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

fn main() {
    let _p = pipeline! {
        name = "call";
        let text = load;
    };
}
