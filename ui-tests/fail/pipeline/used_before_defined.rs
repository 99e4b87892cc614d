use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

#[task]
fn shout(text: &String) -> String {
    text.to_uppercase()
}

fn main() {
    let _p = pipeline! {
        name = "order";
        let loud = shout(text);
        let text = load("a.txt".to_string());
    };
}
