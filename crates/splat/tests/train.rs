//! The 3D training loop on a tiny procedural dataset: the loss falls,
//! densification keeps the optimiser's state aligned with the scene, the
//! learning-rate and SH schedules follow the settings, and a checkpoint
//! resumes at its iteration with the same scene.

use std::path::PathBuf;

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, Dataset, LoadOptions};
use splat::train::{CheckpointWriter, TrainConfig, TrainError, Trainer};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny(name: &str) -> Dataset {
    let d = tmp(name);
    write_dataset(
        &d,
        &SynthOptions {
            train_views: 6,
            test_views: 2,
            size: 24,
            seed: 1,
        },
    )
    .unwrap();
    data::load(&d, &LoadOptions::default()).unwrap()
}

fn cfg() -> TrainConfig {
    TrainConfig {
        iters: 60,
        init_points: 300,
        sh_degree: 1,
        sh_interval: 20,
        densify_from: 10,
        densify_every: 10,
        densify_until: 50,
        opacity_reset_every: 0,
        ..TrainConfig::default()
    }
}

#[test]
fn loss_decreases_and_test_psnr_improves() {
    let ds = tiny("loss");
    let test = ds.test.clone();
    let mut t = Trainer::new(ds, cfg()).unwrap();
    assert_eq!(t.len(), 300);
    let before = t.evaluate(&test).unwrap();
    let mut losses = Vec::new();
    while t.iteration() < 60 {
        let info = t.step().unwrap();
        assert!(info.loss.is_finite());
        assert_eq!(info.gaussians, t.len());
        losses.push(info.loss);
    }
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[50..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    let after = t.evaluate(&test).unwrap();
    let p0: f64 = before.iter().map(|e| e.psnr).sum::<f64>() / 2.0;
    let p1: f64 = after.iter().map(|e| e.psnr).sum::<f64>() / 2.0;
    assert!(p1 > p0 + 1.0, "test PSNR {p0} -> {p1}");
    // SH degree raised every 20 iterations up to the configured 1
    assert_eq!(t.sh_active(), 1);
    for e in &after {
        assert_eq!(e.rgb.len(), 3 * 24 * 24);
        assert!(e.ssim > 0.0 && e.ssim <= 1.0);
    }
}

#[test]
fn initial_scales_are_each_points_nearest_neighbour_distance() {
    // sparse points: a dense 5×5×5 grid of spacing 0.02 and, far from it,
    // a sparse one of spacing 0.5: each point starts as large as the RMS
    // distance to its 3 nearest points (not one size for all)
    let mut ds = tiny("knn");
    let grid = |o: f64, h: f64| {
        (0..125).map(move |i| splat::data::Point {
            xyz: [
                o + h * (i % 5) as f64,
                h * (i / 5 % 5) as f64,
                h * (i / 25) as f64,
            ],
            rgb: [128; 3],
        })
    };
    ds.points = Some(grid(0.0, 0.02).chain(grid(10.0, 0.5)).collect());
    let t = Trainer::new(ds, cfg()).unwrap();
    let g = t.gaussians::<f64>();
    assert_eq!(g.len(), 250);
    for (i, s) in g.log_scales.iter().enumerate() {
        let want = if i < 125 { 0.02f64 } else { 0.5 };
        for v in s {
            assert!(
                (v.exp() - want).abs() < 1e-9 * want,
                "point {i}: {} vs {want}",
                v.exp()
            );
        }
    }
}

#[test]
fn densification_clones_splits_and_prunes_consistently() {
    let ds = tiny("densify");
    let c = TrainConfig {
        densify_grad: 0.0, // every seen splat is a candidate
        densify_from: 1000,
        max_gaussians: 450,
        ..cfg()
    };
    let mut t = Trainer::new(ds, c).unwrap();
    for _ in 0..5 {
        t.step().unwrap();
    }
    let n0 = t.len();
    t.densify_and_prune(false);
    // the cap bounds the growth; splits and clones add at most one each
    assert!(t.len() > n0, "{n0} -> {}", t.len());
    assert_eq!(t.len(), 450, "300 seen splats, 150 of room under the cap");
    // state stays aligned: steps run and the scene is consistent
    for _ in 0..3 {
        t.step().unwrap();
    }
    t.gaussians::<f64>().check_shapes().unwrap();
    // opacity reset caps every opacity at 0.01; pruning then removes
    // exactly the splats below 0.005
    t.reset_opacity();
    let op = |l: f64| 1.0 / (1.0 + (-l).exp());
    let g = t.gaussians::<f64>();
    assert!(g.opacity_logits.iter().all(|&l| op(l) <= 0.01 + 1e-9));
    let faint = g.opacity_logits.iter().filter(|&&l| op(l) < 0.005).count();
    let n1 = t.len();
    // the cap is reached, so nothing grows
    t.densify_and_prune(false);
    assert_eq!(t.len(), n1 - faint);
    assert!(t
        .gaussians::<f64>()
        .opacity_logits
        .iter()
        .all(|&l| op(l) >= 0.005));
    t.step().unwrap();
}

/// The background writer writes the bytes `save_checkpoint` writes, in
/// the order saved (the newest is the one `latest.json` names and the only
/// folder left), while the trainer goes on; a write that fails is
/// reported by the next `save` or by `finish`.
#[test]
fn checkpoints_written_in_the_background_are_the_saved_ones() {
    let ds = tiny("bg-ckpt");
    let (sync_dir, bg_dir) = (tmp("bg-ckpt-sync"), tmp("bg-ckpt-bg"));
    let mut t = Trainer::new(ds, cfg()).unwrap();
    let mut w = CheckpointWriter::new(&bg_dir);
    for round in 0..3 {
        for _ in 0..5 {
            t.step().unwrap();
        }
        t.save_checkpoint(&sync_dir).unwrap();
        w.save(t.checkpoint()).unwrap();
        if round == 1 {
            // training goes on while the write may still be running
            t.step().unwrap();
            t.save_checkpoint(&sync_dir).unwrap();
            w.save(t.checkpoint()).unwrap();
        }
    }
    let last = w.finish().unwrap().expect("a write was pending");
    assert_eq!(last, bg_dir.join("ckpt-00000016"));
    assert_eq!(w.finish().unwrap(), None);
    let files = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&bg_dir), files(&sync_dir));
    let sub = "ckpt-00000016";
    let (a, b) = (files(&bg_dir.join(sub)), files(&sync_dir.join(sub)));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    let folders = std::fs::read_dir(&bg_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ckpt-"))
        .count();
    assert_eq!(folders, 1);
    // a folder that cannot be created: the error names it, at `finish`
    let blocked = tmp("bg-ckpt-blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    let file = blocked.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let mut w = CheckpointWriter::new(&file);
    let named = |r: Result<_, TrainError>| match r {
        Err(e @ TrainError::Checkpoint { .. }) => {
            assert!(e.to_string().contains("not-a-folder"), "{e}")
        }
        Err(e) => panic!("expected a checkpoint error, got {e}"),
        Ok(_) => panic!("a write into a file succeeded"),
    };
    // reported by the next save (which then starts nothing) ...
    w.save(t.checkpoint()).unwrap();
    named(w.save(t.checkpoint()).map(|_| None));
    assert_eq!(w.finish().unwrap(), None);
    // ... or by finish
    w.save(t.checkpoint()).unwrap();
    named(w.finish());
}

#[test]
fn checkpoint_resumes_at_its_iteration_with_the_same_scene() {
    let ds = tiny("resume");
    let dir = tmp("resume-ckpt");
    let mut a = Trainer::new(ds.clone(), cfg()).unwrap();
    for _ in 0..25 {
        a.step().unwrap();
    }
    a.save_checkpoint(&dir).unwrap();
    let mut b = Trainer::resume(ds.clone(), cfg(), &dir).unwrap();
    assert_eq!(b.iteration(), 25);
    assert_eq!(b.len(), a.len());
    assert_eq!(b.sh_active(), a.sh_active());
    let (ga, gb) = (a.gaussians::<f64>(), b.gaussians::<f64>());
    for (x, y) in ga.means.iter().zip(&gb.means) {
        for k in 0..3 {
            assert!((x[k] - y[k]).abs() <= 1e-6 * x[k].abs().max(1.0));
        }
    }
    // the next iterations agree (same view, same moments; the PLY stores f32)
    let la = a.step().unwrap().loss;
    let lb = b.step().unwrap().loss;
    assert!((la - lb).abs() < 1e-3 * la.abs(), "{la} vs {lb}");
    assert_eq!(b.iteration(), 26);
    // a second checkpoint replaces the first folder
    b.save_checkpoint(&dir).unwrap();
    let folders: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ckpt-"))
        .collect();
    assert_eq!(folders.len(), 1);
    // resuming with the other projection is an error naming the setting
    let other = TrainConfig {
        antialiased: !cfg().antialiased,
        ..cfg()
    };
    match Trainer::resume(ds.clone(), other, &dir) {
        Err(e @ TrainError::Checkpoint { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("antialiased") && msg.contains("latest.json"),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a checkpoint trained without --antialiased resumed with it"),
    }
    // a corrupt state file is an error naming it, not a panic
    let bin = dir.join("ckpt-00000026/state.bin");
    std::fs::write(&bin, b"short").unwrap();
    match Trainer::resume(ds, cfg(), &dir) {
        Err(TrainError::Checkpoint { path, .. }) => assert_eq!(path, bin),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("corrupt state accepted"),
    }
}

#[test]
fn a_bad_checkpoint_ply_is_named_once() {
    let ds = tiny("badply");
    let dir = tmp("badply-ckpt");
    let t = Trainer::new(ds.clone(), cfg()).unwrap();
    t.save_checkpoint(&dir).unwrap();
    let ply = dir.join("ckpt-00000000/point_cloud.ply");
    let shown = ply.display().to_string();
    let once = |e: TrainError| {
        let msg = e.to_string();
        assert_eq!(msg.matches(&shown).count(), 1, "{msg}");
        msg
    };
    // truncated: the header's count is more than the file holds
    let bytes = std::fs::read(&ply).unwrap();
    std::fs::write(&ply, &bytes[..bytes.len() / 2]).unwrap();
    let msg = once(
        Trainer::resume(ds.clone(), cfg(), &dir)
            .err()
            .expect("error"),
    );
    assert!(msg.starts_with(&format!("{shown}: ")), "{msg}");
    // missing
    std::fs::remove_file(&ply).unwrap();
    let msg = once(Trainer::resume(ds, cfg(), &dir).err().expect("error"));
    assert!(msg.contains("cannot read"), "{msg}");
}

#[test]
fn malformed_latest_json_is_an_error_naming_the_field() {
    let ds = tiny("badjson");
    let dir = tmp("badjson-ckpt");
    std::fs::write(dir.join("latest.json"), b"{\"iteration\": -3}").unwrap();
    let e = Trainer::resume(ds, cfg(), &dir).err().expect("error");
    let msg = e.to_string();
    assert!(
        msg.contains("latest.json") && msg.contains("iteration"),
        "{msg}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// The hand-written L1 + SSIM gradient equals the tape's.
    #[test]
    fn l1_ssim_gradient_matches_the_tape(
        seed in 0u64..1000,
        w in 3usize..14,
        h in 3usize..14,
    ) {
        use chainrule::Tape;
        use splat::loss::{l1_ssim_value_grad, loss, Loss};
        let mut rng = splat::three::scene::Rng::new(seed);
        let x: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let y: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let (v, g) = l1_ssim_value_grad(&x, &y, w, h, 3);
        let tape = Tape::new();
        let xv = tape.vars(&x);
        let l = loss(Loss::L1Ssim, &xv, &y, w, h, 3);
        let gt = l.backward();
        proptest::prop_assert!((v - l.value()).abs() < 1e-12, "{} vs {}", v, l.value());
        for (a, xi) in g.iter().zip(&xv) {
            let b = gt.wrt(*xi);
            proptest::prop_assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{} vs {}", a, b);
        }
    }
}

#[test]
fn a_non_finite_value_stops_with_the_operation_named_and_the_checkpoint_intact() {
    let ds = tiny("nan");
    let dir = tmp("nan-ckpt");
    let c = TrainConfig {
        lr_scale: f64::NAN, // the first update makes every scale NaN
        ..cfg()
    };
    let mut t = Trainer::new(ds.clone(), c.clone()).unwrap();
    t.save_checkpoint(&dir).unwrap();
    let before = std::fs::read(dir.join("latest.json")).unwrap();
    let e = t.step().expect_err("NaN scales are caught");
    match &e {
        TrainError::NonFinite { iteration, op } => {
            assert_eq!(*iteration, 1);
            assert_eq!(*op, "Adam update of the scales");
        }
        other => panic!("wrong error {other}"),
    }
    assert!(e.to_string().contains("iteration 1"), "{e}");
    // the checkpoint is as it was
    assert_eq!(std::fs::read(dir.join("latest.json")).unwrap(), before);
    assert_eq!(Trainer::resume(ds, c, &dir).unwrap().iteration(), 0);
}

/// The final model is the parameters' moving average: with a window of
/// one update interval or less (decay 0) it is the last iteration's
/// parameters (rounded to the average's f32), with a longer one it
/// differs from them; a checkpoint taken while it runs holds it (`average.bin`, and
/// `average_updates` in `latest.json`), a resumed run ends where the
/// uninterrupted one does (within the f32 of the checkpoint's files), one
/// resumed with no iterations left writes the average (a finished run's
/// model unchanged), and a damaged `average.bin` is an error naming it.
#[test]
fn the_final_model_is_the_parameters_moving_average_and_survives_a_resume() {
    let ds = tiny("ema");
    // densification ends at 20: the average is updated at 40, 60, 80, 100
    let ema = |window: u32| TrainConfig {
        ema_window: window,
        iters: 100,
        densify_until: 20,
        ..cfg()
    };
    let run = |window: u32, steps: u32| {
        let mut t = Trainer::new(ds.clone(), ema(window)).unwrap();
        for _ in 0..steps {
            t.step().unwrap();
        }
        t
    };
    let plain = run(0, 100);
    let last = plain.gaussians::<f64>();
    // a window of one update: the model is the last parameters (at the
    // average's f32 precision, the PLY's)
    assert_eq!(run(20, 100).gaussians::<f32>(), plain.gaussians::<f32>());
    let mut averaged = run(80, 100);
    assert_eq!(averaged.average_updates(), 4);
    let avg = averaged.gaussians::<f64>();
    // a step past the end renders the averaged scene (debug builds check
    // the f32 copy against the parameters)
    averaged.step().unwrap();
    let moved = avg
        .opacity_logits
        .iter()
        .zip(&last.opacity_logits)
        .filter(|(a, b)| (*a - *b).abs() > 1e-6)
        .count();
    assert!(moved > avg.len() / 2, "{moved} of {} moved", avg.len());
    // stopped at 65 (the average updated at 40 and 60) and resumed
    let dir = tmp("ema-ckpt");
    run(80, 65).save_checkpoint(&dir).unwrap();
    let sub = dir.join("ckpt-00000065");
    assert!(sub.join("average.bin").is_file());
    let meta = std::fs::read_to_string(dir.join("latest.json")).unwrap();
    assert!(meta.contains("\"average_updates\":2"), "{meta}");
    let cfg80 = ema(80);
    // resumed with no iterations left (a shorter --iters): the model a run
    // ending at 65 writes, not the live parameters: the average as
    // average.bin stores it (f32; 10 numbers a Gaussian before the
    // opacities) after the last iteration's update towards them (decay
    // 1 − 20/80)
    let short = TrainConfig {
        iters: 60,
        ..cfg80.clone()
    };
    let mut ended = Trainer::resume(ds.clone(), short.clone(), &dir).unwrap();
    let live = ended.gaussians::<f64>();
    assert!(ended.apply_average());
    let stored = std::fs::read(sub.join("average.bin")).unwrap();
    let n = live.len();
    let want: Vec<f32> = stored[16 + 4 * 10 * n..16 + 4 * 11 * n]
        .chunks_exact(4)
        .zip(&live.opacity_logits)
        .map(|(b, &p)| {
            let a = f64::from(f32::from_le_bytes(b.try_into().unwrap()));
            (0.75 * a + 0.25 * p) as f32
        })
        .collect();
    assert_eq!(ended.gaussians::<f32>().opacity_logits, want);
    assert_ne!(
        live.opacity_logits,
        want.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
    );
    // a run without an average keeps its parameters
    let mut plain_end = Trainer::resume(ds.clone(), ema(0), &dir).unwrap();
    assert!(!plain_end.apply_average());
    assert_eq!(plain_end.gaussians::<f64>(), live);
    // a finished run's checkpoint (at 90, not a multiple of 20: its
    // average updated and applied there) is written again as it is
    let done = tmp("ema-done");
    let fin = TrainConfig {
        iters: 90,
        ..cfg80.clone()
    };
    let mut t90 = Trainer::new(ds.clone(), fin.clone()).unwrap();
    while t90.iteration() < 90 {
        t90.step().unwrap();
    }
    t90.save_checkpoint(&done).unwrap();
    let mut again = Trainer::resume(ds.clone(), fin, &done).unwrap();
    let before = again.gaussians::<f64>();
    assert!(again.apply_average());
    assert_eq!(again.gaussians::<f64>(), before);
    assert_eq!(before, t90.gaussians::<f64>());
    let mut resumed = Trainer::resume(ds.clone(), cfg80.clone(), &dir).unwrap();
    while resumed.iteration() < 100 {
        resumed.step().unwrap();
    }
    let r = resumed.gaussians::<f64>();
    assert_eq!(r.len(), avg.len());
    let mean_gap = |a: &[f64], b: &[f64]| -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
    };
    let to_avg = mean_gap(&r.opacity_logits, &avg.opacity_logits);
    let to_last = mean_gap(&r.opacity_logits, &last.opacity_logits);
    assert!(
        to_avg < 1e-4 && to_avg * 10.0 < to_last,
        "{to_avg} vs {to_last}"
    );
    // without its average, the resumed run's model is another one
    std::fs::remove_file(sub.join("average.bin")).unwrap();
    match Trainer::resume(ds.clone(), cfg80.clone(), &dir) {
        Err(TrainError::Checkpoint { path, message }) => {
            assert_eq!(path, sub.join("average.bin"), "{message}")
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a checkpoint without its average resumed"),
    }
    // ... unless the resumed run has no average
    Trainer::resume(ds.clone(), ema(0), &dir).unwrap();
    std::fs::write(sub.join("average.bin"), b"CRAVERG1 short").unwrap();
    match Trainer::resume(ds.clone(), cfg80.clone(), &dir) {
        Err(e @ TrainError::Checkpoint { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("average.bin") && msg.contains("expected"),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a short average resumed"),
    }
    // the right size, but a NaN in it (sh_degree 1: 23 numbers a Gaussian)
    let mut nan = b"CRAVERG1".to_vec();
    nan.extend_from_slice(&(avg.len() as u64).to_le_bytes());
    for k in 0..avg.len() * 23 {
        let v = if k == 7 { f32::NAN } else { 0.5 };
        nan.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(sub.join("average.bin"), &nan).unwrap();
    match Trainer::resume(ds, cfg80, &dir) {
        Err(e @ TrainError::Checkpoint { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("average.bin") && msg.contains("not finite"),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a NaN average resumed"),
    }
}
