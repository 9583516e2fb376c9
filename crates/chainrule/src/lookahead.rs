//! A second thread that computes the sweep's deferred partials ahead of it.
//!
//! `sin` and `cos` store their argument and leave the derivative (a call of
//! `cos` or `sin`) to the sweep ([`crate::tape::K_SIN`]). On a long tape
//! those calls are much of the reverse sweep's time, yet they depend only
//! on what was recorded, not on the adjoints, so another core can make them
//! while the sweep runs. The helper reads the arguments from the tape's
//! compact copy ([`crate::tape::Arena::args`]), never the nodes themselves:
//! cache lines that two cores have read cost the next recording, which
//! overwrites them, an invalidation each.
//!
//! The deferred partials of a sweep's range are cut into blocks of
//! [`BLOCK`], counted from the top. The helper claims blocks ahead of the
//! sweep, computes a claimed block's partials into a slot of a small ring
//! (from the top down), and marks it done; the sweep claims any block it
//! reaches first and computes that block's partials itself, as it would
//! alone. Both use [`partial`], so the values are the same bits whoever
//! makes them, and the sweep adds in the same order: the gradients are
//! identical with or without the helper.
//!
//! The sweep never waits long: a block the helper claimed but has not
//! finished after [`WAIT`] is swept with its partials computed in place
//! (the helper's copy is then unused). The helper never runs more than
//! [`RING`] blocks ahead.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::scalar::Scalar;
use crate::tape::{partial, takes_arg, K_COS, K_SIN};

/// Deferred partials per block: claims cost an atomic operation each, and
/// a block's partials are ready in a few microseconds.
pub(crate) const BLOCK: usize = 256;

/// Blocks the helper may run ahead of the sweep (the ring's slots:
/// `RING × BLOCK` values, 128 KiB in `f64`).
const RING: usize = 16;

/// How long the sweep waits for a block the helper is computing before it
/// computes the block's partials itself (a helper that the system has
/// descheduled must not stall the sweep).
const WAIT: Duration = Duration::from_micros(20);

/// Sweeps of fewer nodes run on one thread (a thread costs tens of
/// microseconds to start; 2²⁰ nodes take milliseconds to sweep).
pub(crate) const MIN_NODES: usize = 1 << 20;

/// Whether sweeps may use a helper thread: more than one core, and
/// `CHAINRULE_SWEEP_HELPER` not set to `0`.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("CHAINRULE_SWEEP_HELPER").is_none_or(|v| v != "0")
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    })
}

/// Whether the top of `heads[lo..hi]` holds deferred partials at a density
/// worth a thread (a sample of 4,096 nodes: recorded loops repeat their
/// pattern; one `sin` in 32 nodes costs about as much as the rest).
pub(crate) fn worth_it(heads: &[u64], lo: usize, hi: usize) -> bool {
    let from = hi.saturating_sub(4096).max(lo);
    heads[from..hi].iter().filter(|&&h| takes_arg(h)).count() * 32 >= hi - from
}

/// The state a sweep and its helper share.
pub(crate) struct Ahead<T> {
    /// The next block nobody has claimed.
    next: AtomicUsize,
    /// The block the sweep is on (every block below it is finished with).
    at: AtomicUsize,
    /// `done[k % RING] == k + 1` once block `k`'s partials are in its slot.
    done: [AtomicUsize; RING],
    /// Set by the sweep when it ends (or unwinds): the helper returns.
    stop: AtomicBool,
    slots: Box<[UnsafeCell<T>]>,
}

// SAFETY: a slot is written only by the helper, for a block `k` it claimed
// and has not marked done, and only while `k < at + RING`: the sweep has
// then taken block `k - RING + 1` (its `at` store is Release, after its
// reads of block `k - RING`'s slot, the same slot). The sweep reads a slot
// only after `done` says (Acquire) that the writes are finished, and only
// until it takes the next block.
unsafe impl<T: Send> Sync for Ahead<T> {}

/// Sets [`Ahead::stop`] when dropped, so that the helper returns even if
/// the sweep unwinds.
pub(crate) struct StopOnDrop<'a, T>(pub(crate) &'a Ahead<T>);

impl<T> Drop for StopOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
    }
}

impl<T: Scalar> Ahead<T> {
    /// The shared state for one sweep.
    pub(crate) fn new() -> Self {
        Ahead {
            next: AtomicUsize::new(0),
            at: AtomicUsize::new(0),
            done: std::array::from_fn(|_| AtomicUsize::new(0)),
            stop: AtomicBool::new(false),
            slots: (0..RING * BLOCK)
                .map(|_| UnsafeCell::new(T::zero()))
                .collect(),
        }
    }

    /// Called by the sweep as it reaches the first deferred partial of
    /// block `k` (blocks taken in order from 0): the block's partials, from
    /// the top, if the helper has made them (or finishes them within
    /// [`WAIT`]), or `None` if the sweep is to compute them itself.
    pub(crate) fn take(&self, k: usize) -> Option<&[T]> {
        self.at.store(k, Ordering::Release);
        if self
            .next
            .compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return None;
        }
        let done = &self.done[k % RING];
        let mut since: Option<Instant> = None;
        let mut spins = 0u32;
        while done.load(Ordering::Acquire) != k + 1 {
            std::hint::spin_loop();
            spins += 1;
            if spins % 64 == 0 {
                let t0 = *since.get_or_insert_with(Instant::now);
                if t0.elapsed() > WAIT {
                    return None;
                }
            }
        }
        let slot = &self.slots[(k % RING) * BLOCK..(k % RING + 1) * BLOCK];
        // SAFETY: `done` (Acquire) says the helper's writes to this slot
        // are finished, and it writes it again only for block k + RING,
        // which it may claim only once the sweep has taken block k + 1.
        Some(unsafe { std::slice::from_raw_parts(slot.as_ptr().cast::<T>(), BLOCK) })
    }

    /// The helper's loop: claims blocks ahead of the sweep and computes
    /// their deferred partials, until the arguments run out or the sweep
    /// ends. `top` is the number of arguments of the nodes below the
    /// sweep's range's top (block 0 ends there).
    pub(crate) fn help(&self, args: &[T], cos: &[u64], top: usize) {
        let mut spins = 0u32;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let k = self.next.load(Ordering::Acquire);
            let Some(end) = top.checked_sub(k * BLOCK).filter(|&e| e > 0) else {
                return;
            };
            if k >= self.at.load(Ordering::Acquire) + RING {
                // far enough ahead: let the sweep catch up
                spins += 1;
                if spins % 256 == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            if self
                .next
                .compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let base = (k % RING) * BLOCK;
            // SAFETY: see `unsafe impl Sync`: the slot is this thread's
            // until it marks the block done.
            let slot = unsafe { std::slice::from_raw_parts_mut(self.slots[base].get(), BLOCK) };
            fill(slot, args, cos, end);
            self.done[k % RING].store(k + 1, Ordering::Release);
        }
    }
}

/// The sweep's side: where each block of deferred partials comes from.
pub(crate) struct Feed<'a, T> {
    ahead: &'a Ahead<T>,
    args: &'a [T],
    cos: &'a [u64],
    /// The number of arguments below the top of the sweep's range.
    top: usize,
    /// The block the sweep computes itself when it gets there first.
    own: Box<[T]>,
}

impl<'a, T: Scalar> Feed<'a, T> {
    /// The sweep's side of `ahead` for a range whose nodes below its top
    /// hold `top` of the tape's `args` (cosines' where `cos` has a bit).
    pub(crate) fn new(ahead: &'a Ahead<T>, args: &'a [T], cos: &'a [u64], top: usize) -> Self {
        Feed {
            ahead,
            args,
            cos,
            top,
            own: vec![T::zero(); BLOCK].into_boxed_slice(),
        }
    }

    /// Block `k`'s deferred partials, from the top, for the sweep: the
    /// helper's, or computed here if the sweep got there first. Valid
    /// until the next call. A block of the range's bottom may hold fewer
    /// than [`BLOCK`]; the sweep reads only those its nodes need.
    pub(crate) fn block(&mut self, k: usize) -> &[T] {
        if let Some(made) = self.ahead.take(k) {
            return made;
        }
        let end = self.top.saturating_sub(k * BLOCK);
        fill(&mut self.own, self.args, self.cos, end);
        &self.own
    }
}

/// The deferred partials of arguments `end - BLOCK .. end` (those that
/// exist), from the top, into `out`.
#[inline(always)]
fn fill<T: Scalar>(out: &mut [T], args: &[T], cos: &[u64], end: usize) {
    for (o, i) in out.iter_mut().zip((end.saturating_sub(BLOCK)..end).rev()) {
        let kind = if cos[i / 64] >> (i % 64) & 1 == 1 {
            K_COS
        } else {
            K_SIN
        };
        *o = partial(kind, args[i]);
    }
}
