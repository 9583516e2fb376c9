//! What the viewer serves: the scene (replaced by snapshots while
//! training), the dataset's cameras, the start view and the training
//! curves, and the route handler that answers from them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{json, Value};
use splat::format::GaussianFile;
use splat::formats::{encode_scene_as, SceneFormat};
use splat::three::ply::to_ply_bytes_as;
use splat::three::Gaussians;

use super::server::{Body, Handler, Request, Response};
use crate::error::{CliError, CliResult};

/// Largest 2D render the server makes (pixels).
pub const MAX_FIT_PIXELS: f64 = 4096.0 * 4096.0;
/// Curve points kept (older ones are thinned out when full).
pub const MAX_STAT_POINTS: usize = 2000;

/// One point of the live training curves.
#[derive(Clone, Debug, Serialize)]
pub struct StatPoint {
    /// Iteration.
    pub iteration: u32,
    /// Seconds of training.
    pub seconds: f64,
    /// Training loss at that iteration.
    pub loss: f64,
    /// Training-view PSNR at that iteration (dB).
    pub psnr: f64,
    /// Gaussians.
    pub gaussians: usize,
}

enum Kind {
    Scene3d,
    Fit2d {
        path: PathBuf,
        width: usize,
        height: usize,
        splats: usize,
    },
}

struct Model {
    version: u64,
    gaussians: Arc<Gaussians<f32>>,
    /// The PLY of `version`, made on the first request for it.
    ply: Option<(u64, Arc<Vec<u8>>)>,
}

/// Everything the server answers from; shared by its threads and, while
/// training, the training loop (which only swaps in new snapshots).
pub struct ViewState {
    kind: Kind,
    cameras: Vec<Value>,
    background: [f64; 3],
    live: bool,
    antialiased: bool,
    /// Start view: scene centre, radius, up axis and camera.
    frame: Value,
    model: Mutex<Model>,
    stats: Mutex<(Vec<StatPoint>, f64)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panicked holder cannot leave these values half-written (each is
    // replaced whole), so a poisoned lock is still usable
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The page's JSON for a dataset's cameras (train views, then test; a
/// photo in both halves once, as trained on).
pub fn cameras_json(ds: &splat::data::Dataset) -> Vec<Value> {
    let trained = ds.train.len();
    views_json(
        ds.views()
            .enumerate()
            .map(|(k, v)| (v, if k < trained { "train" } else { "test" })),
    )
}

/// The page's JSON for cameras, each with the split it belongs to.
pub fn views_json<'a>(views: impl Iterator<Item = (&'a splat::data::View, &'a str)>) -> Vec<Value> {
    views
        .map(|(v, split)| {
            let m = &v.world_to_camera;
            json!({
                "name": v.name, "split": split, "width": v.width, "height": v.height,
                "fx": v.fx, "fy": v.fy, "cx": v.cx, "cy": v.cy,
                "R": [[m[0][0], m[0][1], m[0][2]], [m[1][0], m[1][1], m[1][2]], [m[2][0], m[2][1], m[2][2]]],
                "t": [m[0][3], m[1][3], m[2][3]],
            })
        })
        .collect()
}

/// The start view of a scene: its centre (per-axis median of the means),
/// the radius holding 95% of them, an up axis (the dataset cameras' mean
/// up, else +z) and a camera (the first dataset camera, else one that
/// frames the scene from 50° field of view).
fn frame(g: &Gaussians<f32>, cameras: &[Value]) -> Value {
    let median = |k: usize| {
        let mut v: Vec<f64> = g.means.iter().map(|m| m[k] as f64).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let c = [median(0), median(1), median(2)];
    let mut d: Vec<f64> = g
        .means
        .iter()
        .map(|m| {
            (0..3)
                .map(|k| (m[k] as f64 - c[k]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    d.sort_by(f64::total_cmp);
    let radius = d
        .get(((d.len().max(1) - 1) as f64 * 0.95) as usize)
        .copied()
        .unwrap_or(1.0)
        .max(1e-3);
    let row = |cam: &Value, i: usize| -> [f64; 3] {
        [0, 1, 2].map(|j| cam["R"][i][j].as_f64().unwrap_or(0.0))
    };
    let mut up = [0.0, 0.0, 1.0];
    if !cameras.is_empty() {
        let mut s = [0.0; 3];
        for cam in cameras {
            let y = row(cam, 1);
            (0..3).for_each(|k| s[k] -= y[k]);
        }
        let n = (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).sqrt();
        if n > 1e-9 {
            up = s.map(|x| x / n);
        }
    }
    let home = match cameras.first() {
        Some(cam) => {
            // its field of view across its shorter side, as the page
            // spans the window's shorter side with it
            let num = |k: &str| cam[k].as_f64().unwrap_or(1.0);
            let (side, f) = match num("width") < num("height") {
                true => (num("width"), num("fx")),
                false => (num("height"), num("fy")),
            };
            json!({"R": cam["R"], "t": cam["t"], "fov_deg": (2.0 * (0.5 * side / f).atan()).to_degrees()})
        }
        None => {
            // look at the centre from the -y side, a little above, framing the radius
            let fov = 50f64.to_radians();
            let dist = radius / (0.5 * fov).sin() * 1.05;
            let dir = [0.0, -0.94, 0.34];
            let eye = [0, 1, 2].map(|k| c[k] + dist * dir[k]);
            match splat::three::Camera::look_at(eye, c, up, fov, 2, 2) {
                Some(cam) => json!({"R": cam.rotation, "t": cam.translation, "fov_deg": 50.0}),
                None => {
                    json!({"R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0, 0, dist], "fov_deg": 50.0})
                }
            }
        }
    };
    json!({"center": c, "radius": radius, "up": up, "home": home})
}

impl ViewState {
    /// A 3D scene (`live`: snapshots will be published while training).
    pub fn scene(g: Gaussians<f32>, cameras: Vec<Value>, background: [f64; 3], live: bool) -> Self {
        ViewState {
            kind: Kind::Scene3d,
            frame: frame(&g, &cameras),
            cameras,
            background,
            live,
            antialiased: false,
            model: Mutex::new(Model {
                version: 0,
                gaussians: Arc::new(g),
                ply: None,
            }),
            stats: Mutex::new((Vec::new(), 0.0)),
        }
    }

    /// A 2D fit (`gaussians.json`), rendered on request at the zoom shown.
    pub fn fit2d(path: &Path) -> CliResult<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::file(path, format!("cannot read: {e}")))?;
        let file = GaussianFile::from_json(&text).map_err(|e| CliError::file(path, e))?;
        let (g, _, _) = file.model().map_err(|e| CliError::file(path, e))?;
        Ok(ViewState {
            kind: Kind::Fit2d {
                path: path.to_path_buf(),
                width: file.width,
                height: file.height,
                splats: g.n,
            },
            cameras: Vec::new(),
            background: [0.0; 3],
            live: false,
            antialiased: false,
            frame: Value::Null,
            model: Mutex::new(Model {
                version: 0,
                gaussians: Arc::new(Gaussians::new(0)),
                ply: None,
            }),
            stats: Mutex::new((Vec::new(), 0.0)),
        })
    }

    /// With a training run's settings: Mip-Splatting's antialiased
    /// projection, its cameras' mean up for orbiting and, when the page has
    /// no dataset camera to start from (a scene file shared alone, or a
    /// site without cameras), the start view `render --orbit` frames first:
    /// about the cameras' focus, at their distance and elevation, on their
    /// side, with a 50° field of view.
    pub fn with_training_settings(
        mut self,
        antialiased: bool,
        s: &crate::settings::RenderSettings,
    ) -> Self {
        self.antialiased = antialiased;
        self.frame["up"] = json!(s.up);
        if self.cameras.is_empty() {
            let o = crate::render3d::OrbitOptions {
                views: 1,
                width: 1,
                height: 1,
                up: s.up,
                center: Some(s.center),
                radius: Some(s.radius).filter(|r| *r > 0.0),
                fov_deg: 50.0,
                elevation_deg: s.elevation_deg,
                start: s.facing,
                ..Default::default()
            };
            let g = lock(&self.model).gaussians.clone();
            if let Some(cam) = crate::render3d::orbit_cameras(&g, &o)
                .ok()
                .and_then(|c| c.into_iter().next())
            {
                // (the page's radius stays the splats' extent: its speeds
                // and near limits scale with it, with cameras or without)
                self.frame["center"] = json!(s.center);
                self.frame["home"] =
                    json!({"R": cam.rotation, "t": cam.translation, "fov_deg": 50.0});
            }
        }
        self
    }

    /// Whether the scene is drawn with Mip-Splatting's antialiased
    /// projection.
    pub fn antialiased(&self) -> bool {
        self.antialiased
    }

    /// Drawn with Mip-Splatting's antialiased projection when
    /// `antialiased` (a scene file that declares it, with no training
    /// settings beside it); the model it serves and exports says so too.
    pub fn with_antialiased(mut self, antialiased: bool) -> Self {
        self.antialiased = antialiased;
        self
    }

    /// Replaces the scene with a new snapshot (cheap: the PLY is made when
    /// a browser asks for it, on the server's thread).
    pub fn publish(&self, g: Gaussians<f32>) {
        let mut m = lock(&self.model);
        m.version += 1;
        m.gaussians = Arc::new(g);
    }

    /// Appends a point to the training curves, with the current speed.
    pub fn push_stat(&self, p: StatPoint, iterations_per_second: f64) {
        let mut s = lock(&self.stats);
        if s.0.len() >= MAX_STAT_POINTS {
            // keep every other point: the curve's shape at half the density
            let kept: Vec<StatPoint> = s.0.iter().step_by(2).cloned().collect();
            s.0 = kept;
        }
        s.0.push(p);
        s.1 = iterations_per_second;
    }

    /// The model's version (bumped by every [`publish`](Self::publish)).
    pub fn version(&self) -> u64 {
        lock(&self.model).version
    }

    fn info(&self) -> Value {
        match &self.kind {
            Kind::Scene3d => {
                let m = lock(&self.model);
                json!({
                    "kind": "3d", "live": self.live, "version": m.version,
                    "splats": m.gaussians.len(), "sh_degree": m.gaussians.sh_degree,
                    "background": self.background, "cameras": !self.cameras.is_empty(),
                    "antialiased": self.antialiased,
                    "center": self.frame["center"], "radius": self.frame["radius"],
                    "up": self.frame["up"], "home": self.frame["home"],
                })
            }
            Kind::Fit2d {
                width,
                height,
                splats,
                ..
            } => {
                let max_scale = (MAX_FIT_PIXELS / (*width as f64 * *height as f64)).sqrt();
                json!({"kind": "2d", "width": width, "height": height, "splats": splats,
                       "max_scale": max_scale, "live": false, "version": 0})
            }
        }
    }

    fn model_ply(&self) -> Arc<Vec<u8>> {
        let (version, g) = {
            let m = lock(&self.model);
            if let Some((v, bytes)) = &m.ply {
                if *v == m.version {
                    return bytes.clone();
                }
            }
            (m.version, m.gaussians.clone())
        };
        // encoded without the lock: training never waits for a browser
        let bytes = Arc::new(to_ply_bytes_as(&g, self.antialiased));
        let mut m = lock(&self.model);
        if m.version == version {
            m.ply = Some((version, bytes.clone()));
        }
        bytes
    }

    fn fit_png(&self, req: &Request) -> Response {
        let Kind::Fit2d {
            path,
            width,
            height,
            ..
        } = &self.kind
        else {
            return Response::error(404, "not a 2D fit");
        };
        let scale: f64 = match req.param("scale").map(str::parse) {
            Some(Ok(s)) => s,
            None => 1.0,
            Some(Err(_)) => return Response::error(400, "scale must be a number"),
        };
        let pixels = *width as f64 * *height as f64 * scale * scale;
        if !(scale > 0.0 && (1.0..=MAX_FIT_PIXELS).contains(&pixels)) {
            return Response::error(400, "scale out of range");
        }
        match crate::render::render_2d(path, scale, None).and_then(|img| {
            img.to_png()
                .map_err(|e| CliError::file(path, format!("cannot encode PNG: {e}")))
        }) {
            Ok(png) => Response::ok("image/png", Body::Owned(png)),
            Err(e) => Response::error(500, &e.to_string()),
        }
    }

    /// The page and a 3D scene as the files of a static site, each a path
    /// relative to the site's folder and its bytes: the assets (the page's
    /// URLs are all relative), `info.json` (not live), `cameras.json` and
    /// the model, the same bytes the server answers with when `format` is
    /// PLY (`model.ply`), else `model.spz`, `model.splat`,
    /// `model.compressed.ply` or `model.sog`, named in
    /// `info.json`'s `model`. `Ok(None)` for a 2D fit, whose image the
    /// server renders at each zoom; `Err` if the scene cannot be encoded
    /// in `format`.
    pub fn static_site(&self, format: SceneFormat) -> Result<Option<Vec<(String, Body)>>, String> {
        if !matches!(self.kind, Kind::Scene3d) {
            return Ok(None);
        }
        let mut files: Vec<(String, Body)> = super::assets::ASSETS
            .iter()
            .filter(|a| a.0 != "/")
            .map(|&(path, _, bytes)| (path[1..].to_string(), Body::Static(bytes)))
            .collect();
        let model = format!("model.{}", format.extension());
        let bytes = match format {
            SceneFormat::Ply => Body::Shared(self.model_ply()),
            _ => Body::Owned(encode_scene_as(
                &lock(&self.model).gaussians,
                format,
                self.antialiased,
            )?),
        };
        let mut info = self.info();
        info["live"] = json!(false);
        info["model"] = json!(model);
        let json_body = |v: &Value| Body::Owned(v.to_string().into_bytes());
        files.push(("info.json".into(), json_body(&info)));
        files.push((
            "cameras.json".into(),
            json_body(&Value::Array(self.cameras.clone())),
        ));
        files.push((model, bytes));
        Ok(Some(files))
    }

    /// Answers one request.
    pub fn respond(&self, req: &Request) -> Response {
        if let Some((ty, bytes)) = super::assets::asset(&req.path) {
            let mut r = Response::ok(ty, Body::Static(bytes));
            r.cacheable = req.path.starts_with("/vendor/");
            return r;
        }
        let scene = matches!(self.kind, Kind::Scene3d);
        match req.path.as_str() {
            "/info.json" => Response::json(&self.info()),
            "/model.ply" if scene => {
                Response::ok("application/octet-stream", Body::Shared(self.model_ply()))
            }
            "/cameras.json" if scene => Response::json(&Value::Array(self.cameras.clone())),
            "/stats.json" => {
                let s = lock(&self.stats);
                Response::json(&json!({"points": s.0, "iterations_per_second": s.1}))
            }
            "/fit.png" => self.fit_png(req),
            _ => Response::error(404, "no such page"),
        }
    }
}

/// The server's handler for a state.
pub fn handler(st: Arc<ViewState>) -> Handler {
    Arc::new(move |req: &Request| st.respond(req))
}
