//! nerfstudio's `transforms.json`: the cameras of a capture as
//! `ns-process-data`, Polycam, Record3D, KIRI, instant-ngp's `colmap2nerf`
//! and other capture apps export them for nerfstudio. One file beside the
//! photos holds
//!
//! - the intrinsics, shared at its top level or given per frame (the top
//!   level's keys win, and its distortion whole, as nerfstudio reads
//!   them): `w`, `h` (else read from the photo), `fl_x`, `fl_y`
//!   (else `camera_angle_x`/`camera_angle_y`, instant-ngp's fields of
//!   view), `cx`, `cy` (else the middle), the distortion `k1`–`k4`, `p1`,
//!   `p2` (or `distortion_params`, those six in that order), and
//!   `camera_model`: a perspective one (`OPENCV`, the default, as
//!   nerfstudio also reads `SIMPLE_PINHOLE`, `PINHOLE`, `SIMPLE_RADIAL`,
//!   `RADIAL`: radial `k1`–`k3` and tangential `p1`, `p2`, as COLMAP's
//!   FULL_OPENCV), `OPENCV_FISHEYE` (equidistant, `k1`–`k4`; also
//!   instant-ngp's `"is_fisheye": true`), `FISHEYE624` (Project Aria's
//!   FisheyeRadTanThinPrism, `distortion_params` `[k0..k5, p0, p1,
//!   s0..s3]`: COLMAP's RAD_TAN_THIN_PRISM_FISHEYE) or `EQUIRECTANGULAR`
//!   (a 360° panorama, COLMAP's model of that name; cut into the six
//!   faces of a cube, as for COLMAP data);
//! - `fisheye_crop_radius`, a fisheye's image circle in pixels: what lies
//!   beyond it (the lens's vignette) takes no part in training or scores;
//! - `frames`, each a `file_path` relative to the folder (an extension
//!   left out is found), a camera-to-world `transform_matrix` in OpenGL
//!   axes (x right, y up, looking down −z), and optionally a `mask_path`;
//! - optionally `ply_file_path`, the SfM points (`sparse_pc.ply`) in the
//!   frames' world, and `train_filenames`/`val_filenames`/`test_filenames`,
//!   a split (used, as nerfstudio uses it).
//!
//! The capture is turned into the COLMAP model it amounts to (a camera per
//! distinct set of intrinsics, an image per frame) and loaded as a COLMAP
//! dataset is ([`super::colmap`]): distorted photos undistorted, masks from
//! the frames' `mask_path` (as nerfstudio reads them; when the file names
//! none, from `masks/` beside the photos' folder), that folder's `_N`
//! copies (`images_2/`) for `--downscale N`, every 8th photo in name order
//! held out unless the file names a split. A folder that also holds a
//! COLMAP model (as `ns-process-data` leaves one) is read as COLMAP data,
//! with a note; naming the file itself (`DATA/transforms.json`) reads it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::colmap::{rotation_to_quat, Foreign, Image, Reconstruction, Split};
use super::{check_rotation, opengl_c2w_to_opencv_w2c, DataError, Dataset, LoadOptions};
use crate::cameras::{CameraModel, Intrinsics};

/// The file this format is read from, in the dataset's folder.
pub const FILE: &str = "transforms.json";

/// A `transforms.json` read as the COLMAP model it amounts to.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The model, with what the file says beyond one: a camera per
    /// distinct set of intrinsics, an image per frame (named inside
    /// `images_dir`: the one folder every frame's photo is in, `images`
    /// read as `LoadOptions::images_dir`, else the dataset's own, an empty
    /// path), the points when read, the frames' `mask_path` files, the
    /// fisheye cameras' image circle (`fisheye_crop_radius`) and the
    /// split the file names (`test_filenames`, else `val_filenames`, and
    /// `train_filenames`), by photo name.
    pub model: Foreign,
    /// What a user should hear of (the split used, no points).
    pub notes: Vec<String>,
}

/// Whether `path` names a nerfstudio file itself (a `.json` file other
/// than NeRF-synthetic's `transforms_*.json`), rather than its folder.
pub fn is_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("transforms_"))
}

/// The dataset's folder and its file: `path` itself when it names the
/// file, else `path/transforms.json`.
fn folder_and_file(path: &Path) -> (PathBuf, PathBuf) {
    if is_file(path) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        (
            dir.unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    } else {
        (path.to_path_buf(), path.join(FILE))
    }
}

/// Loads the nerfstudio dataset at `path` (its folder, or its file: see
/// the module's notes).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    through_colmap(path, opts, true, super::colmap::load_model)
}

/// The cameras of the nerfstudio dataset at `path` as [`load`] gives them,
/// without decoding a photo or reading the points.
pub fn cameras(path: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    through_colmap(path, opts, false, super::colmap::cameras_of_model)
}

/// Reads the file at `path` (its points when `with_points`) and hands the
/// model it amounts to to the COLMAP loader `colmap`; the file's notes
/// come first.
fn through_colmap(
    path: &Path,
    opts: &LoadOptions,
    with_points: bool,
    colmap: fn(&Path, Foreign, &LoadOptions) -> Result<Dataset, DataError>,
) -> Result<Dataset, DataError> {
    let (dir, file) = folder_and_file(path);
    let c = read(&dir, &file, opts, with_points)?;
    let mut ds = colmap(&dir, c.model, opts)?;
    ds.notes.splice(0..0, c.notes);
    Ok(ds)
}

/// Reads the dataset's `file` (its points when `with_points`).
fn read(
    dir: &Path,
    file: &Path,
    opts: &LoadOptions,
    with_points: bool,
) -> Result<Capture, DataError> {
    let text = std::fs::read_to_string(file).map_err(|e| DataError::io(file, e))?;
    parse(&text, file, dir, opts, with_points)
}

/// A JSON syntax error's words without the place, which the error's field
/// gives (serde_json's text ends with " at line L column C").
pub(crate) fn json_error(path: &Path, e: &serde_json::Error) -> DataError {
    let text = e.to_string();
    let words = text.split(" at line ").next().unwrap_or(&text).to_string();
    DataError::invalid(
        path,
        format!("line {} column {}", e.line(), e.column()),
        words,
    )
}

/// Parses the text of a `transforms.json` (`path`, named in errors) of
/// the dataset in `dir`, where a frame's photo is looked at for its size
/// when the file gives none (or for its extension when its name has none),
/// its mask looked for, and the points read from when `with_points`.
///
/// ```
/// use splat::data::{nerfstudio::parse, LoadOptions};
/// let text = r#"{"w": 64, "h": 48, "fl_x": 50, "fl_y": 50, "cx": 32, "cy": 24,
///   "k1": 0.01, "frames": [{"file_path": "images/a.png", "transform_matrix":
///   [[1,0,0,0],[0,1,0,0],[0,0,1,2],[0,0,0,1]]}]}"#;
/// let c = parse(text, "transforms.json".as_ref(), ".".as_ref(), &LoadOptions::default(), false)
///     .unwrap();
/// let m = &c.model;
/// assert_eq!((m.images_dir.as_str(), m.rec.images[0].name.as_str()), ("images", "a.png"));
/// assert_eq!(m.rec.cameras[&1].model.name(), "OPENCV");
/// // OpenGL's camera looking down −z from z = 2 is OpenCV's flipped: its
/// // world-to-camera translation is (0, 0, 2) after the axes' turn
/// assert_eq!(m.rec.images[0].tvec, [0.0, 0.0, 2.0]);
/// ```
pub fn parse(
    text: &str,
    path: &Path,
    dir: &Path,
    opts: &LoadOptions,
    with_points: bool,
) -> Result<Capture, DataError> {
    let v: Value = serde_json::from_str(text).map_err(|e| json_error(path, &e))?;
    let top = v
        .as_object()
        .ok_or_else(|| DataError::invalid(path, "top level", "must be a JSON object"))?;
    let frames = top
        .get("frames")
        .ok_or_else(|| DataError::invalid(path, "frames", "missing"))?
        .as_array()
        .ok_or_else(|| DataError::invalid(path, "frames", "must be an array"))?;
    // each frame's photo, named as the file names it (`./` dropped, `\`
    // read as `/`, an extension left out found)
    let mut names = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let fp = f
            .get("file_path")
            .ok_or_else(|| DataError::invalid(path, format!("frames[{i}].file_path"), "missing"))?
            .as_str()
            .ok_or_else(|| {
                DataError::invalid(path, format!("frames[{i}].file_path"), "must be a string")
            })?;
        names.push(with_extension(dir, normalise(fp)));
    }
    // the photos in one folder (ns-process-data's `images/`, another app's
    // `rgb/`): named inside it, so that its `_N` copies and `masks/` beside
    // it are found as for COLMAP
    let folder = common_folder(&names);
    let (images_dir, copies) = match folder.as_deref() {
        Some("images") => (opts.images_dir.clone(), opts.images_dir == "images"),
        Some(f) => (f.to_string(), true),
        None => (String::new(), false),
    };
    let strip = |n: &str| -> String {
        match &folder {
            Some(f) => n.strip_prefix(&format!("{f}/")).unwrap_or(n).to_string(),
            None => n.to_string(),
        }
    };
    let names: Vec<String> = names.iter().map(|n| strip(n)).collect();
    let photo_dir = dir.join(folder.as_deref().unwrap_or(""));
    let mut cameras: HashMap<i32, Intrinsics> = HashMap::new();
    let mut ids: Vec<(Intrinsics, i32)> = Vec::new();
    let mut images = Vec::with_capacity(frames.len());
    let mut mask_files = HashMap::new();
    for (i, (f, name)) in frames.iter().zip(&names).enumerate() {
        let frame = f.as_object().ok_or_else(|| {
            DataError::invalid(path, format!("frames[{i}]"), "must be a JSON object")
        })?;
        let cam = intrinsics(path, i, frame, top, &photo_dir.join(name))?;
        let id = match ids.iter().find(|(c, _)| *c == cam) {
            Some((_, id)) => *id,
            None => {
                let id = ids.len() as i32 + 1;
                ids.push((cam.clone(), id));
                cameras.insert(id, cam);
                id
            }
        };
        let c2w = matrix(path, i, frame)?;
        let w2c = opengl_c2w_to_opencv_w2c(&c2w);
        let r = [0, 1, 2].map(|k| [w2c[k][0], w2c[k][1], w2c[k][2]]);
        images.push(Image {
            id: i as i32 + 1,
            qvec: rotation_to_quat(r),
            tvec: [w2c[0][3], w2c[1][3], w2c[2][3]],
            camera_id: id,
            name: name.clone(),
        });
        if let Some(m) = frame.get("mask_path").filter(|m| !m.is_null()) {
            let field = format!("frames[{i}].mask_path");
            let m = m
                .as_str()
                .ok_or_else(|| DataError::invalid(path, &field, "must be a string"))?;
            let file = dir.join(normalise(m));
            if !file.is_file() {
                return Err(DataError::invalid(
                    path,
                    field,
                    format!("names {}, which is not there", file.display()),
                ));
            }
            mask_files.insert(name.clone(), file);
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(first) = seen.insert(n.as_str(), i) {
            return Err(DataError::invalid(
                path,
                format!("frames[{i}].file_path"),
                format!("names {n} again (frames[{first}] did): each photo once"),
            ));
        }
    }
    let mut notes = Vec::new();
    let circles = circles(path, top, &cameras, &mut notes)?;
    let split = split(path, top, dir, &names, &strip, opts, &mut notes)?;
    let points = match top.get("ply_file_path").filter(|p| !p.is_null()) {
        Some(_) if !with_points => Vec::new(),
        Some(p) => {
            let p = p.as_str().filter(|p| !p.trim().is_empty()).ok_or_else(|| {
                DataError::invalid(path, "ply_file_path", "must name a file (a string)")
            })?;
            let file = dir.join(normalise(p));
            read_points(&file).map_err(|e| {
                DataError::invalid(
                    path,
                    "ply_file_path",
                    format!("names {}: {e}", file.display()),
                )
            })?
        }
        None => Vec::new(),
    };
    if with_points && points.is_empty() {
        let why = match top.get("ply_file_path").filter(|p| !p.is_null()) {
            Some(_) => "names a point cloud (ply_file_path) that holds no points",
            None => "names no point cloud (ply_file_path)",
        };
        notes.push(format!(
            "{} {why}, so a training run on it starts from random points",
            path.display()
        ));
    }
    Ok(Capture {
        model: Foreign {
            rec: Reconstruction {
                cameras,
                images,
                points,
            },
            file: path.to_path_buf(),
            images_dir,
            copies,
            mask_files,
            split,
            circles,
            format: "nerfstudio",
        },
        notes,
    })
}

/// The image circle of each fisheye camera, from the file's
/// `fisheye_crop_radius` (a fisheye lens's vignette, as Project Aria and
/// Eyeful Tower captures give it): its pixels beyond take no part in
/// training. As in nerfstudio, other cameras ignore it (with a note here).
fn circles(
    path: &Path,
    top: &Map<String, Value>,
    cameras: &HashMap<i32, Intrinsics>,
    notes: &mut Vec<String>,
) -> Result<HashMap<i32, f64>, DataError> {
    let Some(v) = top.get("fisheye_crop_radius").filter(|v| !v.is_null()) else {
        return Ok(HashMap::new());
    };
    let r = v
        .as_f64()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| {
            DataError::invalid(
                path,
                "fisheye_crop_radius",
                "must be a positive number (pixels)",
            )
        })?;
    if r < 1.0 {
        // (Eyeful Tower's files give a fraction of the image, 0.375 to
        // 0.45, which nerfstudio reads as pixels all the same)
        notes.push(format!(
            "{}: fisheye_crop_radius = {r} is ignored: it is read in pixels, and a circle \
             under a pixel would leave nothing to train on (a fraction of the image, as \
             Eyeful Tower's files give it, is not one)",
            path.display()
        ));
        return Ok(HashMap::new());
    }
    let circles: HashMap<i32, f64> = cameras
        .iter()
        .filter(|(_, c)| c.model.is_fisheye())
        .map(|(&id, _)| (id, r))
        .collect();
    // (a circle past every corner of its photos leaves nothing out)
    let cuts = cameras.iter().any(|(id, c)| {
        let (w, h) = (c.width as f64, c.height as f64);
        // (from the middle pixel, as the mask measures: w / 2 rounded down)
        let (mx, my) = ((c.width / 2) as f64, (c.height / 2) as f64);
        let far = mx.max(w - 1.0 - mx).powi(2) + my.max(h - 1.0 - my).powi(2);
        circles.contains_key(id) && r * r <= far
    });
    let shown = match r < 1e6 {
        true => format!("{r}"),
        false => format!("{r:e}"),
    };
    notes.push(match (circles.is_empty(), cuts) {
        (true, _) => format!(
            "{}: fisheye_crop_radius is ignored: no camera is a fisheye (as nerfstudio \
             reads it)",
            path.display()
        ),
        (false, true) => format!(
            "{}: the fisheye photos' pixels at least fisheye_crop_radius = {shown} px from \
             their middle are left out of training and scores",
            path.display()
        ),
        (false, false) => format!(
            "{}: fisheye_crop_radius = {shown} px reaches past every corner of the photos: \
             no pixel is left out",
            path.display()
        ),
    });
    Ok(circles)
}

/// The first folder every name shares (`images` of `images/a.png`,
/// `images/sub/b.png`), if they all lie in one; `..` and an absolute path
/// never count as one.
fn common_folder(names: &[String]) -> Option<String> {
    let first = |n: &str| n.split_once('/').map(|(f, _)| f.to_string());
    let f = first(names.first()?)?;
    (!f.is_empty()
        && f != ".."
        && names
            .iter()
            .all(|n| first(n).as_deref() == Some(f.as_str())))
    .then_some(f)
}

/// `name` as it is when its photo is there or it has an extension, else
/// with the first image extension that finds the photo (instant-ngp's and
/// Blender's files may leave it out).
fn with_extension(dir: &Path, name: String) -> String {
    if dir.join(&name).is_file() || Path::new(&name).extension().is_some() {
        return name;
    }
    ["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
        .iter()
        .map(|e| format!("{name}.{e}"))
        .find(|n| dir.join(n).is_file())
        .unwrap_or(name)
}

/// The split the file names: `test_filenames` (else `val_filenames`) held
/// out and `train_filenames` trained on, as nerfstudio uses them (a
/// frame in neither is left out); only `train_filenames`: the rest held
/// out. `None` when it names none (every `holdout_every`-th photo is then
/// held out). A name that is no frame's is an error.
fn split(
    path: &Path,
    top: &Map<String, Value>,
    dir: &Path,
    names: &[String],
    strip: &dyn Fn(&str) -> String,
    opts: &LoadOptions,
    notes: &mut Vec<String>,
) -> Result<Option<Split>, DataError> {
    let frames: HashSet<&str> = names.iter().map(String::as_str).collect();
    let list = |key: &str| -> Result<Option<HashSet<String>>, DataError> {
        let Some(v) = top.get(key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let items = v
            .as_array()
            .ok_or_else(|| DataError::invalid(path, key, "must be an array of file paths"))?;
        let mut out = HashSet::new();
        for (i, x) in items.iter().enumerate() {
            let n = x.as_str().ok_or_else(|| {
                DataError::invalid(path, format!("{key}[{i}]"), "must be a string")
            })?;
            let written = n;
            let n = strip(&with_extension(dir, normalise(n)));
            if !frames.contains(n.as_str()) {
                return Err(DataError::invalid(
                    path,
                    format!("{key}[{i}]"),
                    format!("names {written}, which no frame's file_path names"),
                ));
            }
            out.insert(n);
        }
        Ok(Some(out))
    };
    let train = list("train_filenames")?;
    let (test, key) = match (list("test_filenames")?, list("val_filenames")?) {
        (Some(t), _) => (Some(t), "test_filenames"),
        (None, Some(v)) => (Some(v), "val_filenames"),
        (None, None) => (None, "train_filenames"),
    };
    let test = match (test, &train) {
        (Some(t), _) => t,
        (None, Some(t)) => frames
            .iter()
            .filter(|n| !t.contains(**n))
            .map(|n| n.to_string())
            .collect(),
        (None, None) => return Ok(None),
    };
    if opts.holdout_every > 0 {
        let unused = train.as_ref().map_or(0, |t| {
            frames
                .iter()
                .filter(|n| !t.contains(**n) && !test.contains(**n))
                .count()
        });
        let mut both: Vec<String> = train.as_ref().map_or(Vec::new(), |t| {
            test.iter().filter(|n| t.contains(*n)).cloned().collect()
        });
        both.sort();
        notes.push(format!(
            "{}'s {key} {} held out ({}){}{}",
            path.display(),
            if key == "train_filenames" {
                "names the training photos: the rest are"
            } else {
                "is"
            },
            if test.len() == 1 { "1 photo".to_string() } else { format!("{} photos", test.len()) },
            if unused > 0 {
                format!("; {unused} photos its split names neither are left out, as nerfstudio leaves them")
            } else {
                String::new()
            },
            match super::masks::name_list(&both) {
                None => String::new(),
                Some((list, _)) if both.len() == test.len() && both.len() > 1 => format!(
                    "; train_filenames names all of them too ({list}): they are trained on as \
                     well, as nerfstudio uses them, so no score is of an unseen view"
                ),
                Some((list, _)) if both.len() == 1 => format!(
                    "; 1 photo it names in train_filenames too ({list}) is trained on as well, \
                     as nerfstudio uses it, so its score is not of an unseen view"
                ),
                Some((list, _)) => format!(
                    "; {} photos it names in train_filenames too ({list}) are trained on as \
                     well, as nerfstudio uses them, so their scores are not of unseen views",
                    both.len()
                ),
            }
        ));
    }
    Ok(Some(Split { test, train }))
}

/// A file path of the transforms file: `\` read as `/`, `./` dropped.
fn normalise(p: &str) -> String {
    let p = p.replace('\\', "/");
    let mut parts: Vec<&str> = p.split('/').filter(|s| *s != ".").collect();
    if parts.first() == Some(&"") && parts.len() > 1 && !p.starts_with('/') {
        parts.remove(0);
    }
    parts.join("/")
}

/// Frame `i`'s camera-to-world matrix: 4×4, or 3×4 with the last row
/// implied, a rotation and a translation.
fn matrix(path: &Path, i: usize, frame: &Map<String, Value>) -> Result<[[f64; 4]; 4], DataError> {
    let field = format!("frames[{i}].transform_matrix");
    let bad = || DataError::invalid(path, &field, "must be a 4×4 (or 3×4) array of numbers");
    let rows = frame
        .get("transform_matrix")
        .ok_or_else(|| DataError::invalid(path, &field, "missing"))?
        .as_array()
        .filter(|r| r.len() == 4 || r.len() == 3)
        .ok_or_else(bad)?;
    let mut m = [
        [0.0, 0.0, 0.0, 0.0],
        [0.0; 4],
        [0.0; 4],
        [0.0, 0.0, 0.0, 1.0],
    ];
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().filter(|x| x.len() == 4).ok_or_else(bad)?;
        for (c, x) in row.iter().enumerate() {
            m[r][c] = x.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                DataError::invalid(
                    path,
                    format!("{field}[{r}][{c}]"),
                    "must be a finite number",
                )
            })?;
        }
    }
    check_rotation(&m).map_err(|e| DataError::invalid(path, &field, e))?;
    Ok(m)
}

/// Frame `i`'s camera: its own intrinsic keys, else the file's.
fn intrinsics(
    path: &Path,
    i: usize,
    frame: &Map<String, Value>,
    top: &Map<String, Value>,
    photo: &Path,
) -> Result<Intrinsics, DataError> {
    // (the key, and where it was found, for errors): the file's own value,
    // else the frame's, as nerfstudio reads them ("fixed" intrinsics win)
    let get = |key: &str| -> Option<(&Value, String)> {
        match top.get(key) {
            Some(v) => Some((v, key.to_string())),
            None => frame.get(key).map(|v| (v, format!("frames[{i}].{key}"))),
        }
    };
    let number = |key: &str| -> Result<Option<f64>, DataError> {
        match get(key) {
            None => Ok(None),
            Some((v, at)) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| DataError::invalid(path, at, "must be a finite number")),
        }
    };
    let size = |key: &str| -> Result<Option<u64>, DataError> {
        match number(key)? {
            None => Ok(None),
            Some(x) if x >= 1.0 && x.fract() == 0.0 => Ok(Some(x as u64)),
            Some(x) => Err(DataError::invalid(
                path,
                get(key).expect("found").1,
                format!("{x} is not a size in pixels"),
            )),
        }
    };
    let (w, h) = match (size("w")?, size("h")?) {
        (Some(w), Some(h)) => (w, h),
        // (nerfstudio reads the size from the photo when the file has none)
        _ => super::photo_size(photo)
            .map(|(w, h)| (w as u64, h as u64))
            .ok_or_else(|| {
                DataError::invalid(
                    path,
                    format!("frames[{i}]"),
                    format!(
                        "gives no image size (w, h), and its photo {}'s cannot be read",
                        photo.display()
                    ),
                )
            })?,
    };
    let from_angle = |key: &str, side: u64| -> Result<Option<f64>, DataError> {
        match number(key)? {
            None => Ok(None),
            Some(a) if a > 0.0 && a < std::f64::consts::PI => {
                Ok(Some(0.5 * side as f64 / (0.5 * a).tan()))
            }
            Some(a) => Err(DataError::invalid(
                path,
                get(key).expect("found").1,
                format!("{a} is not a field of view in (0, π) radians"),
            )),
        }
    };
    // (instant-ngp marks a fisheye with `is_fisheye` and no model)
    let fisheye = matches!(get("is_fisheye"), Some((Value::Bool(true), _)));
    let (model_name, model_at) = match get("camera_model") {
        None if fisheye => ("OPENCV_FISHEYE".to_string(), "is_fisheye".to_string()),
        None => ("OPENCV".to_string(), "camera_model".to_string()),
        Some((v, at)) => (
            v.as_str()
                .ok_or_else(|| DataError::invalid(path, &at, "must be a string"))?
                .to_string(),
            at,
        ),
    };
    // (the model is checked before its terms, so that an unknown one is
    // what a refusal names)
    const PERSPECTIVE: [&str; 6] = [
        "OPENCV",
        "PERSPECTIVE",
        "PINHOLE",
        "SIMPLE_PINHOLE",
        "SIMPLE_RADIAL",
        "RADIAL",
    ];
    const OTHERS: [&str; 4] = ["OPENCV_FISHEYE", "FISHEYE", "FISHEYE624", "EQUIRECTANGULAR"];
    let name = model_name.as_str();
    let unknown = |name: &str| {
        let upper = name.to_uppercase();
        let hint = if PERSPECTIVE.contains(&upper.as_str()) || OTHERS.contains(&upper.as_str()) {
            format!(" (names are upper case: {upper})")
        } else if ["OMNIDIRECTIONALSTEREO", "VR180"]
            .iter()
            .any(|s| upper.starts_with(s))
        {
            " (a stereo panorama is not a capture this trains on)".to_string()
        } else {
            String::new()
        };
        let (last, others) = OTHERS.split_last().expect("not empty");
        DataError::invalid(
            path,
            &model_at,
            format!(
                "camera model {name} is not supported{hint}: the perspective ones ({}), {} and \
                 {last} are",
                PERSPECTIVE.join(", "),
                others.join(", ")
            ),
        )
    };
    if !PERSPECTIVE.contains(&name) && !OTHERS.contains(&name) {
        return Err(unknown(name));
    }
    if model_name == "EQUIRECTANGULAR" {
        // nerfstudio's panorama: azimuth π(x − cx)/fx and elevation
        // π(cy − y)/fy, which is COLMAP's model when the panorama spans
        // 360° by 180° from its middle (nerfstudio ignores a distortion
        // here, and so does this)
        let (wf, hf) = (w as f64, h as f64);
        for (key, want) in [
            ("fl_x", wf / 2.0),
            ("cx", wf / 2.0),
            ("fl_y", hf),
            ("cy", hf / 2.0),
        ] {
            match number(key)? {
                // (COLMAP's model has no other centre or scale: a file
                // written with pixel centres at whole numbers, cx = (w − 1)/2,
                // is half a pixel from it, and refused rather than moved)
                Some(v) if (v - want).abs() > 1e-3 => {
                    return Err(DataError::invalid(
                        path,
                        get(key).expect("found").1,
                        format!(
                            "is {v}, not {want}: an EQUIRECTANGULAR panorama of {w}×{h} spans \
                             360° by 180° about its middle (fl_x = cx = w/2, fl_y = h, cy = h/2, \
                             as nerfstudio writes it); another is not supported"
                        ),
                    ))
                }
                _ => {}
            }
        }
        return Intrinsics::new(CameraModel::Equirectangular, w, h, vec![wf, hf])
            .map_err(|e| DataError::invalid(path, format!("frames[{i}] camera"), e));
    }
    let fx = match number("fl_x")? {
        Some(f) => f,
        None => from_angle("camera_angle_x", w)?.ok_or_else(|| {
            DataError::invalid(
                path,
                format!("frames[{i}]"),
                "gives no focal length (fl_x, or camera_angle_x), nor does the file",
            )
        })?,
    };
    let fy = match number("fl_y")? {
        Some(f) => f,
        None => from_angle("camera_angle_y", h)?.unwrap_or(fx),
    };
    let cx = number("cx")?.unwrap_or(w as f64 / 2.0);
    let cy = number("cy")?.unwrap_or(h as f64 / 2.0);
    // the distortion comes whole from the file when it gives any of it, else
    // from the frame (nerfstudio's rule), as k1… keys or as
    // `distortion_params` ([k1, k2, k3, k4, p1, p2]; FISHEYE624's twelve
    // terms [k0..k5, p0, p1, s0..s3] only so)
    let keys = ["k1", "k2", "k3", "k4", "p1", "p2"];
    // (nerfstudio's trigger leaves k4 out: a file's k4 alone does not
    // make its distortion the file's)
    let fixed = ["k1", "k2", "k3", "p1", "p2", "distortion_params"]
        .iter()
        .any(|k| top.contains_key(*k));
    let source = if fixed { top } else { frame };
    let at = |key: &str| {
        if fixed {
            key.to_string()
        } else {
            format!("frames[{i}].{key}")
        }
    };
    let aria = model_name == "FISHEYE624";
    let terms = if aria {
        "[k0, k1, k2, k3, k4, k5, p0, p1, s0, s1, s2, s3]"
    } else {
        "[k1, k2, k3, k4, p1, p2]"
    };
    let mut d = vec![0.0; if aria { 12 } else { 6 }];
    if let Some(v) = source.get("distortion_params").filter(|v| !v.is_null()) {
        let list = v.as_array().filter(|a| a.len() == d.len()).ok_or_else(|| {
            let given = match v.as_array() {
                Some(a) => format!(", not {} numbers", a.len()),
                None => String::new(),
            };
            let of = if aria {
                " (FISHEYE624's twelve terms)"
            } else {
                ""
            };
            DataError::invalid(
                path,
                at("distortion_params"),
                format!("must be {terms}{of}{given}"),
            )
        })?;
        for (x, v) in d.iter_mut().zip(list) {
            *x = v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                DataError::invalid(
                    path,
                    at("distortion_params"),
                    format!("must hold {} finite numbers", list.len()),
                )
            })?;
        }
    } else if aria {
        // (nerfstudio's FISHEYE624 takes its terms from distortion_params
        // alone, and fails without them)
        let (field, what) = match keys.iter().find(|k| source.contains_key(**k)) {
            Some(key) => (at(key), "is not a FISHEYE624 term: its distortion is given"),
            None => (
                format!("frames[{i}]"),
                "is a FISHEYE624 camera with no distortion: give it",
            ),
        };
        return Err(DataError::invalid(
            path,
            field,
            format!("{what} as distortion_params, {terms}"),
        ));
    } else {
        for (x, key) in d.iter_mut().zip(keys) {
            if let Some(v) = source.get(key).filter(|v| !v.is_null()) {
                *x = v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| DataError::invalid(path, at(key), "must be a finite number"))?;
            }
        }
    }
    // (a refusal of a term names where it was given)
    let term_at = |key: &str| {
        if source.contains_key("distortion_params") {
            at("distortion_params")
        } else {
            at(key)
        }
    };
    let (model, params) = match model_name.as_str() {
        // Project Aria's FisheyeRadTanThinPrism: COLMAP's
        // RAD_TAN_THIN_PRISM_FISHEYE, term for term
        "FISHEYE624" => {
            let mut p = vec![fx, fy, cx, cy];
            p.extend(&d);
            (CameraModel::RadTanThinPrismFisheye, p)
        }
        m if PERSPECTIVE.contains(&m) => {
            let [k1, k2, k3, k4, p1, p2] = [d[0], d[1], d[2], d[3], d[4], d[5]];
            if k4 != 0.0 {
                return Err(DataError::invalid(
                    path,
                    term_at("k4"),
                    format!(
                        "k4 = {k4} on a perspective ({model_name}) camera, a radial term in r⁸ \
                         that no COLMAP model has, is not supported"
                    ),
                ));
            }
            if [k1, k2, k3, p1, p2].iter().all(|&x| x == 0.0) {
                (CameraModel::Pinhole, vec![fx, fy, cx, cy])
            } else if k3 == 0.0 {
                (CameraModel::OpenCv, vec![fx, fy, cx, cy, k1, k2, p1, p2])
            } else {
                let p = vec![fx, fy, cx, cy, k1, k2, p1, p2, k3, 0.0, 0.0, 0.0];
                (CameraModel::FullOpenCv, p)
            }
        }
        "OPENCV_FISHEYE" | "FISHEYE" => {
            let [k1, k2, k3, k4, p1, p2] = [d[0], d[1], d[2], d[3], d[4], d[5]];
            if p1 != 0.0 || p2 != 0.0 {
                return Err(DataError::invalid(
                    path,
                    term_at(if p1 != 0.0 { "p1" } else { "p2" }),
                    format!("OPENCV_FISHEYE has no tangential terms, but p1 = {p1}, p2 = {p2}"),
                ));
            }
            (
                CameraModel::OpenCvFisheye,
                vec![fx, fy, cx, cy, k1, k2, k3, k4],
            )
        }
        other => return Err(unknown(other)),
    };
    Intrinsics::new(model, w, h, params)
        .map_err(|e| DataError::invalid(path, format!("frames[{i}] camera"), e))
}

/// The points of `ply_file_path` (grey where the file has no colours).
fn read_points(file: &Path) -> Result<Vec<super::Point>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let (xyz, rgb) = crate::three::ply::parse_point_cloud(&bytes, file).map_err(|e| e.message)?;
    Ok(xyz
        .into_iter()
        .enumerate()
        .map(|(k, xyz)| super::Point {
            xyz,
            rgb: rgb.as_ref().map_or([128; 3], |c| c[k]),
        })
        .collect())
}
