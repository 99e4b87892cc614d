use pipewright::prelude::*;

struct Loader;

impl Loader {
    #[task]
    fn load(&self, path: String) -> String {
        path
    }
}

fn main() {}
