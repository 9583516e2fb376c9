//! nerfstudio's `transforms.json`: the cameras of a capture as
//! `ns-process-data`, Polycam, Record3D, KIRI and other capture apps
//! export them for nerfstudio. One file beside the photos holds
//!
//! - the intrinsics, shared at its top level or given per frame (a frame's
//!   own keys win): `w`, `h` (else read from the photo), `fl_x`, `fl_y`
//!   (else `camera_angle_x`/`camera_angle_y`, instant-ngp's fields of
//!   view), `cx`, `cy` (else the middle), the distortion `k1`–`k4`, `p1`,
//!   `p2`, and `camera_model`: `OPENCV` (the default; radial `k1`–`k3` and
//!   tangential `p1`, `p2` as COLMAP's FULL_OPENCV writes them) or
//!   `OPENCV_FISHEYE` (equidistant, `k1`–`k4`);
//! - `frames`, each a `file_path` relative to the folder and a
//!   camera-to-world `transform_matrix` in OpenGL axes (x right, y up,
//!   looking down −z), and optionally a `mask_path`;
//! - optionally `ply_file_path`, the SfM points (`sparse_pc.ply`) in the
//!   frames' world.
//!
//! The capture is turned into the COLMAP model it amounts to (a camera per
//! distinct set of intrinsics, an image per frame) and loaded as a COLMAP
//! dataset is ([`super::colmap`]): distorted photos undistorted, masks
//! from `masks/` beside `images/`, `images_N` for `--downscale N`, every
//! 8th photo in name order held out. Its `train_filenames` and
//! `test_filenames` are not used (nerfstudio's default split ignores them
//! too), with a note.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::colmap::{rotation_to_quat, Image, Reconstruction};
use super::{check_rotation, masks, opengl_c2w_to_opencv_w2c, DataError, Dataset, LoadOptions};
use crate::cameras::{CameraModel, Intrinsics};

/// The file this format is read from, in the dataset's folder.
pub const FILE: &str = "transforms.json";

/// A `transforms.json` read as the COLMAP model it amounts to.
#[derive(Clone, Debug)]
pub struct Capture {
    /// A camera per distinct set of intrinsics, an image per frame (named
    /// as [`Capture::images_dir`] holds it), the points when read.
    pub rec: Reconstruction,
    /// The folder the photos' names are relative to, inside the dataset's
    /// (`images`, or `LoadOptions::images_dir`, when every frame's photo is
    /// in `images/`, else the dataset's own: an empty path).
    pub images_dir: String,
    /// What a user should hear of (a split the file names and that is not
    /// used, no points).
    pub notes: Vec<String>,
}

/// Loads the nerfstudio dataset in `dir` (see the module's notes).
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let c = read(dir, opts, true)?;
    let file = dir.join(FILE);
    let mut ds = super::colmap::load_model(dir, c.rec, &file, &c.images_dir, opts, "nerfstudio")?;
    ds.notes.splice(0..0, c.notes);
    Ok(ds)
}

/// The cameras of the nerfstudio dataset in `dir` as [`load`] gives them,
/// without decoding a photo or reading the points.
pub fn cameras(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let c = read(dir, opts, false)?;
    let file = dir.join(FILE);
    let mut ds =
        super::colmap::cameras_of_model(dir, c.rec, &file, &c.images_dir, opts, "nerfstudio")?;
    ds.notes.splice(0..0, c.notes);
    Ok(ds)
}

/// Reads `dir/transforms.json` (its points when `with_points`).
fn read(dir: &Path, opts: &LoadOptions, with_points: bool) -> Result<Capture, DataError> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    parse(&text, &path, dir, opts, with_points)
}

/// Parses the text of a `transforms.json` (`path`, named in errors) of
/// the dataset in `dir`, where a frame's photo is looked at for its size
/// when the file gives none and the points are read from when
/// `with_points`.
///
/// ```
/// use splat::data::{nerfstudio::parse, LoadOptions};
/// let text = r#"{"w": 64, "h": 48, "fl_x": 50, "fl_y": 50, "cx": 32, "cy": 24,
///   "k1": 0.01, "frames": [{"file_path": "images/a.png", "transform_matrix":
///   [[1,0,0,0],[0,1,0,0],[0,0,1,2],[0,0,0,1]]}]}"#;
/// let c = parse(text, "transforms.json".as_ref(), ".".as_ref(), &LoadOptions::default(), false)
///     .unwrap();
/// assert_eq!((c.images_dir.as_str(), c.rec.images[0].name.as_str()), ("images", "a.png"));
/// assert_eq!(c.rec.cameras[&1].model.name(), "OPENCV");
/// // OpenGL's camera looking down −z from z = 2 is OpenCV's flipped: its
/// // world-to-camera translation is (0, 0, 2) after the axes' turn
/// assert_eq!(c.rec.images[0].tvec, [0.0, 0.0, 2.0]);
/// ```
pub fn parse(
    text: &str,
    path: &Path,
    dir: &Path,
    opts: &LoadOptions,
    with_points: bool,
) -> Result<Capture, DataError> {
    let path = path.to_path_buf();
    let v: Value = serde_json::from_str(text).map_err(|e| {
        DataError::invalid(&path, format!("line {} column {}", e.line(), e.column()), e)
    })?;
    let top = v
        .as_object()
        .ok_or_else(|| DataError::invalid(&path, "top level", "must be a JSON object"))?;
    let frames = top
        .get("frames")
        .ok_or_else(|| DataError::invalid(&path, "frames", "missing"))?
        .as_array()
        .ok_or_else(|| DataError::invalid(&path, "frames", "must be an array"))?;
    // each frame's photo, named as the file names it (`./` dropped, `\`
    // read as `/`)
    let mut names = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let fp = f
            .get("file_path")
            .ok_or_else(|| DataError::invalid(&path, format!("frames[{i}].file_path"), "missing"))?
            .as_str()
            .ok_or_else(|| {
                DataError::invalid(&path, format!("frames[{i}].file_path"), "must be a string")
            })?;
        names.push(normalise(fp));
    }
    // the photos in `images/` (ns-process-data's layout): named inside it,
    // so that `images_N` and `masks/` beside it are found as for COLMAP
    let in_images = !names.is_empty() && names.iter().all(|n| n.starts_with("images/"));
    let images_dir = if in_images {
        opts.images_dir.clone()
    } else {
        String::new()
    };
    if in_images {
        for n in &mut names {
            n.drain(.."images/".len());
        }
    }
    let mut cameras: HashMap<i32, Intrinsics> = HashMap::new();
    let mut ids: Vec<(Intrinsics, i32)> = Vec::new();
    let mut images = Vec::with_capacity(frames.len());
    for (i, (f, name)) in frames.iter().zip(&names).enumerate() {
        let frame = f.as_object().ok_or_else(|| {
            DataError::invalid(&path, format!("frames[{i}]"), "must be a JSON object")
        })?;
        let photo = dir.join(if in_images { "images" } else { "" }).join(name);
        let cam = intrinsics(&path, i, frame, top, &photo)?;
        let id = match ids.iter().find(|(c, _)| *c == cam) {
            Some((_, id)) => *id,
            None => {
                let id = ids.len() as i32 + 1;
                ids.push((cam.clone(), id));
                cameras.insert(id, cam);
                id
            }
        };
        let c2w = matrix(&path, i, frame)?;
        let w2c = opengl_c2w_to_opencv_w2c(&c2w);
        let r = [0, 1, 2].map(|k| [w2c[k][0], w2c[k][1], w2c[k][2]]);
        images.push(Image {
            id: i as i32 + 1,
            qvec: rotation_to_quat(r),
            tvec: [w2c[0][3], w2c[1][3], w2c[2][3]],
            camera_id: id,
            name: name.clone(),
        });
        if let Some(m) = frame.get("mask_path") {
            check_mask(dir, &path, i, m, name, in_images)?;
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(first) = seen.insert(n.as_str(), i) {
            return Err(DataError::invalid(
                &path,
                format!("frames[{i}].file_path"),
                format!("names {n} again (frames[{first}] did): each photo once"),
            ));
        }
    }
    let points = match top.get("ply_file_path") {
        Some(_) if !with_points => Vec::new(),
        Some(p) => {
            let p = p
                .as_str()
                .ok_or_else(|| DataError::invalid(&path, "ply_file_path", "must be a string"))?;
            read_points(&dir.join(normalise(p)))?
        }
        None => Vec::new(),
    };
    let mut notes = Vec::new();
    let named: Vec<&str> = ["train_filenames", "val_filenames", "test_filenames"]
        .into_iter()
        .filter(|k| top.contains_key(*k))
        .collect();
    if !named.is_empty() {
        notes.push(format!(
            "{}'s {} {} not used: every {} photo in name order is held out, as for COLMAP \
             data (and as nerfstudio's default split ignores them)",
            path.display(),
            named.join(", "),
            if named.len() == 1 { "is" } else { "are" },
            ordinal(opts.holdout_every)
        ));
    }
    if with_points && !top.contains_key("ply_file_path") {
        notes.push(format!(
            "{} names no point cloud (ply_file_path): training starts from random points",
            path.display()
        ));
    }
    Ok(Capture {
        rec: Reconstruction {
            cameras,
            images,
            points,
        },
        images_dir,
        notes,
    })
}

/// "8th", "2nd", … for the holdout note.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
    // (the key, and where it was found, for errors)
    let get = |key: &str| -> Option<(&Value, String)> {
        match frame.get(key) {
            Some(v) => Some((v, format!("frames[{i}].{key}"))),
            None => top.get(key).map(|v| (v, key.to_string())),
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
    let k = |key: &str| number(key).map(|x| x.unwrap_or(0.0));
    let (k1, k2, k3, k4, p1, p2) = (k("k1")?, k("k2")?, k("k3")?, k("k4")?, k("p1")?, k("p2")?);
    let (model_name, model_at) = match get("camera_model") {
        None => ("OPENCV".to_string(), "camera_model".to_string()),
        Some((v, at)) => (
            v.as_str()
                .ok_or_else(|| DataError::invalid(path, &at, "must be a string"))?
                .to_string(),
            at,
        ),
    };
    let unsupported = |what: String| DataError::invalid(path, &model_at, what);
    let (model, params) = match model_name.as_str() {
        "OPENCV" | "PERSPECTIVE" | "PINHOLE" | "SIMPLE_PINHOLE" => {
            if k4 != 0.0 {
                return Err(unsupported(format!(
                    "{model_name} with k4 = {k4} (a radial term in r⁸, which no COLMAP \
                     model has) is not supported"
                )));
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
        "OPENCV_FISHEYE" => {
            if p1 != 0.0 || p2 != 0.0 {
                return Err(unsupported(format!(
                    "OPENCV_FISHEYE has no tangential terms, but p1 = {p1}, p2 = {p2}"
                )));
            }
            (
                CameraModel::OpenCvFisheye,
                vec![fx, fy, cx, cy, k1, k2, k3, k4],
            )
        }
        other => {
            return Err(unsupported(format!(
                "camera model {other} is not supported (OPENCV and OPENCV_FISHEYE are; \
                 an equirectangular or stereo panorama is not a capture this trains on)"
            )))
        }
    };
    Intrinsics::new(model, w, h, params)
        .map_err(|e| DataError::invalid(path, format!("frames[{i}] camera"), e))
}

/// A frame's `mask_path` must name the mask the COLMAP loader reads for
/// its photo (`masks/NAME.png` beside `images/`): one elsewhere would be
/// silently left out, and its pixels trained on.
fn check_mask(
    dir: &Path,
    path: &Path,
    i: usize,
    m: &Value,
    name: &str,
    in_images: bool,
) -> Result<(), DataError> {
    let field = format!("frames[{i}].mask_path");
    let given = m
        .as_str()
        .ok_or_else(|| DataError::invalid(path, &field, "must be a string"))?;
    let given = dir.join(normalise(given));
    let masks_dir = dir.join("masks");
    let found = in_images.then(|| masks::find(&masks_dir, name)).flatten();
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    match found {
        Some(f) if same(&f, &given) => Ok(()),
        _ if !given.is_file() => Err(DataError::invalid(
            path,
            field,
            format!("names {}, which is not there", given.display()),
        )),
        _ => Err(DataError::invalid(
            path,
            field,
            format!(
                "names {}, but masks are read from masks/ beside images/, by the photo's \
                 name: {} or {} (move it there{})",
                given.display(),
                masks_dir.join(name).with_extension("png").display(),
                masks_dir.join(format!("{name}.png")).display(),
                if in_images {
                    ""
                } else {
                    ", and the photos into images/"
                }
            ),
        )),
    }
}

/// The points of `ply_file_path` (grey where the file has no colours).
fn read_points(file: &Path) -> Result<Vec<super::Point>, DataError> {
    let bytes = std::fs::read(file).map_err(|e| DataError::io(file, e))?;
    let (xyz, rgb) = crate::three::ply::parse_point_cloud(&bytes, file)
        .map_err(|e| DataError::invalid(&e.path, "point cloud", e.message))?;
    Ok(xyz
        .into_iter()
        .enumerate()
        .map(|(k, xyz)| super::Point {
            xyz,
            rgb: rgb.as_ref().map_or([128; 3], |c| c[k]),
        })
        .collect())
}
