#![deny(unused_must_use)]

use pipewright::prelude::*;

#[task]
fn load() -> u32 {
    1
}

fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "unread";
        let data = load();
    };
    let runner = Runner::in_memory();
    runner.run(&p)?;
    Ok(())
}
