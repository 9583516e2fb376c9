//! Projection of 3D Gaussians to the image plane (EWA splatting).
//!
//! Per Gaussian, from its mean `m`, log-scales `s`, quaternion `q` (w, x, y,
//! z; normalised here) and opacity logit `o`:
//!
//! - camera-space centre `t = W m + w` (`W`, `w`: the camera's world-to-camera
//!   rotation and translation); culled unless `near < t_z < far`;
//! - `Σ = R S Sᵀ Rᵀ` with `R` the rotation of `q / |q|` and `S = diag(exp s)`;
//! - `Σ' = J W Σ Wᵀ Jᵀ` with `J` the Jacobian of the perspective projection
//!   at `t`, where `t_x / t_z` and `t_y / t_z` are clamped to ±1.3 × the
//!   tangent of the half field of view (`width / (2 fx)`, as the original
//!   3DGS rasterizer), so splats far outside the view do not blow up;
//! - dilation `Σ' + 0.3 I` (pixels²); in antialiased mode (Mip-Splatting,
//!   gsplat's `antialiased`) the opacity is multiplied by
//!   `sqrt(det Σ' / det(Σ' + 0.3 I))`;
//! - outputs: the pixel-space mean `(fx t_x/t_z + cx, fy t_y/t_z + cy)`, the
//!   conic (a, b, c) of `(Σ' + 0.3 I)⁻¹`, the depth `t_z`, the opacity
//!   `sigmoid(o)` (× compensation), and the radius `ceil(3 sqrt(λ_max))` of
//!   the dilated covariance (the original 3DGS's radius, with its
//!   `max(0.1, ·)` guard on the eigenvalue discriminant; densification
//!   reads it as the screen size). The radius is 0 for a culled Gaussian:
//!   behind the near plane, beyond the far plane, degenerate, or reaching
//!   `α ≥ 1/255` at no pixel centre of the image ([`covers_a_pixel`]; the
//!   rasterizer's coverage rule, see [`crate::raster`]).
//!
//! [`project_backward`] is the hand-written vector-Jacobian product; it
//! recomputes the per-Gaussian intermediates instead of storing them.
//! [`project_op`] records the stage on a tape as one custom operation.

use chainrule::{sigmoid, Scalar, Tape, Var};
use rayon::prelude::*;

use super::camera::Camera;
use super::scene::{sh_coeffs, GaussianVars, Gaussians};
use super::sh::SH_ROWS_AHEAD;
use crate::raster::{opacity_aware_bound, pixel_rect};
use crate::simd::prefetch_bytes;

/// Settings of the projection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProjectOptions {
    /// Added to the diagonal of the 2D covariance (pixels²); 0.3 in the
    /// original and gsplat.
    pub dilation: f64,
    /// Mip-Splatting's antialiased mode: compensate the dilation by scaling
    /// the opacity with `sqrt(det Σ' / det(Σ' + dilation·I))`.
    pub antialiased: bool,
    /// The view-frustum clamp of the projection Jacobian, as a multiple of
    /// the tangent of the half field of view (1.3).
    pub fov_clamp: f64,
}

impl Default for ProjectOptions {
    fn default() -> Self {
        ProjectOptions {
            dilation: 0.3,
            antialiased: false,
            fov_clamp: 1.3,
        }
    }
}

/// The projected splats, one entry per Gaussian (culled ones have radius 0
/// and zero values).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Projected<T> {
    /// Means in pixel coordinates.
    pub means2d: Vec<[T; 2]>,
    /// Conics (a, b, c) of the inverse dilated 2D covariance.
    pub conics: Vec<[T; 3]>,
    /// Camera-space depths `t_z`.
    pub depths: Vec<T>,
    /// Opacities after the sigmoid (and the antialiasing compensation).
    pub opacities: Vec<T>,
    /// 3σ radii in pixels; 0 means culled.
    pub radii: Vec<u32>,
}

/// Gradients of a loss with respect to the projected values (the input of
/// [`project_backward`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectedGrads<T> {
    /// dL/d means2d.
    pub means2d: Vec<[T; 2]>,
    /// dL/d conics.
    pub conics: Vec<[T; 3]>,
    /// dL/d depths.
    pub depths: Vec<T>,
    /// dL/d opacities.
    pub opacities: Vec<T>,
}

impl<T: Scalar> ProjectedGrads<T> {
    /// All-zero gradients for `n` Gaussians.
    pub fn zeros(n: usize) -> Self {
        ProjectedGrads {
            means2d: vec![[T::zero(); 2]; n],
            conics: vec![[T::zero(); 3]; n],
            depths: vec![T::zero(); n],
            opacities: vec![T::zero(); n],
        }
    }
}

/// Camera constants in the kernel's scalar type.
#[derive(Clone, Copy, Debug)]
struct CamK<T> {
    w: [[T; 3]; 3],
    tr: [T; 3],
    fx: T,
    fy: T,
    cx: T,
    cy: T,
    limx: T,
    limy: T,
    near: T,
    far: T,
    width: f64,
    height: f64,
    dil: T,
    aa: bool,
}

impl<T: Scalar> CamK<T> {
    fn new(cam: &Camera, o: &ProjectOptions) -> Self {
        let f = T::from_f64;
        CamK {
            w: cam.rotation.map(|r| r.map(f)),
            tr: cam.translation.map(f),
            fx: f(cam.fx),
            fy: f(cam.fy),
            cx: f(cam.cx),
            cy: f(cam.cy),
            limx: f(o.fov_clamp * 0.5 * cam.width as f64 / cam.fx),
            limy: f(o.fov_clamp * 0.5 * cam.height as f64 / cam.fy),
            near: f(cam.near),
            far: f(cam.far),
            width: cam.width as f64,
            height: cam.height as f64,
            dil: f(o.dilation),
            aa: o.antialiased,
        }
    }
}

/// Rotation matrix of a unit w-x-y-z quaternion.
pub fn quat_to_rotmat<T: Scalar>(q: [T; 4]) -> [[T; 3]; 3] {
    let [w, x, y, z] = q;
    let one = T::one();
    let two = T::from_f64(2.0);
    [
        [
            one - two * (y * y + z * z),
            two * (x * y - w * z),
            two * (x * z + w * y),
        ],
        [
            two * (x * y + w * z),
            one - two * (x * x + z * z),
            two * (y * z - w * x),
        ],
        [
            two * (x * z - w * y),
            two * (y * z + w * x),
            one - two * (x * x + y * y),
        ],
    ]
}

/// Gradient with respect to the unit quaternion of a loss with gradient `g`
/// with respect to [`quat_to_rotmat`]'s matrix.
fn quat_to_rotmat_vjp<T: Scalar>(q: [T; 4], g: &[[T; 3]; 3]) -> [T; 4] {
    let [w, x, y, z] = q;
    let two = T::from_f64(2.0);
    let dw = -z * g[0][1] + y * g[0][2] + z * g[1][0] - x * g[1][2] - y * g[2][0] + x * g[2][1];
    let dx = y * g[0][1] + z * g[0][2] + y * g[1][0] - two * x * g[1][1] - w * g[1][2]
        + z * g[2][0]
        + w * g[2][1]
        - two * x * g[2][2];
    let dy = -two * y * g[0][0] + x * g[0][1] + w * g[0][2] + x * g[1][0] + z * g[1][2]
        - w * g[2][0]
        + z * g[2][1]
        - two * y * g[2][2];
    let dz = -two * z * g[0][0] - w * g[0][1] + x * g[0][2] + w * g[1][0] - two * z * g[1][1]
        + y * g[1][2]
        + x * g[2][0]
        + y * g[2][1];
    [two * dw, two * dx, two * dy, two * dz]
}

/// Everything the backward pass needs about one visible Gaussian.
#[derive(Clone, Copy, Debug)]
struct Fwd<T> {
    t: [T; 3],
    qn: [T; 4],
    qlen: T,
    r: [[T; 3]; 3],
    s: [T; 3],
    m: [[T; 3]; 3],
    sigma: [[T; 3]; 3],
    uc: T,
    vc: T,
    clamped_x: bool,
    clamped_y: bool,
    tm: [[T; 3]; 2],
    cov: [T; 3],
    det0: T,
    det1: T,
    comp: T,
    sig: T,
    mean2d: [T; 2],
    conic: [T; 3],
    opacity: T,
    radius: u32,
}

#[inline]
fn clamp_abs<T: Scalar>(u: T, lim: T) -> (T, bool) {
    if u > lim {
        (lim, true)
    } else if u < -lim {
        (-lim, true)
    } else {
        (u, false)
    }
}

#[inline]
fn forward_one<T: Scalar>(
    mean: [T; 3],
    ls: [T; 3],
    q: [T; 4],
    ol: T,
    k: &CamK<T>,
) -> Option<Fwd<T>> {
    forward_one_with::<T, true>(mean, ls, q, ol, k)
}

/// [`forward_one`], with or without the early test
/// [`surely_off_image`] (the tests compare the two).
#[inline(always)]
fn forward_one_with<T: Scalar, const EARLY_CULL: bool>(
    mean: [T; 3],
    ls: [T; 3],
    q: [T; 4],
    ol: T,
    k: &CamK<T>,
) -> Option<Fwd<T>> {
    let w = &k.w;
    let mut t = k.tr;
    for (i, ti) in t.iter_mut().enumerate() {
        *ti += w[i][0] * mean[0] + w[i][1] * mean[1] + w[i][2] * mean[2];
    }
    let z = t[2];
    if !(z > k.near && z < k.far) {
        return None;
    }
    let (u, v) = (t[0] / z, t[1] / z);
    let (uc, clamped_x) = clamp_abs(u, k.limx);
    let (vc, clamped_y) = clamp_abs(v, k.limy);
    let s = ls.map(|v| v.exp());
    let mean2d = [k.fx * u + k.cx, k.fy * v + k.cy];
    if EARLY_CULL && surely_off_image(mean2d, [uc, vc], z, s, k) {
        return None;
    }
    let qlen = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if !(qlen > T::zero()) {
        return None;
    }
    let qn = q.map(|v| v / qlen);
    let r = quat_to_rotmat(qn);
    let mut m = [[T::zero(); 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = r[i][j] * s[j];
        }
    }
    let mut sigma = [[T::zero(); 3]; 3];
    for i in 0..3 {
        for j in i..3 {
            let v = m[i][0] * m[j][0] + m[i][1] * m[j][1] + m[i][2] * m[j][2];
            sigma[i][j] = v;
            sigma[j][i] = v;
        }
    }
    let j = [
        [k.fx / z, T::zero(), -k.fx * uc / z],
        [T::zero(), k.fy / z, -k.fy * vc / z],
    ];
    let mut tm = [[T::zero(); 3]; 2];
    for a in 0..2 {
        for c in 0..3 {
            tm[a][c] = j[a][0] * w[0][c] + j[a][1] * w[1][c] + j[a][2] * w[2][c];
        }
    }
    let mut ts = [[T::zero(); 3]; 2];
    for a in 0..2 {
        for c in 0..3 {
            ts[a][c] = tm[a][0] * sigma[0][c] + tm[a][1] * sigma[1][c] + tm[a][2] * sigma[2][c];
        }
    }
    let dot = |x: &[T; 3], y: &[T; 3]| x[0] * y[0] + x[1] * y[1] + x[2] * y[2];
    let cov = [
        dot(&ts[0], &tm[0]),
        dot(&ts[0], &tm[1]),
        dot(&ts[1], &tm[1]),
    ];
    let (ad, cd) = (cov[0] + k.dil, cov[2] + k.dil);
    let b = cov[1];
    let det1 = ad * cd - b * b;
    if !(det1 > T::zero()) {
        return None;
    }
    let det0 = cov[0] * cov[2] - b * b;
    let comp = if !k.aa {
        T::one()
    } else if det0 > T::zero() {
        (det0 / det1).sqrt()
    } else {
        T::zero()
    };
    let sig = sigmoid(ol);
    let conic = [cd / det1, -b / det1, ad / det1];
    let mid = T::from_f64(0.5) * (ad + cd);
    let disc = mid * mid - det1;
    let lam = mid + disc.max_with(T::from_f64(0.1)).sqrt();
    let radius_f = (3.0 * lam.to_f64().sqrt()).ceil();
    let opacity = sig * comp;
    if !(radius_f.is_finite()
        && covers_a_pixel(mean2d, conic, opacity, k.width as usize, k.height as usize))
    {
        return None;
    }
    Some(Fwd {
        t,
        qn,
        qlen,
        r,
        s,
        m,
        sigma,
        uc,
        vc,
        clamped_x,
        clamped_y,
        tm,
        cov,
        det0,
        det1,
        comp,
        sig,
        mean2d,
        conic,
        opacity,
        radius: radius_f.min(u32::MAX as f64 / 2.0) as u32,
    })
}

/// A cheap test that a splat reaches no pixel of the image, from its
/// centre and largest scale alone, before its covariance is built (on a
/// capture most splats are outside any one photo): `true` only when
/// [`covers_a_pixel`] would say `false`, so the result is the same,
/// only sooner. Why it is safe: the projected covariance's `xx` entry is
/// `T₀ Σ T₀ᵀ ≤ |T₀|² s²_max` with `T₀ = J₀ W` (`W` a rotation, so `|T₀|² =
/// (fx/z)²(1 + u_c²)`), plus the dilation; α ≥ 1/255 reaches at most
/// `√(2 ln 255 · σ²_x)` from the centre (opacity ≤ 1); the bound is
/// widened by 5% and 2 pixels for rounding. Only splats of at most 100
/// pixels' σ are tested, so the rounding of the f32 conic that
/// [`covers_a_pixel`] recovers the covariance from stays far inside that
/// margin (larger ones take the full test).
#[inline]
fn surely_off_image<T: Scalar>(
    mean2d: [T; 2],
    [uc, vc]: [T; 2],
    z: T,
    s: [T; 3],
    k: &CamK<T>,
) -> bool {
    let smax = s[0].max_with(s[1]).max_with(s[2]).to_f64();
    let (z, dil) = (z.to_f64(), k.dil.to_f64());
    let var =
        |f: T, c: T| (f.to_f64() / z).powi(2) * (1.0 + c.to_f64().powi(2)) * smax * smax + dil;
    let (vx, vy) = (var(k.fx, uc), var(k.fy, vc));
    // 2 ln 255: α = o·exp(−q/2) ≥ 1/255 needs q ≤ 2 ln(255 o) ≤ 2 ln 255
    let q_max = 2.0 * (1.0 / crate::raster::ALPHA_MIN).ln();
    if !(vx <= 1e4 && vy <= 1e4) {
        return false;
    }
    let off = |m: T, var: f64, size: f64| {
        let (m, r) = (m.to_f64(), (q_max * var).sqrt() * 1.05 + 2.0);
        m + r < 0.5 || m - r > size - 0.5
    };
    off(mean2d[0], vx, k.width) || off(mean2d[1], vy, k.height)
}

/// Whether a splat reaches `α ≥ 1/255` at some pixel centre of a
/// `width × height` image: the visibility rule of the projection (gsplat
/// culls by its opacity-aware box the same way, and culls splats with
/// opacity below 1/255, whose region is empty). Shared with
/// [`super::reference::project_reference`].
pub fn covers_a_pixel<T: Scalar>(
    mean2d: [T; 2],
    conic: [T; 3],
    opacity: T,
    width: usize,
    height: usize,
) -> bool {
    let b = opacity_aware_bound(mean2d, conic, opacity);
    pixel_rect(&b, width, height).is_some()
}

trait MaxWith {
    fn max_with(self, o: Self) -> Self;
}
impl<T: Scalar> MaxWith for T {
    #[inline]
    fn max_with(self, o: Self) -> Self {
        if self > o {
            self
        } else {
            o
        }
    }
}

/// One Gaussian's projected mean, conic, depth, opacity and radius.
type OutOne<T> = ([T; 2], [T; 3], T, T, u32);

/// Gradients of one Gaussian's inputs (mean, log-scales, quaternion,
/// opacity logit).
type InGrad<T> = ([T; 3], [T; 3], [T; 4], T);

#[inline]
fn backward_one<T: Scalar>(
    f: &Fwd<T>,
    k: &CamK<T>,
    g_mean2d: [T; 2],
    g_conic: [T; 3],
    g_depth: T,
    g_opacity: T,
) -> InGrad<T> {
    let zero = T::zero();
    let half = T::from_f64(0.5);
    let two = T::from_f64(2.0);
    let z = f.t[2];
    // opacity = sigmoid(o) · comp
    let g_ol = g_opacity * f.comp * f.sig * (T::one() - f.sig);
    let [a, b, c] = f.cov;
    let (ad, cd) = (a + k.dil, c + k.dil);
    let mut g_cov = [zero; 3];
    if k.aa && f.det0 > zero {
        let g_comp = g_opacity * f.sig * half * f.comp;
        g_cov[0] += g_comp * (c / f.det0 - cd / f.det1);
        g_cov[1] += g_comp * (-two * b / f.det0 + two * b / f.det1);
        g_cov[2] += g_comp * (a / f.det0 - ad / f.det1);
    }
    // conic Q = inverse of the dilated covariance: dL/dΣ' = −Q Ḡ Q
    let [qa, qb, qc] = f.conic;
    let gb = [
        [g_conic[0], half * g_conic[1]],
        [half * g_conic[1], g_conic[2]],
    ];
    let q = [[qa, qb], [qb, qc]];
    let mut qg = [[zero; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            qg[i][j] = q[i][0] * gb[0][j] + q[i][1] * gb[1][j];
        }
    }
    let mut x = [[zero; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            x[i][j] = -(qg[i][0] * q[0][j] + qg[i][1] * q[1][j]);
        }
    }
    g_cov[0] += x[0][0];
    g_cov[1] += x[0][1] + x[1][0];
    g_cov[2] += x[1][1];
    // cov = T Σ Tᵀ with T = J W
    let gc = [[g_cov[0], half * g_cov[1]], [half * g_cov[1], g_cov[2]]];
    let tm = &f.tm;
    // dL/dΣ = Tᵀ Gc T
    let mut gct = [[zero; 3]; 2]; // Gc T
    for i in 0..2 {
        for j in 0..3 {
            gct[i][j] = gc[i][0] * tm[0][j] + gc[i][1] * tm[1][j];
        }
    }
    let mut g_sigma = [[zero; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            g_sigma[i][j] = tm[0][i] * gct[0][j] + tm[1][i] * gct[1][j];
        }
    }
    // dL/dT = 2 Gc T Σ
    let mut g_tm = [[zero; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            g_tm[i][j] = two
                * (gct[i][0] * f.sigma[0][j]
                    + gct[i][1] * f.sigma[1][j]
                    + gct[i][2] * f.sigma[2][j]);
        }
    }
    // dL/dJ = dL/dT Wᵀ
    let w = &k.w;
    let mut g_j = [[zero; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            g_j[i][j] = g_tm[i][0] * w[j][0] + g_tm[i][1] * w[j][1] + g_tm[i][2] * w[j][2];
        }
    }
    let z2 = z * z;
    let mut g_t = [zero; 3];
    // J = [[fx/z, 0, −fx uc/z], [0, fy/z, −fy vc/z]]
    g_t[2] += g_j[0][0] * (-k.fx / z2)
        + g_j[0][2] * (k.fx * f.uc / z2)
        + g_j[1][1] * (-k.fy / z2)
        + g_j[1][2] * (k.fy * f.vc / z2);
    let g_uc = -g_j[0][2] * k.fx / z;
    let g_vc = -g_j[1][2] * k.fy / z;
    if !f.clamped_x {
        g_t[0] += g_uc / z;
        g_t[2] -= g_uc * f.t[0] / z2;
    }
    if !f.clamped_y {
        g_t[1] += g_vc / z;
        g_t[2] -= g_vc * f.t[1] / z2;
    }
    // mean2d = (fx tx/tz + cx, fy ty/tz + cy)
    g_t[0] += g_mean2d[0] * k.fx / z;
    g_t[1] += g_mean2d[1] * k.fy / z;
    g_t[2] -= (g_mean2d[0] * k.fx * f.t[0] + g_mean2d[1] * k.fy * f.t[1]) / z2;
    g_t[2] += g_depth;
    // t = W m + w
    let mut g_mean = [zero; 3];
    for (j, gm) in g_mean.iter_mut().enumerate() {
        *gm = w[0][j] * g_t[0] + w[1][j] * g_t[1] + w[2][j] * g_t[2];
    }
    // Σ = M Mᵀ: dL/dM = 2 Gsym M (g_sigma is symmetric)
    let mut g_m = [[zero; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            g_m[i][j] = two
                * (g_sigma[i][0] * f.m[0][j]
                    + g_sigma[i][1] * f.m[1][j]
                    + g_sigma[i][2] * f.m[2][j]);
        }
    }
    // M = R S
    let mut g_r = [[zero; 3]; 3];
    let mut g_ls = [zero; 3];
    for i in 0..3 {
        for j in 0..3 {
            g_r[i][j] = g_m[i][j] * f.s[j];
            g_ls[j] += g_m[i][j] * f.r[i][j];
        }
    }
    for j in 0..3 {
        g_ls[j] *= f.s[j];
    }
    let g_qn = quat_to_rotmat_vjp(f.qn, &g_r);
    let d = f.qn[0] * g_qn[0] + f.qn[1] * g_qn[1] + f.qn[2] * g_qn[2] + f.qn[3] * g_qn[3];
    let mut g_q = [zero; 4];
    for i in 0..4 {
        g_q[i] = (g_qn[i] - f.qn[i] * d) / f.qlen;
    }
    (g_mean, g_ls, g_q, g_ol)
}

fn check_inputs<T: Scalar>(g: &Gaussians<T>) {
    let n = g.len();
    assert!(
        g.log_scales.len() == n && g.quats.len() == n && g.opacity_logits.len() == n,
        "project: parameter arrays of different lengths"
    );
}

/// Projects every Gaussian (in parallel over Gaussians).
pub fn project_forward<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
) -> Projected<T> {
    let mut p = Projected::default();
    project_forward_into(g, cam, opts, &mut p);
    p
}

/// [`project_forward`] into `p`, reusing its vectors.
pub fn project_forward_into<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
    p: &mut Projected<T>,
) {
    check_inputs(g);
    let k = CamK::<T>::new(cam, opts);
    let n = g.len();
    let z = T::zero();
    // every entry is written below
    p.means2d.resize(n, [z; 2]);
    p.conics.resize(n, [z; 3]);
    p.depths.resize(n, z);
    p.opacities.resize(n, z);
    p.radii.resize(n, 0);
    p.means2d
        .par_iter_mut()
        .zip(p.conics.par_iter_mut())
        .zip(p.depths.par_iter_mut())
        .zip(p.opacities.par_iter_mut())
        .zip(p.radii.par_iter_mut())
        .enumerate()
        .with_min_len(256)
        .for_each(|(i, ((((m, c), d), op), r))| {
            let o: Option<OutOne<T>> = forward_one(
                g.means[i],
                g.log_scales[i],
                g.quats[i],
                g.opacity_logits[i],
                &k,
            )
            .map(|f| (f.mean2d, f.conic, f.t[2], f.opacity, f.radius));
            (*m, *c, *d, *op, *r) = o.unwrap_or(([z; 2], [z; 3], z, z, 0));
        });
}

/// The vector-Jacobian product of [`project_forward`]: gradients of the
/// Gaussians' means, log-scales, quaternions and opacity logits (other
/// fields of the result are empty except `sh_degree`). Culled Gaussians get
/// zero gradients.
pub fn project_backward<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
    grads: &ProjectedGrads<T>,
) -> Gaussians<T> {
    let mut out = Gaussians::new(g.sh_degree);
    project_backward_into(g, cam, opts, grads, &mut out);
    out
}

/// [`project_backward`] into `out`, reusing its vectors (its `sh` is left
/// as it is).
pub fn project_backward_into<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
    grads: &ProjectedGrads<T>,
    out: &mut Gaussians<T>,
) {
    check_inputs(g);
    let k = CamK::<T>::new(cam, opts);
    // every entry is written below
    size_grads(g, out);
    out.means
        .par_iter_mut()
        .zip(out.log_scales.par_iter_mut())
        .zip(out.quats.par_iter_mut())
        .zip(out.opacity_logits.par_iter_mut())
        .enumerate()
        .with_min_len(256)
        .for_each(|(i, (((m, s), q), o))| {
            let gr = (
                grads.means2d[i],
                grads.conics[i],
                grads.depths[i],
                grads.opacities[i],
            );
            (*m, *s, *q, *o) = backward_splat(g, i, &k, gr);
        });
}

/// Sizes the projection's gradient fields of `out` for `g`'s Gaussians
/// (new entries zero; the caller writes every entry).
fn size_grads<T: Scalar>(g: &Gaussians<T>, out: &mut Gaussians<T>) {
    let (n, z) = (g.len(), T::zero());
    out.sh_degree = g.sh_degree;
    out.means.resize(n, [z; 3]);
    out.log_scales.resize(n, [z; 3]);
    out.quats.resize(n, [z; 4]);
    out.opacity_logits.resize(n, z);
}

/// One Gaussian's part of [`project_backward_into`], from the gradients
/// of its 2D mean, conic, depth and opacity.
#[inline]
fn backward_splat<T: Scalar>(
    g: &Gaussians<T>,
    i: usize,
    k: &CamK<T>,
    (gm, gc, gd, go): ([T; 2], [T; 3], T, T),
) -> InGrad<T> {
    let z = T::zero();
    // a splat this view did not draw (culled, or every pixel it touches
    // ignored) has zero gradients in and out: skip the recomputed
    // projection (the zeros are the same up to their sign, which no update
    // can see)
    if gm == [z; 2] && gc == [z; 3] && gd == z && go == z {
        return ([z; 3], [z; 3], [z; 4], z);
    }
    let (m, s, q, o) = (g.means[i], g.log_scales[i], g.quats[i], g.opacity_logits[i]);
    match forward_one(m, s, q, o, k) {
        Some(f) => backward_one(&f, k, gm, gc, gd, go),
        None => ([z; 3], [z; 3], [z; 4], z),
    }
}

/// The gradients of the projected splats with their colours, as the
/// rasterizer's backward pass leaves them (one entry per Gaussian): what
/// [`project_sh_backward_into`] starts from.
#[derive(Clone, Copy, Debug)]
pub struct SplatGradsIn<'a, T> {
    /// dL/d means2d.
    pub means2d: &'a [[T; 2]],
    /// dL/d conics.
    pub conics: &'a [[T; 3]],
    /// dL/d opacities.
    pub opacities: &'a [T],
    /// dL/d of each splat's rasterized features, 4 per splat: colour
    /// (r, g, b), then depth.
    pub features: &'a [T],
}

/// [`project_backward_into`] and [`sh_backward_drawn_into`] (colours of
/// SH degree `degree` seen from the camera; with `radii`, the SH rows of
/// Gaussians of radius 0 left as they are) in one pass over the
/// Gaussians, the SH mean gradients added to the projection's: `out`
/// gets the bits of the two passes and the sum `out.means[i][k] +=
/// g_means[i][k]`, without the intermediate buffers (the colour and depth
/// gradients split out of `features`, the SH mean gradients) or their
/// passes.
///
/// [`sh_backward_drawn_into`]: super::sh::sh_backward_drawn_into
pub fn project_sh_backward_into<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
    sh: (usize, Option<&[u32]>),
    grads: SplatGradsIn<'_, T>,
    out: &mut Gaussians<T>,
) {
    project_sh_backward_seen_into(g, cam, opts, sh, grads, None, out)
}

/// [`project_sh_backward_into`] given what the forward pass computed for
/// the same scene, camera, projection options and SH degree: its splats'
/// features (colour and depth, 4 per Gaussian, as the render's) and the
/// projection's radii. A drawn Gaussian's colour clamp is read from its
/// forward colour instead of being computed again (the same bits; see
/// [`super::sh::backward_one`]).
pub(crate) fn project_sh_backward_seen_into<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &ProjectOptions,
    (degree, radii): (usize, Option<&[u32]>),
    grads: SplatGradsIn<'_, T>,
    seen: Option<(&[T], &[u32])>,
    out: &mut Gaussians<T>,
) {
    check_inputs(g);
    let n = g.len();
    assert!(degree <= g.sh_degree, "SH degree above the scene's");
    assert!(
        grads.means2d.len() == n
            && grads.conics.len() == n
            && grads.opacities.len() == n
            && grads.features.len() == 4 * n,
        "project_sh_backward: one gradient per Gaussian"
    );
    if let Some(r) = radii {
        assert_eq!(r.len(), n, "one radius per Gaussian");
    }
    if let Some((f, r)) = seen {
        assert!(
            f.len() == 4 * n && r.len() == n,
            "project_sh_backward: one forward colour and radius per Gaussian"
        );
    }
    let k = CamK::<T>::new(cam, opts);
    let c = cam.center().map(T::from_f64);
    let kk = g.sh_coeffs();
    let z = T::zero();
    // every entry is written below (an SH row of a culled Gaussian only
    // without `radii`)
    size_grads(g, out);
    out.sh.resize(g.sh.len(), z);
    // a drawn Gaussian's SH row (the part this degree reads) and its
    // gradient row (written whole; 192 bytes in f32 at degree 3), asked
    // for a few Gaussians ahead: the undrawn ones are skipped, a pattern
    // the hardware's prefetchers do not follow (addresses, not pointers:
    // the closure must be `Sync`)
    let (sh_at, gsh_at) = (g.sh.as_ptr().addr(), out.sh.as_ptr().addr());
    let row = kk * 3 * std::mem::size_of::<T>();
    let read = sh_coeffs(degree) * 3 * std::mem::size_of::<T>();
    out.means
        .par_iter_mut()
        .zip(out.log_scales.par_iter_mut())
        .zip(out.quats.par_iter_mut())
        .zip(out.opacity_logits.par_iter_mut())
        .zip(out.sh.par_chunks_exact_mut(kk * 3))
        .enumerate()
        .with_min_len(256)
        .for_each(|(i, ((((m, s), q), o), gco))| {
            let next = i + SH_ROWS_AHEAD;
            if next < n && radii.is_none_or(|r| r[next] > 0) {
                prefetch_bytes(std::ptr::without_provenance::<u8>(sh_at + next * row), read);
                prefetch_bytes(std::ptr::without_provenance::<u8>(gsh_at + next * row), row);
            }
            let f = &grads.features[4 * i..4 * i + 4];
            let gr = (grads.means2d[i], grads.conics[i], f[3], grads.opacities[i]);
            (*m, *s, *q, *o) = backward_splat(g, i, &k, gr);
            if radii.is_some_and(|r| r[i] == 0) {
                // as the separate passes: the mean plus a zero gradient
                for v in m.iter_mut() {
                    *v += z;
                }
                return;
            }
            let co = &g.sh[i * kk * 3..(i + 1) * kk * 3];
            // the forward's colour of a drawn Gaussian (a culled one's was
            // not computed)
            let fwd = seen
                .filter(|(_, r)| r[i] > 0)
                .map(|(fc, _)| [fc[4 * i], fc[4 * i + 1], fc[4 * i + 2]]);
            let gc = ([f[0], f[1], f[2]], fwd);
            let gm = super::sh::backward_one(g.means[i], co, gco, gc, c, degree);
            for (a, b) in m.iter_mut().zip(gm) {
                *a += b;
            }
        });
}

/// The projected values as tape variables, flat: `means2d[2i + k]`,
/// `conics[3i + k]`, `depths[i]`, `opacities[i]`.
#[derive(Clone, Debug)]
pub struct ProjectedVars<'t, T: Scalar = f64> {
    /// Pixel-space means, 2 per Gaussian.
    pub means2d: Vec<Var<'t, T>>,
    /// Conics, 3 per Gaussian.
    pub conics: Vec<Var<'t, T>>,
    /// Depths.
    pub depths: Vec<Var<'t, T>>,
    /// Opacities.
    pub opacities: Vec<Var<'t, T>>,
    /// Radii (not differentiable); 0 means culled.
    pub radii: Vec<u32>,
}

impl<T: Scalar> ProjectedVars<'_, T> {
    /// The forward values, in the layout the rasterizer's helpers take.
    pub fn values(&self) -> Projected<T> {
        Projected {
            means2d: self
                .means2d
                .chunks_exact(2)
                .map(|c| [c[0].value(), c[1].value()])
                .collect(),
            conics: self
                .conics
                .chunks_exact(3)
                .map(|c| [c[0].value(), c[1].value(), c[2].value()])
                .collect(),
            depths: self.depths.iter().map(|v| v.value()).collect(),
            opacities: self.opacities.iter().map(|v| v.value()).collect(),
            radii: self.radii.clone(),
        }
    }
}

/// Records the projection on `tape` as one custom operation `project3d`
/// (inputs: means, log-scales, quaternions, opacity logits; outputs: the
/// fields of [`ProjectedVars`]).
pub fn project_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    gv: &GaussianVars<'t, T>,
    cam: &Camera,
    opts: &ProjectOptions,
) -> ProjectedVars<'t, T> {
    let g = gv.values();
    let n = g.len();
    let p = project_forward(&g, cam, opts);
    let mut inputs = Vec::with_capacity(11 * n);
    inputs.extend_from_slice(&gv.means);
    inputs.extend_from_slice(&gv.log_scales);
    inputs.extend_from_slice(&gv.quats);
    inputs.extend_from_slice(&gv.opacity_logits);
    let mut outputs = Vec::with_capacity(7 * n);
    outputs.extend(p.means2d.iter().flatten());
    outputs.extend(p.conics.iter().flatten());
    outputs.extend(&p.depths);
    outputs.extend(&p.opacities);
    let cam = cam.clone();
    let opts = *opts;
    let outs = tape.custom_op("project3d", &inputs, outputs, move |gy, gx| {
        let mut gr = ProjectedGrads::zeros(n);
        for i in 0..n {
            gr.means2d[i] = [gy[2 * i], gy[2 * i + 1]];
            gr.conics[i] = [
                gy[2 * n + 3 * i],
                gy[2 * n + 3 * i + 1],
                gy[2 * n + 3 * i + 2],
            ];
            gr.depths[i] = gy[5 * n + i];
            gr.opacities[i] = gy[6 * n + i];
        }
        let d = project_backward(&g, &cam, &opts, &gr);
        for i in 0..n {
            for c in 0..3 {
                gx[3 * i + c] += d.means[i][c];
                gx[3 * n + 3 * i + c] += d.log_scales[i][c];
            }
            for c in 0..4 {
                gx[6 * n + 4 * i + c] += d.quats[i][c];
            }
            gx[10 * n + i] += d.opacity_logits[i];
        }
    });
    ProjectedVars {
        means2d: outs[..2 * n].to_vec(),
        conics: outs[2 * n..5 * n].to_vec(),
        depths: outs[5 * n..6 * n].to_vec(),
        opacities: outs[6 * n..7 * n].to_vec(),
        radii: p.radii,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::three::scene::Rng;

    /// The fused projection and colour backward pass gives the separate
    /// passes' bits (their mean gradients summed), with and without the
    /// drawn-only SH rows, at every degree: random splats around the view,
    /// culled ones with zero gradients, some drawn ones with none or with
    /// only a colour or only a projection gradient.
    #[test]
    fn the_fused_backward_is_the_separate_passes() {
        use crate::three::scene::{random_scene, RandomScene};
        use crate::three::sh::sh_backward_drawn_into;
        let cam = Camera::look_at([0.0, 0.0, -4.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 64, 48)
            .expect("a camera");
        let mut g = random_scene::<f32>(&RandomScene {
            n: 4000,
            extent: 3.0,
            ..Default::default()
        });
        // a green at or below 0 in every fourth Gaussian (the clamp)
        let kk = 3 * g.sh_coeffs();
        for row in g.sh.chunks_exact_mut(kk).step_by(4) {
            row[1] = -3.0;
        }
        let o = ProjectOptions::default();
        let p = project_forward(&g, &cam, &o);
        let n = g.len();
        assert!(
            p.radii.iter().filter(|&&r| r == 0).count() > 100,
            "some culled"
        );
        let mut rng = Rng::new(3);
        let mut r = |i: usize, on: bool| match (p.radii[i], on) {
            (0, _) | (_, false) => 0.0,
            _ => rng.normal() as f32,
        };
        // splat i: projection gradients unless i % 5 == 1, colour gradients
        // unless i % 5 == 2, none when i % 5 == 3
        let (pr, co) = (
            |i: usize| i % 5 != 1 && i % 5 != 3,
            |i: usize| i % 5 < 2 || i % 5 == 4,
        );
        let pg = ProjectedGrads {
            means2d: (0..n).map(|i| [r(i, pr(i)), r(i, pr(i))]).collect(),
            conics: (0..n).map(|i| [0; 3].map(|_| r(i, pr(i)))).collect(),
            depths: (0..n).map(|i| r(i, pr(i))).collect(),
            opacities: (0..n).map(|i| r(i, pr(i))).collect(),
        };
        let colors: Vec<[f32; 3]> = (0..n).map(|i| [0; 3].map(|_| r(i, co(i)))).collect();
        let features: Vec<f32> = (0..n)
            .flat_map(|i| [colors[i][0], colors[i][1], colors[i][2], pg.depths[i]])
            .collect();
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for degree in 0..=3 {
            for radii in [None, Some(&p.radii[..])] {
                let mut want = Gaussians::new(g.sh_degree);
                project_backward_into(&g, &cam, &o, &pg, &mut want);
                let (mut gm, c) = (Vec::new(), cam.center());
                want.sh = vec![f32::NAN; g.sh.len()];
                sh_backward_drawn_into(&g, c, degree, radii, &colors, &mut gm, &mut want.sh);
                for (a, b) in want.means.iter_mut().zip(&gm) {
                    for k in 0..3 {
                        a[k] += b[k];
                    }
                }
                let mut got = Gaussians::new(g.sh_degree);
                got.sh = vec![f32::NAN; g.sh.len()];
                let grads = SplatGradsIn {
                    means2d: &pg.means2d,
                    conics: &pg.conics,
                    opacities: &pg.opacities,
                    features: &features,
                };
                project_sh_backward_into(&g, &cam, &o, (degree, radii), grads, &mut got);
                assert_eq!(
                    bits(got.means.as_flattened()),
                    bits(want.means.as_flattened())
                );
                assert_eq!(
                    bits(got.log_scales.as_flattened()),
                    bits(want.log_scales.as_flattened())
                );
                assert_eq!(
                    bits(got.quats.as_flattened()),
                    bits(want.quats.as_flattened())
                );
                assert_eq!(bits(&got.opacity_logits), bits(&want.opacity_logits));
                assert_eq!(bits(&got.sh), bits(&want.sh));
                // the clamp read from the forward pass's colours (as the
                // render's backward does): the same bits again
                let mut fwd = Vec::new();
                crate::three::sh::sh_forward_drawn_into(&g, c, degree, Some(&p.radii), &mut fwd);
                let clamped = fwd
                    .iter()
                    .zip(&p.radii)
                    .filter(|(f, &r)| r > 0 && f.contains(&0.0))
                    .count();
                assert!(clamped > 100, "some drawn colours clamped: {clamped}");
                let seen_f: Vec<f32> = fwd.iter().flat_map(|f| [f[0], f[1], f[2], 9.0]).collect();
                let mut seen = Gaussians::new(g.sh_degree);
                seen.sh = vec![f32::NAN; g.sh.len()];
                let sh = (degree, radii);
                let fr = Some((&seen_f[..], &p.radii[..]));
                project_sh_backward_seen_into(&g, &cam, &o, sh, grads, fr, &mut seen);
                assert_eq!(
                    bits(seen.means.as_flattened()),
                    bits(got.means.as_flattened())
                );
                assert_eq!(bits(&seen.sh), bits(&got.sh));
            }
        }
    }

    /// The early off-image test changes no splat's projection: random
    /// splats in and far around the view (small to huge, thin, faint to
    /// opaque) project the same with and without it, and it does cull.
    #[test]
    fn the_early_cull_keeps_every_projection() {
        let cam = Camera::look_at([0.0, 0.0, -4.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 64, 48)
            .expect("a camera");
        let mut rng = Rng::new(7);
        let mut u = |a: f64, b: f64| a + (b - a) * rng.uniform();
        for aa in [false, true] {
            let o = ProjectOptions {
                antialiased: aa,
                ..ProjectOptions::default()
            };
            let (k32, k64) = (CamK::<f32>::new(&cam, &o), CamK::<f64>::new(&cam, &o));
            let (mut culled, mut kept) = (0, 0);
            for _ in 0..200_000 {
                let mean = [u(-12.0, 12.0), u(-12.0, 12.0), u(-10.0, 20.0)];
                let big = u(-7.0, 1.5);
                let ls = [big, u(-7.0, big), u(-9.0, big)];
                let q = [u(-1.0, 1.0), u(-1.0, 1.0), u(-1.0, 1.0), u(-1.0, 1.0)];
                let ol = u(-8.0, 8.0);
                let with = forward_one_with::<f64, true>(mean, ls, q, ol, &k64);
                let without = forward_one_with::<f64, false>(mean, ls, q, ol, &k64);
                assert_eq!(
                    with.map(|f| (f.mean2d, f.conic, f.opacity, f.radius)),
                    without.map(|f| (f.mean2d, f.conic, f.opacity, f.radius)),
                );
                let c = |v: [f64; 3]| v.map(|x| x as f32);
                let (m, l, ql) = (c(mean), c(ls), q.map(|x| x as f32));
                let with = forward_one_with::<f32, true>(m, l, ql, ol as f32, &k32);
                let without = forward_one_with::<f32, false>(m, l, ql, ol as f32, &k32);
                assert_eq!(
                    with.map(|f| (f.mean2d, f.conic, f.opacity, f.radius)),
                    without.map(|f| (f.mean2d, f.conic, f.opacity, f.radius)),
                );
                let z = cam.to_camera(mean)[2];
                if z > cam.near && z < cam.far {
                    match without {
                        Some(_) => kept += 1,
                        None if surely_off_image_of(m, l, &k32) => culled += 1,
                        None => {}
                    }
                }
            }
            assert!(
                culled > 5_000 && kept > 5_000,
                "{culled} culled early, {kept} kept"
            );
        }
    }

    fn surely_off_image_of(mean: [f32; 3], ls: [f32; 3], k: &CamK<f32>) -> bool {
        let mut t = k.tr;
        for (i, ti) in t.iter_mut().enumerate() {
            *ti += k.w[i][0] * mean[0] + k.w[i][1] * mean[1] + k.w[i][2] * mean[2];
        }
        let (u, v) = (t[0] / t[2], t[1] / t[2]);
        let m2 = [k.fx * u + k.cx, k.fy * v + k.cy];
        let uv = [clamp_abs(u, k.limx).0, clamp_abs(v, k.limy).0];
        surely_off_image(m2, uv, t[2], ls.map(f32::exp), k)
    }
}
