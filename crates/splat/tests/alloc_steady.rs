//! Issue 15's "no allocation per iteration": once a trainer has warmed up,
//! a training iteration allocates nothing, with or without a density round
//! of the default strategy (once the scene has reached its budget: a
//! round that grows the scene past the capacity of its vectors allocates
//! them anew, with headroom), and with the MCMC strategy's rounds once the
//! scene is at its budget (a round then relocates dead splats; growth
//! allocates as above).
//!
//! This binary installs a counting global allocator (so it holds this one
//! test only: a second test running beside it would be counted too) and
//! counts the allocations of training steps after a warm-up. Counts, not
//! time: the assertion does not depend on the machine's speed or load.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions, Pixels8};
use splat::train::{Strategy, TrainConfig, Trainer};
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

/// A synthetic dataset of 6 training views of 64×64.
fn dataset() -> data::Dataset {
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
    ds
}

/// Asserts that `f` allocated nothing (`what` names it).
/// Runs `warm` steps, then checks that `n` more allocate nothing.
fn steady(t: &mut Trainer, warm: usize, n: usize, what: &str) {
    for _ in 0..warm {
        t.step().unwrap();
    }
    assert_none(what, || {
        for _ in 0..n {
            t.step().unwrap();
        }
    });
}

fn assert_none(what: &str, f: impl FnOnce()) {
    let (allocs, bytes) = count(f);
    assert_eq!(
        allocs, 0,
        "{what} allocated {allocs} times ({bytes} bytes); \
         rerun with ALLOC_TRACE=1 -- --nocapture for their backtraces"
    );
}

// One test: the counting allocator would count a second test's
// allocations, running beside it.
#[test]
fn steady_state_training_iterations_allocate_nothing() {
    // two threads at least, so the parallel stages split their work
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let base = TrainConfig {
            iters: 1000,
            init_points: 8000,
            sh_degree: 3,
            // every SH degree active after the warm-up
            sh_interval: 1,
            ..TrainConfig::default()
        };
        // iterations without a density round (nor opacity reset)
        let mut t = Trainer::new(
            dataset(),
            TrainConfig {
                densify_from: 1000,
                densify_every: 100,
                opacity_reset_every: 0,
                ..base.clone()
            },
        )
        .unwrap();
        // the warm-up: every view drawn at least once, every SH degree on,
        // buffers grown to what the views need (with headroom)
        let n = t.len();
        steady(&mut t, 40, 30, "30 steady-state iterations");
        assert_eq!(t.len(), n, "no density round expected");

        // masked photos on random backgrounds: the loss reads each photo
        // (held at 8 bits) composited afresh and its mask, into buffers
        // kept from one iteration to the next
        let mut masked = dataset();
        for v in &mut masked.train {
            let (w, h) = (v.width as usize, v.height as usize);
            v.mask = Some(Pixels8::from_bytes(
                (0..w * h)
                    .map(|p| if p % w < w / 4 { 0 } else { 255 })
                    .collect(),
            ));
            assert!(v.alpha.is_some(), "synth photos have alpha");
        }
        let mut t = Trainer::new(
            masked,
            TrainConfig {
                densify_from: 1000,
                densify_every: 100,
                opacity_reset_every: 0,
                random_background: true,
                ..base.clone()
            },
        )
        .unwrap();
        steady(&mut t, 40, 30, "30 masked iterations on random backgrounds");

        // iterations with density rounds every 20 (from the start, the
        // budget full: a round retires faint splats for clones and splits,
        // prunes transparent and large ones) and opacity resets every 50
        let mut t = Trainer::new(
            dataset(),
            TrainConfig {
                init_points: 4000,
                max_gaussians: 4000,
                retire_per_round: 0.05,
                densify_grad: 1e-6,
                densify_from: 0,
                densify_every: 20,
                prune_big_from: 0,
                opacity_reset_every: 50,
                ..base.clone()
            },
        )
        .unwrap();
        steady(
            &mut t,
            100,
            100,
            "100 iterations with 5 density rounds and 2 resets",
        );
        // one more round, called directly after statistics were gathered
        // again (the last step ran a round): it did change the scene
        for _ in 0..10 {
            t.step().unwrap();
        }
        let before = t.gaussians::<f64>();
        assert_none("a density round", || t.densify_and_prune(true));
        let after = t.gaussians::<f64>();
        let gone = before.means.iter().filter(|m| !after.means.contains(m));
        let twice = after
            .means
            .iter()
            .filter(|m| after.means.iter().filter(|x| x == m).count() > 1);
        assert!(gone.count() > 0, "the round retired or pruned none");
        assert!(twice.count() > 0, "the round cloned none");

        // MCMC at its budget: a round every 20 iterations relocates the
        // dead splats onto live ones (the threshold raised to the initial
        // opacity, the default strategy's 0.1 rather than MCMC's 0.5, so
        // that about half are dead), and every iteration adds its
        // regulariser and position noise
        let mut t = Trainer::new(
            dataset(),
            TrainConfig {
                strategy: Strategy::Mcmc,
                init_points: 4000,
                max_gaussians: 4000,
                densify_from: 0,
                densify_every: 20,
                prune_opacity: 0.1,
                init_opacity: Some(0.1),
                init_scale: Some(1.0),
                ..base
            },
        )
        .unwrap();
        // (a longer warm-up: relocations change the splats' footprints,
        // and the render's tile lists grow to the most they have needed)
        steady(
            &mut t,
            300,
            100,
            "100 MCMC iterations with 5 relocation rounds",
        );
        assert_eq!(t.len(), 4000, "the budget is full");
        // the last step ran a round: a relocated splat and its source
        // share their rotation until their next update
        assert_eq!(t.iteration() % 20, 0);
        let quats = t.gaussians::<f64>().quats;
        let mut sorted: Vec<_> = quats.iter().map(|q| q.map(f64::to_bits)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert!(sorted.len() < quats.len(), "the round relocated none");
    });
}
