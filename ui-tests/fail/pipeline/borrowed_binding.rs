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
        name = "borrow";
        let text = load("a.txt".to_string());
        let loud = shout(&text);
    };
}
