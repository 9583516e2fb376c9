//! Schedules: the learning rate of each parameter group, when the next
//! spherical-harmonic band is unlocked, and when density control runs.

use super::exposure::EXPOSURE_LR;
use super::TrainConfig;

/// Learning rate of parameter group `g` after `iteration` iterations: the
/// positions' decays log-linearly from `lr_mean` to `lr_mean_final` (both
/// times the scene `extent`) over `cfg.iters`; the others are constant
/// (higher SH bands: 20× below the DC rate).
pub(super) fn group_lr(cfg: &TrainConfig, g: usize, iteration: u32, extent: f64) -> f64 {
    match g {
        0 => {
            let t = (iteration as f64 / cfg.iters.max(1) as f64).clamp(0.0, 1.0);
            let (a, b) = (cfg.lr_mean.ln(), cfg.lr_mean_final.ln());
            (a * (1.0 - t) + b * t).exp() * extent
        }
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

/// Whether pruning by size (screen and world) is on at iteration `it`:
/// after the first opacity reset, as in the 3DGS paper.
pub(super) fn prune_big_now(cfg: &TrainConfig, it: u32) -> bool {
    cfg.opacity_reset_every > 0 && it > cfg.opacity_reset_every
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
