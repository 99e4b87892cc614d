//! The smallest pipeline: two tasks, one edge.
//!
//! `cargo run --example hello_world`

use pipewright::prelude::*;

/// Says hello to someone.
#[task]
fn greet(name: String) -> String {
    format!("Hello, {name}")
}

/// Adds emphasis.
#[task]
fn shout(greeting: &String) -> String {
    format!("{}!", greeting.to_uppercase())
}

fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "hello-world";
        let hello = greet("world".to_string());
        let loud = shout(hello);
    };
    let run = Runner::new("target/pipewright-data").run(&p)?;
    println!("{}", run.get(p.loud)?);
    println!("{run}");
    Ok(())
}
