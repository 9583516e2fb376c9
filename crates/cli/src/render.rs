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
///
/// Renders a 2D fit (`gaussians.json` of `chainrule fit`) to one PNG, or a
/// 3D scene (a 3DGS `.ply` or SuperSplat `.compressed.ply`, a `.spz`,
/// `.splat` or PlayCanvas `.sog` file, a `chainrule train` output folder, a site written by
/// `chainrule view --export`, or a model folder of the original 3DGS)
/// from cameras on an orbit (`--orbit N`),
/// from a dataset's cameras (`--data`) or flying along them (`--path N`).
/// A scene trained by `chainrule train` is rendered with the settings
/// saved beside it (`settings.json`, which an exported site carries too:
/// background, SH degree, antialiasing, the cameras' focus and up); one
/// trained by the original 3DGS with those of its `cameras.json` and
/// `cfg_args`; flags override them.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The model: a `gaussians.json` written by `chainrule fit` (or the
    /// folder `fit` wrote it in), a 3DGS
    /// `.ply` (or `.compressed.ply`), a `.spz`, `.splat` or `.sog` file
    /// (or an unbundled SOG's `meta.json` or folder), a `chainrule train` output
    /// folder, a site folder written by `chainrule view --export`, or a
    /// model folder of the original 3DGS (its latest
    /// `point_cloud/iteration_N`, framed by its `cameras.json`).
    pub file: PathBuf,
    /// The picture to write (2D: `.png`, or `.jpg`; its folder is made
    /// when missing), or the folder for the views (3D).
    #[arg(long)]
    pub out: PathBuf,
    /// 2D fits: size relative to the size the model was fitted at (a 3D
    /// scene's size is --size).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// 3D scenes: number of views on a circle around the scene;
    /// `--out` is then a directory for view_NNN.png and orbit.gif, listed
    /// in orbit.json (a later orbit there replaces them and removes the
    /// frames beyond its count; a file of these names that no render
    /// wrote is refused, as is a folder of the dataset's photos).
    #[arg(long)]
    pub orbit: Option<usize>,
    /// 3D scenes: number of frames flying along the dataset's cameras in
    /// the order of their photos' names, numbers in names compared as
    /// numbers (IMG_2 before IMG_10) (the training dataset from
    /// settings.json, or --data, or an original 3DGS model's
    /// cameras.json): path_NNN.png and path.gif in --out, listed in
    /// path.json (as --orbit's files in orbit.json).
    #[arg(long, conflicts_with = "orbit")]
    pub path: Option<usize>,
    /// 3D scenes: --path flies only the photos in this folder of the
    /// dataset (a path relative to its images folder, such as `cam1` of a
    /// rig whose cameras' photos are in `cam0/`, `cam1/`, …) [default:
    /// every photo; for a rig (folders sharing file names, taken from
    /// about the same places), its folder with the most photos, with a
    /// note].
    #[arg(
        long,
        requires = "path",
        conflicts_with = "orbit",
        value_name = "FOLDER"
    )]
    pub path_folder: Option<String>,
    /// 3D scenes: image size WxH of --orbit views [default: 512x512], or
    /// of --path frames [default: the size most of the dataset's cameras
    /// have; another size keeps their horizontal field of view]. --data
    /// renders each photo at its own size, to score it.
    #[arg(long)]
    pub size: Option<String>,
    /// 3D scenes: the up vector of the orbit: x, -x, y, -y, z, -z or
    /// X,Y,Z [default: the training cameras' mean up from settings.json,
    /// else z].
    #[arg(long, allow_hyphen_values = true)]
    pub up: Option<String>,
    /// 3D scenes: centre of the orbit X,Y,Z [default: the point nearest
    /// the training cameras' optical axes (the sparse points' median when
    /// that point is behind the cameras or beyond the points, as with a
    /// forward-facing capture), else the scene's median].
    #[arg(long, allow_hyphen_values = true)]
    pub center: Option<String>,
    /// 3D scenes: radius of the orbit [default: the training cameras'
    /// median distance from the centre, else one that frames the scene].
    #[arg(long)]
    pub radius: Option<f64>,
    /// 3D scenes: horizontal field of view of --orbit views, in degrees
    /// [default: 50].
    #[arg(long)]
    pub fov: Option<f64>,
    /// 3D scenes: camera elevation above the orbit plane, degrees
    /// [default: the training cameras' mean elevation, else 20].
    #[arg(long, allow_hyphen_values = true)]
    pub elevation: Option<f64>,
    /// 3D scenes: Mip-Splatting's antialiased projection (default: as the
    /// training's settings say, else as the scene file declares it:
    /// Brush's `SplatRenderMode: mip` or Postshot's `antialiased 1` PLY
    /// comment, the .spz flag).
    #[arg(long, conflicts_with = "no_antialiased")]
    pub antialiased: bool,
    /// 3D scenes: the plain projection, whatever the settings or the
    /// scene file say.
    #[arg(long)]
    pub no_antialiased: bool,
    /// 3D scenes: render the cameras of this dataset (NeRF-synthetic,
    /// COLMAP or nerfstudio) instead of an orbit, and print PSNR and SSIM against its
    /// images (over the kept pixels of masked views), also kept in
    /// --out's scores.json (an earlier run's renders there that this one
    /// does not write again are removed) with the scores by the original
    /// 3DGS's exposure protocol (`psnr_half_fit`: a colour transform
    /// fitted on each photo's left half, scored on its right, over the
    /// `half_fit_views` whose masks keep pixels in both halves), the
    /// number of `masked_views`, and per view whether it is `masked`.
    /// The training photos of an `--exposure` run (a train folder rendered
    /// on its own dataset) are scored through the colour transforms the
    /// run learned for them (per view `exposure`; a note says so).
    #[arg(long, value_name = "DATASET", conflicts_with = "orbit")]
    pub data: Option<PathBuf>,
    /// With --data: which split (`test` or `train`) [default: test].
    #[arg(long)]
    pub split: Option<String>,
    /// Background colour, `white`, `black` or `R,G,B` in [0, 1]
    /// [default: a 2D fit's, the one it was fitted on; a 3D scene's
    /// settings.json's, else white for NeRF-synthetic and black for COLMAP
    /// data, else black].
    #[arg(long)]
    pub background: Option<String>,
    /// With --data: swap kept and ignored pixels of the dataset's masks
    /// [default: as the training did, by its settings.json].
    #[arg(long)]
    pub invert_masks: bool,
    /// With --data: read the masks as they are (0 ignores a pixel), also
    /// for a run trained with --invert-masks.
    #[arg(long, conflicts_with = "invert_masks")]
    pub no_invert_masks: bool,
    /// 3D scenes: print one JSON object: with --data the mean and
    /// per-view PSNR/SSIM, with --orbit or --path the files written;
    /// errors are one JSON object too.
    #[arg(long)]
    pub json: bool,
    /// With --data: also write `compare/NAME.png` in --out for each photo:
    /// the photo, the render and their error as a heat map side by side
    /// (black none, red, yellow, white at a mean error of 0.25 and above;
    /// pixels a mask leaves out dark blue).
    #[arg(long)]
    pub compare: bool,
}

/// Renders a 2D Gaussians file to an image.
pub fn render_2d(path: &Path, scale: f64, background: Option<[f64; 3]>) -> CliResult<Image> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::file(path, format!("cannot read: {e}")))?;
    let file = GaussianFile::from_json(&text).map_err(|e| CliError::file(path, e))?;
    let (g, fitted_on, blend) = file.model().map_err(|e| CliError::file(path, e))?;
    let background = background.unwrap_or(fitted_on);
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

/// Says, before `--data` is read, which model a dataset of several COLMAP
/// models gives (the note `train` prints), and warns when it is another
/// than the one the scene was trained on (`trained`, from its settings):
/// another reconstruction's cameras are in a frame of their own, so its
/// scores or flight would mean nothing.
///
/// Returns the note, for the command's report.
fn note_data_model(trained: Option<&Path>, data: &Path) -> Option<String> {
    let note = crate::train::models_note(data, "rendering");
    if let Some(note) = &note {
        eprintln!("note: {note}");
    }
    let colmap = |p: &Path| splat::data::detect(p) == Some("colmap");
    let Some(trained) = trained.filter(|t| colmap(t) && colmap(data)) else {
        return note;
    };
    let loaded = crate::settings::loaded_from;
    if let (Some(t), Some(d)) = (loaded(trained), loaded(data)) {
        if t != d && !splat::data::colmap::same_poses(&t, &d) {
            crate::output::warn(format!(
                "the scene was trained on the COLMAP model {}, but --data {} loads {}: \
                 another reconstruction's cameras need not share its frame (give --data {})",
                t.display(),
                data.display(),
                d.display(),
                trained.display()
            ));
        }
    }
    note
}

/// The colour transforms an `--exposure` run learned for its training
/// photos, when `ply` is a `train` folder's own scene (`scene` the folder
/// or that file, `saved` its settings.json) and `data` the dataset it was
/// trained on: so that `render --data --split train` scores the photos as
/// the run fitted them. `None` otherwise (another scene or dataset: its
/// photos' names would pick another photo's transform).
fn learned_exposure(
    scene: &Path,
    ply: &Path,
    saved: Option<&crate::settings::RenderSettings>,
    from_model: bool,
    data: &Path,
) -> CliResult<Option<splat::train::exposure::ByPhoto>> {
    use crate::settings::loaded_from;
    let folder = crate::scene_input::scene_folder(scene);
    let ckpt = crate::train::checkpoint_dir(folder);
    let trained_on = saved.and_then(|s| s.dataset.as_deref());
    let ours = !from_model
        && folder.join(crate::settings::FILE).is_file()
        && crate::output::same_file(ply, &folder.join("point_cloud.ply"))
        && ckpt.join("latest.json").is_file()
        && trained_on
            .is_some_and(|t| loaded_from(t).is_some() && loaded_from(t) == loaded_from(data));
    if !ours {
        return Ok(None);
    }
    splat::train::exposure_transforms(&ckpt).map_err(|e| CliError::file(&ckpt, e))
}

/// Renders a 3D scene (`ply`) as the arguments ask, with the settings
/// saved beside it filling in what they leave out.
fn render_3d(a: &RenderArgs, ply: &Path) -> CliResult {
    use crate::render3d::{parse_up, parse_vec3, DataRender, OrbitOptions};
    let (saved, model) = crate::settings::RenderSettings::find_with_model(&a.file)?;
    let dataset = a
        .data
        .clone()
        .or_else(|| saved.as_ref().and_then(|s| s.dataset.clone()));
    let background = match (&a.background, &saved) {
        (Some(b), _) => crate::fit::parse_background(b)?,
        (None, Some(s)) => s.background,
        (None, None) => crate::scene_input::unsaved_background(&a.file, dataset.as_deref()),
    };
    // --data given for scores or a flight: which model it loads
    let data_notes: Vec<String> = a
        .data
        .as_deref()
        .and_then(|data| note_data_model(saved.as_ref().and_then(|s| s.dataset.as_deref()), data))
        .into_iter()
        .collect();
    if a.data.is_none() {
        let photo_flags = [
            ("--compare", a.compare),
            ("--split", a.split.is_some()),
            ("--invert-masks", a.invert_masks),
            ("--no-invert-masks", a.no_invert_masks),
        ];
        if let Some((flag, _)) = photo_flags.iter().find(|f| f.1) {
            return Err(CliError::usage(format!(
                "{flag} applies to renders of a dataset's photos: it needs --data DATASET"
            )));
        }
    }
    if a.orbit.is_none() && (a.path.is_some() || a.data.is_some()) {
        // an orbit's camera: --path and --data fly or score the dataset's
        let orbit_flags = [
            ("--fov", a.fov.is_some()),
            ("--elevation", a.elevation.is_some()),
            ("--radius", a.radius.is_some()),
            ("--center", a.center.is_some()),
            ("--up", a.up.is_some()),
            ("--size", a.size.is_some() && a.path.is_none()),
        ];
        if let Some((flag, _)) = orbit_flags.iter().find(|f| f.1) {
            let with = if a.path.is_some() {
                "--path flies the dataset's cameras (--size sets its frames' size)"
            } else {
                "--data renders each photo's camera at the photo's size, to score it"
            };
            return Err(CliError::usage(format!(
                "{flag} sets the camera of --orbit N views; {with}"
            )));
        }
    }
    let sh_degree = saved.as_ref().map(|s| s.sh_degree);
    // the training's settings, else what the scene file declares (another
    // tool's scene may say it was trained antialiased)
    let antialiased = !a.no_antialiased
        && (a.antialiased
            || crate::scene_input::antialiased(saved.as_ref(), model.as_ref(), &a.file, ply));
    if a.orbit.is_none() && a.path.is_none() {
        let data = a.data.as_deref().ok_or_else(|| {
            CliError::usage("a 3D scene needs --orbit N, --path N or --data DATASET")
        })?;
        let d = DataRender {
            split: a.split.clone().unwrap_or_else(|| "test".into()),
            background,
            antialiased,
            sh_degree,
            invert_masks: a.invert_masks
                || (!a.no_invert_masks && saved.as_ref().is_some_and(|s| s.invert_masks)),
            resolution: crate::settings::RenderSettings::load_options(saved.as_ref()),
            json: a.json,
            compare: a.compare,
            exposure: learned_exposure(&a.file, ply, saved.as_ref(), model.is_some(), data)?,
            trained_exposure: saved.as_ref().is_some_and(|s| s.exposure),
            notes: data_notes,
        };
        return crate::render3d::run_ply_on_dataset(ply, data, &a.out, &d);
    }
    let (width, height) =
        crate::bench::render3d::parse_size(a.size.as_deref().unwrap_or("512x512"))?;
    let path_options = |frames| crate::render3d::PathOptions {
        frames,
        size: a.size.is_some().then_some((width, height)),
        folder: a.path_folder.clone(),
        notes: Vec::new(),
    };
    let up = match (&a.up, &saved) {
        (Some(u), _) => parse_up(u)?,
        (None, Some(s)) => parse_up(&format!("{},{},{}", s.up[0], s.up[1], s.up[2]))?,
        (None, None) => [0.0, 0.0, 1.0],
    };
    let center = match (&a.center, &saved) {
        (Some(c), _) => Some(parse_vec3("--center", c)?),
        (None, s) => s.as_ref().map(|s| s.center),
    };
    if let Some(r) = a.radius {
        if !(r.is_finite() && r > 0.0) {
            return Err(CliError::usage(format!(
                "--radius {r}: must be a positive number"
            )));
        }
    }
    if let Some(e) = a.elevation {
        if !(e.is_finite() && e > -90.0 && e < 90.0) {
            return Err(CliError::usage(format!(
                "--elevation {e}: must be a finite number of degrees strictly between -90 and 90"
            )));
        }
    }
    let o = OrbitOptions {
        views: a.orbit.unwrap_or(0),
        width,
        height,
        up,
        center,
        radius: a
            .radius
            .or(saved.as_ref().map(|s| s.radius).filter(|r| *r > 0.0)),
        sh_degree,
        fov_deg: a.fov.unwrap_or(50.0),
        elevation_deg: a
            .elevation
            .or(saved.as_ref().map(|s| s.elevation_deg))
            .unwrap_or(20.0),
        // the cameras' side of a forward-facing capture, unless the orbit
        // is placed by hand
        start: saved
            .as_ref()
            .filter(|_| a.center.is_none() && a.up.is_none())
            .and_then(|s| s.facing),
        background,
        antialiased,
        ..Default::default()
    };
    let (kind, what, written) = match a.path {
        Some(frames) => {
            // an original 3DGS model folder's own cameras, when no dataset
            // is named
            if let (None, Some(m)) = (&dataset, &model) {
                let p = path_options(frames);
                let w = crate::render3d::run_path(ply, &m.cameras, &p, &a.out, &o)?;
                return report(a, "path", &crate::output::count(frames, "frame"), w);
            }
            // a site's own cameras (it is shared without its photos)
            if dataset.is_none() {
                let site = crate::scene_input::scene_folder(&a.file);
                if let Some(views) = crate::scene_input::site_views(site, saved.as_ref())? {
                    let p = path_options(frames);
                    let w = crate::render3d::run_path(ply, &views, &p, &a.out, &o)?;
                    return report(a, "path", &crate::output::count(frames, "frame"), w);
                }
            }
            let file = crate::settings::RenderSettings::path_for(&a.file);
            let data = dataset.ok_or_else(|| match &saved {
                Some(_) if file.is_file() => CliError::usage(format!(
                    "--path needs the dataset's cameras, and {} names no dataset (a site \
                     written by `view --export` is shared without its photos): give --data \
                     DATASET",
                    file.display()
                )),
                Some(_) => CliError::usage(format!(
                    "--path needs the dataset's cameras, and {} carries its training's \
                     settings but no dataset (a scene file shared alone names none): give \
                     --data DATASET",
                    a.file.display()
                )),
                None => {
                    CliError::usage("--path needs the dataset: --data DATASET (or a train folder)")
                }
            })?;
            // (a dataset is a folder, or nerfstudio's file named itself)
            if a.data.is_none() && !(data.is_dir() || splat::data::nerfstudio::is_file(&data)) {
                return Err(CliError::file(
                    &data,
                    format!(
                        "the dataset that {} names is not there (moved?); give --data DATASET",
                        crate::settings::RenderSettings::path_for(&a.file).display()
                    ),
                ));
            }
            let opts = splat::data::LoadOptions {
                background: background.map(|c| c as f32),
                holdout_every: 0,
                downscale: crate::settings::RenderSettings::load_options(saved.as_ref()).0,
                max_width: crate::settings::RenderSettings::load_options(saved.as_ref()).1,
                ..Default::default()
            };
            // the cameras only: no photo is decoded
            let ds = splat::data::load_cameras(&data, &opts).map_err(CliError::data)?;
            crate::output::refuse_dataset_folder(&a.out, &ds.read_from, "--out")?;
            crate::output::print_notes(&ds);
            let mut views: Vec<_> = ds.flight_views().into_iter().cloned().collect();
            let notes = data_notes.into_iter().chain(ds.notes).collect();
            views.sort_by(|x, y| splat::data::capture::path_order(&x.name, &y.name));
            let p = crate::render3d::PathOptions {
                notes,
                ..path_options(frames)
            };
            let w = crate::render3d::run_path(ply, &views, &p, &a.out, &o)?;
            ("path", crate::output::count(frames, "frame"), w)
        }
        None => {
            let mut notes = Vec::new();
            if saved.is_none() && a.up.is_none() && a.center.is_none() {
                let note = format!(
                    "{} has no training settings (no settings.json beside it, nor a header \
                     that carries them, as the PLYs `train` and `export` write now do): the \
                     orbit circles the splats' middle about +z; --up X,Y,Z and --center set \
                     them, or `chainrule export TRAIN_FOLDER --format ply` writes a file that \
                     carries them",
                    a.file.display()
                );
                eprintln!("note: {note}");
                notes.push(note);
            }
            let photos = photo_folders_around(&a.out, dataset.as_deref(), saved.as_ref());
            crate::output::refuse_dataset_folder(&a.out, &photos, "--out")?;
            (
                "orbit",
                crate::output::count(o.views, "view"),
                crate::render3d::run_orbit(ply, &a.out, &o, notes)?,
            )
        }
    };
    report(a, kind, &what, written)
}

/// The folders the photos and masks of the training's dataset
/// (`dataset`, from its `settings`) are read from, when `out` lies in the
/// dataset's folder: an orbit's views must not go among the photos, as
/// `--data`'s and `--path`'s must not
/// ([`crate::output::refuse_dataset_folder`]). None elsewhere, without
/// reading the dataset's cameras, nor when they cannot be read (an orbit
/// does not need them).
fn photo_folders_around(
    out: &Path,
    dataset: Option<&Path>,
    settings: Option<&crate::settings::RenderSettings>,
) -> Vec<PathBuf> {
    let Some(data) = dataset else {
        return Vec::new();
    };
    // a COLMAP model folder's photos are in its dataset's folder, and a
    // nerfstudio file's in its own
    let root = match data.parent() {
        Some(p) if splat::data::nerfstudio::is_file(data) => p.to_path_buf(),
        _ => splat::data::colmap::dataset_of_model(data).unwrap_or_else(|| data.to_path_buf()),
    };
    let inside = match (std::fs::canonicalize(out), std::fs::canonicalize(root)) {
        (Ok(out), Ok(root)) => out.starts_with(root),
        _ => false,
    };
    if !inside {
        return Vec::new();
    }
    let opts = splat::data::LoadOptions {
        downscale: crate::settings::RenderSettings::load_options(settings).0,
        ..Default::default()
    };
    splat::data::load_cameras(data, &opts)
        .map(|ds| ds.read_from)
        .unwrap_or_default()
}

/// Says what an orbit or a path wrote: the PNGs, then the GIF.
fn report(a: &RenderArgs, kind: &str, what: &str, s: crate::render3d::Sequence) -> CliResult {
    let gif = s.written.last().expect("at least one view and the GIF");
    if a.json {
        println!(
            "{}",
            crate::render3d::sequence_report(kind, &a.out, &s.written, &s.notes)
        );
    } else {
        println!("wrote {what} and {} to {}", gif.display(), a.out.display());
    }
    Ok(())
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
    if !a.file.exists() {
        return Err(CliError::file(&a.file, "no such file or folder"));
    }
    let fit = match ext.as_str() {
        // an unbundled SOG's meta.json is a 3D scene
        "json" if splat::formats::sog::is_unbundled(&a.file) => return render_3d(&a, &a.file),
        "json" => a.file.clone(),
        "ply" | "spz" | "splat" | "sog" => return render_3d(&a, &a.file),
        // a `chainrule fit` output folder
        _ if a.file.join("gaussians.json").is_file() => a.file.join("gaussians.json"),
        _ if a.file.is_dir() => {
            let scene = crate::scene_input::folder_scene(&a.file)?;
            return render_3d(&a, &scene);
        }
        _ => {
            return Err(CliError::file(
                &a.file,
                "unsupported model file: expected a .json written by `chainrule fit`, or a 3D \
             scene: a 3DGS .ply (or .compressed.ply), a .spz, .splat or .sog file (or an \
             unbundled SOG's meta.json), a `chainrule train` folder, a site written by `view --export`, or an original \
             3DGS model folder",
            ))
        }
    };
    refuse_3d_flags(&a)?;
    let format = match a
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("png") | None => image::ImageFormat::Png,
        Some("jpg" | "jpeg") => image::ImageFormat::Jpeg,
        Some(other) => {
            return Err(CliError::file(
                &a.out,
                format!("--out: a 2D fit is written as .png or .jpg, not .{other}"),
            ))
        }
    };
    let background = a
        .background
        .as_deref()
        .map(crate::fit::parse_background)
        .transpose()?;
    let img = render_2d(&fit, a.scale, background)?;
    let mut bytes = Vec::new();
    img.to_rgb8()
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| CliError::file(&a.out, format!("cannot encode: {e}")))?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::output::ensure_dir(dir)?;
    }
    write_atomic(&a.out, &bytes)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"out": a.out, "width": img.width, "height": img.height})
        );
    } else {
        println!("wrote {} ({}x{})", a.out.display(), img.width, img.height);
    }
    Ok(())
}

/// The flags of 3D scenes, refused for a 2D fit (which would ignore them).
fn refuse_3d_flags(a: &RenderArgs) -> CliResult {
    let given = [
        ("--orbit", a.orbit.is_some()),
        ("--path", a.path.is_some()),
        ("--size", a.size.is_some()),
        ("--up", a.up.is_some()),
        ("--center", a.center.is_some()),
        ("--radius", a.radius.is_some()),
        ("--fov", a.fov.is_some()),
        ("--elevation", a.elevation.is_some()),
        ("--antialiased", a.antialiased),
        ("--no-antialiased", a.no_antialiased),
        ("--data", a.data.is_some()),
        ("--split", a.split.is_some()),
        ("--invert-masks", a.invert_masks),
        ("--no-invert-masks", a.no_invert_masks),
        ("--compare", a.compare),
    ];
    match given.iter().find(|g| g.1) {
        Some((flag, _)) => Err(CliError::usage(format!(
            "{flag}: for 3D scenes; a 2D fit (gaussians.json) is rendered at --scale times the \
             size it was fitted at"
        ))),
        None => Ok(()),
    }
}
