//! A self-contained HTML report of a run: summary, graph, timeline per worker, and a table
//! of nodes. It loads nothing from the network.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::svg::{FONT, estimate_width, svg};
use super::{GraphView, NodeState, short_duration, xml_escape};

/// The file of a run directory that holds its HTML report.
const REPORT_HTML: &str = "report.html";

/// Writes `report.html` into a run directory, drawn from its `run.json`, and returns its
/// path.
#[cfg_attr(
    not(feature = "cli"),
    expect(dead_code, reason = "only the command line writes a run's report")
)]
pub(crate) fn write_report(run_dir: &Path) -> crate::error::Result<PathBuf> {
    let view = GraphView::of_record(run_dir)?;
    let path = run_dir.join(REPORT_HTML);
    crate::cache::write_atomically(&path, html(&view).as_bytes())?;
    Ok(path)
}

const GANTT_WIDTH: f64 = 1040.0;
const GANTT_LABEL: f64 = 84.0;
const GANTT_ROW: f64 = 28.0;
const GANTT_BAR: f64 = 20.0;
const GANTT_AXIS: f64 = 24.0;

/// The whole report as one HTML document (also well-formed XML): the pipeline's name and a
/// summary line, the graph as inline SVG, a timeline with one row per worker and a bar per
/// node from its start to its end, and a table with one `<tr data-node="NAME">` per node
/// (name, task, state, duration, error). Everything is escaped; nothing is loaded from
/// elsewhere.
pub fn html(view: &GraphView) -> String {
    let title = format!("pipeline {}", view.pipeline);
    let mut summary = view.summary();
    let span = view.span();
    if view.nodes.iter().any(|n| n.started.is_some()) {
        summary.push_str(&format!(" in {}", short_duration(span)));
    }

    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n\
         <h1>{}</h1>\n<p class=\"summary\">{}</p>\n",
        xml_escape(&title),
        style(),
        xml_escape(&title),
        xml_escape(&summary),
    );
    out.push_str(&legend(view));
    out.push_str("<h2>Graph</h2>\n<div class=\"graph\">\n");
    out.push_str(&svg(view));
    out.push_str("</div>\n<h2>Timeline</h2>\n");
    out.push_str(&gantt(view, span));
    out.push_str("<h2>Nodes</h2>\n");
    out.push_str(&table(view));
    out.push_str("</body>\n</html>\n");
    out
}

/// The page's style sheet, with one class per state.
fn style() -> String {
    let mut css = format!(
        "body {{ font-family: {FONT}; margin: 24px 32px; color: #1a1d21; background: #ffffff; }}\n\
         h1 {{ font-size: 22px; margin: 0 0 4px 0; }}\n\
         h2 {{ font-size: 16px; margin: 28px 0 8px 0; color: #33383f; }}\n\
         .summary {{ margin: 0 0 10px 0; color: #4a4f57; }}\n\
         .legend span {{ display: inline-block; margin: 0 6px 4px 0; padding: 1px 8px; \
         border-radius: 9px; border: 1px solid; font-size: 12px; }}\n\
         .graph, .timeline {{ overflow-x: auto; border: 1px solid #e3e5e8; border-radius: 6px; \
         padding: 8px; background: #fbfbfc; }}\n\
         table {{ border-collapse: collapse; font-size: 13px; }}\n\
         th, td {{ text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #e3e5e8; \
         vertical-align: top; }}\n\
         td.duration {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         td.error {{ color: #a11d1d; white-space: pre-wrap; font-family: monospace; }}\n\
         td.state span {{ padding: 0 6px; border-radius: 8px; border: 1px solid; }}\n"
    );
    for state in NodeState::ALL {
        let c = state.colors();
        let _ = writeln!(
            css,
            ".state-{} {{ background: {}; border-color: {}; }}",
            state.ident(),
            c.fill,
            c.stroke
        );
    }
    css
}

/// A chip per state present, with its count.
fn legend(view: &GraphView) -> String {
    let mut out = String::from("<p class=\"legend\">");
    for state in NodeState::ALL {
        let count = view.nodes.iter().filter(|n| n.state == state).count();
        if count > 0 {
            let _ = write!(
                out,
                "<span class=\"state-{}\">{} {count}</span>",
                state.ident(),
                state.label()
            );
        }
    }
    out.push_str("</p>\n");
    out
}

/// One row per worker, a bar per node it ran or settled, on a common time axis.
fn gantt(view: &GraphView, span: Duration) -> String {
    let workers: BTreeSet<usize> = view
        .nodes
        .iter()
        .filter(|n| n.started.is_some())
        .filter_map(|n| n.worker)
        .collect();
    if workers.is_empty() {
        return "<p class=\"timeline-empty\">No node ran: there is no timeline.</p>\n".into();
    }
    let total = span.as_secs_f64().max(1e-6);
    let plot = GANTT_WIDTH - GANTT_LABEL - 16.0;
    let scale = |d: Duration| GANTT_LABEL + d.as_secs_f64() / total * plot;
    let height = GANTT_AXIS + workers.len() as f64 * GANTT_ROW + 8.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<div class=\"timeline\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"gantt\" \
         width=\"{GANTT_WIDTH}\" height=\"{height}\" viewBox=\"0 0 {GANTT_WIDTH} {height}\" \
         font-family=\"{FONT}\" font-size=\"11\">"
    );
    // The axis: a tick every 1, 2 or 5 units of a power of ten, four to eight of them.
    let step = nice_step(total);
    let mut t = 0.0;
    while t <= total * 1.0001 {
        let x = GANTT_LABEL + t / total * plot;
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{height:.1}\" stroke=\"#e3e5e8\"/>\
             <text x=\"{x:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"#6b7079\">{}</text>",
            GANTT_AXIS - 6.0,
            if t == 0.0 {
                "0".to_owned()
            } else {
                xml_escape(&short_duration(Duration::from_secs_f64(t)))
            }
        );
        t += step;
    }
    for (row, worker) in workers.iter().enumerate() {
        let y = GANTT_AXIS + row as f64 * GANTT_ROW;
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{:.1}\" fill=\"#33383f\">worker {worker}</text>",
            y + GANTT_ROW / 2.0 + 4.0
        );
        for node in view.nodes.iter().filter(|n| n.worker == Some(*worker)) {
            let Some(started) = node.started else {
                continue;
            };
            let duration = node.duration.unwrap_or_default();
            let x0 = scale(started);
            let w = (scale(started + duration) - x0).max(2.0);
            let c = node.state.colors();
            let by = y + (GANTT_ROW - GANTT_BAR) / 2.0;
            let _ = write!(
                out,
                "<g class=\"bar\" data-node=\"{}\"><title>{}</title>\
                 <rect x=\"{x0:.1}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{GANTT_BAR}\" \
                 rx=\"3\" fill=\"{}\" stroke=\"{}\"/>",
                xml_escape(&node.name),
                xml_escape(&format!(
                    "{} ({}): {}, {} from {}",
                    node.name,
                    node.task,
                    node.state,
                    short_duration(duration),
                    short_duration(started)
                )),
                c.fill,
                c.stroke,
            );
            if estimate_width(&node.name, 11.0, false) + 8.0 < w {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
                    x0 + 4.0,
                    by + GANTT_BAR / 2.0 + 4.0,
                    c.text,
                    xml_escape(&node.name)
                );
            }
            out.push_str("</g>\n");
        }
    }
    out.push_str("</svg>\n</div>\n");
    out
}

/// A tick step of 1, 2 or 5 times a power of ten giving four to eight ticks over `total`.
fn nice_step(total: f64) -> f64 {
    let raw = total / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| total / step <= 8.0)
        .unwrap_or(10.0 * power)
}

/// The table of nodes, one `<tr data-node="NAME">` each; a mapped node's row counts its
/// branches.
fn table(view: &GraphView) -> String {
    let mut out = String::from(
        "<table class=\"nodes\">\n<thead><tr><th>node</th><th>task</th><th>state</th>\
         <th>duration</th><th>error</th></tr></thead>\n<tbody>\n",
    );
    for node in &view.nodes {
        let duration = match node.state {
            NodeState::Ran | NodeState::Failed => node.duration.map(short_duration),
            _ => None,
        };
        let branches = node
            .map
            .map(|map| format!(" {}", xml_escape(&map.words(node.state))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr data-node=\"{}\"><td>{}</td><td>{}</td><td class=\"state\">\
             <span class=\"state-{}\">{}</span>{branches}</td><td class=\"duration\">{}</td>\
             <td class=\"error\">{}</td></tr>",
            xml_escape(&node.name),
            xml_escape(&node.name),
            xml_escape(&node.task),
            node.state.ident(),
            node.state.label(),
            xml_escape(duration.as_deref().unwrap_or("")),
            xml_escape(node.error.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::nice_step;

    #[test]
    fn ticks_fall_on_round_numbers() {
        assert_eq!(nice_step(1.0), 0.2);
        assert!((nice_step(0.034) - 0.005).abs() < 1e-12);
        assert_eq!(nice_step(70.0), 10.0);
    }
}
