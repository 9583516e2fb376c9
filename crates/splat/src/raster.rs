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
    /// Per splat (indexed like the splat slices), the covered pixels
    /// `[j_min, i_min, j_max, i_max]` (inclusive), see [`pixel_rect`].
    pub rects: Vec<Option<[u32; 4]>>,
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

/// The pixels a bound covers, as inclusive index ranges
/// `[j_min, i_min, j_max, i_max]` clipped to the image: pixel `(i, j)` is
/// covered when its centre `(j + 0.5, i + 0.5)` lies in the box, i.e.
/// `j ∈ [⌈x_min − ½⌉, ⌊x_max − ½⌋]` (computed in f64). `None` when empty.
pub fn pixel_rect<T: Scalar>(bound: &[T; 4], width: usize, height: usize) -> Option<[u32; 4]> {
    let (x0, y0, x1, y1) = (
        bound[0].to_f64() - 0.5,
        bound[1].to_f64() - 0.5,
        bound[2].to_f64() - 0.5,
        bound[3].to_f64() - 0.5,
    );
    if !(x0 <= x1 && y0 <= y1) || width == 0 || height == 0 {
        return None;
    }
    let j0 = x0.ceil().max(0.0);
    let i0 = y0.ceil().max(0.0);
    let j1 = x1.floor().min(width as f64 - 1.0);
    let i1 = y1.floor().min(height as f64 - 1.0);
    if !(j0 <= j1 && i0 <= i1) {
        return None;
    }
    Some([j0 as u32, i0 as u32, j1 as u32, i1 as u32])
}

/// Bins the splats into 16×16 tiles, keeping `order` within each tile.
pub fn bin_tiles<T: Scalar>(s: &Splats<'_, T>) -> TileLists {
    let tiles_x = s.width.div_ceil(TILE);
    let tiles_y = s.height.div_ceil(TILE);
    let n_tiles = tiles_x * tiles_y;
    let rects: Vec<Option<[u32; 4]>> = s
        .bounds
        .iter()
        .map(|b| pixel_rect(b, s.width, s.height))
        .collect();
    let tile_range = |k: u32| {
        rects[k as usize].map(|r| {
            [
                r[0] as usize / TILE,
                r[1] as usize / TILE,
                r[2] as usize / TILE,
                r[3] as usize / TILE,
            ]
        })
    };
    let mut counts = vec![0u32; n_tiles + 1];
    for &k in s.order {
        if let Some(r) = tile_range(k) {
            for ty in r[1]..=r[3] {
                for tx in r[0]..=r[2] {
                    counts[ty * tiles_x + tx] += 1;
                }
            }
        }
    }
    let mut offsets = vec![0u32; n_tiles + 1];
    for t in 0..n_tiles {
        offsets[t + 1] = offsets[t] + counts[t];
    }
    let mut fill: Vec<u32> = offsets[..n_tiles].to_vec();
    let mut ids = vec![0u32; offsets[n_tiles] as usize];
    for &k in s.order {
        if let Some(r) = tile_range(k) {
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
        rects,
    }
}

/// The part of a splat's pixel rectangle inside tile `(tx, ty)`, as
/// half-open local ranges `(i0, i1, j0, j1)` (rows, columns, in image
/// pixels).
#[inline(always)]
fn clip_to_tile(
    r: [u32; 4],
    tx: usize,
    ty: usize,
    w: usize,
    h: usize,
) -> (usize, usize, usize, usize) {
    let j0 = (r[0] as usize).max(tx * TILE);
    let j1 = (r[2] as usize + 1).min((tx + 1) * TILE).min(w);
    let i0 = (r[1] as usize).max(ty * TILE);
    let i1 = (r[3] as usize + 1).min((ty + 1) * TILE).min(h);
    (i0, i1, j0, j1)
}

/// A `q` beyond which `o · exp(−q/2) < 1/255` for certain: `2 ln(255 o)`
/// plus a margin far above rounding, so the cut never drops a splat the α
/// test would keep.
#[inline(always)]
fn q_cut<T: Scalar>(opacity: T) -> T {
    let o = opacity.to_f64();
    let q = 2.0 * (o / ALPHA_MIN).ln();
    if q.is_nan() {
        // NaN opacity: skipped by the α test anyway
        T::from_f64(f64::INFINITY)
    } else {
        T::from_f64(q + 1e-4 * (1.0 + q.abs()))
    }
}

/// α of splat `k` at pixel centre `(px, py)` and the pieces the backward
/// pass needs: `(α, d.x, d.y, exp(−q/2), clamped)`; `None` when skipped.
/// The caller has already checked that the pixel is in the splat's rect.
/// `q_cut` comes from [`q_cut`].
#[inline(always)]
fn alpha_at<T: Scalar>(
    s: &Splats<'_, T>,
    k: usize,
    px: T,
    py: T,
    q_cut: T,
) -> Option<(T, T, T, T, bool)> {
    let m = s.means[k];
    let [a, b, c] = s.conics[k];
    let dx = px - m[0];
    let dy = py - m[1];
    let half = T::from_f64(0.5);
    let q = a * dx * dx + (b + b) * dx * dy + c * dy * dy;
    // beyond q_cut, α < 1/255 for sure: skip without the exponential
    if q > q_cut {
        return None;
    }
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
    if w == 0 || h == 0 {
        return Ok(Rendered {
            image,
            final_t,
            last,
            tiles,
        });
    }
    let t_min = T::from_f64(T_MIN);
    // one tile row at a time: each band owns whole image rows
    let band = TILE * w;
    image
        .par_chunks_mut(band * ch)
        .zip(final_t.par_chunks_mut(band))
        .zip(last.par_chunks_mut(band))
        .enumerate()
        .for_each(|(ty, ((img, tt), ll))| {
            // tile-local state, splat-major within the tile: each splat
            // visits only the pixels of its rectangle, in list order, so
            // every pixel still composites front to back
            let mut acc = vec![T::zero(); TILE * TILE * ch];
            let mut tr = [T::one(); TILE * TILE];
            let mut lst = [0u32; TILE * TILE];
            let mut done = [false; TILE * TILE];
            for tx in 0..tiles.tiles_x {
                let t = ty * tiles.tiles_x + tx;
                let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
                acc.iter_mut().for_each(|v| *v = T::zero());
                tr.iter_mut().for_each(|v| *v = T::one());
                lst.iter_mut().for_each(|v| *v = 0);
                done.iter_mut().for_each(|v| *v = false);
                let i_base = ty * TILE;
                let j_base = tx * TILE;
                let n_pix =
                    (((ty + 1) * TILE).min(h) - i_base) * (((tx + 1) * TILE).min(w) - j_base);
                let mut n_done = 0;
                for (pos, &k) in list.iter().enumerate() {
                    let k = k as usize;
                    let r = tiles.rects[k].expect("listed splats have a rect");
                    let (i0, i1, j0, j1) = clip_to_tile(r, tx, ty, w, h);
                    let col = &s.colors[k * ch..(k + 1) * ch];
                    let qc = q_cut(s.opacities[k]);
                    for i in i0..i1 {
                        let py = T::from_f64(i as f64 + 0.5);
                        for j in j0..j1 {
                            let l = (i - i_base) * TILE + (j - j_base);
                            if done[l] {
                                continue;
                            }
                            let px = T::from_f64(j as f64 + 0.5);
                            let Some((alpha, ..)) = alpha_at(s, k, px, py, qc) else {
                                continue;
                            };
                            let a = &mut acc[l * ch..(l + 1) * ch];
                            match s.blend {
                                Blend::Over => {
                                    let next = tr[l] * (T::one() - alpha);
                                    if next < t_min {
                                        done[l] = true;
                                        n_done += 1;
                                        continue;
                                    }
                                    let wgt = alpha * tr[l];
                                    for c in 0..ch {
                                        a[c] += col[c] * wgt;
                                    }
                                    tr[l] = next;
                                }
                                Blend::Sum => {
                                    for c in 0..ch {
                                        a[c] += col[c] * alpha;
                                    }
                                }
                            }
                            lst[l] = pos as u32 + 1;
                        }
                    }
                    if n_done == n_pix {
                        break;
                    }
                }
                for i in i_base..((ty + 1) * TILE).min(h) {
                    for j in j_base..((tx + 1) * TILE).min(w) {
                        let l = (i - i_base) * TILE + (j - j_base);
                        let g = (i - i_base) * w + j;
                        for c in 0..ch {
                            img[g * ch + c] = acc[l * ch + c] + tr[l] * s.background[c];
                        }
                        tt[g] = tr[l];
                        ll[g] = lst[l];
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
    let half = T::from_f64(0.5);
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
            let (i_base, j_base) = (ty * TILE, tx * TILE);
            // per-pixel state of the backward walk: T and the colour behind
            let mut tr = [T::one(); TILE * TILE];
            let mut behind = vec![T::zero(); TILE * TILE * ch];
            let mut lst = [0u32; TILE * TILE];
            let mut max_last = 0u32;
            for i in i_base..((ty + 1) * TILE).min(h) {
                for j in j_base..((tx + 1) * TILE).min(w) {
                    let l = (i - i_base) * TILE + (j - j_base);
                    let p = i * w + j;
                    tr[l] = r.final_t[p];
                    lst[l] = r.last[p];
                    max_last = max_last.max(r.last[p]);
                    if s.blend == Blend::Over {
                        for c in 0..ch {
                            behind[l * ch + c] = r.final_t[p] * s.background[c];
                        }
                    }
                }
            }
            let mut e = vec![T::zero(); stride];
            for pos in (0..max_last as usize).rev() {
                let k = list[pos] as usize;
                let rect = tiles.rects[k].expect("listed splats have a rect");
                let (i0, i1, j0, j1) = clip_to_tile(rect, tx, ty, w, h);
                let col = &s.colors[k * ch..(k + 1) * ch];
                let [ca, cb, cc] = s.conics[k];
                let op = s.opacities[k];
                let qc = q_cut(op);
                e.iter_mut().for_each(|v| *v = T::zero());
                // geometric gradients in locals (registers), colours in `e`
                let (mut g_mx, mut g_my, mut g_a, mut g_b, mut g_c, mut g_o) = (
                    T::zero(),
                    T::zero(),
                    T::zero(),
                    T::zero(),
                    T::zero(),
                    T::zero(),
                );
                for i in i0..i1 {
                    let py = T::from_f64(i as f64 + 0.5);
                    for j in j0..j1 {
                        let l = (i - i_base) * TILE + (j - j_base);
                        if pos as u32 >= lst[l] {
                            continue;
                        }
                        let px = T::from_f64(j as f64 + 0.5);
                        let Some((alpha, dx, dy, wexp, clamped)) = alpha_at(s, k, px, py, qc)
                        else {
                            continue;
                        };
                        let p = i * w + j;
                        let gp = &d_image[p * ch..(p + 1) * ch];
                        let bh = &mut behind[l * ch..(l + 1) * ch];
                        let d_a = match s.blend {
                            Blend::Over => {
                                // 1 − α ≥ 0.01, so the division is well conditioned
                                let inv = T::one() / (T::one() - alpha);
                                let t = tr[l] * inv;
                                tr[l] = t;
                                let wgt = alpha * t;
                                let mut da = T::zero();
                                for c in 0..ch {
                                    e[6 + c] += gp[c] * wgt;
                                    da += gp[c] * (col[c] * t - bh[c] * inv);
                                    bh[c] += col[c] * wgt;
                                }
                                // alpha_final = 1 − T_final; ∂T_final/∂α = −T_final/(1 − α)
                                match d_alpha {
                                    Some(dal) => da + dal[p] * r.final_t[p] * inv,
                                    None => da,
                                }
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
                        g_o += d_a * wexp;
                        let dq = -(half * d_a * op * wexp);
                        g_a += dq * dx * dx;
                        g_b += dq * (dx * dy + dx * dy);
                        g_c += dq * dy * dy;
                        // d = p − m
                        g_mx -= dq * ((ca * dx + cb * dy) + (ca * dx + cb * dy));
                        g_my -= dq * ((cb * dx + cc * dy) + (cb * dx + cc * dy));
                    }
                }
                e[..6].copy_from_slice(&[g_mx, g_my, g_a, g_b, g_c, g_o]);
                g[pos * stride..(pos + 1) * stride].copy_from_slice(&e);
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
