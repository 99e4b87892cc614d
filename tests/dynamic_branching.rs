//! Dynamic branching: a task mapped over a list made at run time, one branch per element,
//! each cached by its element's content.

use std::cell::Cell;

use pipewright::Error;
use pipewright::prelude::*;

#[task]
fn words(text: String) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

#[task]
fn count(word: &String, times: usize) -> usize {
    word.len() * times
}

#[task]
fn gathered(words: &[&String]) -> usize {
    words.len()
}

#[task]
fn total(counts: &[&usize]) -> usize {
    counts.iter().copied().sum()
}

#[test]
fn a_map_body_must_take_its_element() {
    let mut b = Pipeline::builder("unused");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let other = b.value("other", "x".to_owned()).unwrap();
    let err = b
        .map("counts", list, |_w: Handle<String>| count::node(other, 1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMap { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "map `counts`: its body does not take the element"
    );
    // Nothing was added.
    assert_eq!(b.len(), 2);
}

#[test]
fn a_map_body_cannot_gather_its_element() {
    let mut b = Pipeline::builder("gathering");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let err = b.map("counts", list, |w| gathered::node([w])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "map `counts`: its body gathers the element into a list: take it as a single input"
    );
}

#[test]
fn the_element_cannot_be_used_outside_its_map() {
    let mut b = Pipeline::builder("leaked");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let leaked = Cell::new(None);
    b.map("counts", list, |w| {
        leaked.set(Some(w));
        count::node(w, 1)
    })
    .unwrap();
    let err = b
        .add("outside", count::node(leaked.get().unwrap(), 1))
        .unwrap_err();
    assert!(matches!(err, Error::ElementOutsideMap { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("node `outside` takes the element of a map")
    );
}

#[test]
fn a_map_over_another_pipelines_node_is_refused() {
    let mut a = Pipeline::builder("a");
    let list = a.add("words", words::node("a b".to_owned())).unwrap();
    let mut b = Pipeline::builder("b");
    let err = b.map("counts", list, |w| count::node(w, 1)).unwrap_err();
    assert!(matches!(err, Error::ForeignHandle { .. }), "{err:?}");
}

#[test]
fn a_mapped_node_is_one_node_of_the_graph_wired_to_its_list() {
    let mut b = Pipeline::builder("shape");
    let list = b.add("words", words::node("a b".to_owned())).unwrap();
    let counts = b.map("counts", list, |w| count::node(w, 1)).unwrap();
    let again = b.map("again", counts, |c| total::node([c])); // gathering the element
    assert!(again.is_err());
    let sum = b.add("total", total::node(counts)).unwrap();
    let p = b.build();
    assert_eq!(p.len(), 3);
    assert_eq!(p.parents(counts.id()), [list.id()]);
    assert_eq!(p.parents(sum.id()), [counts.id()]);
}
