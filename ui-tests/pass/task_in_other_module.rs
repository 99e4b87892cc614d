// A task defined in one module, imported by name and wired in another.

mod tasks {
    use pipewright::prelude::*;

    #[task]
    pub(crate) fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

mod app {
    use crate::task_in_other_module::tasks::greet;
    use pipewright::prelude::*;

    pub fn run() -> pipewright::Result<String> {
        let p = pipeline! {
            name = "modules";
            let hello = greet("world".to_string());
        };
        let data = crate::data_dir();
        let run = Runner::new(data.path()).run(&p)?;
        Ok(run.get(p.hello)?.clone())
    }
}

pub(crate) fn main() -> pipewright::Result<()> {
    assert_eq!(app::run()?, "hello, world");
    Ok(())
}
