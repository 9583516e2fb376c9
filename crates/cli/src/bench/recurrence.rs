//! `chainrule bench recurrence`: time and peak heap of each way to reverse
//! a long recursion (issue 4).
//!
//! Two workloads, N steps each:
//! - `scalar`: s ← s·a + sin(s)·b from s0 = 0.5, a = 0.9, b = 0.1 (the
//!   engine benchmark); gradient of s_N with respect to (s0, a, b). The
//!   strategies run through [`Recurrence::apply`] on an outer tape.
//! - `alpha`: front-to-back compositing of N fragments of one pixel,
//!   loss (C − 0.3)², gradient with respect to every colour and opacity
//!   (c, α ~ U(0, 0.5), as the JAX peer). The 2N inputs and their 2N
//!   gradients live in buffers allocated before the measurement; the
//!   strategies run through [`Recurrence::forward`] and
//!   [`chainrule::Trajectory::backward`], the machinery `apply` wraps.
//!
//! Strategies: `tape` (the plain loop unrolled on a tape sized in advance),
//! `store-all` (every state kept), `checkpoint` (automatic snapshot count)
//! and `invert`, with the step's plain-value twin ([`Recurrence::values`])
//! for the forward pass and recomputations, and the default block of 32
//! steps. The last three declare the step compiled
//! ([`Recurrence::compiled`]): their reverse passes replay its instruction
//! list; with `--recorded` they record the step closure instead
//! (store-all then keeps the unrolled tape of a short recursion on an
//! inner tape, as before). Each
//! run allocates its own memory (a new tape, new stored states), as a
//! gradient in a training loop would. `peak_bytes` is the most heap in use
//! during one gradient above what was live before it, counted by the
//! binary's allocator (`crate::alloc`); `ns_per_step` is the fastest of
//! the runs (forward and backward) divided by N. By default a case runs
//! as the JAX peer times its call (`run.sh alpha`): at least 5 times and
//! until about 2 s have been spent on it, because this VM's speed changes
//! for seconds at a time (BENCHMARKS.md, issue 17) and a minimum over
//! fewer runs than the peer's is not comparable with its minimum. With
//! `--reps R` a case runs R times instead. Short cases run more often
//! either way: at least 10⁶ / N times (at most 1,000), so that every case
//! is timed over about a million steps and the minimum of a 50 µs case is
//! not one lucky or unlucky run.

use std::hint::black_box;
use std::time::Instant;

use chainrule::{Recurrence, RecurrenceStats, Strategy, Tape};
use clap::Args;
use serde::Serialize;

use crate::alloc::measure_peak;
use crate::error::{CliError, CliResult};

/// Arguments of `chainrule bench recurrence`.
#[derive(Debug, Args)]
pub struct RecurrenceArgs {
    /// Numbers of steps, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000usize, 100_000, 10_000_000])]
    pub n: Vec<usize>,
    /// Timed repetitions per case (the fastest is reported). By default
    /// as many as the JAX peer (`run.sh alpha`) times: at least 5, and
    /// until about 2 s have been spent on the case. Cases with N < 10⁶
    /// repeat at least 10⁶ / N times (at most 1,000) either way.
    #[arg(long)]
    pub reps: Option<usize>,
    /// Only these strategies (comma-separated: tape, store-all,
    /// checkpoint, invert); all by default.
    #[arg(long, value_delimiter = ',')]
    pub strategy: Vec<String>,
    /// Only this workload (scalar or alpha); both by default.
    #[arg(long)]
    pub workload: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Compute with subnormal numbers flushed to zero (FTZ/DAZ), as XLA's
    /// CPU backend does for the JAX peers (see `bench::denormals`).
    #[arg(long)]
    pub flush_denormals: bool,
    /// Record the step closure in every reverse pass, as before the
    /// compiled step (`Recurrence::compiled`), for comparison.
    #[arg(long)]
    pub recorded: bool,
}

/// One measured case.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CaseResult {
    /// `scalar` or `alpha`.
    pub workload: &'static str,
    /// `tape`, `store-all`, `checkpoint` or `invert`.
    pub strategy: &'static str,
    /// Number of steps.
    pub n: usize,
    /// Fastest gradient (forward and backward), nanoseconds per step.
    pub ns_per_step: f64,
    /// Peak heap bytes of one gradient above what was live before it.
    pub peak_bytes: usize,
    /// Forward step evaluations per step (1 except for checkpointing).
    pub recompute_factor: f64,
    /// Whether the step ran compiled (`Recurrence::compiled`; never for
    /// `tape` or `--recorded`). Shown in the table, not in the JSON (whose
    /// keys are fixed).
    #[serde(skip)]
    pub compiled: bool,
}

/// What `bench recurrence --json` prints.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RecurrenceReport {
    /// Every case, by workload, then N, then strategy.
    pub results: Vec<CaseResult>,
}

/// The strategies, in report order.
pub const STRATEGIES: [&str; 4] = ["tape", "store-all", "checkpoint", "invert"];

fn strategy_of(name: &str) -> Strategy {
    match name {
        "store-all" => Strategy::StoreAll,
        "checkpoint" => Strategy::Checkpoint { snapshots: None },
        _ => Strategy::Invert,
    }
}

/// The scalar recursion, with its inverse (Newton on s·a + sin(s)·b = y,
/// monotone for a > |b|).
pub fn scalar_recurrence(n: usize, compiled: bool) -> Recurrence {
    let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
        .values(|s, p, _x, _t, next| next[0] = s[0] * p[0] + s[0].sin() * p[1])
        .steps(n)
        .inverse(|next, p, _x, _t, prev| {
            let (a, b, y) = (p[0], p[1], next[0]);
            let mut s = y / (a + b);
            // quadratic convergence: once a correction is below 1e-9 of s,
            // the corrected s is exact to rounding (the next would be ~1e-18)
            for _ in 0..60 {
                let (sn, cs) = s.sin_cos();
                let ds = (s * a + sn * b - y) / (a + b * cs);
                s -= ds;
                if ds.abs() <= 1e-9 * s.abs() + f64::MIN_POSITIVE {
                    break;
                }
            }
            prev[0] = s;
        })
        .name("scalar");
    if compiled {
        rec.compiled()
    } else {
        rec
    }
}

/// Alpha compositing: state (T, C), per-step inputs (c_i, α_i).
pub fn alpha_recurrence(compiled: bool) -> Recurrence {
    let rec = Recurrence::new(|s, _p, x, _t, next| {
        let (t, col) = (s[0], s[1]);
        next.push(t * (1.0 - x[1]));
        next.push(col + x[0] * x[1] * t);
    })
    .inputs_per_step(2)
    .values(|s, _p, x, _t, next| {
        next[0] = s[0] * (1.0 - x[1]);
        next[1] = s[1] + x[0] * x[1] * s[0];
    })
    .inverse(|next, _p, x, _t, prev| {
        let t = next[0] / (1.0 - x[1]);
        prev[0] = t;
        prev[1] = next[1] - x[0] * x[1] * t;
    })
    .name("composite");
    if compiled {
        // the same inverse, traced: native code over a block of steps
        // (same bits; the closure above runs where there is none)
        rec.compiled().traced_inverse(|next, _p, x, prev| {
            let t = next[0] / (1.0 - x[1]);
            prev.push(t);
            prev.push(next[1] - x[0] * x[1] * t);
        })
    } else {
        rec
    }
}

/// Inputs of the alpha workload, interleaved (c_0, α_0, c_1, α_1, …), from
/// a fixed-seed generator; both uniform in [0, 0.5).
pub fn alpha_inputs(n: usize) -> Vec<f64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..2 * n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.5 * ((state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// One scalar gradient with `strategy`: d s_N / d(s0, a, b).
#[cfg(test)]
fn scalar_once(strategy: &str, n: usize) -> [f64; 3] {
    scalar_once_with(strategy, n, true)
}

/// [`scalar_once`], the step compiled or recorded.
fn scalar_once_with(strategy: &str, n: usize, compiled: bool) -> [f64; 3] {
    let (s0, a, b) = (0.5, 0.9, 0.1);
    if strategy == "tape" {
        let tape = Tape::with_capacity(4 * n + 8);
        let (vs, va, vb) = (tape.var(s0), tape.var(a), tape.var(b));
        let s = super::ad::recursion(vs, va, vb, black_box(n));
        let g = s.backward();
        return [g.wrt(vs), g.wrt(va), g.wrt(vb)];
    }
    let rec = scalar_recurrence(n, compiled).strategy(strategy_of(strategy));
    let tape = Tape::new();
    let (vs, vp) = (tape.var(s0), tape.vars(&[a, b]));
    let out = rec.apply(&[vs], &vp, &[]);
    let g = out.state[0].backward();
    [g.wrt(vs), g.wrt(vp[0]), g.wrt(vp[1])]
}

/// The statistics of one scalar reversal (untimed), and whether the step
/// ran compiled.
fn scalar_stats(strategy: &str, n: usize, compiled: bool) -> (RecurrenceStats, bool) {
    let traj = scalar_recurrence(n, compiled)
        .strategy(strategy_of(strategy))
        .forward(&[0.5], &[0.9, 0.1], &[]);
    let (mut gs, mut gp) = ([0.0], [0.0; 2]);
    let stats = traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
    (stats, traj.is_compiled())
}

/// One alpha gradient: writes dL/d(c, α) into `grad` and returns the loss.
#[cfg(test)]
fn alpha_once(strategy: &str, xs: &[f64], grad: &mut [f64]) -> (f64, RecurrenceStats) {
    let (loss, stats, _) = alpha_once_with(strategy, xs, grad, true);
    (loss, stats)
}

/// [`alpha_once`], the step compiled or recorded; also says whether it ran
/// compiled.
fn alpha_once_with(
    strategy: &str,
    xs: &[f64],
    grad: &mut [f64],
    compiled: bool,
) -> (f64, RecurrenceStats, bool) {
    let n = xs.len() / 2;
    if strategy == "tape" {
        let tape = Tape::with_capacity(7 * n + 8);
        let inputs = tape.vars(xs);
        let mut t = tape.var(1.0);
        let mut col = tape.var(0.0);
        for f in inputs.chunks_exact(2) {
            let (c, a) = (f[0], f[1]);
            col += c * a * t;
            t *= 1.0 - a;
        }
        let loss = (col - 0.3).square();
        let g = loss.backward();
        for (dst, v) in grad.iter_mut().zip(&inputs) {
            *dst = g.wrt(*v);
        }
        let stats = RecurrenceStats {
            steps: n,
            vjps: n,
            ..Default::default()
        };
        return (loss.value(), stats, false);
    }
    let rec = alpha_recurrence(compiled).strategy(strategy_of(strategy));
    let traj = rec.forward(&[1.0, 0.0], &[], xs);
    let col = traj.state()[1];
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut gs = [0.0; 2];
    let stats = traj.backward(xs, &[0.0, 2.0 * (col - 0.3)], &mut gs, &mut [], grad);
    ((col - 0.3) * (col - 0.3), stats, traj.is_compiled())
}

/// How long a case is timed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// At least this many runs (and at least 10⁶ / N, at most 1,000).
    pub reps: usize,
    /// And until this many seconds have been spent on the case.
    pub seconds: f64,
}

impl Timing {
    /// The JAX peer's protocol (`peers/common.py`, `bench` with the alpha
    /// peer's target): at least 5 runs and about 2 s.
    pub const PEER: Timing = Timing {
        reps: 5,
        seconds: 2.0,
    };

    /// Exactly `reps` runs (more for short cases).
    pub fn reps(reps: usize) -> Timing {
        Timing { reps, seconds: 0.0 }
    }

    /// Whether a case of `n` steps has had enough runs, `runs` of them
    /// taking `spent` seconds.
    fn enough(self, n: usize, runs: usize, spent: f64) -> bool {
        let floor = self.reps.max((1_000_000 / n.max(1)).min(1_000));
        runs >= floor && spent >= self.seconds
    }
}

/// Measures every strategy on both workloads for each N.
pub fn measure(ns: &[usize], timing: Timing) -> RecurrenceReport {
    measure_some(ns, timing, &STRATEGIES, &["scalar", "alpha"], true)
}

/// Measures the given strategies on the given workloads for each N.
pub fn measure_some(
    ns: &[usize],
    timing: Timing,
    strategies: &[&'static str],
    workloads: &[&str],
    compiled: bool,
) -> RecurrenceReport {
    let mut results = Vec::new();
    let scalar_ns = if workloads.contains(&"scalar") {
        ns
    } else {
        &[]
    };
    let alpha_ns = if workloads.contains(&"alpha") {
        ns
    } else {
        &[]
    };
    for &n in scalar_ns {
        for &strategy in strategies {
            let mut times = Vec::new();
            let mut peak = 0;
            let mut first: Option<[f64; 3]> = None;
            let mut spent = 0.0;
            while !timing.enough(n, times.len(), spent) {
                let t0 = Instant::now();
                let (g, bytes) = measure_peak(|| scalar_once_with(strategy, n, compiled));
                let secs = t0.elapsed().as_secs_f64();
                spent += secs;
                times.push(secs * 1e9 / n as f64);
                peak = peak.max(bytes);
                if let Some(f) = first {
                    assert_eq!(f, g, "scalar {strategy}: not deterministic");
                }
                first = Some(black_box(g));
            }
            let (stats, ran_compiled) = if strategy == "tape" {
                let stats = RecurrenceStats {
                    steps: n,
                    ..Default::default()
                };
                (stats, false)
            } else {
                scalar_stats(strategy, n, compiled)
            };
            let (min, _) = super::min_median(&mut times);
            results.push(CaseResult {
                workload: "scalar",
                strategy,
                n,
                ns_per_step: min,
                peak_bytes: peak,
                recompute_factor: stats.recompute_factor(),
                compiled: ran_compiled,
            });
        }
    }
    for &n in alpha_ns {
        let xs = alpha_inputs(n);
        let mut grad = vec![0.0; 2 * n];
        for &strategy in strategies {
            let mut times = Vec::new();
            let mut peak = 0;
            let mut stats = RecurrenceStats::default();
            let mut ran_compiled = false;
            let mut spent = 0.0;
            while !timing.enough(n, times.len(), spent) {
                let t0 = Instant::now();
                let ((loss, st, c), bytes) =
                    measure_peak(|| alpha_once_with(strategy, &xs, &mut grad, compiled));
                let secs = t0.elapsed().as_secs_f64();
                spent += secs;
                times.push(secs * 1e9 / n as f64);
                peak = peak.max(bytes);
                stats = st;
                ran_compiled = c;
                black_box(loss);
            }
            let (min, _) = super::min_median(&mut times);
            results.push(CaseResult {
                workload: "alpha",
                strategy,
                n,
                ns_per_step: min,
                peak_bytes: peak,
                recompute_factor: stats.recompute_factor(),
                compiled: ran_compiled,
            });
        }
    }
    RecurrenceReport { results }
}

/// Runs `chainrule bench recurrence`.
pub fn run(args: RecurrenceArgs) -> CliResult {
    if args.n.is_empty() || args.n.contains(&0) || args.reps == Some(0) {
        return Err(CliError::usage(
            "bench recurrence: every --n and --reps must be at least 1",
        ));
    }
    if let Some(&big) = args.n.iter().find(|&&n| n > 100_000_000) {
        return Err(CliError::usage(format!(
            "bench recurrence: --n {big} is above 10^8 (the unrolled tape alone would need {} GB)",
            big as u64 * 7 * 24 / 1_000_000_000
        )));
    }
    let mut strategies: Vec<&'static str> = Vec::new();
    for s in &args.strategy {
        match STRATEGIES.iter().find(|k| **k == s.as_str()) {
            Some(k) => strategies.push(k),
            None => {
                return Err(CliError::usage(format!(
                    "bench recurrence: unknown --strategy `{s}` (tape, store-all, checkpoint or invert)"
                )))
            }
        }
    }
    if strategies.is_empty() {
        strategies = STRATEGIES.to_vec();
    }
    let workloads: Vec<&str> = match args.workload.as_deref() {
        None => vec!["scalar", "alpha"],
        Some(w @ ("scalar" | "alpha")) => vec![w],
        Some(w) => {
            return Err(CliError::usage(format!(
                "bench recurrence: unknown --workload `{w}` (scalar or alpha)"
            )))
        }
    };
    let r = {
        let _mode = super::denormals::FlushDenormals::new(args.flush_denormals);
        let timing = args.reps.map_or(Timing::PEER, Timing::reps);
        measure_some(&args.n, timing, &strategies, &workloads, !args.recorded)
    };
    if args.json {
        println!("{}", serde_json::to_string(&r).expect("report serialises"));
    } else {
        println!(
            "recurrences, {} (10^6 steps timed), fastest run ({}{}{})",
            match args.reps {
                Some(r) => format!("at least {r} reps"),
                None => "at least 5 reps and about 2 s a case, as the JAX peer".into(),
            },
            // (the FP mode always: the JAX peers flush subnormals, so
            // only the flushed rows compare like with like)
            if args.flush_denormals {
                "subnormals flushed to zero as XLA's CPU backend does, "
            } else {
                "IEEE arithmetic with subnormals (XLA flushes them), "
            },
            if args.recorded {
                "step recorded, not compiled, "
            } else {
                ""
            },
            super::machine()
        );
        println!(
            "  {:8} {:11} {:>10} {:>11} {:>14} {:>9} {:>8}",
            "workload", "strategy", "N", "ns/step", "peak bytes", "recompute", "compiled"
        );
        for c in &r.results {
            println!(
                "  {:8} {:11} {:>10} {:>11.2} {:>14} {:>9.2} {:>8}",
                c.workload,
                c.strategy,
                c.n,
                c.ns_per_step,
                c.peak_bytes,
                c.recompute_factor,
                if c.compiled { "yes" } else { "no" }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_gives_the_tape_gradient() {
        for n in [1, 37, 500] {
            let g_ref = scalar_once("tape", n);
            let xs = alpha_inputs(n);
            let mut a_ref = vec![0.0; 2 * n];
            let (l_ref, _) = alpha_once("tape", &xs, &mut a_ref);
            for st in &STRATEGIES[1..] {
                let g = scalar_once(st, n);
                for k in 0..3 {
                    assert!(
                        (g[k] - g_ref[k]).abs() <= 1e-12 * g_ref[k].abs(),
                        "{st} n={n}: {g:?} vs {g_ref:?}"
                    );
                }
                let mut a = vec![0.0; 2 * n];
                let (l, _) = alpha_once(st, &xs, &mut a);
                assert_eq!(l, l_ref);
                let scale = a_ref.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (x, y) in a.iter().zip(&a_ref) {
                    assert!((x - y).abs() <= 1e-12 * scale, "{st} n={n}");
                }
            }
        }
    }

    /// The compiled alpha workload inverts with the traced inverse (native
    /// code where there is some), the recorded one with the closure: the
    /// same recovered states, so the same gradient bit for bit.
    #[test]
    fn the_traced_inverse_gives_the_closures_gradient() {
        for n in [1, 33, 700] {
            let xs = alpha_inputs(n);
            let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
            let (la, _, ca) = alpha_once_with("invert", &xs, &mut a, true);
            let (lb, _, cb) = alpha_once_with("invert", &xs, &mut b, false);
            assert!(ca && !cb);
            assert_eq!(la.to_bits(), lb.to_bits());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "n = {n}");
        }
    }

    #[test]
    fn report_has_the_contract_shape() {
        let r = measure(&[50, 2000], Timing::reps(1));
        assert_eq!(r.results.len(), 2 * 2 * 4);
        let v = serde_json::to_value(&r).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 1);
        for c in obj["results"].as_array().unwrap() {
            let c = c.as_object().unwrap();
            let mut keys: Vec<&str> = c.keys().map(|k| k.as_str()).collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    "n",
                    "ns_per_step",
                    "peak_bytes",
                    "recompute_factor",
                    "strategy",
                    "workload"
                ]
            );
            assert!(["scalar", "alpha"].contains(&c["workload"].as_str().unwrap()));
            assert!(STRATEGIES.contains(&c["strategy"].as_str().unwrap()));
            assert!(c["ns_per_step"].as_f64().unwrap() > 0.0);
            let f = c["recompute_factor"].as_f64().unwrap();
            if c["strategy"] == "checkpoint" && c["n"] == 2000 {
                assert!(f > 1.0, "{c:?}");
            } else if c["strategy"] == "checkpoint" {
                assert!(f >= 1.0, "{c:?}");
            } else {
                assert_eq!(f, 1.0);
            }
        }
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for (n, reps) in [
            (vec![0], 1),
            (vec![10], 0),
            (vec![], 1),
            (vec![1_000_000_000], 1),
        ] {
            let e = run(RecurrenceArgs {
                n,
                reps: Some(reps),
                strategy: vec![],
                workload: None,
                json: true,
                flush_denormals: false,
                recorded: false,
            })
            .unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with("bench recurrence:"), "{e}");
        }
        let bad_strategy = RecurrenceArgs {
            n: vec![10],
            reps: Some(1),
            strategy: vec!["revolve".into()],
            workload: None,
            json: true,
            flush_denormals: false,
            recorded: false,
        };
        assert!(run(bad_strategy)
            .unwrap_err()
            .to_string()
            .contains("--strategy `revolve`"));
        let bad_workload = RecurrenceArgs {
            n: vec![10],
            reps: Some(1),
            strategy: vec![],
            workload: Some("pixel".into()),
            json: true,
            flush_denormals: false,
            recorded: false,
        };
        assert!(run(bad_workload)
            .unwrap_err()
            .to_string()
            .contains("--workload `pixel`"));
    }
}
