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
use crate::simd::Simd;

/// Lanes of the vertical pass processed together (stack buffers).
const BLOCK: usize = 64;
/// Blur radius.
const R: usize = SSIM_WINDOW / 2;

/// Calls kernel `$f` (an `#[inline(always)]` generic function) compiled
/// for `$isa`'s vector unit.
macro_rules! multiversion {
    ($isa:expr, $f:expr, ($($a:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match $isa {
            // SAFETY: `Simd::best` found the feature on this CPU
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { avx512(#[inline(always)] || $f($($a),*)) },
            // SAFETY: as above
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { avx2(#[inline(always)] || $f($($a),*)) },
            _ => $f($($a),*),
        }
    }};
}

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
        self.value_grad_on(Simd::best(), x, y, mask, grad)
    }

    /// [`L1Ssim::value_grad`] with the kernels compiled for `isa`.
    fn value_grad_on(
        &mut self,
        isa: Simd,
        x: &[T],
        y: &[T],
        mask: Option<&[T]>,
        grad: &mut [T],
    ) -> f64 {
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
        let k = self.kernel;
        let (c1, c2) = (T::from_f64(SSIM_C1), T::from_f64(SSIM_C2));
        let inv_n = T::from_f64(1.0 / kept);
        let mask_row = |i: usize| mask.map(|m| &m[i * w..(i + 1) * w]);
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
            hblur_planes(isa, &srcs, &mut self.horiz, &k, row, ch);
        }
        // vertical blur, row by row, straight into the SSIM partials
        let hz = &self.horiz;
        let (d_mu, rest) = partials.split_at_mut(n);
        let (d_xx, d_xy) = rest.split_at_mut(n);
        let consts = [c1, c2, inv_n];
        d_mu.par_chunks_mut(row)
            .zip(d_xx.par_chunks_mut(row))
            .zip(d_xy.par_chunks_mut(row))
            .zip(self.row_sums.par_iter_mut())
            .enumerate()
            .for_each(|(i, (((dm, dxx), dxy), sums))| {
                let at = Row { i, h, ch, k: &k };
                let out = [dm, dxx, dxy];
                sums[0] = multiversion!(isa, ssim_row, (at, hz, mask_row(i), consts, out));
            });
        // the partials blurred back: horizontal, then vertical combined with
        // the L1 term into the gradient
        {
            let srcs: [&[T]; 3] = [&partials[..n], &partials[n..2 * n], &partials[2 * n..]];
            hblur_planes(isa, &srcs, &mut self.horiz[..3 * n], &k, row, ch);
        }
        let hz = &self.horiz[..3 * n];
        let lam = T::from_f64(SSIM_LAMBDA);
        let l1w = (T::one() - lam) * inv_n;
        grad.par_chunks_mut(row)
            .zip(self.row_sums.par_iter_mut())
            .enumerate()
            .for_each(|(i, (g, sums))| {
                let at = Row { i, h, ch, k: &k };
                let xy = [&x[i * row..][..row], &y[i * row..][..row]];
                sums[1] = multiversion!(isa, grad_row, (at, hz, mask_row(i), xy, [l1w, lam], g));
            });
        let (mut ssim, mut l1) = (0.0, 0.0);
        for s in &self.row_sums {
            ssim += s[0];
            l1 += s[1];
        }
        (1.0 - SSIM_LAMBDA) * l1 / kept + SSIM_LAMBDA * (1.0 - ssim / kept)
    }
}

/// Lanes a blur sums together in registers (one AVX-512 vector of `f32`).
const LANES: usize = 16;

/// Where a kernel works: image row `i` of `h`, `ch` channels per pixel,
/// and the blur's taps.
#[derive(Clone, Copy, Debug)]
struct Row<'a, T> {
    i: usize,
    h: usize,
    ch: usize,
    k: &'a [T; SSIM_WINDOW],
}

/// Horizontal blur of each source plane into consecutive planes of `dst`,
/// parallel over (plane, row) pairs.
fn hblur_planes<T: Scalar>(
    isa: Simd,
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
            let inp = &srcs[p][i * row..(i + 1) * row];
            // the trainer's three channels as a constant (no bounds checks
            // in the taps' loop)
            if ch == 3 {
                multiversion!(isa, hblur_row::<T, 3>, (inp, out, k, ch));
            } else {
                multiversion!(isa, hblur_row::<T, 0>, (inp, out, k, ch));
            }
        });
}

/// One row's horizontal blur with zero padding: `out[q] = Σ_t k_t ·
/// in[q + (t − R)·ch]` over the taps that stay inside the row, summed
/// from zero in the order of the taps; away from the ends of the row,
/// [`LANES`] outputs at a time in registers. `C` is `ch` when known at
/// compile time, otherwise 0.
#[inline(always)]
fn hblur_row<T: Scalar, const C: usize>(inp: &[T], out: &mut [T], k: &[T; SSIM_WINDOW], ch: usize) {
    let ch = if C == 0 { ch } else { C };
    let row = inp.len();
    let reach = R * ch;
    // outputs a..b have every tap inside the row
    let (a, b) = if row > 2 * reach {
        (reach, row - reach)
    } else {
        (row, row)
    };
    for q in (0..a).chain(b..row) {
        // the taps t with 0 ≤ q + t·ch − reach < row
        let t0 = reach.saturating_sub(q).div_ceil(ch);
        let t1 = (row + reach - q).div_ceil(ch).min(SSIM_WINDOW);
        let mut acc = T::zero();
        for t in t0..t1 {
            acc += k[t] * inp[q + t * ch - reach];
        }
        out[q] = acc;
    }
    let mut q = a;
    while q + LANES <= b {
        let win = &inp[q - reach..q + reach + LANES];
        let mut acc = [T::zero(); LANES];
        for (t, &kv) in k.iter().enumerate() {
            let src = &win[t * ch..t * ch + LANES];
            for j in 0..LANES {
                acc[j] += kv * src[j];
            }
        }
        out[q..q + LANES].copy_from_slice(&acc);
        q += LANES;
    }
    for q in q..b {
        let mut acc = T::zero();
        for (t, &kv) in k.iter().enumerate() {
            acc += kv * inp[q + t * ch - reach];
        }
        out[q] = acc;
    }
}

/// The vertical blur at image row `at.i`, lanes `q0..q0 + len` of the
/// row, from a horizontally blurred plane (zero padding above and below),
/// summed from zero in the order of the taps, [`LANES`] lanes at a time
/// in registers.
#[inline(always)]
fn vblur_block<T: Scalar>(
    at: Row<'_, T>,
    plane: &[T],
    out: &mut [T; BLOCK],
    q0: usize,
    len: usize,
) {
    let row = plane.len() / at.h;
    let lo = at.i.saturating_sub(R);
    let taps = (at.i + R).min(at.h - 1) + 1 - lo;
    // the rows under the taps and their weights, in the order of the taps
    let mut src: [&[T]; SSIM_WINDOW] = [&[]; SSIM_WINDOW];
    let mut kv = [T::zero(); SSIM_WINDOW];
    for t in 0..taps {
        src[t] = &plane[(lo + t) * row + q0..][..len];
        kv[t] = at.k[lo + t + R - at.i];
    }
    let (src, kv) = (&src[..taps], &kv[..taps]);
    let mut l0 = 0;
    while l0 + LANES <= len {
        let mut acc = [T::zero(); LANES];
        for (s, &kt) in src.iter().zip(kv) {
            let s = &s[l0..l0 + LANES];
            for j in 0..LANES {
                acc[j] += kt * s[j];
            }
        }
        out[l0..l0 + LANES].copy_from_slice(&acc);
        l0 += LANES;
    }
    for l in l0..len {
        let mut acc = T::zero();
        for (s, &kt) in src.iter().zip(kv) {
            acc += kt * s[l];
        }
        out[l] = acc;
    }
}

/// The mask's weight of lanes `q0..q0 + len` of a row (`ch` channels per
/// pixel) into `wv`; without a mask `wv` keeps its ones.
#[inline(always)]
fn weights<T: Scalar>(mask: Option<&[T]>, ch: usize, q0: usize, len: usize, wv: &mut [T; BLOCK]) {
    if let Some(m) = mask {
        for (l, v) in wv[..len].iter_mut().enumerate() {
            *v = m[(q0 + l) / ch];
        }
    }
}

/// Walks an image row (`row` lanes) in blocks of [`BLOCK`] lanes: the `P`
/// planes of `hz` (horizontal blurs, one plane each) blurred vertically
/// and the mask's weights of each block go to `body(q0, len, blurred,
/// weights, terms)`, which writes `terms[..len]`; the terms are added in
/// order (in `f64`) into the sum returned. The sum is kept out of `body`'s
/// loop so that the loop vectorises.
#[inline(always)]
fn row_blocks<T: Scalar, const P: usize>(
    at: Row<'_, T>,
    hz: &[T],
    mask: Option<&[T]>,
    row: usize,
    mut body: impl FnMut(usize, usize, &[[T; BLOCK]; P], &[T; BLOCK], &mut [T; BLOCK]),
) -> f64 {
    let n = hz.len() / P;
    let mut sum = 0.0f64;
    let mut m = [[T::zero(); BLOCK]; P];
    let mut wv = [T::one(); BLOCK];
    let mut tv = [T::zero(); BLOCK];
    let mut q0 = 0;
    while q0 < row {
        let len = BLOCK.min(row - q0);
        for (p, mp) in m.iter_mut().enumerate() {
            vblur_block(at, &hz[p * n..(p + 1) * n], mp, q0, len);
        }
        weights(mask, at.ch, q0, len, &mut wv);
        body(q0, len, &m, &wv, &mut tv);
        for &v in &tv[..len] {
            sum += v.to_f64();
        }
        q0 += len;
    }
    sum
}

/// One image row of the SSIM pass: the five maps blurred vertically from
/// `hz` (their horizontal blurs, one plane each), the per-pixel SSIM and
/// its partials with respect to `μx`, `E[x²]` and `E[xy]` (times the
/// pixel's weight and `inv_n`) into `[dm, dxx, dxy]`; returns the row's
/// weighted SSIM sum, added lane by lane in order.
#[inline(always)]
fn ssim_row<T: Scalar>(
    at: Row<'_, T>,
    hz: &[T],
    mask: Option<&[T]>,
    [c1, c2, inv_n]: [T; 3],
    [dm, dxx, dxy]: [&mut [T]; 3],
) -> f64 {
    let two = T::from_f64(2.0);
    let row = dm.len();
    row_blocks::<T, 5>(
        at,
        hz,
        mask,
        row,
        #[inline(always)]
        |q0, len, m, wv, sv| {
            let (dm, dxx, dxy) = (
                &mut dm[q0..q0 + len],
                &mut dxx[q0..q0 + len],
                &mut dxy[q0..q0 + len],
            );
            for l in 0..len {
                let (ux, uy) = (m[0][l], m[1][l]);
                let a = two * ux * uy + c1;
                let b = two * (m[4][l] - ux * uy) + c2;
                let c = ux * ux + uy * uy + c1;
                let d = (m[2][l] - ux * ux) + (m[3][l] - uy * uy) + c2;
                let s = a * b / (c * d);
                let ws = wv[l] * s;
                sv[l] = ws;
                let ws = ws * inv_n;
                dm[l] = ws * (two * uy / a - two * uy / b - two * ux / c + two * ux / d);
                dxx[l] = -ws / d;
                dxy[l] = two * ws / b;
            }
        },
    )
}

/// One image row of the gradient: the three SSIM partials blurred
/// vertically from `hz` (their horizontal blurs), combined with the L1
/// term into `g` for render row `x` against target row `y`; returns the
/// row's weighted L1 sum, added lane by lane in order.
#[inline(always)]
fn grad_row<T: Scalar>(
    at: Row<'_, T>,
    hz: &[T],
    mask: Option<&[T]>,
    [x, y]: [&[T]; 2],
    [l1w, lam]: [T; 2],
    g: &mut [T],
) -> f64 {
    let two = T::from_f64(2.0);
    let row = g.len();
    row_blocks::<T, 3>(
        at,
        hz,
        mask,
        row,
        #[inline(always)]
        |q0, len, m, wv, lv| {
            let (xr, yr, g) = (&x[q0..q0 + len], &y[q0..q0 + len], &mut g[q0..q0 + len]);
            for l in 0..len {
                let e = xr[l] - yr[l];
                let wq = wv[l];
                lv[l] = wq * e.abs();
                let sign = if e > T::zero() {
                    T::one()
                } else if e < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                };
                let d_ssim = m[0][l] + two * xr[l] * m[1][l] + yr[l] * m[2][l];
                g[l] = wq * (wq * l1w * sign - lam * d_ssim);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::three::scene::Rng;

    /// Every vector unit the CPU has gives the bits of the baseline's
    /// kernels: value and gradient, with and without a mask, on images
    /// whose rows are shorter than the blur, about as long, and several
    /// register blocks long.
    #[test]
    fn every_vector_unit_gives_the_same_bits() {
        let isas = Simd::available();
        let mut r = Rng::new(3);
        for (w, h, ch) in [(3, 2, 3), (7, 13, 3), (37, 29, 3), (90, 41, 3), (53, 24, 1)] {
            let n = w * h * ch;
            let x: Vec<f32> = (0..n).map(|_| r.uniform() as f32).collect();
            let y: Vec<f32> = (0..n).map(|_| r.uniform() as f32).collect();
            let m: Vec<f32> = (0..w * h)
                .map(|_| if r.uniform() < 0.3 { 0.0 } else { 1.0 })
                .collect();
            for mask in [None, Some(&m[..])] {
                let mut l = L1Ssim::<f32>::new(w, h, ch);
                let mut first = None;
                for &isa in &isas {
                    let mut g = vec![0.0f32; n];
                    let v = l.value_grad_on(isa, &x, &y, mask, &mut g);
                    let bits = (
                        v.to_bits(),
                        g.iter().map(|d| d.to_bits()).collect::<Vec<_>>(),
                    );
                    match &first {
                        None => first = Some(bits),
                        Some(b) => assert!(*b == bits, "{isa:?} differs at {w}x{h}x{ch}"),
                    }
                }
            }
        }
    }
}
