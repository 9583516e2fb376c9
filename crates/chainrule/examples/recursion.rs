//! Recursion and the recursive chain rule, from plain Rust to bounded
//! memory.
//!
//! Run with `cargo run -p chainrule --example recursion`.
//!
//! 1. Recursive functions and data-dependent loops are just code: the tape
//!    records the calls that ran, and `backward` walks them back.
//! 2. Alpha compositing of one pixel (T_1 = 1, C = Σ c_i α_i T_i,
//!    T_{i+1} = T_i (1 − α_i)) unrolled on the tape gives the closed-form
//!    gradient dC/dα_i = c_i T_i − S_i / (1 − α_i).
//! 3. The same recursion as one `Recurrence` operation, reversed by storing
//!    every state, by binomial checkpointing, or by inverting the step
//!    (T_i = T_{i+1} / (1 − α_i)), with the memory each keeps.

use chainrule::{Recurrence, Strategy, Tape, Var};

/// x^n by recursion: x^n = x · x^(n−1).
fn power<'t>(x: Var<'t>, n: u32) -> Var<'t> {
    if n == 1 {
        x
    } else {
        x * power(x, n - 1)
    }
}

/// √a by Newton's iteration, written as a recursion that stops on a
/// condition.
fn newton_sqrt<'t>(a: Var<'t>, y: Var<'t>) -> Var<'t> {
    let next = (y + a / y) * 0.5;
    if (next.value() - y.value()).abs() <= 1e-15 * y.value() {
        next
    } else {
        newton_sqrt(a, next)
    }
}

fn main() {
    // 1. plain recursion
    let tape = Tape::new();
    let x = tape.var(1.5);
    let y = power(x, 5);
    println!(
        "x^5 at 1.5 = {:.6}, d/dx = {:.6} (5·1.5^4 = {:.6})",
        y.value(),
        y.backward().wrt(x),
        5.0 * 1.5f64.powi(4)
    );
    let a = tape.var(2.0);
    let r = newton_sqrt(a, a * 0.0 + 1.0);
    println!(
        "Newton sqrt(2) = {:.15}, d/da = {:.15} (1/(2·sqrt 2) = {:.15})",
        r.value(),
        r.backward().wrt(a),
        0.5 / 2f64.sqrt()
    );

    // a data-dependent while loop: double until above 1000
    let x0 = tape.var(3.0);
    let mut v = x0;
    let mut steps = 0;
    while v.value() < 1000.0 {
        v = v * 2.0 + 1.0;
        steps += 1;
    }
    println!(
        "loop ran {steps} times; d x_end / d x0 = {} (2^{steps})",
        v.backward().wrt(x0)
    );

    // 2. alpha compositing, unrolled, against the closed form
    let c = [0.8, 0.1, 0.5, 0.9, 0.3];
    let alpha = [0.4, 0.7, 0.2, 0.5, 0.9];
    let tape = Tape::new();
    let (cv, av) = (tape.vars(&c), tape.vars(&alpha));
    let mut t = tape.var(1.0);
    let mut col = tape.var(0.0);
    for (&ci, &ai) in cv.iter().zip(&av) {
        col += ci * ai * t;
        t *= 1.0 - ai;
    }
    let g = col.backward();
    let mut ts = vec![1.0];
    for i in 0..4 {
        ts.push(ts[i] * (1.0 - alpha[i]));
    }
    println!("\nalpha compositing, C = {:.6}", col.value());
    for i in 0..5 {
        let s: f64 = (i + 1..5).map(|j| c[j] * alpha[j] * ts[j]).sum();
        let closed = c[i] * ts[i] - s / (1.0 - alpha[i]);
        println!(
            "  dC/dα_{} tape {:+.12}  closed form {:+.12}",
            i + 1,
            g.wrt(av[i]),
            closed
        );
    }

    // 3. a long compositing recursion as one operation, three ways back
    let n = 20_000;
    let xs: Vec<f64> = (0..n)
        .flat_map(|i| {
            let u = (i as f64 * 0.618).fract();
            [0.5 + 0.5 * u, 0.002 * (1.0 - u)] // (c_i, α_i)
        })
        .collect();
    let rec = Recurrence::new(|s, _p, x, _t, next| {
        let (t, col) = (s[0], s[1]);
        next.push(t * (1.0 - x[1]));
        next.push(col + x[0] * x[1] * t);
    })
    .inputs_per_step(2)
    .inverse(|next, _p, x, _t, prev| {
        let t = next[0] / (1.0 - x[1]);
        prev[0] = t;
        prev[1] = next[1] - x[0] * x[1] * t;
    })
    .name("composite");

    println!("\n{n} fragments as one Recurrence op (loss (C − 0.3)²):");
    let mut reference: Option<Vec<f64>> = None;
    for st in [
        Strategy::StoreAll,
        Strategy::Checkpoint { snapshots: None },
        Strategy::Invert,
    ] {
        let tape = Tape::new();
        let s0 = tape.vars(&[1.0, 0.0]);
        let inputs = tape.vars(&xs);
        let out = rec.clone().strategy(st).apply(&s0, &[], &inputs);
        let loss = (out.state[1] - 0.3).square();
        let grads = loss.backward().wrt_all(&inputs);
        // the same reversal on plain numbers reports what it kept
        let traj = rec.clone().strategy(st).forward(&[1.0, 0.0], &[], &xs);
        let mut gx = vec![0.0; xs.len()];
        let seed = [0.0, 2.0 * (traj.state()[1] - 0.3)];
        let stats = traj.backward(&xs, &seed, &mut [0.0; 2], &mut [], &mut gx);
        let diff = match &reference {
            None => 0.0,
            Some(r) => r
                .iter()
                .zip(&grads)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs())),
        };
        println!(
            "  {:<40} states held {:>6}, forward steps/step {:.2}, max |Δgrad| vs store-all {:.1e}",
            format!("{st:?}"),
            stats.peak_states,
            stats.recompute_factor(),
            diff
        );
        if reference.is_none() {
            reference = Some(grads);
        }
    }
    println!(
        "  (the unrolled tape of the same recursion holds {} nodes of at most {} bytes)",
        7 * n,
        Tape::<f64>::node_bytes()
    );
}
