//! Forward mode and second derivatives: dual numbers against closed-form
//! derivatives and central differences; Hessians and Hessian-vector
//! products (forward-over-reverse) against closed forms and against
//! differences of the reverse gradient; symmetry; forward and reverse
//! Jacobians of random programs.
#![allow(clippy::needless_range_loop)] // matrix indices read best as i, j

use std::cell::Cell;

use chainrule::{
    grad_hessian, gradient, gradient_of, hessian, hessian_of, hvp, hvp_of, jacobian_auto,
    jacobian_forward, jacobian_reverse, jvp, try_grad_hessian, try_gradient, try_hvp, Dual, DualN,
    Function, Scalar, Tape, TryFunction, TryRecord, Var, VectorFunction,
};
use proptest::prelude::*;

// ---- helpers ---------------------------------------------------------------

fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    (a - b).abs() <= atol + rtol * a.abs().max(b.abs())
}

#[track_caller]
fn assert_close(a: f64, b: f64, rtol: f64, atol: f64, what: &str) {
    assert!(
        close(a, b, rtol, atol),
        "{what}: {a:e} vs {b:e} (diff {:e})",
        (a - b).abs()
    );
}

// ---- unary elementary functions: value, first and second derivative -------

/// Every unary function a `Var` offers, with its closed-form first and
/// second derivatives and the points where it is checked.
struct UnaryCase {
    name: &'static str,
    d: fn(f64) -> (f64, f64, f64),
    points: &'static [f64],
}

const ANY: &[f64] = &[-1.7, -0.4, 0.3, 1.1, 2.5];
const POS: &[f64] = &[0.2, 0.9, 1.7, 4.0];
/// erf's value as the engine computes it (libm's); `ops.rs` checks it
/// against a series, so the cases here test only the derivatives.
fn erf_value(x: f64) -> f64 {
    chainrule::Scalar::erf(x)
}

const UNIT: &[f64] = &[-0.8, -0.3, 0.1, 0.6, 0.95];
const ABOVE_ONE: &[f64] = &[1.05, 1.6, 3.0, 12.0];
const ABOVE_MINUS_ONE: &[f64] = &[-0.9, -0.2, 1e-9, 0.7, 5.0];

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn unary_cases() -> Vec<UnaryCase> {
    vec![
        UnaryCase {
            name: "exp",
            d: |x| (x.exp(), x.exp(), x.exp()),
            points: ANY,
        },
        UnaryCase {
            name: "ln",
            d: |x| (x.ln(), 1.0 / x, -1.0 / (x * x)),
            points: POS,
        },
        UnaryCase {
            name: "log2",
            d: |x| {
                let l = std::f64::consts::LN_2;
                (x.log2(), 1.0 / (x * l), -1.0 / (x * x * l))
            },
            points: POS,
        },
        UnaryCase {
            name: "log10",
            d: |x| {
                let l = std::f64::consts::LN_10;
                (x.log10(), 1.0 / (x * l), -1.0 / (x * x * l))
            },
            points: POS,
        },
        UnaryCase {
            name: "sqrt",
            d: |x| (x.sqrt(), 0.5 / x.sqrt(), -0.25 * x.powf(-1.5)),
            points: POS,
        },
        UnaryCase {
            name: "cbrt",
            d: |x| {
                let c = x.cbrt();
                (c, 1.0 / (3.0 * c * c), -2.0 / (9.0 * c.powi(5)))
            },
            points: ANY,
        },
        UnaryCase {
            name: "powi3",
            d: |x| (x.powi(3), 3.0 * x * x, 6.0 * x),
            points: ANY,
        },
        UnaryCase {
            name: "powi-2",
            d: |x| (x.powi(-2), -2.0 * x.powi(-3), 6.0 * x.powi(-4)),
            points: ANY,
        },
        UnaryCase {
            name: "powi0",
            d: |_| (1.0, 0.0, 0.0),
            points: ANY,
        },
        UnaryCase {
            name: "square",
            d: |x| (x * x, 2.0 * x, 2.0),
            points: ANY,
        },
        UnaryCase {
            name: "recip",
            d: |x| (1.0 / x, -1.0 / (x * x), 2.0 / (x * x * x)),
            points: ANY,
        },
        UnaryCase {
            name: "powf2.5",
            d: |x| (x.powf(2.5), 2.5 * x.powf(1.5), 3.75 * x.sqrt()),
            points: POS,
        },
        UnaryCase {
            name: "sin",
            d: |x| (x.sin(), x.cos(), -x.sin()),
            points: ANY,
        },
        UnaryCase {
            name: "cos",
            d: |x| (x.cos(), -x.sin(), -x.cos()),
            points: ANY,
        },
        UnaryCase {
            name: "tan",
            d: |x| {
                let t = x.tan();
                (t, 1.0 + t * t, 2.0 * t * (1.0 + t * t))
            },
            points: UNIT,
        },
        UnaryCase {
            name: "asin",
            d: |x| {
                let q = 1.0 - x * x;
                (x.asin(), 1.0 / q.sqrt(), x / q.powf(1.5))
            },
            points: UNIT,
        },
        UnaryCase {
            name: "acos",
            d: |x| {
                let q = 1.0 - x * x;
                (x.acos(), -1.0 / q.sqrt(), -x / q.powf(1.5))
            },
            points: UNIT,
        },
        UnaryCase {
            name: "atan",
            d: |x| {
                let q = 1.0 + x * x;
                (x.atan(), 1.0 / q, -2.0 * x / (q * q))
            },
            points: ANY,
        },
        UnaryCase {
            name: "sinh",
            d: |x| (x.sinh(), x.cosh(), x.sinh()),
            points: ANY,
        },
        UnaryCase {
            name: "cosh",
            d: |x| (x.cosh(), x.sinh(), x.cosh()),
            points: ANY,
        },
        UnaryCase {
            name: "tanh",
            d: |x| {
                let t = x.tanh();
                (t, 1.0 - t * t, -2.0 * t * (1.0 - t * t))
            },
            points: ANY,
        },
        UnaryCase {
            name: "asinh",
            d: |x| {
                let q = x * x + 1.0;
                (x.asinh(), 1.0 / q.sqrt(), -x / q.powf(1.5))
            },
            points: ANY,
        },
        UnaryCase {
            name: "acosh",
            d: |x| {
                let q = x * x - 1.0;
                (x.acosh(), 1.0 / q.sqrt(), -x / q.powf(1.5))
            },
            points: ABOVE_ONE,
        },
        UnaryCase {
            name: "atanh",
            d: |x| {
                let q = 1.0 - x * x;
                (x.atanh(), 1.0 / q, 2.0 * x / (q * q))
            },
            points: UNIT,
        },
        UnaryCase {
            name: "log1p",
            d: |x| {
                let q = 1.0 + x;
                (x.ln_1p(), 1.0 / q, -1.0 / (q * q))
            },
            points: ABOVE_MINUS_ONE,
        },
        UnaryCase {
            name: "expm1",
            d: |x| (x.exp_m1(), x.exp(), x.exp()),
            points: ANY,
        },
        UnaryCase {
            name: "erf",
            d: |x| {
                let d = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
                (erf_value(x), d, -2.0 * x * d)
            },
            points: ANY,
        },
        UnaryCase {
            name: "sigmoid",
            d: |x| {
                let s = sig(x);
                (s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s))
            },
            points: ANY,
        },
        UnaryCase {
            name: "softplus",
            d: |x| {
                let s = sig(x);
                (x.exp().ln_1p(), s, s * (1.0 - s))
            },
            points: ANY,
        },
        UnaryCase {
            name: "abs",
            d: |x| (x.abs(), x.signum(), 0.0),
            points: ANY,
        },
        UnaryCase {
            name: "relu",
            d: |x| (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }, 0.0),
            points: ANY,
        },
        UnaryCase {
            name: "neg",
            d: |x| (-x, -1.0, 0.0),
            points: ANY,
        },
        UnaryCase {
            name: "affine",
            d: |x| ((x * 2.0 + 3.0) / 4.0 - 1.0, 0.5, 0.0),
            points: ANY,
        },
    ]
}

fn apply_var<'t, S: Scalar>(name: &str, x: Var<'t, S>) -> Var<'t, S> {
    match name {
        "exp" => x.exp(),
        "ln" => x.ln(),
        "log2" => x.log2(),
        "log10" => x.log10(),
        "sqrt" => x.sqrt(),
        "cbrt" => x.cbrt(),
        "powi3" => x.powi(3),
        "powi-2" => x.powi(-2),
        "powi0" => x.powi(0),
        "square" => x.square(),
        "recip" => x.recip(),
        "powf2.5" => x.powf(S::from_f64(2.5)),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "sinh" => x.sinh(),
        "cosh" => x.cosh(),
        "tanh" => x.tanh(),
        "asinh" => x.asinh(),
        "acosh" => x.acosh(),
        "atanh" => x.atanh(),
        "log1p" => x.ln_1p(),
        "expm1" => x.exp_m1(),
        "erf" => x.erf(),
        "sigmoid" => x.sigmoid(),
        "softplus" => x.softplus(),
        "abs" => x.abs(),
        "relu" => x.relu(),
        "neg" => -x,
        "affine" => (x * S::from_f64(2.0) + S::from_f64(3.0)) / S::from_f64(4.0) - S::one(),
        _ => unreachable!("unknown case {name}"),
    }
}

/// The same functions on a plain scalar (a dual number, without a tape),
/// where `Scalar` offers them.
fn apply_scalar<S: Scalar>(name: &str, x: S) -> Option<S> {
    Some(match name {
        "exp" => x.exp(),
        "ln" => x.ln(),
        "sqrt" => x.sqrt(),
        "cbrt" => x.cbrt(),
        "powi3" => x.powi(3),
        "powi-2" => x.powi(-2),
        "powi0" => x.powi(0),
        "square" => x * x,
        "recip" => S::one() / x,
        "powf2.5" => x.powf(S::from_f64(2.5)),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "sinh" => x.sinh(),
        "cosh" => x.cosh(),
        "tanh" => x.tanh(),
        "asinh" => x.asinh(),
        "acosh" => x.acosh(),
        "atanh" => x.atanh(),
        "log1p" => x.ln_1p(),
        "expm1" => x.exp_m1(),
        "erf" => x.erf(),
        "sigmoid" => chainrule::sigmoid(x),
        "softplus" => x.exp().ln_1p(),
        "abs" => x.abs(),
        "neg" => -x,
        "affine" => (x * S::from_f64(2.0) + S::from_f64(3.0)) / S::from_f64(4.0) - S::one(),
        _ => return None,
    })
}

struct Unary(&'static str);
impl Function for Unary {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        apply_var(self.0, x[0])
    }
}

#[test]
fn dual_tangents_match_closed_form_derivatives() {
    let mut checked = 0;
    for c in unary_cases() {
        for &x in c.points {
            let (f, d1, _) = (c.d)(x);
            let Some(y) = apply_scalar(c.name, Dual::variable(x)) else {
                continue;
            };
            assert_close(y.re, f, 1e-14, 1e-15, &format!("{} value at {x}", c.name));
            assert_close(y.eps, d1, 1e-13, 1e-15, &format!("{}' at {x}", c.name));
            // a constant has tangent exactly zero
            let k = apply_scalar(c.name, Dual::constant(x)).unwrap();
            assert_eq!(k.eps, 0.0, "{} of a constant", c.name);
            // three tangents at once: scaled copies of the one tangent
            let yn = apply_scalar(c.name, DualN::new(x, [1.0, -2.0, 0.0])).unwrap();
            assert_eq!(yn.re, y.re);
            assert_close(yn.eps[0], d1, 1e-13, 1e-15, c.name);
            assert_close(yn.eps[1], -2.0 * d1, 1e-13, 1e-15, c.name);
            assert_eq!(yn.eps[2], 0.0);
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} checks ran");
}

#[test]
fn nested_duals_give_second_derivatives_without_a_tape() {
    for c in unary_cases() {
        for &x in c.points {
            let (_, d1, d2) = (c.d)(x);
            // (x + ε₁)(+ε₂): the ε₁ε₂ coefficient is f''
            let xx = Dual::new(Dual::new(x, 1.0), Dual::new(1.0, 0.0));
            let Some(y) = apply_scalar(c.name, xx) else {
                continue;
            };
            assert_close(y.eps.re, d1, 1e-13, 1e-15, c.name);
            assert_close(y.eps.eps, d2, 1e-12, 1e-14, &format!("{}'' at {x}", c.name));
        }
    }
}

#[test]
fn hessians_of_unary_functions_match_closed_forms() {
    for c in unary_cases() {
        for &x in c.points {
            let (f, d1, d2) = (c.d)(x);
            let r = grad_hessian(&Unary(c.name), &[x]);
            let at = format!("{} at {x}", c.name);
            assert_close(r.value, f, 1e-14, 1e-15, &at);
            assert_close(r.gradient[0], d1, 1e-13, 1e-15, &at);
            assert_close(r.hessian[0][0], d2, 1e-12, 1e-14, &format!("{at}: f''"));
            // the one-tangent path (Tape<Dual>) agrees
            let h = hvp(&Unary(c.name), &[x], &[1.0]);
            assert_close(h.hvp[0], d2, 1e-12, 1e-14, &format!("{at}: hvp"));
            assert_eq!(h.gradient[0], r.gradient[0]);
        }
    }
}

#[test]
fn f32_duals_and_f32_hessians() {
    for c in unary_cases() {
        for &x in c.points {
            let (_, d1, d2) = (c.d)(x);
            let xf = x as f32;
            if let Some(y) = apply_scalar(c.name, Dual::<f32>::variable(xf)) {
                assert_close(y.eps as f64, d1, 2e-5, 1e-6, &format!("f32 {}'", c.name));
            }
            let h = hessian(&Unary(c.name), &[xf]);
            assert_close(h[0][0] as f64, d2, 5e-4, 1e-5, &format!("f32 {}''", c.name));
        }
    }
    let h = hessian(&Rosenbrock, &[0.5f32, -0.25]);
    let e = rosenbrock_hessian(0.5, -0.25);
    for i in 0..2 {
        for j in 0..2 {
            assert_close(h[i][j] as f64, e[i][j], 1e-6, 1e-5, "f32 rosenbrock");
        }
    }
}

// ---- binary functions ----------------------------------------------------------

struct Binary(&'static str);
impl Function for Binary {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let (a, b) = (x[0], x[1]);
        match self.0 {
            "add" => a + b,
            "sub" => a - b,
            "mul" => a * b,
            "div" => a / b,
            "pow" => a.powf(b),
            "atan2" => a.atan2(b),
            "hypot" => a.hypot(b),
            "min" => a.min(b),
            "max" => a.max(b),
            _ => unreachable!(),
        }
    }
}

/// Closed-form Hessians of the binary operations at (a, b).
fn binary_hessian(name: &str, a: f64, b: f64) -> [[f64; 2]; 2] {
    match name {
        "add" | "sub" | "min" | "max" => [[0.0; 2]; 2],
        "mul" => [[0.0, 1.0], [1.0, 0.0]],
        "div" => {
            let c = -1.0 / (b * b);
            [[0.0, c], [c, 2.0 * a / (b * b * b)]]
        }
        "pow" => {
            let l = a.ln();
            let ab = a.powf(b);
            let cross = a.powf(b - 1.0) * (1.0 + b * l);
            [
                [b * (b - 1.0) * a.powf(b - 2.0), cross],
                [cross, ab * l * l],
            ]
        }
        "atan2" => {
            let r4 = (a * a + b * b).powi(2);
            let c = (a * a - b * b) / r4;
            [[-2.0 * a * b / r4, c], [c, 2.0 * a * b / r4]]
        }
        "hypot" => {
            let h3 = a.hypot(b).powi(3);
            let c = -a * b / h3;
            [[b * b / h3, c], [c, a * a / h3]]
        }
        _ => unreachable!(),
    }
}

#[test]
fn hessians_of_binary_operations_match_closed_forms() {
    let points = [(0.7, 1.3), (1.9, -0.6), (-1.2, 2.2), (2.5, 0.4)];
    for name in [
        "add", "sub", "mul", "div", "pow", "atan2", "hypot", "min", "max",
    ] {
        for &(a, b) in &points {
            let a = if name == "pow" { a.abs() } else { a };
            let h = hessian(&Binary(name), &[a, b]);
            let e = binary_hessian(name, a, b);
            for i in 0..2 {
                for j in 0..2 {
                    assert_close(
                        h[i][j],
                        e[i][j],
                        1e-12,
                        1e-13,
                        &format!("{name} H[{i}][{j}] at ({a}, {b})"),
                    );
                }
            }
            // hvp with a general direction is H·v
            let v = [0.3, -1.1];
            let r = hvp(&Binary(name), &[a, b], &v);
            for i in 0..2 {
                let hv = e[i][0] * v[0] + e[i][1] * v[1];
                assert_close(r.hvp[i], hv, 1e-12, 1e-13, &format!("{name} Hv"));
            }
        }
    }
}

#[test]
fn binary_scalar_functions_on_duals() {
    // atan2, hypot and powf with both arguments carrying tangents
    let (a, b) = (0.8, -1.3);
    let da = Dual::new(a, 1.0);
    let db = Dual::new(b, 0.0);
    let r2 = a * a + b * b;
    assert_close(da.atan2(db).eps, b / r2, 1e-15, 0.0, "atan2 dy");
    assert_close(
        Dual::new(a, 0.0).atan2(Dual::new(b, 1.0)).eps,
        -a / r2,
        1e-15,
        0.0,
        "atan2 dx",
    );
    assert_close(da.hypot(db).eps, a / a.hypot(b), 1e-15, 0.0, "hypot");
    let p = Dual::new(a, 1.0).powf(Dual::new(2.5, 1.0));
    let expect = 2.5 * a.powf(1.5) + a.powf(2.5) * a.ln();
    assert_close(p.eps, expect, 1e-14, 0.0, "pow");
    // at the origin atan2 and hypot have derivative 0 (the tape's convention)
    let z = Dual::new(0.0, 1.0);
    assert_eq!(z.atan2(z).eps, 0.0);
    assert_eq!(z.hypot(z).eps, 0.0);
    // a constant's tangent stays zero where the slope is infinite
    assert_eq!(Dual::constant(0.0).sqrt(), Dual::new(0.0, 0.0));
    // arithmetic with plain numbers on either side
    let x = Dual::<f64>::variable(2.0);
    let y = (1.0 - x) * 3.0 + 4.0 / x - x / 2.0 + (2.0 + x) * (x - 1.0);
    // d/dx: -3 - 4/x² - 1/2 + (x - 1) + (2 + x) at x = 2
    assert_eq!(y.eps, -3.0 - 1.0 - 0.5 + 1.0 + 4.0);
    let mut m = Dual::variable(3.0);
    m *= Dual::new(2.0, 0.0);
    m += 1.0;
    m /= 7.0;
    m -= Dual::from(1.0);
    assert_eq!(m, Dual::new(0.0, 2.0 / 7.0));
}

#[test]
fn dual_comparisons_equality_and_formatting() {
    let a = Dual::new(1.0, 2.0);
    let b = Dual::new(1.0, 3.0);
    // ordering by value, equality by every part
    assert_eq!(a.partial_cmp(&b), Some(std::cmp::Ordering::Equal));
    assert!(a <= b);
    assert!(a >= b);
    assert_ne!(a, b);
    assert!(Dual::new(0.5, 9.0) < a);
    assert!(!Dual::new(0.0, 1.0).is_zero());
    assert!(Dual::new(0.0, 0.0).is_zero());
    assert!(!DualN::new(0.0, [0.0, 1e-300]).is_zero());
    assert!(!Dual::new(1.0, f64::NAN).is_finite());
    assert!(!DualN::new(1.0, [0.0, f64::INFINITY]).is_finite());
    assert!(DualN::new(1.0, [0.0, 1.0]).is_finite());
    assert_eq!(Dual::<f64>::default(), Dual::new(0.0, 0.0));
    assert_eq!(Dual::new(1.5, -2.0).to_f64(), 1.5);
    assert_eq!(format!("{}", Dual::new(1.5, -2.0)), "1.5 + -2ε");
    assert_eq!(format!("{:.2}", Dual::new(1.0, 0.5)), "1.00 + 0.50ε");
    assert_eq!(format!("{}", DualN::new(1.0, [2.0, 3.0])), "1 + [2, 3]ε");
    // max/relu on a tape of duals branch on the value
    let tape = Tape::<Dual>::default();
    let x = tape.var(Dual::new(-1.0, 1.0));
    assert_eq!(x.relu().value(), Dual::new(0.0, 0.0));
    let y = tape.var(Dual::new(2.0, 5.0));
    assert_eq!(x.max(y).value(), y.value());
}

// ---- logsumexp at infinite inputs: the limit's derivatives ------------------

struct LogSumExp;
impl Function for LogSumExp {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        Var::logsumexp(x).unwrap()
    }
}

#[test]
fn logsumexp_second_derivatives_at_infinite_inputs_are_the_limits() {
    let (ninf, inf) = (f64::NEG_INFINITY, f64::INFINITY);
    // every input −∞ is treated as equal inputs: the Hessian of
    // logsumexp at (t, …, t) for any t, I/n − J/n²
    for n in 1..=4 {
        let x = vec![ninf; n];
        let at_zero = grad_hessian(&LogSumExp, &vec![0.0; n]);
        let r = grad_hessian(&LogSumExp, &x);
        assert_eq!(r.value, ninf);
        let dense = hessian_of(|x| Var::logsumexp(x).unwrap(), &x);
        let nf = n as f64;
        for i in 0..n {
            assert_eq!(r.gradient[i], 1.0 / nf);
            assert_eq!(dense.gradient[i], 1.0 / nf);
            for j in 0..n {
                let want = if i == j { 1.0 / nf } else { 0.0 } - 1.0 / (nf * nf);
                let at = format!("n = {n}, H[{i}][{j}]");
                assert_close(r.hessian[i][j], want, 1e-15, 1e-16, &at);
                assert_close(dense.hessian[i][j], want, 1e-15, 1e-16, &at);
                assert_close(r.hessian[i][j], at_zero.hessian[i][j], 1e-15, 1e-16, &at);
            }
        }
    }
    // one tangent: H·v = v/3 − mean(v)/3
    let h = hvp(&LogSumExp, &[ninf, ninf, ninf], &[1.0, 2.0, 6.0]);
    assert_eq!((h.value, h.gradient), (ninf, vec![1.0 / 3.0; 3]));
    for (got, want) in h.hvp.iter().zip([-2.0 / 3.0, -1.0 / 3.0, 1.0]) {
        assert_close(*got, want, 1e-15, 1e-16, "hvp");
    }
    // +∞ inputs: those of them as equal inputs, the others out of it
    let r = grad_hessian(&LogSumExp, &[inf, 0.5, inf, ninf]);
    assert_eq!(r.value, inf);
    assert_eq!(r.gradient, vec![0.5, 0.0, 0.5, 0.0]);
    let want = [
        [0.25, 0.0, -0.25, 0.0],
        [0.0; 4],
        [-0.25, 0.0, 0.25, 0.0],
        [0.0; 4],
    ];
    for i in 0..4 {
        for j in 0..4 {
            assert_close(r.hessian[i][j], want[i][j], 1e-15, 1e-16, "+inf");
        }
    }
}

// ---- the sweep must not skip a zero-valued adjoint with a tangent ----------

struct XSinY;
impl Function for XSinY {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        x[0] * x[1].sin()
    }
}

#[test]
fn zero_gradient_with_nonzero_tangent_still_propagates() {
    // At x = 0 the adjoint of sin(y) is x = 0 + 1·ε: value zero, tangent
    // one. Skipping it would lose ∂²f/∂x∂y = cos y.
    let r = hvp(&XSinY, &[0.0, 0.0], &[1.0, 0.0]);
    assert_eq!(r.gradient, vec![0.0, 0.0]);
    assert_eq!(r.hvp, vec![0.0, 1.0]);
    assert_eq!(
        hessian(&XSinY, &[0.0, 0.0]),
        vec![vec![0.0, 1.0], vec![1.0, 0.0]]
    );
}

// ---- Rosenbrock, and Hessians by chunks of tangents -------------------------

struct Rosenbrock;
impl Function for Rosenbrock {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        (-x[0] + S::one()).square() + (x[1] - x[0].square()).square() * S::from_f64(100.0)
    }
}

fn rosenbrock_hessian(x: f64, y: f64) -> [[f64; 2]; 2] {
    [
        [2.0 - 400.0 * (y - x * x) + 800.0 * x * x, -400.0 * x],
        [-400.0 * x, 200.0],
    ]
}

#[test]
fn rosenbrock_closed_form() {
    for &(x, y) in &[(-1.2, 1.0), (0.3, 0.7), (1.0, 1.0)] {
        let r = grad_hessian(&Rosenbrock, &[x, y]);
        let g = [
            -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
            200.0 * (y - x * x),
        ];
        let e = rosenbrock_hessian(x, y);
        for i in 0..2 {
            assert_close(r.gradient[i], g[i], 1e-14, 1e-12, "gradient");
            for j in 0..2 {
                assert_close(r.hessian[i][j], e[i][j], 1e-14, 1e-12, "hessian");
            }
        }
        assert_eq!(gradient(&Rosenbrock, &[x, y]).1, r.gradient);
    }
}

/// Σᵢ wᵢ·xᵢ·x₍ᵢ₊₁₎ + Σᵢ sin(xᵢ)·cᵢ over any number of inputs: a Hessian with
/// a known tridiagonal form, to cross the 8-tangent chunks.
struct Chain {
    w: Vec<f64>,
    c: Vec<f64>,
}
impl Function for Chain {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let mut acc = tape.var(S::zero());
        for i in 0..x.len() {
            acc += x[i].sin() * S::from_f64(self.c[i]);
            if i + 1 < x.len() {
                acc += x[i] * x[i + 1] * S::from_f64(self.w[i]);
            }
        }
        acc
    }
}

#[test]
fn hessians_across_tangent_chunks() {
    for n in [0usize, 1, 2, 3, 4, 5, 8, 9, 17] {
        let f = Chain {
            w: (0..n).map(|i| 0.5 + i as f64).collect(),
            c: (0..n).map(|i| 1.0 - 0.3 * i as f64).collect(),
        };
        let x: Vec<f64> = (0..n).map(|i| 0.1 + 0.37 * i as f64).collect();
        let r = grad_hessian(&f, &x);
        assert_eq!(r.hessian.len(), n);
        for i in 0..n {
            for j in 0..n {
                let e = if i == j {
                    -x[i].sin() * f.c[i]
                } else if j == i + 1 {
                    f.w[i]
                } else if i == j + 1 {
                    f.w[j]
                } else {
                    0.0
                };
                assert_close(
                    r.hessian[i][j],
                    e,
                    1e-14,
                    1e-15,
                    &format!("n={n} H[{i}][{j}]"),
                );
            }
            // column i equals the Hessian-vector product with eᵢ
            let mut ei = vec![0.0; n];
            ei[i] = 1.0;
            let col = hvp(&f, &x, &ei).hvp;
            for j in 0..n {
                assert_close(col[j], r.hessian[j][i], 1e-15, 1e-15, "hvp column");
            }
        }
        let (v, g) = gradient(&f, &x);
        assert_close(r.value, v, 1e-15, 1e-15, "value");
        assert_eq!(r.gradient, g);
    }
}

/// A closure on `Var`s of dual numbers takes plain `f64` constants on
/// either side and as second arguments, with the same result as the
/// generic `Function` that writes them `S::from_f64(..)`.
#[test]
fn closures_take_plain_constants() {
    struct G;
    impl Function for G {
        fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
            let c = S::from_f64;
            (-(x[0] / c(3.0)) + c(2.0)) * x[1]
                + (x[1] - c(0.5)) * c(1.5)
                + (x[0] * x[1] + c(1.0)).recip() * c(4.0)
                + x[0].powf(c(2.5))
                + x[1].max(c(0.25)).min(c(5.0))
                + x[0].atan2(c(2.0))
                + x[1].hypot(c(1.0))
                + x[0].clamp(c(0.0), c(1.0))
                + (x[0] + c(2.0) - c(0.5)) * c(3.0) / c(4.0)
        }
    }
    let x = [0.7, 1.9];
    let want = grad_hessian(&G, &x);
    // (written in the call: a closure bound to a name first would not be
    // inferred as one for every tape lifetime)
    let got = hessian_of(
        |x| {
            (2.0 - x[0] / 3.0) * x[1]
                + (x[1] - 0.5) * 1.5
                + 4.0 / (x[0] * x[1] + 1.0)
                + x[0].powf(2.5)
                + x[1].max(0.25).min(5.0)
                + x[0].atan2(2.0)
                + x[1].hypot(1.0)
                + x[0].clamp(0.0, 1.0)
                + {
                    // compound assignment with plain numbers too
                    let mut a = x[0];
                    a += 2.0;
                    a -= 0.5;
                    a *= 3.0;
                    a /= 4.0;
                    a
                }
        },
        &x,
    );
    assert!((want.value - got.value).abs() < 1e-14);
    for i in 0..2 {
        assert!((want.gradient[i] - got.gradient[i]).abs() < 1e-13, "g[{i}]");
        for j in 0..2 {
            let (a, b) = (want.hessian[i][j], got.hessian[i][j]);
            assert!(
                (a - b).abs() < 1e-12 * (1.0 + a.abs()),
                "H[{i}][{j}]: {a} vs {b}"
            );
        }
    }
}

// ---- random programs ---------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum U {
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Atan,
    Exp,
    Square,
    Cube,
    LnOnePlusSq,
    SqrtOnePlusSq,
    RecipOnePlusSq,
    Neg,
    Softplus,
    Sinh,
    Asinh,
    Log1pSq,
    // not smooth: only in programs for first-derivative comparisons
    Abs,
    Relu,
}

#[derive(Clone, Copy, Debug)]
enum B {
    Add,
    Sub,
    Mul,
    DivSafe,
    Hypot1,
    Atan2Safe,
    PowSafe,
    // not smooth
    Max,
    Min,
}

#[derive(Clone, Debug)]
enum E {
    X(usize),
    C(f64),
    U(U, Box<E>),
    B(B, Box<E>, Box<E>),
}

impl E {
    fn var<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let one = S::one();
        match self {
            E::X(i) => x[*i],
            E::C(c) => tape.var(S::from_f64(*c)),
            E::U(u, a) => {
                let a = a.var(tape, x);
                match u {
                    U::Sin => a.sin(),
                    U::Cos => a.cos(),
                    U::Tanh => a.tanh(),
                    U::Sigmoid => a.sigmoid(),
                    U::Atan => a.atan(),
                    U::Exp => a.exp(),
                    U::Square => a.square(),
                    U::Cube => a.powi(3),
                    U::LnOnePlusSq => (a.square() + one).ln(),
                    U::SqrtOnePlusSq => a.hypot(one),
                    U::RecipOnePlusSq => (a.square() + one).recip(),
                    U::Neg => -a,
                    U::Softplus => a.softplus(),
                    U::Sinh => a.sinh(),
                    U::Asinh => a.asinh(),
                    U::Log1pSq => a.square().ln_1p(),
                    U::Abs => a.abs(),
                    U::Relu => a.relu(),
                }
            }
            E::B(b, l, r) => {
                let (l, r) = (l.var(tape, x), r.var(tape, x));
                match b {
                    B::Add => l + r,
                    B::Sub => l - r,
                    B::Mul => l * r,
                    B::DivSafe => l / (r.square() + one),
                    B::Hypot1 => l.hypot(r.square() + one),
                    B::Atan2Safe => l.atan2(r.square() + one),
                    B::PowSafe => (l.square() + one).powf(r.sin()),
                    B::Max => l.max(r),
                    B::Min => l.min(r),
                }
            }
        }
    }

    /// The same program on plain scalars (for forward mode without a tape).
    fn scalar<S: Scalar>(&self, x: &[S]) -> S {
        let one = S::one();
        match self {
            E::X(i) => x[*i],
            E::C(c) => S::from_f64(*c),
            E::U(u, a) => {
                let a = a.scalar(x);
                match u {
                    U::Sin => a.sin(),
                    U::Cos => a.cos(),
                    U::Tanh => a.tanh(),
                    U::Sigmoid => chainrule::sigmoid(a),
                    U::Atan => a.atan(),
                    U::Exp => a.exp(),
                    U::Square => a * a,
                    U::Cube => a.powi(3),
                    U::LnOnePlusSq => (a * a + one).ln(),
                    U::SqrtOnePlusSq => a.hypot(one),
                    U::RecipOnePlusSq => one / (a * a + one),
                    U::Neg => -a,
                    U::Softplus => {
                        if a > S::zero() {
                            a + (-a).exp().ln_1p()
                        } else {
                            a.exp().ln_1p()
                        }
                    }
                    U::Sinh => a.sinh(),
                    U::Asinh => a.asinh(),
                    U::Log1pSq => (a * a).ln_1p(),
                    U::Abs => a.abs(),
                    U::Relu => {
                        if a > S::zero() {
                            a
                        } else {
                            S::zero()
                        }
                    }
                }
            }
            E::B(b, l, r) => {
                let (l, r) = (l.scalar(x), r.scalar(x));
                match b {
                    B::Add => l + r,
                    B::Sub => l - r,
                    B::Mul => l * r,
                    B::DivSafe => l / (r * r + one),
                    B::Hypot1 => l.hypot(r * r + one),
                    B::Atan2Safe => l.atan2(r * r + one),
                    B::PowSafe => (l * l + one).powf(r.sin()),
                    B::Max => {
                        if l >= r {
                            l
                        } else {
                            r
                        }
                    }
                    B::Min => {
                        if l <= r {
                            l
                        } else {
                            r
                        }
                    }
                }
            }
        }
    }
}

/// A random program with several outputs.
#[derive(Clone, Debug)]
struct Prog {
    outs: Vec<E>,
}

impl VectorFunction for Prog {
    fn eval_all<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
        self.outs.iter().map(|e| e.var(tape, x)).collect()
    }
}

/// The first output of a program, as a real-valued function.
struct First<'a>(&'a E);
impl Function for First<'_> {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        self.0.var(tape, x)
    }
}

fn expr(n: usize, smooth: bool) -> impl Strategy<Value = E> {
    let mut us = vec![
        U::Sin,
        U::Cos,
        U::Tanh,
        U::Sigmoid,
        U::Atan,
        U::Exp,
        U::Square,
        U::Cube,
        U::LnOnePlusSq,
        U::SqrtOnePlusSq,
        U::RecipOnePlusSq,
        U::Neg,
        U::Softplus,
        U::Sinh,
        U::Asinh,
        U::Log1pSq,
    ];
    let mut bs = vec![
        B::Add,
        B::Sub,
        B::Mul,
        B::DivSafe,
        B::Hypot1,
        B::Atan2Safe,
        B::PowSafe,
    ];
    if !smooth {
        us.extend([U::Abs, U::Relu]);
        bs.extend([B::Max, B::Min]);
    }
    let leaf = prop_oneof![
        4 => (0..n).prop_map(E::X),
        1 => (-2.0..2.0f64).prop_map(E::C),
    ];
    leaf.prop_recursive(5, 32, 2, move |inner| {
        prop_oneof![
            (prop::sample::select(us.clone()), inner.clone())
                .prop_map(|(u, a)| E::U(u, Box::new(a))),
            (prop::sample::select(bs.clone()), inner.clone(), inner).prop_map(|(b, l, r)| E::B(
                b,
                Box::new(l),
                Box::new(r)
            )),
        ]
    })
}

/// n inputs, a point, a direction, and a program of m outputs.
fn program(smooth: bool) -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Prog)> {
    (1usize..11, 1usize..5).prop_flat_map(move |(n, m)| {
        (
            prop::collection::vec(-1.5..1.5f64, n),
            prop::collection::vec(-1.0..1.0f64, n),
            prop::collection::vec(expr(n, smooth), m).prop_map(|outs| Prog { outs }),
        )
    })
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Gradient of `f` at `x + t·v`.
fn grad_at(f: &First<'_>, x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    let p: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + t * b).collect();
    gradient(f, &p).1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The closure helpers give what the `Function` ones give on the same
    /// random programs: the gradient and H·v bit for bit (the same tapes),
    /// the Hessian (columns one at a time rather than up to 8) to rounding.
    #[test]
    fn closures_match_function_impls((x, v, p) in program(true)) {
        let e = &p.outs[0];
        let f = First(e);
        let (value, g) = gradient(&f, &x);
        let (cv, cg) = gradient_of(|xs| e.var(xs[0].tape(), xs), &x);
        prop_assert_eq!(value.to_bits(), cv.to_bits());
        prop_assert_eq!(&g, &cg);
        let r = hvp(&f, &x, &v);
        let c = hvp_of(|xs| e.var(xs[0].tape(), xs), &x, &v);
        prop_assert_eq!(r.value.to_bits(), c.value.to_bits());
        prop_assert_eq!(&r.gradient, &c.gradient);
        prop_assert_eq!(&r.hvp, &c.hvp);
        let h = grad_hessian(&f, &x);
        let ch = hessian_of(|xs| e.var(xs[0].tape(), xs), &x);
        prop_assert_eq!(&h.gradient, &ch.gradient);
        let scale = h.hessian.iter().flatten().fold(1.0f64, |m, a| m.max(a.abs()));
        for i in 0..x.len() {
            for j in 0..x.len() {
                prop_assert!(
                    (h.hessian[i][j] - ch.hessian[i][j]).abs() <= 1e-12 * scale,
                    "H[{}][{}]: {:e} vs {:e}", i, j, h.hessian[i][j], ch.hessian[i][j]
                );
            }
        }
    }

    /// H·v from forward-over-reverse against a five-point central
    /// difference of the reverse-mode gradient along v.
    #[test]
    fn hvp_matches_differences_of_the_gradient((x, v, p) in program(true)) {
        let f = First(&p.outs[0]);
        let r = hvp(&f, &x, &v);
        prop_assume!(r.value.is_finite() && r.value.abs() < 1e6);
        prop_assume!(r.gradient.iter().all(|g| g.is_finite()) && max_abs(&r.gradient) < 1e6);
        let (value, g) = gradient(&f, &x);
        prop_assert_eq!(value, r.value);
        prop_assert_eq!(&g, &r.gradient);
        // five-point differences at two steps; where they disagree the
        // function is too wild at this scale (sin(x⁹), a saturated tanh by
        // a cliff) for differences to judge, and the case is skipped
        let fd_at = |h: f64| -> Vec<f64> {
            let gp1 = grad_at(&f, &x, &v, h);
            let gm1 = grad_at(&f, &x, &v, -h);
            let gp2 = grad_at(&f, &x, &v, 2.0 * h);
            let gm2 = grad_at(&f, &x, &v, -2.0 * h);
            (0..x.len())
                .map(|i| (8.0 * (gp1[i] - gm1[i]) - (gp2[i] - gm2[i])) / (12.0 * h))
                .collect()
        };
        let fd = fd_at(1e-3);
        let fd2 = fd_at(5e-4);
        let scale = 1.0 + max_abs(&fd) + max_abs(&g);
        prop_assume!((0..x.len()).all(|i| (fd[i] - fd2[i]).abs() <= 1e-7 * scale));
        for i in 0..x.len() {
            prop_assert!(
                (r.hvp[i] - fd2[i]).abs() <= 1e-6 * scale,
                "Hv[{}] = {:e}, differences {:e}", i, r.hvp[i], fd2[i]
            );
        }
    }

    /// H·v from forward-over-reverse (a tape of dual numbers) against
    /// forward-over-forward without a tape: (H v)ᵢ is the ε₁ε₂ coefficient
    /// of f(x + eᵢ·ε₁ + v·ε₂). Exact in both, so they agree to rounding.
    #[test]
    fn hvp_matches_forward_over_forward((x, v, p) in program(true)) {
        let f = First(&p.outs[0]);
        let r = hvp(&f, &x, &v);
        prop_assume!(r.value.is_finite() && r.value.abs() < 1e6);
        prop_assume!(r.hvp.iter().all(|h| h.is_finite()));
        let scale = 1.0 + max_abs(&r.hvp) + max_abs(&r.gradient);
        for i in 0..x.len() {
            let xs: Vec<Dual<Dual>> = (0..x.len())
                .map(|j| {
                    let e = if i == j { 1.0 } else { 0.0 };
                    Dual::new(Dual::new(x[j], e), Dual::new(v[j], 0.0))
                })
                .collect();
            let y = p.outs[0].scalar(&xs);
            prop_assert!((y.re.re - r.value).abs() <= 1e-12 * (1.0 + r.value.abs()));
            prop_assert!((y.re.eps - r.gradient[i]).abs() <= 1e-12 * scale);
            prop_assert!(
                (y.eps.eps - r.hvp[i]).abs() <= 1e-10 * scale,
                "Hv[{}]: forward-over-reverse {:e}, forward-over-forward {:e}",
                i, r.hvp[i], y.eps.eps
            );
        }
    }

    /// The dense Hessian is symmetric, its columns are Hessian-vector
    /// products, and H·v matches the one-tangent path.
    #[test]
    fn hessians_are_symmetric_and_match_hvp((x, v, p) in program(true)) {
        let f = First(&p.outs[0]);
        let r = grad_hessian(&f, &x);
        prop_assume!(r.value.is_finite() && r.value.abs() < 1e6);
        let n = x.len();
        let hmax = r.hessian.iter().map(|row| max_abs(row)).fold(0.0, f64::max);
        prop_assume!(hmax.is_finite() && hmax < 1e8);
        for i in 0..n {
            for j in 0..i {
                prop_assert!(
                    (r.hessian[i][j] - r.hessian[j][i]).abs() <= 1e-12 * (1.0 + hmax),
                    "H[{}][{}] = {:e} but H[{}][{}] = {:e}",
                    i, j, r.hessian[i][j], j, i, r.hessian[j][i]
                );
            }
        }
        let hv = hvp(&f, &x, &v);
        for i in 0..n {
            let e: f64 = (0..n).map(|j| r.hessian[i][j] * v[j]).sum();
            prop_assert!((hv.hvp[i] - e).abs() <= 1e-12 * (1.0 + hmax) * n as f64);
        }
    }

    /// Forward and reverse Jacobians agree (non-smooth operations included:
    /// both modes take the same branches), `jacobian_auto` equals them, and
    /// the tape-free `jvp` on dual numbers gives J·v.
    #[test]
    fn forward_and_reverse_jacobians_agree((x, v, p) in program(false)) {
        let jr = jacobian_reverse(&p, &x);
        let jf = jacobian_forward(&p, &x);
        let ja = jacobian_auto(&p, &x);
        prop_assert_eq!(jr.len(), p.outs.len());
        prop_assert_eq!(jf.len(), p.outs.len());
        let (fx, jv) = jvp(|d: &[Dual]| p.outs.iter().map(|e| e.scalar(d)).collect(), &x, &v);
        for i in 0..p.outs.len() {
            prop_assume!(jr[i].iter().all(|g| g.is_finite()) && max_abs(&jr[i]) < 1e12);
            let scale = 1.0 + max_abs(&jr[i]);
            let tape = Tape::new();
            let xs = tape.vars(&x);
            let y = p.outs[i].var(&tape, &xs).value();
            prop_assert!((fx[i] - y).abs() <= 1e-12 * (1.0 + y.abs()));
            let mut jv_rev = 0.0;
            for j in 0..x.len() {
                prop_assert!(
                    (jr[i][j] - jf[i][j]).abs() <= 1e-12 * scale,
                    "J[{}][{}]: reverse {:e}, forward {:e}", i, j, jr[i][j], jf[i][j]
                );
                prop_assert!((ja[i][j] - jr[i][j]).abs() <= 1e-12 * scale);
                jv_rev += jr[i][j] * v[j];
            }
            prop_assert!(
                (jv[i] - jv_rev).abs() <= 1e-11 * scale * x.len() as f64,
                "Jv[{}]: dual {:e}, reverse {:e}", i, jv[i], jv_rev
            );
        }
    }

    /// Tangents of dual numbers against central differences, for every
    /// elementary function `Scalar` offers, at random points.
    #[test]
    fn dual_tangents_match_central_differences(x in -0.9..0.9f64, k in 0usize..64) {
        let cases = unary_cases();
        let c = &cases[k % cases.len()];
        // shift into the function's domain
        let x = if c.points == POS {
            x.abs() + 0.3
        } else if c.points == ABOVE_ONE {
            x.abs() + 1.2
        } else {
            x
        };
        if let Some(y) = apply_scalar(c.name, Dual::variable(x)) {
            let h = 1e-5;
            let fp = apply_scalar(c.name, x + h).unwrap();
            let fm = apply_scalar(c.name, x - h).unwrap();
            let fd = (fp - fm) / (2.0 * h);
            // abs has a kink at 0, cbrt an infinite slope, 1/x and x⁻² poles
            if !matches!(c.name, "abs" | "cbrt" | "recip" | "powi-2") || x.abs() > 0.05 {
                prop_assert!((y.eps - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{}'({}) = {:e}, differences {:e}", c.name, x, y.eps, fd);
            }
        }
    }
}

// ---- jacobian_auto picks the cheaper mode ------------------------------------

/// Counts evaluations on a tape of dual numbers (forward mode) and of plain
/// numbers (reverse mode).
struct Counting {
    m: usize,
    fwd: Cell<usize>,
    rev: Cell<usize>,
}
impl VectorFunction for Counting {
    fn eval_all<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
        if std::any::type_name::<S>().contains("Dual") {
            self.fwd.set(self.fwd.get() + 1);
        } else {
            self.rev.set(self.rev.get() + 1);
        }
        (0..self.m)
            .map(|k| {
                x.iter()
                    .fold(x[0] * S::zero(), |a, &b| a + b * S::from_f64(k as f64))
            })
            .collect()
    }
}

#[test]
fn jacobian_auto_chooses_by_shape() {
    // 2 inputs, 6 outputs: forward (one pass with two tangents)
    let f = Counting {
        m: 6,
        fwd: Cell::new(0),
        rev: Cell::new(0),
    };
    let j = jacobian_auto(&f, &[1.0, 2.0]);
    assert_eq!(j[5], vec![5.0, 5.0]);
    assert_eq!(f.fwd.get(), 1);
    // 12 inputs, 1 output: reverse (one evaluation, one sweep)
    let g = Counting {
        m: 1,
        fwd: Cell::new(0),
        rev: Cell::new(0),
    };
    let x: Vec<f64> = (0..12).map(|i| i as f64).collect();
    let j = jacobian_auto(&g, &x);
    assert_eq!(j, vec![vec![0.0; 12]]);
    assert_eq!((g.fwd.get(), g.rev.get()), (0, 1));
    // forward mode over 12 inputs: two passes of 8 tangents
    let h = Counting {
        m: 2,
        fwd: Cell::new(0),
        rev: Cell::new(0),
    };
    let j = jacobian_forward(&h, &x);
    assert_eq!(j[1], vec![1.0; 12]);
    assert_eq!(h.fwd.get(), 2);
}

#[test]
#[should_panic(expected = "hvp: the point has 2 coordinates but the direction 1")]
fn hvp_rejects_mismatched_direction() {
    hvp(&Rosenbrock, &[1.0, 2.0], &[1.0]);
}

// ---- custom operations and fallible functions ---------------------------------

/// f = x₀ · Σ xᵢ², the sum as one custom operation whose vector-Jacobian
/// product is written over the tape's scalar: on a tape of dual numbers it
/// captures the inputs' tangents, so the Hessian sees through it.
struct CustomSumSq;
impl Function for CustomSumSq {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let vals: Vec<S> = x.iter().map(|v| v.value()).collect();
        let y = vals.iter().fold(S::zero(), |a, &v| a + v * v);
        let out = tape.custom_op("sumsq", x, vec![y], move |gy, gx| {
            for (g, &v) in gx.iter_mut().zip(&vals) {
                *g += S::from_f64(2.0) * v * gy[0];
            }
        });
        out[0] * x[0]
    }
}

#[test]
fn hessians_see_through_custom_operations() {
    let x = [0.7, -1.3, 2.1];
    let r = grad_hessian(&CustomSumSq, &x);
    let s: f64 = x.iter().map(|v| v * v).sum();
    for i in 0..3 {
        let gi = if i == 0 { s } else { 0.0 } + 2.0 * x[0] * x[i];
        assert_close(r.gradient[i], gi, 1e-15, 1e-15, "gradient");
        for j in 0..3 {
            let d = |a: usize, b: usize| if a == b { 1.0 } else { 0.0 };
            let e = 2.0 * d(i, 0) * x[j] + 2.0 * d(j, 0) * x[i] + 2.0 * x[0] * d(i, j);
            assert_close(r.hessian[i][j], e, 1e-15, 1e-15, &format!("H[{i}][{j}]"));
        }
    }
    let h = hvp(&CustomSumSq, &x, &[1.0, 2.0, -1.0]);
    for i in 0..3 {
        let e: f64 = (0..3).map(|j| r.hessian[i][j] * [1.0, 2.0, -1.0][j]).sum();
        assert_close(h.hvp[i], e, 1e-15, 1e-15, "hvp");
    }
}

/// Fails on its second-order pass only (a tape of dual numbers), or always.
struct Fails {
    only_on_duals: bool,
}
impl TryFunction for Fails {
    type Error = String;
    fn try_eval<'t, S: Scalar>(
        &self,
        _: &'t Tape<S>,
        x: &[Var<'t, S>],
    ) -> Result<Var<'t, S>, String> {
        if !self.only_on_duals || std::any::type_name::<S>().contains("Dual") {
            return Err(format!("cannot evaluate on {}", std::any::type_name::<S>()));
        }
        Ok(x[0].sin())
    }
}

#[test]
fn fallible_functions_report_their_error() {
    let f = Fails {
        only_on_duals: true,
    };
    assert_eq!(try_gradient(&f, &[1.0]).unwrap().1, vec![1f64.cos()]);
    let e = try_grad_hessian(&f, &[1.0, 2.0]).unwrap_err();
    assert!(e.contains("DualN"), "{e}");
    assert!(try_hvp(&f, &[1.0], &[1.0]).unwrap_err().contains("Dual"));
    let g = Fails {
        only_on_duals: false,
    };
    assert!(try_gradient(&g, &[1.0]).is_err());
    // the infallible functions are fallible ones that never fail
    assert_eq!(
        try_grad_hessian(&Rosenbrock, &[1.0, 1.0]).unwrap(),
        grad_hessian(&Rosenbrock, &[1.0, 1.0])
    );
}

/// A constant function of no inputs: its value, an empty gradient and Hessian.
struct Constant;
impl Function for Constant {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, _: &[Var<'t, S>]) -> Var<'t, S> {
        tape.var(S::from_f64(4.5)).exp()
    }
}

#[test]
fn functions_of_no_inputs() {
    let r = grad_hessian(&Constant, &[] as &[f64]);
    assert_eq!(r.value, 4.5f64.exp());
    assert!(r.gradient.is_empty() && r.hessian.is_empty());
    assert_eq!(
        jacobian_forward(&Constant, &[] as &[f64]),
        vec![Vec::<f64>::new()]
    );
    assert_eq!(
        jacobian_auto(&Constant, &[] as &[f64]),
        vec![Vec::<f64>::new()]
    );
}

/// An interpreter in the style of the command line's: it makes its own
/// leaves (after a constant node), and can fail.
struct Interp {
    fail_on_duals: bool,
}
impl TryRecord for Interp {
    type Error = String;
    fn try_record<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[S],
    ) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), String> {
        let k = tape.var(S::from_f64(3.0));
        let leaves: Vec<Var<'t, S>> = x.iter().map(|&v| tape.var(v)).collect();
        if self.fail_on_duals && std::any::type_name::<S>().contains("Dual") {
            return Err("line 1, column 5: cannot evaluate".into());
        }
        // f = 3·e^(xy) + y²
        let y = (leaves[0] * leaves[1]).exp() * k + leaves[1].square();
        Ok((leaves, y))
    }
}

#[test]
fn functions_that_record_their_own_leaves() {
    let (x, y) = (0.4, -1.1);
    let e = (x * y).exp();
    let r = try_grad_hessian(
        &Interp {
            fail_on_duals: false,
        },
        &[x, y],
    )
    .unwrap();
    assert_close(r.value, 3.0 * e + y * y, 1e-15, 0.0, "value");
    assert_close(r.gradient[0], 3.0 * y * e, 1e-15, 0.0, "df/dx");
    assert_close(r.gradient[1], 3.0 * x * e + 2.0 * y, 1e-15, 0.0, "df/dy");
    let cross = 3.0 * e * (1.0 + x * y);
    let expect = [[3.0 * y * y * e, cross], [cross, 3.0 * x * x * e + 2.0]];
    for i in 0..2 {
        for j in 0..2 {
            assert_close(r.hessian[i][j], expect[i][j], 1e-14, 0.0, "H");
        }
    }
    let h = try_hvp(
        &Interp {
            fail_on_duals: false,
        },
        &[x, y],
        &[1.0, 0.0],
    )
    .unwrap();
    assert_close(h.hvp[1], cross, 1e-14, 0.0, "Hv");
    let bad = Interp {
        fail_on_duals: true,
    };
    assert!(try_gradient(&bad, &[x, y]).is_ok());
    assert_eq!(
        try_grad_hessian(&bad, &[x, y]).unwrap_err(),
        "line 1, column 5: cannot evaluate"
    );
}

/// Returns fewer leaves than inputs: a programming error, reported.
struct TooFewLeaves;
impl TryRecord for TooFewLeaves {
    type Error = std::convert::Infallible;
    fn try_record<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[S],
    ) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), Self::Error> {
        let a = tape.var(x[0]);
        Ok((vec![a], a.sin()))
    }
}

#[test]
#[should_panic(expected = "hessian: the function recorded 1 leaves for 2 inputs")]
fn a_wrong_number_of_leaves_is_reported() {
    let _ = try_grad_hessian(&TooFewLeaves, &[1.0, 2.0]);
}

// ---- powers with a variable exponent at their conventions ---------------------

#[test]
fn variable_powers_keep_their_conventions_on_dual_tapes() {
    // x^e at x = 0, e = 1: the tape's convention ∂/∂e = 0 where the value
    // is 0; the second-order pass must give the same (finite) gradient.
    let (_, g) = gradient(&Binary("pow"), &[0.0, 1.0]);
    assert_eq!(g, vec![1.0, 0.0]);
    let r = grad_hessian(&Binary("pow"), &[0.0, 1.0]);
    assert_eq!(r.gradient, g);
    assert_eq!(r.hessian[0][0], 0.0); // e(e − 1)x^(e−2) with e = 1
    let h = hvp(&Binary("pow"), &[0.0, 1.0], &[1.0, 1.0]);
    assert_eq!(h.gradient, g);
    // at e = 0 (x ≠ 0) the cross term ∂²/∂x∂e = x^(e−1)(1 + e ln x) = 1/x
    // survives the convention ∂/∂x = 0 where the exponent is 0
    let r = grad_hessian(&Binary("pow"), &[2.0, 0.0]);
    assert_eq!(r.gradient, vec![0.0, 2f64.ln()]);
    let l = 2f64.ln();
    let e = [[0.0, 0.5], [0.5, l * l]];
    for i in 0..2 {
        for j in 0..2 {
            assert_close(r.hessian[i][j], e[i][j], 1e-15, 0.0, "pow at e = 0");
        }
    }
    // at x = 0, e = 0 the second-order pass gives the plain tape's gradient
    // (∂/∂x = 0 by convention, ∂/∂e = 1·ln 0 = −∞), not NaN
    let r = grad_hessian(&Binary("pow"), &[0.0, 0.0]);
    assert_eq!(r.gradient, gradient(&Binary("pow"), &[0.0, 0.0]).1);
    assert_eq!(r.gradient, vec![0.0, f64::NEG_INFINITY]);
}
