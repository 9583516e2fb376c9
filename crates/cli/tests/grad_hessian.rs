//! `chainrule grad --hessian`: the Hessian of a program, checked against
//! closed forms, central differences of the gradient, and the JSON contract.

use chainrule_cli::grad::{gradient, GradOptions};
use std::process::Command;

fn hess(src: &str, inputs: &[(&str, f64)]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let ins: Vec<(String, f64)> = inputs.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    let opts = GradOptions {
        hessian: true,
        ..GradOptions::default()
    };
    let r = gradient(src, &ins, &opts).unwrap();
    (
        r.gradient.iter().map(|g| g.1).collect(),
        r.hessian.expect("asked for"),
    )
}

fn grad_at(src: &str, names: &[&str], x: &[f64]) -> Vec<f64> {
    let ins: Vec<(String, f64)> = names
        .iter()
        .zip(x)
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
    let r = gradient(src, &ins, &GradOptions::default()).unwrap();
    assert!(r.hessian.is_none());
    r.gradient.iter().map(|g| g.1).collect()
}

#[test]
fn closed_form() {
    // f = x²y + sin(xy)
    let (x, y) = (1.0f64, 2.0f64);
    let (_, h) = hess("x^2*y + sin(x*y)", &[("x", x), ("y", y)]);
    let fxx = 2.0 * y - y * y * (x * y).sin();
    let fxy = 2.0 * x + (x * y).cos() - x * y * (x * y).sin();
    let fyy = -x * x * (x * y).sin();
    let want = [[fxx, fxy], [fxy, fyy]];
    for i in 0..2 {
        for j in 0..2 {
            assert!((h[i][j] - want[i][j]).abs() < 1e-14, "{h:?}");
        }
    }
    // recursion: p(x, 5) = x^5 → 20 x^3
    let (_, h) = hess(
        "fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)",
        &[("x", 2.0)],
    );
    assert_eq!(h, vec![vec![160.0]]);
}

#[test]
fn matches_differences_of_the_gradient_and_is_symmetric() {
    let progs = [
        "a = exp(x) * y; b = tanh(a - z); b * b + log(1 + x^2) * z",
        "fn f(u, v) = sqrt(u^2 + v^2 + 1); f(x * y, z) + sigmoid(x - z) * y",
        "atan2(x, y + 3) * cos(z) + max(x, z) * y",
    ];
    let names = ["x", "y", "z"];
    let x0 = [0.3, -0.7, 1.1];
    for src in progs {
        let ins: Vec<(&str, f64)> = names.iter().copied().zip(x0).collect();
        let (g, h) = hess(src, &ins);
        assert_eq!(
            g,
            grad_at(src, &names, &x0),
            "{src}: the gradient is unchanged"
        );
        for j in 0..3 {
            let step = 1e-5;
            let mut xp = x0;
            let mut xm = x0;
            xp[j] += step;
            xm[j] -= step;
            let (gp, gm) = (grad_at(src, &names, &xp), grad_at(src, &names, &xm));
            for i in 0..3 {
                let fd = (gp[i] - gm[i]) / (2.0 * step);
                assert!(
                    (h[i][j] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{src}: H[{i}][{j}] {} vs {fd}",
                    h[i][j]
                );
                assert!((h[i][j] - h[j][i]).abs() < 1e-12, "{src}: symmetric");
            }
        }
    }
}

#[test]
fn cli_json_and_order_of_inputs() {
    let bin = env!("CARGO_BIN_EXE_chainrule");
    let out = Command::new(bin)
        .args(["grad", "x * y^3", "y=2", "x=5", "--hessian", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // rows and columns in the order named: y, then x
    assert_eq!(v["hessian"], serde_json::json!([[60.0, 12.0], [12.0, 0.0]]));
    assert_eq!(v["gradient"]["x"], 8.0);
    // without the flag there is no hessian key
    let out = Command::new(bin)
        .args(["grad", "x * y", "x=1", "y=2", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("hessian").is_none());
    // human output shows the rows
    let out = Command::new(bin)
        .args(["grad", "x^3", "x=2", "--hessian"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("hessian") && text.contains("[12]"), "{text}");
    // a non-finite second derivative is an error, exit code 2
    let out = Command::new(bin)
        .args(["grad", "sqrt(x) * 1", "x=0", "--hessian"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // placed where it began, as a first-order one is: x^1.5 at 0 has
    // gradient 0 and second derivative 0.75/sqrt(x) = inf
    let out = Command::new(bin)
        .args(["grad", "y = 2 * x\ny^1.5 + y", "x=0", "--hessian", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("second derivative") && msg.contains("`^`"),
        "{e}"
    );
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(2), Some(2)),
        "{e}"
    );
}

/// Value, gradient and Hessian against sympy's (`fixtures/sympy/`:
/// `make_reference.py` differentiates the same functions symbolically), for
/// programs that use every inverse hyperbolic, `log1p`, `expm1`, `clamp`,
/// `logsumexp`, `erf` and `erfc`.
#[test]
fn new_functions_match_sympy() {
    let text = include_str!("fixtures/sympy/reference.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 1e-13 * (1.0 + want.abs()),
            "{what}: {got:e}, sympy {want:e}"
        );
    };
    for c in cases {
        let src = c["program"].as_str().unwrap();
        let ins: Vec<(String, f64)> = ["x", "y", "z"]
            .iter()
            .map(|n| (n.to_string(), c["inputs"][n].as_f64().unwrap()))
            .collect();
        let opts = GradOptions {
            hessian: true,
            ..GradOptions::default()
        };
        let r = gradient(src, &ins, &opts).unwrap();
        close(
            r.value,
            c["value"].as_f64().unwrap(),
            &format!("{src}: value"),
        );
        let h = r.hessian.expect("asked for");
        for i in 0..3 {
            let want = c["gradient"][i].as_f64().unwrap();
            close(r.gradient[i].1, want, &format!("{src}: d/d{}", ins[i].0));
            for j in 0..3 {
                let want = c["hessian"][i][j].as_f64().unwrap();
                close(h[i][j], want, &format!("{src}: H[{i}][{j}]"));
            }
        }
    }
}
