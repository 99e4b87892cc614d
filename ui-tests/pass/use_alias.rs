// `use path::task as alias;` brings the function and the task under the new name.

use pipewright::prelude::*;

mod etl {
    use pipewright::prelude::*;

    #[task]
    pub fn load_numbers(n: u32) -> Vec<u32> {
        (1..=n).collect()
    }

    #[task]
    pub fn sum(values: &Vec<u32>) -> u32 {
        values.iter().sum()
    }
}

use etl::load_numbers as load;
use etl::sum as add_up;

pub(crate) fn main() -> pipewright::Result<()> {
    assert_eq!(load(3), vec![1, 2, 3]);
    let p = pipeline! {
        name = "alias";
        let numbers = load(4);
        let total = add_up(numbers);
    };
    let data = crate::data_dir();
    let run = Runner::new(data.path()).run(&p)?;
    assert_eq!(*run.get(p.total)?, 10);
    Ok(())
}
