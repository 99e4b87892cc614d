//! The command line's arguments, as clap parses them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Result;
use crate::exec::Executor;
#[cfg(feature = "slurm")]
use crate::exec::Slurm;

use super::CliError;

/// Runs and inspects this pipeline.
#[derive(Debug, Parser)]
#[command(about = "Runs and inspects this pipeline.")]
pub(super) struct Cli {
    /// The data directory, where outputs are stored.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "pipewright-data"
    )]
    pub(super) data: PathBuf,

    /// Where runs are recorded [default: DATA/runs].
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) log: Option<PathBuf>,

    /// With no command: what `run` takes.
    #[command(flatten)]
    pub(super) run: RunArgs,

    #[command(subcommand)]
    pub(super) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run the pipeline: what is in the store is reused, the rest runs (the default).
    Run(RunArgs),
    /// Say what a run would do to each node, and why, without running anything.
    Plan(Selection),
    /// Say why a node will run: what changed since it last ran.
    Explain {
        /// The node.
        node: String,
        #[command(flatten)]
        selection: Selection,
    },
    /// Draw the graph, marked with what a run would do.
    Graph {
        /// The kind of picture.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The widest text picture drawn, in columns; a wider graph is listed by layer
        /// [default: $COLUMNS, else the terminal's width, else 140].
        #[arg(long, value_name = "COLUMNS")]
        width: Option<usize>,
    },
    /// Show a past run (the last one, or the one in RUN_DIR) and write its HTML report.
    Status {
        /// A run directory.
        run_dir: Option<PathBuf>,
        /// Open the run's HTML report.
        #[arg(long)]
        open: bool,
        /// Show the run while it goes on, until it ends.
        #[arg(long)]
        watch: bool,
        /// How often `--watch` reads the run, in seconds.
        #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = seconds, requires = "watch")]
        interval: Duration,
    },
    /// Print a node's stored output as JSON, from the last run or the one in `--run`,
    /// without running anything.
    Show {
        /// The node.
        node: String,
        /// A run directory.
        #[arg(long = "run", value_name = "RUN_DIR")]
        run_dir: Option<PathBuf>,
    },
    /// Remove every stored output (run records stay).
    Clean,
    /// Remove old run records, and the stored outputs no kept record refers to.
    Gc {
        /// How many of the newest run records to keep.
        #[arg(long, value_name = "N", default_value_t = 5)]
        keep_runs: usize,
    },
}

/// Which nodes a run forces and which it is for.
#[derive(Debug, Default, PartialEq, Eq, Args)]
pub(super) struct Selection {
    /// Run NODE again whatever the store holds (repeatable).
    #[arg(long, value_name = "NODE")]
    pub(super) force: Vec<String>,
    /// Run every node again.
    #[arg(long)]
    pub(super) force_all: bool,
    /// Run only NODE and what it depends on (repeatable).
    #[arg(long, value_name = "NODE")]
    pub(super) target: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq, Args)]
pub(super) struct RunArgs {
    /// How many tasks run at once [default: the number of cores].
    #[arg(long, short, value_name = "N")]
    pub(super) jobs: Option<usize>,
    /// Where tasks run: on threads of this process, each in a child process of its own,
    /// or as jobs of a Slurm cluster (both need `#[pipewright::main]`).
    #[arg(long, value_enum, default_value_t)]
    pub(super) executor: ExecutorArg,
    #[cfg(feature = "slurm")]
    /// The Slurm partition of the jobs.
    #[arg(long, value_name = "NAME")]
    pub(super) partition: Option<String>,
    #[cfg(feature = "slurm")]
    /// The Slurm account the jobs are charged to.
    #[arg(long, value_name = "NAME")]
    pub(super) account: Option<String>,
    #[cfg(feature = "slurm")]
    /// A further `sbatch` argument for every job (repeatable), e.g. `--sbatch-arg=--qos=short`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub(super) sbatch_arg: Vec<String>,
    #[command(flatten)]
    pub(super) selection: Selection,
    /// Keep running what does not depend on a failed node (the default).
    #[arg(long, overrides_with = "fail_fast")]
    pub(super) keep_going: bool,
    /// Stop starting nodes at the first failure.
    #[arg(long, overrides_with = "keep_going")]
    pub(super) fail_fast: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub(super) quiet: bool,
    /// Print every node's outcome.
    #[arg(long, short)]
    pub(super) verbose: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum ExecutorArg {
    /// On threads of this process.
    #[default]
    InProcess,
    /// Each task in a child process: a crash fails its node only.
    Process,
    #[cfg(feature = "slurm")]
    /// Each task as a job of a Slurm cluster, submitted with `sbatch`.
    Slurm,
}

impl RunArgs {
    /// The executor the options ask for.
    #[cfg(feature = "slurm")]
    pub(super) fn executor(&self) -> Result<Executor, CliError> {
        let slurm_only =
            self.partition.is_some() || self.account.is_some() || !self.sbatch_arg.is_empty();
        Ok(match self.executor {
            ExecutorArg::Slurm => {
                let mut slurm = Slurm::new();
                slurm.partition = self.partition.clone();
                slurm.account = self.account.clone();
                slurm.sbatch_args = self.sbatch_arg.clone();
                Executor::Slurm(slurm)
            }
            _ if slurm_only => {
                return Err(CliError::Usage(
                    "--partition, --account and --sbatch-arg go with --executor slurm".to_owned(),
                ));
            }
            ExecutorArg::InProcess => Executor::InProcess,
            ExecutorArg::Process => Executor::Process,
        })
    }

    /// The executor the options ask for.
    #[cfg(not(feature = "slurm"))]
    pub(super) fn executor(&self) -> Result<Executor, CliError> {
        Ok(match self.executor {
            ExecutorArg::InProcess => Executor::InProcess,
            ExecutorArg::Process => Executor::Process,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Format {
    /// Boxes and edges for the terminal.
    Text,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// An SVG picture.
    Svg,
}

/// A positive number of seconds.
fn seconds(text: &str) -> std::result::Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| "expected a positive number of seconds, such as 1 or 0.5".to_owned())
}
