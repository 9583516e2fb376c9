//! Graph export: the part of a traced tape that an output depends on, as a
//! [`Graph`] of nodes (operation, forward value, gradient, name) or as
//! Graphviz DOT text.
//!
//! Edges run in the direction of the forward pass, from operands to the
//! operation that consumed them, and the layout goes left to right, as in the
//! usual drawings of computational graphs. Export needs the tape's trace:
//! switch it on with [`Tape::set_tracing`] (or [`Tape::set_check_finite`])
//! before recording.

use std::fmt::Write as _;

use crate::backward::Gradients;
use crate::scalar::Scalar;
use crate::tape::{Op, Tape, Var};

/// One node of an exported [`Graph`].
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    /// Index of the node on the tape.
    pub index: usize,
    /// The operation (`Op::Input` for a leaf).
    pub op: Op,
    /// For a custom operation, its name.
    pub custom: Option<String>,
    /// The constant operand of an operation with a constant (`x * 2` keeps 2).
    pub constant: Option<f64>,
    /// The forward value.
    pub value: f64,
    /// The gradient of the output with respect to this node.
    pub grad: f64,
    /// The name given with [`Tape::name`], if any.
    pub label: Option<String>,
    /// Tape indices of the operands (an index appears twice in `x * x`).
    pub parents: Vec<usize>,
}

impl GraphNode {
    /// A short description of the operation with its constant, as drawn:
    /// `* 2`, `+ 3`, `1 / ·`, `^ 2`, `exp`, `max(·, 0.5)`, `input`.
    pub fn op_text(&self) -> String {
        let c = self.constant.map(fmt_number);
        let sym = match self.op {
            Op::Add => Some("+"),
            Op::Sub => Some("-"),
            Op::Mul => Some("*"),
            Op::Div => Some("/"),
            Op::Powi | Op::Pow => Some("^"),
            _ => None,
        };
        match (self.op, sym, c) {
            (Op::Custom, _, _) => self.custom.clone().unwrap_or_else(|| "custom".into()),
            (Op::RSub, _, Some(c)) => format!("{c} - ·"),
            (Op::RDiv, _, Some(c)) => format!("{c} / ·"),
            (_, Some(s), Some(c)) => format!("{s} {c}"),
            (_, Some(s), None) => s.to_string(),
            (op, None, Some(c)) => format!("{op}(·, {c})"),
            (op, None, None) => op.name().to_string(),
        }
    }
}

/// The nodes an output depends on, in tape order (operands before the
/// operations that use them; the output last).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The nodes, sorted by tape index.
    pub nodes: Vec<GraphNode>,
    /// Tape index of the output node.
    pub output: usize,
}

impl Graph {
    /// Collects the nodes that `output` depends on (itself included) with
    /// their values, names and the gradients `grads` of `output`.
    ///
    /// Without tracing the operations are unknown: each node then shows as
    /// an input with a NaN value.
    pub fn from_tape<'t, T: Scalar>(
        tape: &'t Tape<T>,
        output: Var<'t, T>,
        grads: &Gradients<'t, T>,
    ) -> Graph {
        let out = output.index();
        let trace = tape.trace();
        let adj = grads.as_slice();
        // Parents have smaller indices than their children, so one
        // downward pass marks everything the output depends on.
        let mut needed = vec![false; out + 1];
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); out + 1];
        needed[out] = true;
        for i in (1..=out).rev() {
            if !needed[i] {
                continue;
            }
            let ps = tape.parents_of(i);
            for &p in &ps {
                if p <= out {
                    needed[p] = true;
                }
            }
            parents[i] = ps;
        }
        let nodes = (1..=out)
            .filter(|&i| needed[i])
            .map(|i| {
                let entry = trace.get(i);
                let op = entry.map_or(Op::Input, |e| e.op);
                GraphNode {
                    index: i,
                    op,
                    custom: if op == Op::Custom {
                        tape.custom_name_of(i)
                    } else {
                        None
                    },
                    constant: entry.and_then(|e| e.constant),
                    value: entry.map_or(f64::NAN, |e| e.value),
                    grad: adj.get(i).map_or(0.0, |g| g.to_f64()),
                    label: entry.and_then(|e| e.label.clone()),
                    parents: std::mem::take(&mut parents[i]),
                }
            })
            .collect();
        Graph { nodes, output: out }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of edges (an operand used twice counts twice).
    pub fn edge_count(&self) -> usize {
        self.nodes.iter().map(|n| n.parents.len()).sum()
    }

    /// The text drawn in node `n`: its name (if any), its operation, its
    /// value and its gradient, one per line.
    pub fn node_text(&self, n: &GraphNode) -> String {
        let mut s = String::new();
        if let Some(l) = &n.label {
            s.push_str(l);
            s.push('\n');
        }
        let _ = write!(
            s,
            "{}\nvalue {}\ngrad {}",
            n.op_text(),
            fmt_number(n.value),
            fmt_number(n.grad)
        );
        s
    }

    /// Graphviz DOT text: one box per node showing name, operation, value
    /// and gradient; inputs and the output filled; edges from operands to
    /// their operations; left-to-right layout.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph chainrule {\n  rankdir=LR;\n");
        s.push_str("  node [shape=box, fontname=\"Helvetica\", fontsize=12];\n");
        for n in &self.nodes {
            let fill = if n.index == self.output {
                Some("#f8d7a8")
            } else if n.op == Op::Input {
                Some("#cfe3f7")
            } else if n.label.is_some() {
                Some("#e6f2d9")
            } else {
                None
            };
            let _ = write!(
                s,
                "  n{} [label=\"{}\"",
                n.index,
                escape(&self.node_text(n))
            );
            if let Some(f) = fill {
                let _ = write!(s, ", style=filled, fillcolor=\"{f}\"");
            }
            s.push_str("];\n");
        }
        for n in &self.nodes {
            for p in &n.parents {
                let _ = writeln!(s, "  n{p} -> n{};", n.index);
            }
        }
        s.push_str("}\n");
        s
    }
}

/// The graph of `output` as Graphviz DOT: each node (only those the output
/// depends on) shows its operation, forward value, gradient and name; edges
/// follow the forward pass.
///
/// ```
/// use chainrule::{to_dot, Tape};
/// let mut tape = Tape::new();
/// tape.set_tracing(true);
/// let x = tape.var(5.0);
/// tape.name(x, "x");
/// let w = x * 2.0;
/// tape.name(w, "w");
/// let y = (w + 3.0) / 2.0;
/// let g = y.backward();
/// let dot = to_dot(&tape, y, &g);
/// assert!(dot.starts_with("digraph"));
/// assert!(dot.contains("n1 -> n2;")); // x feeds w
/// assert!(dot.contains("w\\n* 2\\nvalue 10\\ngrad 0.5"));
/// ```
///
/// Operations and values are known only for nodes recorded while the tape
/// was tracing ([`Tape::set_tracing`], on before recording); a node
/// recorded before shows as an input with a NaN value, and a graph with
/// such an operation says so in its title.
pub fn to_dot<'t, T: Scalar>(
    tape: &'t Tape<T>,
    output: Var<'t, T>,
    grads: &Gradients<'t, T>,
) -> String {
    let dot = Graph::from_tape(tape, output, grads).to_dot();
    let traced = tape.trace();
    // an operation drawn as an input was recorded before tracing
    let untraced = (1..=output.index()).any(|i| match traced.get(i) {
        None => true,
        Some(e) => e.op == Op::Input && !tape.parents_of(i).is_empty(),
    });
    match untraced {
        false => dot,
        true => dot.replacen(
            "  rankdir=LR;\n",
            "  rankdir=LR;\n  labelloc=t;\n  label=\"some operations and values were not \
             recorded: call Tape::set_tracing(true) before recording\";\n",
            1,
        ),
    }
}

/// A number as drawn in graphs: up to six significant digits, exponent
/// notation for very large or small magnitudes.
pub fn fmt_number(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if (1e-4..1e6).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{x:.5e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{e}")
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_number(6.5), "6.5");
        assert_eq!(fmt_number(1.0), "1");
        assert_eq!(fmt_number(0.7310585786300049), "0.731059");
        assert_eq!(fmt_number(-0.19661193324148185), "-0.196612");
        assert_eq!(fmt_number(123456.7), "123457");
        assert_eq!(fmt_number(1e-7), "1e-7");
        assert_eq!(fmt_number(2.5e10), "2.5e10");
        assert_eq!(fmt_number(f64::NAN), "NaN");
        assert_eq!(fmt_number(0.0), "0");
    }

    #[test]
    fn only_what_the_output_needs() {
        let mut tape = Tape::new();
        tape.set_tracing(true);
        let (x, y) = (tape.var(2.0), tape.var(3.0));
        let _unused = y.sin();
        let f = x * x + 1.0;
        let g = f.backward();
        let graph = Graph::from_tape(&tape, f, &g);
        let idx: Vec<usize> = graph.nodes.iter().map(|n| n.index).collect();
        assert_eq!(idx, vec![x.index(), f.index() - 1, f.index()]);
        // x * x: two edges from x
        assert_eq!(graph.nodes[1].parents, vec![x.index(), x.index()]);
        assert_eq!(graph.edge_count(), 3);
        assert_eq!(graph.nodes[0].grad, 4.0);
        assert_eq!(graph.nodes[2].op_text(), "+ 1");
        let dot = graph.to_dot();
        assert_eq!(dot.matches("->").count(), 3);
        assert!(!dot.contains(&format!("n{}", y.index())));
    }

    /// A graph of operations recorded without tracing says how to get
    /// them; a traced one (with a NaN input of its own) does not.
    #[test]
    fn an_untraced_graph_says_so() {
        let note = "call Tape::set_tracing(true)";
        let tape = Tape::new();
        let x = tape.var(1.0);
        let y = (x * 2.0).sin() + x;
        assert!(to_dot(&tape, y, &y.backward()).contains(note));
        let mut tape = Tape::new();
        tape.set_tracing(true);
        let (x, n) = (tape.var(1.0), tape.var(f64::NAN));
        let y = (x * 2.0).sin() + n;
        assert!(!to_dot(&tape, y, &y.backward()).contains(note));
    }

    #[test]
    fn op_texts() {
        let mut tape = Tape::new();
        tape.set_tracing(true);
        let x = tape.var(2.0);
        let a = 1.0 / x;
        let b = 3.0 - a;
        let c = b.max(0.5);
        let d = c.powi(3);
        let e = d.exp();
        let g = e.backward();
        let graph = Graph::from_tape(&tape, e, &g);
        let texts: Vec<String> = graph.nodes.iter().map(|n| n.op_text()).collect();
        assert_eq!(
            texts,
            vec!["input", "1 / ·", "3 - ·", "max(·, 0.5)", "^ 3", "exp"]
        );
    }
}
