// A gathered input `&[&T]` takes several bindings: `merge([a, b, c])`.

use pipewright::prelude::*;

#[task]
fn part(n: u64) -> u64 {
    n
}

#[task]
fn merge(parts: &[&u64], scale: u64) -> Vec<u64> {
    parts.iter().map(|p| *p * scale).collect()
}

pub(crate) fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "gather";
        let a = part(1);
        let b = part(2);
        let c = part(3);
        let all = merge([c, a, b], 10);
        let none = merge([], 10);
    };
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(run.get(p.all)?, &vec![30, 10, 20]);
    assert!(run.get(p.none)?.is_empty());
    Ok(())
}
