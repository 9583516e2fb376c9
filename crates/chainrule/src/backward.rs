//! The backward pass: one reverse sweep over the tape.
//!
//! This file owns reverse accumulation. The adjoint of the output is seeded
//! with 1 (or a caller's seed); then, from the output's node down to the
//! first, every elementary node adds `adjoint × local partial` into each of
//! its two parents — the product rule hands each factor the other's value,
//! a sum passes the gradient through, and fan-out adds up because the
//! parents accumulate. Custom operations interrupt the sweep at their first
//! output: the caller's vector-Jacobian product turns their outputs'
//! adjoints into their inputs'.

use crate::scalar::Scalar;
use crate::tape::{NonFinite, Tape, Var, IN_BACKWARD};

/// The gradients of one output with respect to every node recorded before it.
///
/// Borrow of the tape: drop it (or copy out what you need with
/// [`Gradients::wrt_all`]) before [`Tape::clear`]. Its buffer goes back to
/// the tape on drop, so repeated backward passes do not allocate.
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
        let tape = self.tape;
        let mut adj = tape.adj_cache.take();
        sweep(tape, &mut adj, &[(self.idx, seed)], false);
        Gradients { tape, adj }
    }

    /// Like [`Var::backward`], but fails if a forward value recorded while
    /// checking was on ([`Tape::set_check_finite`]) was NaN or infinite, or
    /// if a gradient became so; the error names the first operation.
    pub fn try_backward(&self) -> Result<Gradients<'t, T>, NonFinite> {
        let tape = self.tape;
        if let Some(bad) = tape.first_non_finite() {
            return Err(bad);
        }
        let mut adj = tape.adj_cache.take();
        let bad = sweep(tape, &mut adj, &[(self.idx, T::one())], true);
        let grads = Gradients { tape, adj };
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
    let mut adj = tape.adj_cache.take();
    sweep(tape, &mut adj, &pairs, false);
    Gradients { tape, adj }
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

/// The reverse sweep. `adj` is resized to cover the highest seeded node and
/// zeroed; returns the first non-finite gradient if `check`.
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
    let flags = tape.flags.get();
    assert!(
        flags & IN_BACKWARD == 0,
        "backward pass started during another on the same tape"
    );
    tape.flags.set(flags | IN_BACKWARD);
    // Restores the flags even if a custom vjp panics.
    struct Reset<'a, T: Scalar>(&'a Tape<T>, u8);
    impl<T: Scalar> Drop for Reset<'_, T> {
        fn drop(&mut self) {
            self.0.flags.set(self.1);
        }
    }
    let _reset = Reset(tape, flags);
    let nodes = tape.nodes_ref();
    let customs = tape.customs_ref();
    debug_assert!(top < nodes.len());
    let mut bad: Option<NonFinite> = None;
    let mut hi = top + 1;
    let mut in_grad = tape.scratch.take();
    for c in customs.iter().rev() {
        let first = c.first_output as usize;
        if first >= hi {
            continue;
        }
        let end = first + c.n_outputs as usize;
        sweep_range(nodes, adj, end.min(hi), hi, check, tape, &mut bad);
        // Outputs of this op above `top` have zero adjoint (not in `adj`).
        let seen = end.min(hi);
        let out_grad = &adj[first..seen];
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
                    });
                }
                adj[p as usize] += g;
            }
        }
        hi = first;
    }
    sweep_range(nodes, adj, 1, hi, check, tape, &mut bad);
    tape.scratch.set(in_grad);
    bad
}

/// Reverse sweep over elementary nodes `lo..hi` (none of them custom outputs).
#[inline]
pub(crate) fn sweep_range<T: Scalar>(
    nodes: &[crate::tape::Node<T>],
    adj: &mut [T],
    lo: usize,
    hi: usize,
    check: bool,
    tape: &Tape<T>,
    bad: &mut Option<NonFinite>,
) {
    if hi <= lo {
        return;
    }
    assert!(hi <= nodes.len() && hi <= adj.len());
    if !check {
        // The adjoint flowing to node i-1 (the most common parent: chains
        // of operations) is carried in a register instead of through memory,
        // which takes a store-to-load round trip off the critical path.
        let mut carry = T::zero();
        for i in (lo..hi).rev() {
            // SAFETY: i < hi <= len(adj), len(nodes); parents of node i are
            // indices < i (a node is recorded after its operands, and
            // operands from another tape are rejected when recording).
            unsafe {
                let a = *adj.get_unchecked(i) + carry;
                carry = T::zero();
                // the final adjoint of node i is read by `Gradients::wrt`
                *adj.get_unchecked_mut(i) = a;
                if a.is_zero() {
                    continue;
                }
                let n = nodes.get_unchecked(i);
                let [p0, p1] = n.parents;
                let (g0, g1) = (a * n.partials[0], a * n.partials[1]);
                let prev = (i - 1) as u32;
                if p0 == prev {
                    carry += g0;
                } else {
                    *adj.get_unchecked_mut(p0 as usize) += g0;
                }
                if p1 == prev {
                    carry += g1;
                } else {
                    *adj.get_unchecked_mut(p1 as usize) += g1;
                }
            }
        }
        if lo > 0 && !carry.is_zero() {
            adj[lo - 1] += carry;
        }
    } else {
        for i in (lo..hi).rev() {
            let a = adj[i];
            if a.is_zero() {
                continue;
            }
            let n = nodes[i];
            for k in 0..2 {
                let g = a * n.partials[k];
                if bad.is_none() && a.is_finite() && !g.is_finite() {
                    *bad = Some(NonFinite {
                        node: i,
                        op: tape.op_name(i),
                        value: g.to_f64(),
                        in_backward: true,
                    });
                }
                adj[n.parents[k] as usize] += g;
            }
        }
    }
}
