// Tasks returning `Result`: with an error type, `std::io::Result<T>` and `Result<T, String>`.

use std::fmt;

use pipewright::prelude::*;

#[derive(Debug)]
struct ParseError;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a number")
    }
}

impl std::error::Error for ParseError {}

#[task]
fn parse(text: String) -> Result<u32, ParseError> {
    text.parse().map_err(|_| ParseError)
}

#[task]
fn read(n: &u32) -> std::io::Result<u32> {
    Ok(n + 1)
}

#[task]
fn check(n: &u32) -> Result<u32, String> {
    if *n < 100 {
        Ok(*n * 2)
    } else {
        Err(format!("{n} is too big"))
    }
}

pub(crate) fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "results";
        let n = parse("20".to_string());
        let m = read(n);
        let doubled = check(m);
        let bad = parse("twenty".to_string());
    };
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(*run.get(p.doubled)?, 42);
    assert!(run.get(p.bad).is_err());
    Ok(())
}
