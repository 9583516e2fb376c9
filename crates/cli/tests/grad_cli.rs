//! `chainrule grad` as a user runs it: golden outputs for the seed's
//! examples, the DOT and SVG pictures, and every kind of bad input (exit
//! code 2, one message on stderr, no panic).

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
}

fn grad(args: &[&str]) -> Output {
    bin()
        .arg("grad")
        .args(args)
        .output()
        .expect("run chainrule")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = grad(&a);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "exactly one JSON object: {out}");
    serde_json::from_str(&out).expect("valid JSON")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-grad-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Runs a command that must fail: exit code 2, nothing on stdout, a
/// message on stderr that contains every one of `needles`, no panic.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let o = grad(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: stdout {}", stdout(&o));
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in:\n{err}");
    }
    err
}

#[test]
fn seed_chain_example_readme_command() {
    let o = grad(&["w = x * 2; u = w + 3; y = u / 2", "x=5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "value = 6.5\nd/dx = 1\n");
}

#[test]
fn json_contract() {
    let v = json(&["w = x * 2; u = w + 3; y = u / 2", "x=5"]);
    assert_eq!(v, serde_json::json!({"value": 6.5, "gradient": {"x": 1.0}}));
    let v = json(&[
        "fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)",
        "x=2",
    ]);
    assert_eq!(v["value"], 32.0);
    assert_eq!(v["gradient"]["x"], 80.0);
    // every input named on the command line is a key, used or not
    let v = json(&["x * 3", "x=1", "unused=4"]);
    assert_eq!(v["gradient"]["unused"], 0.0);
    assert_eq!(v["gradient"]["x"], 3.0);
}

#[test]
fn seed_product_and_sum_rules() {
    let v = json(&["q = x + y; f = q * z", "x=-2", "y=5", "z=-4"]);
    assert_eq!(
        v,
        serde_json::json!({"value": -12.0, "gradient": {"x": -4.0, "y": -4.0, "z": 3.0}})
    );
}

#[test]
fn seed_sigmoid_neuron() {
    let args = [
        "z = w0*x0 + w1*x1 + w2; f = 1 / (1 + exp(-z))",
        "w0=2",
        "w1=-3",
        "w2=-3",
        "x0=-1",
        "x1=-2",
    ];
    let v = json(&args);
    let close = |k: &str, want: f64| {
        let got = if k == "value" {
            v["value"].as_f64()
        } else {
            v["gradient"][k].as_f64()
        }
        .unwrap();
        assert!((got - want).abs() < 5e-5, "{k}: {got} vs {want}");
    };
    close("value", 0.7311);
    close("w0", -0.1966);
    close("w1", -0.3932);
    close("w2", 0.1966);
    close("x0", 0.3932);
    close("x1", -0.5898);
    // exactly s(1 - s) times the other factor, and the same as `sigmoid`
    let s = v["value"].as_f64().unwrap();
    let dw0 = v["gradient"]["w0"].as_f64().unwrap();
    assert!((dw0 + s * (1.0 - s)).abs() < 1e-15);
    let mut a2 = args;
    a2[0] = "sigmoid(w0*x0 + w1*x1 + w2)";
    let v2 = json(&a2);
    for k in ["w0", "w1", "w2", "x0", "x1"] {
        let (a, b) = (
            v["gradient"][k].as_f64().unwrap(),
            v2["gradient"][k].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-15, "{k}");
    }
}

#[test]
fn precedence_through_the_cli() {
    let val = |p: &str, x: &str| json(&[p, x])["value"].as_f64().unwrap();
    assert_eq!(val("-x^2", "x=3"), -9.0);
    assert_eq!(val("(-x)^2", "x=3"), 9.0);
    assert_eq!(val("2^3^2", "x=0"), 512.0);
    assert_eq!(val("2**-1 + x", "x=0"), 0.5);
    assert_eq!(val("1 - 2 - x", "x=3"), -4.0);
    assert_eq!(val("12 / 3 / x", "x=2"), 2.0);
    assert_eq!(val("1 + 2 * x ^ 2", "x=3"), 19.0);
    assert_eq!(json(&["-x^2", "x=3"])["gradient"]["x"], -6.0);
}

#[test]
fn program_from_a_file_with_lines_and_comments() {
    let p = tmp("pow.cr");
    std::fs::write(
        &p,
        "# x to the n by recursion\nfn p(x, n) =\n  if n == 0\n  then 1\n  else x * p(x, n - 1)\n\ny = p(x, 5)\n",
    )
    .unwrap();
    let arg = format!("@{}", p.display());
    let v = json(&[&arg, "x=2"]);
    assert_eq!(v["value"], 32.0);
    assert_eq!(v["gradient"]["x"], 80.0);
    // errors in a file name the file
    std::fs::write(&p, "y = x +\n  * 2\n").unwrap();
    fails(
        &[&arg, "x=1"],
        &[&p.display().to_string(), "line 2, column 3"],
    );
}

const SEED_DOT: &str = r##"digraph chainrule {
  rankdir=LR;
  node [shape=box, fontname="Helvetica", fontsize=12];
  n1 [label="x\ninput\nvalue 5\ngrad 1", style=filled, fillcolor="#cfe3f7"];
  n2 [label="w\n* 2\nvalue 10\ngrad 0.5", style=filled, fillcolor="#e6f2d9"];
  n3 [label="u\n+ 3\nvalue 13\ngrad 0.5", style=filled, fillcolor="#e6f2d9"];
  n4 [label="y\n/ 2\nvalue 6.5\ngrad 1", style=filled, fillcolor="#f8d7a8"];
  n1 -> n2;
  n2 -> n3;
  n3 -> n4;
}
"##;

#[test]
fn dot_and_svg_of_the_seed_example() {
    let dot = tmp("seed.dot");
    let svg = tmp("seed.svg");
    let o = grad(&[
        "w = x * 2; u = w + 3; y = u / 2",
        "x=5",
        "--dot",
        dot.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "value = 6.5\nd/dx = 1\n");
    assert_eq!(std::fs::read_to_string(&dot).unwrap(), SEED_DOT);
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.contains("<svg") && s.ends_with("</svg>"));
    for text in [
        "value 6.5",
        "grad 0.5",
        "* 2",
        "+ 3",
        "/ 2",
        ">w<",
        ">u<",
        ">y<",
        ">x<",
    ] {
        assert!(s.contains(text), "SVG lacks {text}");
    }
    // four boxes, three arrows
    assert_eq!(s.matches("<rect").count(), 4);
    assert_eq!(s.matches("marker-end").count(), 3);
}

#[test]
fn dot_of_product_graph_has_fan_in() {
    let dot = tmp("prod.dot");
    let o = grad(&[
        "q = x + y; f = q * z",
        "x=-2",
        "y=5",
        "z=-4",
        "--dot",
        dot.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = std::fs::read_to_string(&dot).unwrap();
    // x=n1, y=n2, z=n3, q=n4, f=n5
    for edge in ["n1 -> n4;", "n2 -> n4;", "n4 -> n5;", "n3 -> n5;"] {
        assert!(d.contains(edge), "{edge} missing in\n{d}");
    }
    assert_eq!(d.matches("->").count(), 4);
    assert!(d.contains("q\\n+\\nvalue 3\\ngrad -4"));
    assert!(d.contains("z\\ninput\\nvalue -4\\ngrad 3"));
}

/// A graph too large to draw gets no SVG but a warning (in `--json` too),
/// and the value and gradient are still the result: nothing unasked-for is
/// written (no `.dot` beside the SVG), and the DOT asked for is written.
#[test]
fn large_graph_gets_no_svg_but_a_warning_and_the_value() {
    let svg = tmp("big.svg");
    let beside = svg.with_extension("dot");
    std::fs::write(&beside, "my notes").unwrap();
    let _ = std::fs::remove_file(&svg);
    let prog = "fn s(x, n) = if n == 0 then x else sin(s(x, n - 1)) + x; s(x, 200)";
    let o = grad(&[prog, "x=0.5", "--svg", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no SVG written")
            && err.contains("too many to draw legibly")
            && err.contains("--dot"),
        "{err}"
    );
    assert!(stdout(&o).contains("value = ") && stdout(&o).contains("d/dx = "));
    assert!(!svg.exists());
    assert_eq!(std::fs::read_to_string(&beside).unwrap(), "my notes");
    let dot = tmp("big-asked.dot");
    let o = grad(&[
        prog,
        "x=0.5",
        "--dot",
        dot.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        j["value"].is_number() && j["gradient"]["x"].is_number(),
        "{j}"
    );
    let w = j["warnings"][0].as_str().unwrap();
    assert!(w.contains("too many to draw legibly"), "{w}");
    assert!(!svg.exists());
    assert!(std::fs::read_to_string(&dot).unwrap().matches("->").count() > 300);
}

/// `--dot` and `--svg` may not overwrite the program file or each other.
#[test]
fn pictures_never_overwrite_the_program_or_each_other() {
    let prog = tmp("prog-pic.txt");
    std::fs::write(&prog, "x^2").unwrap();
    let at = format!("@{}", prog.display());
    let o = grad(&[&at, "x=3", "--dot", prog.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("program file"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&prog).unwrap(), "x^2");
    let same = tmp("both.pic");
    let o = grad(&[
        &at,
        "x=3",
        "--dot",
        same.to_str().unwrap(),
        "--svg",
        same.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("same file"), "{}", stderr(&o));
    assert!(!same.exists());
}

#[test]
fn syntax_error_shows_line_column_and_caret() {
    let err = fails(&["w = x * )", "x=1"], &["line 1, column 9", "syntax error"]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[1], "  w = x * )");
    assert_eq!(lines[2], "          ^");
    fails(&["a = 1\nb = (a + ", "x=1"], &["line 2, column 9"]);
    fails(&["2x", "x=1"], &["column 2", "missing `*`"]);
    // a program that ends too soon is shown where its last token ends,
    // not past the blank lines after it
    let err = fails(
        &["x +\n\n  \n", "x=1"],
        &["line 1, column 4", "end of program"],
    );
    assert!(err.contains("\n  x +\n     ^"), "{err}");
}

#[test]
fn name_and_call_errors() {
    fails(&["x + zz", "x=1"], &["missing input `zz`", "zz=NUMBER"]);
    fails(
        &["fn f(a) = a + q; f(x)", "x=1"],
        &["unknown name `q`", "column 15"],
    );
    fails(&["foo(x)", "x=1"], &["unknown function `foo`"]);
    fails(
        &["atan2(x)", "x=1"],
        &["`atan2` takes 2 arguments, but 1 was given"],
    );
    fails(
        &["fn f(a, b) = a * b; f(x)", "x=1"],
        &["`f` takes 2 arguments"],
    );
    fails(
        &["sin(x, x)", "x=1"],
        &["`sin` takes 1 argument, but 2 were given"],
    );
    fails(
        &["y = w + 1; w = x", "x=1"],
        &["`w` is used before it is assigned"],
    );
    fails(&["if x then 1 else 2", "x=1"], &["expected a truth value"]);
    fails(&["x < 1", "x=1"], &["truth value"]);
}

#[test]
fn input_errors() {
    fails(&["x", "x=1", "x=2"], &["input `x` is given twice"]);
    fails(&["x * y"], &["missing inputs `x`, `y`"]);
    fails(&["x", "x=abc"], &["`abc` is not a number"]);
    fails(&["x", "x=nan"], &["finite"]);
    fails(&["x", "x"], &["NAME=VALUE"]);
    fails(&["x", "1x=2"], &["not a name"]);
    fails(&["x", "x=1", "pi=3"], &["reserved"]);
    // a keyword is all letters: it is reserved, not "not a name"
    for k in ["then", "if", "fn", "not"] {
        let arg = format!("{k}=2");
        let err = fails(&["1", &arg], &["reserved", "keyword"]);
        assert!(!err.contains("letters, digits"), "{err}");
    }
}

/// Formulas pasted from typeset text: their minus, times, division and
/// comparison signs read as the ASCII ones.
#[test]
fn typeset_signs_read_as_ascii() {
    for (typeset, ascii) in [
        ("x × 2 − 3 ÷ x", "x * 2 - 3 / x"),
        ("if x ≥ 1 then x·x else −x", "if x >= 1 then x*x else -x"),
        ("if x ≤ 1 then x⋅2 else 0", "if x <= 1 then x*2 else 0"),
        ("if x ≠ 2 then x else 0", "if x != 2 then x else 0"),
    ] {
        assert_eq!(
            json(&[typeset, "x=1.5"]),
            json(&[ascii, "x=1.5"]),
            "{typeset}"
        );
    }
}

#[test]
fn unreadable_program_file() {
    let missing = tmp("does-not-exist.cr");
    let arg = format!("@{}", missing.display());
    fails(
        &[&arg, "x=1"],
        &["does-not-exist.cr", "cannot read the program"],
    );
}

#[test]
fn recursion_limits() {
    let count = "fn f(n) = if n == 0 then 0 else 1 + f(n - 1); f(x)";
    fails(
        &[count, "x=20000"],
        &["recursion deeper than 10000 calls", "--max-depth"],
    );
    fails(
        &[count, "x=50", "--max-depth", "10"],
        &["deeper than 10 calls"],
    );
    // the default depth itself works, on a thread with a big enough stack
    let v = json(&[count, "x=9999"]);
    assert_eq!(v["value"], 9999.0);
    let v = json(&[count, "x=30000", "--max-depth", "40000"]);
    assert_eq!(v["value"], 30000.0);
    // an iteration written as tail recursion does not nest: 100,000
    // steps of s <- s·a + sin(s)·b at the default limits, its gradient
    // the one of the same loop by forward-mode recurrence
    let iterate = "fn f(s, n) = if n == 0 then s else f(s*a + sin(s)*b, n - 1); f(s0, 100000)";
    let v = json(&[iterate, "a=0.9", "b=0.1", "s0=0.5"]);
    let (a, b, mut s) = (0.9f64, 0.1f64, 0.5f64);
    let (mut da, mut db, mut ds0) = (0.0, 0.0, 1.0);
    for _ in 0..100_000 {
        let k = a + s.cos() * b;
        (da, db, ds0) = (s + k * da, s.sin() + k * db, k * ds0);
        s = s * a + s.sin() * b;
    }
    assert_eq!(v["value"], s);
    for (name, want) in [("a", da), ("b", db), ("s0", ds0)] {
        let got = v["gradient"][name].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{name}: {got} vs {want}"
        );
    }
    // a tail call that never ends stops at --max-steps, as one that nests
    // stops at --max-depth
    fails(&["fn f() = f(); f() + x", "x=1"], &["--max-steps"]);
    fails(
        &["fn f(n) = if n < 0 then n else f(n + 1); f(x)", "x=1"],
        &["--max-steps"],
    );
    // exponential recursion stops instead of hanging
    fails(
        &[
            "fn t(n) = if n == 0 then 1 else t(n - 1) + t(n - 1); t(x)",
            "x=60",
        ],
        &["--max-steps"],
    );
}

#[test]
fn deep_nesting_is_a_clean_error() {
    let deep = format!("{}x{}", "(".repeat(1000), ")".repeat(1000));
    fails(&[&deep, "x=1"], &["nested too deeply"]);
    // a 50,000-term sum (too long for one argument: from a file)
    let p = tmp("long.cr");
    std::fs::write(&p, vec!["x"; 50_000].join(" + ")).unwrap();
    fails(
        &[&format!("@{}", p.display()), "x=1"],
        &["nested too deeply"],
    );
}

#[test]
fn non_finite_results_name_the_operation() {
    fails(
        &["y = log(x - 1) * 2", "x=1"],
        &["-inf", "`log`", "column 5"],
    );
    // named in the program's words, not the engine's (`rdiv`)
    fails(&["1/x", "x=0"], &["inf", "`/`", "column 2"]);
    // a NaN from constants alone is blamed on the operation that made it,
    // not on the first one that met an input
    fails(
        &["c = sqrt(0-1); c*x", "x=1"],
        &["NaN", "`sqrt`", "column 5"],
    );
    fails(&["0/0 + x", "x=1"], &["NaN", "`/`", "column 2"]);
    fails(
        &["fn f(a) = log(a); f(0-1) + x", "x=1"],
        &["NaN", "`log`", "column 11"],
    );
    fails(
        &["sqrt(x)", "x=0"],
        &["gradient with respect to `x` is inf", "`sqrt`"],
    );
    fails(&["a = x / 0; a", "x=1"], &["inf", "column 7"]);
    fails(&["log(0 - 1) + x", "x=1"], &["NaN"]);
    // relu passes a NaN on (it does not hide it as 0)
    fails(&["relu(log(x)) + x", "x=-1"], &["NaN", "`log`", "column 6"]);
    // a comparison with NaN has no branch to take
    fails(
        &["if log(x) > 0 then 1 else 2*x", "x=-1"],
        &["comparison (line 1, column 11)", "NaN", "`log`", "column 4"],
    );
    fails(
        &["y = 0/0; if y == y then x else 0", "x=1"],
        &["NaN", "`/`"],
    );
}

/// An infinite derivative that a zero gradient reaches (0 × inf) is an
/// error: the chain rule cannot decide the gradient there, and the 0 the
/// plain sweep would give can be wrong (`sqrt(x)^2` has derivative 1 at
/// 0, `cos(sqrt(x))` -1/2).
/// A zero that is a branch min, max or relu did not take, or abs's kink,
/// is no such product.
#[test]
fn zero_times_infinity_is_an_error() {
    for (program, col) in [
        ("sqrt(x)^2", "column 1"),
        ("sqrt(x)*sqrt(x)", "column 9"),
        ("cos(sqrt(x))", "column 5"),
        ("x + 0*sqrt(x)", "column 7"),
    ] {
        fails(
            &[program, "x=0"],
            &["indeterminate", "`sqrt`", "0 × inf", col],
        );
    }
    for (program, want) in [
        ("max(x, sqrt(x) - 5)", 1.0),
        ("min(sqrt(x) + 5, 2*x)", 2.0),
        ("relu(-1 - sqrt(x)) + x", 1.0),
        ("abs(sqrt(x)) + x", 1.0),
        ("sqrt(x)^2", 1.0),
    ] {
        let at = if program == "sqrt(x)^2" { "x=4" } else { "x=0" };
        let v = json(&[program, at]);
        assert_eq!(v["gradient"]["x"], want, "{program}: {v}");
    }
}

/// An input the program never names (a misspelling, most often) is said on
/// stderr; one named only inside a function is used.
#[test]
fn unused_inputs_are_warned_about() {
    let o = grad(&["x + 1", "x=1", "y=2"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("d/dy = 0"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("warning: the program never uses input `y`"),
        "{}",
        stderr(&o)
    );
    // and in the --json object, for a program reading stdout alone
    let v = json(&["x + 1", "x=1", "y=2"]);
    assert!(
        v["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("never uses input `y`")),
        "{v}"
    );
    assert!(json(&["x + y", "x=1", "y=2"]).get("warnings").is_none());
    let o = grad(&["fn f(a) = a * y; f(x)", "x=1", "y=2"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // a parameter or an assignment of the same name hides the input
    for program in ["fn f(y) = y * 2; f(x)", "y = 2; y * x"] {
        let o = grad(&[program, "x=1", "y=3"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("never uses input `y`"),
            "{program}: {}",
            stderr(&o)
        );
    }
    // a warning that cannot be written does not fail the run
    if std::path::Path::new("/dev/full").exists() {
        let o = bin()
            .args(["grad", "x + 1", "x=1", "y=2"])
            .stderr(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(stdout(&o).contains("d/dy = 0"));
    }
}
