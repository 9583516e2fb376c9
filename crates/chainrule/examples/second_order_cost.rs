//! What second derivatives cost compared with a gradient, on this machine.
//!
//! Two workloads, each timed as the best of 20 runs:
//! - the scalar recursion `s ← s·a + sin(s)·b` of N steps (the `scalar`
//!   JAX peer's workload) as a function of (s₀, a, b): gradient,
//!   Hessian-vector product and the full 3×3 Hessian, in ns per step;
//! - `Σᵢ sin(xᵢ xᵢ₊₁) + xᵢ²` over n inputs: gradient against HVP (n = 10⁴)
//!   and against the dense Hessian (n = 8, 32, 128).
//!
//! Run with `cargo run --release -p chainrule --example second_order_cost [N]`.
//! Timings are printed, not asserted.

use std::time::Instant;

use chainrule::{grad_hessian, gradient, hvp, Function, Scalar, Tape, Var};

/// s ← s·a + sin(s)·b, N times, from s₀; inputs (s₀, a, b).
struct Recursion(usize);

impl Function for Recursion {
    fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let (mut s, a, b) = (x[0], x[1], x[2]);
        for _ in 0..self.0 {
            s = s * a + s.sin() * b;
        }
        s
    }
}

/// Σᵢ sin(xᵢ xᵢ₊₁) + xᵢ².
struct Chain;

impl Function for Chain {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let mut acc = tape.var(S::zero());
        for w in x.windows(2) {
            acc += (w[0] * w[1]).sin() + w[0].square();
        }
        acc
    }
}

/// Best wall time of `reps` runs, in seconds.
fn best<R>(reps: usize, mut f: impl FnMut() -> R) -> f64 {
    let mut b = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 100_000,
        Some(a) => match a.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("second_order_cost: N must be a positive integer, got `{a}`");
                std::process::exit(2);
            }
        },
    };
    let x = [0.5, 0.9, 0.1];
    let v = [1.0, 1.0, 1.0];
    let f = Recursion(n);
    let g = best(20, || gradient(&f, &x));
    let h = best(20, || hvp(&f, &x, &v));
    let hh = best(20, || grad_hessian(&f, &x));
    let per = |t: f64| t / n as f64 * 1e9;
    println!("recursion, N = {n}:");
    println!("  gradient        {:8.1} ns/step", per(g));
    println!(
        "  hvp             {:8.1} ns/step ({:.2}x the gradient)",
        per(h),
        h / g
    );
    println!(
        "  3x3 hessian     {:8.1} ns/step ({:.2}x the gradient)",
        per(hh),
        hh / g
    );
    let r = hvp(&f, &x, &v);
    println!(
        "  f = {:.17}, grad = {:?}, H(1,1,1) = {:?}",
        r.value, r.gradient, r.hvp
    );

    let m = 10_000;
    let xw: Vec<f64> = (0..m).map(|i| (i as f64 * 0.37).sin()).collect();
    let vw: Vec<f64> = (0..m).map(|i| (i as f64 * 0.11).cos()).collect();
    let g = best(20, || gradient(&Chain, &xw));
    let h = best(20, || hvp(&Chain, &xw, &vw));
    println!("sum of sin(x_i x_i+1) + x_i^2:");
    println!(
        "  n = {m}: gradient {:.1} us, hvp {:.1} us ({:.2}x)",
        g * 1e6,
        h * 1e6,
        h / g
    );
    for k in [8usize, 32, 128] {
        let xk = &xw[..k];
        let g = best(20, || gradient(&Chain, xk));
        let hh = best(20, || grad_hessian(&Chain, xk));
        println!(
            "  n = {k}: gradient {:.2} us, dense hessian {:.2} us ({:.1}x = {:.2}·n gradients)",
            g * 1e6,
            hh * 1e6,
            hh / g,
            hh / g / k as f64
        );
    }
}
