//! `#[pipewright::main]` keeps `main`'s signature, here a `Result`.

use pipewright::prelude::*;

#[task]
fn one() -> u32 {
    1
}

#[pipewright::main]
pub(crate) fn main() -> Result<(), String> {
    let p = pipeline! {
        name = "marked";
        let x = one();
    };
    let _ = Runner::new("target/ui-marked").executor(Executor::Process);
    let _ = p.x;
    Ok(())
}
