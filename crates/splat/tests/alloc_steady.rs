//! Issue 15's "no allocation per iteration": once a trainer has warmed up,
//! a training iteration without a density round allocates nothing.
//!
//! This binary installs a counting global allocator (so it holds this one
//! test only: a second test running beside it would be counted too) and
//! counts the allocations of training steps after a warm-up. Counts, not
//! time: the assertion does not depend on the machine's speed or load.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions};
use splat::train::{TrainConfig, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Whether allocations print a backtrace (`ALLOC_TRACE=1`, for finding
/// one that the assertion reports).
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_TRACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn note(size: usize) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size, Ordering::Relaxed);
    if TRACE.load(Ordering::Relaxed) {
        // the backtrace allocates: not inside itself
        let _ = IN_TRACE.try_with(|t| {
            if !t.replace(true) {
                let bt = std::backtrace::Backtrace::force_capture();
                eprintln!("allocation of {size} bytes:\n{bt}");
                t.set(false);
            }
        });
    }
}

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` (on any thread) and the bytes they asked for.
fn count(f: impl FnOnce()) -> (usize, usize) {
    // (reading the variable allocates: before the count)
    let trace = std::env::var_os("ALLOC_TRACE").is_some();
    let (c, b) = (COUNT.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    TRACE.store(trace, Ordering::SeqCst);
    f();
    TRACE.store(false, Ordering::SeqCst);
    (
        COUNT.load(Ordering::SeqCst) - c,
        BYTES.load(Ordering::SeqCst) - b,
    )
}

#[test]
fn steady_state_training_iterations_allocate_nothing() {
    let d = std::env::temp_dir().join(format!("chainrule-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let opts = SynthOptions {
        train_views: 6,
        test_views: 1,
        size: 64,
        seed: 3,
    };
    write_dataset(&d, &opts).unwrap();
    let ds = data::load(&d, &LoadOptions::default()).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    let cfg = TrainConfig {
        iters: 1000,
        init_points: 8000,
        sh_degree: 3,
        // every SH degree active after the warm-up
        sh_interval: 1,
        // no density round (nor opacity reset) in this run
        densify_from: 1000,
        densify_every: 100,
        opacity_reset_every: 0,
        ..TrainConfig::default()
    };
    // two threads at least, so the parallel stages split their work
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = Trainer::new(ds, cfg).unwrap();
        // the warm-up: every view drawn at least once, every SH degree on,
        // buffers grown to what the views need (with headroom)
        for _ in 0..40 {
            t.step().unwrap();
        }
        let n = t.len();
        let (allocs, bytes) = count(|| {
            for _ in 0..30 {
                t.step().unwrap();
            }
        });
        assert_eq!(t.len(), n, "no density round expected");
        assert_eq!(
            allocs, 0,
            "30 steady-state iterations allocated {allocs} times ({bytes} bytes); \
             rerun with ALLOC_TRACE=1 -- --nocapture for their backtraces"
        );
    });
}
