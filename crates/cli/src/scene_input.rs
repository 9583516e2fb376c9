//! What `chainrule view` and `chainrule export` accept as a scene: a 3DGS
//! PLY, a `.splat` or `.spz` file, a `train` output folder (its
//! `point_cloud.ply`), or a 2D fit's `gaussians.json`.

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

/// The scene file of a `train` output folder.
pub fn train_folder_scene(dir: &Path) -> PathBuf {
    dir.join("point_cloud.ply")
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
        let file = train_folder_scene(path);
        if !file.is_file() {
            return Err(CliError::file(
                path,
                "a folder must be a `chainrule train` output (no point_cloud.ply in it)",
            ));
        }
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
