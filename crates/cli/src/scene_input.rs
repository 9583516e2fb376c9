//! What `chainrule view` and `chainrule export` accept as a scene: a 3DGS
//! PLY, a `.splat` or `.spz` file, a `train` output folder (its
//! `point_cloud.ply`) or a site written by `view --export` (its model),
//! or a 2D fit's `gaussians.json`.

use std::path::{Path, PathBuf};

use splat::formats::{read_scene, SceneError};
use splat::three::Gaussians;

use crate::error::{CliError, CliResult};

/// A scene opened from the command line.
#[derive(Debug)]
pub enum SceneInput {
    /// 3D Gaussians.
    Scene3d {
        /// The file they were read from.
        file: PathBuf,
        /// The Gaussians.
        gaussians: Gaussians<f32>,
    },
    /// A 2D fit (`gaussians.json` of `chainrule fit`), checked readable.
    Fit2d {
        /// The file.
        file: PathBuf,
    },
}

/// The scene file of a folder: a `train` output's `point_cloud.ply`, or
/// the model that a site written by `view --export` names in its
/// `info.json`. An error naming the folder when it holds neither.
pub fn folder_scene(dir: &Path) -> CliResult<PathBuf> {
    let ply = dir.join("point_cloud.ply");
    if ply.is_file() {
        return Ok(ply);
    }
    site_model(dir).ok_or_else(|| {
        CliError::file(
            dir,
            "a folder must be a `chainrule train` output (no point_cloud.ply in it) or a \
             site written by `chainrule view --export` (no info.json naming its model)",
        )
    })
}

/// The model file (`model.ply`, `model.spz` or `model.splat`) that a site
/// written by `view --export` into `dir` names in its `info.json`, when
/// that file is there.
pub fn site_model(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join("info.json")).ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = info.get("model")?.as_str()?;
    let known = ["model.ply", "model.spz", "model.splat"];
    let path = dir.join(known.into_iter().find(|k| *k == name)?);
    path.is_file().then_some(path)
}

/// Converts a reader's error to the CLI's (path and message kept).
pub fn scene_error(e: SceneError) -> CliError {
    CliError::File {
        path: e.path,
        message: e.message,
    }
}

/// Opens `path` as one of the scenes above.
pub fn open(path: &Path) -> CliResult<SceneInput> {
    if path.is_dir() {
        let file = folder_scene(path)?;
        let gaussians = read_scene(&file).map_err(scene_error)?;
        return Ok(SceneInput::Scene3d { file, gaussians });
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        crate::render::render_2d(path, 1.0)?;
        return Ok(SceneInput::Fit2d {
            file: path.to_path_buf(),
        });
    }
    let gaussians = read_scene(path).map_err(scene_error)?;
    Ok(SceneInput::Scene3d {
        file: path.to_path_buf(),
        gaussians,
    })
}
