//! The rasterization rules of the reference implementations (the original
//! 3DGS rasterizer and gsplat; see `splat::raster`'s module docs), written
//! a second time here as the plainest possible f64 code: every Gaussian is
//! projected on its own, and every pixel loops over every Gaussian in depth
//! order with no boxes, tiles, radii or vector lanes. The fused renderer
//! (f32, the fast path, and f64) must equal it at every view.

use splat::three::project::project_forward;
use splat::three::render::{render, RenderOptions};
use splat::three::scene::{random_scene, Gaussians, RandomScene};
use splat::three::{Camera, ProjectOptions};

/// The rules, independently: returns RGB (`h × w × 3`) and alpha.
///
/// With `box_3sigma`, a splat is also cut at the box of its 3σ ellipse,
/// which is what this renderer did before it followed the references: the
/// test uses it to show that the comparison sees the difference.
fn rules_f64(g: &Gaussians<f64>, cam: &Camera, bg: [f64; 3], box_3sigma: bool) -> Vec<f64> {
    let (w, h) = (cam.width as usize, cam.height as usize);
    let campos = cam.center();
    let limx = 1.3 * 0.5 * w as f64 / cam.fx;
    let limy = 1.3 * 0.5 * h as f64 / cam.fy;
    struct S {
        depth: f64,
        m: [f64; 2],
        conic: [f64; 3],
        sd: [f64; 2],
        o: f64,
        rgb: [f64; 3],
    }
    let mut splats = Vec::new();
    for i in 0..g.len() {
        let t = cam.to_camera(g.means[i]);
        if !(t[2] > cam.near && t[2] < cam.far) {
            continue;
        }
        let [qw, qx, qy, qz] = {
            let q = g.quats[i];
            let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
            [q[0] / n, q[1] / n, q[2] / n, q[3] / n]
        };
        let r = [
            [
                1.0 - 2.0 * (qy * qy + qz * qz),
                2.0 * (qx * qy - qw * qz),
                2.0 * (qx * qz + qw * qy),
            ],
            [
                2.0 * (qx * qy + qw * qz),
                1.0 - 2.0 * (qx * qx + qz * qz),
                2.0 * (qy * qz - qw * qx),
            ],
            [
                2.0 * (qx * qz - qw * qy),
                2.0 * (qy * qz + qw * qx),
                1.0 - 2.0 * (qx * qx + qy * qy),
            ],
        ];
        let s2 = g.log_scales[i].map(|l| (2.0 * l).exp());
        // world covariance R S² Rᵀ
        let mut cov3 = [[0.0; 3]; 3];
        for a in 0..3 {
            for b in 0..3 {
                cov3[a][b] = (0..3).map(|k| r[a][k] * s2[k] * r[b][k]).sum();
            }
        }
        // Jacobian of the perspective map at the frustum-clamped centre,
        // times the world-to-camera rotation
        let z = t[2];
        let ux = (t[0] / z).clamp(-limx, limx);
        let uy = (t[1] / z).clamp(-limy, limy);
        let jac = [
            [cam.fx / z, 0.0, -cam.fx * ux / z],
            [0.0, cam.fy / z, -cam.fy * uy / z],
        ];
        let mut tm = [[0.0; 3]; 2];
        for a in 0..2 {
            for b in 0..3 {
                tm[a][b] = (0..3).map(|k| jac[a][k] * cam.rotation[k][b]).sum();
            }
        }
        let mut c2 = [[0.0; 2]; 2];
        for a in 0..2 {
            for b in 0..2 {
                let mut v = 0.0;
                for k in 0..3 {
                    for l in 0..3 {
                        v += tm[a][k] * cov3[k][l] * tm[b][l];
                    }
                }
                c2[a][b] = v;
            }
        }
        c2[0][0] += 0.3;
        c2[1][1] += 0.3;
        let det = c2[0][0] * c2[1][1] - c2[0][1] * c2[0][1];
        if det <= 0.0 {
            continue;
        }
        // colour: SH degree ≤ 1, offset ½, clamped at 0
        let d = [0, 1, 2].map(|k| g.means[i][k] - campos[k]);
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let (x, y, zz) = (d[0] / len, d[1] / len, d[2] / len);
        let kk = (g.sh_degree + 1) * (g.sh_degree + 1);
        let sh = |k: usize, c: usize| g.sh[(i * kk + k) * 3 + c];
        let rgb = [0, 1, 2].map(|c| {
            let mut v = 0.5 + 0.282_094_791_773_878_14 * sh(0, c);
            if g.sh_degree >= 1 {
                let c1 = 0.488_602_511_902_919_9;
                v += c1 * (-y * sh(1, c) + zz * sh(2, c) - x * sh(3, c));
            }
            v.max(0.0)
        });
        splats.push(S {
            depth: z,
            m: [cam.fx * t[0] / z + cam.cx, cam.fy * t[1] / z + cam.cy],
            conic: [c2[1][1] / det, -c2[0][1] / det, c2[0][0] / det],
            sd: [c2[0][0].sqrt(), c2[1][1].sqrt()],
            o: 1.0 / (1.0 + (-g.opacity_logits[i]).exp()),
            rgb,
        });
    }
    // front to back (a stable sort: ties keep index order)
    splats.sort_by(|a, b| a.depth.total_cmp(&b.depth));
    let mut out = vec![0.0; 4 * w * h];
    for i in 0..h {
        for j in 0..w {
            let p = [j as f64 + 0.5, i as f64 + 0.5];
            let mut tr = 1.0;
            let mut acc = [0.0; 3];
            for s in &splats {
                let d = [p[0] - s.m[0], p[1] - s.m[1]];
                if box_3sigma && (d[0].abs() > 3.0 * s.sd[0] || d[1].abs() > 3.0 * s.sd[1]) {
                    continue;
                }
                let q = s.conic[0] * d[0] * d[0]
                    + 2.0 * s.conic[1] * d[0] * d[1]
                    + s.conic[2] * d[1] * d[1];
                let alpha = (s.o * (-0.5 * q).exp()).min(0.99);
                if alpha < 1.0 / 255.0 {
                    continue;
                }
                let next = tr * (1.0 - alpha);
                if next < 1e-4 {
                    break;
                }
                for c in 0..3 {
                    acc[c] += s.rgb[c] * alpha * tr;
                }
                tr = next;
            }
            for c in 0..3 {
                out[3 * (i * w + j) + c] = acc[c] + tr * bg[c];
            }
            out[3 * w * h + i * w + j] = 1.0 - tr;
        }
    }
    out
}

fn psnr(a: &[f64], b: &[f64]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}

fn scene(seed: u64) -> Gaussians<f64> {
    let mut g = random_scene(&RandomScene {
        n: 400,
        sh_degree: 1,
        extent: 1.0,
        log_scale_min: -3.5,
        log_scale_max: -1.5,
        seed,
    });
    // a quarter of the splats above the 0.99 cap, a few below 1/255
    for (i, o) in g.opacity_logits.iter_mut().enumerate() {
        match i % 8 {
            0 | 1 => *o = 6.0,
            2 => *o = -6.0,
            _ => {}
        }
    }
    g
}

#[test]
fn float_render_equals_the_reference_rules_at_every_view() {
    let bg = [0.1, 0.3, 0.2];
    let opts = RenderOptions {
        background: bg,
        ..Default::default()
    };
    let (mut worst32, mut worst64, mut best_old) = (f64::INFINITY, f64::INFINITY, 0.0f64);
    for seed in 0..2u64 {
        let g = scene(seed);
        let g32 = g.cast::<f32>();
        for view in 0..4 {
            let cam = Camera::orbit([0.0; 3], 3.0, 0.3, view, 4, 0.9, 97, 71).unwrap();
            let want = rules_f64(&g, &cam, bg, false);
            let (r64, _) = render(&g, &cam, &opts).unwrap();
            let (r32, _) = render(&g32, &cam, &opts).unwrap();
            let got64: Vec<f64> = r64.rgb.iter().chain(&r64.alpha).copied().collect();
            let got32: Vec<f64> = r32
                .rgb
                .iter()
                .chain(&r32.alpha)
                .map(|&v| v as f64)
                .collect();
            let (p32, p64) = (psnr(&got32, &want), psnr(&got64, &want));
            let old = psnr(&got64, &rules_f64(&g, &cam, bg, true));
            eprintln!("seed {seed} view {view}: f32 {p32:.1} dB, f64 {p64:.1} dB, 3σ-box rule {old:.1} dB");
            worst32 = worst32.min(p32);
            worst64 = worst64.min(p64);
            best_old = best_old.max(old);
            let covered = r64.alpha.iter().sum::<f64>() / r64.alpha.len() as f64;
            assert!(covered > 0.05 && covered < 0.95, "mean alpha {covered}");
        }
    }
    assert!(
        worst32 >= 75.0,
        "f32 render: {worst32:.1} dB at the worst view"
    );
    assert!(
        worst64 >= 150.0,
        "f64 render: {worst64:.1} dB at the worst view"
    );
    // the comparison can tell the rules apart: cutting at the 3σ box is
    // visibly different
    assert!(best_old < 75.0, "the 3σ-box rule scored {best_old:.1} dB");
}

#[test]
fn a_splat_covers_its_whole_alpha_region_beyond_three_sigma() {
    // one opaque isotropic splat: α ≥ 1/255 reaches √(2 ln(255 · 0.99)) ≈
    // 3.33σ; its pixels beyond 3σ are drawn, and a splat whose 3σ disc
    // misses the image but whose α region does not is still drawn
    let cam = Camera::look_at([0.0, 0.0, -3.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 64, 64).unwrap();
    let mut g = random_scene::<f64>(&RandomScene {
        n: 1,
        sh_degree: 0,
        seed: 3,
        ..Default::default()
    });
    g.means = vec![[0.0; 3]];
    g.quats = vec![[1.0, 0.0, 0.0, 0.0]];
    g.log_scales = vec![[-3.0; 3]];
    g.opacity_logits = vec![8.0];
    let opts = RenderOptions::default();
    let (img, _) = render(&g, &cam, &opts).unwrap();
    let want = rules_f64(&g, &cam, [0.0; 3], false);
    let var = (cam.fx * (-3.0f64).exp() / 3.0).powi(2) + 0.3;
    let sd = var.sqrt();
    let mut beyond = 0;
    for i in 0..64 {
        for j in 0..64 {
            let d = ((j as f64 + 0.5 - 32.0).powi(2) + (i as f64 + 0.5 - 32.0).powi(2)).sqrt();
            let a = img.alpha[i * 64 + j];
            assert!((a - want[3 * 64 * 64 + i * 64 + j]).abs() < 1e-12);
            if d > 3.0 * sd {
                beyond += (a > 0.0) as usize;
            }
        }
    }
    assert!(beyond > 0, "no pixel beyond 3σ was drawn (σ = {sd})");
    // move it left until its centre is 3.05 σ_x (measured along the
    // image's x axis, which perspective stretches) left of the image edge
    g.log_scales = vec![[-1.9; 3]];
    let mut x_pix = 0.0;
    let mut sd_x = 0.0;
    for _ in 0..30 {
        g.means = vec![[(x_pix - cam.cx) * 3.0 / cam.fx, 0.0, 0.0]];
        let p = project_forward(&g, &cam, &ProjectOptions::default());
        let [a, b, c] = p.conics[0];
        sd_x = (c / (a * c - b * b)).sqrt();
        x_pix = -3.05 * sd_x;
    }
    // the 3σ box holds no pixel centre, the α ≥ 1/255 region does
    assert!(
        x_pix + 3.0 * sd_x < 0.5 && x_pix + 3.3 * sd_x > 0.5,
        "σ_x {sd_x}"
    );
    let (img, _) = render(&g, &cam, &opts).unwrap();
    let want = rules_f64(&g, &cam, [0.0; 3], false);
    let drawn: f64 = img.alpha.iter().sum();
    let want_drawn: f64 = want[3 * 64 * 64..].iter().sum();
    assert!(drawn > 0.0, "the splat beyond 3σ of the edge was culled");
    assert!((drawn - want_drawn).abs() < 1e-12);
    // below 1/255 it covers nothing
    g.opacity_logits = vec![-6.0];
    g.means = vec![[0.0; 3]];
    let (img, _) = render(&g, &cam, &opts).unwrap();
    assert!(img.alpha.iter().all(|&a| a == 0.0));
}
