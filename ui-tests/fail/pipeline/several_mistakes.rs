use pipewright::prelude::*;

#[task]
fn number(n: u64) -> u64 {
    n
}

#[task]
fn double(x: &u64) -> u64 {
    x * 2
}

fn main() {
    let _p = pipeline! {
        name = "mistakes";
        let a = number(1);
        let a = number(2);
        let b = double(c);
        let c = double(&a);
    };
}
