//! Drawing an exported [`Graph`] as SVG with the pure-Rust `layout-rs`
//! crate: no Graphviz needed.

use chainrule::{Graph, Op};
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

/// Graphs with more nodes than this are not drawn: the picture would be
/// illegible (the DOT is still written).
pub const MAX_SVG_NODES: usize = 150;

/// Lays out `graph` left to right and returns the SVG text, or `None` if
/// the layout failed (the caller then keeps the DOT only).
pub fn render_svg(graph: &Graph) -> Option<String> {
    let g = graph.clone();
    // layout-rs is third-party code: contain a panic there, quietly.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(move || draw(&g));
    std::panic::set_hook(prev);
    r.ok()
}

fn draw(graph: &Graph) -> String {
    let dir = Orientation::LeftToRight;
    let mut vg = VisualGraph::new(dir);
    let mut handles = std::collections::HashMap::new();
    for n in &graph.nodes {
        let text = graph.node_text(n);
        let fill = if n.index == graph.output {
            "#f8d7a8"
        } else if n.op == Op::Input {
            "#cfe3f7"
        } else if n.label.is_some() {
            "#e6f2d9"
        } else {
            "#ffffff"
        };
        let shape = ShapeKind::new_box(&text);
        let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast(fill)), 6, 13);
        // Boxes grow along the flipped axis in a left-to-right graph.
        let size = get_shape_size(dir.flip(), &shape, 13, false);
        let el = Element::create(shape, look, dir.flip(), size);
        handles.insert(n.index, vg.add_node(el));
    }
    for n in &graph.nodes {
        for p in &n.parents {
            if let (Some(&a), Some(&b)) = (handles.get(p), handles.get(&n.index)) {
                vg.add_edge(Arrow::simple(""), a, b);
            }
        }
    }
    let mut svg = SVGWriter::new();
    vg.do_it(false, false, false, &mut svg);
    tighten(&svg.finalize())
}

/// layout-rs sizes the picture as if every label stood on its end (height
/// grows with the text's length); recompute the height from the boxes and
/// the edges so the picture has no empty band at the bottom.
fn tighten(svg: &str) -> String {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        tag[i..].split('"').next()?.trim().parse().ok()
    };
    let mut max_y: f64 = 0.0;
    for part in svg.split('<').skip(1) {
        if part.starts_with("rect") {
            if let (Some(y), Some(h)) = (attr(part, "y"), attr(part, "height")) {
                max_y = max_y.max(y + h);
            }
        } else if part.starts_with("path") {
            if let Some(i) = part.find(" d=\"") {
                let d = part[i + 4..].split('"').next().unwrap_or("");
                let nums: Vec<f64> = d.split([' ', ',']).filter_map(|t| t.parse().ok()).collect();
                for pair in nums.chunks(2) {
                    if let [_, y] = pair {
                        max_y = max_y.max(*y);
                    }
                }
            }
        }
    }
    let Some(start) = svg.find("<svg ") else {
        return svg.to_string();
    };
    let Some(len) = svg[start..].find('>') else {
        return svg.to_string();
    };
    let head = &svg[start..start + len];
    let (Some(w), Some(h)) = (attr(head, "width"), attr(head, "height")) else {
        return svg.to_string();
    };
    if max_y <= 0.0 || max_y + 12.0 >= h {
        return svg.to_string();
    }
    let nh = (max_y + 12.0).ceil();
    let new_head = format!(
        "<svg width=\"{w}\" height=\"{nh}\" viewBox=\"0 0 {w} {nh}\" xmlns=\"http://www.w3.org/2000/svg\""
    );
    format!("{}{}{}", &svg[..start], new_head, &svg[start + len..])
}
