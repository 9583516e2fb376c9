//! The model folder that the original 3DGS's `train.py` writes, read so
//! that a scene trained there renders and views as well framed as one of
//! ours:
//!
//! ```text
//! MODEL/cameras.json                               every training camera
//! MODEL/cfg_args                                   train.py's arguments
//! MODEL/input.ply                                  the SfM points it started from
//! MODEL/point_cloud/iteration_N/point_cloud.ply    the scene after N steps
//! ```
//!
//! `cameras.json` is an array with, per camera, `img_name`, `width`,
//! `height`, `fx`, `fy` (pixels; the principal point is the image centre),
//! `position` (the camera's centre in the world) and `rotation` (the
//! camera-to-world rotation, three rows, in OpenCV's camera axes: x right,
//! y down, z forward). From those cameras come the orbit's centre (their
//! focus, or the median of `input.ply`'s points when the focus is behind
//! the cameras or beyond 95% of the points, as for a forward-facing
//! capture), up (their mean up), radius and elevation, as `train` saves
//! them for its own scenes, and the cameras that `render --path` flies
//! along and `view` lists. `cfg_args` (a Python `Namespace(...)`) gives the
//! background (`white_background`) and the SH degree (`sh_degree`).
//!
//! The cameras only frame the scene, so `render` and `view` take a broken
//! `cameras.json` or `cfg_args` as a warning that names the file, the
//! camera and the field, and frame the scene as they frame a bare PLY; a
//! broken `input.ply` is a warning too, and the cameras alone frame it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use splat::data::{capture, View};

use crate::error::{CliError, CliResult};
use crate::settings::RenderSettings;

/// An original 3DGS model folder: its cameras and what `cfg_args` says.
#[derive(Clone, Debug)]
pub struct Model {
    /// The folder (holding `cameras.json` and `point_cloud/`).
    pub root: PathBuf,
    /// Its cameras, sorted by photo name (the order `--path` flies).
    pub cameras: Vec<View>,
    /// `cfg_args`'s `white_background`, when the file says.
    pub white_background: Option<bool>,
    /// `cfg_args`'s `sh_degree`, when the file says (0 to 3).
    pub sh_degree: Option<usize>,
    /// The SfM points train.py copied into the folder (`input.ply`), when
    /// they are there and readable: they place the orbit's centre where
    /// the cameras' axes do not meet (a forward-facing capture).
    pub points: Option<Vec<[f64; 3]>>,
}

/// The file in an original 3DGS model folder that holds the SfM points
/// the model started from.
pub const INPUT_POINTS: &str = "input.ply";

/// The model folder that `scene` stands for: the folder itself, or the
/// folder three levels above `point_cloud/iteration_N/point_cloud.ply`;
/// `None` unless that folder has a `cameras.json` and a `point_cloud`
/// folder.
pub fn root_of(scene: &Path) -> Option<PathBuf> {
    let root = if scene.is_dir() {
        scene.to_path_buf()
    } else {
        let it = scene.parent()?;
        let pc = it.parent()?;
        let iteration = it.file_name()?.to_str()?;
        if pc.file_name()? != "point_cloud" || !iteration.starts_with("iteration_") {
            return None;
        }
        match pc.parent() {
            Some(p) if p.as_os_str().is_empty() => PathBuf::from("."),
            Some(p) => p.to_path_buf(),
            None => return None,
        }
    };
    (root.join("cameras.json").is_file() && root.join("point_cloud").is_dir()).then_some(root)
}

/// The scene of a model folder: `point_cloud/iteration_N/point_cloud.ply`
/// with the largest N; `None` when there is none.
pub fn latest_scene(root: &Path) -> Option<PathBuf> {
    let dir = std::fs::read_dir(root.join("point_cloud")).ok()?;
    dir.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name();
        let digits = name.to_str()?.strip_prefix("iteration_")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        let ply = e.path().join("point_cloud.ply");
        ply.is_file().then_some((n, ply))
    })
    .max_by_key(|(n, _)| *n)
    .map(|(_, ply)| ply)
}

/// Reads the model folder that `scene` stands for; `Ok(None)` when it is
/// not in one (see [`root_of`]). An error names `cameras.json` and the
/// camera and field that are wrong, or `cfg_args` when it cannot be read.
pub fn find(scene: &Path) -> CliResult<Option<Model>> {
    let Some(root) = root_of(scene) else {
        return Ok(None);
    };
    let file = root.join("cameras.json");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| CliError::file(&file, format!("cannot read: {e}")))?;
    let mut cameras = parse_cameras(&text).map_err(|m| CliError::file(&file, m))?;
    cameras.sort_by(|x, y| splat::data::capture::path_order(&x.name, &y.name));
    let args = root.join("cfg_args");
    let (white_background, sh_degree) = if args.is_file() {
        let text = std::fs::read_to_string(&args)
            .map_err(|e| CliError::file(&args, format!("cannot read: {e}")))?;
        let sh =
            match arg(&text, "sh_degree") {
                None => None,
                Some(v) => Some(v.parse::<usize>().ok().filter(|d| *d <= 3).ok_or_else(|| {
                    CliError::file(&args, format!("sh_degree={v}: expected 0 to 3"))
                })?),
            };
        let white = match arg(&text, "white_background") {
            None => None,
            Some("True") => Some(true),
            Some("False") => Some(false),
            Some(v) => {
                return Err(CliError::file(
                    &args,
                    format!("white_background={v}: expected True or False"),
                ))
            }
        };
        (white, sh)
    } else {
        (None, None)
    };
    let points_file = root.join(INPUT_POINTS);
    let points = if points_file.is_file() {
        match splat::three::ply::read_points(&points_file) {
            Ok(p) => Some(p),
            Err(e) => {
                crate::output::warn(format!("{e}; framing the scene by its cameras alone"));
                None
            }
        }
    } else {
        None
    };
    Ok(Some(Model {
        root,
        cameras,
        white_background,
        sh_degree,
        points,
    }))
}

/// [`find`] with the model's [`Model::settings`], and what is wrong
/// reported as a warning on stderr: the cameras only frame the scene, so a
/// scene in a folder whose `cameras.json` or `cfg_args` is broken (or
/// whose cameras frame nothing finite) still renders and views, framed as
/// a bare PLY is.
pub fn find_or_warn(scene: &Path) -> Option<(Model, RenderSettings)> {
    match find(scene) {
        Ok(Some(m)) => {
            let s = m.settings();
            if s.is_finite() {
                return Some((m, s));
            }
            crate::output::warn(format!(
                "{}: the cameras frame no finite centre, up and radius; framing the \
                 scene without them",
                m.root.join("cameras.json").display()
            ));
            None
        }
        Ok(None) => None,
        Err(e) => {
            crate::output::warn(format!(
                "{e}; framing the scene without the model folder's cameras"
            ));
            None
        }
    }
}

/// The value of `name=VALUE` in a Python `Namespace(...)` repr (up to the
/// next comma or closing parenthesis), `None` when it is absent. Quoted
/// values (`model_path='./a, sh_degree=9'`) are skipped whole, so text
/// inside them is never taken for an argument.
fn arg<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let body = text.trim();
    let body = body.strip_prefix("Namespace(").unwrap_or(body);
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' && bytes[i] != b')' {
            i += 1;
        }
        let key = body[key_start..i].trim();
        if i >= bytes.len() || bytes[i] != b'=' {
            // not `name=value` (a stray token): skip it
            i += 1;
            continue;
        }
        i += 1;
        let value_start = i;
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(_) if b == b'\\' => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'\'' || b == b'"' => quote = Some(b),
                None if b == b',' || b == b')' => break,
                None => {}
            }
            i += 1;
        }
        if key == name {
            return Some(body[value_start..i.min(bytes.len())].trim());
        }
    }
    None
}

/// The cameras of a `cameras.json`, or what is wrong and where.
fn parse_cameras(text: &str) -> Result<Vec<View>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let cams = v
        .as_array()
        .ok_or("expected an array of cameras (the original 3DGS's cameras.json)")?;
    if cams.is_empty() {
        return Err("no cameras".into());
    }
    cams.iter()
        .enumerate()
        .map(|(i, c)| camera(c).map_err(|m| format!("camera {i}: {m}")))
        .collect()
}

fn number(c: &Value, key: &str) -> Result<f64, String> {
    c.get(key)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("{key}: expected a finite number"))
}

/// `v` as an array of exactly `n` finite numbers.
pub(crate) fn numbers(v: Option<&Value>, n: usize) -> Option<Vec<f64>> {
    let a = v?.as_array()?;
    let x: Vec<f64> = a.iter().map(Value::as_f64).collect::<Option<_>>()?;
    (x.len() == n && x.iter().all(|x| x.is_finite())).then_some(x)
}

/// A camera's `width` and `height` (1 to 16,384 pixels a side, at most
/// 2²⁶ in all) and its positive focal lengths `fx`, `fy`.
pub(crate) fn pixels_and_focal(c: &Value) -> Result<(u32, u32, f64, f64), String> {
    let dim = |key: &str| -> Result<u32, String> {
        c.get(key)
            .and_then(Value::as_u64)
            .filter(|n| (1..=16_384).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| format!("{key}: expected a whole number of pixels, 1 to 16384"))
    };
    let (width, height) = (dim("width")?, dim("height")?);
    if width as u64 * height as u64 > 1 << 26 {
        return Err(format!(
            "width × height: {width}×{height} is over 2^26 pixels"
        ));
    }
    let (fx, fy) = (number(c, "fx")?, number(c, "fy")?);
    if fx <= 0.0 || fy <= 0.0 {
        return Err("fx, fy: focal lengths must be positive".into());
    }
    Ok((width, height, fx, fy))
}

/// `c[key]` as three rows of three finite numbers that make a rotation
/// (orthonormal to 10⁻⁴, determinant +1).
pub(crate) fn rotation(c: &Value, key: &str) -> Result<Vec<Vec<f64>>, String> {
    let rows: Vec<Vec<f64>> = c
        .get(key)
        .and_then(Value::as_array)
        .filter(|r| r.len() == 3)
        .and_then(|r| r.iter().map(|row| numbers(Some(row), 3)).collect())
        .ok_or_else(|| format!("{key}: expected three rows of three finite numbers"))?;
    let r = |i: usize, j: usize| rows[i][j];
    // a rotation: RᵀR = I (to the precision such files are written with)
    // and det R = +1 (not a mirror)
    for i in 0..3 {
        for j in 0..3 {
            let d: f64 = (0..3).map(|k| r(k, i) * r(k, j)).sum();
            if (d - if i == j { 1.0 } else { 0.0 }).abs() > 1e-4 {
                return Err(format!(
                    "{key}: not a rotation matrix (its columns are not orthonormal)"
                ));
            }
        }
    }
    let det = r(0, 0) * (r(1, 1) * r(2, 2) - r(1, 2) * r(2, 1))
        - r(0, 1) * (r(1, 0) * r(2, 2) - r(1, 2) * r(2, 0))
        + r(0, 2) * (r(1, 0) * r(2, 1) - r(1, 1) * r(2, 0));
    if det < 0.0 {
        return Err(format!(
            "{key}: a reflection (determinant −1), not a rotation"
        ));
    }
    Ok(rows)
}

fn camera(c: &Value) -> Result<View, String> {
    let (width, height, fx, fy) = pixels_and_focal(c)?;
    let position = numbers(c.get("position"), 3)
        .ok_or("position: expected an array of three finite numbers")?;
    let rows = rotation(c, "rotation")?;
    let r = |i: usize, j: usize| rows[i][j];
    let name = match (c.get("img_name"), c.get("id")) {
        (Some(Value::String(s)), _) => s.clone(),
        (Some(Value::Number(n)), _) | (None, Some(Value::Number(n))) => n.to_string(),
        (None, Some(Value::String(s))) => s.clone(),
        _ => return Err("img_name: expected the photo's name".into()),
    };
    // world to camera: Rᵀ and −Rᵀ c, R the camera-to-world rotation
    let mut m = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = r(j, i);
        }
        m[i][3] = -(0..3).map(|k| r(k, i) * position[k]).sum::<f64>();
    }
    m[3][3] = 1.0;
    Ok(View::camera_only(
        name,
        (width, height),
        [fx, fy, width as f64 / 2.0, height as f64 / 2.0],
        m,
    ))
}

impl Model {
    /// The render settings of this model, framed by its cameras and its
    /// SfM points (`input.ply`) as `train` frames its own (a settings
    /// file's version 2: no dataset).
    /// The background is white when `cfg_args` says `white_background`,
    /// else black (train.py's default); the SH degree is `cfg_args`'s,
    /// else 3 (train.py's default).
    pub fn settings(&self) -> RenderSettings {
        let white = self.white_background.unwrap_or(false);
        let center =
            capture::focus_within(&self.cameras, self.points.as_deref()).unwrap_or([0.0; 3]);
        let up = capture::mean_up(&self.cameras).unwrap_or([0.0, 0.0, 1.0]);
        RenderSettings {
            format: crate::settings::FORMAT.into(),
            version: 2,
            background: if white { [1.0; 3] } else { [0.0; 3] },
            sh_degree: self.sh_degree.unwrap_or(3),
            antialiased: false,
            dataset_kind: if white { "nerf-synthetic" } else { "colmap" }.into(),
            dataset: None,
            up,
            center,
            radius: capture::median_distance(&self.cameras, center),
            elevation_deg: capture::mean_elevation(&self.cameras, center, up).to_degrees(),
            facing: capture::facing(&self.cameras, center, up),
            downscale: None,
            invert_masks: false,
            exposure: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(name: &str, position: [f64; 3], rotation: [[f64; 3]; 3]) -> Value {
        serde_json::json!({
            "id": 0, "img_name": name, "width": 64, "height": 48,
            "position": position, "rotation": rotation, "fx": 50.0, "fy": 50.0,
        })
    }

    #[test]
    fn a_camera_is_the_world_to_camera_transform_of_its_centre_and_rotation() {
        // looking along world +x from (−2, 0, 0), image down = world −z
        // (camera axes as columns: x right = −y, y down = −z, z fwd = +x)
        let rot = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]];
        let text = serde_json::to_string(&vec![cam("a.png", [-2.0, 0.0, 0.0], rot)]).unwrap();
        let v = &parse_cameras(&text).unwrap()[0];
        assert_eq!(v.camera_center(), [-2.0, 0.0, 0.0]);
        // the world origin is 2 in front of the camera, on its axis
        let m = v.world_to_camera;
        let p = [0, 1, 2].map(|i| m[i][3]);
        assert_eq!(p, [0.0, 0.0, 2.0]);
        // world +z (up) is the camera's −y (up in the image)
        assert_eq!([m[0][2], m[1][2], m[2][2]], [0.0, -1.0, 0.0]);
        assert_eq!(
            (v.cx, v.cy, v.width, v.name.as_str()),
            (32.0, 24.0, 64, "a.png")
        );
    }

    fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    }

    fn unit(a: [f64; 3]) -> [f64; 3] {
        let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
        a.map(|x| x / n)
    }

    #[test]
    fn cameras_around_a_point_give_it_as_the_orbit_centre() {
        // five cameras at uneven angles on a circle of radius 3 about c,
        // raised 1 along a tilted world up, each looking at c with the
        // image's up towards `up`
        let (c, up) = ([1.0, 2.0, 3.0], unit([0.3, -0.5, 0.8]));
        let e1 = unit(cross(up, [1.0, 0.0, 0.0]));
        let e2 = cross(up, e1);
        let mut ups = [0.0; 3];
        let cams: Vec<Value> = [0.1f64, 0.9, 2.0, 3.7, 5.2]
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let p: [f64; 3] =
                    [0, 1, 2].map(|i| c[i] + 3.0 * (a.cos() * e1[i] + a.sin() * e2[i]) + up[i]);
                let fwd = unit([0, 1, 2].map(|i| c[i] - p[i]));
                let right = unit(cross(fwd, up));
                let down = cross(fwd, right);
                for i in 0..3 {
                    ups[i] -= down[i];
                }
                // camera axes as columns: x right, y down, z forward
                let rot = [0, 1, 2].map(|i| [right[i], down[i], fwd[i]]);
                cam(&format!("{k}.png"), p, rot)
            })
            .collect();
        let d = std::env::temp_dir().join(format!("chainrule-3dgs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for it in [
            "iteration_7000",
            "iteration_30000",
            "iteration_90000",
            "iteration_+5",
        ] {
            std::fs::create_dir_all(d.join("point_cloud").join(it)).unwrap();
        }
        // iteration_90000 holds no PLY, and `+5` is not an iteration
        for it in ["iteration_7000", "iteration_30000", "iteration_+5"] {
            std::fs::write(d.join("point_cloud").join(it).join("point_cloud.ply"), "x").unwrap();
        }
        let write = |cams: &[Value]| {
            std::fs::write(d.join("cameras.json"), serde_json::to_string(cams).unwrap()).unwrap()
        };
        write(&cams);
        std::fs::write(
            d.join("cfg_args"),
            "Namespace(data_device='cuda', eval=True, images='images', \
             model_path='./output/x, sh_degree=9', resolution=-1, sh_degree=2, \
             source_path=\"/data/x(white_background=False)\", white_background=True)",
        )
        .unwrap();
        let ply = latest_scene(&d).unwrap();
        assert!(ply.ends_with("point_cloud/iteration_30000/point_cloud.ply"));
        assert_eq!(root_of(&ply).as_deref(), Some(d.as_path()));
        let m = find(&ply).unwrap().unwrap();
        assert_eq!((m.white_background, m.sh_degree), (Some(true), Some(2)));
        let names: Vec<&str> = m.cameras.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["0.png", "1.png", "2.png", "3.png", "4.png"]);
        let s = m.settings();
        let ups = unit(ups);
        for k in 0..3 {
            assert!((s.center[k] - c[k]).abs() < 1e-9, "{:?}", s.center);
            assert!((s.up[k] - ups[k]).abs() < 1e-12, "{:?} {ups:?}", s.up);
        }
        // the cameras' up leans towards the centre, so their mean is not
        // quite the world's up
        assert!((s.up[0] - up[0]).abs() > 1e-3);
        assert!((s.radius - 10f64.sqrt()).abs() < 1e-9, "{}", s.radius);
        assert!(s.elevation_deg > 1.0, "{}", s.elevation_deg);
        assert_eq!((s.background, s.sh_degree, s.dataset), ([1.0; 3], 2, None));
        // a broken camera is named with its field
        let mut bad = cams.clone();
        bad[2]["rotation"][1][1] = serde_json::json!(5.0);
        write(&bad);
        let e = find(&d).unwrap_err().to_string();
        assert!(
            e.contains("cameras.json") && e.contains("camera 2: rotation"),
            "{e}"
        );
        // a mirror: orthonormal columns, determinant −1
        bad[2] = cams[2].clone();
        for i in 0..3 {
            let x = bad[2]["rotation"][i][0].as_f64().unwrap();
            bad[2]["rotation"][i][0] = serde_json::json!(-x);
        }
        write(&bad);
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("camera 2: rotation: a reflection"), "{e}");
        bad[2] = cams[2].clone();
        bad[2]["position"] = serde_json::json!([0.0, 1.0, 2.0, 3.0]);
        write(&bad);
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("camera 2: position"), "{e}");
        bad[2]["position"] = serde_json::json!([0.0, "x", 1.0]);
        write(&bad);
        assert!(find(&d)
            .unwrap_err()
            .to_string()
            .contains("camera 2: position"));
        bad[2] = cams[2].clone();
        bad[2]["width"] = serde_json::json!(65_536);
        write(&bad);
        assert!(find(&d)
            .unwrap_err()
            .to_string()
            .contains("camera 2: width"));
        bad[2]["width"] = serde_json::json!(16_384);
        bad[2]["height"] = serde_json::json!(16_384);
        write(&bad);
        assert!(find(&d).unwrap_err().to_string().contains("2^26 pixels"));
        // a name from a string id when img_name is missing
        bad[2] = cams[2].clone();
        bad[2].as_object_mut().unwrap().remove("img_name");
        bad[2]["id"] = serde_json::json!("frame_a");
        write(&bad);
        assert!(find(&d)
            .unwrap()
            .unwrap()
            .cameras
            .iter()
            .any(|v| v.name == "frame_a"));
        write(&[]);
        assert!(find(&d).unwrap_err().to_string().contains("no cameras"));
        std::fs::write(d.join("cameras.json"), "{}").unwrap();
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("expected an array"), "{e}");
        // what `render` and `view` do with a broken file: no model, a warning
        assert!(find_or_warn(&d).is_none());
        assert!(RenderSettings::find(&d).unwrap().is_none());
        write(&cams);
        std::fs::write(d.join("cfg_args"), "Namespace(sh_degree=7)").unwrap();
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("cfg_args") && e.contains("sh_degree=7"), "{e}");
        // without cfg_args: train.py's defaults
        std::fs::remove_file(d.join("cfg_args")).unwrap();
        let s = find(&d).unwrap().unwrap().settings();
        assert_eq!((s.background, s.sh_degree), ([0.0; 3], 3));
        // not a model folder: no cameras.json, or a PLY elsewhere
        assert!(find(&d.join("point_cloud")).unwrap().is_none());
        std::fs::remove_file(d.join("cameras.json")).unwrap();
        assert!(find(&ply).unwrap().is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn namespace_arguments_are_found_by_whole_name() {
        let t = "Namespace(max_sh_degree=1, sh_degree=3, white_background=False)";
        assert_eq!(arg(t, "sh_degree"), Some("3"));
        assert_eq!(arg(t, "white_background"), Some("False"));
        assert_eq!(arg(t, "eval"), None);
        // quoted values, escapes and brackets never end or start an argument
        let t = "Namespace(images='it\\'s, sh_degree=1', model_path=\"a)b\", \
                 test_iterations=[7000, 30000], sh_degree=2)";
        assert_eq!(arg(t, "sh_degree"), Some("2"));
        assert_eq!(arg(t, "model_path"), Some("\"a)b\""));
        assert_eq!(arg("", "sh_degree"), None);
        assert_eq!(arg("Namespace(sh_degree='", "sh_degree"), Some("'"));
    }

    /// An `input.ply` as train.py's `storePly` writes it: float x y z nx ny
    /// nz, uchar red green blue.
    fn input_ply(points: &[[f32; 3]]) -> Vec<u8> {
        let mut b = format!(
            "ply\nformat binary_little_endian 1.0\nelement vertex {}\n\
             property float x\nproperty float y\nproperty float z\n\
             property float nx\nproperty float ny\nproperty float nz\n\
             property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n",
            points.len()
        )
        .into_bytes();
        for p in points {
            for v in p.iter().chain(&[0.0; 3]) {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&[200, 100, 50]);
        }
        b
    }

    #[test]
    fn a_forward_facing_model_orbits_its_input_points() {
        // five cameras side by side looking nearly the same way (+y), their
        // axes meeting 30 units away, far behind the scene at y 4 to 6
        let d = std::env::temp_dir().join(format!("chainrule-3dgs-ff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("point_cloud/iteration_30000")).unwrap();
        std::fs::write(d.join("point_cloud/iteration_30000/point_cloud.ply"), "x").unwrap();
        let cams: Vec<Value> = (0..5)
            .map(|i| {
                let p = [i as f64 * 0.1 - 0.2, 0.0, 1.0];
                let fwd = unit([-p[0], 30.0, 0.0]);
                let right = unit(cross(fwd, [0.0, 0.0, 1.0]));
                let down = cross(fwd, right);
                let rot = [0, 1, 2].map(|k| [right[k], down[k], fwd[k]]);
                cam(&format!("{i}.png"), p, rot)
            })
            .collect();
        std::fs::write(
            d.join("cameras.json"),
            serde_json::to_string(&cams).unwrap(),
        )
        .unwrap();
        // without input.ply: the cameras' focus, 30 units out
        let s = find(&d).unwrap().unwrap().settings();
        assert!((s.center[1] - 30.0).abs() < 1e-6, "{:?}", s.center);
        // with it: the points' median
        let points: Vec<[f32; 3]> = (0..21)
            .map(|i| [0.05 * (i % 5) as f32, 4.0 + 0.1 * i as f32, 1.0])
            .collect();
        std::fs::write(d.join(INPUT_POINTS), input_ply(&points)).unwrap();
        let m = find(&d).unwrap().unwrap();
        assert_eq!(m.points.as_ref().map(Vec::len), Some(21));
        let s = m.settings();
        let want = [0.1f32 as f64, 5.0f32 as f64, 1.0];
        assert_eq!(s.center, want);
        assert!(s.radius < 6.0, "{}", s.radius);
        // a broken input.ply is passed over (a warning): framed as without
        let mut cut = input_ply(&points);
        cut.truncate(cut.len() - 7);
        std::fs::write(d.join(INPUT_POINTS), cut).unwrap();
        let m = find(&d).unwrap().unwrap();
        assert!(m.points.is_none());
        assert!((m.settings().center[1] - 30.0).abs() < 1e-6);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
