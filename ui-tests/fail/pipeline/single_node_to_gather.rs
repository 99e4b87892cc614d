use pipewright::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Table {
    rows: Vec<u64>,
}

#[task]
fn load(n: u64) -> Table {
    Table { rows: vec![n] }
}

#[task]
fn merge(base: &Table, extra: &[&Table]) -> Table {
    let mut rows = base.rows.clone();
    rows.extend(extra.iter().flat_map(|t| t.rows.iter().copied()));
    Table { rows }
}

fn main() {
    let _p = pipeline! {
        name = "merge";
        let t1 = load(1);
        let t5 = load(5);
        let all = merge(t1, t5);
    };
}
