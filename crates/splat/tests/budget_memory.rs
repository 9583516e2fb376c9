//! The default Gaussian budget's memory figure
//! ([`splat::train::budget::BYTES_PER_GAUSSIAN`]) holds: the peak heap of
//! a training run grows by at most that much per Gaussian of its budget.
//!
//! This binary installs a global allocator that tracks the bytes live and
//! their peak (so it holds this one test only: a second test running
//! beside it would be counted too). Two runs alike but for their budget
//! (4,000 and 12,000 Gaussians, reached at the start) go through what a
//! `chainrule train` run does at its budget: iterations with density
//! rounds that retire and clone, the parameters' moving average, and a
//! checkpoint held in memory while training goes on (the CLI writes it on
//! another thread). Bytes, not time: the assertion does not depend on the
//! machine's speed or load.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions};
use splat::train::budget::BYTES_PER_GAUSSIAN;
use splat::train::{TrainConfig, Trainer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
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
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// A synthetic dataset of 6 training views of 64×64.
fn dataset() -> data::Dataset {
    let d = std::env::temp_dir().join(format!("chainrule-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let opts = SynthOptions {
        train_views: 6,
        test_views: 1,
        size: 64,
        seed: 5,
    };
    write_dataset(&d, &opts).unwrap();
    let ds = data::load(&d, &LoadOptions::default()).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    ds
}

/// The peak heap above what was live before, of a run at a budget of
/// `n` Gaussians, and the Gaussians it ended with.
fn peak_of_a_run(n: usize) -> (usize, usize) {
    let ds = dataset();
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let cfg = TrainConfig {
        iters: 1000,
        init_points: n,
        max_gaussians: n,
        sh_degree: 3,
        // every SH degree active within the run
        sh_interval: 10,
        // rounds at the budget: retire the faintest, clone and split
        retire_per_round: 0.1,
        densify_grad: 1e-6,
        densify_from: 0,
        densify_every: 20,
        prune_big_from: 0,
        opacity_reset_every: 0,
        ema_window: 20,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(ds, cfg).unwrap();
    for _ in 0..50 {
        t.step().unwrap();
    }
    // a checkpoint held while training goes on, as the CLI's writer does
    let held = t.checkpoint();
    for _ in 0..30 {
        t.step().unwrap();
    }
    let len = t.len();
    drop(held);
    drop(t);
    (PEAK.load(Ordering::SeqCst) - base, len)
}

// One test: the tracking allocator would count a second test's
// allocations, running beside it.
#[test]
fn a_training_run_holds_at_most_the_budgets_bytes_per_gaussian() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let (small, n_small) = peak_of_a_run(4_000);
        let (large, n_large) = peak_of_a_run(12_000);
        // both at their budgets (rounds retire as many as they add)
        assert!(n_small > 3_600 && n_large > 10_800, "{n_small}, {n_large}");
        let per = (large as f64 - small as f64) / (n_large as f64 - n_small as f64);
        assert!(
            per <= BYTES_PER_GAUSSIAN as f64,
            "{per:.0} bytes a Gaussian at the peak (peaks {small} and {large}); \
             BYTES_PER_GAUSSIAN ({BYTES_PER_GAUSSIAN}) must follow"
        );
        // and not far above what a run needs, which would cap the default
        // budget lower than the memory requires
        assert!(
            per >= 0.5 * BYTES_PER_GAUSSIAN as f64,
            "{per:.0} bytes a Gaussian at the peak: BYTES_PER_GAUSSIAN \
             ({BYTES_PER_GAUSSIAN}) overstates it"
        );
        eprintln!("{per:.0} bytes a Gaussian at the peak");
    });
}
