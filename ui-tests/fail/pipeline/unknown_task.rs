use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

fn main() {
    let _p = pipeline! {
        name = "unknown";
        let text = laod("a.txt".to_string());
    };
}
