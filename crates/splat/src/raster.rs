//! The tiled rasterizer: projected 2D splats in, an image out, and the
//! hand-written backward pass that needs no per-step storage.
//!
//! This is the shared kernel of the 2D image fit and of the 3D renderer.
//! Inputs are splats already projected to the image plane, in **pixel**
//! coordinates: the centre of pixel (row `i`, column `j`) is at
//! `(j + 0.5, i + 0.5)`.
//!
//! For one pixel `p` and splat `k` with mean `m`, conic `(a, b, c)` (the
//! inverse 2D covariance), opacity `o` and colour `c_k` (`C` channels):
//!
//! ```text
//! d     = p − m
//! q     = a d.x² + 2 b d.x d.y + c d.y²
//! α     = min(0.99, o · exp(−q/2))         (Blend::Over)
//! ```
//!
//! A splat is skipped at a pixel when the pixel centre lies outside the
//! splat's bound (an axis-aligned box, see [`opacity_aware_bound`]) or when
//! `α < 1/255`. The kept splats are composited front to back in the order
//! given: `C = Σ c_k α_k T_k + T_final · background`, `T_{k+1} = T_k (1 − α_k)`.
//! Like gsplat, a pixel stops *before* a splat that would bring `T` below
//! `1e-4`; that splat and all later ones are left out. Because the bound
//! test is per pixel, the tiling is only an acceleration: the output does
//! not depend on tile size.
//!
//! [`Blend::Sum`] is the order-free accumulated sum of GaussianImage:
//! `C = Σ c_k α_k + background`, `α = o · exp(−q/2)` (no clamp, no
//! transmittance; still skipped below 1/255).
//!
//! The backward pass walks each pixel's list back to front from its last
//! contributor, recovering `T_k = T_{k+1} / (1 − α_k)` by division and
//! carrying the colour accumulated behind, so it stores nothing per step.
//! Tiles run in parallel (rayon); each tile accumulates its gradients in a
//! buffer aligned with its list, and the buffers are reduced into the
//! per-splat gradients in tile order, so results are deterministic.

use chainrule::{Scalar, Tape, Var};
use rayon::prelude::*;
use std::sync::Arc;

/// Tile edge in pixels.
pub const TILE: usize = 16;
/// Largest α a splat may take in [`Blend::Over`].
pub const ALPHA_MAX: f64 = 0.99;
/// Splats with α below this are skipped at that pixel.
pub const ALPHA_MIN: f64 = 1.0 / 255.0;
/// A pixel stops before a splat that would bring its transmittance below this.
pub const T_MIN: f64 = 1e-4;

/// How splats combine at a pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Blend {
    /// Front-to-back "over" compositing with transmittance (3DGS, gsplat).
    #[default]
    Over,
    /// Order-free weighted sum `Σ c α` (GaussianImage).
    Sum,
}

/// The splats to draw, already in pixel coordinates.
///
/// `N` splats; every slice indexed by splat has `N` entries (`colors` has
/// `N · channels`, splat-major).
#[derive(Clone, Copy, Debug)]
pub struct Splats<'a, T> {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Channels per splat colour and per output pixel (3 for RGB).
    pub channels: usize,
    /// Centres `(x, y)` in pixels.
    pub means: &'a [[T; 2]],
    /// Inverse covariances `(a, b, c)`: `q = a dx² + 2 b dx dy + c dy²`.
    pub conics: &'a [[T; 3]],
    /// Opacities after activation, in `[0, 1]`.
    pub opacities: &'a [T],
    /// Colours (or any features), `channels` per splat.
    pub colors: &'a [T],
    /// Screen-space boxes `(x_min, y_min, x_max, y_max)` in pixels; a splat
    /// only touches pixels whose centre lies inside. An empty box
    /// (`x_min > x_max`) culls the splat.
    pub bounds: &'a [[T; 4]],
    /// Front-to-back order of the splats (indices into the slices above).
    /// Splats not listed are not drawn.
    pub order: &'a [u32],
    /// Background colour, `channels` values.
    pub background: &'a [T],
    /// How splats combine.
    pub blend: Blend,
}

/// Per-tile lists of splat indices, each in the given front-to-back order
/// (compressed rows: tile `t` holds `ids[offsets[t]..offsets[t + 1]]`).
#[derive(Clone, Debug, Default)]
pub struct TileLists {
    /// Tiles across.
    pub tiles_x: usize,
    /// Tiles down.
    pub tiles_y: usize,
    /// `tiles_x · tiles_y + 1` offsets into `ids`.
    pub offsets: Vec<u32>,
    /// Splat indices, tile by tile.
    pub ids: Vec<u32>,
}

/// What the forward pass produces (and the backward pass needs).
#[derive(Clone, Debug)]
pub struct Rendered<T> {
    /// The image, `height × width × channels`, row-major, channels last.
    pub image: Vec<T>,
    /// Final transmittance per pixel (`alpha = 1 − T_final`); 1 for
    /// [`Blend::Sum`].
    pub final_t: Vec<T>,
    /// Per pixel, one past the position in its tile's list of the last splat
    /// that contributed (0: none). The backward walk starts there.
    pub last: Vec<u32>,
    /// The tile lists used.
    pub tiles: TileLists,
}

/// Gradients of the loss with respect to the splats (same layout as
/// [`Splats`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SplatGrads<T> {
    /// ∂L/∂means.
    pub means: Vec<[T; 2]>,
    /// ∂L/∂conics.
    pub conics: Vec<[T; 3]>,
    /// ∂L/∂opacities.
    pub opacities: Vec<T>,
    /// ∂L/∂colors.
    pub colors: Vec<T>,
}

/// Errors in the shape of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RasterError {
    /// A slice has the wrong length.
    #[error("rasterize: {what} has {got} entries, expected {expected}")]
    Length {
        /// Which slice.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length it should have.
        expected: usize,
    },
    /// An entry of `order` is not a splat index.
    #[error("rasterize: order[{at}] = {index} but there are only {n} splats")]
    Order {
        /// Position in `order`.
        at: usize,
        /// The bad index.
        index: u32,
        /// Number of splats.
        n: usize,
    },
}

impl<T: Scalar> Splats<'_, T> {
    /// Number of splats.
    pub fn len(&self) -> usize {
        self.means.len()
    }

    /// Whether there are no splats.
    pub fn is_empty(&self) -> bool {
        self.means.is_empty()
    }

    /// Checks that every slice has the length it should.
    pub fn validate(&self) -> Result<(), RasterError> {
        let n = self.means.len();
        let check = |what, got, expected| {
            if got == expected {
                Ok(())
            } else {
                Err(RasterError::Length {
                    what,
                    got,
                    expected,
                })
            }
        };
        check("conics", self.conics.len(), n)?;
        check("opacities", self.opacities.len(), n)?;
        check("colors", self.colors.len(), n * self.channels)?;
        check("bounds", self.bounds.len(), n)?;
        check("background", self.background.len(), self.channels)?;
        for (at, &index) in self.order.iter().enumerate() {
            if index as usize >= n {
                return Err(RasterError::Order { at, index, n });
            }
        }
        Ok(())
    }
}

/// The box of the pixels where a splat can reach `α ≥ 1/255`: the ellipse
/// `q ≤ 2 ln(255 · o)` (about 3.3σ for opacity near 1, smaller for faint
/// splats), as `(x_min, y_min, x_max, y_max)`. With this bound the box test
/// never removes a contribution the α threshold would keep, so the image is
/// exactly the untiled one. Returns an empty box when the splat can never
/// reach the threshold or its conic is not positive definite.
pub fn opacity_aware_bound<T: Scalar>(mean: [T; 2], conic: [T; 3], opacity: T) -> [T; 4] {
    let empty = [T::one(), T::one(), T::zero(), T::zero()];
    let o = opacity.to_f64().min(ALPHA_MAX);
    let qmax = 2.0 * (o / ALPHA_MIN).ln();
    bound_for_q(mean, conic, qmax).unwrap_or(empty)
}

/// The box of the ellipse `q ≤ 9` (3σ), as `(x_min, y_min, x_max, y_max)`;
/// empty for a conic that is not positive definite.
pub fn three_sigma_bound<T: Scalar>(mean: [T; 2], conic: [T; 3]) -> [T; 4] {
    let empty = [T::one(), T::one(), T::zero(), T::zero()];
    bound_for_q(mean, conic, 9.0).unwrap_or(empty)
}

fn bound_for_q<T: Scalar>(mean: [T; 2], conic: [T; 3], qmax: f64) -> Option<[T; 4]> {
    let (a, b, c) = (conic[0].to_f64(), conic[1].to_f64(), conic[2].to_f64());
    let det = a * c - b * b;
    if qmax.is_nan() || qmax <= 0.0 || det.is_nan() || det <= 0.0 || a <= 0.0 {
        return None;
    }
    // covariance = conic^-1; the ellipse d^T S^-1 d = qmax spans
    // ±sqrt(qmax · S_xx) in x and ±sqrt(qmax · S_yy) in y.
    let (sxx, syy) = (c / det, a / det);
    // a hair wider so rounding never drops a pixel the α test keeps
    let rx = (qmax * sxx).sqrt() * (1.0 + 1e-9) + 1e-9;
    let ry = (qmax * syy).sqrt() * (1.0 + 1e-9) + 1e-9;
    let (mx, my) = (mean[0].to_f64(), mean[1].to_f64());
    if !(rx.is_finite() && ry.is_finite() && mx.is_finite() && my.is_finite()) {
        return None;
    }
    Some([
        T::from_f64(mx - rx),
        T::from_f64(my - ry),
        T::from_f64(mx + rx),
        T::from_f64(my + ry),
    ])
}

/// Bins the splats into 16×16 tiles, keeping `order` within each tile.
pub fn bin_tiles<T: Scalar>(s: &Splats<'_, T>) -> TileLists {
    let tiles_x = s.width.div_ceil(TILE);
    let tiles_y = s.height.div_ceil(TILE);
    let n_tiles = tiles_x * tiles_y;
    // tile range of each listed splat (pixels whose centre j + 0.5 is in
    // [x_min, x_max]: j in [ceil(x_min - 0.5), floor(x_max - 0.5)])
    let range = |k: usize| -> Option<[usize; 4]> {
        let bd = s.bounds[k];
        let (x0, y0, x1, y1) = (
            bd[0].to_f64() - 0.5,
            bd[1].to_f64() - 0.5,
            bd[2].to_f64() - 0.5,
            bd[3].to_f64() - 0.5,
        );
        if !(x0 <= x1 && y0 <= y1) {
            return None;
        }
        let (w, h) = (s.width as f64, s.height as f64);
        let j0 = x0.ceil().max(0.0);
        let i0 = y0.ceil().max(0.0);
        let j1 = x1.floor().min(w - 1.0);
        let i1 = y1.floor().min(h - 1.0);
        if j0 > j1 || i0 > i1 {
            return None;
        }
        Some([
            j0 as usize / TILE,
            i0 as usize / TILE,
            j1 as usize / TILE,
            i1 as usize / TILE,
        ])
    };
    let ranges: Vec<Option<[usize; 4]>> = s.order.iter().map(|&k| range(k as usize)).collect();
    let mut counts = vec![0u32; n_tiles + 1];
    for r in ranges.iter().flatten() {
        for ty in r[1]..=r[3] {
            for tx in r[0]..=r[2] {
                counts[ty * tiles_x + tx] += 1;
            }
        }
    }
    let mut offsets = vec![0u32; n_tiles + 1];
    for t in 0..n_tiles {
        offsets[t + 1] = offsets[t] + counts[t];
    }
    let mut fill: Vec<u32> = offsets[..n_tiles].to_vec();
    let mut ids = vec![0u32; offsets[n_tiles] as usize];
    for (&k, r) in s.order.iter().zip(&ranges) {
        if let Some(r) = r {
            for ty in r[1]..=r[3] {
                for tx in r[0]..=r[2] {
                    let t = ty * tiles_x + tx;
                    ids[fill[t] as usize] = k;
                    fill[t] += 1;
                }
            }
        }
    }
    TileLists {
        tiles_x,
        tiles_y,
        offsets,
        ids,
    }
}

#[inline(always)]
fn inside<T: Scalar>(bd: &[T; 4], px: T, py: T) -> bool {
    px >= bd[0] && px <= bd[2] && py >= bd[1] && py <= bd[3]
}

/// α of splat `k` at pixel centre `(px, py)` and the pieces the backward
/// pass needs: `(α, d.x, d.y, exp(−q/2), clamped)`; `None` when skipped.
#[inline(always)]
fn alpha_at<T: Scalar>(s: &Splats<'_, T>, k: usize, px: T, py: T) -> Option<(T, T, T, T, bool)> {
    if !inside(&s.bounds[k], px, py) {
        return None;
    }
    let m = s.means[k];
    let [a, b, c] = s.conics[k];
    let dx = px - m[0];
    let dy = py - m[1];
    let half = T::from_f64(0.5);
    let q = a * dx * dx + (b + b) * dx * dy + c * dy * dy;
    let w = (-(half * q)).exp();
    let raw = s.opacities[k] * w;
    let (alpha, clamped) = match s.blend {
        Blend::Over if raw > T::from_f64(ALPHA_MAX) => (T::from_f64(ALPHA_MAX), true),
        _ => (raw, false),
    };
    // a NaN α is skipped too
    if matches!(
        alpha.partial_cmp(&T::from_f64(ALPHA_MIN)),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    ) {
        Some((alpha, dx, dy, w, clamped))
    } else {
        None
    }
}

/// Renders the splats: the forward pass.
///
/// ```
/// use splat::raster::{forward, opacity_aware_bound, Blend, Splats};
/// let means = [[8.0, 8.0]];
/// let conics = [[0.1, 0.0, 0.1]];
/// let bounds = [opacity_aware_bound(means[0], conics[0], 0.9)];
/// let s = Splats { width: 16, height: 16, channels: 1, means: &means,
///     conics: &conics, opacities: &[0.9], colors: &[1.0], bounds: &bounds,
///     order: &[0], background: &[0.0], blend: Blend::Over };
/// let r = forward(&s).unwrap();
/// // pixel (7, 7) has its centre at (7.5, 7.5): q = 0.1·0.25·2, α = 0.9·e^(−q/2)
/// assert!((r.image[7 * 16 + 7] - 0.9 * (-0.025f64).exp()).abs() < 1e-12);
/// ```
pub fn forward<T: Scalar>(s: &Splats<'_, T>) -> Result<Rendered<T>, RasterError> {
    s.validate()?;
    let tiles = bin_tiles(s);
    let (w, h, ch) = (s.width, s.height, s.channels);
    let mut image = vec![T::zero(); w * h * ch];
    let mut final_t = vec![T::one(); w * h];
    let mut last = vec![0u32; w * h];
    // one tile row at a time: each band owns whole image rows
    let band = TILE * w;
    image
        .par_chunks_mut(band * ch)
        .zip(final_t.par_chunks_mut(band))
        .zip(last.par_chunks_mut(band))
        .enumerate()
        .for_each(|(ty, ((img, tt), ll))| {
            let mut acc = vec![T::zero(); ch];
            for tx in 0..tiles.tiles_x {
                let t = ty * tiles.tiles_x + tx;
                let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
                let i_end = ((ty + 1) * TILE).min(h);
                let j_end = ((tx + 1) * TILE).min(w);
                for i in ty * TILE..i_end {
                    let py = T::from_f64(i as f64 + 0.5);
                    for j in tx * TILE..j_end {
                        let px = T::from_f64(j as f64 + 0.5);
                        let local = (i - ty * TILE) * w + j;
                        let (tf, lst) = render_pixel(s, list, px, py, &mut acc);
                        for c in 0..ch {
                            img[local * ch + c] = acc[c] + tf * s.background[c];
                        }
                        tt[local] = tf;
                        ll[local] = lst;
                    }
                }
            }
        });
    Ok(Rendered {
        image,
        final_t,
        last,
        tiles,
    })
}

/// Composites one pixel: fills `acc` with `Σ c α T` and returns
/// `(T_final, last)`.
#[inline(always)]
fn render_pixel<T: Scalar>(
    s: &Splats<'_, T>,
    list: &[u32],
    px: T,
    py: T,
    acc: &mut [T],
) -> (T, u32) {
    let ch = s.channels;
    acc.iter_mut().for_each(|a| *a = T::zero());
    let mut t = T::one();
    let mut last = 0u32;
    let t_min = T::from_f64(T_MIN);
    for (pos, &k) in list.iter().enumerate() {
        let k = k as usize;
        let Some((alpha, ..)) = alpha_at(s, k, px, py) else {
            continue;
        };
        let col = &s.colors[k * ch..(k + 1) * ch];
        match s.blend {
            Blend::Over => {
                let next = t * (T::one() - alpha);
                if next < t_min {
                    break;
                }
                let wgt = alpha * t;
                for c in 0..ch {
                    acc[c] += col[c] * wgt;
                }
                t = next;
            }
            Blend::Sum => {
                for c in 0..ch {
                    acc[c] += col[c] * alpha;
                }
            }
        }
        last = pos as u32 + 1;
    }
    (t, last)
}

/// The backward pass: gradients of the loss with respect to the splats,
/// given `∂L/∂image` (`height × width × channels`) and optionally
/// `∂L/∂alpha` per pixel (`alpha = 1 − T_final`; ignored for
/// [`Blend::Sum`]). `r` must be the forward pass of the same `s`.
pub fn backward<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
) -> Result<SplatGrads<T>, RasterError> {
    s.validate()?;
    let (w, h, ch) = (s.width, s.height, s.channels);
    let n = s.len();
    if d_image.len() != w * h * ch {
        return Err(RasterError::Length {
            what: "d_image",
            got: d_image.len(),
            expected: w * h * ch,
        });
    }
    if let Some(da) = d_alpha {
        if da.len() != w * h {
            return Err(RasterError::Length {
                what: "d_alpha",
                got: da.len(),
                expected: w * h,
            });
        }
    }
    let tiles = &r.tiles;
    let n_tiles = tiles.tiles_x * tiles.tiles_y;
    // per-splat gradient record: mean (2), conic (3), opacity (1), colour (C)
    let stride = 6 + ch;
    // each tile: a gradient buffer aligned with its list
    let per_tile: Vec<Vec<T>> = (0..n_tiles)
        .into_par_iter()
        .map(|t| {
            let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
            let mut g = vec![T::zero(); list.len() * stride];
            if list.is_empty() {
                return g;
            }
            let (ty, tx) = (t / tiles.tiles_x, t % tiles.tiles_x);
            let mut behind = vec![T::zero(); ch];
            for i in ty * TILE..((ty + 1) * TILE).min(h) {
                let py = T::from_f64(i as f64 + 0.5);
                for j in tx * TILE..((tx + 1) * TILE).min(w) {
                    let px = T::from_f64(j as f64 + 0.5);
                    let p = i * w + j;
                    let gp = &d_image[p * ch..(p + 1) * ch];
                    let ga = d_alpha.map_or(T::zero(), |d| d[p]);
                    backward_pixel(
                        s,
                        list,
                        r.last[p],
                        r.final_t[p],
                        px,
                        py,
                        gp,
                        ga,
                        &mut behind,
                        &mut g,
                    );
                }
            }
            g
        })
        .collect();
    // deterministic reduction in tile order
    let mut out = SplatGrads {
        means: vec![[T::zero(); 2]; n],
        conics: vec![[T::zero(); 3]; n],
        opacities: vec![T::zero(); n],
        colors: vec![T::zero(); n * ch],
    };
    for (t, g) in per_tile.iter().enumerate() {
        let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
        for (pos, &k) in list.iter().enumerate() {
            let k = k as usize;
            let e = &g[pos * stride..(pos + 1) * stride];
            out.means[k][0] += e[0];
            out.means[k][1] += e[1];
            out.conics[k][0] += e[2];
            out.conics[k][1] += e[3];
            out.conics[k][2] += e[4];
            out.opacities[k] += e[5];
            for c in 0..ch {
                out.colors[k * ch + c] += e[6 + c];
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_pixel<T: Scalar>(
    s: &Splats<'_, T>,
    list: &[u32],
    last: u32,
    t_final: T,
    px: T,
    py: T,
    gp: &[T],
    ga: T,
    behind: &mut [T],
    g: &mut [T],
) {
    let ch = s.channels;
    let stride = 6 + ch;
    let half = T::from_f64(0.5);
    // colour behind the current splat, including the background
    for (b, &bg) in behind.iter_mut().zip(s.background) {
        *b = match s.blend {
            Blend::Over => t_final * bg,
            Blend::Sum => T::zero(),
        };
    }
    let mut t = t_final;
    for pos in (0..last as usize).rev() {
        let k = list[pos] as usize;
        let Some((alpha, dx, dy, wexp, clamped)) = alpha_at(s, k, px, py) else {
            continue;
        };
        let col = &s.colors[k * ch..(k + 1) * ch];
        let e = &mut g[pos * stride..(pos + 1) * stride];
        let d_alpha = match s.blend {
            Blend::Over => {
                let one_m = T::one() - alpha;
                t /= one_m;
                let wgt = alpha * t;
                let mut da = T::zero();
                for c in 0..ch {
                    e[6 + c] += gp[c] * wgt;
                    da += gp[c] * (col[c] * t - behind[c] / one_m);
                    behind[c] += col[c] * wgt;
                }
                // alpha_final = 1 − T_final; ∂T_final/∂α = −T_final/(1 − α)
                da + ga * t_final / one_m
            }
            Blend::Sum => {
                let mut da = T::zero();
                for c in 0..ch {
                    e[6 + c] += gp[c] * alpha;
                    da += gp[c] * col[c];
                }
                da
            }
        };
        if clamped {
            continue;
        }
        // α = o · w, w = exp(−q/2)
        e[5] += d_alpha * wexp;
        let dq = -(half * d_alpha * s.opacities[k] * wexp);
        let [a, b, c] = s.conics[k];
        e[2] += dq * dx * dx;
        e[3] += dq * (dx * dy + dx * dy);
        e[4] += dq * dy * dy;
        // d = p − m
        e[0] -= dq * ((a * dx + b * dy) + (a * dx + b * dy));
        e[1] -= dq * ((b * dx + c * dy) + (b * dx + c * dy));
    }
}

/// Rasterization as one custom operation on a tape.
///
/// Inputs (all `Var`s on `tape`): `means` (`2N`, x y per splat), `conics`
/// (`3N`), `opacities` (`N`), `colors` (`C·N`). The bounds, order and
/// background are constants in `spec` (its slices for those fields are used;
/// its value slices are ignored and taken from the `Var`s). Returns the image
/// (`H·W·C` vars) and, when `with_alpha`, the per-pixel alpha (`H·W` vars,
/// `1 − T_final`) as one op.
#[allow(clippy::too_many_arguments)]
pub fn rasterize_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    width: usize,
    height: usize,
    channels: usize,
    means: &[Var<'t, T>],
    conics: &[Var<'t, T>],
    opacities: &[Var<'t, T>],
    colors: &[Var<'t, T>],
    bounds: Vec<[T; 4]>,
    order: Vec<u32>,
    background: Vec<T>,
    blend: Blend,
    with_alpha: bool,
) -> Result<RasterOutput<'t, T>, RasterError> {
    let n = opacities.len();
    let owned = OwnedSplats {
        width,
        height,
        channels,
        means: pairs(means),
        conics: triples(conics),
        opacities: opacities.iter().map(|v| v.value()).collect(),
        colors: colors.iter().map(|v| v.value()).collect(),
        bounds,
        order,
        background,
        blend,
    };
    if owned.means.len() != n || means.len() != 2 * n {
        return Err(RasterError::Length {
            what: "means",
            got: means.len(),
            expected: 2 * n,
        });
    }
    if conics.len() != 3 * n {
        return Err(RasterError::Length {
            what: "conics",
            got: conics.len(),
            expected: 3 * n,
        });
    }
    let fwd = forward(&owned.view())?;
    let pixels = width * height;
    let mut outputs = fwd.image.clone();
    if with_alpha {
        outputs.extend(fwd.final_t.iter().map(|&t| T::one() - t));
    }
    let mut inputs = Vec::with_capacity(6 * n + colors.len());
    inputs.extend_from_slice(means);
    inputs.extend_from_slice(conics);
    inputs.extend_from_slice(opacities);
    inputs.extend_from_slice(colors);
    let state = Arc::new((owned, fwd));
    let st = Arc::clone(&state);
    let n_img = pixels * channels;
    let outs = tape.custom_op("rasterize", &inputs, outputs, move |gy, gx| {
        let (owned, fwd) = &*st;
        let s = owned.view();
        let d_alpha = if with_alpha { Some(&gy[n_img..]) } else { None };
        let g = backward(&s, fwd, &gy[..n_img], d_alpha).expect("shapes checked in forward");
        for k in 0..n {
            gx[2 * k] += g.means[k][0];
            gx[2 * k + 1] += g.means[k][1];
            for c in 0..3 {
                gx[2 * n + 3 * k + c] += g.conics[k][c];
            }
            gx[5 * n + k] += g.opacities[k];
        }
        for (dst, src) in gx[6 * n..].iter_mut().zip(&g.colors) {
            *dst += *src;
        }
    });
    let (image, alpha) = if with_alpha {
        let (a, b) = outs.split_at(n_img);
        (a.to_vec(), b.to_vec())
    } else {
        (outs, Vec::new())
    };
    Ok(RasterOutput {
        image,
        alpha,
        last: state.1.last.clone(),
    })
}

fn pairs<T: Scalar>(v: &[Var<'_, T>]) -> Vec<[T; 2]> {
    v.chunks_exact(2)
        .map(|p| [p[0].value(), p[1].value()])
        .collect()
}

fn triples<T: Scalar>(v: &[Var<'_, T>]) -> Vec<[T; 3]> {
    v.chunks_exact(3)
        .map(|p| [p[0].value(), p[1].value(), p[2].value()])
        .collect()
}

/// What [`rasterize_op`] returns.
#[derive(Debug)]
pub struct RasterOutput<'t, T: Scalar> {
    /// The image, `H·W·C` vars, row-major, channels last.
    pub image: Vec<Var<'t, T>>,
    /// Per-pixel alpha `1 − T_final` (empty unless asked for).
    pub alpha: Vec<Var<'t, T>>,
    /// Per pixel, one past the list position of its last contributor (0:
    /// no splat reached it).
    pub last: Vec<u32>,
}

/// Owned copies of a [`Splats`] description (what the custom op keeps for
/// its backward pass).
#[derive(Clone, Debug)]
pub struct OwnedSplats<T> {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Channels.
    pub channels: usize,
    /// Means in pixels.
    pub means: Vec<[T; 2]>,
    /// Conics.
    pub conics: Vec<[T; 3]>,
    /// Opacities.
    pub opacities: Vec<T>,
    /// Colours, `channels` per splat.
    pub colors: Vec<T>,
    /// Bounds.
    pub bounds: Vec<[T; 4]>,
    /// Front-to-back order.
    pub order: Vec<u32>,
    /// Background.
    pub background: Vec<T>,
    /// Blend mode.
    pub blend: Blend,
}

impl<T: Scalar> OwnedSplats<T> {
    /// A borrowed view for [`forward`] and [`backward`].
    pub fn view(&self) -> Splats<'_, T> {
        Splats {
            width: self.width,
            height: self.height,
            channels: self.channels,
            means: &self.means,
            conics: &self.conics,
            opacities: &self.opacities,
            colors: &self.colors,
            bounds: &self.bounds,
            order: &self.order,
            background: &self.background,
            blend: self.blend,
        }
    }
}
