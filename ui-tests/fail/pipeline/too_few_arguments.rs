use pipewright::prelude::*;

#[task]
fn join(a: &String, b: &String) -> String {
    format!("{a}{b}")
}

#[task]
fn word(text: String) -> String {
    text
}

fn main() {
    let _p = pipeline! {
        name = "arity";
        let a = word("a".to_string());
        let ab = join(a);
    };
}
