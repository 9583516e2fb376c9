//! Training a 3D Gaussian scene on posed photographs (the 3DGS recipe):
//! render the training views in a shuffled order per epoch with the fused
//! kernels, L1 + 0.2·(1 − SSIM) against the photograph, backward, Adam
//! with a learning rate per parameter group, spherical-harmonic bands
//! unlocked one at a time, and density control by a strategy (the
//! default: clone small, split large, prune transparent and oversized
//! splats, periodic opacity reset).
//!
//! Parameters and Adam's moments are kept in `f64`, one flat vector per
//! group; each iteration renders in `f32`. Checkpoints are a folder with the
//! scene as a standard 3DGS PLY file and the optimiser's state in a binary
//! file, published by atomically replacing `latest.json`.
//!
//! The parts, one file each: [`config`] (settings and their checks),
//! [`trainer`] (the loop: one iteration), `init` (the initial scene), [`knn`] (nearest neighbours for the
//! initial scales),
//! `schedule` (learning rates, SH degree, densification intervals),
//! `densify` (the density-control strategies behind one trait),
//! [`average`] (the final model as a moving average of the parameters),
//! [`budget`] (the default Gaussian budget: pixels and memory),
//! `checkpoint` (save and resume) and `eval` (scoring views). The L1 + SSIM
//! loss and its gradient live in [`crate::loss`].

use std::path::PathBuf;

use crate::data::View;
use crate::three::Camera;

pub mod average;
pub mod budget;
mod checkpoint;
pub mod config;
mod densify;
mod eval;
pub mod exposure;
mod init;
pub mod knn;
mod schedule;
pub mod trainer;

pub use checkpoint::{exposure_transforms, Checkpoint, CheckpointWriter};
pub use config::{Strategy, TrainConfig};
pub use eval::{score_view, ViewEval, ViewScore};
pub use trainer::{StepInfo, Trainer};

/// Why training stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The settings or the dataset cannot be trained on.
    #[error("{0}")]
    Config(String),
    /// A value became NaN or infinite.
    #[error("iteration {iteration}: {op} produced a non-finite value (NaN or infinity); training stopped, the last checkpoint is untouched")]
    NonFinite {
        /// The iteration (1-based) at which it happened.
        iteration: u32,
        /// The operation that produced it.
        op: &'static str,
    },
    /// A checkpoint could not be written or read.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The renderer rejected its input.
    #[error("render: {0}")]
    Render(String),
}

/// Number of parameter groups.
pub const GROUPS: usize = 6;
/// Names of the groups, in order.
pub const GROUP_NAMES: [&str; GROUPS] = [
    "means",
    "scales",
    "rotations",
    "opacity",
    "sh_dc",
    "sh_rest",
];

/// A camera for a dataset view.
pub fn camera_of(v: &View) -> Camera {
    let m = &v.world_to_camera;
    Camera::new(
        v.width,
        v.height,
        v.fx,
        v.fy,
        v.cx,
        v.cy,
        [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ],
        [m[0][3], m[1][3], m[2][3]],
    )
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}
