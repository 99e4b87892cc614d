use pipewright::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Sale {
    cents: u64,
}

#[task]
fn total(sales: Vec<&Sale>) -> u64 {
    sales.iter().map(|s| s.cents).sum()
}

#[task]
fn first(sale: Option<&Sale>) -> u64 {
    sale.map_or(0, |s| s.cents)
}

#[task]
fn names(labels: &Vec<&str>) -> usize {
    labels.len()
}

fn main() {}
