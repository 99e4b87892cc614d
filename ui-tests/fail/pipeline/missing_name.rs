use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

fn main() {
    let _p = pipeline! {
        let text = load("a.txt".to_string());
    };
}
