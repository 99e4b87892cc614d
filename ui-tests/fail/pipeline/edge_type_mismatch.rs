use pipewright::prelude::*;

#[task]
fn count(n: u32) -> u32 {
    n
}

#[task]
fn shout(text: &String) -> String {
    text.to_uppercase()
}

fn main() {
    let _p = pipeline! {
        name = "mismatch";
        let n = count(3);
        let loud = shout(n);
    };
}
