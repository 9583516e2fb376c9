//! Newton's method with exact Hessians from forward-over-reverse.
//!
//! Each step solves `H(x) p = −∇f(x)` and moves to `x + p`. The gradient
//! and the Hessian come from [`chainrule::grad_hessian`], which records the
//! function on a tape of dual numbers: no finite differences, no
//! hand-derived second derivatives. Near the minimum the error squares
//! each step (quadratic convergence): the ratio `e_{k+1} / e_k²` settles to
//! a constant while the number of correct digits doubles.
//!
//! Run it with `cargo run -p chainrule --example newton`.

use chainrule::{grad_hessian, Function, Scalar, Tape, Var};

/// Rosenbrock's banana: `(1 − x)² + 100 (y − x²)²`, minimum 0 at (1, 1).
/// Written once, generic over the scalar, so it runs on a `Tape<f64>` and
/// on the tape of dual numbers that yields the Hessian.
struct Rosenbrock;

impl Function for Rosenbrock {
    fn eval<'t, S: Scalar>(&self, _tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let a = -x[0] + S::one();
        let b = x[1] - x[0].square();
        a.square() + b.square() * S::from_f64(100.0)
    }
}

/// A smooth, strictly convex function of three variables:
/// `ln Σᵢ exp(aᵢ·x + bᵢ) + ½ λ ‖x‖²` (a regularised log-sum-exp, the loss
/// of multinomial logistic regression). Its data are fields of the struct.
struct LogSumExp {
    a: Vec<[f64; 3]>,
    b: Vec<f64>,
    lambda: f64,
}

impl Function for LogSumExp {
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
        let mut sum = tape.var(S::zero());
        for (ai, &bi) in self.a.iter().zip(&self.b) {
            let mut z = tape.var(S::from_f64(bi));
            for (xj, &aij) in x.iter().zip(ai) {
                z += *xj * S::from_f64(aij);
            }
            sum += z.exp();
        }
        let mut reg = tape.var(S::zero());
        for &xj in x {
            reg += xj.square();
        }
        sum.ln() + reg * S::from_f64(0.5 * self.lambda)
    }
}

/// Solves `h p = rhs` by Gaussian elimination with partial pivoting.
fn solve(mut h: Vec<Vec<f64>>, mut rhs: Vec<f64>) -> Vec<f64> {
    let n = rhs.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| h[i][col].abs().total_cmp(&h[j][col].abs()))
            .expect("non-empty");
        h.swap(col, piv);
        rhs.swap(col, piv);
        assert!(h[col][col] != 0.0, "singular Hessian");
        let (top, below) = h.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (a, b) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *a -= f * b;
            }
            rhs[col + 1 + i] -= f * rhs[col];
        }
    }
    let mut p = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| h[row][k] * p[k]).sum();
        p[row] = (rhs[row] - s) / h[row][row];
    }
    p
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Runs Newton's method from `x0`; returns every iterate and the step
/// length taken to reach it. Pure Newton takes the full step `x + p`;
/// damped Newton halves it until f decreases enough (Armijo's rule), which
/// makes it converge from far away, and takes full steps near the minimum,
/// where convergence is quadratic.
fn newton<F: Function>(f: &F, x0: &[f64], damped: bool, max_steps: usize) -> Vec<(Vec<f64>, f64)> {
    let mut xs = vec![(x0.to_vec(), 0.0)];
    for _ in 0..max_steps {
        let x = xs.last().expect("non-empty").0.clone();
        let r = grad_hessian(f, &x);
        if norm(&r.gradient) == 0.0 {
            break;
        }
        let p = solve(r.hessian, r.gradient.iter().map(|g| -g).collect());
        let slope: f64 = r.gradient.iter().zip(&p).map(|(g, d)| g * d).sum();
        let at = |t: f64| -> Vec<f64> { x.iter().zip(&p).map(|(a, b)| a + t * b).collect() };
        let mut t = 1.0;
        if damped {
            while t > 1e-10 && grad_hessian(f, &at(t)).value > r.value + 1e-4 * t * slope {
                t *= 0.5;
            }
        }
        let next = at(t);
        if next == x {
            break; // converged to the last bit
        }
        xs.push((next, t));
    }
    xs
}

/// Prints the iterates with f, ‖∇f‖, the error e_k = ‖x_k − x*‖ and the
/// ratio e_k / e_{k−1}², which stays bounded under quadratic convergence.
fn report<F: Function>(name: &str, f: &F, xs: &[(Vec<f64>, f64)], x_star: &[f64]) {
    println!("{name}");
    println!(
        "{:>3}  {:<44} {:>6} {:>12} {:>10} {:>10} {:>14}",
        "k", "x_k", "step", "f(x_k)", "|grad|", "e_k", "e_k/e_{k-1}^2"
    );
    let mut prev_err: Option<f64> = None;
    for (k, (x, t)) in xs.iter().enumerate() {
        let r = grad_hessian(f, x);
        let err = norm(
            &x.iter()
                .zip(x_star)
                .map(|(a, b)| a - b)
                .collect::<Vec<f64>>(),
        );
        let coords: Vec<String> = x.iter().map(|v| format!("{v:+.10}")).collect();
        let ratio = match prev_err {
            Some(e) if e > 0.0 && err > 0.0 => format!("{:14.4}", err / (e * e)),
            _ => format!("{:>14}", "-"),
        };
        let step = if k == 0 {
            "-".to_string()
        } else {
            format!("{t}")
        };
        println!(
            "{k:>3}  {:<44} {step:>6} {:>12.4e} {:>10.2e} {:>10.2e} {ratio}",
            coords.join(" "),
            r.value,
            norm(&r.gradient),
            err
        );
        prev_err = Some(err);
    }
    println!();
}

fn main() {
    // Rosenbrock from the classic start (−1.2, 1); the minimiser is (1, 1).
    let xs = newton(&Rosenbrock, &[-1.2, 1.0], false, 50);
    report(
        "Pure Newton on Rosenbrock (1-x)^2 + 100(y-x^2)^2 from (-1.2, 1), minimum at (1, 1):",
        &Rosenbrock,
        &xs,
        &[1.0, 1.0],
    );
    let last = &xs.last().expect("non-empty").0;
    assert!(norm(&[last[0] - 1.0, last[1] - 1.0]) < 1e-12);

    // The convex problem: pure Newton cycles from this start, damped Newton
    // converges. The minimiser is the last iterate; errors are measured
    // against it.
    let f = LogSumExp {
        a: vec![
            [1.0, -2.0, 0.5],
            [-0.5, 1.0, 2.0],
            [2.0, 0.3, -1.0],
            [-1.5, -1.0, 0.2],
        ],
        b: vec![0.1, -0.4, 0.3, 0.0],
        lambda: 0.5,
    };
    let xs = newton(&f, &[2.0, -1.0, 1.5], true, 50);
    let x_star = xs.last().expect("non-empty").0.clone();
    report(
        "Damped Newton on a regularised log-sum-exp in 3-D from (2, -1, 1.5) (x* = last iterate):",
        &f,
        &xs,
        &x_star,
    );
    let g = grad_hessian(&f, &x_star).gradient;
    assert!(norm(&g) < 1e-14, "gradient at the end: {g:?}");
}
