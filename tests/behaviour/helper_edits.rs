//! A helper edited between two builds of a program re-runs exactly the tasks that use it,
//! and `explain` names it; a comment or a new layout in it re-runs nothing. The program is
//! a small crate written here and compiled three times against the pipewright this test
//! links, with one edit between builds.

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

/// The program's source, where it is built, and its data directory.
struct Fixture {
    dir: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    /// Builds the program with `scale` as its helper's body: `rustc` against the
    /// pipewright this test was built with and its dependencies, as cargo would build a
    /// binary that depends on it, without building them again.
    fn build(&self, scale: &str) {
        let source = self.dir.path().join("main.rs");
        std::fs::write(&source, PROGRAM.replace("{SCALE}", scale)).unwrap();
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(rustc)
            .args(["--edition", "2024", "--crate-name", "helper_fixture"])
            .args(["--crate-type", "bin", "-C", "debuginfo=0"])
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg("--extern")
            .arg(format!("pipewright={}", pipewright_rlib(&deps).display()))
            .arg("-o")
            .arg(self.program())
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the fixture does not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn program(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("helper_fixture{}", std::env::consts::EXE_SUFFIX))
    }

    /// Runs the program on its data directory, with `args` after it; its output.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(self.program())
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

/// The pipewright library cargo built beside this test: the newest, where builds with other
/// features left others.
fn pipewright_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libpipewright-") && name.ends_with(".rlib")
        })
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .expect("cargo builds pipewright's library beside its tests")
}
