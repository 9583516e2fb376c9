//! `--exposure`: the per-photo colour transform's backward pass (to the
//! transform and through it to the render) against finite differences of
//! the L1 + SSIM loss, the least-squares fit of the held-out protocol, and
//! the transforms surviving a checkpoint.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions, Pixels8};
use splat::loss::l1_ssim_value_grad;
use splat::three::scene::Rng;
use splat::train::exposure::{apply, backward, fit, half_fit_scores, IDENTITY};
use splat::train::{TrainConfig, Trainer};

fn loss_through(e: &[f64; 12], x: &[f64], y: &[f64], w: usize, h: usize) -> f64 {
    l1_ssim_value_grad(&apply(e, x), y, w, h, 3).0
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10))]
    /// Gradients to the transform and to the render equal central
    /// differences of the loss taken through the transform.
    #[test]
    fn exposure_gradients_match_finite_differences(seed in 0u64..1000, w in 3usize..9, h in 3usize..9) {
        let mut rng = Rng::new(seed);
        let x: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let y: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let mut e = IDENTITY;
        for v in e.iter_mut() {
            *v += 0.2 * (rng.uniform() - 0.5);
        }
        let (_, g) = l1_ssim_value_grad(&apply(&e, &x), &y, w, h, 3);
        let (de, dx) = backward(&e, &x, &g);
        let eps = 1e-6;
        for k in 0..12 {
            let (mut a, mut b) = (e, e);
            a[k] += eps;
            b[k] -= eps;
            let fd = (loss_through(&a, &x, &y, w, h) - loss_through(&b, &x, &y, w, h)) / (2.0 * eps);
            proptest::prop_assert!((fd - de[k]).abs() < 1e-6, "transform {}: {} vs {}", k, fd, de[k]);
        }
        for q in (0..x.len()).step_by(7) {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[q] += eps;
            b[q] -= eps;
            let fd = (loss_through(&e, &a, &y, w, h) - loss_through(&e, &b, &y, w, h)) / (2.0 * eps);
            proptest::prop_assert!((fd - dx[q]).abs() < 1e-6, "render {}: {} vs {}", q, fd, dx[q]);
        }
    }
}

#[test]
fn the_fit_recovers_a_known_transform_and_scores_the_other_half() {
    let (w, h) = (10, 6);
    let mut rng = Rng::new(4);
    let x: Vec<f64> = (0..w * h * 3).map(|_| 0.1 + 0.6 * rng.uniform()).collect();
    let e = [
        0.9, 0.05, 0.0, 0.02, 1.1, 0.0, 0.0, -0.03, 0.8, 0.05, -0.02, 0.1,
    ];
    let y = apply(&e, &x);
    let f = fit(&x, &y, |p| p % w < w / 2);
    for k in 0..12 {
        assert!((f[k] - e[k]).abs() < 1e-9, "{k}: {} vs {}", f[k], e[k]);
    }
    // the protocol: fitted on the left, scored on the right, exact here
    let (psnr, ssim) = half_fit_scores(&x, &y, None, w, h);
    assert!(psnr > 150.0 && (ssim - 1.0).abs() < 1e-9, "{psnr} {ssim}");
    // the right half alone decides the score: spoil the left half's photo
    // so the fit is wrong, the score drops
    let mut y2 = y.clone();
    for p in 0..w * h {
        if p % w < w / 2 {
            y2[3 * p] = 0.0;
        }
    }
    assert!(half_fit_scores(&x, &y2, None, w, h).0 < psnr);
    // a mask that keeps no pixel of one half: no score (not the identity's
    // score passed off as the protocol's, nor a NaN averaged in)
    for keep_left in [true, false] {
        let m: Vec<f64> = (0..w * h)
            .map(|p| f64::from(u8::from((p % w < w / 2) == keep_left)))
            .collect();
        let (p, s) = half_fit_scores(&x, &y, Some(&m), w, h);
        assert!(p.is_nan() && s.is_nan(), "{keep_left}: {p} {s}");
    }
    // one kept pixel on each side is enough to be scored
    let mut m = vec![0.0; w * h];
    (m[0], m[w - 1]) = (1.0, 1.0);
    assert!(!half_fit_scores(&x, &y, Some(&m), w, h).0.is_nan());
}

#[test]
fn exposure_trains_and_survives_a_checkpoint() {
    let d = std::env::temp_dir().join(format!("chainrule-exposure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    write_dataset(
        &d.join("data"),
        &SynthOptions {
            train_views: 4,
            test_views: 2,
            size: 20,
            seed: 5,
        },
    )
    .unwrap();
    let mut ds = data::load(&d.join("data"), &LoadOptions::default()).unwrap();
    // the photos' exposure varies: view k is darkened by 1 − 0.15·k
    for (k, v) in ds.train.iter_mut().enumerate() {
        let darker: Vec<f32> = v
            .image
            .iter()
            .map(|c| c * (1.0 - 0.15 * k as f32))
            .collect();
        v.image = Pixels8::quantize(&darker);
    }
    let cfg = TrainConfig {
        iters: 30,
        init_points: 200,
        sh_degree: 0,
        exposure: true,
        ..TrainConfig::default().with_densify_until(15)
    };
    let mut t = Trainer::new(ds.clone(), cfg.clone()).unwrap();
    for _ in 0..20 {
        t.step().unwrap();
    }
    assert!((0..4).any(|i| t.exposure(i).unwrap() != IDENTITY));
    // held-out views are scored by the half-fit protocol, with --exposure
    // or without (the same rule, so that the two runs compare)
    let plain = TrainConfig {
        exposure: false,
        ..cfg.clone()
    };
    for t in [&t, &Trainer::new(ds.clone(), plain).unwrap()] {
        let bg = t.config().background.map(|c| c as f32);
        for (e, v) in t.evaluate(&ds.test).unwrap().iter().zip(&ds.test) {
            let photo: Vec<f64> = v.image_on(bg).iter().map(|&x| x as f64).collect();
            let by_hand = half_fit_scores(&e.rgb, &photo, None, e.width, e.height);
            assert_eq!(e.half_fit, by_hand, "{}", v.name);
            assert!(e.half_fit.0.is_finite() && e.half_fit.0 != e.psnr, "{e:?}");
        }
    }
    let ck = d.join("ck");
    t.save_checkpoint(&ck).unwrap();
    let r = Trainer::resume(ds.clone(), cfg.clone(), &ck).unwrap();
    for i in 0..4 {
        assert_eq!(r.exposure(i), t.exposure(i));
    }
    assert_eq!(r.data().notes, ds.notes, "the same photos: no note");
    // resumed on other photos (--resume-other-data): each transform goes
    // to the photo of its name, whatever its place; a photo the run never
    // trained starts at the identity, and a note says how many carried
    let mut other = ds.clone();
    other.train.swap(0, 3);
    other.train[1].name = "a new photo.png".into();
    other.train.truncate(3);
    let o = Trainer::resume(other.clone(), cfg.clone(), &ck).unwrap();
    assert_eq!(o.exposure(0), t.exposure(3));
    assert_eq!(o.exposure(1), Some(IDENTITY));
    assert_eq!(o.exposure(2), t.exposure(2));
    assert!(
        o.data()
            .notes
            .iter()
            .any(|n| n.contains("2 of the 3") && n.contains("1 start at the identity")),
        "{:?}",
        o.data().notes
    );
    let mut o = o;
    o.step().unwrap();
    // a checkpoint of an earlier chainrule names no photos: only the same
    // number of photos can take its transforms, and the error says why
    let older = d.join("older");
    t.save_checkpoint(&older).unwrap();
    let latest = older.join("latest.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("exposure_views");
    std::fs::write(&latest, meta.to_string()).unwrap();
    let e = Trainer::resume(other, cfg.clone(), &older)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("records no names"), "{e}");
    let r2 = Trainer::resume(ds.clone(), cfg.clone(), &older).unwrap();
    assert_eq!(r2.exposure(1), t.exposure(1));
    // one more step each: the optimiser's state came back too
    let (mut a, mut b) = (t, r);
    a.step().unwrap();
    b.step().unwrap();
    assert_eq!(a.exposure(2), b.exposure(2));
    // a checkpoint without transforms, resumed with --exposure: refused
    // naming the checkpoint and why, not a missing exposure.bin
    let plain = TrainConfig {
        exposure: false,
        ..cfg.clone()
    };
    let p = Trainer::new(ds.clone(), plain.clone()).unwrap();
    let ck2 = d.join("ck2");
    p.save_checkpoint(&ck2).unwrap();
    let e = Trainer::resume(ds.clone(), cfg.clone(), &ck2)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("ckpt-00000000"), "{e}");
    assert!(e.contains("trained without --exposure"), "{e}");
    assert!(!e.contains("No such file"), "{e}");
    // the same for a checkpoint written before latest.json said whether
    // (its `exposure_steps` always there, `exposure` absent)
    let latest = ck2.join("latest.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("exposure");
    meta["exposure_steps"] = 0.into();
    std::fs::write(&latest, meta.to_string()).unwrap();
    let e = Trainer::resume(ds.clone(), cfg.clone(), &ck2)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("trained without --exposure"), "{e}");
    assert!(Trainer::resume(ds.clone(), plain.clone(), &ck2).is_ok());
    // the other way: a checkpoint with transforms resumed without
    // --exposure would drop them, and is refused
    let e = Trainer::resume(ds.clone(), plain.clone(), &ck)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("ckpt-00000020"), "{e}");
    assert!(e.contains("trained with --exposure"), "{e}");
    // (an older checkpoint: told by its exposure.bin)
    let latest = ck.join("latest.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("exposure");
    std::fs::write(&latest, meta.to_string()).unwrap();
    let e = Trainer::resume(ds.clone(), plain, &ck)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("trained with --exposure"), "{e}");
    assert!(Trainer::resume(ds, cfg, &ck).is_ok());
}
