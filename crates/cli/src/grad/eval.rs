//! The evaluator: runs a parsed [`Program`] on a [`Tape`] of any
//! [`Scalar`], so the tape records exactly what ran (recursion and
//! conditionals included) and one backward sweep gives every gradient.
//!
//! Numbers that do not depend on an input stay plain constants and are
//! folded, so `x * 2` records one node `* 2`, as in the seed's figures.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use chainrule::graph::fmt_number;
use chainrule::{Operand, Scalar, Tape, Var};

use super::error::{ErrorKind, LangError, Pos};
use super::lexer::KEYWORDS;
use super::parser::{BinOp, CmpOp, Expr, ExprKind, FnDef, Program, Stmt};

/// The named constants.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI), ("e", std::f64::consts::E)];

/// The built-in functions with their number of arguments (`None`: two or
/// more, for `min`, `max` and `logsumexp`).
pub const BUILTINS: &[(&str, Option<usize>)] = &[
    ("exp", Some(1)),
    ("log", Some(1)),
    ("ln", Some(1)),
    ("log2", Some(1)),
    ("log10", Some(1)),
    ("sqrt", Some(1)),
    ("cbrt", Some(1)),
    ("square", Some(1)),
    ("recip", Some(1)),
    ("sin", Some(1)),
    ("cos", Some(1)),
    ("tan", Some(1)),
    ("asin", Some(1)),
    ("acos", Some(1)),
    ("atan", Some(1)),
    ("sinh", Some(1)),
    ("cosh", Some(1)),
    ("tanh", Some(1)),
    ("asinh", Some(1)),
    ("acosh", Some(1)),
    ("atanh", Some(1)),
    ("log1p", Some(1)),
    ("expm1", Some(1)),
    ("erf", Some(1)),
    ("erfc", Some(1)),
    ("sigmoid", Some(1)),
    ("relu", Some(1)),
    ("softplus", Some(1)),
    ("abs", Some(1)),
    ("atan2", Some(2)),
    ("hypot", Some(2)),
    ("pow", Some(2)),
    ("clamp", Some(3)),
    ("min", None),
    ("max", None),
    ("logsumexp", None),
];

fn builtin_arity(name: &str) -> Option<Option<usize>> {
    BUILTINS.iter().find(|b| b.0 == name).map(|b| b.1)
}

fn constant(name: &str) -> Option<f64> {
    CONSTANTS.iter().find(|c| c.0 == name).map(|c| c.1)
}

/// Limits of one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    /// Deepest nesting of user-function calls.
    pub max_depth: usize,
    /// Most expression evaluations in all (stops runaway recursion such as
    /// a tree recursion 60 levels deep).
    pub max_steps: u64,
    /// Bytes of stack the evaluator may use below its entry; past that it
    /// stops with an error instead of overflowing.
    pub stack_budget: usize,
}

impl Default for EvalOptions {
    /// Depth 10,000, 5,000,000 steps, and 1 MiB of stack (enough for a
    /// test thread; the CLI runs on a thread sized for the depth).
    fn default() -> Self {
        EvalOptions {
            max_depth: 10_000,
            max_steps: 5_000_000,
            stack_budget: 1 << 20,
        }
    }
}

/// A number during evaluation: a constant, or a value recorded on the tape.
#[derive(Clone, Copy, Debug)]
pub enum Num<'t, T: Scalar> {
    /// Does not depend on any input.
    Const(T),
    /// Recorded on the tape.
    Var(Var<'t, T>),
}

impl<'t, T: Scalar> Num<'t, T> {
    /// The value.
    pub fn value(&self) -> T {
        match self {
            Num::Const(c) => *c,
            Num::Var(v) => v.value(),
        }
    }

    fn operand(self) -> Operand<'t, T> {
        match self {
            Num::Const(c) => Operand::Const(c),
            Num::Var(v) => Operand::Var(v),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Value<'t, T: Scalar> {
    Num(Num<'t, T>),
    Bool(bool),
}

/// The result of [`evaluate`].
#[derive(Debug)]
pub struct Evaluation<'t, T: Scalar> {
    /// The output: the value of the last statement.
    pub output: Num<'t, T>,
    /// The inputs' leaves on the tape, in the order given.
    pub inputs: Vec<(String, Var<'t, T>)>,
    /// For each tape node index, the place in the program that recorded it
    /// (`None` for inputs).
    pub origins: Vec<Option<Pos>>,
    /// For each tape node index, the program's own word for the operation
    /// that recorded it (`+`, `/`, `sqrt`; `None` for inputs), which
    /// errors name rather than the engine's (`rdiv`). Each distinct word
    /// is held once and shared.
    pub words: Vec<Option<Rc<str>>>,
}

/// Checks names and calls before running anything: every name is an
/// input, a constant, a parameter or an earlier assignment; every call
/// names a function with the right number of arguments. `inputs` are the
/// names given on the command line.
pub fn check(program: &Program, inputs: &[&str]) -> Result<(), LangError> {
    let name_err = |pos: Pos, msg: String| LangError::new(ErrorKind::Name, Some(pos), msg);
    let mut seen_inputs = HashSet::new();
    for &n in inputs {
        if !is_identifier(n) {
            return Err(LangError::new(
                ErrorKind::Input,
                None,
                format!("input name `{n}` is not a name (letters, digits and `_`, not starting with a digit)"),
            ));
        }
        if KEYWORDS.contains(&n) || constant(n).is_some() || builtin_arity(n).is_some() {
            return Err(LangError::new(
                ErrorKind::Input,
                None,
                format!("input name `{n}` is reserved (a keyword, constant or built-in function)"),
            ));
        }
        if !seen_inputs.insert(n) {
            return Err(LangError::new(
                ErrorKind::Input,
                None,
                format!("input `{n}` is given twice"),
            ));
        }
    }
    let mut fns: HashMap<&str, &FnDef> = HashMap::new();
    for f in &program.functions {
        if builtin_arity(&f.name).is_some() || constant(&f.name).is_some() {
            return Err(name_err(
                f.pos,
                format!(
                    "`{}` is a built-in name; choose another function name",
                    f.name
                ),
            ));
        }
        if fns.insert(&f.name, f).is_some() {
            return Err(name_err(
                f.pos,
                format!("function `{}` is defined twice", f.name),
            ));
        }
        let mut ps = HashSet::new();
        for p in &f.params {
            if !ps.insert(p.as_str()) {
                return Err(name_err(
                    f.pos,
                    format!("function `{}` has two parameters named `{p}`", f.name),
                ));
            }
            if constant(p).is_some() {
                return Err(name_err(
                    f.pos,
                    format!(
                        "parameter `{p}` of `{}` would hide the constant `{p}`",
                        f.name
                    ),
                ));
            }
        }
    }
    // Function bodies see their parameters, the inputs and the constants.
    for f in &program.functions {
        let scope: HashSet<&str> = f
            .params
            .iter()
            .map(String::as_str)
            .chain(inputs.iter().copied())
            .collect();
        check_expr(&f.body, &scope, &fns, Some(&f.name))?;
    }
    // The main program sees the inputs, then each name once assigned.
    let mut scope: HashSet<&str> = inputs.iter().copied().collect();
    let assigned_later: HashSet<&str> = program
        .stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Assign { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut missing: Vec<(String, Pos)> = Vec::new();
    for s in &program.stmts {
        let mut free = Vec::new();
        collect_free(s.expr(), &scope, &mut free);
        for (n, pos) in free {
            if assigned_later.contains(n.as_str()) {
                return Err(name_err(
                    pos,
                    format!("`{n}` is used before it is assigned"),
                ));
            }
            if fns.contains_key(n.as_str()) || builtin_arity(&n).is_some() {
                return Err(name_err(
                    pos,
                    format!("`{n}` is a function; call it with arguments: {n}(...)"),
                ));
            }
            if !missing.iter().any(|m| m.0 == n) {
                missing.push((n, pos));
            }
        }
        if missing.is_empty() {
            check_expr(s.expr(), &scope, &fns, None)?;
        }
        if let Stmt::Assign { name, pos, .. } = s {
            if constant(name).is_some() || builtin_arity(name).is_some() {
                return Err(name_err(
                    *pos,
                    format!("cannot assign to the built-in `{name}`"),
                ));
            }
            if fns.contains_key(name.as_str()) {
                return Err(name_err(
                    *pos,
                    format!("`{name}` is a function; choose another name"),
                ));
            }
            scope.insert(name);
        }
    }
    if let Some((first, pos)) = missing.first() {
        let names: Vec<String> = missing.iter().map(|m| format!("`{}`", m.0)).collect();
        let msg = if missing.len() == 1 {
            format!(
                "missing input {}: give its value on the command line as {first}=NUMBER",
                names[0]
            )
        } else {
            format!(
                "missing inputs {}: give their values on the command line as NAME=NUMBER",
                names.join(", ")
            )
        };
        return Err(LangError::new(ErrorKind::Input, Some(*pos), msg));
    }
    Ok(())
}

/// The `inputs` the program never reads: named by no statement before an
/// assignment hides them, nor by a function body whose parameter does
/// not, in the order given.
pub fn unused_inputs(program: &Program, inputs: &[&str]) -> Vec<String> {
    let mut named = Vec::new();
    // a statement sees the names earlier ones bound, which hide inputs
    let mut bound: HashSet<&str> = HashSet::new();
    for s in &program.stmts {
        collect_free(s.expr(), &bound, &mut named);
        if let Stmt::Assign { name, .. } = s {
            bound.insert(name);
        }
    }
    // a function's parameters hide inputs of the same names
    for f in &program.functions {
        let params: HashSet<&str> = f.params.iter().map(String::as_str).collect();
        collect_free(&f.body, &params, &mut named);
    }
    inputs
        .iter()
        .filter(|i| !named.iter().any(|(n, _)| n == *i))
        .map(|i| i.to_string())
        .collect()
}

/// Whether `s` is a valid name (and not a keyword).
pub fn is_identifier(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

fn collect_free(e: &Expr, scope: &HashSet<&str>, out: &mut Vec<(String, Pos)>) {
    match &e.kind {
        ExprKind::Num(_) => {}
        ExprKind::Name(n) => {
            if !scope.contains(n.as_str()) && constant(n).is_none() {
                out.push((n.clone(), e.pos));
            }
        }
        ExprKind::Neg(a) | ExprKind::Not(a) => collect_free(a, scope, out),
        ExprKind::Bin(_, a, b)
        | ExprKind::Cmp(_, a, b)
        | ExprKind::And(a, b)
        | ExprKind::Or(a, b) => {
            collect_free(a, scope, out);
            collect_free(b, scope, out);
        }
        ExprKind::If(c, a, b) => {
            collect_free(c, scope, out);
            collect_free(a, scope, out);
            collect_free(b, scope, out);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|a| collect_free(a, scope, out)),
    }
}

fn check_expr(
    e: &Expr,
    scope: &HashSet<&str>,
    fns: &HashMap<&str, &FnDef>,
    in_fn: Option<&str>,
) -> Result<(), LangError> {
    match &e.kind {
        ExprKind::Num(_) => Ok(()),
        ExprKind::Name(n) => {
            if scope.contains(n.as_str()) || constant(n).is_some() {
                return Ok(());
            }
            let msg = if fns.contains_key(n.as_str()) || builtin_arity(n).is_some() {
                format!("`{n}` is a function; call it with arguments: {n}(...)")
            } else if let Some(f) = in_fn {
                format!("unknown name `{n}` in function `{f}` (a function sees its parameters, the inputs and the constants)")
            } else {
                format!("unknown name `{n}`")
            };
            Err(LangError::new(ErrorKind::Name, Some(e.pos), msg))
        }
        ExprKind::Neg(a) | ExprKind::Not(a) => check_expr(a, scope, fns, in_fn),
        ExprKind::Bin(_, a, b)
        | ExprKind::Cmp(_, a, b)
        | ExprKind::And(a, b)
        | ExprKind::Or(a, b) => {
            check_expr(a, scope, fns, in_fn)?;
            check_expr(b, scope, fns, in_fn)
        }
        ExprKind::If(c, a, b) => {
            check_expr(c, scope, fns, in_fn)?;
            check_expr(a, scope, fns, in_fn)?;
            check_expr(b, scope, fns, in_fn)
        }
        ExprKind::Call(f, args) => {
            let arity_err = |want: String| {
                LangError::new(
                    ErrorKind::Arity,
                    Some(e.pos),
                    format!(
                        "`{f}` takes {want}, but {} {} given",
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    ),
                )
            };
            let plural = |n: usize| {
                if n == 1 {
                    "1 argument".to_string()
                } else {
                    format!("{n} arguments")
                }
            };
            if let Some(def) = fns.get(f.as_str()) {
                if def.params.len() != args.len() {
                    return Err(arity_err(plural(def.params.len())));
                }
            } else if let Some(ar) = builtin_arity(f) {
                match ar {
                    Some(n) if n != args.len() => return Err(arity_err(plural(n))),
                    None if args.len() < 2 => return Err(arity_err("2 or more arguments".into())),
                    _ => {}
                }
            } else {
                let hint = if scope.contains(f.as_str()) {
                    format!("`{f}` is a number, not a function")
                } else {
                    format!("unknown function `{f}`")
                };
                return Err(LangError::new(ErrorKind::Name, Some(e.pos), hint));
            }
            args.iter()
                .try_for_each(|a| check_expr(a, scope, fns, in_fn))
        }
    }
}

/// Runs `program` on `tape` with the given input values (recorded as
/// leaves named after the inputs, in order). Checks the program first (see
/// [`check`]). While the tape traces, inputs and assigned intermediates
/// carry their names.
///
/// ```
/// use chainrule::Tape;
/// use chainrule_cli::grad::{eval::{evaluate, EvalOptions, Num}, parser::parse};
/// let p = parse("fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)").unwrap();
/// let tape = Tape::new();
/// let ev = evaluate(&p, &tape, &[("x".to_string(), 2.0)], &EvalOptions::default()).unwrap();
/// let Num::Var(y) = ev.output else { panic!() };
/// assert_eq!(y.value(), 32.0);
/// assert_eq!(y.backward().wrt(ev.inputs[0].1), 80.0);
/// ```
pub fn evaluate<'t, T: Scalar>(
    program: &Program,
    tape: &'t Tape<T>,
    inputs: &[(String, T)],
    opts: &EvalOptions,
) -> Result<Evaluation<'t, T>, LangError> {
    let names: Vec<&str> = inputs.iter().map(|i| i.0.as_str()).collect();
    check(program, &names)?;
    let mut ctx = Ctx {
        tape,
        fns: program
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f))
            .collect(),
        inputs: HashMap::new(),
        labelled: HashSet::new(),
        origins: Vec::new(),
        words: Vec::new(),
        word_of: HashMap::new(),
        depth: 0,
        steps: 0,
        opts: *opts,
        stack_base: stack_address(),
    };
    let mut leaves = Vec::with_capacity(inputs.len());
    let mut main: HashMap<String, Value<'t, T>> = HashMap::new();
    for (name, v) in inputs {
        let var = tape.var(*v);
        tape.name(var, name);
        ctx.labelled.insert(var.index());
        ctx.inputs.insert(name.clone(), var);
        main.insert(name.clone(), Value::Num(Num::Var(var)));
        leaves.push((name.clone(), var));
    }
    ctx.origins = vec![None; tape.len()];
    ctx.words = vec![None; tape.len()];
    let mut last = None;
    for s in &program.stmts {
        let e = s.expr();
        let v = ctx.eval(e, &Scope::Main(&main))?;
        if let Stmt::Assign { name, .. } = s {
            if let Value::Num(Num::Var(var)) = v {
                if ctx.labelled.insert(var.index()) {
                    tape.name(var, name);
                }
            }
            main.insert(name.clone(), v);
        }
        last = Some((v, e.pos));
    }
    let output = match last {
        Some((Value::Num(n), _)) => n,
        Some((Value::Bool(_), pos)) => {
            return Err(LangError::new(
                ErrorKind::Type,
                Some(pos),
                "the program's result is a truth value; it must be a number",
            ))
        }
        None => {
            return Err(LangError::new(
                ErrorKind::Syntax,
                None,
                "the program has no output: end it with an expression",
            ))
        }
    };
    Ok(Evaluation {
        output,
        inputs: leaves,
        origins: ctx.origins,
        words: ctx.words,
    })
}

#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// What an expression in tail position comes to: a value, or a call of
/// a program function with its arguments, still to be made.
enum Tail<'p, 't, T: Scalar> {
    Value(Value<'t, T>),
    Call(&'p FnDef, Vec<Value<'t, T>>),
}

enum Scope<'a, 't, T: Scalar> {
    Main(&'a HashMap<String, Value<'t, T>>),
    Call(&'a FnDef, &'a [Value<'t, T>]),
}

struct Ctx<'p, 't, T: Scalar> {
    tape: &'t Tape<T>,
    fns: HashMap<&'p str, &'p FnDef>,
    inputs: HashMap<String, Var<'t, T>>,
    labelled: HashSet<usize>,
    origins: Vec<Option<Pos>>,
    words: Vec<Option<Rc<str>>>,
    // each word once (a node's costs a pointer, not an allocation)
    word_of: HashMap<&'p str, Rc<str>>,
    depth: usize,
    steps: u64,
    opts: EvalOptions,
    stack_base: usize,
}

fn type_err(pos: Pos, msg: &str) -> LangError {
    LangError::new(ErrorKind::Type, Some(pos), msg)
}

impl<'p, 't, T: Scalar> Ctx<'p, 't, T> {
    fn lookup(&self, name: &str, scope: &Scope<'_, 't, T>) -> Option<Value<'t, T>> {
        let found = match scope {
            Scope::Main(m) => m.get(name).copied(),
            Scope::Call(f, args) => f
                .params
                .iter()
                .position(|p| p == name)
                .map(|i| args[i])
                .or_else(|| self.inputs.get(name).map(|v| Value::Num(Num::Var(*v)))),
        };
        found.or_else(|| constant(name).map(|c| Value::Num(Num::Const(T::from_f64(c)))))
    }

    fn num(&mut self, e: &'p Expr, scope: &Scope<'_, 't, T>) -> Result<Num<'t, T>, LangError> {
        match self.eval(e, scope)? {
            Value::Num(n) => Ok(n),
            Value::Bool(_) => Err(type_err(
                e.pos,
                "expected a number, but this is a truth value (a comparison, `and`, `or` or `not`)",
            )),
        }
    }

    fn truth(&mut self, e: &'p Expr, scope: &Scope<'_, 't, T>) -> Result<bool, LangError> {
        match self.eval(e, scope)? {
            Value::Bool(b) => Ok(b),
            Value::Num(_) => Err(type_err(
                e.pos,
                "expected a truth value (a comparison such as `n == 0`), but this is a number",
            )),
        }
    }

    /// Notes where new tape nodes came from (the program's place and word
    /// for the operation). A NaN or infinite constant is recorded as a
    /// leaf here, so that a non-finite value later found on the tape is
    /// traced back to the operation that made it rather than to the first
    /// one that met an input.
    fn note(&mut self, r: Num<'t, T>, pos: Pos, what: &'p str) -> Num<'t, T> {
        let r = match r {
            Num::Const(c) if !c.is_finite() => Num::Var(self.leaf(c)),
            r => r,
        };
        if let Num::Var(_) = r {
            let n = self.tape.len();
            if self.origins.len() < n {
                self.origins.resize(n, Some(pos));
                let word = self.word_of.entry(what).or_insert_with(|| Rc::from(what));
                self.words.resize(n, Some(word.clone()));
            }
        }
        r
    }

    /// The error for a comparison (at `at`) of the NaN `nan`: placed
    /// where its first non-finite value was made, as other NaN errors are.
    fn nan_compared(&self, nan: Num<'t, T>, at: Pos) -> LangError {
        let made = match nan {
            Num::Var(v) => Some(first_bad_ancestor(self.tape, v.index()).unwrap_or(v.index())),
            Num::Const(_) => None,
        };
        let origin = made.and_then(|i| Some((self.origins.get(i).copied()??, i)));
        match origin {
            Some((pos, i)) => {
                let word = self
                    .words
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "".into());
                LangError::new(
                    ErrorKind::NonFinite,
                    Some(pos),
                    format!(
                        "a comparison (line {}, column {}) is with NaN, which no branch can \
                         follow: the first non-finite value was produced by `{word}` here",
                        at.line, at.col
                    ),
                )
            }
            None => LangError::new(
                ErrorKind::NonFinite,
                Some(at),
                "this comparison is with NaN, which no branch can follow",
            ),
        }
    }

    /// A constant promoted to a leaf, for the few operations that need a
    /// recorded value as their first operand (`2 ^ x`, `atan2(1, x)`).
    fn leaf(&self, c: T) -> Var<'t, T> {
        let v = self.tape.var(c);
        self.tape.name(v, &fmt_number(c.to_f64()));
        v
    }

    fn args(
        &mut self,
        args: &'p [Expr],
        scope: &Scope<'_, 't, T>,
    ) -> Result<Vec<Value<'t, T>>, LangError> {
        args.iter().map(|a| self.eval(a, scope)).collect()
    }

    /// A call of `def` with `vals`, at one level of nesting however many
    /// calls follow in tail position (a call that is the whole value of
    /// the body, or of a branch of its `if`s): each replaces the one
    /// before instead of nesting inside it, so that an iteration written
    /// as tail recursion runs in constant stack and is not bound by
    /// `--max-depth` (only by `--max-steps`).
    fn call(&mut self, def: &'p FnDef, vals: Vec<Value<'t, T>>) -> Result<Value<'t, T>, LangError> {
        let (mut def, mut vals) = (def, vals);
        loop {
            match self.tail(&def.body, &Scope::Call(def, &vals))? {
                Tail::Value(v) => return Ok(v),
                Tail::Call(next, args) => (def, vals) = (next, args),
            }
        }
    }

    /// `e` evaluated in tail position: its value, or the call it ends in
    /// (with its arguments evaluated) for [`Ctx::call`] to make.
    fn tail(
        &mut self,
        e: &'p Expr,
        scope: &Scope<'_, 't, T>,
    ) -> Result<Tail<'p, 't, T>, LangError> {
        // (each expression counts one step: here those `eval` does not see)
        match &e.kind {
            ExprKind::If(c, a, b) => {
                self.tick(e)?;
                let branch = if self.truth(c, scope)? { a } else { b };
                self.tail(branch, scope)
            }
            ExprKind::Call(f, args) => match self.fns.get(f.as_str()).copied() {
                Some(def) => {
                    self.tick(e)?;
                    Ok(Tail::Call(def, self.args(args, scope)?))
                }
                None => self.eval(e, scope).map(Tail::Value),
            },
            _ => self.eval(e, scope).map(Tail::Value),
        }
    }

    /// Counts one evaluation step (of `e`): an error past `--max-steps`.
    fn tick(&mut self, e: &Expr) -> Result<(), LangError> {
        self.steps += 1;
        if self.steps > self.opts.max_steps {
            return Err(LangError::new(
                ErrorKind::Limit,
                Some(e.pos),
                format!(
                    "the program ran more than {} steps (unbounded recursion?); raise the limit with --max-steps",
                    self.opts.max_steps
                ),
            ));
        }
        Ok(())
    }

    fn eval(&mut self, e: &'p Expr, scope: &Scope<'_, 't, T>) -> Result<Value<'t, T>, LangError> {
        self.tick(e)?;
        if self.stack_base.abs_diff(stack_address()) > self.opts.stack_budget {
            return Err(LangError::new(
                ErrorKind::Limit,
                Some(e.pos),
                format!(
                    "recursion too deep for the evaluator's stack at depth {}; lower --max-depth or simplify the function",
                    self.depth
                ),
            ));
        }
        Ok(match &e.kind {
            ExprKind::Num(x) => Value::Num(Num::Const(T::from_f64(*x))),
            ExprKind::Name(n) => self.lookup(n, scope).ok_or_else(|| {
                LangError::new(ErrorKind::Name, Some(e.pos), format!("unknown name `{n}`"))
            })?,
            ExprKind::Neg(a) => {
                let x = self.num(a, scope)?;
                let r = match x {
                    Num::Const(c) => Num::Const(-c),
                    Num::Var(v) => Num::Var(-v),
                };
                Value::Num(self.note(r, e.pos, "-"))
            }
            ExprKind::Not(a) => Value::Bool(!self.truth(a, scope)?),
            ExprKind::Bin(op, a, b) => {
                let x = self.num(a, scope)?;
                let y = self.num(b, scope)?;
                let r = self.arith(*op, x, y);
                let what = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => "^",
                };
                Value::Num(self.note(r, e.pos, what))
            }
            ExprKind::Cmp(op, a, b) => {
                let (x, y) = (self.num(a, scope)?, self.num(b, scope)?);
                // a NaN would quietly take the else branch
                if let Some(nan) = [x, y].into_iter().find(|n| n.value().to_f64().is_nan()) {
                    return Err(self.nan_compared(nan, e.pos));
                }
                let (x, y) = (x.value(), y.value());
                Value::Bool(match op {
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                })
            }
            ExprKind::And(a, b) => Value::Bool(self.truth(a, scope)? && self.truth(b, scope)?),
            ExprKind::Or(a, b) => Value::Bool(self.truth(a, scope)? || self.truth(b, scope)?),
            ExprKind::If(c, a, b) => {
                if self.truth(c, scope)? {
                    self.eval(a, scope)?
                } else {
                    self.eval(b, scope)?
                }
            }
            ExprKind::Call(f, args) => {
                if let Some(def) = self.fns.get(f.as_str()).copied() {
                    let vals = self.args(args, scope)?;
                    if self.depth >= self.opts.max_depth {
                        return Err(LangError::new(
                            ErrorKind::Limit,
                            Some(e.pos),
                            format!(
                                "recursion deeper than {} calls (in `{f}`); raise the limit with --max-depth",
                                self.opts.max_depth
                            ),
                        ));
                    }
                    self.depth += 1;
                    let r = self.call(def, vals);
                    self.depth -= 1;
                    r?
                } else {
                    let mut vals = Vec::with_capacity(args.len());
                    for a in args {
                        vals.push(self.num(a, scope)?);
                    }
                    let r = self.builtin(f, &vals);
                    Value::Num(self.note(r, e.pos, f))
                }
            }
        })
    }

    fn arith(&self, op: BinOp, a: Num<'t, T>, b: Num<'t, T>) -> Num<'t, T> {
        use Num::{Const as C, Var as V};
        match (op, a, b) {
            (BinOp::Add, C(x), C(y)) => C(x + y),
            (BinOp::Add, V(x), C(y)) | (BinOp::Add, C(y), V(x)) => V(x + y),
            (BinOp::Add, V(x), V(y)) => V(x + y),
            (BinOp::Sub, C(x), C(y)) => C(x - y),
            (BinOp::Sub, V(x), C(y)) => V(x - y),
            // c - v, exactly, for any scalar type: (-v) + c
            (BinOp::Sub, C(x), V(y)) => V(-y + x),
            (BinOp::Sub, V(x), V(y)) => V(x - y),
            (BinOp::Mul, C(x), C(y)) => C(x * y),
            (BinOp::Mul, V(x), C(y)) | (BinOp::Mul, C(y), V(x)) => V(x * y),
            (BinOp::Mul, V(x), V(y)) => V(x * y),
            (BinOp::Div, C(x), C(y)) => C(x / y),
            (BinOp::Div, V(x), C(y)) => V(x / y),
            (BinOp::Div, C(x), V(y)) => {
                if x == T::one() {
                    V(y.recip())
                } else {
                    V(y.recip() * x)
                }
            }
            (BinOp::Div, V(x), V(y)) => V(x / y),
            (BinOp::Pow, C(x), C(y)) => C(match small_int(y) {
                Some(n) => x.powi(n),
                None => x.powf(y),
            }),
            (BinOp::Pow, V(x), C(y)) => V(match small_int(y) {
                Some(n) => x.powi(n),
                None => x.powf(y),
            }),
            (BinOp::Pow, V(x), V(y)) => V(x.powf(y)),
            (BinOp::Pow, C(x), V(y)) => V(self.leaf(x).powf(y)),
        }
    }

    fn builtin(&self, f: &str, a: &[Num<'t, T>]) -> Num<'t, T> {
        use Num::{Const as C, Var as V};
        let un = |fv: fn(Var<'t, T>) -> Var<'t, T>, fc: fn(T) -> T| match a[0] {
            V(v) => V(fv(v)),
            C(c) => C(fc(c)),
        };
        let ln2 = || T::from_f64(std::f64::consts::LN_2);
        let ln10 = || T::from_f64(std::f64::consts::LN_10);
        match f {
            "exp" => un(|v| v.exp(), |c| c.exp()),
            "log" | "ln" => un(|v| v.ln(), |c| c.ln()),
            "log2" => match a[0] {
                V(v) => V(v.log2()),
                C(c) => C(c.ln() / ln2()),
            },
            "log10" => match a[0] {
                V(v) => V(v.log10()),
                C(c) => C(c.ln() / ln10()),
            },
            "sqrt" => un(|v| v.sqrt(), |c| c.sqrt()),
            "cbrt" => un(|v| v.cbrt(), |c| c.cbrt()),
            "square" => un(|v| v.square(), |c| c * c),
            "recip" => un(|v| v.recip(), |c| T::one() / c),
            "sin" => un(|v| v.sin(), |c| c.sin()),
            "cos" => un(|v| v.cos(), |c| c.cos()),
            "tan" => un(|v| v.tan(), |c| c.tan()),
            "asin" => un(|v| v.asin(), |c| c.asin()),
            "acos" => un(|v| v.acos(), |c| c.acos()),
            "atan" => un(|v| v.atan(), |c| c.atan()),
            "sinh" => un(|v| v.sinh(), |c| c.sinh()),
            "cosh" => un(|v| v.cosh(), |c| c.cosh()),
            "tanh" => un(|v| v.tanh(), |c| c.tanh()),
            "asinh" => un(|v| v.asinh(), |c| c.asinh()),
            "acosh" => un(|v| v.acosh(), |c| c.acosh()),
            "atanh" => un(|v| v.atanh(), |c| c.atanh()),
            "log1p" => un(|v| v.ln_1p(), |c| c.ln_1p()),
            "expm1" => un(|v| v.exp_m1(), |c| c.exp_m1()),
            "erf" => un(|v| v.erf(), |c| c.erf()),
            "erfc" => un(|v| v.erfc(), |c| c.erfc()),
            "sigmoid" => un(|v| v.sigmoid(), chainrule::sigmoid),
            "relu" => un(
                |v| v.relu(),
                |c| match c > T::zero() || c.to_f64().is_nan() {
                    true => c,
                    false => T::zero(),
                },
            ),
            "softplus" => un(
                |v| v.softplus(),
                |c| {
                    if c > T::zero() {
                        c + (-c).exp().ln_1p()
                    } else {
                        c.exp().ln_1p()
                    }
                },
            ),
            "abs" => un(|v| v.abs(), |c| c.abs()),
            "pow" => self.arith(BinOp::Pow, a[0], a[1]),
            "atan2" => match (a[0], a[1]) {
                (V(y), x) => V(y.atan2(x.operand())),
                (C(y), C(x)) => C(y.atan2(x)),
                (C(y), V(x)) => V(self.leaf(y).atan2(x)),
            },
            "hypot" => match (a[0], a[1]) {
                (V(p), q) => V(p.hypot(q.operand())),
                (C(p), C(q)) => C(p.hypot(q)),
                (C(p), V(q)) => V(q.hypot(p)),
            },
            "min" | "max" => {
                let is_min = f == "min";
                a[1..].iter().fold(a[0], |acc, &b| min_max(is_min, acc, b))
            }
            // the engine's `clamp`: max, then min, ties to the first argument
            "clamp" => min_max(true, min_max(false, a[0], a[1]), a[2]),
            "logsumexp" => {
                if a.iter().any(|n| matches!(n, V(_))) {
                    let xs: Vec<Var<'t, T>> = a
                        .iter()
                        .map(|n| match *n {
                            V(v) => v,
                            C(c) => self.leaf(c),
                        })
                        .collect();
                    V(Var::logsumexp(&xs).expect("two or more arguments"))
                } else {
                    // the engine's formula on constants, on a scratch tape
                    let scratch = Tape::<T>::with_capacity(4 * a.len());
                    let xs: Vec<Var<'_, T>> = a.iter().map(|n| scratch.var(n.value())).collect();
                    C(Var::logsumexp(&xs).expect("two or more arguments").value())
                }
            }
            _ => unreachable!("`{f}` passed the check as a built-in"),
        }
    }
}

/// `min(p, q)` or `max(p, q)` of constants or recorded values; a tie goes
/// to the first argument, as in the engine.
fn min_max<'t, T: Scalar>(is_min: bool, p: Num<'t, T>, q: Num<'t, T>) -> Num<'t, T> {
    use Num::{Const as C, Var as V};
    // a NaN wins, as in the engine
    let first_wins = |p: T, q: T| (is_min && p <= q) || (!is_min && p >= q) || p.to_f64().is_nan();
    match (p, q) {
        (V(p), q) => V(if is_min {
            p.min(q.operand())
        } else {
            p.max(q.operand())
        }),
        (C(p), C(q)) => C(if first_wins(p, q) { p } else { q }),
        (C(p), V(q)) => {
            if first_wins(p, q.value()) {
                C(p)
            } else {
                V(if is_min { q.min(p) } else { q.max(p) })
            }
        }
    }
}

/// `Some(n)` if `y` is an integer that fits an `i32` (so `x^2` records an
/// integer power, exact for negative `x`).
fn small_int<T: Scalar>(y: T) -> Option<i32> {
    let f = y.to_f64();
    (f.fract() == 0.0 && f.abs() <= i32::MAX as f64).then_some(f as i32)
}

/// Where the non-finite value of node `out` began: the first node (in
/// tape order) among those it reaches through non-finite values alone (a
/// NaN or infinity that an operation turned finite again, as `x / inf`,
/// is not the cause). Its parents are all finite, so its own operation
/// made the value (a constant's is the one that computed it: non-finite
/// constants are recorded as leaves).
pub(super) fn first_bad_ancestor<T: Scalar>(tape: &Tape<T>, out: usize) -> Option<usize> {
    let trace = tape.trace();
    let bad = |i: usize| trace.get(i).is_some_and(|e| !e.value.is_finite());
    let mut chain = vec![false; out + 1];
    chain[out] = bad(out);
    for i in (1..=out).rev() {
        if chain[i] {
            for p in tape.parents_of(i) {
                if bad(p) {
                    chain[p] = true;
                }
            }
        }
    }
    (1..=out).find(|&i| chain[i])
}
