//! The two quantisers a SOG file needs: a 256-entry codebook for a pool of
//! scalars (log scales, DC colours, the SH palette's coefficients), and a
//! palette of SH vectors, each Gaussian's higher bands replaced by one of
//! its entries.
//!
//! The codebook is a one-dimensional k-means (Lloyd's iterations on the
//! sorted values, started from greedy splits of their range, towards the
//! least density-weighted squared error of the values it stands for), so
//! every entry is the weighted mean of the values that use it. The palette
//! splits the vectors in two again and again (along the coordinate that
//! varies most, where the squared error is least, within the middle half),
//! until there are as many groups as entries, each entry the mean of its
//! group. splat-transform clusters the palette with k-means instead (ten
//! Lloyd iterations, on the GPU or with a k-d tree on the CPU); with its
//! palette size, kept here (between half the Gaussians and all of them, at
//! most 65,536), the splits take about a second per million Gaussians on
//! the CPU and reach a somewhat larger error (BENCHMARKS.md).

use std::cmp::Ordering;

/// Lloyd's iterations at most (a codebook of 256 entries settles in a few
/// dozen).
const MAX_ITERATIONS: usize = 100;

/// Bins of the histogram that weighs each value by its neighbourhood's
/// density (see [`codebook`]).
const BINS: usize = 1024;

/// Running sums of weights, weighted values and weighted squares over the
/// sorted values (shifted by the first, for precision), so that any
/// range's weighted mean and squared error take O(1).
struct Sums {
    base: f64,
    sums: Vec<[f64; 3]>,
}

impl Sums {
    fn new(v: &[f64], w: &[f64]) -> Sums {
        let base = v[0];
        let mut sums = Vec::with_capacity(v.len() + 1);
        let mut acc = [0.0f64; 3];
        sums.push(acc);
        for (&x, &w) in v.iter().zip(w) {
            let d = x - base;
            acc = [acc[0] + w, acc[1] + w * d, acc[2] + w * d * d];
            sums.push(acc);
        }
        Sums { base, sums }
    }

    fn range(&self, a: usize, b: usize) -> [f64; 3] {
        let (p, q) = (self.sums[a], self.sums[b]);
        [q[0] - p[0], q[1] - p[1], q[2] - p[2]]
    }

    /// The weighted mean of the values `a..b` (not empty).
    fn mean(&self, a: usize, b: usize) -> f64 {
        let [w, wx, _] = self.range(a, b);
        self.base + wx / w
    }

    /// The weighted squared error of the values `a..b` about their mean.
    fn sse(&self, a: usize, b: usize) -> f64 {
        let [w, wx, wxx] = self.range(a, b);
        if b <= a || w <= 0.0 {
            return 0.0;
        }
        (wxx - wx * wx / w).max(0.0)
    }
}

/// A codebook of `k` entries in increasing order for `values` (their
/// non-finite members left out): the weighted means of a one-dimensional
/// k-means partition. Each value weighs `1/√c`, `c` the number of values in
/// its bin of a 1,024-bin histogram over their range (the density weight
/// `count^0.5` a bin of splat-transform's quantiser has), so that sparse
/// tails (the largest splats' scales, the brightest colours) get entries
/// of their own instead of being drawn towards the crowd. Fewer distinct
/// values than `k` become entries themselves; the unused entries then
/// repeat the largest value. Nothing to code gives zeros.
pub(super) fn codebook(values: &[f32], k: usize) -> Vec<f32> {
    let mut v: Vec<f64> = values
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x as f64)
        .collect();
    if v.is_empty() || k == 0 {
        return vec![0.0; k];
    }
    v.sort_by(f64::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    if distinct.len() <= k {
        let last = *distinct.last().expect("not empty");
        distinct.resize(k, last);
        return distinct.into_iter().map(|x| x as f32).collect();
    }
    let n = v.len();
    let (lo, hi) = (v[0], v[n - 1]);
    let bin = |x: f64| (((x - lo) / (hi - lo) * BINS as f64) as usize).min(BINS - 1);
    let mut counts = vec![0usize; BINS];
    for &x in &v {
        counts[bin(x)] += 1;
    }
    let w: Vec<f64> = v
        .iter()
        .map(|&x| 1.0 / (counts[bin(x)] as f64).sqrt())
        .collect();
    let sums = Sums::new(&v, &w);
    let mut c = greedy_splits(&v, &sums, k);
    // then Lloyd's iterations: a value belongs to the nearest entry, so
    // each entry's values are a range of `v` bounded by the midpoints
    // between entries
    let mut bounds = vec![0usize; k + 1];
    for _ in 0..MAX_ITERATIONS {
        c.sort_by(f64::total_cmp);
        bounds[k] = n;
        for i in 1..k {
            let mid = 0.5 * (c[i - 1] + c[i]);
            bounds[i] = v.partition_point(|&x| x < mid).max(bounds[i - 1]);
        }
        let mut next: Vec<f64> = (0..k)
            .map(|i| {
                let (a, b) = (bounds[i], bounds[i + 1]);
                if b > a {
                    sums.mean(a, b)
                } else {
                    f64::NAN
                }
            })
            .collect();
        // an entry no value uses takes the value farthest from its own
        // entry (a range's ends are the candidates), so no entry is wasted
        let empty: Vec<usize> = (0..k).filter(|&i| next[i].is_nan()).collect();
        if !empty.is_empty() {
            let mut worst: Vec<(f64, f64)> = Vec::new();
            for i in 0..k {
                let (a, b) = (bounds[i], bounds[i + 1]);
                if b > a {
                    for x in [v[a], v[b - 1]] {
                        worst.push(((x - next[i]).abs(), x));
                    }
                }
            }
            worst.sort_by(|p, q| q.0.total_cmp(&p.0));
            let mut candidates = worst.into_iter().map(|w| w.1);
            for i in empty {
                // (a value already an entry would be wasted again)
                next[i] = candidates
                    .by_ref()
                    .find(|x| !next.contains(x))
                    .unwrap_or(v[n - 1]);
            }
        }
        let moved = next
            .iter()
            .zip(&c)
            .any(|(a, b)| a.total_cmp(b) != Ordering::Equal);
        c = next;
        if !moved {
            break;
        }
    }
    c.sort_by(f64::total_cmp);
    c.into_iter().map(|x| x as f32).collect()
}

/// The weighted means of `k` ranges of the sorted `v` (which has more
/// than `k` distinct values), made by splitting the range of largest
/// weighted squared error at its best cut until there are `k`: a start for
/// Lloyd's iterations that gives a far value its own entry, where starting
/// at the quantiles would spend every entry on the crowd.
fn greedy_splits(v: &[f64], sums: &Sums, k: usize) -> Vec<f64> {
    let mut ranges = vec![(0usize, v.len())];
    while ranges.len() < k {
        // the range to split: the largest error among those with two
        // distinct values
        let Some((at, _)) = ranges
            .iter()
            .enumerate()
            .filter(|(_, &(a, b))| v[a] != v[b - 1])
            .map(|(i, &(a, b))| (i, sums.sse(a, b)))
            .max_by(|x, y| x.1.total_cmp(&y.1))
        else {
            break;
        };
        let (a, b) = ranges[at];
        // the cut between two different values of least error
        let cut = (a + 1..b)
            .filter(|&c| v[c - 1] != v[c])
            .min_by(|&c, &e| {
                (sums.sse(a, c) + sums.sse(c, b)).total_cmp(&(sums.sse(a, e) + sums.sse(e, b)))
            })
            .expect("two distinct values");
        ranges[at] = (a, cut);
        ranges.push((cut, b));
    }
    ranges.iter().map(|&(a, b)| sums.mean(a, b)).collect()
}

/// The index of the entry of `book` (increasing) nearest `x`; a NaN gets 0.
pub(super) fn nearest(book: &[f32], x: f32) -> u8 {
    if x.is_nan() || book.is_empty() {
        return 0;
    }
    let x = x as f64;
    let i = book.partition_point(|&c| (c as f64) < x);
    let best = if i == 0 {
        0
    } else if i == book.len() {
        book.len() - 1
    } else if x - book[i - 1] as f64 <= book[i] as f64 - x {
        i - 1
    } else {
        i
    };
    best.min(255) as u8
}

/// A palette of at most `k` vectors of `d` values for the `rows` (row-major,
/// `d` values each) and each row's entry: every row its own entry when
/// there are at most `k`, else `k` groups, each entry its group's mean.
///
/// The groups come from splitting the rows again and again along the
/// coordinate that varies most within them, at the cut that leaves the
/// least squared error along it (two-means in one dimension, so separate
/// clusters stay apart) among the cuts that leave each side at least a
/// quarter of the rows (so that a few far rows cannot make every split
/// peel them off one by one: at most log₄⁄₃ k levels), the entries still
/// to make shared between the two sides in proportion to their rows.
pub(super) fn palette(rows: &[f32], d: usize, k: usize) -> (Vec<f32>, Vec<u32>) {
    assert!(d > 0 && rows.len() % d == 0, "rows of {d} values");
    let n = rows.len() / d;
    if n <= k {
        return (rows.to_vec(), (0..n as u32).collect());
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    let value = |r: u32, j: usize| rows[r as usize * d + j] as f64;
    // ranges of `order` and the entries each still has to make (at most
    // as many as its rows); a work list, not recursion
    let mut todo = vec![(0usize, n, k)];
    let mut groups: Vec<(usize, usize)> = Vec::with_capacity(k);
    let (mut mean, mut m2) = (vec![0.0f64; d], vec![0.0f64; d]);
    while let Some((a, b, parts)) = todo.pop() {
        if parts <= 1 {
            groups.push((a, b));
            continue;
        }
        // the coordinate of largest variance (Welford's sums)
        mean.iter_mut().for_each(|x| *x = 0.0);
        m2.iter_mut().for_each(|x| *x = 0.0);
        for (t, &r) in order[a..b].iter().enumerate() {
            for j in 0..d {
                let x = value(r, j);
                let delta = x - mean[j];
                mean[j] += delta / (t + 1) as f64;
                m2[j] += delta * (x - mean[j]);
            }
        }
        let axis = (0..d)
            .max_by(|&i, &j| m2[i].total_cmp(&m2[j]).then(j.cmp(&i)))
            .expect("d > 0");
        order[a..b]
            .sort_unstable_by(|&p, &q| value(p, axis).total_cmp(&value(q, axis)).then(p.cmp(&q)));
        // the cut c (rows a..a+c and a+c..b) of least squared error along
        // the axis, from running sums
        let m = b - a;
        let xs: Vec<f64> = order[a..b].iter().map(|&r| value(r, axis)).collect();
        let sums = Sums::new(&xs, &vec![1.0; m]);
        let sse = |lo: usize, hi: usize| sums.sse(lo, hi);
        let cut = ((m / 4).max(1)..=(m - m / 4).min(m - 1))
            .min_by(|&c, &e| {
                (sse(0, c) + sse(c, m))
                    .total_cmp(&(sse(0, e) + sse(e, m)))
                    .then(c.abs_diff(m / 2).cmp(&e.abs_diff(m / 2)))
            })
            .expect("m > parts > 1");
        // entries in proportion to rows, each side at least one and at
        // most its rows (possible: parts ≤ m)
        let share = ((parts * cut) as f64 / m as f64).round() as usize;
        let left = share.clamp(parts.saturating_sub(m - cut).max(1), cut.min(parts - 1));
        todo.push((a + cut, b, parts - left));
        todo.push((a, a + cut, left));
    }
    let mut centroids = Vec::with_capacity(groups.len() * d);
    let mut labels = vec![0u32; n];
    for (label, &(a, b)) in groups.iter().enumerate() {
        mean.iter_mut().for_each(|x| *x = 0.0);
        for &r in &order[a..b] {
            labels[r as usize] = label as u32;
            for (j, m) in mean.iter_mut().enumerate() {
                *m += value(r, j);
            }
        }
        centroids.extend(mean.iter().map(|m| (m / (b - a) as f64) as f32));
    }
    (centroids, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_are_their_own_entries() {
        let book = codebook(&[3.0, 1.0, 3.0, 2.0, f32::NAN, f32::INFINITY], 5);
        assert_eq!(book, vec![1.0, 2.0, 3.0, 3.0, 3.0]);
        assert_eq!(nearest(&book, 2.4), 1);
        assert_eq!(nearest(&book, 2.6), 2);
        assert_eq!(nearest(&book, -9.0), 0);
        assert_eq!(nearest(&book, f32::NAN), 0);
        assert_eq!(codebook(&[], 3), vec![0.0; 3]);
    }

    #[test]
    fn a_codebook_entry_stands_for_the_values_nearest_it() {
        // two clusters of very different sizes and a far outlier: each
        // entry lies among the values nearest to it (their weighted mean)
        let mut values: Vec<f32> = (0..5000).map(|i| (i % 97) as f32 * 0.01).collect();
        values.extend((0..50).map(|i| 10.0 + i as f32 * 0.1));
        values.push(1000.0);
        let book = codebook(&values, 16);
        assert_eq!(book.len(), 16);
        assert!(book.windows(2).all(|w| w[0] <= w[1]));
        assert!(book.contains(&1000.0), "the outlier keeps an entry");
        for (e, &c) in book.iter().enumerate() {
            let mine: Vec<f32> = values
                .iter()
                .copied()
                .filter(|&x| nearest(&book, x) as usize == e)
                .collect();
            let (lo, hi) = mine
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            assert!(
                mine.is_empty() || (lo <= c && c <= hi),
                "entry {e}: {c} outside {lo}..{hi}"
            );
        }
        let err = |book: &[f32]| -> f64 {
            values
                .iter()
                .map(|&x| (x - book[nearest(book, x) as usize]) as f64)
                .map(|e| e * e)
                .sum()
        };
        // better than evenly spaced entries over the range
        let even: Vec<f32> = (0..16).map(|i| i as f32 * 1000.0 / 15.0).collect();
        assert!(err(&book) < err(&even) / 100.0);
    }

    #[test]
    fn a_sparse_tail_keeps_fine_entries() {
        // 100,000 values crowded in [0, 1) and 40 spread over [1, 9]: the
        // density weight gives the tail entries of its own, so no tail
        // value is far from one (the least squared error alone spends
        // nearly every entry on the crowd)
        let mut values: Vec<f32> = (0..100_000)
            .map(|i| (i as f32 * 0.618_034).fract())
            .collect();
        values.extend((0..40).map(|i| 1.0 + i as f32 * 0.2));
        let book = codebook(&values, 64);
        let worst = values
            .iter()
            .map(|&x| (x - book[nearest(&book, x) as usize]).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.2, "a value is {worst} from its entry");
    }

    #[test]
    fn a_palette_groups_near_rows_and_labels_every_row() {
        // 64 rows around 8 well-separated centres: 8 entries find them
        let d = 5;
        let mut rows = Vec::new();
        for r in 0..64 {
            let centre = (r % 8) as f32 * 10.0;
            for j in 0..d {
                rows.push(centre + ((r * 7 + j * 3) % 5) as f32 * 0.01);
            }
        }
        let (centroids, labels) = palette(&rows, d, 8);
        assert_eq!(centroids.len(), 8 * d);
        assert_eq!(labels.len(), 64);
        for r in 0..64 {
            let e = labels[r] as usize;
            for j in 0..d {
                assert!((centroids[e * d + j] - rows[r * d + j]).abs() < 0.05);
            }
        }
        // as many rows as entries or fewer: each row is its own
        let (c, l) = palette(&rows[..3 * d], d, 8);
        assert_eq!(c, rows[..3 * d].to_vec());
        assert_eq!(l, vec![0, 1, 2]);
    }

    #[test]
    fn a_palette_of_equal_rows_still_makes_its_entries() {
        let rows = vec![0.5f32; 100 * 3];
        let (c, l) = palette(&rows, 3, 16);
        assert_eq!(c.len(), 16 * 3);
        assert!(c.iter().all(|&x| x == 0.5));
        assert!(l.iter().all(|&e| e < 16));
    }

    #[test]
    fn a_palette_keeps_unequal_clusters_apart() {
        // 5 rows of one kind and 59 of another, 32 entries (a palette's
        // usual size, half the rows): no entry mixes them (a split at the
        // median of every range would)
        let mut rows = vec![0.0f32; 5 * 2];
        rows.extend((0..59).flat_map(|i| [5.0 + (i % 10) as f32 * 0.01, 1.0]));
        let (c, l) = palette(&rows, 2, 32);
        assert_eq!(c.len(), 32 * 2);
        for r in 0..64 {
            let e = l[r] as usize;
            assert!((c[2 * e] - rows[2 * r]).abs() < 0.1, "row {r}");
        }
    }
}
