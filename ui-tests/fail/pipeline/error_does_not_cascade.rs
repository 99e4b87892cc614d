use pipewright::prelude::*;

#[task]
fn load(path: String) -> String {
    path
}

fn main() {
    let p = pipeline! {
        name = "cascade";
        let text = load("a.txt".to_string());
        let text = load("b.txt".to_string());
    };
    let run = Runner::new("data").run(&p).unwrap();
    println!("{}", run.get(p.text).unwrap());
}
