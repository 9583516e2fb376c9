//! The 3D trainer's loss, `(1 − λ)·L1 + λ·(1 − SSIM)`, and its gradient
//! with respect to the render, computed by hand in reusable buffers.
//!
//! The formula and the chain rule are those of [`crate::loss::loss`] (see
//! [`crate::loss::l1_ssim_value_grad`], which calls this): five blurred maps
//! (`μx`, `μy`, `E[x²]`, `E[y²]`, `E[xy]`), the per-pixel SSIM and its
//! partials with respect to `μx`, `E[x²]` and `E[xy]`, and those three
//! partials blurred back (the zero-padded Gaussian blur is its own
//! adjoint). The work is laid out for speed:
//!
//! - the 11-tap blur is separable; each pass is a sum of shifted rows
//!   (`out += k_t · in[· + shift]` over a whole row), which the compiler
//!   vectorises, with the zero padding handled by clipping the ranges;
//! - every pass runs in parallel over image rows (rayon), and the
//!   per-pixel SSIM terms are computed right after the vertical pass of
//!   the same row, so the five blurred maps are never stored;
//! - all buffers live in [`L1Ssim`] and are reused: a training iteration
//!   allocates nothing here;
//! - the loss value is summed per row and the rows in order, so the result
//!   does not depend on the number of threads.
//!
//! With a mask (per pixel, 1 keep, 0 ignore) it computes the masked loss of
//! [`crate::loss::l1_ssim_value_grad_masked`]: the render is replaced by
//! the target where the mask is 0, the L1 and SSIM maps are averaged with
//! the mask's weights, and ignored pixels get a zero gradient.
//!
//! It is generic over the scalar: `f64` for the tests against the tape,
//! `f32` in training (the renderer's precision; a test holds it to the
//! `f64` result).

use chainrule::Scalar;
use rayon::prelude::*;

use crate::loss::{ssim_kernel, SSIM_C1, SSIM_C2, SSIM_LAMBDA, SSIM_WINDOW};

/// Lanes of the vertical pass processed together (stack buffers).
const BLOCK: usize = 64;
/// Blur radius.
const R: usize = SSIM_WINDOW / 2;

/// Buffers for one image size; reused across calls of [`L1Ssim::value_grad`].
#[derive(Clone, Debug)]
pub struct L1Ssim<T> {
    width: usize,
    height: usize,
    channels: usize,
    kernel: [T; SSIM_WINDOW],
    /// `x²`, `y²`, `xy`, then the three partials, one plane each, then the
    /// masked render.
    planes: Vec<T>,
    /// Horizontal blurs of `x`, `y`, `x²`, `y²`, `xy` (later: of the three
    /// partials), one plane each.
    horiz: Vec<T>,
    /// Per image row: SSIM sum and L1 sum.
    row_sums: Vec<[f64; 2]>,
}

impl<T: Scalar> L1Ssim<T> {
    /// Buffers for `width × height` images of `channels` interleaved channels.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        let n = width * height * channels;
        L1Ssim {
            width,
            height,
            channels,
            kernel: ssim_kernel().map(T::from_f64),
            planes: vec![T::zero(); 7 * n],
            horiz: vec![T::zero(); 5 * n],
            row_sums: vec![[0.0; 2]; height],
        }
    }

    /// The image shape these buffers are for.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.width, self.height, self.channels)
    }

    /// The loss of render `x` against target `y` (both `height × width ×
    /// channels`, channels last), with its gradient written to `grad`;
    /// `mask` (`height × width` weights, 1 keep, 0 ignore; `None`: every
    /// pixel) leaves pixels out as described in the module docs. A mask
    /// that keeps nothing gives 0 and a zero gradient.
    ///
    /// ```
    /// let mut l = splat::l1_ssim::L1Ssim::<f32>::new(4, 4, 3);
    /// let x = vec![0.2f32; 48];
    /// let mut g = vec![0.0f32; 48];
    /// let v = l.value_grad(&x, &x, None, &mut g);
    /// assert!(v.abs() < 1e-6 && g.iter().all(|d| d.abs() < 1e-6));
    /// ```
    pub fn value_grad(&mut self, x: &[T], y: &[T], mask: Option<&[T]>, grad: &mut [T]) -> f64 {
        let (w, h, ch) = (self.width, self.height, self.channels);
        let row = w * ch;
        let n = row * h;
        assert!(
            x.len() == n && y.len() == n && grad.len() == n,
            "l1_ssim: expected {n} values ({w}×{h}×{ch}), got {}, {} and {}",
            x.len(),
            y.len(),
            grad.len()
        );
        if let Some(m) = mask {
            assert_eq!(m.len(), w * h, "l1_ssim: mask has the wrong size");
        }
        // entries that count: every one, or the mask's weights × channels
        let kept = mask.map_or(n as f64, |m| {
            ch as f64 * m.iter().map(|v| v.to_f64()).sum::<f64>()
        });
        if n == 0 || kept <= 0.0 {
            grad.iter_mut().for_each(|g| *g = T::zero());
            return 0.0;
        }
        let (prods, rest) = self.planes.split_at_mut(3 * n);
        let (partials, masked) = rest.split_at_mut(3 * n);
        let x: &[T] = match mask {
            None => x,
            Some(m) => {
                masked.par_chunks_mut(row).enumerate().for_each(|(i, out)| {
                    for (q, o) in out.iter_mut().enumerate() {
                        let (p, mp) = (i * row + q, m[i * w + q / ch]);
                        *o = mp * x[p] + (T::one() - mp) * y[p];
                    }
                });
                masked
            }
        };
        let weight = |i: usize, q: usize| mask.map_or(T::one(), |m| m[i * w + q / ch]);
        let k = self.kernel;
        let (c1, c2) = (T::from_f64(SSIM_C1), T::from_f64(SSIM_C2));
        let inv_n = T::from_f64(1.0 / kept);
        let two = T::from_f64(2.0);
        // products, row-parallel
        let (pxx, rest) = prods.split_at_mut(n);
        let (pyy, pxy) = rest.split_at_mut(n);
        pxx.par_chunks_mut(row)
            .zip(pyy.par_chunks_mut(row))
            .zip(pxy.par_chunks_mut(row))
            .enumerate()
            .for_each(|(i, ((a, b), c))| {
                let (xr, yr) = (&x[i * row..][..row], &y[i * row..][..row]);
                for q in 0..row {
                    a[q] = xr[q] * xr[q];
                    b[q] = yr[q] * yr[q];
                    c[q] = xr[q] * yr[q];
                }
            });
        // horizontal blur of the five maps
        {
            let srcs: [&[T]; 5] = [x, y, pxx, pyy, pxy];
            hblur_planes(&srcs, &mut self.horiz, &k, row, ch);
        }
        // vertical blur, row by row, straight into the SSIM partials
        let hz = &self.horiz;
        let (d_mu, rest) = partials.split_at_mut(n);
        let (d_xx, d_xy) = rest.split_at_mut(n);
        d_mu.par_chunks_mut(row)
            .zip(d_xx.par_chunks_mut(row))
            .zip(d_xy.par_chunks_mut(row))
            .zip(self.row_sums.par_iter_mut())
            .enumerate()
            .for_each(|(i, (((dm, dxx), dxy), sums))| {
                let mut ssim = 0.0f64;
                let mut q0 = 0;
                while q0 < row {
                    let len = BLOCK.min(row - q0);
                    let mut m = [[T::zero(); BLOCK]; 5];
                    for (p, mp) in m.iter_mut().enumerate() {
                        vblur_block(&hz[p * n..(p + 1) * n], mp, &k, i, h, row, q0, len);
                    }
                    for l in 0..len {
                        let (ux, uy) = (m[0][l], m[1][l]);
                        let a = two * ux * uy + c1;
                        let b = two * (m[4][l] - ux * uy) + c2;
                        let c = ux * ux + uy * uy + c1;
                        let d = (m[2][l] - ux * ux) + (m[3][l] - uy * uy) + c2;
                        let s = a * b / (c * d);
                        let q = q0 + l;
                        let wp = weight(i, q);
                        ssim += (wp * s).to_f64();
                        let ws = wp * s * inv_n;
                        dm[q] = ws * (two * uy / a - two * uy / b - two * ux / c + two * ux / d);
                        dxx[q] = -ws / d;
                        dxy[q] = two * ws / b;
                    }
                    q0 += len;
                }
                sums[0] = ssim;
            });
        // the partials blurred back: horizontal, then vertical combined with
        // the L1 term into the gradient
        {
            let srcs: [&[T]; 3] = [&partials[..n], &partials[n..2 * n], &partials[2 * n..]];
            hblur_planes(&srcs, &mut self.horiz[..3 * n], &k, row, ch);
        }
        let hz = &self.horiz;
        let lam = T::from_f64(SSIM_LAMBDA);
        let l1w = (T::one() - lam) * inv_n;
        grad.par_chunks_mut(row)
            .zip(self.row_sums.par_iter_mut())
            .enumerate()
            .for_each(|(i, (g, sums))| {
                let mut l1 = 0.0f64;
                let (xr, yr) = (&x[i * row..][..row], &y[i * row..][..row]);
                let mut q0 = 0;
                while q0 < row {
                    let len = BLOCK.min(row - q0);
                    let mut m = [[T::zero(); BLOCK]; 3];
                    for (p, mp) in m.iter_mut().enumerate() {
                        vblur_block(&hz[p * n..(p + 1) * n], mp, &k, i, h, row, q0, len);
                    }
                    for l in 0..len {
                        let q = q0 + l;
                        let e = xr[q] - yr[q];
                        let wq = weight(i, q);
                        l1 += (wq * e.abs()).to_f64();
                        let sign = if e > T::zero() {
                            T::one()
                        } else if e < T::zero() {
                            -T::one()
                        } else {
                            T::zero()
                        };
                        let d_ssim = m[0][l] + two * xr[q] * m[1][l] + yr[q] * m[2][l];
                        g[q] = wq * (wq * l1w * sign - lam * d_ssim);
                    }
                    q0 += len;
                }
                sums[1] = l1;
            });
        let (mut ssim, mut l1) = (0.0, 0.0);
        for s in &self.row_sums {
            ssim += s[0];
            l1 += s[1];
        }
        (1.0 - SSIM_LAMBDA) * l1 / kept + SSIM_LAMBDA * (1.0 - ssim / kept)
    }
}

/// Horizontal blur of each source plane into consecutive planes of `dst`,
/// parallel over (plane, row) pairs.
fn hblur_planes<T: Scalar>(
    srcs: &[&[T]],
    dst: &mut [T],
    k: &[T; SSIM_WINDOW],
    row: usize,
    ch: usize,
) {
    let n = srcs[0].len();
    dst[..srcs.len() * n]
        .par_chunks_mut(row)
        .enumerate()
        .for_each(|(r, out)| {
            let (p, i) = (r * row / n, (r * row % n) / row);
            hblur_row(&srcs[p][i * row..(i + 1) * row], out, k, ch);
        });
}

/// One row's horizontal blur with zero padding: `out[q] = Σ_t k_t ·
/// in[q + (t − R)·ch]` over the taps that stay inside the row, as one
/// shifted multiply-add over the whole row per tap.
#[inline]
fn hblur_row<T: Scalar>(inp: &[T], out: &mut [T], k: &[T; SSIM_WINDOW], ch: usize) {
    let row = inp.len();
    out.iter_mut().for_each(|v| *v = T::zero());
    for (t, &kv) in k.iter().enumerate() {
        // out[q] += kv · inp[q + s], s = (t − R)·ch, for q and q + s in range
        let s = t as isize - R as isize;
        let shift = s.unsigned_abs() * ch;
        if shift >= row {
            continue;
        }
        if s >= 0 {
            let (o, i) = (&mut out[..row - shift], &inp[shift..]);
            for (a, &b) in o.iter_mut().zip(i) {
                *a += kv * b;
            }
        } else {
            let (o, i) = (&mut out[shift..], &inp[..row - shift]);
            for (a, &b) in o.iter_mut().zip(i) {
                *a += kv * b;
            }
        }
    }
}

/// The vertical blur at image row `i`, lanes `q0..q0 + len` of the row,
/// from a horizontally blurred plane (zero padding above and below).
#[allow(clippy::too_many_arguments)]
#[inline]
fn vblur_block<T: Scalar>(
    plane: &[T],
    out: &mut [T; BLOCK],
    k: &[T; SSIM_WINDOW],
    i: usize,
    h: usize,
    row: usize,
    q0: usize,
    len: usize,
) {
    let lo = i.saturating_sub(R);
    let hi = (i + R).min(h - 1);
    for ii in lo..=hi {
        let kv = k[ii + R - i];
        let src = &plane[ii * row + q0..][..len];
        for (a, &b) in out[..len].iter_mut().zip(src) {
            *a += kv * b;
        }
    }
}
