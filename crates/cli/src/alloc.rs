//! A counting global allocator, so benchmarks report peak heap bytes that
//! were measured, not guessed. The `chainrule` binary installs it; the count
//! costs four relaxed atomic operations per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Wraps the system allocator and tracks live and peak heap bytes.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
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
