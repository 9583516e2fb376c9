//! Schedules: which training view an iteration renders, the learning
//! rate of each parameter group, when the next spherical-harmonic band is
//! unlocked, and when density control runs.

use super::exposure::EXPOSURE_LR;
use super::TrainConfig;
use crate::rng::Rng;

/// An epoch's order of the training views, cached between iterations by
/// [`view_of`]: the epoch it belongs to and the permutation.
#[derive(Clone, Debug, Default)]
pub(super) struct ViewOrder {
    epoch: Option<usize>,
    order: Vec<usize>,
}

/// The training view that iteration `it` (counted from 1) renders among
/// `n`: every epoch of `n` iterations visits each view once, in an order
/// shuffled afresh per epoch from the seed, as the original 3DGS (its
/// `viewpoint_stack`) and gsplat (a shuffling loader) sample. The view
/// depends only on the seed, `it` and `n`, so a resumed run renders the
/// views the uninterrupted one would; `cache` keeps the epoch's order
/// (its buffer reused: no allocation after the first epoch).
pub(super) fn view_of(seed: u64, it: u32, n: usize, cache: &mut ViewOrder) -> usize {
    assert!(n > 0 && it > 0, "a view of iteration {it} among {n}");
    let (epoch, pos) = ((it - 1) as usize / n, (it - 1) as usize % n);
    if cache.epoch != Some(epoch) || cache.order.len() != n {
        let mut r =
            Rng::new(seed ^ 0x005E_ED0F_E90C ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        cache.order.clear();
        cache.order.extend(0..n);
        // Fisher–Yates
        for i in (1..n).rev() {
            let j = (r.next_u64() % (i as u64 + 1)) as usize;
            cache.order.swap(i, j);
        }
        cache.epoch = Some(epoch);
    }
    cache.order[pos]
}

/// Learning rate of parameter group `g` after `iteration` iterations: the
/// positions' decays log-linearly from `lr_mean` to `lr_mean_final` (both
/// times the scene `extent`) over `cfg.lr_mean_steps` (30,000 by default;
/// the CLI: [`TrainConfig::position_lr_steps`]), then stays; the others are constant (higher SH
/// bands: 20× below the DC rate).
pub(super) fn group_lr(cfg: &TrainConfig, g: usize, iteration: u32, extent: f64) -> f64 {
    match g {
        0 => cfg.position_lr(iteration) * extent,
        1 => cfg.lr_scale,
        2 => cfg.lr_rotation,
        3 => cfg.lr_opacity,
        4 => cfg.lr_sh,
        _ => cfg.lr_sh / 20.0,
    }
}

/// Whether one more SH band is unlocked after iteration `it` (with
/// `active` bands in use now).
pub(super) fn sh_band_up(cfg: &TrainConfig, it: u32, active: usize) -> bool {
    cfg.sh_interval > 0 && it % cfg.sh_interval == 0 && active < cfg.sh_degree
}

/// The downscale factor of iteration `it` (counted from 1): the coarse
/// phase's `coarse_factor` up to `coarse_until`, then 1.
pub(super) fn resolution_factor(cfg: &TrainConfig, it: u32) -> u32 {
    if it <= cfg.coarse_until {
        cfg.coarse_factor.max(1)
    } else {
        1
    }
}

/// Whether density control runs after iteration `it`: strictly between
/// `densify_from` and `densify_until`, every `densify_every`, never after
/// the last iteration (a split just before the end would be scored).
pub(super) fn densify_now(cfg: &TrainConfig, it: u32) -> bool {
    it < cfg.iters
        && it < cfg.densify_until
        && it > cfg.densify_from
        && cfg.densify_every > 0
        && it % cfg.densify_every == 0
}

/// Density-control rounds from iteration `it` (counted when a round runs
/// after it) to the end of the window.
pub(super) fn densify_rounds_left(cfg: &TrainConfig, it: u32) -> u32 {
    (it..cfg.densify_until.min(cfg.iters))
        .filter(|&i| densify_now(cfg, i))
        .count() as u32
}

/// Whether pruning by size (screen and world) is on at iteration `it`:
/// after `prune_big_from` (the paper: its first opacity reset).
pub(super) fn prune_big_now(cfg: &TrainConfig, it: u32) -> bool {
    it > cfg.prune_big_from
}

/// Whether opacities are reset after iteration `it`.
pub(super) fn opacity_reset_now(cfg: &TrainConfig, it: u32) -> bool {
    it < cfg.iters
        && cfg.opacity_reset_every > 0
        && it % cfg.opacity_reset_every == 0
        && it < cfg.densify_until
}

/// Learning rate of the exposure transforms after `iteration` iterations:
/// log-linear from 0.01 to 0.001 over `cfg.iters` (the original's).
pub(super) fn exposure_lr(cfg: &TrainConfig, iteration: u32) -> f64 {
    let t = (iteration as f64 / cfg.iters.max(1) as f64).clamp(0.0, 1.0);
    (EXPOSURE_LR[0].ln() * (1.0 - t) + EXPOSURE_LR[1].ln() * t).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(iters: u32) -> Vec<u32> {
        let cfg = TrainConfig {
            iters,
            ..TrainConfig::default().with_densify_until(iters / 2)
        };
        (1..=iters).filter(|&it| densify_now(&cfg, it)).collect()
    }

    /// The position rate decays a hundredfold over `lr_mean_steps` and
    /// stays there: with the CLI's rule a 4,000-iteration run ends at a
    /// tenth of its start, a 30,000-iteration run at the original's
    /// hundredth.
    #[test]
    fn position_rate_decays_over_lr_mean_steps_then_stays() {
        let at = |iters: u32, it| {
            let cfg = TrainConfig {
                iters,
                lr_mean_steps: TrainConfig::position_lr_steps(iters),
                ..TrainConfig::default()
            };
            group_lr(&cfg, 0, it, 2.0) / (2.0 * 1.6e-4)
        };
        assert!((at(4000, 0) - 1.0).abs() < 1e-12);
        assert!((at(4000, 4000) - 0.1).abs() < 1e-12, "{}", at(4000, 4000));
        assert!((at(4000, 8000) - 0.01).abs() < 1e-12);
        assert_eq!(at(4000, 9000), at(4000, 8000));
        assert!((at(30_000, 30_000) - 0.01).abs() < 1e-12);
        assert!((at(30_000, 15_000) - 0.1).abs() < 1e-12);
        // the library's default is the original's 30,000 whatever `iters`
        let cfg = TrainConfig {
            iters: 4000,
            ..TrainConfig::default()
        };
        let want = 0.01f64.powf(4000.0 / 30_000.0);
        assert!((group_lr(&cfg, 0, 4000, 1.0) / 1.6e-4 - want).abs() < 1e-12);
    }

    /// Each epoch visits every view once; the epochs' orders differ and
    /// follow the seed; the view of an iteration does not depend on the
    /// iterations asked before it (a resumed run's).
    #[test]
    fn every_epoch_visits_each_view_once_in_its_own_order() {
        let n = 7;
        let mut c = ViewOrder::default();
        let views: Vec<usize> = (1..=5 * n as u32)
            .map(|it| view_of(3, it, n, &mut c))
            .collect();
        let epochs: Vec<&[usize]> = views.chunks(n).collect();
        for e in &epochs {
            let mut sorted = e.to_vec();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        }
        assert!(epochs.windows(2).any(|w| w[0] != w[1]), "{epochs:?}");
        let fresh = |seed, it| view_of(seed, it, n, &mut ViewOrder::default());
        for (i, &v) in views.iter().enumerate().rev() {
            assert_eq!(v, fresh(3, i as u32 + 1));
            assert_eq!(v, view_of(3, i as u32 + 1, n, &mut c));
        }
        let other: Vec<usize> = (1..=5 * n as u32).map(|it| fresh(4, it)).collect();
        assert_ne!(views, other);
        // the cache follows a change of the view count
        assert_eq!(view_of(3, 1, 1, &mut c), 0);
        assert!(view_of(3, 2, 2, &mut c) < 2);
    }

    #[test]
    fn the_coarse_phase_runs_to_coarse_until_inclusive() {
        let cfg = |until, factor| TrainConfig {
            coarse_until: until,
            coarse_factor: factor,
            ..TrainConfig::default()
        };
        let f = |c: &TrainConfig| {
            (1..=6)
                .map(|it| resolution_factor(c, it))
                .collect::<Vec<_>>()
        };
        assert_eq!(f(&cfg(3, 2)), [2, 2, 2, 1, 1, 1]);
        assert_eq!(f(&cfg(0, 2)), [1; 6]);
        assert_eq!(f(&cfg(6, 4)), [4; 6]);
        // a factor of 0 or 1 is no coarse phase
        assert_eq!(f(&cfg(6, 0)), [1; 6]);
        assert_eq!(f(&cfg(6, 1)), [1; 6]);
    }

    #[test]
    fn short_runs_densify_a_few_times_not_every_iteration() {
        // scaled all the way down, 300 iterations densified at every
        // iteration from 6 to 149
        assert_eq!(rounds(300), vec![100]);
        assert_eq!(rounds(2000), (1..10).map(|k| 100 * k).collect::<Vec<_>>());
        assert_eq!(rounds(4000).len(), 19);
        // the paper's schedule is the paper's: from 500 to 15,000 every 100
        let paper = rounds(30_000);
        assert_eq!(
            (paper[0], *paper.last().unwrap(), paper.len()),
            (600, 14_900, 144)
        );
    }

    #[test]
    fn no_opacity_reset_before_3000_and_size_pruning_scaled() {
        for iters in [300, 2000, 4000] {
            let cfg = TrainConfig {
                iters,
                ..TrainConfig::default().with_densify_until(iters / 2)
            };
            assert!(
                (1..=iters).all(|it| !opacity_reset_now(&cfg, it)),
                "{iters}"
            );
            // size pruning from the scaled first reset: 3,000 × until / 15,000
            let from = (3000.0 * (iters / 2) as f64 / 15_000.0).round() as u32;
            assert!(!prune_big_now(&cfg, from) && prune_big_now(&cfg, from + 1));
        }
        let cfg = TrainConfig {
            iters: 30_000,
            ..TrainConfig::default().with_densify_until(15_000)
        };
        let resets: Vec<u32> = (1..30_000)
            .filter(|&it| opacity_reset_now(&cfg, it))
            .collect();
        assert_eq!(resets, vec![3000, 6000, 9000, 12_000]);
    }
}
