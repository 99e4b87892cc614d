//! A helper edited between two builds of a program re-runs exactly the tasks that use it,
//! and `explain` names it; a comment or a new layout in it re-runs nothing. The program is
//! a small crate written here and built with cargo, against this pipewright, into a
//! target directory of its own that later runs of the test build on.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The program: `parsed` uses `util::parse`, which uses `util::scale`; `scaled` uses
/// `util::scale`; `plain` uses no helper; `total` reads `parsed`. `{SCALE}` is the body of
/// `util::scale`.
const PROGRAM: &str = r#"
use pipewright::prelude::*;

mod util {
    #[pipewright::helper(uses = [scale])]
    pub fn parse(text: &str) -> Vec<u32> {
        text.split(',').map(|x| scale(x.trim().parse().unwrap())).collect()
    }

    #[pipewright::helper]
    pub fn scale(x: u32) -> u32 {
        {SCALE}
    }
}

#[task(uses = [util::parse])]
fn parsed(text: String) -> Vec<u32> {
    util::parse(&text)
}

#[task(uses = [util::scale])]
fn scaled(x: u32) -> u32 {
    util::scale(x)
}

#[task]
fn plain(x: u32) -> u32 {
    x + 1
}

#[task]
fn total(xs: &Vec<u32>) -> u32 {
    xs.iter().sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap();
    let p = pipeline! {
        name = "helpers";
        let parsed = parsed("1, 2, 3".to_string());
        let scaled = scaled(5);
        let plain = plain(5);
        let total = total(parsed);
    };
    let runner = Runner::new(data);
    if let Some(node) = args.next() {
        println!("{}", runner.explain(&p, &node).unwrap());
        return;
    }
    let run = runner.run(&p).unwrap();
    println!("total {} scaled {}", run.get(p.total).unwrap(), run.get(p.scaled).unwrap());
    for node in run.nodes() {
        println!("{} {:?}", node.name(), node.status());
    }
}
"#;

/// The fixture crate's directory and its target directory.
struct Fixture {
    dir: PathBuf,
    target: PathBuf,
    data: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helper-edits");
        let dir = root.join("crate");
        std::fs::create_dir_all(dir.join("src")).unwrap();
        // The workspace, whose root package is pipewright.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        // The program needs none of pipewright's features, nor debug information: the less
        // its first build compiles, the sooner the test runs on a clean machine.
        let manifest = format!(
            "[package]\nname = \"helper_fixture\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\npipewright = {{ path = {:?}, default-features = false }}\n\n\
             [profile.dev]\ndebug = false\n\n[workspace]\n",
            workspace
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        // The workspace's versions of every dependency, which are on this machine.
        let lock = workspace.join("Cargo.lock");
        std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
        Fixture {
            dir,
            target: root.join("target"),
            data: tempfile::tempdir().unwrap(),
        }
    }

    /// Builds the program with `scale` as its helper's body.
    fn build(&self, scale: &str) {
        std::fs::write(
            self.dir.join("src/main.rs"),
            PROGRAM.replace("{SCALE}", scale),
        )
        .unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--offline", "--quiet"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the fixture does not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the program on its data directory, with `args` after it; its output.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(self.target.join("debug/helper_fixture"))
            .arg(self.data.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The nodes that ran, sorted, and the values of `total` and `scaled`.
    fn ran(&self) -> (Vec<String>, String) {
        let out = self.run(&[]);
        let mut lines = out.lines();
        let values = lines.next().unwrap().to_owned();
        let mut ran: Vec<String> = lines
            .filter_map(|l| l.strip_suffix(" Ran"))
            .map(str::to_owned)
            .collect();
        ran.sort();
        (ran, values)
    }
}

#[test]
fn an_edited_helper_reruns_exactly_the_tasks_that_use_it() {
    let fixture = Fixture::new();
    fixture.build("x * 2");
    let (ran, values) = fixture.ran();
    assert_eq!(ran, ["parsed", "plain", "scaled", "total"]);
    assert_eq!(values, "total 12 scaled 10");

    // A comment and a new layout are no edit.
    fixture.build("// twice\n        x\n            * 2");
    assert_eq!(fixture.ran(), (vec![], values.clone()));

    // The same values by other code: the tasks that reach `scale`, directly or through
    // `parse`, run again; `total`'s input is unchanged, so it does not.
    fixture.build("x + x");
    let explained = fixture.run(&["parsed"]);
    assert_eq!(
        explained,
        "`parsed` will run (no entry)\n  \
         - code of helper `helper_fixture::util::scale` changed\n"
    );
    let explained = fixture.run(&["plain"]);
    assert!(explained.starts_with("`plain` is fresh"), "{explained}");
    let (ran, after) = fixture.ran();
    assert_eq!(ran, ["parsed", "scaled"]);
    assert_eq!(after, values);
}
