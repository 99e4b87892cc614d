use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

fn main() {
    let _p = pipeline! {
        name = "twice";
        let text = load("a.txt".to_string());
        let text = load("b.txt".to_string());
    };
}
