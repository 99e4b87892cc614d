//! Mistakes in a graph built at run time are errors, never panics.

use pipewright::Error;
use pipewright::prelude::*;

#[task(name = "builder_errors.one")]
fn one() -> u8 {
    1
}

#[task]
fn inc(x: &u8) -> u8 {
    x + 1
}

#[test]
fn a_repeated_node_name_is_an_error() {
    let mut b = Pipeline::builder("dup");
    b.add("a", one::node()).unwrap();
    let err = b.add("a", one::node()).unwrap_err();
    assert!(matches!(&err, Error::DuplicateNode { node, .. } if node == "a"));
    assert_eq!(
        err.to_string(),
        "node `a` is defined twice in pipeline `dup`"
    );
    assert_eq!(b.len(), 1);
}

#[test]
fn names_that_cannot_be_file_names_are_rejected() {
    let mut b = Pipeline::builder("names");
    for (name, reason) in [
        ("", "it is empty"),
        ("..", "it names a directory"),
        ("a/b", "it contains a path separator"),
        ("a\\b", "it contains a path separator"),
        ("a\0b", "it contains a control character"),
        ("a\u{7f}b", "it contains a control character"),
        ("a\u{85}b", "it contains a control character"),
        (&"x".repeat(201), "it is longer than 200 bytes"),
        (
            "counts[3]",
            "a name that ends in `[` digits `]` is a branch's (`counts[3]` is branch 3 of the \
             mapped node `counts`)",
        ),
    ] {
        let err = b.add(name, one::node()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidNodeName { reason: r, .. } if *r == reason),
            "{name:?}: {err}"
        );
    }
    assert!(b.is_empty());
    b.add("x".repeat(200), one::node()).unwrap();
    b.add("spaces and ünïcödé are fine", one::node()).unwrap();
    // Written with the byte 0xC2 in UTF-8, as C1 control characters are.
    b.add("a £ or a ° sign too", one::node()).unwrap();
    for bracketed in ["a[b]", "a[]", "[3]x", "a[3]b"] {
        b.add(bracketed, one::node()).unwrap();
    }
}

#[test]
fn a_separator_or_a_control_character_is_found_wherever_it_is() {
    let separator = "it contains a path separator";
    let control = "it contains a control character";
    let mut unusual: Vec<(String, &str)> = (0u8..0x20)
        .map(|b| (char::from(b).to_string(), control))
        .collect();
    unusual.extend([
        ("/".to_owned(), separator),
        ("\\".to_owned(), separator),
        ("\u{7f}".to_owned(), control),
        ("\u{80}".to_owned(), control),
        ("\u{9f}".to_owned(), control),
    ]);
    let mut b = Pipeline::builder("unusual");
    for (text, reason) in &unusual {
        for at in 0..20 {
            let name = format!("{}{text}{}", "a".repeat(at), "b".repeat(19 - at));
            let err = b.add(&name, one::node()).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidNodeName { reason: r, .. } if r == reason),
                "{name:?}: {err}"
            );
        }
    }
    assert!(b.is_empty());
}

#[test]
fn a_node_is_named_by_any_kind_of_string() {
    let mut b = Pipeline::builder("string_kinds");
    let owned = String::from("owned");
    b.add("literal", one::node()).unwrap();
    b.add(&owned, one::node()).unwrap();
    b.add(format!("{owned}_too"), one::node()).unwrap();
    b.add(std::sync::Arc::<str>::from("shared"), one::node())
        .unwrap();
    b.add(std::borrow::Cow::Borrowed("borrowed"), one::node())
        .unwrap();
    b.value(Box::<str>::from("boxed"), 1u8).unwrap();
    let err = b.add(&owned, one::node()).unwrap_err();
    assert!(matches!(&err, Error::DuplicateNode { node, .. } if node == "owned"));
    let p = b.build();
    assert_eq!(
        p.node_names().collect::<Vec<_>>(),
        [
            "literal",
            "owned",
            "owned_too",
            "shared",
            "borrowed",
            "boxed"
        ]
    );
}

#[test]
fn a_handle_of_another_pipeline_is_an_error() {
    let mut first = Pipeline::builder("first");
    let a = first.add("a", one::node()).unwrap();
    let mut second = Pipeline::builder("second");
    let err = second.add("b", inc::node(a)).unwrap_err();
    assert!(matches!(&err, Error::ForeignHandle { node, .. } if node == "b"));
    assert_eq!(
        err.to_string(),
        "node `b` refers to a handle of another pipeline than `second`"
    );

    // Nor can a report be read with a foreign handle.
    second.add("own", one::node()).unwrap();
    let p = second.build();
    let run = Runner::in_memory().run(&p).unwrap();
    assert!(matches!(run.get(a), Err(Error::ForeignHandle { .. })));
}

#[test]
fn reading_by_name_checks_the_name_and_the_type() {
    let p = pipeline! {
        name = "by-name";
        let a = one();
        let b = inc(a);
    };
    let run = Runner::in_memory().run(&p).unwrap();
    assert_eq!(*run.get_as::<u8>("b").unwrap(), 2);
    assert_eq!(
        run.get_as::<u8>("c").unwrap_err().to_string(),
        "pipeline `by-name` has no node named `c`"
    );
    assert_eq!(
        run.get_as::<u16>("b").unwrap_err().to_string(),
        "node `b` outputs `u8`, not `u16`"
    );
    assert_eq!(run.status("c"), None);
}

#[test]
fn an_empty_pipeline_runs_to_an_empty_report() {
    let p = Pipeline::builder("empty").build();
    let run = Runner::in_memory().run(&p).unwrap();
    assert!(run.succeeded());
    assert!(run.nodes().len() == 0);
}
