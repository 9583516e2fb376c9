//! Masks in training: ignored pixels take no part in the L1 + SSIM loss
//! (its hand-written gradient matches the tape and finite differences, and
//! is exactly zero on them), in the optimiser's update, or in PSNR/SSIM.

use chainrule::{Tape, Var};
use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, Dataset, LoadOptions, Pixels8};
use splat::loss::{
    blur, blur_op, l1_ssim_value_grad_masked, psnr, psnr_masked, psnr_masked_blocked, ssim_values,
    ssim_values_masked, SSIM_C1, SSIM_C2, SSIM_LAMBDA,
};
use splat::three::scene::Rng;
use splat::train::{TrainConfig, Trainer};

/// The masked loss written independently on the tape, straight from its
/// definition: `x' = m·x + (1 − m)·y`, then the mask-weighted means of
/// `|x' − y|` and of the SSIM map.
fn tape_masked_loss<'t>(
    tape: &'t Tape<f64>,
    x: &[Var<'t, f64>],
    y: &[f64],
    m: &[f64],
    w: usize,
    h: usize,
) -> Var<'t, f64> {
    let c = 3;
    let xc: Vec<Var<'t, f64>> = x
        .iter()
        .enumerate()
        .map(|(q, v)| *v * m[q / c] + y[q] * (1.0 - m[q / c]))
        .collect();
    let kept: f64 = c as f64 * m.iter().sum::<f64>();
    let mut l1 = tape.var(0.0);
    for (q, v) in xc.iter().enumerate() {
        l1 += (*v - y[q]).abs() * m[q / c];
    }
    let mu_y = blur(y, w, h, c);
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let eyy = blur(&yy, w, h, c);
    let mu_x = blur_op(tape, &xc, w, h, c);
    let xx: Vec<Var<'t, f64>> = xc.iter().map(|v| v.square()).collect();
    let exx = blur_op(tape, &xx, w, h, c);
    let xy: Vec<Var<'t, f64>> = xc.iter().zip(y).map(|(v, &t)| *v * t).collect();
    let exy = blur_op(tape, &xy, w, h, c);
    let mut ssim = tape.var(0.0);
    for p in 0..xc.len() {
        let (mx, my) = (mu_x[p], mu_y[p]);
        let num = (mx * (2.0 * my) + SSIM_C1) * ((exy[p] - mx * my) * 2.0 + SSIM_C2);
        let den = (mx.square() + (my * my + SSIM_C1))
            * ((exx[p] - mx.square()) + (eyy[p] - my * my + SSIM_C2));
        ssim += num / den * m[p / c];
    }
    l1 * ((1.0 - SSIM_LAMBDA) / kept) - ssim * (SSIM_LAMBDA / kept) + SSIM_LAMBDA
}

fn random_mask(rng: &mut Rng, px: usize, fractional: bool) -> Vec<f64> {
    let mut m: Vec<f64> = (0..px)
        .map(|_| match (fractional, rng.uniform() < 0.4) {
            (_, true) => 0.0,
            (true, false) => rng.uniform(),
            (false, false) => 1.0,
        })
        .collect();
    m[0] = 1.0; // at least one kept pixel
    m
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// The hand-written masked gradient equals the tape's; ignored pixels
    /// get exactly zero.
    #[test]
    fn masked_l1_ssim_matches_the_tape(
        seed in 0u64..1000,
        w in 3usize..14,
        h in 3usize..14,
        fractional in proptest::bool::ANY,
    ) {
        let mut rng = Rng::new(seed);
        let x: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let y: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
        let m = random_mask(&mut rng, w * h, fractional);
        let (v, g) = l1_ssim_value_grad_masked(&x, &y, Some(&m), w, h, 3);
        let tape = Tape::new();
        let xv = tape.vars(&x);
        let l = tape_masked_loss(&tape, &xv, &y, &m, w, h);
        let gt = l.backward();
        proptest::prop_assert!((v - l.value()).abs() < 1e-12, "{} vs {}", v, l.value());
        for (q, (a, xi)) in g.iter().zip(&xv).enumerate() {
            let b = gt.wrt(*xi);
            proptest::prop_assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{} vs {}", a, b);
            if m[q / 3] == 0.0 {
                proptest::prop_assert_eq!(*a, 0.0);
            }
        }
    }
}

#[test]
fn masked_gradient_matches_finite_differences_and_ignores_masked_values() {
    let (w, h) = (9, 7);
    let mut rng = Rng::new(5);
    let x: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
    let y: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
    let m = random_mask(&mut rng, w * h, false);
    let f = |x: &[f64]| l1_ssim_value_grad_masked(x, &y, Some(&m), w, h, 3).0;
    let (v, g) = l1_ssim_value_grad_masked(&x, &y, Some(&m), w, h, 3);
    let eps = 1e-6;
    for q in (0..x.len()).step_by(5) {
        let (mut a, mut b) = (x.clone(), x.clone());
        a[q] += eps;
        b[q] -= eps;
        let fd = (f(&a) - f(&b)) / (2.0 * eps);
        assert!((fd - g[q]).abs() < 1e-6, "entry {q}: {fd} vs {}", g[q]);
    }
    // changing the render anywhere in ignored pixels changes nothing
    let mut z = x.clone();
    for (q, v) in z.iter_mut().enumerate() {
        if m[q / 3] == 0.0 {
            *v = 1.0 - *v;
        }
    }
    assert_eq!(f(&z), v);
    // an all-ones mask is the unmasked loss; PSNR and SSIM likewise
    let ones = vec![1.0; w * h];
    let plain = splat::loss::l1_ssim_value_grad(&x, &y, w, h, 3);
    let full = l1_ssim_value_grad_masked(&x, &y, Some(&ones), w, h, 3);
    assert!((plain.0 - full.0).abs() < 1e-12);
    assert!(plain
        .1
        .iter()
        .zip(&full.1)
        .all(|(a, b)| (a - b).abs() < 1e-12));
    assert!((psnr(&x, &y) - psnr_masked(&x, &y, Some(&ones), 3)).abs() < 1e-9);
    assert!(
        (ssim_values(&x, &y, w, h, 3) - ssim_values_masked(&x, &y, Some(&ones), w, h, 3)).abs()
            < 1e-12
    );
}

#[test]
fn masked_psnr_is_the_psnr_of_the_kept_pixels() {
    let (w, h) = (6, 5);
    let mut rng = Rng::new(9);
    let x: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
    let y: Vec<f64> = (0..w * h * 3).map(|_| rng.uniform()).collect();
    let m = random_mask(&mut rng, w * h, false);
    let keep = |v: &[f64]| -> Vec<f64> {
        (0..w * h)
            .filter(|&p| m[p] > 0.0)
            .flat_map(|p| v[3 * p..3 * p + 3].to_vec())
            .collect()
    };
    let want = psnr(&keep(&x), &keep(&y));
    assert!((psnr_masked(&x, &y, Some(&m), 3) - want).abs() < 1e-9);
    let none = vec![0.0; w * h];
    assert!(psnr_masked(&x, &y, Some(&none), 3).is_nan());
}

/// The trainer's blocked PSNR: the serial one's value to rounding, and
/// the same bits on one thread as on two (images of several blocks, with
/// and without a mask).
#[test]
fn blocked_psnr_is_the_psnr_on_any_thread_count() {
    let (w, h) = (200, 150);
    let mut rng = Rng::new(4);
    let x: Vec<f32> = (0..w * h * 3).map(|_| rng.uniform() as f32).collect();
    let y: Vec<f32> = (0..w * h * 3).map(|_| rng.uniform() as f32).collect();
    let m: Vec<f32> = random_mask(&mut rng, w * h, false)
        .iter()
        .map(|&v| v as f32)
        .collect();
    for mask in [None, Some(&m[..])] {
        let want = psnr_masked(&x, &y, mask, 3);
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| psnr_masked_blocked(&x, &y, mask, 3, &mut Vec::new()))
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(one.to_bits(), two.to_bits());
        assert!((one - want).abs() < 1e-9, "{one} against {want}");
    }
}

fn tiny(name: &str) -> Dataset {
    tiny_on(name, LoadOptions::default().background)
}

/// The synthetic dataset's photos composited on `background` by the loader.
fn tiny_on(name: &str, background: [f32; 3]) -> Dataset {
    let d = std::env::temp_dir().join(format!("chainrule-masks-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    write_dataset(
        &d,
        &SynthOptions {
            train_views: 4,
            test_views: 2,
            size: 20,
            seed: 3,
        },
    )
    .unwrap();
    let opts = LoadOptions {
        background,
        ..LoadOptions::default()
    };
    data::load(&d, &opts).unwrap()
}

fn cfg() -> TrainConfig {
    TrainConfig {
        iters: 20,
        init_points: 200,
        sh_degree: 0,
        densify_from: 2,
        densify_every: 5,
        densify_until: 20,
        densify_grad: 0.0,
        opacity_reset_every: 0,
        ..TrainConfig::default()
    }
}

#[test]
fn fully_masked_photos_leave_the_scene_untouched() {
    let mut ds = tiny("all");
    for v in &mut ds.train {
        v.mask = Some(Pixels8::from_bytes(vec![0; (v.width * v.height) as usize]));
    }
    let mut t = Trainer::new(ds, cfg()).unwrap();
    let before = t.gaussians::<f64>();
    for _ in 0..8 {
        let info = t.step().unwrap();
        assert_eq!(info.loss, 0.0);
    }
    // no gradient, no update, and no splat reached the threshold of 0 with
    // a counted view: nothing cloned or split
    let after = t.gaussians::<f64>();
    assert_eq!(before.means, after.means);
    assert_eq!(before.opacity_logits, after.opacity_logits);
    assert_eq!(before.sh, after.sh);
}

/// Planes of the wrong size and backgrounds outside [0, 1] (a library
/// user's; the command line parses them) are refused by name, not trained
/// on.
#[test]
fn malformed_views_and_backgrounds_are_refused() {
    let ds = tiny("refused");
    let refused = |ds: Dataset, c: TrainConfig| match Trainer::new(ds, c) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let mut bad = ds.clone();
    bad.train[0].alpha = Some(Pixels8::from_bytes(vec![255; 3]));
    let e = refused(bad, cfg());
    assert!(e.contains("alpha has 3 values"), "{e}");
    let mut bad = ds.clone();
    bad.train[1].background = [f32::NAN; 3];
    let e = refused(bad, cfg());
    assert!(e.contains("the photo's background"), "{e}");
    let e = refused(
        ds.clone(),
        TrainConfig {
            background: [0.0, 1.5, 0.0],
            ..cfg()
        },
    );
    assert!(e.contains("background [0.0, 1.5, 0.0]"), "{e}");
    assert!(Trainer::new(ds, cfg()).is_ok());
}

/// A library user's training background need not be the one the loader
/// composited the photos on: the loss and the scores read each photo on
/// the background the render has, so photos loaded on white train and
/// score on black as photos loaded on black do (but for the rounding of
/// partly covered pixels to 8 bits, half a level at most).
#[test]
fn photos_are_read_on_the_background_of_the_render() {
    let black = [0.0; 3];
    let on_white = tiny_on("bg-white", [1.0; 3]);
    let on_black = tiny_on("bg-black", black.map(|c| c as f32));
    assert!(on_white.train.iter().all(|v| v.alpha.is_some()));
    let c = TrainConfig {
        background: black,
        ..cfg()
    };
    let mut tw = Trainer::new(on_white.clone(), c.clone()).unwrap();
    let mut tb = Trainer::new(on_black.clone(), c).unwrap();
    let (ew, eb) = (tw.evaluate(&on_white.test), tb.evaluate(&on_black.test));
    for (w, b) in ew.unwrap().iter().zip(&eb.unwrap()) {
        assert!(
            (w.psnr - b.psnr).abs() < 0.05,
            "{} against {}",
            w.psnr,
            b.psnr
        );
    }
    for _ in 0..4 {
        let (lw, lb) = (tw.step().unwrap().loss, tb.step().unwrap().loss);
        assert!((lw - lb).abs() < 0.01 * lb, "loss {lw} against {lb}");
    }
}

#[test]
fn evaluation_scores_only_kept_pixels() {
    let mut ds = tiny("eval");
    let t = Trainer::new(ds.clone(), cfg()).unwrap();
    let plain = t.evaluate(&ds.test).unwrap();
    // paint the ignored half of the photograph: the masked score is the
    // score of the untouched half and does not move
    let v = &mut ds.test[0];
    let (w, h) = (v.width as usize, v.height as usize);
    let m: Vec<f32> = (0..w * h).map(|p| ((p % w) < w / 2) as u8 as f32).collect();
    let masked = t.evaluate(std::slice::from_ref(v)).map(|e| e[0].psnr);
    v.mask = Some(Pixels8::quantize(&m));
    let a = t.evaluate(std::slice::from_ref(v)).unwrap()[0].psnr;
    let mut painted = v.image.to_f32();
    for (p, px) in painted.chunks_exact_mut(3).enumerate() {
        if m[p] == 0.0 {
            px.copy_from_slice(&[1.0, 0.0, 1.0]);
        }
    }
    v.image = Pixels8::quantize(&painted);
    let e = &t.evaluate(std::slice::from_ref(v)).unwrap()[0];
    assert!(e.masked && !plain[0].masked);
    assert_eq!(e.psnr, a);
    assert_ne!(masked.unwrap(), a);
    let rgb = &e.rgb;
    let target: Vec<f64> = v.image.iter().map(f64::from).collect();
    let keep = |s: &[f64]| -> Vec<f64> {
        (0..w * h)
            .filter(|&p| m[p] > 0.0)
            .flat_map(|p| s[3 * p..3 * p + 3].to_vec())
            .collect()
    };
    assert!((e.psnr - psnr(&keep(rgb), &keep(&target))).abs() < 1e-9);
}
