//! `chainrule grad PROGRAM [NAME=VALUE ...]`: evaluates a small program on
//! the engine's tape and prints its value and its gradient with respect to
//! every input, optionally with a picture of the recorded graph.
//!
//! The language: numbers, names, `+ - * /`, `^` (or `**`, right-associative
//! and tighter than unary minus), calls of the built-in functions
//! ([`eval::BUILTINS`]) and constants `pi` and `e`; statements separated by
//! `;` or line breaks, `name = expr` binding an intermediate, the last
//! statement giving the output; user functions `fn f(a, b) = expr` that may
//! recurse, with `if c then a else b`, comparisons `< <= > >= == !=`,
//! `and`, `or`, `not`. Recursion is differentiated like any other code: the
//! tape records what ran.
//!
//! ```
//! use chainrule_cli::grad::{gradient, GradOptions};
//! let r = gradient("w = x * 2; u = w + 3; y = u / 2", &[("x".into(), 5.0)],
//!                  &GradOptions::default()).unwrap();
//! assert_eq!(r.value, 6.5);
//! assert_eq!(r.gradient, vec![("x".to_string(), 1.0)]);
//! ```

use std::path::{Path, PathBuf};

use chainrule::{try_grad_hessian, Graph, Op, Scalar, Tape, TryRecord, Var};
use clap::Args;

use crate::error::{CliError, CliResult};
use crate::output::write_atomic;

pub mod error;
pub mod eval;
pub mod lexer;
pub mod parser;
pub mod svg;

pub use error::{ErrorKind, LangError, Pos};
use eval::{evaluate, EvalOptions, Num};

/// Arguments of `chainrule grad`.
#[derive(Debug, Args)]
#[command(after_help = "The language:\n  \
numbers 2 0.5 1e-3, names, + - * /, ^ or ** (right-associative; -x^2 is -(x^2)), parentheses\n  \
(the typeset signs of pasted formulas read as theirs: − × · ÷ ≤ ≥ ≠)\n  \
functions: exp expm1 log ln log1p log2 log10 sqrt cbrt square recip sin cos tan asin acos\n             \
atan atan2 sinh cosh tanh asinh acosh atanh erf erfc sigmoid relu softplus abs hypot\n             \
pow(x, y) \
min(a, b, ...) max(a, b, ...) logsumexp(a, b, ...) clamp(x, lo, hi)\n  \
constants: pi e\n  \
statements separated by ; or new lines; name = expr binds an intermediate; the last is the output\n  \
fn f(a, b) = expr defines a function (it may recurse; it sees its parameters and the inputs)\n  \
if c then a else b, comparisons < <= > >= == !=, and, or, not; # starts a comment\n\n\
Conventions:\n  \
pi and e are constants, not input names; an input the program never uses gets a warning\n  \
at a tie, min and max pass the whole gradient to their first argument, and a NaN argument\n  \
makes them NaN; clamp is min(max(x, lo), hi) (so a tie goes to x, and lo > hi gives hi);\n  \
abs has derivative 0 at 0\n  \
a NaN or infinity on the output's path, in a value or a derivative, is an error naming the\n  \
operation (x^y at x = 0, y = 0: its derivative in y is -inf), and so are a comparison with\n  \
a NaN (if log(x) > 0 at x = -1) and an infinite derivative that a zero gradient reaches\n  \
(sqrt(x)^2 at x = 0: the chain rule cannot decide 0 × inf) unless the zero is the branch\n  \
that min, max or relu did not take, or abs or hypot at its kink (max(x, sqrt(x) - 5) at 0\n  \
has gradient 1)\n  \
an expression nests at most 200 levels (the whole expression is one; each parenthesis, call,\n  \
unary minus or ^ of a right-nested chain adds one), and a chain of + - * / at most 1,500 terms:\n  \
bind parts to names to go further\n\n\
Examples:\n  chainrule grad \"w = x * 2; u = w + 3; y = u / 2\" x=5\n  \
chainrule grad \"fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)\" x=2 --json --svg p.svg")]
pub struct GradArgs {
    /// The program, or @FILE to read it from a file.
    #[arg(allow_hyphen_values = true)]
    pub program: String,
    /// Input values as NAME=VALUE, one per input of the program.
    #[arg(value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Print one JSON object {"value": .., "gradient": {name: ..}}; an
    /// error is {"error": .., "path": ..}, with "line" and "column" (from
    /// 1) where the program is wrong at a place.
    #[arg(long)]
    pub json: bool,
    /// Write the recorded graph as Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Draw the recorded graph as SVG to FILE (no Graphviz needed); a
    /// graph of more than 150 nodes is not drawn (a warning; use --dot).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Deepest nesting of function calls (recursion) allowed. A call in
    /// tail position (the whole value of a function's body or of a branch
    /// of its `if`s, as `f(s * a, n - 1)` in an iteration) replaces its
    /// caller instead of nesting, so an iteration written that way is
    /// bound by --max-steps only.
    #[arg(long, default_value_t = 10_000)]
    pub max_depth: usize,
    /// Most evaluation steps allowed (stops runaway recursion).
    #[arg(long, default_value_t = 5_000_000)]
    pub max_steps: u64,
    /// Also print the Hessian of the output with respect to the inputs
    /// (rows and columns in the order the inputs were named; with --json,
    /// a "hessian" key). Computed forward-over-reverse on a tape of dual
    /// numbers, exact to rounding.
    #[arg(long)]
    pub hessian: bool,
}

/// Settings of [`gradient`].
#[derive(Clone, Copy, Debug)]
pub struct GradOptions {
    /// Deepest nesting of user-function calls.
    pub max_depth: usize,
    /// Most evaluation steps.
    pub max_steps: u64,
    /// Whether to export the graph.
    pub graph: bool,
    /// Whether to compute the Hessian too.
    pub hessian: bool,
}

impl Default for GradOptions {
    /// Depth 10,000, 5,000,000 steps, no graph.
    fn default() -> Self {
        GradOptions {
            max_depth: 10_000,
            max_steps: 5_000_000,
            graph: false,
            hessian: false,
        }
    }
}

/// What [`gradient`] computed.
#[derive(Clone, Debug)]
pub struct GradResult {
    /// The output's value.
    pub value: f64,
    /// ∂output/∂input for each input, in the order given.
    pub gradient: Vec<(String, f64)>,
    /// The recorded graph, if asked for.
    pub graph: Option<Graph>,
    /// ∂²output/∂input_i∂input_j, if asked for, in the inputs' order.
    pub hessian: Option<Vec<Vec<f64>>>,
    /// The inputs whose names the program never mentions (a misspelt
    /// input gets a derivative of 0 without a word otherwise).
    pub unused: Vec<String>,
}

/// Stack bytes assumed per level of expression or call while sizing the
/// evaluator's thread (generous: unoptimised builds use large frames).
const FRAME_BYTES: usize = 4096;
const MIN_STACK: usize = 64 << 20;
const MAX_STACK: usize = 4 << 30;

/// Parses and evaluates `src` at `inputs` (each name once), and returns the
/// value and the gradient. Runs the evaluator on a thread whose stack is
/// sized for `opts.max_depth`, so deep recursion ends with an error, never a
/// stack overflow. A NaN or infinite value or gradient is an error naming
/// the first operation that produced one, and where in the program.
pub fn gradient(
    src: &str,
    inputs: &[(String, f64)],
    opts: &GradOptions,
) -> Result<GradResult, LangError> {
    let program = parser::parse(src)?;
    let names: Vec<&str> = inputs.iter().map(|i| i.0.as_str()).collect();
    eval::check(&program, &names)?;
    let unused = eval::unused_inputs(&program, &names);
    let fn_height = program
        .functions
        .iter()
        .map(|f| f.body.height as usize)
        .max()
        .unwrap_or(0);
    let main_height = program
        .stmts
        .iter()
        .map(|s| s.expr().height as usize)
        .max()
        .unwrap_or(0);
    let levels = main_height.saturating_add(
        opts.max_depth
            .saturating_add(1)
            .saturating_mul(fn_height + 2),
    );
    let stack = levels
        .saturating_mul(FRAME_BYTES)
        .saturating_add(MIN_STACK)
        .min(MAX_STACK);
    let eval_opts = EvalOptions {
        max_depth: opts.max_depth,
        max_steps: opts.max_steps,
        stack_budget: stack - (16 << 20),
    };
    let inputs = inputs.to_vec();
    let want_graph = opts.graph;
    let want_hessian = opts.hessian;
    let handle = std::thread::Builder::new()
        .name("chainrule-grad".into())
        .stack_size(stack)
        .spawn(move || {
            let mut r = run_on_tape(&program, &inputs, &eval_opts, want_graph)?;
            r.unused = unused;
            if want_hessian {
                r.hessian = Some(hessian_of(&program, &inputs, &eval_opts)?);
            }
            Ok(r)
        })
        .map_err(|e| {
            LangError::new(
                ErrorKind::Limit,
                None,
                format!(
                    "cannot start the evaluator with a {} MiB stack ({e}); lower --max-depth",
                    stack >> 20
                ),
            )
        })?;
    handle.join().unwrap_or_else(|_| {
        Err(LangError::new(
            ErrorKind::Limit,
            None,
            "internal error: the evaluator stopped unexpectedly",
        ))
    })
}

fn run_on_tape(
    program: &parser::Program,
    inputs: &[(String, f64)],
    opts: &EvalOptions,
    want_graph: bool,
) -> Result<GradResult, LangError> {
    let mut tape = Tape::new();
    tape.set_check_finite(true);
    let ev = evaluate(program, &tape, inputs, opts)?;
    let out = match ev.output {
        Num::Var(v) => v,
        Num::Const(c) => {
            // (a NaN or infinite constant is a leaf already: the check
            // below finds what made it)
            debug_assert!(c.is_finite());
            // The output depends on no input: one leaf shows it.
            let leaf = tape.var(c);
            tape.name(leaf, "constant output");
            leaf
        }
    };
    if !out.value().is_finite() {
        let node = eval::first_bad_ancestor(&tape, out.index()).unwrap_or(out.index());
        let op = word(&ev, &tape, node);
        let pos = ev.origins.get(node).copied().flatten();
        return Err(LangError::new(
            ErrorKind::NonFinite,
            pos,
            format!(
                "the result is {}: the first non-finite value was produced by `{op}` here",
                out.value()
            ),
        ));
    }
    let (grads, backward_bad) = match out.try_backward() {
        Ok(g) => (g, None),
        Err(nf) if nf.in_backward => (out.backward(), Some(nf)),
        // A NaN or infinity on the output's path that did not reach its
        // value (`exp(log(0))` is 0): harmless unless a gradient turns out
        // non-finite below. (One off the path is not reported.)
        Err(_) => (out.backward(), None),
    };
    let gradient: Vec<(String, f64)> = ev
        .inputs
        .iter()
        .map(|(n, v)| (n.clone(), grads.wrt(*v)))
        .collect();
    // 0 × inf: every gradient may be finite, and wrong (`sqrt(x)^2` at 0
    // would say 0, its derivative being 1)
    if let Some(nf) = backward_bad.as_ref().filter(|nf| nf.zero_adjoint) {
        let pos = ev.origins.get(nf.node).copied().flatten();
        return Err(LangError::new(
            ErrorKind::NonFinite,
            pos,
            format!(
                "the gradient is indeterminate: the derivative of `{}` here is {} where the \
                 gradient reaching it is 0, and the chain rule cannot decide 0 × {} (it is \
                 0 for x*sqrt(x) at 0, 1 for sqrt(x)^2): write the expression another way, or \
                 take a point off this one",
                word(&ev, &tape, nf.node),
                nf.value,
                nf.value
            ),
        ));
    }
    if let Some((name, g)) = gradient.iter().find(|(_, g)| !g.is_finite()) {
        let culprit = match &backward_bad {
            Some(nf) => {
                let op = word(&ev, &tape, nf.node);
                // a^b's partial in b is a^b·ln a: no real value at a < 0
                // (where a^b is real only at whole b, so not smooth in b)
                let power = match op.as_str() {
                    "^" | "**" | "pow" => {
                        " (a^b's derivatives are b·a^(b−1) in the base, infinite at a = 0 for \
                         b < 1, and a^b·ln a in the exponent, which has no real value for a \
                         base a ≤ 0: with a negative base, give the power a constant exponent)"
                    }
                    _ => "",
                };
                Some((
                    nf.node,
                    format!("first produced by the derivative of `{op}` here{power}"),
                ))
            }
            None => {
                // Every product was finite: a sum of gradients overflowed.
                // The highest node with a non-finite gradient is where.
                let adj = grads.as_slice();
                (1..adj.len())
                    .rev()
                    .find(|&i| !adj[i].is_finite())
                    .map(|i| {
                        (
                            i,
                            format!(
                                "it overflowed while adding up the gradients that reach `{}` \
                                 here",
                                word(&ev, &tape, i)
                            ),
                        )
                    })
            }
        };
        let (node, why) = culprit.unwrap_or((out.index(), "cause unknown here".into()));
        let pos = ev.origins.get(node).copied().flatten();
        return Err(LangError::new(
            ErrorKind::NonFinite,
            pos,
            format!("the gradient with respect to `{name}` is {g}: {why}"),
        ));
    }
    let graph = want_graph.then(|| Graph::from_tape(&tape, out, &grads));
    Ok(GradResult {
        value: out.value(),
        gradient,
        graph,
        hessian: None,
        unused: Vec::new(),
    })
}

/// The program as a function of its inputs, for the engine's second-order
/// helpers: it records its own leaves (named, in the order given), on a
/// tape of any scalar, so a tape of dual numbers gives Hessian columns.
struct Program<'a> {
    program: &'a parser::Program,
    names: Vec<String>,
    opts: EvalOptions,
}

impl TryRecord for Program<'_> {
    type Error = LangError;
    fn try_record<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[S],
    ) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), LangError> {
        let ins: Vec<(String, S)> = self.names.iter().cloned().zip(x.iter().copied()).collect();
        let ev = evaluate(self.program, tape, &ins, &self.opts)?;
        let y = match ev.output {
            Num::Var(v) => v,
            Num::Const(c) => tape.var(c),
        };
        Ok((ev.inputs.into_iter().map(|(_, v)| v).collect(), y))
    }
}

/// The dense Hessian of the program at `inputs`, forward over reverse
/// (one sweep per eight inputs). Non-finite entries are an error naming them.
fn hessian_of(
    program: &parser::Program,
    inputs: &[(String, f64)],
    opts: &EvalOptions,
) -> Result<Vec<Vec<f64>>, LangError> {
    let f = Program {
        program,
        names: inputs.iter().map(|i| i.0.clone()).collect(),
        opts: *opts,
    };
    let x: Vec<f64> = inputs.iter().map(|i| i.1).collect();
    let h = try_grad_hessian(&f, &x)?.hessian;
    for (i, row) in h.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if !v.is_finite() {
                let msg = format!(
                    "the second derivative with respect to `{}` and `{}` is {v}",
                    inputs[i].0, inputs[j].0
                );
                let (pos, msg) = match second_order_cause(program, inputs, opts, j) {
                    Some((pos, word)) => {
                        (Some(pos), format!("{msg}: first produced by `{word}` here"))
                    }
                    None => (None, msg),
                };
                return Err(LangError::new(ErrorKind::NonFinite, pos, msg));
            }
        }
    }
    Ok(h)
}

/// Where a non-finite second derivative in the direction of input `dir`
/// began: the program recorded again on a checked tape of dual numbers
/// seeded with that input's unit direction, whose first non-finite value
/// (a derivative carried forward, as sqrt's at 0) or gradient is placed
/// as first-order errors are. `None` when that run finds none.
fn second_order_cause(
    program: &parser::Program,
    inputs: &[(String, f64)],
    opts: &EvalOptions,
    dir: usize,
) -> Option<(Pos, String)> {
    use chainrule::Dual;
    let mut tape = Tape::<Dual>::default();
    tape.set_check_finite(true);
    let seeded: Vec<(String, Dual)> = inputs
        .iter()
        .enumerate()
        .map(|(k, (n, v))| (n.clone(), Dual::new(*v, f64::from(u8::from(k == dir)))))
        .collect();
    let ev = evaluate(program, &tape, &seeded, opts).ok()?;
    let Num::Var(out) = ev.output else {
        return None;
    };
    let node = match Scalar::is_finite(out.value()) {
        false => eval::first_bad_ancestor(&tape, out.index()).unwrap_or(out.index()),
        true => out.try_backward().err()?.node,
    };
    let pos = ev.origins.get(node).copied().flatten()?;
    let word = ev.words.get(node).cloned().flatten()?;
    Some((pos, word.to_string()))
}

/// The program's word for node `i`'s operation (`/`, `sqrt`), else the
/// engine's name for it.
fn word(ev: &eval::Evaluation<'_, f64>, tape: &Tape, i: usize) -> String {
    match ev.words.get(i).cloned().flatten() {
        Some(w) => w.to_string(),
        None => op_name(tape, i),
    }
}

fn op_name(tape: &Tape, i: usize) -> String {
    match tape.trace().get(i).map(|e| e.op) {
        Some(Op::Custom) => tape.custom_name_of(i).unwrap_or_else(|| "custom".into()),
        Some(op) => op.name().to_string(),
        None => "?".into(),
    }
}

/// Parses `NAME=VALUE` arguments: names valid and given once, values
/// finite numbers.
pub fn parse_inputs(args: &[String]) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = Vec::with_capacity(args.len());
    for a in args {
        let Some((name, value)) = a.split_once('=') else {
            return Err(format!(
                "input `{a}` is not of the form NAME=VALUE (for example x=5)"
            ));
        };
        let name = name.trim();
        if lexer::KEYWORDS.contains(&name) {
            return Err(format!(
                "input `{a}`: `{name}` is reserved (a keyword of the language), not a name for \
                 an input"
            ));
        }
        if !eval::is_identifier(name) {
            return Err(format!(
                "input `{a}`: `{name}` is not a name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("input `{a}`: `{value}` is not a number"))?;
        if !v.is_finite() {
            return Err(format!("input `{a}`: the value must be a finite number"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("input `{name}` is given twice"));
        }
        out.push((name.to_string(), v));
    }
    Ok(out)
}

/// A number in full precision, as short as round-trips: `6.5`, `1`,
/// `1e-20`.
pub fn fmt_full(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// The one-line JSON object of `--json`: `{"value":..,"gradient":{..}}`
/// with the inputs in the order given, and `"warnings"` only when
/// `warnings` holds any.
pub fn to_json(r: &GradResult, warnings: &[String]) -> String {
    let mut s = format!("{{\"value\":{},\"gradient\":{{", json_num(r.value));
    for (i, (n, g)) in r.gradient.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(n).unwrap_or_default());
        s.push(':');
        s.push_str(&json_num(*g));
    }
    s.push('}');
    if let Some(h) = &r.hessian {
        s.push_str(",\"hessian\":[");
        for (i, row) in h.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('[');
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                s.push_str(&json_num(*v));
            }
            s.push(']');
        }
        s.push(']');
    }
    // (only when there are: the object is otherwise exactly
    // {"value", "gradient"}, as programs compare it)
    if !warnings.is_empty() {
        s.push_str(",\"warnings\":");
        s.push_str(&serde_json::to_string(warnings).unwrap_or_default());
    }
    s.push('}');
    s
}

/// The warning about an input the program never uses.
fn unused_warning(name: &str) -> String {
    format!("the program never uses input `{name}` (its derivative is 0)")
}

fn json_num(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| "null".into())
}

/// Runs `chainrule grad`.
pub fn run(args: GradArgs) -> CliResult {
    let (src, file) = match args.program.strip_prefix('@') {
        Some("") => {
            return Err(CliError::usage(
                "`@` needs a file name: @FILE reads the program from FILE",
            ))
        }
        Some(path) => {
            let p = PathBuf::from(path);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| CliError::file(&p, format!("cannot read the program: {e}")))?;
            (text, Some(path.to_string()))
        }
        None => (args.program.clone(), None),
    };
    let inputs = parse_inputs(&args.inputs).map_err(CliError::usage)?;
    check_picture_paths(
        file.as_deref().map(Path::new),
        args.dot.as_deref(),
        args.svg.as_deref(),
    )?;
    let opts = GradOptions {
        max_depth: args.max_depth,
        max_steps: args.max_steps,
        graph: args.dot.is_some() || args.svg.is_some(),
        hessian: args.hessian,
    };
    let r = gradient(&src, &inputs, &opts).map_err(|e| match (e.pos, &file) {
        (Some(p), _) => CliError::Program {
            message: e.render(&src, file.as_deref()),
            line: p.line,
            column: p.col,
            path: file.as_deref().map(PathBuf::from),
        },
        // A command-line input's error is not the file's; `File` puts the
        // path in front of the message itself.
        (None, Some(f)) if e.kind != ErrorKind::Input => {
            CliError::file(Path::new(f), e.render(&src, None))
        }
        (None, _) => CliError::usage(e.render(&src, None)),
    })?;
    for n in &r.unused {
        crate::output::warn(unused_warning(n));
    }
    if let Some(graph) = &r.graph {
        write_pictures(graph, args.dot.as_deref(), args.svg.as_deref())?;
    }
    if args.json {
        println!("{}", to_json(&r, &crate::output::warnings()));
    } else {
        println!("value = {}", fmt_full(r.value));
        for (n, g) in &r.gradient {
            println!("d/d{n} = {}", fmt_full(*g));
        }
        if let Some(h) = &r.hessian {
            println!("hessian (rows and columns: {}):", {
                let names: Vec<&str> = r.gradient.iter().map(|g| g.0.as_str()).collect();
                names.join(", ")
            });
            for row in h {
                let cells: Vec<String> = row.iter().map(|v| fmt_full(*v)).collect();
                println!("  [{}]", cells.join(", "));
            }
        }
    }
    Ok(())
}

/// Refuses `--dot` and `--svg` paths that would overwrite the program
/// file or each other, before anything is evaluated or written.
fn check_picture_paths(
    program: Option<&Path>,
    dot: Option<&Path>,
    svg: Option<&Path>,
) -> CliResult {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    for (flag, p) in [("--dot", dot), ("--svg", svg)] {
        if let (Some(p), Some(prog)) = (p, program) {
            if same(p, prog) {
                return Err(CliError::file(
                    p,
                    format!("{flag} names the program file itself; choose another file"),
                ));
            }
        }
    }
    if let (Some(d), Some(s)) = (dot, svg) {
        if same(d, s) {
            return Err(CliError::file(
                d,
                "--dot and --svg name the same file; give each its own",
            ));
        }
    }
    Ok(())
}

/// Writes the pictures asked for. A graph too large to draw (or that
/// cannot be laid out) gets no SVG but a warning that says why and points
/// at `--dot`: the value and gradient are the result and are still
/// printed, and the DOT asked for is still written.
fn write_pictures(graph: &Graph, dot: Option<&Path>, svg_path: Option<&Path>) -> CliResult {
    let svg_text = svg_path.and_then(|p| {
        let too_large = graph.len() > svg::MAX_SVG_NODES;
        let text = (!too_large).then(|| svg::render_svg(graph)).flatten();
        if text.is_none() {
            let why = if too_large {
                format!(
                    "the graph has {} nodes, too many to draw legibly (limit {})",
                    graph.len(),
                    svg::MAX_SVG_NODES
                )
            } else {
                "the graph could not be laid out".to_string()
            };
            // (an earlier run's picture there is not this graph's)
            let earlier = if p.exists() {
                " (the file there is an earlier one, left as it was)"
            } else {
                ""
            };
            crate::output::warn(format!(
                "no SVG written to {}{earlier}: {why}; --dot FILE writes the graph as Graphviz \
                 DOT instead",
                p.display()
            ));
        }
        text
    });
    if let Some(p) = dot {
        write_atomic(p, graph.to_dot().as_bytes())?;
    }
    if let (Some(p), Some(text)) = (svg_path, svg_text) {
        write_atomic(p, text.as_bytes())?;
    }
    Ok(())
}
