//! The graph as a Mermaid flowchart.

use super::{GraphView, NodeState};

/// The graph as a Mermaid `flowchart TD`: nodes get the ids `n0`, `n1`, … and their name,
/// task and state as an escaped label; a `classDef` per state present colours them.
pub fn mermaid(view: &GraphView) -> String {
    let mut out = format!(
        "---\ntitle: \"{}\"\n---\nflowchart TD\n",
        view.pipeline.replace('\\', "\\\\").replace('"', "\\\"")
    );
    for (i, node) in view.nodes.iter().enumerate() {
        let marker = node.marker();
        let mut label = format!("{}<br/>({})", escape(&node.name), escape(&node.task));
        if !marker.is_empty() {
            label.push_str(&format!(" {}", escape(&marker)));
        }
        out.push_str(&format!("    n{i}[\"{label}\"]:::{}\n", node.state.ident()));
    }
    for &(from, to) in &view.edges {
        out.push_str(&format!("    n{from} --> n{to}\n"));
    }
    for state in NodeState::ALL {
        if view.nodes.iter().any(|n| n.state == state) {
            let c = state.colors();
            let dash = if c.dashed {
                ",stroke-dasharray:5 3"
            } else {
                ""
            };
            out.push_str(&format!(
                "    classDef {} fill:{},stroke:{},color:{}{dash}\n",
                state.ident(),
                c.fill,
                c.stroke,
                c.text
            ));
        }
    }
    out
}

/// Escapes text for a quoted Mermaid label with entity codes: quotes, markup and the `#`
/// that starts an entity; line breaks become `<br/>`, other control characters are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '\n' => out.push_str("<br/>"),
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
    fn labels_cannot_close_their_quotes_or_inject_markup() {
        assert_eq!(
            escape(r#"say "hi" #1 <b>"#),
            "say #quot;hi#quot; #35;1 #lt;b#gt;"
        );
        assert_eq!(escape("données ✓"), "données ✓");
    }
}
