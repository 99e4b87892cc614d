use pipewright::prelude::*;

fn load(path: String) -> String {
    path
}

fn main() {
    let _p = pipeline! {
        name = "plain";
        let text = load("a.txt".to_string());
    };
}
