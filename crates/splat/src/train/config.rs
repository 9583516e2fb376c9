//! The settings of a training run and their checks.

use super::TrainError;
use crate::data::Dataset;

/// Settings of a training run (defaults: the 3DGS paper's, except the
/// number of random initial points).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Iterations in all (the position learning rate decays over them).
    pub iters: u32,
    /// Seed of the initialisation and the choice of views.
    pub seed: u64,
    /// Largest spherical-harmonic degree (0 to 3).
    pub sh_degree: usize,
    /// One more SH band every this many iterations.
    pub sh_interval: u32,
    /// Random initial points when the dataset has no sparse points.
    pub init_points: usize,
    /// Position learning rate at the start, times the scene extent.
    pub lr_mean: f64,
    /// Position learning rate at the end, times the scene extent.
    pub lr_mean_final: f64,
    /// Learning rate of the SH DC coefficients (higher bands: 20× lower).
    pub lr_sh: f64,
    /// Learning rate of the opacity logits.
    pub lr_opacity: f64,
    /// Learning rate of the log-scales.
    pub lr_scale: f64,
    /// Learning rate of the quaternions.
    pub lr_rotation: f64,
    /// Densify from this iteration ...
    pub densify_from: u32,
    /// ... until this one ...
    pub densify_until: u32,
    /// ... every this many iterations.
    pub densify_every: u32,
    /// Average view-space positional gradient (in NDC units) above which a
    /// splat is cloned or split.
    pub densify_grad: f64,
    /// Splats whose largest scale is above this fraction of the extent are
    /// split, the others cloned.
    pub percent_dense: f64,
    /// Reset opacities to at most 0.01 every this many iterations.
    pub opacity_reset_every: u32,
    /// Prune splats less opaque than this.
    pub prune_opacity: f64,
    /// Cap on the number of Gaussians (densification stops adding at it).
    pub max_gaussians: usize,
    /// Background colour of renders (the one the photographs are on).
    pub background: [f64; 3],
    /// Train each iteration on a random background colour: the render's
    /// background and the photograph's (re-composited through its alpha)
    /// change together, so transparent regions cannot be learnt as
    /// background-coloured splats. Evaluation still uses `background`.
    pub random_background: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iters: 4000,
            seed: 0,
            sh_degree: 3,
            sh_interval: 1000,
            init_points: 5_000,
            lr_mean: 1.6e-4,
            lr_mean_final: 1.6e-6,
            lr_sh: 2.5e-3,
            lr_opacity: 0.05,
            lr_scale: 0.005,
            lr_rotation: 0.001,
            densify_from: 500,
            densify_until: 15_000,
            densify_every: 100,
            densify_grad: 2e-4,
            percent_dense: 0.01,
            opacity_reset_every: 3000,
            prune_opacity: 0.005,
            max_gaussians: 1_000_000,
            background: [1.0; 3],
            random_background: false,
        }
    }
}

/// Refuses settings or datasets that cannot be trained on.
pub(super) fn check_config(data: &Dataset, cfg: &TrainConfig) -> Result<(), TrainError> {
    if data.train.is_empty() {
        return Err(TrainError::Config(
            "the dataset has no training views".into(),
        ));
    }
    if cfg.sh_degree > 3 {
        return Err(TrainError::Config(format!(
            "SH degree {} is above 3",
            cfg.sh_degree
        )));
    }
    if cfg.max_gaussians == 0 {
        return Err(TrainError::Config(
            "--max-gaussians must be at least 1".into(),
        ));
    }
    for v in data.train.iter().chain(&data.test) {
        if let Some(m) = &v.mask {
            if m.len() != v.width as usize * v.height as usize {
                return Err(TrainError::Config(format!(
                    "{}: mask has {} values for {}x{} pixels",
                    v.name,
                    m.len(),
                    v.width,
                    v.height
                )));
            }
        }
        if v.image.len() != 3 * v.width as usize * v.height as usize {
            return Err(TrainError::Config(format!(
                "{}: image has {} values for {}x{} pixels",
                v.name,
                v.image.len(),
                v.width,
                v.height
            )));
        }
    }
    Ok(())
}
