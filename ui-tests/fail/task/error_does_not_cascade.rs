use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

#[task]
async fn count(text: &String) -> usize {
    text.len()
}

fn main() {
    let _p = pipeline! {
        name = "cascade";
        let text = load("a.txt".to_string());
        let n = count(text);
    };
}
