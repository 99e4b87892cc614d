use pipewright::prelude::*;

struct Report {
    lines: u32,
}

#[task]
fn summarize(text: &String) -> Report {
    Report {
        lines: text.lines().count() as u32,
    }
}

#[task]
fn checked(text: &String) -> Result<Report, String> {
    Ok(Report {
        lines: text.lines().count() as u32,
    })
}

fn main() {}
