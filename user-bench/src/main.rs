//! `bench ad`'s figures, measured from a user's own crate: the gradient of
//! s ← s·a + sin(s)·b over N steps (default 10⁶) on a reused tape, and as
//! a compiled store-all `Recurrence` (native code where the engine has
//! it), against the same loop on plain `f64`, minimum of `--reps` runs
//! of each. By default it counts as `bench ad` and the JAX peer do: at
//! least 5 gradients and until about 1 s has been spent on them, then as
//! many runs of the plain loop and of the compiled step (this VM's speed
//! changes for seconds at a time, so minima are only comparable at equal
//! counts).
//!
//! Usage: `chainrule-user-bench [--n N] [--reps R] [--json]`.

use std::hint::black_box;
use std::time::Instant;

use chainrule::{Recurrence, Strategy, Tape};

fn plain(s0: f64, a: f64, b: f64, n: usize) -> f64 {
    let mut s = s0;
    for _ in 0..n {
        s = s * a + s.sin() * b;
    }
    s
}

fn ns_per_step(t: Instant, n: usize) -> f64 {
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn parse(args: &[String], name: &str) -> Result<Option<usize>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&v: &usize| v > 0)
            .map(Some)
            .ok_or_else(|| format!("{name} needs a positive integer")),
    }
}

/// At least this many gradients by default (`bench ad`'s count) ...
const AUTO_MIN_REPS: usize = 5;
/// ... and until this many seconds have been spent on them.
const AUTO_SECONDS: f64 = 1.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (n, reps) = match (parse(&args, "--n"), parse(&args, "--reps")) {
        (Ok(n), Ok(r)) => (n.unwrap_or(1_000_000), r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("chainrule-user-bench: {e}");
            std::process::exit(2);
        }
    };
    let json = args.iter().any(|a| a == "--json");
    let (s0, a, b) = (0.5, 0.9, 0.1);

    let mut tape = Tape::with_capacity(4 * n + 8);
    let mut grad_min = f64::INFINITY;
    // the fastest recording and sweep apart, as `bench ad` reports them
    // (so a slow gradient shows which half was slow)
    let (mut record_min, mut backward_min) = (f64::INFINITY, f64::INFINITY);
    let mut gradient;
    // one untimed warm-up touches the tape's and the adjoints' memory
    let (mut rep, mut spent) = (0, 0.0);
    loop {
        tape.clear();
        let t = Instant::now();
        let (vs0, va, vb) = (tape.var(s0), tape.var(a), tape.var(b));
        let mut s = vs0;
        for _ in 0..black_box(n) {
            s = s * va + s.sin() * vb;
        }
        let recorded = ns_per_step(t, n);
        let t2 = Instant::now();
        let g = s.backward();
        gradient = [g.wrt(vs0), g.wrt(va), g.wrt(vb)];
        let swept = ns_per_step(t2, n);
        let el = ns_per_step(t, n);
        if rep > 0 {
            grad_min = grad_min.min(el);
            record_min = record_min.min(recorded);
            backward_min = backward_min.min(swept);
            spent += el * n as f64 * 1e-9;
        }
        let enough = match reps {
            Some(r) => rep >= r,
            None => rep >= AUTO_MIN_REPS && spent >= AUTO_SECONDS,
        };
        if enough {
            break;
        }
        rep += 1;
    }
    let reps = rep;

    let mut plain_min = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        black_box(plain(
            black_box(s0),
            black_box(a),
            black_box(b),
            black_box(n),
        ));
        plain_min = plain_min.min(ns_per_step(t, n));
    }

    // the same recursion as a compiled step (`bench ad`'s compiled row)
    let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
        .steps(n)
        .strategy(Strategy::StoreAll)
        .store_all_budget(usize::MAX)
        .compiled();
    let mut traj = rec.forward(&[s0], &[a, b], &[]);
    let mut comp_min = f64::INFINITY;
    let mut same = true;
    for rep in 0..=reps {
        let t = Instant::now();
        traj = rec.forward_reusing(traj, &[s0], &[a, b], &[]);
        let (mut gs, mut gp) = ([0.0], [0.0; 2]);
        traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
        let el = ns_per_step(t, n);
        if rep > 0 {
            comp_min = comp_min.min(el);
        }
        same &= [gs[0], gp[0], gp[1]].map(f64::to_bits) == gradient.map(f64::to_bits);
    }
    let native = traj.is_native();
    let ratio = grad_min / plain_min;
    let comp_ratio = comp_min / plain_min;
    if json {
        println!(
            "{{\"n\":{n},\"reps\":{reps},\"plain_ns_per_step\":{plain_min},\"grad_ns_per_step\":{grad_min},\"record_ns_per_step\":{record_min},\"backward_ns_per_step\":{backward_min},\"ratio\":{ratio},\"compiled_ns_per_step\":{comp_min},\"compiled_ratio\":{comp_ratio},\"compiled_native\":{native},\"compiled_same_gradient\":{same},\"gradient\":[{:e},{:e},{:e}]}}",
            gradient[0], gradient[1], gradient[2]
        );
    } else {
        println!("user crate, default release profile, N = {n}, {reps} reps");
        println!("  plain f64 loop        {plain_min:8.2} ns/step");
        println!("  gradient, reused tape {grad_min:8.2} ns/step  (ratio {ratio:.2}; recording {record_min:.2}, sweep {backward_min:.2})");
        println!(
            "  compiled step         {comp_min:8.2} ns/step  (ratio {comp_ratio:.2}; {}; gradient {} the tape's)",
            if native { "native code" } else { "interpreted" },
            if same { "bit for bit" } else { "NOT" }
        );
        println!("  gradient = {gradient:?}");
    }
    if !same {
        eprintln!("chainrule-user-bench: the compiled step's gradient differs from the tape's");
        std::process::exit(1);
    }
}
