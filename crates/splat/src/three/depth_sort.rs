//! The front-to-back order of the visible splats: sorted by camera depth,
//! ties by index, by a stable radix sort that runs on every core.
//!
//! When every visible splat's depth is exactly an `f32` (always for an
//! `f32` scene), each gets the key `bits(depth as f32) << 32 | index`,
//! made in index order, and a stable least-significant-digit radix sort on
//! the depth bits orders them: ties stay in index order. The order of
//! these keys is that of `(bits(depth as f64), index)`, since widening an
//! `f32` keeps the order of bit patterns (positive depths order like their
//! bits), and since each key is distinct, the sorted order is unique: the
//! same as the wide path's, which sorts `(bits(depth as f64), index)` for
//! every splat (the hidden ones `(u64::MAX, HIDDEN | i)`, after every
//! visible one) and keeps the visible prefix. The narrow path reads the
//! splats once and sorts only the visible ones (on a capture most splats
//! are outside a given photo), 8 bytes each, in three passes.
//!
//! Each pass runs in chunks of its keys, one per thread: a histogram of
//! the pass's digit per chunk, then every chunk's first slot for each
//! digit (digit by digit, chunk by chunk: the chunks stay in order within
//! a digit, so the sort stays stable), then each chunk scatters its keys
//! to its own slots. Being stable, the output is the one sorted order
//! whatever the number of chunks.

use chainrule::Scalar;
use rayon::prelude::*;

use super::project::Projected;
use crate::raster::room;

/// Index bit that marks a hidden splat's sort key on the wide path.
const HIDDEN: u32 = 1 << 31;

/// Digit width of the narrow path's radix sort (3 passes cover the 32 bits
/// of an `f32` depth).
const RADIX_BITS: u32 = 11;

/// Buckets per digit.
const BUCKETS: usize = 1 << RADIX_BITS;

/// Fewest keys per chunk: below this the sort runs as one chunk (a
/// chunk's histogram costs `BUCKETS` counters to clear and sum).
const CHUNK_MIN: usize = 16_384;

/// The depth sort's scratch, reused from one call to the next.
#[derive(Debug, Default)]
pub(super) struct DepthKeys {
    /// `(depth bits, index)` of every splat (the wide path).
    wide: Vec<(u64, u32)>,
    /// `f32 depth bits << 32 | index` of the visible splats (the narrow
    /// path), and the radix sort's second buffer.
    narrow: [Vec<u64>; 2],
    /// Per chunk, the number of visible splats among its indices.
    lens: Vec<usize>,
    /// Per chunk, a pass's digit counts, then its slots.
    hist: Vec<u32>,
}

/// Writes to disjoint entries of a buffer from several chunks at once.
struct Shared(*mut u64);
// SAFETY: only used to write entries that no other chunk writes (each
// chunk's slots are its own range of every digit's span), and only while
// the buffer is borrowed mutably.
unsafe impl Sync for Shared {}

/// Front-to-back order of the visible splats (radius > 0, opacity > 0):
/// sorted by depth, ties by index.
pub fn depth_order<T: Scalar>(p: &Projected<T>) -> Vec<u32> {
    let mut order = Vec::new();
    depth_order_into(p, &mut order, &mut DepthKeys::default());
    order
}

/// [`depth_order`] into `order`, with `keys` as scratch (all reused; see
/// the module documentation).
pub(super) fn depth_order_into<T: Scalar>(
    p: &Projected<T>,
    order: &mut Vec<u32>,
    keys: &mut DepthKeys,
) {
    let n = p.radii.len();
    assert!(n < HIDDEN as usize, "depth order: too many splats");
    let visible = |i: usize| p.radii[i] > 0 && p.opacities[i] > T::zero();
    let threads = rayon::current_num_threads().max(1);
    let chunks = (n / CHUNK_MIN).clamp(1, threads);
    let DepthKeys {
        wide,
        narrow: [src, dst],
        lens,
        hist,
    } = keys;
    // the narrow keys of each chunk of indices, at the chunk's start
    src.clear();
    room(src, n);
    src.resize(n, 0);
    lens.clear();
    lens.resize(chunks, 0);
    let per = n.div_ceil(chunks).max(1);
    let narrow = src
        .par_chunks_mut(per)
        .zip(lens.par_iter_mut())
        .enumerate()
        .all(|(c, (out, len))| {
            let mut k = 0;
            for i in c * per..c * per + out.len() {
                if !visible(i) {
                    continue;
                }
                let d = p.depths[i].to_f64();
                let f = d as f32;
                if f64::from(f) != d {
                    return false;
                }
                out[k] = u64::from(f.to_bits()) << 32 | i as u64;
                k += 1;
            }
            *len = k;
            true
        });
    order.clear();
    if narrow {
        // the chunks' keys side by side, in index order (one chunk's
        // already are)
        let m: usize = lens.iter().sum();
        room(dst, n);
        if chunks == 1 {
            src.truncate(m);
        } else {
            dst.truncate(m);
            dst.resize(m, 0);
            let to = Shared(dst.as_mut_ptr());
            let to = &to;
            let lens = &*lens;
            src.par_chunks(per).enumerate().for_each(|(c, keys)| {
                let (start, len) = (lens[..c].iter().sum::<usize>(), lens[c]);
                // SAFETY: chunk c writes dst[start .. start + len], and
                // these ranges tile dst[..m]
                let out = unsafe { std::slice::from_raw_parts_mut(to.0.add(start), len) };
                out.copy_from_slice(&keys[..len]);
            });
            src.truncate(m);
            std::mem::swap(src, dst);
        }
        // the passes' chunks by the keys they sort
        let chunks = chunks.min(m / CHUNK_MIN).max(1);
        for digit in 0..3 {
            radix_pass(src, dst, hist, 32 + RADIX_BITS * digit, chunks);
        }
        room(order, m);
        order.extend(src.iter().map(|&key| key as u32));
        return;
    }
    wide.clear();
    wide.par_extend((0..n).into_par_iter().with_min_len(4096).map(|i| {
        if visible(i) {
            // positive floats order like their bit patterns
            (p.depths[i].to_f64().to_bits(), i as u32)
        } else {
            (u64::MAX, HIDDEN | i as u32)
        }
    }));
    wide.par_sort_unstable();
    let visible = wide.partition_point(|&(_, i)| i < HIDDEN);
    room(order, visible);
    order.extend(wide[..visible].iter().map(|&(_, i)| i));
}

/// One stable pass of the radix sort: the keys of `src` ordered by their
/// digit at bit `shift`, left in `src` (`dst` is the other buffer, of the
/// same length). A digit that every key shares moves nothing.
fn radix_pass(
    src: &mut Vec<u64>,
    dst: &mut Vec<u64>,
    hist: &mut Vec<u32>,
    shift: u32,
    chunks: usize,
) {
    let m = src.len();
    if m == 0 {
        return;
    }
    let per = m.div_ceil(chunks).max(1);
    let chunks = m.div_ceil(per);
    let digit = |key: u64| ((key >> shift) as usize) & (BUCKETS - 1);
    hist.clear();
    hist.resize(chunks * BUCKETS, 0);
    src.par_chunks(per)
        .zip(hist.par_chunks_mut(BUCKETS))
        .for_each(|(keys, h)| {
            for &key in keys {
                h[digit(key)] += 1;
            }
        });
    // each chunk's first slot per digit: digit by digit, chunk by chunk
    let mut at = 0u32;
    for d in 0..BUCKETS {
        let before = at;
        for c in 0..chunks {
            let h = &mut hist[c * BUCKETS + d];
            let count = *h;
            *h = at;
            at += count;
        }
        if (at - before) as usize == m {
            return;
        }
    }
    // (every entry is written below)
    dst.truncate(m);
    dst.resize(m, 0);
    let to = Shared(dst.as_mut_ptr());
    let to = &to;
    src.par_chunks(per)
        .zip(hist.par_chunks_mut(BUCKETS))
        .for_each(|(keys, slot)| {
            for &key in keys {
                let d = digit(key);
                // SAFETY: slot[d] < m, and the slots of this chunk for
                // digit d are written by no other chunk
                unsafe { *to.0.add(slot[d] as usize) = key };
                slot[d] += 1;
            }
        });
    std::mem::swap(src, dst);
}
