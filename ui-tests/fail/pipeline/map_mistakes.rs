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
        let other = words("c d".to_owned());
        let unused = for w in text { count(other, 2) };
        let listed = for w in text { lengths([w]) };
        let computed = for w in text { count(w, w.len()) };
        let counts = for w in text { count(w, 2) };
        let gathered = total([counts]);
        let nowhere = for w in missing { count(w, 2) };
        let early = for w in later { count(w, 2) };
        let later = words("e".to_owned());
        let cloned = for w in text.clone() { count(w, 2) };
    };
}
