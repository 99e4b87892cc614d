//! The usual commands for a pipeline binary: `run` (the default), `plan`, `explain`,
//! `graph`, `status`, `show`, `clean` and `gc`, each with `--data DIR` and `--log DIR`.
//!
//! ```no_run
//! use pipewright::prelude::*;
//!
//! #[task]
//! fn hello(name: String) -> String {
//!     format!("hello, {name}")
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let p = pipeline! {
//!         name = "greeting";
//!         let greeting = hello("world".to_string());
//!     };
//!     pipewright::cli::main(&p)
//! }
//! ```
//!
//! `my-pipeline plan`, `my-pipeline run --jobs 4 --force greeting`, `my-pipeline graph
//! --format dot | dot -Tsvg > graph.svg`, `my-pipeline status`, `my-pipeline status --watch`
//! (while a run goes on), `my-pipeline show greeting`, `my-pipeline gc --keep-runs 3`.
//!
//! A pipeline built from parameters of its own takes them on the command line through
//! [`main_with`].

#![expect(
    clippy::print_stderr,
    reason = "the command line reports its errors on stderr"
)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, Once};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::Pipeline;
use crate::render::{self, GraphView};
use crate::report::{NodeStatus, RunReport};
use crate::runner::{Cancel, Runner};
mod args;
mod params;
mod status;

use args::{Cli, Command, Format, RunArgs, Selection};
use params::{NoParams, changed_params, name_params, param_flags, parse};
use status::{status, watch_run};

/// What the command line reports instead of a result: a mistake in its use, output it
/// cannot write, or an error of the run or of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line was used wrongly; says how.
    #[error("{0}")]
    Usage(String),

    /// A node named on the command line is not in the pipeline.
    #[error("pipeline `{pipeline}` has no node named `{node}`; {}", hint(closest))]
    UnknownNode {
        /// The pipeline's name.
        pipeline: String,
        /// The name given.
        node: String,
        /// The pipeline's names closest to it, closest first; none if no name is close.
        closest: Vec<String>,
    },

    /// A directory named on the command line is a file, or something else.
    #[error("{option} `{}` is not a directory", path.display())]
    NotADirectory {
        /// The option or argument that named it.
        option: &'static str,
        /// What it named.
        path: PathBuf,
    },

    /// `show` found no stored output of the node in the run; says why.
    #[error("node `{node}` has no stored output in run `{}`: {reason}", run.display())]
    NoOutput {
        /// The node.
        node: String,
        /// The run directory.
        run: PathBuf,
        /// Why.
        reason: String,
    },

    /// The pipeline's parameters cannot be recorded as JSON.
    #[error("the pipeline's parameters cannot be recorded as JSON")]
    Params(#[source] serde_json::Error),

    /// The command's output could not be written.
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),

    /// Building, planning or running the pipeline, or reading a run, failed.
    #[error(transparent)]
    Run(#[from] Error),
}
/// Runs the command given on this process's command line against `pipeline`, printing to
/// stdout, and returns the exit code: success, 1 when a node failed, 2 for a usage error
/// or an error of the run itself.
pub fn main(pipeline: &Pipeline) -> ExitCode {
    main_then(pipeline, |_| {})
}

/// As [`main`], and after a `run` in which every node succeeded, calls `after_run` with
/// the run's report (to print results, say).
pub fn main_then(pipeline: &Pipeline, after_run: impl FnOnce(&RunReport)) -> ExitCode {
    main_with_then(|_: &NoParams| pipeline, after_run)
}

/// As [`main`], for a pipeline built from parameters of its own, `P`: a struct that
/// derives [`clap::Args`] (its fields are options of `run`, `plan`, `explain` and `graph`,
/// listed by `--help` and checked by clap) and [`serde::Serialize`] (the values given are
/// recorded in each run's `run.json`, and `plan` and `explain` say which changed since
/// the last run). `build` makes the pipeline from the parsed parameters; the other
/// commands do not build it. Their names must not be those of the command line's own
/// options.
///
/// ```no_run
/// use pipewright::prelude::*;
///
/// #[derive(clap::Args, serde::Serialize)]
/// struct Params {
///     /// How many rows to read.
///     #[arg(long, default_value_t = 100)]
///     rows: u32,
/// }
///
/// #[task]
/// fn read(rows: u32) -> Vec<u32> {
///     (0..rows).collect()
/// }
///
/// fn main() -> std::process::ExitCode {
///     pipewright::cli::main_with(|params: &Params| {
///         pipeline! {
///             name = "rows";
///             let rows = read(params.rows);
///         }
///     })
/// }
/// ```
///
/// `my-pipeline --rows 5`, `my-pipeline plan --rows 5`, `my-pipeline run --help`.
pub fn main_with<P, B>(build: impl FnOnce(&P) -> B) -> ExitCode
where
    P: clap::Args + Serialize,
    B: AsRef<Pipeline>,
{
    main_with_then(build, |_| {})
}

/// As [`main_with`], and after a `run` in which every node succeeded, calls `after_run`
/// with the run's report.
pub fn main_with_then<P, B>(
    build: impl FnOnce(&P) -> B,
    after_run: impl FnOnce(&RunReport),
) -> ExitCode
where
    P: clap::Args + Serialize,
    B: AsRef<Pipeline>,
{
    let terminal = stdout_is_a_terminal();
    drive(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        terminal,
        build,
        after_run,
    )
}

/// Runs the command `args` (the program's name first) against `pipeline`, printing to
/// `out`; see [`main`].
pub fn run_with<I, T>(pipeline: &Pipeline, args: I, out: &mut dyn Write) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    drive(args, out, false, |_: &NoParams| pipeline, |_| {})
}

/// Runs the command `args` (the program's name first) against the pipeline `build` makes
/// of the parameters `P` parsed from them, printing to `out`; see [`main_with`]. `build`
/// may return the pipeline, a reference to it, or what `pipeline!` gives.
pub fn run_with_params<P, B, I, T>(
    args: I,
    out: &mut dyn Write,
    build: impl FnOnce(&P) -> B,
) -> ExitCode
where
    P: clap::Args + Serialize,
    B: AsRef<Pipeline>,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    drive(args, out, false, build, |_| {})
}

fn drive<P, B, I, T>(
    args: I,
    out: &mut dyn Write,
    terminal: bool,
    build: impl FnOnce(&P) -> B,
    after_run: impl FnOnce(&RunReport),
) -> ExitCode
where
    P: clap::Args + Serialize,
    B: AsRef<Pipeline>,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let (cli, params) = match parse::<P, _, _>(args) {
        Ok(parsed) => parsed,
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        // Help and version.
        Err(err) => {
            let _ = write!(out, "{}", err.render());
            return ExitCode::SUCCESS;
        }
    };
    let given = match params.as_ref().map(serde_json::to_value).transpose() {
        Ok(json) => json.map(|json| Given {
            json,
            flags: param_flags::<P>(),
        }),
        Err(err) => {
            eprintln!("error: {}", CliError::Params(err));
            return ExitCode::from(2);
        }
    };
    let build = || params.as_ref().map(build);
    let context = Context {
        terminal,
        given: given.filter(|g| g.json.as_object().is_none_or(|o| !o.is_empty())),
    };
    match execute(build, cli, &context, out, after_run) {
        Ok(code) => code,
        // The reader went away (`| head`): nothing is left to say.
        Err(CliError::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            let mut message = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// What a command knows beside its arguments.
#[derive(Default)]
struct Context {
    /// Whether stdout is a terminal (`status --watch` redraws in place on one).
    terminal: bool,
    /// The pipeline's parameters as given, if it declares any and the command builds it.
    given: Option<Given>,
}

/// A pipeline's parameters as given on the command line.
struct Given {
    /// Their values, as JSON.
    json: serde_json::Value,
    /// The id of each and how the command line names it.
    flags: Vec<(String, String)>,
}

/// What the error of an unknown node suggests: the `closest` names, or `plan`.
fn hint(closest: &[String]) -> String {
    let quoted: Vec<String> = closest.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        None => "`plan` lists its nodes".to_owned(),
        Some((last, [])) => format!("did you mean {last}?"),
        Some((last, rest)) => format!("did you mean {} or {last}?", rest.join(", ")),
    }
}

/// How many names an unknown node's error suggests at most.
const SUGGESTIONS: usize = 3;

/// How alike (Jaro similarity, from 0 to 1) a name must be to the unknown one to be
/// suggested; what clap asks of a flag.
const ALIKE: f64 = 0.7;

/// Checks that `pipeline` has a node named `name`, or a mapped node that `name` names a
/// branch of (`counts[3]`); if not, the error names the closest names it has (a branch at
/// the same position of each mapped node, for a name that looks like a branch's).
fn check_node(pipeline: &Pipeline, name: &str) -> Result<(), CliError> {
    if pipeline.node(name).is_some() || pipeline.branch(name).is_some() {
        return Ok(());
    }
    let branches: Vec<String> = match crate::graph::branch_of(name) {
        Some((_, i)) => pipeline
            .all_nodes()
            .filter(|node| node.map().is_some())
            .map(|node| format!("{}[{i}]", node.name()))
            .collect(),
        None => Vec::new(),
    };
    Err(unknown_node(
        pipeline.name(),
        name,
        pipeline
            .all_nodes()
            .map(|node| node.name())
            .chain(branches.iter().map(String::as_str)),
    ))
}

/// The error of `name`, which is not a node of `pipeline`, whose nodes are `names`.
fn unknown_node<'a>(pipeline: &str, name: &str, names: impl Iterator<Item = &'a str>) -> CliError {
    let mut alike: Vec<(f64, &str)> = names
        .map(|candidate| (strsim::jaro(name, candidate), candidate))
        .filter(|(score, _)| *score >= ALIKE)
        .collect();
    alike.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    CliError::UnknownNode {
        pipeline: pipeline.to_owned(),
        node: name.to_owned(),
        closest: alike
            .into_iter()
            .take(SUGGESTIONS)
            .map(|(_, name)| name.to_owned())
            .collect(),
    }
}

/// The stored output of the node named `node` in the run recorded in `dir`, as pretty
/// JSON.
fn show(dir: &Path, node: &str) -> Result<String, CliError> {
    let report = RunReport::open(dir)?;
    let no_output = |reason: String| CliError::NoOutput {
        node: node.to_owned(),
        run: dir.to_owned(),
        reason,
    };
    let Some(found) = report.node(node) else {
        return Err(unknown_node(
            report.pipeline(),
            node,
            report.nodes().map(|n| n.name()),
        ));
    };
    match found.status() {
        NodeStatus::Ran | NodeStatus::Cached => {}
        NodeStatus::Failed => {
            let error = found.error().map(ToString::to_string).unwrap_or_default();
            let first = error.lines().next().unwrap_or("no error was recorded");
            return Err(no_output(format!("it failed: {first}")));
        }
        NodeStatus::UpstreamFailed => {
            return Err(no_output(match found.failed_upstream() {
                Some(up) => format!("it did not run because `{up}` failed"),
                None => "it did not run because a node above failed".to_owned(),
            }));
        }
        NodeStatus::NotNeeded => {
            return Err(no_output("the run did not need it".to_owned()));
        }
        _ => {
            return Err(no_output(
                "the run was cancelled before it finished".to_owned(),
            ));
        }
    }
    let json = match report.get_json(node) {
        Ok(json) => json,
        Err(Error::NotKept { .. }) => {
            return Err(no_output(
                "its output is not in the store (its task is not cached, or `clean` or `gc` \
                 removed its entry)"
                    .to_owned(),
            ));
        }
        Err(Error::UnknownTask(_)) => {
            return Err(no_output(
                "its task cannot be rebuilt: it is not in this binary, or the run's record \
                 does not hold its parameters"
                    .to_owned(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let json = json.map_err(|e| no_output(format!("its output cannot be shown as JSON: {e}")))?;
    serde_json::to_string_pretty(&json)
        .map_err(|e| no_output(format!("its output cannot be shown as JSON: {e}")))
}

/// A runner of `pipeline` with the options of `cli` and the nodes of `selection`, which
/// must be nodes of `pipeline`.
fn runner(pipeline: &Pipeline, cli: &Cli, selection: &Selection) -> Result<Runner, CliError> {
    for node in selection.force.iter().chain(&selection.target) {
        check_node(pipeline, node)?;
    }
    let mut runner = store_runner(cli);
    for node in &selection.force {
        runner = runner.force(node);
    }
    if selection.force_all {
        runner = runner.force_all();
    }
    for node in &selection.target {
        runner = runner.target(node);
    }
    Ok(runner)
}

/// A runner of the data and log directories of `cli`.
fn store_runner(cli: &Cli) -> Runner {
    let runner = Runner::new(&cli.data);
    match &cli.log {
        Some(log) => runner.log_dir(log),
        None => runner,
    }
}

fn io(err: std::io::Error) -> CliError {
    CliError::Output(err)
}

/// Runs the command of `cli`, printing to `out`; `build` makes the pipeline, for the
/// commands that need it.
fn execute<B: AsRef<Pipeline>>(
    build: impl FnOnce() -> Option<B>,
    mut cli: Cli,
    context: &Context,
    out: &mut dyn Write,
    after_run: impl FnOnce(&RunReport),
) -> Result<ExitCode, CliError> {
    let mut dirs = vec![("--data", Some(&cli.data)), ("--log", cli.log.as_ref())];
    if let Some(
        Command::Status {
            run_dir: Some(dir), ..
        }
        | Command::Show {
            run_dir: Some(dir), ..
        },
    ) = &cli.command
    {
        dirs.push(("the run directory", Some(dir)));
    }
    for (option, dir) in dirs {
        if let Some(path) = dir.filter(|d| d.exists() && !d.is_dir()) {
            return Err(CliError::NotADirectory {
                option,
                path: path.clone(),
            });
        }
    }
    let command = match cli.command.take() {
        None => Command::Run(std::mem::take(&mut cli.run)),
        Some(_) if cli.run != RunArgs::default() => {
            return Err(CliError::Usage(
                "the options of `run` go after `run`, or alone without a command".to_owned(),
            ));
        }
        Some(command) => command,
    };
    // Only the commands that read the pipeline build it.
    let need = |built: Option<B>| {
        built.ok_or_else(|| CliError::Usage("the pipeline's parameters were not given".to_owned()))
    };
    match command {
        Command::Run(args) => {
            let built = need(build())?;
            let pipeline = built.as_ref();
            let mut runner = runner(pipeline, &cli, &args.selection)?
                .progress(!args.quiet)
                .fail_fast(args.fail_fast)
                .executor(args.executor()?);
            if let Some(jobs) = args.jobs {
                runner = runner.jobs(jobs);
            }
            if let Some(given) = &context.given {
                runner = runner.record_params(given.json.clone());
            }
            cancel_on_signal(runner.cancel_handle());
            let report = runner.run(pipeline)?;
            if report.cancelled() {
                writeln!(out, "{report}").map_err(io)?;
                writeln!(
                    out,
                    "cancelled; what finished is stored, and the next run resumes"
                )
                .map_err(io)?;
                return Ok(ExitCode::from(CANCELLED));
            }
            if !args.quiet {
                print_nodes(out, &report, args.verbose).map_err(io)?;
                writeln!(out, "{}", report.summary()).map_err(io)?;
                if let Some(dir) = report.run_dir() {
                    writeln!(out, "recorded in {}", dir.display()).map_err(io)?;
                }
            }
            if report.succeeded() {
                after_run(&report);
            }
            Ok(exit(&report))
        }
        Command::Plan(selection) => {
            let built = need(build())?;
            let pipeline = built.as_ref();
            let plan = runner(pipeline, &cli, &selection)?.plan(pipeline)?;
            write!(out, "{plan}").map_err(io)?;
            let changed = changed_params(&cli, pipeline, context.given.as_ref());
            if !changed.is_empty() {
                writeln!(
                    out,
                    "parameters changed since the last run: {}",
                    changed
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .map_err(io)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { node, selection } => {
            let built = need(build())?;
            let pipeline = built.as_ref();
            check_node(pipeline, &node)?;
            let mut explanation = runner(pipeline, &cli, &selection)?.explain(pipeline, &node)?;
            let changed = changed_params(&cli, pipeline, context.given.as_ref());
            name_params(&mut explanation, &changed);
            writeln!(out, "{explanation}").map_err(io)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { format, width } => {
            let built = need(build())?;
            let pipeline = built.as_ref();
            let plan = runner(pipeline, &cli, &Selection::default())?.plan(pipeline)?;
            let view = GraphView::of_plan(pipeline, &plan);
            let picture = match format {
                Format::Text => match width.or_else(terminal_columns) {
                    Some(columns) => render::text_in(&view, columns),
                    None => render::text(&view),
                },
                Format::Dot => render::dot(&view),
                Format::Mermaid => render::mermaid(&view),
                Format::Svg => render::svg(&view),
            };
            write!(out, "{picture}").map_err(io)?;
            if !picture.ends_with('\n') {
                writeln!(out).map_err(io)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            run_dir,
            open,
            watch,
            interval,
        } => {
            let log_dir = cli.log.clone().unwrap_or_else(|| cli.data.join("runs"));
            let dir = match run_dir {
                Some(dir) => dir,
                None => last_run(&log_dir)?,
            };
            if watch {
                watch_run(&dir, interval, context.terminal, out)?;
            }
            status(&dir, open, out)
        }
        Command::Show { node, run_dir } => {
            let dir = match run_dir {
                Some(dir) => dir,
                None => last_run(&cli.log.clone().unwrap_or_else(|| cli.data.join("runs")))?,
            };
            let json = show(&dir, &node)?;
            writeln!(out, "{json}").map_err(io)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean => {
            let freed = store_runner(&cli).clean()?;
            writeln!(out, "{freed}").map_err(io)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc { keep_runs } => {
            let freed = store_runner(&cli).gc(keep_runs)?;
            writeln!(out, "{freed}").map_err(io)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The exit code of a cancelled run, as shells give a process stopped by SIGINT.
const CANCELLED: u8 = 130;

/// How long a second Ctrl-C waits for a run's journal to be written before the process
/// exits.
const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Makes Ctrl-C (SIGINT) and SIGTERM cancel the run of `cancel`: no node starts any more,
/// running tasks are told, and the run is recorded. A second signal records what finished
/// and exits at once.
fn cancel_on_signal(cancel: Cancel) {
    static CURRENT: Mutex<Option<Cancel>> = Mutex::new(None);
    static INSTALL: Once = Once::new();
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel);
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
            match current.as_ref() {
                Some(cancel) if !cancel.is_cancelled() => {
                    eprintln!("cancelling: no node starts any more (again to exit now)");
                    cancel.cancel();
                }
                Some(cancel) => {
                    for dir in cancel.record_now(RECORD_PATIENCE) {
                        eprintln!(
                            "warning: the run in {} is not fully recorded",
                            dir.display()
                        );
                    }
                    eprintln!("exiting: what finished is recorded and stored");
                    std::process::exit(i32::from(CANCELLED))
                }
                None => std::process::exit(i32::from(CANCELLED)),
            }
        });
        if let Err(err) = installed {
            eprintln!("warning: Ctrl-C will not cancel the run cleanly: {err}");
        }
    });
}

/// The width of the terminal, in columns: `COLUMNS` if it is set, else the width of the
/// terminal that stdout is, if it is one.
fn terminal_columns() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
    {
        return Some(columns);
    }
    #[cfg(unix)]
    {
        let stdout = std::io::stdout();
        if rustix::termios::isatty(&stdout) {
            let size = rustix::termios::tcgetwinsize(&stdout).ok()?;
            return (size.ws_col > 0).then_some(usize::from(size.ws_col));
        }
    }
    None
}

/// Whether stdout is a terminal.
fn stdout_is_a_terminal() -> bool {
    #[cfg(unix)]
    {
        rustix::termios::isatty(std::io::stdout())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn exit(report: &RunReport) -> ExitCode {
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One line per node: all of them with `all`, else those that failed.
fn print_nodes(out: &mut dyn Write, report: &RunReport, all: bool) -> std::io::Result<()> {
    let width = report.nodes().map(|n| n.name().len()).max().unwrap_or(0);
    for node in report.nodes() {
        let failed = matches!(
            node.status(),
            NodeStatus::Failed | NodeStatus::UpstreamFailed
        );
        if !all && !failed {
            continue;
        }
        let detail = match (node.error(), node.failed_upstream()) {
            (Some(error), _) => error.to_string(),
            (None, Some(upstream)) => format!("after `{upstream}`"),
            (None, None) if node.status() == NodeStatus::Ran => format!("{:.2?}", node.duration()),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {:<width$}  {:<15}  {detail}",
            node.name(),
            node.status().to_string()
        )?;
    }
    Ok(())
}

/// Writes the HTML report of the run in `run_dir` to a temporary file that is kept, and
/// returns its path.
fn report_elsewhere(run_dir: &Path) -> Result<PathBuf, CliError> {
    let html = render::html(&GraphView::of_record(run_dir)?);
    let mut file = tempfile::Builder::new()
        .prefix("pipewright-report-")
        .suffix(".html")
        .tempfile()
        .map_err(io)?;
    file.write_all(html.as_bytes()).map_err(io)?;
    let (_, path) = file.keep().map_err(|e| io(e.error))?;
    Ok(path)
}

/// The newest run directory under `log_dir`.
fn last_run(log_dir: &Path) -> Result<PathBuf> {
    crate::gc::runs(log_dir)
        .into_iter()
        .next()
        .map(|(dir, _)| dir)
        .ok_or_else(|| Error::Record {
            path: log_dir.to_owned(),
            reason: "no run is recorded there".to_owned(),
        })
}

fn open_in_browser(path: &Path) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener)
        .arg(path)
        .spawn()
        .is_err()
    {
        eprintln!("cannot start `{opener}`; the report is {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// What `execute` returns for the command line `args` on an empty pipeline `p`.
    fn execute_args(args: &[&str]) -> Result<ExitCode, CliError> {
        let data = std::env::temp_dir().join(format!("pipewright-cli-{}", std::process::id()));
        let mut argv = vec!["pipeline", "--data", data.to_str().unwrap()];
        argv.extend(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        let p = Pipeline::builder("p").build();
        execute(
            || Some(&p),
            cli,
            &Context::default(),
            &mut Vec::new(),
            |_| {},
        )
    }

    #[test]
    fn usage_mistakes_are_cli_errors() {
        let err = execute_args(&["--partition", "gpu"]).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "--partition, --account and --sbatch-arg go with --executor slurm"
        );
        let err = execute_args(&["--jobs", "2", "plan"]).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the options of `run` go after `run`, or alone without a command"
        );
    }

    #[test]
    fn errors_of_the_run_are_wrapped_unchanged() {
        let log = tempfile::tempdir().unwrap();
        let log = log.path().to_str().unwrap();
        let err = execute_args(&["--log", log, "status"]).unwrap_err();
        assert!(
            matches!(&err, CliError::Run(Error::Record { reason, .. }) if reason == "no run is recorded there"),
            "{err:?}"
        );
    }

    /// A pipeline of values named `names`.
    fn pipeline_of(names: &[&str]) -> Pipeline {
        let mut builder = Pipeline::builder("p");
        for name in names {
            builder.value(*name, 1u32).unwrap();
        }
        builder.build()
    }

    /// The error of the command line `args` on `pipeline`.
    fn error_of(pipeline: &Pipeline, args: &[&str]) -> String {
        let data = tempfile::tempdir().unwrap();
        let mut argv = vec!["pipeline", "--data", data.path().to_str().unwrap()];
        argv.extend(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        execute(
            || Some(pipeline),
            cli,
            &Context::default(),
            &mut Vec::new(),
            |_| {},
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn an_unknown_node_is_told_the_closest_names() {
        let p = pipeline_of(&["parse", "parser", "boot", "report"]);
        for args in [
            &["explain", "pasre"][..],
            &["run", "--force", "pasre"],
            &["run", "--target", "pasre"],
            &["plan", "--target", "pasre"],
            &["explain", "boot", "--force", "pasre"],
        ] {
            assert_eq!(
                error_of(&p, args),
                "pipeline `p` has no node named `pasre`; did you mean `parse` or `parser`?",
                "{args:?}"
            );
        }
        assert_eq!(
            error_of(&p, &["explain", "bot"]),
            "pipeline `p` has no node named `bot`; did you mean `boot`?"
        );
        assert_eq!(
            error_of(&p, &["run", "--force", "xyz"]),
            "pipeline `p` has no node named `xyz`; `plan` lists its nodes"
        );
    }

    #[test]
    fn a_directory_option_that_names_a_file_is_refused_alike() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let file = file.to_str().unwrap();
        let p = pipeline_of(&["a"]);
        for args in [&["run"][..], &["plan"], &["graph"], &["status"], &["gc"]] {
            let mut argv = vec!["pipeline", "--data", file];
            argv.extend(args);
            let cli = Cli::try_parse_from(argv).unwrap();
            let err = execute(
                || Some(&p),
                cli,
                &Context::default(),
                &mut Vec::new(),
                |_| {},
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--data `{file}` is not a directory")
            );
        }
        let data = dir.path().to_str().unwrap();
        let argv = ["pipeline", "--data", data, "--log", file, "plan"];
        let err = execute(
            || Some(&p),
            Cli::try_parse_from(argv).unwrap(),
            &Context::default(),
            &mut Vec::new(),
            |_| {},
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            format!("--log `{file}` is not a directory")
        );
        let argv = ["pipeline", "--data", data, "status", file];
        let err = execute(
            || Some(&p),
            Cli::try_parse_from(argv).unwrap(),
            &Context::default(),
            &mut Vec::new(),
            |_| {},
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            format!("the run directory `{file}` is not a directory")
        );
    }

    #[test]
    fn a_mistyped_flag_is_told_the_closest_one() {
        let err = Cli::try_parse_from(["pipeline", "run", "--forse", "a"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("a similar argument exists: '--force'"),
            "{text}"
        );
        let err = Cli::try_parse_from(["pipeline", "stauts"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("a similar subcommand exists: 'status'"),
            "{text}"
        );
    }

    #[derive(clap::Args, Serialize)]
    struct Rows {
        #[arg(long)]
        rows: u32,
    }

    /// The error clap gives for the command line `args` of a binary with parameters `Rows`.
    fn parse_error(args: &[&str]) -> String {
        let argv = std::iter::once("pipeline").chain(args.iter().copied());
        match parse::<Rows, _, _>(argv) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn parameters_are_checked_by_clap_where_the_pipeline_is_built() {
        let err = parse_error(&["run", "--rows", "many"]);
        assert!(
            err.starts_with("error: invalid value 'many' for '--rows <ROWS>'"),
            "{err}"
        );
        for args in [&[][..], &["plan"], &["explain", "a"]] {
            let err = parse_error(args);
            assert!(
                err.contains(
                    "the following required arguments were not provided:\n  --rows <ROWS>"
                ),
                "{args:?}: {err}"
            );
        }
        let err = parse_error(&["--rows", "3", "plan", "--rows", "4"]);
        assert!(
            err.starts_with(
                "error: the pipeline's parameters go after the command: `plan --rows ...`"
            ),
            "{err}"
        );
        let err = parse_error(&["--rows", "3", "gc"]);
        assert!(
            err.starts_with("error: `gc` takes no pipeline parameter such as `--rows`"),
            "{err}"
        );
        // The commands that do not build the pipeline do not need them.
        for args in [&["status"][..], &["gc"], &["clean"], &["show", "a"]] {
            let argv = std::iter::once("pipeline").chain(args.iter().copied());
            let (_, params) = parse::<Rows, _, _>(argv).unwrap();
            assert!(params.is_none(), "{args:?}");
        }
        let (_, params) = parse::<Rows, _, _>(["pipeline", "--rows", "3"]).unwrap();
        assert_eq!(params.map(|p| p.rows), Some(3));
    }
}
