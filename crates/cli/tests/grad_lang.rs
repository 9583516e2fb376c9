//! The gradient language through its library API: every built-in against
//! finite differences, recursion, conditionals, and random programs whose
//! value and gradient must agree with the same expression built directly
//! with `Var` operations and with `gradcheck`.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};
use chainrule_cli::grad::eval::{evaluate, EvalOptions, Num, BUILTINS};
use chainrule_cli::grad::parser::parse;
use chainrule_cli::grad::{gradient, ErrorKind, GradOptions, GradResult};
use proptest::prelude::*;

fn run(src: &str, inputs: &[(&str, f64)]) -> GradResult {
    let inputs: Vec<(String, f64)> = inputs.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    gradient(src, &inputs, &GradOptions::default()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn err(src: &str, inputs: &[(&str, f64)]) -> ErrorKind {
    let inputs: Vec<(String, f64)> = inputs.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    gradient(src, &inputs, &GradOptions::default())
        .expect_err(src)
        .kind
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn recursion_and_loops_are_differentiated() {
    let r = run(
        "fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)",
        &[("x", 2.0)],
    );
    assert_eq!((r.value, r.gradient[0].1), (32.0, 80.0));
    // compositing recursion of the seed notes §5: C = Σ c_i α_i T_i
    let src = "fn comp(c, a, i, t) = if i == 0 then 0 else c * a * t + comp(c * 0.5, a, i - 1, t * (1 - a)); comp(c, a, 3, 1)";
    let r = run(src, &[("c", 0.8), ("a", 0.3)]);
    let f = |c: f64, a: f64| {
        let (mut s, mut t, mut c) = (0.0, 1.0, c);
        for _ in 0..3 {
            s += c * a * t;
            t *= 1.0 - a;
            c *= 0.5;
        }
        s
    };
    assert!(close(r.value, f(0.8, 0.3), 1e-15));
    let h = 1e-6;
    let dc = (f(0.8 + h, 0.3) - f(0.8 - h, 0.3)) / (2.0 * h);
    let da = (f(0.8, 0.3 + h) - f(0.8, 0.3 - h)) / (2.0 * h);
    assert!(close(r.gradient[0].1, dc, 1e-8));
    assert!(close(r.gradient[1].1, da, 1e-8));
    // mutual recursion, and a branch that depends on the input's value
    let src = "fn even(n) = if n == 0 then 1 else odd(n - 1)
fn odd(n) = if n == 0 then 0 else even(n - 1)
fn f(x) = if x > 0 and not x > 10 then x * x else -x
f(x) * even(4) + odd(3) * x";
    let r = run(src, &[("x", 3.0)]);
    assert_eq!((r.value, r.gradient[0].1), (12.0, 7.0));
    let r = run(src, &[("x", -3.0)]);
    assert_eq!((r.value, r.gradient[0].1), (0.0, 0.0));
}

#[test]
fn logic_and_comparisons() {
    let v = |src: &str| run(src, &[("x", 2.0)]).value;
    assert_eq!(v("if x < 3 and x >= 2 then 1 else 0"), 1.0);
    assert_eq!(v("if x <= 1 or x != 2 then 1 else 0"), 0.0);
    assert_eq!(v("if not x == 2 then 1 else 0"), 0.0);
    assert_eq!(v("if x > 2 then 1 else if x == 2 then 5 else 7"), 5.0);
    // short-circuit: the right side is not evaluated
    assert_eq!(
        v("fn loop(n) = loop(n); if x > 0 or loop(1) > 0 then 1 else 0"),
        1.0
    );
}

#[test]
fn constants_and_statements() {
    let r = run("a = pi * x\nb = e ^ x; a + b", &[("x", 1.0)]);
    assert!(close(
        r.value,
        std::f64::consts::PI + std::f64::consts::E,
        1e-15
    ));
    assert!(close(
        r.gradient[0].1,
        std::f64::consts::PI + std::f64::consts::E,
        1e-15
    ));
    // a program that does not depend on its input: gradient zero
    let r = run("3 * 2", &[("x", 1.0)]);
    assert_eq!((r.value, r.gradient[0].1), (6.0, 0.0));
    // reassignment is sequential
    let r = run("y = x * 2; y = y * y; y", &[("x", 3.0)]);
    assert_eq!((r.value, r.gradient[0].1), (36.0, 24.0));
}

#[test]
fn every_builtin_against_finite_differences() {
    // (call, point) with the point away from kinks and poles
    let cases: &[(&str, f64)] = &[
        ("exp(x)", 0.3),
        ("log(x)", 1.7),
        ("ln(x)", 0.6),
        ("log2(x)", 3.0),
        ("log10(x)", 7.0),
        ("sqrt(x)", 2.0),
        ("cbrt(x)", -8.5),
        ("square(x)", -1.5),
        ("recip(x)", 0.7),
        ("sin(x)", 0.4),
        ("cos(x)", 0.4),
        ("tan(x)", 0.4),
        ("asin(x)", 0.3),
        ("acos(x)", -0.3),
        ("atan(x)", 2.0),
        ("sinh(x)", 0.5),
        ("cosh(x)", 0.5),
        ("tanh(x)", 0.5),
        ("asinh(x)", -1.3),
        ("acosh(x)", 2.2),
        ("atanh(x)", 0.4),
        ("log1p(x)", 0.3),
        ("expm1(x)", -0.6),
        ("erf(x)", 0.7),
        ("erfc(x)", -1.2),
        ("sigmoid(x)", -0.8),
        ("relu(x)", 1.3),
        ("softplus(x)", -0.4),
        ("abs(x)", -2.0),
        ("atan2(x, 2)", 0.7),
        ("atan2(1.5, x)", -0.7),
        ("hypot(x, 3)", 4.0),
        ("hypot(3, x)", 4.0),
        ("pow(x, 2.5)", 1.3),
        ("pow(2, x)", 1.3),
        ("pow(x, x)", 1.3),
        ("x ^ 3", -1.2),
        ("min(x, 2)", 1.0),
        ("min(2, x, 3 * x)", 1.0),
        ("max(x, 2)", 1.0),
        ("max(0.5, x * x, 0.1)", 1.0),
        ("clamp(x, 0, 2)", 1.3),
        ("clamp(3, x, 5)", 4.0),
        ("clamp(0.5 * x, 0, x)", 1.3),
        ("clamp(x * x, 0, 2) + clamp(x, -1, 0.5)", 0.7),
        ("logsumexp(x, 2 * x, 1)", 0.3),
        ("logsumexp(1, x)", -0.4),
        ("logsumexp(300 * x, 299 * x)", 2.0),
        ("1 / x", 0.8),
        ("2 / x", 0.8),
        ("3 - x", 0.8),
    ];
    let named: std::collections::HashSet<&str> = cases
        .iter()
        .map(|c| c.0.split('(').next().unwrap())
        .collect();
    for (b, _) in BUILTINS {
        assert!(named.contains(b), "no test case for `{b}`");
    }
    for &(src, x) in cases {
        let r = run(src, &[("x", x)]);
        let h = 1e-5 * x.abs().max(1.0);
        let f = |x: f64| run(src, &[("x", x)]).value;
        let fd = (f(x - 2.0 * h) - 8.0 * f(x - h) + 8.0 * f(x + h) - f(x + 2.0 * h)) / (12.0 * h);
        assert!(
            close(r.gradient[0].1, fd, 1e-7),
            "{src} at {x}: {} vs {fd}",
            r.gradient[0].1
        );
    }
}

#[test]
fn error_kinds() {
    assert_eq!(err("x +", &[("x", 1.0)]), ErrorKind::Syntax);
    assert_eq!(err("q", &[("x", 1.0)]), ErrorKind::Input);
    assert_eq!(err("x", &[("x", 1.0), ("x", 2.0)]), ErrorKind::Input);
    assert_eq!(err("sin(x, 1)", &[("x", 1.0)]), ErrorKind::Arity);
    assert_eq!(err("clamp(x, 1)", &[("x", 1.0)]), ErrorKind::Arity);
    assert_eq!(err("logsumexp(x)", &[("x", 1.0)]), ErrorKind::Arity);
    assert_eq!(err("nope(x)", &[("x", 1.0)]), ErrorKind::Name);
    assert_eq!(err("fn sin(a) = a; sin(x)", &[("x", 1.0)]), ErrorKind::Name);
    assert_eq!(
        err("fn f(a) = a; fn f(b) = b; f(x)", &[("x", 1.0)]),
        ErrorKind::Name
    );
    assert_eq!(err("x + (x < 1)", &[("x", 1.0)]), ErrorKind::Type);
    assert_eq!(
        err("fn f(n) = f(n + 1); f(x)", &[("x", 1.0)]),
        ErrorKind::Limit
    );
    assert_eq!(err("log(x - 1)", &[("x", 1.0)]), ErrorKind::NonFinite);
    assert_eq!(err("0 / 0 + x", &[("x", 1.0)]), ErrorKind::NonFinite);
    assert_eq!(err("pi = 3; x", &[("x", 1.0)]), ErrorKind::Name);
    // every product finite, but a sum of gradients overflows
    let body = vec!["sin(x)"; 40].join(" + ");
    let src = format!("fn f(x, n) = if n == 0 then x else f({body}, n - 1); f(x, 300)");
    let e = gradient(&src, &[("x".into(), 0.1)], &GradOptions::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert!(e.message.contains("overflowed while adding up"), "{e}");
    // a negative base with an exponent that is an input: the power is
    // real there, its partial in the exponent (a^b·ln a) is not, and the
    // error says why and points at the power
    for src in ["x^y", "x ** y", "pow(x, y)"] {
        let at = [("x".into(), -2.0), ("y".into(), 3.0)];
        let e = gradient(src, &at, &GradOptions::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NonFinite);
        assert!(
            e.message.contains("`y` is NaN") && e.message.contains("a^b·ln a in the exponent"),
            "{src}: {e}"
        );
    }
    // a constant exponent is fine there
    let r = gradient("x^3", &[("x".into(), -2.0)], &GradOptions::default()).unwrap();
    assert_eq!((r.value, r.gradient[0].1), (-8.0, 12.0));
}

/// A NaN the output does not depend on (an unused binding) changes
/// nothing: an infinite gradient is still traced to its derivative.
#[test]
fn a_nan_off_the_outputs_path_does_not_hide_an_infinite_derivative() {
    let inputs = [("x".to_string(), 2.0)];
    for src in ["sqrt(x - 2)", "a = log(x - 3); sqrt(x - 2)"] {
        let e = gradient(src, &inputs, &GradOptions::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NonFinite);
        assert!(e.message.contains("derivative of `sqrt`"), "{src}: {e}");
    }
}

#[test]
fn evaluator_is_generic_over_the_scalar() {
    let p =
        parse("fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); y = p(x, 3) - 1 / x").unwrap();
    let tape = Tape::<f32>::default();
    let ev = evaluate(
        &p,
        &tape,
        &[("x".to_string(), 2.0f32)],
        &EvalOptions::default(),
    )
    .unwrap();
    let Num::Var(y) = ev.output else {
        panic!("depends on x")
    };
    assert_eq!(y.value(), 7.5f32);
    assert_eq!(y.backward().wrt(ev.inputs[0].1), 12.25f32);
}

#[test]
fn stack_guard_without_a_big_thread() {
    // The test thread's small stack: the evaluator stops cleanly.
    let p = parse("fn f(n) = if n == 0 then 0 else 1 + f(n - 1); f(x)").unwrap();
    let tape = Tape::new();
    let opts = EvalOptions {
        max_depth: 1_000_000,
        max_steps: u64::MAX,
        stack_budget: 256 << 10,
    };
    let e = evaluate(&p, &tape, &[("x".to_string(), 1e6)], &opts).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit);
    assert!(e.message.contains("stack"), "{e}");
}

// ---- random programs -------------------------------------------------------

#[derive(Clone, Debug)]
enum E {
    X(usize),
    C(f64),
    Neg(Box<E>),
    Bin(char, Box<E>, Box<E>),
    Un(&'static str, Box<E>),
    Two(&'static str, Box<E>, Box<E>),
}

const SMOOTH_UN: &[&str] = &["sin", "cos", "tanh", "sigmoid", "atan", "softplus", "asinh"];
const ALL_UN: &[&str] = &[
    "sin", "cos", "tanh", "sigmoid", "atan", "softplus", "asinh", "abs", "relu", "exp", "square",
];

fn expr(smooth: bool) -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        3 => (0usize..3).prop_map(E::X),
        1 => prop::sample::select(vec![0.5, 1.0, 2.0, 3.0, 0.25]).prop_map(E::C),
    ];
    leaf.prop_recursive(5, 40, 2, move |inner| {
        let un: &'static [&'static str] = if smooth { SMOOTH_UN } else { ALL_UN };
        let ops: Vec<char> = if smooth {
            vec!['+', '-', '*', '2']
        } else {
            vec!['+', '-', '*', '/', '2', '3']
        };
        let two: Vec<&'static str> = if smooth {
            vec!["hypot1"]
        } else {
            vec!["min", "max", "atan2", "hypot"]
        };
        prop_oneof![
            1 => inner.clone().prop_map(|a| E::Neg(Box::new(a))),
            3 => (prop::sample::select(ops), inner.clone(), inner.clone())
                .prop_map(|(o, a, b)| E::Bin(o, Box::new(a), Box::new(b))),
            2 => (prop::sample::select(un.to_vec()), inner.clone())
                .prop_map(|(f, a)| E::Un(f, Box::new(a))),
            1 => (prop::sample::select(two), inner.clone(), inner)
                .prop_map(|(f, a, b)| E::Two(f, Box::new(a), Box::new(b))),
        ]
    })
}

const NAMES: [&str; 3] = ["x", "y", "z"];

/// Source with every operation parenthesised.
fn full(e: &E) -> String {
    match e {
        E::X(i) => NAMES[*i].to_string(),
        E::C(c) => format!("{c:?}"),
        E::Neg(a) => format!("(-{})", full(a)),
        E::Bin('2', a, _) => format!("({} ^ 2)", full(a)),
        E::Bin('3', a, _) => format!("({} ** 3)", full(a)),
        E::Bin(o, a, b) => format!("({} {o} {})", full(a), full(b)),
        E::Un(f, a) => format!("{f}({})", full(a)),
        E::Two("hypot1", a, _) => format!("hypot({}, 1)", full(a)),
        E::Two(f, a, b) => format!("{f}({}, {})", full(a), full(b)),
    }
}

/// Binding strength of the printed form: 1 sum, 2 product, 3 unary minus,
/// 4 power, 5 atom.
fn prec(e: &E) -> u8 {
    match e {
        E::Bin('+' | '-', ..) => 1,
        E::Bin('*' | '/', ..) => 2,
        E::Neg(_) => 3,
        E::Bin(..) => 4,
        _ => 5,
    }
}

/// Source with as few parentheses as the precedence rules allow (the same
/// tree must come back: this tests the parser's precedence).
fn minimal(e: &E) -> String {
    let wrap = |x: &E, min: u8| {
        if prec(x) >= min {
            minimal(x)
        } else {
            format!("({})", minimal(x))
        }
    };
    match e {
        E::X(_) | E::C(_) => full(e),
        E::Neg(a) => format!("-{}", wrap(a, 3)),
        // base of a power must be an atom; the exponent is a unary
        E::Bin('2', a, _) => format!("{}^2", wrap(a, 5)),
        E::Bin('3', a, _) => format!("{}**3", wrap(a, 5)),
        E::Bin(o @ ('+' | '-'), a, b) => format!("{} {o} {}", wrap(a, 1), wrap(b, 2)),
        E::Bin(o, a, b) => format!("{} {o} {}", wrap(a, 2), wrap(b, 3)),
        E::Un(f, a) => format!("{f}({})", minimal(a)),
        E::Two("hypot1", a, _) => format!("hypot({}, 1)", minimal(a)),
        E::Two(f, a, b) => format!("{f}({}, {})", minimal(a), minimal(b)),
    }
}

/// The same expression built directly with the engine's `Var` operations
/// (f64 constants on either side); `Err` holds a constant.
fn build<'t>(e: &E, xs: &[Var<'t>]) -> Result<Var<'t>, f64> {
    use Result::{Err as C, Ok as V};
    match e {
        E::X(i) => V(xs[*i]),
        E::C(c) => C(*c),
        E::Neg(a) => match build(a, xs) {
            V(v) => V(-v),
            C(c) => C(-c),
        },
        E::Bin('2', a, _) => build(a, xs).map(|v| v.powi(2)).map_err(|c| c.powi(2)),
        E::Bin('3', a, _) => build(a, xs).map(|v| v.powi(3)).map_err(|c| c.powi(3)),
        E::Bin(o, a, b) => match (build(a, xs), build(b, xs)) {
            (V(p), V(q)) => V(match o {
                '+' => p + q,
                '-' => p - q,
                '*' => p * q,
                _ => p / q,
            }),
            (V(p), C(q)) => V(match o {
                '+' => p + q,
                '-' => p - q,
                '*' => p * q,
                _ => p / q,
            }),
            (C(p), V(q)) => V(match o {
                '+' => p + q,
                '-' => p - q,
                '*' => p * q,
                _ => p / q,
            }),
            (C(p), C(q)) => C(match o {
                '+' => p + q,
                '-' => p - q,
                '*' => p * q,
                _ => p / q,
            }),
        },
        E::Un(f, a) => {
            let a = match build(a, xs) {
                V(v) => v,
                C(c) => return C(un_const(f, c)),
            };
            V(match *f {
                "sin" => a.sin(),
                "cos" => a.cos(),
                "tanh" => a.tanh(),
                "sigmoid" => a.sigmoid(),
                "atan" => a.atan(),
                "softplus" => a.softplus(),
                "asinh" => a.asinh(),
                "abs" => a.abs(),
                "relu" => a.relu(),
                "exp" => a.exp(),
                _ => a.square(),
            })
        }
        E::Two("hypot1", a, _) => build(a, xs).map(|v| v.hypot(1.0)).map_err(|c| c.hypot(1.0)),
        E::Two(f, a, b) => {
            let (p, q) = (build(a, xs), build(b, xs));
            let tape = xs[0].tape();
            // a constant first argument becomes a leaf: the engine's methods
            // take the recorded value first
            let lift = |r: Result<Var<'t>, f64>| r.unwrap_or_else(|c| tape.var(c));
            match (p, q) {
                (C(p), C(q)) => C(match *f {
                    "min" => p.min(q),
                    "max" => p.max(q),
                    "atan2" => p.atan2(q),
                    _ => p.hypot(q),
                }),
                (p, q) => {
                    let (p, q) = (lift(p), lift(q));
                    V(match *f {
                        "min" => p.min(q),
                        "max" => p.max(q),
                        "atan2" => p.atan2(q),
                        _ => p.hypot(q),
                    })
                }
            }
        }
    }
}

fn un_const(f: &str, c: f64) -> f64 {
    match f {
        "sin" => c.sin(),
        "cos" => c.cos(),
        "tanh" => c.tanh(),
        "sigmoid" => chainrule::sigmoid(c),
        "atan" => c.atan(),
        "softplus" => {
            if c > 0.0 {
                c + (-c).exp().ln_1p()
            } else {
                c.exp().ln_1p()
            }
        }
        "asinh" => c.asinh(),
        "abs" => c.abs(),
        "relu" => c.max(0.0),
        "exp" => c.exp(),
        _ => c * c,
    }
}

fn lang(src: &str, x: &[f64; 3]) -> Result<GradResult, chainrule_cli::grad::LangError> {
    let inputs: Vec<(String, f64)> = NAMES
        .iter()
        .zip(x)
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
    gradient(src, &inputs, &GradOptions::default())
}

fn point() -> impl Strategy<Value = [f64; 3]> {
    [-2.0..2.0f64, -2.0..2.0f64, -2.0..2.0f64]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The language agrees with the engine's own operators, and precedence
    /// parses the minimally parenthesised form into the same tree.
    #[test]
    fn language_matches_direct_var_ops(e in expr(false), x in point()) {
        let src = full(&e);
        let tape = Tape::new();
        let xs = tape.vars(&x);
        let (want_v, want_g) = match build(&e, &xs) {
            Ok(v) => (v.value(), v.backward().wrt_all(&xs)),
            Err(c) => (c, vec![0.0; 3]),
        };
        let finite = want_v.is_finite() && want_g.iter().all(|g| g.is_finite());
        match lang(&src, &x) {
            Ok(r) => {
                prop_assert!(finite, "{src}: language gave {r:?}, direct {want_v} {want_g:?}");
                prop_assert!(close(r.value, want_v, 1e-12), "{src}: {} vs {want_v}", r.value);
                for (k, (_, g)) in r.gradient.iter().enumerate() {
                    prop_assert!(close(*g, want_g[k], 1e-9), "{src}: d/d{} {g} vs {}", NAMES[k], want_g[k]);
                }
                let r2 = lang(&minimal(&e), &x).unwrap();
                prop_assert_eq!(r2.value, r.value, "{} vs {}", minimal(&e), src);
            }
            Err(err) => {
                prop_assert_eq!(err.kind, ErrorKind::NonFinite, "{}: {}", src, err);
                // 1 / x as recip * 1 may round differently from c / x only
                // at the edge of overflow; otherwise the direct build agrees
                prop_assert!(!finite || want_v.abs() > 1e300 || want_g.iter().any(|g| g.abs() > 1e300),
                    "{}: language failed ({}) but direct gave {} {:?}", src, err, want_v, want_g);
            }
        }
    }

    /// On smooth programs the language's gradient matches finite differences.
    #[test]
    fn language_matches_gradcheck(e in expr(true), x in point()) {
        let src = full(&e);
        let r = lang(&src, &x).unwrap();
        let report = gradcheck(
            |xs| match build(&e, xs) {
                Ok(v) => v,
                Err(c) => xs[0] * 0.0 + c,
            },
            &x,
            GradcheckOptions { step: 1e-4, atol: 1e-6, rtol: 1e-6 },
        );
        prop_assert!(close(report.value, r.value, 1e-12));
        for (k, c) in report.inputs.iter().enumerate() {
            let g = r.gradient[k].1;
            prop_assert!(
                (g - c.numeric).abs() <= 1e-6 * (1.0 + g.abs()),
                "{src}: d/d{} language {g}, finite differences {}\n{report}", NAMES[k], c.numeric
            );
        }
    }
}

const VOCAB: &[&str] = &[
    "x", "y", "z", "1", "0", "2.5", "1e-3", "+", "-", "*", "/", "^", "**", "(", ")", ",", "=",
    "==", "!=", "<", "<=", ">", ">=", ";", "\n", "fn", "f", "g", "if", "then", "else", "and", "or",
    "not", "sin", "log", "min", "max", "atan2", "pow", "pi", "e", "#", "$", "é", "",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Token soup (the complement of the cargo-fuzz target that runs in
    /// CI): any text gives a value or a LangError, never a panic or hang.
    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(VOCAB.to_vec()), 0..40),
                               spaces in any::<bool>()) {
        let src = toks.join(if spaces { " " } else { "" });
        let inputs = vec![("x".to_string(), 0.5), ("y".to_string(), -1.5), ("z".to_string(), 2.0)];
        let opts = GradOptions { max_depth: 50, max_steps: 10_000, graph: true, hessian: false };
        match gradient(&src, &inputs, &opts) {
            Ok(r) => {
                prop_assert!(r.value.is_finite());
                prop_assert!(r.graph.unwrap().to_dot().starts_with("digraph"));
            }
            Err(e) => {
                let shown = e.render(&src, None);
                prop_assert!(!shown.is_empty());
            }
        }
    }
}
