use pipewright::prelude::*;

#[task]
fn shout(text: &String) -> String {
    text.to_uppercase()
}

fn main() {
    let _p = pipeline! {
        name = "loop";
        let loud = shout(loud);
    };
}
