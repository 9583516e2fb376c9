//! A counting global allocator, so benchmarks report peak heap bytes that
//! were measured, not guessed. The `chainrule` binary installs it; the count
//! costs four relaxed atomic operations per allocation (five for a large
//! one). The counts are the callers' sizes: a large block's extra page
//! (below) is not counted.
//!
//! It also staggers large blocks within a page. glibc's allocator
//! typically maps every large block on pages of its own (from 128 KiB up,
//! a threshold that rises as large blocks are freed), so that they all
//! start at the same offset in a page, and the trainer's arrays of one
//! Gaussian group (parameters, Adam's two moments, gradients, the `f32`
//! copy) then map entry `i` to the same first-level cache sets: the loops
//! that stream several of them at once (the optimiser's pass) lose their
//! cache lines to each other. Blocks of [`STAGGER_MIN`] bytes or more
//! start [`STAGGER_STEP`]-aligned at an offset that changes from one block
//! to the next, inside a system block a page larger (asked for at the
//! alignment of `malloc`, so that zeroed blocks still come from `calloc`
//! and growing ones from `realloc`). `bench train` on a capture, Zen 2:
//! the optimiser 22.1–22.5 → 15.0–15.9 ms an iteration, the iteration
//! 130.7–133.4 → 124.1–124.3 ms (see BENCHMARKS.md). Addresses change
//! nothing computed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Wraps the system allocator and tracks live and peak heap bytes.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Blocks at least this large are staggered (smaller ones come from the
/// allocator's heap, packed without page alignment).
pub const STAGGER_MIN: usize = 1 << 20;

/// The staggered blocks' alignment, and the unit of their offsets: a
/// cache line.
pub const STAGGER_STEP: usize = 64;

/// Offsets in a page: 63 cache lines, the first kept for the header.
const STAGGER_SLOTS: usize = 4096 / STAGGER_STEP - 1;

/// The alignment the system block is asked for: at most what `malloc`
/// gives (std's `System` then calls `malloc`, `calloc` and `realloc`; at
/// a larger one it zeroes by hand and reallocates by copying).
const OUTER_ALIGN: usize = 8;

/// Staggered blocks so far: the next one's offset.
static STAGGERED: AtomicUsize = AtomicUsize::new(0);

/// Whether blocks of `layout` are staggered (decided from the layout
/// alone, so that `dealloc` and `realloc` decide as `alloc` did).
fn staggered(layout: Layout) -> bool {
    layout.size() >= STAGGER_MIN && layout.align() <= STAGGER_STEP
}

/// The system block under a staggered block of `size` bytes: a page and
/// a cache line more (the alignment, the largest offset and the header).
fn outer(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(4096 + STAGGER_STEP)?, OUTER_ALIGN).ok()
}

/// The first cache-line boundary at or after `base`.
fn line_at_or_after(base: *mut u8) -> *mut u8 {
    let a = base as usize;
    let pad = a.next_multiple_of(STAGGER_STEP) - a;
    base.wrapping_add(pad)
}

/// Puts the staggered block `slot` bytes after the first cache-line
/// boundary of the system block `base`, with `base` stored just below it
/// for `dealloc` and `realloc`; returns the block.
///
/// # Safety
/// `base` is a block of an [`outer`] layout and `slot` is a multiple of
/// [`STAGGER_STEP`] from 64 to `64 · STAGGER_SLOTS`.
unsafe fn place(base: *mut u8, slot: usize) -> *mut u8 {
    // SAFETY: the boundary is at most 63 bytes in, the slot at most 4032
    // more, so the block ends within the outer one's `size + 4160` bytes;
    // the header's 8 bytes lie between the boundary and the block (slot
    // >= 64), and are 8-aligned as the block is 64-aligned
    unsafe {
        let p = line_at_or_after(base).add(slot);
        p.cast::<*mut u8>().sub(1).write(base);
        p
    }
}

/// The staggered block in the new system block `base` (null stays null),
/// at the next slot.
///
/// # Safety
/// `base` is null or a block of an [`outer`] layout.
unsafe fn stagger(base: *mut u8) -> *mut u8 {
    if base.is_null() {
        return base;
    }
    let k = STAGGERED.fetch_add(1, Ordering::Relaxed) % STAGGER_SLOTS;
    // 37 is prime to 63: consecutive blocks 37 lines apart, every slot
    // used before one repeats
    // SAFETY: the caller's block, and a slot in range
    unsafe { place(base, STAGGER_STEP * (1 + (k * 37) % STAGGER_SLOTS)) }
}

/// The staggered block in the system block `nb` that a `realloc` made
/// from one whose block was `off` bytes in, at `slot`, keeping its first
/// `len` bytes: the same slot after `nb`'s first cache-line boundary,
/// where the data already is unless `nb`'s offset to a cache line
/// differs from the old block's (then it is moved there first), with a
/// header naming `nb`.
///
/// # Safety
/// `nb` is a block of an [`outer`] layout for at least `len` bytes whose
/// bytes `off..off + len` are the data, and `slot` is as [`place`] takes.
unsafe fn restagger(nb: *mut u8, off: usize, slot: usize, len: usize) -> *mut u8 {
    let p = line_at_or_after(nb).wrapping_add(slot);
    // SAFETY: both ranges lie within the block's first `4095 + len`
    // bytes; `copy` allows overlap; the header goes below the data's new
    // place after the move
    unsafe {
        if p != nb.add(off) {
            std::ptr::copy(nb.add(off), p, len);
        }
        place(nb, slot)
    }
}

/// The system block under the staggered block `p`.
///
/// # Safety
/// `p` was returned by [`stagger`].
unsafe fn base_of(p: *mut u8) -> *mut u8 {
    // SAFETY: `stagger` wrote the base there
    unsafe { p.cast::<*mut u8>().sub(1).read() }
}

/// A block of `layout` from the system: staggered if [`staggered`].
///
/// # Safety
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
unsafe fn raw_alloc(layout: Layout, zeroed: bool) -> *mut u8 {
    let get = |l: Layout| {
        // SAFETY: a layout of non-zero size (the caller's, or larger)
        unsafe {
            if zeroed {
                System.alloc_zeroed(l)
            } else {
                System.alloc(l)
            }
        }
    };
    if !staggered(layout) {
        return get(layout);
    }
    match outer(layout.size()) {
        // SAFETY: a block of the outer layout, or null
        Some(o) => unsafe { stagger(get(o)) },
        None => std::ptr::null_mut(),
    }
}

/// Returns a block from [`raw_alloc`] with the same layout.
///
/// # Safety
/// As [`GlobalAlloc::dealloc`].
unsafe fn raw_dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: `ptr` came from `raw_alloc` with this layout: staggered
    // exactly when `staggered(layout)` (its outer layout existed then)
    unsafe {
        match staggered(layout).then(|| outer(layout.size())).flatten() {
            Some(o) => System.dealloc(base_of(ptr), o),
            None => System.dealloc(ptr, layout),
        }
    }
}

// SAFETY: forwards every call to `System` (for large blocks, a larger
// system block with the caller's block inside it, at least as aligned as
// asked: `staggered` requires an alignment of at most a cache line);
// counts the caller's sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as the caller promised
        let p = unsafe { raw_alloc(layout, false) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`
        let p = unsafe { raw_alloc(layout, true) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's block, from `alloc` with this layout
        unsafe { raw_dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let p = match (staggered(layout), staggered(new)) {
            // both small: the system's realloc
            // SAFETY: the caller's block and sizes
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            // both staggered: the system block resized (in place or by
            // moving its pages), the caller's block at the same offset
            (true, true) => match (outer(layout.size()), outer(new_size)) {
                // SAFETY: `ptr` is staggered in a block of layout `o`;
                // the resized block keeps its first `off + min(sizes)`
                // bytes, the caller's data among them; the data moves
                // within the block (`copy` allows overlap) before `place`
                // writes the header below its new position
                (Some(o), Some(no)) => unsafe {
                    let base = base_of(ptr);
                    let off = ptr.offset_from(base) as usize;
                    let slot = ptr.offset_from(line_at_or_after(base)) as usize;
                    let nb = System.realloc(base, o, no.size());
                    if nb.is_null() {
                        nb
                    } else {
                        restagger(nb, off, slot, layout.size().min(new_size))
                    }
                },
                _ => std::ptr::null_mut(),
            },
            // across the threshold: a new block, the data copied
            // SAFETY: the old block holds `layout.size()` bytes, the new
            // one `new_size`; the old one is returned as it came
            _ => unsafe {
                let p = raw_alloc(new, false);
                if !p.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    raw_dealloc(ptr, layout);
                }
                p
            },
        };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            add(new_size);
        }
        p
    }
}

#[inline]
fn add(n: usize) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    TOTAL.fetch_add(n, Ordering::Relaxed);
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Allocations so far (`alloc`, `alloc_zeroed` and `realloc` calls that
/// succeeded) and the bytes they asked for, for benchmarks that report
/// allocation per iteration (0 if the counting allocator is not
/// installed).
pub fn allocations() -> (usize, usize) {
    (COUNT.load(Ordering::Relaxed), TOTAL.load(Ordering::Relaxed))
}

/// Heap bytes live now (0 if the counting allocator is not installed).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Resets the peak to the current live bytes and returns that baseline.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The largest live heap size since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Runs `f` and returns its result with the peak heap bytes it added above
/// what was live when it started.
pub fn measure_peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = reset_peak();
    let r = f();
    (r, peak_bytes().saturating_sub(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block that `realloc` moved to a system block at another offset to
    /// a cache line (as the heap's blocks can be) is moved to its slot
    /// there, 64-aligned, with its bytes and a header naming the new
    /// block; one at the same offset stays. (A buffer stands in for the
    /// system block, the data placed as the old block had it.)
    #[test]
    fn a_block_realloc_moved_off_its_line_is_put_back_on_it() {
        let len = 3000;
        let slot = 5 * STAGGER_STEP;
        let mut buf = vec![0u64; (len + 4096 + STAGGER_STEP) / 8 + 16];
        let start = buf.as_mut_ptr().cast::<u8>();
        for shift in [0, 8, 24, 56] {
            // the new system block `shift` bytes past a cache line, its
            // data where the old block's offset put it (the old block's
            // base was on a cache line, so `off` = `slot`)
            let nb = line_at_or_after(start).wrapping_add(shift);
            let off = slot;
            // SAFETY: every access lies within `buf` (`nb` at most 63 +
            // 56 bytes in, then `off + len`, or the slot after the next
            // boundary plus `len`, within the 16 spare words)
            unsafe {
                for j in 0..len {
                    *nb.add(off + j) = (j * 7 % 251) as u8;
                }
                let p = restagger(nb, off, slot, len);
                assert_eq!(p as usize % STAGGER_STEP, 0, "shift {shift}");
                assert_eq!(p as usize - line_at_or_after(nb) as usize, slot);
                assert_eq!(base_of(p), nb);
                assert_eq!(p == nb.add(off), shift == 0);
                for j in 0..len {
                    assert_eq!(*p.add(j), (j * 7 % 251) as u8, "shift {shift} byte {j}");
                }
            }
        }
    }

    /// Large blocks start at different offsets from their system blocks'
    /// first cache-line boundary, each aligned to a cache line; their bytes survive growing in place or by moving,
    /// shrinking below the threshold and growing above it again; zeroed
    /// ones are zeroed; a block that asks for a page's alignment gets it
    /// (not staggered); and the live count is the callers' bytes
    /// throughout. (Called directly: the test binary's global allocator is
    /// the system's, so nothing else moves the counts.)
    #[test]
    fn large_blocks_are_staggered_and_keep_their_bytes() {
        let a = CountingAlloc;
        let live = live_bytes();
        let big = Layout::from_size_align(STAGGER_MIN + 24, 8).unwrap();
        // SAFETY: every block is used within its size and freed once with
        // the layout (or size) it has
        unsafe {
            let blocks: Vec<*mut u8> = (0..4).map(|_| a.alloc(big)).collect();
            assert!(blocks.iter().all(|&p| p as usize % STAGGER_STEP == 0));
            // (the slot after the system block's first cache-line
            // boundary: distinct for consecutive blocks whatever offsets
            // in a page the system's blocks have)
            let mut slots: Vec<usize> = blocks
                .iter()
                .map(|&p| p as usize - line_at_or_after(base_of(p)) as usize)
                .collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), 4, "the same slot twice");
            assert_eq!(live_bytes(), live + 4 * big.size());
            for (i, &p) in blocks.iter().enumerate() {
                for j in 0..big.size() {
                    *p.add(j) = (i + j * 7) as u8;
                }
            }
            let check = |p: *mut u8, i: usize, n: usize| {
                for j in 0..n {
                    assert_eq!(*p.add(j), (i + j * 7) as u8, "block {i} byte {j}");
                }
            };
            // grown (staggered to staggered), then shrunk below the
            // threshold, then grown above it again
            let p = a.realloc(blocks[0], big, 3 * STAGGER_MIN);
            assert_eq!(p as usize % STAGGER_STEP, 0);
            check(p, 0, big.size());
            let small = 1000;
            let p = a.realloc(
                p,
                Layout::from_size_align(3 * STAGGER_MIN, 8).unwrap(),
                small,
            );
            check(p, 0, small);
            let p = a.realloc(p, Layout::from_size_align(small, 8).unwrap(), big.size());
            check(p, 0, small);
            assert_eq!(live_bytes(), live + 4 * big.size());
            a.dealloc(p, big);
            for (i, &p) in blocks.iter().enumerate().skip(1) {
                check(p, i, big.size());
                a.dealloc(p, big);
            }
            let z = a.alloc_zeroed(big);
            assert!((0..big.size()).all(|j| *z.add(j) == 0));
            a.dealloc(z, big);
            let paged = Layout::from_size_align(STAGGER_MIN, 4096).unwrap();
            let q = a.alloc(paged);
            assert_eq!(q as usize % 4096, 0);
            a.dealloc(q, paged);
        }
        assert_eq!(live_bytes(), live);
    }
}
