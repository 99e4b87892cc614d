use pipewright::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Sale {
    cents: u64,
}

#[task]
fn total(parts: &[u64]) -> u64 {
    parts.iter().sum()
}

#[task]
fn revenue(sales: &[Sale]) -> u64 {
    sales.iter().map(|s| s.cents).sum()
}

fn main() {}
