use super::backward::*;
use super::bin::*;
use super::forward::*;
use super::lanes::*;
use super::*;
use crate::rng::Rng;
use crate::simd::Simd;

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

/// Calls `f(seed, tile, splat, pixel centres x of the tile's columns)`
/// for every splat of every tile of six random scenes, as the tile loops
/// gather them.
fn for_each_gathered<T: Scalar>(mut f: impl FnMut(u64, usize, &SplatRec<T>, &[T; GROUP])) {
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
                f(seed, t, rec, &px);
            }
        }
    }
}

/// Every row the tile loops skip (outside [`RowTest::rows`]) has no lane
/// with `q ≤ q_cut`, computed exactly as the tile loops compute it; and
/// they do skip rows.
fn row_test_skips_only_empty_rows<T: Scalar>() {
    let (mut skipped, mut rows) = (0usize, 0usize);
    for_each_gathered::<T>(|seed, t, rec, px| {
        let rt = RowTest::new(rec, px);
        let [ca, cb, cc] = rec.g.conic;
        let b2 = cb + cb;
        // the rows the tile loops walk
        let walked = rt.rows(rec.rows[0] as usize, rec.rows[1] as usize, rec.g.m[1]);
        for i in rec.rows[0]..rec.rows[1] {
            rows += 1;
            let dy = T::from_f64(i as f64 + 0.5) - rec.g.m[1];
            if (walked.0..walked.1).contains(&(i as usize)) {
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
    });
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
                    let list = &tiles.ids[tiles.offsets[t] as usize..tiles.offsets[t + 1] as usize];
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
/// thread and on three; so do [`backward_abs`]'s absolute sums, and its
/// gradients are [`backward`]'s.
#[test]
fn backward_reduction_is_the_serial_one() {
    backward_reduction_is_the_serial_one_for(300);
    // more splats than one thread's range holds
    backward_reduction_is_the_serial_one_for(2 * REDUCE_PART_MIN + 100);
}

fn backward_reduction_is_the_serial_one_for(n: usize) {
    let sc = scene::<f32>(4, 83, 61, n, 4);
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
        // the build with the absolute sums: its gradients must be the
        // other build's, bit for bit
        abs: true,
    };
    let stride = 8 + s.channels;
    let mut want_abs = vec![[0.0f32; 2]; s.len()];
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
            want_abs[k][0] += e[6 + s.channels];
            want_abs[k][1] += e[7 + s.channels];
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
        let (got, abs) = pool.install(|| backward_abs(&s, &r, &d_img, None).unwrap());
        assert_eq!(got, want, "{threads} threads, with the absolute sums");
        assert_eq!(abs, want_abs, "{threads} threads, absolute sums");
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

/// Binning in parallel chunks gives the lists of a sequential pass (each
/// tile's list: the splats of `order` that reach it, in that order), on
/// one thread and on three, with more splats than one chunk holds, one of
/// them listed twice in `order` and one left out.
#[test]
fn parallel_binning_is_the_sequential_one() {
    let mut sc = scene::<f32>(5, 70, 50, 3 * BIN_CHUNK_MIN + 17, 1);
    // a splat twice, and one left out
    sc.order[7] = sc.order[3];
    sc.order.pop();
    let s = sc.view();
    let (tiles_x, tiles_y) = (70usize.div_ceil(TILE), 50usize.div_ceil(TILE));
    let mut want: Vec<Vec<u32>> = vec![Vec::new(); tiles_x * tiles_y];
    for &k in s.order {
        let Some(r) = pixel_rect(&s.bounds[k as usize], s.width, s.height) else {
            continue;
        };
        let t = r.map(|v| v / TILE as u32);
        let mask = reached_tiles(&s, k as usize, r, t);
        let mut bit = 0;
        for ty in t[1]..=t[3] {
            for tx in t[0]..=t[2] {
                if (mask >> bit.min(63)) & 1 != 0 {
                    want[ty as usize * tiles_x + tx as usize].push(k);
                }
                bit += 1;
            }
        }
    }
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool.install(|| bin_tiles(&s));
        for (t, list) in want.iter().enumerate() {
            let at = got.offsets[t] as usize..got.offsets[t + 1] as usize;
            assert_eq!(&got.ids[at], &list[..], "{threads} threads, tile {t}");
        }
        assert_eq!(got.offsets.len(), want.len() + 1);
        assert_eq!(got.ids.len(), want.iter().map(Vec::len).sum::<usize>());
    }
}

/// Every lane of a row outside [`RowTest::chord_lanes`] has `q > q_cut`,
/// computed exactly as the tile loops compute it (so the backward pass
/// may leave it out of a half block); and chords do make rows of splats
/// wider than half a block fit in one.
fn chords_leave_out_only_lanes_without_a_kept_pixel<T: Scalar>() {
    let (mut narrowed, mut wide_rows) = (0usize, 0usize);
    for_each_gathered::<T>(|seed, t, rec, px| {
        let rt = RowTest::new(rec, px);
        let (lo, hi) = (rec.lanes[0] as usize, rec.lanes[1] as usize);
        let [ca, cb, cc] = rec.g.conic;
        let b2 = cb + cb;
        for i in rec.rows[0]..rec.rows[1] {
            let dy = T::from_f64(i as f64 + 0.5) - rec.g.m[1];
            let Some((first, end)) = rt.chord_lanes(dy.to_f64(), lo, hi) else {
                continue;
            };
            assert!(lo <= first && first <= end && end <= hi);
            if hi > lo + HALF {
                wide_rows += 1;
                narrowed += (end <= first + HALF) as usize;
            }
            let cdy = cc * dy * dy;
            for jj in (lo..hi).filter(|jj| !(first..end).contains(jj)) {
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
    });
    assert!(
        narrowed * 10 > wide_rows,
        "chords narrowed only {narrowed} of {wide_rows} wide rows"
    );
}

#[test]
fn chords_leave_out_only_lanes_without_a_kept_pixel_f32_f64() {
    chords_leave_out_only_lanes_without_a_kept_pixel::<f32>();
    chords_leave_out_only_lanes_without_a_kept_pixel::<f64>();
}
