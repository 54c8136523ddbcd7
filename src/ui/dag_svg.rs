//! The build graph as inline SVG (ui.md §3.2): each node a link to its task page, with
//! `class="node st-<status>"` and `data-task` so the live-update script can recolour it;
//! edges into running nodes are animated by CSS only.

use std::fmt::{self, Write};

use maud::{html, Markup};

use super::dag_layout::{layout, Dir, NODE_H, NODE_W};

pub struct SvgNode {
    pub task_id: String,
    pub name: String,
    pub status: String,
    pub href: String,
    /// The status was decided in another build (↗).
    pub elsewhere: bool,
    pub waiting_for_lock: bool,
    pub has_assets: bool,
    /// Asked for by `?highlight=` (the explorer's and task page's "show in graph").
    pub highlighted: bool,
}

/// Most characters of a name that fit a box; longer names end in "…".
const NAME_CHARS: usize = 22;

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// A coordinate with one decimal (`12.3`, `-0.5`), from integer tenths: `{:.1}` falls
/// back to exact big-number formatting on ties, which cost a 2 000-node page ~10 % of
/// its time. Ties round away from zero (a twentieth of a pixel either way).
struct Tenths(f32);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = (f64::from(self.0) * 10.0).round() as i64;
        let (sign, t) = (if t < 0 { "-" } else { "" }, t.unsigned_abs());
        write!(f, "{sign}{}.{}", t / 10, t % 10)
    }
}

fn path(points: &[(f32, f32)], dir: Dir) -> String {
    let mut d = String::new();
    let Some(&(x0, y0)) = points.first() else {
        return d;
    };
    // Writing to a String cannot fail.
    let _ = write!(d, "M{},{}", Tenths(x0), Tenths(y0));
    for w in points.windows(2) {
        let ((ax, ay), (bx, by)) = (w[0], w[1]);
        let (c1, c2) = match dir {
            Dir::LeftRight => {
                let dx = (bx - ax) / 2.0;
                ((ax + dx, ay), (bx - dx, by))
            }
            Dir::TopBottom => {
                let dy = (by - ay) / 2.0;
                ((ax, ay + dy), (bx, by - dy))
            }
        };
        let _ = write!(
            d,
            " C{},{} {},{} {},{}",
            Tenths(c1.0),
            Tenths(c1.1),
            Tenths(c2.0),
            Tenths(c2.1),
            Tenths(bx),
            Tenths(by)
        );
    }
    d
}

/// Lays out and draws the graph. `edges` are `(upstream, downstream)` node indices.
pub fn render(nodes: &[SvgNode], edges: &[(usize, usize)], dir: Dir, title: &str) -> Markup {
    let l = layout(nodes.len(), edges, dir);
    let (w, h) = (l.width.max(NODE_W + 32.0), l.height.max(NODE_H + 32.0));
    html! {
        // A group, not role="img": an image's content is hidden from assistive
        // technology, and the nodes are links to the task pages.
        svg.dag xmlns="http://www.w3.org/2000/svg" role="group" aria-labelledby="dag-title"
            width=(format!("{w:.0}")) height=(format!("{h:.0}")) viewBox=(format!("0 0 {w:.0} {h:.0}"))
            data-dir=(match dir { Dir::LeftRight => "lr", Dir::TopBottom => "tb" }) {
            title #dag-title { (title) }
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0,0 L10,5 L0,10 z" class="arrow";
                }
            }
            g.edges {
                @for e in &l.edges {
                    path class=(if nodes[e.to].status == "running" { "edge into-running" } else { "edge" })
                        d=(path(&e.points, dir)) marker-end="url(#arrow)"
                        data-from=(nodes[e.from].task_id) data-to=(nodes[e.to].task_id) {}
                }
            }
            g.nodes {
                @for (i, n) in nodes.iter().enumerate() {
                    @let (cx, cy) = l.nodes[i];
                    a.hl[n.highlighted] href=(n.href) aria-current=[n.highlighted.then_some("true")] {
                        g class=(format!("node st-{}", n.status)) data-task=(n.task_id)
                            transform=(format!("translate({},{})", Tenths(cx - NODE_W / 2.0), Tenths(cy - NODE_H / 2.0))) {
                            title { (n.name) " · " (n.task_id) " · " (n.status) }
                            rect width=(NODE_W) height=(NODE_H) rx="8" {}
                            rect.stripe width="5" height=(NODE_H) rx="2" {}
                            text.nm x="14" y="23" { (ellipsis(&n.name, NAME_CHARS)) }
                            text.sub x="14" y="43" {
                                tspan.icon { (super::layout::status_icon(&n.status)) }
                                " " tspan.word { (n.status.replace('_', " ")) }
                                @if n.elsewhere { " ↗" }
                                @if n.waiting_for_lock { " 🔒" }
                                " · " (super::layout::short(&n.task_id))
                            }
                            @if n.has_assets { circle.asset cx=(NODE_W - 12.0) cy="12" r="4" {} }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tenths;

    #[test]
    fn tenths_agree_with_one_decimal_formatting_except_on_ties() {
        let mut compared = 0;
        for i in -20_000..20_000 {
            let x = i as f32 * 0.37;
            let scaled = f64::from(x) * 10.0;
            if (scaled - scaled.trunc()).abs() == 0.5 {
                continue;
            }
            assert_eq!(Tenths(x).to_string(), format!("{x:.1}"), "{x}");
            compared += 1;
        }
        assert!(compared > 39_000);
        // Ties round away from zero.
        assert_eq!(Tenths(0.25).to_string(), "0.3");
        assert_eq!(Tenths(-0.25).to_string(), "-0.3");
        assert_eq!(Tenths(1234.5).to_string(), "1234.5");
        assert_eq!(Tenths(-0.04).to_string(), "0.0");
    }
}
