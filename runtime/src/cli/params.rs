//! A pipeline binary's own parameters on the command line: the commands that take them,
//! how they are parsed beside the usual arguments, and which changed since the last run.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};
use serde::Serialize;

use super::Given;
use super::args::Cli;
use crate::explain::Explanation;
use crate::graph::Pipeline;
use crate::plan::Decision;

/// The parameters of a pipeline binary that declares none.
#[derive(clap::Args, Serialize)]
pub(super) struct NoParams {}

/// The commands that build the pipeline, and so take its parameters.
pub(super) const BUILDING: [&str; 4] = ["run", "plan", "explain", "graph"];

/// The command line of a pipeline binary with parameters `P`: those of [`Cli`], and `P`'s
/// under the heading "Parameters" on the commands that build the pipeline (and on none,
/// which runs it).
pub(super) fn command<P: clap::Args>() -> clap::Command {
    let with_params = |cmd: clap::Command| {
        // The struct's doc comment would replace the command's own.
        let (about, long_about) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
        P::augment_args(cmd.next_help_heading("Parameters"))
            .next_help_heading(None)
            .about(reset_unless(about))
            .long_about(reset_unless(long_about))
    };
    let mut cmd = with_params(Cli::command()).subcommand_negates_reqs(true);
    for name in BUILDING {
        cmd = cmd.mut_subcommand(name, with_params);
    }
    cmd
}

/// `text` as a setting of a command, or the setting reset if there is none.
fn reset_unless(
    text: Option<clap::builder::StyledStr>,
) -> clap::builder::Resettable<clap::builder::StyledStr> {
    text.map_or(
        clap::builder::Resettable::Reset,
        clap::builder::Resettable::Value,
    )
}

/// The ids of `P`'s arguments, and how the command line names each (`--rows`).
pub(super) fn param_flags<P: clap::Args>() -> Vec<(String, String)> {
    P::augment_args(clap::Command::new("params"))
        .get_arguments()
        .map(|arg| {
            let shown = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => arg.get_id().to_string(),
            };
            (arg.get_id().to_string(), shown)
        })
        .collect()
}

/// The command line `args`, parsed: the options and command, and the parameters if the
/// command builds the pipeline.
pub(super) fn parse<P, I, T>(args: I) -> Result<(Cli, Option<P>), clap::Error>
where
    P: clap::Args,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command::<P>();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let params = match matches.subcommand() {
        None => Some(&matches),
        Some((name, sub)) => {
            let given = param_flags::<P>().into_iter().find(|(id, _)| {
                matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            });
            if let Some((_, flag)) = given {
                let mut sub_cmd = cmd.find_subcommand_mut(name).cloned().unwrap_or_default();
                return Err(sub_cmd.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    if BUILDING.contains(&name) {
                        format!(
                            "the pipeline's parameters go after the command: `{name} {flag} ...`"
                        )
                    } else {
                        format!("`{name}` takes no pipeline parameter such as `{flag}`")
                    },
                ));
            }
            BUILDING.contains(&name).then_some(sub)
        }
    };
    let params = params
        .map(|m| P::from_arg_matches(m).map_err(|e| e.format(&mut cmd)))
        .transpose()?;
    Ok((cli, params))
}

/// A parameter of the pipeline whose value differs from the last run's.
pub(super) struct ParamChange {
    /// How the command line names it (`--rows`).
    flag: String,
    /// Its value in the last run, as JSON text.
    before: String,
    /// Its value now, as JSON text.
    now: String,
}

impl std::fmt::Display for ParamChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {} → {}", self.flag, self.before, self.now)
    }
}

/// The parameters in `given` whose values differ from those of the last recorded run of
/// `pipeline` (none if that run recorded none).
pub(super) fn changed_params(
    cli: &Cli,
    pipeline: &Pipeline,
    given: Option<&Given>,
) -> Vec<ParamChange> {
    let Some(given) = given else {
        return Vec::new();
    };
    let log_dir = cli.log.clone().unwrap_or_else(|| cli.data.join("runs"));
    let last = crate::gc::runs(&log_dir)
        .into_iter()
        .filter_map(|(_, record)| record)
        .find(|record| record.pipeline == pipeline.name());
    let Some(before) = last.and_then(|record| record.params) else {
        return Vec::new();
    };
    let text = |value: Option<&serde_json::Value>| {
        value.map_or_else(|| "none".to_owned(), serde_json::Value::to_string)
    };
    given
        .flags
        .iter()
        .filter_map(|(id, flag)| {
            let (was, is) = (before.get(id), given.json.get(id));
            (was != is).then(|| ParamChange {
                flag: flag.clone(),
                before: text(was),
                now: text(is),
            })
        })
        .collect()
}

/// Says in `explanation` which of the `changed` parameters of the pipeline changed the
/// node: a parameter of the node that changed from and to the same values is said to come
/// from it; if none does, the changed parameters are listed beside the node's reasons.
pub(super) fn name_params(explanation: &mut Explanation, changed: &[ParamChange]) {
    if changed.is_empty() || matches!(explanation.decision, Decision::Fresh { .. }) {
        return;
    }
    let mut named = false;
    for line in &mut explanation.changes {
        let Some(change) = changed.iter().find(|c| {
            line.starts_with("parameter ")
                && line.ends_with(&format!(": {} → {})", c.before, c.now))
        }) else {
            continue;
        };
        line.push_str(&format!(", given as `{}` on the command line", change.flag));
        named = true;
    }
    if !named {
        let list: Vec<String> = changed.iter().map(ToString::to_string).collect();
        explanation.changes.push(format!(
            "the pipeline's parameters changed since the last run: {}",
            list.join(", ")
        ));
    }
}
