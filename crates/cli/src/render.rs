//! `chainrule render FILE --out image.png [--scale S]`: render a saved model
//! again, at any resolution. The kind of model is chosen by the file's
//! extension (`.json`: fitted 2D Gaussians from `chainrule fit`; `.ply`: a 3D
//! Gaussian-splatting scene, rendered from `--orbit N` cameras, or from the
//! cameras of a dataset with `--data DIR`, into the directory `--out`, see
//! [`crate::render3d`]).

use std::path::{Path, PathBuf};

use clap::Args;
use splat::format::GaussianFile;
use splat::image_io::Image;
use splat::model2d;

use crate::error::{CliError, CliResult};
use crate::output::write_atomic;

/// The largest image `render` writes (8192 × 8192 = 2^26 pixels, as
/// `render --orbit --size`): a file's declared size or a typo in `--scale`
/// cannot ask for tens of GB.
pub const MAX_PIXELS: f64 = 67_108_864.0;

/// Arguments of `chainrule render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The model: a `gaussians.json` written by `chainrule fit`.
    pub file: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Size relative to the size the model was fitted at.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// 3D scenes (.ply): number of views on a circle around the scene;
    /// `--out` is then a directory for view_NNN.png and orbit.gif.
    #[arg(long)]
    pub orbit: Option<usize>,
    /// 3D scenes: image size WxH.
    #[arg(long, default_value = "512x512")]
    pub size: String,
    /// 3D scenes: the world axis that points up.
    #[arg(long, value_enum, default_value = "z", allow_hyphen_values = true)]
    pub up: crate::render3d::UpAxis,
    /// 3D scenes: horizontal field of view in degrees.
    #[arg(long, default_value_t = 50.0)]
    pub fov: f64,
    /// 3D scenes: camera elevation above the orbit plane, degrees.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    pub elevation: f64,
    /// 3D scenes: Mip-Splatting's antialiased projection.
    #[arg(long)]
    pub antialiased: bool,
    /// 3D scenes: render the cameras of this dataset (NeRF-synthetic or
    /// COLMAP) instead of an orbit, and print PSNR and SSIM against its
    /// images.
    #[arg(long, value_name = "DATASET", conflicts_with = "orbit")]
    pub data: Option<PathBuf>,
    /// With --data: which split (`test` or `train`).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// With --data: background colour, `white` (NeRF-synthetic's usual),
    /// `black` or `R,G,B` in [0, 1].
    #[arg(long, default_value = "white")]
    pub background: String,
    /// With --data: print one JSON object (mean and per-view PSNR/SSIM).
    #[arg(long)]
    pub json: bool,
}

/// Renders a 2D Gaussians file to an image.
pub fn render_2d(path: &Path, scale: f64) -> CliResult<Image> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::file(path, format!("cannot read: {e}")))?;
    let file = GaussianFile::from_json(&text).map_err(|e| CliError::file(path, e))?;
    let (g, background, blend) = file.model().map_err(|e| CliError::file(path, e))?;
    let w = (file.width as f64 * scale).round();
    let h = (file.height as f64 * scale).round();
    if !(w >= 1.0 && h >= 1.0) || w * h > MAX_PIXELS {
        return Err(CliError::usage(format!(
            "--scale {scale}: gives a {w}x{h} image; pick a scale that gives 1 to {MAX_PIXELS} pixels"
        )));
    }
    let (w, h) = (w as usize, h as usize);
    Ok(Image {
        width: w,
        height: h,
        data: model2d::render(&g, w, h, background, blend),
    })
}

/// Runs `chainrule render`.
pub fn run(a: RenderArgs) -> CliResult {
    if !(a.scale.is_finite() && a.scale > 0.0) {
        return Err(CliError::usage(format!(
            "--scale {}: must be a positive number",
            a.scale
        )));
    }
    let ext = a
        .file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let img = match ext.as_str() {
        "json" => render_2d(&a.file, a.scale)?,
        "ply" if a.data.is_some() => {
            let data = a.data.as_deref().expect("checked");
            return crate::render3d::run_ply_on_dataset(
                &a.file,
                data,
                &a.split,
                &a.background,
                a.antialiased,
                &a.out,
                a.json,
            );
        }
        "ply" => {
            let views = a
                .orbit
                .ok_or_else(|| CliError::usage("a .ply scene needs --orbit N or --data DATASET"))?;
            let (width, height) = crate::bench::render3d::parse_size(&a.size)?;
            let o = crate::render3d::OrbitOptions {
                views,
                width,
                height,
                up: a.up,
                fov_deg: a.fov,
                elevation_deg: a.elevation,
                antialiased: a.antialiased,
                ..Default::default()
            };
            let written = crate::render3d::run_ply(&a.file, &a.out, &o)?;
            println!(
                "wrote {} views and {} to {}",
                views,
                written
                    .last()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                a.out.display()
            );
            return Ok(());
        }
        _ => return Err(CliError::file(
            &a.file,
            "unsupported model file: expected a .json written by `chainrule fit` or a 3DGS .ply",
        )),
    };
    let bytes = img.to_png().map_err(|e| CliError::file(&a.out, e))?;
    write_atomic(&a.out, &bytes)?;
    Ok(())
}
