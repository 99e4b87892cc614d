//! One branch per file: a task mapped over the files a folder holds when the run starts.
//!
//! `cargo run --release --example sales_by_file` lists `examples/data/sales/*.csv`, sums
//! each file in a branch of its own, formats each sum (a map over the map), and gathers
//! them into a summary; `cargo run --release --example sales_by_file -- DIR`
//! reads DIR instead.
//!
//! Run it twice: the second time every branch is cached. Each branch is known by its
//! file's content, not by its place in the list: edit one CSV file and only its branch
//! runs again; add a file and one new branch runs; rename or delete one and no branch runs,
//! (a file whose content another file has shares that file's branch).

use std::path::PathBuf;

use pipewright::prelude::*;
use pipewright::{InputDir, InputFile};
use serde::{Deserialize, Serialize};

/// The CSV files of `dir`, in name order. The folder is known by its files, so this runs
/// again when one changes; its output names the files, and each branch below is keyed by
/// the content of its own.
#[task]
fn list_files(dir: InputDir) -> std::io::Result<Vec<InputFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "csv") {
            files.push(InputFile::new(path));
        }
    }
    files.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(files)
}

/// What one file sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileTotal {
    units: u64,
    revenue: f64,
}

/// Sums the rows `date,product,units,unit_price` of one file. Its branch is known by the
/// file's content alone (two files alike share it), so it reads the content, never the
/// file's name.
#[task]
fn file_total(file: &InputFile) -> Result<FileTotal, String> {
    let text = std::fs::read_to_string(file.path()).map_err(|e| e.to_string())?;
    let mut total = FileTotal {
        units: 0,
        revenue: 0.0,
    };
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [_, _, units, price] = fields[..] else {
            return Err(format!("line {}: expected 4 fields", n + 1));
        };
        let units: u64 = units.parse().map_err(|e| format!("line {}: {e}", n + 1))?;
        let price: f64 = price.parse().map_err(|e| format!("line {}: {e}", n + 1))?;
        total.units += units;
        total.revenue += units as f64 * price;
    }
    Ok(total)
}

/// The figures of one file, as the summary shows them.
#[task]
fn figures(total: &FileTotal) -> String {
    format!("{:>6} units {:>10.2}", total.units, total.revenue)
}

/// A line per file, its name then its figures, and the sum of the revenues.
#[task]
fn summary(files: &Vec<InputFile>, figures: &[&String], totals: &[&FileTotal]) -> String {
    let mut out = String::new();
    for (file, figures) in files.iter().zip(figures) {
        let name = file
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        out.push_str(&format!("{name:<12} {figures}\n"));
    }
    let revenue: f64 = totals.iter().map(|t| t.revenue).sum();
    out.push_str(&format!("{:<12} {:>23.2}\n", "all files", revenue));
    out
}

fn main() -> pipewright::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/sales"),
        PathBuf::from,
    );

    let p = pipeline! {
        name = "sales-by-file";
        let files = list_files(InputDir::new(dir));
        let totals = for file in files { file_total(file) };
        let shown = for total in totals { figures(total) };
        let all = summary(files, shown, totals);
    };
    let run = Runner::new("target/pipewright-data").run(&p)?;
    println!("{run}");
    print!("{}", run.get(p.all)?);
    Ok(())
}
