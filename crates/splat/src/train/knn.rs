//! Nearest neighbours of a point set, for the initial scales: each
//! Gaussian starts as large as the mean distance to its nearest points, as
//! in the original 3DGS (`distCUDA2`: the mean squared distance to the 3
//! nearest neighbours) and gsplat (`knn`, the same with `k = 3`).
//!
//! A kd-tree built in place over an index permutation (median splits on
//! the axes in turn, leaves of up to `LEAF` (8) points), queried in parallel:
//! O(N log N) for any layout of points, including the dense clusters and
//! far outliers of a COLMAP reconstruction, where a uniform grid would
//! degrade.

use rayon::prelude::*;

/// Largest leaf of the tree (points compared by brute force).
const LEAF: usize = 8;

/// For each point, the mean of the squared distances to its `k` nearest
/// other points (fewer when the set has fewer than `k + 1` points; 0 for a
/// lone point). Duplicates count as neighbours at distance 0. The result
/// does not depend on the number of threads.
///
/// ```
/// let pts = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]];
/// let d = splat::train::knn::mean_sq_dist(&pts, 3);
/// assert_eq!(d[0], (1.0 + 4.0 + 9.0) / 3.0);
/// ```
pub fn mean_sq_dist(points: &[[f64; 3]], k: usize) -> Vec<f64> {
    let n = points.len();
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return vec![0.0; n];
    }
    let mut idx: Vec<usize> = (0..n).collect();
    build(points, &mut idx, 0);
    (0..n)
        .into_par_iter()
        .with_min_len(256)
        .map(|i| {
            let mut best = Best::new(k);
            search(points, &idx, 0, i, &mut best);
            best.d2.iter().sum::<f64>() / k as f64
        })
        .collect()
}

/// Orders `idx` as a kd-tree: the median (on axis `depth % 3`) in the
/// middle, the smaller half before it, the larger after, recursively.
fn build(points: &[[f64; 3]], idx: &mut [usize], depth: usize) {
    if idx.len() <= LEAF {
        return;
    }
    let axis = depth % 3;
    let mid = idx.len() / 2;
    idx.select_nth_unstable_by(mid, |&a, &b| points[a][axis].total_cmp(&points[b][axis]));
    let (lo, rest) = idx.split_at_mut(mid);
    build(points, lo, depth + 1);
    build(points, &mut rest[1..], depth + 1);
}

/// The `k` smallest squared distances found so far, ascending.
struct Best {
    d2: Vec<f64>,
    k: usize,
}

impl Best {
    fn new(k: usize) -> Self {
        Best {
            d2: Vec::with_capacity(k + 1),
            k,
        }
    }
    /// The distance a candidate must beat.
    fn bound(&self) -> f64 {
        if self.d2.len() < self.k {
            f64::INFINITY
        } else {
            self.d2[self.k - 1]
        }
    }
    fn offer(&mut self, d2: f64) {
        if d2 < self.bound() {
            let at = self.d2.partition_point(|&x| x <= d2);
            self.d2.insert(at, d2);
            self.d2.truncate(self.k);
        }
    }
}

fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (0..3).map(|j| (a[j] - b[j]).powi(2)).sum()
}

fn search(points: &[[f64; 3]], idx: &[usize], depth: usize, q: usize, best: &mut Best) {
    let p = &points[q];
    if idx.len() <= LEAF {
        for &j in idx {
            if j != q {
                best.offer(dist2(p, &points[j]));
            }
        }
        return;
    }
    let axis = depth % 3;
    let mid = idx.len() / 2;
    let m = idx[mid];
    if m != q {
        best.offer(dist2(p, &points[m]));
    }
    let diff = p[axis] - points[m][axis];
    let (near, far) = if diff < 0.0 {
        (&idx[..mid], &idx[mid + 1..])
    } else {
        (&idx[mid + 1..], &idx[..mid])
    };
    search(points, near, depth + 1, q, best);
    if diff * diff < best.bound() {
        search(points, far, depth + 1, q, best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::three::scene::Rng;

    fn brute(points: &[[f64; 3]], k: usize) -> Vec<f64> {
        (0..points.len())
            .map(|i| {
                let mut d: Vec<f64> = (0..points.len())
                    .filter(|&j| j != i)
                    .map(|j| dist2(&points[i], &points[j]))
                    .collect();
                d.sort_by(f64::total_cmp);
                d[..k].iter().sum::<f64>() / k as f64
            })
            .collect()
    }

    #[test]
    fn equals_brute_force_on_clustered_points() {
        // a dense cluster, a plane, far outliers and exact duplicates
        let mut rng = Rng::new(7);
        let mut pts: Vec<[f64; 3]> = (0..400)
            .map(|_| [0, 1, 2].map(|_| 0.01 * rng.normal()))
            .collect();
        pts.extend((0..600).map(|_| [rng.range(-5.0, 5.0), rng.range(-5.0, 5.0), 2.0]));
        pts.extend((0..20).map(|_| [0, 1, 2].map(|_| rng.range(-100.0, 100.0))));
        pts.push(pts[3]);
        pts.push(pts[3]);
        for k in [1, 3, 5] {
            let got = mean_sq_dist(&pts, k);
            let want = brute(&pts, k);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-12 * w.max(1.0),
                    "point {i}, k {k}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn grid_spacing() {
        // on a unit grid, the 3 nearest points are at distance 1
        let pts: Vec<[f64; 3]> = (0..1000)
            .map(|i| [(i % 10) as f64, (i / 10 % 10) as f64, (i / 100) as f64])
            .collect();
        assert!(mean_sq_dist(&pts, 3).iter().all(|&d| d == 1.0));
    }

    #[test]
    fn few_points() {
        assert_eq!(mean_sq_dist(&[], 3), Vec::<f64>::new());
        assert_eq!(mean_sq_dist(&[[1.0, 2.0, 3.0]], 3), vec![0.0]);
        assert_eq!(
            mean_sq_dist(&[[0.0; 3], [0.0, 3.0, 4.0]], 3),
            vec![25.0, 25.0]
        );
    }
}
