use pipewright::prelude::*;

#[task]
fn greet(name: String) -> String {
    format!("hello, {name}")
}

fn main() {
    let _p = pipeline! {
        name = "arity";
        let hello = greet("world".to_string(), 2);
    };
}
