//! The three reverse strategies of `Recurrence` (issue 4, parts 2 and 3):
//! store-all, binomial/online checkpointing and inversion must give the
//! gradients of the fully unrolled tape to 1e-12 (f64), on random
//! parameters and lengths.

use chainrule::{gradcheck, jacobian, GradcheckOptions, Recurrence, Strategy, Tape, Var};
use proptest::prelude::*;

const STRATEGIES: [Strategy; 4] = [
    Strategy::StoreAll,
    Strategy::Checkpoint { snapshots: None },
    Strategy::Checkpoint { snapshots: Some(3) },
    Strategy::Invert,
];

type Loss = for<'t> fn(&[Var<'t>]) -> Var<'t>;

/// Value of `loss(s_N)` and its gradient with respect to every input
/// (s0, then params, then xs), through `apply` with `strategy`, or through
/// the unrolled tape when `strategy` is `None`.
fn run(
    rec: &Recurrence,
    strategy: Option<Strategy>,
    s0: &[f64],
    p: &[f64],
    xs: &[f64],
    loss: Loss,
) -> (f64, Vec<f64>, usize) {
    let tape = Tape::new();
    let (vs, vp, vx) = (tape.vars(s0), tape.vars(p), tape.vars(xs));
    let out = match strategy {
        Some(st) => rec.clone().strategy(st).apply(&vs, &vp, &vx),
        None => rec.unroll(&vs, &vp, &vx),
    };
    if strategy.is_some() {
        // the whole recursion is one operation: s0.len() output nodes
        assert_eq!(tape.len(), 1 + s0.len() + p.len() + xs.len() + s0.len());
    }
    let l = loss(&out.state);
    let g = l.backward();
    let mut all = g.wrt_all(&vs);
    all.extend(g.wrt_all(&vp));
    all.extend(g.wrt_all(&vx));
    (l.value(), all, out.steps)
}

/// max |a − b| over the vector, relative to max |b|.
fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let d = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    if scale == 0.0 {
        d
    } else {
        d / scale
    }
}

/// Every strategy against the unrolled tape; returns the worst difference.
fn check_all(rec: &Recurrence, s0: &[f64], p: &[f64], xs: &[f64], loss: Loss, tol: f64) -> f64 {
    let (v_ref, g_ref, n_ref) = run(rec, None, s0, p, xs, loss);
    let mut worst = 0.0f64;
    for st in STRATEGIES {
        let (v, g, n) = run(rec, Some(st), s0, p, xs, loss);
        assert_eq!(n, n_ref, "{st:?}: steps");
        assert_eq!(v, v_ref, "{st:?}: value differs from the unrolled tape");
        let d = rel_diff(&g, &g_ref);
        assert!(
            d <= tol,
            "{st:?}: gradient differs from the unrolled tape by {d:e} (N = {n})\n{g:?}\n{g_ref:?}"
        );
        worst = worst.max(d);
    }
    worst
}

// ---- workload 1: the engine benchmark's scalar recursion ----------------

fn scalar_rec() -> Recurrence {
    Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1])).inverse(
        |next, p, _x, _t, prev| {
            // solve s·a + sin(s)·b = y by Newton (monotone when a > |b|)
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
        },
    )
}

fn first<'t>(s: &[Var<'t>]) -> Var<'t> {
    s[0]
}

#[test]
fn scalar_benchmark_parameters() {
    // the engine benchmark: s0 = 0.5, a = 0.9, b = 0.1
    for n in [0, 1, 2, 3, 10, 100, 2000] {
        let rec = scalar_rec().steps(n);
        check_all(&rec, &[0.5], &[0.9, 0.1], &[], first, 1e-12);
    }
}

// ---- workload 2: alpha compositing of one pixel -------------------------

/// State (T, C); per-step inputs (c_i, α_i).
fn alpha_rec() -> Recurrence {
    Recurrence::new(|s, _p, x, _t, next| {
        let (t, col) = (s[0], s[1]);
        let (c, a) = (x[0], x[1]);
        next.push(t * (1.0 - a));
        next.push(col + c * a * t);
    })
    .inputs_per_step(2)
    .inverse(|next, _p, x, _t, prev| {
        let t = next[0] / (1.0 - x[1]);
        prev[0] = t;
        prev[1] = next[1] - x[0] * x[1] * t;
    })
    .name("composite")
}

fn alpha_loss<'t>(s: &[Var<'t>]) -> Var<'t> {
    (s[1] - 0.3).square()
}

fn interleave(c: &[f64], a: &[f64]) -> Vec<f64> {
    c.iter().zip(a).flat_map(|(&c, &a)| [c, a]).collect()
}

#[test]
fn alpha_reference_n5() {
    // /work/shared/peers/README.md, "alpha", through every strategy
    let c = [
        0.31848084366072715,
        0.13489335688193516,
        0.020486761968097345,
        0.008263817764264547,
        0.4066351196001362,
    ];
    let a = [
        0.45637778863886086,
        0.30331788788358993,
        0.3647482804919992,
        0.27181249573271143,
        0.4675362118938841,
    ];
    let dl_dc = [
        -0.0873798130999014,
        -0.03157052672906032,
        -0.02644914988085006,
        -0.012520847670468545,
        -0.015682770591725854,
    ];
    let dl_da = [
        -0.040225729707311746,
        -0.003960325043669331,
        0.008716115410250675,
        0.008376919988917765,
        -0.013639938753397259,
    ];
    let xs = interleave(&c, &a);
    for st in STRATEGIES {
        let (loss, g, n) = run(&alpha_rec(), Some(st), &[1.0, 0.0], &[], &xs, alpha_loss);
        assert_eq!(n, 5);
        assert!(
            (loss - 0.009164594045380958).abs() <= 1e-17,
            "{st:?}: {loss}"
        );
        for i in 0..5 {
            let (gc, ga) = (g[2 + 2 * i], g[3 + 2 * i]);
            assert!((gc - dl_dc[i]).abs() <= 1e-16, "{st:?} dL/dc[{i}] {gc}");
            assert!((ga - dl_da[i]).abs() <= 1e-16, "{st:?} dL/da[{i}] {ga}");
        }
    }
}

#[test]
fn alpha_stops_when_transmittance_is_spent() {
    // the renderer's rule: α ≤ 0.99, stop once T < 1e-4
    let n = 300;
    let c: Vec<f64> = (0..n).map(|i| 0.5 + 0.4 * f64::sin(i as f64)).collect();
    let a: Vec<f64> = (0..n)
        .map(|i| (0.2 + 0.2 * f64::cos(0.7 * i as f64)).min(0.99))
        .collect();
    let rec = alpha_rec().until(|s, _t| s[0] < 1e-4, usize::MAX);
    let (_, _, steps) = run(
        &rec,
        None,
        &[1.0, 0.0],
        &[],
        &interleave(&c, &a),
        alpha_loss,
    );
    assert!(steps > 5 && steps < n, "stopped after {steps}");
    check_all(
        &rec,
        &[1.0, 0.0],
        &[],
        &interleave(&c, &a),
        alpha_loss,
        1e-12,
    );
    // fragments after the stop get no gradient
    let (_, g, _) = run(
        &rec.clone().strategy(Strategy::Invert),
        Some(Strategy::Invert),
        &[1.0, 0.0],
        &[],
        &interleave(&c, &a),
        alpha_loss,
    );
    assert!(g[2 + 2 * steps..].iter().all(|&v| v == 0.0));
    assert!(g[2 + 2 * (steps - 1)] != 0.0);
}

#[test]
fn inversion_drift_is_bounded_by_the_clamp() {
    // the worst case the clamp allows: every α = 0.99, so each inverse step
    // divides by 0.01; compositing stops after two fragments (T < 1e-4)
    // and the walk back stays short. Without the stop, 200 such fragments
    // underflow T (0.01^200 = 1e-400) and the inverse loses everything.
    let n = 200;
    let xs = interleave(&vec![0.7; n], &vec![0.99; n]);
    let stop = alpha_rec().until(|s, _t| s[0] < 1e-4, usize::MAX);
    check_all(&stop, &[1.0, 0.0], &[], &xs, alpha_loss, 1e-12);
    let no_stop = alpha_rec();
    let (_, g_ref, _) = run(
        &no_stop,
        Some(Strategy::StoreAll),
        &[1.0, 0.0],
        &[],
        &xs,
        alpha_loss,
    );
    let (_, g_inv, _) = run(
        &no_stop,
        Some(Strategy::Invert),
        &[1.0, 0.0],
        &[],
        &xs,
        alpha_loss,
    );
    assert!(
        rel_diff(&g_inv, &g_ref) > 1e-3 || g_inv.iter().any(|v| !v.is_finite()),
        "expected the unclamped inversion to drift"
    );
}

// ---- workload 3: a state of several scalars -----------------------------

/// Leapfrog for a pendulum plus an accumulated cost: state (q, p, E),
/// params (h, k). Exactly invertible up to rounding (symplectic, so the
/// inverse does not amplify errors exponentially).
fn leapfrog_rec() -> Recurrence {
    Recurrence::new(|s, th, _x, _t, next| {
        let (q, p, e) = (s[0], s[1], s[2]);
        let (h, k) = (th[0], th[1]);
        let p1 = p - h * k * q.sin();
        let q1 = q + h * p1;
        next.push(q1);
        next.push(p1);
        next.push(e + h * q1.square());
    })
    .inverse(|next, th, _x, _t, prev| {
        let (q1, p1, e1) = (next[0], next[1], next[2]);
        let (h, k) = (th[0], th[1]);
        let q = q1 - h * p1;
        prev[0] = q;
        prev[1] = p1 + h * k * q.sin();
        prev[2] = e1 - h * (q1 * q1);
    })
}

fn leapfrog_loss<'t>(s: &[Var<'t>]) -> Var<'t> {
    s[0] + s[1] * 0.5 + s[2] * 0.1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn scalar_recursion_all_strategies_agree(
        s0 in -1.5f64..1.5, a in 0.8f64..0.95, b in 0.0f64..0.05, n in 0usize..1500,
        block in 1usize..80,
    ) {
        check_all(&scalar_rec().steps(n).block(block), &[s0], &[a, b], &[], first, 1e-12);
    }

    #[test]
    fn alpha_compositing_all_strategies_agree(
        frags in proptest::collection::vec((0.0f64..1.0, 0.0f64..0.5), 0..800),
        block in 1usize..80,
    ) {
        let xs: Vec<f64> = frags.iter().flat_map(|&(c, a)| [c, a]).collect();
        check_all(&alpha_rec().block(block), &[1.0, 0.0], &[], &xs, alpha_loss, 1e-12);
    }

    #[test]
    fn alpha_open_ended_all_strategies_agree(
        frags in proptest::collection::vec((0.0f64..1.0, 0.0f64..0.99), 1..1500),
        tmin in 1e-6f64..1e-2, block in 1usize..40,
    ) {
        let xs: Vec<f64> = frags.iter().flat_map(|&(c, a)| [c, a]).collect();
        let rec = alpha_rec().until(move |s, _t| s[0] < tmin, usize::MAX).block(block);
        check_all(&rec, &[1.0, 0.0], &[], &xs, alpha_loss, 1e-12);
    }

    #[test]
    fn several_scalars_all_strategies_agree(
        q0 in -1.0f64..1.0, p0 in -1.0f64..1.0, h in 0.01f64..0.1, k in 0.5f64..2.0,
        n in 0usize..1500, block in 1usize..80,
    ) {
        let rec = leapfrog_rec().steps(n).block(block);
        check_all(&rec, &[q0, p0, 0.0], &[h, k], &[], leapfrog_loss, 1e-12);
    }

    #[test]
    fn a_value_step_changes_nothing_but_speed(
        s0 in -1.5f64..1.5, a in 0.8f64..0.95, b in 0.0f64..0.05, n in 0usize..1500,
        frags in proptest::collection::vec((0.0f64..1.0, 0.0f64..0.99), 1..800),
        block in 1usize..80,
    ) {
        let rec = scalar_rec()
            .values(|s, p, _x, _t, next| next[0] = s[0] * p[0] + s[0].sin() * p[1])
            .steps(n)
            .block(block);
        check_all(&rec, &[s0], &[a, b], &[], first, 1e-12);
        let xs: Vec<f64> = frags.iter().flat_map(|&(c, a)| [c, a]).collect();
        let rec = alpha_rec()
            .values(|s, _p, x, _t, next| {
                next[0] = s[0] * (1.0 - x[1]);
                next[1] = s[1] + x[0] * x[1] * s[0];
            })
            .until(|s, _t| s[0] < 1e-4, usize::MAX)
            .block(block);
        let w = check_all(&rec, &[1.0, 0.0], &[], &xs, alpha_loss, 1e-12);
        // the same operations in the same order: the very same gradients
        for st in STRATEGIES {
            let with = run(&rec, Some(st), &[1.0, 0.0], &[], &xs, alpha_loss);
            let without = run(&alpha_rec().until(|s, _t| s[0] < 1e-4, usize::MAX).block(block),
                Some(st), &[1.0, 0.0], &[], &xs, alpha_loss);
            prop_assert_eq!(with, without);
        }
        prop_assert!(w <= 1e-12);
    }

    #[test]
    fn any_snapshot_count_works(n in 1usize..300, c in 1usize..12, block in 1usize..5) {
        let rec = scalar_rec().steps(n).block(block);
        let st = Strategy::Checkpoint { snapshots: Some(c) };
        let (_, g_ref, _) = run(&rec, None, &[0.5], &[0.9, 0.1], &[], first);
        let (_, g, _) = run(&rec, Some(st), &[0.5], &[0.9, 0.1], &[], first);
        prop_assert!(rel_diff(&g, &g_ref) <= 1e-12);
        let traj = rec.clone().strategy(st).forward(&[0.5], &[0.9, 0.1], &[]);
        let (mut gs, mut gp) = ([0.0], [0.0; 2]);
        let stats = traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
        prop_assert!(traj.stored_states() <= c);
        prop_assert!(stats.peak_states <= c + 1);
        prop_assert_eq!(stats.vjps, n);
    }
}

// ---- costs, composition, edge cases -------------------------------------

#[test]
fn memory_and_recomputation_of_each_strategy() {
    let n = 5000;
    let go = |st: Strategy, block: usize| {
        let traj =
            scalar_rec()
                .steps(n)
                .block(block)
                .strategy(st)
                .forward(&[0.5], &[0.9, 0.1], &[]);
        let (mut gs, mut gp) = ([0.0], [0.0; 2]);
        let stats = traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
        (traj.stored_states(), stats)
    };
    // block(1): the textbook strategies, step by step
    let (stored, st) = go(Strategy::StoreAll, 1);
    assert_eq!((stored, st.peak_states, st.recomputed), (n, n, 0));
    assert_eq!(st.recompute_factor(), 1.0);
    let (stored, st) = go(Strategy::Invert, 1);
    assert_eq!(
        (stored, st.peak_states, st.recomputed, st.inverted),
        (0, 1, 0, n)
    );
    // automatic: 2⌈log₂ 5000⌉ = 26 snapshots
    let (stored, st) = go(Strategy::Checkpoint { snapshots: None }, 1);
    assert!(stored <= 26 && st.peak_states <= 27, "{stored} {st:?}");
    assert_eq!(st.vjps, n);
    assert!(
        st.recompute_factor() > 1.0 && st.recompute_factor() < 4.0,
        "{st:?}"
    );
    // c snapshots reverse β(c, r) = C(c + r, c) steps with at most r
    // recomputations of any step: C(15, 10) = 3003 < 5000 ≤ C(16, 10) = 8008,
    // so with c = 10 no step is recomputed more than 6 times, and the total
    // is Griewank's r·N − β(c + 1, r − 1) = 6·5000 − C(16, 11) = 25632
    let (stored, st) = go(
        Strategy::Checkpoint {
            snapshots: Some(10),
        },
        1,
    );
    assert!(stored <= 10 && st.peak_states <= 11);
    assert!(st.recompute_factor() <= 1.0 + 6.0, "{st:?}");
    assert!(st.recomputed <= 25632, "{st:?}");

    // store-all records every step whatever the block (it is not recomputed)
    let (stored, st) = go(Strategy::StoreAll, 32);
    assert_eq!((stored, st.recomputed, st.vjps), (n, 0, n));
    // default blocks of 32 steps: as many snapshots as blocks keep every
    // block's start state and recompute nothing
    let (stored, st) = go(
        Strategy::Checkpoint {
            snapshots: Some(157),
        },
        32,
    );
    assert_eq!((stored, st.recomputed, st.vjps), (157, 0, n)); // ⌈5000/32⌉
    let (stored, st) = go(Strategy::Checkpoint { snapshots: None }, 32);
    assert!(stored <= 16 && st.peak_states <= 17, "{stored} {st:?}"); // 2⌈log₂ 157⌉
    assert!(st.recompute_factor() < 4.0, "{st:?}");
    assert_eq!(st.vjps, n);
    let (stored, st) = go(Strategy::Invert, 32);
    assert_eq!((stored, st.peak_states, st.inverted), (0, 1, n));
}

#[test]
fn open_ended_checkpointing_thins_its_snapshots() {
    // N unknown in advance: halve until below a threshold, 3000 steps
    let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * 1e-3))
        .until(|s, _t| s[0].abs() < 1e-300, 3000)
        .strategy(Strategy::Checkpoint { snapshots: None });
    let traj = rec.forward(&[1.0], &[0.99], &[]);
    assert_eq!(traj.steps(), 3000);
    // budget max(8, ⌈log₂ 3000⌉) = 12
    assert!(traj.stored_states() <= 12, "{}", traj.stored_states());
    let (mut gs, mut gp) = ([0.0], [0.0]);
    let stats = traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
    assert!(stats.peak_states < 40, "{stats:?}");
    let tape = Tape::new();
    let (s0, p) = (tape.var(1.0), tape.var(0.99));
    let g = rec.unroll(&[s0], &[p], &[]).state[0].backward();
    assert!((gs[0] - g.wrt(s0)).abs() <= 1e-12 * g.wrt(s0).abs());
    assert!((gp[0] - g.wrt(p)).abs() <= 1e-12 * g.wrt(p).abs());
}

#[test]
fn composes_with_code_before_and_after() {
    // s0 and θ computed from x on the tape; a second recurrence after the first
    fn f<'t>(v: &[Var<'t>]) -> Var<'t> {
        let x = v[0];
        let rec = scalar_rec()
            .steps(200)
            .strategy(Strategy::Checkpoint { snapshots: None });
        let s = rec.apply(&[x.sin()], &[x * 0.5 + 0.5, x * 0.05], &[]).state;
        let rec2 = leapfrog_rec().steps(100).strategy(Strategy::Invert);
        let out = rec2.apply(&[s[0], x, s[0] * x], &[x * 0.05, s[0] + 1.0], &[]);
        out.state[0] * out.state[1] + out.state[2]
    }
    let rep = gradcheck(f, &[0.8], GradcheckOptions::default());
    assert!(rep.passed(), "{rep}");
}

#[test]
fn backward_can_run_many_times() {
    // jacobian sweeps the outer tape once per output, reversing twice
    let tape = Tape::new();
    let s0 = tape.vars(&[0.3, -0.2, 0.0]);
    let th = tape.vars(&[0.05, 1.3]);
    let rec = leapfrog_rec()
        .steps(300)
        .strategy(Strategy::Checkpoint { snapshots: Some(4) });
    let out = rec.apply(&s0, &th, &[]).state;
    let mut inputs = s0.clone();
    inputs.extend(&th);
    let j1 = jacobian(&out, &inputs);
    let j2 = jacobian(&out, &inputs);
    assert_eq!(j1, j2);
    let tape2 = Tape::new();
    let (u0, uth) = (tape2.vars(&[0.3, -0.2, 0.0]), tape2.vars(&[0.05, 1.3]));
    let un = rec.unroll(&u0, &uth, &[]).state;
    let mut uin = u0.clone();
    uin.extend(&uth);
    let jr = jacobian(&un, &uin);
    for (r1, rr) in j1.iter().zip(&jr) {
        assert!(rel_diff(r1, rr) <= 1e-12, "{r1:?} vs {rr:?}");
    }
}

#[test]
fn zero_steps_pass_the_gradient_through() {
    for st in STRATEGIES {
        let rec = alpha_rec().until(|_s, _t| true, 10).strategy(st);
        let tape = Tape::new();
        let s0 = tape.vars(&[1.0, 0.25]);
        let xs = tape.vars(&[0.5, 0.5]);
        let out = rec.apply(&s0, &[], &xs);
        assert_eq!(out.steps, 0);
        let g = (out.state[1] * 3.0).backward();
        assert_eq!(g.wrt_all(&s0), vec![0.0, 3.0]);
        assert_eq!(g.wrt_all(&xs), vec![0.0, 0.0]);
    }
}

#[test]
fn works_in_f32() {
    let rec = Recurrence::<f32>::with_step(|s, p, _x, _t, next| next.push(s[0] * p[0] + p[1]))
        .steps(20)
        .strategy(Strategy::Checkpoint { snapshots: Some(2) });
    let tape = Tape::<f32>::default();
    let s0 = tape.var(1.0f32);
    let p = tape.vars(&[0.5f32, 1.0]);
    let y = rec.apply(&[s0], &p, &[]).state[0];
    let g = y.backward();
    assert!((g.wrt(s0) - 0.5f32.powi(20)).abs() < 1e-9);
    assert!((y.value() - (0.5f32.powi(20) + (1.0 - 0.5f32.powi(20)) / 0.5)).abs() < 1e-5);
}

#[test]
#[should_panic(expected = "returned 2 values for a state of 1")]
fn wrong_state_length_is_reported() {
    let rec = Recurrence::new(|s, _p, _x, _t, next| {
        next.push(s[0]);
        next.push(s[0]);
    })
    .steps(3);
    rec.forward(&[1.0], &[], &[]);
}

#[test]
#[should_panic(expected = "not a multiple of inputs_per_step = 2")]
fn ragged_inputs_are_reported() {
    alpha_rec().forward(&[1.0, 0.0], &[], &[0.1, 0.2, 0.3]);
}

#[test]
#[should_panic(expected = "Strategy::Invert needs an inverse step")]
fn invert_without_inverse_is_reported() {
    Recurrence::new(|s, _p, _x, _t, next| next.push(s[0] * 2.0))
        .steps(3)
        .strategy(Strategy::Invert)
        .forward(&[1.0], &[], &[]);
}

#[test]
#[should_panic(expected = "set its length")]
fn missing_length_is_reported() {
    Recurrence::new(|s, _p, _x, _t, next| next.push(s[0] * 2.0)).forward(&[1.0], &[], &[]);
}

#[test]
#[should_panic(expected = "at least 1 snapshot")]
fn zero_snapshots_are_reported() {
    scalar_rec()
        .steps(10)
        .strategy(Strategy::Checkpoint { snapshots: Some(0) })
        .forward(&[0.5], &[0.9, 0.1], &[]);
}

#[test]
fn a_step_may_contain_a_recurrence() {
    // each outer step runs an inner recursion (4 steps of s ← s·p + 0.1),
    // recorded as a custom operation on the scratch tape
    let inner = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + 0.1))
        .steps(4)
        .strategy(Strategy::Checkpoint { snapshots: Some(2) });
    let outer = Recurrence::new(move |s, p, _x, _t, next| {
        let y = inner.apply(&[s[0]], &[p[0]], &[]).state[0];
        next.push(y.sin() + s[1]);
        next.push(s[1] * p[1]);
    })
    .steps(50);
    let loss: Loss = |s| s[0] + s[1];
    let (v_ref, g_ref, _) = run(&outer, None, &[0.3, 0.2], &[0.7, 0.95], &[], loss);
    for st in &STRATEGIES[..3] {
        let (v, g, _) = run(&outer, Some(*st), &[0.3, 0.2], &[0.7, 0.95], &[], loss);
        assert_eq!(v, v_ref);
        assert!(rel_diff(&g, &g_ref) <= 1e-12, "{st:?}: {g:?} vs {g_ref:?}");
    }
}

#[test]
fn dual_numbers_give_second_derivatives_through_a_recurrence() {
    // a tape of duals with a tangent on `a`: the reversal's gradient then
    // carries d/da of every first derivative (forward over reverse), and
    // must match the unrolled tape of duals in both parts
    use chainrule::Dual;
    type D = Dual<f64>;
    let rec =
        Recurrence::<D>::with_step(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
            .steps(300)
            .block(7);
    let grads = |st: Option<Strategy>| {
        let tape = Tape::<D>::default();
        let s0 = tape.var(D::constant(0.5));
        let p = tape.vars(&[D::new(0.9, 1.0), D::constant(0.1)]);
        let out = match st {
            Some(st) => rec.clone().strategy(st).apply(&[s0], &p, &[]),
            None => rec.unroll(&[s0], &p, &[]),
        };
        let g = out.state[0].backward();
        vec![g.wrt(s0), g.wrt(p[0]), g.wrt(p[1])]
    };
    let reference = grads(None);
    assert!(reference[1].tangent() != 0.0);
    for st in [
        Strategy::StoreAll,
        Strategy::Checkpoint { snapshots: Some(3) },
    ] {
        let g = grads(Some(st));
        for (x, y) in g.iter().zip(&reference) {
            assert!(
                (x.value() - y.value()).abs() <= 1e-12 * y.value().abs(),
                "{st:?}"
            );
            assert!(
                (x.tangent() - y.tangent()).abs() <= 1e-12 * y.tangent().abs().max(1e-300),
                "{st:?}: {x:?} vs {y:?}"
            );
        }
    }
}

/// A step that itself applies a recurrence (a custom operation on the tape
/// the outer strategy records it on): store-all's single sweep and the
/// scratch-tape VJPs must both call the inner operation's backward.
#[test]
fn nested_recurrences_match_the_unrolled_tape() {
    for inner_st in [Strategy::StoreAll, Strategy::Checkpoint { snapshots: None }] {
        let inner = scalar_rec().steps(5).block(2).strategy(inner_st);
        let outer = Recurrence::new(move |s, p, _x, _t, next| {
            let y = inner.apply(s, p, &[]).state[0];
            next.push(y * 0.5 + s[0] * p[1]);
        })
        .steps(40)
        .block(3);
        let (s0, p) = ([0.5], [0.9, 0.1]);
        let (v_ref, g_ref, _) = run(&outer, None, &s0, &p, &[], first);
        for st in [Strategy::StoreAll, Strategy::Checkpoint { snapshots: None }] {
            let (v, g, n) = run(&outer, Some(st), &s0, &p, &[], first);
            assert_eq!(n, 40);
            assert_eq!(v, v_ref, "{inner_st:?} in {st:?}");
            let d = rel_diff(&g, &g_ref);
            assert!(
                d <= 1e-12,
                "{inner_st:?} in {st:?}: {d:e}\n{g:?}\n{g_ref:?}"
            );
        }
    }
}

/// `RecurrenceOutput::stats` reports what `apply`'s reverse pass did: the
/// same figures as `Trajectory::backward` on plain numbers, set by the
/// sweep (not before it), and `None` for the unrolled tape.
#[test]
fn apply_reports_its_reverse_pass() {
    for st in STRATEGIES {
        let rec = scalar_rec().steps(700).block(16).strategy(st);
        let traj = rec.forward(&[0.4], &[0.9, 0.03], &[]);
        let (mut gs, mut gp) = ([0.0], [0.0; 2]);
        let want = traj.backward(&[], &[1.0], &mut gs, &mut gp, &mut []);
        let tape = Tape::new();
        let (s0, p) = (tape.var(0.4), tape.vars(&[0.9, 0.03]));
        let out = rec.apply(&[s0], &p, &[]);
        assert_eq!(out.stats(), None, "{st:?}: before the sweep");
        let g = out.state[0].backward();
        assert_eq!(out.stats(), Some(want), "{st:?}");
        assert_eq!(g.wrt(s0), gs[0], "{st:?}");
        // a clone shares the report
        assert_eq!(out.clone().stats(), Some(want));
        if st == Strategy::StoreAll || st == Strategy::Invert {
            assert_eq!(want.recomputed, 0, "{st:?}");
        } else {
            assert!(
                want.recomputed > 0 && want.peak_states < 700,
                "{st:?}: {want:?}"
            );
        }
    }
    let tape = Tape::new();
    let (s0, p) = (tape.var(0.4), tape.vars(&[0.9, 0.03]));
    let out = scalar_rec().steps(50).unroll(&[s0], &p, &[]);
    out.state[0].backward();
    assert_eq!(out.stats(), None);
}
