use pipewright::prelude::*;

#[task]
fn count(n: u32) -> u32 {
    n
}

fn main() {
    let _p = pipeline! {
        name = "arith";
        let a = count(1);
        let b = count(a + 1);
    };
}
