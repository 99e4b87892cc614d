//! A folder of CSV files made into a report file, published at a path of your choice.
//!
//! `cargo run --release --example files_report` reads `examples/data/sales/*.csv` and
//! writes `target/files_report/report.md`;
//! `cargo run --release --example files_report -- DIR OUT` reads DIR and writes OUT.
//!
//! Run it twice: the second time nothing runs. The folder is an `InputDir`, known by its
//! files' content: touch a CSV file and nothing runs; edit one, and the nodes below the
//! folder run again (the report is written again only if the totals changed). Delete the
//! published report: the next run puts it back from the store without writing it again.
//! The row parser is a `#[pipewright::helper]` the totals name in `uses`: edit its code, and
//! the totals are computed again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pipewright::prelude::*;
use pipewright::{InputDir, OutputFile};
use serde::{Deserialize, Serialize};

/// The text of each CSV file of `dir`, by file name. The folder's key is the digest of its
/// files, so this runs again only when one of them changed.
#[task]
fn read_folder(dir: InputDir) -> std::io::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            files.insert(name.into_owned(), std::fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}

/// The units sold and the revenue of one product in one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Sales {
    units: u64,
    revenue: f64,
}

/// Sales by file, then by product.
type Totals = BTreeMap<String, BTreeMap<String, Sales>>;

/// One row, `date,product,units,unit_price`: the product, the units and the unit price.
#[pipewright::helper]
fn parse_row(line: &str) -> Result<(&str, u64, f64), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [_, product, units, price] = fields[..] else {
        return Err("expected 4 fields".to_owned());
    };
    let units = units.parse().map_err(|e| format!("units: {e}"))?;
    let price = price.parse().map_err(|e| format!("price: {e}"))?;
    Ok((product, units, price))
}

/// Sums each file's rows by product.
#[task(uses = [parse_row])]
fn totals(files: &BTreeMap<String, String>) -> Result<Totals, String> {
    let mut totals = Totals::new();
    for (name, text) in files {
        let by_product = totals.entry(name.clone()).or_default();
        for (n, line) in text.lines().enumerate().skip(1) {
            let (product, units, price) =
                parse_row(line).map_err(|e| format!("{name}.csv, line {}: {e}", n + 1))?;
            let sales = by_product.entry(product.to_owned()).or_default();
            sales.units += units;
            sales.revenue += units as f64 * price;
        }
    }
    Ok(totals)
}

/// Writes the report, a Markdown table per file and the grand total, as `report.md` of
/// its work directory, and returns it.
#[task]
fn report(totals: &Totals, title: String, ctx: &Ctx) -> std::io::Result<OutputFile> {
    let mut text = format!("# {title}\n");
    let mut grand = 0.0;
    for (name, by_product) in totals {
        text += &format!("\n## {name}\n\n| product | units | revenue |\n| --- | ---: | ---: |\n");
        for (product, sales) in by_product {
            text += &format!("| {product} | {} | {:.2} |\n", sales.units, sales.revenue);
            grand += sales.revenue;
        }
    }
    text += &format!("\nTotal revenue: {grand:.2}\n");
    let file = OutputFile::new(ctx, "report.md")?;
    std::fs::write(file.path(), text)?;
    Ok(file)
}

fn main() -> pipewright::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/sales"),
        PathBuf::from,
    );
    let out = args.next().map_or_else(
        || PathBuf::from("target/files_report/report.md"),
        PathBuf::from,
    );

    let p = pipeline! {
        name = "files-report";
        let files = read_folder(InputDir::new(dir));
        let sums = totals(files);
        let summary = report(sums, "Sales by region".to_string());
    };
    let run = Runner::new("target/pipewright-data")
        .publish(p.summary, &out)
        .run(&p)?;
    println!("{run}");
    let file = run.get(p.summary)?;
    println!("report in the store: {}", file.path().display());
    for published in run.published() {
        println!("{:?}: {}", published.action, published.path.display());
    }
    Ok(())
}
