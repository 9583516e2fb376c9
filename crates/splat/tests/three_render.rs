//! The full 3D pipeline (project → SH → depth sort → shared rasterizer)
//! against the same render written entirely with plain `Var` operations, the
//! direct kernel path against the tape path, and finite differences.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};
use splat::stages::StageTimes;
use splat::three::project::project_forward;
use splat::three::reference::render_reference;
use splat::three::render::{
    render, render_backward, render_backward_staged_in, render_backward_with_means2d, render_op,
    render_staged_in, BackwardGrads, RenderOptions, RenderWorkspace,
};
use splat::three::scene::{random_scene, GaussianVars, Gaussians, RandomScene, Rng};
use splat::three::{Camera, ProjectOptions};

fn scene(seed: u64, n: usize) -> Gaussians<f64> {
    random_scene(&RandomScene {
        n,
        sh_degree: 3,
        extent: 1.0,
        log_scale_min: -2.5,
        log_scale_max: -1.2,
        seed,
    })
}

fn camera(seed: u64, i: usize, w: u32, h: u32) -> Camera {
    let mut rng = Rng::new(seed * 31 + i as u64);
    Camera::orbit(
        [0.0; 3],
        rng.range(0.5, 1.8),
        rng.range(-0.5, 0.5),
        i,
        3,
        1.1,
        w,
        h,
    )
    .unwrap()
}

struct Run {
    values: Vec<f64>,
    grads: Vec<f64>,
}

fn loss_weights(seed: u64, px: usize) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..5 * px).map(|_| rng.range(-1.0, 1.0)).collect()
}

fn run(g: &Gaussians<f64>, cam: &Camera, opts: &RenderOptions, w: &[f64], reference: bool) -> Run {
    let tape = Tape::new();
    let gv = GaussianVars::new(&tape, g);
    let r = if reference {
        render_reference(&tape, &gv, cam, opts)
    } else {
        render_op(&tape, &gv, cam, opts).unwrap()
    };
    let mut outs = r.rgb.clone();
    outs.extend(&r.depth);
    outs.extend(&r.alpha);
    let mut loss = outs[0] * w[0];
    for (v, &wi) in outs.iter().zip(w).skip(1) {
        loss += *v * wi;
    }
    let grads = loss.backward().wrt_all(&gv.all());
    Run {
        values: outs.iter().map(|v| v.value()).collect(),
        grads,
    }
}

fn assert_close(what: &str, a: &[f64], b: &[f64], rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rtol * x.abs().max(y.abs()).max(1e-3 * scale);
        assert!(
            (x - y).abs() <= tol,
            "{what}[{i}]: {x:e} vs {y:e} (diff {:e})",
            (x - y).abs()
        );
    }
}

#[test]
fn full_pipeline_equals_all_var_reference() {
    let (w, h) = (32u32, 32u32);
    let mut covered = 0.0;
    let (mut behind, mut straddling) = (0, 0);
    for seed in 0..2 {
        let g = scene(seed, 20);
        for i in 0..3 {
            let cam = camera(seed, i, w, h);
            let p = project_forward(&g, &cam, &ProjectOptions::default());
            behind += g
                .means
                .iter()
                .filter(|m| cam.to_camera(**m)[2] <= 0.0)
                .count();
            straddling += (0..g.len())
                .filter(|&k| {
                    let (m, r) = (p.means2d[k][0], p.radii[k] as f64);
                    p.radii[k] > 0 && ((m - r) / 16.0).floor() != ((m + r) / 16.0).floor()
                })
                .count();
            for aa in [false, true] {
                let opts = RenderOptions {
                    project: ProjectOptions {
                        antialiased: aa,
                        ..Default::default()
                    },
                    sh_degree: None,
                    background: [0.2, 0.4, 0.1],
                };
                let wts = loss_weights(seed * 7 + i as u64, (w * h) as usize);
                let k = run(&g, &cam, &opts, &wts, false);
                let r = run(&g, &cam, &opts, &wts, true);
                assert_close("render values", &k.values, &r.values, 1e-12);
                assert_close("render gradient", &k.grads, &r.grads, 1e-9);
                let px = (w * h) as usize;
                covered += k.values[4 * px..].iter().sum::<f64>() / px as f64;
            }
        }
    }
    // the views are neither empty nor saturated, some Gaussians are behind
    // a camera and some visible ones straddle tile borders
    assert!(covered > 0.5 && covered < 11.5, "mean alpha sum {covered}");
    assert!(
        behind > 0 && straddling > 5,
        "behind {behind}, straddling {straddling}"
    );
}

#[test]
fn direct_kernels_equal_tape_path() {
    let g = scene(4, 30);
    let cam = camera(4, 1, 40, 24);
    let opts = RenderOptions {
        sh_degree: Some(2),
        background: [1.0, 1.0, 1.0],
        ..Default::default()
    };
    let px = 40 * 24;
    let wts = loss_weights(5, px);
    let taped = run(&g, &cam, &opts, &wts, false);
    let (img, state) = render(&g, &cam, &opts).unwrap();
    let mut vals = img.rgb.clone();
    vals.extend(&img.depth);
    vals.extend(&img.alpha);
    assert_close("direct vs tape values", &vals, &taped.values, 1e-14);
    let d = render_backward(
        &g,
        &cam,
        &opts,
        &state,
        &wts[..3 * px],
        Some(&wts[3 * px..4 * px]),
        Some(&wts[4 * px..]),
    )
    .unwrap();
    let mut flat: Vec<f64> = d.means.concat();
    flat.extend(d.log_scales.concat());
    flat.extend(d.quats.concat());
    flat.extend(&d.opacity_logits);
    flat.extend(&d.sh);
    assert_close("direct vs tape", &flat, &taped.grads, 1e-12);
    // bands above the degree in use get no gradient
    let k = g.sh_coeffs();
    for i in 0..g.len() {
        for kk in 9..k {
            assert_eq!(d.sh[(i * k + kk) * 3], 0.0);
        }
    }
}

/// One workspace reused across renders of different sizes, scenes, SH
/// degrees and gradient inputs (growing and shrinking, as a densifying
/// trainer's does) gives the bits of fresh renders: nothing stale is read;
/// with AbsGS's absolute sums on, too (and they are there only then).
#[test]
fn a_reused_workspace_gives_the_fresh_bits() {
    let mut ws = RenderWorkspace::default();
    let cases = [
        (1, 40, 48, 32, Some(3), true),
        (2, 12, 20, 18, Some(1), false),
        (3, 60, 64, 40, None, true),
        (4, 25, 33, 17, Some(0), false),
        (5, 60, 64, 40, Some(2), true),
    ];
    for (seed, n, w, h, sh_degree, with_extra) in cases {
        let g = scene(seed, n);
        let cam = camera(seed, seed as usize, w, h);
        let opts = RenderOptions {
            sh_degree,
            background: [0.2, 0.5, 1.0],
            ..Default::default()
        };
        let px = (w * h) as usize;
        let wts = loss_weights(seed + 100, px);
        let grads = BackwardGrads {
            d_rgb: &wts[..3 * px],
            d_depth: with_extra.then(|| &wts[3 * px..4 * px]),
            d_alpha: with_extra.then(|| &wts[4 * px..]),
        };
        let (img, state) = render(&g, &cam, &opts).unwrap();
        let (d, d_means2d) = render_backward_with_means2d(
            &g,
            &cam,
            &opts,
            &state,
            grads.d_rgb,
            grads.d_depth,
            grads.d_alpha,
        )
        .unwrap();
        let mut st = StageTimes::default();
        // AbsGS's sums on in some cases: the gradients keep their bits
        let absgrad = seed % 2 == 1;
        ws.set_absgrad(absgrad);
        render_staged_in(&g, &cam, &opts, &mut st, &mut ws).unwrap();
        assert_eq!(ws.image(), &img, "image, case {seed}");
        assert_eq!(ws.state().projected, state.projected, "case {seed}");
        assert_eq!(ws.state().raster.image, state.raster.image, "case {seed}");
        render_backward_staged_in(&g, &cam, &opts, grads, &mut st, &mut ws).unwrap();
        assert_eq!(ws.grads(), &d, "gradients, case {seed}");
        assert_eq!(ws.d_means2d(), &d_means2d[..], "2D means, case {seed}");
        match ws.d_means2d_abs() {
            Some(abs) => {
                assert!(absgrad, "case {seed}");
                // each at least the signed sum's absolute value, and more
                // for some (pixels pulling a splat different ways)
                let mut more = 0;
                for (a, d) in abs.iter().zip(&d_means2d) {
                    for k in 0..2 {
                        assert!(a[k] >= d[k].abs() * (1.0 - 1e-12), "case {seed}");
                        more += (a[k] > 1.01 * d[k].abs()) as usize;
                    }
                }
                assert!(more > 0, "case {seed}");
            }
            None => assert!(!absgrad, "case {seed}"),
        }
    }
}

#[test]
fn depth_and_alpha_of_one_opaque_splat() {
    let cam = Camera::look_at([0.0, 0.0, -3.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 32, 32).unwrap();
    let mut g = scene(1, 2);
    g.means = vec![[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    g.log_scales = vec![[-1.0; 3], [-1.0; 3]];
    g.opacity_logits = vec![10.0, 10.0];
    let (img, _) = render(&g, &cam, &RenderOptions::default()).unwrap();
    let c = 16 * 32 + 16;
    // the nearer splat at depth 3 hides the one at depth 4 at the centre
    assert!(img.alpha[c] > 0.99);
    // (3 · 0.99 + 4 · 0.99 · 0.01) / (1 − 0.01²) plus the edges' blur
    assert!(
        img.depth[c] > 3.0 && img.depth[c] < 3.05,
        "{}",
        img.depth[c]
    );
    assert_eq!(img.alpha[0], 0.0);
    assert_eq!(img.depth[0], 0.0);
}

#[test]
fn render_passes_gradcheck() {
    let g = scene(11, 4);
    let cam = camera(11, 0, 16, 16);
    let opts = RenderOptions::default();
    let wts = loss_weights(12, 256);
    let x0: Vec<f64> = {
        let tape = Tape::new();
        GaussianVars::new(&tape, &g)
            .all()
            .iter()
            .map(|v| v.value())
            .collect()
    };
    let n = g.len();
    let f = hr(|x: &[Var<'_>]| {
        let tape = x[0].tape();
        let gv = GaussianVars {
            means: x[..3 * n].to_vec(),
            log_scales: x[3 * n..6 * n].to_vec(),
            quats: x[6 * n..10 * n].to_vec(),
            opacity_logits: x[10 * n..11 * n].to_vec(),
            sh: x[11 * n..].to_vec(),
            sh_degree: 3,
        };
        let r = render_op(tape, &gv, &cam, &opts).unwrap();
        let mut outs = r.rgb.clone();
        outs.extend(&r.depth);
        outs.extend(&r.alpha);
        let mut loss = outs[0] * wts[0];
        for (v, &wi) in outs.iter().zip(&wts).skip(1) {
            loss += *v * wi;
        }
        loss
    });
    let r = gradcheck(
        f,
        &x0,
        GradcheckOptions {
            step: 1e-6,
            atol: 1e-5,
            rtol: 1e-4,
        },
    );
    assert!(r.passed(), "{r}");
}

fn hr<F: for<'t> Fn(&[Var<'t>]) -> Var<'t>>(f: F) -> F {
    f
}

#[test]
fn f32_render_agrees_with_f64() {
    let g = scene(6, 60);
    let cam = camera(6, 2, 48, 32);
    let opts = RenderOptions::default();
    let (a, _) = render(&g, &cam, &opts).unwrap();
    let (b, _) = render(&g.cast::<f32>(), &cam, &opts).unwrap();
    let max = a
        .rgb
        .iter()
        .zip(&b.rgb)
        .map(|(x, y)| (x - *y as f64).abs())
        .fold(0.0, f64::max);
    assert!(max < 1e-3, "max rgb difference {max}");
    assert!(a.alpha.iter().sum::<f64>() > 10.0);
}
