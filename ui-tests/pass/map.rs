// `for x in xs { task(x) }` maps a task over a list made at run time; a mapped binding is
// gathered whole, or mapped over again.

use pipewright::prelude::*;

#[task]
fn split_words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task]
fn length_times(word: &String, times: usize) -> usize {
    word.len() * times
}

#[task]
fn label(n: &usize, prefix: &String) -> String {
    format!("{prefix}{n}")
}

#[task]
fn add_counts(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

pub(crate) fn main() -> pipewright::Result<()> {
    let times = 2;
    let p = pipeline! {
        name = "map";
        let text = split_words("a bb ccc".to_owned());
        let prefix = value!("n=".to_owned());
        let counts = for word in text { length_times(word, times) };
        let labels = for n in counts { label(n, prefix) };
        let sum = add_counts(counts);
        // The element may shadow a binding's name.
        let again = for text in text { length_times(text, times + 1) };
    };
    assert_eq!(p.len(), 6);
    let _: Mapped<usize> = p.counts;
    let _: Mapped<String> = p.labels;
    let _: Mapped<usize> = p.again;
    let _: Handle<usize> = p.sum;

    let run = Runner::in_memory().keep_branches(p.counts).run(&p)?;
    assert_eq!(run.branches(p.counts)?, [&2, &4, &6]);
    assert_eq!(run.branches(p.labels)?, ["n=2", "n=4", "n=6"]);
    assert_eq!(*run.get(p.sum)?, 12);
    assert_eq!(run.branches(p.again)?, [&3, &6, &9]);
    Ok(())
}
