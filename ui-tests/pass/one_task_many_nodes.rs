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
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(*run.get(p.six)?, 6);
    Ok(())
}
