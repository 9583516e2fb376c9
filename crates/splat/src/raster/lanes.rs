//! What the tile loops of both passes share: packed splats gathered in batches, the row test, fixed-size lane views.

use super::bin::clip_to_tile;
use super::*;
use rayon::prelude::*;

/// A `q` beyond which `o · exp(−q/2) < 1/255` for certain: `2 ln(255 o)`
/// plus a margin far above rounding, so the cut never drops a splat the α
/// test would keep.
#[inline(always)]
pub(super) fn q_cut<T: Scalar>(opacity: T) -> T {
    let o = opacity.to_f64();
    let q = 2.0 * (o / ALPHA_MIN).ln();
    if q.is_nan() {
        // NaN opacity: skipped by the α test anyway
        T::from_f64(f64::INFINITY)
    } else {
        T::from_f64(q + 1e-4 * (1.0 + q.abs()))
    }
}

/// Lanes processed together in [`TileState::render_generic`](super::forward::TileState::render_generic): a whole
/// tile row. (Loops of 16 `f32` lanes vectorise; groups of 8 were unrolled
/// into scalar code instead.)
pub(super) const GROUP: usize = TILE;

/// A value on a 64-byte boundary: lane arrays in it never straddle a
/// cache line when read as whole vectors (an AVX-512 register is 64
/// bytes). With only the 4-byte alignment of `f32`, where a lane array
/// landed depended on what came before it (on the stack, the size of the
/// command line and environment; on the heap, earlier allocations), and
/// so did the forward pass's time: 12.7 against 19–22 ms at 200² for the
/// same binary run from two paths (`BENCHMARKS.md`, issue 15).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Aligned<A>(pub(super) A);

impl<A> std::ops::Deref for Aligned<A> {
    type Target = A;
    #[inline(always)]
    fn deref(&self) -> &A {
        &self.0
    }
}

impl<A> std::ops::DerefMut for Aligned<A> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut A {
        &mut self.0
    }
}

/// `v[at..at + HALF]` as an array.
#[inline(always)]
pub(super) fn half_mut<U>(v: &mut [U], at: usize) -> &mut [U; HALF] {
    (&mut v[at..at + HALF]).try_into().expect("HALF lanes")
}

/// `v[at..at + HALF]` as an array.
#[inline(always)]
pub(super) fn half_ref<U>(v: &[U], at: usize) -> &[U; HALF] {
    v[at..at + HALF].try_into().expect("HALF lanes")
}

/// `v[at..at + N]` as an array.
#[inline(always)]
pub(super) fn lanes_at<U, const N: usize>(v: &mut [U], at: usize) -> &mut [U; N] {
    (&mut v[at..at + N]).try_into().expect("N lanes")
}

/// `v[at..at + GROUP]` as an array.
#[inline(always)]
pub(super) fn lanes_mut<U>(v: &mut [U], at: usize) -> &mut [U; GROUP] {
    (&mut v[at..at + GROUP]).try_into().expect("GROUP lanes")
}

/// Gathers the splats `ids` (of tile `(tx, ty)`) into `batch` and their
/// colours into `cols`: independent loads the CPU overlaps, instead of one
/// cache miss per splat inside the tile loops.
#[inline(always)]
pub(super) fn gather<T: Scalar>(
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

/// Asks the CPU to bring the splats `ids` (the next batch of a tile's
/// list) into the cache while the current batch is drawn, so that
/// [`gather`] finds them there: at 10⁵ splats the packed records do not
/// fit in the core's caches and a tile's list reads them at random. A
/// hint only: it changes no value.
#[inline(always)]
pub(super) fn prefetch<T>(packed: &[Packed<T>], colors: &[T], ch: usize, ids: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let size = std::mem::size_of::<Packed<T>>();
        for &k in ids {
            let k = k as usize;
            if let (Some(p), Some(c)) = (packed.get(k), colors.get(k * ch)) {
                let p = (p as *const Packed<T>).cast::<i8>();
                // SAFETY: a prefetch never faults; both addresses are in
                // the record (its first and last byte), the other in `colors`
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(p);
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(size - 1));
                    _mm_prefetch::<_MM_HINT_T0>((c as *const T).cast::<i8>());
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (packed, colors, ch, ids);
}

/// What the tile loops compute α from: one splat's mean, conic, opacity
/// and `q` cut (see [`q_cut`]).
#[derive(Clone, Copy)]
pub(super) struct SplatGeom<T> {
    pub(super) m: [T; 2],
    pub(super) conic: [T; 3],
    pub(super) op: T,
    pub(super) qc: T,
}

/// One splat as [`gather`] reads it: its fields side by side, so that a
/// splat costs one or two cache lines instead of one per input array.
#[derive(Clone, Copy)]
pub(super) struct Packed<T> {
    pub(super) g: SplatGeom<T>,
    /// Its pixel rectangle (unused where it has none: it is in no list).
    pub(super) rect: [u32; 4],
}

/// Packs every splat for [`gather`] (one logarithm each, for the cut).
pub(super) fn pack<T: Scalar>(s: &Splats<'_, T>, tiles: &TileLists, out: &mut Vec<Packed<T>>) {
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
pub(super) const BATCH: usize = 32;

/// One splat as the tile loops read it.
#[derive(Clone, Copy)]
pub(super) struct SplatRec<T> {
    pub(super) g: SplatGeom<T>,
    /// Image rows `i0..i1` inside the tile.
    pub(super) rows: [u32; 2],
    /// Lanes (tile columns) `lo..hi`.
    pub(super) lanes: [u32; 2],
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
pub(super) struct RowTest {
    a: f64,
    /// `1 / a`, so that a row's chord costs no division.
    inv_a: f64,
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
    /// Whether the splat has too few rows here for [`RowTest::rows`] to test.
    few: bool,
}

impl RowTest {
    #[inline(always)]
    pub(super) fn new<T: Scalar>(rec: &SplatRec<T>, px: &[T; GROUP]) -> Self {
        let (lo, hi) = (rec.lanes[0] as usize, rec.lanes[1] as usize);
        if hi <= lo {
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
        let inv_a = 1.0 / a;
        RowTest {
            a,
            inv_a,
            b2: b + b,
            c,
            slope: -b * inv_a,
            qc,
            xl,
            xr,
            xm: xl.abs().max(xr.abs()),
            on: (a > 0.0) & finite,
            // a few rows: the ellipse reaches nearly all, so testing them
            // would cost more than it saves
            few: rec.rows[1] < rec.rows[0] + MIN_TESTED_ROWS,
        }
    }

    /// The test that skips nothing.
    const OFF: RowTest = RowTest {
        a: 0.0,
        inv_a: 0.0,
        b2: 0.0,
        c: 0.0,
        slope: 0.0,
        qc: 0.0,
        xl: 0.0,
        xr: 0.0,
        xm: 0.0,
        on: false,
        few: true,
    };

    /// Whether a row at offset `dy` may hold a lane with `q ≤ q_cut`.
    #[inline(always)]
    pub(super) fn reaches(&self, dy: f64) -> bool {
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

    /// The rows of `i0..i1` from the first to the last that
    /// [`RowTest::reaches`] keeps, found by testing from both ends (an
    /// empty range when none does). The rows a convex `q` reaches are
    /// contiguous, so this tests about two rows per splat instead of every
    /// row; a row inside the range that the test would skip (rounding can
    /// make one) is walked to no effect: it keeps no lane.
    #[inline(always)]
    pub(super) fn rows<T: Scalar>(&self, i0: usize, i1: usize, m1: T) -> (usize, usize) {
        if !self.on | self.few {
            return (i0, i1);
        }
        let reaches = |i: usize| self.reaches((T::from_f64(i as f64 + 0.5) - m1).to_f64());
        let mut first = i0;
        while first < i1 && !reaches(first) {
            first += 1;
        }
        let mut last = i1;
        while last > first && !reaches(last - 1) {
            last -= 1;
        }
        (first, last)
    }
}

impl RowTest {
    /// The lanes `first..end` of the span `lo..hi` (the lanes of the test's
    /// span) that a row at offset `dy` may keep: those whose pixel centre
    /// lies on the chord of the ellipse `q = q_cut + margin` (the margin of
    /// [`RowTest::reaches`]), widened by a pad far above the rounding of
    /// the roots. A lane outside has `q > q_cut` in both passes, so it
    /// keeps no pixel. An empty range when the row has no such lane;
    /// `None` where the test does not apply.
    #[inline(always)]
    pub(super) fn chord_lanes(&self, dy: f64, lo: usize, hi: usize) -> Option<(usize, usize)> {
        if !self.on {
            return None;
        }
        let cdy = self.c * dy * dy;
        let margin = 1e-5 * (self.a * self.xm * self.xm + (self.b2 * self.xm * dy).abs() + cdy);
        // a x² + 2 h x + (c dy² − cut) ≤ 0, h = b dy
        let h = 0.5 * self.b2 * dy;
        let disc = h * h - self.a * (cdy - (self.qc + margin));
        if disc.is_nan() {
            return None;
        }
        if disc < 0.0 {
            return Some((lo, lo));
        }
        let r = disc.sqrt();
        // (multiplied by `1 / a`: within a few ulps of the quotients, far
        // inside the pad)
        let (x0, x1) = ((-h - r) * self.inv_a, (-h + r) * self.inv_a);
        let pad = 1e-3 + 1e-9 * (x0.abs() + x1.abs());
        // lane lo + n has its centre at xl + n
        let span = (hi - lo) as f64;
        let first = (x0 - pad - self.xl).ceil().max(0.0).min(span);
        let end = ((x1 + pad - self.xl).floor() + 1.0).max(0.0).min(span);
        if !(first.is_finite() && end.is_finite()) {
            return None;
        }
        Some((lo + first as usize, lo + (end as usize).max(first as usize)))
    }
}

/// Splats with fewer rows than this in a tile are not row-tested.
pub(super) const MIN_TESTED_ROWS: u32 = 4;

/// Lanes of half a block: in the backward pass, a row of a splat that is
/// no wider than this in a tile (its rectangle's columns there, or the
/// row's chord of its ellipse) is walked as a half block.
pub(super) const HALF: usize = GROUP / 2;
