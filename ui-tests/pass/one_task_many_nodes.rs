// One task used under several binding names, each its own node.

use pipewright::prelude::*;

#[task]
fn number(n: u32) -> u32 {
    n
}

#[task]
fn add(a: &u32, b: &u32) -> u32 {
    a + b
}

pub(crate) fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "many";
        let one = number(1);
        let two = number(2);
        let three = add(one, two);
        let six = add(three, three);
    };
    assert_eq!(p.len(), 4);
    let run =
        Runner::new(std::env::temp_dir().join("pipewright-ui-one-task-many-nodes")).run(&p)?;
    assert_eq!(*run.get(p.six)?, 6);
    Ok(())
}
