//! Every elementary operation against finite differences across its domain,
//! the conventions at kinks, f32, custom operations and non-finite checking.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};

type Unary = for<'t> fn(Var<'t>) -> Var<'t>;
type Binary = for<'t> fn(Var<'t>, Var<'t>) -> Var<'t>;
/// Name, operation, exact (value, derivative), domain.
type Case = (&'static str, Unary, fn(f64) -> (f64, f64), f64, f64);

/// Evenly spread points in [lo, hi], avoiding the ends.
fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| lo + (hi - lo) * (k as f64 + 0.5) / n as f64)
        .collect()
}

fn check_unary(name: &str, f: Unary, exact: fn(f64) -> (f64, f64), lo: f64, hi: f64) {
    for x in grid(lo, hi, 40) {
        // value and derivative against the closed form
        let tape = Tape::new();
        let v = tape.var(x);
        let y = f(v);
        let (fx, dfx) = exact(x);
        let d = y.backward().wrt(v);
        let tol = 1e-13 * (1.0 + fx.abs());
        assert!(
            (y.value() - fx).abs() <= tol,
            "{name}({x}) = {}, want {fx}",
            y.value()
        );
        let tol = 1e-12 * (1.0 + dfx.abs());
        assert!((d - dfx).abs() <= tol, "{name}'({x}) = {d}, want {dfx}");
        // and against finite differences
        let r = gradcheck(|xs| f(xs[0]), &[x], GradcheckOptions::default());
        assert!(r.passed(), "{name} at {x}: {r}");
    }
}

/// erf by its Maclaurin series 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1)),
/// summed until the terms vanish: an independent check of libm's erf for
/// |x| ≤ 2.5 (the terms grow to about 15 there, so the sum keeps ~1e-15).
fn erf_series(x: f64) -> f64 {
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    loop {
        n += 1.0;
        term *= -x * x / n;
        let t = term / (2.0 * n + 1.0);
        sum += t;
        if t.abs() < 1e-18 * sum.abs().max(1e-300) {
            break;
        }
    }
    std::f64::consts::FRAC_2_SQRT_PI * sum
}

#[test]
fn erfc_keeps_its_tail() {
    // erfc(x) ~ e^(−x²) / (x√π) (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) …)
    for x in [6.0f64, 10.0, 20.0] {
        let tape = Tape::new();
        let v = tape.var(x);
        let y = v.erfc();
        let u = 1.0 / (2.0 * x * x);
        let series = 1.0 - u + 3.0 * u * u - 15.0 * u * u * u + 105.0 * u.powi(4);
        let want = (-x * x).exp() / (x * std::f64::consts::PI.sqrt()) * series;
        assert!(
            (y.value() / want - 1.0).abs() < 1e-5,
            "erfc({x}) = {:e}",
            y.value()
        );
        assert!(y.value() > 0.0 && v.erf().value() == 1.0);
        let d = y.backward().wrt(v);
        let want_d = -std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
        assert!((d / want_d - 1.0).abs() < 1e-14, "erfc'({x})");
    }
}

#[test]
fn unary_functions_across_their_domains() {
    let cases: Vec<Case> = vec![
        ("exp", |x| x.exp(), |x| (x.exp(), x.exp()), -5.0, 5.0),
        ("ln", |x| x.ln(), |x| (x.ln(), 1.0 / x), 0.05, 20.0),
        (
            "log2",
            |x| x.log2(),
            |x| (x.log2(), 1.0 / (x * std::f64::consts::LN_2)),
            0.05,
            20.0,
        ),
        (
            "log10",
            |x| x.log10(),
            |x| (x.log10(), 1.0 / (x * std::f64::consts::LN_10)),
            0.05,
            20.0,
        ),
        (
            "sqrt",
            |x| x.sqrt(),
            |x| (x.sqrt(), 0.5 / x.sqrt()),
            0.05,
            20.0,
        ),
        (
            "cbrt",
            |x| x.cbrt(),
            |x| (x.cbrt(), 1.0 / (3.0 * x.cbrt().powi(2))),
            -8.0,
            8.0,
        ),
        (
            "powi3",
            |x| x.powi(3),
            |x| (x.powi(3), 3.0 * x * x),
            -3.0,
            3.0,
        ),
        (
            "powi-2",
            |x| x.powi(-2),
            |x| (x.powi(-2), -2.0 * x.powi(-3)),
            0.2,
            3.0,
        ),
        ("powi0", |x| x.powi(0), |_| (1.0, 0.0), -3.0, 3.0),
        ("square", |x| x.square(), |x| (x * x, 2.0 * x), -3.0, 3.0),
        (
            "recip",
            |x| x.recip(),
            |x| (1.0 / x, -1.0 / (x * x)),
            0.2,
            3.0,
        ),
        (
            "powf",
            |x| x.powf(2.5),
            |x| (x.powf(2.5), 2.5 * x.powf(1.5)),
            0.05,
            4.0,
        ),
        ("sin", |x| x.sin(), |x| (x.sin(), x.cos()), -7.0, 7.0),
        ("cos", |x| x.cos(), |x| (x.cos(), -x.sin()), -7.0, 7.0),
        (
            "tan",
            |x| x.tan(),
            |x| (x.tan(), 1.0 / x.cos().powi(2)),
            -1.4,
            1.4,
        ),
        (
            "asin",
            |x| x.asin(),
            |x| (x.asin(), 1.0 / (1.0 - x * x).sqrt()),
            -0.95,
            0.95,
        ),
        (
            "acos",
            |x| x.acos(),
            |x| (x.acos(), -1.0 / (1.0 - x * x).sqrt()),
            -0.95,
            0.95,
        ),
        (
            "atan",
            |x| x.atan(),
            |x| (x.atan(), 1.0 / (1.0 + x * x)),
            -10.0,
            10.0,
        ),
        ("sinh", |x| x.sinh(), |x| (x.sinh(), x.cosh()), -4.0, 4.0),
        ("cosh", |x| x.cosh(), |x| (x.cosh(), x.sinh()), -4.0, 4.0),
        (
            "tanh",
            |x| x.tanh(),
            |x| (x.tanh(), 1.0 - x.tanh().powi(2)),
            -4.0,
            4.0,
        ),
        (
            "asinh",
            |x| x.asinh(),
            |x| ((x + (x * x + 1.0).sqrt()).ln(), 1.0 / (x * x + 1.0).sqrt()),
            0.0,
            10.0,
        ),
        (
            "asinh_neg",
            |x| x.asinh(),
            |x| {
                (
                    -(-x + (x * x + 1.0).sqrt()).ln(),
                    1.0 / (x * x + 1.0).sqrt(),
                )
            },
            -10.0,
            0.0,
        ),
        (
            "acosh",
            |x| x.acosh(),
            |x| ((x + (x * x - 1.0).sqrt()).ln(), 1.0 / (x * x - 1.0).sqrt()),
            1.05,
            10.0,
        ),
        (
            "atanh",
            |x| x.atanh(),
            |x| (0.5 * ((1.0 + x) / (1.0 - x)).ln(), 1.0 / (1.0 - x * x)),
            -0.95,
            0.95,
        ),
        (
            "ln_1p",
            |x| x.ln_1p(),
            |x| ((1.0 + x).ln(), 1.0 / (1.0 + x)),
            -0.9,
            5.0,
        ),
        (
            "exp_m1",
            |x| x.exp_m1(),
            |x| (x.exp() - 1.0, x.exp()),
            -5.0,
            5.0,
        ),
        (
            "erf",
            |x| x.erf(),
            |x| {
                (
                    erf_series(x),
                    std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
                )
            },
            -2.5,
            2.5,
        ),
        (
            "erfc",
            |x| x.erfc(),
            |x| {
                (
                    1.0 - erf_series(x),
                    -std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
                )
            },
            -2.5,
            1.0,
        ),
        (
            "sigmoid",
            |x| x.sigmoid(),
            |x| {
                let s = 1.0 / (1.0 + (-x).exp());
                (s, s * (1.0 - s))
            },
            -30.0,
            30.0,
        ),
        (
            "softplus",
            |x| x.softplus(),
            |x| ((1.0 + x.exp()).ln(), 1.0 / (1.0 + (-x).exp())),
            -20.0,
            20.0,
        ),
        (
            "relu",
            |x| x.relu(),
            |x| (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
            -3.0,
            3.1,
        ),
        ("abs", |x| x.abs(), |x| (x.abs(), x.signum()), -3.0, 3.1),
        ("neg", |x| -x, |x| (-x, -1.0), -3.0, 3.0),
        ("add_c", |x| x + 2.5, |x| (x + 2.5, 1.0), -3.0, 3.0),
        ("c_sub", |x| 2.5 - x, |x| (2.5 - x, -1.0), -3.0, 3.0),
        ("sub_c", |x| x - 2.5, |x| (x - 2.5, 1.0), -3.0, 3.0),
        ("c_mul", |x| 2.5 * x, |x| (2.5 * x, 2.5), -3.0, 3.0),
        ("div_c", |x| x / 4.0, |x| (x / 4.0, 0.25), -3.0, 3.0),
        (
            "c_div",
            |x| 3.0 / x,
            |x| (3.0 / x, -3.0 / (x * x)),
            0.2,
            3.0,
        ),
    ];
    for (name, f, exact, lo, hi) in cases {
        check_unary(name, f, exact, lo, hi);
    }
}

#[test]
fn ln_1p_and_exp_m1_keep_the_digits_near_zero() {
    // ln(1 + x) = x − x²/2 + x³/3 …, e^x − 1 = x + x²/2 + …: at |x| = 1e-10
    // two terms are exact to 1e-30, where (1 + x).ln() is off by ~1e-17
    for x in [1e-10, -1e-10, 3e-15, -2.5e-300] {
        let tape = Tape::new();
        let v = tape.var(x);
        let l = v.ln_1p();
        let want = x - x * x / 2.0;
        assert!((l.value() - want).abs() <= 1e-15 * x.abs(), "ln_1p({x})");
        assert_eq!(l.backward().wrt(v), 1.0 / (1.0 + x));
        let m = v.exp_m1();
        let want = x + x * x / 2.0;
        assert!((m.value() - want).abs() <= 1e-15 * x.abs(), "exp_m1({x})");
        assert_eq!(m.backward().wrt(v), m.value() + 1.0);
    }
    // f32 too
    let tape = Tape::<f32>::with_capacity(8);
    let v = tape.var(1e-6f32);
    assert!((v.ln_1p().value() - 1e-6).abs() < 1e-12);
    assert!((v.exp_m1().value() - 1e-6).abs() < 1e-12);
}

#[test]
fn exp_m1_and_atanh_derivatives_keep_their_digits() {
    // e^x as exp_m1's partial: expm1(x) + 1 would round to 0 below -37
    for x in [-50.0, -20.0, -1.0, 0.0, 3.0] {
        let tape = Tape::new();
        let v = tape.var(x);
        assert_eq!(v.exp_m1().backward().wrt(v), x.exp(), "exp_m1'({x})");
    }
    let tape = Tape::<f32>::with_capacity(4);
    let v = tape.var(-17.0f32);
    let d = v.exp_m1().backward().wrt(v);
    assert!((d / (-17.0f32).exp() - 1.0).abs() < 1e-6, "f32: {d}");
    // atanh' near 1: 1/((1 − x)(1 + x)), exact where 1 − x is
    let x = 1.0 - 1e-10;
    let tape = Tape::new();
    let v = tape.var(x);
    let want = 1.0 / ((1.0 - x) * (1.0 + x));
    let got = v.atanh().backward().wrt(v);
    assert!(
        (got / want - 1.0).abs() < 4.0 * f64::EPSILON,
        "{got} vs {want}"
    );
    assert!(((1.0 / (1.0 - x * x)) / want - 1.0).abs() > 1e-12);
}

#[test]
fn min_max_and_clamp_pass_nan_on() {
    let tape = Tape::new();
    let (x, nan) = (tape.var(0.3), tape.var(f64::NAN));
    for y in [
        x.max(nan),
        nan.max(x),
        x.min(nan),
        nan.min(x),
        x.max(f64::NAN),
        nan.clamp(0.0, 1.0),
        x.clamp(f64::NAN, 1.0),
        x.clamp(0.0, f64::NAN),
        x.clamp(nan, 1.0),
        nan.relu(),
        (x - 1.0).ln().relu(),
    ] {
        assert!(y.value().is_nan());
    }
    // ties still go to the first argument
    let g = x.max(0.3).backward();
    assert_eq!(g.wrt(x), 1.0);
    // and a checked sweep names the operation that made the NaN
    let mut checked = Tape::new();
    checked.set_check_finite(true);
    let z = checked.var(-1.0);
    let err = (z.ln().relu() + z).try_backward().unwrap_err();
    assert_eq!((err.op.as_str(), err.in_backward), ("ln", false));
}

#[test]
fn inverse_hyperbolics_at_their_edges() {
    let tape = Tape::new();
    // acosh at 1: value 0, derivative +inf; below 1: NaN
    let v = tape.var(1.0);
    let y = v.acosh();
    assert_eq!(y.value(), 0.0);
    assert_eq!(y.backward().wrt(v), f64::INFINITY);
    assert!(tape.var(0.5).acosh().value().is_nan());
    // atanh at ±1: ±inf, derivative +inf
    for s in [1.0, -1.0] {
        let v = tape.var(s);
        let y = v.atanh();
        assert_eq!(y.value(), s * f64::INFINITY);
        assert_eq!(y.backward().wrt(v), f64::INFINITY);
    }
    // asinh is odd and does not overflow where x² would
    let v = tape.var(-1e200);
    let y = v.asinh();
    assert!((y.value() + (2e200f64).ln()).abs() < 1e-12 * 461.0);
    assert!((y.backward().wrt(v) - 1e-200).abs() < 1e-212);
}

#[test]
fn clamp_passes_the_gradient_inside_and_at_the_bounds() {
    // (x, lo, hi) → (value, ∂/∂x)
    let cases = [
        (0.5, 0.0, 1.0, 0.5, 1.0),
        (-2.0, 0.0, 1.0, 0.0, 0.0),
        (3.0, 0.0, 1.0, 1.0, 0.0),
        (0.0, 0.0, 1.0, 0.0, 1.0),
        (1.0, 0.0, 1.0, 1.0, 1.0),
        // lo > hi gives hi, not a panic
        (0.5, 2.0, 1.0, 1.0, 0.0),
    ];
    for (x, lo, hi, value, d) in cases {
        let tape = Tape::new();
        let v = tape.var(x);
        let y = v.clamp(lo, hi);
        assert_eq!(y.value(), value, "clamp({x}, {lo}, {hi})");
        assert_eq!(y.backward().wrt(v), d, "clamp'({x}, {lo}, {hi})");
    }
    // recorded bounds get the gradient where they are in force
    let tape = Tape::new();
    let (x, lo, hi) = (tape.var(-1.0), tape.var(0.0), tape.var(2.0));
    let g = x.clamp(lo, hi).backward();
    assert_eq!((g.wrt(x), g.wrt(lo), g.wrt(hi)), (0.0, 1.0, 0.0));
    let x = tape.var(5.0);
    let g = x.clamp(lo, hi).backward();
    assert_eq!((g.wrt(x), g.wrt(lo), g.wrt(hi)), (0.0, 0.0, 1.0));
}

#[test]
fn logsumexp_is_stable_and_its_gradient_is_the_softmax() {
    let tape = Tape::new();
    assert!(Var::logsumexp(&[] as &[Var]).is_none());
    // moderate values: the plain formula
    let xs: Vec<f64> = vec![0.3, -1.2, 2.5, 0.0, 1.7];
    let vs: Vec<Var> = xs.iter().map(|&x| tape.var(x)).collect();
    let y = Var::logsumexp(&vs).unwrap();
    let z: f64 = xs.iter().map(|x| x.exp()).sum();
    assert!((y.value() - z.ln()).abs() < 1e-14);
    let g = y.backward();
    for (x, v) in xs.iter().zip(&vs) {
        assert!((g.wrt(*v) - x.exp() / z).abs() < 1e-15, "softmax at {x}");
    }
    let r = gradcheck(
        |v| Var::logsumexp(v).unwrap(),
        &xs,
        GradcheckOptions::default(),
    );
    assert!(r.passed(), "{r}");
    // large and tiny values neither overflow nor underflow
    let vs = [tape.var(800.0), tape.var(799.0), tape.var(-900.0)];
    let y = Var::logsumexp(&vs).unwrap();
    let want = 800.0 + (1.0 + (-1.0f64).exp()).ln();
    assert!((y.value() - want).abs() < 1e-12);
    let g = y.backward();
    let s0 = 1.0 / (1.0 + (-1.0f64).exp());
    assert!((g.wrt(vs[0]) - s0).abs() < 1e-15);
    assert!((g.wrt(vs[1]) - (1.0 - s0)).abs() < 1e-15);
    assert_eq!(g.wrt(vs[2]), 0.0);
    // a result near 0 keeps its digits (ln(1 + e^-40) = e^-40 to 1e-35)
    let (a, b) = (tape.var(-40.0), tape.var(0.0));
    let y = Var::logsumexp(&[a, b]).unwrap();
    assert!(
        (y.value() / (-40f64).exp() - 1.0).abs() < 1e-15,
        "{}",
        y.value()
    );
    let g = y.backward();
    assert!((g.wrt(a) / (-40f64).exp() - 1.0).abs() < 1e-15);
    assert_eq!(g.wrt(b), 1.0 / (1.0 + (-40f64).exp()));
    // a NaN anywhere gives NaN; +inf gives +inf
    for xs in [[f64::NAN, 1.0], [1.0, f64::NAN]] {
        let vs = [tape.var(xs[0]), tape.var(xs[1])];
        assert!(Var::logsumexp(&vs).unwrap().value().is_nan());
    }
    let vs = [tape.var(1.0), tape.var(f64::INFINITY)];
    assert_eq!(Var::logsumexp(&vs).unwrap().value(), f64::INFINITY);
    // one term is itself; every term −∞ gives −∞
    let v = tape.var(-3.0);
    let y = Var::logsumexp(&[v]).unwrap();
    assert_eq!((y.value(), y.backward().wrt(v)), (-3.0, 1.0));
    let y = Var::logsumexp(&[tape.var(f64::NEG_INFINITY), tape.var(f64::NEG_INFINITY)]).unwrap();
    assert_eq!(y.value(), f64::NEG_INFINITY);
}

/// `Var::logsumexp` before its infinite shifts were handled: the formula
/// its doc states, from public operations, for a finite largest value.
fn lse_reference<'t>(xs: &[Var<'t>]) -> Var<'t> {
    let (mut k, mut m) = (0, xs[0].value());
    for (i, x) in xs.iter().enumerate() {
        if x.value() > m || (m.is_nan() && !x.value().is_nan()) {
            (k, m) = (i, x.value());
        }
    }
    assert!(m.is_finite(), "the reference is for a finite largest value");
    let lead = (xs[k] - m).exp_m1();
    let rest: Option<Var> = xs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != k)
        .map(|(_, &x)| (x - m).exp())
        .sum();
    let inner = match rest {
        Some(r) => lead + r,
        None => lead,
    };
    inner.ln_1p() + m
}

#[test]
fn logsumexp_of_infinite_inputs_has_the_limits_gradient() {
    let ninf = f64::NEG_INFINITY;
    // every input −∞: the limit of x = (t, t, …) as t → −∞, softmax 1/n
    for n in 1..=5 {
        let tape = Tape::new();
        let vs: Vec<Var> = (0..n).map(|_| tape.var(ninf)).collect();
        let y = Var::logsumexp(&vs).unwrap();
        assert_eq!(y.value(), ninf);
        let g = y.backward();
        for v in &vs {
            assert_eq!(g.wrt(*v), 1.0 / n as f64, "n = {n}");
        }
    }
    // on f32 too
    let tape = Tape::<f32>::default();
    let vs = tape.vars(&[f32::NEG_INFINITY; 4]);
    let g = Var::logsumexp(&vs).unwrap().backward();
    assert!(vs.iter().all(|&v| g.wrt(v) == 0.25));
    // +∞ inputs: the limit as they grow together, 1/j to each of the j
    // of them and 0 to every other input
    let tape = Tape::new();
    let vs = tape.vars(&[1.0, f64::INFINITY, ninf, f64::INFINITY, -2.0]);
    let y = Var::logsumexp(&vs).unwrap();
    assert_eq!(y.value(), f64::INFINITY);
    let g = y.backward();
    let gs: Vec<f64> = vs.iter().map(|&v| g.wrt(v)).collect();
    assert_eq!(gs, [0.0, 0.5, 0.0, 0.5, 0.0]);
    // a NaN input: value and every gradient NaN
    for xs in [[ninf, f64::NAN], [f64::NAN, 1.0], [f64::INFINITY, f64::NAN]] {
        let vs = tape.vars(&xs);
        let y = Var::logsumexp(&vs).unwrap();
        assert!(y.value().is_nan(), "{xs:?}");
        let g = y.backward();
        assert!(vs.iter().all(|&v| g.wrt(v).is_nan()), "{xs:?}");
    }
    // finite inputs, and finite mixed with −∞: the same bits as before
    let cases: [&[f64]; 6] = [
        &[0.3, -1.2, 2.5, 0.0, 1.7],
        &[800.0, 799.0, -900.0],
        &[-40.0, 0.0],
        &[ninf, 2.0, ninf],
        &[ninf, -1e308, 3.5, 3.5],
        &[7.0],
    ];
    for xs in cases {
        let tape = Tape::new();
        let vs = tape.vars(xs);
        let y = Var::logsumexp(&vs).unwrap();
        let r = lse_reference(&vs);
        assert_eq!(y.value().to_bits(), r.value().to_bits(), "{xs:?}");
        let (gy, gr) = (y.backward(), r.backward());
        for &v in &vs {
            assert_eq!(gy.wrt(v).to_bits(), gr.wrt(v).to_bits(), "{xs:?}");
        }
    }
}

#[test]
fn softplus_and_sigmoid_do_not_overflow() {
    let tape = Tape::new();
    for x in [-800.0, -40.0, 40.0, 800.0] {
        let v = tape.var(x);
        let s = v.softplus();
        let g = s.backward().wrt(v);
        assert!(s.value().is_finite() && g.is_finite(), "softplus({x})");
        let s = v.sigmoid();
        assert!(s.value().is_finite() && s.backward().wrt(v).is_finite());
    }
}

fn check_binary(name: &str, f: Binary, pts: &[(f64, f64)]) {
    for &(a, b) in pts {
        let r = gradcheck(|xs| f(xs[0], xs[1]), &[a, b], GradcheckOptions::default());
        assert!(r.passed(), "{name} at ({a}, {b}): {r}");
    }
}

#[test]
fn binary_functions() {
    let pts: Vec<(f64, f64)> = grid(-3.0, 3.0, 9)
        .into_iter()
        .flat_map(|a| grid(-2.5, 2.7, 7).into_iter().map(move |b| (a, b)))
        .collect();
    let pos: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| (a.abs() + 0.1, b)).collect();
    let nonzero_b: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1.abs() > 0.2).collect();
    check_binary("add", |a, b| a + b, &pts);
    check_binary("sub", |a, b| a - b, &pts);
    check_binary("mul", |a, b| a * b, &pts);
    check_binary("div", |a, b| a / b, &nonzero_b);
    check_binary("pow", |a, b| a.powf(b), &pos);
    // atan2 jumps by 2π across y = 0, x < 0 (its branch cut)
    let off_cut: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0.abs() > 0.1 || p.1 > 0.0)
        .collect();
    check_binary("atan2", |a, b| a.atan2(b), &off_cut);
    check_binary("hypot", |a, b| a.hypot(b), &pts);
    let apart: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| (p.0 - p.1).abs() > 0.1)
        .collect();
    check_binary("min", |a, b| a.min(b), &apart);
    check_binary("max", |a, b| a.max(b), &apart);
    check_binary(
        "mixed",
        |a, b| (a * b).sin() + a.exp() / (1.0 + b * b),
        &pts,
    );
}

#[test]
fn conventions_at_kinks() {
    let tape = Tape::new();
    let z = tape.var(0.0);
    assert_eq!(z.abs().backward().wrt(z), 0.0, "abs'(0) = 0");
    assert_eq!(z.relu().backward().wrt(z), 0.0, "relu'(0) = 0");
    let (a, b) = (tape.var(2.0), tape.var(2.0));
    let m = a.min(b);
    let g = m.backward();
    assert_eq!(
        (g.wrt(a), g.wrt(b)),
        (1.0, 0.0),
        "min tie goes to the first"
    );
    let m = b.max(a);
    let g = m.backward();
    assert_eq!(
        (g.wrt(b), g.wrt(a)),
        (1.0, 0.0),
        "max tie goes to the first"
    );
    let o = tape.var(0.0);
    let g = o.atan2(z).backward();
    assert_eq!((g.wrt(o), g.wrt(z)), (0.0, 0.0));
    let g = o.hypot(z).backward();
    assert_eq!((g.wrt(o), g.wrt(z)), (0.0, 0.0));
    // pow(0, y): d/dy = 0 rather than 0 * ln 0
    let y = tape.var(2.0);
    let g = z.powf(y).backward();
    assert_eq!(g.wrt(y), 0.0);
    // sqrt'(0) is infinite, as in calculus
    assert!(z.sqrt().backward().wrt(z).is_infinite());
}

#[test]
fn a_zero_adjoint_does_not_spread_nan() {
    // y = x + 0 * sqrt(x) at x = 0: the sqrt branch carries no gradient, so
    // its infinite local derivative must not turn dy/dx into NaN.
    let tape = Tape::new();
    let x = tape.var(0.0);
    let y = x + x.sqrt() * 0.0;
    assert_eq!(y.backward().wrt(x), 1.0);
}

/// The checked sweep reports `0 × inf` where the zero came from
/// arithmetic (indeterminate: the plain sweep's 0 can be wrong), never
/// where it came from a selection (the branch `max`, `min` or `relu` did
/// not take, `abs` and `hypot` at their kink); and where it reports
/// nothing, its gradients are the plain sweep's, bit for bit.
#[test]
fn checked_backward_reports_zero_times_infinity() {
    let mut tape = Tape::new();
    tape.set_check_finite(true);
    let x = tape.var(0.0);
    let r = x.sqrt();
    let products = [
        ("sqrt(x)²", r.powi(2)),
        ("sqrt(x)·sqrt(x)", r * r),
        ("cos(sqrt(x))", r.cos()),
        ("x + 0·sqrt(x)", x + r * 0.0),
        // hypot is smooth off the origin: its zero partial is arithmetic
        ("hypot(sqrt(x), 1)", r.hypot(1.0)),
        ("sqrt(x)·x, through a custom op", {
            let y = tape.custom_op("twice", &[r], vec![2.0 * r.value()], |g, o| {
                o[0] = 2.0 * g[0]
            });
            y[0] * x
        }),
    ];
    for (name, y) in products {
        let err = y.try_backward().unwrap_err();
        assert!(err.zero_adjoint && err.in_backward, "{name}: {err:?}");
        assert_eq!((err.op.as_str(), err.node), ("sqrt", r.index()), "{name}");
        assert!(err.value.is_infinite(), "{name}: {err}");
        assert!(err.to_string().contains("0 × inf"), "{err}");
    }
    let selections = [
        x.max(r - 5.0),
        (r + 5.0).min(x * 2.0),
        (-1.0 - r).relu() + x,
        r.abs() + x,
        x.hypot(0.0) + (r * 0.0).relu(),
    ];
    for y in selections {
        let checked = y.try_backward().unwrap();
        let plain = y.backward();
        assert_eq!(checked.wrt(x).to_bits(), plain.wrt(x).to_bits(), "{y:?}");
    }
    // away from 0 nothing is undefined
    let x = tape.var(4.0);
    assert_eq!(x.sqrt().powi(2).try_backward().unwrap().wrt(x), 1.0);
}

#[test]
fn f32_tapes() {
    let tape = Tape::<f32>::default();
    let x = tape.var(0.5f32);
    let y = (x * x).sin() + 2.0f32 * x.exp() - 1.0f32 / x;
    let g = y.backward().wrt(x);
    let xf = 0.5f64;
    let exact = 2.0 * xf * (xf * xf).cos() + 2.0 * xf.exp() + 1.0 / (xf * xf);
    assert!((g as f64 - exact).abs() < 1e-5, "{g} vs {exact}");
    let r = gradcheck(
        |v| (v[0] * v[1]).tanh() + v[1].sqrt(),
        &[0.3f32, 1.7f32],
        GradcheckOptions {
            step: 1e-2,
            atol: 1e-3,
            rtol: 1e-3,
        },
    );
    assert!(r.passed(), "{r}");
}

#[test]
fn compound_assignment_and_unary_minus() {
    let tape = Tape::new();
    let x = tape.var(3.0);
    let mut y = x;
    y += x; // 2x
    y *= x; // 2x^2
    y -= 1.0; // 2x^2 - 1
    y /= 2.0; // x^2 - 1/2
    y += 1.0;
    y *= 4.0;
    let y = -y;
    assert_eq!(y.value(), -(9.0 + 0.5) * 4.0);
    assert_eq!(y.backward().wrt(x), -4.0 * 2.0 * 3.0);
}

#[test]
fn custom_op_matches_plain_operations() {
    // A fused "softmax-weighted sum" written once as a custom op with a
    // hand-written VJP, once with plain operations.
    let xs = [0.3, -1.2, 2.0, 0.7];
    let plain = {
        let tape = Tape::new();
        let v = tape.vars(&xs);
        let e: Vec<Var> = v.iter().map(|x| x.exp()).collect();
        let z = e.iter().copied().sum::<Option<Var>>().unwrap();
        let y = v
            .iter()
            .zip(&e)
            .map(|(x, ex)| *x * *ex / z)
            .sum::<Option<Var>>()
            .unwrap();
        let y = y * y;
        let g = y.backward().wrt_all(&v);
        (y.value(), g)
    };
    let fused = {
        let tape = Tape::new();
        let v = tape.vars(&xs);
        let x: Vec<f64> = xs.to_vec();
        let e: Vec<f64> = x.iter().map(|a| a.exp()).collect();
        let z: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|a| a / z).collect();
        let s: f64 = x.iter().zip(&p).map(|(a, b)| a * b).sum();
        let out = tape.custom_op("softmax_mean", &v, vec![s], move |gy, gx| {
            for i in 0..x.len() {
                // d s / d x_i = p_i (1 + x_i - s)
                gx[i] += gy[0] * p[i] * (1.0 + x[i] - s);
            }
        });
        let y = out[0] * out[0];
        let g = y.backward().wrt_all(&v);
        (y.value(), g)
    };
    assert!((plain.0 - fused.0).abs() < 1e-14);
    for (a, b) in plain.1.iter().zip(&fused.1) {
        assert!((a - b).abs() < 1e-13, "{a} vs {b}");
    }
}

#[test]
fn custom_op_with_many_outputs_and_a_million_values() {
    // y_i = 3 x_i for 10^6 values, as one node per output and no node per
    // element inside the kernel; loss = sum of y_i * i.
    let n = 1_000_000;
    let tape = Tape::new();
    let xs: Vec<f64> = (0..n).map(|i| i as f64 * 1e-6).collect();
    let v = tape.vars(&xs);
    let before = tape.len();
    let ys = tape.custom_op(
        "triple",
        &v,
        xs.iter().map(|x| 3.0 * x).collect(),
        |gy, gx| {
            for (g, y) in gx.iter_mut().zip(gy) {
                *g += 3.0 * y;
            }
        },
    );
    assert_eq!(tape.len() - before, n, "one node per output");
    let weights: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let loss = chainrule::vjp(&ys, &weights);
    for i in [0, 1, 6, 7, 999_999] {
        assert_eq!(loss.wrt(v[i]), 3.0 * (i % 7) as f64);
    }
}

#[test]
fn custom_ops_chain_and_partial_use() {
    // Two custom ops in sequence; the output uses only some of the first
    // op's outputs, and one output of the second.
    let tape = Tape::new();
    let x = tape.vars(&[1.0, 2.0, 3.0]);
    let vals: Vec<f64> = x.iter().map(|v| v.value()).collect();
    let sq = tape.custom_op(
        "square_each",
        &x,
        vals.iter().map(|a| a * a).collect(),
        move |gy, gx| {
            for i in 0..3 {
                gx[i] += 2.0 * vals[i] * gy[i];
            }
        },
    );
    let mid = sq[0] + sq[2] * 2.0; // 1 + 18 = 19
    let m = mid.value();
    let out = tape.custom_op("twice", &[mid, x[1]], vec![2.0 * m, 7.0], |gy, gx| {
        gx[0] += 2.0 * gy[0];
        gx[1] += 0.0 * gy[1];
    });
    let g = out[0].backward();
    assert_eq!(out[0].value(), 38.0);
    assert_eq!(g.wrt_all(&x), vec![2.0 * 2.0, 0.0, 2.0 * 2.0 * 2.0 * 3.0]);
    // the output is a custom op's output that is not its first
    let g = out[1].backward();
    assert_eq!(g.wrt_all(&x), vec![0.0, 0.0, 0.0]);
}

#[test]
fn non_finite_values_name_their_operation() {
    let mut tape = Tape::new();
    tape.set_check_finite(true);
    let x = tape.var(-1.0);
    let a = x * 2.0;
    let b = a.ln(); // NaN: the first bad operation
    let c = b.exp() + 1.0;
    let err = c.try_backward().unwrap_err();
    assert_eq!(err.op, "ln");
    assert_eq!(err.node, b.index());
    assert!(!err.in_backward);
    assert!(err.to_string().contains("`ln`"), "{err}");

    tape.clear();
    let x = tape.var(0.0);
    let y = x.sqrt() * 3.0; // value fine, gradient infinite
    assert!(tape.first_non_finite().is_none());
    let err = y.try_backward().unwrap_err();
    assert!(err.in_backward);
    assert_eq!(err.op, "sqrt");

    tape.clear();
    let x = tape.var(4.0);
    let y = x.sqrt() * 3.0;
    let g = y.try_backward().expect("all finite");
    assert_eq!(g.wrt(x), 0.75);
}

#[test]
fn try_backward_reports_only_what_the_output_depends_on() {
    let mut tape = Tape::new();
    tape.set_check_finite(true);
    let x = tape.var(2.0);
    let off = (x - 3.0).ln(); // NaN, on a branch `y` does not use
    let y = x * x + 1.0;
    assert_eq!(tape.first_non_finite().map(|b| b.node), Some(off.index()));
    let g = y.try_backward().expect("the NaN is not on y's path");
    assert_eq!(g.wrt(x), 4.0);
    drop(g);
    // on the path it is reported, named as before; through a zero
    // partial too (the output's value is computed from it)
    let z = y + off;
    let err = z.try_backward().unwrap_err();
    assert_eq!((err.node, err.op.as_str()), (off.index(), "ln"));
    assert!(!err.in_backward);
    let err = (y + off * 0.0).try_backward().unwrap_err();
    assert_eq!(err.node, off.index());
    // an earlier NaN off the path does not hide a later one on it
    let on = (x - 5.0).sqrt();
    let err = (y * on).try_backward().unwrap_err();
    assert_eq!((err.node, err.op.as_str()), (on.index(), "sqrt"));
    // nor does one off the path hide a gradient that becomes infinite
    let s = (x - 2.0).sqrt() * 3.0;
    let err = s.try_backward().unwrap_err();
    assert!(err.in_backward);
    assert_eq!(err.op, "sqrt");
    // through a custom operation: its inputs are on its outputs' path
    let c = tape.custom_op("twice", &[off, x], vec![off.value() * 2.0, 1.0], |_, _| {});
    assert_eq!(c[1].try_backward().unwrap_err().node, off.index());
    assert!((x * 3.0).try_backward().is_ok());
}

#[test]
fn non_finite_custom_op_is_named() {
    let mut tape = Tape::new();
    tape.set_check_finite(true);
    let x = tape.var(1.0);
    let y = tape.custom_op("kernel", &[x], vec![f64::INFINITY], |_, _| {})[0];
    let err = (y * 2.0).try_backward().unwrap_err();
    assert_eq!(err.op, "custom:kernel");
}

#[test]
#[should_panic(expected = "different tapes")]
fn mixing_tapes_is_refused() {
    let t1 = Tape::new();
    let t2 = Tape::new();
    let _ = t1.var(1.0) + t2.var(2.0);
}
