//! The backward pass: one reverse sweep over the tape.
//!
//! This file owns reverse accumulation on a tape (`compiled.rs` replays
//! the same order for compiled recurrence steps). The adjoint of the output is seeded
//! with 1 (or a caller's seed); then, from the output's node down to the
//! first, every elementary node adds `adjoint × local partial` into each of
//! its two parents — the product rule hands each factor the other's value,
//! a sum passes the gradient through, and fan-out adds up because the
//! parents accumulate. Custom operations interrupt the sweep at their first
//! output: the caller's vector-Jacobian product turns their outputs'
//! adjoints into their inputs'.

use crate::lookahead;
use crate::scalar::Scalar;
use crate::tape::{
    n_partials, parents, partial, takes_arg, Arena, NonFinite, Op, Tape, Var, IN_BACKWARD, K_ADD,
    K_BINARY, K_COS, K_LEAF, K_PASS, K_SIN, K_UNARY,
};

/// The gradients of one output with respect to every node recorded before it.
///
/// Borrow of the tape: drop it (or copy out what you need with
/// [`Gradients::wrt_all`]) before [`Tape::clear`]. Its buffer goes back to
/// the tape on drop, so repeated backward passes do not allocate (and the
/// tape re-zeroes it as it records, not in a pass before the next sweep).
pub struct Gradients<'t, T: Scalar = f64> {
    tape: &'t Tape<T>,
    adj: Vec<T>,
}

impl<T: Scalar> std::fmt::Debug for Gradients<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients")
            .field("len", &self.adj.len())
            .finish()
    }
}

impl<'t, T: Scalar> Gradients<'t, T> {
    /// ∂output/∂v. Zero for a value the output does not depend on, including
    /// one recorded after the output.
    #[inline]
    pub fn wrt(&self, v: Var<'t, T>) -> T {
        assert!(
            std::ptr::eq(v.tape, self.tape),
            "Gradients::wrt: the variable belongs to another tape"
        );
        self.adj.get(v.idx as usize).copied().unwrap_or(T::zero())
    }

    /// ∂output/∂v for each of `vs`, in order.
    pub fn wrt_all(&self, vs: &[Var<'t, T>]) -> Vec<T> {
        vs.iter().map(|&v| self.wrt(v)).collect()
    }

    /// The adjoint of every node, by node index (up to the output's index).
    pub fn as_slice(&self) -> &[T] {
        &self.adj
    }
}

impl<T: Scalar> Drop for Gradients<'_, T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.adj);
        // SAFETY: no reference into the arena is alive here (see `Tape`'s
        // struct comment: user code never holds one, and a sweep does not
        // hold one across a custom operation's vjp).
        let arena = unsafe { &mut *self.tape.nodes.get() };
        let Err(buf) = arena.return_adj(buf) else {
            return;
        };
        let cached = self.tape.adj_cache.take();
        self.tape
            .adj_cache
            .set(if cached.capacity() >= buf.capacity() {
                cached
            } else {
                buf
            });
    }
}

impl<'t, T: Scalar> Var<'t, T> {
    /// Reverse sweep from this value: its gradient with respect to every
    /// node recorded before it (seed 1).
    pub fn backward(&self) -> Gradients<'t, T> {
        self.backward_with(T::one())
    }

    /// Reverse sweep with adjoint seed `seed` (a vector-Jacobian product
    /// with a one-hot row scaled by `seed`).
    pub fn backward_with(&self, seed: T) -> Gradients<'t, T> {
        sweep_tape(self.tape, &[(self.idx, seed)], false).0
    }

    /// Like [`Var::backward`], but fails with the first NaN or infinity
    /// on this output's path, naming its operation:
    /// - a forward value recorded while checking was on
    ///   ([`Tape::set_check_finite`]) that this value depends on: itself
    ///   or, recursively, an operand of such a node (for an output of a
    ///   [custom operation](Tape::custom_op), every input of that
    ///   operation), whatever the partials, so also one reached through
    ///   a partial of 0 (`x * 0.0`). Of several, the first recorded; one
    ///   on a branch this value does not use is not reported (see
    ///   [`Tape::first_non_finite`] for those);
    /// - else, the first gradient contribution the sweep computes (from
    ///   the output down) that is NaN or infinite: `adjoint × partial` at
    ///   a node whose adjoint is finite and nonzero, or what a custom
    ///   operation's vector-Jacobian product gives its inputs from
    ///   adjoints not all 0;
    /// - or an indeterminate one ([`NonFinite::zero_adjoint`]): a node
    ///   whose adjoint is 0 by arithmetic (a product with 0 on the way, as
    ///   `2·sqrt(x)` in `sqrt(x)²` at 0) and whose partial is not finite.
    ///   IEEE arithmetic makes that `0 × inf` NaN; [`backward`](Var::backward)
    ///   takes it as 0, which is right for `x·sqrt(x)` at 0 and wrong for
    ///   `sqrt(x)²` (derivative 1), and the chain rule cannot tell which.
    ///   A 0 that a selection gives (the operand a `max`, `min` or `relu`
    ///   did not take, or `abs` and `hypot` at their kink) is no such
    ///   product: below it nothing is checked, as nothing on a branch the
    ///   output does not use is. Only nodes recorded while checking was on
    ///   ([`Tape::set_check_finite`] before recording) are checked so.
    ///
    /// ```
    /// use chainrule::Tape;
    /// let mut tape = Tape::new();
    /// tape.set_check_finite(true);
    /// let x = tape.var(2.0);
    /// let unused = (x - 3.0).ln(); // NaN, not used by `y`
    /// let y = x * x;
    /// assert_eq!(y.try_backward().unwrap().wrt(x), 4.0);
    /// let err = (y + unused).try_backward().unwrap_err();
    /// assert_eq!((err.op.as_str(), err.node), ("ln", unused.index()));
    /// // 0 × inf: sqrt's derivative at 0 meets the 0 of 2·sqrt(z)
    /// let z = tape.var(0.0);
    /// let r = z.sqrt();
    /// let err = r.powi(2).try_backward().unwrap_err();
    /// assert!(err.zero_adjoint && (err.op.as_str(), err.node) == ("sqrt", r.index()));
    /// assert_eq!(r.powi(2).backward().wrt(z), 0.0); // the unchecked sweep's 0
    /// // the branch max did not take is not checked
    /// assert_eq!(z.max(r - 5.0).try_backward().unwrap().wrt(z), 1.0);
    /// ```
    pub fn try_backward(&self) -> Result<Gradients<'t, T>, NonFinite> {
        if let Some(bad) = self.tape.first_non_finite_below(self.idx as usize) {
            return Err(bad);
        }
        let (grads, bad) = sweep_tape(self.tape, &[(self.idx, T::one())], true);
        match bad {
            Some(b) => Err(b),
            None => Ok(grads),
        }
    }
}

/// Vector-Jacobian product: the gradient of `Σ_k seeds[k] · outputs[k]`
/// with respect to every node, in one reverse sweep.
///
/// ```
/// use chainrule::{Tape, vjp};
/// let tape = Tape::new();
/// let x = tape.var(3.0);
/// let (a, b) = (x * x, x * 2.0);
/// let g = vjp(&[a, b], &[1.0, 10.0]);
/// assert_eq!(g.wrt(x), 2.0 * 3.0 + 20.0);
/// ```
pub fn vjp<'t, T: Scalar>(outputs: &[Var<'t, T>], seeds: &[T]) -> Gradients<'t, T> {
    assert_eq!(outputs.len(), seeds.len(), "vjp: one seed per output");
    let tape = outputs.first().expect("vjp needs at least one output").tape;
    let pairs: Vec<(u32, T)> = outputs
        .iter()
        .zip(seeds)
        .map(|(o, &s)| {
            assert!(
                std::ptr::eq(o.tape, tape),
                "vjp: outputs on different tapes"
            );
            (o.idx, s)
        })
        .collect();
    sweep_tape(tape, &pairs, false).0
}

/// The Jacobian `J[i][j] = ∂outputs[i]/∂inputs[j]`, by one reverse sweep per
/// output (each reusing the same buffer).
///
/// ```
/// use chainrule::{Tape, jacobian};
/// let tape = Tape::new();
/// let (x, y) = (tape.var(2.0), tape.var(3.0));
/// let j = jacobian(&[x * y, x + y], &[x, y]);
/// assert_eq!(j, vec![vec![3.0, 2.0], vec![1.0, 1.0]]);
/// ```
pub fn jacobian<'t, T: Scalar>(outputs: &[Var<'t, T>], inputs: &[Var<'t, T>]) -> Vec<Vec<T>> {
    outputs
        .iter()
        .map(|o| o.backward().wrt_all(inputs))
        .collect()
}

/// The reverse sweep on the tape's own adjoint buffer: the one the
/// recording zeroed ([`crate::tape::Arena::lend_adj`]), or, while that is
/// lent to another live [`Gradients`] (or a sweep is running), the cached
/// one, zeroed here. The buffer is in the returned [`Gradients`] before the
/// sweep starts, so that it goes back to the tape even if a custom
/// operation's vjp panics. Also returns the first non-finite gradient if
/// `check`.
fn sweep_tape<'t, T: Scalar>(
    tape: &'t Tape<T>,
    seeds: &[(u32, T)],
    check: bool,
) -> (Gradients<'t, T>, Option<NonFinite>) {
    let top = seeds.iter().map(|s| s.0 as usize).max().unwrap_or(0);
    let lent = if tape.flags.get() & IN_BACKWARD == 0 && top < tape.len() {
        // SAFETY: no reference into the arena is alive (see `Tape`).
        unsafe { &mut *tape.nodes.get() }.lend_adj(top + 1)
    } else {
        None
    };
    let mut grads = Gradients {
        tape,
        adj: lent.unwrap_or_else(|| {
            let mut adj = tape.adj_cache.take();
            adj.clear();
            adj.resize(top + 1, T::zero());
            adj
        }),
    };
    for &(i, s) in seeds {
        grads.adj[i as usize] += s;
    }
    let bad = sweep_from(tape, &mut grads.adj, top, check);
    (grads, bad)
}

/// The reverse sweep on a buffer of the caller's. `adj` is resized to cover
/// the highest seeded node and zeroed; returns the first non-finite
/// gradient if `check`.
pub(crate) fn sweep<T: Scalar>(
    tape: &Tape<T>,
    adj: &mut Vec<T>,
    seeds: &[(u32, T)],
    check: bool,
) -> Option<NonFinite> {
    let top = seeds.iter().map(|s| s.0 as usize).max().unwrap_or(0);
    adj.clear();
    adj.resize(top + 1, T::zero());
    for &(i, s) in seeds {
        adj[i as usize] += s;
    }
    sweep_from(tape, adj, top, check)
}

/// The reverse sweep from node `top` down, over adjoints the caller has
/// already sized (`adj.len() > top`) and seeded.
pub(crate) fn sweep_from<T: Scalar>(
    tape: &Tape<T>,
    adj: &mut [T],
    top: usize,
    check: bool,
) -> Option<NonFinite> {
    let flags = tape.flags.get();
    assert!(
        flags & IN_BACKWARD == 0,
        "backward pass started during another on the same tape"
    );
    tape.set_flags(flags | IN_BACKWARD);
    // Restores the flags even if a custom vjp panics.
    struct Reset<'a, T: Scalar>(&'a Tape<T>, u8);
    impl<T: Scalar> Drop for Reset<'_, T> {
        fn drop(&mut self) {
            self.0.set_flags(self.1);
        }
    }
    let _reset = Reset(tape, flags);
    let customs = tape.customs_ref();
    debug_assert!(top < tape.len());
    let mut bad: Option<NonFinite> = None;
    // checking: which nodes the output reaches other than through a
    // selection's zero (see `sweep_range`), the seeds to begin with
    let mut live: Vec<bool> = match check {
        true => adj[..=top].iter().map(|a| !a.is_zero()).collect(),
        false => Vec::new(),
    };
    let mut hi = top + 1;
    // where node `hi - 1`'s partials end
    let mut pc = tape.nodes_ref().partials_before(hi);
    let mut in_grad = tape.scratch.take();
    for c in customs.iter().rev() {
        let first = c.first_output as usize;
        if first >= hi {
            continue;
        }
        let end = first + c.n_outputs as usize;
        pc = sweep_range(tape, adj, end.min(hi), hi, pc, check, &mut bad, &mut live);
        // Outputs of this op above `top` have zero adjoint (not in `adj`).
        let seen = end.min(hi);
        let out_grad = &adj[first..seen];
        if check && live[first..seen].iter().any(|&l| l) {
            for &p in &c.inputs {
                live[p as usize] = true;
            }
        }
        if out_grad.iter().any(|g| !g.is_zero()) {
            in_grad.clear();
            in_grad.resize(c.inputs.len(), T::zero());
            if seen == end {
                (c.vjp)(out_grad, &mut in_grad);
            } else {
                let mut padded = out_grad.to_vec();
                padded.resize(c.n_outputs as usize, T::zero());
                (c.vjp)(&padded, &mut in_grad);
            }
            for (&p, &g) in c.inputs.iter().zip(in_grad.iter()) {
                if check && bad.is_none() && !g.is_finite() {
                    bad = Some(NonFinite {
                        node: first,
                        op: format!("custom:{}", c.name),
                        value: g.to_f64(),
                        in_backward: true,
                        zero_adjoint: false,
                    });
                }
                adj[p as usize] += g;
            }
        }
        hi = first;
    }
    sweep_range(tape, adj, 1, hi, pc, check, &mut bad, &mut live);
    tape.scratch.set(in_grad);
    bad
}

/// Reverse sweep over elementary nodes `lo..hi` (none of them custom
/// outputs). `pc` is where node `hi - 1`'s partials end (see
/// [`crate::tape::Arena::partials_before`]); returns where node `lo`'s
/// begin.
///
/// Every node's contribution `adjoint × partial` is added into its parents
/// in the same order, and with the same roundings, as in the uniform
/// two-parent layout this replaced: a sum's partials of 1 are exact, so it
/// passes its adjoint through unmultiplied, and a missing parent (the sink)
/// receives nothing instead of `adjoint × 0`.
///
/// With `check`, `live` marks the nodes the output reaches other than
/// through a zero partial of a selection (`max`, `min`, `relu`, `abs`,
/// `hypot`: the branch not taken, or the convention at a kink). A node
/// whose adjoint is 0 but that is live got its 0 from arithmetic (a
/// product with 0, as `2·sqrt(x)` in `sqrt(x)²` at 0): a non-finite
/// partial there is `0 × inf`, an undefined gradient the plain sweep
/// takes as 0, so it is reported.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep_range<T: Scalar>(
    tape: &Tape<T>,
    adj: &mut [T],
    lo: usize,
    hi: usize,
    pc: usize,
    check: bool,
    bad: &mut Option<NonFinite>,
    live: &mut [bool],
) -> usize {
    if hi <= lo {
        return pc;
    }
    let arena = tape.nodes_ref();
    let (heads, partials) = (&arena.heads[..], &arena.partials[..]);
    assert!(hi <= heads.len() && hi <= adj.len() && pc <= partials.len());
    let mut pc = pc;
    if !check {
        // only a sweep longer than the caches hold gains from prefetching;
        // copies of the loop, so that none tests for it per node
        let far = hi - lo >= PREFETCH_MIN_NODES;
        let top = (hi, pc, T::zero());
        let carry;
        (_, pc, carry) = if hi - lo >= lookahead::MIN_NODES
            && lookahead::enabled()
            && lookahead::worth_it(heads, lo, hi)
        {
            sweep_helped(arena, adj, lo, hi, pc, far, true)
        } else if far {
            sweep_plain::<T, true, false, false>(heads, partials, adj, lo, top, &[])
        } else {
            sweep_plain::<T, false, false, false>(heads, partials, adj, lo, top, &[])
        };
        if lo > 0 && !carry.is_zero() {
            adj[lo - 1] += carry;
        }
    } else {
        // the same additions in the same order as `sweep_plain` (node
        // `i - 1`'s share carried, here from +0, there from -0: the same
        // sums; see `sweep_plain`), so the same bits
        let mut carry = T::zero();
        for i in (lo..hi).rev() {
            pc -= n_partials(heads[i]);
            let a = adj[i] + carry;
            carry = T::zero();
            adj[i] = a;
            if !live[i] {
                continue;
            }
            let (ps, ds) = arena.decode(i, pc);
            let selects = tape.traced(i).is_none_or(|(op, v)| selects(op, v));
            for k in 0..2 {
                if ps[k] != 0 && !(selects && ds[k].is_zero()) {
                    live[ps[k]] = true;
                }
            }
            if a.is_zero() {
                // 0 × inf: no contribution, but no gradient either
                let undefined = (0..2).find(|&k| ps[k] != 0 && !ds[k].is_finite());
                if let (Some(k), None) = (undefined, &bad) {
                    *bad = Some(NonFinite {
                        node: i,
                        op: tape.op_name(i),
                        value: ds[k].to_f64(),
                        in_backward: true,
                        zero_adjoint: true,
                    });
                }
                continue;
            }
            for k in 0..2 {
                let g = a * ds[k];
                if bad.is_none() && a.is_finite() && !g.is_finite() {
                    *bad = Some(NonFinite {
                        node: i,
                        op: tape.op_name(i),
                        value: g.to_f64(),
                        in_backward: true,
                        zero_adjoint: false,
                    });
                }
                if ps[k] == i - 1 {
                    carry += g;
                } else {
                    adj[ps[k]] += g;
                }
            }
        }
        if lo > 0 && !carry.is_zero() {
            adj[lo - 1] += carry;
        }
    }
    pc
}

/// [`sweep_range`]'s loop with a [`lookahead`] helper thread computing
/// the deferred partials ahead of it: the same additions in the same
/// order, so the same bits. Each block of partials is swept by a call of
/// [`sweep_plain`] that stops where the next block starts, so that the
/// loop itself makes no call (a call would cost the carried adjoint its
/// register). Without `spawn` (tests), no thread is started and the sweep
/// computes every block itself, as it does when the system refuses one.
fn sweep_helped<T: Scalar>(
    arena: &Arena<T>,
    adj: &mut [T],
    lo: usize,
    hi: usize,
    pc: usize,
    far: bool,
    spawn: bool,
) -> (usize, usize, T) {
    let (heads, partials) = (&arena.heads[..], &arena.partials[..]);
    let ahead = lookahead::Ahead::new();
    let top = arena.args_before(hi);
    let mode = lookahead::float_mode();
    std::thread::scope(|s| {
        // the helper returns once this is dropped, even on unwinding
        let _stop = lookahead::StopOnDrop(&ahead);
        // without a thread the sweep claims every block itself
        if spawn {
            let _ = std::thread::Builder::new()
                .name("chainrule-sweep-helper".into())
                .stack_size(256 << 10)
                .spawn_scoped(s, || ahead.help(&arena.args, &arena.arg_cos, top, mode));
        }
        let mut feed = lookahead::Feed::new(&ahead);
        let mut at = (hi, pc, T::zero());
        let mut k = 0;
        while at.0 > lo {
            let made = feed.block(k);
            k += 1;
            at = match (made, far) {
                (Some(m), true) => {
                    sweep_plain::<T, true, true, true>(heads, partials, adj, lo, at, m)
                }
                (Some(m), false) => {
                    sweep_plain::<T, false, true, true>(heads, partials, adj, lo, at, m)
                }
                (None, true) => {
                    sweep_plain::<T, true, true, false>(heads, partials, adj, lo, at, &[])
                }
                (None, false) => {
                    sweep_plain::<T, false, true, false>(heads, partials, adj, lo, at, &[])
                }
            };
        }
        at
    })
}

/// The code of a pair of node kinds `(A, B)` in [`sweep_plain`]'s
/// dispatch: `A << 3 | B` (every kind is below 8).
struct PairCode<const A: u64, const B: u64>;

impl<const A: u64, const B: u64> PairCode<A, B> {
    const CODE: u64 = A << 3 | B;
}

/// [`sweep_range`]'s loop without checks, prefetching ahead if `FAR`.
/// Sweeps nodes from `hi - 1` down to `lo`, where `(hi, pc, carry)` is
/// where an earlier call stopped (or the range's top, `pc` where node
/// `hi - 1`'s partials end, and a carry of 0), and returns where it stops
/// likewise. If `BLOCKS`, it stops before the `sin` or `cos` node that
/// would be the [`lookahead::BLOCK`]-th + 1 of the call; if `MADE`, their
/// partials ([`partial`]) are taken from `made` in order instead of
/// computed. The caller adds the last carry into node `lo - 1`. The caller has checked `hi <= heads.len()`,
/// `hi <= adj.len()` and `pc <= partials.len()`.
///
/// The loop dispatches on the kinds of two nodes at a time (one jump
/// through a table of the 49 pairs), then sweeps both: an interpreter's
/// overhead per dispatch (the loop's test, the prefetch's, the jump) is
/// paid once a pair, and the sweep of a tape is bound by its instructions
/// (BENCHMARKS.md, issue 17). The nodes are swept in the same order with
/// the same additions as one at a time, so the same bits.
///
/// Never inlined: the loop's registers are then allocated for the loop
/// alone (inlined into its callers, the carried adjoint went to the stack).
#[inline(never)]
fn sweep_plain<T: Scalar, const FAR: bool, const BLOCKS: bool, const MADE: bool>(
    heads: &[u64],
    partials: &[T],
    adj: &mut [T],
    lo: usize,
    (hi, pc, carry): (usize, usize, T),
    made: &[T],
) -> (usize, usize, T) {
    // a block's made partials are counted against it
    const { assert!(BLOCKS || !MADE) };
    // `head` admits no kind above `K_COS`, so a kind fits in the 3 bits
    // the pairs' dispatch takes from each head, and 7 is unused
    const { assert!(K_COS < 7) };
    let mut pc = pc;
    let mut used = 0;
    // The adjoint flowing to node n - 1 (the most common parent: chains
    // of operations) is carried in a register instead of through memory,
    // which takes a store-to-load round trip off the critical path. It
    // starts each node at -0, not +0: -0 + g is g for every g, so the
    // compiler drops that addition from the chain (+0 + g is not g for
    // g = -0), and the adjoints are the same bits, because an adjoint is
    // never -0 (sums begun from +0 are not), and adding -0 or +0 to one
    // leaves it as it is. That holds in the default floating-point mode
    // (round to nearest, subnormals kept); with flush-to-zero (`bench
    // recurrence --flush-denormals`) or a directed rounding, an adjoint
    // in memory can be -0, and the sweep then leaves a zero adjoint -0
    // where the +0 carry made it +0: the same value, another sign bit.
    let mut carry = carry;
    // Sweeps node `$n` (head `$h`) of kind `$kind`, a constant, so that
    // each arm below compiles to that kind's code alone. It steps the
    // partials cursor back by the kind's count (`n_partials`) and skips a
    // zero adjoint; before a `sin` or `cos` beyond the block, it returns.
    //
    // SAFETY (of the unchecked accesses): $n < hi <= len(adj),
    // len(heads); parents of node $n are indices < $n (a node is recorded
    // after its operands, and operands from another tape are rejected
    // when recording); the partials of nodes lo..hi lie below `pc` (one
    // stream, in order); a block has at most `BLOCK` made partials.
    macro_rules! node {
        ($kind:ident, $n:expr, $h:expr) => {{
            let (n, h) = ($n, $h);
            if BLOCKS && takes_arg($kind) && used == lookahead::BLOCK {
                return (n + 1, pc, carry);
            }
            let a = *adj.get_unchecked(n) + carry;
            carry = -T::zero();
            // the final adjoint of node n is read by `Gradients::wrt`
            *adj.get_unchecked_mut(n) = a;
            let prev = n - 1;
            macro_rules! give {
                ($p:expr, $g:expr) => {
                    if $p == prev {
                        carry += $g;
                    } else {
                        *adj.get_unchecked_mut($p) += $g;
                    }
                };
            }
            match $kind {
                K_BINARY => {
                    pc -= 2;
                    if !a.is_zero() {
                        let (p0, p1) = parents(h);
                        let (g0, g1) = (
                            a * *partials.get_unchecked(pc),
                            a * *partials.get_unchecked(pc + 1),
                        );
                        give!(p0, g0);
                        give!(p1, g1);
                    }
                }
                K_UNARY => {
                    pc -= 1;
                    if !a.is_zero() {
                        give!(parents(h).0, a * *partials.get_unchecked(pc));
                    }
                }
                // the partial from the kept argument: a library call
                // beside the adjoints' chain (it does not depend on it),
                // or made by a helper thread
                K_SIN | K_COS => {
                    pc -= 1;
                    if BLOCKS {
                        used += 1;
                    }
                    if !a.is_zero() {
                        let d = if MADE {
                            *made.get_unchecked(used - 1)
                        } else {
                            partial(h, *partials.get_unchecked(pc))
                        };
                        give!(parents(h).0, a * d);
                    }
                }
                K_ADD => {
                    if !a.is_zero() {
                        let (p0, p1) = parents(h);
                        give!(p0, a);
                        give!(p1, a);
                    }
                }
                K_PASS => {
                    if !a.is_zero() {
                        give!(parents(h).0, a);
                    }
                }
                _ => {
                    let _ = h;
                }
            }
        }};
    }
    // `match $code` with an arm for each pair of the kinds listed, which
    // sweeps node $i - 1 (head $h1) as the first kind and node $i - 2 as
    // the second; a code that is no pair is unreachable (no kind is 7), so
    // the jump table needs no bounds check.
    macro_rules! pairs {
        ($code:expr, $i:ident, $h1:ident, $h0:ident; $($k:ident)*) => {
            pairs!(@arms $code, $i, $h1, $h0; []; [$($k)*]; $($k)*)
        };
        (@arms $code:expr, $i:ident, $h1:ident, $h0:ident; [$($arms:tt)*]; [$($all:ident)*];) => {
            match $code {
                $($arms)*
                _ => std::hint::unreachable_unchecked(),
            }
        };
        (@arms $code:expr, $i:ident, $h1:ident, $h0:ident; [$($arms:tt)*]; [$($all:ident)*];
            $k:ident $($rest:ident)*) => {
            pairs!(@arms $code, $i, $h1, $h0; [$($arms)* $(
                PairCode::<$k, $all>::CODE => {
                    node!($k, $i - 1, $h1);
                    node!($all, $i - 2, $h0);
                }
            )*]; [$($all)*]; $($rest)*)
        };
    }
    let mut i = hi;
    // Pairs only for scalars of at most 8 bytes (`f64`, `f32`,
    // `Dual<f32>`): their 49 arms take a few kilobytes, those of a wider
    // scalar (`Dual<f64>` and larger) many times that.
    if std::mem::size_of::<T>() <= 8 {
        // SAFETY: see `node!`; i - 2 >= lo here, and a head's kind is one
        // of the seven below 7 (heads are only made by `head` from them).
        while i >= lo + 2 {
            unsafe {
                if FAR && i % 8 < 2 {
                    prefetch_below(heads, adj, partials, i, pc);
                }
                let h1 = *heads.get_unchecked(i - 1);
                let h0 = *heads.get_unchecked(i - 2);
                // one arm for each pair of kinds (node i - 1's, node i - 2's)
                pairs!((h1 & 7) << 3 | (h0 & 7), i, h1, h0;
                    K_LEAF K_UNARY K_BINARY K_ADD K_PASS K_SIN K_COS)
            }
            i -= 2;
        }
    }
    while i > lo {
        // SAFETY: see `node!`.
        unsafe {
            if FAR && i % 8 == 0 {
                prefetch_below(heads, adj, partials, i, pc);
            }
            let h = *heads.get_unchecked(i - 1);
            match h & 7 {
                K_LEAF => node!(K_LEAF, i - 1, h),
                K_UNARY => node!(K_UNARY, i - 1, h),
                K_BINARY => node!(K_BINARY, i - 1, h),
                K_ADD => node!(K_ADD, i - 1, h),
                K_PASS => node!(K_PASS, i - 1, h),
                K_SIN => node!(K_SIN, i - 1, h),
                K_COS => node!(K_COS, i - 1, h),
                _ => {}
            }
        }
        i -= 1;
    }
    (lo, pc, carry)
}

/// How many nodes below the one being swept [`prefetch_below`] asks for
/// (`bench ad` at N = 10⁶, a 104 MB tape: the backward 12.3 ns/step
/// against 15.2 without (first sitting); 12.3–13.4 at 64 to 1,024; see
/// BENCHMARKS.md).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only x86-64 prefetches
const SWEEP_PREFETCH: usize = 256;

/// Sweeps of fewer nodes do not prefetch (2 Mi nodes: 16 MiB of heads
/// alone, beyond the second-level caches; `bench fit`'s sweeps measured
/// 12–20% slower with the prefetch on every sweep).
const PREFETCH_MIN_NODES: usize = 1 << 21;

/// Asks the processor for the head, adjoint and partials cache lines
/// [`SWEEP_PREFETCH`] nodes below node `i` (partials at 1.25 a node, the
/// density of a typical tape): the sweep walks three streams downwards
/// through a tape larger than the caches, and the hardware prefetchers
/// fetch descending streams late. A hint only: nothing read or written
/// changes, and an address outside the tape is never dereferenced.
#[inline(always)]
fn prefetch_below<T>(heads: &[u64], adj: &[T], partials: &[T], i: usize, pc: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let d = SWEEP_PREFETCH;
        let at = |p: *const i8| {
            // SAFETY: a prefetch never faults (the address is only a hint).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
        };
        at(heads.as_ptr().wrapping_add(i).wrapping_sub(d).cast());
        at(adj.as_ptr().wrapping_add(i).wrapping_sub(d).cast());
        at(partials
            .as_ptr()
            .wrapping_add(pc)
            .wrapping_sub(d + d / 4)
            .cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (heads, adj, partials, i, pc);
}

/// Whether a zero partial of `op` (its node's value `value`) selects
/// (the operand a `max`, `min` or `relu` did not take) or follows a
/// convention at a kink (`abs` at 0, `hypot` at the origin, its value 0):
/// no gradient reaches that operand, so a non-finite partial below it is
/// no `0 × inf`. `hypot` elsewhere is smooth, and its zero partial (`a/h`
/// at `a = 0`) is arithmetic. An unknown operation (recorded before
/// checking was turned on) is taken as one, so that it is never reported.
fn selects(op: Op, value: f64) -> bool {
    match op {
        Op::Max | Op::Min | Op::Relu | Op::Abs => true,
        Op::Hypot => value == 0.0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::KIND_MASK;

    /// The sweep of the uniform layout this file used before kinds: every
    /// node two parents (the sink for a missing one) and two partials (1
    /// for a sum), the adjoint of node `i - 1` carried in a register.
    fn uniform_sweep(tape: &Tape<f64>, top: usize) -> Vec<f64> {
        let mut adj = vec![0.0; top + 1];
        adj[top] = 1.0;
        uniform_sweep_seeded(tape, adj)
    }

    /// [`uniform_sweep`] from the seeds in `adj` (one entry per node up to
    /// the top one).
    fn uniform_sweep_seeded<T: Scalar>(tape: &Tape<T>, mut adj: Vec<T>) -> Vec<T> {
        let arena = tape.nodes_ref();
        let top = adj.len() - 1;
        let mut pcs = vec![0; top + 2];
        for i in 0..=top {
            pcs[i + 1] = pcs[i] + n_partials(arena.heads[i]);
        }
        let mut carry = T::zero();
        for i in (1..=top).rev() {
            let a = adj[i] + carry;
            carry = T::zero();
            adj[i] = a;
            if a.is_zero() {
                continue;
            }
            let (ps, ds) = arena.decode(i, pcs[i]);
            let (g0, g1) = (a * ds[0], a * ds[1]);
            for (p, g) in [(ps[0], g0), (ps[1], g1)] {
                if p == i - 1 {
                    carry += g;
                } else {
                    adj[p] += g;
                }
            }
        }
        adj
    }

    /// A xorshift generator (deterministic, no dependency).
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Appends `n` random operations on recent (sometimes far) values of
    /// `vs` to the tape.
    fn record_random<'t>(vs: &mut Vec<Var<'t, f64>>, n: usize, next: &mut impl FnMut() -> u64) {
        for _ in 0..n {
            let m = vs.len();
            // mostly recent operands, sometimes far ones; repeats allowed
            let pick = |r: u64| vs[m - 1 - (r as usize % m.min(if r % 5 == 0 { m } else { 3 }))];
            let (x, y) = (pick(next()), pick(next()));
            let v = match next() % 13 {
                12 => x.cos() * y,
                0 => x + y,
                1 => x - y,
                2 => x * y,
                3 => x / (y.square() + 1.0),
                4 => x.sin(),
                5 => x + 0.7,
                6 => x - 1.5,
                7 => 2.0 - x,
                8 => x * 0.9,
                9 => x + x,
                10 => x * x,
                _ => (x * 0.1).exp(),
            };
            vs.push(v);
        }
    }

    /// Appends `n` random operations to the tape whose values stay in
    /// [-1, 1] and whose adjoints neither vanish nor overflow over a long
    /// tape: half of them `sin` or `cos`, on recent values.
    fn record_bounded<'t>(vs: &mut Vec<Var<'t, f64>>, n: usize, next: &mut impl FnMut() -> u64) {
        for _ in 0..n {
            let m = vs.len();
            let pick = |r: u64| vs[m - 1 - (r as usize % m.min(4))];
            let (x, y) = (pick(next()), pick(next()));
            let v = match next() % 6 {
                0 => (x * 1.3).sin(),
                1 => x.cos() * 0.9,
                2 => (x + y).sin(),
                3 => x * y.cos(),
                4 => x * 0.6 - y * 0.4,
                _ => (x * y + 0.5).sin(),
            };
            vs.push(v);
        }
    }

    /// Asserts that `g` holds, bit for bit, the adjoints of a sweep from
    /// `out` on a buffer of its own (and zeros above `out`, where a
    /// [`vjp`] seeded a later output with 0).
    fn assert_fresh(g: &Gradients<'_, f64>, tape: &Tape<f64>, out: Var<'_, f64>) {
        let want = uniform_sweep(tape, out.index());
        let got = g.as_slice();
        assert!(got.len() >= want.len());
        for i in 1..got.len() {
            let w = want.get(i).copied().unwrap_or(0.0);
            assert_eq!(got[i].to_bits(), w.to_bits(), "node {i}");
        }
    }

    /// The same bits, or both NaN: a NaN's sign and payload are not kept
    /// by the compiler (it may commute an addition), so two builds of one
    /// sweep may differ there.
    fn same(x: f64, y: f64) -> bool {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    }

    /// The adjoints of a sweep of nodes `lo..adj.len()` with the lookahead
    /// helper (a thread if `spawn`), then of `1..lo` alone, from the seeds
    /// in `adj`.
    fn helped_sweep(
        tape: &Tape<f64>,
        mut adj: Vec<f64>,
        lo: usize,
        spawn: bool,
        far: bool,
    ) -> Vec<f64> {
        let arena = tape.nodes_ref();
        let top = adj.len() - 1;
        let pc = arena.partials_before(top + 1);
        let (stop, pc, carry) = sweep_helped(arena, &mut adj, lo, top + 1, pc, far, spawn);
        assert_eq!(stop, lo);
        if lo > 0 && carry != 0.0 {
            adj[lo - 1] += carry;
        }
        let (heads, partials) = (&arena.heads[..], &arena.partials[..]);
        let (_, _, carry) = sweep_plain::<f64, false, false, false>(
            heads,
            partials,
            &mut adj,
            1,
            (lo, pc, 0.0),
            &[],
        );
        if carry != 0.0 {
            adj[0] += carry;
        }
        adj
    }

    /// A sweep whose `sin` and `cos` partials come from the helper thread,
    /// from the sweep itself, or from both (blocks go to whichever gets
    /// there first), over the whole tape or a part of it, adds the same
    /// bits in the same order as the uniform sweep. The tapes hold many
    /// more blocks than the helper's ring. In odd rounds the sweep's top is
    /// not the tape's last node: later nodes, with `sin`s and `cos`es of
    /// their own (not a whole number of blocks), are in `args` above the
    /// range, whose blocks must count from its own top.
    #[test]
    fn helped_sweeps_are_the_uniform_sweep_bit_for_bit() {
        let mut next = rng(0x5851_F42D_4C95_7F2D);
        for round in 0..16 {
            let tape = Tape::new();
            let mut vs: Vec<Var<'_, f64>> =
                (0..3).map(|k| tape.var(0.2 + 0.3 * k as f64)).collect();
            record_bounded(&mut vs, 30_000 + (next() % 20_000) as usize, &mut next);
            let top = vs.last().unwrap().index();
            let deferred = tape.nodes_ref().args.len();
            assert!(
                deferred > 20 * lookahead::BLOCK,
                "{deferred} sines and cosines"
            );
            if round % 2 == 1 {
                record_bounded(&mut vs, 7 + (next() % 3000) as usize, &mut next);
                let arena = tape.nodes_ref();
                let above = arena.args.len() - arena.args_before(top + 1);
                assert!(above > 0 && above % lookahead::BLOCK != 0, "{above} above");
            }
            let lo = if round % 3 == 0 {
                1
            } else {
                1 + (next() as usize % top)
            };
            assert_helped_is_uniform(&tape, top, 89 + 8 * (round % 2), lo, round);
        }
    }

    /// Asserts that sweeps of `tape` from node `top` down to `lo` with the
    /// helper (a thread or not) give the uniform sweep's bits, with seeds
    /// every `every` nodes so that no stretch of adjoints vanishes.
    fn assert_helped_is_uniform(
        tape: &Tape<f64>,
        top: usize,
        every: usize,
        lo: usize,
        round: usize,
    ) {
        let seeds: Vec<f64> = (0..=top)
            .map(|i| {
                if i % every == 0 || i == top {
                    0.5 + (i % 7) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let want = uniform_sweep_seeded(tape, seeds.clone());
        let live = want.iter().filter(|x| x.is_finite() && **x != 0.0).count();
        assert!(
            live > want.len() / 2,
            "{live} of {} adjoints nonzero",
            want.len()
        );
        for (spawn, far) in [(false, false), (true, false), (true, true)] {
            let got = helped_sweep(tape, seeds.clone(), lo, spawn, far);
            for i in 1..=top {
                assert!(
                    same(got[i], want[i]),
                    "round {round}, lo {lo}, thread {spawn}: node {i}: {} against {}",
                    got[i],
                    want[i]
                );
            }
        }
    }

    /// A tape long enough for `backward` to start the helper (where there
    /// is a second core) gives the bits of the checked sweep, which never
    /// uses one.
    #[test]
    fn a_long_backward_is_the_checked_one_bit_for_bit() {
        let tape = Tape::new();
        let (s0, a, b) = (tape.var(0.5), tape.var(0.9), tape.var(0.1));
        let (mut s, mut k) = (s0, 0);
        while tape.len() < lookahead::MIN_NODES + 1000 {
            s = recurrence_step(s, a, b, &mut k);
        }
        assert_backward_is_checked(s, a);
    }

    /// The same in `f32`: a tape long enough for the helper and the
    /// prefetching sweep, whose blocks stop inside pairs, gives the checked
    /// sweep's bits.
    #[test]
    fn a_long_f32_backward_is_the_checked_one_bit_for_bit() {
        let tape = Tape::<f32>::default();
        let (s0, a, b) = (tape.var(0.5f32), tape.var(0.9f32), tape.var(0.1f32));
        let (mut s, mut k) = (s0, 0u64);
        while tape.len() < lookahead::MIN_NODES + 1001 {
            k += 1;
            s = match k % 3 {
                0 => s * a + s.cos() * b,
                1 => s * a + s.sin() * b,
                _ => (s * a - 0.01f32) + s.sin(),
            };
        }
        assert_backward_is_checked(s, a);
    }

    /// One step of `bench ad`'s recurrence, with a cosine every third.
    fn recurrence_step<'t>(
        s: Var<'t, f64>,
        a: Var<'t, f64>,
        b: Var<'t, f64>,
        k: &mut u64,
    ) -> Var<'t, f64> {
        *k += 1;
        if *k % 3 == 2 {
            s * a + s.cos() * b
        } else {
            s * a + s.sin() * b
        }
    }

    /// Asserts that `out.backward()` gives the bits of the checked sweep
    /// (which never uses the helper), and a gradient for `a`. (An `f32`
    /// converts to `f64` exactly, signed zeros included, so comparing the
    /// `f64` bits compares its own.)
    fn assert_backward_is_checked<T: Scalar>(out: Var<'_, T>, a: Var<'_, T>) {
        let g = out.backward();
        let got = g.as_slice().to_vec();
        drop(g);
        let checked = out.try_backward().expect("finite");
        assert_eq!(got.len(), checked.as_slice().len());
        for (i, (&x, &y)) in got.iter().zip(checked.as_slice()).enumerate() {
            let (x, y) = (x.to_f64(), y.to_f64());
            assert!(same(x, y), "out {}: node {i}: {x} against {y}", out.index());
        }
        assert!(checked.wrt(a).is_finite() && !checked.wrt(a).is_zero());
    }

    /// The arena's copy of the `sin` and `cos` arguments matches the nodes
    /// through truncation, clearing and recording again.
    #[test]
    fn the_argument_copy_follows_the_nodes() {
        let mut next = rng(0x2545_F491_4F6C_DD1D ^ 7);
        let mut tape = Tape::new();
        for _ in 0..20 {
            {
                let mut vs: Vec<Var<'_, f64>> = (0..3).map(|k| tape.var(k as f64 - 0.5)).collect();
                record_random(&mut vs, 1 + (next() % 400) as usize, &mut next);
            }
            match next() % 3 {
                0 => tape.clear(),
                1 => {
                    let n = next() as usize % (tape.len() + 1);
                    tape.truncate_nodes(n);
                }
                _ => {}
            }
            assert_args_follow(&tape, "after a round");
        }
    }

    #[test]
    fn kinds_sweep_like_the_uniform_layout_bit_for_bit() {
        let mut next = rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let tape = Tape::new();
            let mut vs: Vec<Var<'_, f64>> =
                (0..3).map(|k| tape.var(0.3 + 0.2 * k as f64)).collect();
            record_random(&mut vs, 60, &mut next);
            let out = *vs.last().unwrap();
            assert_fresh(&out.backward(), &tape, out);
        }
    }

    /// Random tapes over `T`, every kind in every pair of neighbours, swept
    /// from a random seed, give the uniform layout's adjoints: `bits`
    /// gives each adjoint's bits (every part of a dual number). Inputs and
    /// constants of +0 and -0 and seeds of -0 and negative ones make
    /// contributions of -0, which the register that carries node n - 1's
    /// share (begun at -0, so that LLVM may drop an addition of it) must
    /// leave exactly as the layout's carry from +0 does, down to the sign of
    /// every zero adjoint. Returns how many adjoints were zero.
    fn assert_generic_sweeps<T: Scalar>(seed: u64, bits: impl Fn(T) -> Vec<u64>) -> usize {
        let mut zeros = 0;
        let mut next = rng(seed);
        let c = |x: f64| T::from_f64(x);
        for _ in 0..150 {
            let tape = Tape::<T>::default();
            let mut vs: Vec<Var<'_, T>> =
                [0.3, -0.0, 1.1].iter().map(|&x| tape.var(c(x))).collect();
            for _ in 0..(10 + next() % 90) {
                let m = vs.len();
                let pick =
                    |r: u64| vs[m - 1 - (r as usize % m.min(if r % 4 == 0 { m } else { 3 }))];
                let (x, y) = (pick(next()), pick(next()));
                let v = match next() % 12 {
                    11 => x * c(0.0),
                    0 => x + y,
                    1 => x - y,
                    2 => x * y,
                    3 => x * c(0.9),
                    4 => x + c(0.25),
                    5 => x.sin(),
                    6 => x.cos() * y,
                    7 => -x,
                    8 => x * x,
                    9 => tape.var(c(0.5)) * x,
                    _ => x * c(-0.0),
                };
                vs.push(v);
            }
            let out = *vs.last().unwrap();
            let s = c([-1.5, 1.0, 0.75, -0.0][(next() % 4) as usize]);
            // a second output below, seeded -0, in half the rounds
            let low = vs[next() as usize % vs.len()];
            let mut adj = vec![T::zero(); out.index() + 1];
            adj[out.index()] += s;
            let g = if next() % 2 == 0 {
                adj[low.index()] += c(-0.0);
                vjp(&[out, low], &[s, c(-0.0)])
            } else {
                out.backward_with(s)
            };
            let want = uniform_sweep_seeded(&tape, adj);
            for (i, &w) in want.iter().enumerate().skip(1) {
                assert_eq!(bits(g.as_slice()[i]), bits(w), "node {i}");
                zeros += usize::from(w.is_zero() && i < out.index());
            }
        }
        zeros
    }

    /// The pairs' loop in `f64`, `f32` and `Dual<f32>` and the one-node
    /// loop of `Dual<f64>` sweep as the uniform layout does, bit for bit,
    /// signed zeros included.
    #[test]
    fn f32_and_dual_sweeps_are_the_uniform_layout_bit_for_bit() {
        let zeros = [
            assert_generic_sweeps::<f32>(0x94D0_49BB_1331_11EB, |x| vec![u64::from(x.to_bits())]),
            assert_generic_sweeps::<f64>(0xBF58_476D_1CE4_E5B9, |x| vec![x.to_bits()]),
            assert_generic_sweeps::<crate::Dual<f64>>(0x2545_F491_4F6C_DD1D, |x| {
                vec![x.re.to_bits(), x.eps.to_bits()]
            }),
            // 8 bytes: the pairs' loop
            assert_generic_sweeps::<crate::Dual<f32>>(0x9E37_79B9_7F4A_7C15, |x| {
                vec![u64::from(x.re.to_bits()), u64::from(x.eps.to_bits())]
            }),
        ];
        assert!(zeros.iter().all(|&z| z > 300), "zero adjoints: {zeros:?}");
    }

    /// The adjoint buffer that recording zeroes is lent to one backward
    /// pass at a time, comes back dirty, and is zeroed again where needed:
    /// passes held while others run and more nodes are recorded, dropped in
    /// either order, several passes on one recording, a cleared or
    /// truncated tape, all give the adjoints of a sweep on a fresh buffer.
    #[test]
    fn adjoints_are_those_of_a_fresh_buffer_however_the_buffer_is_reused() {
        let mut next = rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..60 {
            let mut tape = Tape::new();
            for _round in 0..5 {
                let mut vs: Vec<Var<'_, f64>> =
                    (0..3).map(|k| tape.var(0.4 + 0.3 * k as f64)).collect();
                record_random(&mut vs, 1 + (next() % 40) as usize, &mut next);
                let a = vs[next() as usize % vs.len()];
                let ga = a.backward();
                assert_fresh(&ga, &tape, a);
                // more nodes while `ga` holds the tape's buffer
                record_random(&mut vs, (next() % 30) as usize, &mut next);
                let b = vs[next() as usize % vs.len()];
                let gb = if next() % 2 == 0 {
                    b.backward()
                } else {
                    vjp(&[b, a], &[1.0, 0.0])
                };
                assert_fresh(&gb, &tape, b);
                assert_fresh(&ga, &tape, a);
                if next() % 2 == 0 {
                    drop(ga);
                    drop(gb);
                } else {
                    drop(gb);
                    drop(ga);
                }
                // again on the same recording, after both came back
                let c = vs[next() as usize % vs.len()];
                assert_fresh(&c.backward(), &tape, c);
                let top = *vs.last().unwrap();
                // the checked sweep adds in the same order (the same bits);
                // a random program may overflow, which it reports
                match top.try_backward() {
                    Ok(g) => assert_fresh(&g, &tape, top),
                    Err(_) => assert_fresh(&top.backward(), &tape, top),
                }
                match next() % 3 {
                    0 => tape.clear(),
                    1 => {
                        let keep = 1 + (next() as usize) % tape.len();
                        tape.truncate_nodes(keep);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Asserts that the arena's copy of the `sin`/`cos` arguments (and
    /// their cosine bits) is exactly what its nodes hold, and that the bits
    /// past it are clear.
    fn assert_args_follow(tape: &Tape<f64>, what: &str) {
        let arena = tape.nodes_ref();
        let mut pc = 0;
        let mut want = Vec::new();
        for &h in &arena.heads {
            if takes_arg(h) {
                want.push((arena.partials[pc].to_bits(), h & KIND_MASK == K_COS));
            }
            pc += n_partials(h);
        }
        let got: Vec<_> = (0..arena.args.len())
            .map(|j| {
                (
                    arena.args[j].to_bits(),
                    arena.arg_cos[j / 64] >> (j % 64) & 1 == 1,
                )
            })
            .collect();
        assert_eq!(got, want, "{what}");
        let n = arena.args.len();
        assert!(arena.arg_cos.len() * 64 >= arena.args.capacity(), "{what}");
        assert!(
            (n..arena.arg_cos.len() * 64).all(|j| arena.arg_cos[j / 64] >> (j % 64) & 1 == 0),
            "{what}: stale cosine bits"
        );
    }

    /// Truncation at every length, one node at a time (each `sin` and `cos`
    /// dropped on its own, at every bit position), keeps the argument copy
    /// in step with the nodes; so does recording again after it.
    #[test]
    fn the_argument_copy_follows_every_truncation() {
        let mut next = rng(0x0DDB_1A5E_5BAD_5EED);
        let mut tape = Tape::new();
        {
            let mut vs: Vec<Var<'_, f64>> = (0..3).map(|k| tape.var(k as f64 - 0.5)).collect();
            record_bounded(&mut vs, 400, &mut next);
        }
        assert!(tape.nodes_ref().args.len() > 128);
        for n in (1..tape.len()).rev() {
            tape.truncate_nodes(n);
            assert_eq!(tape.len(), n);
            assert_args_follow(&tape, &format!("truncated to {n}"));
        }
        {
            let mut vs: Vec<Var<'_, f64>> = (0..3).map(|k| tape.var(k as f64 + 0.25)).collect();
            record_bounded(&mut vs, 200, &mut next);
        }
        assert_args_follow(&tape, "recorded again");
    }

    /// The argument copy and its cosine bits stay in step with the nodes,
    /// and cover the copy's capacity, through any mix of recording (fast
    /// and slow paths), `clear`, `reserve`, truncation, tracing, checking,
    /// and recording while a backward pass's gradients hold the adjoints.
    #[test]
    fn the_argument_copy_survives_every_arena_operation() {
        let mut next = rng(0x5EED_0FA1_10A7_5EED);
        let mut tape = Tape::new();
        for round in 0..300 {
            match next() % 9 {
                0 => tape.clear(),
                1 => tape.reserve((next() % 5000) as usize),
                2 if tape.len() > 1 => {
                    let n = 1 + (next() as usize % tape.len());
                    tape.truncate_nodes(n);
                }
                3 => tape.set_tracing(next() % 2 == 0),
                4 => tape.set_check_finite(next() % 2 == 0),
                5 => {
                    let t = &tape;
                    let mut vs: Vec<Var<'_, f64>> = (0..3).map(|k| t.var(k as f64 * 0.3)).collect();
                    record_bounded(&mut vs, 50 + (next() % 300) as usize, &mut next);
                    let g = vs.last().unwrap().backward();
                    // recorded while the adjoints are lent: the slow path
                    record_bounded(&mut vs, (next() % 200) as usize, &mut next);
                    assert_args_follow(t, &format!("round {round}: while lent"));
                    drop(g);
                    record_bounded(&mut vs, (next() % 200) as usize, &mut next);
                }
                _ => {
                    let t = &tape;
                    let mut vs: Vec<Var<'_, f64>> = (0..3).map(|k| t.var(k as f64 - 0.7)).collect();
                    // a run of sines alone, to fill the copy to its capacity
                    for _ in 0..(next() % 700) {
                        let x = *vs.last().unwrap();
                        vs.push(if next() % 2 == 0 { x.sin() } else { x.cos() });
                    }
                    record_bounded(&mut vs, (next() % 2000) as usize, &mut next);
                }
            }
            assert_args_follow(&tape, &format!("round {round}"));
        }
    }

    /// A long tape cut by a custom operation: `backward` sweeps two ranges
    /// of more than `MIN_NODES` each (the lower one ending below the tape's
    /// end), each with its own helper; and a backward from a node in the
    /// middle of the tape. Both give the checked sweep's bits.
    #[test]
    fn a_long_backward_cut_by_a_custom_op_is_the_checked_one_bit_for_bit() {
        let tape = Tape::new();
        let (s0, a, b) = (tape.var(0.5), tape.var(0.9), tape.var(0.1));
        let (mut s, mut k) = (s0, 0);
        while tape.len() < lookahead::MIN_NODES + 777 {
            s = recurrence_step(s, a, b, &mut k);
        }
        let mid = s;
        let v = s.value();
        let c = tape.custom_op("twice", &[s], vec![2.0 * v], |gy, gx| gx[0] += 2.0 * gy[0]);
        s = c[0];
        while tape.len() < 2 * lookahead::MIN_NODES + 2000 {
            s = recurrence_step(s, a, b, &mut k);
        }
        assert_backward_is_checked(s, a);
        assert_backward_is_checked(mid, a);
    }
}
