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
    svg.finalize()
}
