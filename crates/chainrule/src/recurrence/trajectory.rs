//! What a recurrence's forward pass keeps (`Trajectory`, `Store`) and the
//! reverse walk over it (`Reverser`), block by block.

use super::*;

/// The whole recursion recorded by the forward pass of
/// [`Strategy::StoreAll`] (see [`Recurrence::record`] for the layout).
pub(super) struct Recorded<T: Scalar> {
    pub(super) tape: Tape<T>,
    pub(super) np: usize,
    pub(super) ns: usize,
    /// Per-step input leaves recorded (rows that may be used, times width).
    pub(super) nx: usize,
    /// Node of each value of the final state.
    pub(super) out: Vec<u32>,
}

/// Snapshots kept by the forward pass.
pub(super) enum Store<T: Scalar> {
    /// Every state `s_0 .. s_{N-1}`; `rows` per-step input rows were
    /// available to the steps (`min(rows given, step limit)`).
    States { states: Vec<T>, rows: usize },
    /// Every step, recorded node by node on a tape of its own (a recursion
    /// whose tape fits [`STORE_ALL_TAPE_BYTES`]).
    Tape(Box<Recorded<T>>),
    /// Every step's partials, from the compiled step (a recursion whose
    /// partials fit the store-all budget, or take no more room than its
    /// states); the sweep recomputes the rest from the input rows.
    Partials(Vec<T>),
    /// The first descent of the binomial reversal: states at `pos`.
    Binomial {
        slots: usize,
        pos: Vec<usize>,
        states: Vec<T>,
    },
    /// States at multiples of `spacing` (online thinning).
    Online {
        budget: Option<usize>,
        spacing: usize,
        states: Vec<T>,
        count: usize,
    },
    /// Nothing.
    Invert,
}

/// The forward run of a [`Recurrence`]: the final state and what the
/// strategy keeps to reverse it. Made by [`Recurrence::forward`];
/// [`Recurrence::apply`] keeps one inside its custom operation.
pub struct Trajectory<T: Scalar = f64> {
    pub(super) rec: Recurrence<T>,
    pub(super) params: Vec<T>,
    pub(super) s0_len: usize,
    pub(super) n_xs: usize,
    pub(super) steps: usize,
    pub(super) last: Vec<T>,
    pub(super) store: Store<T>,
    pub(super) scratch: RefCell<Scratch<T>>,
    /// The compiled step, if [`Recurrence::compiled`] was declared and the
    /// step could be compiled.
    pub(super) program: Option<Program<T>>,
    /// The traced inverse ([`Recurrence::traced_inverse`]) where it runs.
    pub(super) inverse: Option<Program<T>>,
}

impl<T: Scalar> std::fmt::Debug for Trajectory<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trajectory")
            .field("recurrence", &self.rec)
            .field("steps", &self.steps)
            .field("state", &self.last)
            .field("stored_states", &self.stored_states())
            .finish()
    }
}

impl<T: Scalar> Trajectory<T> {
    #[cfg(test)]
    pub(super) fn store_kind(&self) -> &'static str {
        match self.store {
            Store::States { .. } => "states",
            Store::Tape(_) => "tape",
            Store::Partials(_) => "partials",
            Store::Binomial { .. } | Store::Online { .. } => "checkpoints",
            Store::Invert => "none",
        }
    }

    /// Whether the step runs compiled (see [`Recurrence::compiled`]).
    pub fn is_compiled(&self) -> bool {
        self.program.is_some()
    }

    /// Whether the compiled step runs as native machine code (generated
    /// with Cranelift for `f64`/`f32` on x86-64 and AArch64 when the
    /// default `jit` feature is on, unless the environment variable
    /// `CHAINRULE_JIT` is `0`); otherwise it runs on an instruction-list
    /// interpreter. Both give the same bits.
    pub fn is_native(&self) -> bool {
        self.program.as_ref().is_some_and(|p| p.is_native())
    }

    /// The final state `s_N`.
    pub fn state(&self) -> &[T] {
        &self.last
    }

    /// The number of steps taken, `N`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// States kept by the forward pass (each of `s0.len()` scalars): `N`
    /// for [`Strategy::StoreAll`], which keeps every state.
    pub fn stored_states(&self) -> usize {
        let ns = self.s0_len.max(1);
        match &self.store {
            Store::States { states, .. } => states.len() / ns,
            Store::Tape(_) | Store::Partials(_) => self.steps,
            Store::Binomial { states, .. } => states.len() / ns,
            Store::Online { count, .. } => *count,
            Store::Invert => 0,
        }
    }

    /// The reverse pass: given `seed = ∂L/∂s_N`, **adds** `∂L/∂s_0` into
    /// `grad_s0`, `∂L/∂θ` into `grad_params` and `∂L/∂x` into `grad_xs`
    /// (same layout as the inputs). `xs` must be the per-step inputs given
    /// to [`Recurrence::forward`]: the reverse pass reads them again (to
    /// recompute steps, or the values a compiled step did not save), so
    /// other values of the same length give a wrong gradient. Can be
    /// called any number of times.
    ///
    /// # Panics
    /// If a slice has the wrong length, or the step or inverse returns a
    /// state of the wrong length.
    ///
    /// ```
    /// use chainrule::{Recurrence, Strategy};
    /// // s ← s·a, 10 steps: s_N = s0·a^10
    /// let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0]))
    ///     .steps(10)
    ///     .strategy(Strategy::Invert)
    ///     .inverse(|s, p, _x, _t, prev| prev[0] = s[0] / p[0]);
    /// let traj = rec.forward(&[1.0], &[0.5], &[]);
    /// let (mut gs, mut ga) = ([0.0], [0.0]);
    /// traj.backward(&[], &[1.0], &mut gs, &mut ga, &mut []);
    /// assert!((gs[0] - 0.5f64.powi(10)).abs() < 1e-15);
    /// assert!((ga[0] - 10.0 * 0.5f64.powi(9)).abs() < 1e-12);
    /// ```
    pub fn backward(
        &self,
        xs: &[T],
        seed: &[T],
        grad_s0: &mut [T],
        grad_params: &mut [T],
        grad_xs: &mut [T],
    ) -> RecurrenceStats {
        let name = &self.rec.name;
        let ns = self.s0_len;
        assert!(
            xs.len() == self.n_xs && grad_xs.len() == self.n_xs,
            "recurrence `{name}`: backward needs the {} per-step inputs of the forward pass and as many gradient slots (got {} and {})",
            self.n_xs,
            xs.len(),
            grad_xs.len()
        );
        assert!(
            seed.len() == ns && grad_s0.len() == ns,
            "recurrence `{name}`: seed and grad_s0 need {ns} values (got {} and {})",
            seed.len(),
            grad_s0.len()
        );
        assert!(
            grad_params.len() == self.params.len(),
            "recurrence `{name}`: grad_params needs {} values (got {})",
            self.params.len(),
            grad_params.len()
        );
        let mut sc = self.scratch.borrow_mut();
        let n = self.steps;
        let mut stats = RecurrenceStats {
            steps: n,
            peak_states: self.stored_states(),
            ..Default::default()
        };
        let k = self.rec.block;
        let mut rv = Reverser {
            f: Stepper {
                step: &*self.rec.step,
                values: self.rec.values.as_deref(),
                name,
                program: self.program.as_ref(),
            },
            xs,
            w: self.rec.width,
            k,
            n,
            ns,
            sc: &mut sc,
            lam: seed.to_vec(),
            cur: Vec::with_capacity(ns),
            nxt: vec![T::zero(); ns],
            stack: Vec::new(),
            g_p: grad_params,
            g_x: grad_xs,
            stats: &mut stats,
        };
        let blocks = n.div_ceil(k);
        match &self.store {
            Store::Tape(r) => {
                // one sweep of the recorded recursion
                let seeds: Vec<(u32, T)> = r.out.iter().zip(seed).map(|(&i, &g)| (i, g)).collect();
                let mut adj = Vec::new();
                sweep(&r.tape, &mut adj, &seeds, false);
                let get = |i: usize| adj.get(i).copied().unwrap_or(T::zero());
                for (j, g) in rv.g_p.iter_mut().enumerate() {
                    *g += get(1 + j);
                }
                let s_first = 1 + r.np;
                for (i, l) in rv.lam.iter_mut().enumerate() {
                    *l = get(s_first + i);
                }
                let x_first = s_first + r.ns;
                for (c, g) in rv.g_x[..r.nx].iter_mut().enumerate() {
                    *g += get(x_first + c);
                }
                rv.stats.vjps = n;
            }
            Store::Partials(parts) => {
                // one sweep of the compiled steps' partials
                let prog = rv.f.program.expect("partials come from a program");
                let mut lp = vec![T::zero(); self.params.len()];
                prog.vjp_parts(&mut rv.sc.work, parts, xs, n, &mut rv.lam, &mut lp, rv.g_x);
                for (g, l) in rv.g_p.iter_mut().zip(&lp) {
                    *g += *l;
                }
                rv.stats.vjps = n;
            }
            Store::States { states, rows } => {
                // one re-recording of each block from its stored start
                // state, laid out so that the sweep adds in the order of
                // the unrolled tape (see `Scratch::vjp_unrolled`)
                let mut lp = vec![T::zero(); self.params.len()];
                for i in (0..blocks).rev() {
                    let (a, b) = (i * k, ((i + 1) * k).min(n));
                    if i > 0 {
                        // the next block's start state and rows (measured
                        // 6% faster at N = 10⁶, alpha; see BENCHMARKS.md)
                        let p = (a - k, a);
                        prefetch(&states[p.0 * ns..(p.0 + 1) * ns]);
                        prefetch(rows_of(xs, rv.w, p));
                        prefetch(rows_of(rv.g_x, rv.w, p));
                    }
                    if let Some(prog) = rv.f.program {
                        // the same sweep, replayed (θ's adjoints run on)
                        let s = &states[a * ns..(a + 1) * ns];
                        prog.vjp_block(
                            &mut rv.sc.work,
                            s,
                            xs,
                            (a, b),
                            &mut rv.lam,
                            &mut lp,
                            rv.g_x,
                        );
                        continue;
                    }
                    rv.sc.vjp_unrolled(
                        rv.f.step,
                        name,
                        &states[a * ns..(a + 1) * ns],
                        xs,
                        rv.w,
                        (a, b),
                        *rows,
                        &mut rv.lam,
                        &mut lp,
                        rv.g_x,
                    );
                }
                for (g, l) in rv.g_p.iter_mut().zip(&lp) {
                    *g += *l;
                }
                // rows past a stopping point had leaves but no gradient
                for g in &mut rv.g_x[n * rv.w..*rows * rv.w] {
                    *g += T::zero();
                }
                rv.stats.vjps = n;
            }
            Store::Invert => {
                let mut s = self.last.clone();
                rv.stats.peak_states = 1;
                let w = rv.w;
                if let Some(prog) = &self.inverse {
                    // the walk back through block i - 1 is made with (in
                    // pieces, `vjp_steps_walking`) or else before block i's
                    // VJP, which does not depend on it, so that the
                    // processor overlaps the walk's latency (a chain of
                    // divisions, say) with the VJP's work; a second state
                    let mut prev = s.clone();
                    rv.stats.peak_states = 2;
                    let last = blocks.saturating_sub(1) * k;
                    prog.inverse_steps(&mut rv.sc.inv_work, &mut s, xs, (last, n));
                    for i in (0..blocks).rev() {
                        let (a, b) = (i * k, ((i + 1) * k).min(n));
                        prev.copy_from_slice(&s);
                        rv.stats.inverted += b - a;
                        if i == 0 || b - a != k || !rv.vjp_steps_walking(a, b, &s, prog, &mut prev)
                        {
                            if i > 0 {
                                prog.inverse_steps(&mut rv.sc.inv_work, &mut prev, xs, (a - k, a));
                            }
                            rv.vjp_steps(a, b, &s);
                        }
                        std::mem::swap(&mut s, &mut prev);
                    }
                } else {
                    let inv = self.rec.inverse.as_deref().expect("checked in forward");
                    for i in (0..blocks).rev() {
                        let (a, b) = (i * k, ((i + 1) * k).min(n));
                        for t in (a..b).rev() {
                            inv(&s, &self.params, row(xs, w, t), t, &mut rv.nxt);
                            s.copy_from_slice(&rv.nxt);
                        }
                        rv.stats.inverted += b - a;
                        rv.vjp_steps(a, b, &s);
                    }
                }
            }
            Store::Binomial { slots, pos, states } => {
                if n > 0 {
                    rv.stack = vec![T::zero(); (slots + 1) * ns];
                    rv.stack[..states.len()].copy_from_slice(states);
                    rv.stats.peak_states = slots + 1;
                    rv.reverse(0, 0, blocks, *slots, Some(&pos[1..]));
                }
            }
            Store::Online {
                spacing, states, ..
            } => {
                let count = self.stored_states();
                let inner = auto_snapshots(spacing / k);
                rv.stack = vec![T::zero(); (inner + 1) * ns];
                rv.stats.peak_states = count + inner + 1;
                for j in (0..count).rev() {
                    let a = j * spacing;
                    let b = ((j + 1) * spacing).min(n);
                    rv.stack[..ns].copy_from_slice(&states[j * ns..(j + 1) * ns]);
                    rv.reverse(0, a / k, b.div_ceil(k), inner, None);
                }
            }
        }
        for (g, l) in grad_s0.iter_mut().zip(&rv.lam) {
            *g += *l;
        }
        stats
    }
}

/// State of one reverse pass. Positions in `reverse` and `advance` count
/// blocks of `k` steps.
struct Reverser<'a, T: Scalar> {
    f: Stepper<'a, T>,
    xs: &'a [T],
    w: usize,
    k: usize,
    n: usize,
    ns: usize,
    sc: &'a mut Scratch<T>,
    /// ∂L/∂s_b on the way in, ∂L/∂s_a on the way out of `vjp_steps`.
    lam: Vec<T>,
    cur: Vec<T>,
    nxt: Vec<T>,
    /// Checkpoint states by recursion depth.
    stack: Vec<T>,
    g_p: &'a mut [T],
    g_x: &'a mut [T],
    stats: &'a mut RecurrenceStats,
}

/// Steps of an inverse walk interleaved with as many steps of a block's
/// sweep ([`Reverser::vjp_steps_walking`]).
/// (Loaded A/B at N = 10⁵, alpha: pieces of 4 or 8 steps beat 16 and
/// whole blocks of 32 by 5–10%.)
const WALK_PIECE: usize = 8;

impl<T: Scalar> Reverser<'_, T> {
    /// [`Reverser::vjp_steps`] of the full block `a..b` (from `s`, at `a`)
    /// while walking `prev` (the same state) back through the block
    /// before, `a - (b - a)..a`, with the traced inverse `inv`: the two
    /// are independent, and issued in pieces of [`WALK_PIECE`] steps, one
    /// piece of each in turn, the processor overlaps the walk's chain
    /// (divisions, say) with the sweep's work, which it cannot do across a
    /// whole block of either. Same operations on the same values as the
    /// walk followed by the VJP. `false` (nothing done) unless the step
    /// and the inverse run as native code.
    fn vjp_steps_walking(
        &mut self,
        a: usize,
        b: usize,
        s: &[T],
        inv: &Program<T>,
        prev: &mut [T],
    ) -> bool {
        let Some(prog) = self.f.program else {
            return false;
        };
        if !inv.is_native() || a < b - a {
            return false;
        }
        let sc = &mut *self.sc;
        if !prog.block_forward(&mut sc.work, s, self.xs, (a, b)) {
            return false;
        }
        // θ's adjoints summed over the block, then added (`vjp_steps`)
        sc.theta_adj.clear();
        sc.theta_adj.resize(self.g_p.len(), T::zero());
        let (mut hi, mut walk_hi) = (b, a);
        while hi > a {
            let lo = hi.saturating_sub(WALK_PIECE).max(a);
            let walk_lo = walk_hi - (hi - lo);
            inv.inverse_steps(&mut sc.inv_work, prev, self.xs, (walk_lo, walk_hi));
            prog.block_rev(
                &mut sc.work,
                self.xs,
                (a, b),
                (lo, hi),
                &mut self.lam,
                &mut sc.theta_adj,
                self.g_x,
            );
            (hi, walk_hi) = (lo, walk_lo);
        }
        for (g, &d) in self.g_p.iter_mut().zip(&sc.theta_adj) {
            *g += d;
        }
        self.stats.vjps += b - a;
        true
    }

    /// Pulls `lam` back through steps `a..b` taken from state `s` (at `a`).
    fn vjp_steps(&mut self, a: usize, b: usize, s: &[T]) {
        if let Some(prog) = self.f.program {
            // θ's adjoints summed over the block, then added, as
            // `Scratch::vjp_steps` does
            let sc = &mut *self.sc;
            sc.theta_adj.clear();
            sc.theta_adj.resize(self.g_p.len(), T::zero());
            prog.vjp_block(
                &mut sc.work,
                s,
                self.xs,
                (a, b),
                &mut self.lam,
                &mut sc.theta_adj,
                self.g_x,
            );
            for (g, &d) in self.g_p.iter_mut().zip(&sc.theta_adj) {
                *g += d;
            }
            self.stats.vjps += b - a;
            return;
        }
        self.sc.vjp_steps(
            self.f.step,
            self.f.name,
            s,
            self.xs,
            self.w,
            a,
            b,
            &mut self.lam,
            self.g_p,
            self.g_x,
        );
        self.stats.vjps += b - a;
    }

    /// Reverses blocks `a..b` whose start state is `stack[depth]`, with
    /// `slots` snapshots (the start's included). `chain`: block positions
    /// whose states the forward pass already left in `stack[depth + 1 ..]`.
    fn reverse(&mut self, depth: usize, a: usize, b: usize, slots: usize, chain: Option<&[usize]>) {
        let ns = self.ns;
        let mut b = b;
        let mut chain = chain;
        while b > a {
            let l = b - a;
            if l == 1 {
                let mut cur = std::mem::take(&mut self.cur);
                cur.clear();
                cur.extend_from_slice(&self.stack[depth * ns..(depth + 1) * ns]);
                let (s0, s1) = (a * self.k, (b * self.k).min(self.n));
                self.vjp_steps(s0, s1, &cur);
                self.cur = cur;
                return;
            }
            let m = a + split(l, slots);
            let rest = match chain {
                Some(c) if c.first() == Some(&m) => Some(&c[1..]),
                _ => {
                    self.advance(depth, a, m);
                    None
                }
            };
            self.reverse(depth + 1, m, b, slots - 1, rest);
            chain = None;
            b = m;
        }
    }

    /// Recomputes the state at block `m` from `stack[depth]` (at block `a`)
    /// into `stack[depth + 1]`.
    fn advance(&mut self, depth: usize, a: usize, m: usize) {
        let ns = self.ns;
        let mut cur = std::mem::take(&mut self.cur);
        cur.clear();
        cur.extend_from_slice(&self.stack[depth * ns..(depth + 1) * ns]);
        let (s0, s1) = (a * self.k, m * self.k);
        self.sc
            .run(self.f, &mut cur, self.xs, self.w, s0, s1, self.k, |_, _| {
                true
            });
        self.stats.recomputed += s1 - s0;
        self.stack[(depth + 1) * ns..(depth + 2) * ns].copy_from_slice(&cur);
        self.cur = cur;
    }
}
