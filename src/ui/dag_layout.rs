//! A layered (Sugiyama-style) layout of a build's DAG, computed on the server so the
//! page can send a finished SVG (ui.md §3.2). Deterministic: the same graph (nodes in
//! the caller's order) always gives the same coordinates.
//!
//! Steps: break cycles (defensive; builds are DAGs) → longest-path layering, sources
//! pulled next to their consumers → dummy nodes on edges that span layers → order
//! within layers by barycenter sweeps, keeping the order with the fewest crossings →
//! coordinates: layer × spacing on the rank axis, and on the cross axis each node as
//! near as possible to the mean of its neighbours without overlapping → edge routes
//! through the dummy points.

/// Node box size (ui.md §3.2).
pub const NODE_W: f32 = 180.0;
pub const NODE_H: f32 = 56.0;
/// Gap between layers, and between neighbouring boxes of one layer.
const RANK_GAP: f32 = 70.0;
const CROSS_GAP: f32 = 18.0;
/// Cross-axis room of a dummy (an edge passing through a layer).
const DUMMY_SEP: f32 = 10.0;
const MARGIN: f32 = 16.0;
const SWEEPS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Left to right: layers are columns.
    LeftRight,
    /// Top to bottom: layers are rows.
    TopBottom,
}

/// Where things go. Node positions are box centres.
#[derive(Debug, Clone)]
pub struct Layout {
    pub nodes: Vec<(f32, f32)>,
    pub edges: Vec<EdgeRoute>,
    pub width: f32,
    pub height: f32,
    pub dir: Dir,
}

/// One input edge: `points` run from the upstream box's exit to the downstream box's
/// entry, through the centres of its dummies.
#[derive(Debug, Clone)]
pub struct EdgeRoute {
    pub from: usize,
    pub to: usize,
    pub points: Vec<(f32, f32)>,
}

/// Lays out `n` nodes and `edges` (`(upstream, downstream)` indices). Duplicate edges
/// and self-loops are dropped.
pub fn layout(n: usize, edges: &[(usize, usize)], dir: Dir) -> Layout {
    let mut es: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|(a, b)| a != b && *a < n && *b < n)
        .collect();
    es.sort_unstable();
    es.dedup();
    let acyclic = break_cycles(n, &es);
    let layer = assign_layers(n, &acyclic);
    let mut g = Layered::new(n, &layer, &acyclic);
    g.order();
    let (rank_pos, cross_pos) = g.coordinates(dir);
    let to_xy = |r: f32, c: f32| match dir {
        Dir::LeftRight => (r, c),
        Dir::TopBottom => (c, r),
    };
    let nodes: Vec<(f32, f32)> = (0..n).map(|v| to_xy(rank_pos[v], cross_pos[v])).collect();
    let rank_half = rank_extent(dir) / 2.0;
    let mut routes = Vec::with_capacity(es.len());
    for (i, &(a, b)) in es.iter().enumerate() {
        let (u, v) = acyclic[i];
        let mut chain: Vec<usize> = vec![u];
        chain.extend(g.chains[i].iter().copied());
        chain.push(v);
        let mut points: Vec<(f32, f32)> = Vec::with_capacity(chain.len());
        for (k, &node) in chain.iter().enumerate() {
            let r = rank_pos[node];
            let c = cross_pos[node];
            let r = if k == 0 && node < n {
                r + rank_half
            } else if k == chain.len() - 1 && node < n {
                r - rank_half
            } else {
                r
            };
            points.push(to_xy(r, c));
        }
        if (u, v) != (a, b) {
            points.reverse();
        }
        routes.push(EdgeRoute {
            from: a,
            to: b,
            points,
        });
    }
    let (mut w, mut h) = (0f32, 0f32);
    let (half_w, half_h) = (NODE_W / 2.0, NODE_H / 2.0);
    for &(x, y) in &nodes {
        w = w.max(x + half_w);
        h = h.max(y + half_h);
    }
    for r in &routes {
        for &(x, y) in &r.points {
            w = w.max(x);
            h = h.max(y);
        }
    }
    Layout {
        nodes,
        edges: routes,
        width: w + MARGIN,
        height: h + MARGIN,
        dir,
    }
}

fn rank_extent(dir: Dir) -> f32 {
    match dir {
        Dir::LeftRight => NODE_W,
        Dir::TopBottom => NODE_H,
    }
}

fn cross_extent(dir: Dir) -> f32 {
    match dir {
        Dir::LeftRight => NODE_H,
        Dir::TopBottom => NODE_W,
    }
}

/// The edges with every back edge of a depth-first search (in node order) reversed.
fn break_cycles(n: usize, es: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out_edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (i, &(a, b)) in es.iter().enumerate() {
        out_edges[a].push((b, i));
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; n];
    let mut result = es.to_vec();
    for root in 0..n {
        if mark[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if *next < out_edges[v].len() {
                let (w, i) = out_edges[v][*next];
                *next += 1;
                match mark[w] {
                    0 => {
                        mark[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => result[i] = (w, v),
                    _ => {}
                }
            } else {
                mark[v] = 2;
                stack.pop();
            }
        }
    }
    result
}

/// Longest path from the sources, then every node that feeds others moved down to just
/// before its nearest consumer (so a shared input does not sit far left of its use).
fn assign_layers(n: usize, es: &[(usize, usize)]) -> Vec<usize> {
    let mut indeg = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in es {
        indeg[b] += 1;
        succ[a].push(b);
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&v| indeg[v] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut topo = Vec::with_capacity(n);
    let mut layer = vec![0usize; n];
    while let Some(std::cmp::Reverse(v)) = ready.pop() {
        topo.push(v);
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                ready.push(std::cmp::Reverse(w));
            }
        }
    }
    for &v in topo.iter().rev() {
        if let Some(min) = succ[v].iter().map(|&w| layer[w]).min() {
            layer[v] = min.saturating_sub(1).max(layer[v]);
        }
    }
    layer
}

/// The layered graph with dummies: real nodes are `0..n`, dummies after them.
struct Layered {
    n: usize,
    layer_of: Vec<usize>,
    layers: Vec<Vec<usize>>,
    /// Neighbours in the previous / next layer.
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
    /// Per input edge, its dummies in order.
    chains: Vec<Vec<usize>>,
}

impl Layered {
    fn new(n: usize, layer: &[usize], es: &[(usize, usize)]) -> Layered {
        let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
        let mut layer_of = layer.to_vec();
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut chains = Vec::with_capacity(es.len());
        for &(a, b) in es {
            let mut chain = Vec::new();
            let mut prev = a;
            for l in layer[a] + 1..layer[b] {
                let d = layer_of.len();
                layer_of.push(l);
                up.push(vec![prev]);
                down.push(Vec::new());
                down[prev].push(d);
                chain.push(d);
                prev = d;
            }
            down[prev].push(b);
            up[b].push(prev);
            chains.push(chain);
        }
        let mut layers = vec![Vec::new(); depth];
        for (v, &l) in layer_of.iter().enumerate() {
            layers[l].push(v);
        }
        Layered {
            n,
            layer_of,
            layers,
            up,
            down,
            chains,
        }
    }

    /// Barycenter sweeps, down then up, keeping the best order seen.
    fn order(&mut self) {
        let mut pos = vec![0usize; self.layer_of.len()];
        self.index(&mut pos);
        let mut best = self.layers.clone();
        let mut best_crossings = self.crossings(&pos);
        for sweep in 0..SWEEPS {
            let downward = sweep % 2 == 0;
            let ls: Vec<usize> = if downward {
                (1..self.layers.len()).collect()
            } else {
                (0..self.layers.len().saturating_sub(1)).rev().collect()
            };
            for l in ls {
                let neighbours = if downward { &self.up } else { &self.down };
                let mut keyed: Vec<(f64, usize, usize)> = self.layers[l]
                    .iter()
                    .map(|&v| {
                        let ns = &neighbours[v];
                        let bary = if ns.is_empty() {
                            pos[v] as f64
                        } else {
                            ns.iter().map(|&w| pos[w] as f64).sum::<f64>() / ns.len() as f64
                        };
                        (bary, pos[v], v)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                self.layers[l] = keyed.into_iter().map(|(_, _, v)| v).collect();
                for (i, &v) in self.layers[l].iter().enumerate() {
                    pos[v] = i;
                }
            }
            let c = self.crossings(&pos);
            if c < best_crossings {
                best_crossings = c;
                best = self.layers.clone();
            }
        }
        self.layers = best;
    }

    fn index(&self, pos: &mut [usize]) {
        for layer in &self.layers {
            for (i, &v) in layer.iter().enumerate() {
                pos[v] = i;
            }
        }
    }

    /// Edge crossings between neighbouring layers (inversions, counted with a Fenwick tree).
    fn crossings(&self, pos: &[usize]) -> u64 {
        let mut total = 0u64;
        for l in 0..self.layers.len().saturating_sub(1) {
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            for &v in &self.layers[l] {
                for &w in &self.down[v] {
                    pairs.push((pos[v], pos[w]));
                }
            }
            pairs.sort_unstable();
            let size = self.layers[l + 1].len() + 1;
            let mut tree = vec![0u64; size + 1];
            for (seen, &(_, b)) in pairs.iter().enumerate() {
                // Earlier edges ending at or before b do not cross this one.
                let mut i = b + 1;
                let mut not_crossing = 0;
                while i > 0 {
                    not_crossing += tree[i];
                    i &= i - 1;
                }
                total += seen as u64 - not_crossing;
                let mut i = b + 1;
                while i <= size {
                    tree[i] += 1;
                    i += i & i.wrapping_neg();
                }
            }
        }
        total
    }

    /// (rank-axis, cross-axis) centre of every node, dummies included.
    fn coordinates(&self, dir: Dir) -> (Vec<f32>, Vec<f32>) {
        let count = self.layer_of.len();
        let rank_step = rank_extent(dir) + RANK_GAP;
        let rank: Vec<f32> = self
            .layer_of
            .iter()
            .map(|&l| MARGIN + rank_extent(dir) / 2.0 + l as f32 * rank_step)
            .collect();
        let size = |v: usize| if v < self.n { cross_extent(dir) } else { 0.0 };
        let gap = |a: usize, b: usize| {
            let g = if a < self.n && b < self.n {
                CROSS_GAP
            } else {
                DUMMY_SEP
            };
            (size(a) + size(b)) / 2.0 + g
        };
        // Start packed, then pull each node towards its neighbours' mean a few times.
        let mut cross = vec![0f32; count];
        for layer in &self.layers {
            let mut at = 0.0;
            for (i, &v) in layer.iter().enumerate() {
                if i > 0 {
                    at += gap(layer[i - 1], v);
                }
                cross[v] = at;
            }
        }
        for round in 0..4 {
            let downward = round % 2 == 0;
            let ls: Vec<usize> = if downward {
                (1..self.layers.len()).collect()
            } else {
                (0..self.layers.len().saturating_sub(1)).rev().collect()
            };
            for l in ls {
                let layer = &self.layers[l];
                let neighbours = if downward { &self.up } else { &self.down };
                let desired: Vec<f32> = layer
                    .iter()
                    .map(|&v| {
                        let ns = &neighbours[v];
                        if ns.is_empty() {
                            cross[v]
                        } else {
                            ns.iter().map(|&w| cross[w]).sum::<f32>() / ns.len() as f32
                        }
                    })
                    .collect();
                let placed = place(layer, &desired, &gap);
                for (i, &v) in layer.iter().enumerate() {
                    cross[v] = placed[i];
                }
            }
        }
        let min = self
            .layers
            .iter()
            .flatten()
            .map(|&v| cross[v] - size(v) / 2.0)
            .fold(f32::INFINITY, f32::min);
        let shift = if min.is_finite() { MARGIN - min } else { 0.0 };
        for c in &mut cross {
            *c += shift;
        }
        (rank, cross)
    }
}

/// Positions on one layer as near `desired` as the order and separations allow: the
/// mean of a pass that pushes forward and one that pushes backward (both keep every
/// separation, so their mean does too).
fn place(layer: &[usize], desired: &[f32], gap: &impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let k = layer.len();
    let mut fwd = desired.to_vec();
    for i in 1..k {
        fwd[i] = fwd[i].max(fwd[i - 1] + gap(layer[i - 1], layer[i]));
    }
    let mut bwd = desired.to_vec();
    for i in (0..k.saturating_sub(1)).rev() {
        bwd[i] = bwd[i].min(bwd[i + 1] - gap(layer[i], layer[i + 1]));
    }
    fwd.iter().zip(&bwd).map(|(a, b)| (a + b) / 2.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes_overlap(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < NODE_W && (a.1 - b.1).abs() < NODE_H
    }

    #[test]
    fn diamond_edges_point_forward_and_boxes_do_not_overlap() {
        // A→B, A→C, B→D, C→D
        let l = layout(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], Dir::LeftRight);
        assert_eq!(l.edges.len(), 4);
        for e in &l.edges {
            assert!(
                l.nodes[e.to].0 > l.nodes[e.from].0,
                "edge {e:?} points backwards"
            );
            assert!(e.points.first().unwrap().0 < e.points.last().unwrap().0);
        }
        for i in 0..4 {
            for j in i + 1..4 {
                assert!(
                    !boxes_overlap(l.nodes[i], l.nodes[j]),
                    "{i} and {j} overlap"
                );
            }
        }
        // B and C share a column, A and D sit between them.
        assert_eq!(l.nodes[1].0, l.nodes[2].0);
        let mid = (l.nodes[1].1 + l.nodes[2].1) / 2.0;
        assert!((l.nodes[0].1 - mid).abs() < 1.0 && (l.nodes[3].1 - mid).abs() < 1.0);
    }

    #[test]
    fn layout_is_deterministic_and_top_bottom_swaps_axes() {
        let edges = [(0, 2), (1, 2), (2, 3), (0, 3), (4, 3)];
        let a = layout(5, &edges, Dir::LeftRight);
        let b = layout(5, &edges, Dir::LeftRight);
        assert_eq!(a.nodes, b.nodes);
        let tb = layout(5, &edges, Dir::TopBottom);
        for e in &tb.edges {
            assert!(tb.nodes[e.to].1 > tb.nodes[e.from].1);
        }
        // The long edge 0→3 gets a dummy point.
        let long = a.edges.iter().find(|e| (e.from, e.to) == (0, 3)).unwrap();
        assert_eq!(long.points.len(), 3);
    }

    #[test]
    fn cycles_do_not_hang_and_keep_their_direction() {
        let l = layout(3, &[(0, 1), (1, 2), (2, 0)], Dir::LeftRight);
        assert_eq!(l.edges.len(), 3);
        let back = l.edges.iter().find(|e| (e.from, e.to) == (2, 0)).unwrap();
        // Drawn from 2 to 0 even though the layout reversed it.
        assert!(back.points.first().unwrap().0 > back.points.last().unwrap().0);
    }

    #[test]
    fn barycenter_ordering_removes_avoidable_crossings() {
        // Two independent chains whose sources are listed crosswise.
        // 0→3, 1→2: ordering should put 3 level with 0 and 2 level with 1.
        let l = layout(4, &[(0, 3), (1, 2)], Dir::LeftRight);
        assert_eq!(l.nodes[0].1 < l.nodes[1].1, l.nodes[3].1 < l.nodes[2].1);
    }

    #[test]
    fn wide_graphs_never_overlap() {
        // A fan-in of 60 leaves into 3 joins, plus chains.
        let mut edges = Vec::new();
        for i in 0..60 {
            edges.push((i, 60 + i % 3));
        }
        edges.push((60, 63));
        edges.push((61, 63));
        edges.push((62, 63));
        let l = layout(64, &edges, Dir::LeftRight);
        for i in 0..64 {
            for j in i + 1..64 {
                assert!(
                    !boxes_overlap(l.nodes[i], l.nodes[j]),
                    "{i} and {j} overlap"
                );
            }
        }
    }
}
