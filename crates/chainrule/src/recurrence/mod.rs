//! Long recursions with bounded-memory reverse passes.
//!
//! A recursion `s_{t+1} = step(s_t, θ, x_t, t)` of `N` steps, unrolled onto
//! a [`Tape`], costs a few nodes per step: its reverse pass needs memory
//! that grows with `N`. [`Recurrence`] records the whole recursion on the
//! outer tape as **one** custom operation (inputs `s_0`, `θ` and the
//! per-step inputs `x_0 … x_{N-1}`; outputs `s_N`), so it composes with any
//! code before and after it, and reverses it with a [`Strategy`] chosen by
//! the caller:
//!
//! | strategy | memory | step evaluations |
//! |---|---|---|
//! | [`Strategy::StoreAll`] | the unrolled tape up to [`STORE_ALL_TAPE_BYTES`], beyond that every state: `O(N)` | `N` forward, one sweep (beyond: + `N` in VJPs) |
//! | [`Strategy::Checkpoint`] | `c + 1` states, `c = 2⌈log₂(N / K)⌉` by default: `O(log N)` | `ρ·N` forward (ρ ≈ 2–6, see [`RecurrenceStats::recompute_factor`]) + `N` in VJPs |
//! | [`Strategy::Invert`] | one state, independent of `N` | `N` forward + `N` inverse + `N` in VJPs |
//!
//! plus a scratch tape of `K` steps' nodes.
//!
//! The step is ordinary Rust on [`Var`]s. Every strategy works in blocks
//! of `K` steps ([`Recurrence::block`], default 32): from the state at the
//! start of a block the reverse pass records the block's steps, unrolled, on
//! a small scratch tape (cut back and reused: no allocation per step), seeds
//! the block's final state with the incoming gradient and sweeps it once. So
//! every strategy gives the gradient of the fully unrolled tape up to
//! rounding ([`Recurrence::unroll`] records that tape, for comparison);
//! `K = 1` gives the textbook strategies step by step. Keeping only the
//! state at the start of every block and recording each block once more in
//! the reverse pass (`⌈N / K⌉` states; `N` forward steps + `N` in VJPs, no
//! recomputation) is [`Strategy::Checkpoint`] with
//! `snapshots: Some(⌈N / K⌉)`. [`Strategy::StoreAll`] records a short
//! recursion (up to [`STORE_ALL_TAPE_BYTES`] of nodes, known `N`) whole on a
//! tape of its own and sweeps it once; a longer one keeps every state
//! (as a compiled loop's reverse pass does), records each block once from
//! its stored start state, and carries the parameters' adjoints from block
//! to block, so that its gradient is, bit for bit, the one sweep of the
//! whole unrolled tape, but for the rounding of one addition where a
//! step's first operation uses one state value twice (`s · s`) and that
//! value is not the previous step's last node, or where two values of a
//! step's output are the same node (two contributions are then added in
//! another order). It used to keep that whole tape, every step's nodes
//! and partials (about 200 bytes a step for alpha compositing, against 16
//! for its two states).
//!
//! Every strategy evaluates the step forward (in the forward pass and in
//! recomputations) by recording it on the scratch tape and reading the
//! values, unless a plain-value twin of the step is given with
//! [`Recurrence::values`].
//!
//! A step declared [`Recurrence::compiled`] (no branch on values or on
//! `t`) is recorded once and compiled into an instruction list; every strategy then replays it instead of recording the
//! closure (the forward pass too, without a twin), with the same gradient
//! bit for bit, and store-all keeps every step's partials (a tape without
//! heads) when they fit [`Recurrence::store_all_budget`] or take no more
//! room than the states (a step that saves no more values than its state
//! holds: values made of θ and the input row are recomputed by the sweep,
//! so alpha compositing saves one), else the states.
//!
//! # Checkpointing
//!
//! With `N` known ([`Recurrence::steps`]) the reverse pass follows binomial
//! checkpointing (Griewank's *revolve*): with `c` snapshots and at most `r`
//! recomputations of any step, `β(c, r) = C(c + r, c)` steps can be
//! reversed, and the split points chosen here minimise the total number of
//! recomputed steps. The snapshots of the first descent are taken during the
//! forward pass itself. When the recursion stops on a condition
//! ([`Recurrence::until`]) and `N` is not known in advance, the forward pass
//! keeps snapshots at a spacing that doubles whenever they exceed their
//! budget (online thinning); each segment between two snapshots is then
//! reversed binomially.
//!
//! The step must be a pure, deterministic function of its arguments:
//! recomputation then reproduces every state bit for bit.
//!
//! # Inversion and its drift
//!
//! [`Strategy::Invert`] stores nothing: walking back from `s_N` it recovers
//! `s_t = inverse(s_{t+1}, θ, x_t, t)`. In floating point the recovered
//! state is not exactly the one the forward pass saw: each inverse step adds
//! a rounding error of about one ulp and *amplifies* the error already
//! present by the inverse step's Jacobian, `‖∂s_t/∂s_{t+1}‖`. For alpha
//! compositing, `T_t = T_{t+1} / (1 − α_t)` multiplies the relative error of
//! `T` by nothing (division is exact to half an ulp), but the absolute error
//! of the running colour grows like `Σ 1/(1 − α)`; and once `T` underflows
//! or `1 − α` rounds to 0 the inversion loses everything. Gaussian-splatting
//! renderers bound it the same way as here: clamp `α ≤ 0.99` (the inverse
//! amplifies by at most 100 per step) and stop compositing once
//! `T < 1e-4` (so the walk back is short). In general: keep the inverse's
//! Jacobian near 1, keep `N` moderate, or use [`Strategy::Checkpoint`],
//! which reproduces the forward states exactly. The drift can be measured by
//! comparing [`Strategy::Invert`] with [`Strategy::StoreAll`] on typical
//! inputs (the tests do so).
//!
//! ```
//! use chainrule::{Recurrence, Strategy, Tape};
//! // s ← s·a + sin(s)·b for 1000 steps, as one operation on the tape
//! let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
//!     .steps(1000)
//!     .strategy(Strategy::Checkpoint { snapshots: None });
//! let tape = Tape::new();
//! let s0 = tape.var(0.5);
//! let ab = tape.vars(&[0.9, 0.1]);
//! let out = rec.apply(&[s0], &ab, &[]);
//! let loss = out.state[0].square(); // composes with code after it
//! let g = loss.backward();
//!
//! // the same gradient as the unrolled tape (4 nodes per step)
//! let tape2 = Tape::new();
//! let (t0, tab) = (tape2.var(0.5), tape2.vars(&[0.9, 0.1]));
//! let unrolled = rec.unroll(&[t0], &tab, &[]);
//! let g2 = unrolled.state[0].square().backward();
//! let rel = (g.wrt(ab[0]) - g2.wrt(tab[0])).abs() / g2.wrt(tab[0]).abs();
//! assert!(rel < 1e-12);
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::backward::{sweep, sweep_from, sweep_range};
use crate::compiled::{Program, Work};
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};
use crate::traced::{trace_inverse, TracedFn};

mod revolve;
mod scratch;
mod trajectory;

use revolve::*;
use scratch::*;
pub use trajectory::Trajectory;
use trajectory::*;

/// A step of a recursion, written with [`Var`]s:
/// `step(state, params, x, t, next)` pushes the `state.len()` values of
/// `s_{t+1}` onto `next` (which it receives empty). `params` is `θ`, shared
/// by every step; `x` is this step's slice of the per-step inputs (empty
/// unless [`Recurrence::inputs_per_step`] was set).
pub type StepFn<T> = dyn for<'s> Fn(&[Var<'s, T>], &[Var<'s, T>], &[Var<'s, T>], usize, &mut Vec<Var<'s, T>>)
    + Send
    + Sync;

/// An inverse step on plain values: `inverse(next, params, x, t, prev)`
/// writes `s_t` into `prev` given `next = s_{t+1}`.
pub type InverseFn<T> = dyn Fn(&[T], &[T], &[T], usize, &mut [T]) + Send + Sync;

/// The step on plain values (see [`Recurrence::values`]):
/// `values(state, params, x, t, next)` writes `s_{t+1}` into `next`.
pub type ValueFn<T> = dyn Fn(&[T], &[T], &[T], usize, &mut [T]) + Send + Sync;

/// A stopping condition on the state's values: `until(s_t, t)` is checked
/// before step `t`; the recursion stops (with `N = t`) when it is true.
pub type UntilFn<T> = dyn Fn(&[T], usize) -> bool + Send + Sync;

/// How a [`Recurrence`] is reversed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Keep the whole unrolled tape (for a compiled step, every step's
    /// partials) if it fits the budget ([`STORE_ALL_TAPE_BYTES`] unless
    /// [`Recurrence::store_all_budget`] says otherwise; one sweep back) or,
    /// for a compiled step, if its partials take no more room than the
    /// states; else every state of the forward pass, the reverse pass
    /// recording (or replaying) each block of steps once from its stored
    /// start state.
    /// No recomputation; `O(N)` memory, `N` states. Its gradient is that of
    /// one sweep of the fully unrolled tape, bit for bit (see the module
    /// documentation).
    StoreAll,
    /// Binomial checkpointing: keep `snapshots` states and recompute the
    /// rest. Snapshots are taken at block boundaries and the binomial
    /// schedule runs over blocks. `None` chooses `2⌈log₂ B⌉` (at least 2)
    /// for `B = ⌈N / block⌉` blocks when `N` is known, and a budget that
    /// grows as `max(8, ⌈log₂ (t / block)⌉)` while an open-ended recursion
    /// runs. Memory `O(log N)` states.
    Checkpoint {
        /// Number of snapshots (at least 1), or `None` for automatic.
        snapshots: Option<usize>,
    },
    /// Recover each state from the next with the inverse step given to
    /// [`Recurrence::inverse`]: memory independent of `N`. See the module
    /// documentation for its numerical drift.
    Invert,
}

/// What one reverse pass did, for cost accounting: returned by
/// [`Trajectory::backward`], and after a sweep through
/// [`Recurrence::apply`]'s output by [`RecurrenceOutput::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecurrenceStats {
    /// Steps of the recursion, `N`.
    pub steps: usize,
    /// Forward steps evaluated again during the reverse pass.
    pub recomputed: usize,
    /// Inverse steps evaluated during the reverse pass.
    pub inverted: usize,
    /// Steps whose vector-Jacobian product was taken (always `N`).
    pub vjps: usize,
    /// The most states held at once (stored by the forward pass plus those
    /// the reverse pass held), each of `state.len()` scalars.
    pub peak_states: usize,
}

impl RecurrenceStats {
    /// Forward step evaluations per step, counting the forward pass:
    /// `(N + recomputed) / N` (1 for store-all and invert; 1 when `N = 0`).
    pub fn recompute_factor(&self) -> f64 {
        if self.steps == 0 {
            1.0
        } else {
            (self.steps + self.recomputed) as f64 / self.steps as f64
        }
    }
}

/// A recursion `s_{t+1} = step(s_t, θ, x_t, t)` and how to reverse it.
///
/// Built with [`Recurrence::new`] and its builder methods; run on a tape
/// with [`Recurrence::apply`] (one custom operation), or unrolled node by
/// node with [`Recurrence::unroll`]. [`Recurrence::forward`] and
/// [`Trajectory::backward`] are the same machinery on plain numbers, without
/// an outer tape. Cloning is cheap (the closures are shared).
///
/// The length is fixed with [`Recurrence::steps`], set by a stopping
/// condition with [`Recurrence::until`], or (with per-step inputs) is the
/// number of input rows.
pub struct Recurrence<T: Scalar = f64> {
    step: Arc<StepFn<T>>,
    inverse: Option<Arc<InverseFn<T>>>,
    traced_inverse: Option<Arc<TracedFn<T>>>,
    values: Option<Arc<ValueFn<T>>>,
    until: Option<Arc<UntilFn<T>>>,
    steps: Option<usize>,
    max_steps: usize,
    width: usize,
    block: usize,
    strategy: Strategy,
    name: String,
    /// Bytes up to which [`Strategy::StoreAll`] keeps the whole unrolled
    /// tape rather than the states ([`STORE_ALL_TAPE_BYTES`]).
    tape_budget: usize,
    /// Declared by [`Recurrence::compiled`].
    compiled: bool,
}

/// Up to this many bytes of nodes (4 MiB, about a core's L2 cache),
/// [`Strategy::StoreAll`] keeps the whole recursion's tape and sweeps it
/// once; beyond (or when `N` is not known in advance) it keeps only the
/// states and records each block once more in the reverse pass (unless
/// the step is compiled and saves no more values than its state holds:
/// then its partials are kept at any length). All give the same
/// gradient, bit for bit.
pub const STORE_ALL_TAPE_BYTES: usize = 4 << 20;

/// Steps recorded together on the scratch tape by default.
pub const DEFAULT_BLOCK: usize = 32;

impl<T: Scalar> Clone for Recurrence<T> {
    fn clone(&self) -> Self {
        Recurrence {
            step: self.step.clone(),
            inverse: self.inverse.clone(),
            traced_inverse: self.traced_inverse.clone(),
            values: self.values.clone(),
            until: self.until.clone(),
            steps: self.steps,
            max_steps: self.max_steps,
            width: self.width,
            block: self.block,
            strategy: self.strategy,
            name: self.name.clone(),
            tape_budget: self.tape_budget,
            compiled: self.compiled,
        }
    }
}

impl<T: Scalar> std::fmt::Debug for Recurrence<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recurrence")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("steps", &self.steps)
            .field("max_steps", &self.max_steps)
            .field("inputs_per_step", &self.width)
            .field("block", &self.block)
            .field("invertible", &self.inverse.is_some())
            .field("traced_inverse", &self.traced_inverse.is_some())
            .field("value_step", &self.values.is_some())
            .field("until", &self.until.is_some())
            .field("compiled", &self.compiled)
            .finish()
    }
}

/// The result of [`Recurrence::apply`] or [`Recurrence::unroll`].
#[derive(Clone, Debug)]
pub struct RecurrenceOutput<'t, T: Scalar = f64> {
    /// The final state `s_N`, recorded on the caller's tape.
    pub state: Vec<Var<'t, T>>,
    /// The number of steps taken, `N`.
    pub steps: usize,
    /// What the latest reverse pass did, set by the custom operation's
    /// backward ([`RecurrenceOutput::stats`]).
    stats: Rc<Cell<Option<RecurrenceStats>>>,
}

impl<T: Scalar> RecurrenceOutput<'_, T> {
    /// What the reverse pass of [`Recurrence::apply`] did (steps recomputed
    /// or inverted, the most states held), once a backward sweep through
    /// the output has run it; after several sweeps, the latest. `None`
    /// before any sweep reached it (a sweep whose gradient at the output is
    /// zero skips the operation, and leaves it as it was), and always for
    /// [`Recurrence::unroll`], whose steps are ordinary nodes of the tape.
    /// Clones share the report.
    ///
    /// ```
    /// use chainrule::{Recurrence, Strategy, Tape};
    /// let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin()))
    ///     .steps(1000)
    ///     .strategy(Strategy::Checkpoint { snapshots: None });
    /// let tape = Tape::new();
    /// let (s0, a) = (tape.var(0.5), tape.var(0.9));
    /// let out = rec.apply(&[s0], &[a], &[]);
    /// assert_eq!(out.stats(), None);
    /// out.state[0].backward();
    /// let st = out.stats().unwrap();
    /// assert_eq!((st.steps, st.vjps), (1000, 1000));
    /// assert!(st.recompute_factor() > 1.0 && st.peak_states < 100);
    /// ```
    pub fn stats(&self) -> Option<RecurrenceStats> {
        self.stats.get()
    }
}

impl Recurrence<f64> {
    /// A recursion over `f64` with this step (see [`StepFn`]), reversed by
    /// [`Strategy::StoreAll`] unless [`Recurrence::strategy`] says otherwise.
    /// For another scalar use [`Recurrence::with_step`].
    ///
    /// ```
    /// use chainrule::Recurrence;
    /// // alpha compositing: state (T, C), per-step inputs (c_i, α_i)
    /// let rec = Recurrence::new(|s, _p, x, _t, next| {
    ///     let (t, c) = (s[0], s[1]);
    ///     next.push(t * (1.0 - x[1]));
    ///     next.push(c + x[0] * x[1] * t);
    /// })
    /// .inputs_per_step(2);
    /// let traj = rec.forward(&[1.0, 0.0], &[], &[0.5, 0.5, 1.0, 0.5]);
    /// assert_eq!(traj.state(), &[0.25, 0.5]); // C = 0.5·0.5 + 1·0.5·0.5
    /// ```
    pub fn new<F>(step: F) -> Self
    where
        F: for<'s> Fn(
                &[Var<'s, f64>],
                &[Var<'s, f64>],
                &[Var<'s, f64>],
                usize,
                &mut Vec<Var<'s, f64>>,
            ) + Send
            + Sync
            + 'static,
    {
        Self::with_step(step)
    }
}

impl<T: Scalar> Recurrence<T> {
    /// A recursion over any [`Scalar`] with this step:
    /// `Recurrence::<f32>::with_step(..)`. (Fixing the type in
    /// [`Recurrence::new`] lets closures infer their types unannotated.)
    pub fn with_step<F>(step: F) -> Self
    where
        F: for<'s> Fn(&[Var<'s, T>], &[Var<'s, T>], &[Var<'s, T>], usize, &mut Vec<Var<'s, T>>)
            + Send
            + Sync
            + 'static,
    {
        Recurrence {
            step: Arc::new(step),
            inverse: None,
            traced_inverse: None,
            values: None,
            until: None,
            steps: None,
            max_steps: usize::MAX,
            width: 0,
            block: DEFAULT_BLOCK,
            strategy: Strategy::StoreAll,
            name: "recurrence".into(),
            tape_budget: STORE_ALL_TAPE_BYTES,
            compiled: false,
        }
    }

    /// Runs exactly `n` steps (unless a stopping condition ends it sooner).
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = Some(n);
        self
    }

    /// Stops before step `t` when `until(s_t, t)` holds, or after
    /// `max_steps` steps (or when the per-step inputs run out). `N` is then
    /// not known in advance; checkpointing thins its snapshots online.
    ///
    /// ```
    /// use chainrule::{Recurrence, Strategy};
    /// // halve until below 1e-3: 10 steps from 1
    /// let rec = Recurrence::new(|s, _p, _x, _t, next| next.push(s[0] * 0.5))
    ///     .until(|s, _t| s[0] < 1e-3, 1000)
    ///     .strategy(Strategy::Checkpoint { snapshots: None });
    /// let traj = rec.forward(&[1.0], &[], &[]);
    /// assert_eq!(traj.steps(), 10);
    /// ```
    pub fn until<F>(mut self, until: F, max_steps: usize) -> Self
    where
        F: Fn(&[T], usize) -> bool + Send + Sync + 'static,
    {
        self.until = Some(Arc::new(until));
        self.max_steps = max_steps;
        self
    }

    /// Each step reads `width` per-step inputs: step `t` receives
    /// `xs[t·width .. (t+1)·width]` as its `x` argument (like `lax.scan`'s
    /// `xs`). Without [`Recurrence::steps`] or [`Recurrence::until`], `N` is
    /// `xs.len() / width`.
    pub fn inputs_per_step(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Steps recorded together on the scratch tape by [`Strategy::Checkpoint`]
    /// and [`Strategy::Invert`] (default [`DEFAULT_BLOCK`] = 32): their
    /// reverse pass records a block of `block` steps unrolled and sweeps it
    /// once, which amortises the per-step bookkeeping; the scratch tape then
    /// holds `block` steps' nodes. Checkpoints are taken at block
    /// boundaries. Gradients do not depend on it beyond rounding
    /// ([`Strategy::StoreAll`]'s not at all).
    ///
    /// # Panics
    /// If `block` is 0.
    pub fn block(mut self, block: usize) -> Self {
        assert!(
            block >= 1,
            "recurrence `{}`: block must be at least 1",
            self.name
        );
        self.block = block;
        self
    }

    /// Chooses the reverse strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The inverse step, `s_t = inverse(s_{t+1}, θ, x_t, t)`, needed by
    /// [`Strategy::Invert`]: on plain values, it writes `s_t` into its last
    /// argument (see [`InverseFn`]). Only values are needed on the way
    /// back; the step's derivatives still come from the step itself.
    pub fn inverse<F>(mut self, inverse: F) -> Self
    where
        F: Fn(&[T], &[T], &[T], usize, &mut [T]) + Send + Sync + 'static,
    {
        self.inverse = Some(Arc::new(inverse));
        self
    }

    /// The inverse step as plain arithmetic on [`Traced`](crate::Traced)
    /// values, for [`Strategy::Invert`]: `f(next, params, x, prev)` pushes
    /// the values of `s_t` onto `prev` from `next = s_{t+1}`. It is run
    /// once, on no values, to trace its operations (`+ − × ÷`, constants,
    /// `√ exp ln sin tanh`), which are then replayed at every step by an
    /// instruction-list interpreter or, for `f64` and `f32` with the
    /// `jit` feature, as native code over a whole block of steps. The
    /// arithmetic is the plain number type's (`a / b` is one division),
    /// so a traced inverse gives the bits of the same closure written on
    /// plain numbers for [`Recurrence::inverse`]. It has no `t`: the same
    /// operations run at every step.
    ///
    /// With both inverses given (they must compute the same bits), the
    /// traced one runs where it is native code and the closure otherwise.
    ///
    /// ```
    /// use chainrule::{Recurrence, Strategy};
    /// // alpha compositing, inverted: T_t = T_{t+1} / (1 - α_t)
    /// let rec = Recurrence::new(|s, _p, x, _t, next| {
    ///     next.push(s[0] * (1.0 - x[1]));
    ///     next.push(s[1] + x[0] * x[1] * s[0]);
    /// })
    /// .inputs_per_step(2)
    /// .strategy(Strategy::Invert)
    /// .traced_inverse(|next, _p, x, prev| {
    ///     let t = next[0] / (1.0 - x[1]);
    ///     prev.push(t);
    ///     prev.push(next[1] - x[0] * x[1] * t);
    /// });
    /// let xs = [0.5, 0.5, 1.0, 0.5];
    /// let traj = rec.forward(&[1.0, 0.0], &[], &xs);
    /// let (mut gs, mut gx) = ([0.0; 2], [0.0; 4]);
    /// traj.backward(&xs, &[0.0, 1.0], &mut gs, &mut [], &mut gx);
    /// assert_eq!(gx, [0.5, 0.0, 0.25, 0.5]); // ∂C/∂(c₀, α₀, c₁, α₁)
    /// ```
    pub fn traced_inverse<F>(mut self, f: F) -> Self
    where
        F: for<'s> Fn(
                &[crate::Traced<'s, T>],
                &[crate::Traced<'s, T>],
                &[crate::Traced<'s, T>],
                &mut Vec<crate::Traced<'s, T>>,
            ) + Send
            + Sync
            + 'static,
    {
        self.traced_inverse = Some(Arc::new(f));
        self
    }

    /// The same step on plain values, optional: the forward pass and the
    /// recomputations of checkpointing then call it instead of recording
    /// the step on the scratch tape, which roughly halves the cost of
    /// [`Strategy::Invert`] and of checkpointing's recomputations (the
    /// reverse pass still records the `Var` step to differentiate it).
    /// [`Strategy::StoreAll`]'s forward pass calls it too. It must compute the same function as the step, with
    /// the same operations in the same order, so that the states agree bit
    /// for bit (then the gradients are exactly those without it; a mismatch
    /// of a rounding error shifts them by about as much).
    ///
    /// ```
    /// use chainrule::Recurrence;
    /// let rec = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
    ///     .values(|s, p, _x, _t, next| next[0] = s[0] * p[0] + s[0].sin() * p[1])
    ///     .steps(100);
    /// let plain = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
    ///     .steps(100);
    /// let (a, b) = (rec.forward(&[0.5], &[0.9, 0.1], &[]), plain.forward(&[0.5], &[0.9, 0.1], &[]));
    /// assert_eq!(a.state(), b.state());
    /// ```
    pub fn values<F>(mut self, values: F) -> Self
    where
        F: Fn(&[T], &[T], &[T], usize, &mut [T]) + Send + Sync + 'static,
    {
        self.values = Some(Arc::new(values));
        self
    }

    /// Declares that the step records the same operations, on the same
    /// operands, with the same constants, at every step `t` and for every
    /// state and input: no branch on values or on `t`. The step is then
    /// recorded once and compiled into an instruction list that every strategy's reverse pass (and the forward
    /// pass, without [`Recurrence::values`]) replays instead of recording
    /// the closure: the same operations in the same order, so the
    /// gradient is the same, bit for bit, several times faster.
    ///
    /// For `f64` and `f32` on x86-64 and AArch64 the instruction list is
    /// also turned into machine code (Cranelift, the default `jit`
    /// feature), which then runs the reverse passes and the forward pass
    /// of store-all and inversion (in place of [`Recurrence::values`]):
    /// the same IEEE operations in the same order and the same library
    /// calls for `exp`, `ln`, `sin`, …, so again the same bits (NaNs
    /// aside, whose payload Rust does not fix).
    /// [`Trajectory::is_native`] tells whether it ran; the environment
    /// variable `CHAINRULE_JIT=0` turns it off.
    ///
    /// The declaration is checked where it is cheap: the step is recorded
    /// at the first, the second, the middle and the last step and the
    /// recordings must agree (else the forward pass panics, naming the
    /// recurrence). This catches a step that branches on `t`'s parity or
    /// on a value that changes over the run, not every false declaration:
    /// a step that differs only at other steps runs as the first one. A step
    /// that cannot be compiled (an operation the compiler does not know,
    /// such as `powf` or `min`; a custom operation or a leaf inside the
    /// step; a first operation that uses one value twice; a next state
    /// that repeats a value or passes an input on unchanged) runs as
    /// without the declaration; [`Trajectory::is_compiled`] tells which.
    ///
    /// ```
    /// use chainrule::Recurrence;
    /// let plain = Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
    ///     .steps(1000);
    /// let fast = plain.clone().compiled();
    /// let (a, b) = (plain.forward(&[0.5], &[0.9, 0.1], &[]), fast.forward(&[0.5], &[0.9, 0.1], &[]));
    /// assert!(b.is_compiled());
    /// let (mut ga, mut gb) = ([[0.0]; 2], [[0.0; 2]; 2]);
    /// a.backward(&[], &[1.0], &mut ga[0], &mut gb[0], &mut []);
    /// b.backward(&[], &[1.0], &mut ga[1], &mut gb[1], &mut []);
    /// assert_eq!(ga[0][0].to_bits(), ga[1][0].to_bits());
    /// assert_eq!(gb[0], gb[1]);
    /// ```
    pub fn compiled(mut self) -> Self {
        self.compiled = true;
        self
    }

    /// Bytes up to which [`Strategy::StoreAll`] keeps the whole recursion
    /// recorded (the unrolled tape, or for a compiled step its partials
    /// alone, a tape without heads) and sweeps it once, rather than only
    /// the states; default [`STORE_ALL_TAPE_BYTES`]. The gradient is the
    /// same either way, bit for bit; a larger budget trades memory for the
    /// block re-evaluations of the reverse pass. A compiled step that
    /// saves no more values than its state holds keeps its partials at
    /// any length, whatever the budget: they take no more memory than the
    /// states would.
    pub fn store_all_budget(mut self, bytes: usize) -> Self {
        self.tape_budget = bytes;
        self
    }

    /// The custom operation's name on the tape (graph exports, error
    /// messages). Default `"recurrence"`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The strategy in use.
    pub fn get_strategy(&self) -> Strategy {
        self.strategy
    }

    /// The most steps this recursion may take with `n_xs` per-step input
    /// values.
    fn step_limit(&self, n_xs: usize) -> usize {
        let from_xs = if self.width > 0 {
            assert!(
                n_xs % self.width == 0,
                "recurrence `{}`: {} per-step input values is not a multiple of inputs_per_step = {}",
                self.name,
                n_xs,
                self.width
            );
            Some(n_xs / self.width)
        } else {
            assert!(
                n_xs == 0,
                "recurrence `{}`: {} per-step input values given but inputs_per_step is 0",
                self.name,
                n_xs
            );
            None
        };
        let limit = match (self.steps, from_xs) {
            (Some(n), Some(m)) => {
                assert!(
                    n <= m,
                    "recurrence `{}`: {} steps need {} per-step input values, got {}",
                    self.name,
                    n,
                    n * self.width,
                    n_xs
                );
                n
            }
            (Some(n), None) => n,
            (None, Some(m)) => m,
            (None, None) => {
                assert!(
                    self.until.is_some(),
                    "recurrence `{}`: set its length with steps(n), until(..) or inputs_per_step(..)",
                    self.name
                );
                usize::MAX
            }
        };
        if self.until.is_some() {
            limit.min(self.max_steps)
        } else {
            limit
        }
    }

    /// Runs the recursion on plain numbers and keeps what the strategy needs
    /// to reverse it. `xs` holds the per-step inputs, row after row; it is
    /// not kept (pass it again to [`Trajectory::backward`]).
    ///
    /// # Panics
    /// If the step returns a state of another length than `s0`, if `xs`
    /// does not fit [`Recurrence::inputs_per_step`], if the length of the
    /// recursion is not set, or if [`Strategy::Invert`] has no inverse.
    pub fn forward(&self, s0: &[T], params: &[T], xs: &[T]) -> Trajectory<T> {
        self.forward_with(s0, params, xs, Vec::new())
    }

    /// [`Recurrence::forward`], reusing the memory of a trajectory that is
    /// no longer needed (its stored states or partials), as a training
    /// loop reuses a cleared tape: no new allocation, no first touch of
    /// fresh pages.
    ///
    /// ```
    /// use chainrule::Recurrence;
    /// let rec = Recurrence::new(|s, _p, _x, _t, next| next.push(s[0] * 0.5)).steps(100);
    /// let mut traj = rec.forward(&[1.0], &[], &[]);
    /// for k in 0..3 {
    ///     traj = rec.forward_reusing(traj, &[k as f64], &[], &[]);
    ///     assert_eq!(traj.state()[0], k as f64 * 0.5f64.powi(100));
    /// }
    /// ```
    pub fn forward_reusing(
        &self,
        old: Trajectory<T>,
        s0: &[T],
        params: &[T],
        xs: &[T],
    ) -> Trajectory<T> {
        let spare = match old.store {
            Store::Partials(v) | Store::States { states: v, .. } => v,
            _ => Vec::new(),
        };
        self.forward_with(s0, params, xs, spare)
    }

    /// [`Recurrence::forward`] with `spare` memory for the stored states or
    /// partials.
    fn forward_with(&self, s0: &[T], params: &[T], xs: &[T], mut spare: Vec<T>) -> Trajectory<T> {
        spare.clear();
        // the traced inverse: native code, or the only inverse given
        // (its code checked on the first row, or a row of zeros when there
        // is none: a recursion of no steps)
        let inverse = match (&self.traced_inverse, self.strategy) {
            (Some(f), Strategy::Invert) => {
                match trace_inverse(&**f, params.len(), s0.len(), self.width) {
                    Ok(p) => {
                        let w = self.width;
                        let zeros = vec![T::zero(); if xs.len() < w { w } else { 0 }];
                        let first = if xs.len() < w {
                            &zeros[..]
                        } else {
                            row(xs, w, 0)
                        };
                        Some(p.with_native(s0, params, first))
                    }
                    Err(e) => panic!("recurrence `{}`: {e}", self.name),
                }
            }
            _ => None,
        }
        .filter(|p| p.is_native() || self.inverse.is_none());
        let finish = |steps, last, store, mut sc: Scratch<T>, program| Trajectory {
            rec: self.clone(),
            params: params.to_vec(),
            s0_len: s0.len(),
            n_xs: xs.len(),
            steps,
            last,
            store,
            scratch: RefCell::new({
                if let Some(inv) = &inverse {
                    inv.prepare(&mut sc.inv_work, params, 1);
                }
                sc
            }),
            program,
            inverse,
        };
        let limit = self.step_limit(xs.len());
        let ns = s0.len();
        let w = self.width;
        if self.strategy == Strategy::Invert {
            assert!(
                self.inverse.is_some() || self.traced_inverse.is_some(),
                "recurrence `{}`: Strategy::Invert needs an inverse step (Recurrence::inverse or traced_inverse)",
                self.name
            );
        }
        if let Strategy::Checkpoint { snapshots: Some(0) } = self.strategy {
            panic!(
                "recurrence `{}`: checkpointing needs at least 1 snapshot",
                self.name
            );
        }
        let k = self.block;
        let mut sc = Scratch::new(params);
        let program = self
            .compile_at(s0, params, xs, 0, limit)
            .map(|p| p.with_native(s0, params, row(xs, w, 0)));
        if let Some(prog) = &program {
            prog.prepare(&mut sc.work, params, k);
        }
        if let (Strategy::StoreAll, Some(prog), None) = (self.strategy, &program, &self.until) {
            let bytes = limit.saturating_mul(prog.parts_per_step() * std::mem::size_of::<T>());
            // within the budget, or no larger than the states themselves
            // (then keeping the partials costs no memory and saves the
            // reverse pass its re-evaluations)
            if bytes <= self.tape_budget || prog.parts_per_step() <= ns {
                let mut parts = spare;
                let last = prog.record_parts(&mut sc.work, s0, xs, limit, &mut parts);
                self.check_declared(prog, &last, params, xs, limit, limit);
                return finish(limit, last, Store::Partials(parts), sc, program);
            }
        }
        if self.strategy == Strategy::StoreAll && program.is_none() {
            if let Some((recorded, steps, last)) = self.record(s0, params, xs, limit) {
                return finish(steps, last, Store::Tape(Box::new(recorded)), sc, None);
            }
        }
        let known = self.until.is_none();
        let blocks = limit.div_ceil(k);
        let mut store = match self.strategy {
            Strategy::StoreAll => Store::States {
                // every state s_0 .. s_{N-1}, reserved when N is known
                states: {
                    spare.reserve(if known {
                        limit.min(1 << 24).saturating_mul(ns)
                    } else {
                        0
                    });
                    spare
                },
                rows: xs.len().checked_div(w).map_or(0, |r| r.min(limit)),
            },
            Strategy::Invert => Store::Invert,
            Strategy::Checkpoint { snapshots } if known => {
                let c = snapshots.unwrap_or_else(|| auto_snapshots(blocks));
                // the first descent of the reversal (in blocks), taken now
                let mut pos = vec![0];
                let (mut a, mut slots) = (0usize, c);
                // (the last state of the descent is recomputed, not kept:
                // the forward pass keeps at most `c` states)
                while blocks - a >= 2 && pos.len() < c {
                    a += split(blocks - a, slots);
                    slots -= 1;
                    pos.push(a);
                }
                Store::Binomial {
                    slots: c,
                    states: Vec::with_capacity(pos.len() * ns),
                    pos,
                }
            }
            Strategy::Checkpoint { snapshots } => Store::Online {
                budget: snapshots,
                spacing: k,
                states: Vec::new(),
                count: 0,
            },
        };
        let mut next_chain = 0;
        let mut cur = s0.to_vec();
        let until = self.until.as_deref();
        if let (Store::States { states, .. }, None) = (&mut store, until) {
            // store-all of a known length on plain values: the loop of
            // `Scratch::run` without its per-step visitor (same values)
            let native = program.as_ref().and_then(|prog| {
                prog.values_steps(&mut sc.work, &mut cur, xs, limit, Some(&mut *states))
            });
            let fast = match (self.values.as_deref(), &program) {
                _ if native.is_some() => true,
                (Some(vf), _) => {
                    let mut nxt = vec![T::zero(); ns];
                    for t in 0..limit {
                        states.extend_from_slice(&cur);
                        vf(&cur, params, row(xs, w, t), t, &mut nxt);
                        std::mem::swap(&mut cur, &mut nxt);
                    }
                    true
                }
                (None, Some(prog)) => {
                    for t in 0..limit {
                        states.extend_from_slice(&cur);
                        prog.values(&mut sc.work, &mut cur, row(xs, w, t));
                    }
                    true
                }
                (None, None) => false,
            };
            if fast {
                if let Some(first) = &program {
                    self.check_declared(first, &cur, params, xs, limit, limit);
                }
                return finish(limit, cur, store, sc, program);
            }
        }
        if let (Store::Invert, None, Some(prog)) = (&store, until, &program) {
            // inversion keeps no state: all steps in one native call
            if prog
                .values_steps(&mut sc.work, &mut cur, xs, limit, None)
                .is_some()
            {
                self.check_declared(prog, &cur, params, xs, limit, limit);
                return finish(limit, cur, store, sc, program);
            }
        }
        let visit = |t: usize, s: &[T]| {
            if let Some(u) = until {
                if u(s, t) {
                    return false;
                }
            }
            if let Store::States { states, .. } = &mut store {
                states.extend_from_slice(s);
                return true;
            }
            if t % k != 0 {
                return true;
            }
            match &mut store {
                Store::Binomial { pos, states, .. } => {
                    if next_chain < pos.len() && pos[next_chain] * k == t {
                        states.extend_from_slice(s);
                        next_chain += 1;
                    }
                }
                Store::Online {
                    budget,
                    spacing,
                    states,
                    count,
                } => {
                    if t % *spacing == 0 {
                        let cap = budget.unwrap_or_else(|| online_budget(t / k));
                        if *count >= cap.max(1) {
                            // thin: keep every other snapshot, double the spacing
                            let mut j = 0;
                            for i in (0..*count).step_by(2) {
                                states.copy_within(i * ns..(i + 1) * ns, j * ns);
                                j += 1;
                            }
                            states.truncate(j * ns);
                            *count = j;
                            *spacing *= 2;
                        }
                        if t % *spacing == 0 {
                            states.extend_from_slice(s);
                            *count += 1;
                        }
                    }
                }
                Store::Invert | Store::States { .. } | Store::Tape(_) | Store::Partials(_) => {}
            }
            true
        };
        let f = Stepper {
            step: &*self.step,
            values: self.values.as_deref(),
            name: &self.name,
            program: program.as_ref(),
        };
        let t = sc.run(f, &mut cur, xs, w, 0, limit, k, visit);
        if let Some(first) = &program {
            self.check_declared(first, &cur, params, xs, t, limit);
        }
        finish(t, cur, store, sc, program)
    }

    /// Checks the [`Recurrence::compiled`] declaration after `t` steps
    /// that ended in state `s`: the step recorded from `s` at `t - 1`, at
    /// 1 and half-way must be the one compiled at 0 (step 1 catches a step
    /// that alternates with `t`'s parity, which the first and last steps
    /// alone miss when both are even).
    fn check_declared(
        &self,
        first: &Program<T>,
        s: &[T],
        params: &[T],
        xs: &[T],
        t: usize,
        limit: usize,
    ) {
        let mut probes = [1, t / 2, t.saturating_sub(1)];
        probes.sort_unstable();
        for (k, &at) in probes.iter().enumerate() {
            if at == 0 || at >= t || probes[..k].contains(&at) {
                continue;
            }
            let again = self.compile_at(s, params, xs, at, limit);
            assert!(
                again.as_ref().is_some_and(|p| p.same_as(first)),
                "recurrence `{}`: declared compiled(), but the step recorded at t = {at} differs from the one at t = 0 (it branches on values or on t)",
                self.name,
            );
        }
    }

    /// The step compiled from a recording at step `t` from state `s`
    /// (see [`Recurrence::compiled`]), if declared and possible.
    fn compile_at(
        &self,
        s: &[T],
        params: &[T],
        xs: &[T],
        t: usize,
        limit: usize,
    ) -> Option<Program<T>> {
        let w = self.width;
        if !self.compiled || t >= limit || xs.len() < (t + 1) * w {
            return None;
        }
        Program::compile(&*self.step, s, params, row(xs, w, t), t).ok()
    }

    /// The forward pass of [`Strategy::StoreAll`] for a short recursion:
    /// records steps `0..limit` from `s0` on a new tape, node by node, and
    /// keeps it for the reverse pass (one sweep). Layout: the sink, the
    /// parameters, the state's leaves, the per-step inputs' leaves (all
    /// rows that may be used, as the plain unrolled tape lays them out),
    /// then the steps. Returns the tape, the number of steps taken and the
    /// final state; or `None` if `N` is not known in advance, or if the
    /// first step's bytes times `N` exceed the budget
    /// ([`STORE_ALL_TAPE_BYTES`]; then only the states are kept).
    fn record(
        &self,
        s0: &[T],
        params: &[T],
        xs: &[T],
        limit: usize,
    ) -> Option<(Recorded<T>, usize, Vec<T>)> {
        if self.until.is_some() {
            return None;
        }
        let (ns, np, w) = (s0.len(), params.len(), self.width);
        // the input rows that steps `0..limit` may read
        let nx = xs
            .len()
            .checked_div(w)
            .map_or(0, |rows| rows.min(limit) * w);
        let base = 1 + np + ns + nx;
        if limit > 1 && 16 * base > self.tape_budget {
            // the leaves and their adjoints alone exceed the budget
            return None;
        }
        let tape = Tape::with_capacity(base + 64);
        let (out, steps, last) = {
            let theta: Vec<Var<'_, T>> = params.iter().map(|&p| tape.var(p)).collect();
            let mut cur: Vec<Var<'_, T>> = s0.iter().map(|&v| tape.var(v)).collect();
            for &v in &xs[..nx] {
                tape.var(v);
            }
            let x_first = 1 + np + ns;
            let until = self.until.as_deref();
            let mut next = Vec::with_capacity(ns);
            let mut xrow: Vec<Var<'_, T>> = Vec::with_capacity(w);
            let mut vals = Vec::with_capacity(ns);
            let mut t = 0;
            while t < limit {
                if let Some(u) = until {
                    vals.clear();
                    vals.extend(cur.iter().map(|v| v.value()));
                    if u(&vals, t) {
                        break;
                    }
                }
                xrow.clear();
                for (j, &v) in row(xs, w, t).iter().enumerate() {
                    xrow.push(Var {
                        tape: &tape,
                        idx: (x_first + t * w + j) as u32,
                        val: v,
                    });
                }
                next.clear();
                (self.step)(&cur, &theta, &xrow, t, &mut next);
                check_len(&self.name, "step", t, next.len(), ns);
                std::mem::swap(&mut cur, &mut next);
                t += 1;
                if t == 1 && until.is_none() && limit > 1 {
                    // N is known: size the tape from the first step's nodes
                    // (it grows as usual if later steps record more), or
                    // leave it to the states if it would not fit the budget
                    let per = tape.len() - base;
                    // the step's nodes and their adjoints
                    let per_bytes = tape.used_bytes() - 8 * base + 8 * per;
                    if per_bytes.saturating_mul(limit) > self.tape_budget {
                        return None;
                    }
                    let room = (u32::MAX as usize).saturating_sub(tape.len());
                    tape.reserve((limit - 1).saturating_mul(per).min(room));
                }
            }
            let out: Vec<u32> = cur.iter().map(|v| v.idx).collect();
            let last: Vec<T> = cur.iter().map(|v| v.value()).collect();
            (out, t, last)
        };
        let recorded = Recorded {
            tape,
            np,
            ns,
            nx,
            out,
        };
        Some((recorded, steps, last))
    }

    /// Records the recursion on the tape of its inputs as one custom
    /// operation with inputs `s0 ++ params ++ xs` and outputs `s_N`; the
    /// operation's backward pass reverses the recursion with the chosen
    /// [`Strategy`]. The outer tape gains `s0.len()` nodes, whatever `N`.
    ///
    /// # Panics
    /// As [`Recurrence::forward`]; also if `s0` is empty or the inputs
    /// belong to different tapes.
    pub fn apply<'t>(
        &self,
        s0: &[Var<'t, T>],
        params: &[Var<'t, T>],
        xs: &[Var<'t, T>],
    ) -> RecurrenceOutput<'t, T> {
        assert!(
            !s0.is_empty(),
            "recurrence `{}`: the state needs at least one value",
            self.name
        );
        let tape = s0[0].tape();
        let vals = |v: &[Var<'t, T>]| v.iter().map(|v| v.value()).collect::<Vec<T>>();
        let (s0v, pv, xv) = (vals(s0), vals(params), vals(xs));
        let traj = self.forward(&s0v, &pv, &xv);
        let steps = traj.steps();
        let out = traj.state().to_vec();
        let mut inputs = Vec::with_capacity(s0.len() + params.len() + xs.len());
        inputs.extend_from_slice(s0);
        inputs.extend_from_slice(params);
        inputs.extend_from_slice(xs);
        let (ns, np) = (s0.len(), params.len());
        let stats = Rc::new(Cell::new(None));
        let report = Rc::clone(&stats);
        let state = tape.custom_op(&self.name, &inputs, out, move |gy, gx| {
            let (gs, rest) = gx.split_at_mut(ns);
            let (gp, gxs) = rest.split_at_mut(np);
            report.set(Some(traj.backward(&xv, gy, gs, gp, gxs)));
        });
        RecurrenceOutput {
            state,
            steps,
            stats,
        }
    }

    /// Records every step on the tape of its inputs, node by node: the
    /// plain unrolled tape (`O(N)` nodes), with the same step closure and
    /// the same stopping rule. Its gradients are what every strategy is
    /// tested against.
    pub fn unroll<'t>(
        &self,
        s0: &[Var<'t, T>],
        params: &[Var<'t, T>],
        xs: &[Var<'t, T>],
    ) -> RecurrenceOutput<'t, T> {
        let limit = self.step_limit(xs.len());
        let w = self.width;
        let mut cur = s0.to_vec();
        let mut nxt = Vec::with_capacity(cur.len());
        let mut vals: Vec<T> = Vec::with_capacity(cur.len());
        let mut t = 0;
        while t < limit {
            if let Some(u) = &self.until {
                vals.clear();
                vals.extend(cur.iter().map(|v| v.value()));
                if u(&vals, t) {
                    break;
                }
            }
            nxt.clear();
            (self.step)(&cur, params, row(xs, w, t), t, &mut nxt);
            check_len(&self.name, "step", t, nxt.len(), cur.len());
            std::mem::swap(&mut cur, &mut nxt);
            t += 1;
        }
        RecurrenceOutput {
            state: cur,
            steps: t,
            stats: Rc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward steps the reversal of `l` steps with `s` snapshots
    /// recomputes (no first descent taken in advance).
    fn cost(l: usize, s: usize) -> usize {
        let mut b = l;
        let mut total = 0;
        while b > 1 {
            let j = split(b, s);
            total += j + cost(b - j, s - 1);
            b = j;
        }
        total
    }

    /// `rec`'s gradient by store-all and by one sweep of the unrolled tape
    /// `[sink, θ, s_0, xs, steps]`, as bits.
    fn both_ways(rec: &Recurrence, s0: &[f64], p: &[f64], xs: &[f64], seed: &[f64]) {
        // the whole tape (short recursions), then the states
        for budget in [STORE_ALL_TAPE_BYTES, 0] {
            let mut r = rec.clone().strategy(Strategy::StoreAll);
            r.tape_budget = budget;
            let (kind, steps) = one_way(&r, s0, p, xs, seed);
            // (a one-step recursion is recorded before any budget check)
            let tape = rec.until.is_none() && (budget > 0 || steps <= 1);
            assert_eq!(kind, if tape { "tape" } else { "states" });
        }
    }

    fn one_way(
        rec: &Recurrence,
        s0: &[f64],
        p: &[f64],
        xs: &[f64],
        seed: &[f64],
    ) -> (&'static str, usize) {
        let traj = rec.forward(s0, p, xs);
        let ctx = format!("{:?}", traj.store_kind());
        let (mut gs, mut gp, mut gx) =
            (vec![0.0; s0.len()], vec![0.0; p.len()], vec![0.0; xs.len()]);
        traj.backward(xs, seed, &mut gs, &mut gp, &mut gx);
        let tape = Tape::new();
        let pv = tape.vars(p);
        let sv = tape.vars(s0);
        let xv = tape.vars(xs);
        let out = rec.unroll(&sv, &pv, &xv);
        assert_eq!(out.steps, traj.steps());
        let g = crate::vjp(&out.state, seed);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let ctx = format!("{ctx}, n = {}, block = {}", out.steps, rec.block);
        assert_eq!(bits(&gs), bits(&g.wrt_all(&sv)), "s0, {ctx}");
        assert_eq!(bits(&gp), bits(&g.wrt_all(&pv)), "params, {ctx}");
        assert_eq!(bits(&gx), bits(&g.wrt_all(&xv)), "xs, {ctx}");
        (traj.store_kind(), traj.steps())
    }

    #[test]
    fn store_all_is_the_unrolled_tape_bit_for_bit() {
        let alpha = Recurrence::new(|s, _p, x, _t, next| {
            let (t, c) = (s[0], s[1]);
            next.push(t * (1.0 - x[1]));
            next.push(c + x[0] * x[1] * t);
        })
        .inputs_per_step(2);
        let scalar =
            Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]));
        // the first operation uses the state twice
        let square = Recurrence::new(|s, _p, x, _t, next| next.push(s[0] * s[0] * 0.5 + x[0]))
            .inputs_per_step(1);
        let mixed = Recurrence::new(|s, p, x, t, next| {
            let u = s[1] * p[0] + x[0];
            next.push(if t % 3 == 0 { u.sin() } else { u * 0.5 });
            next.push(s[0].exp() * 0.1 - s[1] * x[0] + u);
        })
        .inputs_per_step(1);
        let mut state = 7u64;
        let mut rnd = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 0.5
        };
        for n in [1usize, 2, 5, 31, 32, 33, 100, 257] {
            for block in [1, 3, 32] {
                let xs: Vec<f64> = (0..2 * n).map(|_| rnd()).collect();
                let a = alpha.clone().block(block);
                both_ways(&a, &[1.0, 0.0], &[], &xs, &[0.3, -1.2]);
                // more rows than steps, and a stop before the rows run out
                let stop = a.clone().until(|s, _t| s[0] < 0.2, usize::MAX);
                both_ways(&stop, &[1.0, 0.0], &[], &xs, &[0.0, 2.0]);
                let sc = scalar.clone().steps(n).block(block);
                both_ways(&sc, &[0.5], &[0.9, 0.1], &[], &[1.0]);
                let m = mixed.clone().block(block);
                both_ways(&m, &[0.2, -0.4], &[0.7], &xs[..n], &[1.0, 0.5]);
                let q = square.clone().block(block);
                both_ways(&q, &[0.9], &[], &xs[..n], &[1.0]);
            }
        }
    }

    /// A compiled step saves only what depends on its state: the values
    /// made of θ and the input row by plain arithmetic are recomputed by
    /// the sweep. Compositing then saves one value a step (T), fewer than
    /// its state's two, so store-all keeps the partials at any length
    /// (and sweeps them once) with the unrolled tape's bits.
    #[test]
    fn compiled_steps_save_only_what_depends_on_the_state() {
        let alpha = Recurrence::new(|s, _p, x, _t, next| {
            let (t, c) = (s[0], s[1]);
            next.push(t * (1.0 - x[1]));
            next.push(c + x[0] * x[1] * t);
        })
        .inputs_per_step(2)
        .compiled();
        // `sin x` is not recomputed (a call): saved with its partial
        let sine = Recurrence::new(|s, p, x, _t, next| {
            let u = x[0] * p[0] - 0.5;
            next.push(s[0] * u + x[1].sin() * (x[1] + p[1]));
        })
        .inputs_per_step(2)
        .compiled();
        let scalar =
            Recurrence::new(|s, p, _x, _t, next| next.push(s[0] * p[0] + s[0].sin() * p[1]))
                .compiled();
        let mut state = 11u64;
        let mut rnd = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 0.5
        };
        let xs: Vec<f64> = (0..2 * 300).map(|_| rnd()).collect();
        type Case<'a> = (
            &'a Recurrence,
            &'a [f64],
            &'a [f64],
            &'a [f64],
            usize,
            &'a str,
        );
        let cases: [Case<'_>; 3] = [
            (&alpha, &[1.0, 0.0], &[], &xs, 1, "partials"),
            // s·u: s and u = x·θ − 0.5 (recomputed); sin x₁: its value
            // and cos x₁; (x₁ + θ₁) recomputed
            (&sine, &[0.7], &[0.9, -0.3], &xs, 3, "states"),
            (
                &scalar.clone().steps(300),
                &[0.5],
                &[0.9, 0.1],
                &[],
                3,
                "states",
            ),
        ];
        for (rec, s0, p, xs, saves, kind) in cases {
            for block in [1, 7, 32] {
                let r = rec.clone().block(block).strategy(Strategy::StoreAll);
                let traj = r.forward(s0, p, xs);
                let prog = traj.program.as_ref().expect("compiled");
                assert_eq!(prog.parts_per_step(), saves);
                // past the budget: the partials if no more than the states
                let (k, _) = one_way(&r.store_all_budget(0), s0, p, xs, &[0.3, -1.2][..s0.len()]);
                assert_eq!(k, kind);
            }
        }
    }

    #[test]
    fn beta_is_binomial() {
        assert_eq!(beta(0, 5), 1);
        assert_eq!(beta(1, 5), 6);
        assert_eq!(beta(3, 2), 10);
        assert_eq!(beta(24, 8), 10_518_300);
        assert_eq!(beta(200, 200), usize::MAX);
    }

    #[test]
    fn split_is_optimal() {
        // opt[l][s]: fewest recomputed steps over every split
        let (lmax, smax) = (70, 6);
        let inf = usize::MAX / 4;
        let mut opt = vec![vec![inf; smax + 1]; lmax + 1];
        for row in opt.iter_mut().take(2) {
            row.iter_mut().for_each(|v| *v = 0);
        }
        for l in 2..=lmax {
            for s in 1..=smax {
                let mut best = inf;
                for j in 1..l {
                    let c = j + opt[l - j][s - 1] + opt[j][s];
                    best = best.min(c);
                }
                opt[l][s] = best;
            }
        }
        for l in 1..=lmax {
            for s in 1..=smax {
                assert_eq!(cost(l, s), opt[l][s], "l = {l}, s = {s}");
                // Griewank: t·l − β(s + 1, t − 1) with t minimal, β(s, t) ≥ l
                if l >= 2 {
                    let mut t = 1;
                    while beta(s, t) < l {
                        t += 1;
                    }
                    assert_eq!(cost(l, s), t * l - beta(s + 1, t - 1), "l = {l}, s = {s}");
                }
            }
        }
    }

    #[test]
    fn auto_counts() {
        assert_eq!(auto_snapshots(1), 2);
        assert_eq!(auto_snapshots(1000), 20);
        assert_eq!(auto_snapshots(1 << 20), 40);
        assert_eq!(online_budget(0), 8);
        assert_eq!(online_budget(1 << 20), 21);
    }
}
