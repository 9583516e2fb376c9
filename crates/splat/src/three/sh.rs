//! View-dependent colour from real spherical harmonics of degree 0 to 3.
//!
//! For a Gaussian with mean `m` seen from the camera centre `c`, the
//! direction is `d = (m − c) / |m − c|` and each channel's colour is
//! `max(0, 0.5 + Σ_k Y_k(d) · coeff_k)`, with the basis and constants of the
//! original 3DGS code (`Y_0 = 0.28209479177387814`). Gradients flow to the
//! coefficients and, through the direction, to the mean; a clamped channel
//! passes no gradient.

use chainrule::{Scalar, Tape, Var};
use rayon::prelude::*;

use super::scene::{sh_coeffs, GaussianVars, Gaussians};
use crate::simd::prefetch_bytes;

/// How many Gaussians ahead the passes over drawn Gaussians' SH rows
/// ([`sh_forward_drawn_into`], the fused projection and SH backward) ask
/// for the rows they will read and write.
pub(crate) const SH_ROWS_AHEAD: usize = 8;

/// Band 0 constant, `1 / (2 sqrt(π))`.
pub const SH_C0: f64 = 0.282_094_791_773_878_14;
/// Band 1 constant, `sqrt(3 / (4π))`.
pub const SH_C1: f64 = 0.488_602_511_902_919_9;
/// Band 2 constants.
pub const SH_C2: [f64; 5] = [
    1.092_548_430_592_079_2,
    -1.092_548_430_592_079_2,
    0.315_391_565_252_520_05,
    -1.092_548_430_592_079_2,
    0.546_274_215_296_039_6,
];
/// Band 3 constants.
pub const SH_C3: [f64; 7] = [
    -0.590_043_589_926_643_5,
    2.890_611_442_640_554,
    -0.457_045_799_464_465_8,
    0.373_176_332_590_115_4,
    -0.457_045_799_464_465_8,
    1.445_305_721_320_277,
    -0.590_043_589_926_643_5,
];

/// The SH basis at unit direction `d` for `degree` (entries beyond
/// `sh_coeffs(degree)` are zero).
///
/// ```
/// use splat::three::sh::{sh_basis, SH_C0, SH_C1};
/// let y = sh_basis(1, [0.0f64, 0.0, 1.0]);
/// assert_eq!(y[0], SH_C0);
/// assert_eq!(y[2], SH_C1); // the z term
/// ```
pub fn sh_basis<T: Scalar>(degree: usize, d: [T; 3]) -> [T; 16] {
    let f = T::from_f64;
    let [x, y, z] = d;
    let mut b = [T::zero(); 16];
    b[0] = f(SH_C0);
    if degree >= 1 {
        b[1] = -f(SH_C1) * y;
        b[2] = f(SH_C1) * z;
        b[3] = -f(SH_C1) * x;
    }
    if degree >= 2 {
        let (xx, yy, zz) = (x * x, y * y, z * z);
        b[4] = f(SH_C2[0]) * x * y;
        b[5] = f(SH_C2[1]) * y * z;
        b[6] = f(SH_C2[2]) * (f(2.0) * zz - xx - yy);
        b[7] = f(SH_C2[3]) * x * z;
        b[8] = f(SH_C2[4]) * (xx - yy);
        if degree >= 3 {
            b[9] = f(SH_C3[0]) * y * (f(3.0) * xx - yy);
            b[10] = f(SH_C3[1]) * x * y * z;
            b[11] = f(SH_C3[2]) * y * (f(4.0) * zz - xx - yy);
            b[12] = f(SH_C3[3]) * z * (f(2.0) * zz - f(3.0) * xx - f(3.0) * yy);
            b[13] = f(SH_C3[4]) * x * (f(4.0) * zz - xx - yy);
            b[14] = f(SH_C3[5]) * z * (xx - yy);
            b[15] = f(SH_C3[6]) * x * (xx - f(3.0) * yy);
        }
    }
    b
}

/// `Σ_k g_k ∂Y_k/∂d`: the gradient with respect to the (unit) direction of
/// a loss with gradient `g` with respect to the basis.
pub fn sh_basis_vjp<T: Scalar>(degree: usize, d: [T; 3], g: &[T; 16]) -> [T; 3] {
    let f = T::from_f64;
    let [x, y, z] = d;
    let (mut gx, mut gy, mut gz) = (T::zero(), T::zero(), T::zero());
    if degree >= 1 {
        gy -= f(SH_C1) * g[1];
        gz += f(SH_C1) * g[2];
        gx -= f(SH_C1) * g[3];
    }
    if degree >= 2 {
        let c = SH_C2.map(f);
        gx += c[0] * y * g[4];
        gy += c[0] * x * g[4];
        gy += c[1] * z * g[5];
        gz += c[1] * y * g[5];
        gx -= f(2.0) * c[2] * x * g[6];
        gy -= f(2.0) * c[2] * y * g[6];
        gz += f(4.0) * c[2] * z * g[6];
        gx += c[3] * z * g[7];
        gz += c[3] * x * g[7];
        gx += f(2.0) * c[4] * x * g[8];
        gy -= f(2.0) * c[4] * y * g[8];
        if degree >= 3 {
            let c = SH_C3.map(f);
            let (xx, yy, zz) = (x * x, y * y, z * z);
            let (three, four) = (f(3.0), f(4.0));
            gx += f(6.0) * c[0] * x * y * g[9];
            gy += c[0] * (three * xx - three * yy) * g[9];
            gx += c[1] * y * z * g[10];
            gy += c[1] * x * z * g[10];
            gz += c[1] * x * y * g[10];
            gx -= f(2.0) * c[2] * x * y * g[11];
            gy += c[2] * (four * zz - xx - three * yy) * g[11];
            gz += f(8.0) * c[2] * y * z * g[11];
            gx -= f(6.0) * c[3] * x * z * g[12];
            gy -= f(6.0) * c[3] * y * z * g[12];
            gz += c[3] * (f(6.0) * zz - three * xx - three * yy) * g[12];
            gx += c[4] * (four * zz - three * xx - yy) * g[13];
            gy -= f(2.0) * c[4] * x * y * g[13];
            gz += f(8.0) * c[4] * x * z * g[13];
            gx += f(2.0) * c[5] * x * z * g[14];
            gy -= f(2.0) * c[5] * y * z * g[14];
            gz += c[5] * (xx - yy) * g[14];
            gx += c[6] * (three * xx - three * yy) * g[15];
            gy -= f(6.0) * c[6] * x * y * g[15];
        }
    }
    [gx, gy, gz]
}

#[inline]
fn direction<T: Scalar>(m: [T; 3], c: [T; 3]) -> ([T; 3], T) {
    let d = [m[0] - c[0], m[1] - c[1], m[2] - c[2]];
    let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    if n > T::zero() {
        (d.map(|v| v / n), n)
    } else {
        ([T::zero(); 3], T::zero())
    }
}

fn check<T: Scalar>(g: &Gaussians<T>, degree: usize) {
    assert!(
        degree <= g.sh_degree,
        "SH degree {degree} is above the scene's {}",
        g.sh_degree
    );
    assert_eq!(g.sh.len(), g.len() * g.sh_coeffs() * 3, "SH array length");
}

/// RGB colour of every Gaussian seen from `campos`, using bands up to
/// `degree` (at most the scene's degree).
pub fn sh_forward<T: Scalar>(g: &Gaussians<T>, campos: [f64; 3], degree: usize) -> Vec<[T; 3]> {
    let mut out = Vec::new();
    sh_forward_into(g, campos, degree, &mut out);
    out
}

/// [`sh_forward`] into `out`, reusing its allocation.
pub fn sh_forward_into<T: Scalar>(
    g: &Gaussians<T>,
    campos: [f64; 3],
    degree: usize,
    out: &mut Vec<[T; 3]>,
) {
    sh_forward_drawn_into(g, campos, degree, None, out);
}

/// [`sh_forward_into`] for the Gaussians a view draws: with `radii` (the
/// projection's, 0 for a culled Gaussian), a culled Gaussian's colour is
/// not evaluated and left at zero, since the rasterizer never reads it;
/// every other colour is [`sh_forward`]'s, bit for bit. On a capture most
/// of the scene is outside any one photo, so this skips most of the work.
pub fn sh_forward_drawn_into<T: Scalar>(
    g: &Gaussians<T>,
    campos: [f64; 3],
    degree: usize,
    radii: Option<&[u32]>,
    out: &mut Vec<[T; 3]>,
) {
    check(g, degree);
    if let Some(r) = radii {
        assert_eq!(r.len(), g.len(), "one radius per Gaussian");
    }
    let c = campos.map(T::from_f64);
    let kk = g.sh_coeffs();
    let nk = sh_coeffs(degree);
    let half = T::from_f64(0.5);
    // a drawn Gaussian's SH row (the part this degree reads), asked for a
    // few Gaussians ahead: the undrawn ones are skipped, which the
    // hardware's prefetchers do not follow (an address, not a pointer:
    // the closure must be `Sync`)
    let (sh_at, n) = (g.sh.as_ptr().addr(), g.len());
    let (row, read) = (
        kk * 3 * std::mem::size_of::<T>(),
        nk * 3 * std::mem::size_of::<T>(),
    );
    out.clear();
    out.par_extend(
        g.means
            .par_iter()
            .with_min_len(512)
            .zip(g.sh.par_chunks_exact(kk * 3))
            .enumerate()
            .map(|(i, (m, co))| {
                let next = i + SH_ROWS_AHEAD;
                if next < n && radii.is_none_or(|r| r[next] > 0) {
                    prefetch_bytes(std::ptr::without_provenance::<u8>(sh_at + next * row), read);
                }
                if radii.is_some_and(|r| r[i] == 0) {
                    return [T::zero(); 3];
                }
                let (d, _) = direction(*m, c);
                let b = sh_basis(degree, d);
                let mut rgb = [half; 3];
                for k in 0..nk {
                    for ch in 0..3 {
                        rgb[ch] += b[k] * co[k * 3 + ch];
                    }
                }
                rgb.map(|v| if v > T::zero() { v } else { T::zero() })
            }),
    );
}

/// The vector-Jacobian product of [`sh_forward`]: gradients of the means
/// and of the SH coefficients (same layout as the scene's).
pub fn sh_backward<T: Scalar>(
    g: &Gaussians<T>,
    campos: [f64; 3],
    degree: usize,
    grad_colors: &[[T; 3]],
) -> (Vec<[T; 3]>, Vec<T>) {
    let (mut g_means, mut g_sh) = (Vec::new(), Vec::new());
    sh_backward_into(g, campos, degree, grad_colors, &mut g_means, &mut g_sh);
    (g_means, g_sh)
}

/// [`sh_backward`] into `g_means` and `g_sh`, reusing their allocations.
pub fn sh_backward_into<T: Scalar>(
    g: &Gaussians<T>,
    campos: [f64; 3],
    degree: usize,
    grad_colors: &[[T; 3]],
    g_means: &mut Vec<[T; 3]>,
    g_sh: &mut Vec<T>,
) {
    sh_backward_drawn_into(g, campos, degree, None, grad_colors, g_means, g_sh);
}

/// [`sh_backward_into`] for the Gaussians a view drew: with `radii` (the
/// projection's, 0 for a culled Gaussian, whose colour gradient is zero),
/// a culled Gaussian's row of `g_sh` is left as it is, not zeroed (a
/// reader skips those rows, as the trainer's optimiser does with
/// [`crate::adam::Undrawn::Decay`]: 192 bytes a Gaussian at degree 3 not
/// written, and not read again); its mean gradient is zero. Every other
/// entry is [`sh_backward_into`]'s, bit for bit.
pub fn sh_backward_drawn_into<T: Scalar>(
    g: &Gaussians<T>,
    campos: [f64; 3],
    degree: usize,
    radii: Option<&[u32]>,
    grad_colors: &[[T; 3]],
    g_means: &mut Vec<[T; 3]>,
    g_sh: &mut Vec<T>,
) {
    check(g, degree);
    if let Some(r) = radii {
        assert_eq!(r.len(), g.len(), "one radius per Gaussian");
    }
    assert_eq!(
        grad_colors.len(),
        g.len(),
        "one colour gradient per Gaussian"
    );
    let c = campos.map(T::from_f64);
    let kk = g.sh_coeffs();
    // every entry of `g_sh` is written in the parallel pass below (bands
    // above `degree` get zeros there, not in a serial fill first)
    g_sh.resize(g.sh.len(), T::zero());
    g_means.clear();
    g_means.par_extend(
        g.means
            .par_iter()
            .with_min_len(512)
            .zip(g.sh.par_chunks_exact(kk * 3))
            .zip(g_sh.par_chunks_exact_mut(kk * 3))
            .zip(grad_colors.par_iter())
            .enumerate()
            .map(|(i, (((m, co), gco), gc))| {
                if radii.is_some_and(|r| r[i] == 0) {
                    return [T::zero(); 3];
                }
                backward_one(*m, co, gco, (*gc, None), c, degree)
            }),
    );
}

/// One Gaussian's part of [`sh_backward_into`]: from the gradient `gc` of
/// its colour (seen from `c`), writes its SH gradients into `gco` (a row
/// of `3·K` values, zeros above `degree`) and returns its mean's gradient.
/// `seen`: the colour the forward pass computed for these inputs
/// ([`sh_forward_drawn_into`]'s, clamped at 0), when the caller has it:
/// the clamp is read from it instead of computing the colour again (the
/// forward sums in the same order, so `seen > 0` exactly when the
/// recomputed sum is).
#[inline]
pub(crate) fn backward_one<T: Scalar>(
    m: [T; 3],
    co: &[T],
    gco: &mut [T],
    (gc, seen): ([T; 3], Option<[T; 3]>),
    c: [T; 3],
    degree: usize,
) -> [T; 3] {
    let nk = sh_coeffs(degree);
    let half = T::from_f64(0.5);
    // no gradient in (a Gaussian this view did not draw): none out (zero
    // SH gradients; the computed ones could differ only in their sign)
    if gc == [T::zero(); 3] {
        gco.fill(T::zero());
        return [T::zero(); 3];
    }
    let (d, n) = direction(m, c);
    let b = sh_basis(degree, d);
    // the clamp: a channel at or below 0 passes no gradient
    let mut gcol = gc;
    for (ch, gch) in gcol.iter_mut().enumerate() {
        let v = match seen {
            Some(rgb) => rgb[ch],
            None => {
                let mut v = half;
                for k in 0..nk {
                    v += b[k] * co[k * 3 + ch];
                }
                v
            }
        };
        if !(v > T::zero()) {
            *gch = T::zero();
        }
    }
    let mut gb = [T::zero(); 16];
    for k in 0..nk {
        for ch in 0..3 {
            gco[k * 3 + ch] = b[k] * gcol[ch];
            gb[k] += co[k * 3 + ch] * gcol[ch];
        }
    }
    gco[nk * 3..].fill(T::zero());
    if degree == 0 || !(n > T::zero()) {
        return [T::zero(); 3];
    }
    let gd = sh_basis_vjp(degree, d, &gb);
    let dot = gd[0] * d[0] + gd[1] * d[1] + gd[2] * d[2];
    [0, 1, 2].map(|i| (gd[i] - d[i] * dot) / n)
}

/// Records the colour stage on `tape` as one custom operation `sh3d`
/// (inputs: means then SH coefficients; outputs: 3 colours per Gaussian,
/// flat).
pub fn sh_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    gv: &GaussianVars<'t, T>,
    campos: [f64; 3],
    degree: usize,
) -> Vec<Var<'t, T>> {
    let g = gv.values();
    let colors = sh_forward(&g, campos, degree);
    let n = g.len();
    let mut inputs = Vec::with_capacity(3 * n + gv.sh.len());
    inputs.extend_from_slice(&gv.means);
    inputs.extend_from_slice(&gv.sh);
    let outputs: Vec<T> = colors.iter().flatten().copied().collect();
    tape.custom_op("sh3d", &inputs, outputs, move |gy, gx| {
        let gc: Vec<[T; 3]> = gy.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let (gm, gs) = sh_backward(&g, campos, degree, &gc);
        for (dst, src) in gx[..3 * n].iter_mut().zip(gm.iter().flatten()) {
            *dst += *src;
        }
        for (dst, src) in gx[3 * n..].iter_mut().zip(&gs) {
            *dst += *src;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::three::scene::{random_scene, RandomScene};

    /// Drawn splats get [`sh_forward`]'s colours bit for bit, culled ones
    /// zero, at every degree.
    #[test]
    fn drawn_colours_are_the_full_passes() {
        let g = random_scene::<f32>(&RandomScene {
            n: 3000,
            ..Default::default()
        });
        let radii: Vec<u32> = (0..g.len() as u32).map(|i| i % 3).collect();
        for degree in 0..=3 {
            let all = sh_forward(&g, [0.3, -0.2, -5.0], degree);
            let mut drawn = Vec::new();
            sh_forward_drawn_into(&g, [0.3, -0.2, -5.0], degree, Some(&radii), &mut drawn);
            for (i, (a, d)) in all.iter().zip(&drawn).enumerate() {
                let want = if radii[i] == 0 { [0.0; 3] } else { *a };
                assert_eq!(want.map(f32::to_bits), d.map(f32::to_bits), "splat {i}");
            }
        }
    }

    /// With radii, the backward pass leaves culled splats' SH rows as they
    /// were (NaN here) and gives them zero mean gradients; every other
    /// entry is the full pass's bit for bit, at every degree.
    #[test]
    fn drawn_gradients_are_the_full_passes() {
        let g = random_scene::<f32>(&RandomScene {
            n: 3000,
            ..Default::default()
        });
        let radii: Vec<u32> = (0..g.len() as u32).map(|i| i % 3).collect();
        let mut r = crate::three::scene::Rng::new(4);
        // culled splats draw nothing, so their colour gradient is zero
        let gc: Vec<[f32; 3]> = (0..g.len())
            .map(|i| match radii[i] {
                0 => [0.0; 3],
                _ => [0; 3].map(|_| r.normal() as f32),
            })
            .collect();
        let kk = g.sh_coeffs();
        for degree in 0..=3 {
            let (gm, gs) = sh_backward(&g, [0.3, -0.2, -5.0], degree, &gc);
            let (mut dm, mut ds) = (Vec::new(), vec![f32::NAN; g.sh.len()]);
            let cam = [0.3, -0.2, -5.0];
            sh_backward_drawn_into(&g, cam, degree, Some(&radii), &gc, &mut dm, &mut ds);
            let b = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for i in 0..g.len() {
                assert_eq!(b(&gm[i]), b(&dm[i]), "splat {i}");
                let row = i * 3 * kk..(i + 1) * 3 * kk;
                if radii[i] == 0 {
                    assert!(ds[row].iter().all(|v| v.is_nan()), "splat {i} written");
                } else {
                    assert_eq!(b(&gs[row.clone()]), b(&ds[row]), "splat {i}");
                }
            }
        }
    }
}
