//! `status`: the state of a run from its record, and `status --watch`, which follows a run
//! in progress until it ends.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{CliError, exit, io, open_in_browser, report_elsewhere};
use crate::error::Error;
use crate::record::schema::{BranchRecord, NodeRecord, RecordedStatus, RunRecord};
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
    if record.shown_status() == "running" {
        // What has not settled yet is pending, not cancelled as in a report.
        out.write_all(nodes_view(&record, false).as_bytes())
            .map_err(io)?;
    } else {
        out.write_all(nodes_view(&record, true).as_bytes())
            .map_err(io)?;
        writeln!(out, "{}", report.summary()).map_err(io)?;
    }
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
    view.push_str(&nodes_view(record, false));
    view
}

/// Each node of a run and how it stands (once the run has ended, with how long it ran, or
/// that its entry is not recorded as stored if the run ended before it was), then, while it
/// goes on, the counts. A mapped node that made its branches shows how many of them stand
/// how, and each failed branch has a line of its own below it; the others are only counted,
/// however many there are.
fn nodes_view(record: &RunRecord, ended: bool) -> String {
    let width = record
        .nodes
        .iter()
        .flat_map(|n| std::iter::once(&n.name).chain(failed(n).map(|b| &b.name)))
        .map(String::len)
        .max()
        .unwrap_or(0);
    let mut view = String::new();
    let mut line = |name: &str, status: RecordedStatus, detail: &str| {
        let line = format!("  {name:<width$}  {:<15}  {detail}", status.as_str());
        view.push_str(line.trim_end());
        view.push('\n');
    };
    let mut counts: Vec<(RecordedStatus, usize)> = Vec::new();
    for node in &record.nodes {
        let detail = match (node.error.first(), &node.upstream_failed) {
            _ if node.over.is_some() && !node.branches.is_empty() => branch_counts(node, ended),
            // Its entry was to be committed after it settled, and the run ended before it
            // was known to be. While the run goes on, that takes milliseconds: not shown.
            _ if node.uncommitted && ended => "its entry is not recorded as stored".to_owned(),
            (Some(error), _) => error.clone(),
            (None, Some(upstream)) => format!("after `{upstream}`"),
            (None, None) => match node.duration_secs {
                Some(secs) if ended && node.status == RecordedStatus::Ran => {
                    format!("{:.2?}", Duration::from_secs_f64(secs))
                }
                _ => String::new(),
            },
        };
        line(&node.name, node.status, &detail);
        for branch in failed(node) {
            let error = branch.error.first().map_or("", String::as_str);
            line(&branch.name, branch.status, error);
        }
        if ended {
            continue;
        }
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
    if ended {
        return view;
    }
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

/// The failed branches of mapped node `node`.
fn failed(node: &NodeRecord) -> impl Iterator<Item = &BranchRecord> {
    node.branches
        .iter()
        .filter(|b| b.status == RecordedStatus::Failed)
}

/// How the branches of mapped node `node` stand, as pictures count them: `5 branches: 2
/// ran, 0 cached, 1 failed, 2 pending` (pending until the run has `ended`), with those
/// upstream failed, not needed or cancelled when there are any.
fn branch_counts(node: &NodeRecord, ended: bool) -> String {
    let count =
        |status: RecordedStatus| node.branches.iter().filter(|b| b.status == status).count();
    let n = node.branches.len();
    let mut words = format!(
        "{n} branch{}: {} ran, {} cached, {} failed",
        if n == 1 { "" } else { "es" },
        count(RecordedStatus::Ran),
        count(RecordedStatus::Cached),
        count(RecordedStatus::Failed),
    );
    for status in [
        RecordedStatus::Pending,
        RecordedStatus::UpstreamFailed,
        RecordedStatus::NotNeeded,
        RecordedStatus::Cancelled,
    ] {
        let k = count(status);
        if k > 0 || (status == RecordedStatus::Pending && !ended) {
            words.push_str(&format!(", {k} {status}"));
        }
    }
    words
}
