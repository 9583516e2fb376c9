//! Training a 3D Gaussian scene on posed photographs (the 3DGS recipe):
//! render a random training view with the fused kernels, L1 + 0.2·(1 − SSIM)
//! against the photograph, backward, Adam with a learning rate per parameter
//! group, spherical-harmonic bands unlocked one at a time, and adaptive
//! density control (clone small, split large, prune transparent and
//! oversized splats, periodic opacity reset).
//!
//! Parameters and Adam's moments are kept in `f64`, one flat vector per
//! group; each iteration renders in `f32`. Checkpoints are a folder with the
//! scene as a standard 3DGS PLY file and the optimiser's state in a binary
//! file, published by atomically replacing `latest.json`.

use std::path::{Path, PathBuf};

use crate::adam::Adam;
use crate::atomic::write_atomic;
use crate::data::{Dataset, View};
use crate::loss;
use crate::three::project::quat_to_rotmat;
use crate::three::render::{render, render_backward_with_means2d, RenderOptions};
use crate::three::scene::{sh_coeffs, Gaussians, Rng};
use crate::three::sh::SH_C0;
use crate::three::{ply, Camera};

/// Settings of a training run (defaults: the 3DGS paper's, except the
/// number of random initial points).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Iterations in all (the position learning rate decays over them).
    pub iters: u32,
    /// Seed of the initialisation and the choice of views.
    pub seed: u64,
    /// Largest spherical-harmonic degree (0 to 3).
    pub sh_degree: usize,
    /// One more SH band every this many iterations.
    pub sh_interval: u32,
    /// Random initial points when the dataset has no sparse points.
    pub init_points: usize,
    /// Position learning rate at the start, times the scene extent.
    pub lr_mean: f64,
    /// Position learning rate at the end, times the scene extent.
    pub lr_mean_final: f64,
    /// Learning rate of the SH DC coefficients (higher bands: 20× lower).
    pub lr_sh: f64,
    /// Learning rate of the opacity logits.
    pub lr_opacity: f64,
    /// Learning rate of the log-scales.
    pub lr_scale: f64,
    /// Learning rate of the quaternions.
    pub lr_rotation: f64,
    /// Densify from this iteration ...
    pub densify_from: u32,
    /// ... until this one ...
    pub densify_until: u32,
    /// ... every this many iterations.
    pub densify_every: u32,
    /// Average view-space positional gradient (in NDC units) above which a
    /// splat is cloned or split.
    pub densify_grad: f64,
    /// Splats whose largest scale is above this fraction of the extent are
    /// split, the others cloned.
    pub percent_dense: f64,
    /// Reset opacities to at most 0.01 every this many iterations.
    pub opacity_reset_every: u32,
    /// Prune splats less opaque than this.
    pub prune_opacity: f64,
    /// Cap on the number of Gaussians (densification stops adding at it).
    pub max_gaussians: usize,
    /// Background colour of renders (the one the photographs are on).
    pub background: [f64; 3],
    /// Train each iteration on a random background colour: the render's
    /// background and the photograph's (re-composited through its alpha)
    /// change together, so transparent regions cannot be learnt as
    /// background-coloured splats. Evaluation still uses `background`.
    pub random_background: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iters: 4000,
            seed: 0,
            sh_degree: 3,
            sh_interval: 1000,
            init_points: 5_000,
            lr_mean: 1.6e-4,
            lr_mean_final: 1.6e-6,
            lr_sh: 2.5e-3,
            lr_opacity: 0.05,
            lr_scale: 0.005,
            lr_rotation: 0.001,
            densify_from: 500,
            densify_until: 15_000,
            densify_every: 100,
            densify_grad: 2e-4,
            percent_dense: 0.01,
            opacity_reset_every: 3000,
            prune_opacity: 0.005,
            max_gaussians: 1_000_000,
            background: [1.0; 3],
            random_background: false,
        }
    }
}

/// Why training stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The settings or the dataset cannot be trained on.
    #[error("{0}")]
    Config(String),
    /// A value became NaN or infinite.
    #[error("iteration {iteration}: {op} produced a non-finite value (NaN or infinity); training stopped, the last checkpoint is untouched")]
    NonFinite {
        /// The iteration (1-based) at which it happened.
        iteration: u32,
        /// The operation that produced it.
        op: &'static str,
    },
    /// A checkpoint could not be written or read.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The renderer rejected its input.
    #[error("render: {0}")]
    Render(String),
}

fn ck_err(path: &Path, m: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: m.to_string(),
    }
}

/// Number of parameter groups.
pub const GROUPS: usize = 6;
/// Names of the groups, in order.
pub const GROUP_NAMES: [&str; GROUPS] = [
    "means",
    "scales",
    "rotations",
    "opacity",
    "sh_dc",
    "sh_rest",
];

const ADAM_OPS: [&str; GROUPS] = [
    "Adam update of the means",
    "Adam update of the scales",
    "Adam update of the rotations",
    "Adam update of the opacities",
    "Adam update of the SH DC coefficients",
    "Adam update of the higher SH coefficients",
];

/// What one iteration measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// The loss before the update.
    pub loss: f64,
    /// PSNR (dB) of the render of the training view used.
    pub psnr: f64,
    /// Gaussians after the iteration (densification included).
    pub gaussians: usize,
    /// Seconds spent in the render, the loss and its gradient, the
    /// render's backward pass, and the update with the schedules.
    pub timings: [f64; 4],
}

/// The evaluation of one view.
#[derive(Clone, Debug)]
pub struct ViewEval {
    /// The view's name.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The render, clipped to [0, 1], 3 values per pixel.
    pub rgb: Vec<f64>,
    /// PSNR in dB against the photograph.
    pub psnr: f64,
    /// Mean SSIM against the photograph.
    pub ssim: f64,
}

/// A camera for a dataset view.
pub fn camera_of(v: &View) -> Camera {
    let m = &v.world_to_camera;
    Camera::new(
        v.width,
        v.height,
        v.fx,
        v.fy,
        v.cx,
        v.cy,
        [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ],
        [m[0][3], m[1][3], m[2][3]],
    )
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// A training run in progress.
pub struct Trainer {
    cfg: TrainConfig,
    data: Dataset,
    extent: f64,
    /// Flat parameters per group (strides: 3, 3, 4, 1, 3, 3·(K−1)).
    params: [Vec<f64>; GROUPS],
    adam: Vec<Adam>,
    iteration: u32,
    sh_active: usize,
    grad_accum: Vec<f64>,
    grad_count: Vec<f64>,
    max_radii: Vec<f64>,
}

impl Trainer {
    /// Starts a run: the initial scene from the dataset's sparse points if
    /// it has them, otherwise `cfg.init_points` random points in a cube
    /// around the point the cameras look at (half-side: a third of the
    /// camera extent).
    pub fn new(data: Dataset, cfg: TrainConfig) -> Result<Self, TrainError> {
        check_config(&data, &cfg)?;
        let (center, extent) = data.camera_extent();
        let extent = if extent > 0.0 { extent } else { 1.0 };
        let mut rng = Rng::new(cfg.seed);
        let (pts, cols): (Vec<[f64; 3]>, Vec<[f64; 3]>) = match &data.points {
            Some(p) if !p.is_empty() => p
                .iter()
                .map(|p| (p.xyz, p.rgb.map(|c| c as f64 / 255.0)))
                .unzip(),
            _ => {
                let (lo, hi) = camera_box(&data, center, extent);
                (0..cfg.init_points.clamp(1, cfg.max_gaussians))
                    .map(|_| {
                        let p = [0, 1, 2].map(|k| rng.range(lo[k], hi[k]));
                        (p, [rng.uniform(), rng.uniform(), rng.uniform()])
                    })
                    .unzip()
            }
        };
        // initial scale: the mean spacing of the points in their bounding box
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in &pts {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let vol: f64 = (0..3).map(|k| (hi[k] - lo[k]).max(1e-3 * extent)).product();
        let spacing = (vol / pts.len() as f64).cbrt();
        let n = pts.len();
        let k = sh_coeffs(cfg.sh_degree);
        let mut params: [Vec<f64>; GROUPS] = Default::default();
        for (p, c) in pts.iter().zip(&cols) {
            params[0].extend_from_slice(p);
            params[1].extend_from_slice(&[(0.5 * spacing).ln(); 3]);
            params[2].extend_from_slice(&[1.0, 0.0, 0.0, 0.0]);
            params[3].push(logit(0.1));
            params[4].extend(c.iter().map(|&c| (c - 0.5) / SH_C0));
            params[5].extend(std::iter::repeat_n(0.0, 3 * (k - 1)));
        }
        let mut t = Trainer {
            adam: Vec::new(),
            grad_accum: vec![0.0; n],
            grad_count: vec![0.0; n],
            max_radii: vec![0.0; n],
            cfg,
            data,
            extent,
            params,
            iteration: 0,
            sh_active: 0,
        };
        t.adam = (0..GROUPS)
            .map(|g| Adam::new(vec![t.group_lr(g); t.params[g].len()]))
            .collect();
        Ok(t)
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The dataset.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Iterations done.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Number of Gaussians.
    pub fn len(&self) -> usize {
        self.params[3].len()
    }

    /// Whether the scene is empty (every splat pruned).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SH degree in use now.
    pub fn sh_active(&self) -> usize {
        self.sh_active
    }

    /// The scene extent (radius of the cameras) the position rates scale with.
    pub fn extent(&self) -> f64 {
        self.extent
    }

    fn strides(&self) -> [usize; GROUPS] {
        [3, 3, 4, 1, 3, 3 * (sh_coeffs(self.cfg.sh_degree) - 1)]
    }

    /// Learning rate of a group at the current iteration.
    fn group_lr(&self, g: usize) -> f64 {
        match g {
            0 => {
                let t = (self.iteration as f64 / self.cfg.iters.max(1) as f64).clamp(0.0, 1.0);
                let (a, b) = (self.cfg.lr_mean.ln(), self.cfg.lr_mean_final.ln());
                (a * (1.0 - t) + b * t).exp() * self.extent
            }
            1 => self.cfg.lr_scale,
            2 => self.cfg.lr_rotation,
            3 => self.cfg.lr_opacity,
            4 => self.cfg.lr_sh,
            _ => self.cfg.lr_sh / 20.0,
        }
    }

    /// The scene (parameters as the PLY file stores them).
    pub fn gaussians<T: chainrule::Scalar>(&self) -> Gaussians<T> {
        let k = sh_coeffs(self.cfg.sh_degree);
        let n = self.len();
        let c = T::from_f64;
        let p = &self.params;
        let mut g = Gaussians::new(self.cfg.sh_degree);
        g.means = (0..n)
            .map(|i| [0, 1, 2].map(|j| c(p[0][3 * i + j])))
            .collect();
        g.log_scales = (0..n)
            .map(|i| [0, 1, 2].map(|j| c(p[1][3 * i + j])))
            .collect();
        g.quats = (0..n)
            .map(|i| [0, 1, 2, 3].map(|j| c(p[2][4 * i + j])))
            .collect();
        g.opacity_logits = p[3].iter().map(|&v| c(v)).collect();
        g.sh = Vec::with_capacity(n * k * 3);
        for i in 0..n {
            g.sh.extend(p[4][3 * i..3 * i + 3].iter().map(|&v| c(v)));
            g.sh.extend(
                p[5][3 * (k - 1) * i..3 * (k - 1) * (i + 1)]
                    .iter()
                    .map(|&v| c(v)),
            );
        }
        g
    }

    fn set_from_gaussians(params: &mut [Vec<f64>; GROUPS], g: &Gaussians<f64>) {
        let k = g.sh_coeffs();
        for p in params.iter_mut() {
            p.clear();
        }
        for i in 0..g.len() {
            params[0].extend_from_slice(&g.means[i]);
            params[1].extend_from_slice(&g.log_scales[i]);
            params[2].extend_from_slice(&g.quats[i]);
            params[3].push(g.opacity_logits[i]);
            params[4].extend_from_slice(&g.sh[3 * k * i..3 * k * i + 3]);
            params[5].extend_from_slice(&g.sh[3 * k * i + 3..3 * k * (i + 1)]);
        }
    }

    fn render_options(&self) -> RenderOptions {
        RenderOptions {
            sh_degree: Some(self.sh_active),
            background: self.cfg.background,
            ..RenderOptions::default()
        }
    }

    /// One iteration: a random training view, render, L1 + 0.2·(1 − SSIM),
    /// backward, Adam, then the schedules (SH band, densification, opacity
    /// reset). A non-finite render, loss, gradient or updated parameter
    /// stops with the operation named (the trainer should then be dropped;
    /// checkpoints on disk are not touched).
    pub fn step(&mut self) -> Result<StepInfo, TrainError> {
        let it = self.iteration + 1;
        if self.is_empty() {
            return Err(TrainError::Config(format!(
                "iteration {it}: every Gaussian was pruned"
            )));
        }
        let mut rng = Rng::new(self.cfg.seed ^ (it as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let vi = (rng.next_u64() % self.data.train.len() as u64) as usize;
        let view = &self.data.train[vi];
        let cam = camera_of(view);
        let mut opts = self.render_options();
        let target: Vec<f64> = if self.cfg.random_background {
            let bg = [rng.uniform(), rng.uniform(), rng.uniform()];
            opts.background = bg;
            view.image_on(bg.map(|c| c as f32))
                .into_iter()
                .map(|v| v as f64)
                .collect()
        } else {
            view.image.iter().map(|&v| v as f64).collect()
        };
        let t0 = std::time::Instant::now();
        let mut timings = [0.0; 4];
        let g32: Gaussians<f32> = self.gaussians();
        let (img, state) =
            render(&g32, &cam, &opts).map_err(|e| TrainError::Render(e.to_string()))?;
        if img.rgb.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "render",
            });
        }
        let (w, h) = (img.width, img.height);
        timings[0] = t0.elapsed().as_secs_f64();
        let (value, d_rgb) = {
            let x: Vec<f64> = img.rgb.iter().map(|&v| v as f64).collect();
            let (v, g) = loss::l1_ssim_value_grad(&x, &target, w, h, 3);
            (v, g.into_iter().map(|d| d as f32).collect::<Vec<f32>>())
        };
        if !value.is_finite() || d_rgb.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "loss L1 + SSIM",
            });
        }
        timings[1] = t0.elapsed().as_secs_f64() - timings[0];
        let (grads, d_means2d) =
            render_backward_with_means2d(&g32, &cam, &opts, &state, &d_rgb, None, None)
                .map_err(|e| TrainError::Render(e.to_string()))?;
        let flat = flatten_grads(&grads);
        if flat.iter().any(|g| g.iter().any(|v| !v.is_finite())) {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "render backward",
            });
        }
        timings[2] = t0.elapsed().as_secs_f64() - timings[0] - timings[1];
        let psnr = {
            let a: Vec<f64> = img.rgb.iter().map(|&v| v as f64).collect();
            loss::psnr(&a, &target)
        };
        // densification statistics: |dL/d mean2d| in NDC units
        let (hw, hh) = (0.5 * w as f64, 0.5 * h as f64);
        for (i, &r) in state.projected.radii.iter().enumerate() {
            if r > 0 {
                let d = d_means2d[i];
                let gx = d[0] as f64 * hw;
                let gy = d[1] as f64 * hh;
                self.grad_accum[i] += (gx * gx + gy * gy).sqrt();
                self.grad_count[i] += 1.0;
                self.max_radii[i] = self.max_radii[i].max(r as f64);
            }
        }
        self.iteration = it;
        for (g, fg) in flat.iter().enumerate() {
            let lr = self.group_lr(g);
            let adam = &mut self.adam[g];
            adam.lr.iter_mut().for_each(|x| *x = lr);
            adam.step(&mut self.params[g], fg);
            if self.params[g].iter().any(|v| !v.is_finite()) {
                return Err(TrainError::NonFinite {
                    iteration: it,
                    op: ADAM_OPS[g],
                });
            }
        }
        self.after_step();
        timings[3] = t0.elapsed().as_secs_f64() - timings[0] - timings[1] - timings[2];
        Ok(StepInfo {
            loss: value,
            psnr,
            gaussians: self.len(),
            timings,
        })
    }

    fn after_step(&mut self) {
        let it = self.iteration;
        let c = &self.cfg;
        // the last iteration leaves the scene as the optimiser left it (a
        // split or an opacity reset just before the end would be scored)
        let last = it >= c.iters;
        if c.sh_interval > 0 && it % c.sh_interval == 0 && self.sh_active < c.sh_degree {
            self.sh_active += 1;
        }
        if !last
            && it < c.densify_until
            && it > c.densify_from
            && c.densify_every > 0
            && it % c.densify_every == 0
        {
            let big = c.opacity_reset_every > 0 && it > c.opacity_reset_every;
            self.densify_and_prune(big);
        }
        let c = &self.cfg;
        if !last
            && c.opacity_reset_every > 0
            && it % c.opacity_reset_every == 0
            && it < c.densify_until
        {
            self.reset_opacity();
        }
    }

    /// Opacities above 0.01 are set to 0.01 (and their moments cleared).
    pub fn reset_opacity(&mut self) {
        let cap = logit(0.01);
        for v in self.params[3].iter_mut() {
            *v = v.min(cap);
        }
        let n = self.params[3].len();
        let t = self.adam[3].steps();
        self.adam[3] = Adam::from_state(vec![self.group_lr(3); n], vec![0.0; n], vec![0.0; n], t);
    }

    /// Clone small and split large splats whose average view-space gradient
    /// is above the threshold (within `max_gaussians`), then prune the
    /// nearly transparent ones and, if `prune_big`, those larger than 20
    /// pixels on screen or a tenth of the scene extent. Resets the
    /// statistics.
    pub fn densify_and_prune(&mut self, prune_big: bool) {
        let n = self.len();
        let c = self.cfg.clone();
        let max_scale = |i: usize| -> f64 {
            (0..3)
                .map(|k| self.params[1][3 * i + k])
                .fold(f64::NEG_INFINITY, f64::max)
                .exp()
        };
        let mut cand: Vec<(f64, usize)> = (0..n)
            .filter_map(|i| {
                let avg = self.grad_accum[i] / self.grad_count[i].max(1.0);
                (self.grad_count[i] > 0.0 && avg >= c.densify_grad).then_some((avg, i))
            })
            .collect();
        cand.sort_by(|a, b| b.0.total_cmp(&a.0));
        let budget = c.max_gaussians.saturating_sub(n);
        cand.truncate(budget);
        let split_at = c.percent_dense * self.extent;
        // rows of the new scene: (source, fresh moments, new mean, log-scale shift)
        let mut split = vec![false; n];
        let mut extra: Vec<Row> = Vec::new();
        let mut rng = Rng::new(c.seed ^ 0xD1B5_4A32_D192_ED03 ^ self.iteration as u64);
        for &(_, i) in &cand {
            if max_scale(i) <= split_at {
                extra.push(Row {
                    src: i,
                    fresh: true,
                    mean: None,
                    log_shift: 0.0,
                });
            } else {
                split[i] = true;
                let q = &self.params[2][4 * i..4 * i + 4];
                let qn = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                let r = quat_to_rotmat([q[0] / qn, q[1] / qn, q[2] / qn, q[3] / qn]);
                for _ in 0..2 {
                    let s = [0, 1, 2].map(|k| self.params[1][3 * i + k].exp() * rng.normal());
                    let mean = [0, 1, 2].map(|a| {
                        self.params[0][3 * i + a] + (0..3).map(|b| r[a][b] * s[b]).sum::<f64>()
                    });
                    extra.push(Row {
                        src: i,
                        fresh: true,
                        mean: Some(mean),
                        log_shift: -(1.6f64).ln(),
                    });
                }
            }
        }
        let min_op = logit(c.prune_opacity);
        let big_screen = 20.0;
        let big_world = 0.1 * self.extent;
        let keep_row = |r: &Row, t: &Trainer| -> bool {
            if t.params[3][r.src] < min_op {
                return false;
            }
            !(prune_big
                && !r.fresh
                && (t.max_radii[r.src] > big_screen || max_scale(r.src) > big_world))
        };
        let rows: Vec<Row> = (0..n)
            .filter(|&i| !split[i])
            .map(|i| Row {
                src: i,
                fresh: false,
                mean: None,
                log_shift: 0.0,
            })
            .chain(extra)
            .filter(|r| keep_row(r, self))
            .collect();
        self.gather(&rows);
    }

    fn gather(&mut self, rows: &[Row]) {
        let strides = self.strides();
        for g in 0..GROUPS {
            let s = strides[g];
            let (m, v) = self.adam[g].moments();
            let mut p = Vec::with_capacity(rows.len() * s);
            let mut nm = Vec::with_capacity(rows.len() * s);
            let mut nv = Vec::with_capacity(rows.len() * s);
            for r in rows {
                let src = r.src * s..r.src * s + s;
                match (g, r.mean) {
                    (0, Some(mean)) => p.extend_from_slice(&mean),
                    (1, _) => p.extend(self.params[1][src.clone()].iter().map(|x| x + r.log_shift)),
                    _ => p.extend_from_slice(&self.params[g][src.clone()]),
                }
                if r.fresh {
                    nm.extend(std::iter::repeat_n(0.0, s));
                    nv.extend(std::iter::repeat_n(0.0, s));
                } else {
                    nm.extend_from_slice(&m[src.clone()]);
                    nv.extend_from_slice(&v[src]);
                }
            }
            let t = self.adam[g].steps();
            self.adam[g] = Adam::from_state(vec![0.0; p.len()], nm, nv, t);
            self.params[g] = p;
        }
        let n = rows.len();
        self.grad_accum = vec![0.0; n];
        self.grad_count = vec![0.0; n];
        self.max_radii = vec![0.0; n];
    }

    /// Renders `views` with the current scene and scores them.
    pub fn evaluate(&self, views: &[View]) -> Result<Vec<ViewEval>, TrainError> {
        let g: Gaussians<f32> = self.gaussians();
        let opts = self.render_options();
        views
            .iter()
            .map(|v| {
                let (img, _) = render(&g, &camera_of(v), &opts)
                    .map_err(|e| TrainError::Render(e.to_string()))?;
                let rgb: Vec<f64> = img
                    .rgb
                    .iter()
                    .map(|&x| (x as f64).clamp(0.0, 1.0))
                    .collect();
                let target: Vec<f64> = v.image.iter().map(|&x| x as f64).collect();
                Ok(ViewEval {
                    name: v.name.clone(),
                    width: img.width,
                    height: img.height,
                    psnr: loss::psnr(&rgb, &target),
                    ssim: loss::ssim_values(&rgb, &target, img.width, img.height, 3),
                    rgb,
                })
            })
            .collect()
    }

    /// Writes a checkpoint into `dir/ckpt-ITERATION/` (`point_cloud.ply`,
    /// `state.bin`), then atomically replaces `dir/latest.json` to point at
    /// it and removes the older checkpoint folders. Returns the folder.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf, TrainError> {
        let name = format!("ckpt-{:08}", self.iteration);
        let sub = dir.join(&name);
        std::fs::create_dir_all(&sub).map_err(|e| ck_err(&sub, format!("cannot create: {e}")))?;
        let ply_path = sub.join("point_cloud.ply");
        write_atomic(&ply_path, &ply::to_ply_bytes(&self.gaussians::<f64>()))
            .map_err(|e| ck_err(&ply_path, format!("cannot write: {e}")))?;
        let bin_path = sub.join("state.bin");
        write_atomic(&bin_path, &self.state_bytes())
            .map_err(|e| ck_err(&bin_path, format!("cannot write: {e}")))?;
        let meta = serde_json::json!({
            "iteration": self.iteration,
            "checkpoint": name,
            "gaussians": self.len(),
            "sh_active": self.sh_active,
            "sh_degree": self.cfg.sh_degree,
            "adam_steps": self.adam.iter().map(|a| a.steps()).collect::<Vec<_>>(),
        });
        let latest = dir.join("latest.json");
        write_atomic(&latest, meta.to_string().as_bytes())
            .map_err(|e| ck_err(&latest, format!("cannot write: {e}")))?;
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if f.starts_with("ckpt-") && *f != name {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(sub)
    }

    fn state_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(STATE_MAGIC);
        b.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let mut put = |xs: &[f64]| {
            for x in xs {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
        for a in &self.adam {
            let (m, v) = a.moments();
            put(m);
            put(v);
        }
        put(&self.grad_accum);
        put(&self.grad_count);
        put(&self.max_radii);
        b
    }

    /// Continues a run from the checkpoint `dir/latest.json` points at (the
    /// settings must match the ones it was trained with, `iters` may grow).
    pub fn resume(data: Dataset, cfg: TrainConfig, dir: &Path) -> Result<Self, TrainError> {
        check_config(&data, &cfg)?;
        let latest = dir.join("latest.json");
        let text = std::fs::read_to_string(&latest)
            .map_err(|e| ck_err(&latest, format!("cannot read: {e}")))?;
        let meta: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ck_err(&latest, format!("malformed JSON: {e}")))?;
        let field = |k: &str| -> Result<u64, TrainError> {
            meta.get(k).and_then(|v| v.as_u64()).ok_or_else(|| {
                ck_err(
                    &latest,
                    format!("{k}: missing or not a non-negative integer"),
                )
            })
        };
        let iteration = u32::try_from(field("iteration")?)
            .map_err(|_| ck_err(&latest, "iteration: too large"))?;
        let n = field("gaussians")? as usize;
        let sh_active = field("sh_active")? as usize;
        if field("sh_degree")? as usize != cfg.sh_degree {
            return Err(ck_err(
                &latest,
                format!(
                    "sh_degree: the checkpoint has {}, this run asks for {}",
                    field("sh_degree")?,
                    cfg.sh_degree
                ),
            ));
        }
        let name = meta
            .get("checkpoint")
            .and_then(|v| v.as_str())
            .filter(|s| s.starts_with("ckpt-") && !s.contains(['/', '\\']))
            .ok_or_else(|| ck_err(&latest, "checkpoint: missing or not a folder name ckpt-N"))?;
        let steps: Vec<u32> = meta
            .get("adam_steps")
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == GROUPS)
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                    .collect()
            })
            .ok_or_else(|| {
                ck_err(
                    &latest,
                    format!("adam_steps: expected {GROUPS} step counts"),
                )
            })?;
        let sub = dir.join(name);
        let g: Gaussians<f64> =
            ply::read_ply(&sub.join("point_cloud.ply")).map_err(|e| ck_err(&e.path.clone(), e))?;
        if g.len() != n || g.sh_degree != cfg.sh_degree {
            return Err(ck_err(
                &sub.join("point_cloud.ply"),
                format!(
                    "{} Gaussians of SH degree {}, latest.json says {n} of degree {}",
                    g.len(),
                    g.sh_degree,
                    cfg.sh_degree
                ),
            ));
        }
        let mut t = Trainer::new_empty(data, cfg);
        Self::set_from_gaussians(&mut t.params, &g);
        t.iteration = iteration;
        t.sh_active = sh_active.min(t.cfg.sh_degree);
        let bin = sub.join("state.bin");
        let bytes = std::fs::read(&bin).map_err(|e| ck_err(&bin, format!("cannot read: {e}")))?;
        let strides = t.strides();
        let want = 16 + 8 * n * (2 * strides.iter().sum::<usize>() + 3);
        if bytes.len() != want
            || &bytes[..8] != STATE_MAGIC
            || bytes[8..16] != (n as u64).to_le_bytes()
        {
            return Err(ck_err(
                &bin,
                format!(
                    "not a state file for {n} Gaussians ({} bytes, expected {want})",
                    bytes.len()
                ),
            ));
        }
        let mut vals = bytes[16..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
        let mut take = |len: usize| -> Vec<f64> { vals.by_ref().take(len).collect() };
        t.adam = (0..GROUPS)
            .map(|g| {
                let len = n * strides[g];
                let m = take(len);
                let v = take(len);
                Adam::from_state(vec![0.0; len], m, v, steps[g])
            })
            .collect();
        t.grad_accum = take(n);
        t.grad_count = take(n);
        t.max_radii = take(n);
        Ok(t)
    }

    fn new_empty(data: Dataset, cfg: TrainConfig) -> Self {
        let (_, extent) = data.camera_extent();
        Trainer {
            extent: if extent > 0.0 { extent } else { 1.0 },
            cfg,
            data,
            params: Default::default(),
            adam: Vec::new(),
            iteration: 0,
            sh_active: 0,
            grad_accum: Vec::new(),
            grad_count: Vec::new(),
            max_radii: Vec::new(),
        }
    }
}

const STATE_MAGIC: &[u8; 8] = b"CRTRAIN1";

struct Row {
    src: usize,
    fresh: bool,
    mean: Option<[f64; 3]>,
    log_shift: f64,
}

fn flatten_grads(g: &Gaussians<f32>) -> [Vec<f64>; GROUPS] {
    let k = g.sh_coeffs();
    let mut out: [Vec<f64>; GROUPS] = Default::default();
    for i in 0..g.len() {
        out[0].extend(g.means[i].iter().map(|&v| v as f64));
        out[1].extend(g.log_scales[i].iter().map(|&v| v as f64));
        out[2].extend(g.quats[i].iter().map(|&v| v as f64));
        out[3].push(g.opacity_logits[i] as f64);
        out[4].extend(g.sh[3 * k * i..3 * k * i + 3].iter().map(|&v| v as f64));
        out[5].extend(
            g.sh[3 * k * i + 3..3 * k * (i + 1)]
                .iter()
                .map(|&v| v as f64),
        );
    }
    out
}

/// The box random initial points are drawn in: a cube of half-side
/// `extent / 3` around the point closest to all optical axes (cameras look
/// inward; for cameras on a sphere of radius 4 this is the usual ±1.5 cube
/// around the origin), or around the cameras' centre when the axes are
/// near-parallel (forward-facing captures).
fn camera_box(data: &Dataset, center: [f64; 3], extent: f64) -> ([f64; 3], [f64; 3]) {
    // least squares: Σ (I − d dᵀ) p = Σ (I − d dᵀ) c
    let mut a = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    for v in data.train.iter().chain(&data.test) {
        let m = &v.world_to_camera;
        let d = [m[2][0], m[2][1], m[2][2]];
        let c = v.camera_center();
        for r in 0..3 {
            for k in 0..3 {
                let p = if r == k { 1.0 } else { 0.0 } - d[r] * d[k];
                a[r][k] += p;
                b[r] += p * c[k];
            }
        }
    }
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    let n = (data.train.len() + data.test.len()) as f64;
    let mid = if det.abs() > 1e-3 * n * n * n {
        // Cramer's rule
        let col = |k: usize| {
            let mut m = a;
            for r in 0..3 {
                m[r][k] = b[r];
            }
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        [col(0) / det, col(1) / det, col(2) / det]
    } else {
        center
    };
    let h = extent / 3.0;
    ([0, 1, 2].map(|k| mid[k] - h), [0, 1, 2].map(|k| mid[k] + h))
}

fn check_config(data: &Dataset, cfg: &TrainConfig) -> Result<(), TrainError> {
    if data.train.is_empty() {
        return Err(TrainError::Config(
            "the dataset has no training views".into(),
        ));
    }
    if cfg.sh_degree > 3 {
        return Err(TrainError::Config(format!(
            "SH degree {} is above 3",
            cfg.sh_degree
        )));
    }
    if cfg.max_gaussians == 0 {
        return Err(TrainError::Config(
            "--max-gaussians must be at least 1".into(),
        ));
    }
    for v in data.train.iter().chain(&data.test) {
        if v.image.len() != 3 * v.width as usize * v.height as usize {
            return Err(TrainError::Config(format!(
                "{}: image has {} values for {}x{} pixels",
                v.name,
                v.image.len(),
                v.width,
                v.height
            )));
        }
    }
    Ok(())
}
