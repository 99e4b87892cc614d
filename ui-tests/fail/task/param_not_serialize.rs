use pipewright::prelude::*;

#[derive(Clone, Debug)]
struct Norm {
    power: u32,
}

#[task]
fn scale(values: &Vec<f64>, norm: Norm) -> Vec<f64> {
    values.iter().map(|v| v.powi(norm.power as i32)).collect()
}

fn main() {}
