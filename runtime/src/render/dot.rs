//! The graph in Graphviz's DOT language.

use super::GraphView;

/// The graph as a Graphviz `digraph`: one box per node labelled `name\ntask` (and the
/// state when there is one), filled in its state's colour, and an edge from each upstream
/// node to its consumers. Names are escaped, so any node name is safe.
pub fn dot(view: &GraphView) -> String {
    let mut out = format!("digraph \"{}\" {{\n", escape(&view.pipeline));
    out.push_str(&format!(
        "  graph [rankdir=TB, label=\"{}\", labelloc=t, fontname=\"Helvetica\"];\n",
        escape(&view.pipeline)
    ));
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n");
    out.push_str("  edge [color=\"#7a808a\"];\n");
    for (i, node) in view.nodes.iter().enumerate() {
        let colors = node.state.colors();
        let marker = node.marker();
        let mut label = format!("{}\\n{}", escape(&node.name), escape(&node.task));
        if !marker.is_empty() {
            label.push_str(&format!("\\n{}", escape(&marker)));
        }
        let style = if colors.dashed {
            ", style=\"rounded,filled,dashed\""
        } else {
            ""
        };
        out.push_str(&format!(
            "  n{i} [label=\"{label}\", fillcolor=\"{}\", color=\"{}\"{style}];\n",
            colors.fill, colors.stroke
        ));
    }
    for &(from, to) in &view.edges {
        out.push_str(&format!("  n{from} -> n{to};\n"));
    }
    out.push_str("}\n");
    out
}

/// Escapes text for a DOT double-quoted string: backslashes and quotes get a backslash,
/// line breaks become `\n`, other control characters are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn quotes_backslashes_and_line_breaks_are_escaped() {
        assert_eq!(escape(r#"a "b" \c"#), r#"a \"b\" \\c"#);
        assert_eq!(escape("x\ny\r"), "x\\ny");
        assert_eq!(escape("données ✓"), "données ✓");
    }
}
