//! Exposure compensation (`--exposure`, as the original 3DGS's exposure
//! option): each training photo has an affine colour transform
//! `x' = A·x + b` (3×3 matrix `A`, offset `b`; 12 numbers, starting at the
//! identity) applied to the render inside the loss, learnt with its own
//! Adam and a learning rate decaying log-linearly from 0.01 to 0.001 (the
//! original's `exposure_lr_init` / `exposure_lr_final`).
//!
//! Held-out photos have no transform of their own; they are scored two
//! ways: with the identity, and by the original's protocol of fitting the
//! transform on one half of the photo (here the left half, by least
//! squares of the photo on the render) and scoring the other half.

use crate::loss;

/// Numbers per transform: `A` row-major, then `b`.
pub const EXPOSURE_PARAMS: usize = 12;

/// Colour transforms by photo name (a run's learned ones, as
/// [`super::exposure_transforms`] reads them from a checkpoint).
pub type ByPhoto = Vec<(String, [f64; EXPOSURE_PARAMS])>;

/// The identity transform.
pub const IDENTITY: [f64; EXPOSURE_PARAMS] =
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];

/// Learning rate of the transforms at the start and at the end (3DGS:
/// 0.01 and 0.001).
pub const EXPOSURE_LR: [f64; 2] = [0.01, 0.001];

/// `A·x + b` for every pixel of `rgb` (3 values per pixel).
pub fn apply(e: &[f64; EXPOSURE_PARAMS], rgb: &[f64]) -> Vec<f64> {
    rgb.chunks_exact(3)
        .flat_map(|p| {
            [0, 1, 2]
                .map(|r| e[3 * r] * p[0] + e[3 * r + 1] * p[1] + e[3 * r + 2] * p[2] + e[9 + r])
        })
        .collect()
}

/// The backward pass of [`apply`]: from the gradient `d_out` with respect
/// to the transformed image, the gradient with respect to the transform
/// (`Σ_p d'_p x_pᵀ` and `Σ_p d'_p`) and to the render (`Aᵀ d'_p`).
pub fn backward(
    e: &[f64; EXPOSURE_PARAMS],
    rgb: &[f64],
    d_out: &[f64],
) -> ([f64; EXPOSURE_PARAMS], Vec<f64>) {
    let mut de = [0.0; EXPOSURE_PARAMS];
    let mut dx = Vec::with_capacity(rgb.len());
    for (p, d) in rgb.chunks_exact(3).zip(d_out.chunks_exact(3)) {
        for r in 0..3 {
            for c in 0..3 {
                de[3 * r + c] += d[r] * p[c];
            }
            de[9 + r] += d[r];
        }
        for c in 0..3 {
            dx.push(e[c] * d[0] + e[3 + c] * d[1] + e[6 + c] * d[2]);
        }
    }
    (de, dx)
}

/// The affine transform that best maps `render` onto `photo` in the least
/// squares sense over the pixels `keep` selects (each output channel is a
/// separate 4-unknown linear regression on `[r, g, b, 1]`). Falls back to
/// the identity where the normal equations are singular.
pub fn fit(render: &[f64], photo: &[f64], keep: impl Fn(usize) -> bool) -> [f64; EXPOSURE_PARAMS] {
    let mut ata = [[0.0; 4]; 4];
    let mut atb = [[0.0; 4]; 3];
    for (p, (x, y)) in render
        .chunks_exact(3)
        .zip(photo.chunks_exact(3))
        .enumerate()
    {
        if !keep(p) {
            continue;
        }
        let a = [x[0], x[1], x[2], 1.0];
        for i in 0..4 {
            for j in 0..4 {
                ata[i][j] += a[i] * a[j];
            }
            for r in 0..3 {
                atb[r][i] += a[i] * y[r];
            }
        }
    }
    let mut e = IDENTITY;
    for r in 0..3 {
        if let Some(s) = solve4(ata, atb[r]) {
            e[3 * r..3 * r + 3].copy_from_slice(&s[..3]);
            e[9 + r] = s[3];
        } else {
            return IDENTITY;
        }
    }
    e
}

/// Solves a 4×4 system by Gaussian elimination with partial pivoting.
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..4 {
        let piv = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..4 {
            let f = a[r][col] / a[col][col];
            for k in col..4 {
                a[r][k] -= f * a[col][k];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0; 4];
    for r in (0..4).rev() {
        let s: f64 = (r + 1..4).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// The held-out score under the original's protocol: fit the transform on
/// the left half of the photo (kept pixels only when `mask` is given),
/// apply it to the whole render, and return PSNR and SSIM over the right
/// half (and the mask's kept pixels). NaN for both, no score, when the
/// mask keeps no pixel in one of the halves: nothing to fit on, or
/// nothing to score (as a view masked whole has no plain score).
pub fn half_fit_scores(
    render: &[f64],
    photo: &[f64],
    mask: Option<&[f64]>,
    width: usize,
    height: usize,
) -> (f64, f64) {
    let kept = |p: usize| mask.is_none_or(|m| m[p] > 0.0);
    let left = |p: &usize| p % width < width / 2;
    let pixels = 0..width * height;
    if !pixels.clone().filter(left).any(kept) || !pixels.filter(|p| !left(p)).any(kept) {
        return (f64::NAN, f64::NAN);
    }
    let e = fit(render, photo, |p| p % width < width / 2 && kept(p));
    let corrected: Vec<f64> = apply(&e, render)
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    let right: Vec<f64> = (0..width * height)
        .map(|p| {
            let m = mask.map_or(1.0, |m| m[p]);
            if p % width >= width / 2 {
                m
            } else {
                0.0
            }
        })
        .collect();
    (
        loss::psnr_masked(&corrected, photo, Some(&right), 3),
        loss::ssim_values_masked(&corrected, photo, Some(&right), width, height, 3),
    )
}
