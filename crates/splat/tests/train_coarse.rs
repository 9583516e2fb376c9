//! The coarse phase (`TrainConfig::coarse_until`): iterations up to it
//! render and score the photo at a `coarse_factor`-th of its resolution,
//! the later ones at full resolution.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, Dataset, LoadOptions, Pixels8};
use splat::train::{TrainConfig, Trainer};

/// A synthetic dataset with one training view (so every step uses it).
fn one_view(name: &str, size: u32) -> Dataset {
    let d = std::env::temp_dir().join(format!("chainrule-coarse-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    write_dataset(
        &d,
        &SynthOptions {
            train_views: 1,
            test_views: 1,
            size,
            seed: 5,
        },
    )
    .unwrap();
    let ds = data::load(&d, &LoadOptions::default()).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    ds
}

fn cfg(coarse_until: u32, coarse_factor: u32) -> TrainConfig {
    TrainConfig {
        iters: 10,
        init_points: 300,
        sh_degree: 0,
        densify_from: 1000,
        opacity_reset_every: 0,
        coarse_until,
        coarse_factor,
        ..TrainConfig::default()
    }
}

/// The PSNR a step reports is its render's against its target, before the
/// update: the scene's score on the downscaled photo in the coarse phase,
/// on the full photo after it.
#[test]
fn coarse_steps_score_the_downscaled_photo_then_the_full_one() {
    for f in [2, 3] {
        let ds = one_view(&format!("f{f}"), 36);
        let full = ds.train[0].clone();
        let small = full.downscaled(f);
        assert_eq!((small.width, small.height), (36 / f, 36 / f));
        let mut t = Trainer::new(ds, cfg(2, f)).unwrap();
        for it in 1..=4 {
            let at_small = t.evaluate(std::slice::from_ref(&small)).unwrap()[0].psnr;
            let at_full = t.evaluate(std::slice::from_ref(&full)).unwrap()[0].psnr;
            assert!((at_small - at_full).abs() > 1e-3, "{at_small} {at_full}");
            let step = t.step().unwrap().psnr;
            let want = if it <= 2 { at_small } else { at_full };
            assert!(
                (step - want).abs() < 1e-4,
                "factor {f}, iteration {it}: step {step}, coarse {at_small}, full {at_full}"
            );
        }
    }
}

/// With no coarse phase (the default), or a factor of 1, every step is at
/// full resolution and the run is the same bit for bit.
#[test]
fn no_coarse_phase_is_the_plain_run() {
    let ds = one_view("plain", 24);
    let run = |c: TrainConfig| {
        let mut t = Trainer::new(ds.clone(), c).unwrap();
        let losses: Vec<u64> = (0..5).map(|_| t.step().unwrap().loss.to_bits()).collect();
        (losses, t.gaussians::<f64>().means)
    };
    let plain = run(cfg(0, 2));
    assert_eq!(run(cfg(5, 1)), plain);
    assert_ne!(run(cfg(5, 2)).0, plain.0);
}

/// A masked photo's coarse copy keeps a pixel only where its whole block
/// was kept, and the intrinsics scale with the pixels.
#[test]
fn downscaled_views_keep_whole_blocks_of_the_mask_and_scale_the_camera() {
    let mut v = one_view("mask", 20).train[0].clone();
    let (w, h) = (v.width as usize, v.height as usize);
    // ignore column 3 only: new columns 1 (old 2–3) is dropped
    v.mask = Some(Pixels8::from_bytes(
        (0..w * h)
            .map(|p| if p % w != 3 { 255 } else { 0 })
            .collect(),
    ));
    let s = v.downscaled(2);
    let m = s.mask.as_ref().unwrap();
    for (p, k) in m.iter().enumerate() {
        assert_eq!(k, if p % s.width as usize == 1 { 0.0 } else { 1.0 });
    }
    assert_eq!(
        (s.fx, s.fy, s.cx, s.cy),
        (v.fx / 2.0, v.fy / 2.0, v.cx / 2.0, v.cy / 2.0)
    );
    assert_eq!(s.world_to_camera, v.world_to_camera);
    // each new value is its block's mean, rounded to the nearest 8-bit
    // level (at most half a level away)
    let sw = s.width as usize;
    for (q, got) in s.image.iter().enumerate() {
        let (x, y, c) = ((q / 3) % sw, (q / 3) / sw, q % 3);
        let mean = [(0, 0), (1, 0), (0, 1), (1, 1)]
            .iter()
            .map(|&(dx, dy)| v.image.get(((2 * y + dy) * w + 2 * x + dx) * 3 + c) as f64)
            .sum::<f64>()
            / 4.0;
        assert!(
            (got as f64 - mean).abs() <= 0.5 / 255.0 + 1e-6,
            "{q}: {got} against {mean}"
        );
    }
}
