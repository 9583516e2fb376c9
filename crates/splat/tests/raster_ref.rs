//! The rasterizer's hand-written backward against the engine's gradients of
//! the same render unrolled into plain `Var` operations, and against finite
//! differences.

#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};
use proptest::prelude::*;
use splat::raster::{
    backward, backward_abs, forward, opacity_aware_bound, pixel_rect, rasterize_op, Blend, Splats,
    ALPHA_MAX, ALPHA_MIN, T_MIN,
};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.next()
    }
}

/// Random splats: flat arrays (means 2N, conics 3N, opacities N, colours CN).
#[derive(Clone, Debug)]
struct Scene {
    w: usize,
    h: usize,
    ch: usize,
    means: Vec<f64>,
    conics: Vec<f64>,
    opac: Vec<f64>,
    colors: Vec<f64>,
    bg: Vec<f64>,
    order: Vec<u32>,
}

fn scene(seed: u64, w: usize, h: usize, n: usize, ch: usize, max_opacity: f64) -> Scene {
    let mut r = Rng(seed);
    let mut means = Vec::new();
    let mut conics = Vec::new();
    let mut opac = Vec::new();
    let mut colors = Vec::new();
    for _ in 0..n {
        means.push(r.range(-2.0, w as f64 + 2.0));
        means.push(r.range(-2.0, h as f64 + 2.0));
        // covariance from scales and an angle, in pixels
        let (s1, s2, th) = (r.range(1.0, 5.0), r.range(1.0, 5.0), r.range(0.0, 3.1));
        let (c, s) = (th.cos(), th.sin());
        let sxx = c * c * s1 * s1 + s * s * s2 * s2;
        let syy = s * s * s1 * s1 + c * c * s2 * s2;
        let sxy = c * s * (s1 * s1 - s2 * s2);
        let det = sxx * syy - sxy * sxy;
        conics.extend([syy / det, -sxy / det, sxx / det]);
        opac.push(r.range(0.05, max_opacity));
        for _ in 0..ch {
            colors.push(r.range(-0.2, 1.2));
        }
    }
    let bg = (0..ch).map(|_| r.range(0.0, 1.0)).collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    // a shuffled order exercises the per-tile lists keeping it
    for i in (1..n).rev() {
        let j = (r.next() * (i + 1) as f64) as usize;
        order.swap(i, j.min(i));
    }
    Scene {
        w,
        h,
        ch,
        means,
        conics,
        opac,
        colors,
        bg,
        order,
    }
}

fn bounds_of(sc: &Scene) -> Vec<[f64; 4]> {
    (0..sc.opac.len())
        .map(|k| {
            opacity_aware_bound(
                [sc.means[2 * k], sc.means[2 * k + 1]],
                [sc.conics[3 * k], sc.conics[3 * k + 1], sc.conics[3 * k + 2]],
                sc.opac[k],
            )
        })
        .collect()
}

/// The reference render: every pixel's recursion unrolled into `Var`
/// operations, the same skip and stop decisions on the values.
fn reference<'t>(
    sc: &Scene,
    bounds: &[[f64; 4]],
    blend: Blend,
    means: &[Var<'t>],
    conics: &[Var<'t>],
    opac: &[Var<'t>],
    colors: &[Var<'t>],
) -> (Vec<Var<'t>>, Vec<Var<'t>>) {
    let mut img = Vec::new();
    let mut alpha_out = Vec::new();
    for i in 0..sc.h {
        for j in 0..sc.w {
            let (rgb, a) = reference_pixel(sc, bounds, blend, [means, conics, opac, colors], i, j);
            img.extend(rgb);
            alpha_out.push(a);
        }
    }
    (img, alpha_out)
}

/// Pixel `(i, j)` of [`reference`]: its channels and its alpha, from the
/// splats' `[means, conics, opacities, colours]`.
fn reference_pixel<'t>(
    sc: &Scene,
    bounds: &[[f64; 4]],
    blend: Blend,
    [means, conics, opac, colors]: [&[Var<'t>]; 4],
    i: usize,
    j: usize,
) -> (Vec<Var<'t>>, Var<'t>) {
    let tape = means[0].tape();
    let (px, py) = (j as f64 + 0.5, i as f64 + 0.5);
    let mut t = tape.var(1.0) * 0.0 + 1.0;
    let mut acc: Vec<Var> = (0..sc.ch).map(|_| t * 0.0).collect();
    for &k in &sc.order {
        let k = k as usize;
        let Some(r) = pixel_rect(&bounds[k], sc.w, sc.h) else {
            continue;
        };
        let (iu, ju) = (i as u32, j as u32);
        if !(ju >= r[0] && ju <= r[2] && iu >= r[1] && iu <= r[3]) {
            continue;
        }
        let dx = px - means[2 * k];
        let dy = py - means[2 * k + 1];
        let q = conics[3 * k] * dx * dx
            + (conics[3 * k + 1] + conics[3 * k + 1]) * dx * dy
            + conics[3 * k + 2] * dy * dy;
        let raw = opac[k] * (-(q * 0.5)).exp();
        let a = match blend {
            Blend::Over => raw.min(ALPHA_MAX),
            Blend::Sum => raw,
        };
        if a.value() < ALPHA_MIN {
            continue;
        }
        match blend {
            Blend::Over => {
                let next = t * (1.0 - a);
                if next.value() < T_MIN {
                    break;
                }
                for c in 0..sc.ch {
                    acc[c] = acc[c] + colors[k * sc.ch + c] * a * t;
                }
                t = next;
            }
            Blend::Sum => {
                for c in 0..sc.ch {
                    acc[c] = acc[c] + colors[k * sc.ch + c] * a;
                }
            }
        }
    }
    let rgb = (0..sc.ch).map(|c| acc[c] + t * sc.bg[c]).collect();
    (rgb, 1.0 - t)
}

/// The kernel's view of `sc` (with its means and conics as arrays).
fn splats_of<'a>(
    sc: &'a Scene,
    means2: &'a [[f64; 2]],
    conics3: &'a [[f64; 3]],
    bounds: &'a [[f64; 4]],
    blend: Blend,
) -> Splats<'a, f64> {
    Splats {
        width: sc.w,
        height: sc.h,
        channels: sc.ch,
        means: means2,
        conics: conics3,
        opacities: &sc.opac,
        colors: &sc.colors,
        bounds,
        order: &sc.order,
        background: &sc.bg,
        blend,
    }
}

/// Weights for a scalar loss L = Σ wi · img + Σ wa · alpha.
fn weights(seed: u64, n: usize) -> Vec<f64> {
    let mut r = Rng(seed ^ 0xABCDEF);
    (0..n).map(|_| r.range(-1.0, 1.0)).collect()
}

/// Compares the kernel's gradients with the unrolled reference's; returns
/// the largest relative difference and the number of contributions seen.
fn compare(sc: &Scene, blend: Blend) -> (f64, usize) {
    compare_with(sc, blend, |_| {})
}

/// [`compare`] with the loss weights (image, then alpha) changed by `edit`.
fn compare_with(sc: &Scene, blend: Blend, edit: impl Fn(&mut [f64])) -> (f64, usize) {
    let bounds = bounds_of(sc);
    let n_img = sc.w * sc.h * sc.ch;
    let mut wts = weights(7, n_img + sc.w * sc.h);
    edit(&mut wts);
    let with_alpha = blend == Blend::Over;

    // reference on the tape
    let tape = Tape::new();
    let m = tape.vars(&sc.means);
    let c = tape.vars(&sc.conics);
    let o = tape.vars(&sc.opac);
    let col = tape.vars(&sc.colors);
    let (img, al) = reference(sc, &bounds, blend, &m, &c, &o, &col);
    let mut loss = tape.var(0.0);
    for (v, w) in img.iter().zip(&wts) {
        loss = loss + *v * *w;
    }
    if with_alpha {
        for (v, w) in al.iter().zip(&wts[n_img..]) {
            loss = loss + *v * *w;
        }
    }
    let g = loss.backward();
    let ref_grads: Vec<f64> = [&m[..], &c[..], &o[..], &col[..]]
        .iter()
        .flat_map(|vs| g.wrt_all(vs))
        .collect();

    // the kernel, called directly
    let means2: Vec<[f64; 2]> = sc.means.chunks(2).map(|p| [p[0], p[1]]).collect();
    let conics3: Vec<[f64; 3]> = sc.conics.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let s = splats_of(sc, &means2, &conics3, &bounds, blend);
    let r = forward(&s).unwrap();
    for (a, b) in r.image.iter().zip(&img) {
        assert!(
            (a - b.value()).abs() <= 1e-12 * (1.0 + a.abs()),
            "forward differs"
        );
    }
    let contributions: usize = r.last.iter().map(|&l| l as usize).sum();
    let d_alpha = if with_alpha {
        Some(&wts[n_img..])
    } else {
        None
    };
    let kg = backward(&s, &r, &wts[..n_img], d_alpha).unwrap();
    let mut kernel: Vec<f64> = kg.means.iter().flatten().copied().collect();
    kernel.extend(kg.conics.iter().flatten());
    kernel.extend(&kg.opacities);
    kernel.extend(&kg.colors);

    // and through the custom op
    let tape2 = Tape::new();
    let m2 = tape2.vars(&sc.means);
    let c2 = tape2.vars(&sc.conics);
    let o2 = tape2.vars(&sc.opac);
    let col2 = tape2.vars(&sc.colors);
    let out = rasterize_op(
        &tape2,
        sc.w,
        sc.h,
        sc.ch,
        &m2,
        &c2,
        &o2,
        &col2,
        bounds.clone(),
        sc.order.clone(),
        sc.bg.clone(),
        blend,
        with_alpha,
    )
    .unwrap();
    let mut loss2 = tape2.var(0.0);
    for (v, w) in out.image.iter().chain(&out.alpha).zip(&wts) {
        loss2 = loss2 + *v * *w;
    }
    let g2 = loss2.backward();
    let op_grads: Vec<f64> = [&m2[..], &c2[..], &o2[..], &col2[..]]
        .iter()
        .flat_map(|vs| g2.wrt_all(vs))
        .collect();

    let scale = ref_grads.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    let mut worst = 0.0f64;
    for ((r, k), o) in ref_grads.iter().zip(&kernel).zip(&op_grads) {
        let denom = r.abs().max(1e-3 * scale).max(1e-300);
        worst = worst.max((r - k).abs() / denom).max((r - o).abs() / denom);
    }
    (worst, contributions)
}

#[test]
fn over_matches_unrolled_tape_24x24_30_splats() {
    for seed in 0..4 {
        let sc = scene(seed, 24, 24, 30, 3, 0.99);
        let (worst, contributions) = compare(&sc, Blend::Over);
        assert!(
            contributions > 200,
            "too few contributions: {contributions}"
        );
        assert!(worst < 1e-9, "seed {seed}: relative difference {worst:e}");
    }
}

#[test]
fn over_with_early_stop_and_clamp_matches() {
    // many opaque splats: the clamp at 0.99 and the T < 1e-4 stop both fire
    let mut sc = scene(11, 20, 18, 40, 2, 1.0);
    for o in sc.opac.iter_mut() {
        *o = 0.95 + 0.05 * *o;
    }
    for k in 0..40 {
        sc.conics[3 * k] *= 0.1;
        sc.conics[3 * k + 1] *= 0.1;
        sc.conics[3 * k + 2] *= 0.1;
    }
    let (worst, _) = compare(&sc, Blend::Over);
    assert!(worst < 1e-9, "relative difference {worst:e}");
    // the stop really fired somewhere: some pixel ended near T_MIN
    let bounds = bounds_of(&sc);
    let means2: Vec<[f64; 2]> = sc.means.chunks(2).map(|p| [p[0], p[1]]).collect();
    let conics3: Vec<[f64; 3]> = sc.conics.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let s = splats_of(&sc, &means2, &conics3, &bounds, Blend::Over);
    let r = forward(&s).unwrap();
    assert!(r.final_t.iter().any(|&t| (T_MIN..1e-2).contains(&t)));
}

/// AbsGS's statistic ([`backward_abs`]): per splat, the sum over pixels
/// of the absolute value of each pixel's contribution to `∂L/∂mean`, `x`
/// and `y` apart. The reference takes every pixel's part of the loss on
/// its own tape (its channels and alpha, weighted as in the loss) and sums
/// the absolute values of its gradients with respect to the means.
#[test]
fn absolute_mean_gradients_match_per_pixel_tapes() {
    for (seed, blend) in [(21, Blend::Over), (22, Blend::Over), (23, Blend::Sum)] {
        let sc = scene(seed, 23, 19, 30, 3, 0.99);
        let (w, h, ch, n) = (sc.w, sc.h, sc.ch, sc.opac.len());
        let bounds = bounds_of(&sc);
        let n_img = w * h * ch;
        let wts = weights(seed, n_img + w * h);
        let with_alpha = blend == Blend::Over;
        let (mut want, mut signed) = (vec![[0.0f64; 2]; n], vec![[0.0f64; 2]; n]);
        for i in 0..h {
            for j in 0..w {
                let tape = Tape::new();
                let vars = [&sc.means, &sc.conics, &sc.opac, &sc.colors].map(|v| tape.vars(v));
                let [m, c, o, col] = &vars;
                let (rgb, a) = reference_pixel(&sc, &bounds, blend, [m, c, o, col], i, j);
                let p = i * w + j;
                let mut loss = a * if with_alpha { wts[n_img + p] } else { 0.0 };
                for (cc, v) in rgb.iter().enumerate() {
                    loss = loss + *v * wts[p * ch + cc];
                }
                let g = loss.backward().wrt_all(m);
                for k in 0..n {
                    for d in 0..2 {
                        want[k][d] += g[2 * k + d].abs();
                        signed[k][d] += g[2 * k + d];
                    }
                }
            }
        }
        let means2: Vec<[f64; 2]> = sc.means.chunks(2).map(|p| [p[0], p[1]]).collect();
        let conics3: Vec<[f64; 3]> = sc.conics.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        let s = splats_of(&sc, &means2, &conics3, &bounds, blend);
        let r = forward(&s).unwrap();
        let d_alpha = with_alpha.then(|| &wts[n_img..]);
        let (kg, abs) = backward_abs(&s, &r, &wts[..n_img], d_alpha).unwrap();
        assert_eq!(kg, backward(&s, &r, &wts[..n_img], d_alpha).unwrap());
        let scale = want.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let mut cancelled = 0;
        for k in 0..n {
            for d in 0..2 {
                let (got, exp) = (abs[k][d], want[k][d]);
                assert!(
                    (got - exp).abs() <= 1e-10 * exp + 1e-13 * scale,
                    "seed {seed}, splat {k}, axis {d}: {got} against {exp}"
                );
                // the signed sums (the reference's and the gradient) agree,
                // and the absolute sum is at least their absolute value
                let g = kg.means[k][d];
                assert!((g - signed[k][d]).abs() <= 1e-9 * (exp + 1e-3 * scale));
                assert!(got >= g.abs() * (1.0 - 1e-12), "seed {seed}, splat {k}");
                cancelled += (got > 1.5 * g.abs() && got > 1e-3 * scale) as usize;
            }
        }
        // not a scene where the absolute values change nothing
        assert!(
            cancelled > 5,
            "seed {seed}: {cancelled} sums with cancellation"
        );
    }
}

/// Channels with no gradient anywhere, and alpha gradients only in some
/// tiles: the backward skips those channels' terms (and ∂L/∂alpha's
/// where it is zero over a tile) and still matches the tape.
#[test]
fn zero_gradient_channels_match() {
    for seed in [31, 32] {
        let sc = scene(seed, 40, 36, 40, 3, 0.99);
        let (w, h, ch) = (sc.w, sc.h, sc.ch);
        let (worst, contributions) = compare_with(&sc, Blend::Over, |wts| {
            for p in 0..w * h {
                wts[p * ch + 1] = 0.0;
                // −0 counts as zero too
                wts[p * ch + 2] = -0.0;
                if p % w < 16 {
                    wts[w * h * ch + p] = 0.0;
                }
            }
        });
        assert!(contributions > 200);
        assert!(worst < 1e-9, "seed {seed}: relative difference {worst:e}");
    }
}

#[test]
fn sum_matches_unrolled_tape() {
    let sc = scene(5, 24, 24, 30, 3, 0.9);
    let (worst, _) = compare(&sc, Blend::Sum);
    assert!(worst < 1e-9, "relative difference {worst:e}");
}

#[test]
fn tiling_does_not_change_the_image() {
    // a splat spanning several tiles renders the same as the unrolled
    // reference (checked in compare) on a size that is not a tile multiple
    let sc = scene(3, 37, 21, 25, 3, 0.9);
    let (worst, _) = compare(&sc, Blend::Over);
    assert!(worst < 1e-9);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_scenes_match(seed in 0u64..1_000_000, n in 1usize..25, w in 5usize..30, h in 5usize..30) {
        let sc = scene(seed, w, h, n, 3, 0.99);
        let (worst, _) = compare(&sc, Blend::Over);
        prop_assert!(worst < 1e-9, "relative difference {:e}", worst);
    }
}

fn op_loss<'t>(v: &[Var<'t>], sc: &Scene, bounds: &[[f64; 4]], wts: &[f64], n: usize) -> Var<'t> {
    let tape = v[0].tape();
    let out = rasterize_op(
        tape,
        sc.w,
        sc.h,
        sc.ch,
        &v[..2 * n],
        &v[2 * n..5 * n],
        &v[5 * n..6 * n],
        &v[6 * n..],
        bounds.to_vec(),
        sc.order.clone(),
        sc.bg.clone(),
        Blend::Over,
        true,
    )
    .unwrap();
    let mut loss = tape.var(0.0);
    for (p, w) in out.image.iter().chain(&out.alpha).zip(wts) {
        loss = loss + (*p * *w).square();
    }
    loss
}

#[test]
fn custom_op_passes_gradcheck() {
    let sc = scene(21, 10, 9, 5, 2, 0.8);
    let bounds = bounds_of(&sc);
    let wts = weights(3, sc.w * sc.h * (sc.ch + 1));
    let n = sc.opac.len();
    let mut x = sc.means.clone();
    x.extend(&sc.conics);
    x.extend(&sc.opac);
    x.extend(&sc.colors);
    let opts = GradcheckOptions {
        step: 1e-6,
        atol: 1e-7,
        rtol: 1e-6,
    };
    let report = gradcheck(|v| op_loss(v, &sc, &bounds, &wts, n), &x, opts);
    assert!(report.passed(), "{report}");
}

#[test]
fn f32_kernel_agrees_with_f64() {
    let sc = scene(9, 24, 24, 30, 3, 0.9);
    let bounds = bounds_of(&sc);
    let means2: Vec<[f64; 2]> = sc.means.chunks(2).map(|p| [p[0], p[1]]).collect();
    let conics3: Vec<[f64; 3]> = sc.conics.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let s = splats_of(&sc, &means2, &conics3, &bounds, Blend::Over);
    let r = forward(&s).unwrap();
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let means32: Vec<[f32; 2]> = means2.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
    let conics32: Vec<[f32; 3]> = conics3
        .iter()
        .map(|p| [p[0] as f32, p[1] as f32, p[2] as f32])
        .collect();
    let bounds32: Vec<[f32; 4]> = bounds
        .iter()
        .map(|b| [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32])
        .collect();
    let (o32, c32, bg32) = (f(&sc.opac), f(&sc.colors), f(&sc.bg));
    let s32 = Splats {
        width: sc.w,
        height: sc.h,
        channels: sc.ch,
        means: &means32,
        conics: &conics32,
        opacities: &o32,
        colors: &c32,
        bounds: &bounds32,
        order: &sc.order,
        background: &bg32,
        blend: Blend::Over,
    };
    let r32 = forward(&s32).unwrap();
    let worst = r
        .image
        .iter()
        .zip(&r32.image)
        .map(|(a, b)| (a - *b as f64).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "f32 image differs by {worst}");
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let s = Splats::<f64> {
        width: 4,
        height: 4,
        channels: 3,
        means: &[[1.0, 1.0]],
        conics: &[[1.0, 0.0, 1.0]],
        opacities: &[0.5],
        colors: &[1.0, 1.0],
        bounds: &[[0.0, 0.0, 4.0, 4.0]],
        order: &[0],
        background: &[0.0; 3],
        blend: Blend::Over,
    };
    assert!(forward(&s).is_err());
    let s2 = Splats {
        colors: &[1.0, 1.0, 1.0],
        order: &[3],
        ..s
    };
    assert!(forward(&s2).is_err());
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let sc = scene(17, 70, 50, 80, 3, 0.95);
    let bounds = bounds_of(&sc);
    let means2: Vec<[f64; 2]> = sc.means.chunks(2).map(|p| [p[0], p[1]]).collect();
    let conics3: Vec<[f64; 3]> = sc.conics.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let s = splats_of(&sc, &means2, &conics3, &bounds, Blend::Over);
    let wts = weights(1, sc.w * sc.h * sc.ch);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let r = forward(&s).unwrap();
            let g = backward(&s, &r, &wts, None).unwrap();
            (r.image, g)
        })
    };
    let (img1, g1) = run(1);
    let (img3, g3) = run(3);
    assert_eq!(img1, img3);
    assert_eq!(
        g1, g3,
        "gradients must be bit-identical across thread counts"
    );
}
