//! What `chainrule view` and `chainrule export` accept as a scene: a 3DGS
//! PLY (or SuperSplat's compressed PLY), a `.splat`, `.spz` or PlayCanvas
//! `.sog` file (or an unbundled SOG: its `meta.json`, or the folder), a
//! `train` output folder (its `point_cloud.ply`), a site written by `view
//! --export` (its model), an original 3DGS model folder (its latest
//! `point_cloud/iteration_N`), or a 2D fit's `gaussians.json`.

use std::path::{Path, PathBuf};

use splat::formats::{SceneError, SceneFormat};
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

/// The scene file of a folder: a `train` output's `point_cloud.ply`, the
/// model that a site written by `view --export` names in its `info.json`,
/// or an original 3DGS model folder's latest
/// `point_cloud/iteration_N/point_cloud.ply`. An error naming the folder
/// when it is none of these, or naming `info.json` when that file is
/// wrong.
pub fn folder_scene(dir: &Path) -> CliResult<PathBuf> {
    let ply = dir.join("point_cloud.ply");
    if ply.is_file() {
        return Ok(ply);
    }
    if let Some(site) = site_info(dir)? {
        return Ok(site.model);
    }
    // an unbundled SOG (splat-transform's output for a meta.json name)
    let meta = dir.join("meta.json");
    if splat::formats::sog::is_unbundled(&meta) {
        return Ok(meta);
    }
    if crate::original_3dgs::root_of(dir).is_some() {
        return crate::original_3dgs::latest_scene(dir).ok_or_else(|| {
            CliError::file(
                &dir.join("point_cloud"),
                "an original 3DGS model folder with no iteration_N/point_cloud.ply in it",
            )
        });
    }
    // a train folder whose run stopped before its end: its checkpoints
    if let Some(scene) = latest_checkpoint_scene(dir) {
        return Err(CliError::file(
            dir,
            format!(
                "an unfinished `chainrule train` run (it writes point_cloud.ply at its end; \
                 stopped, or still running): once stopped, continue it with `chainrule train \
                 DATA --out {} --resume`; or open its latest checkpoint's scene, {}",
                dir.display(),
                scene.display()
            ),
        ));
    }
    Err(CliError::file(
        dir,
        "a folder must be a `chainrule train` output (no point_cloud.ply in it), a site \
         written by `chainrule view --export` (no info.json in it), an unbundled SOG (no \
         SOG's meta.json in it) or an original 3DGS model folder (no cameras.json and point_cloud/ \
         in it)",
    ))
}

/// The scene of the latest checkpoint of a `train` run in `dir` (as its
/// `checkpoints/latest.json` names it), when there is one.
fn latest_checkpoint_scene(dir: &Path) -> Option<PathBuf> {
    let ckpts = crate::train::checkpoint_dir(dir);
    let v = crate::train::latest_checkpoint(&ckpts)?;
    let scene = ckpts
        .join(v.get("checkpoint")?.as_str()?)
        .join("point_cloud.ply");
    scene.is_file().then_some(scene)
}

/// What `render` and `view` read from a site's `info.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteInfo {
    /// The model file it names (`model.ply`, `model.spz`, `model.splat`
    /// or `model.compressed.ply`), checked to be there.
    pub model: PathBuf,
    /// The page's background, RGB in [0, 1], when it gives a valid one.
    pub background: Option<[f64; 3]>,
    /// Whether the page draws the splats antialiased, when it says.
    pub antialiased: Option<bool>,
}

/// The site that `view --export` wrote into `dir`: `Ok(None)` when `dir`
/// has no `info.json`; an error naming that file when it is not a 3D
/// site's (unreadable, not JSON, no model, an unknown model name, or the
/// model file missing).
pub fn site_info(dir: &Path) -> CliResult<Option<SiteInfo>> {
    let file = dir.join("info.json");
    if !file.is_file() {
        return Ok(None);
    }
    let bad = |what: String| CliError::file(&file, what);
    let text = std::fs::read_to_string(&file).map_err(|e| bad(format!("cannot read: {e}")))?;
    let info: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let name = info.get("model").and_then(|m| m.as_str()).ok_or_else(|| {
        bad(
            "model: missing (is this a site written by `chainrule view --export` of a 3D scene?)"
                .into(),
        )
    })?;
    // `view --export` writes model.EXTENSION in each format
    let known: Vec<String> = [
        SceneFormat::Ply,
        SceneFormat::Spz,
        SceneFormat::Splat,
        SceneFormat::CompressedPly,
        SceneFormat::Sog,
    ]
    .map(|f| format!("model.{}", f.extension()))
    .into();
    if !known.iter().any(|k| k == name) {
        return Err(bad(format!(
            "model: {name:?} is not one of {}",
            known.join(", ")
        )));
    }
    let model = dir.join(name);
    if !model.is_file() {
        return Err(CliError::file(
            &model,
            format!("{} names it, but it is not there", file.display()),
        ));
    }
    let background = info
        .get("background")
        .and_then(|b| serde_json::from_value::<[f64; 3]>(b.clone()).ok())
        .filter(|b| b.iter().all(|c| (0.0..=1.0).contains(c)));
    let antialiased = info.get("antialiased").and_then(|a| a.as_bool());
    Ok(Some(SiteInfo {
        model,
        background,
        antialiased,
    }))
}

/// Whether the scene at `scene` (read from `file`) is drawn antialiased
/// (Mip-Splatting's projection): as its training's `settings.json` says,
/// else as the page of a site it belongs to says (`info.json`), else as
/// the file declares ([`splat::formats::declared_antialiased`]: another
/// tool's scene may say how it was trained); not when none says. The
/// settings made up for an original 3DGS model folder (`model`) say
/// nothing about it: that training had no such mode, so its file decides.
pub fn antialiased(
    settings: Option<&crate::settings::RenderSettings>,
    model: Option<&crate::original_3dgs::Model>,
    scene: &Path,
    file: &Path,
) -> bool {
    if let (Some(s), None) = (settings, model) {
        return s.antialiased;
    }
    if let Some(a) = site_info(scene_folder(scene))
        .ok()
        .flatten()
        .and_then(|s| s.antialiased)
    {
        return a;
    }
    splat::formats::declared_antialiased_in(file).unwrap_or(false)
}

/// The cameras of the site in `dir` (its `cameras.json`, as `view
/// --export` writes them from the dataset: name, size, intrinsics, and the
/// world-to-camera `R` and `t` in OpenCV axes), in the order `render
/// --path` flies them ([`splat::data::capture::path_order`]). `Ok(None)` when `dir` is no site or has no
/// cameras; an error naming the file and the camera when one is malformed.
/// The views are sized as `settings` (the site's training settings) load
/// the photos: divided by their `downscale`, else at most 1,600 pixels
/// wide, the intrinsics scaled alike (cameras.json keeps the photos' own
/// size, which the page uses).
pub fn site_views(
    dir: &Path,
    settings: Option<&crate::settings::RenderSettings>,
) -> CliResult<Option<Vec<splat::data::View>>> {
    use crate::original_3dgs::{numbers, pixels_and_focal, rotation};
    use serde_json::Value;
    let file = dir.join("cameras.json");
    if !matches!(site_info(dir), Ok(Some(_))) || !file.is_file() {
        return Ok(None);
    }
    let bad = |what: String| CliError::file(&file, what);
    let text = std::fs::read_to_string(&file).map_err(|e| bad(format!("cannot read: {e}")))?;
    let cams: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let cams = cams
        .as_array()
        .ok_or_else(|| bad("expected an array of cameras".into()))?;
    let view = |c: &Value| -> Result<splat::data::View, String> {
        let (width, height, fx, fy) = pixels_and_focal(c)?;
        let finite = |k: &str| {
            c.get(k)
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{k}: expected a finite number"))
        };
        let (cx, cy) = (finite("cx")?, finite("cy")?);
        let r = rotation(c, "R")?;
        let t = numbers(c.get("t"), 3).ok_or("t: expected an array of three finite numbers")?;
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .ok_or("name: expected the photo's name")?
            .to_string();
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            m[i][..3].copy_from_slice(&r[i]);
            m[i][3] = t[i];
        }
        m[3][3] = 1.0;
        Ok(splat::data::View::camera_only(
            name,
            (width, height),
            [fx, fy, cx, cy],
            m,
        ))
    };
    let mut views = cams
        .iter()
        .enumerate()
        .map(|(i, c)| view(c).map_err(|m| bad(format!("camera {i}: {m}"))))
        .collect::<CliResult<Vec<_>>>()?;
    let (downscale, max_width) = crate::settings::RenderSettings::load_options(settings);
    for v in &mut views {
        let (w, h) = splat::data::loaded_size(v.width, v.height, downscale, max_width);
        v.rescale_intrinsics(w, h);
    }
    views.sort_by(|a, b| splat::data::capture::path_order(&a.name, &b.name));
    Ok((!views.is_empty()).then_some(views))
}

/// The folder a scene path stands for: the path itself when it is a
/// folder, else the folder of the file.
pub fn scene_folder(scene: &Path) -> &Path {
    if scene.is_dir() {
        scene
    } else {
        match scene.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

/// The background of a scene that has no training settings, when none is
/// given: the page's of a site (its `info.json`), else the dataset kind's
/// ([`splat::data::default_background`]: white for NeRF-synthetic, black
/// for COLMAP data and for no dataset). `render` and `view` share it, so a
/// bare file draws alike in both and in a site `view --export` makes of it.
pub fn unsaved_background(scene: &Path, dataset: Option<&Path>) -> [f64; 3] {
    site_info(scene_folder(scene))
        .ok()
        .flatten()
        .and_then(|s| s.background)
        .unwrap_or_else(|| {
            splat::data::default_background(dataset.and_then(splat::data::detect)).map(f64::from)
        })
}

/// Converts a reader's error to the CLI's (path and message kept).
pub fn scene_error(e: SceneError) -> CliError {
    CliError::File {
        path: e.path,
        message: e.message,
    }
}

/// Reads a scene file for drawing or converting
/// ([`splat::formats::read_scene_skipping`]): a PLY's Gaussians that
/// cannot be drawn (a diverged run's NaNs) are left out, with a warning
/// ([`crate::output::warn`]).
pub fn read_drawable(path: &Path) -> CliResult<splat::three::scene::Gaussians<f32>> {
    let (g, left_out) = splat::formats::read_scene_skipping(path).map_err(scene_error)?;
    if let Some(w) = left_out {
        crate::output::warn(w);
    }
    Ok(g)
}

/// Opens `path` as one of the scenes above.
pub fn open(path: &Path) -> CliResult<SceneInput> {
    if !path.exists() {
        return Err(CliError::file(path, "no such file or folder"));
    }
    if path.is_dir() {
        let file = folder_scene(path)?;
        let gaussians = read_drawable(&file)?;
        return Ok(SceneInput::Scene3d { file, gaussians });
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !splat::formats::sog::is_unbundled(path)
    {
        crate::render::render_2d(path, 1.0, None)?;
        return Ok(SceneInput::Fit2d {
            file: path.to_path_buf(),
        });
    }
    let gaussians = read_drawable(path)?;
    Ok(SceneInput::Scene3d {
        file: path.to_path_buf(),
        gaussians,
    })
}
