//! Binning: the pixels and tiles a splat covers, and the per-tile lists.

use super::lanes::q_cut;
use super::scratch::{room, RasterScratch};
use super::*;
use rayon::prelude::*;

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

pub(super) fn bound_for_q<T: Scalar>(mean: [T; 2], conic: [T; 3], qmax: f64) -> Option<[T; 4]> {
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
/// Everything runs in parallel with the same output as a sequential
/// counting sort: `order` is cut into chunks, each chunk counts its entries
/// per tile, the counts give every chunk its own start in each tile's
/// list, and the chunks then write their entries there side by side.
pub fn bin_tiles<T: Scalar>(s: &Splats<'_, T>) -> TileLists {
    let mut out = TileLists::default();
    bin_tiles_into(s, &mut out, &mut RasterScratch::default());
    out
}

/// Calls `f` with each tile (its index) of a splat's tile range `r` that
/// its mask keeps, in tile order.
#[inline(always)]
fn for_kept_tiles(r: &[u32; 4], mask: u64, tiles_x: usize, mut f: impl FnMut(usize)) {
    let mut bit = 0;
    for ty in r[1]..=r[3] {
        let row = ty as usize * tiles_x;
        for tx in r[0]..=r[2] {
            if (mask >> bit.min(63)) & 1 != 0 {
                f(row + tx as usize);
            }
            bit += 1;
        }
    }
}

/// `ids` shared by the chunks of the scatter, which write disjoint entries.
struct SharedIds(*mut u32);
// SAFETY: only used to write entries that no other chunk writes (see
// `bin_tiles_into`), and only while the vector is borrowed mutably.
unsafe impl Sync for SharedIds {}

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
    room(ranges, s.order.len());
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
    let n = s.order.len();
    // chunks of `order`: a few per thread (their number changes no output)
    let chunk = n
        .div_ceil(4 * rayon::current_num_threads().max(1))
        .max(BIN_CHUNK_MIN);
    let n_chunks = n.div_ceil(chunk).max(1);
    // per chunk, its entries per tile, then its first slot in each tile's list
    let counts = &mut sc.fill;
    counts.clear();
    counts.resize(n_chunks * n_tiles, 0);
    counts
        .par_chunks_mut(n_tiles.max(1))
        .zip(ranges.par_chunks(chunk))
        .for_each(|(c, rs)| {
            for (r, mask) in rs {
                for_kept_tiles(r, *mask, tiles_x, |t| c[t] += 1);
            }
        });
    let offsets = &mut out.offsets;
    offsets.clear();
    offsets.resize(n_tiles + 1, 0);
    for t in 0..n_tiles {
        // column t of the counts: a running sum over the chunks, from
        // where the tile's list starts
        let mut at = offsets[t];
        for c in 0..n_chunks {
            let v = &mut counts[c * n_tiles + t];
            let here = *v;
            *v = at;
            at += here;
        }
        offsets[t + 1] = at;
    }
    let ids = &mut out.ids;
    // every entry is written below
    room(ids, offsets[n_tiles] as usize);
    ids.resize(offsets[n_tiles] as usize, 0);
    let ids_w = SharedIds(ids.as_mut_ptr());
    let ids_w = &ids_w;
    counts
        .par_chunks_mut(n_tiles.max(1))
        .zip(ranges.par_chunks(chunk))
        .zip(s.order.par_chunks(chunk))
        .for_each(|((fill, rs), ks)| {
            for ((r, mask), &k) in rs.iter().zip(ks) {
                for_kept_tiles(r, *mask, tiles_x, |t| {
                    let f = fill[t];
                    // SAFETY: `f < ids.len()` (the tile's slots end at
                    // `offsets[t + 1]`), and no other chunk writes it:
                    // each chunk's slots in a tile's list are its own range
                    unsafe { *ids_w.0.add(f as usize) = k };
                    fill[t] = f + 1;
                });
            }
        });
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
pub(super) fn reached_tiles<T: Scalar>(
    s: &Splats<'_, T>,
    k: usize,
    r: [u32; 4],
    t: [u32; 4],
) -> u64 {
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
pub(super) fn rect_reaches(conic: [f64; 3], qc: f64, x: [f64; 2], y: [f64; 2]) -> bool {
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
pub(super) fn clip_to_tile(
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

/// The fewest positions of `order` in a chunk of the binning's scatter.
pub(super) const BIN_CHUNK_MIN: usize = 4096;
