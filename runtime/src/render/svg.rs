//! The graph as an SVG picture, laid out by [`layout`](super::layout): no Graphviz needed.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::layout::{Layout, Slot};
use super::{GraphView, NodeState, NodeView, char_width, short_duration, xml_escape};

/// The fonts the pictures ask for, all commonly installed; no font is downloaded.
pub(crate) const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

const MARGIN: f64 = 16.0;
const BOX_HEIGHT: f64 = 44.0;
const LAYER_GAP: f64 = 56.0;
const SLOT_GAP: f64 = 28.0;
const DUMMY_WIDTH: f64 = 8.0;
/// How far each box stacked behind a mapped node's box is offset.
const STACK_OFFSET: f64 = 3.0;
const NAME_SIZE: f64 = 13.0;
const DETAIL_SIZE: f64 = 11.0;
const EDGE_COLOR: &str = "#7a808a";
const BROKEN_EDGE_COLOR: &str = "#d9690b";

/// The graph as a standalone SVG document: one rounded box per node (name, then task and
/// state), coloured by state, in layers by longest path from a source, ordered to reduce
/// crossings, with curved edges ending in arrowheads. Each node is a
/// `<g class="node" data-node="NAME">` holding a `<rect class="box">`; a mapped node is
/// one stacked box (two `<rect class="stack">` behind its box) that counts its branches.
pub fn svg(view: &GraphView) -> String {
    let layout = Layout::new(view);
    let details: Vec<String> = view.nodes.iter().map(detail).collect();
    let widths: Vec<f64> = layout
        .slots
        .iter()
        .map(|slot| match *slot {
            Slot::Node(i) => {
                let name = estimate_width(&view.nodes[i].name, NAME_SIZE, true);
                let detail = estimate_width(&details[i], DETAIL_SIZE, false);
                (name.max(detail) + 24.0).max(96.0).ceil()
            }
            Slot::Dummy(_) => DUMMY_WIDTH,
        })
        .collect();
    let centres = layout.centres(&widths, SLOT_GAP);
    let x = |s: usize| MARGIN + centres[s];
    let top = |s: usize| MARGIN + layout.layer_of[s] as f64 * (BOX_HEIGHT + LAYER_GAP);
    let width = (0..layout.slots.len())
        .map(|s| x(s) + widths[s] / 2.0)
        .fold(0.0, f64::max)
        + MARGIN;
    let height = layout.layers.len() as f64 * (BOX_HEIGHT + LAYER_GAP) - LAYER_GAP + 2.0 * MARGIN;
    let (width, height) = (
        width.max(2.0 * MARGIN).ceil(),
        height.max(2.0 * MARGIN).ceil(),
    );

    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pipeline-graph\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"{FONT}\">\n\
         <title>{}</title>\n",
        xml_escape(&format!("pipeline {}: {}", view.pipeline, view.summary()))
    );
    out.push_str("<defs>\n");
    for (id, color) in [
        ("pw-arrow", EDGE_COLOR),
        ("pw-arrow-broken", BROKEN_EDGE_COLOR),
    ] {
        let _ = writeln!(
            out,
            "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
             markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>"
        );
    }
    out.push_str("</defs>\n<g class=\"edges\" fill=\"none\" stroke-width=\"1.4\">\n");

    // Where an edge enters a box: spread over its top, in the order of the sources. Each
    // box's sources are put in order once, not once per edge.
    let entry_rank: Vec<HashMap<usize, usize>> = layout
        .up
        .iter()
        .map(|ups| {
            let mut ups = ups.clone();
            ups.sort_by(|a, b| x(*a).total_cmp(&x(*b)));
            let mut rank = HashMap::with_capacity(ups.len());
            for (i, u) in ups.into_iter().enumerate() {
                rank.entry(u).or_insert(i);
            }
            rank
        })
        .collect();
    let entry_x = |target: usize, from: usize| -> f64 {
        let i = entry_rank[target].get(&from).copied().unwrap_or(0);
        let span = widths[target] * 0.6;
        x(target) - span / 2.0 + (i + 1) as f64 * span / (layout.up[target].len() + 1) as f64
    };
    for route in &layout.routes {
        let mut points = vec![(x(route.from), top(route.from) + BOX_HEIGHT)];
        for pair in route.slots.windows(2) {
            let (prev, s) = (pair[0], pair[1]);
            match layout.slots[s] {
                Slot::Dummy(_) => {
                    points.push((x(s), top(s)));
                    points.push((x(s), top(s) + BOX_HEIGHT));
                }
                Slot::Node(_) => points.push((entry_x(s, prev), top(s))),
            }
        }
        let mut d = format!("M{:.1},{:.1}", points[0].0, points[0].1);
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if x0 == x1 {
                let _ = write!(d, " L{x1:.1},{y1:.1}");
            } else {
                let mid = (y0 + y1) / 2.0;
                let _ = write!(d, " C{x0:.1},{mid:.1} {x1:.1},{mid:.1} {x1:.1},{y1:.1}");
            }
        }
        edge(&mut out, &d, view.nodes[route.to].state);
    }
    for &(from, to) in &layout.back_edges {
        let d = format!(
            "M{:.1},{:.1} L{:.1},{:.1}",
            x(from),
            top(from),
            x(to),
            top(to) + BOX_HEIGHT
        );
        edge(&mut out, &d, view.nodes[to].state);
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");

    for (i, node) in view.nodes.iter().enumerate() {
        let colors = node.state.colors();
        let (w, cx, y) = (widths[i], x(i), top(i));
        let mut tip = format!("{} ({}): {}", node.name, node.task, node.state);
        if let Some(error) = &node.error {
            tip.push('\n');
            tip.push_str(error);
        }
        let dash = if colors.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let mapped = if node.map.is_some() { " mapped" } else { "" };
        let _ = write!(
            out,
            "<g class=\"node{mapped} state-{}\" data-node=\"{}\">\n<title>{}</title>\n",
            node.state.ident(),
            xml_escape(&node.name),
            xml_escape(&tip),
        );
        if node.map.is_some() {
            // The branches behind the box, each offset up and to the right.
            for offset in [STACK_OFFSET * 2.0, STACK_OFFSET] {
                let _ = writeln!(
                    out,
                    "<rect class=\"stack\" x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" \
                     height=\"{BOX_HEIGHT}\" rx=\"7\" fill=\"{}\" stroke=\"{}\" \
                     stroke-width=\"1.2\"{dash}/>",
                    cx - w / 2.0 + offset,
                    y - offset,
                    colors.fill,
                    colors.stroke,
                );
            }
        }
        let _ = write!(
            out,
            "<rect class=\"box\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BOX_HEIGHT}\" \
             rx=\"7\" fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"{dash}/>\n\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{NAME_SIZE}\" \
             font-weight=\"bold\" fill=\"{}\">{}</text>\n\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{DETAIL_SIZE}\" \
             fill=\"#4a4f57\">{}</text>\n</g>\n",
            cx - w / 2.0,
            colors.fill,
            colors.stroke,
            y + 19.0,
            colors.text,
            xml_escape(&node.name),
            y + 35.0,
            xml_escape(&details[i]),
        );
    }
    out.push_str("</g>\n</svg>\n");
    out
}

/// One edge; an edge into a node that never ran because of a failure is dashed orange.
fn edge(out: &mut String, d: &str, target: NodeState) {
    let (color, marker, dash) = if target == NodeState::UpstreamFailed {
        (
            BROKEN_EDGE_COLOR,
            "pw-arrow-broken",
            " stroke-dasharray=\"4 3\"",
        )
    } else {
        (EDGE_COLOR, "pw-arrow", "")
    };
    let _ = writeln!(
        out,
        "<path d=\"{d}\" stroke=\"{color}\"{dash} marker-end=\"url(#{marker})\"/>"
    );
}

/// The second line of a box: `normalize · ran 12ms`.
fn detail(node: &NodeView) -> String {
    if let Some(map) = &node.map {
        return format!("{} · {}", node.task, map.words(node.state));
    }
    let state = match (node.state, node.duration) {
        (NodeState::Unknown, _) => return node.task.clone(),
        (NodeState::Ran | NodeState::Failed, Some(d)) => {
            format!("{} {}", node.state, short_duration(d))
        }
        (state, _) => state.to_string(),
    };
    format!("{} · {state}", node.task)
}

/// A generous estimate of the width of `s` in a sans-serif font of `size` pixels.
pub(crate) fn estimate_width(s: &str, size: f64, bold: bool) -> f64 {
    let per = if bold { 0.66 } else { 0.6 };
    s.chars()
        .map(|c| {
            if char_width(c) == 2 {
                size
            } else if c.is_ascii_uppercase() || c == 'm' || c == 'w' {
                size * (per + 0.12)
            } else {
                size * per
            }
        })
        .sum()
}
