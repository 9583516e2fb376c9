//! The backward pass: each pixel's list walked back to front, storing nothing per step.

use super::lanes::*;
use super::scratch::{refill, refill_room, with_state, RasterScratch};
use super::*;
use crate::simd::Simd;
use rayon::prelude::*;

/// Per-pixel state of one tile in the backward walk.
///
/// Like [`TileState`](super::forward::TileState), each splat (now back to front) visits the rows of
/// its rectangle as 16-lane blocks without branches; the splat's gradient
/// is accumulated per lane (colours, opacity, `∂/∂a`) or per row (the
/// terms in `dy`), and summed over the lanes in a fixed order.
pub(super) struct BackTile<T> {
    /// Transmittance before the splat being visited.
    tr: Aligned<[T; TILE * TILE]>,
    /// One past the list position of each pixel's last contributor.
    lst: Aligned<[u32; TILE * TILE]>,
    /// Per row, the largest `lst`: rows the splat cannot reach are skipped.
    row_last: [u32; TILE],
    /// `∂L/∂alpha · T_final` per pixel (zero without `∂L/∂alpha`).
    dal: Aligned<[T; TILE * TILE]>,
    /// Colour accumulated behind the splat, one plane per channel.
    behind: Vec<Aligned<[T; TILE * TILE]>>,
    /// `∂L/∂image`, one plane per channel.
    gp: Vec<Aligned<[T; TILE * TILE]>>,
    /// Per-lane colour gradients of the splat, one block per channel.
    ecol: Vec<Aligned<[T; GROUP]>>,
    /// The channels whose `∂L/∂image` is not zero everywhere in the tile.
    live: Vec<usize>,
    batch: Vec<SplatRec<T>>,
    batch_cols: Vec<T>,
}

impl<T: Scalar> BackTile<T> {
    pub(super) fn new(ch: usize) -> Self {
        BackTile {
            tr: Aligned([T::one(); TILE * TILE]),
            lst: Aligned([0; TILE * TILE]),
            row_last: [0; TILE],
            dal: Aligned([T::zero(); TILE * TILE]),
            behind: vec![Aligned([T::zero(); TILE * TILE]); ch],
            gp: vec![Aligned([T::zero(); TILE * TILE]); ch],
            ecol: vec![Aligned([T::zero(); GROUP]); ch],
            live: Vec::with_capacity(ch),
            batch: Vec::with_capacity(BATCH),
            batch_cols: Vec::with_capacity(BATCH * ch),
        }
    }

    /// Writes the gradients of tile `t` into `g` (zeroed, aligned with its
    /// list: `6 + C` values per entry), built for the instruction set
    /// `simd` (which the caller has checked the CPU has; same bits on
    /// every path).
    pub(super) fn run(&mut self, inp: &BackInput<'_, T>, t: usize, simd: Simd, g: &mut [T]) {
        // the absolute sums are a second build of the loops: none of their
        // work is done (or compiled in) when they are not asked for
        if inp.abs {
            self.run_for::<true>(inp, t, simd, g)
        } else {
            self.run_for::<false>(inp, t, simd, g)
        }
    }

    fn run_for<const ABS: bool>(
        &mut self,
        inp: &BackInput<'_, T>,
        t: usize,
        simd: Simd,
        g: &mut [T],
    ) {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd; // one path elsewhere
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `simd` names an instruction set the CPU supports.
            match simd {
                Simd::Avx512 => return unsafe { self.run_avx512::<ABS>(inp, t, g) },
                Simd::Avx2 => return unsafe { self.run_avx2::<ABS>(inp, t, g) },
                Simd::Generic => {}
            }
        }
        self.run_generic::<ABS>(inp, t, g)
    }

    /// [`BackTile::run_generic`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const ABS: bool>(
        &mut self,
        inp: &BackInput<'_, T>,
        t: usize,
        g: &mut [T],
    ) {
        self.run_generic::<ABS>(inp, t, g)
    }

    /// [`BackTile::run_generic`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2<const ABS: bool>(&mut self, inp: &BackInput<'_, T>, t: usize, g: &mut [T]) {
        self.run_generic::<ABS>(inp, t, g)
    }

    #[inline(always)]
    fn run_generic<const ABS: bool>(&mut self, inp: &BackInput<'_, T>, t: usize, g: &mut [T]) {
        let BackInput {
            s,
            r,
            d_image,
            d_alpha,
            packed,
            ..
        } = *inp;
        const TT: usize = TILE * TILE;
        let tiles = &r.tiles;
        let (w, h, ch) = (s.width, s.height, s.channels);
        let stride = record_stride(ch, ABS);
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
        self.tr.0 = [one; TT];
        self.lst.0 = [0; TT];
        self.row_last = [0; TILE];
        self.dal.0 = [zero; TT];
        self.behind.iter_mut().for_each(|v| v.0 = [zero; TT]);
        self.gp.iter_mut().for_each(|v| v.0 = [zero; TT]);
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
                        self.behind[c][l] = ft * s.background[c];
                    }
                    self.gp[c][l] = d_image[p * ch + c];
                }
                if let (true, Some(dal)) = (over, d_alpha) {
                    // alpha_final = 1 − T_final; ∂T_final/∂α = −T_final/(1 − α)
                    self.dal[l] = dal[p] * ft;
                }
            }
        }
        // A channel whose ∂L/∂image is zero over the whole tile (the
        // trainer's depth channel) adds ±0 · (a finite value) to ∂L/∂α, and
        // +0 to the colour's gradient: nothing, bit for bit (a sum from +0
        // is never −0). It is skipped, and so is ∂L/∂alpha where it is zero
        // over the tile. (Only a non-finite colour or background, which
        // makes the image non-finite, would have turned these terms into
        // NaN.)
        self.live.clear();
        for c in 0..ch {
            if self.gp[c].iter().any(|&v| v != zero) {
                self.live.push(c);
            }
        }
        let with_dal = over && d_alpha.is_some() && self.dal.iter().any(|&v| v != zero);
        let k = BackConsts {
            live: &self.live,
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
        let mut px = Aligned([zero; GROUP]);
        for (jj, p) in px.iter_mut().enumerate() {
            *p = T::from_f64((j_base + jj) as f64 + 0.5);
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_cols = std::mem::take(&mut self.batch_cols);
        let mut end = max_last as usize;
        while end > 0 {
            let start = end.saturating_sub(BATCH);
            prefetch(
                packed,
                s.colors,
                ch,
                &list[start.saturating_sub(BATCH)..start],
            );
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
                    cb,
                    b2: cb + cb,
                    cc,
                    op: rec.g.op,
                    qc: rec.g.qc,
                    pos,
                    ga: Aligned([zero; GROUP]),
                    go: Aligned([zero; GROUP]),
                    s_dx: Aligned([zero; GROUP]),
                    s_dy: Aligned([zero; GROUP]),
                    s_dxdy: Aligned([zero; GROUP]),
                    s_dy2: Aligned([zero; GROUP]),
                    abs_x: Aligned([zero; GROUP]),
                    abs_y: Aligned([zero; GROUP]),
                };
                self.ecol.iter_mut().for_each(|v| v.0 = [zero; GROUP]);
                let rt = RowTest::new(rec, &px);
                let mut inr = Aligned([0u32; GROUP]);
                for (jj, v) in inr.iter_mut().enumerate() {
                    *v = ((jj >= lo) & (jj < hi)) as u32;
                }
                // A splat no wider than half a block here has each row
                // walked as a half block in place, its rows accumulating in
                // the two halves of the lane sums by turns (the lanes a
                // block of two half rows side by side gave them). A wider
                // one has a row whose chord of the ellipse is at most half
                // a block wide walked as the half block holding it, in
                // place, accumulating in the lanes of its columns; the
                // other lanes keep no pixel, so a whole row gives the same
                // bits.
                let narrow = hi <= lo + HALF;
                let w_narrow = lo.min(GROUP - HALF);
                let mut turn = 0;
                let (i0, i1) = rt.rows(i0, i1, m[1]);
                for i in i0..i1 {
                    let row = i - i_base;
                    if pos >= self.row_last[row] {
                        continue;
                    }
                    let dy = T::from_f64(i as f64 + 0.5) - m[1];
                    let half_at = if narrow {
                        turn ^= HALF;
                        Some((w_narrow, HALF - turn))
                    } else {
                        match rt.chord_lanes(dy.to_f64(), lo, hi) {
                            Some((first, end)) if end <= first => continue,
                            Some((first, end)) if end <= first + HALF => {
                                let w0 = first.min(GROUP - HALF);
                                Some((w0, w0))
                            }
                            _ => None,
                        }
                    };
                    let base = row * TILE;
                    match half_at {
                        Some((w0, acc)) => back_block::<T, HALF, ABS>(
                            &mut sp,
                            &k,
                            col,
                            &mut self.ecol,
                            BlockRows {
                                px: half_ref(&px.0, w0),
                                dy,
                                inr: half_ref(&inr.0, w0),
                                acc,
                            },
                            BlockState {
                                tr: half_mut(&mut self.tr.0, base + w0),
                                lst: half_mut(&mut self.lst.0, base + w0),
                                dal: half_mut(&mut self.dal.0, base + w0),
                                behind: &mut self.behind,
                                gp: &mut self.gp,
                                off: base + w0,
                            },
                        ),
                        None => back_block::<T, GROUP, ABS>(
                            &mut sp,
                            &k,
                            col,
                            &mut self.ecol,
                            BlockRows {
                                px: &px,
                                dy,
                                inr: &inr,
                                acc: 0,
                            },
                            BlockState {
                                tr: lanes_mut(&mut self.tr.0, base),
                                lst: lanes_mut(&mut self.lst.0, base),
                                dal: lanes_mut(&mut self.dal.0, base),
                                behind: &mut self.behind,
                                gp: &mut self.gp,
                                off: base,
                            },
                        ),
                    }
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
                    e[6 + c] = lane_sum(&self.ecol[c]);
                }
                if ABS {
                    // Σ |∂L/∂m| per pixel: ∂q/∂m = −2 (a dx + b dy, b dx + c dy)
                    e[6 + ch] = two * lane_sum(&sp.abs_x);
                    e[7 + ch] = two * lane_sum(&sp.abs_y);
                }
            }
            end = start;
        }
        self.batch = batch;
        self.batch_cols = batch_cols;
    }
}

/// The constants of one tile's backward walk.
pub(super) struct BackConsts<'a, T> {
    /// The channels walked (see [`BackTile::run_generic`]).
    live: &'a [usize],
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
pub(super) struct BackSplat<T> {
    m0: T,
    ca: T,
    cb: T,
    b2: T,
    cc: T,
    op: T,
    qc: T,
    pos: u32,
    ga: Aligned<[T; GROUP]>,
    go: Aligned<[T; GROUP]>,
    s_dx: Aligned<[T; GROUP]>,
    s_dy: Aligned<[T; GROUP]>,
    s_dxdy: Aligned<[T; GROUP]>,
    s_dy2: Aligned<[T; GROUP]>,
    /// Σ |a · dq·dx + b · dq·dy| and Σ |b · dq·dx + c · dq·dy| (each
    /// pixel's `∂L/∂m` over −2, in absolute value), kept only in the
    /// build with the absolute sums.
    abs_x: Aligned<[T; GROUP]>,
    abs_y: Aligned<[T; GROUP]>,
}

/// Where the `N` lanes of a block (a tile row, or half of one) are: each
/// lane's pixel centre `x`, the row's `d.y`, whether a lane is inside the
/// splat's rectangle (1) or not (0), and the lane of the splat's lane
/// sums where the block's first lane adds.
pub(super) struct BlockRows<'a, T, const N: usize> {
    px: &'a [T; N],
    dy: T,
    inr: &'a [u32; N],
    acc: usize,
}

/// The per-pixel state of a block's lanes, in place in the tile. The
/// block's lanes of channel `c` of `behind` and `gp` start at `off` in
/// plane `c`.
pub(super) struct BlockState<'a, T, const N: usize> {
    tr: &'a mut [T; N],
    lst: &'a mut [u32; N],
    dal: &'a mut [T; N],
    behind: &'a mut [Aligned<[T; TILE * TILE]>],
    gp: &'a mut [Aligned<[T; TILE * TILE]>],
    off: usize,
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
pub(super) fn back_block<T: Scalar, const N: usize, const ABS: bool>(
    sp: &mut BackSplat<T>,
    k: &BackConsts<'_, T>,
    col: &[T],
    ecol: &mut [Aligned<[T; GROUP]>],
    rows: BlockRows<'_, T, N>,
    st: BlockState<'_, T, N>,
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
    } = st;
    let (px, dy, inr, acc) = (rows.px, rows.dy, rows.inr, rows.acc);
    let (m0, ca, cb, b2, cc) = (sp.m0, sp.ca, sp.cb, sp.b2, sp.cc);
    let (op, qc, pos) = (sp.op, sp.qc, sp.pos);
    let (cdy, dy2) = (cc * dy * dy, dy * dy);
    let mut dx = [zero; N];
    let mut wexp = [zero; N];
    let mut alpha = [zero; N];
    let mut keep = [0u32; N];
    let mut geo = [0u32; N];
    for jj in 0..N {
        // α as in the module docs; the forward and backward passes
        // evaluate it with the same operations in the same order
        let d = px[jj] - m0;
        let q = ca * d * d + b2 * d * dy + cdy;
        let e = (-(half * q)).exp_fast_select();
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
    let mut da = [zero; N];
    if k.over {
        let mut inv = [zero; N];
        let mut tt = [zero; N];
        let mut trv: [T; N] = *tr;
        for jj in 0..N {
            // 1 − α ≥ 0.01, so the division is well conditioned
            let iv = one / (one - alpha[jj]);
            inv[jj] = iv;
            tt[jj] = trv[jj] * iv;
            // `T · 1` is exact: no conditional store
            trv[jj] *= if keep[jj] != 0 { iv } else { one };
        }
        *tr = trv;
        for &c in k.live {
            let cv = col[c];
            // copied in and out: values the compiler knows are apart, so
            // that a half block's unrolled lanes still become vector code
            let gpc: [T; N] = *lanes_at(&mut gp[c].0, off);
            let mut bh: [T; N] = *lanes_at(&mut behind[c].0, off);
            let mut ec: [T; N] = *lanes_at(&mut ecol[c].0, acc);
            for jj in 0..N {
                let wgt = alpha[jj] * tt[jj];
                let on = keep[jj] != 0;
                let (gv, bv) = (gpc[jj] * wgt, cv * wgt);
                da[jj] += gpc[jj] * (cv * tt[jj] - bh[jj] * inv[jj]);
                ec[jj] += if on { gv } else { zero };
                bh[jj] += if on { bv } else { zero };
            }
            *lanes_at(&mut behind[c].0, off) = bh;
            *lanes_at(&mut ecol[c].0, acc) = ec;
        }
        if k.with_dal {
            for jj in 0..N {
                da[jj] += dal[jj] * inv[jj];
            }
        }
    } else {
        for &c in k.live {
            let cv = col[c];
            let gpc: [T; N] = *lanes_at(&mut gp[c].0, off);
            let mut ec: [T; N] = *lanes_at(&mut ecol[c].0, acc);
            for jj in 0..N {
                let on = keep[jj] != 0;
                let gv = gpc[jj] * alpha[jj];
                ec[jj] += if on { gv } else { zero };
                da[jj] += gpc[jj] * cv;
            }
            *lanes_at(&mut ecol[c].0, acc) = ec;
        }
    }
    // α = o · w, w = exp(−q/2), q from d = p − m
    let mut go: [T; N] = *lanes_at(&mut sp.go.0, acc);
    let mut ga: [T; N] = *lanes_at(&mut sp.ga.0, acc);
    let mut s_dx: [T; N] = *lanes_at(&mut sp.s_dx.0, acc);
    let mut s_dy: [T; N] = *lanes_at(&mut sp.s_dy.0, acc);
    let mut s_dxdy: [T; N] = *lanes_at(&mut sp.s_dxdy.0, acc);
    let mut s_dy2: [T; N] = *lanes_at(&mut sp.s_dy2.0, acc);
    let (mut abs_x, mut abs_y) = ([zero; N], [zero; N]);
    if ABS {
        abs_x = *lanes_at(&mut sp.abs_x.0, acc);
        abs_y = *lanes_at(&mut sp.abs_y.0, acc);
    }
    for jj in 0..N {
        let on = geo[jj] != 0;
        let (d, e) = (dx[jj], wexp[jj]);
        let dqv = -(half * da[jj] * op * e);
        let dq = if on { dqv } else { zero };
        let (gov, gav, dqxv) = (da[jj] * e, dq * d * d, dq * d);
        go[jj] += if on { gov } else { zero };
        ga[jj] += if on { gav } else { zero };
        let dqx = if on { dqxv } else { zero };
        let dqy = dy * dq;
        s_dx[jj] += dqx;
        s_dy[jj] += dqy;
        s_dxdy[jj] += dy * dqx;
        s_dy2[jj] += dy2 * dq;
        if ABS {
            // this pixel's ∂L/∂m over −2 (zero where it kept no splat)
            abs_x[jj] += (ca * dqx + cb * dqy).abs();
            abs_y[jj] += (cb * dqx + cc * dqy).abs();
        }
    }
    if ABS {
        *lanes_at(&mut sp.abs_x.0, acc) = abs_x;
        *lanes_at(&mut sp.abs_y.0, acc) = abs_y;
    }
    *lanes_at(&mut sp.go.0, acc) = go;
    *lanes_at(&mut sp.ga.0, acc) = ga;
    *lanes_at(&mut sp.s_dx.0, acc) = s_dx;
    *lanes_at(&mut sp.s_dy.0, acc) = s_dy;
    *lanes_at(&mut sp.s_dxdy.0, acc) = s_dxdy;
    *lanes_at(&mut sp.s_dy2.0, acc) = s_dy2;
}

/// What every tile of the backward pass reads.
#[derive(Clone, Copy)]
pub(super) struct BackInput<'a, T> {
    pub(super) s: &'a Splats<'a, T>,
    pub(super) r: &'a Rendered<T>,
    pub(super) d_image: &'a [T],
    pub(super) d_alpha: Option<&'a [T]>,
    /// Per splat, what the tile loops read (see [`pack`]).
    pub(super) packed: &'a [Packed<T>],
    /// Whether the records also carry the absolute sums (see
    /// [`backward_abs`]).
    pub(super) abs: bool,
}

/// Values per list entry in the backward pass's records: mean (2), conic
/// (3), opacity (1), colour (`ch`), and with `abs` the absolute sums of
/// the mean's per-pixel gradients (2).
fn record_stride(ch: usize, abs: bool) -> usize {
    6 + ch + if abs { 2 } else { 0 }
}

/// The sum of a splat's per-lane gradients, in a fixed order: a tree of
/// halvings (four dependent additions, not sixteen).
#[inline(always)]
pub(super) fn lane_sum<T: Scalar>(v: &[T; GROUP]) -> T {
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
    backward_with(s, r, d_image, d_alpha, Simd::best())
}

/// [`backward()`], also returning per splat the sums over pixels of the
/// absolute value of each pixel's contribution to `∂L/∂means`, `x` and
/// `y` apart: `[Σ_p |∂L_p/∂m.x|, Σ_p |∂L_p/∂m.y|]` (the absolute
/// screen-space gradient of AbsGS, Ye et al. 2024, gsplat's
/// `absgrad=True`), where `L_p` is the part of the loss that reaches the
/// splat through pixel `p` (its colours and its alpha). `∂L/∂means` is
/// the same sum without the absolute values, so each entry is at least
/// the absolute value of the gradient's. Deterministic and independent of
/// the thread count, like the gradients.
///
/// ```
/// use splat::raster::{backward_abs, forward, opacity_aware_bound, Blend, Splats};
/// let means = [[8.0f64, 8.0]];
/// let conics = [[0.1, 0.0, 0.1]];
/// let bounds = [opacity_aware_bound(means[0], conics[0], 0.9)];
/// let s = Splats { width: 16, height: 16, channels: 1, means: &means,
///     conics: &conics, opacities: &[0.9], colors: &[1.0], bounds: &bounds,
///     order: &[0], background: &[0.0], blend: Blend::Over };
/// let r = forward(&s).unwrap();
/// let d_image = vec![1.0; 256];
/// let (g, abs) = backward_abs(&s, &r, &d_image, None).unwrap();
/// // a symmetric splat under a uniform gradient: the pixels pull it both
/// // ways, so the sum cancels but the absolute sum does not
/// assert!(g.means[0][0].abs() < 1e-9 && abs[0][0] > 0.1);
/// ```
pub fn backward_abs<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
) -> Result<(SplatGrads<T>, Vec<[T; 2]>), RasterError> {
    let (mut out, mut abs) = (SplatGrads::default(), Vec::new());
    let sc = &mut RasterScratch::default();
    let simd = Simd::best();
    backward_in(s, r, d_image, d_alpha, simd, &mut out, Some(&mut abs), sc)?;
    Ok((out, abs))
}

/// [`backward()`] into `out`, reusing its vectors and `sc`'s; with `abs`,
/// also [`backward_abs`]'s sums into it.
pub(crate) fn backward_into<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
    out: &mut SplatGrads<T>,
    abs: Option<&mut Vec<[T; 2]>>,
    sc: &mut RasterScratch<T>,
) -> Result<(), RasterError> {
    let simd = Simd::best();
    backward_in(s, r, d_image, d_alpha, simd, out, abs, sc)
}

/// [`backward()`] built for `simd` (which the caller has checked the CPU has).
pub(super) fn backward_with<T: Scalar>(
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
        None,
        &mut RasterScratch::default(),
    )?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backward_in<T: Scalar>(
    s: &Splats<'_, T>,
    r: &Rendered<T>,
    d_image: &[T],
    d_alpha: Option<&[T]>,
    simd: Simd,
    out: &mut SplatGrads<T>,
    abs: Option<&mut Vec<[T; 2]>>,
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
    let stride = record_stride(ch, abs.is_some());
    pack(s, tiles, &mut sc.packed);
    let inp = BackInput {
        s,
        r,
        d_image,
        d_alpha,
        packed: &sc.packed,
        abs: abs.is_some(),
    };
    // one gradient record per tile entry, each tile's aligned with its list
    let records = &mut sc.records;
    refill_room(records, tiles.ids.len() * stride, T::zero());
    let states = sc.back_states.prepare(ch, BackTile::new);
    if n_tiles > 0 {
        for_tiles_split(0, n_tiles, records, &tiles.offsets, stride, &|t, g| {
            with_state(states, |bt| bt.run(&inp, t, simd, g))
        });
    }
    reduce(records, tiles, stride, ch, n, out);
    if let Some(abs) = abs {
        reduce_abs(records, tiles, stride, ch, n, abs);
    }
    Ok(())
}

/// Sums the records (`stride` values per list entry) into the per-splat
/// gradients `out`: each splat's records in list order (tiles in order),
/// from zero. The splats are cut into one range per thread; each range's
/// sums walk the whole list in order and take the entries of their own
/// splats, so every sum is the sequential walk's (the same bits whatever
/// the thread count), while the records are still read in order, not
/// gathered splat by splat from all over the buffer.
fn reduce<T: Scalar>(
    records: &[T],
    tiles: &TileLists,
    stride: usize,
    ch: usize,
    n: usize,
    out: &mut SplatGrads<T>,
) {
    refill(&mut out.means, n, [T::zero(); 2]);
    refill(&mut out.conics, n, [T::zero(); 3]);
    refill(&mut out.opacities, n, T::zero());
    refill(&mut out.colors, n * ch, T::zero());
    if n == 0 || ch == 0 {
        return;
    }
    let part = reduce_part(n);
    out.means
        .par_chunks_mut(part)
        .zip(out.conics.par_chunks_mut(part))
        .zip(out.opacities.par_chunks_mut(part))
        .zip(out.colors.par_chunks_mut(part * ch))
        .enumerate()
        .for_each(|(p, (((m, cn), op), col))| {
            walk_range(records, &tiles.ids, stride, p * part, m.len(), |i, e| {
                let c = &mut col[i * ch..(i + 1) * ch];
                add_record(e, &mut m[i], &mut cn[i], &mut op[i], c);
            });
        });
}

/// Sums the records' absolute sums (their last two values) into `abs`, one
/// per splat, as [`reduce`] sums the gradients (the same order).
fn reduce_abs<T: Scalar>(
    records: &[T],
    tiles: &TileLists,
    stride: usize,
    ch: usize,
    n: usize,
    abs: &mut Vec<[T; 2]>,
) {
    refill(abs, n, [T::zero(); 2]);
    if n == 0 {
        return;
    }
    let part = reduce_part(n);
    abs.par_chunks_mut(part).enumerate().for_each(|(p, a)| {
        let len = a.len();
        walk_range(records, &tiles.ids, stride, p * part, len, |i, e| {
            a[i][0] += e[6 + ch];
            a[i][1] += e[7 + ch];
        });
    });
}

/// Splats per range of the reductions: one range per thread, at least
/// [`REDUCE_PART_MIN`].
fn reduce_part(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1))
        .max(REDUCE_PART_MIN)
}

/// Calls `add(k − k0, record)` for every list entry (in list order) whose
/// splat `k` is in `k0..k0 + len`.
#[inline(always)]
fn walk_range<T>(
    records: &[T],
    ids: &[u32],
    stride: usize,
    k0: usize,
    len: usize,
    mut add: impl FnMut(usize, &[T]),
) {
    for (e, &k) in records.chunks_exact(stride).zip(ids) {
        if let Some(i) = (k as usize).checked_sub(k0).filter(|&i| i < len) {
            add(i, e);
        }
    }
}

/// The fewest splats in a range of the backward pass's reduction.
pub(super) const REDUCE_PART_MIN: usize = 4096;

/// Adds one record `e` to a splat's gradients.
#[inline(always)]
fn add_record<T: Scalar>(e: &[T], m: &mut [T; 2], cn: &mut [T; 3], op: &mut T, col: &mut [T]) {
    m[0] += e[0];
    m[1] += e[1];
    cn[0] += e[2];
    cn[1] += e[3];
    cn[2] += e[4];
    *op += e[5];
    for (c, v) in col.iter_mut().enumerate() {
        *v += e[6 + c];
    }
}

/// Runs `run(t, records of tile t)` for the tiles `t0..t1` (non-empty),
/// which own `g` (`stride` values per list entry, lists by `offsets`):
/// halves in parallel down to one tile, so no list of slices is
/// allocated.
pub(super) fn for_tiles_split<T: Send>(
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
