//! The model folder that the original 3DGS's `train.py` writes, read so
//! that a scene trained there renders and views as well framed as one of
//! ours:
//!
//! ```text
//! MODEL/cameras.json                               every training camera
//! MODEL/cfg_args                                   train.py's arguments
//! MODEL/point_cloud/iteration_N/point_cloud.ply    the scene after N steps
//! ```
//!
//! `cameras.json` is an array with, per camera, `img_name`, `width`,
//! `height`, `fx`, `fy` (pixels; the principal point is the image centre),
//! `position` (the camera's centre in the world) and `rotation` (the
//! camera-to-world rotation, three rows, in OpenCV's camera axes: x right,
//! y down, z forward). From those cameras come the orbit's centre (their
//! focus), up (their mean up), radius and elevation, as `train` saves them
//! for its own scenes, and the cameras that `render --path` flies along
//! and `view` lists. `cfg_args` (a Python `Namespace(...)`) gives the
//! background (`white_background`) and the SH degree (`sh_degree`).

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
}

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
        let n: u64 = name.to_str()?.strip_prefix("iteration_")?.parse().ok()?;
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
    cameras.sort_by(|x, y| x.name.cmp(&y.name));
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
    Ok(Some(Model {
        root,
        cameras,
        white_background,
        sh_degree,
    }))
}

/// The value of `name=VALUE` in a Python `Namespace(...)` repr (up to the
/// next comma or closing parenthesis), `None` when it is absent.
fn arg<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    let mut from = 0;
    while let Some(at) = text[from..].find(&key) {
        let start = from + at;
        // a whole argument name: preceded by `(`, `,` or a space
        let whole = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c == '(' || c == ',' || c.is_whitespace());
        let rest = &text[start + key.len()..];
        if whole {
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            return Some(rest[..end].trim());
        }
        from = start + key.len();
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

fn camera(c: &Value) -> Result<View, String> {
    let dim = |key: &str| -> Result<u32, String> {
        c.get(key)
            .and_then(Value::as_u64)
            .filter(|n| (1..=65_536).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| format!("{key}: expected a whole number of pixels, 1 to 65536"))
    };
    let (width, height) = (dim("width")?, dim("height")?);
    let (fx, fy) = (number(c, "fx")?, number(c, "fy")?);
    if fx <= 0.0 || fy <= 0.0 {
        return Err("fx, fy: focal lengths must be positive".into());
    }
    let position: Vec<f64> = c
        .get("position")
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if position.len() != 3 || position.iter().any(|x| !x.is_finite()) {
        return Err("position: expected three finite numbers".into());
    }
    let rows: Vec<Vec<f64>> = c
        .get("rotation")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .map(|row| {
                    row.as_array()
                        .map(|x| x.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.len() != 3
        || rows
            .iter()
            .any(|r| r.len() != 3 || r.iter().any(|x| !x.is_finite()))
    {
        return Err("rotation: expected three rows of three finite numbers".into());
    }
    let r = |i: usize, j: usize| rows[i][j];
    // a rotation: RᵀR = I (to the precision such files are written with)
    for i in 0..3 {
        for j in 0..3 {
            let d: f64 = (0..3).map(|k| r(k, i) * r(k, j)).sum();
            if (d - if i == j { 1.0 } else { 0.0 }).abs() > 1e-4 {
                return Err(
                    "rotation: not a rotation matrix (its columns are not orthonormal)".into(),
                );
            }
        }
    }
    let name = match c.get("img_name") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => c
            .get("id")
            .map(|id| id.to_string())
            .ok_or("img_name: expected the photo's name")?,
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
    Ok(View {
        name,
        width,
        height,
        fx,
        fy,
        cx: width as f64 / 2.0,
        cy: height as f64 / 2.0,
        world_to_camera: m,
        image: Vec::new(),
        alpha: None,
        background: [0.0; 3],
        mask: None,
    })
}

impl Model {
    /// The render settings of this model, framed by its cameras as
    /// `train` frames its own (a settings file's version 2: no dataset).
    /// The background is white when `cfg_args` says `white_background`,
    /// else black (train.py's default); the SH degree is `cfg_args`'s,
    /// else 3 (train.py's default).
    pub fn settings(&self) -> RenderSettings {
        let white = self.white_background.unwrap_or(false);
        let center = capture::focus(&self.cameras).unwrap_or([0.0; 3]);
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
            downscale: None,
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

    #[test]
    fn cameras_around_a_point_give_it_as_the_orbit_centre() {
        // four cameras on a circle of radius 3 about (1, 2, 3) in the plane
        // z = 3, looking at it, world +z up
        let c = [1.0, 2.0, 3.0];
        let cams: Vec<Value> = (0..4)
            .map(|k| {
                let a = k as f64 * std::f64::consts::FRAC_PI_2 + 0.3;
                let p = [c[0] + 3.0 * a.cos(), c[1] + 3.0 * a.sin(), c[2]];
                let fwd = [-a.cos(), -a.sin(), 0.0];
                let down = [0.0, 0.0, -1.0];
                // right = down × forward (x = y × z in a right-handed frame)
                let right = [
                    down[1] * fwd[2] - down[2] * fwd[1],
                    down[2] * fwd[0] - down[0] * fwd[2],
                    down[0] * fwd[1] - down[1] * fwd[0],
                ];
                let rot = [0, 1, 2].map(|i| [right[i], down[i], fwd[i]]);
                cam(&format!("{k}.png"), p, rot)
            })
            .collect();
        let d = std::env::temp_dir().join(format!("chainrule-3dgs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("point_cloud/iteration_7000")).unwrap();
        std::fs::create_dir_all(d.join("point_cloud/iteration_30000")).unwrap();
        std::fs::write(d.join("point_cloud/iteration_7000/point_cloud.ply"), "x").unwrap();
        std::fs::write(d.join("point_cloud/iteration_30000/point_cloud.ply"), "x").unwrap();
        std::fs::write(
            d.join("cameras.json"),
            serde_json::to_string(&cams).unwrap(),
        )
        .unwrap();
        std::fs::write(
            d.join("cfg_args"),
            "Namespace(data_device='cuda', eval=True, images='images', \
             model_path='./output/x', resolution=-1, sh_degree=2, \
             source_path='/data/x', white_background=True)",
        )
        .unwrap();
        let ply = latest_scene(&d).unwrap();
        assert!(ply.ends_with("point_cloud/iteration_30000/point_cloud.ply"));
        assert_eq!(root_of(&ply).as_deref(), Some(d.as_path()));
        let m = find(&ply).unwrap().unwrap();
        assert_eq!((m.white_background, m.sh_degree), (Some(true), Some(2)));
        let s = m.settings();
        for k in 0..3 {
            assert!((s.center[k] - c[k]).abs() < 1e-9, "{:?}", s.center);
            assert!((s.up[k] - [0.0, 0.0, 1.0][k]).abs() < 1e-12, "{:?}", s.up);
        }
        assert!((s.radius - 3.0).abs() < 1e-9 && s.elevation_deg.abs() < 1e-6);
        assert_eq!((s.background, s.sh_degree, s.dataset), ([1.0; 3], 2, None));
        // a broken camera is named with its field
        let mut bad = cams.clone();
        bad[2]["rotation"][1][1] = serde_json::json!(5.0);
        std::fs::write(d.join("cameras.json"), serde_json::to_string(&bad).unwrap()).unwrap();
        let e = find(&d).unwrap_err().to_string();
        assert!(
            e.contains("cameras.json") && e.contains("camera 2: rotation"),
            "{e}"
        );
        bad[2] = cam("2.png", [0.0, 0.0, f64::MAX], [[1.0, 0.0, 0.0]; 3]);
        bad[2]["position"] = serde_json::json!([0.0, "x", 1.0]);
        std::fs::write(d.join("cameras.json"), serde_json::to_string(&bad).unwrap()).unwrap();
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("camera 2: position"), "{e}");
        std::fs::write(d.join("cameras.json"), "{}").unwrap();
        let e = find(&d).unwrap_err().to_string();
        assert!(e.contains("expected an array"), "{e}");
        std::fs::write(
            d.join("cameras.json"),
            serde_json::to_string(&cams).unwrap(),
        )
        .unwrap();
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
    }
}
