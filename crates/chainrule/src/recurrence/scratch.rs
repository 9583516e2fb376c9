//! The scratch tape a block of steps is recorded and swept on (`Scratch`),
//! the step it runs (`Stepper`), and the row and prefetch helpers.

use super::*;

/// Asks the processor to bring `v` into its caches: the reverse pass
/// walks blocks from the last to the first, and a descending walk over
/// blocks whose own accesses ascend defeats the hardware prefetchers, so
/// each block's first touch of its rows of `xs` and `g_x` (and, for
/// store-all, its start state) would wait for memory. A hint only: no
/// value read or written changes.
#[inline]
pub(super) fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // every cache line `v` touches, from the first one's start
        let p = v.as_ptr().cast::<i8>();
        let lead = p as usize % 64;
        let mut off = 0;
        while off < lead + std::mem::size_of_val(v) {
            // SAFETY: a prefetch never faults (the address is only a hint).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_sub(lead).wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// The rows `a..b` of the per-step inputs (clamped to `xs`).
#[inline]
pub(super) fn rows_of<T>(xs: &[T], w: usize, (a, b): (usize, usize)) -> &[T] {
    let end = (b * w).min(xs.len());
    &xs[(a * w).min(end)..end]
}

/// Step `t`'s row of the per-step inputs.
#[inline]
pub(super) fn row<T>(xs: &[T], w: usize, t: usize) -> &[T] {
    &xs[t * w..(t + 1) * w]
}

#[inline]
pub(super) fn check_len(name: &str, what: &str, t: usize, got: usize, want: usize) {
    assert!(
        got == want,
        "recurrence `{name}`: the {what} at t = {t} returned {got} values for a state of {want}"
    );
}

/// The small tape steps are recorded on, with its reusable buffers.
///
/// Layout: node 0 is the sink, nodes `1 ..= θ.len()` the parameters
/// (recorded once), then, for the block being recorded, the state's leaves
/// and, step after step, that step's input leaves and its own nodes. Between
/// blocks the tape is cut back to the parameters, keeping its memory.
pub(super) struct Scratch<T: Scalar> {
    tape: Tape<T>,
    params: Vec<T>,
    adj: Vec<T>,
    theta: Vec<Var<'static, T>>,
    cur: Vec<Var<'static, T>>,
    next: Vec<Var<'static, T>>,
    x: Vec<Var<'static, T>>,
    /// Node index of each recorded step's first input leaf.
    xpos: Vec<u32>,
    /// The next state, for the value step.
    vals: Vec<T>,
    /// The compiled step's buffers.
    pub(super) work: Work<T>,
    /// The traced inverse's buffers.
    pub(super) inv_work: Work<T>,
    /// A block's parameter adjoints (compiled step).
    pub(super) theta_adj: Vec<T>,
}

/// The step, and the value step if there is one.
#[derive(Clone, Copy)]
pub(super) struct Stepper<'a, T: Scalar> {
    pub(super) step: &'a StepFn<T>,
    pub(super) values: Option<&'a ValueFn<T>>,
    pub(super) name: &'a str,
    pub(super) program: Option<&'a Program<T>>,
}

/// Reuses a vector's allocation for `Var`s of another lifetime.
fn recycle<'a, 'b, T: Scalar>(v: Vec<Var<'a, T>>) -> Vec<Var<'b, T>> {
    let mut v = std::mem::ManuallyDrop::new(v);
    v.clear();
    let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: `Var<'a, T>` and `Var<'b, T>` differ only in a lifetime, so
    // they have the same layout; the vector is empty, so no value of the
    // old lifetime survives; the allocation is handed over exactly once.
    unsafe { Vec::from_raw_parts(ptr.cast::<Var<'b, T>>(), 0, cap) }
}

/// The scratch's four `Var` buffers (θ, state, next state, step inputs),
/// emptied and re-typed for a borrow of `tape`, with θ's leaves (nodes
/// `1..=θ.len()`) pushed into the first.
fn take_bufs<'s, T: Scalar>(
    tape: &'s Tape<T>,
    params: &[T],
    slots: [&mut Vec<Var<'static, T>>; 4],
) -> [Vec<Var<'s, T>>; 4] {
    let mut bufs = slots.map(|v| recycle(std::mem::take(v)));
    for (j, &v) in params.iter().enumerate() {
        bufs[0].push(Var {
            tape,
            idx: 1 + j as u32,
            val: v,
        });
    }
    bufs
}

/// Hands the buffers of [`take_bufs`] back, emptied, for the next block.
fn put_bufs<T: Scalar>(bufs: [Vec<Var<'_, T>>; 4], slots: [&mut Vec<Var<'static, T>>; 4]) {
    for (b, slot) in bufs.into_iter().zip(slots) {
        *slot = recycle(b);
    }
}

impl<T: Scalar> Scratch<T> {
    pub(super) fn new(params: &[T]) -> Self {
        let tape = Tape::with_capacity(64 + params.len());
        for &p in params {
            tape.var(p);
        }
        Scratch {
            tape,
            params: params.to_vec(),
            adj: Vec::new(),
            theta: Vec::new(),
            cur: Vec::new(),
            next: Vec::new(),
            x: Vec::new(),
            xpos: Vec::new(),
            vals: Vec::new(),
            work: Work::default(),
            inv_work: Work::default(),
            theta_adj: Vec::new(),
        }
    }

    /// Cuts the tape back to its parameter leaves (`&mut`: no `Var` of the
    /// previous block is alive).
    #[inline]
    fn reset(&mut self) {
        let base = 1 + self.params.len();
        self.tape.truncate_nodes(base);
        // a step may itself contain custom operations (a nested recurrence)
        self.tape.customs.get_mut().clear();
    }

    /// Runs steps `a..b` from the values in `s`, leaving the final state
    /// there; blocks of `k` steps are recorded unrolled. Before each step
    /// `t`, `visit(t, s_t)` may stop the run by returning `false`. Returns
    /// where it stopped.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &mut self,
        f: Stepper<'_, T>,
        s: &mut Vec<T>,
        xs: &[T],
        w: usize,
        a: usize,
        b: usize,
        k: usize,
        mut visit: impl FnMut(usize, &[T]) -> bool,
    ) -> usize {
        let ns = s.len();
        let mut t = a;
        if let Some(vf) = f.values {
            self.vals.clear();
            self.vals.resize(ns, T::zero());
            while t < b {
                if !visit(t, s) {
                    break;
                }
                vf(s, &self.params, row(xs, w, t), t, &mut self.vals);
                std::mem::swap(s, &mut self.vals);
                t += 1;
            }
            return t;
        }
        if let Some(prog) = f.program {
            while t < b {
                if !visit(t, s) {
                    break;
                }
                prog.values(&mut self.work, s, row(xs, w, t));
                t += 1;
            }
            return t;
        }
        let (name, f) = (f.name, f.step);
        while t < b {
            let end = b.min(t.saturating_add(k));
            self.reset();
            let tape = &self.tape;
            let [theta, mut cur, mut next, mut xv] = take_bufs(
                tape,
                &self.params,
                [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
            );
            cur.extend(s.iter().map(|&v| tape.var(v)));
            let mut stopped = false;
            while t < end {
                if !visit(t, s) {
                    stopped = true;
                    break;
                }
                xv.clear();
                xv.extend(row(xs, w, t).iter().map(|&v| tape.var(v)));
                next.clear();
                f(&cur, &theta, &xv, t, &mut next);
                check_len(name, "step", t, next.len(), ns);
                std::mem::swap(&mut cur, &mut next);
                s.clear();
                s.extend(cur.iter().map(|v| v.value()));
                t += 1;
            }
            put_bufs(
                [theta, cur, next, xv],
                [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
            );
            if stopped {
                break;
            }
        }
        t
    }

    /// The vector-Jacobian product of steps `a..b` from state `s` (at `a`):
    /// records them unrolled, seeds the final state with `lam`, sweeps
    /// once; `lam` becomes ∂/∂s_a, and ∂/∂θ and ∂/∂x_t are added into `g_p`
    /// and `g_x` (all rows; rows `a..b` are touched).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn vjp_steps(
        &mut self,
        f: &StepFn<T>,
        name: &str,
        s: &[T],
        xs: &[T],
        w: usize,
        a: usize,
        b: usize,
        lam: &mut [T],
        g_p: &mut [T],
        g_x: &mut [T],
    ) {
        self.reset();
        let ns = s.len();
        let np = self.params.len();
        let tape = &self.tape;
        let [theta, mut cur, mut next, mut xv] = take_bufs(
            tape,
            &self.params,
            [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
        );
        let s_first = 1 + np;
        cur.extend(s.iter().map(|&v| tape.var(v)));
        self.xpos.clear();
        for t in a..b {
            self.xpos.push(tape.len() as u32);
            xv.clear();
            xv.extend(row(xs, w, t).iter().map(|&v| tape.var(v)));
            next.clear();
            f(&cur, &theta, &xv, t, &mut next);
            check_len(name, "step", t, next.len(), ns);
            std::mem::swap(&mut cur, &mut next);
        }
        let top = cur.iter().map(|v| v.index()).max().unwrap_or(0);
        let adj = &mut self.adj;
        adj.clear();
        adj.resize(top + 1, T::zero());
        for (v, &g) in cur.iter().zip(lam.iter()) {
            adj[v.index()] += g;
        }
        if tape.customs_ref().is_empty() {
            // newest node first, down to the first state leaf (the
            // parameter leaves have no parents)
            let pc = tape.nodes_ref().partials_before(top + 1);
            sweep_range(tape, adj, 1 + np, top + 1, pc, false, &mut None, &mut []);
        } else {
            let seeds: Vec<(u32, T)> = cur
                .iter()
                .zip(lam.iter())
                .map(|(v, &g)| (v.index() as u32, g))
                .collect();
            sweep(tape, adj, &seeds, false);
        }
        let get = |i: usize| adj.get(i).copied().unwrap_or(T::zero());
        for (j, g) in g_p.iter_mut().enumerate() {
            *g += get(1 + j);
        }
        for (i, g) in lam.iter_mut().enumerate() {
            *g = get(s_first + i);
        }
        for (q, &first) in self.xpos.iter().enumerate() {
            let t = a + q;
            for (c, g) in g_x[t * w..(t + 1) * w].iter_mut().enumerate() {
                *g += get(first as usize + c);
            }
        }
        put_bufs(
            [theta, cur, next, xv],
            [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
        );
    }
}

impl<T: Scalar> Scratch<T> {
    /// [`Strategy::StoreAll`]'s reverse of steps `a..b` from their stored
    /// start state `s`: records them and sweeps once, so that every adjoint
    /// receives the same contributions in the same order, with the same
    /// roundings, as in one sweep of the whole recursion unrolled on a tape
    /// laid out as `[sink, θ, s_0, x rows, step 0, step 1, …]` (the layout
    /// of [`Recurrence::unroll`] on a tape holding θ, then `s_0`, then the
    /// per-step inputs). To that end the parameters' adjoints `lp` run on
    /// from block to block instead of restarting at 0, the block's nodes
    /// are contiguous as there, and the node before the block's first node
    /// stands for the one there: for `a = 0` the last state leaf (no
    /// per-step inputs), the only input row's last leaf (one row) or a leaf
    /// nothing points at; for `a > 0` the last state leaf, standing for the
    /// previous step's last node. `lam` is ∂/∂s_b on the way in and ∂/∂s_a
    /// on the way out; ∂/∂x of rows `a..b` is added into `g_x`.
    ///
    /// A difference remains, in the rounding of one addition, only where a
    /// step's first operation uses one state value twice (`s · s`) and that
    /// value is not the previous step's last node, or where two values of a
    /// step's output are the same node: two contributions are then added in
    /// another order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn vjp_unrolled(
        &mut self,
        f: &StepFn<T>,
        name: &str,
        s: &[T],
        xs: &[T],
        w: usize,
        (a, b): (usize, usize),
        rows: usize,
        lam: &mut [T],
        lp: &mut [T],
        g_x: &mut [T],
    ) {
        self.reset();
        let ns = s.len();
        let np = self.params.len();
        let tape = &self.tape;
        let [theta, mut cur, mut next, mut xv] = take_bufs(
            tape,
            &self.params,
            [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
        );
        // the leaf before the block's first node (see above)
        let one_row = a == 0 && w > 0 && rows == 1;
        let x_leaves = |t0: usize| {
            for &v in &xs[t0 * w..b * w] {
                tape.var(v);
            }
        };
        let mut x_first = tape.len();
        if !one_row {
            x_leaves(a);
        }
        let s_first = tape.len();
        cur.extend(s.iter().map(|&v| tape.var(v)));
        if one_row {
            x_first = tape.len();
            x_leaves(a);
        } else if a == 0 && w > 0 && rows > 0 {
            tape.var(T::zero());
        }
        let leaves_end = tape.len();
        for t in a..b {
            xv.clear();
            let first = x_first + (t - a) * w;
            for (j, &v) in row(xs, w, t).iter().enumerate() {
                xv.push(Var {
                    tape,
                    idx: (first + j) as u32,
                    val: v,
                });
            }
            next.clear();
            f(&cur, &theta, &xv, t, &mut next);
            check_len(name, "step", t, next.len(), ns);
            std::mem::swap(&mut cur, &mut next);
        }
        let top = cur.iter().map(|v| v.index()).max().unwrap_or(0);
        let adj = &mut self.adj;
        adj.clear();
        adj.resize((top + 1).max(leaves_end), T::zero());
        adj[1..=np].copy_from_slice(lp);
        for (v, &g) in cur.iter().zip(lam.iter()) {
            adj[v.index()] += g;
        }
        if tape.customs_ref().is_empty() {
            let pc = tape.nodes_ref().partials_before(top + 1);
            sweep_range(tape, adj, 1 + np, top + 1, pc, false, &mut None, &mut []);
        } else {
            sweep_from(tape, adj, top, false);
        }
        lp.copy_from_slice(&adj[1..=np]);
        lam.copy_from_slice(&adj[s_first..s_first + ns]);
        for (c, g) in g_x[a * w..b * w].iter_mut().enumerate() {
            *g += adj[x_first + c];
        }
        put_bufs(
            [theta, cur, next, xv],
            [&mut self.theta, &mut self.cur, &mut self.next, &mut self.x],
        );
    }
}
