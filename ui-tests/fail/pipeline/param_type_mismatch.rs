use pipewright::prelude::*;

#[task]
fn repeat(text: &String, times: usize) -> String {
    text.repeat(times)
}

#[task]
fn word(text: String) -> String {
    text
}

fn main() {
    let _p = pipeline! {
        name = "params";
        let w = word("ab".to_string());
        let ww = repeat(w, "twice");
    };
}
