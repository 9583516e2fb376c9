//! Image losses built on the engine: MSE, L1, and SSIM (window 11, σ 1.5).
//!
//! Only the Gaussian blur inside SSIM is a custom op (a linear map whose
//! vector-Jacobian product is the same blur, since the kernel is symmetric
//! and the borders are zero-padded); everything else is ordinary `Var`
//! arithmetic, so the engine differentiates it.
//!
//! Images are `height × width × channels`, row-major, channels last.

use chainrule::{Scalar, Tape, Var};
use rayon::prelude::*;

use crate::l1_ssim::L1Ssim;

/// SSIM window size.
pub const SSIM_WINDOW: usize = 11;
/// SSIM Gaussian σ.
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM stabilisers for a data range of 1: `(0.01)²` and `(0.03)²`.
pub const SSIM_C1: f64 = 1e-4;
/// See [`SSIM_C1`].
pub const SSIM_C2: f64 = 9e-4;
/// Weight of `1 − SSIM` in [`Loss::L1Ssim`] (3DGS: `(1 − λ) L1 + λ (1 − SSIM)`).
pub const SSIM_LAMBDA: f64 = 0.2;

/// Which loss to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Loss {
    /// Mean squared error over pixels and channels.
    #[default]
    Mse,
    /// `(1 − 0.2) · L1 + 0.2 · (1 − SSIM)`, the 3DGS loss.
    L1Ssim,
}

/// Mean over all entries of `(x − target)²`.
pub fn mse<'t, T: Scalar>(x: &[Var<'t, T>], target: &[T]) -> Var<'t, T> {
    assert_eq!(x.len(), target.len(), "mse: lengths differ");
    let tape = x[0].tape();
    let mut s = tape.var(T::zero());
    for (v, &t) in x.iter().zip(target) {
        s += (*v - t).square();
    }
    s / T::from_f64(x.len() as f64)
}

/// Mean over all entries of `|x − target|`.
pub fn l1<'t, T: Scalar>(x: &[Var<'t, T>], target: &[T]) -> Var<'t, T> {
    assert_eq!(x.len(), target.len(), "l1: lengths differ");
    let tape = x[0].tape();
    let mut s = tape.var(T::zero());
    for (v, &t) in x.iter().zip(target) {
        s += (*v - t).abs();
    }
    s / T::from_f64(x.len() as f64)
}

/// The normalised 1D Gaussian kernel of SSIM (11 taps, σ 1.5).
pub fn ssim_kernel() -> [f64; SSIM_WINDOW] {
    let r = (SSIM_WINDOW / 2) as f64;
    let mut k = [0.0; SSIM_WINDOW];
    for (i, v) in k.iter_mut().enumerate() {
        let d = i as f64 - r;
        *v = (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Separable Gaussian blur with zero padding, same size out (plain values).
pub fn blur<T: Scalar>(x: &[T], width: usize, height: usize, channels: usize) -> Vec<T> {
    let k: Vec<T> = ssim_kernel().iter().map(|&v| T::from_f64(v)).collect();
    let r = SSIM_WINDOW / 2;
    let row = width * channels;
    // horizontal
    let mut tmp = vec![T::zero(); x.len()];
    tmp.par_chunks_mut(row)
        .zip(x.par_chunks(row))
        .for_each(|(out, inp)| {
            for j in 0..width {
                for c in 0..channels {
                    let mut s = T::zero();
                    for (t, &kv) in k.iter().enumerate() {
                        let jj = j as isize + t as isize - r as isize;
                        if jj >= 0 && (jj as usize) < width {
                            s += kv * inp[jj as usize * channels + c];
                        }
                    }
                    out[j * channels + c] = s;
                }
            }
        });
    // vertical
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(row).enumerate().for_each(|(i, o)| {
        for (t, &kv) in k.iter().enumerate() {
            let ii = i as isize + t as isize - r as isize;
            if ii >= 0 && (ii as usize) < height {
                let src = &tmp[ii as usize * row..(ii as usize + 1) * row];
                for (a, &b) in o.iter_mut().zip(src) {
                    *a += kv * b;
                }
            }
        }
    });
    out
}

/// The blur as one custom op on the tape; its VJP is the same blur.
pub fn blur_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    x: &[Var<'t, T>],
    width: usize,
    height: usize,
    channels: usize,
) -> Vec<Var<'t, T>> {
    assert_eq!(x.len(), width * height * channels, "blur_op: shape");
    let vals: Vec<T> = x.iter().map(|v| v.value()).collect();
    let out = blur(&vals, width, height, channels);
    tape.custom_op("gaussian_blur", x, out, move |gy, gx| {
        let g = blur(gy, width, height, channels);
        for (a, b) in gx.iter_mut().zip(g) {
            *a += b;
        }
    })
}

/// Mean SSIM of `x` (vars) against a constant `target`, per channel,
/// zero-padded 11×11 Gaussian window (σ 1.5), data range 1.
pub fn ssim<'t, T: Scalar>(
    x: &[Var<'t, T>],
    target: &[T],
    width: usize,
    height: usize,
    channels: usize,
) -> Var<'t, T> {
    let tape = x[0].tape();
    let mu_y = blur(target, width, height, channels);
    let yy: Vec<T> = target.iter().map(|&v| v * v).collect();
    let syy_raw = blur(&yy, width, height, channels);
    let mu_x = blur_op(tape, x, width, height, channels);
    let xx: Vec<Var<'t, T>> = x.iter().map(|v| v.square()).collect();
    let sxx_raw = blur_op(tape, &xx, width, height, channels);
    let xy: Vec<Var<'t, T>> = x.iter().zip(target).map(|(v, &t)| *v * t).collect();
    let sxy_raw = blur_op(tape, &xy, width, height, channels);
    let (c1, c2) = (T::from_f64(SSIM_C1), T::from_f64(SSIM_C2));
    let two = T::from_f64(2.0);
    let mut total = tape.var(T::zero());
    for p in 0..x.len() {
        let mx = mu_x[p];
        let my = mu_y[p];
        let mx2 = mx.square();
        let syy = syy_raw[p] - my * my;
        // 2 σxy + C2 = 2 (E[xy] − μx μy) + C2 and σxx + σyy + C2, with the
        // target's constants folded in (fewer nodes per pixel)
        let num = (mx * (two * my) + c1) * ((sxy_raw[p] - mx * my) * two + c2);
        let den = (mx2 + (my * my + c1)) * ((sxx_raw[p] - mx2) + (syy + c2));
        total += num / den;
    }
    total / T::from_f64(x.len() as f64)
}

/// Mean SSIM of two plain images (for reporting).
pub fn ssim_values(x: &[f64], y: &[f64], width: usize, height: usize, channels: usize) -> f64 {
    ssim_values_masked(x, y, None, width, height, channels)
}

/// [`ssim_values`] over the kept pixels of a mask: the render is replaced
/// by the target where the mask is 0 (as in [`l1_ssim_value_grad_masked`])
/// and the SSIM map is averaged with the mask's weights. NaN when no pixel
/// is kept.
pub fn ssim_values_masked(
    x: &[f64],
    y: &[f64],
    mask: Option<&[f64]>,
    width: usize,
    height: usize,
    channels: usize,
) -> f64 {
    let composited;
    let x = match mask {
        None => x,
        Some(m) => {
            composited = mask_composite(x, y, m, channels);
            &composited
        }
    };
    let weight = |q: usize| mask.map_or(1.0, |m| m[q / channels]);
    let mx = blur(x, width, height, channels);
    let my = blur(y, width, height, channels);
    let sq = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(p, q)| p * q).collect() };
    let sxx = blur(&sq(x, x), width, height, channels);
    let syy = blur(&sq(y, y), width, height, channels);
    let sxy = blur(&sq(x, y), width, height, channels);
    let mut total = 0.0;
    for p in 0..x.len() {
        let (a, b) = (mx[p], my[p]);
        let num = (2.0 * a * b + SSIM_C1) * (2.0 * (sxy[p] - a * b) + SSIM_C2);
        let den = (a * a + b * b + SSIM_C1) * ((sxx[p] - a * a) + (syy[p] - b * b) + SSIM_C2);
        total += weight(p) * num / den;
    }
    total / kept_entries(x.len(), mask, channels)
}

/// PSNR in dB of `x` clipped to `[0, 1]` against `y`: `10 log10(1 / MSE)`
/// (the JAX peer's definition). Infinite for identical images.
pub fn psnr(x: &[f64], y: &[f64]) -> f64 {
    psnr_masked(x, y, None, 3)
}

/// [`psnr`] over the kept pixels of a mask (`height × width` weights, 1
/// keep, 0 ignore; `None`: every pixel; images have `channels` values per
/// pixel): the MSE is the mask-weighted mean. NaN when no pixel is kept.
pub fn psnr_masked<T: Scalar>(x: &[T], y: &[T], mask: Option<&[T]>, channels: usize) -> f64 {
    let sq = squared_error(x, y, mask, channels, 0..x.len());
    psnr_of(sq, x.len(), mask, channels)
}

/// [`psnr_masked`] with the squared errors summed in parallel over fixed
/// blocks of entries, the blocks' sums then added in order: the same value
/// on any number of threads, which may differ from [`psnr_masked`]'s in
/// the last bits (the trainer's per-iteration PSNR, which nothing else
/// reads). `blocks` holds the blocks' sums (kept by the caller so that
/// nothing is allocated once it is large enough).
pub fn psnr_masked_blocked<T: Scalar>(
    x: &[T],
    y: &[T],
    mask: Option<&[T]>,
    channels: usize,
    blocks: &mut Vec<f64>,
) -> f64 {
    const BLOCK: usize = 16_384;
    blocks.clear();
    blocks.par_extend((0..x.len().div_ceil(BLOCK)).into_par_iter().map(|b| {
        let at = b * BLOCK..((b + 1) * BLOCK).min(x.len());
        squared_error(x, y, mask, channels, at)
    }));
    psnr_of(blocks.iter().sum(), x.len(), mask, channels)
}

/// The mask-weighted squared error of `x` clipped to `[0, 1]` against `y`
/// over entries `at`.
fn squared_error<T: Scalar>(
    x: &[T],
    y: &[T],
    mask: Option<&[T]>,
    channels: usize,
    at: std::ops::Range<usize>,
) -> f64 {
    let weight = |q: usize| mask.map_or(1.0, |m| m[q / channels].to_f64());
    x[at.clone()]
        .iter()
        .zip(y.iter().skip(at.start))
        .zip(at)
        .map(|((a, b), q)| weight(q) * (a.to_f64().clamp(0.0, 1.0) - b.to_f64()).powi(2))
        .sum::<f64>()
}

/// PSNR from the summed squared error of `len` entries (mask-weighted).
fn psnr_of<T: Scalar>(sq: f64, len: usize, mask: Option<&[T]>, channels: usize) -> f64 {
    let mse = sq
        / mask.map_or(len as f64, |m| {
            channels as f64 * m.iter().map(|v| v.to_f64()).sum::<f64>()
        });
    10.0 * (1.0 / mse).log10()
}

/// The number of image entries a mask keeps (its weights summed, times
/// `channels`), or `len` without a mask.
fn kept_entries(len: usize, mask: Option<&[f64]>, channels: usize) -> f64 {
    match mask {
        None => len as f64,
        Some(m) => channels as f64 * m.iter().sum::<f64>(),
    }
}

/// The chosen loss of `x` against `target` on the tape.
pub fn loss<'t, T: Scalar>(
    which: Loss,
    x: &[Var<'t, T>],
    target: &[T],
    width: usize,
    height: usize,
    channels: usize,
) -> Var<'t, T> {
    match which {
        Loss::Mse => mse(x, target),
        Loss::L1Ssim => {
            let lam = T::from_f64(SSIM_LAMBDA);
            // (1 − λ) L1 + λ (1 − SSIM), written with the constant on the right
            l1(x, target) * (T::one() - lam) - ssim(x, target, width, height, channels) * lam + lam
        }
    }
}

/// `(1 − λ)·L1 + λ·(1 − SSIM)` of plain images and its gradient with
/// respect to `x`, written out by hand (no tape): the same value and
/// gradient as [`loss`] with [`Loss::L1Ssim`], at a fraction of the cost.
/// (The 3D trainer keeps an [`L1Ssim`] and reuses its buffers.)
///
/// With `s = A·B / (C·D)` per pixel (`A = 2μxμy + C1`, `B = 2σxy + C2`,
/// `C = μx² + μy² + C1`, `D = σx² + σy² + C2`), the partial derivatives with
/// respect to the blurred quantities `μx`, `E[x²]`, `E[xy]` are blurred back
/// (the zero-padded Gaussian blur is its own adjoint) and combined by the
/// chain rule `∂/∂x = G(∂μx) + 2x·G(∂E[x²]) + y·G(∂E[xy])`.
///
/// ```
/// let x = vec![0.2; 3 * 4 * 4];
/// let y = vec![0.2; 3 * 4 * 4];
/// let (v, g) = splat::loss::l1_ssim_value_grad(&x, &y, 4, 4, 3);
/// assert!(v.abs() < 1e-12);
/// assert!(g.iter().all(|d| d.abs() < 1e-9));
/// ```
pub fn l1_ssim_value_grad(
    x: &[f64],
    y: &[f64],
    width: usize,
    height: usize,
    channels: usize,
) -> (f64, Vec<f64>) {
    l1_ssim_value_grad_masked(x, y, None, width, height, channels)
}

/// [`l1_ssim_value_grad`] over the kept pixels of a mask (`height × width`
/// weights, 1 keep, 0 ignore; `None`: every pixel). The render is first
/// replaced by the target where the mask is 0 (`x' = m·x + (1 − m)·y`, so
/// SSIM windows that straddle the mask's edge compare the kept pixels
/// against a consistent image), then the L1 term and the SSIM map are
/// averaged with the mask's weights: `(1 − λ)·Σ m|x' − y| / (c·Σm) +
/// λ·(1 − Σ m·ssim / (c·Σm))`. The gradient with respect to `x` is `m`
/// times that with respect to `x'`: ignored pixels get exactly zero. A
/// mask with no kept pixel gives loss 0 and a zero gradient.
///
/// ```
/// let (x, y) = (vec![0.9; 3 * 4 * 4], vec![0.2; 3 * 4 * 4]);
/// let mask = vec![0.0; 4 * 4];
/// let (v, g) = splat::loss::l1_ssim_value_grad_masked(&x, &y, Some(&mask), 4, 4, 3);
/// assert_eq!(v, 0.0);
/// assert!(g.iter().all(|&d| d == 0.0));
/// ```
pub fn l1_ssim_value_grad_masked(
    x: &[f64],
    y: &[f64],
    mask: Option<&[f64]>,
    width: usize,
    height: usize,
    channels: usize,
) -> (f64, Vec<f64>) {
    assert_eq!(x.len(), y.len(), "l1_ssim: lengths differ");
    assert_eq!(x.len(), width * height * channels, "l1_ssim: shape");
    if let Some(m) = mask {
        assert_eq!(m.len(), width * height, "l1_ssim: mask shape");
    }
    let mut grad = vec![0.0; x.len()];
    let value = L1Ssim::new(width, height, channels).value_grad(x, y, mask, &mut grad);
    (value, grad)
}

/// The render `x` with the target `y` in its ignored pixels:
/// `m·x + (1 − m)·y` per pixel (`mask` is `height × width`, images have
/// `channels` values per pixel).
pub fn mask_composite(x: &[f64], y: &[f64], mask: &[f64], channels: usize) -> Vec<f64> {
    x.iter()
        .zip(y)
        .enumerate()
        .map(|(q, (a, b))| {
            let m = mask[q / channels];
            m * a + (1.0 - m) * b
        })
        .collect()
}
