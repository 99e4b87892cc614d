//! `status`: the state of a run from its record, and `status --watch`, which follows a run
//! in progress until it ends.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{CliError, exit, io, open_in_browser, print_nodes, report_elsewhere};
use crate::error::Error;
use crate::record::schema::{RecordedStatus, RunRecord};
use crate::report::RunReport;

/// Prints the status of the run in `dir`, writes its HTML report (and opens it with
/// `open`), and returns the exit code: 1 if a node failed.
pub(super) fn status(dir: &Path, open: bool, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let record = RunRecord::read(dir)?;
    // A store of another format is refused, as a run refuses it, not misread.
    crate::cache::Store::new(record.data_dir.clone())
        .check()
        .map_err(Error::from)?;
    let report = RunReport::open(dir)?;
    writeln!(out, "run {}", dir.display()).map_err(io)?;
    writeln!(out, "{}", run_state(&record)).map_err(io)?;
    if let Some(params) = shown_params(&record) {
        writeln!(out, "{params}").map_err(io)?;
    }
    print_nodes(out, &report, true).map_err(io)?;
    writeln!(out, "{}", report.summary()).map_err(io)?;
    let html = match crate::render::write_report(dir) {
        Ok(html) => html,
        // A store the user can only read: the report goes to a temporary file.
        Err(Error::Store(err)) => {
            let html = report_elsewhere(dir)?;
            writeln!(
                out,
                "note: the report cannot be written beside the run ({err}), so it is \
                 in a temporary file"
            )
            .map_err(io)?;
            html
        }
        Err(err) => return Err(err.into()),
    };
    writeln!(out, "report {}", html.display()).map_err(io)?;
    if open {
        open_in_browser(&html);
    }
    Ok(exit(&report))
}

/// The line of `status` that says how the run stands.
fn run_state(record: &RunRecord) -> String {
    match (record.shown_status(), record.pid) {
        ("interrupted", Some(pid)) => format!(
            "interrupted: its process ({pid} on {}) is gone",
            record.provenance.host
        ),
        ("running", Some(pid)) => {
            format!("running in process {pid} on {}", record.provenance.host)
        }
        (status, _) => status.to_owned(),
    }
}

/// The line of `status` that gives the run's parameters (`parameters: rows = 3`), if it
/// recorded any.
fn shown_params(record: &RunRecord) -> Option<String> {
    let params = record.params.as_ref()?;
    let shown: Vec<String> = match params.as_object() {
        Some(fields) if fields.is_empty() => return None,
        Some(fields) => fields
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect(),
        None => vec![params.to_string()],
    };
    Some(format!("parameters: {}", shown.join(", ")))
}

/// Shows the run in `dir` while it goes on, read from its record every `interval`, until
/// it ends (or its process is gone). On a terminal each view replaces the last, which is
/// cleared at the end; elsewhere each view that differs from the last is printed once.
pub(super) fn watch_run(
    dir: &Path,
    interval: Duration,
    terminal: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut shown: Option<String> = None;
    let clear = |out: &mut dyn Write, shown: &Option<String>| match shown {
        // Up to the first line of the last view, and down to the end of the screen.
        Some(view) if terminal => write!(out, "\x1b[{}F\x1b[J", view.lines().count()),
        _ => Ok(()),
    };
    loop {
        let record = RunRecord::read(dir)?;
        if record.shown_status() != "running" {
            return clear(out, &shown).map_err(io);
        }
        let view = progress_view(dir, &record);
        if shown.as_ref() != Some(&view) {
            clear(out, &shown).map_err(io)?;
            out.write_all(view.as_bytes()).map_err(io)?;
            out.flush().map_err(io)?;
            shown = Some(view);
        }
        std::thread::sleep(interval);
    }
}

/// The view of a run in progress: its state, each node's, and the counts.
fn progress_view(dir: &Path, record: &RunRecord) -> String {
    let mut view = format!("run {}\n{}\n", dir.display(), run_state(record));
    if let Some(params) = shown_params(record) {
        view.push_str(&params);
        view.push('\n');
    }
    let width = record.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let mut counts: Vec<(RecordedStatus, usize)> = Vec::new();
    for node in &record.nodes {
        let detail = match (node.error.first(), &node.upstream_failed) {
            (Some(error), _) => error.clone(),
            (None, Some(upstream)) => format!("after `{upstream}`"),
            (None, None) => String::new(),
        };
        let line = format!(
            "  {:<width$}  {:<15}  {detail}",
            node.name,
            node.status.as_str()
        );
        view.push_str(line.trim_end());
        view.push('\n');
        match counts.iter_mut().find(|(status, _)| *status == node.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((node.status, 1)),
        }
    }
    // In the order of a run's summary, the nodes yet to settle last.
    counts.sort_by_key(|(status, _)| {
        [
            RecordedStatus::Ran,
            RecordedStatus::Cached,
            RecordedStatus::Failed,
            RecordedStatus::UpstreamFailed,
            RecordedStatus::NotNeeded,
            RecordedStatus::Cancelled,
        ]
        .iter()
        .position(|s| s == status)
        .unwrap_or(usize::MAX)
    });
    let total = record.nodes.len();
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    view.push_str(&format!(
        "{total} {}: {}\n",
        if total == 1 { "node" } else { "nodes" },
        counts.join(", ")
    ));
    view
}
