//! The 2D model's map to pixel-space splats against the peer's direct
//! formula, the blur op and SSIM against finite differences, the whole
//! model's gradient against the unrolled tape, and a short deterministic fit.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};
use proptest::prelude::*;
use splat::fit::{FitConfig, Fitter};
use splat::image_io::{self, Image};
use splat::loss::{self, Loss};
use splat::model2d::{self, Gaussians2d, Init};
use splat::raster::Blend;

/// The peer's formula for q at a pixel centre in normalised coordinates.
fn peer_q(g: &Gaussians2d, k: usize, x: f64, y: f64) -> f64 {
    let n = g.n;
    let p = &g.params;
    let (mx, my) = (p[2 * k], p[2 * k + 1]);
    let c = &p[2 * n + 3 * k..2 * n + 3 * k + 3];
    let (d1, d2) = (x - mx, y - my);
    let y1 = d1 * (-c[0]).exp();
    let y2 = (d2 - c[1] * d1) * (-c[2]).exp();
    y1 * y1 + y2 * y2
}

fn random_model(seed: u64, n: usize) -> Gaussians2d {
    let mut g = Gaussians2d::init(n, seed, Init::Peer, None);
    let mut r = splat::rng::Rng::new(seed + 99);
    for k in 0..n {
        // wider, sheared, varied opacity
        g.params[2 * n + 3 * k] += r.uniform() * 1.5;
        g.params[2 * n + 3 * k + 1] = r.uniform() - 0.5;
        g.params[2 * n + 3 * k + 2] += r.uniform() * 1.5;
        g.params[8 * n + k] = 4.0 * r.uniform() - 2.0;
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn conic_reproduces_the_peer_quadratic_form(seed in 0u64..10_000, w in 4usize..64, h in 4usize..64) {
        let g = random_model(seed, 6);
        let s = model2d::project::<f64>(&g, w, h, [0.0; 3], Blend::Over);
        for k in 0..g.n {
            for (i, j) in [(0usize, 0usize), (h / 2, w / 3), (h - 1, w - 1)] {
                let (px, py) = (j as f64 + 0.5, i as f64 + 0.5);
                let (dx, dy) = (px - s.means[k][0], py - s.means[k][1]);
                let [a, b, c] = s.conics[k];
                let q = a * dx * dx + 2.0 * b * dx * dy + c * dy * dy;
                let qp = peer_q(&g, k, px / w as f64, py / h as f64);
                prop_assert!((q - qp).abs() <= 1e-9 * (1.0 + qp.abs()), "q {} vs peer {}", q, qp);
            }
        }
    }
}

#[test]
fn projection_on_tape_matches_plain_projection() {
    let g = random_model(3, 10);
    let s = model2d::project::<f64>(&g, 20, 14, [0.0; 3], Blend::Over);
    let tape = Tape::new();
    let params = tape.vars(&g.params);
    let pv = model2d::project_vars(g.n, &params, 20, 14);
    for k in 0..g.n {
        assert_eq!(pv.means[2 * k].value(), s.means[k][0]);
        for c in 0..3 {
            assert!((pv.conics[3 * k + c].value() - s.conics[k][c]).abs() < 1e-14);
        }
        assert!((pv.opacities[k].value() - s.opacities[k]).abs() < 1e-15);
    }
}

fn model_loss<'t>(
    v: &[Var<'t>],
    n: usize,
    target: &[f64],
    w: usize,
    h: usize,
    which: Loss,
) -> Var<'t> {
    let tape = v[0].tape();
    let pv = model2d::project_vars(n, v, w, h);
    let bounds = model2d::bounds_of(&pv);
    let out = splat::raster::rasterize_op(
        tape,
        w,
        h,
        3,
        &pv.means,
        &pv.conics,
        &pv.opacities,
        &pv.colors,
        bounds,
        (0..n as u32).collect(),
        vec![0.1, 0.2, 0.3],
        Blend::Over,
        false,
    )
    .unwrap();
    loss::loss(which, &out.image, target, w, h, 3)
}

#[test]
fn whole_model_mse_passes_gradcheck() {
    let (w, h) = (12, 10);
    let g = random_model(5, 6);
    let target = image_io::default_target(12).resized(w, h).data;
    let opts = GradcheckOptions {
        step: 1e-6,
        atol: 1e-8,
        rtol: 1e-5,
    };
    let r = gradcheck(
        |v| model_loss(v, g.n, &target, w, h, Loss::Mse),
        &g.params,
        opts,
    );
    assert!(r.passed(), "{r}");
}

#[test]
fn whole_model_l1_ssim_passes_gradcheck() {
    let (w, h) = (14, 12);
    let g = random_model(8, 5);
    let target = image_io::default_target(16).resized(w, h).data;
    let opts = GradcheckOptions {
        step: 1e-6,
        atol: 1e-8,
        rtol: 1e-5,
    };
    let r = gradcheck(
        |v| model_loss(v, g.n, &target, w, h, Loss::L1Ssim),
        &g.params,
        opts,
    );
    assert!(r.passed(), "{r}");
}

fn blur_loss<'t>(v: &[Var<'t>], wts: &[f64], w: usize, h: usize, ch: usize) -> Var<'t> {
    let b = loss::blur_op(v[0].tape(), v, w, h, ch);
    let mut s = v[0].tape().var(0.0);
    for (bv, wv) in b.iter().zip(wts) {
        s += (*bv * *wv).sin();
    }
    s
}

#[test]
fn blur_op_passes_gradcheck() {
    let (w, h, ch) = (13, 9, 2);
    let mut r = splat::rng::Rng::new(4);
    let x: Vec<f64> = (0..w * h * ch).map(|_| r.uniform()).collect();
    let wts: Vec<f64> = (0..w * h * ch).map(|_| r.uniform() - 0.5).collect();
    let rep = gradcheck(
        |v| blur_loss(v, &wts, w, h, ch),
        &x,
        GradcheckOptions::default(),
    );
    assert!(rep.passed(), "{rep}");
}

#[test]
fn blur_preserves_constants_inside_and_sums_to_one() {
    let k = loss::ssim_kernel();
    assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    assert!((k[0] - k[10]).abs() < 1e-18 && k[5] > k[4]);
    let x = vec![0.7f64; 30 * 30];
    let b = loss::blur(&x, 30, 30, 1);
    assert!((b[15 * 30 + 15] - 0.7).abs() < 1e-14);
    // zero padding darkens the corner
    assert!(b[0] < 0.7 * 0.6);
}

#[test]
fn ssim_on_tape_matches_plain_and_finite_differences() {
    let (w, h, ch) = (16, 13, 3);
    let mut r = splat::rng::Rng::new(12);
    let x: Vec<f64> = (0..w * h * ch).map(|_| r.uniform()).collect();
    let y: Vec<f64> = (0..w * h * ch).map(|_| r.uniform()).collect();
    let tape = Tape::new();
    let xv = tape.vars(&x);
    let s = loss::ssim(&xv, &y, w, h, ch);
    assert!((s.value() - loss::ssim_values(&x, &y, w, h, ch)).abs() < 1e-13);
    assert!((loss::ssim_values(&y, &y, w, h, ch) - 1.0).abs() < 1e-12);
    let rep = gradcheck(
        |v| loss::ssim(v, &y, w, h, ch),
        &x,
        GradcheckOptions::default(),
    );
    assert!(rep.passed(), "{rep}");
}

#[test]
fn psnr_of_known_error() {
    let a = vec![0.5; 12];
    let b = vec![0.6; 12];
    // MSE 0.01 -> 20 dB
    assert!((loss::psnr(&a, &b) - 20.0).abs() < 1e-9);
    // clipping: 1.5 counts as 1.0
    assert!((loss::psnr(&[1.5], &[0.9]) - 20.0).abs() < 1e-9);
}

fn small_target() -> Image {
    image_io::default_target(32)
}

#[test]
fn fit_lowers_the_loss_and_is_deterministic() {
    let cfg = FitConfig {
        gaussians: 60,
        seed: 3,
        init: Init::Image,
        lr_mean: 0.005,
        ..FitConfig::default()
    };
    let mut a = Fitter::<f32>::new(small_target(), cfg.clone());
    let mut b = Fitter::<f32>::new(small_target(), cfg);
    let first = a.step();
    b.step();
    let mut last = first;
    for _ in 0..60 {
        last = a.step();
        b.step();
    }
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert_eq!(a.model(), b.model(), "same seed, same result");
}

#[test]
fn f64_fit_with_ssim_and_sum_blend_improves() {
    for (which, blend) in [(Loss::L1Ssim, Blend::Over), (Loss::Mse, Blend::Sum)] {
        let cfg = FitConfig {
            gaussians: 40,
            loss: which,
            blend,
            ..FitConfig::default()
        };
        let mut f = Fitter::<f64>::new(small_target(), cfg);
        let p0 = loss::psnr(&f.render().data, &f.target().data);
        for _ in 0..40 {
            f.step();
        }
        let p1 = loss::psnr(&f.render().data, &f.target().data);
        assert!(p1 > p0 + 1.0, "{which:?} {blend:?}: PSNR {p0} -> {p1}");
    }
}

#[test]
fn model_file_round_trips_and_rejects_bad_fields() {
    use splat::format::GaussianFile;
    let g = random_model(2, 4);
    let f = GaussianFile::new(&g, 10, 8, [0.1, 0.2, 0.3], Blend::Sum);
    let back = GaussianFile::from_json(&f.to_json()).unwrap();
    let (g2, bg, blend) = back.model().unwrap();
    assert_eq!(g2, g);
    assert_eq!(bg, [0.1, 0.2, 0.3]);
    assert_eq!(blend, Blend::Sum);
    let mut bad = f.clone();
    bad.version = 9;
    assert!(GaussianFile::from_json(&bad.to_json())
        .unwrap_err()
        .to_string()
        .contains("version"));
    let mut bad = f.clone();
    bad.color.pop();
    assert!(GaussianFile::from_json(&bad.to_json())
        .unwrap_err()
        .to_string()
        .contains("color"));
    assert!(GaussianFile::from_json("{}").is_err());
}

#[test]
fn render_at_double_scale_matches_downsampled_shape() {
    let g = random_model(6, 8);
    let a = model2d::render(&g, 16, 16, [0.0; 3], Blend::Over);
    let b = model2d::render(&g, 32, 32, [0.0; 3], Blend::Over);
    // the average of each 2x2 block is close to the low-resolution pixel
    let mut worst = 0.0f64;
    for i in 0..16 {
        for j in 0..16 {
            for c in 0..3 {
                let lo = a[(i * 16 + j) * 3 + c];
                let hi: f64 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(di, dj)| b[((2 * i + di) * 32 + 2 * j + dj) * 3 + c])
                    .sum::<f64>()
                    / 4.0;
                worst = worst.max((lo - hi).abs());
            }
        }
    }
    assert!(worst < 0.15, "worst {worst}");
}

#[test]
fn growth_adds_gaussians_where_the_error_is_and_keeps_state() {
    let cfg = FitConfig {
        gaussians: 20,
        init: Init::Image,
        ..FitConfig::default()
    };
    let mut f = Fitter::<f64>::new(small_target(), cfg.clone());
    for _ in 0..10 {
        f.step();
    }
    let before = f.model().clone();
    let psnr0 = loss::psnr(&f.render().data, &f.target().data);
    f.grow(15);
    let g = f.model();
    assert_eq!(g.n, 35);
    // old parameters kept, group by group
    for (grp, per) in [
        (model2d::Group::Mean, 2),
        (model2d::Group::Chol, 3),
        (model2d::Group::Color, 3),
        (model2d::Group::Opacity, 1),
    ] {
        let old = &before.params[before.range(grp)];
        let new = &g.params[g.range(grp)];
        assert_eq!(&new[..per * 20], old);
    }
    // the new means sit on pixel centres with large error
    let render = model2d::render(&before, 32, 32, [0.0; 3], Blend::Over);
    let err = |x: f64, y: f64| {
        let (j, i) = ((x * 32.0) as usize, (y * 32.0) as usize);
        let p = i * 32 + j;
        (0..3)
            .map(|c| (render[3 * p + c] - f.target().data[3 * p + c]).abs())
            .sum::<f64>()
    };
    let mut all: Vec<f64> = (0..32 * 32)
        .map(|p| {
            (0..3)
                .map(|c| (render[3 * p + c] - f.target().data[3 * p + c]).abs())
                .sum()
        })
        .collect();
    all.sort_by(|a, b| b.total_cmp(a));
    for k in 20..35 {
        assert!(err(g.params[2 * k], g.params[2 * k + 1]) >= all[14] - 1e-12);
    }
    // the fit goes on and improves
    for _ in 0..20 {
        assert!(f.step().is_finite());
    }
    assert!(loss::psnr(&f.render().data, &f.target().data) > psnr0);
    // deterministic
    let mut f2 = Fitter::<f64>::new(small_target(), cfg);
    for _ in 0..10 {
        f2.step();
    }
    f2.grow(15);
    for _ in 0..20 {
        f2.step();
    }
    assert_eq!(f.model(), f2.model());
}

/// The fit's l1-ssim loss joins the tape as one operation with the
/// hand-written gradient ([`splat::l1_ssim::L1Ssim`]): its value and
/// gradient are the ones of the loss recorded node by node, to rounding,
/// and in f32 they agree with f64.
#[test]
fn the_fits_l1_ssim_equals_the_recorded_loss() {
    let (w, h) = (23, 17);
    let target = image_io::default_target(32).resized(w, h);
    let cfg = FitConfig {
        gaussians: 12,
        seed: 4,
        loss: Loss::L1Ssim,
        background: [0.1, 0.2, 0.3],
        ..FitConfig::default()
    };
    let mut fit = Fitter::<f64>::new(target.clone(), cfg.clone());
    // a few steps first, so the splats are not at their initial values
    for _ in 0..3 {
        fit.step();
    }
    let params = fit.model().params.clone();
    let n = fit.model().n;
    let (v, g) = fit.loss_and_grad();
    let g = g.to_vec();
    let tape = Tape::new();
    let vars = tape.vars(&params);
    let l = model_loss(&vars, n, &target.data, w, h, Loss::L1Ssim);
    let gt = l.backward();
    assert!((v - l.value()).abs() < 1e-12, "{v} vs {}", l.value());
    for (k, (a, x)) in g.iter().zip(&vars).enumerate() {
        let b = gt.wrt(*x);
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "param {k}: {a} vs {b}"
        );
    }
    // f32: the same gradient to f32's precision
    let mut fit32 = Fitter::<f32>::new(target, cfg);
    for _ in 0..3 {
        fit32.step();
    }
    let (v32, g32) = fit32.loss_and_grad();
    assert!((v32 - v).abs() < 1e-4 * v.abs(), "{v32} vs {v}");
    let scale = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (a, b) in g32.iter().zip(&g) {
        assert!((a - b).abs() <= 2e-3 * scale, "{a} vs {b}");
    }
}
