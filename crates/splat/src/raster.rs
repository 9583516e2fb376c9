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
//! The rules of [`Blend::Over`] are those of the reference rasterizers
//! (the original 3DGS CUDA rasterizer, `forward.cu`/`backward.cu`, and
//! gsplat's tile rasterizer), and each is kept here:
//!
//! - **Coverage: exactly the pixels where `α ≥ 1/255`.** Both reference
//!   kernels skip a splat at a pixel when `o · exp(−q/2)` (capped) is below
//!   1/255. Neither cuts at a per-pixel box: the original bins each splat
//!   into the tiles of the square `mean ± ⌈3 √λ_max⌉` (`auxiliary.h`'s
//!   `getRect`), gsplat into those of its opacity-aware box
//!   `mean ± ⌈√(2 ln(255 o)) · σ_axis⌉` (its projection kernel), which holds
//!   the whole `α ≥ 1/255` region. Here a splat's `bounds` box is a binning
//!   and skipping aid that the caller makes conservative with
//!   [`opacity_aware_bound`] (gsplat's box before rounding up, a hair
//!   wider), so the box test never removes a pixel the α test keeps and
//!   the image is exactly the untiled per-pixel rule.
//! - **Cap `α ≤ 0.99`** ([`ALPHA_MAX`], the original's `min(0.99f, …)`;
//!   gsplat caps at 0.999), so `1 − α ≥ 0.01` and the backward pass can
//!   recover `T` by division.
//! - **Stop before `T < 1e-4`** ([`T_MIN`]): as in both, a pixel stops at
//!   the first splat that would bring its transmittance below `1e-4`;
//!   that splat and all later ones are left out.
//! - `q ≤ 0` is not skipped separately (the original's `power > 0` test):
//!   for a positive definite conic it only happens at the centre.
//! - Pixel centres at `(j + 0.5, i + 0.5)` (gsplat; the original gets the
//!   same by shifting means by −½ in `ndc2Pix`).
//!
//! Because the bound test never cuts, the tiling is only an acceleration:
//! the output does not depend on tile size.
//!
//! [`Blend::Sum`] is the order-free accumulated sum of GaussianImage:
//! `C = Σ c_k α_k + background`, `α = o · exp(−q/2)` (no clamp, no
//! transmittance; still skipped below 1/255).
//!
//! The backward pass walks each pixel's list back to front from its last
//! contributor, recovering `T_k = T_{k+1} / (1 − α_k)` by division and
//! carrying the colour accumulated behind, so it stores nothing per step.
//! A splat whose rectangle in a tile is at most 8 columns wide has two of
//! its rows walked as one 16-lane block (their half rows copied side by
//! side). Its gradient sums are per lane and summed over the lanes once
//! per splat, in a fixed order.
//! Tiles run in parallel (rayon) in both passes. In the backward pass
//! each tile writes its gradients into its part of one record buffer,
//! aligned with its list, and the records are reduced into the per-splat
//! gradients in tile order, so results are deterministic.
//!
//! Binning lists a splat only in the tiles of its box where some pixel
//! centre of its rectangle may have `q ≤ q_cut` (an exact test on the
//! clipped rectangle, with a rounding margin): the other tiles' pixels
//! would all skip it.
//!
//! Both passes draw a tile splat by splat: the splats are gathered 32 at a
//! time into a packed buffer, and each row of a splat's rectangle is one
//! branch-free block of 16 lanes (a tile row) that the compiler vectorises;
//! an AVX2 or AVX-512 build of the loops is chosen at run time (AVX-512
//! for the forward pass only, where it was faster). Rows of the rectangle
//! where the ellipse misses the tile's pixel centres are skipped by a
//! conservative test, so skipping changes nothing. The exponential is
//! [`Scalar::exp_fast`] (for `f32` a polynomial within 2 ulp; for `f64` the
//! library's), and every lane does the same operations in the same order
//! on every path, so the forward and backward passes agree on which splats
//! each pixel kept, and the output does not depend on the CPU's vector
//! width or the thread count.

use chainrule::{Scalar, Tape, Var};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

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
#[derive(Clone, Debug, Default)]
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
#[derive(Clone, Debug, Default, PartialEq)]
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
/// `q ≤ 2 ln(255 · o)` (about 3.33σ for opacity 1, smaller for faint
/// splats), as `(x_min, y_min, x_max, y_max)`. This is gsplat's
/// opacity-aware box (`√(2 ln(o / (1/255)))` standard deviations per axis)
/// before its rounding up to whole pixels, widened by a relative 1e-9 so
/// that rounding never drops a pixel the α test keeps. The uncapped
/// opacity is used: near the edge of the region `α` is far below the 0.99
/// cap. With this bound the box test never removes a contribution the α
/// threshold would keep, so the image is exactly the untiled one. Returns
/// an empty box when the splat can never reach the threshold or its conic
/// is not positive definite.
pub fn opacity_aware_bound<T: Scalar>(mean: [T; 2], conic: [T; 3], opacity: T) -> [T; 4] {
    let empty = [T::one(), T::one(), T::zero(), T::zero()];
    let qmax = 2.0 * (opacity.to_f64() / ALPHA_MIN).ln();
    bound_for_q(mean, conic, qmax).unwrap_or(empty)
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
///
/// The splats' rectangles are computed in parallel; the counting sort
/// into tiles is one sequential pass over them in `order`.
pub fn bin_tiles<T: Scalar>(s: &Splats<'_, T>) -> TileLists {
    let mut out = TileLists::default();
    bin_tiles_into(s, &mut out, &mut RasterScratch::default());
    out
}

/// Buffers the rasterizer reuses from one call to the next (what a trainer
/// keeps so that an iteration allocates nothing): the packed splats, the
/// binning's scratch, the forward pass's tile planes and the backward
/// pass's per-entry gradient records. Their contents between calls mean
/// nothing; every call overwrites what it reads.
#[derive(Default)]
pub(crate) struct RasterScratch<T> {
    packed: Vec<Packed<T>>,
    ranges: Vec<([u32; 4], u64)>,
    fill: Vec<u32>,
    planes: Vec<T>,
    lasts: Vec<u32>,
    records: Vec<T>,
    fwd_states: PerThread<TileState<T>>,
    back_states: PerThread<BackTile<T>>,
}

/// One tile state per worker thread of the pool a loop runs in, kept
/// between calls. A state is reset at the start of every tile, so which
/// thread draws a tile changes nothing (the same holds for the per-task
/// states of `for_each_init`, which this replaces to allocate nothing).
struct PerThread<S> {
    channels: usize,
    states: Vec<Mutex<S>>,
}

impl<S> Default for PerThread<S> {
    fn default() -> Self {
        PerThread {
            channels: 0,
            states: Vec::new(),
        }
    }
}

impl<S: Send> PerThread<S> {
    /// The states for `channels` channels, one per thread of the current
    /// pool at least.
    fn prepare(&mut self, channels: usize, new: impl Fn(usize) -> S) -> &[Mutex<S>] {
        if self.channels != channels {
            self.states.clear();
            self.channels = channels;
        }
        let n = rayon::current_num_threads().max(1);
        while self.states.len() < n {
            self.states.push(Mutex::new(new(channels)));
        }
        &self.states
    }
}

/// Runs `f` with the calling worker thread's state from `states`.
fn with_state<S, R>(states: &[Mutex<S>], f: impl FnOnce(&mut S) -> R) -> R {
    let i = rayon::current_thread_index().unwrap_or(0) % states.len();
    let mut st = states[i].lock().unwrap_or_else(|e| e.into_inner());
    f(&mut st)
}

impl<T> RasterScratch<T> {
    /// Swaps the buffer of the backward pass's records with `buf`: a
    /// caller whose buffer is dead while the records are alive (and the
    /// records while it is) keeps one allocation for both by swapping
    /// before and after [`backward_into`].
    pub(crate) fn swap_records(&mut self, buf: &mut Vec<T>) {
        std::mem::swap(&mut self.records, buf);
    }
}

impl<T> std::fmt::Debug for RasterScratch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RasterScratch").finish_non_exhaustive()
    }
}

/// [`bin_tiles`] into `out`, reusing its vectors and `sc`'s.
pub(crate) fn bin_tiles_into<T: Scalar>(
    s: &Splats<'_, T>,
    out: &mut TileLists,
    sc: &mut RasterScratch<T>,
) {
    let tiles_x = s.width.div_ceil(TILE);
    let tiles_y = s.height.div_ceil(TILE);
    let rects = &mut out.rects;
    rects.clear();
    rects.par_extend(
        s.bounds
            .par_iter()
            .with_min_len(4096)
            .map(|b| pixel_rect(b, s.width, s.height)),
    );
    let rects = &*rects;
    // per position in `order`: the tile range [tx0, ty0, tx1, ty1] (empty
    // when ty0 > ty1), and which of its tiles the splat reaches
    let ranges = &mut sc.ranges;
    ranges.clear();
    ranges.par_extend(
        s.order
            .par_iter()
            .with_min_len(4096)
            .map(|&k| match rects[k as usize] {
                Some(r) => {
                    let t = [
                        r[0] / TILE as u32,
                        r[1] / TILE as u32,
                        r[2] / TILE as u32,
                        r[3] / TILE as u32,
                    ];
                    (t, reached_tiles(s, k as usize, r, t))
                }
                None => ([1, 1, 0, 0], 0),
            }),
    );
    let n_tiles = tiles_x * tiles_y;
    let offsets = &mut out.offsets;
    offsets.clear();
    offsets.resize(n_tiles + 1, 0);
    for (r, mask) in ranges.iter() {
        let mut bit = 0;
        for ty in r[1]..=r[3] {
            let row = ty as usize * tiles_x + 1;
            for tx in r[0]..=r[2] {
                offsets[row + tx as usize] += ((mask >> bit.min(63)) & 1) as u32;
                bit += 1;
            }
        }
    }
    for t in 0..n_tiles {
        offsets[t + 1] += offsets[t];
    }
    let fill = &mut sc.fill;
    fill.clear();
    fill.extend_from_slice(&offsets[..n_tiles]);
    let ids = &mut out.ids;
    // every entry is written below
    ids.resize(offsets[n_tiles] as usize, 0);
    for ((r, mask), &k) in ranges.iter().zip(s.order) {
        let mut bit = 0;
        for ty in r[1]..=r[3] {
            let row = ty as usize * tiles_x;
            for tx in r[0]..=r[2] {
                if (mask >> bit.min(63)) & 1 != 0 {
                    let f = &mut fill[row + tx as usize];
                    ids[*f as usize] = k;
                    *f += 1;
                }
                bit += 1;
            }
        }
    }
    out.tiles_x = tiles_x;
    out.tiles_y = tiles_y;
}

/// Which tiles of its tile range `t` splat `k` (pixel rectangle `r`)
/// reaches: a bit per tile, row by row, set where some pixel centre of the
/// rectangle's part in that tile may have `q ≤ q_cut` (see
/// [`rect_reaches`]). A tile it cannot reach would only skip it at every
/// pixel, so leaving it out of that tile's list changes no bit of the
/// image or the gradients. Only the tiles off the mean's tile row and
/// column are tested (where the box's corners are; a test costs more than
/// the rare tile it would leave out elsewhere), and only in ranges of at
/// most 63 tiles: the other bits are set.
fn reached_tiles<T: Scalar>(s: &Splats<'_, T>, k: usize, r: [u32; 4], t: [u32; 4]) -> u64 {
    let (nx, ny) = ((t[2] - t[0] + 1) as usize, (t[3] - t[1] + 1) as usize);
    if nx == 1 || ny == 1 || nx * ny > 63 {
        return u64::MAX;
    }
    let [a, b, c] = s.conics[k].map(|v| v.to_f64());
    let [mx, my] = s.means[k].map(|v| v.to_f64());
    let qc = q_cut(s.opacities[k]).to_f64();
    // the mean's tile (NaN or out of the image: none)
    let (mtx, mty) = ((mx / TILE as f64).floor(), (my / TILE as f64).floor());
    let mut mask = 0u64;
    let mut bit = 0;
    for ty in t[1] as usize..=t[3] as usize {
        for tx in t[0] as usize..=t[2] as usize {
            if (tx as f64 == mtx) | (ty as f64 == mty) {
                mask |= 1 << bit;
                bit += 1;
                continue;
            }
            let (i0, i1, j0, j1) = clip_to_tile(r, tx, ty, s.width, s.height);
            // pixel centres j + 0.5 for j in j0..j1, as offsets from the mean
            let x = [j0 as f64 + 0.5 - mx, j1 as f64 - 0.5 - mx];
            let y = [i0 as f64 + 0.5 - my, i1 as f64 - 0.5 - my];
            mask |= (rect_reaches([a, b, c], qc, x, y) as u64) << bit;
            bit += 1;
        }
    }
    mask
}

/// Whether `q = a x² + 2 b x y + c y² ≤ qc + margin` somewhere in the box
/// `x[0] ≤ x ≤ x[1]`, `y[0] ≤ y ≤ y[1]`: true unless the smallest `q` over
/// the box exceeds the cut by more than the row test's rounding margin (a
/// convex quadratic is smallest at its centre or, outside the box, on an
/// edge, where it is smallest at the clamped minimiser along the edge).
/// True whenever the conic is not positive definite or anything is not
/// finite.
fn rect_reaches(conic: [f64; 3], qc: f64, x: [f64; 2], y: [f64; 2]) -> bool {
    let [a, b, c] = conic;
    if !((a > 0.0) & (c > 0.0) & (a * c - b * b > 0.0)) {
        return true;
    }
    if (x[0] <= 0.0) & (x[1] >= 0.0) & (y[0] <= 0.0) & (y[1] >= 0.0) {
        return true;
    }
    let q = |x: f64, y: f64| a * x * x + 2.0 * b * x * y + c * y * y;
    // along a horizontal edge at y, the smallest q is at x = −b y / a
    // (multiplied by 1/a: the margin covers the rounding)
    let (ba, bc) = (-b / a, -b / c);
    let along_x = |y: f64| q((ba * y).max(x[0]).min(x[1]), y);
    let along_y = |x: f64| q(x, (bc * x).max(y[0]).min(y[1]));
    let qmin = along_x(y[0])
        .min(along_x(y[1]))
        .min(along_y(x[0]))
        .min(along_y(x[1]));
    let (xm, ym) = (x[0].abs().max(x[1].abs()), y[0].abs().max(y[1].abs()));
    let margin = 1e-5 * (a * xm * xm + (2.0 * b * xm * ym).abs() + c * ym * ym);
    // NaN anywhere: reached
    let beyond = qmin - qc > margin;
    !beyond
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

/// Per-pixel state of one tile in the forward pass.
///
/// The tile is drawn splat-major: each splat in list order visits the rows
/// of its rectangle, and each row is processed as one 16-lane block with no
/// branches inside (α, the skip tests and the compositing update are
/// selects), which the compiler vectorises. Pixels still composite front to
/// back, and each lane does exactly the operations of the per-pixel
/// formulation, so the result is the same bit for bit.
struct TileState<T> {
    /// Accumulated colour, channel-major: `acc[c · 256 + l]`.
    acc: Vec<T>,
    /// Transmittance per pixel.
    tr: [T; TILE * TILE],
    /// One past the list position of the last contributor per pixel.
    lst: [u32; TILE * TILE],
    /// Pixels that have stopped (the next splat would bring `T` below
    /// `T_MIN`): 1, else 0.
    done: [u32; TILE * TILE],
    /// Per tile row, a bit per column of `done`.
    done_rows: [u16; TILE],
    /// Scratch for the splats of one batch and their colours.
    batch: Vec<SplatRec<T>>,
    batch_cols: Vec<T>,
}

impl<T: Scalar> TileState<T> {
    fn new(ch: usize) -> Self {
        TileState {
            acc: vec![T::zero(); ch * TILE * TILE],
            tr: [T::one(); TILE * TILE],
            lst: [0; TILE * TILE],
            done: [0; TILE * TILE],
            done_rows: [0; TILE],
            batch: Vec::with_capacity(BATCH),
            batch_cols: Vec::with_capacity(BATCH * ch),
        }
    }

    /// Composites tile `(tx, ty)` into the state (reset first), built for
    /// the instruction set `simd` (which the caller has checked the CPU
    /// has). The code is the same on every path and uses no fused
    /// multiply-add, so every path gives the same bits.
    fn render(&mut self, inp: &FwdInput<'_, T>, tx: usize, ty: usize, simd: Simd) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `simd` names an instruction set the CPU supports.
            match simd {
                Simd::Avx512 => return unsafe { self.render_avx512(inp, tx, ty) },
                Simd::Avx2 => return unsafe { self.render_avx2(inp, tx, ty) },
                Simd::Generic => {}
            }
        }
        self.render_generic(inp, tx, ty);
    }

    /// [`TileState::render_generic`] compiled for AVX-512 (a tile row of
    /// 16 `f32` lanes in one register).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn render_avx512(&mut self, inp: &FwdInput<'_, T>, tx: usize, ty: usize) {
        self.render_generic(inp, tx, ty);
    }

    /// [`TileState::render_generic`] compiled for AVX2 (8 lanes of `f32`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn render_avx2(&mut self, inp: &FwdInput<'_, T>, tx: usize, ty: usize) {
        self.render_generic(inp, tx, ty);
    }

    #[inline(always)]
    fn render_generic(&mut self, inp: &FwdInput<'_, T>, tx: usize, ty: usize) {
        let FwdInput { s, tiles, packed } = *inp;
        let (w, h, ch) = (s.width, s.height, s.channels);
        self.acc.iter_mut().for_each(|v| *v = T::zero());
        self.tr = [T::one(); TILE * TILE];
        self.lst = [0; TILE * TILE];
        self.done = [0; TILE * TILE];
        self.done_rows = [0; TILE];
        let t = ty * tiles.tiles_x + tx;
        let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
        let (i_base, j_base) = (ty * TILE, tx * TILE);
        let n_pix = (((ty + 1) * TILE).min(h) - i_base) * (((tx + 1) * TILE).min(w) - j_base);
        let mut n_done = 0;
        let over = s.blend == Blend::Over;
        let (half, one) = (T::from_f64(0.5), T::one());
        let (a_max, a_min, t_min) = (
            T::from_f64(ALPHA_MAX),
            T::from_f64(ALPHA_MIN),
            T::from_f64(T_MIN),
        );
        // Blend::Sum never clamps: a cap no α exceeds
        let a_cap = if over {
            a_max
        } else {
            T::from_f64(f64::INFINITY)
        };
        let mut px = [T::zero(); TILE];
        for (jj, p) in px.iter_mut().enumerate() {
            *p = T::from_f64((j_base + jj) as f64 + 0.5);
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_cols = std::mem::take(&mut self.batch_cols);
        'list: for (chunk, ids) in list.chunks(BATCH).enumerate() {
            gather(&mut batch, &mut batch_cols, s, packed, ids, tx, ty);
            for (b, rec) in batch.iter().enumerate() {
                let pos = chunk * BATCH + b;
                if n_done == n_pix {
                    break 'list;
                }
                let (i0, i1) = (rec.rows[0] as usize, rec.rows[1] as usize);
                let (lo, hi) = (rec.lanes[0] as usize, rec.lanes[1] as usize);
                let cols = ((1u32 << hi) - (1u32 << lo)) as u16;
                let col = &batch_cols[b * ch..(b + 1) * ch];
                let m = rec.g.m;
                let [ca, cb, cc] = rec.g.conic;
                let b2 = cb + cb;
                let op = rec.g.op;
                let qc = rec.g.qc;
                let tag = pos as u32 + 1;
                let rt = RowTest::new(rec, &px);
                for i in i0..i1 {
                    let row = i - i_base;
                    if self.done_rows[row] & cols == cols {
                        continue;
                    }
                    let dy = T::from_f64(i as f64 + 0.5) - m[1];
                    if !rt.reaches(dy.to_f64()) {
                        continue;
                    }
                    let cdy = cc * dy * dy;
                    let base = row * TILE;
                    let mut stops = 0u32;
                    // fixed-size views: no bounds checks in the lane loops
                    let tr: &mut [T; GROUP] = lanes_mut(&mut self.tr, base);
                    let done: &mut [u32; GROUP] = lanes_mut(&mut self.done, base);
                    let lst: &mut [u32; GROUP] = lanes_mut(&mut self.lst, base);
                    // lane masks are integers, not bools, so that every
                    // array in the loops has 4- or 8-byte lanes and
                    // vectorises
                    let mut alpha = [T::zero(); GROUP];
                    let mut keep = [0u32; GROUP];
                    for jj in 0..GROUP {
                        // α as in the module docs; the forward and backward passes
                        // evaluate it with the same operations in the same order
                        let dx = px[jj] - m[0];
                        let q = ca * dx * dx + b2 * dx * dy + cdy;
                        let raw = op * (-(half * q)).exp_fast();
                        let a = if raw > a_cap { a_max } else { raw };
                        alpha[jj] = a;
                        keep[jj] =
                            ((jj >= lo) & (jj < hi) & (done[jj] == 0) & (q <= qc) & (a >= a_min))
                                as u32;
                    }
                    let mut wgt = [T::zero(); GROUP];
                    let mut hit = [0u32; GROUP];
                    if over {
                        for jj in 0..GROUP {
                            let f = one - alpha[jj];
                            let next = tr[jj] * f;
                            let k = keep[jj] != 0;
                            let stop = k & (next < t_min);
                            let take = k & !stop;
                            wgt[jj] = alpha[jj] * tr[jj];
                            // `T · 1` is exact: a multiply instead of a
                            // conditional store (slow as a masked store
                            // on some CPUs)
                            tr[jj] *= if take { f } else { one };
                            done[jj] |= stop as u32;
                            stops += stop as u32;
                            hit[jj] = take as u32;
                        }
                    } else {
                        wgt = alpha;
                        hit = keep;
                    }
                    // list positions only grow: a max, not a conditional store
                    for jj in 0..GROUP {
                        lst[jj] = lst[jj].max(if hit[jj] != 0 { tag } else { 0 });
                    }
                    for (c, &cv) in col.iter().enumerate() {
                        let a: &mut [T; GROUP] = lanes_mut(&mut self.acc, c * TILE * TILE + base);
                        // adding +0 leaves the sum unchanged (it is never −0)
                        for jj in 0..GROUP {
                            a[jj] += if hit[jj] != 0 {
                                cv * wgt[jj]
                            } else {
                                T::zero()
                            };
                        }
                    }
                    if stops > 0 {
                        n_done += stops as usize;
                        let mut bits = 0u16;
                        for (jj, &d) in self.done[base..base + TILE].iter().enumerate() {
                            bits |= ((d != 0) as u16) << jj;
                        }
                        self.done_rows[row] = bits;
                    }
                }
            }
        }
        self.batch = batch;
        self.batch_cols = batch_cols;
    }
}

/// Lanes processed together in [`TileState::render_generic`]: a whole
/// tile row. (Loops of 16 `f32` lanes vectorise; groups of 8 were unrolled
/// into scalar code instead.)
const GROUP: usize = TILE;

/// `v[at..at + HALF]` as an array.
#[inline(always)]
fn half_mut<U>(v: &mut [U], at: usize) -> &mut [U; HALF] {
    (&mut v[at..at + HALF]).try_into().expect("HALF lanes")
}

/// `v[at..at + HALF]` as an array.
#[inline(always)]
fn half_ref<U>(v: &[U], at: usize) -> &[U; HALF] {
    v[at..at + HALF].try_into().expect("HALF lanes")
}

/// `v[at..at + GROUP]` as an array.
#[inline(always)]
fn lanes_mut<U>(v: &mut [U], at: usize) -> &mut [U; GROUP] {
    (&mut v[at..at + GROUP]).try_into().expect("GROUP lanes")
}

/// Gathers the splats `ids` (of tile `(tx, ty)`) into `batch` and their
/// colours into `cols`: independent loads the CPU overlaps, instead of one
/// cache miss per splat inside the tile loops.
#[inline(always)]
fn gather<T: Scalar>(
    batch: &mut Vec<SplatRec<T>>,
    cols: &mut Vec<T>,
    s: &Splats<'_, T>,
    packed: &[Packed<T>],
    ids: &[u32],
    tx: usize,
    ty: usize,
) {
    let ch = s.channels;
    batch.clear();
    cols.clear();
    cols.resize(ids.len() * ch, T::zero());
    for (b, &k) in ids.iter().enumerate() {
        let k = k as usize;
        let p = &packed[k];
        let (i0, i1, j0, j1) = clip_to_tile(p.rect, tx, ty, s.width, s.height);
        batch.push(SplatRec {
            g: p.g,
            rows: [i0 as u32, i1 as u32],
            lanes: [(j0 - tx * TILE) as u32, (j1 - tx * TILE) as u32],
        });
        // element by element: a library copy call per splat would end the
        // vector code's register state (vzeroupper) for three values
        for c in 0..ch {
            cols[b * ch + c] = s.colors[k * ch + c];
        }
    }
}

/// What the tile loops compute α from: one splat's mean, conic, opacity
/// and `q` cut (see [`q_cut`]).
#[derive(Clone, Copy)]
struct SplatGeom<T> {
    m: [T; 2],
    conic: [T; 3],
    op: T,
    qc: T,
}

/// One splat as [`gather`] reads it: its fields side by side, so that a
/// splat costs one or two cache lines instead of one per input array.
#[derive(Clone, Copy)]
struct Packed<T> {
    g: SplatGeom<T>,
    /// Its pixel rectangle (unused where it has none: it is in no list).
    rect: [u32; 4],
}

/// Packs every splat for [`gather`] (one logarithm each, for the cut).
fn pack<T: Scalar>(s: &Splats<'_, T>, tiles: &TileLists, out: &mut Vec<Packed<T>>) {
    out.clear();
    out.par_extend((0..s.len()).into_par_iter().map(|k| Packed {
        g: SplatGeom {
            m: s.means[k],
            conic: s.conics[k],
            op: s.opacities[k],
            qc: q_cut(s.opacities[k]),
        },
        rect: tiles.rects[k].unwrap_or([0; 4]),
    }));
}

/// Splats gathered per batch in the tile loops.
const BATCH: usize = 32;

/// One splat as the tile loops read it.
#[derive(Clone, Copy)]
struct SplatRec<T> {
    g: SplatGeom<T>,
    /// Image rows `i0..i1` inside the tile.
    rows: [u32; 2],
    /// Lanes (tile columns) `lo..hi`.
    lanes: [u32; 2],
}

/// A per-row test that skips the rows of a splat's rectangle where no
/// lane of the tile can pass `q ≤ q_cut` (about one row in nine in
/// `bench render3d`: the corners of the box around the ellipse).
///
/// `q` is convex in `d.x` along a row (for `a > 0`), so its smallest value
/// over the row's pixel centres is at least its value at the minimiser
/// clamped to the lane span. A row whose clamped minimum exceeds the cut
/// by more than a rounding margin has no kept lane in either pass, and
/// skipping it changes no bit of the output.
#[derive(Clone, Copy)]
struct RowTest {
    a: f64,
    b2: f64,
    c: f64,
    /// `−b / a`: the `d.x` where a row's `q` is smallest, per unit of `d.y`.
    slope: f64,
    qc: f64,
    /// `d.x` of the span's first and last pixel centres.
    xl: f64,
    xr: f64,
    /// Largest `|d.x|` over the span.
    xm: f64,
    /// False where the test does not apply (`a ≤ 0`, or anything not finite).
    on: bool,
}

impl RowTest {
    #[inline(always)]
    fn new<T: Scalar>(rec: &SplatRec<T>, px: &[T; GROUP]) -> Self {
        let (lo, hi) = (rec.lanes[0] as usize, rec.lanes[1] as usize);
        if hi <= lo || rec.rows[1] < rec.rows[0] + MIN_TESTED_ROWS {
            // a few rows: the ellipse reaches nearly all, so testing them
            // would cost more than it saves
            return RowTest::OFF;
        }
        let [a, b, c] = rec.g.conic.map(|v| v.to_f64());
        let m0 = rec.g.m[0].to_f64();
        let (xl, xr) = (px[lo].to_f64() - m0, px[hi - 1].to_f64() - m0);
        let qc = rec.g.qc.to_f64();
        // no short-circuits: one branch, not seven
        let finite = [a, b, c, qc, xl, xr]
            .iter()
            .fold(true, |ok, v| ok & v.is_finite());
        RowTest {
            a,
            b2: b + b,
            c,
            slope: -b / a,
            qc,
            xl,
            xr,
            xm: xl.abs().max(xr.abs()),
            on: (a > 0.0) & finite,
        }
    }

    /// The test that skips nothing.
    const OFF: RowTest = RowTest {
        a: 0.0,
        b2: 0.0,
        c: 0.0,
        slope: 0.0,
        qc: 0.0,
        xl: 0.0,
        xr: 0.0,
        xm: 0.0,
        on: false,
    };

    /// Whether a row at offset `dy` may hold a lane with `q ≤ q_cut`.
    #[inline(always)]
    fn reaches(&self, dy: f64) -> bool {
        if !self.on {
            return true;
        }
        // (max/min, not clamp: no panic whatever the inputs)
        let x = (self.slope * dy).max(self.xl).min(self.xr);
        let cdy = self.c * dy * dy;
        let q = self.a * x * x + self.b2 * x * dy + cdy;
        // the lanes compute q in T; their rounding stays far inside this
        let margin = 1e-5 * (self.a * self.xm * self.xm + (self.b2 * self.xm * dy).abs() + cdy);
        // NaN anywhere: not skipped
        let beyond = q - self.qc > margin;
        !beyond
    }
}

/// Splats with fewer rows than this in a tile are not row-tested.
const MIN_TESTED_ROWS: u32 = 4;

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
    forward_with(s, Simd::best())
}

/// The instruction sets the tile loops are built for (chosen at run time;
/// every one gives the same bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    /// The target's baseline.
    Generic,
    /// AVX2: a tile row of `f32` in two registers.
    Avx2,
    /// AVX-512F: a tile row of `f32` in one register.
    Avx512,
}

impl Simd {
    /// The widest this CPU has.
    fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Generic
    }

    /// The set the backward pass uses: at most AVX2. (Its AVX-512 build
    /// gives the same bits but was 15% slower on the Sapphire Rapids
    /// development VM in `bench train`, while the forward pass's was 35%
    /// faster.)
    fn for_backward(self) -> Simd {
        match self {
            Simd::Avx512 => Simd::Avx2,
            s => s,
        }
    }

    /// Every set this CPU has, narrowest first.
    #[cfg(test)]
    fn available() -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut v = vec![Simd::Generic];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                v.push(Simd::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                v.push(Simd::Avx512);
            }
        }
        v
    }
}

/// [`forward`] built for `simd` (which the caller has checked the CPU has).
fn forward_with<T: Scalar>(s: &Splats<'_, T>, simd: Simd) -> Result<Rendered<T>, RasterError> {
    s.validate()?;
    let mut r = Rendered {
        tiles: bin_tiles(s),
        ..Rendered::default()
    };
    forward_tiled(s, &mut r, simd, &mut RasterScratch::default());
    Ok(r)
}

/// [`forward`] with the tile lists already made by [`bin_tiles`] from the
/// same splats (so that binning can be timed on its own).
pub fn forward_binned<T: Scalar>(
    s: &Splats<'_, T>,
    tiles: TileLists,
) -> Result<Rendered<T>, RasterError> {
    s.validate()?;
    let mut r = Rendered {
        tiles,
        ..Rendered::default()
    };
    forward_tiled(s, &mut r, Simd::best(), &mut RasterScratch::default());
    Ok(r)
}

/// [`forward_binned`] into `r` (whose `tiles` are already [`bin_tiles`]'s
/// for `s`), reusing its vectors and `sc`'s.
pub(crate) fn forward_binned_into<T: Scalar>(
    s: &Splats<'_, T>,
    r: &mut Rendered<T>,
    sc: &mut RasterScratch<T>,
) -> Result<(), RasterError> {
    s.validate()?;
    forward_tiled(s, r, Simd::best(), sc);
    Ok(())
}

/// Fills `r`'s image, transmittance and last contributors from its tile
/// lists (every entry is written; nothing of the old contents is read).
fn forward_tiled<T: Scalar>(
    s: &Splats<'_, T>,
    r: &mut Rendered<T>,
    simd: Simd,
    sc: &mut RasterScratch<T>,
) {
    let (w, h, ch) = (s.width, s.height, s.channels);
    let Rendered {
        image,
        final_t,
        last,
        tiles,
    } = r;
    let tiles = &*tiles;
    refill(image, w * h * ch, T::zero());
    refill(final_t, w * h, T::one());
    refill(last, w * h, 0);
    if w == 0 || h == 0 {
        return;
    }
    pack(s, tiles, &mut sc.packed);
    let inp = FwdInput {
        s,
        tiles,
        packed: &sc.packed,
    };
    // every tile in parallel (a tile row alone is too coarse a unit for
    // small images), each into its own part of a scratch buffer: colour
    // then transmittance (`C + 1` planes of 256), and the last contributors
    const TT: usize = TILE * TILE;
    let n_tiles = tiles.tiles_x * tiles.tiles_y;
    let (planes, lasts) = (&mut sc.planes, &mut sc.lasts);
    // every entry is written by its tile
    planes.resize(n_tiles * (ch + 1) * TT, T::zero());
    lasts.resize(n_tiles * TT, 0);
    let states = sc.fwd_states.prepare(ch, TileState::new);
    planes
        .par_chunks_mut((ch + 1) * TT)
        .zip(lasts.par_chunks_mut(TT))
        .enumerate()
        .for_each(|(t, (pl, ls))| {
            with_state(states, |st| {
                let (ty, tx) = (t / tiles.tiles_x, t % tiles.tiles_x);
                st.render(&inp, tx, ty, simd);
                pl[..ch * TT].copy_from_slice(&st.acc);
                pl[ch * TT..].copy_from_slice(&st.tr);
                ls.copy_from_slice(&st.lst);
            })
        });
    // then the image row by row, in parallel
    image
        .par_chunks_mut(w * ch)
        .zip(final_t.par_chunks_mut(w))
        .zip(last.par_chunks_mut(w))
        .enumerate()
        .for_each(|(i, ((img, tt), ll))| {
            let (ty, row) = (i / TILE, i % TILE);
            for j in 0..w {
                let t = ty * tiles.tiles_x + j / TILE;
                let l = row * TILE + j % TILE;
                let pl = &planes[t * (ch + 1) * TT..(t + 1) * (ch + 1) * TT];
                let tr = pl[ch * TT + l];
                for c in 0..ch {
                    img[j * ch + c] = pl[c * TT + l] + tr * s.background[c];
                }
                tt[j] = tr;
                ll[j] = lasts[t * TT + l];
            }
        });
}

/// `v` as `len` copies of `x`, in its own allocation when that is big
/// enough.
fn refill<U: Copy + Send + Sync>(v: &mut Vec<U>, len: usize, x: U) {
    v.clear();
    v.resize(len, x);
}

/// Per-pixel state of one tile in the backward walk.
///
/// Like [`TileState`], each splat (now back to front) visits the rows of
/// its rectangle as 16-lane blocks without branches; the splat's gradient
/// is accumulated per lane (colours, opacity, `∂/∂a`) or per row (the
/// terms in `dy`), and summed over the lanes in a fixed order.
struct BackTile<T> {
    /// Transmittance before the splat being visited.
    tr: [T; TILE * TILE],
    /// One past the list position of each pixel's last contributor.
    lst: [u32; TILE * TILE],
    /// Per row, the largest `lst`: rows the splat cannot reach are skipped.
    row_last: [u32; TILE],
    /// `∂L/∂alpha · T_final` per pixel (zero without `∂L/∂alpha`).
    dal: [T; TILE * TILE],
    /// Colour accumulated behind the splat, channel-major.
    behind: Vec<T>,
    /// `∂L/∂image`, channel-major.
    gp: Vec<T>,
    /// Per-lane colour gradients of the splat, channel-major.
    ecol: Vec<T>,
    /// The colour behind and `∂L/∂image` of a block of two half rows,
    /// channel-major (16 lanes per channel).
    pair_behind: Vec<T>,
    pair_gp: Vec<T>,
    batch: Vec<SplatRec<T>>,
    batch_cols: Vec<T>,
}

impl<T: Scalar> BackTile<T> {
    fn new(ch: usize) -> Self {
        BackTile {
            tr: [T::one(); TILE * TILE],
            lst: [0; TILE * TILE],
            row_last: [0; TILE],
            dal: [T::zero(); TILE * TILE],
            behind: vec![T::zero(); ch * TILE * TILE],
            gp: vec![T::zero(); ch * TILE * TILE],
            ecol: vec![T::zero(); ch * GROUP],
            pair_behind: vec![T::zero(); ch * GROUP],
            pair_gp: vec![T::zero(); ch * GROUP],
            batch: Vec::with_capacity(BATCH),
            batch_cols: Vec::with_capacity(BATCH * ch),
        }
    }

    /// Writes the gradients of tile `t` into `g` (zeroed, aligned with its
    /// list: `6 + C` values per entry), built for the instruction set
    /// `simd` (which the caller has checked the CPU has; same bits on
    /// every path).
    fn run(&mut self, inp: &BackInput<'_, T>, t: usize, simd: Simd, g: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `simd` names an instruction set the CPU supports.
            match simd {
                Simd::Avx512 => return unsafe { self.run_avx512(inp, t, g) },
                Simd::Avx2 => return unsafe { self.run_avx2(inp, t, g) },
                Simd::Generic => {}
            }
        }
        self.run_generic(inp, t, g)
    }

    /// [`BackTile::run_generic`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&mut self, inp: &BackInput<'_, T>, t: usize, g: &mut [T]) {
        self.run_generic(inp, t, g)
    }

    /// [`BackTile::run_generic`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&mut self, inp: &BackInput<'_, T>, t: usize, g: &mut [T]) {
        self.run_generic(inp, t, g)
    }

    /// Walks one block of two half rows of a narrow splat (the second may
    /// be missing): their lanes `w.w0..w.w0 + HALF` are copied side by
    /// side, walked, and the transmittance and colour behind written back.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &mut self,
        sp: &mut BackSplat<T>,
        k: &BackConsts<T>,
        col: &[T],
        px: &[T; GROUP],
        w: Window,
        a: HalfRow<T>,
        b: Option<HalfRow<T>>,
    ) {
        const TT: usize = TILE * TILE;
        let ch = col.len();
        let mut bpx = [k.zero; GROUP];
        let mut bdy = [a.dy; GROUP];
        let mut inr = [0u32; GROUP];
        let mut tr = [k.one; GROUP];
        let mut lst = [0u32; GROUP];
        let mut dal = [k.zero; GROUP];
        let rows = [a.row, b.map_or(a.row, |b| b.row)];
        let n = 1 + b.is_some() as usize;
        if let Some(b) = b {
            bdy[HALF..].fill(b.dy);
        } else {
            // an empty second half: no lane inside, nothing to write back
            self.pair_behind.fill(k.zero);
            self.pair_gp.fill(k.zero);
        }
        for l in 0..HALF {
            let jj = w.w0 + l;
            let i = ((jj >= w.lo) & (jj < w.hi)) as u32;
            bpx[l] = px[jj];
            bpx[HALF + l] = px[jj];
            inr[l] = i;
            inr[HALF + l] = i * (n as u32 - 1);
        }
        // whole half rows as fixed-size copies (vector moves, no calls)
        for h in 0..n {
            let src = rows[h] * TILE + w.w0;
            *half_mut(&mut tr, h * HALF) = *half_ref(&self.tr, src);
            *half_mut(&mut lst, h * HALF) = *half_ref(&self.lst, src);
            *half_mut(&mut dal, h * HALF) = *half_ref(&self.dal, src);
            for c in 0..ch {
                *half_mut(&mut self.pair_behind, c * GROUP + h * HALF) =
                    *half_ref(&self.behind, c * TT + src);
                *half_mut(&mut self.pair_gp, c * GROUP + h * HALF) =
                    *half_ref(&self.gp, c * TT + src);
            }
        }
        let blk = BlockRows {
            px: &bpx,
            dy: &bdy,
            inr: &inr,
        };
        back_block(
            sp,
            k,
            col,
            &mut self.ecol,
            &blk,
            BlockState {
                tr: &mut tr,
                lst: &mut lst,
                dal: &mut dal,
                behind: &mut self.pair_behind,
                gp: &mut self.pair_gp,
                off: 0,
                stride: GROUP,
            },
        );
        for h in 0..n {
            let dst = rows[h] * TILE + w.w0;
            *half_mut(&mut self.tr, dst) = *half_ref(&tr, h * HALF);
            for c in 0..ch {
                *half_mut(&mut self.behind, c * TT + dst) =
                    *half_ref(&self.pair_behind, c * GROUP + h * HALF);
            }
        }
    }

    #[inline(always)]
    fn run_generic(&mut self, inp: &BackInput<'_, T>, t: usize, g: &mut [T]) {
        let BackInput {
            s,
            r,
            d_image,
            d_alpha,
            packed,
        } = *inp;
        const TT: usize = TILE * TILE;
        let tiles = &r.tiles;
        let (w, h, ch) = (s.width, s.height, s.channels);
        let stride = 6 + ch;
        let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
        debug_assert_eq!(g.len(), list.len() * stride);
        if list.is_empty() {
            return;
        }
        let (ty, tx) = (t / tiles.tiles_x, t % tiles.tiles_x);
        let (i_base, j_base) = (ty * TILE, tx * TILE);
        let over = s.blend == Blend::Over;
        let (zero, one, half) = (T::zero(), T::one(), T::from_f64(0.5));
        let (a_max, a_min) = (T::from_f64(ALPHA_MAX), T::from_f64(ALPHA_MIN));
        let a_cap = if over {
            a_max
        } else {
            T::from_f64(f64::INFINITY)
        };
        // the per-pixel state of the walk, from the forward pass
        self.tr = [one; TT];
        self.lst = [0; TT];
        self.row_last = [0; TILE];
        self.dal = [zero; TT];
        self.behind.iter_mut().for_each(|v| *v = zero);
        self.gp.iter_mut().for_each(|v| *v = zero);
        let mut max_last = 0u32;
        for i in i_base..((ty + 1) * TILE).min(h) {
            let row = i - i_base;
            for j in j_base..((tx + 1) * TILE).min(w) {
                let l = row * TILE + (j - j_base);
                let p = i * w + j;
                let ft = r.final_t[p];
                self.tr[l] = ft;
                self.lst[l] = r.last[p];
                self.row_last[row] = self.row_last[row].max(r.last[p]);
                max_last = max_last.max(r.last[p]);
                for c in 0..ch {
                    if over {
                        self.behind[c * TT + l] = ft * s.background[c];
                    }
                    self.gp[c * TT + l] = d_image[p * ch + c];
                }
                if let (true, Some(dal)) = (over, d_alpha) {
                    // alpha_final = 1 − T_final; ∂T_final/∂α = −T_final/(1 − α)
                    self.dal[l] = dal[p] * ft;
                }
            }
        }
        let with_dal = over && d_alpha.is_some();
        let k = BackConsts {
            // hidden from the optimiser: see `back_block`
            zero: std::hint::black_box(zero),
            one,
            half,
            a_cap,
            a_max,
            a_min,
            over,
            with_dal,
        };
        let mut px = [zero; GROUP];
        for (jj, p) in px.iter_mut().enumerate() {
            *p = T::from_f64((j_base + jj) as f64 + 0.5);
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_cols = std::mem::take(&mut self.batch_cols);
        let mut end = max_last as usize;
        while end > 0 {
            let start = end.saturating_sub(BATCH);
            gather(
                &mut batch,
                &mut batch_cols,
                s,
                packed,
                &list[start..end],
                tx,
                ty,
            );
            for (b, rec) in batch.iter().enumerate().rev() {
                let pos = (start + b) as u32;
                let (i0, i1) = (rec.rows[0] as usize, rec.rows[1] as usize);
                let (lo, hi) = (rec.lanes[0] as usize, rec.lanes[1] as usize);
                let col = &batch_cols[b * ch..(b + 1) * ch];
                let m = rec.g.m;
                let [ca, cb, cc] = rec.g.conic;
                let mut sp = BackSplat {
                    m0: m[0],
                    ca,
                    b2: cb + cb,
                    cc,
                    op: rec.g.op,
                    qc: rec.g.qc,
                    pos,
                    ga: [zero; GROUP],
                    go: [zero; GROUP],
                    s_dx: [zero; GROUP],
                    s_dy: [zero; GROUP],
                    s_dxdy: [zero; GROUP],
                    s_dy2: [zero; GROUP],
                };
                self.ecol.iter_mut().for_each(|v| *v = zero);
                let rt = RowTest::new(rec, &px);
                let mut inr = [0u32; GROUP];
                for (jj, v) in inr.iter_mut().enumerate() {
                    *v = ((jj >= lo) & (jj < hi)) as u32;
                }
                // a splat no wider than half a block here has two rows
                // walked per block; a row waits here for its partner
                let narrow = hi <= lo + HALF;
                let win = Window {
                    w0: lo.min(GROUP - HALF),
                    lo,
                    hi,
                };
                let mut waiting: Option<HalfRow<T>> = None;
                for i in i0..i1 {
                    let row = i - i_base;
                    if pos >= self.row_last[row] {
                        continue;
                    }
                    let dy = T::from_f64(i as f64 + 0.5) - m[1];
                    if !rt.reaches(dy.to_f64()) {
                        continue;
                    }
                    if narrow {
                        let hr = HalfRow { row, dy };
                        match waiting.take() {
                            None => waiting = Some(hr),
                            Some(first) => self.pair(&mut sp, &k, col, &px, win, first, Some(hr)),
                        }
                        continue;
                    }
                    let base = row * TILE;
                    let blk = BlockRows {
                        px: &px,
                        dy: &[dy; GROUP],
                        inr: &inr,
                    };
                    back_block(
                        &mut sp,
                        &k,
                        col,
                        &mut self.ecol,
                        &blk,
                        BlockState {
                            tr: lanes_mut(&mut self.tr, base),
                            lst: lanes_mut(&mut self.lst, base),
                            dal: lanes_mut(&mut self.dal, base),
                            behind: &mut self.behind,
                            gp: &mut self.gp,
                            off: base,
                            stride: TT,
                        },
                    );
                }
                if let Some(first) = waiting {
                    self.pair(&mut sp, &k, col, &px, win, first, None);
                }
                let e = &mut g[pos as usize * stride..(pos as usize + 1) * stride];
                // q = a dx² + 2b dx dy + c dy², d = p − m
                let two = one + one;
                let (s_dx, s_dy) = (lane_sum(&sp.s_dx), lane_sum(&sp.s_dy));
                let (s_dxdy, s_dy2) = (lane_sum(&sp.s_dxdy), lane_sum(&sp.s_dy2));
                e[0] = -(two * (ca * s_dx + cb * s_dy));
                e[1] = -(two * (cb * s_dx + cc * s_dy));
                e[2] = lane_sum(&sp.ga);
                e[3] = two * s_dxdy;
                e[4] = s_dy2;
                e[5] = lane_sum(&sp.go);
                for c in 0..ch {
                    e[6 + c] = lane_sum(lanes_mut(&mut self.ecol, c * GROUP));
                }
            }
            end = start;
        }
        self.batch = batch;
        self.batch_cols = batch_cols;
    }
}

/// Lanes of half a block: in the backward pass, a splat no wider than
/// this in a tile (its rectangle's columns there) has two of its rows
/// walked in one 16-lane block.
const HALF: usize = GROUP / 2;

/// A row of a narrow splat waiting for a second one to share a block: its
/// tile row and `d.y`.
#[derive(Clone, Copy)]
struct HalfRow<T> {
    row: usize,
    dy: T,
}

/// Where a narrow splat's half rows lie in their tile rows: lanes
/// `w0..w0 + HALF`, of which `lo..hi` are inside its rectangle.
#[derive(Clone, Copy)]
struct Window {
    w0: usize,
    lo: usize,
    hi: usize,
}

/// The constants of one tile's backward walk.
struct BackConsts<T> {
    zero: T,
    one: T,
    half: T,
    a_cap: T,
    a_max: T,
    a_min: T,
    over: bool,
    with_dal: bool,
}

/// One splat in the backward walk: what α is computed from, its list
/// position, and its per-lane gradient sums (summed over the lanes once
/// per splat, not per row: Σ dq·dx², Σ ∂L/∂α·w, and Σ dq·dx, dq·dy,
/// dq·dx·dy, dq·dy², fewer accumulators than one per gradient). A lane
/// is any pixel of a block; which one does not matter to a sum.
struct BackSplat<T> {
    m0: T,
    ca: T,
    b2: T,
    cc: T,
    op: T,
    qc: T,
    pos: u32,
    ga: [T; GROUP],
    go: [T; GROUP],
    s_dx: [T; GROUP],
    s_dy: [T; GROUP],
    s_dxdy: [T; GROUP],
    s_dy2: [T; GROUP],
}

/// Where the 16 lanes of a block are: each lane's pixel centre `x` and
/// `d.y`, and whether it is inside the splat's rectangle (1) or not (0).
struct BlockRows<'a, T> {
    px: &'a [T; GROUP],
    dy: &'a [T; GROUP],
    inr: &'a [u32; GROUP],
}

/// The per-pixel state of a block's lanes: a tile row in place, or two
/// half rows copied side by side. Channel `c` of `behind` and `gp` is at
/// `off + c · stride`.
struct BlockState<'a, T> {
    tr: &'a mut [T; GROUP],
    lst: &'a mut [u32; GROUP],
    dal: &'a mut [T; GROUP],
    behind: &'a mut [T],
    gp: &'a mut [T],
    off: usize,
    stride: usize,
}

/// One block of the backward walk for splat `sp`: recovers `T` before the
/// splat, updates the colour behind, and adds the splat's gradients. Each
/// lane does the forward pass's operations for α in the same order, so
/// both passes agree on which pixels kept the splat.
///
/// The masked-off lanes add a zero that the optimiser cannot see through
/// (`k.zero`, from `black_box`), selected from values computed beforehand:
/// otherwise LLVM turns `acc += if on { x } else { 0 }` into masked
/// stores of both arms, which the next block's loads of `acc` cannot
/// forward from (a third of the backward pass's time).
#[inline(always)]
fn back_block<T: Scalar>(
    sp: &mut BackSplat<T>,
    k: &BackConsts<T>,
    col: &[T],
    ecol: &mut [T],
    rows: &BlockRows<'_, T>,
    st: BlockState<'_, T>,
) {
    let BackConsts {
        zero,
        one,
        half,
        a_cap,
        a_max,
        a_min,
        ..
    } = *k;
    let BlockState {
        tr,
        lst,
        dal,
        behind,
        gp,
        off,
        stride,
    } = st;
    let (px, dyl, inr) = (rows.px, rows.dy, rows.inr);
    let (m0, ca, b2, cc, op, qc, pos) = (sp.m0, sp.ca, sp.b2, sp.cc, sp.op, sp.qc, sp.pos);
    let mut dx = [zero; GROUP];
    let mut wexp = [zero; GROUP];
    let mut alpha = [zero; GROUP];
    let mut keep = [0u32; GROUP];
    let mut geo = [0u32; GROUP];
    for jj in 0..GROUP {
        // α as in the module docs; the forward and backward passes
        // evaluate it with the same operations in the same order
        let d = px[jj] - m0;
        let dy = dyl[jj];
        let cdy = cc * dy * dy;
        let q = ca * d * d + b2 * d * dy + cdy;
        let e = (-(half * q)).exp_fast();
        let raw = op * e;
        let clamped = raw > a_cap;
        let a = if clamped { a_max } else { raw };
        let kp = (inr[jj] != 0) & (pos < lst[jj]) & (q <= qc) & (a >= a_min);
        dx[jj] = d;
        wexp[jj] = e;
        alpha[jj] = a;
        keep[jj] = kp as u32;
        geo[jj] = (kp & !clamped) as u32;
    }
    // ∂L/∂α per lane, and the colour gradients
    let mut da = [zero; GROUP];
    if k.over {
        let mut inv = [zero; GROUP];
        let mut tt = [zero; GROUP];
        for jj in 0..GROUP {
            // 1 − α ≥ 0.01, so the division is well conditioned
            let iv = one / (one - alpha[jj]);
            inv[jj] = iv;
            tt[jj] = tr[jj] * iv;
            // `T · 1` is exact: no conditional store
            tr[jj] *= if keep[jj] != 0 { iv } else { one };
        }
        for (c, &cv) in col.iter().enumerate() {
            let gpc: &mut [T; GROUP] = lanes_mut(gp, off + c * stride);
            let bh: &mut [T; GROUP] = lanes_mut(behind, off + c * stride);
            let ec: &mut [T; GROUP] = lanes_mut(ecol, c * GROUP);
            for jj in 0..GROUP {
                let wgt = alpha[jj] * tt[jj];
                let on = keep[jj] != 0;
                let (gv, bv) = (gpc[jj] * wgt, cv * wgt);
                da[jj] += gpc[jj] * (cv * tt[jj] - bh[jj] * inv[jj]);
                ec[jj] += if on { gv } else { zero };
                bh[jj] += if on { bv } else { zero };
            }
        }
        if k.with_dal {
            for jj in 0..GROUP {
                da[jj] += dal[jj] * inv[jj];
            }
        }
    } else {
        for (c, &cv) in col.iter().enumerate() {
            let gpc: &mut [T; GROUP] = lanes_mut(gp, off + c * stride);
            let ec: &mut [T; GROUP] = lanes_mut(ecol, c * GROUP);
            for jj in 0..GROUP {
                let on = keep[jj] != 0;
                let gv = gpc[jj] * alpha[jj];
                ec[jj] += if on { gv } else { zero };
                da[jj] += gpc[jj] * cv;
            }
        }
    }
    // α = o · w, w = exp(−q/2), q from d = p − m
    for jj in 0..GROUP {
        let on = geo[jj] != 0;
        let (d, e, dy) = (dx[jj], wexp[jj], dyl[jj]);
        let dqv = -(half * da[jj] * op * e);
        let dq = if on { dqv } else { zero };
        let (gov, gav, dqxv) = (da[jj] * e, dq * d * d, dq * d);
        sp.go[jj] += if on { gov } else { zero };
        sp.ga[jj] += if on { gav } else { zero };
        let dqx = if on { dqxv } else { zero };
        sp.s_dx[jj] += dqx;
        sp.s_dy[jj] += dy * dq;
        sp.s_dxdy[jj] += dy * dqx;
        sp.s_dy2[jj] += (dy * dy) * dq;
    }
}

/// What every tile of the forward pass reads.
#[derive(Clone, Copy)]
struct FwdInput<'a, T> {
    s: &'a Splats<'a, T>,
    tiles: &'a TileLists,
    /// Per splat, what the tile loops read (see [`pack`]).
    packed: &'a [Packed<T>],
}

/// What every tile of the backward pass reads.
#[derive(Clone, Copy)]
struct BackInput<'a, T> {
    s: &'a Splats<'a, T>,
    r: &'a Rendered<T>,
    d_image: &'a [T],
    d_alpha: Option<&'a [T]>,
    /// Per splat, what the tile loops read (see [`pack`]).
    packed: &'a [Packed<T>],
}

/// The sum of a splat's per-lane gradients, in a fixed order: a tree of
/// halvings (four dependent additions, not sixteen).
#[inline(always)]
fn lane_sum<T: Scalar>(v: &[T; GROUP]) -> T {
    let mut h8 = [T::zero(); 8];
    for jj in 0..8 {
        h8[jj] = v[jj] + v[jj + 8];
    }
    let mut h4 = [T::zero(); 4];
    for jj in 0..4 {
        h4[jj] = h8[jj] + h8[jj + 4];
    }
    (h4[0] + h4[2]) + (h4[1] + h4[3])
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
    backward_with(s, r, d_image, d_alpha, Simd::best().for_backward())
}

/// [`backward`] into `out`, reusing its vectors and `sc`'s.
pub(crate) fn backward_into<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
    out: &mut SplatGrads<T>,
    sc: &mut RasterScratch<T>,
) -> Result<(), RasterError> {
    backward_in(s, r, d_image, d_alpha, Simd::best().for_backward(), out, sc)
}

/// [`backward`] built for `simd` (which the caller has checked the CPU has).
fn backward_with<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
    simd: Simd,
) -> Result<SplatGrads<T>, RasterError> {
    let mut out = SplatGrads::default();
    backward_in(
        s,
        r,
        d_image,
        d_alpha,
        simd,
        &mut out,
        &mut RasterScratch::default(),
    )?;
    Ok(out)
}

fn backward_in<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
    simd: Simd,
    out: &mut SplatGrads<T>,
    sc: &mut RasterScratch<T>,
) -> Result<(), RasterError> {
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
    pack(s, tiles, &mut sc.packed);
    let inp = BackInput {
        s,
        r,
        d_image,
        d_alpha,
        packed: &sc.packed,
    };
    // one gradient record per tile entry, each tile's aligned with its list
    let records = &mut sc.records;
    refill(records, tiles.ids.len() * stride, T::zero());
    let states = sc.back_states.prepare(ch, BackTile::new);
    if n_tiles > 0 {
        for_tiles_split(0, n_tiles, records, &tiles.offsets, stride, &|t, g| {
            with_state(states, |bt| bt.run(&inp, t, simd, g))
        });
    }
    // deterministic reduction in tile order
    refill(&mut out.means, n, [T::zero(); 2]);
    refill(&mut out.conics, n, [T::zero(); 3]);
    refill(&mut out.opacities, n, T::zero());
    refill(&mut out.colors, n * ch, T::zero());
    for (e, &k) in records.chunks_exact(stride).zip(&tiles.ids) {
        let k = k as usize;
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
    Ok(())
}

/// Runs `run(t, records of tile t)` for the tiles `t0..t1` (non-empty),
/// which own `g` (`stride` values per list entry, lists by `offsets`):
/// halves in parallel down to one tile, so no list of slices is
/// allocated.
fn for_tiles_split<T: Send>(
    t0: usize,
    t1: usize,
    g: &mut [T],
    offsets: &[u32],
    stride: usize,
    run: &(impl Fn(usize, &mut [T]) + Sync),
) {
    if t1 - t0 == 1 {
        return run(t0, g);
    }
    let mid = t0 + (t1 - t0) / 2;
    let (a, b) = g.split_at_mut((offsets[mid] - offsets[t0]) as usize * stride);
    rayon::join(
        || for_tiles_split(t0, mid, a, offsets, stride, run),
        || for_tiles_split(mid, t1, b, offsets, stride, run),
    );
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
#[derive(Clone, Debug, Default)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Random splats on a `w × h` image (not a multiple of the tile size),
    /// some bright enough to be clamped, some very thin.
    fn scene<T: Scalar>(seed: u64, w: usize, h: usize, n: usize, ch: usize) -> OwnedSplats<T> {
        let mut rng = Rng::new(seed);
        let mut means = Vec::new();
        let mut conics = Vec::new();
        let mut opacities = Vec::new();
        let mut bounds = Vec::new();
        for _ in 0..n {
            let m = [
                rng.range(-4.0, w as f64 + 4.0),
                rng.range(-4.0, h as f64 + 4.0),
            ];
            let (sx, sy, th) = (
                rng.range(0.4, 9.0),
                rng.range(0.4, 9.0),
                rng.range(0.0, 3.2),
            );
            let (c, s) = (th.cos(), th.sin());
            // covariance R diag(sx², sy²) Rᵀ, inverted
            let (xx, xy, yy) = (
                c * c * sx * sx + s * s * sy * sy,
                c * s * (sx * sx - sy * sy),
                s * s * sx * sx + c * c * sy * sy,
            );
            let det = xx * yy - xy * xy;
            let conic = [yy / det, -xy / det, xx / det];
            let o = rng.range(0.05, 1.0);
            bounds.push(opacity_aware_bound(
                [T::from_f64(m[0]), T::from_f64(m[1])],
                conic.map(T::from_f64),
                T::from_f64(o),
            ));
            means.push(m.map(T::from_f64));
            conics.push(conic.map(T::from_f64));
            opacities.push(T::from_f64(o));
        }
        let colors = (0..n * ch)
            .map(|_| T::from_f64(rng.range(-0.2, 1.2)))
            .collect();
        OwnedSplats {
            width: w,
            height: h,
            channels: ch,
            means,
            conics,
            opacities,
            colors,
            bounds,
            order: (0..n as u32).rev().collect(),
            background: (0..ch).map(|c| T::from_f64(0.1 * c as f64)).collect(),
            blend: Blend::Over,
        }
    }

    /// Every row the row test skips has no lane with `q ≤ q_cut`, computed
    /// exactly as the tile loops compute it; and the test does skip rows.
    fn row_test_skips_only_empty_rows<T: Scalar>() {
        let (mut skipped, mut rows) = (0usize, 0usize);
        for seed in 0..6u64 {
            let sc = scene::<T>(seed, 61, 53, 150, 1);
            let s = sc.view();
            let tiles = bin_tiles(&s);
            let mut packed = Vec::new();
            pack(&s, &tiles, &mut packed);
            let (mut batch, mut cols) = (Vec::new(), Vec::new());
            for t in 0..tiles.offsets.len() - 1 {
                let (ty, tx) = (t / tiles.tiles_x, t % tiles.tiles_x);
                let ids = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
                gather(&mut batch, &mut cols, &s, &packed, ids, tx, ty);
                let mut px = [T::zero(); GROUP];
                for (jj, p) in px.iter_mut().enumerate() {
                    *p = T::from_f64((tx * TILE + jj) as f64 + 0.5);
                }
                for rec in &batch {
                    let rt = RowTest::new(rec, &px);
                    let [ca, cb, cc] = rec.g.conic;
                    let b2 = cb + cb;
                    for i in rec.rows[0]..rec.rows[1] {
                        rows += 1;
                        let dy = T::from_f64(i as f64 + 0.5) - rec.g.m[1];
                        if rt.reaches(dy.to_f64()) {
                            continue;
                        }
                        skipped += 1;
                        let cdy = cc * dy * dy;
                        for jj in rec.lanes[0] as usize..rec.lanes[1] as usize {
                            let dx = px[jj] - rec.g.m[0];
                            let q = ca * dx * dx + b2 * dx * dy + cdy;
                            let kept = q <= rec.g.qc;
                            assert!(
                                !kept,
                                "seed {seed} tile {t} row {i} lane {jj}: q {q:?} ≤ cut {:?}",
                                rec.g.qc
                            );
                        }
                    }
                }
            }
        }
        assert!(
            skipped * 50 > rows,
            "the test skipped only {skipped} of {rows} rows"
        );
    }

    /// Every tile that binning leaves out of a splat's tile range has no
    /// pixel centre (of the splat's rectangle) with `q ≤ q_cut`, computed
    /// exactly as the tile loops compute it; and binning does leave some.
    fn binning_leaves_out_only_unreached_tiles<T: Scalar>() {
        let (mut left_out, mut pairs) = (0usize, 0usize);
        for seed in 0..6u64 {
            let sc = scene::<T>(seed, 61, 53, 150, 1);
            let s = sc.view();
            let tiles = bin_tiles(&s);
            for (k, r) in tiles.rects.iter().enumerate() {
                let Some(r) = *r else { continue };
                let [ca, cb, cc] = s.conics[k];
                let b2 = cb + cb;
                let m = s.means[k];
                let qc = q_cut(s.opacities[k]);
                for ty in r[1] as usize / TILE..=r[3] as usize / TILE {
                    for tx in r[0] as usize / TILE..=r[2] as usize / TILE {
                        pairs += 1;
                        let t = ty * tiles.tiles_x + tx;
                        let list =
                            &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
                        if list.contains(&(k as u32)) {
                            continue;
                        }
                        left_out += 1;
                        let (i0, i1, j0, j1) = clip_to_tile(r, tx, ty, s.width, s.height);
                        for i in i0..i1 {
                            let dy = T::from_f64(i as f64 + 0.5) - m[1];
                            let cdy = cc * dy * dy;
                            for j in j0..j1 {
                                let dx = T::from_f64(j as f64 + 0.5) - m[0];
                                let q = ca * dx * dx + b2 * dx * dy + cdy;
                                let kept = q <= qc;
                                assert!(
                                    !kept,
                                    "seed {seed} splat {k} tile {t} pixel ({i}, {j}): q {q:?} ≤ cut {qc:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(
            left_out * 50 > pairs,
            "binning left out only {left_out} of {pairs} tiles"
        );
    }

    #[test]
    fn binning_leaves_out_only_tiles_without_a_kept_pixel() {
        binning_leaves_out_only_unreached_tiles::<f32>();
        binning_leaves_out_only_unreached_tiles::<f64>();
    }

    #[test]
    fn row_test_skips_only_rows_without_a_kept_lane() {
        row_test_skips_only_empty_rows::<f32>();
        row_test_skips_only_empty_rows::<f64>();
    }

    fn bits<T: Scalar>(v: &[T]) -> Vec<u64> {
        v.iter().map(|x| x.to_f64().to_bits()).collect()
    }

    fn same_on_every_path<T: Scalar>(blend: Blend, simd: Simd) {
        for (seed, ch) in [(1u64, 3usize), (2, 4), (3, 1)] {
            let mut sc = scene::<T>(seed, 45, 37, 120, ch);
            sc.blend = blend;
            let s = sc.view();
            let a = forward_with(&s, Simd::Generic).unwrap();
            let b = forward_with(&s, simd).unwrap();
            assert_eq!(bits(&a.image), bits(&b.image));
            assert_eq!(bits(&a.final_t), bits(&b.final_t));
            assert_eq!(a.last, b.last);
            let mut rng = Rng::new(seed + 10);
            let d_img: Vec<T> = (0..a.image.len())
                .map(|_| T::from_f64(rng.range(-1.0, 1.0)))
                .collect();
            let d_a: Vec<T> = (0..a.final_t.len())
                .map(|_| T::from_f64(rng.range(-1.0, 1.0)))
                .collect();
            let ga = backward_with(&s, &a, &d_img, Some(&d_a), Simd::Generic).unwrap();
            let gb = backward_with(&s, &a, &d_img, Some(&d_a), simd).unwrap();
            assert_eq!(ga, gb);
            assert!(ga.opacities.iter().any(|g| !g.is_zero()));
        }
    }

    /// The backward pass gives the bits of a reduction over the tiles in
    /// order of each tile's records (made one tile at a time), on one
    /// thread and on three.
    #[test]
    fn backward_reduction_is_the_serial_one() {
        let sc = scene::<f32>(4, 83, 61, 300, 4);
        let s = sc.view();
        let r = forward(&s).unwrap();
        let mut rng = Rng::new(9);
        let d_img: Vec<f32> = (0..r.image.len())
            .map(|_| rng.range(-1.0, 1.0) as f32)
            .collect();
        let tiles = &r.tiles;
        let mut packed = Vec::new();
        pack(&s, tiles, &mut packed);
        let inp = BackInput {
            s: &s,
            r: &r,
            d_image: &d_img,
            d_alpha: None,
            packed: &packed,
        };
        let stride = 6 + s.channels;
        let mut want = SplatGrads {
            means: vec![[0.0f32; 2]; s.len()],
            conics: vec![[0.0; 3]; s.len()],
            opacities: vec![0.0; s.len()],
            colors: vec![0.0; s.len() * s.channels],
        };
        let mut bt = BackTile::new(s.channels);
        for t in 0..tiles.offsets.len() - 1 {
            let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
            let mut g = vec![0.0f32; list.len() * stride];
            bt.run(&inp, t, Simd::best(), &mut g);
            for (pos, &k) in list.iter().enumerate() {
                let (k, e) = (k as usize, &g[pos * stride..(pos + 1) * stride]);
                want.means[k][0] += e[0];
                want.means[k][1] += e[1];
                for c in 0..3 {
                    want.conics[k][c] += e[2 + c];
                }
                want.opacities[k] += e[5];
                for c in 0..s.channels {
                    want.colors[k * s.channels + c] += e[6 + c];
                }
            }
        }
        assert!(want.opacities.iter().any(|&g| g != 0.0));
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| backward(&s, &r, &d_img, None).unwrap());
            assert_eq!(
                bits(&got.opacities),
                bits(&want.opacities),
                "{threads} threads"
            );
            assert_eq!(got, want, "{threads} threads");
        }
    }

    #[test]
    fn vector_paths_give_the_same_bits() {
        // (on a CPU with only the baseline this compares it with itself)
        for simd in Simd::available() {
            same_on_every_path::<f32>(Blend::Over, simd);
            same_on_every_path::<f32>(Blend::Sum, simd);
            same_on_every_path::<f64>(Blend::Over, simd);
            same_on_every_path::<f64>(Blend::Sum, simd);
        }
    }
}
