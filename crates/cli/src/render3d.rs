//! Rendering a 3D Gaussian-splatting scene (a `.ply` in the original 3DGS
//! exporter's layout) from cameras on a circle around it: one PNG per view
//! and an animated GIF of the orbit.
//!
//! The circle is centred on `--center`, else on the training cameras' focus
//! (the point nearest all their optical axes, saved in the training
//! folder's `settings.json`), else on the scene's centre (the per-axis
//! median of the means, robust to stray Gaussians). It lies in the plane
//! orthogonal to the up vector (`--up`, else the cameras' mean up, else
//! +z) and has radius `--radius`, else the cameras' median distance from
//! their focus, else one that fits the sphere holding 95% of the means
//! into the field of view.
//!
//! Also: the cameras of a dataset (`--data DATASET --split test`, one PNG
//! per photo, named after it, with PSNR and SSIM), and a flight along the
//! dataset's cameras in order (`--path N`: positions interpolated
//! linearly, rotations by slerp, PNGs and `path.gif`).
//!
//! Renders never replace a file that no earlier render wrote, nor go into
//! a folder the dataset's photos were read from; an orbit or a path keeps
//! the list of its files in `orbit.json` or `path.json`, by which the next
//! one into the folder knows them.

use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::PngEncoder;
use image::{Delay, Frame, ImageEncoder, RgbaImage};
use splat::three::render::{render, RenderOptions};
use splat::three::{Camera, Gaussians, ProjectOptions};

use crate::error::{CliError, CliResult};
use crate::output::{ensure_dir, write_atomic};

/// Parses an up vector: a world axis (`x`, `-x`, `y`, `-y`, `z`, `-z`) or
/// `X,Y,Z` (normalised).
pub fn parse_up(text: &str) -> CliResult<[f64; 3]> {
    let axis = match text.trim() {
        "x" => Some([1.0, 0.0, 0.0]),
        "-x" => Some([-1.0, 0.0, 0.0]),
        "y" => Some([0.0, 1.0, 0.0]),
        "-y" => Some([0.0, -1.0, 0.0]),
        "z" => Some([0.0, 0.0, 1.0]),
        "-z" => Some([0.0, 0.0, -1.0]),
        _ => None,
    };
    if let Some(a) = axis {
        return Ok(a);
    }
    let v = parse_vec3("--up", text)?;
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if n <= 1e-9 {
        return Err(CliError::usage("--up: must not be the zero vector"));
    }
    Ok(v.map(|x| x / n))
}

/// Parses `X,Y,Z` (three finite numbers) for the flag `flag`.
pub fn parse_vec3(flag: &str, text: &str) -> CliResult<[f64; 3]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let nums: Vec<f64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    if parts.len() != 3 || nums.len() != 3 || nums.iter().any(|x| !x.is_finite()) {
        return Err(CliError::usage(format!(
            "{flag} {text}: expected X,Y,Z (three finite numbers)"
        )));
    }
    Ok([nums[0], nums[1], nums[2]])
}

/// Settings of an orbit render.
#[derive(Clone, Debug)]
pub struct OrbitOptions {
    /// Number of views (at least 1).
    pub views: usize,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Up vector of the scene (unit).
    pub up: [f64; 3],
    /// Centre of the orbit; `None`: the scene's centre.
    pub center: Option<[f64; 3]>,
    /// Radius of the orbit; `None`: fit the scene into the view.
    pub radius: Option<f64>,
    /// Spherical-harmonic degree to render with (`None`: all the scene has).
    pub sh_degree: Option<usize>,
    /// Horizontal field of view, degrees.
    pub fov_deg: f64,
    /// Camera height above the orbit's plane, degrees.
    pub elevation_deg: f64,
    /// The direction from the centre, in the orbit's plane, of its first
    /// view (`None`, or one along `up`: a fixed world axis made
    /// orthogonal to `up`).
    pub start: Option<[f64; 3]>,
    /// Background colour.
    pub background: [f64; 3],
    /// Mip-Splatting's antialiased projection.
    pub antialiased: bool,
    /// Frames per second of the GIF.
    pub fps: u32,
}

impl Default for OrbitOptions {
    fn default() -> Self {
        OrbitOptions {
            views: 36,
            width: 512,
            height: 512,
            up: [0.0, 0.0, 1.0],
            center: None,
            radius: None,
            sh_degree: None,
            fov_deg: 50.0,
            elevation_deg: 20.0,
            start: None,
            background: [0.0; 3],
            antialiased: false,
            fps: 12,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The orbit's cameras for a (non-empty) scene.
pub fn orbit_cameras(g: &Gaussians<f32>, o: &OrbitOptions) -> CliResult<Vec<Camera>> {
    if g.is_empty() {
        return Err(CliError::usage("the scene has no Gaussians"));
    }
    let c: [f64; 3] = o.center.unwrap_or_else(|| {
        [0, 1, 2].map(|k| median(g.means.iter().map(|m| m[k] as f64).collect()))
    });
    let mut d: Vec<f64> = g
        .means
        .iter()
        .map(|m| {
            let v = [m[0] as f64 - c[0], m[1] as f64 - c[1], m[2] as f64 - c[2]];
            (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
        })
        .collect();
    d.sort_by(f64::total_cmp);
    let r95 = d[((d.len() - 1) as f64 * 0.95) as usize].max(1e-3);
    let half = 0.5
        * o.fov_deg
            .to_radians()
            .min(o.fov_deg.to_radians() * o.height as f64 / o.width as f64);
    let dist = o.radius.unwrap_or(r95 / half.sin() * 1.05).max(1e-6);
    let up = o.up;
    // two unit vectors spanning the plane orthogonal to `up`: the world
    // axis least aligned with it, made orthogonal
    let k = (0..3)
        .min_by(|&a, &b| up[a].abs().total_cmp(&up[b].abs()))
        .expect("three axes");
    let mut axis = [0.0; 3];
    axis[k] = 1.0;
    // (the first view's direction, `--start` or the cameras' side, when
    // it is not along `up`)
    let in_plane = |v: [f64; 3]| {
        let along = v[0] * up[0] + v[1] * up[1] + v[2] * up[2];
        let e = [0, 1, 2].map(|i| v[i] - along * up[i]);
        let n = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).sqrt();
        (n > 1e-6).then(|| e.map(|x| x / n))
    };
    let e1 = o
        .start
        .and_then(in_plane)
        .or_else(|| in_plane(axis))
        .expect("the axis least aligned with a unit up is not along it");
    let e2 = [
        up[1] * e1[2] - up[2] * e1[1],
        up[2] * e1[0] - up[0] * e1[2],
        up[0] * e1[1] - up[1] * e1[0],
    ];
    let (se, ce) = o.elevation_deg.to_radians().sin_cos();
    (0..o.views)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / o.views as f64;
            let (sa, ca) = a.sin_cos();
            let eye =
                [0, 1, 2].map(|k| c[k] + dist * (ce * (ca * e1[k] + sa * e2[k]) + se * up[k]));
            Camera::look_at(eye, c, up, o.fov_deg.to_radians(), o.width, o.height).ok_or_else(
                || {
                    CliError::usage(format!(
                        "cannot place the orbit cameras at elevation {}° and distance {dist} \
                         about the centre {c:?}: within a hair of ±90° they have no direction \
                         to look, and this far out the numbers overflow (see --elevation, \
                         --radius, --center)",
                        o.elevation_deg
                    ))
                },
            )
        })
        .collect()
}

/// Renders one view to 8-bit RGBA.
pub fn render_rgba(g: &Gaussians<f32>, cam: &Camera, o: &OrbitOptions) -> CliResult<RgbaImage> {
    let opts = RenderOptions {
        project: ProjectOptions {
            antialiased: o.antialiased,
            ..Default::default()
        },
        sh_degree: o.sh_degree,
        background: o.background,
    };
    let (img, _) = render(g, cam, &opts).map_err(|e| CliError::usage(e.to_string()))?;
    let mut px = Vec::with_capacity(img.rgb.len() / 3 * 4);
    for p in img.rgb.chunks_exact(3) {
        for &v in p {
            px.push((v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
        }
        px.push(255);
    }
    Ok(RgbaImage::from_raw(cam.width, cam.height, px).expect("buffer of the right size"))
}

/// What an orbit or a path wrote, and the notes said while writing it
/// (also in its report, see [`sequence_report`]).
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    /// The frames' PNGs, then the GIF.
    pub written: Vec<PathBuf>,
    /// Notes, as printed (without their `note: ` prefix; warnings go to
    /// [`crate::output::warnings`]).
    pub notes: Vec<String>,
}

/// `chainrule render SCENE.ply --orbit N`: writes `view_000.png`, … and
/// `orbit.gif` into `out_dir`, listed in its `orbit.json` (see
/// [`sequence_report`]); returns the paths of the PNGs and the GIF.
pub fn run_ply(path: &Path, out_dir: &Path, o: &OrbitOptions) -> CliResult<Vec<PathBuf>> {
    Ok(run_orbit(path, out_dir, o, Vec::new())?.written)
}

/// [`run_ply`] with `notes` said before it (they go into the report).
pub fn run_orbit(
    path: &Path,
    out_dir: &Path,
    o: &OrbitOptions,
    notes: Vec<String>,
) -> CliResult<Sequence> {
    if o.views == 0 || o.views > 10_000 {
        return Err(CliError::usage(
            "--orbit: number of views must be 1 to 10000",
        ));
    }
    if !(o.fov_deg > 1.0 && o.fov_deg < 170.0) {
        return Err(CliError::usage(format!(
            "--fov {}: must be between 1 and 170 degrees",
            o.fov_deg
        )));
    }
    let g = crate::scene_input::read_drawable(path)?;
    // an empty scene is the file's fault; cameras that cannot be placed
    // are the settings'
    if g.is_empty() {
        return Err(CliError::file(path, "the scene has no Gaussians"));
    }
    let cams = orbit_cameras(&g, o)?;
    write_sequence(&g, &cams, out_dir, "orbit", o, notes)
}

/// How `render --path` flies.
#[derive(Clone, Debug, Default)]
pub struct PathOptions {
    /// How many frames.
    pub frames: usize,
    /// Their size (W, H), else the cameras' own.
    pub size: Option<(u32, u32)>,
    /// Only the photos in this folder of the dataset (`--path-folder`:
    /// one camera of a rig), else all of them, or a rig's largest folder.
    pub folder: Option<String>,
    /// Notes already said about the cameras (the dataset's, as which of
    /// several models was read), carried into the report and `path.json`.
    pub notes: Vec<String>,
}

/// `chainrule render SCENE.ply --path N --data DATASET`: `p.frames` views
/// flying along the dataset's cameras (train and test, in name order; only
/// those in `p.folder` when given; a rig's one camera:
/// [`splat::data::capture::path_through`], with a note):
/// `path_000.png`, … and `path.gif` at the cameras' own size and
/// intrinsics, or at `p.size` (W, H) with the same horizontal field of
/// view (`cy` the same fraction of the height), listed in `path.json`.
pub fn run_path(
    path: &Path,
    views: &[splat::data::View],
    p: &PathOptions,
    out_dir: &Path,
    o: &OrbitOptions,
) -> CliResult<Sequence> {
    let (frames, size) = (p.frames, p.size);
    if frames == 0 || frames > 10_000 {
        return Err(CliError::usage(
            "--path: number of frames must be 1 to 10000",
        ));
    }
    if views.is_empty() {
        return Err(CliError::usage("--path: the dataset has no cameras"));
    }
    let mut notes = p.notes.clone();
    let views = match &p.folder {
        Some(folder) => in_folder(views, folder)?,
        None => {
            let (views, rig) = splat::data::capture::path_through(views.to_vec());
            if let Some((folder, n)) = rig {
                let note = format!(
                    "the photos are a rig of {n} cameras (folders sharing file names); the \
                     path flies {folder}/'s {} photos (--path-folder picks another)",
                    views.len()
                );
                eprintln!("note: {note}");
                notes.push(note);
            }
            views
        }
    };
    let views = &views[..];
    let g = crate::scene_input::read_drawable(path)?;
    let span = (views.len() - 1) as f64;
    let cams: Vec<Camera> = (0..frames)
        .map(|i| {
            let s = if frames == 1 {
                0.0
            } else {
                span * i as f64 / (frames - 1) as f64
            };
            let mut v = splat::data::capture::along_path(views, s);
            if let Some((w, h)) = size {
                let k = w as f64 / v.width as f64;
                (v.fx, v.fy, v.cx) = (v.fx * k, v.fy * k, v.cx * k);
                v.cy *= h as f64 / v.height as f64;
                (v.width, v.height) = (w, h);
            }
            splat::train::camera_of(&v)
        })
        .collect();
    write_sequence(&g, &cams, out_dir, "path", o, notes)
}

/// The views whose photos are in `folder` of the dataset (`--path-folder`),
/// in their order; an error naming the folders there is when none is.
fn in_folder(views: &[splat::data::View], folder: &str) -> CliResult<Vec<splat::data::View>> {
    let folder_of = |name: &str| name.rsplit_once('/').map_or("", |(f, _)| f).to_string();
    // (`cam1/`, `./cam1` and `cam1\` name the same folder)
    let slashed = folder.replace('\\', "/");
    let want = slashed.trim_start_matches("./").trim_matches('/');
    let chosen: Vec<_> = views
        .iter()
        .filter(|v| folder_of(&v.name) == want)
        .cloned()
        .collect();
    if chosen.is_empty() {
        let mut folders: Vec<String> = views.iter().map(|v| folder_of(&v.name)).collect();
        folders.sort();
        folders.dedup();
        let listed: Vec<String> = folders
            .iter()
            .map(|f| match f.as_str() {
                "" => "the images folder itself (\"\")".to_string(),
                f => f.to_string(),
            })
            .collect();
        return Err(CliError::usage(format!(
            "--path-folder {folder}: no photo of the dataset is in that folder; its photos are \
             in: {}",
            listed.join(", ")
        )));
    }
    Ok(chosen)
}

/// The file-name prefix of the frames of a sequence of the kind `kind`:
/// an orbit's are `view_000.png`, …, a path's `path_000.png`, ….
fn frame_prefix(kind: &str) -> &str {
    match kind {
        "orbit" => "view",
        other => other,
    }
}

/// What a render of the kind `kind` (`orbit` or `path`) writes into
/// `out_dir`, as `render --json` prints it: `written` is the frames, then
/// the GIF (as [`run_ply`] and [`run_path`] return them). The render also
/// keeps this object in `out_dir` as `KIND.json` (its `report`): the next
/// render of the kind into the folder reads there which files are an
/// earlier render's, to replace them, and to remove the frames beyond its
/// own count.
pub fn sequence_report(
    kind: &str,
    out_dir: &Path,
    written: &[PathBuf],
    notes: &[String],
) -> serde_json::Value {
    let (gif, frames) = written
        .split_last()
        .expect("at least one frame and the GIF");
    let files: Vec<String> = frames.iter().map(|p| p.display().to_string()).collect();
    serde_json::json!({
        "kind": kind, "frames": frames.len(), "files": files,
        "gif": gif.display().to_string(),
        "report": out_dir.join(format!("{kind}.json")).display().to_string(),
        "out": out_dir.display().to_string(), "notes": notes,
        "warnings": crate::output::warnings(),
    })
}

/// Renders `cams` to `PREFIX_NNN.png` and the animated GIF `KIND.gif` in
/// `out_dir` (see [`frame_prefix`]), with the report `KIND.json` (see
/// [`sequence_report`]). As `render --data` does, it refuses to replace a
/// file that no earlier render there wrote, and removes an earlier
/// render's frames beyond this one's count, which would pass for its own.
fn write_sequence(
    g: &Gaussians<f32>,
    cams: &[Camera],
    out_dir: &Path,
    kind: &str,
    o: &OrbitOptions,
    notes: Vec<String>,
) -> CliResult<Sequence> {
    let prefix = frame_prefix(kind);
    let frames: Vec<String> = (0..cams.len())
        .map(|i| format!("{prefix}_{i:03}.png"))
        .collect();
    let (gif_name, report_name) = (format!("{kind}.gif"), format!("{kind}.json"));
    let report_path = out_dir.join(&report_name);
    let names: Vec<String> = frames
        .iter()
        .cloned()
        .chain([gif_name.clone(), report_name])
        .collect();
    let earlier = ["files", "gif", "report"].map(|list| (report_path.as_path(), list));
    crate::output::refuse_replacing(out_dir, &names, &earlier, "--out")?;
    ensure_dir(out_dir)?;
    // the earlier render's frames beyond this one's count go; then this
    // render's report, written before its files, so that the next render
    // finds even an interrupted one's files listed as its own
    crate::output::remove_earlier_renders(&report_path, "files", out_dir, &frames);
    let mut all: Vec<PathBuf> = frames.iter().map(|f| out_dir.join(f)).collect();
    all.push(out_dir.join(&gif_name));
    let report = sequence_report(kind, out_dir, &all, &notes);
    write_atomic(&report_path, report.to_string().as_bytes())?;
    let mut written = Vec::with_capacity(cams.len() + 1);
    let gif_path = out_dir.join(gif_name);
    let gif_fail =
        |e: image::ImageError| CliError::file(&gif_path, format!("cannot encode GIF: {e}"));
    // frames go into the GIF as they are rendered: memory stays at one view
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut gif, 10);
        enc.set_repeat(Repeat::Infinite).map_err(gif_fail)?;
        let delay = Delay::from_numer_denom_ms(1000, o.fps.max(1));
        for (i, cam) in cams.iter().enumerate() {
            let rgba = render_rgba(g, cam, o)?;
            let mut png = Vec::new();
            let rgb: Vec<u8> = rgba
                .pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
                .collect();
            let file = out_dir.join(&frames[i]);
            PngEncoder::new(&mut png)
                .write_image(&rgb, cam.width, cam.height, image::ExtendedColorType::Rgb8)
                .map_err(|e| CliError::file(&file, format!("cannot encode PNG: {e}")))?;
            write_atomic(&file, &png)?;
            written.push(file);
            enc.encode_frame(Frame::from_parts(rgba, 0, 0, delay))
                .map_err(gif_fail)?;
        }
    }
    write_atomic(&gif_path, &gif)?;
    written.push(gif_path);
    Ok(Sequence { written, notes })
}

/// Settings of `render SCENE --data DATASET`.
#[derive(Clone, Debug)]
pub struct DataRender {
    /// `test` or `train`.
    pub split: String,
    /// Background colour (the photos are composited on it too).
    pub background: [f64; 3],
    /// Mip-Splatting's antialiased projection.
    pub antialiased: bool,
    /// Spherical-harmonic degree (`None`: all the scene has).
    pub sh_degree: Option<usize>,
    /// Swap kept and ignored pixels of the dataset's masks.
    pub invert_masks: bool,
    /// Integer downscale of the photos, and the width limit (as `train`).
    pub resolution: (u32, Option<u32>),
    /// Print one JSON object.
    pub json: bool,
    /// Also write `compare/NAME`: photo, render and error heat map.
    pub compare: bool,
    /// The colour transforms an `--exposure` run learned, by training
    /// photo: a view of that name is scored (and its render written)
    /// through its transform, as the run fitted it.
    pub exposure: Option<splat::train::exposure::ByPhoto>,
    /// Whether the scene's training learned such transforms (its
    /// settings say so), for a note when they are not at hand.
    pub trained_exposure: bool,
    /// Notes already said about the dataset (which of several models it
    /// loads), carried into the report before the dataset's own.
    pub notes: Vec<String>,
}

/// Writes `dir/name`: the photo, the render and their error as a heat map
/// side by side (ignored pixels of a masked view dark blue).
fn write_compare(dir: &Path, name: &str, v: &splat::data::View, rgb: Vec<f64>) -> CliResult {
    use splat::image_io::{compare_masked, Image};
    let (width, height) = (v.width as usize, v.height as usize);
    let photo = Image {
        width,
        height,
        data: v.image_on(v.background).iter().map(|&x| x as f64).collect(),
    };
    let render = Image {
        width,
        height,
        data: rgb,
    };
    let file = dir.join(name);
    let mask = v.mask.as_ref().map(|m| m.to_f32());
    let png = compare_masked(&photo, &render, mask.as_deref())
        .to_png()
        .map_err(|e| CliError::file(&file, format!("cannot encode PNG: {e}")))?;
    write_atomic(&file, &png)
}

/// The report `render --data` leaves in its output folder: what `--json`
/// prints (the scores, and each view's render), read by the next such run
/// into the folder to remove the renders it does not write again.
pub const SCORES_FILE: &str = "scores.json";

/// `chainrule render SCENE.ply --data DATASET [--split test]`: renders the
/// scene from every camera of a dataset split, writes one PNG per photo
/// named after it (`r_0.png`, `IMG_0012.png`) into `out_dir`, and prints
/// PSNR and SSIM against the dataset's images (composited on the
/// background), per view and their mean, also kept in `out_dir`'s
/// [`SCORES_FILE`].
pub fn run_ply_on_dataset(path: &Path, data: &Path, out_dir: &Path, d: &DataRender) -> CliResult {
    let (split, bg, json) = (d.split.as_str(), d.background, d.json);
    let g = crate::scene_input::read_drawable(path)?;
    let opts = splat::data::LoadOptions {
        background: bg.map(|c| c as f32),
        invert_masks: d.invert_masks,
        downscale: d.resolution.0,
        max_width: d.resolution.1,
        ..Default::default()
    };
    let ds = splat::data::load(data, &opts).map_err(CliError::data)?;
    crate::output::print_notes(&ds);
    let views = match split {
        "test" => &ds.test,
        "train" => &ds.train,
        other => {
            return Err(CliError::usage(format!(
                "--split {other}: expected `test` or `train`"
            )))
        }
    };
    if views.is_empty() {
        return Err(CliError::file(
            data,
            format!("the {split} split has no views"),
        ));
    }
    let compare_dir = out_dir.join("compare");
    let names = ds.render_names(views);
    // (the training photos only: a held-out photo is scored as `train`
    // scores it, with none, even one a nerfstudio split also trains on)
    let learned: std::collections::HashMap<&str, &[f64; 12]> = d
        .exposure
        .iter()
        .flatten()
        .filter(|_| split == "train")
        .map(|(n, e)| (n.as_str(), e))
        .collect();
    let through = views
        .iter()
        .filter(|v| learned.contains_key(v.name.as_str()))
        .count();
    let mut notes: Vec<String> = d.notes.iter().chain(&ds.notes).cloned().collect();
    if through > 0 {
        let note = format!(
            "{through} of the {} views are scored through the colour transforms the run \
             learned for their photos (--exposure), as it fitted them; their renders too",
            views.len()
        );
        eprintln!("note: {note}");
        notes.push(note);
    } else if d.trained_exposure && d.exposure.is_none() && split == "train" {
        let note = "the scene was trained with --exposure, but its per-photo colour transforms \
                    are not at hand (they are read from a train folder's checkpoints when the \
                    folder itself is rendered on the dataset it was trained on): the training \
                    photos are scored as they are"
            .to_string();
        eprintln!("note: {note}");
        notes.push(note);
    }
    // never over the dataset's photos (nor anything else of the user's);
    // an earlier render's, or a `train` folder's renders, are replaced
    let scores = out_dir.join(SCORES_FILE);
    let metrics = out_dir
        .parent()
        .unwrap_or(Path::new(""))
        .join("metrics.json");
    let earlier = [(scores.as_path(), "per_view"), (metrics.as_path(), "views")];
    crate::output::refuse_render_folder(out_dir, &ds, &names, &earlier, "--out")?;
    if d.compare {
        let flag = "--compare's folder";
        crate::output::refuse_render_folder(&compare_dir, &ds, &names, &earlier, flag)?;
    }
    ensure_dir(out_dir)?;
    if d.compare {
        ensure_dir(&compare_dir)?;
    }
    let ropts = RenderOptions {
        project: ProjectOptions {
            antialiased: d.antialiased,
            ..Default::default()
        },
        sh_degree: d.sh_degree,
        background: bg,
    };
    // one scored view: its photo's name, scores and render file
    struct Row {
        name: String,
        psnr: f64,
        ssim: f64,
        half_fit: (f64, f64),
        masked: bool,
        exposure: bool,
        file: String,
    }
    let mut rows = Vec::with_capacity(views.len());
    for (v, name) in views.iter().zip(&names) {
        let cam = splat::train::camera_of(v);
        let (mut img, _) = render(&g, &cam, &ropts).map_err(|e| CliError::usage(e.to_string()))?;
        let learned = learned.get(v.name.as_str());
        if let Some(e) = learned {
            let rgb: Vec<f64> = img.rgb.iter().map(|&x| f64::from(x)).collect();
            img.rgb = splat::train::exposure::apply(e, &rgb)
                .into_iter()
                .map(|x| x.clamp(0.0, 1.0) as f32)
                .collect();
        }
        // over the kept pixels of the view's mask (all without one)
        let splat::train::ViewScore {
            rgb,
            psnr,
            ssim,
            half_fit,
        } = splat::train::score_view(&img.rgb, v, bg, img.width, img.height);
        let px: Vec<u8> = rgb.iter().map(|x| (x * 255.0 + 0.5) as u8).collect();
        let file = out_dir.join(name);
        let mut png = Vec::new();
        image::RgbImage::from_raw(cam.width, cam.height, px)
            .expect("buffer of the right size")
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| CliError::file(&file, format!("cannot encode PNG: {e}")))?;
        write_atomic(&file, &png)?;
        if d.compare {
            write_compare(&compare_dir, name, v, rgb)?;
        }
        rows.push(Row {
            name: v.name.clone(),
            psnr,
            ssim,
            half_fit,
            masked: v.mask.is_some(),
            exposure: learned.is_some(),
            file: file.display().to_string(),
        });
    }
    // over the views with a kept pixel (a view its mask ignores whole
    // has no score)
    let mean = |f: fn(&Row) -> f64| crate::train::mean_of_scored(rows.iter().map(f));
    let (mean_psnr, mean_ssim) = (mean(|r| r.psnr), mean(|r| r.ssim));
    let scored = rows.iter().filter(|r| !r.psnr.is_nan()).count();
    let half_counted = rows.iter().filter(|r| !r.half_fit.0.is_nan()).count();
    let masked = rows.iter().filter(|r| r.masked && !r.psnr.is_nan()).count();
    let per: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"name": r.name, "view": r.name, "masked": r.masked,
                "exposure": r.exposure,
                "psnr": r.psnr, "ssim": r.ssim,
                "psnr_half_fit": r.half_fit.0, "ssim_half_fit": r.half_fit.1, "render": r.file})
        })
        .collect();
    let mut report = serde_json::json!({
        "split": split, "views": rows.len(), "scored_views": scored,
        "psnr": mean_psnr, "ssim": mean_ssim,
        "psnr_half_fit": mean(|r| r.half_fit.0), "ssim_half_fit": mean(|r| r.half_fit.1),
        "half_fit_views": half_counted, "masked_views": masked,
        "per_view": per, "out": out_dir.display().to_string(), "notes": notes,
        "warnings": crate::output::warnings(),
    });
    if d.compare {
        report["compare"] = serde_json::json!(compare_dir.display().to_string());
    }
    // an earlier run's renders of other views would pass for this one's;
    // then this run's report, which the next run reads alike
    crate::output::remove_earlier_renders(&scores, "per_view", out_dir, &names);
    if d.compare {
        crate::output::remove_earlier_renders(&scores, "per_view", &compare_dir, &names);
    }
    write_atomic(&scores, report.to_string().as_bytes())?;
    if json {
        println!("{report}");
    } else {
        for r in &rows {
            println!("{}: PSNR {:.2} dB, SSIM {:.4}", r.name, r.psnr, r.ssim);
        }
        let unscored = match rows.len() - scored {
            0 => String::new(),
            k => format!(" ({k} with every pixel masked, left out)"),
        };
        println!(
            "{split}: {}{unscored}, mean PSNR {mean_psnr:.2} dB, mean SSIM {mean_ssim:.4}{}; \
             renders in {}",
            crate::output::count(rows.len(), "view"),
            crate::train::masked_note(masked, scored),
            out_dir.display()
        );
        if scored > 0 {
            println!(
                "{}",
                crate::train::half_fit_line(
                    "with a colour transform fitted",
                    (mean(|r| r.half_fit.0), mean(|r| r.half_fit.1)),
                    half_counted,
                    scored
                )
            );
        }
        if d.compare {
            println!(
                "photo | render | error side by side in {}",
                compare_dir.display()
            );
        }
    }
    Ok(())
}
