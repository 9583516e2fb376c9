//! The stages written with plain [`Var`] operations, one elementary node per
//! arithmetic step: the specification the fused kernels' hand-written
//! backward passes are tested against (to 1e-9 relative in f64). Slow on
//! purpose; use [`super::project::project_op`] and [`super::sh::sh_op`] for
//! real work.

use chainrule::{Tape, Var};

use super::camera::Camera;
use super::project::{covers_a_pixel, ProjectOptions, ProjectedVars};
use super::render::{depth_order, RenderOptions, RenderVars, DEPTH_ALPHA_EPS};
use super::scene::{sh_coeffs, GaussianVars};
use super::sh::{SH_C0, SH_C1, SH_C2, SH_C3};

/// The projection of [`super::project`], elementwise on the tape.
pub fn project_reference<'t>(
    gv: &GaussianVars<'t>,
    cam: &Camera,
    opts: &ProjectOptions,
) -> ProjectedVars<'t> {
    let n = gv.len();
    let mut out = ProjectedVars {
        means2d: Vec::with_capacity(2 * n),
        conics: Vec::with_capacity(3 * n),
        depths: Vec::with_capacity(n),
        opacities: Vec::with_capacity(n),
        radii: Vec::with_capacity(n),
    };
    if n == 0 {
        return out;
    }
    let tape = gv.opacity_logits[0].tape();
    let w = cam.rotation;
    let limx = opts.fov_clamp * 0.5 * cam.width as f64 / cam.fx;
    let limy = opts.fov_clamp * 0.5 * cam.height as f64 / cam.fy;
    for i in 0..n {
        let mean = &gv.means[3 * i..3 * i + 3];
        let t: Vec<Var<'t>> = (0..3)
            .map(|r| mean[0] * w[r][0] + mean[1] * w[r][1] + mean[2] * w[r][2] + cam.translation[r])
            .collect();
        let z = t[2];
        let projected = (|| {
            if !(z.value() > cam.near && z.value() < cam.far) {
                return None;
            }
            let q = &gv.quats[4 * i..4 * i + 4];
            let qlen = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
            let (qw, qx, qy, qz) = (q[0] / qlen, q[1] / qlen, q[2] / qlen, q[3] / qlen);
            let r = [
                [
                    1.0 - (qy * qy + qz * qz) * 2.0,
                    (qx * qy - qw * qz) * 2.0,
                    (qx * qz + qw * qy) * 2.0,
                ],
                [
                    (qx * qy + qw * qz) * 2.0,
                    1.0 - (qx * qx + qz * qz) * 2.0,
                    (qy * qz - qw * qx) * 2.0,
                ],
                [
                    (qx * qz - qw * qy) * 2.0,
                    (qy * qz + qw * qx) * 2.0,
                    1.0 - (qx * qx + qy * qy) * 2.0,
                ],
            ];
            let s: Vec<Var<'t>> = gv.log_scales[3 * i..3 * i + 3]
                .iter()
                .map(|v| v.exp())
                .collect();
            let m: Vec<Vec<Var<'t>>> = (0..3)
                .map(|a| (0..3).map(|b| r[a][b] * s[b]).collect())
                .collect();
            let sigma: Vec<Vec<Var<'t>>> = (0..3)
                .map(|a| {
                    (0..3)
                        .map(|b| m[a][0] * m[b][0] + m[a][1] * m[b][1] + m[a][2] * m[b][2])
                        .collect()
                })
                .collect();
            let u = t[0] / z;
            let v = t[1] / z;
            let uc = u.min(limx).max(-limx);
            let vc = v.min(limy).max(-limy);
            let j00 = cam.fx / z;
            let j02 = -(uc * cam.fx) / z;
            let j11 = cam.fy / z;
            let j12 = -(vc * cam.fy) / z;
            let tm: [Vec<Var<'t>>; 2] = [
                (0..3).map(|c| j00 * w[0][c] + j02 * w[2][c]).collect(),
                (0..3).map(|c| j11 * w[1][c] + j12 * w[2][c]).collect(),
            ];
            let quad = |x: &[Var<'t>], y: &[Var<'t>]| {
                let mut acc = None::<Var<'t>>;
                for a in 0..3 {
                    for b in 0..3 {
                        let term = x[a] * sigma[a][b] * y[b];
                        acc = Some(match acc {
                            Some(s) => s + term,
                            None => term,
                        });
                    }
                }
                acc.expect("3x3 terms")
            };
            let ca = quad(&tm[0], &tm[0]);
            let cb = quad(&tm[0], &tm[1]);
            let cc = quad(&tm[1], &tm[1]);
            let ad = ca + opts.dilation;
            let cd = cc + opts.dilation;
            let det1 = ad * cd - cb * cb;
            if !(det1.value() > 0.0) {
                return None;
            }
            let sig = gv.opacity_logits[i].sigmoid();
            let opacity = if opts.antialiased {
                let det0 = ca * cc - cb * cb;
                if det0.value() > 0.0 {
                    sig * (det0 / det1).sqrt()
                } else {
                    sig * 0.0
                }
            } else {
                sig
            };
            let conic = [cd / det1, -cb / det1, ad / det1];
            let mid = 0.5 * (ad.value() + cd.value());
            let lam = mid + (mid * mid - det1.value()).max(0.1).sqrt();
            let radius = (3.0 * lam.sqrt()).ceil();
            let mx = u * cam.fx + cam.cx;
            let my = v * cam.fy + cam.cy;
            let visible = radius.is_finite()
                && covers_a_pixel(
                    [mx.value(), my.value()],
                    conic.map(|c| c.value()),
                    opacity.value(),
                    cam.width as usize,
                    cam.height as usize,
                );
            visible.then_some(([mx, my], conic, z, opacity, radius as u32))
        })();
        match projected {
            Some((m2, conic, depth, op, radius)) => {
                out.means2d.extend_from_slice(&m2);
                out.conics.extend_from_slice(&conic);
                out.depths.push(depth);
                out.opacities.push(op);
                out.radii.push(radius);
            }
            None => {
                let zero = tape.var(0.0);
                out.means2d.extend_from_slice(&[zero; 2]);
                out.conics.extend_from_slice(&[zero; 3]);
                out.depths.push(zero);
                out.opacities.push(zero);
                out.radii.push(0);
            }
        }
    }
    out
}

/// The colour stage of [`super::sh`], elementwise on the tape: 3 colours
/// per Gaussian, flat.
pub fn sh_reference<'t>(gv: &GaussianVars<'t>, campos: [f64; 3], degree: usize) -> Vec<Var<'t>> {
    let n = gv.len();
    let kk = sh_coeffs(gv.sh_degree);
    let mut out = Vec::with_capacity(3 * n);
    for i in 0..n {
        let d: Vec<Var<'t>> = (0..3).map(|k| gv.means[3 * i + k] - campos[k]).collect();
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let (x, y, z) = (d[0] / len, d[1] / len, d[2] / len);
        let mut basis: Vec<Var<'t>> = vec![x * 0.0 + SH_C0];
        if degree >= 1 {
            basis.extend([y * -SH_C1, z * SH_C1, x * -SH_C1]);
        }
        if degree >= 2 {
            let (xx, yy, zz) = (x * x, y * y, z * z);
            basis.extend([
                x * y * SH_C2[0],
                y * z * SH_C2[1],
                (zz * 2.0 - xx - yy) * SH_C2[2],
                x * z * SH_C2[3],
                (xx - yy) * SH_C2[4],
            ]);
            if degree >= 3 {
                basis.extend([
                    y * (xx * 3.0 - yy) * SH_C3[0],
                    x * y * z * SH_C3[1],
                    y * (zz * 4.0 - xx - yy) * SH_C3[2],
                    z * (zz * 2.0 - xx * 3.0 - yy * 3.0) * SH_C3[3],
                    x * (zz * 4.0 - xx - yy) * SH_C3[4],
                    z * (xx - yy) * SH_C3[5],
                    x * (xx - yy * 3.0) * SH_C3[6],
                ]);
            }
        }
        for ch in 0..3 {
            let mut v = basis[0] * gv.sh[i * kk * 3 + ch] + 0.5;
            for (k, b) in basis.iter().enumerate().skip(1) {
                v += *b * gv.sh[(i * kk + k) * 3 + ch];
            }
            out.push(v.relu());
        }
    }
    out
}

/// The full render of [`super::render`](mod@super::render) with every stage elementwise on the
/// tape: [`project_reference`], [`sh_reference`], then per pixel the
/// front-to-back compositing rules of [`crate::raster`] (α = min(0.99,
/// o·exp(−q/2)), skipped below 1/255, stop before T < 1e-4, pixel centres at
/// `(j + 0.5, i + 0.5)`), in the same depth order. Every visible splat is
/// tested at every pixel: no box, no tiles.
pub fn render_reference<'t>(
    tape: &'t Tape,
    gv: &GaussianVars<'t>,
    cam: &Camera,
    opts: &RenderOptions,
) -> RenderVars<'t> {
    let degree = opts.sh_degree.unwrap_or(gv.sh_degree).min(gv.sh_degree);
    let p = project_reference(gv, cam, &opts.project);
    let colors = sh_reference(gv, cam.center(), degree);
    let projected = p.values();
    let order = depth_order(&projected);
    let (w, h) = (cam.width as usize, cam.height as usize);
    let mut out = RenderVars {
        width: w,
        height: h,
        rgb: Vec::with_capacity(3 * w * h),
        depth: Vec::with_capacity(w * h),
        alpha: Vec::with_capacity(w * h),
    };
    for i in 0..h {
        let py = i as f64 + 0.5;
        for j in 0..w {
            let px = j as f64 + 0.5;
            let mut t = tape.var(1.0);
            let mut acc = [tape.var(0.0); 4];
            for &k in &order {
                let k = k as usize;
                let dx = (p.means2d[2 * k] - px) * -1.0;
                let dy = (p.means2d[2 * k + 1] - py) * -1.0;
                let q = p.conics[3 * k] * dx * dx
                    + p.conics[3 * k + 1] * dx * dy * 2.0
                    + p.conics[3 * k + 2] * dy * dy;
                let alpha = (p.opacities[k] * (q * -0.5).exp()).min(0.99);
                if !(alpha.value() >= 1.0 / 255.0) {
                    continue;
                }
                let next = t * (1.0 - alpha);
                if next.value() < 1e-4 {
                    break;
                }
                let wgt = alpha * t;
                for c in 0..3 {
                    acc[c] += colors[3 * k + c] * wgt;
                }
                acc[3] += p.depths[k] * wgt;
                t = next;
            }
            for c in 0..3 {
                out.rgb.push(acc[c] + t * opts.background[c]);
            }
            let a = 1.0 - t;
            out.alpha.push(a);
            out.depth.push(if a.value() > DEPTH_ALPHA_EPS {
                acc[3] / a
            } else {
                acc[3] * 0.0
            });
        }
    }
    out
}
