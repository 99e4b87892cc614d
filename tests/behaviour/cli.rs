//! `pipewright::cli` gives a pipeline binary its commands: run (the default), plan, explain,
//! graph, status, clean and gc, with exit codes that say whether every node succeeded.

use std::path::Path;
use std::process::ExitCode;

use pipewright::cli;
use pipewright::prelude::*;

#[task]
fn base(n: u32) -> u32 {
    n
}

#[task]
fn double(x: &u32) -> u32 {
    x * 2
}

#[task]
fn check(x: &u32, limit: u32) -> Result<u32, String> {
    if *x > limit {
        Err(format!("{x} is over {limit}"))
    } else {
        Ok(*x)
    }
}

/// Runs the command line `args` and returns its exit code and what it printed.
fn cli(p: &Pipeline, data: &Path, args: &[&str]) -> (ExitCode, String) {
    let mut argv = vec![
        "pipeline".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut out = Vec::new();
    let code = cli::run_with(p, argv, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn the_commands_of_a_pipeline_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let p = pipeline! {
        name = "cli";
        let a = base(2);
        let b = double(a);
        let c = double(b);
    };

    let (code, out) = cli(&p, data, &["plan"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.starts_with("plan for `cli` (3 nodes: 0 fresh, 1 to run, 2 pending)"),
        "{out}"
    );

    // `run --target` runs what the target needs.
    let (code, out) = cli(&p, data, &["run", "--target", "b", "--quiet"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.is_empty(), "{out}");

    // No command: run. Only `c` is left.
    let (code, out) = cli(&p, data, &[]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.contains("3 nodes: 1 ran, 2 cached in"), "{out}");
    assert!(out.contains("recorded in "), "{out}");

    let (_, out) = cli(&p, data, &["run", "--force", "a", "-v"]);
    assert!(out.contains("3 nodes: 1 ran, 2 cached in"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq(["a", "ran"])),
        "{out}"
    );

    let (_, out) = cli(&p, data, &["explain", "c"]);
    assert!(out.starts_with("`c` is fresh: its entry "), "{out}");
    let (_, out) = cli(&p, data, &["explain", "c", "--force", "c"]);
    assert!(out.starts_with("`c` will run (forced)"), "{out}");

    let (_, out) = cli(&p, data, &["graph", "--format", "dot"]);
    assert!(out.starts_with("digraph"), "{out}");
    let (_, out) = cli(&p, data, &["graph", "--format", "mermaid"]);
    assert!(
        out.starts_with("---") || out.contains("flowchart TD"),
        "{out}"
    );
    let (_, out) = cli(&p, data, &["graph", "--format", "svg"]);
    assert!(
        out.starts_with("<svg") && out.trim_end().ends_with("</svg>"),
        "{out}"
    );
    let (_, out) = cli(&p, data, &["graph"]);
    assert!(
        out.contains("[fresh] c (double)") || out.contains("c"),
        "{out}"
    );

    // `status` shows the last run, and its HTML report is beside it.
    let (code, out) = cli(&p, data, &["status"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.starts_with("run "), "{out}");
    assert!(out.contains("3 nodes: 1 ran, 2 cached"), "{out}");
    let run_dir = out.lines().next().unwrap().strip_prefix("run ").unwrap();
    assert!(Path::new(run_dir).join("report.html").is_file());

    let (_, out) = cli(&p, data, &["gc", "--keep-runs", "1"]);
    assert!(
        out.starts_with("removed 0 entries and 2 run records"),
        "{out}"
    );
    let (_, out) = cli(&p, data, &["clean"]);
    assert!(
        out.starts_with("removed 3 entries and 0 run records"),
        "{out}"
    );
    // Without a command, the options of `run` apply.
    let (code, out) = cli(&p, data, &["--quiet", "--jobs", "1"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.is_empty(), "{out}");
    let (_, out) = cli(&p, data, &["--target", "a"]);
    assert!(
        out.contains("3 nodes: 0 ran, 1 cached, 2 not needed"),
        "{out}"
    );
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-fail";
        let a = base(5);
        let ok = check(a, 10);
        let bad = check(a, 3);
    };
    let (code, out) = cli(&p, dir.path(), &["run"]);
    assert_eq!(code, ExitCode::from(1));
    assert!(out.contains("bad") && out.contains("5 is over 3"), "{out}");

    let (code, out) = cli(&p, dir.path(), &["run", "--fail-fast", "--jobs", "1"]);
    assert_eq!(code, ExitCode::from(1));
    assert!(out.contains("5 is over 3"), "{out}");

    let (code, out) = cli(&p, dir.path(), &["status"]);
    assert_eq!(code, ExitCode::from(1));
    assert!(out.contains("5 is over 3"), "{out}");

    // A usage error, a node that does not exist, an empty log.
    assert_eq!(
        cli(&p, dir.path(), &["run", "--jobs", "many"]).0,
        ExitCode::from(2)
    );
    assert_eq!(
        cli(&p, dir.path(), &["run", "--force", "nope"]).0,
        ExitCode::from(2)
    );
    assert_eq!(
        cli(&p, dir.path(), &["explain", "nope"]).0,
        ExitCode::from(2)
    );
    assert_eq!(
        cli(&p, dir.path(), &["--jobs", "2", "plan"]).0,
        ExitCode::from(2)
    );
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(cli(&p, empty.path(), &["status"]).0, ExitCode::from(2));
    assert_eq!(cli(&p, dir.path(), &["--help"]).0, ExitCode::SUCCESS);
}

/// A node two levels below a failure names the node that failed; the failure is printed
/// once, and so is the summary.
#[test]
fn a_failure_is_blamed_on_the_node_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-blame";
        let boot = base(5);
        let parse = check(boot, 3);
        let mid = double(parse);
        let leaf = double(mid);
    };
    let (code, out) = cli(&p, dir.path(), &["run"]);
    assert_eq!(code, ExitCode::from(1));
    let line = |node: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(node))
            .unwrap_or_else(|| panic!("no line for `{node}` in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("mid"), "mid upstream failed after `parse`");
    assert_eq!(line("leaf"), "leaf upstream failed after `parse`");
    assert_eq!(out.matches("5 is over 3").count(), 1, "{out}");
    assert_eq!(out.matches("4 nodes:").count(), 1, "{out}");

    // The record blames it too.
    let (_, out) = cli(&p, dir.path(), &["status"]);
    let leaf = out
        .lines()
        .find(|l| l.trim_start().starts_with("leaf "))
        .unwrap();
    assert!(leaf.ends_with("after `parse`"), "{out}");
}

/// A data directory that is a file is refused by every command alike.
#[test]
fn a_data_directory_that_is_a_file_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let p = pipeline! {
        name = "cli-file";
        let a = base(1);
    };
    for args in [
        &["run"][..],
        &["plan"],
        &["explain", "a"],
        &["graph"],
        &["status"],
        &["clean"],
        &["gc"],
    ] {
        let (code, out) = cli(&p, &file, args);
        assert_eq!(code, ExitCode::from(2), "{args:?}: {out}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// `status` of a run whose directory cannot be written still shows the run, and puts its
/// report in a temporary file.
#[test]
fn status_shows_a_run_it_cannot_write_beside() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-read-only";
        let a = base(1);
        let b = double(a);
    };
    assert_eq!(cli(&p, dir.path(), &["--quiet"]).0, ExitCode::SUCCESS);
    let runs = dir.path().join("runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Where the report goes, a directory stands: writing it fails as on a read-only store.
    std::fs::create_dir(run_dir.join("report.html")).unwrap();

    let (code, out) = cli(&p, dir.path(), &["status"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("2 nodes: 2 ran"), "{out}");
    assert!(
        out.contains("note: the report cannot be written beside the run"),
        "{out}"
    );
    let report = out.lines().find_map(|l| l.strip_prefix("report ")).unwrap();
    let report = Path::new(report);
    assert!(!report.starts_with(dir.path()), "{out}");
    let html = std::fs::read_to_string(report).unwrap();
    assert!(html.contains("cli-read-only"), "{html}");
    std::fs::remove_file(report).unwrap();
}

#[task]
fn source_with_a_long_name(i: u32) -> u32 {
    i
}

#[task]
fn gather(parts: &[&u32]) -> u32 {
    parts.iter().copied().sum()
}

/// `graph` draws a layer wider than 140 columns when it is given the room.
#[test]
fn graph_draws_a_wide_layer_in_a_wide_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-wide";
        let first_source = source_with_a_long_name(1);
        let second_source = source_with_a_long_name(2);
        let third_source = source_with_a_long_name(3);
        let fourth_source = source_with_a_long_name(4);
        let all = gather([first_source, second_source, third_source, fourth_source]);
    };
    let (_, narrow) = cli(&p, dir.path(), &["graph", "--width", "140"]);
    assert!(narrow.contains("too wide to draw"), "{narrow}");
    let (code, wide) = cli(&p, dir.path(), &["graph", "--width", "400"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(!wide.contains("too wide to draw"), "{wide}");
    assert!(wide.contains('┌'), "{wide}");
    let widest = wide.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest > 140 && widest <= 400, "{widest}\n{wide}");
}

#[task]
fn pair(x: &u32) -> (u32, String) {
    (*x, format!("#{x}"))
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Point {
    x: i32,
    label: String,
}

#[task(codec = pipewright::codec::Json)]
fn point(x: &u32) -> Point {
    Point {
        x: *x as i32,
        label: "p".to_owned(),
    }
}

/// `show` prints a node's stored output as JSON, from the last run or a given one, without
/// running anything; a node without one says why.
#[test]
fn show_prints_a_stored_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-show";
        let a = base(5);
        let b = pair(a);
        let c = point(a);
        let bad = check(a, 3);
        let below = double(bad);
    };
    assert_eq!(cli(&p, dir.path(), &["--quiet"]).0, ExitCode::from(1));

    let (code, out) = cli(&p, dir.path(), &["show", "b"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json, serde_json::json!([5, "#5"]));
    let (_, out) = cli(&p, dir.path(), &["show", "c"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json, serde_json::json!({ "x": 5, "label": "p" }));

    // A later run with other parameters: `--run` shows the first one's.
    let first_run = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let q = pipeline! {
        name = "cli-show";
        let a = base(7);
        let b = pair(a);
    };
    assert_eq!(cli(&q, dir.path(), &["--quiet"]).0, ExitCode::SUCCESS);
    let (_, out) = cli(&q, dir.path(), &["show", "b"]);
    assert_eq!(out.trim(), "[\n  7,\n  \"#7\"\n]");
    let run = first_run.display().to_string();
    let (code, out) = cli(&q, dir.path(), &["show", "b", "--run", &run]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(out.trim(), "[\n  5,\n  \"#5\"\n]");

    // Nothing ran: `b` of the first run is still there, and no new run was recorded.
    assert_eq!(
        std::fs::read_dir(dir.path().join("runs")).unwrap().count(),
        2
    );

    // A failed node, a node below it and an unknown node have no output: exit code 2.
    for node in ["bad", "below", "nowhere"] {
        let (code, out) = cli(&p, dir.path(), &["show", node, "--run", &run]);
        assert_eq!(code, ExitCode::from(2), "{node}: {out}");
        assert!(out.is_empty(), "{out}");
    }
}

/// The parameters of a pipeline binary, given on its command line.
#[derive(clap::Args, serde::Serialize)]
struct Sizes {
    /// The base value.
    #[arg(long, default_value_t = 2)]
    base: u32,
    /// The limit of the check.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Runs the command line `args` of a binary with the parameters `Sizes`, and returns its
/// exit code, what it printed, and the parameters its pipeline was built with.
fn cli_with_params(data: &Path, args: &[&str]) -> (ExitCode, String, Option<(u32, u32)>) {
    let mut argv = vec![
        "pipeline".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut out = Vec::new();
    let mut built = None;
    let code = cli::run_with_params(argv, &mut out, |sizes: &Sizes| {
        built = Some((sizes.base, sizes.limit));
        pipeline! {
            name = "cli-params";
            let a = base(sizes.base);
            let b = double(a);
            let c = check(b, sizes.limit);
            let d = base(7);
        }
    });
    (code, String::from_utf8(out).unwrap(), built)
}

/// The `run.json` of the newest run under `data`.
fn last_record(data: &Path) -> serde_json::Value {
    let mut runs: Vec<_> = std::fs::read_dir(data.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort_by_key(|dir| {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        record["started"].as_str().unwrap().to_owned()
    });
    serde_json::from_slice(&std::fs::read(runs.last().unwrap().join("run.json")).unwrap()).unwrap()
}

/// A pipeline binary's own parameters are options of the commands that build it: listed
/// by `--help`, checked by clap, handed to the pipeline, recorded in `run.json`, and named
/// by `plan` and `explain` when they changed a node.
#[test]
fn parameters_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    for (args, about) in [
        (&["--help"][..], "Runs and inspects this pipeline."),
        (&["run", "--help"], "Run the pipeline: "),
        (&["plan", "--help"], "Say what a run would do"),
    ] {
        let (code, out, built) = cli_with_params(data, args);
        assert_eq!(code, ExitCode::SUCCESS, "{args:?}");
        assert!(out.starts_with(about), "{args:?}: {out}");
        assert!(out.contains("Parameters:"), "{args:?}: {out}");
        assert!(out.contains("--base <BASE>"), "{args:?}: {out}");
        assert!(out.contains("The limit of the check"), "{args:?}: {out}");
        assert!(built.is_none());
    }
    // A bad value is clap's usage error: nothing is built, nothing runs.
    let (code, out, built) = cli_with_params(data, &["--base", "many"]);
    assert_eq!((code, out.as_str(), built), (ExitCode::from(2), "", None));
    // Commands that do not build the pipeline take no parameters.
    let (code, _, _) = cli_with_params(data, &["status", "--base", "3"]);
    assert_eq!(code, ExitCode::from(2));
    assert!(!data.join("runs").exists());

    // The values reach the pipeline, with or without `run`, and are recorded.
    let (code, out, built) = cli_with_params(data, &["--base", "3"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(built, Some((3, 100)));
    assert!(out.contains("4 nodes: 4 ran"), "{out}");
    assert_eq!(
        last_record(data)["params"],
        serde_json::json!({ "base": 3, "limit": 100 })
    );
    let (code, out, built) = cli_with_params(data, &["run", "--base", "3", "--limit", "50"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(built, Some((3, 50)));
    assert!(out.contains("4 nodes: 1 ran, 3 cached"), "{out}");

    // Another value: the plan names the parameter, and exactly the nodes below it run.
    let (_, plan, _) = cli_with_params(data, &["plan", "--base", "4", "--limit", "50"]);
    assert!(
        plan.contains("parameters changed since the last run: `--base` 3 → 4"),
        "{plan}"
    );
    let (_, out, _) = cli_with_params(data, &["explain", "a", "--base", "4", "--limit", "50"]);
    assert!(
        out.contains(
            "parameter digest changed (`n`: 3 → 4), given as `--base` on the command line"
        ),
        "{out}"
    );
    let (_, out, _) = cli_with_params(data, &["explain", "b", "--base", "4", "--limit", "50"]);
    assert!(
        out.contains("the pipeline's parameters changed since the last run: `--base` 3 → 4"),
        "{out}"
    );
    let (_, out, _) = cli_with_params(data, &["explain", "d", "--base", "4", "--limit", "50"]);
    assert!(out.starts_with("`d` is fresh"), "{out}");
    let (code, out, _) = cli_with_params(data, &["run", "-v", "--base", "4", "--limit", "50"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let ran: Vec<&str> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ran"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ran, ["a", "b", "c"], "{out}");
    assert_eq!(
        last_record(data)["params"],
        serde_json::json!({ "base": 4, "limit": 50 })
    );
    let (code, out, built) = cli_with_params(data, &["status"]);
    assert_eq!((code, built), (ExitCode::SUCCESS, None), "{out}");
    assert!(
        out.lines().any(|l| l == "parameters: base = 4, limit = 50"),
        "{out}"
    );
}

/// `status --watch` on a run that has ended prints its status once, as `status` does, and
/// exits with the same code.
#[test]
fn watching_a_finished_run_prints_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "cli-watch-done";
        let a = base(5);
        let bad = check(a, 3);
    };
    assert_eq!(cli(&p, dir.path(), &["--quiet"]).0, ExitCode::from(1));
    let (code, status) = cli(&p, dir.path(), &["status"]);
    let (watch_code, watched) = cli(&p, dir.path(), &["status", "--watch"]);
    assert_eq!((watch_code, code), (ExitCode::from(1), ExitCode::from(1)));
    assert_eq!(watched, status);
    assert_eq!(watched.matches("2 nodes:").count(), 1, "{watched}");
}

/// Waits until the file `go` exists (for a minute at most), then returns `x`.
#[task(cache = false)]
fn wait_for(x: &u32, go: std::path::PathBuf, started: std::path::PathBuf) -> u32 {
    std::fs::write(&started, b"").unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !go.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    *x
}

/// What `status --watch` prints; once it has printed `when`, it creates the file that lets
/// the run finish.
struct Releasing {
    printed: Vec<u8>,
    when: &'static str,
    go: std::path::PathBuf,
}

impl std::io::Write for Releasing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.printed.extend_from_slice(bytes);
        if String::from_utf8_lossy(&self.printed).contains(self.when) {
            std::fs::write(&self.go, b"")?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `status --watch` on a run in progress shows it until it ends, then prints its final
/// status and exits; printed to a pipe, each view is printed once, without escape codes.
#[test]
fn watching_a_run_in_progress_shows_it_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (go, started) = (dir.path().join("go"), dir.path().join("started"));
    let p = pipeline! {
        name = "cli-watch";
        let a = base(1);
        let b = wait_for(a, go.clone(), started.clone());
    };
    std::thread::scope(|scope| {
        let run = scope.spawn(|| cli(&p, &data, &["--quiet", "--jobs", "1"]));
        while !started.exists() {
            assert!(!run.is_finished(), "the run ended before its task started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut out = Releasing {
            printed: Vec::new(),
            when: "\n2 nodes: 1 ran, 1 pending\n",
            go: go.clone(),
        };
        let argv = [
            "pipeline",
            "--data",
            data.to_str().unwrap(),
            "status",
            "--watch",
            "--interval",
            "0.01",
        ];
        let code = cli::run_with(&p, argv, &mut out);
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(run.join().unwrap().0, ExitCode::SUCCESS);
        let printed = String::from_utf8(out.printed).unwrap();
        assert!(!printed.contains('\x1b'), "{printed}");
        // Views of the run in progress, each unlike the one before, then the final status:
        // each starts with the line of its run directory.
        let starts: Vec<usize> = printed
            .match_indices("run ")
            .map(|(at, _)| at)
            .filter(|at| *at == 0 || printed.as_bytes()[at - 1] == b'\n')
            .collect();
        let views: Vec<&str> = starts.windows(2).map(|w| &printed[w[0]..w[1]]).collect();
        let start = *starts.last().unwrap();
        let last = &printed[start..];
        let running = format!("running in process {}", std::process::id());
        assert!(!views.is_empty(), "{printed}");
        for view in &views {
            assert!(view.contains(&running), "{printed}");
        }
        assert!(views.windows(2).all(|w| w[0] != w[1]), "{printed}");
        // The view that released the task: `a` ran, `b` was running.
        assert!(
            views.iter().any(|view| view.ends_with(
                "\n  a  ran\n  b  pending\n2 nodes: 1 ran, 1 pending\n"
            )),
            "{printed}"
        );
        assert!(last.contains("\nsucceeded\n"), "{printed}");
        assert!(last.contains("2 nodes: 2 ran in "), "{printed}");
        assert!(last.contains("\nreport "), "{printed}");
    });
}

#[task(name = "cli.numbers")]
fn numbers(n: u32) -> Vec<u32> {
    (0..n).collect()
}

/// Returns 0, refuses 1, and on 2 and above says it started in the file `started`, then
/// waits until the file `go` exists (for a minute at most).
#[task(name = "cli.gated", cache = false)]
fn gated(x: &u32, go: std::path::PathBuf, started: std::path::PathBuf) -> Result<u32, String> {
    match *x {
        0 => return Ok(0),
        1 => return Err("1 is refused".to_owned()),
        _ => {}
    }
    std::fs::write(&started, b"").unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !go.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(*x)
}

/// `status` and `status --watch` of a run in progress show a mapped node with the counts of
/// its branches as they settle, and each failed branch on a line of its own; the journal
/// of the finished run holds every branch as `run.json` does.
#[test]
fn status_shows_the_branches_of_a_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (go, started) = (dir.path().join("go"), dir.path().join("started"));
    let p = pipeline! {
        name = "cli-branches";
        let xs = numbers(4);
        let gated = for x in xs { gated(x, go.clone(), started.clone()) };
    };
    std::thread::scope(|scope| {
        // One worker runs the branches in order: 0 and 1 settle, 2 waits, 3 waits behind it.
        let run = scope.spawn(|| cli(&p, &data, &["--quiet", "--jobs", "1"]));
        while !started.exists() {
            assert!(
                !run.is_finished(),
                "the run ended before its branch started"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The journal is written a moment after a branch settles.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let shown = loop {
            let (_, out) = cli(&p, &data, &["status"]);
            if out.contains("0 cached, 1 failed") || std::time::Instant::now() > until {
                break out;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(
            shown.contains(&format!("running in process {}", std::process::id())),
            "{shown}"
        );
        assert!(
            shown.contains(
                "\n  xs        ran\n  \
                 gated     pending          4 branches: 1 ran, 0 cached, 1 failed, 2 pending\n  \
                 gated[1]  failed           1 is refused\n\
                 2 nodes: 1 ran, 1 pending\n"
            ),
            "{shown}"
        );

        // `status --watch` shows the same, and lets the run finish once it has.
        let mut out = Releasing {
            printed: Vec::new(),
            when: "\n  gated[1]  failed           1 is refused\n",
            go: go.clone(),
        };
        let argv = [
            "pipeline",
            "--data",
            data.to_str().unwrap(),
            "status",
            "--watch",
            "--interval",
            "0.01",
        ];
        assert_eq!(cli::run_with(&p, argv, &mut out), ExitCode::from(1));
        assert_eq!(run.join().unwrap().0, ExitCode::from(1));
        let printed = String::from_utf8(out.printed).unwrap();
        assert!(
            printed.contains("4 branches: 1 ran, 0 cached, 1 failed, 2 pending\n"),
            "{printed}"
        );
        // Then the finished run, every branch settled: counted, the failed one named.
        let (_, finished) = printed.split_once("\nfailed\n").expect(&printed);
        assert!(
            finished
                .contains("  gated     failed           4 branches: 3 ran, 0 cached, 1 failed\n"),
            "{printed}"
        );
        assert!(
            finished.contains("\n  gated[1]  failed           1 is refused\n"),
            "{printed}"
        );
        assert!(!finished.contains("gated[0]"), "{printed}");
        assert!(finished.contains("6 nodes: 4 ran, 2 failed"), "{printed}");
    });

    // The journal of the finished run, read alone, says what `run.json` says.
    let runs: Vec<_> = std::fs::read_dir(data.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let journal_only = dir.path().join("journal-only");
    std::fs::create_dir(&journal_only).unwrap();
    std::fs::copy(
        runs[0].join("journal.jsonl"),
        journal_only.join("journal.jsonl"),
    )
    .unwrap();
    let finished = pipewright::record::RunRecord::read(&runs[0]).unwrap();
    let journaled = pipewright::record::RunRecord::read(&journal_only).unwrap();
    assert_eq!(journaled.status, "running");
    let (done, written) = (&finished.nodes[1], &journaled.nodes[1]);
    assert_eq!(written.over.as_deref(), Some("xs"));
    assert_eq!(written.status, done.status);
    let statuses = |node: &pipewright::record::NodeRecord| {
        node.branches
            .iter()
            .map(|b| (b.name.clone(), b.status.as_str(), b.error.clone(), b.worker))
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses(written), statuses(done));
    assert_eq!(written.branches[1].error, ["1 is refused"]);
}

#[task(name = "cli.square")]
fn square(x: &u32) -> u32 {
    x * x
}

#[task(name = "cli.add_up")]
fn add_up(parts: &[&u32]) -> u32 {
    parts.iter().copied().sum()
}

/// The status of `node` on its line of what `run --verbose` printed, `out`.
fn status_in(out: &str, node: &str) -> Option<String> {
    let line = out
        .lines()
        .map(str::trim_start)
        .find(|l| l.split_whitespace().next() == Some(node))?;
    let rest = line[node.len()..].trim_start();
    Some(rest.get(..15).unwrap_or(rest).trim().to_owned())
}

/// A branch of a mapped node, `squares[1]`, is a node of the command line: `run --target`
/// runs the list and that branch, `--force` runs it again, `explain` explains it from the
/// last run; a position beyond the list fails the mapped node, saying how long it is, and
/// a branch of no mapped node is an unknown node.
#[test]
fn a_branch_is_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let p = pipeline! {
        name = "cli-branch-target";
        let xs = numbers(3);
        let squares = for x in xs { square(x) };
        let total = add_up(squares);
    };
    let status = status_in;

    let (code, out) = cli(&p, data, &["run", "--target", "squares[1]", "--verbose"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    for (node, expected) in [
        ("xs", "ran"),
        ("squares[0]", "not needed"),
        ("squares[1]", "ran"),
        ("squares[2]", "not needed"),
        ("total", "not needed"),
    ] {
        assert_eq!(
            status(&out, node).as_deref(),
            Some(expected),
            "{node}: {out}"
        );
    }

    let (code, out) = cli(&p, data, &["run", "--verbose"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert_eq!(
        status(&out, "squares[1]").as_deref(),
        Some("cached"),
        "{out}"
    );
    assert_eq!(status(&out, "squares[2]").as_deref(), Some("ran"), "{out}");

    let (code, out) = cli(&p, data, &["run", "--force", "squares[2]", "--verbose"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    for (node, expected) in [
        ("squares[0]", "cached"),
        ("squares[1]", "cached"),
        ("squares[2]", "ran"),
        ("total", "cached"),
    ] {
        assert_eq!(
            status(&out, node).as_deref(),
            Some(expected),
            "{node}: {out}"
        );
    }

    // `plan` and `explain` take the same names.
    let (code, out) = cli(&p, data, &["plan", "--target", "squares[1]"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let (code, out) = cli(
        &p,
        data,
        &["explain", "squares[1]", "--force", "squares[0]"],
    );
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.starts_with("`squares[1]` is a branch"), "{out}");

    let (code, out) = cli(&p, data, &["run", "--target", "squares[3]"]);
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(
        out.contains("there is no branch `squares[3]`: the list of `xs` has 3 elements"),
        "{out}"
    );

    let runs = || std::fs::read_dir(data.join("runs")).unwrap().count();
    let before = runs();
    for name in ["squarez[1]", "total[0]", "squares[x]"] {
        for args in [
            &["run", "--target", name][..],
            &["run", "--force", name],
            &["explain", name],
        ] {
            assert_eq!(cli(&p, data, args).0, ExitCode::from(2), "{args:?}");
        }
    }
    assert_eq!(runs(), before);
}
