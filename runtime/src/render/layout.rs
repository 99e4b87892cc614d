//! The layered layout the text and SVG pictures share: layers by longest path from a source,
//! a dummy slot wherever an edge crosses a layer, the order within each layer chosen by
//! barycenter sweeps, and horizontal positions pulled toward each slot's neighbours.

use super::GraphView;

/// What occupies a place in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A node, by its index in the view.
    Node(usize),
    /// A point an edge passes through, by the index of its route.
    Dummy(usize),
}

/// An edge of the view as the layout routes it.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) from: usize,
    pub(crate) to: usize,
    /// The slots it passes through: the source's, its dummies', the target's.
    pub(crate) slots: Vec<usize>,
}

/// The layers of a view, each in its left-to-right order.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// What each slot is; node `i` is slot `i`, dummies follow.
    pub(crate) slots: Vec<Slot>,
    /// The layer of each slot.
    pub(crate) layer_of: Vec<usize>,
    /// The slots of each layer, left to right.
    pub(crate) layers: Vec<Vec<usize>>,
    /// Per slot, the slots of the layer above it that connect to it.
    pub(crate) up: Vec<Vec<usize>>,
    /// Per slot, the slots of the layer below it that it connects to.
    pub(crate) down: Vec<Vec<usize>>,
    /// The distinct edges pointing down the layers.
    pub(crate) routes: Vec<Route>,
    /// Edges that do not point down the layers (only a hand-made view with a cycle has any).
    pub(crate) back_edges: Vec<(usize, usize)>,
}

/// How many down-and-up barycenter sweeps order the layers.
const SWEEPS: usize = 6;

impl Layout {
    /// Lays out `view`: see the module docs.
    pub(crate) fn new(view: &GraphView) -> Self {
        let n = view.nodes.len();
        let mut edges: Vec<(usize, usize)> = view
            .edges
            .iter()
            .copied()
            .filter(|&(a, b)| a < n && b < n && a != b)
            .collect();
        edges.sort_unstable();
        edges.dedup();

        let node_layer = longest_path_layers(n, &edges);
        let (forward, back_edges): (Vec<_>, Vec<_>) = edges
            .into_iter()
            .partition(|&(a, b)| node_layer[a] < node_layer[b]);

        let mut slots: Vec<Slot> = (0..n).map(Slot::Node).collect();
        let mut layer_of = node_layer.clone();
        let mut routes = Vec::with_capacity(forward.len());
        for (r, &(from, to)) in forward.iter().enumerate() {
            let mut path = vec![from];
            for layer in node_layer[from] + 1..node_layer[to] {
                path.push(slots.len());
                slots.push(Slot::Dummy(r));
                layer_of.push(layer);
            }
            path.push(to);
            routes.push(Route {
                from,
                to,
                slots: path,
            });
        }

        let mut up = vec![Vec::new(); slots.len()];
        let mut down = vec![Vec::new(); slots.len()];
        for route in &routes {
            for pair in route.slots.windows(2) {
                down[pair[0]].push(pair[1]);
                up[pair[1]].push(pair[0]);
            }
        }
        let depth = layer_of.iter().max().map_or(0, |m| m + 1);
        let mut layers = vec![Vec::new(); depth];
        for (s, &l) in layer_of.iter().enumerate() {
            layers[l].push(s);
        }

        let mut layout = Layout {
            slots,
            layer_of,
            layers,
            up,
            down,
            routes,
            back_edges,
        };
        layout.order();
        layout
    }

    /// Reorders each layer by the mean position of its neighbours, sweeping down and up a
    /// few times, and keeps the order with the fewest crossings.
    fn order(&mut self) {
        let mut best = self.layers.clone();
        let mut best_crossings = self.crossings();
        for sweep in 0..SWEEPS {
            let downward = sweep % 2 == 0;
            let count = self.layers.len();
            for step in 1..count {
                let l = if downward { step } else { count - 1 - step };
                let adjacent = if downward { l - 1 } else { l + 1 };
                let position = positions(&self.layers[adjacent], self.slots.len());
                let neighbours = if downward { &self.up } else { &self.down };
                let mut keyed: Vec<(f64, usize)> = self.layers[l]
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| {
                        let ns = &neighbours[s];
                        let key = if ns.is_empty() {
                            i as f64
                        } else {
                            ns.iter().map(|&t| position[t] as f64).sum::<f64>() / ns.len() as f64
                        };
                        (key, s)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                self.layers[l] = keyed.into_iter().map(|(_, s)| s).collect();
            }
            let crossings = self.crossings();
            if crossings < best_crossings {
                best_crossings = crossings;
                best = self.layers.clone();
            }
        }
        self.layers = best;
    }

    /// How many pairs of edges cross between consecutive layers: for each pair of layers,
    /// the edges sorted by their top end, then the inversions among their bottom ends,
    /// counted with a Fenwick tree (`E log S` rather than comparing every pair of edges).
    pub(crate) fn crossings(&self) -> usize {
        let mut total = 0;
        let mut tree = vec![0usize; self.slots.len() + 2];
        for pair in self.layers.windows(2) {
            let top = &positions(&pair[0], self.slots.len());
            let bottom = &positions(&pair[1], self.slots.len());
            let mut edges: Vec<(usize, usize)> = pair[0]
                .iter()
                .flat_map(|&s| self.down[s].iter().map(move |&t| (top[s], bottom[t])))
                .collect();
            // Edges from one top end never cross: with their bottom ends ascending, none
            // of them is counted against another.
            edges.sort_unstable();
            // A bottom end outside the layer, if any, counts as right of all of it.
            let width = pair[1].len() + 1;
            tree[..=width].fill(0);
            for (seen, &(_, b)) in edges.iter().enumerate() {
                let b = b.min(width - 1);
                // Edges seen so far whose bottom end is at or left of `b`.
                let mut at_or_left = 0;
                let mut i = b + 1;
                while i > 0 {
                    at_or_left += tree[i];
                    i &= i - 1;
                }
                total += seen - at_or_left;
                let mut i = b + 1;
                while i <= width {
                    tree[i] += 1;
                    i += i & i.wrapping_neg();
                }
            }
        }
        total
    }

    /// Centres for every slot, given each slot's width and the least gap between two slots
    /// of a layer: packed, then pulled toward the mean centre of their neighbours in a few
    /// sweeps, never overlapping. The leftmost edge is at 0.
    pub(crate) fn centres(&self, width: &[f64], gap: f64) -> Vec<f64> {
        let mut x = vec![0.0; self.slots.len()];
        let widest = self
            .layers
            .iter()
            .map(|l| l.iter().map(|&s| width[s] + gap).sum::<f64>())
            .fold(0.0, f64::max);
        for layer in &self.layers {
            let total: f64 = layer.iter().map(|&s| width[s] + gap).sum();
            let mut left = (widest - total) / 2.0;
            for &s in layer {
                x[s] = left + width[s] / 2.0;
                left += width[s] + gap;
            }
        }
        for sweep in 0..2 * SWEEPS {
            let downward = sweep % 2 == 0;
            let count = self.layers.len();
            for step in 0..count {
                let l = if downward { step } else { count - 1 - step };
                let neighbours = if downward { &self.up } else { &self.down };
                let layer = &self.layers[l];
                let wanted: Vec<f64> = layer
                    .iter()
                    .map(|&s| {
                        let ns = &neighbours[s];
                        if ns.is_empty() {
                            x[s]
                        } else {
                            ns.iter().map(|&t| x[t]).sum::<f64>() / ns.len() as f64
                        }
                    })
                    .collect();
                let separation: Vec<f64> = layer
                    .windows(2)
                    .map(|p| (width[p[0]] + width[p[1]]) / 2.0 + gap)
                    .collect();
                for (&s, placed) in layer.iter().zip(spread(&wanted, &separation)) {
                    x[s] = placed;
                }
            }
        }
        let min = (0..self.slots.len())
            .map(|s| x[s] - width[s] / 2.0)
            .fold(f64::INFINITY, f64::min);
        if min.is_finite() {
            x.iter_mut().for_each(|c| *c -= min);
        }
        x
    }
}

/// The layer of each node: the length of the longest path to it from a source. Nodes on a
/// cycle (only a hand-made view can have one) are placed as if the edge closing it were
/// missing.
fn longest_path_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut children = vec![Vec::new(); n];
    for &(a, b) in edges {
        indegree[b] += 1;
        children[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut done = vec![false; n];
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indegree[v] == 0).collect();
    let mut placed = 0;
    while placed < n {
        let v = match ready.pop() {
            Some(v) => v,
            // A cycle: take the first node left, ignoring its edges from the nodes left.
            None => (0..n).find(|&v| !done[v]).unwrap_or_default(),
        };
        if done[v] {
            continue;
        }
        done[v] = true;
        placed += 1;
        for &c in &children[v] {
            if !done[c] {
                layer[c] = layer[c].max(layer[v] + 1);
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.push(c);
                }
            }
        }
    }
    layer
}

/// The index of each slot of `layer` within it, by slot (`usize::MAX` for other slots).
fn positions(layer: &[usize], slots: usize) -> Vec<usize> {
    let mut position = vec![usize::MAX; slots];
    for (i, &s) in layer.iter().enumerate() {
        position[s] = i;
    }
    position
}

/// The positions closest (in least squares) to `wanted` that keep each consecutive pair at
/// least `separation` apart, by pooling adjacent violators.
fn spread(wanted: &[f64], separation: &[f64]) -> Vec<f64> {
    // Shifting each position by the separations before it turns the constraint into "non-
    // decreasing"; the closest non-decreasing sequence is made of averaged blocks.
    let mut offset = Vec::with_capacity(wanted.len());
    let mut acc = 0.0;
    for i in 0..wanted.len() {
        if i > 0 {
            acc += separation[i - 1];
        }
        offset.push(acc);
    }
    let mut blocks: Vec<(f64, usize)> = Vec::new(); // (sum, count)
    for (w, o) in wanted.iter().zip(&offset) {
        blocks.push((w - o, 1));
        while blocks.len() > 1 {
            let (s2, c2) = blocks[blocks.len() - 1];
            let (s1, c1) = blocks[blocks.len() - 2];
            if s1 / c1 as f64 <= s2 / c2 as f64 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().expect("two blocks were there") = (s1 + s2, c1 + c2);
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (sum, count) in blocks {
        let mean = sum / count as f64;
        for _ in 0..count {
            out.push(mean + offset[out.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{NodeState, NodeView};

    fn view(n: usize, edges: &[(usize, usize)]) -> GraphView {
        GraphView {
            pipeline: "p".into(),
            nodes: (0..n)
                .map(|i| NodeView::new(&format!("n{i}"), "t", NodeState::Unknown))
                .collect(),
            edges: edges.to_vec(),
        }
    }

    #[test]
    fn layers_are_longest_paths_and_long_edges_get_dummies() {
        // 0 -> 1 -> 2, and 0 -> 2 across a layer; 3 stands alone.
        let layout = Layout::new(&view(4, &[(0, 1), (1, 2), (0, 2), (0, 2)]));
        assert_eq!(layout.layer_of[..4], [0, 1, 2, 0]);
        assert_eq!(layout.routes.len(), 3);
        assert_eq!(layout.slots.len(), 5);
        let long = layout.routes.iter().position(|r| (r.from, r.to) == (0, 2));
        assert_eq!(layout.slots[4], Slot::Dummy(long.unwrap()));
        assert_eq!(layout.routes[long.unwrap()].slots, [0, 4, 2]);
    }

    /// Crossings counted by comparing every pair of edges, as the definition says.
    fn crossings_by_pairs(layout: &Layout) -> usize {
        let mut total = 0;
        for pair in layout.layers.windows(2) {
            let top = &positions(&pair[0], layout.slots.len());
            let bottom = &positions(&pair[1], layout.slots.len());
            let edges: Vec<(usize, usize)> = pair[0]
                .iter()
                .flat_map(|&s| layout.down[s].iter().map(move |&t| (top[s], bottom[t])))
                .collect();
            for (i, a) in edges.iter().enumerate() {
                for b in &edges[i + 1..] {
                    if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                        total += 1;
                    }
                }
            }
        }
        total
    }

    #[test]
    fn crossings_match_the_count_of_crossing_pairs() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        let mut with_crossings = 0;
        for _ in 0..200 {
            let n = 2 + next(30);
            let edges: Vec<(usize, usize)> = (0..next(60))
                .map(|_| {
                    let a = next(n as u64 - 1);
                    (a, a + 1 + next((n - a - 1) as u64))
                })
                .collect();
            let mut layout = Layout::new(&view(n, &edges));
            assert_eq!(layout.crossings(), crossings_by_pairs(&layout), "{edges:?}");
            // Also in an order the sweeps did not choose.
            for layer in &mut layout.layers {
                layer.reverse();
            }
            let crossings = crossings_by_pairs(&layout);
            assert_eq!(layout.crossings(), crossings, "{edges:?}");
            with_crossings += usize::from(crossings > 0);
        }
        assert!(
            with_crossings > 100,
            "{with_crossings} cases with crossings"
        );
    }

    #[test]
    fn sweeps_remove_avoidable_crossings() {
        // Two chains, wired so that the initial order crosses them: 0 -> 3, 1 -> 2.
        let layout = Layout::new(&view(4, &[(0, 3), (1, 2)]));
        assert_eq!(layout.crossings(), 0);
    }

    #[test]
    fn a_cycle_does_not_hang_or_panic() {
        let layout = Layout::new(&view(3, &[(0, 1), (1, 2), (2, 1)]));
        assert_eq!(layout.back_edges.len(), 1);
    }

    #[test]
    fn spread_keeps_slots_apart_and_close_to_where_they_want_to_be() {
        assert_eq!(spread(&[0.0, 0.0], &[2.0]), [-1.0, 1.0]);
        assert_eq!(spread(&[0.0, 5.0], &[2.0]), [0.0, 5.0]);
    }
}
