//! Probit regression fitted by Newton's method, the model written as a
//! plain closure.
//!
//! The data: 400 points `(x₁, x₂)` whose label is 1 where
//! `0.5 + 1.5 x₁ − x₂ + noise > 0` (standard normal noise). The model says
//! `P(y = 1) = Φ(b₀ + b₁ x₁ + b₂ x₂)`, with Φ the normal CDF, written as
//! `½ erfc(−t/√2)` so that `ln Φ` keeps its digits far in the tail; the
//! loss is the negative log-likelihood. [`chainrule::hessian_of`] gives
//! its value, gradient and exact Hessian from the closure alone (no
//! `Function` impl, no hand-derived derivatives), and each Newton step
//! solves `H p = −∇`. The estimate lands near the true (0.5, 1.5, −1),
//! and the gradient's norm falls quadratically.
//!
//! Run it with `cargo run --release -p chainrule --example probit`.

use chainrule::{hessian_of, Dual, Var};

/// A small deterministic generator (64-bit LCG), so the example needs no
/// dependency and prints the same numbers everywhere.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// ln Φ(t) = ln(½ erfc(−t/√2)).
fn ln_phi<'t>(t: Var<'t, Dual<f64>>) -> Var<'t, Dual<f64>> {
    ((-t * std::f64::consts::FRAC_1_SQRT_2).erfc() * 0.5).ln()
}

/// Solves the 3×3 system `h p = rhs` by Cramer's rule.
fn solve3(h: &[Vec<f64>], rhs: &[f64]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let base = [0, 1, 2].map(|i| [0, 1, 2].map(|j| h[i][j]));
    let d = det(base);
    [0, 1, 2].map(|k| {
        let mut m = base;
        for i in 0..3 {
            m[i][k] = rhs[i];
        }
        det(m) / d
    })
}

fn main() {
    let truth = [0.5, 1.5, -1.0];
    let mut rng = Lcg(7);
    let data: Vec<([f64; 2], bool)> = (0..400)
        .map(|_| {
            let x = [4.0 * rng.uniform() - 2.0, 4.0 * rng.uniform() - 2.0];
            let z = truth[0] + truth[1] * x[0] + truth[2] * x[1] + rng.normal();
            (x, z > 0.0)
        })
        .collect();
    let ones = data.iter().filter(|d| d.1).count();
    println!("400 points, {ones} labelled 1; true coefficients {truth:?}");

    let mut b = vec![0.0; 3];
    for step in 0..12 {
        // the negative log-likelihood, as a closure on dual-number Vars
        // (plain f64 constants work beside them)
        let r = hessian_of(
            |b| {
                data.iter()
                    .map(|&([x1, x2], y)| {
                        let eta = b[0] + b[1] * x1 + b[2] * x2;
                        -ln_phi(if y { eta } else { -eta })
                    })
                    .sum::<Option<_>>()
                    .expect("400 terms")
            },
            &b,
        );
        let norm = r.gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
        println!(
            "step {step:2}: loss {:.12}, |gradient| {norm:.3e}, b = [{:.6}, {:.6}, {:.6}]",
            r.value, b[0], b[1], b[2]
        );
        if norm < 1e-12 {
            break;
        }
        let neg: Vec<f64> = r.gradient.iter().map(|g| -g).collect();
        let p = solve3(&r.hessian, &neg);
        for (bi, pi) in b.iter_mut().zip(p) {
            *bi += pi;
        }
    }
    let err = b
        .iter()
        .zip(truth)
        .map(|(e, t)| (e - t).abs())
        .fold(0.0, f64::max);
    println!(
        "estimate [{:.4}, {:.4}, {:.4}]; largest error from the truth {err:.3}",
        b[0], b[1], b[2]
    );
    assert!(err < 0.5, "the estimate should be near the truth");
}
