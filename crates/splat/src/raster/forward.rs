//! The forward pass: each tile's splats composited front to back.

use super::lanes::*;
use super::scratch::{refill, with_state, RasterScratch};
use super::*;
use crate::simd::Simd;
use rayon::prelude::*;

/// Per-pixel state of one tile in the forward pass.
///
/// The tile is drawn splat-major: each splat in list order visits the rows
/// of its rectangle, and each row is processed as one 16-lane block with no
/// branches inside (α, the skip tests and the compositing update are
/// selects), which the compiler vectorises. Pixels still composite front to
/// back, and each lane does exactly the operations of the per-pixel
/// formulation, so the result is the same bit for bit.
pub(super) struct TileState<T> {
    /// Accumulated colour, one plane per channel: `acc[c][l]`.
    acc: Vec<Aligned<[T; TILE * TILE]>>,
    /// Transmittance per pixel.
    tr: Aligned<[T; TILE * TILE]>,
    /// One past the list position of the last contributor per pixel.
    lst: Aligned<[u32; TILE * TILE]>,
    /// Pixels that have stopped (the next splat would bring `T` below
    /// `T_MIN`): 1, else 0.
    done: Aligned<[u32; TILE * TILE]>,
    /// Per tile row, a bit per column of `done`.
    done_rows: [u16; TILE],
    /// Scratch for the splats of one batch and their colours.
    batch: Vec<SplatRec<T>>,
    batch_cols: Vec<T>,
}

impl<T: Scalar> TileState<T> {
    pub(super) fn new(ch: usize) -> Self {
        TileState {
            acc: vec![Aligned([T::zero(); TILE * TILE]); ch],
            tr: Aligned([T::one(); TILE * TILE]),
            lst: Aligned([0; TILE * TILE]),
            done: Aligned([0; TILE * TILE]),
            done_rows: [0; TILE],
            batch: Vec::with_capacity(BATCH),
            batch_cols: Vec::with_capacity(BATCH * ch),
        }
    }

    /// Composites tile `(tx, ty)` into the state (reset first), built for
    /// the instruction set `simd` (which the caller has checked the CPU
    /// has). The code is the same on every path and uses no fused
    /// multiply-add, so every path gives the same bits.
    pub(super) fn render(&mut self, inp: &FwdInput<'_, T>, tx: usize, ty: usize, simd: Simd) {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd; // one path elsewhere
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
        self.acc
            .iter_mut()
            .for_each(|v| v.0 = [T::zero(); TILE * TILE]);
        self.tr.0 = [T::one(); TILE * TILE];
        self.lst.0 = [0; TILE * TILE];
        self.done.0 = [0; TILE * TILE];
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
        let mut px = Aligned([T::zero(); TILE]);
        for (jj, p) in px.iter_mut().enumerate() {
            *p = T::from_f64((j_base + jj) as f64 + 0.5);
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_cols = std::mem::take(&mut self.batch_cols);
        'list: for (chunk, ids) in list.chunks(BATCH).enumerate() {
            gather(&mut batch, &mut batch_cols, s, packed, ids, tx, ty);
            let next = &list[((chunk + 1) * BATCH).min(list.len())..];
            prefetch(packed, s.colors, ch, &next[..next.len().min(BATCH)]);
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
                let (i0, i1) = rt.rows(i0, i1, m[1]);
                for i in i0..i1 {
                    let row = i - i_base;
                    if self.done_rows[row] & cols == cols {
                        continue;
                    }
                    let dy = T::from_f64(i as f64 + 0.5) - m[1];
                    let cdy = cc * dy * dy;
                    let base = row * TILE;
                    let mut stopped = 0u32;
                    // fixed-size views: no bounds checks in the lane loops
                    let tr: &mut [T; GROUP] = lanes_mut(&mut self.tr.0, base);
                    let done: &mut [u32; GROUP] = lanes_mut(&mut self.done.0, base);
                    let lst: &mut [u32; GROUP] = lanes_mut(&mut self.lst.0, base);
                    // lane masks are integers, not bools, so that every
                    // array in the loops has 4- or 8-byte lanes and
                    // vectorises
                    let mut alpha = Aligned([T::zero(); GROUP]);
                    let mut keep = Aligned([0u32; GROUP]);
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
                    let mut wgt = Aligned([T::zero(); GROUP]);
                    let mut hit = Aligned([0u32; GROUP]);
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
                            stopped |= stop as u32;
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
                        let a: &mut [T; GROUP] = lanes_mut(&mut self.acc[c].0, base);
                        // adding +0 leaves the sum unchanged (it is never −0)
                        for jj in 0..GROUP {
                            a[jj] += if hit[jj] != 0 {
                                cv * wgt[jj]
                            } else {
                                T::zero()
                            };
                        }
                    }
                    // (whether any lane stopped, not how many: no count per row)
                    if stopped != 0 {
                        let mut bits = 0u16;
                        for (jj, &d) in self.done[base..base + TILE].iter().enumerate() {
                            bits |= ((d != 0) as u16) << jj;
                        }
                        n_done += (bits & !self.done_rows[row]).count_ones() as usize;
                        self.done_rows[row] = bits;
                    }
                }
            }
        }
        self.batch = batch;
        self.batch_cols = batch_cols;
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
    forward_with(s, Simd::best())
}

/// [`forward()`] built for `simd` (which the caller has checked the CPU has).
pub(super) fn forward_with<T: Scalar>(
    s: &Splats<'_, T>,
    simd: Simd,
) -> Result<Rendered<T>, RasterError> {
    s.validate()?;
    let mut r = Rendered {
        tiles: bin_tiles(s),
        ..Rendered::default()
    };
    forward_tiled(s, &mut r, simd, &mut RasterScratch::default());
    Ok(r)
}

/// [`forward()`] with the tile lists already made by [`bin_tiles`] from the
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
pub(super) fn forward_tiled<T: Scalar>(
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
                for (p, a) in pl.chunks_exact_mut(TT).zip(&st.acc) {
                    p.copy_from_slice(&a.0);
                }
                pl[ch * TT..].copy_from_slice(&st.tr.0);
                ls.copy_from_slice(&st.lst.0);
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

/// What every tile of the forward pass reads.
#[derive(Clone, Copy)]
pub(super) struct FwdInput<'a, T> {
    pub(super) s: &'a Splats<'a, T>,
    pub(super) tiles: &'a TileLists,
    /// Per splat, what the tile loops read (see [`pack`]).
    pub(super) packed: &'a [Packed<T>],
}
