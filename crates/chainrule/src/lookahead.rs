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
//! A helper slower than the sweep (a vCPU that its host shares with other
//! work makes the calls at half speed at times) never claims a block the
//! sweep is about to reach: it claims at least [`LEAD`] blocks ahead of the
//! sweep and marks those it leaps over as the sweep's own. The two then
//! share the work (the sweep makes every block the helper leapt over)
//! instead of the sweep waiting in vain for the block the helper is still
//! making, and stopping it.
//!
//! The sweep never waits long for the helper (on a busy machine it may
//! get little of a core): a block the helper claimed but has not finished
//! after [`WAIT`] is swept with its partials computed in place (the
//! helper's copy is then unused), and after [`PATIENCE`] such waits in one
//! sweep it stops the helper, which only takes a share of a busy core
//! from the sweep and the machine's other work. The helper never runs more
//! than [`RING`] blocks ahead. It keeps its normal priority: the sweep
//! joins it before returning, and a helper at idle priority on a busy
//! machine made that join take hundreds of milliseconds.

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
/// sweeps the block with the calls interleaved: about what that costs over
/// sweeping made partials (`bench ad`: 256 steps at 13.7 against 10 ns),
/// so that a slow helper (a shared core) never slows the sweep down.
const WAIT: Duration = Duration::from_micros(1);

/// Waits in vain after which a sweep stops the helper (it has no core to
/// itself).
const PATIENCE: usize = 4;

/// The fewest blocks ahead of the sweep's that the helper claims: enough
/// that a helper making a block in twice the sweep's time finishes it
/// before the sweep arrives. (`bench ad` on a Zen 2 VM whose helper made a
/// block in 4.5 µs against the sweep's 3.5: the sweep 15.6–16.1 ns a step
/// with a lead of 3 to 6, against 21.2–21.5 claiming the next block; see
/// BENCHMARKS.md.)
const LEAD: usize = 4;

/// Marks `done[k % RING]` as `(k + 1) | LEAPT` when the helper leapt over
/// block `k`: the sweep makes it.
const LEAPT: usize = 1 << (usize::BITS - 1);

/// Sweeps of fewer nodes run on one thread (a thread costs tens of
/// microseconds to start; 2²⁰ nodes take milliseconds to sweep).
pub(crate) const MIN_NODES: usize = 1 << 20;

/// Whether sweeps may use a helper thread: more than one core, a target
/// whose helper computes in the sweep's floating-point mode ([`MODE_FOLLOWS`]),
/// and `CHAINRULE_SWEEP_HELPER` not set to `0` (read at the first long
/// sweep of the process).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        MODE_FOLLOWS
            && std::env::var_os("CHAINRULE_SWEEP_HELPER").is_none_or(|v| v != "0")
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
    /// `done[k % RING] == k + 1` once block `k`'s partials are in its slot,
    /// `(k + 1) | LEAPT` if the helper will not make them.
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
// until it takes the next block; a block marked leapt over has its slot
// neither written nor read.
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

    /// Called by the sweep as it starts block `k` (blocks taken in order
    /// from 0; block 0 at the range's top, before its first sine, and the
    /// helper's first claim at least [`LEAD`] blocks down, so the sweep
    /// sweeps the first few itself): the block's partials,
    /// from the top, if the helper has made them (or finishes them within
    /// `wait`), or `Err(waited)` if the sweep is to compute them itself
    /// (`waited`: it waited for the helper in vain).
    ///
    /// Only through [`Feed::block`]: the slice is valid until the sweep
    /// takes the next block, which `Feed`'s `&mut self` enforces.
    fn take(&self, k: usize, wait: Duration) -> Result<&[T], bool> {
        self.at.store(k, Ordering::Release);
        if self
            .next
            .compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Err(false);
        }
        let done = &self.done[k % RING];
        let mut since: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            let v = done.load(Ordering::Acquire);
            if v == k + 1 {
                break;
            }
            if v == (k + 1) | LEAPT {
                return Err(false);
            }
            std::hint::spin_loop();
            spins += 1;
            if spins % 8 == 0 {
                let t0 = *since.get_or_insert_with(Instant::now);
                if t0.elapsed() >= wait {
                    return Err(true);
                }
            }
        }
        let slot = &self.slots[(k % RING) * BLOCK..(k % RING + 1) * BLOCK];
        // SAFETY: `done` (Acquire) says the helper's writes to this slot
        // are finished, and it writes it again only for block k + RING,
        // which it may claim only once the sweep has taken block k + 1.
        Ok(unsafe { std::slice::from_raw_parts(slot.as_ptr().cast::<T>(), BLOCK) })
    }

    /// The helper's loop: claims blocks ahead of the sweep and computes
    /// their deferred partials, until the arguments run out or the sweep
    /// ends. `top` is the number of arguments of the nodes below the
    /// sweep's range's top (block 0 ends there); `mode` is the sweep's
    /// floating-point control word ([`float_mode`]), taken on so that the
    /// partials are computed as the sweep would (flushing subnormals or
    /// not) wherever a new thread starts with the default.
    pub(crate) fn help(&self, args: &[T], cos: &[u64], top: usize, mode: u64) {
        set_float_mode(mode);
        let mut spins = 0u32;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let next = self.next.load(Ordering::Acquire);
            let at = self.at.load(Ordering::Acquire);
            // a block the sweep reaches before the helper could make it
            // is left to the sweep
            let k = next.max(at + LEAD);
            let Some(end) = top.checked_sub(k * BLOCK).filter(|&e| e > 0) else {
                return;
            };
            if k >= at + RING {
                // far enough ahead: let the sweep catch up
                spins += 1;
                if spins % 256 == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            // The blocks to leap over are marked as the sweep's before the
            // claim, so that a sweep already waiting for one of them never
            // waits in vain for the marks (the helper preempted between
            // claim and marks). Their `done` entries last held blocks
            // below `at` (`k < at + RING`), which the sweep has finished
            // with. If the claim fails the marks stay, each naming only
            // its own block: the helper never claims a block below `k`
            // after this (the next try claims at least `k`: `at` only
            // grows), so such a block is the sweep's either way.
            for j in next..k {
                self.done[j % RING].store((j + 1) | LEAPT, Ordering::Release);
            }
            if self
                .next
                .compare_exchange(next, k + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let base = (k % RING) * BLOCK;
            // SAFETY: see `unsafe impl Sync`: the slot is this thread's
            // until it marks the block done.
            let slot = unsafe {
                std::slice::from_raw_parts_mut(
                    UnsafeCell::raw_get(self.slots[base..base + BLOCK].as_ptr()),
                    BLOCK,
                )
            };
            fill(slot, args, cos, end);
            self.done[k % RING].store(k + 1, Ordering::Release);
        }
    }
}

/// The sweep's side: the blocks of deferred partials the helper made.
pub(crate) struct Feed<'a, T> {
    ahead: &'a Ahead<T>,
    /// Waits for the helper in vain so far.
    vain: usize,
}

impl<'a, T: Scalar> Feed<'a, T> {
    /// The sweep's side of `ahead`.
    pub(crate) fn new(ahead: &'a Ahead<T>) -> Self {
        Feed { ahead, vain: 0 }
    }

    /// Block `k`'s deferred partials, from the top, if the helper made
    /// them; `None` if the sweep is to compute them as it goes (interleaved
    /// with the sweep, the calls overlap the adjoints' chain). Valid until
    /// the next call. A block of the range's bottom may hold fewer than
    /// [`BLOCK`]; the sweep reads only those its nodes need.
    pub(crate) fn block(&mut self, k: usize) -> Option<&[T]> {
        if self.vain >= PATIENCE {
            return None;
        }
        match self.ahead.take(k, WAIT) {
            Ok(made) => Some(made),
            Err(waited) => {
                self.vain += usize::from(waited);
                if self.vain >= PATIENCE {
                    // the helper returns at its next block; the sweep
                    // computes the rest itself
                    self.ahead.stop.store(true, Ordering::Release);
                }
                None
            }
        }
    }
}

/// The deferred partials of arguments `end - BLOCK .. end` (those that
/// exist), from the top, into `out`.
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

/// Whether a helper thread computes as the sweep's thread would: it sets
/// the sweep's floating-point control word ([`float_mode`]) on x86-64 and
/// AArch64, and elsewhere a POSIX thread inherits it from the thread that
/// creates it (the sweep's). On other targets no helper is started.
pub(crate) const MODE_FOLLOWS: bool =
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64", unix));

/// The calling thread's floating-point control word: x86-64's MXCSR
/// (rounding, flush-to-zero, denormals-are-zero and the exception masks)
/// or AArch64's FPCR (rounding, flush-to-zero, default NaN); 0 elsewhere.
pub(crate) fn float_mode() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut v = 0u32;
        // SAFETY: stmxcsr stores the 32-bit MXCSR register into `v`.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
        u64::from(v)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    0
}

/// Sets the calling thread's floating-point control word to one read by
/// [`float_mode`].
fn set_float_mode(mode: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        let mode = mode as u32;
        // SAFETY: ldmxcsr loads a value that stmxcsr read on the sweep's
        // thread (valid bits only); a mode other than the default there
        // (flushing subnormals, as `bench --flush-denormals` sets) is the
        // caller's, and this thread only mirrors it.
        // (not `readonly`: as a write to memory the compiler keeps it in
        // order with the loads and stores around it, and so with the
        // arithmetic on what they load)
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &mode, options(nostack)) };
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the value was read from FPCR on the sweep's thread, so every
    // bit set is one that the core accepts; this thread only mirrors it.
    unsafe {
        std::arch::asm!("msr fpcr, {}", in(reg) mode, options(nostack))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = mode;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper thread and a sweep-like consumer taking blocks `0..taken`
    /// in order: every block the helper made holds the partials of its
    /// arguments, from the top. Run under Miri (`cargo +nightly miri test
    /// -p chainrule --lib lookahead`, with `-Zmiri-deterministic-floats`)
    /// it also checks the ring's synchronization for data races and the
    /// slot pointers for aliasing violations.
    fn take_blocks(n: usize, taken: usize) {
        let (args, cos) = arguments(n);
        let ahead = Ahead::new();
        std::thread::scope(|s| {
            let _stop = StopOnDrop(&ahead);
            s.spawn(|| ahead.help(&args, &cos, n, float_mode()));
            let mut feed = Feed::new(&ahead);
            for k in 0..taken {
                let Some(b) = feed.block(k) else { continue };
                check_block(&args, &cos, k, b);
            }
        });
    }

    /// `n` arguments, and a pattern of `cos` (set) and `sin` bits for them.
    fn arguments(n: usize) -> (Vec<f64>, Vec<u64>) {
        let args = (0..n).map(|i| i as f64 * 0.01 - 3.0).collect();
        let cos = (0..n.div_ceil(64))
            .map(|w| 0xAAAA_5555_0F0F_F0F0u64.rotate_left(w as u32))
            .collect();
        (args, cos)
    }

    /// Block `k` made by the helper holds the partials of its arguments,
    /// from the top.
    fn check_block(args: &[f64], cos: &[u64], k: usize, b: &[f64]) {
        let n = args.len();
        for (j, &x) in b.iter().enumerate() {
            let Some(i) = n.checked_sub(k * BLOCK + 1 + j) else {
                break;
            };
            let kind = if cos[i / 64] >> (i % 64) & 1 == 1 {
                K_COS
            } else {
                K_SIN
            };
            assert_eq!(x.to_bits(), partial(kind, args[i]).to_bits(), "{k} {j}");
        }
    }

    /// A helper that starts behind the sweep (the sweep on block 5, which
    /// nobody has claimed) claims block `5 + LEAD` first and leaves the
    /// blocks it leapt over to the sweep, which takes them at once, with
    /// no wait counted in vain; the blocks the helper made hold their
    /// partials.
    #[test]
    fn a_helper_behind_the_sweep_leaps_ahead_and_leaves_the_blocks_between() {
        let blocks = 5 + LEAD + 3;
        let n = blocks * BLOCK - 9;
        let (args, cos) = arguments(n);
        let ahead = Ahead::new();
        ahead.next.store(5, Ordering::Relaxed);
        ahead.at.store(5, Ordering::Relaxed);
        // every block is within the ring of the sweep's, so the helper
        // makes them all, on this thread, and returns at the range's end
        ahead.help(&args, &cos, n, float_mode());
        assert_eq!(ahead.next.load(Ordering::Relaxed), blocks);
        let mut feed = Feed::new(&ahead);
        for k in 5..blocks {
            match feed.block(k) {
                Some(b) => {
                    assert!(k >= 5 + LEAD, "block {k} was leapt over");
                    check_block(&args, &cos, k, b);
                }
                None => assert!(k < 5 + LEAD, "block {k} was not made"),
            }
        }
        assert_eq!(feed.vain, 0);
    }

    /// (How many blocks the helper makes depends on the cores' other
    /// work.)
    #[test]
    fn blocks_hold_their_partials_whoever_makes_them() {
        let n = 3 * RING * BLOCK + 17;
        for _ in 0..20 {
            take_blocks(n, n.div_ceil(BLOCK));
            // a consumer that ends while the helper is still ahead of it
            take_blocks(n, LEAD + 3);
        }
    }

    /// A thread that takes on a floating-point mode has it, and its
    /// arithmetic follows it (the helper's partials are then made as the
    /// sweep's thread would make them, wherever threads start with the
    /// default mode). Only the mode's reads and one sum run in the other
    /// mode; the default is back before anything is checked.
    #[test]
    fn a_thread_takes_on_the_float_mode() {
        // 1 + ε/4 is 1 rounded to nearest, 1 + ε rounded up
        let sum = || std::hint::black_box(1.0f64) + std::hint::black_box(f64::EPSILON / 4.0);
        let (default, mode, got, up, back, near) = std::thread::spawn(move || {
            let default = float_mode();
            // round toward +∞, and flush subnormals
            #[cfg(target_arch = "x86_64")]
            let mode = default & !(3 << 13) | (2 << 13) | 0x8040;
            #[cfg(target_arch = "aarch64")]
            let mode = default & !(3 << 22) | (1 << 22) | (1 << 24);
            #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
            let mode = default;
            set_float_mode(mode);
            // (the sum through `black_box` is made before the mode changes
            // back: arithmetic on registers alone could move past the asm)
            let (got, up) = (float_mode(), std::hint::black_box(sum()));
            set_float_mode(default);
            (default, mode, got, up, float_mode(), sum())
        })
        .join()
        .unwrap();
        assert_eq!((got, back, near), (mode, default, 1.0));
        if mode != default {
            assert_eq!(up, 1.0 + f64::EPSILON);
        }
    }
}
