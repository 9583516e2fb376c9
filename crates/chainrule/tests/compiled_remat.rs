//! Compiled steps whose sweep recomputes the values made of θ and the
//! input row (`Part::Remat`, issue 17): random steps biased towards such
//! values, every strategy, store-all budgets, blocks, `until`, f32 and
//! f64, against the recorded (uncompiled) recurrence, bit for bit.
//! `REMAT_CASES` sets the number of random steps (default 400).

use std::sync::Arc;

use chainrule::{Recurrence, Strategy as Rev, Traced, Var};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// One operation of a random step: `kind` ([`op`]) on values `a`, `b`
/// (indices into θ ++ s ++ x ++ the values made so far) with constant `c`.
#[derive(Clone, Debug)]
pub(crate) struct OpSpec {
    pub(crate) kind: u8,
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) c: f64,
}

const KINDS: u8 = 20;

/// Random ops: operands anywhere among θ ++ s ++ x ++ made, with a strong
/// bias towards θ and x (so that many nodes are recomputable) and towards
/// recent values.
fn random_ops(r: &mut Rng, np: usize, ns: usize, w: usize) -> Vec<OpSpec> {
    let n_in = np + ns + w;
    let len = 1 + r.below(10);
    let mut ops = Vec::new();
    let pick = |r: &mut Rng, j: usize| -> usize {
        let total = n_in + j;
        match r.below(4) {
            // θ or x
            0 | 1 if np + w > 0 => {
                let k = r.below(np + w);
                if k < np {
                    k
                } else {
                    np + ns + (k - np)
                }
            }
            // a recent value
            2 => total - 1 - r.below(total.min(3)),
            _ => r.below(total),
        }
    };
    for j in 0..len {
        let kind = r.below(KINDS as usize) as u8;
        let a = pick(r, j);
        let b = pick(r, j);
        let mut c = r.unit() * 2.0;
        if c.abs() < 0.1 {
            c = 0.7;
        }
        // constants that are not exactly representable, and 1/c inexact
        if r.below(3) == 0 {
            c = [0.1, 3.0, -7.0, 0.3, 1.0 / 3.0, 10.0][r.below(6)];
        }
        ops.push(OpSpec { kind, a, b, c });
    }
    ops
}

/// Operation `kind` of a random step on values `a`, `b` with constant
/// `c`: every rule a compiled step knows, some wrapped so that their
/// arguments stay in their domains (kinds 0–17 are `compiled_steps.rs`'s
/// too).
pub(crate) fn op<'t, T>(kind: u8, a: Var<'t, T>, b: Var<'t, T>, c: f64) -> Var<'t, T>
where
    T: chainrule::Scalar + std::ops::Sub<Var<'t, T>, Output = Var<'t, T>>,
{
    let (c, k) = (T::from_f64(c), |v: f64| T::from_f64(v));
    match kind {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        3 => a / (b * b + k(1.0)),
        4 => a + c,
        5 => a - c,
        6 => a * c,
        7 => a / c,
        8 => c - a,
        9 => -a,
        10 => (a * k(0.1)).exp(),
        11 => (a * a + k(1.0)).ln(),
        12 => (a * a + k(0.5)).sqrt(),
        13 => a.sin(),
        14 => a.cos(),
        15 => a.tanh(),
        16 => a.sigmoid(),
        17 => a * a,
        18 => (a * c) * (b - c),
        _ => b * (a / c),
    }
}

macro_rules! suite {
    ($modname:ident, $t:ty) => {
        pub(crate) mod $modname {
            use super::*;
            type T = $t;

            fn apply<'t>(o: &OpSpec, vals: &[Var<'t, T>]) -> Var<'t, T> {
                op(o.kind, vals[o.a], vals[o.b], o.c)
            }

            /// A deterministic stand-in for an inverse step (`prev =
            /// 0.9·next + 0.01·x₀`): any inverse will do, as the compiled
            /// and recorded recurrences recover the same states with it.
            pub(crate) fn shrink(next: &[T], _p: &[T], x: &[T], _t: usize, prev: &mut [T]) {
                for (k, v) in prev.iter_mut().enumerate() {
                    *v = next[k] * 0.9 + x.first().copied().unwrap_or(0.0) * 0.01;
                }
            }

            /// [`shrink`] traced (it runs where it is native code).
            pub(crate) fn shrink_traced<'s>(
                next: &[Traced<'s, T>],
                _p: &[Traced<'s, T>],
                x: &[Traced<'s, T>],
                prev: &mut Vec<Traced<'s, T>>,
            ) {
                for &v in next {
                    prev.push(match x.first() {
                        Some(&x0) => v * 0.9 + x0 * 0.01,
                        None => v * 0.9 + 0.0,
                    });
                }
            }

            /// `outs`: which values become the next state (indices into
            /// the made values or the inputs; each wrapped in `· 0.5`).
            pub(super) fn step_of(ops: Vec<OpSpec>, outs: Vec<usize>) -> Recurrence<T> {
                let ops = Arc::new(ops);
                Recurrence::<T>::with_step(move |s, p, x, _t, next| {
                    let mut vals: Vec<Var<'_, T>> = p.iter().chain(s).chain(x).copied().collect();
                    for o in ops.iter() {
                        let v = apply(o, &vals);
                        vals.push(v);
                    }
                    for &k in outs.iter() {
                        next.push(vals[k % vals.len()] * 0.5);
                    }
                })
            }

            pub(super) fn bits(v: &[T]) -> Vec<u64> {
                v.iter()
                    .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() as u64 })
                    .collect()
            }

            type Grad = (Vec<T>, Vec<T>, Vec<T>, Vec<T>, bool, bool, usize);

            pub(super) fn gradient(rec: &Recurrence<T>, s0: &[T], p: &[T], xs: &[T], seed: &[T]) -> Grad {
                let traj = rec.forward(s0, p, xs);
                let (mut gs, mut gp, mut gx) =
                    (vec![0.0; s0.len()], vec![0.0; p.len()], vec![0.0; xs.len()]);
                traj.backward(xs, seed, &mut gs, &mut gp, &mut gx);
                // twice: the sweep's buffers reused
                let (mut gs2, mut gp2, mut gx2) =
                    (vec![0.0; s0.len()], vec![0.0; p.len()], vec![0.0; xs.len()]);
                traj.backward(xs, seed, &mut gs2, &mut gp2, &mut gx2);
                assert_eq!(bits(&gs), bits(&gs2));
                assert_eq!(bits(&gp), bits(&gp2));
                assert_eq!(bits(&gx), bits(&gx2));
                (
                    traj.state().to_vec(),
                    gs,
                    gp,
                    gx,
                    traj.is_compiled(),
                    traj.is_native(),
                    traj.steps(),
                )
            }

            fn special(r: &mut Rng) -> T {
                match r.below(12) {
                    0 => 0.0,
                    1 => -0.0,
                    2 => 1.0,
                    _ => r.unit() as T,
                }
            }

            #[test]
            fn random_steps_remat_bit_for_bit() {
                let cases: usize = std::env::var("REMAT_CASES")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(400);
                let mut r = Rng(0x9e3779b97f4a7c15 ^ (std::mem::size_of::<T>() as u64));
                let (mut compiled, mut native, mut total) = (0, 0, 0);
                for case in 0..cases {
                    let ns = 1 + r.below(3);
                    let np = r.below(3);
                    let w = r.below(4);
                    let ops = random_ops(&mut r, np, ns, w);
                    let n_in = np + ns + w;
                    let made = ops.len();
                    // next state: distinct made values mostly, sometimes
                    // input-only ones (a node of x · 0.5)
                    let mut outs = Vec::new();
                    for k in 0..ns {
                        let o = if r.below(4) == 0 {
                            r.below(n_in + made)
                        } else {
                            n_in + made - 1 - (k % made)
                        };
                        outs.push(o);
                    }
                    let n = r.below(40);
                    let extra = r.below(5);
                    let block = 1 + r.below(9);
                    let s0: Vec<T> = (0..ns).map(|_| special(&mut r)).collect();
                    let p: Vec<T> = (0..np).map(|_| special(&mut r)).collect();
                    let seed: Vec<T> = (0..ns).map(|_| special(&mut r)).collect();
                    let xs: Vec<T> = (0..(n + extra) * w).map(|_| special(&mut r)).collect();
                    let use_until = r.below(3) == 0;
                    let base = step_of(ops.clone(), outs.clone())
                        .inputs_per_step(w)
                        .block(block);
                    let base = if use_until {
                        let stop = n;
                        base.until(move |_s, t| t >= stop, n + extra + 3)
                    } else {
                        base.steps(n)
                    };
                    let xs_used: &[T] = &xs;
                    let base = base.inverse(shrink);
                    for st in [
                        Rev::StoreAll,
                        Rev::Invert,
                        Rev::Checkpoint { snapshots: None },
                        Rev::Checkpoint { snapshots: Some(1) },
                        Rev::Checkpoint { snapshots: Some(3) },
                    ] {
                        let plain = base.clone().strategy(st);
                        let want = gradient(&plain, &s0, &p, xs_used, &seed);
                        assert!(!want.4);
                        for fast_budget in [usize::MAX, 0, 48] {
                            for traced in [false, true] {
                                if traced && st != Rev::Invert {
                                    continue;
                                }
                                let fast = plain.clone().compiled().store_all_budget(fast_budget);
                                let fast = if traced {
                                    fast.traced_inverse(shrink_traced)
                                } else {
                                    fast
                                };
                                let got = gradient(&fast, &s0, &p, xs_used, &seed);
                                total += 1;
                                compiled += got.4 as usize;
                                native += got.5 as usize;
                                let ctx = format!(
                                    "case {case}: {st:?}, budget {fast_budget}, traced {traced}, until {use_until}, n {n}, block {block}, np {np} ns {ns} w {w}, ops {ops:?}, outs {outs:?}"
                                );
                                assert_eq!(got.6, want.6, "steps, {ctx}");
                                assert_eq!(bits(&got.0), bits(&want.0), "state, {ctx}");
                                assert_eq!(bits(&got.1), bits(&want.1), "s0, {ctx}");
                                assert_eq!(bits(&got.2), bits(&want.2), "params, {ctx}");
                                assert_eq!(bits(&got.3), bits(&want.3), "xs, {ctx}");
                            }
                        }
                    }
                }
                eprintln!(
                    "{}: {total} runs, {compiled} compiled, {native} native",
                    stringify!($modname)
                );
                assert!(compiled * 2 > total, "too few compiled: {compiled}/{total}");
            }

            /// forward_reusing a Partials store, then a different xs.
            #[test]
            fn alpha_reused_and_long() {
                let alpha = Recurrence::<T>::with_step(|s, p, x, _t, next| {
                    let (t, c) = (s[0], s[1]);
                    let a = x[1] * p[0];
                    next.push(t * (1.0 - a));
                    next.push(c + x[0] / 3.0 * a * t - p[1] * p[0]);
                })
                .inputs_per_step(2);
                let mut r = Rng(77);
                for n in [0usize, 1, 2, 33, 1000, 70_000] {
                    let xs: Vec<T> = (0..2 * n).map(|_| (r.unit() * 0.5) as T).collect();
                    let (s0, p, seed) = ([1.0 as T, 0.0], [0.9 as T, 0.3], [0.3 as T, -1.2]);
                    for st in [Rev::StoreAll, Rev::Checkpoint { snapshots: Some(2) }] {
                        let plain = alpha.clone().strategy(st);
                        let want = gradient(&plain, &s0, &p, &xs, &seed);
                        for budget in [usize::MAX, 0] {
                            let fast = plain.clone().compiled().store_all_budget(budget);
                            let got = gradient(&fast, &s0, &p, &xs, &seed);
                            assert!(got.4 || n == 0);
                            let ctx = format!("n {n} {st:?} {budget}");
                            assert_eq!(bits(&got.1), bits(&want.1), "{ctx}");
                            assert_eq!(bits(&got.2), bits(&want.2), "{ctx}");
                            assert_eq!(bits(&got.3), bits(&want.3), "{ctx}");
                            // reuse the trajectory's memory
                            let traj = fast.forward(&s0, &p, &xs);
                            let traj = fast.forward_reusing(traj, &s0, &p, &xs);
                            let (mut gs, mut gp, mut gx) =
                                (vec![0.0; 2], vec![0.0; 2], vec![0.0; xs.len()]);
                            traj.backward(&xs, &seed, &mut gs, &mut gp, &mut gx);
                            assert_eq!(bits(&gs), bits(&want.1), "{ctx}");
                            assert_eq!(bits(&gx), bits(&want.3), "{ctx}");
                        }
                    }
                }
            }
        }
    };
}

suite!(f64_suite, f64);
suite!(f32_suite, f32);

/// A step whose only state-independent values are θ-only, with w = 0:
/// the sweep recomputes θ·θ products every step.
#[test]
fn theta_only_nodes_without_inputs() {
    let rec = Recurrence::new(|s, p, _x, _t, next| {
        let k = p[0] * p[1] - 0.25;
        let m = -(p[1] / 7.0);
        next.push(s[0] * k + s[1] * m);
        next.push(s[1] * k - s[0].sin() * m);
    })
    .steps(257);
    for st in [Rev::StoreAll, Rev::Checkpoint { snapshots: Some(2) }] {
        for budget in [usize::MAX, 0] {
            let plain = rec.clone().strategy(st);
            let want = f64_suite::gradient(&plain, &[0.3, -0.2], &[0.9, 1.1], &[], &[1.0, 0.5]);
            let fast = plain.compiled().store_all_budget(budget);
            let got = f64_suite::gradient(&fast, &[0.3, -0.2], &[0.9, 1.1], &[], &[1.0, 0.5]);
            assert!(got.4);
            assert_eq!(f64_suite::bits(&got.1), f64_suite::bits(&want.1));
            assert_eq!(f64_suite::bits(&got.2), f64_suite::bits(&want.2));
        }
    }
}
