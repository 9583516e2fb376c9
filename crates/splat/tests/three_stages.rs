//! The 3D stages (projection, SH colour) against the same computations
//! written with plain `Var` operations, and against finite differences.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};
use proptest::prelude::*;
use splat::three::project::{
    project_backward, project_forward, project_op, quat_to_rotmat, Projected, ProjectedGrads,
};
use splat::three::reference::{project_reference, sh_reference};
use splat::three::render::depth_order;
use splat::three::scene::{random_scene, GaussianVars, Gaussians, RandomScene, Rng};
use splat::three::sh::{sh_backward, sh_basis, sh_forward, sh_op};
use splat::three::{Camera, ProjectOptions};

fn scene(seed: u64, n: usize, degree: usize) -> Gaussians<f64> {
    random_scene(&RandomScene {
        n,
        sh_degree: degree,
        extent: 1.0,
        log_scale_min: -2.5,
        log_scale_max: -1.0,
        seed,
    })
}

/// Cameras around the origin close enough that some Gaussians are behind
/// them or off-screen.
fn cameras(seed: u64) -> Vec<Camera> {
    let mut rng = Rng::new(seed ^ 77);
    (0..3)
        .map(|i| {
            let r = rng.range(0.4, 1.8);
            let mut c = Camera::orbit(
                [rng.range(-0.2, 0.2), 0.0, 0.0],
                r,
                rng.range(-0.6, 0.6),
                i,
                3,
                rng.range(0.8, 1.6),
                32,
                32,
            )
            .unwrap();
            c.cx += rng.range(-3.0, 3.0);
            c.fy *= rng.range(0.9, 1.1);
            c
        })
        .collect()
}

fn assert_close(what: &str, a: &[f64], b: &[f64], rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rtol * x.abs().max(y.abs()).max(1e-3 * scale) + 1e-300;
        assert!(
            (x - y).abs() <= tol,
            "{what}[{i}]: kernel {x:e} vs reference {y:e} (diff {:e})",
            (x - y).abs()
        );
    }
}

/// Pins a closure to the higher-ranked signature `gradcheck` wants.
fn hr<F: for<'t> Fn(&[Var<'t>]) -> Var<'t>>(f: F) -> F {
    f
}

fn weights(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.range(-1.0, 1.0)).collect()
}

fn dot<'t>(vs: &[Var<'t>], w: &[f64]) -> Var<'t> {
    let mut acc = vs[0] * w[0];
    for (v, &wi) in vs.iter().zip(w).skip(1) {
        acc += *v * wi;
    }
    acc
}

/// Loss = random linear functional of every projected output; returns the
/// gradient of all inputs, once through the kernel op and once through the
/// reference, plus the radii of both.
fn project_grads(
    g: &Gaussians<f64>,
    cam: &Camera,
    opts: &ProjectOptions,
    seed: u64,
) -> [(Vec<f64>, Vec<u32>, Vec<f64>); 2] {
    let n = g.len();
    let mut rng = Rng::new(seed);
    let w = weights(&mut rng, 7 * n);
    [true, false].map(|kernel| {
        let tape = Tape::new();
        let gv = GaussianVars::new(&tape, g);
        let p = if kernel {
            project_op(&tape, &gv, cam, opts)
        } else {
            project_reference(&gv, cam, opts)
        };
        let mut outs = p.means2d.clone();
        outs.extend(&p.conics);
        outs.extend(&p.depths);
        outs.extend(&p.opacities);
        let vals: Vec<f64> = outs.iter().map(|v| v.value()).collect();
        let loss = dot(&outs, &w);
        let grads = loss.backward();
        let mut all = gv.means.clone();
        all.extend(&gv.log_scales);
        all.extend(&gv.quats);
        all.extend(&gv.opacity_logits);
        (grads.wrt_all(&all), p.radii.clone(), vals)
    })
}

/// Returns (visible, visible with a clamped projection Jacobian).
fn check_projection(seed: u64, antialiased: bool) -> (usize, usize) {
    let g = scene(seed, 20, 0);
    let mut visible = 0;
    let mut clamped = 0;
    for (ci, cam) in cameras(seed).iter().enumerate() {
        let opts = ProjectOptions {
            antialiased,
            ..Default::default()
        };
        let [(gk, rk, vk), (gr, rr, vr)] = project_grads(&g, cam, &opts, seed + ci as u64);
        assert_eq!(rk, rr, "radii, camera {ci}");
        assert_close("projected values", &vk, &vr, 1e-12);
        assert_close("projection gradient", &gk, &gr, 1e-9);
        visible += rk.iter().filter(|&&r| r > 0).count();
        let limx = 1.3 * 0.5 * cam.width as f64 / cam.fx;
        let limy = 1.3 * 0.5 * cam.height as f64 / cam.fy;
        clamped += (0..g.len())
            .filter(|&i| {
                let t = cam.to_camera(g.means[i]);
                rk[i] > 0 && ((t[0] / t[2]).abs() > limx || (t[1] / t[2]).abs() > limy)
            })
            .count();
    }
    (visible, clamped)
}

#[test]
fn projection_backward_equals_engine_on_random_scenes() {
    let (mut total, mut clamped) = (0, 0);
    for seed in 0..6 {
        for aa in [false, true] {
            let (v, c) = check_projection(seed, aa);
            total += v;
            clamped += c;
        }
    }
    // the scenes exercise culled, visible and frustum-clamped Gaussians
    assert!(total > 50 && total < 6 * 2 * 3 * 20, "visible: {total}");
    assert!(clamped > 0, "no visible Gaussian had a clamped Jacobian");
}

/// A Gaussian whose projected values get no gradient (one the view did
/// not draw) gets none back, and the others' gradients keep their bits:
/// the kernel skips such Gaussians.
#[test]
fn projection_backward_of_zero_gradients_is_zero() {
    let g = scene(5, 40, 0);
    let n = g.len();
    let mut rng = Rng::new(9);
    let mut r = || rng.range(-1.0, 1.0);
    for cam in cameras(5) {
        let opts = ProjectOptions::default();
        let full = ProjectedGrads {
            means2d: (0..n).map(|_| [r(), r()]).collect(),
            conics: (0..n).map(|_| [r(), r(), r()]).collect(),
            depths: (0..n).map(|_| r()).collect(),
            opacities: (0..n).map(|_| r()).collect(),
        };
        let mut half = full.clone();
        for i in (1..n).step_by(2) {
            half.means2d[i] = [0.0; 2];
            half.conics[i] = [0.0; 3];
            half.depths[i] = 0.0;
            half.opacities[i] = 0.0;
        }
        let a = project_backward(&g, &cam, &opts, &full);
        let b = project_backward(&g, &cam, &opts, &half);
        let row = |d: &Gaussians<f64>, i: usize| -> Vec<u64> {
            let mut v: Vec<f64> = d.means[i].to_vec();
            v.extend(d.log_scales[i]);
            v.extend(d.quats[i]);
            v.push(d.opacity_logits[i]);
            v.iter().map(|x| x.to_bits()).collect()
        };
        for i in 0..n {
            if i % 2 == 1 {
                assert_eq!(row(&b, i), vec![0; 11], "Gaussian {i}");
            } else {
                assert_eq!(row(&b, i), row(&a, i), "Gaussian {i}");
            }
        }
        // some of the zeroed ones were drawn: the shortcut is what skips them
        let p = project_forward(&g, &cam, &opts);
        assert!((1..n).step_by(2).any(|i| p.radii[i] > 0));
    }
}

#[test]
fn projection_culls_behind_near_and_outside() {
    let cam = Camera::look_at([0.0, 0.0, -3.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 32, 32).unwrap();
    let mut g = scene(1, 4, 0);
    g.means = vec![
        [0.0, 0.0, 0.0],    // in front, centre
        [0.0, 0.0, -3.5],   // behind the camera
        [50.0, 0.0, 0.0],   // far off to the side
        [0.0, 0.0, -2.995], // nearer than the near plane (z = 0.005)
    ];
    g.log_scales = vec![[-2.0; 3]; 4];
    let p = project_forward(&g, &cam, &ProjectOptions::default());
    assert!(p.radii[0] > 0);
    assert_eq!(&p.radii[1..], &[0, 0, 0]);
    assert!((p.means2d[0][0] - 16.0).abs() < 1e-12 && (p.means2d[0][1] - 16.0).abs() < 1e-12);
    assert!((p.depths[0] - 3.0).abs() < 1e-12);
    // an isotropic Gaussian of scale σ at depth z has pixel variance
    // (f σ / z)² + 0.3
    let f = cam.fx;
    let var = (f * (-2.0f64).exp() / 3.0).powi(2) + 0.3;
    assert!((p.conics[0][0] - 1.0 / var).abs() < 1e-9 * (1.0 / var));
    assert!(p.conics[0][1].abs() < 1e-12);
    assert_eq!(p.radii[0], (3.0 * var.sqrt()).ceil() as u32);
}

#[test]
fn antialiasing_compensates_opacity() {
    let cam = Camera::look_at([0.0, 0.0, -3.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 32, 32).unwrap();
    let mut g = scene(2, 1, 0);
    g.means = vec![[0.0; 3]];
    g.log_scales = vec![[-4.0; 3]];
    g.opacity_logits = vec![0.0];
    let plain = project_forward(&g, &cam, &ProjectOptions::default());
    let aa = project_forward(
        &g,
        &cam,
        &ProjectOptions {
            antialiased: true,
            ..Default::default()
        },
    );
    let v = (cam.fx * (-4.0f64).exp() / 3.0).powi(2);
    assert!((plain.opacities[0] - 0.5).abs() < 1e-15);
    let want = 0.5 * (v * v / ((v + 0.3) * (v + 0.3))).sqrt();
    assert!(
        (aa.opacities[0] - want).abs() < 1e-12,
        "{} vs {want}",
        aa.opacities[0]
    );
    assert_eq!(aa.conics, plain.conics);
}

#[test]
fn projection_passes_gradcheck() {
    let g = scene(5, 3, 0);
    let cam = &cameras(5)[0];
    for aa in [false, true] {
        let opts = ProjectOptions {
            antialiased: aa,
            ..Default::default()
        };
        let n = g.len();
        let mut rng = Rng::new(9);
        let w = weights(&mut rng, 7 * n);
        let x0: Vec<f64> = {
            let tape = Tape::new();
            let gv = GaussianVars::new(&tape, &g);
            let mut all = gv.means.clone();
            all.extend(&gv.log_scales);
            all.extend(&gv.quats);
            all.extend(&gv.opacity_logits);
            all.iter().map(|v| v.value()).collect()
        };
        let f = hr(|x: &[Var<'_>]| {
            let tape = x[0].tape();
            let gv = GaussianVars {
                means: x[..3 * n].to_vec(),
                log_scales: x[3 * n..6 * n].to_vec(),
                quats: x[6 * n..10 * n].to_vec(),
                opacity_logits: x[10 * n..11 * n].to_vec(),
                sh: vec![],
                sh_degree: 0,
            };
            let p = project_op(tape, &gv, cam, &opts);
            let mut outs = p.means2d.clone();
            outs.extend(&p.conics);
            outs.extend(&p.depths);
            outs.extend(&p.opacities);
            dot(&outs, &w)
        });
        let r = gradcheck(
            f,
            &x0,
            GradcheckOptions {
                step: 1e-5,
                atol: 1e-6,
                rtol: 1e-5,
            },
        );
        assert!(r.passed(), "{r}");
    }
}

#[test]
fn projection_f32_matches_f64() {
    let g = scene(3, 200, 0);
    let cam = &cameras(3)[1];
    let opts = ProjectOptions::default();
    let p64 = project_forward(&g, cam, &opts);
    let p32 = project_forward(&g.cast::<f32>(), cam, &opts);
    let mut rng = Rng::new(4);
    let mut gr64 = ProjectedGrads::<f64>::zeros(g.len());
    for i in 0..g.len() {
        gr64.means2d[i] = [rng.normal(), rng.normal()];
        gr64.conics[i] = [rng.normal(), rng.normal(), rng.normal()];
        gr64.opacities[i] = rng.normal();
        gr64.depths[i] = rng.normal();
    }
    let gr32 = ProjectedGrads {
        means2d: gr64.means2d.iter().map(|v| v.map(|x| x as f32)).collect(),
        conics: gr64.conics.iter().map(|v| v.map(|x| x as f32)).collect(),
        depths: gr64.depths.iter().map(|&x| x as f32).collect(),
        opacities: gr64.opacities.iter().map(|&x| x as f32).collect(),
    };
    let d64 = project_backward(&g, cam, &opts, &gr64);
    let d32 = project_backward(&g.cast::<f32>(), cam, &opts, &gr32);
    let mut compared = 0;
    for i in 0..g.len() {
        // splats right at a culling threshold may flip in f32
        if p64.radii[i] == 0 || p32.radii[i] == 0 {
            continue;
        }
        compared += 1;
        for k in 0..2 {
            assert!((p64.means2d[i][k] - p32.means2d[i][k] as f64).abs() < 1e-3);
        }
        for k in 0..3 {
            let (a, b) = (d64.means[i][k], d32.means[i][k] as f64);
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
    assert!(compared > 20);
}

#[test]
fn rotation_matrices_are_orthonormal() {
    let mut rng = Rng::new(11);
    for _ in 0..50 {
        let q = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        let r = quat_to_rotmat(q.map(|v| v / n));
        for i in 0..3 {
            for j in 0..3 {
                let d: f64 = (0..3).map(|k| r[i][k] * r[j][k]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
            - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
        assert!((det - 1.0).abs() < 1e-12);
    }
    // 90° about z maps x to y
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let r = quat_to_rotmat([h, 0.0, 0.0, h]);
    assert!((r[1][0] - 1.0).abs() < 1e-12 && r[0][0].abs() < 1e-12);
}

fn sh_grads(g: &Gaussians<f64>, campos: [f64; 3], degree: usize, seed: u64) -> [Vec<f64>; 2] {
    let mut rng = Rng::new(seed);
    let w = weights(&mut rng, 3 * g.len());
    [true, false].map(|kernel| {
        let tape = Tape::new();
        let gv = GaussianVars::new(&tape, g);
        let cols = if kernel {
            sh_op(&tape, &gv, campos, degree)
        } else {
            sh_reference(&gv, campos, degree)
        };
        let loss = dot(&cols, &w);
        let gr = loss.backward();
        let mut all = gv.means.clone();
        all.extend(&gv.sh);
        let mut out: Vec<f64> = cols.iter().map(|v| v.value()).collect();
        out.extend(gr.wrt_all(&all));
        out
    })
}

#[test]
fn sh_backward_equals_engine_all_degrees() {
    for degree in 0..=3 {
        for seed in 0..4 {
            let g = scene(seed, 20, 3);
            let campos = cameras(seed)[0].center();
            let [k, r] = sh_grads(&g, campos, degree, seed);
            assert_close(&format!("sh degree {degree}"), &k, &r, 1e-9);
        }
    }
    // and with a scene stored at a lower degree
    let g = scene(9, 20, 1);
    let [k, r] = sh_grads(&g, [3.0, 0.5, -1.0], 1, 9);
    assert_close("sh stored degree 1", &k, &r, 1e-9);
}

/// A Gaussian whose colour gets no gradient (one the view did not draw)
/// gets none back, and the others' gradients keep their bits.
#[test]
fn sh_backward_of_zero_gradients_is_zero() {
    let g = scene(6, 30, 3);
    let n = g.len();
    let mut rng = Rng::new(4);
    let full: Vec<[f64; 3]> = (0..n)
        .map(|_| [0, 1, 2].map(|_| rng.range(-1.0, 1.0)))
        .collect();
    let mut half = full.clone();
    for gc in half.iter_mut().skip(1).step_by(2) {
        *gc = [0.0; 3];
    }
    let campos = [0.3, -2.0, 0.5];
    let (am, ash) = sh_backward(&g, campos, 3, &full);
    let (bm, bsh) = sh_backward(&g, campos, 3, &half);
    let k = 3 * g.sh_coeffs();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for i in 0..n {
        let (a, b) = (&ash[k * i..k * (i + 1)], &bsh[k * i..k * (i + 1)]);
        if i % 2 == 1 {
            assert!(
                bm[i] == [0.0; 3] && b.iter().all(|&v| v == 0.0),
                "Gaussian {i}"
            );
        } else {
            assert_eq!(bits(&bm[i]), bits(&am[i]), "Gaussian {i}");
            assert_eq!(bits(b), bits(a), "Gaussian {i}");
        }
    }
}

#[test]
fn sh_clamp_blocks_gradient() {
    let mut g = scene(1, 1, 0);
    g.sh = vec![-5.0, 1.0, 0.0];
    let cols = sh_forward(&g, [0.0, 0.0, -5.0], 0);
    assert_eq!(cols[0][0], 0.0);
    assert!((cols[0][1] - (0.5 + 0.282_094_791_773_878_14)).abs() < 1e-15);
    assert_eq!(cols[0][2], 0.5);
    let tape = Tape::new();
    let gv = GaussianVars::new(&tape, &g);
    let c = sh_op(&tape, &gv, [0.0, 0.0, -5.0], 0);
    let gr = (c[0] + c[1]).backward();
    assert_eq!(gr.wrt(gv.sh[0]), 0.0);
    assert!((gr.wrt(gv.sh[1]) - 0.282_094_791_773_878_14).abs() < 1e-15);
}

#[test]
fn sh_passes_gradcheck() {
    let g = scene(4, 3, 3);
    let n = g.len();
    let campos = [2.0, -1.0, 0.5];
    let mut rng = Rng::new(3);
    let w = weights(&mut rng, 3 * n);
    let mut x0: Vec<f64> = g.means.concat();
    x0.extend(&g.sh);
    let f = hr(|x: &[Var<'_>]| {
        let gv = GaussianVars {
            means: x[..3 * n].to_vec(),
            log_scales: vec![],
            quats: vec![],
            opacity_logits: vec![],
            sh: x[3 * n..].to_vec(),
            sh_degree: 3,
        };
        dot(&sh_op(x[0].tape(), &gv, campos, 3), &w)
    });
    let r = gradcheck(f, &x0, GradcheckOptions::default());
    assert!(r.passed(), "{r}");
}

/// The basis is orthonormal on the sphere: checks every constant and sign
/// convention up to each function's sign.
#[test]
fn sh_basis_is_orthonormal() {
    let n = 20_000;
    let mut gram = [[0.0f64; 16]; 16];
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    for i in 0..n {
        let z = 1.0 - (2.0 * i as f64 + 1.0) / n as f64;
        let r = (1.0 - z * z).sqrt();
        let phi = golden * i as f64;
        let b = sh_basis(3, [r * phi.cos(), r * phi.sin(), z]);
        for a in 0..16 {
            for c in 0..16 {
                gram[a][c] += b[a] * b[c];
            }
        }
    }
    let area = 4.0 * std::f64::consts::PI / n as f64;
    for (a, row) in gram.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let want = if a == c { 1.0 } else { 0.0 };
            assert!(
                (v * area - want).abs() < 2e-3,
                "<Y{a}, Y{c}> = {}",
                v * area
            );
        }
    }
}

#[test]
fn opengl_cameras_convert_to_opencv() {
    // Blender camera at (0, 0, 4) looking down −z at the origin, +y up
    let c2w = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 4.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let cam = Camera::from_opengl_c2w(c2w, 50.0, 50.0, 16.0, 16.0, 32, 32);
    cam.validate().unwrap();
    assert_eq!(cam.center(), [0.0, 0.0, 4.0]);
    let o = cam.to_camera([0.0; 3]);
    assert!((o[2] - 4.0).abs() < 1e-12, "the origin is 4 in front");
    let right = cam.project_point([1.0, 0.0, 0.0]).unwrap();
    let up = cam.project_point([0.0, 1.0, 0.0]).unwrap();
    assert!(right[0] > 16.0, "world +x appears to the right");
    assert!(up[1] < 16.0, "world +y (up in Blender) appears at the top");
    // look_at agrees with the converted pose
    let la = Camera::look_at([0.0, 0.0, 4.0], [0.0; 3], [0.0, 1.0, 0.0], 1.0, 32, 32).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert!((la.rotation[i][j] - cam.rotation[i][j]).abs() < 1e-12);
        }
        assert!((la.translation[i] - cam.translation[i]).abs() < 1e-12);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn prop_projection_matches_reference(seed in 100u64..10_000, aa in any::<bool>()) {
        check_projection(seed, aa);
    }

    #[test]
    fn prop_orbit_cameras_look_at_centre(i in 0usize..16, r in 0.5f64..10.0, el in -1.2f64..1.2) {
        let c = Camera::orbit([0.3, -0.2, 0.1], r, el, i, 16, 1.0, 64, 48).unwrap();
        c.validate().unwrap();
        let p = c.project_point([0.3, -0.2, 0.1]).unwrap();
        prop_assert!((p[0] - 32.0).abs() < 1e-9 && (p[1] - 24.0).abs() < 1e-9);
        let ctr = c.center();
        let d = ((ctr[0] - 0.3).powi(2) + (ctr[1] + 0.2).powi(2) + (ctr[2] - 0.1).powi(2)).sqrt();
        prop_assert!((d - r).abs() < 1e-9);
        // world up (+z) appears upward in the image
        let above = c.project_point([0.3, -0.2, 0.1 + 0.01]).unwrap();
        prop_assert!(above[1] < 24.0);
    }
}

/// Random projections: depths drawn from a few values (ties) and from a
/// range, some splats hidden (radius 0 or opacity 0).
fn projected_for_order(seed: u64, n: usize, wide: bool) -> Projected<f64> {
    let mut rng = Rng::new(seed);
    let mut p = Projected {
        means2d: vec![[0.0; 2]; n],
        conics: vec![[1.0, 0.0, 1.0]; n],
        depths: Vec::with_capacity(n),
        opacities: Vec::with_capacity(n),
        radii: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let d = if rng.uniform() < 0.3 {
            [0.5, 1.25, 3.0][(rng.uniform() * 3.0) as usize % 3]
        } else {
            rng.range(0.01, 1e3)
        };
        // a depth the f32 path can hold exactly, unless `wide`
        p.depths.push(if wide { d } else { d as f32 as f64 });
        p.opacities.push(if rng.uniform() < 0.1 {
            0.0
        } else {
            rng.uniform()
        });
        p.radii.push(if rng.uniform() < 0.4 { 0 } else { 3 });
    }
    p
}

/// Every splat at one depth: every digit of the radix sort is shared (its
/// passes move nothing), and the order is the index order of the visible.
#[test]
fn depth_order_of_equal_depths_is_the_index_order() {
    let mut p = projected_for_order(7, 60_000, false);
    p.depths.iter_mut().for_each(|d| *d = 2.0);
    let want: Vec<u32> = (0..p.radii.len())
        .filter(|&i| p.radii[i] > 0 && p.opacities[i] > 0.0)
        .map(|i| i as u32)
        .collect();
    for threads in [1, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        assert!(
            pool.install(|| depth_order(&p)) == want,
            "{threads} threads"
        );
    }
}

/// The depth order is the visible splats sorted by `(depth, index)`, on
/// the radix sort's path (depths exact in f32, and an f32 scene) and on the
/// wide one (depths that f32 cannot hold).
#[test]
fn depth_order_is_the_sorted_visible_splats() {
    for (seed, n) in [
        (1u64, 0usize),
        (2, 1),
        (3, 37),
        (4, 5000),
        (5, 70_000),
        (6, 200_000),
    ] {
        for wide in [false, true] {
            let p = projected_for_order(seed, n, wide);
            let mut want: Vec<(u64, u32)> = (0..n)
                .filter(|&i| p.radii[i] > 0 && p.opacities[i] > 0.0)
                .map(|i| (p.depths[i].to_bits(), i as u32))
                .collect();
            want.sort();
            let want: Vec<u32> = want.into_iter().map(|(_, i)| i).collect();
            assert_eq!(depth_order(&p), want, "seed {seed}, n {n}, wide {wide}");
            // the radix sort's chunks (one per thread) change nothing
            for threads in [1, 3, 8] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| depth_order(&p));
                assert!(got == want, "{threads} threads, seed {seed}, n {n}");
            }
            let p32 = Projected {
                means2d: p.means2d.iter().map(|m| m.map(|v| v as f32)).collect(),
                conics: p.conics.iter().map(|c| c.map(|v| v as f32)).collect(),
                depths: p.depths.iter().map(|&v| v as f32).collect(),
                opacities: p.opacities.iter().map(|&v| v as f32).collect(),
                radii: p.radii.clone(),
            };
            if !wide {
                assert_eq!(depth_order(&p32), want, "f32, seed {seed}, n {n}");
            }
        }
    }
}
