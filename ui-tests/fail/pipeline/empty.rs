use pipewright::prelude::*;

fn main() {
    let _p = pipeline! {
        name = "empty";
    };
}
