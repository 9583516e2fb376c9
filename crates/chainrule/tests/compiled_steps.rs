//! `Recurrence::compiled` (issue 17): a step compiled into an instruction
//! list must give every strategy's gradient bit for bit as the step
//! recorded closure by closure, on random straight-line steps.

use std::sync::Arc;

use chainrule::{Recurrence, Strategy as Rev, Traced, Var};
use proptest::prelude::*;

use crate::compiled_remat::OpSpec;

const KINDS: u8 = 18;

fn apply<'t>(o: &OpSpec, vals: &[Var<'t>]) -> Var<'t> {
    let (a, b) = (vals[o.a % vals.len()], vals[o.b % vals.len()]);
    crate::compiled_remat::op(o.kind.min(KINDS - 1), a, b, o.c)
}

/// Whether the first node the step records uses one value twice (such a
/// step is not compiled).
fn first_uses_twice(o: &OpSpec, n_in: usize) -> bool {
    match o.kind {
        0..=2 => o.a % n_in == o.b % n_in,
        3 | 11 | 12 | 17 => true,
        _ => false,
    }
}

fn step_of(ops: Vec<OpSpec>, ns: usize) -> Recurrence {
    let ops = Arc::new(ops);
    Recurrence::new(move |s, p, x, _t, next| {
        let mut vals: Vec<Var<'_>> = p.iter().chain(s).chain(x).copied().collect();
        let n_in = vals.len();
        for o in ops.iter() {
            let v = apply(o, &vals);
            vals.push(v);
        }
        // the last `ns` values made (distinct nodes), or inputs mixed in
        // when the step made fewer
        let made = vals.len() - n_in;
        for k in 0..ns {
            let v = if k < made {
                vals[vals.len() - 1 - k]
            } else {
                vals[vals.len() - 1] * (k as f64 + 2.0)
            };
            next.push(v * 0.5);
        }
    })
}

/// The bits of each value, every NaN as one. IEEE 754 leaves the sign
/// and payload of an arithmetic result's NaN unspecified: x86 makes a new
/// NaN negative, a negation flips its sign, and with two NaN operands the
/// operand order in the machine code picks the one passed on, so two
/// faithful ways of computing a gradient may end in NaNs of opposite sign
/// (the CI of 2026-12-03 found +NaN from the native compiled step against
/// −NaN recorded; the case is in the regressions file). Every number
/// still matches bit for bit, and a NaN never matches a number.
fn bits(v: &[f64]) -> Vec<u64> {
    v.iter()
        .map(|x| {
            if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}

#[allow(clippy::type_complexity)]
fn gradient(
    rec: &Recurrence,
    s0: &[f64],
    p: &[f64],
    xs: &[f64],
    seed: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, bool, bool) {
    let traj = rec.forward(s0, p, xs);
    let (mut gs, mut gp, mut gx) = (vec![0.0; s0.len()], vec![0.0; p.len()], vec![0.0; xs.len()]);
    traj.backward(xs, seed, &mut gs, &mut gp, &mut gx);
    (
        traj.state().to_vec(),
        gs,
        gp,
        gx,
        traj.is_compiled(),
        traj.is_native(),
    )
}

/// Whether a compiled step should run as native code here: on x86-64 and
/// AArch64 unless `CHAINRULE_JIT=0` (set it too when building without
/// the default `jit` feature).
fn native_expected() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
        && std::env::var("CHAINRULE_JIT").as_deref() != Ok("0")
}

fn spec() -> impl proptest::strategy::Strategy<Value = OpSpec> {
    (0..KINDS, 0usize..64, 0usize..64, -2.0f64..2.0).prop_map(|(kind, a, b, c)| OpSpec {
        kind,
        a,
        b,
        c: if c.abs() < 0.1 { 0.7 } else { c },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn compiled_steps_give_the_recorded_gradient_bit_for_bit(
        ops in proptest::collection::vec(spec(), 1..9),
        ns in 1usize..4,
        np in 0usize..3,
        w in 0usize..3,
        n in 1usize..70,
        block in 1usize..9,
        vals in proptest::collection::vec(-1.0f64..1.0, 400),
    ) {
        let n_in = ns + np + w;
        // operands near the end of the list, as real steps have them
        let ops: Vec<OpSpec> = ops
            .into_iter()
            .enumerate()
            .map(|(j, mut o)| {
                let len = n_in + j;
                o.a = len - 1 - o.a % len.min(4);
                o.b = len - 1 - o.b % len.min(4);
                o
            })
            .collect();
        let expect = !first_uses_twice(&ops[0], n_in);
        let base = step_of(ops, ns).inputs_per_step(w).steps(n).block(block);
        // any deterministic inverse: both ways recover the same states
        let base = base.inverse(crate::compiled_remat::f64_suite::shrink);
        let (s0, rest) = vals.split_at(ns);
        let (p, rest) = rest.split_at(np);
        let (seed, rest) = rest.split_at(ns);
        let xs = &rest[..n * w];
        for st in [
            Rev::StoreAll,
            Rev::Invert,
            Rev::Checkpoint { snapshots: None },
            Rev::Checkpoint { snapshots: Some(2) },
        ] {
            // store-all keeps the recorded tape (or the compiled partials)
            // within its budget, else the states: each way against each
            for budget in [usize::MAX, 0] {
                let plain = base.clone().strategy(st).store_all_budget(budget);
                let want = gradient(&plain, s0, p, xs, seed);
                prop_assert!(!want.4);
                for fast_budget in [usize::MAX, 0] {
                    let fast = plain.clone().compiled().store_all_budget(fast_budget);
                    // the same inverse traced (it runs where it is native)
                    let fast = if st == Rev::Invert {
                        fast.traced_inverse(crate::compiled_remat::f64_suite::shrink_traced)
                    } else {
                        fast
                    };
                    let got = gradient(&fast, s0, p, xs, seed);
                    let ctx = format!("{st:?}, budgets {budget} / {fast_budget}");
                    prop_assert_eq!(got.4, expect, "{}", ctx);
                    prop_assert_eq!(got.5, expect && native_expected(), "native, {}", ctx);
                    prop_assert_eq!(bits(&got.0), bits(&want.0), "state, {}", ctx);
                    prop_assert_eq!(bits(&got.1), bits(&want.1), "s0, {}", ctx);
                    prop_assert_eq!(bits(&got.2), bits(&want.2), "params, {}", ctx);
                    prop_assert_eq!(bits(&got.3), bits(&want.3), "xs, {}", ctx);
                }
            }
        }
    }
}

/// The workloads of `bench recurrence` compile, and a step that branches
/// on `t` is caught by the declaration's check.
#[test]
fn bench_steps_compile_and_a_false_declaration_panics() {
    let alpha = Recurrence::new(|s, _p, x, _t, next| {
        let (t, c) = (s[0], s[1]);
        next.push(t * (1.0 - x[1]));
        next.push(c + x[0] * x[1] * t);
    })
    .inputs_per_step(2)
    .compiled();
    let xs: Vec<f64> = (0..200)
        .map(|i| (i as f64 * 0.37).sin().abs() * 0.5)
        .collect();
    let traj = alpha.forward(&[1.0, 0.0], &[], &xs);
    assert!(traj.is_compiled());
    assert_eq!(traj.is_native(), native_expected());
    let scalar = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
        .steps(10)
        .compiled();
    assert!(scalar.forward(&[0.5], &[0.9, 0.1], &[]).is_compiled());
    let pow = Recurrence::new(|s, _p, _x, _t, next| next.push(s[0].powf(1.5)))
        .steps(10)
        .compiled();
    assert!(!pow.forward(&[0.5], &[], &[]).is_compiled());
    let branchy = Recurrence::new(|s, _p, _x, t, next| {
        next.push(if t == 0 { s[0] * 2.0 } else { s[0].sin() })
    })
    .steps(5)
    .compiled();
    let msg = refusal(&branchy, 0.5).expect("declared compiled but branches on t");
    assert!(msg.contains("compiled()") && msg.contains("t = 1"), "{msg}");
    // a step that alternates with t's parity, whose first and last steps
    // (0 and 4) agree, is caught too (it gave silently wrong values)
    let parity = Recurrence::new(|s, _p, _x, t, next| {
        next.push(if t % 2 == 0 { s[0] * 0.5 } else { s[0].sin() })
    })
    .steps(5)
    .compiled();
    let msg = refusal(&parity, 1.0).expect("declared compiled but alternates with t");
    assert!(msg.contains("compiled()") && msg.contains("t = 1"), "{msg}");
    // and one that changes only half-way
    let late = Recurrence::new(|s, _p, _x, t, next| {
        next.push(if t == 50 { s[0] * 0.5 } else { s[0].sin() })
    })
    .steps(101)
    .compiled();
    let msg = refusal(&late, 1.0).expect("a step that differs at t = 50 of 101");
    assert!(msg.contains("compiled()"), "{msg}");
}

/// The panic message of `rec`'s forward pass from the state `s0`, `None`
/// when it runs.
fn refusal(rec: &Recurrence<f64>, s0: f64) -> Option<String> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rec.forward(&[s0], &[], &[]).steps()
    }));
    let payload = r.err()?;
    Some(payload.downcast_ref::<String>().expect("a message").clone())
}

/// Degenerate steps are not compiled and still run.
#[test]
fn empty_and_pass_through_steps_are_not_compiled() {
    let empty = Recurrence::new(|_s, _p, _x, _t, _next| {})
        .steps(3)
        .compiled();
    let traj = empty.forward(&[], &[], &[]);
    assert!(!traj.is_compiled());
    let pass = Recurrence::new(|s, _p, _x, _t, next| {
        next.push(s[1]);
        next.push(s[0] * 2.0);
    })
    .steps(4)
    .compiled();
    let traj = pass.forward(&[1.0, 2.0], &[], &[]);
    assert!(!traj.is_compiled());
    assert_eq!(traj.state(), &[4.0, 8.0]);
}

/// A traced inverse alone (on the interpreter when `CHAINRULE_JIT=0`),
/// with the closure, or the closure alone: the same recovered states, so
/// the same gradient bit for bit, whatever the block size.
#[test]
fn a_traced_inverse_gives_the_closures_gradient() {
    let step = Recurrence::new(|s, p, x, _t, next| {
        next.push(s[0] * (1.0 - x[1]));
        next.push(s[1] + x[0] * x[1] * s[0] + p[0]);
    })
    .inputs_per_step(2)
    .strategy(Rev::Invert);
    let closure = |next: &[f64], p: &[f64], x: &[f64], _t: usize, prev: &mut [f64]| {
        let t = next[0] / (1.0 - x[1]);
        prev[0] = t;
        prev[1] = next[1] - p[0] - x[0] * x[1] * t;
    };
    fn traced<'s>(
        next: &[Traced<'s, f64>],
        p: &[Traced<'s, f64>],
        x: &[Traced<'s, f64>],
        prev: &mut Vec<Traced<'s, f64>>,
    ) {
        let t = next[0] / (1.0 - x[1]);
        prev.push(t);
        prev.push(next[1] - p[0] - x[0] * x[1] * t);
    }
    let xs: Vec<f64> = (0..2 * 203)
        .map(|i| (i as f64 * 0.37).sin().abs() * 0.5)
        .collect();
    let (s0, p, seed) = ([1.0, 0.0], [0.01], [0.3, -1.2]);
    for block in [1, 7, 32, 300] {
        let want = gradient(
            &step.clone().block(block).inverse(closure),
            &s0,
            &p,
            &xs,
            &seed,
        );
        for rec in [
            step.clone().block(block).traced_inverse(traced),
            step.clone()
                .block(block)
                .traced_inverse(traced)
                .inverse(closure),
            step.clone().block(block).traced_inverse(traced).compiled(),
        ] {
            let got = gradient(&rec, &s0, &p, &xs, &seed);
            assert_eq!(bits(&got.1), bits(&want.1), "block {block}");
            assert_eq!(bits(&got.2), bits(&want.2), "block {block}");
            assert_eq!(bits(&got.3), bits(&want.3), "block {block}");
        }
    }
}
