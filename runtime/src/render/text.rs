//! The graph drawn with box-drawing characters for a terminal, layer under layer; a graph
//! too wide for that is listed by layer instead.

use super::layout::{Layout, Slot};
use super::{GraphView, NodeView, char_width, text_width};

/// The widest picture [`text`] draws, in columns; a wider graph is listed instead.
const MAX_WIDTH: usize = 140;
/// The least number of columns between two boxes of a layer.
const GAP: usize = 3;

const N: u8 = 1;
const S: u8 = 2;
const E: u8 = 4;
const W: u8 = 8;

/// The graph as text: a header line with the summary, then boxes in layers (a node's layer is
/// the longest path to it from a source) joined by lines and arrows, each box holding the
/// node's state, name and task: `[ran 1.2s] l1 (normalize)`. A graph wider than 140 columns
/// is listed layer by layer, each node with its inputs.
pub fn text(view: &GraphView) -> String {
    text_in(view, MAX_WIDTH)
}

/// The graph as [`text`] draws it, in at most `columns` columns (a terminal's width): a
/// graph wider than that is listed layer by layer, each node with its inputs.
pub fn text_in(view: &GraphView, columns: usize) -> String {
    let mut out = format!("pipeline `{}`: {}\n", view.pipeline, view.summary());
    if view.nodes.is_empty() {
        return out;
    }
    let layout = Layout::new(view);
    let labels: Vec<String> = view.nodes.iter().map(label).collect();
    match draw(&layout, &labels, columns) {
        Some(picture) => out.push_str(&picture),
        None => out.push_str(&list(view, &layout, &labels)),
    }
    out
}

/// `[ran 1.2s] l1 (normalize)`.
fn label(node: &NodeView) -> String {
    let marker = node.marker();
    let sep = if marker.is_empty() { "" } else { " " };
    format!("{marker}{sep}{} ({})", node.name, node.task)
}

/// The nodes layer by layer, each with the nodes it reads from.
fn list(view: &GraphView, layout: &Layout, labels: &[String]) -> String {
    let mut out = format!(
        "(too wide to draw: {} layers; listed by layer, each node with its inputs)\n",
        layout.layers.len()
    );
    let mut inputs = vec![Vec::new(); view.nodes.len()];
    for route in &layout.routes {
        inputs[route.to].push(view.nodes[route.from].name.as_str());
    }
    for &(from, to) in &layout.back_edges {
        inputs[to].push(view.nodes[from].name.as_str());
    }
    for (l, layer) in layout.layers.iter().enumerate() {
        out.push_str(&format!("layer {l}\n"));
        for &s in layer {
            if let Slot::Node(i) = layout.slots[s] {
                out.push_str(&format!("  {}\n", labels[i]));
                if !inputs[i].is_empty() {
                    out.push_str(&wrap("      ← ", &inputs[i]));
                }
            }
        }
    }
    out
}

/// `names` after `lead`, separated by commas, in lines of at most about 100 columns.
fn wrap(lead: &str, names: &[&str]) -> String {
    let indent = " ".repeat(text_width(lead));
    let mut out = String::from(lead);
    let mut width = text_width(lead);
    for (i, name) in names.iter().enumerate() {
        let sep = if i + 1 < names.len() { "," } else { "" };
        if i > 0 {
            if width + 1 + text_width(name) + sep.len() > 100 {
                out.push('\n');
                out.push_str(&indent);
                width = indent.len();
            } else {
                out.push(' ');
                width += 1;
            }
        }
        out.push_str(name);
        out.push_str(sep);
        width += text_width(name) + sep.len();
    }
    out.push('\n');
    out
}

/// One character cell of the picture.
#[derive(Clone, Copy)]
enum Cell {
    Empty,
    /// A character of a box or a label.
    Char(char),
    /// The right half of a wide character.
    Covered,
    /// Lines leaving the cell's centre toward north, south, east and west.
    Lines(u8),
}

struct Grid {
    rows: Vec<Vec<Cell>>,
}

impl Grid {
    fn put(&mut self, row: usize, col: usize, c: char) {
        self.rows[row][col] = Cell::Char(c);
    }

    fn text(&mut self, row: usize, mut col: usize, s: &str) {
        for c in s.chars() {
            self.put(row, col, c);
            if char_width(c) == 2 {
                self.rows[row][col + 1] = Cell::Covered;
            }
            col += char_width(c);
        }
    }

    fn line(&mut self, row: usize, col: usize, dirs: u8) {
        match &mut self.rows[row][col] {
            cell @ Cell::Empty => *cell = Cell::Lines(dirs),
            Cell::Lines(d) => *d |= dirs,
            Cell::Char(_) | Cell::Covered => {}
        }
    }

    /// A vertical line from the centre of `(top, col)` to the centre of `(bottom, col)`.
    fn vertical(&mut self, col: usize, top: usize, bottom: usize) {
        for row in top..=bottom {
            let dirs = if row > top { N } else { 0 } | if row < bottom { S } else { 0 };
            self.line(row, col, dirs);
        }
    }

    /// A horizontal line from the centre of `(row, left)` to the centre of `(row, right)`.
    fn horizontal(&mut self, row: usize, left: usize, right: usize) {
        for col in left..=right {
            let dirs = if col > left { W } else { 0 } | if col < right { E } else { 0 };
            self.line(row, col, dirs);
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for cell in row {
                match *cell {
                    Cell::Empty => line.push(' '),
                    Cell::Char(c) => line.push(c),
                    Cell::Covered => {}
                    Cell::Lines(d) => line.push(glyph(d)),
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The box-drawing character joining the given directions.
fn glyph(dirs: u8) -> char {
    match dirs {
        0 => ' ',
        d if d == N | S || d == N || d == S => '│',
        d if d == E | W || d == E || d == W => '─',
        d if d == S | E => '┌',
        d if d == S | W => '┐',
        d if d == N | E => '└',
        d if d == N | W => '┘',
        d if d == N | S | E => '├',
        d if d == N | S | W => '┤',
        d if d == S | E | W => '┬',
        d if d == N | E | W => '┴',
        _ => '┼',
    }
}

/// The picture of the layers, or `None` if it is wider than `columns`.
fn draw(layout: &Layout, labels: &[String], columns: usize) -> Option<String> {
    let widths: Vec<f64> = layout
        .slots
        .iter()
        .map(|slot| match *slot {
            Slot::Node(i) => (text_width(&labels[i]) + 4) as f64,
            Slot::Dummy(_) => 1.0,
        })
        .collect();
    let centres = layout.centres(&widths, GAP as f64);
    // Whole columns: where lines leave each slot (its middle), then its left edge.
    let exit: Vec<usize> = centres
        .iter()
        .map(|c| c.floor().max(0.0) as usize)
        .collect();
    let shift = (0..layout.slots.len())
        .map(|s| widths[s] as usize / 2)
        .zip(&exit)
        .map(|(half, &x)| half.saturating_sub(x))
        .max()
        .unwrap_or(0);
    let exit: Vec<usize> = exit.into_iter().map(|x| x + shift).collect();
    let left: Vec<usize> = (0..layout.slots.len())
        .map(|s| exit[s] - widths[s] as usize / 2)
        .collect();
    let width = (0..layout.slots.len())
        .map(|s| left[s] + widths[s] as usize)
        .max()
        .unwrap_or(0);
    if width > columns {
        return None;
    }

    // Where lines enter a slot: spread over the top of a box, in the order of the sources.
    let entry = |s: usize, from: usize| -> usize {
        if layout.up[s].len() == 1 || matches!(layout.slots[s], Slot::Dummy(_)) {
            return exit[s];
        }
        let mut ups = layout.up[s].clone();
        ups.sort_by_key(|&u| exit[u]);
        let k = ups.len();
        let i = ups.iter().position(|&u| u == from).unwrap_or(0);
        let inner = widths[s] as usize - 2;
        left[s] + 1 + (i + 1) * inner / (k + 1)
    };

    // Rows: three per layer of boxes, then one row per horizontal run and a row of arrows.
    struct Gap {
        top: usize,
        buses: Vec<(usize, Vec<usize>)>, // source slot, entry columns of its targets
    }
    let mut layer_top = Vec::with_capacity(layout.layers.len());
    let mut gaps = Vec::new();
    let mut rows = 0;
    for (l, layer) in layout.layers.iter().enumerate() {
        layer_top.push(rows);
        rows += 3;
        if l + 1 == layout.layers.len() {
            break;
        }
        let mut sources: Vec<usize> = layer
            .iter()
            .copied()
            .filter(|&s| !layout.down[s].is_empty())
            .collect();
        sources.sort_by_key(|&s| exit[s]);
        let buses: Vec<(usize, Vec<usize>)> = sources
            .into_iter()
            .map(|s| (s, layout.down[s].iter().map(|&t| entry(t, s)).collect()))
            .collect();
        let bends = buses
            .iter()
            .filter(|(s, cols)| cols.iter().any(|&c| c != exit[*s]))
            .count();
        gaps.push(Gap { top: rows, buses });
        rows += bends.max(1) + 1;
    }

    let mut grid = Grid {
        rows: vec![vec![Cell::Empty; width]; rows],
    };
    for (l, layer) in layout.layers.iter().enumerate() {
        let top = layer_top[l];
        for &s in layer {
            match layout.slots[s] {
                Slot::Node(i) => {
                    let w = widths[s] as usize;
                    let x = left[s];
                    grid.put(top, x, '┌');
                    grid.put(top + 2, x, '└');
                    for c in x + 1..x + w - 1 {
                        grid.put(top, c, '─');
                        grid.put(top + 2, c, '─');
                    }
                    grid.put(top, x + w - 1, '┐');
                    grid.put(top + 2, x + w - 1, '┘');
                    grid.put(top + 1, x, '│');
                    grid.text(top + 1, x + 2, &labels[i]);
                    grid.put(top + 1, x + w - 1, '│');
                    if !layout.down[s].is_empty() {
                        grid.put(top + 2, exit[s], '┬');
                    }
                }
                Slot::Dummy(_) => grid.vertical(left[s], top, top + 2),
            }
        }
    }
    for gap in &gaps {
        let arrows = gap.top
            + gap
                .buses
                .iter()
                .filter(|(s, c)| c.iter().any(|&c| c != exit[*s]))
                .count()
                .max(1);
        let mut bus_row = gap.top;
        for (s, cols) in &gap.buses {
            let from = exit[*s];
            let straight = cols.iter().all(|&c| c == from);
            let row = if straight { arrows } else { bus_row };
            // From the bottom of the source (the row above the gap) down to its run.
            grid.vertical(from, gap.top - 1, row);
            if !straight {
                let lo = cols.iter().copied().chain([from]).min().unwrap_or(from);
                let hi = cols.iter().copied().chain([from]).max().unwrap_or(from);
                grid.horizontal(row, lo, hi);
                for &c in cols {
                    grid.vertical(c, row, arrows);
                }
                bus_row += 1;
            }
        }
        // An arrow into each box; a line on into each dummy below.
        for (_, cols) in &gap.buses {
            for &c in cols {
                if matches!(grid.rows[arrows + 1][c], Cell::Char(_)) {
                    grid.put(arrows, c, '▼');
                } else {
                    grid.line(arrows, c, S);
                }
            }
        }
    }
    Some(grid.render())
}
