use pipewright::prelude::*;

#[task]
fn words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task]
fn shout(word: &String) -> String {
    word.to_uppercase()
}

#[task]
fn total(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

fn main() {
    let _ = pipeline! {
        name = "gather_mapped_wrong_type";
        let text = words("a bb ccc".to_owned());
        let loud = for word in text { shout(word) };
        // `loud` is a list of `String` nodes; `total` gathers `usize` ones.
        let sum = total(loud);
    };
}
