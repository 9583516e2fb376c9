//! The tape: an arena of nodes in execution order, and the handles ([`Var`])
//! that record onto it.
//!
//! Each elementary node stores its parents' indices and the local partial
//! derivatives computed during the forward pass, so the reverse sweep in
//! [`crate::backward`] is a loop of multiply-adds with no dynamic dispatch
//! on operations. The arena is two streams (see [`Arena`]): one 8-byte
//! *head* per node (its kind and up to two parent indices) and the partials,
//! only as many as the node's kind needs: none for an input or a sum, one
//! for a unary operation, two for a general binary one. Index 0 is a
//! reserved sink that no node points at.
//!
//! Sine and cosine are the exception: their partial (`cos a`, `−sin a`)
//! is a second library call as costly as the value, so they store their
//! argument `a` in the partial's slot and the sweep calls the library for
//! the partial ([`K_SIN`], [`K_COS`]). The call is then off the forward
//! pass, whose time is the chain of values through `sin` and the rest of
//! the step, and runs in the sweep beside its chain of adjoints; it is the
//! same function of the same number, so the same bits. The arena keeps
//! these arguments a second time, compactly ([`Arena::args`]), for the
//! helper thread that makes a long sweep's partials ahead of it
//! ([`crate::lookahead`]).

use std::cell::{Cell, UnsafeCell};
use std::fmt;

use crate::scalar::Scalar;

/// An input or a custom operation's output: no parents, no partials.
pub(crate) const K_LEAF: u64 = 0;
/// One parent, one stored partial.
pub(crate) const K_UNARY: u64 = 1;
/// Two parents, two stored partials.
pub(crate) const K_BINARY: u64 = 2;
/// Two parents with partials 1 and 1 (`a + b`), none stored.
pub(crate) const K_ADD: u64 = 3;
/// One parent with partial 1 (`a + c`, `a - c`), none stored.
pub(crate) const K_PASS: u64 = 4;
/// `sin a`: one parent, and its argument `a` stored in the partial's slot;
/// the partial is `a.cos()`, called when the sweep needs it ([`partial`]).
pub(crate) const K_SIN: u64 = 5;
/// `cos a`: one parent and its argument `a` stored; the partial is
/// `−a.sin()` ([`partial`]).
pub(crate) const K_COS: u64 = 6;
/// The low bits of a head: the kind (dense codes, so that the sweep's
/// dispatch is one jump table).
pub(crate) const KIND_MASK: u64 = 15;

/// The number of partials a node of `kind` stores, from a packed table
/// (2 bits per kind).
#[inline(always)]
pub(crate) const fn n_partials(kind: u64) -> usize {
    const TABLE: u64 =
        (1 << (2 * K_UNARY)) | (2 << (2 * K_BINARY)) | (1 << (2 * K_SIN)) | (1 << (2 * K_COS));
    ((TABLE >> (2 * (kind & KIND_MASK))) & 3) as usize
}

/// Whether a node of `kind` stores its argument for [`partial`] ([`K_SIN`],
/// [`K_COS`]), and so in [`Arena::args`] too.
#[inline(always)]
pub(crate) const fn takes_arg(kind: u64) -> bool {
    matches!(kind & KIND_MASK, K_SIN | K_COS)
}

/// The partial of a one-parent node of `kind` from what it stored: the
/// stored partial itself, or for [`K_SIN`] and [`K_COS`] the derivative of
/// the stored argument, computed exactly as the value's rule would
/// (`ops::rule::sin`, `ops::rule::cos`), so the same bits.
#[inline(always)]
pub(crate) fn partial<T: Scalar>(kind: u64, stored: T) -> T {
    match kind & KIND_MASK {
        K_SIN => stored.cos(),
        K_COS => -stored.sin(),
        _ => stored,
    }
}

/// How many nodes ahead of the one being recorded [`record_prefetch`]
/// asks for (512: 4 KiB of heads, one page).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only x86-64 prefetches
const RECORD_AHEAD: usize = 512;

/// Asks the processor, with write intent, for the head, adjoint and
/// partials cache lines [`RECORD_AHEAD`] nodes past node `idx` (the
/// recording calls it every 8 nodes, one head line). A recording writes
/// three streams, and a store into a line not in the caches waits for
/// that line to be read; the hardware's prefetchers follow a stream only
/// within a 4 KiB page, so each stream stalls at every page it enters.
/// Asking a page ahead hides that: `bench ad` at N = 10⁶ on the Intel
/// Xeon VM recorded in 11.4 ns a step instead of 15.1–16.1, the same
/// bytes (BENCHMARKS.md, eighteenth session). A prefetch never faults,
/// so addresses past the buffers' ends are harmless; elsewhere than
/// x86-64 nothing is asked.
#[inline(always)]
fn record_prefetch<T>(a: &Arena<T>, idx: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        let at = |p: *const i8| {
            // SAFETY: a prefetch never faults (the address is only a hint).
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(p) }
        };
        at(a.heads.as_ptr().wrapping_add(idx + RECORD_AHEAD).cast());
        at(a.adj.as_ptr().wrapping_add(idx + RECORD_AHEAD).cast());
        // partials: 1.25 a node on a typical tape (as `prefetch_below`)
        at(a.partials
            .as_ptr()
            .wrapping_add(a.partials.len() + RECORD_AHEAD + RECORD_AHEAD / 4)
            .cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, idx);
}

const IDX_BITS: u32 = 30;
const IDX_MASK: u64 = (1 << IDX_BITS) - 1;
/// The most nodes a tape holds (parent indices are 30-bit).
pub(crate) const MAX_NODES: usize = 1 << IDX_BITS;

/// A node's head: `kind | p0 << 4 | p1 << 34`.
#[inline(always)]
pub(crate) const fn head(kind: u64, p0: u32, p1: u32) -> u64 {
    // the sweep's dispatch relies on it for soundness
    // (`backward::sweep_plain`); `kind` is a constant wherever this is
    // inlined into the recording's fast path, so the check folds away
    assert!(kind <= K_COS, "a node kind above K_COS");
    kind | (p0 as u64) << 4 | (p1 as u64) << 34
}

/// The parents of a head.
#[inline(always)]
pub(crate) const fn parents(h: u64) -> (usize, usize) {
    (((h >> 4) & IDX_MASK) as usize, (h >> 34) as usize)
}

/// The nodes of a tape, as two streams, and the buffer of their adjoints.
/// `heads[i]` is node `i`'s kind and parents; its partials follow those of
/// node `i - 1` in `partials` (see [`n_partials`]). Invariants:
/// `partials.capacity() >= 2 * heads.capacity()`,
/// `arg_cos` covers `args.capacity()` bits (and is zero from `args.len()`
/// on), and unless `adj` is lent
/// `adj.capacity() >= heads.capacity()`, so that a node that fits in
/// `heads` always fits its partials and its adjoint (one capacity check per
/// recorded node, and a second for a `sin` or `cos`, whose argument `args`
/// keeps again).
///
/// `adj` is the next backward pass's adjoint buffer, zeroed as the nodes
/// are recorded (one store a node beside the head's) rather than by a
/// separate pass over the whole buffer when the sweep starts. While it is
/// not lent, `adj.len() == heads.len()` and `adj[adj_clean..]` is zero;
/// entries below `adj_clean` may hold an earlier sweep's adjoints, and
/// [`Arena::lend_adj`] zeroes those before handing the buffer out.
pub(crate) struct Arena<T> {
    pub(crate) heads: Vec<u64>,
    pub(crate) partials: Vec<T>,
    /// The argument of every [`K_SIN`] and [`K_COS`] node again, in node
    /// order: what a sweep's helper thread reads ([`crate::lookahead`])
    /// without touching the cache lines of `heads` and `partials`, which
    /// the next recording overwrites.
    pub(crate) args: Vec<T>,
    /// Bit `j` (of word `j / 64`) set if `args[j]` is a cosine's; a sine's
    /// costs the recording nothing here.
    pub(crate) arg_cos: Vec<u64>,
    adj: Vec<T>,
    adj_clean: usize,
    /// Whether `adj` is lent to a backward pass's [`crate::Gradients`]:
    /// pushes then take the slow path, which does not write it.
    adj_lent: bool,
    /// `min(heads.capacity(), MAX_NODES)`, or 0 while `blocked` or
    /// `adj_lent`: pushes below it take the fast path (one comparison a
    /// node).
    room: usize,
    /// Set while any of the tape's flags is (tracing, checking, a sweep
    /// running): every push then takes the slow path, which handles them.
    blocked: bool,
}

impl<T: Scalar> Arena<T> {
    fn with_capacity(nodes: usize) -> Self {
        let mut a = Arena {
            heads: Vec::with_capacity(nodes.clamp(1, MAX_NODES)),
            partials: Vec::new(),
            args: Vec::new(),
            arg_cos: Vec::new(),
            adj: Vec::new(),
            adj_clean: 0,
            adj_lent: false,
            room: 0,
            blocked: false,
        };
        a.fit_partials();
        a.heads.push(head(K_LEAF, 0, 0));
        a.adj.push(T::zero());
        a
    }

    /// Restores the capacity invariants after `heads` grew, and `room`
    /// after a change of `blocked` or `adj_lent`.
    fn fit_partials(&mut self) {
        let cap = self.heads.capacity();
        if self.partials.capacity() < 2 * cap {
            self.partials.reserve_exact(2 * cap - self.partials.len());
        }
        if !self.adj_lent && self.adj.capacity() < cap {
            self.adj.reserve_exact(cap - self.adj.len());
        }
        self.room = if self.blocked || self.adj_lent {
            0
        } else {
            cap.min(MAX_NODES)
        };
    }

    /// The adjoint buffer for a sweep over nodes `0..n` (`n <= heads.len()`),
    /// zero there, or `None` if it is already lent. Until it comes back
    /// ([`Arena::return_adj`]) pushes take the slow path.
    pub(crate) fn lend_adj(&mut self, n: usize) -> Option<Vec<T>> {
        if self.adj_lent {
            return None;
        }
        debug_assert!(n <= self.adj.len() && self.adj.len() == self.heads.len());
        let mut v = std::mem::take(&mut self.adj);
        v.truncate(n);
        v[..self.adj_clean.min(n)].fill(T::zero());
        self.adj_lent = true;
        self.fit_partials();
        Some(v)
    }

    /// Takes back a buffer lent by [`Arena::lend_adj`] (or any other whose
    /// length is at most `heads.len()`), its entries all possibly
    /// non-zero; returns it if no buffer is lent.
    pub(crate) fn return_adj(&mut self, mut v: Vec<T>) -> Result<(), Vec<T>> {
        if !self.adj_lent || v.len() > self.heads.len() {
            return Err(v);
        }
        self.adj_clean = v.len();
        // the nodes recorded while it was lent, and those above the sweep
        v.resize(self.heads.len(), T::zero());
        self.adj = v;
        self.adj_lent = false;
        self.fit_partials();
        Ok(())
    }

    /// Room for `additional` more nodes (at most up to the node limit).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let n = additional.min(MAX_NODES.saturating_sub(self.heads.len()));
        self.heads.reserve(n);
        self.fit_partials();
    }

    /// The number of partials stored by nodes `0..n` (walks back from the
    /// end: cheap when `n` is near the end, as it is for every sweep).
    pub(crate) fn partials_before(&self, n: usize) -> usize {
        let mut pc = self.partials.len();
        for &h in self.heads[n.min(self.heads.len())..].iter().rev() {
            pc -= n_partials(h);
        }
        pc
    }

    /// The number of [`Arena::args`] of nodes `0..n` (walks back from the
    /// end, as [`Arena::partials_before`] does).
    pub(crate) fn args_before(&self, n: usize) -> usize {
        let above = self.heads[n.min(self.heads.len())..]
            .iter()
            .filter(|&&h| takes_arg(h))
            .count();
        self.args.len() - above
    }

    /// Keeps the first `n` of `args`, and zeroes the bits of the others.
    fn forget_args(&mut self, n: usize) {
        let words = self.args.len().div_ceil(64);
        self.args.truncate(n);
        if let Some(w) = self.arg_cos.get_mut(n / 64) {
            *w &= (1u64 << (n % 64)) - 1;
        }
        let from = n.div_ceil(64).min(words);
        self.arg_cos[from..words].fill(0);
    }

    /// Keeps nodes `0..n`.
    pub(crate) fn truncate(&mut self, n: usize) {
        if !self.adj_lent {
            self.adj.truncate(n);
        }
        self.adj_clean = self.adj_clean.min(n);
        if n <= 1 {
            self.heads.truncate(n);
            self.partials.clear();
            self.forget_args(0);
        } else if n < self.heads.len() {
            let pc = self.partials_before(n);
            let ac = self.args_before(n);
            self.heads.truncate(n);
            self.partials.truncate(pc);
            self.forget_args(ac);
        }
    }

    /// Node `i` decoded to the uniform form `(parents, partials)`, the sink
    /// standing in for a missing parent (with partial 0).
    pub(crate) fn decode(&self, i: usize, pc: usize) -> ([usize; 2], [T; 2]) {
        let h = self.heads[i];
        let (p0, p1) = parents(h);
        let (o, z) = (T::one(), T::zero());
        match h & KIND_MASK {
            K_UNARY | K_SIN | K_COS => ([p0, 0], [partial(h, self.partials[pc]), z]),
            K_BINARY => ([p0, p1], [self.partials[pc], self.partials[pc + 1]]),
            K_ADD => ([p0, p1], [o, o]),
            K_PASS => ([p0, 0], [o, z]),
            _ => ([0, 0], [z, z]),
        }
    }
}

/// What produced a node; recorded only while tracing (graph export) or
/// checking for non-finite values, so the hot path stores only heads and
/// partials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// The reserved sink at index 0.
    Sink,
    /// An input (leaf) created by [`Tape::var`].
    Input,
    /// `a + b` (or `a + c` with a constant).
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `c - a` with a constant `c` on the left.
    RSub,
    /// `c / a` with a constant `c` on the left.
    RDiv,
    /// `-a`.
    Neg,
    /// `e^a`.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Base-2 logarithm.
    Log2,
    /// Base-10 logarithm.
    Log10,
    /// Square root.
    Sqrt,
    /// Cube root.
    Cbrt,
    /// Power by a constant integer.
    Powi,
    /// Power by a constant or a variable real exponent.
    Pow,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Arcsine.
    Asin,
    /// Arccosine.
    Acos,
    /// Arctangent.
    Atan,
    /// Four-quadrant arctangent.
    Atan2,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Inverse hyperbolic sine.
    Asinh,
    /// Inverse hyperbolic cosine.
    Acosh,
    /// Inverse hyperbolic tangent.
    Atanh,
    /// ln(1 + a), accurate near 0.
    Ln1p,
    /// e^a − 1, accurate near 0.
    ExpM1,
    /// The error function.
    Erf,
    /// The complementary error function.
    Erfc,
    /// Logistic sigmoid.
    Sigmoid,
    /// max(0, a).
    Relu,
    /// ln(1 + e^a).
    Softplus,
    /// |a|.
    Abs,
    /// min(a, b).
    Min,
    /// max(a, b).
    Max,
    /// sqrt(a² + b²).
    Hypot,
    /// An output of a custom operation (see [`Tape::custom_op`]).
    Custom,
}

impl Op {
    /// A short lowercase name, as shown in graph exports and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Sink => "sink",
            Op::Input => "input",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::RSub => "rsub",
            Op::RDiv => "rdiv",
            Op::Neg => "neg",
            Op::Exp => "exp",
            Op::Ln => "ln",
            Op::Log2 => "log2",
            Op::Log10 => "log10",
            Op::Sqrt => "sqrt",
            Op::Cbrt => "cbrt",
            Op::Powi => "powi",
            Op::Pow => "pow",
            Op::Sin => "sin",
            Op::Cos => "cos",
            Op::Tan => "tan",
            Op::Asin => "asin",
            Op::Acos => "acos",
            Op::Atan => "atan",
            Op::Atan2 => "atan2",
            Op::Sinh => "sinh",
            Op::Cosh => "cosh",
            Op::Tanh => "tanh",
            Op::Asinh => "asinh",
            Op::Acosh => "acosh",
            Op::Atanh => "atanh",
            Op::Ln1p => "log1p",
            Op::ExpM1 => "expm1",
            Op::Erf => "erf",
            Op::Erfc => "erfc",
            Op::Sigmoid => "sigmoid",
            Op::Relu => "relu",
            Op::Softplus => "softplus",
            Op::Abs => "abs",
            Op::Min => "min",
            Op::Max => "max",
            Op::Hypot => "hypot",
            Op::Custom => "custom",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The trace of one node, kept while tracing is on.
#[derive(Clone, Debug)]
pub struct TraceEntry {
    /// The operation.
    pub op: Op,
    /// The forward value, as f64.
    pub value: f64,
    /// The constant operand of an operation with a constant (`x * 2` keeps 2).
    pub constant: Option<f64>,
    /// The name given with [`Tape::name`], if any.
    pub label: Option<String>,
}

/// A custom operation's vector-Jacobian product: given the gradients of its
/// outputs, add the gradients of its inputs into the second slice (which the
/// engine hands over zeroed).
pub type Vjp<T> = Box<dyn Fn(&[T], &mut [T])>;

pub(crate) struct CustomNode<T: Scalar> {
    pub(crate) name: String,
    pub(crate) first_output: u32,
    pub(crate) n_outputs: u32,
    pub(crate) inputs: Vec<u32>,
    pub(crate) vjp: Vjp<T>,
}

const TRACE: u8 = 1;
const CHECK: u8 = 2;
/// Set while a backward sweep runs: recording then would invalidate the
/// sweep's view of the arena, so it panics instead.
pub(crate) const IN_BACKWARD: u8 = 4;

/// Where a non-finite number first appeared.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NonFinite {
    /// Index of the node on the tape.
    pub node: usize,
    /// The operation that produced it (custom operations show their name).
    pub op: String,
    /// The offending number, as f64.
    pub value: f64,
    /// `true` if it appeared in the backward pass (a gradient), `false` if in
    /// the forward pass (a value).
    pub in_backward: bool,
    /// `true` if the gradient reaching the node was 0 and its partial,
    /// `value`, is not finite (`0 × inf`, as at `sqrt` in `sqrt(x)²` at
    /// 0): indeterminate, a NaN in IEEE arithmetic, which
    /// [`Var::backward`](crate::Var::backward) takes as 0: right for
    /// `x·sqrt(x)` at 0, wrong for `sqrt(x)²`, whose derivative is 1. Found
    /// only among nodes recorded while checking was on.
    pub zero_adjoint: bool,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.zero_adjoint {
            return write!(
                f,
                "indeterminate gradient (0 × {}) at operation `{}` (node {}): a zero \
                 gradient reached its infinite derivative",
                self.value, self.op, self.node
            );
        }
        let what = if self.in_backward {
            "gradient"
        } else {
            "value"
        };
        write!(
            f,
            "non-finite {what} {} first produced by operation `{}` (node {})",
            self.value, self.op, self.node
        )
    }
}

impl std::error::Error for NonFinite {}

/// The recording arena.
///
/// A tape is written through shared references (`&Tape`): every [`Var`]
/// borrows it, and each operation on `Var`s appends a node. [`Tape::clear`]
/// needs `&mut`, so no `Var` can outlive the nodes it names.
///
/// A tape holds at most 2³⁰ nodes (about 1.07 billion; each costs 12 to
/// 28 bytes, so the limit is near 12 GB of `f64` nodes); recording one more
/// panics with "tape is full". Longer computations belong in a
/// [`Recurrence`](crate::Recurrence), whose strategies keep a step's nodes
/// at a time, or in several tapes joined by [`vjp`](crate::vjp).
/// `Tape::new()` makes an `f64` tape; a tape of another scalar is
/// `Tape::<f32>::default()`.
///
/// ```
/// use chainrule::Tape;
/// let tape = Tape::new();
/// let x = tape.var(5.0);
/// let y = (x * 2.0 + 3.0) / 2.0;
/// let grads = y.backward();
/// assert_eq!(y.value(), 6.5);
/// assert_eq!(grads.wrt(x), 1.0);
///
/// let mut tape = Tape::new();
/// for step in 0..3 {
///     tape.clear(); // forgets the nodes, keeps the memory
///     let x = tape.var(step as f64);
///     let y = x * x;
///     assert_eq!(y.backward().wrt(x), 2.0 * step as f64);
/// }
/// ```
pub struct Tape<T: Scalar = f64> {
    // SAFETY: the cells below are only accessed inside `Tape`'s own methods,
    // never across a call into user code, and no reference into them escapes.
    // `Tape` is `!Sync` (UnsafeCell), so there is one accessor at a time.
    pub(crate) nodes: UnsafeCell<Arena<T>>,
    pub(crate) customs: UnsafeCell<Vec<CustomNode<T>>>,
    pub(crate) trace: UnsafeCell<Vec<TraceEntry>>,
    pub(crate) flags: Cell<u8>,
    /// Every node whose forward value was NaN or infinite when it was
    /// recorded while checking was on, with that value, in recording
    /// order (so in index order).
    pub(crate) non_finite: UnsafeCell<Vec<(u32, f64)>>,
    /// Adjoint buffer kept between backward passes (taken while in use).
    pub(crate) adj_cache: Cell<Vec<T>>,
    pub(crate) scratch: Cell<Vec<T>>,
}

impl<T: Scalar> Default for Tape<T> {
    /// An empty tape over any scalar: `Tape::<f32>::default()`.
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Tape<f64> {
    /// An empty tape of `f64` values. For another scalar use
    /// `Tape::<f32>::default()` or [`Tape::with_capacity`]. (Fixing the
    /// type here lets `2.0 * x` infer its types with no annotation.)
    pub fn new() -> Self {
        Self::with_capacity(0)
    }
}

impl<T: Scalar> fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tape")
            .field("nodes", &self.len())
            .field("custom_ops", &self.customs_ref().len())
            .finish()
    }
}

impl<T: Scalar> Tape<T> {
    /// An empty tape with room for `nodes` nodes before it grows.
    pub fn with_capacity(nodes: usize) -> Self {
        Tape {
            nodes: UnsafeCell::new(Arena::with_capacity(nodes)),
            customs: UnsafeCell::new(Vec::new()),
            trace: UnsafeCell::new(Vec::new()),
            flags: Cell::new(0),
            non_finite: UnsafeCell::new(Vec::new()),
            adj_cache: Cell::new(Vec::new()),
            scratch: Cell::new(Vec::new()),
        }
    }

    /// Forgets every node but keeps the allocated memory, ready for the next
    /// iteration of a training loop. Tracing and checking settings are kept.
    pub fn clear(&mut self) {
        self.nodes.get_mut().truncate(1);
        self.customs.get_mut().clear();
        let tr = self.trace.get_mut();
        tr.clear();
        if self.flags.get() & TRACE != 0 {
            tr.push(sink_entry());
        }
        self.non_finite.get_mut().clear();
    }

    /// Number of nodes recorded, including the reserved sink at index 0.
    #[inline]
    pub fn len(&self) -> usize {
        self.nodes_ref().heads.len()
    }

    /// Whether nothing but the reserved sink is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Bytes of the arena's allocation (nodes only), for memory accounting.
    pub fn capacity_bytes(&self) -> usize {
        let a = self.nodes_ref();
        a.heads.capacity() * 8
            + (a.partials.capacity() + a.args.capacity()) * std::mem::size_of::<T>()
            + a.arg_cos.capacity() * 8
    }

    /// Bytes the recorded nodes occupy (their heads, partials, and the
    /// arguments of sines and cosines): between 8 (an input or a sum) and
    /// [`Tape::node_bytes`] per node.
    pub fn used_bytes(&self) -> usize {
        let a = self.nodes_ref();
        a.heads.len() * 8
            + (a.partials.len() + a.args.len()) * std::mem::size_of::<T>()
            + a.args.len().div_ceil(64) * 8
    }

    /// Size of the largest elementary node in bytes, rounded up: a sine or
    /// cosine, which keeps its argument twice (the second copy for a
    /// sweep's helper thread) and a bit saying which, 25 for f64. A binary
    /// operation with two stored partials takes 24, inputs and sums 8,
    /// other unary operations 16.
    pub const fn node_bytes() -> usize {
        8 + 2 * std::mem::size_of::<T>() + 1
    }

    /// Records operation names, forward values and labels from now on, for
    /// [`Tape::trace`] and graph export. Call it on an empty tape (right
    /// after `new` or `clear`) to trace every node. Costs speed.
    pub fn set_tracing(&mut self, on: bool) {
        let f = self.flags.get();
        self.set_flags(if on { f | TRACE } else { f & !TRACE });
        self.sync_trace();
    }

    /// Checks every forward value and every gradient for NaN and infinity:
    /// remembers each node whose value is one, for
    /// [`Tape::first_non_finite`] (the first on the tape) and
    /// [`Var::try_backward`] (the first its output depends on, else the
    /// first non-finite gradient). Implies tracing. Costs speed; meant for
    /// debugging.
    pub fn set_check_finite(&mut self, on: bool) {
        let f = self.flags.get();
        self.set_flags(if on { f | CHECK | TRACE } else { f & !CHECK });
        self.sync_trace();
    }

    /// Sets the flags, and with them whether pushes take the slow path
    /// (any flag set: the fast path checks only the arena's `room`).
    pub(crate) fn set_flags(&self, f: u8) {
        self.flags.set(f);
        // SAFETY: see the struct comment; no reference into the arena is
        // alive across this call (a sweep takes its view after setting
        // IN_BACKWARD and drops it before clearing it).
        let a = unsafe { &mut *self.nodes.get() };
        a.blocked = f != 0;
        a.fit_partials();
    }

    fn sync_trace(&mut self) {
        let n = self.nodes.get_mut().heads.len();
        let tr = self.trace.get_mut();
        if self.flags.get() & TRACE != 0 {
            // Nodes recorded before tracing was switched on are unknown.
            while tr.len() < n {
                let op = if tr.is_empty() { Op::Sink } else { Op::Input };
                tr.push(TraceEntry {
                    op,
                    value: f64::NAN,
                    constant: None,
                    label: None,
                });
            }
        }
    }

    /// Whether tracing is on.
    pub fn is_tracing(&self) -> bool {
        self.flags.get() & TRACE != 0
    }

    /// The first non-finite forward value recorded while checking was on,
    /// anywhere on the tape, whether or not an output depends on it
    /// ([`Var::try_backward`] reports only those its output depends on).
    pub fn first_non_finite(&self) -> Option<NonFinite> {
        // SAFETY: see the struct comment.
        let bad = unsafe { &*self.non_finite.get() };
        bad.first()
            .map(|&(i, v)| self.forward_non_finite(i as usize, v))
    }

    /// The first non-finite forward value recorded while checking was on
    /// that node `out` depends on ([`Tape::depends`]), `out` included.
    /// Costs nothing beyond a look at the list unless some node up to
    /// `out` is in it; then one pass over the nodes below `out`.
    pub(crate) fn first_non_finite_below(&self, out: usize) -> Option<NonFinite> {
        // SAFETY: see the struct comment.
        let bad = unsafe { &*self.non_finite.get() };
        let mut below = bad.iter().filter(|&&(i, _)| i as usize <= out).peekable();
        below.peek()?;
        let on = self.depends(out);
        below
            .find(|&&(i, _)| on[i as usize])
            .map(|&(i, v)| self.forward_non_finite(i as usize, v))
    }

    /// The report of node `idx`'s non-finite forward value `value`.
    fn forward_non_finite(&self, idx: usize, value: f64) -> NonFinite {
        NonFinite {
            node: idx,
            op: self.op_name(idx),
            value,
            in_backward: false,
            zero_adjoint: false,
        }
    }

    /// Which of the nodes `0..=out` node `out` depends on: `out` itself
    /// and, recursively, the operands of each such node (every input of a
    /// custom operation for each of its outputs), whatever the partials'
    /// values. Operands are recorded before the nodes that use them, so
    /// one downward pass marks them all.
    pub(crate) fn depends(&self, out: usize) -> Vec<bool> {
        let heads = &self.nodes_ref().heads;
        let customs = self.customs_ref();
        let mut on = vec![false; out + 1];
        on[out] = true;
        // customs are in recording order: those whose outputs start at or
        // below `i` are `customs[..c]`
        let mut c = customs.len();
        for i in (1..=out).rev() {
            if !on[i] {
                continue;
            }
            while c > 0 && customs[c - 1].first_output as usize > i {
                c -= 1;
            }
            if let Some(op) = c.checked_sub(1).map(|k| &customs[k]) {
                if i < (op.first_output + op.n_outputs) as usize {
                    for &p in &op.inputs {
                        on[p as usize] = true;
                    }
                    continue;
                }
            }
            // an input's parents are the sink, 0
            let (p0, p1) = parents(heads[i]);
            on[p0] = true;
            on[p1] = true;
        }
        on
    }

    /// The trace (empty unless tracing is on): one entry per node, in order.
    pub fn trace(&self) -> Vec<TraceEntry> {
        // SAFETY: see the struct comment.
        unsafe { (*self.trace.get()).clone() }
    }

    /// The nodes that node `idx` was computed from, for graph export: the
    /// one or two operands of an elementary operation (the reserved sink is
    /// left out), or every input of a custom operation for each of its
    /// outputs. Empty for inputs and for an index past the end.
    pub fn parents_of(&self, idx: usize) -> Vec<usize> {
        let nodes = self.nodes_ref();
        if idx == 0 || idx >= nodes.heads.len() {
            return Vec::new();
        }
        if let Some(c) = self.customs_ref().iter().find(|c| {
            (c.first_output as usize..(c.first_output + c.n_outputs) as usize).contains(&idx)
        }) {
            return c.inputs.iter().map(|&i| i as usize).collect();
        }
        let (ps, _) = nodes.decode(idx, nodes.partials_before(idx));
        ps.into_iter().filter(|&p| p != 0).collect()
    }

    /// The name of the custom operation that produced node `idx`, if any.
    pub fn custom_name_of(&self, idx: usize) -> Option<String> {
        self.customs_ref()
            .iter()
            .find(|c| {
                (c.first_output as usize..(c.first_output + c.n_outputs) as usize).contains(&idx)
            })
            .map(|c| c.name.clone())
    }

    /// Gives `v` a name that graph exports show (only while tracing).
    pub fn name(&self, v: Var<'_, T>, label: &str) {
        if self.is_tracing() {
            // SAFETY: see the struct comment.
            let tr = unsafe { &mut *self.trace.get() };
            if let Some(e) = tr.get_mut(v.idx as usize) {
                e.label = Some(label.to_string());
            }
        }
    }

    /// A new input (leaf) with value `v`.
    #[inline]
    pub fn var(&self, v: T) -> Var<'_, T> {
        self.push(Op::Input, v, K_LEAF, [0, 0], [T::zero(), T::zero()], None)
    }

    /// New inputs, one per value.
    pub fn vars(&self, vs: &[T]) -> Vec<Var<'_, T>> {
        self.reserve(vs.len());
        vs.iter().map(|&v| self.var(v)).collect()
    }

    /// Reserves room for `additional` more nodes.
    pub fn reserve(&self, additional: usize) {
        self.guard();
        // SAFETY: see the struct comment.
        unsafe { (*self.nodes.get()).reserve(additional) }
    }

    /// Keeps the first `n` nodes (`&mut`: no `Var` past them is alive).
    pub(crate) fn truncate_nodes(&mut self, n: usize) {
        self.nodes.get_mut().truncate(n.max(1));
    }

    #[inline(always)]
    pub(crate) fn nodes_ref(&self) -> &Arena<T> {
        // SAFETY: see the struct comment; callers do not hold this across a push.
        unsafe { &*self.nodes.get() }
    }

    #[inline(always)]
    pub(crate) fn customs_ref(&self) -> &Vec<CustomNode<T>> {
        // SAFETY: see the struct comment.
        unsafe { &*self.customs.get() }
    }

    /// Appends a node of `kind` with parents `p` and the first
    /// [`n_partials`]`(kind)` partials of `d`, and returns its handle. The
    /// fast path is one comparison and the stores; growing, tracing and the
    /// guard against recording during a sweep live in [`Tape::push_slow`].
    #[inline(always)]
    pub(crate) fn push(
        &self,
        op: Op,
        value: T,
        kind: u64,
        p: [u32; 2],
        d: [T; 2],
        constant: Option<T>,
    ) -> Var<'_, T> {
        // SAFETY: no reference into `nodes` is alive here (see struct
        // comment; a running sweep sets a flag, which takes the slow path).
        let a = unsafe { &mut *self.nodes.get() };
        let idx = a.heads.len();
        // `room` is 0 while any flag is set, so this one comparison also
        // sends tracing, checking and recording during a sweep to the slow
        // path (with a second for a sine or cosine whose copy is full)
        let idx = if idx >= a.room || (takes_arg(kind) && a.args.len() == a.args.capacity()) {
            // the partials go by value: an array would be built on the
            // stack on every push, for a call that almost never happens
            self.push_slow(op, value, kind, p, d[0], d[1], constant)
        } else {
            // SAFETY: idx < room <= heads.capacity(), partials has room
            // for two more per head slot, and (room > 0: not lent) adj has
            // room for one, at `idx` (the arena's invariants); args has
            // room for one if the node takes one (checked above), and
            // arg_cos the bit (it covers args' capacity).
            unsafe {
                // a page ahead of each stream (one head line: 8 nodes)
                if idx % 8 == 0 {
                    record_prefetch(a, idx);
                }
                a.heads.as_mut_ptr().add(idx).write(head(kind, p[0], p[1]));
                a.heads.set_len(idx + 1);
                a.adj.as_mut_ptr().add(idx).write(T::zero());
                a.adj.set_len(idx + 1);
                let n = n_partials(kind);
                if n > 0 {
                    let pc = a.partials.len();
                    let dst = a.partials.as_mut_ptr().add(pc);
                    dst.write(d[0]);
                    if n > 1 {
                        dst.add(1).write(d[1]);
                    }
                    a.partials.set_len(pc + n);
                }
                if takes_arg(kind) {
                    let ac = a.args.len();
                    a.args.as_mut_ptr().add(ac).write(d[0]);
                    a.args.set_len(ac + 1);
                    if kind & KIND_MASK == K_COS {
                        *a.arg_cos.get_unchecked_mut(ac / 64) |= 1 << (ac % 64);
                    }
                }
            }
            idx as u32
        };
        Var {
            tape: self,
            idx,
            val: value,
        }
    }

    /// The rest of [`Tape::push`]: growing the arena, tracing, checking,
    /// and the guard against recording during a sweep. Returns the node's
    /// index (a plain integer, so that the fast path's handle stays in
    /// registers).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn push_slow(
        &self,
        op: Op,
        value: T,
        kind: u64,
        p: [u32; 2],
        d0: T,
        d1: T,
        constant: Option<T>,
    ) -> u32 {
        self.guard();
        // SAFETY: as in `push`.
        let a = unsafe { &mut *self.nodes.get() };
        let idx = a.heads.len();
        assert!(idx < MAX_NODES, "tape is full (2^30 nodes)");
        if idx >= a.heads.capacity() {
            a.reserve(idx.max(16));
        }
        a.heads.push(head(kind, p[0], p[1]));
        a.partials.extend_from_slice(&[d0, d1][..n_partials(kind)]);
        if takes_arg(kind) {
            a.args.push(d0);
            let words = a.args.capacity().div_ceil(64);
            if a.arg_cos.len() < words {
                a.arg_cos.resize(words, 0);
            }
            if kind & KIND_MASK == K_COS {
                let j = a.args.len() - 1;
                a.arg_cos[j / 64] |= 1 << (j % 64);
            }
        }
        if !a.adj_lent {
            a.adj.push(T::zero());
        }
        if self.flags.get() != 0 {
            self.record_slow(op, value, constant, idx);
        }
        idx as u32
    }

    /// Panics if a backward sweep is running on this tape (a custom
    /// operation's vector-Jacobian product must not record onto the tape
    /// being differentiated).
    #[inline]
    pub(crate) fn guard(&self) {
        if self.flags.get() & IN_BACKWARD != 0 {
            panic!("cannot record onto a tape during its own backward pass");
        }
    }

    #[cold]
    #[inline(never)]
    fn record_slow(&self, op: Op, value: T, constant: Option<T>, idx: usize) {
        // SAFETY: see the struct comment.
        let tr = unsafe { &mut *self.trace.get() };
        tr.push(TraceEntry {
            op,
            value: value.to_f64(),
            constant: constant.map(|c| c.to_f64()),
            label: None,
        });
        if self.flags.get() & CHECK != 0 && !value.is_finite() {
            // SAFETY: see the struct comment.
            let bad = unsafe { &mut *self.non_finite.get() };
            bad.push((idx as u32, value.to_f64()));
        }
    }

    /// The operation of node `idx` and its value, when traced (tracing or
    /// checking was on as it was recorded); `None` for a node recorded
    /// before (an elementary operation's is traced as an input then).
    pub(crate) fn traced(&self, idx: usize) -> Option<(Op, f64)> {
        // SAFETY: see the struct comment.
        let tr = unsafe { &*self.trace.get() };
        tr.get(idx)
            .map(|e| (e.op, e.value))
            .filter(|e| !matches!(e.0, Op::Input | Op::Sink))
    }

    /// The name of the operation that produced node `idx` (needs tracing).
    pub(crate) fn op_name(&self, idx: usize) -> String {
        // SAFETY: see the struct comment.
        let tr = unsafe { &*self.trace.get() };
        match tr.get(idx).map(|e| e.op) {
            Some(Op::Custom) => self
                .customs_ref()
                .iter()
                .find(|c| {
                    (c.first_output as usize..(c.first_output + c.n_outputs) as usize)
                        .contains(&idx)
                })
                .map(|c| format!("custom:{}", c.name))
                .unwrap_or_else(|| "custom".into()),
            Some(op) => op.name().to_string(),
            None => "unknown".into(),
        }
    }

    /// Records a custom operation: one node with many inputs and outputs.
    ///
    /// `outputs` are the forward values, already computed by the caller from
    /// the inputs' values; `vjp` receives the gradients of the outputs and
    /// adds the gradients of the inputs into its second argument (zeroed by
    /// the engine, one slot per input). Inside the kernel nothing is
    /// recorded, so a custom operation over 10⁶ values costs one node per
    /// output and four bytes per input, not a node per arithmetic step.
    ///
    /// ```
    /// use chainrule::Tape;
    /// let tape = Tape::new();
    /// let x = tape.vars(&[1.0, 2.0, 3.0]);
    /// // y = sum of squares, as one fused kernel
    /// let vals: Vec<f64> = x.iter().map(|v| v.value()).collect();
    /// let y = tape.custom_op("sumsq", &x, vec![vals.iter().map(|v| v * v).sum()],
    ///     move |gy, gx| for (g, v) in gx.iter_mut().zip(&vals) { *g += 2.0 * v * gy[0] });
    /// let grads = y[0].backward();
    /// assert_eq!(grads.wrt(x[2]), 6.0);
    /// ```
    pub fn custom_op<'t, F>(
        &'t self,
        name: &str,
        inputs: &[Var<'t, T>],
        outputs: Vec<T>,
        vjp: F,
    ) -> Vec<Var<'t, T>>
    where
        F: Fn(&[T], &mut [T]) + 'static,
    {
        self.guard();
        for v in inputs {
            assert!(
                std::ptr::eq(v.tape, self),
                "custom_op `{name}`: an input belongs to another tape"
            );
        }
        let first = self.len() as u32;
        self.reserve(outputs.len());
        let outs: Vec<Var<'t, T>> = outputs
            .iter()
            .map(|&o| self.push(Op::Custom, o, K_LEAF, [0, 0], [T::zero(), T::zero()], None))
            .collect();
        // SAFETY: see the struct comment.
        let customs = unsafe { &mut *self.customs.get() };
        customs.push(CustomNode {
            name: name.to_string(),
            first_output: first,
            n_outputs: outputs.len() as u32,
            inputs: inputs.iter().map(|v| v.idx).collect(),
            vjp: Box::new(vjp),
        });
        outs
    }
}

/// The panic of a binary operation whose operands are on two tapes, out of
/// line so that the recording's fast path does not prepare its message.
#[cold]
#[inline(never)]
#[track_caller]
fn different_tapes(op: Op) -> ! {
    panic!("operands of `{op}` belong to different tapes")
}

fn sink_entry() -> TraceEntry {
    TraceEntry {
        op: Op::Sink,
        value: 0.0,
        constant: None,
        label: None,
    }
}

/// A value recorded on a [`Tape`]: a `Copy` handle that holds its forward
/// value and the index of its node.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Scalar = f64> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) idx: u32,
    pub(crate) val: T,
}

impl<T: Scalar> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var({:?} @{})", self.val, self.idx)
    }
}

impl<'t, T: Scalar> Var<'t, T> {
    /// The forward value.
    #[inline(always)]
    pub fn value(&self) -> T {
        self.val
    }

    /// The node's index on its tape.
    #[inline(always)]
    pub fn index(&self) -> usize {
        self.idx as usize
    }

    /// The tape this value is recorded on.
    #[inline(always)]
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Records a unary operation with local partial `d`.
    #[inline(always)]
    pub(crate) fn unary(self, op: Op, value: T, d: T) -> Var<'t, T> {
        self.tape
            .push(op, value, K_UNARY, [self.idx, 0], [d, T::zero()], None)
    }

    /// Records `sin` or `cos` (`kind` [`K_SIN`] or [`K_COS`]) of `self`:
    /// `self`'s value, the argument, is stored where a unary node keeps
    /// its partial.
    #[inline(always)]
    pub(crate) fn unary_arg(self, op: Op, value: T, kind: u64) -> Var<'t, T> {
        self.tape
            .push(op, value, kind, [self.idx, 0], [self.val, T::zero()], None)
    }

    /// Records a unary operation with a constant operand (`x * 2`).
    #[inline(always)]
    pub(crate) fn unary_c(self, op: Op, value: T, d: T, c: T) -> Var<'t, T> {
        self.tape
            .push(op, value, K_UNARY, [self.idx, 0], [d, T::zero()], Some(c))
    }

    /// Records a unary operation with partial 1 and a constant operand
    /// (`x + c`, `x - c`): no partial is stored where `g · 1 = g` exactly.
    #[inline(always)]
    pub(crate) fn unary_pass(self, op: Op, value: T, c: T) -> Var<'t, T> {
        let kind = if T::MUL_BY_ONE_EXACT { K_PASS } else { K_UNARY };
        self.tape.push(
            op,
            value,
            kind,
            [self.idx, 0],
            [T::one(), T::zero()],
            Some(c),
        )
    }

    /// Records a binary operation with local partials `da`, `db`.
    #[inline(always)]
    pub(crate) fn binary(self, other: Var<'t, T>, op: Op, value: T, da: T, db: T) -> Var<'t, T> {
        if !std::ptr::eq(self.tape, other.tape) {
            different_tapes(op);
        }
        self.tape
            .push(op, value, K_BINARY, [self.idx, other.idx], [da, db], None)
    }

    /// Records a sum (partials 1 and 1): no partials are stored where
    /// `g · 1 = g` exactly.
    #[inline(always)]
    pub(crate) fn binary_add(self, other: Var<'t, T>, op: Op, value: T) -> Var<'t, T> {
        if !std::ptr::eq(self.tape, other.tape) {
            different_tapes(op);
        }
        let kind = if T::MUL_BY_ONE_EXACT { K_ADD } else { K_BINARY };
        self.tape.push(
            op,
            value,
            kind,
            [self.idx, other.idx],
            [T::one(), T::one()],
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_sees_every_push_even_after_the_arena_grows() {
        let mut tape = Tape::new();
        tape.set_tracing(true);
        // growing recomputes the fast path's room, which must stay shut
        tape.reserve(1000);
        {
            let x = tape.var(2.0);
            let y = x * x + 1.0;
            let tr = tape.trace();
            assert_eq!(tr.len(), tape.len());
            assert_eq!(tr[y.index()].op, Op::Add);
            assert_eq!(tr[y.index()].value, 5.0);
        }
        tape.set_tracing(false);
        let n = tape.len();
        let z = tape.var(1.0).sin();
        assert_eq!(z.index(), n + 1);
        assert_eq!(tape.trace().len(), n, "nodes after tracing stopped");
    }

    #[test]
    fn recording_during_a_sweep_panics_and_the_tape_records_after() {
        let tape = Tape::new();
        let x = tape.var(3.0);
        let tp: *const Tape = &tape;
        let y = tape.custom_op("records", &[x], vec![6.0], move |gy, gx| {
            // SAFETY: called only by the sweep below, while `tape` lives
            let t = unsafe { &*tp };
            t.var(1.0);
            gx[0] += 2.0 * gy[0];
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y[0].backward().wrt(x)));
        let msg = *r.unwrap_err().downcast_ref::<&str>().unwrap();
        assert!(msg.contains("during its own backward pass"), "{msg}");
        let z = x * 2.0 + 1.0;
        assert_eq!(z.index(), 4);
        assert_eq!(z.backward().wrt(x), 2.0);
    }
}
