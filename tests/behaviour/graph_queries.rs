//! The graph answers questions about its shape: parents, children, sinks, a topological
//! order, and the ancestors of a target.

use pipewright::prelude::*;

#[task]
fn src(x: i32) -> i32 {
    x
}

#[task]
fn add(a: &i32, b: &i32) -> i32 {
    a + b
}

#[test]
fn shape_queries() {
    let p = pipeline! {
        name = "shape";
        let a = src(1);
        let b = src(2);
        let c = src(3);
        let ab = add(a, b);
        let bb = add(b, b);
        let abc = add(ab, c);
        let lone = src(4);
    };
    let id = |name: &str| p.node(name).unwrap();
    let names =
        |ids: &[pipewright::NodeId]| -> Vec<&str> { ids.iter().map(|i| p.node_name(*i)).collect() };

    assert_eq!(names(p.parents(id("abc"))), ["ab", "c"]);
    // An upstream used twice by one node is one parent, and that node one child.
    assert_eq!(names(p.parents(id("bb"))), ["b"]);
    assert_eq!(names(p.children(id("b"))), ["ab", "bb"]);

    let mut sinks: Vec<&str> = p.sinks().map(|s| p.node_name(s)).collect();
    sinks.sort_unstable();
    assert_eq!(sinks, ["abc", "bb", "lone"]);

    assert_eq!(names(&p.ancestors(id("abc"))), ["a", "b", "c", "ab", "abc"]);
    assert_eq!(names(&p.ancestors(id("lone"))), ["lone"]);

    let order = p.topological_order();
    assert_eq!(order.len(), p.len());
    let position = |name: &str| order.iter().position(|i| *i == id(name)).unwrap();
    for name in p.node_names() {
        for parent in p.parents(id(name)) {
            assert!(position(p.node_name(*parent)) < position(name), "{name}");
        }
    }
    assert_eq!(p.task_of(id("bb")).name, "add");
    assert_eq!(p.node("nope"), None);
}
