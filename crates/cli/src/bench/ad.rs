//! `chainrule bench ad`: the cost of a gradient against the plain function.
//!
//! Workload (issue 2): s ← s·a + sin(s)·b for N steps from s0 = 0.5 with
//! a = 0.9, b = 0.1; gradient of s_N with respect to (s0, a, b).
//!
//! Besides the plain tape (recorded anew for every gradient, no compile
//! step), the `compiled_*` figures measure the same recursion as a
//! [`Recurrence`] whose step is compiled once ([`Recurrence::compiled`],
//! store-all: every state kept, the step's instruction list replayed
//! backwards), the analogue of JAX's `jit(grad)` over `lax.fori_loop`,
//! which traces the loop body once; like JAX's, its compile time (one
//! recording of one step) is not in the figure's minimum but in every
//! run.

use std::hint::black_box;
use std::time::Instant;

use chainrule::{Recurrence, Strategy, Tape, Var};
use clap::Args;
use serde::Serialize;

use crate::error::{CliError, CliResult};

/// Arguments of `chainrule bench ad`.
#[derive(Debug, Args)]
pub struct AdArgs {
    /// Number of steps of the recursion.
    #[arg(long, default_value_t = 1_000_000)]
    pub n: usize,
    /// Timed repetitions (the minimum and median are reported). By default
    /// as many as the JAX peer (`run.sh scalar`) takes: at least 5, and
    /// gradients until about 1 s is spent (35-40 at N = 10^6).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `bench ad` measures.
#[derive(Debug, Serialize)]
pub struct AdReport {
    /// Number of steps.
    pub n: usize,
    /// Timed repetitions.
    pub reps: usize,
    /// Plain f64 loop, no tape: minimum ns per step.
    pub plain_ns_per_step: f64,
    /// Recording plus backward on a reused (cleared) tape: minimum ns per step.
    pub grad_ns_per_step: f64,
    /// `grad_ns_per_step / plain_ns_per_step`.
    pub ratio: f64,
    /// Median of the reused-tape timings, ns per step.
    pub grad_ns_per_step_median: f64,
    /// Recording alone (forward on the tape), reused tape, ns per step.
    pub record_ns_per_step: f64,
    /// The reverse sweep alone, ns per step.
    pub backward_ns_per_step: f64,
    /// A fresh tape each time (first touch of its memory), ns per step.
    pub fresh_grad_ns_per_step: f64,
    /// `fresh_grad_ns_per_step / plain_ns_per_step`.
    pub fresh_ratio: f64,
    /// The compiled step ([`Recurrence::compiled`], store-all keeping
    /// every step's partials, memory reused as the tape's): minimum ns per
    /// step, compiling, forward and backward.
    pub compiled_ns_per_step: f64,
    /// `compiled_ns_per_step / plain_ns_per_step`.
    pub compiled_ratio: f64,
    /// Whether the compiled step's gradient equals the tape's bit for bit.
    pub compiled_same_gradient: bool,
    /// Whether the compiled step ran as native code (`Trajectory::is_native`;
    /// otherwise on the instruction-list interpreter, e.g. with
    /// `CHAINRULE_JIT=0`).
    pub compiled_native: bool,
    /// Bytes the tape holds per recorded node, on average (8-byte heads
    /// plus the partials each kind of node keeps; see `Tape::used_bytes`).
    pub tape_bytes_per_node: f64,
    /// Nodes recorded per step of the recursion.
    pub nodes_per_step: f64,
    /// s_N.
    pub value: f64,
    /// [d s_N/d s0, d s_N/d a, d s_N/d b].
    pub gradient: [f64; 3],
    /// The machine it ran on.
    pub machine: String,
}

/// The recursion on the tape. Inlined into its caller, as the loop is
/// when a user writes it (`user-bench`): as a function of its own it kept
/// `s` in memory and its operands' checks in the loop, and the recording
/// measured 2.3 ns a step slower than the same loop inline (AMD EPYC,
/// BENCHMARKS.md, issue 17, ninth session).
#[inline(always)]
pub fn recursion<'t>(s0: Var<'t>, a: Var<'t>, b: Var<'t>, n: usize) -> Var<'t> {
    let mut s = s0;
    for _ in 0..n {
        s = s * a + s.sin() * b;
    }
    s
}

/// The recursion as a compiled [`Recurrence`] of `n` steps, store-all
/// with what every step's sweep needs kept (24 bytes a step, `s`, `cos s`
/// and `sin s`: no node heads, no adjoint per node and no partial that is
/// a parameter, against the tape's 72 + 32).
pub fn compiled_recurrence(n: usize) -> Recurrence {
    Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
        .steps(n)
        .strategy(Strategy::StoreAll)
        .store_all_budget(usize::MAX)
        .compiled()
}

/// The same recursion in plain f64.
pub fn plain(s0: f64, a: f64, b: f64, n: usize) -> f64 {
    let mut s = s0;
    for _ in 0..n {
        s = s * a + s.sin() * b;
    }
    s
}

fn secs_per_step(t: Instant, n: usize) -> f64 {
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// The default count of timed gradients, as the JAX peer's `bench` (in
/// `../shared/peers/common.py`) counts its calls: at least this many…
const AUTO_MIN_REPS: usize = 5;
/// … and until this many seconds have been spent on them (at most
/// [`AUTO_MAX_REPS`]).
const AUTO_SECONDS: f64 = 1.0;
/// The most timed gradients by default.
const AUTO_MAX_REPS: usize = 100_000;

/// Runs the measurements: `reps` timed repetitions of each, or by default
/// (`None`) as many gradients as the JAX peer times (at least 5, about
/// 1 s) and as many runs of the plain loop and the
/// compiled step. The same count matters on a host whose speed changes
/// within a second (the AMD EPYC Zen 5 VM: a third slower for a while,
/// BENCHMARKS.md, issue 17): 7 repetitions (0.2 s) could all fall in a slow
/// spell that the peer's 40 (1 s) outlast, so minimum and median are only
/// comparable at equal counts.
pub fn measure(n: usize, reps: Option<usize>) -> AdReport {
    let (s0, a, b) = (0.5, 0.9, 0.1);
    let mut tape = Tape::with_capacity(4 * n + 8);
    let (mut grad_t, mut rec_t, mut bwd_t) = (Vec::new(), Vec::new(), Vec::new());
    // set by every pass of the loop below, which runs at least once
    let (mut value, mut gradient, mut nodes, mut used): (f64, [f64; 3], usize, usize);
    // one untimed warm-up touches the tape's and the adjoints' memory
    let mut rep = 0;
    let mut spent = 0.0;
    loop {
        tape.clear();
        let t = Instant::now();
        let (vs0, va, vb) = (tape.var(s0), tape.var(a), tape.var(b));
        let s = recursion(vs0, va, vb, black_box(n));
        let rec = secs_per_step(t, n);
        let t2 = Instant::now();
        let g = s.backward();
        let gr = [g.wrt(vs0), g.wrt(va), g.wrt(vb)];
        let bwd = secs_per_step(t2, n);
        let total = secs_per_step(t, n);
        drop(g);
        if rep > 0 {
            grad_t.push(total);
            rec_t.push(rec);
            bwd_t.push(bwd);
            spent += total * n as f64 * 1e-9;
        }
        value = s.value();
        gradient = gr;
        nodes = tape.len();
        used = tape.used_bytes();
        let enough = match reps {
            Some(r) => rep >= r,
            None => rep >= AUTO_MAX_REPS || (rep >= AUTO_MIN_REPS && spent >= AUTO_SECONDS),
        };
        if enough {
            break;
        }
        rep += 1;
    }
    let reps = grad_t.len();

    let mut plain_t = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        black_box(plain(
            black_box(s0),
            black_box(a),
            black_box(b),
            black_box(n),
        ));
        plain_t.push(secs_per_step(t, n));
    }

    let mut comp_t = Vec::new();
    let mut comp_grad = [0.0; 3];
    let mut native = false;
    let rec = compiled_recurrence(n);
    // one untimed warm-up, then its memory is reused (as the tape's)
    let mut traj = rec.forward(&[s0], &[a, b], &[]);
    for rep in 0..=reps {
        let t = Instant::now();
        traj = rec.forward_reusing(traj, &[s0], &[a, b], &[]);
        let (mut gs, mut gp) = ([0.0], [0.0; 2]);
        traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
        let el = secs_per_step(t, n);
        assert!(traj.is_compiled(), "bench ad: the step did not compile");
        if rep > 0 {
            comp_t.push(el);
        }
        comp_grad = [gs[0], gp[0], gp[1]];
        native = traj.is_native();
    }

    let mut fresh_t = Vec::new();
    for _ in 0..reps.clamp(1, 3) {
        let t = Instant::now();
        let tape = Tape::new();
        let (vs0, va, vb) = (tape.var(s0), tape.var(a), tape.var(b));
        let s = recursion(vs0, va, vb, black_box(n));
        let g = s.backward();
        black_box(g.wrt(vs0));
        fresh_t.push(secs_per_step(t, n));
    }

    let (plain_min, _) = super::min_median(&mut plain_t);
    let (grad_min, grad_med) = super::min_median(&mut grad_t);
    let (rec_min, _) = super::min_median(&mut rec_t);
    let (bwd_min, _) = super::min_median(&mut bwd_t);
    let (fresh_min, _) = super::min_median(&mut fresh_t);
    let (comp_min, _) = super::min_median(&mut comp_t);
    let bits = |g: &[f64; 3]| g.map(f64::to_bits);
    AdReport {
        n,
        reps,
        plain_ns_per_step: plain_min,
        grad_ns_per_step: grad_min,
        ratio: grad_min / plain_min,
        grad_ns_per_step_median: grad_med,
        record_ns_per_step: rec_min,
        backward_ns_per_step: bwd_min,
        fresh_grad_ns_per_step: fresh_min,
        fresh_ratio: fresh_min / plain_min,
        compiled_ns_per_step: comp_min,
        compiled_ratio: comp_min / plain_min,
        compiled_same_gradient: bits(&comp_grad) == bits(&gradient),
        compiled_native: native,
        tape_bytes_per_node: used as f64 / nodes as f64,
        nodes_per_step: (nodes - 4) as f64 / n as f64,
        value,
        gradient,
        machine: super::machine(),
    }
}

/// Runs `chainrule bench ad`.
pub fn run(args: AdArgs) -> CliResult {
    if args.n == 0 || args.reps == Some(0) {
        return Err(CliError::usage("--n and --reps must be at least 1"));
    }
    let r = measure(args.n, args.reps);
    if args.json {
        println!("{}", serde_json::to_string(&r).expect("report serialises"));
    } else {
        println!(
            "scalar recursion, N = {} steps, {} reps ({})",
            r.n, r.reps, r.machine
        );
        println!(
            "  plain f64 loop        {:8.2} ns/step",
            r.plain_ns_per_step
        );
        println!(
            "  gradient, reused tape {:8.2} ns/step  (record {:.2} + backward {:.2}; ratio {:.2})",
            r.grad_ns_per_step, r.record_ns_per_step, r.backward_ns_per_step, r.ratio
        );
        println!(
            "  gradient, fresh tape  {:8.2} ns/step  (ratio {:.2})",
            r.fresh_grad_ns_per_step, r.fresh_ratio
        );
        println!(
            "  compiled step         {:8.2} ns/step  (ratio {:.2}; {}; gradient {} the tape's)",
            r.compiled_ns_per_step,
            r.compiled_ratio,
            if r.compiled_native {
                "native code"
            } else {
                "interpreted"
            },
            if r.compiled_same_gradient {
                "bit for bit"
            } else {
                "NOT"
            }
        );
        println!(
            "  tape: {:.1} bytes/node, {:.1} nodes/step",
            r.tape_bytes_per_node, r.nodes_per_step
        );
        println!("  s_N = {:.17e}", r.value);
        println!(
            "  gradient = [{:.17e}, {:.17e}, {:.17e}]",
            r.gradient[0], r.gradient[1], r.gradient[2]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_step_gives_the_tape_gradient_bit_for_bit() {
        for n in [1, 2, 33, 1000] {
            let r = measure(n, Some(1));
            assert!(r.compiled_same_gradient, "n = {n}: {r:?}");
            assert!(r.compiled_ns_per_step > 0.0 && r.compiled_ratio > 0.0);
            // native code on x86-64 and AArch64 unless CHAINRULE_JIT=0
            let native = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
                && std::env::var("CHAINRULE_JIT").as_deref() != Ok("0");
            assert_eq!(r.compiled_native, native, "n = {n}");
        }
    }
}
