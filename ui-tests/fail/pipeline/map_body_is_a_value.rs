use pipewright::prelude::*;

#[task]
fn words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task]
fn number(n: u64) -> u64 {
    n
}

#[task]
fn count(word: &String, times: usize) -> usize {
    word.len() * times
}

#[task]
fn total(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

#[task]
fn double(n: &usize) -> usize {
    n * 2
}

#[task]
fn lengths(words: &[&String]) -> usize {
    words.len()
}

fn main() {
    let _p = pipeline! {
        name = "map";
        let text = words("a b".to_owned());
        let counts = for w in text { value!(1) };
    };
}
