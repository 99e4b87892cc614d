// Tasks named by path in `pipeline!`: `etl::normalize(...)`, `crate::...`, `self::...`.

use pipewright::prelude::*;

mod etl {
    use pipewright::prelude::*;

    #[task]
    pub fn load(n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    pub mod steps {
        use pipewright::prelude::*;

        #[task]
        pub fn normalize(values: &Vec<u32>) -> Vec<f64> {
            let max = *values.iter().max().unwrap_or(&1) as f64;
            values.iter().map(|v| *v as f64 / max).collect()
        }
    }
}

#[task]
fn total_of(values: &Vec<f64>) -> f64 {
    values.iter().sum()
}

pub(crate) fn main() -> pipewright::Result<()> {
    let p = pipeline! {
        name = "paths";
        let raw = etl::load(4);
        let norm = crate::paths::etl::steps::normalize(raw);
        let sum = self::total_of(norm);
    };
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(*run.get(p.sum)?, 2.5);
    Ok(())
}
