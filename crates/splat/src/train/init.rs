//! The initial scene: the dataset's sparse points, or random points in a
//! box around what the cameras look at.

use super::{knn, logit, TrainConfig, GROUPS};
use crate::data::Dataset;
use crate::three::scene::{sh_coeffs, Rng};
use crate::three::sh::SH_C0;

/// The smallest initial scale, times the camera extent (for points with
/// duplicates among their nearest neighbours).
const MIN_INIT_SCALE: f64 = 3e-4;

/// The box random initial points are drawn in: a cube of half-side
/// `extent / 3` around the point closest to all optical axes (cameras look
/// inward; for cameras on a sphere of radius 4 this is the usual ±1.5 cube
/// around the origin), or around the cameras' centre when the axes are
/// near-parallel (forward-facing captures), or when fewer than half the
/// cameras look towards that point (within 60° of their axis): then, if
/// their axes spread out (their mean is shorter than 0.5), the capture
/// looks outwards from among its cameras (a room filmed from its middle, a
/// panorama's faces), and what it sees lies beyond them, so the cube is
/// `3 × extent` in half-side around the cameras' centre, as gsplat's
/// random start (`init_extent` 3 times the scene scale); if not, it is
/// forward-facing, its axes meeting wherever noise puts them.
fn camera_box(data: &Dataset, center: [f64; 3], extent: f64) -> ([f64; 3], [f64; 3]) {
    // least squares: Σ (I − d dᵀ) p = Σ (I − d dᵀ) c
    let mut a = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    // (every photo once: one in both halves weighs as one)
    for v in data.views() {
        let m = &v.world_to_camera;
        let d = [m[2][0], m[2][1], m[2][2]];
        let c = v.camera_center();
        for r in 0..3 {
            for k in 0..3 {
                let p = if r == k { 1.0 } else { 0.0 } - d[r] * d[k];
                a[r][k] += p;
                b[r] += p * c[k];
            }
        }
    }
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    let n = data.views().count() as f64;
    let axes_meet = det.abs() > 1e-3 * n * n * n;
    let mid = if axes_meet {
        // Cramer's rule
        let col = |k: usize| {
            let mut m = a;
            for r in 0..3 {
                m[r][k] = b[r];
            }
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        [col(0) / det, col(1) / det, col(2) / det]
    } else {
        center
    };
    let towards = data
        .views()
        .filter(|v| {
            let m = &v.world_to_camera;
            let c = v.camera_center();
            let to: [f64; 3] = std::array::from_fn(|k| mid[k] - c[k]);
            let along: f64 = (0..3).map(|k| m[2][k] * to[k]).sum();
            along > 0.5 * to.iter().map(|t| t * t).sum::<f64>().sqrt()
        })
        .count() as f64;
    // outwards when their axes also spread out; a forward-facing capture's
    // nearly parallel axes meet anywhere around the cameras, noise
    // deciding where (behind them as often as not): its box is around the
    // cameras, as when the axes are parallel
    let mut mean_axis = [0.0; 3];
    for v in data.views() {
        for (k, m) in mean_axis.iter_mut().enumerate() {
            *m += v.world_to_camera[2][k] / n;
        }
    }
    let spread = mean_axis.iter().map(|m| m * m).sum::<f64>() < 0.25;
    let mid = match axes_meet && 2.0 * towards < n {
        true if spread => {
            let h = 3.0 * extent;
            return (
                [0, 1, 2].map(|k| center[k] - h),
                [0, 1, 2].map(|k| center[k] + h),
            );
        }
        true => center,
        false => mid,
    };
    let h = extent / 3.0;
    ([0, 1, 2].map(|k| mid[k] - h), [0, 1, 2].map(|k| mid[k] + h))
}

/// The initial parameters per group: the dataset's sparse points if it has
/// them (a random subset of `cfg.max_gaussians` of them when there are
/// more: [`cap_points`]), otherwise `cfg.init_points` random points in a
/// cube around the point the cameras look at (half-side: a third of the
/// camera extent), or around the cameras when they look outwards (three
/// times the extent: [`camera_box`]);
/// each point's scale the root mean squared distance to its 3 nearest
/// points (isotropic, as in the original 3DGS and gsplat) times
/// [`TrainConfig::initial_scale`], opacity [`TrainConfig::initial_opacity`]
/// (opacity 0.1 and scale ×1 by default, 0.5 and ×0.1 for MCMC), no view
/// dependence.
pub(super) fn initial_params(data: &Dataset, cfg: &TrainConfig) -> [Vec<f64>; GROUPS] {
    let (center, extent) = data.camera_extent();
    let extent = if extent > 0.0 { extent } else { 1.0 };
    let mut rng = Rng::new(cfg.seed);
    let (pts, cols): (Vec<[f64; 3]>, Vec<[f64; 3]>) = match &data.points {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|p| (p.xyz, p.rgb.map(|c| c as f64 / 255.0)))
            .unzip(),
        _ => {
            let (lo, hi) = camera_box(data, center, extent);
            (0..cfg.init_points.clamp(1, cfg.max_gaussians))
                .map(|_| {
                    let p = [0, 1, 2].map(|k| rng.range(lo[k], hi[k]));
                    (p, [rng.uniform(), rng.uniform(), rng.uniform()])
                })
                .unzip()
        }
    };
    // more sparse points than the budget: a seeded random subset of them,
    // in their order (the budget is a cap from the first iteration on)
    let (pts, cols) = cap_points(pts, cols, cfg.max_gaussians.max(1), &mut rng);
    // initial scale: the root mean squared distance to the 3 nearest
    // points, per point (3DGS, gsplat), floored for duplicates
    let floor = MIN_INIT_SCALE * extent;
    let times = cfg.initial_scale();
    let scales: Vec<f64> = knn::mean_sq_dist(&pts, 3)
        .into_iter()
        .map(|d2| (d2.sqrt().max(floor) * times).ln())
        .collect();
    let opacity = logit(cfg.initial_opacity());
    let k = sh_coeffs(cfg.sh_degree);
    let mut params: [Vec<f64>; GROUPS] = Default::default();
    for ((p, c), &s) in pts.iter().zip(&cols).zip(&scales) {
        params[0].extend_from_slice(p);
        params[1].extend_from_slice(&[s; 3]);
        params[2].extend_from_slice(&[1.0, 0.0, 0.0, 0.0]);
        params[3].push(opacity);
        params[4].extend(c.iter().map(|&c| (c - 0.5) / SH_C0));
        params[5].extend(std::iter::repeat_n(0.0, 3 * (k - 1)));
    }
    params
}

/// At most `cap` of the points and their colours, chosen at random (a
/// partial Fisher–Yates shuffle of the indices) and kept in their order;
/// all of them when there are no more than `cap`.
pub(super) fn cap_points(
    pts: Vec<[f64; 3]>,
    cols: Vec<[f64; 3]>,
    cap: usize,
    rng: &mut Rng,
) -> (Vec<[f64; 3]>, Vec<[f64; 3]>) {
    let n = pts.len();
    if n <= cap {
        return (pts, cols);
    }
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..cap {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut keep = idx[..cap].to_vec();
    keep.sort_unstable();
    keep.iter().map(|&i| (pts[i], cols[i])).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Point;
    use crate::train::Strategy;

    /// The default strategy starts at the original 3DGS's opacity 0.1 and
    /// the nearest points' distance; MCMC at gsplat's preset, 0.5 and a
    /// tenth of it; given values win over both.
    #[test]
    fn the_strategy_sets_the_initial_opacity_and_scale() {
        let data = Dataset {
            train: vec![],
            test: vec![],
            points: Some(
                [
                    [0.0, 0.0, 0.0],
                    [1.0, 0.0, 0.0],
                    [0.0, 2.0, 0.0],
                    [0.0, 0.0, 3.0],
                ]
                .map(|xyz| Point { xyz, rgb: [9; 3] })
                .to_vec(),
            ),
            format: "colmap",
            notes: vec![],
            read_from: vec![],
        };
        let start = |strategy, init_opacity, init_scale| {
            let cfg = TrainConfig {
                strategy,
                init_opacity,
                init_scale,
                ..TrainConfig::default()
            };
            initial_params(&data, &cfg)
        };
        let sig = |l: f64| 1.0 / (1.0 + (-l).exp());
        let plain = start(Strategy::Default, None, None);
        let mcmc = start(Strategy::Mcmc, None, None);
        // the origin's 3 nearest points are at 1, 2 and 3: √(14/3)
        let d = (14.0f64 / 3.0).sqrt();
        assert!((plain[1][0].exp() - d).abs() < 1e-12);
        assert!((mcmc[1][0].exp() - 0.1 * d).abs() < 1e-12);
        for (p, m) in plain[3].iter().zip(&mcmc[3]) {
            assert!((sig(*p) - 0.1).abs() < 1e-12 && (sig(*m) - 0.5).abs() < 1e-12);
        }
        // everything else starts the same
        for g in [0, 2, 4, 5] {
            assert_eq!(plain[g], mcmc[g]);
        }
        // a start the default strategy would prune at once is refused,
        // and so are opacities and scales outside their ranges
        let bad = [
            (Strategy::Default, Some(0.005), None, "pruning threshold"),
            (Strategy::Default, Some(1.0), None, "between 0 and 1"),
            (Strategy::Mcmc, Some(0.0), None, "between 0 and 1"),
            (Strategy::Mcmc, None, Some(1e-7), "from 1e-6 to 1000"),
        ];
        let identity = std::array::from_fn(|r| std::array::from_fn(|c| f64::from(r == c)));
        let one_view = Dataset {
            train: vec![crate::data::View {
                image: crate::data::Pixels8::from_bytes(vec![0; 3 * 64]),
                ..crate::data::View::camera_only("v".into(), (8, 8), [9.0, 9.0, 4.0, 4.0], identity)
            }],
            ..data.clone()
        };
        for (strategy, init_opacity, init_scale, why) in bad {
            let cfg = TrainConfig {
                strategy,
                init_opacity,
                init_scale,
                ..TrainConfig::default()
            };
            let e = super::super::config::check_config(&one_view, &cfg).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let given = start(Strategy::Mcmc, Some(0.25), Some(2.0));
        assert!((sig(given[3][0]) - 0.25).abs() < 1e-12);
        assert!((given[1][0].exp() - 2.0 * d).abs() < 1e-12);
    }

    /// Cameras on a sphere looking at its centre start in a small cube
    /// there; panoramas' faces (six axes from each of a few places close
    /// together) look outwards and start in a cube three times the
    /// cameras' extent around them.
    #[test]
    fn random_points_fill_what_the_cameras_look_at() {
        let at = |c: [f64; 3], r: [[f64; 3]; 3]| {
            // world-to-camera: rotation r, centre c (t = −r·c)
            let mut m = [[0.0; 4]; 4];
            for i in 0..3 {
                m[i][..3].copy_from_slice(&r[i]);
                m[i][3] = -(0..3).map(|k| r[i][k] * c[k]).sum::<f64>();
            }
            m[3][3] = 1.0;
            crate::data::View::camera_only("v".into(), (8, 8), [9.0, 9.0, 4.0, 4.0], m)
        };
        let dataset = |train| Dataset {
            train,
            test: vec![],
            points: None,
            format: "colmap",
            notes: vec![],
            read_from: vec![],
        };
        // inward: on the axes ±x, ±y, ±z at distance 4, each looking at 0
        let mut inward = Vec::new();
        for (_, r) in crate::cameras::undistort::FACES {
            // the face looks along its third row: stand at −4 × it
            let c = r[2].map(|v| -4.0 * v);
            inward.push(at(c, r));
        }
        let data = dataset(inward);
        let (center, extent) = data.camera_extent();
        let (lo, hi) = camera_box(&data, center, extent);
        for k in 0..3 {
            assert!((lo[k] + extent / 3.0).abs() < 1e-9, "{lo:?}");
            assert!((hi[k] - extent / 3.0).abs() < 1e-9, "{hi:?}");
        }
        // outward: the six faces at each of three places 0.2 apart
        let mut outward = Vec::new();
        for c in [[0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.2, 0.1]] {
            for (_, r) in crate::cameras::undistort::FACES {
                outward.push(at(c, r));
            }
        }
        let data = dataset(outward);
        let (center, extent) = data.camera_extent();
        let (lo, hi) = camera_box(&data, center, extent);
        for k in 0..3 {
            assert!((lo[k] - (center[k] - 3.0 * extent)).abs() < 1e-12);
            assert!((hi[k] - (center[k] + 3.0 * extent)).abs() < 1e-12);
        }
        // forward-facing: a grid of cameras looking along +z, each turned
        // a few degrees, so that their axes meet somewhere near them, not
        // in front: not taken for an outward capture
        let mut forward = Vec::new();
        for i in 0..12 {
            let a = 0.05 * ((i * 7 % 5) as f64 - 2.0);
            let b = 0.04 * ((i * 3 % 4) as f64 - 1.5);
            let r = [
                [a.cos(), 0.0, -a.sin()],
                [a.sin() * b.sin(), b.cos(), a.cos() * b.sin()],
                [a.sin() * b.cos(), -b.sin(), a.cos() * b.cos()],
            ];
            forward.push(at([(i % 4) as f64 * 0.1, (i / 4) as f64 * 0.1, 0.0], r));
        }
        let data = dataset(forward);
        let (center, extent) = data.camera_extent();
        let (lo, hi) = camera_box(&data, center, extent);
        // (the axes meet behind these cameras: the box is around them)
        for k in 0..3 {
            assert!((lo[k] - (center[k] - extent / 3.0)).abs() < 1e-12, "{lo:?}");
            assert!((hi[k] - (center[k] + extent / 3.0)).abs() < 1e-12, "{hi:?}");
        }
    }

    #[test]
    fn capped_points_are_a_seeded_subset_in_order() {
        let pts: Vec<[f64; 3]> = (0..100).map(|i| [i as f64, 0.0, 0.0]).collect();
        let cols: Vec<[f64; 3]> = (0..100).map(|i| [0.0, i as f64, 0.0]).collect();
        let (p, c) = cap_points(pts.clone(), cols.clone(), 30, &mut Rng::new(7));
        assert_eq!((p.len(), c.len()), (30, 30));
        // each point keeps its own colour, in the original order, no repeats
        assert!(p.iter().zip(&c).all(|(p, c)| p[0] == c[1]));
        assert!(p.windows(2).all(|w| w[0][0] < w[1][0]));
        // not simply the first 30
        assert!(p.last().unwrap()[0] > 29.0);
        // the same seed, the same subset; another seed, another one
        let (q, _) = cap_points(pts.clone(), cols.clone(), 30, &mut Rng::new(7));
        assert_eq!(p, q);
        let (r, _) = cap_points(pts.clone(), cols.clone(), 30, &mut Rng::new(8));
        assert_ne!(p, r);
        // at or under the cap: all of them, unchanged
        let (all, _) = cap_points(pts.clone(), cols.clone(), 100, &mut Rng::new(7));
        assert_eq!(all, pts);
    }
}
