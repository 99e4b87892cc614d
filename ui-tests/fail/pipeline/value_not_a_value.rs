use pipewright::prelude::*;

#[task]
fn total(rows: &Vec<u32>) -> u32 {
    rows.iter().sum()
}

fn main() {
    let _p = pipeline! {
        name = "values";
        let rows = value!(vec![1, 2, 3]);
        let copy = value!(rows);
        let both = value!([rows, copy]);
        let pair = value!(1, 2);
        let sum = total(rows);
    };
}
