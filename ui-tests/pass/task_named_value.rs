// `value!(...)` in `pipeline!` is the built-in constant node; a task named `value` is
// called as any task is, by its name or a path.

use pipewright::prelude::*;

#[task]
fn value(n: u32) -> u32 {
    n * 10
}

#[task]
fn add_both(a: &u32, b: &u32) -> u32 {
    a + b
}

pub(crate) fn main() {
    let p = pipeline! {
        name = "task-named-value";
        let constant = value!(1_u32);
        let computed = value(2);
        let by_path = self::value(3);
        let sum = add_both(constant, computed);
        let more = add_both(sum, by_path);
    };
    let run = Runner::in_memory()
        .keep(p.constant)
        .keep(p.sum)
        .run(&p)
        .unwrap();
    assert_eq!(*run.get(p.constant).unwrap(), 1);
    assert_eq!(*run.get(p.sum).unwrap(), 21);
    assert_eq!(*run.get(p.more).unwrap(), 51);
}
