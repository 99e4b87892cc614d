use pipewright::prelude::*;

#[task]
fn number(n: u64) -> u64 {
    n
}

#[task]
fn word(text: String) -> String {
    text
}

#[task]
fn total(parts: &[&u64]) -> u64 {
    parts.iter().copied().sum()
}

fn main() {
    let _p = pipeline! {
        name = "gather";
        let a = number(1);
        let b = word("two".to_string());
        let sum = total([a, b]);
    };
}
