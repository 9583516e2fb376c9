//! The training loop: one iteration renders a training view (each once
//! an epoch, in a shuffled order), takes the loss and its gradient, runs
//! the render's backward pass, updates the parameters with Adam and hands
//! over to the schedules and the density-control strategy.

use super::average;
use super::config::check_config;
use super::densify::strategy;
use super::exposure::{self, EXPOSURE_LR, EXPOSURE_PARAMS, IDENTITY};
use super::init::initial_params;
use super::{camera_of, schedule, Strategy, TrainConfig, TrainError, GROUPS};
use crate::adam::{Adam, Checked, Live, RowGroup, Rows, RowsMut, Undrawn};
use crate::data::Dataset;

use rayon::prelude::*;

use crate::l1_ssim::L1Ssim;
use crate::loss;
use crate::stages::{Lap, StageTimes};
use crate::three::project::Projected;
use crate::three::render::{
    render_backward_staged_in, render_staged_in, BackwardGrads, RenderOptions, RenderWorkspace,
};
use crate::three::scene::{sh_coeffs, Gaussians, Rng};

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
    /// Seconds per stage, finer than `timings`.
    pub stages: StageTimes,
}

/// A training run in progress.
pub struct Trainer {
    pub(super) cfg: TrainConfig,
    pub(super) data: Dataset,
    pub(super) extent: f64,
    /// Flat parameters per group (strides: 3, 3, 4, 1, 3, 3·(K−1)).
    /// Code that changes them outside [`Trainer::step`] rebuilds the
    /// group's `adam` state too (as density control does), or the next
    /// step renders the f32 copy of the old ones (see `StepBuffers`).
    pub(super) params: [Vec<f64>; GROUPS],
    pub(super) adam: Vec<Adam>,
    pub(super) iteration: u32,
    pub(super) sh_active: usize,
    pub(super) grad_accum: Vec<f64>,
    pub(super) grad_count: Vec<f64>,
    pub(super) max_radii: Vec<f64>,
    /// The loss's buffers, kept between iterations (sized for the last
    /// view).
    pub(super) loss: Option<L1Ssim<f32>>,
    /// ∂L/∂RGB of the last iteration.
    pub(super) d_rgb: Vec<f32>,
    /// Per training view, its colour transform (empty without
    /// `--exposure`), and their optimiser.
    pub(super) exposure: Vec<[f64; EXPOSURE_PARAMS]>,
    pub(super) exposure_adam: Adam,
    /// Per-iteration buffers kept between iterations.
    pub(super) bufs: StepBuffers,
    /// Density rounds' buffers kept between rounds.
    pub(super) densify_scratch: super::densify::DensifyScratch,
    /// The training views at the coarse phase's resolution (made at its
    /// first iteration, dropped after its last; see
    /// [`TrainConfig::coarse_until`]) and their downscale factor.
    pub(super) coarse: (u32, Vec<crate::data::View>),
    /// The parameters' moving average (see [`TrainConfig::ema_window`]).
    pub(super) average: super::average::Average,
}

/// What [`Trainer::step`] fills every iteration, kept so that an
/// iteration allocates none of it again (they grow with the scene).
#[derive(Debug, Default)]
pub(super) struct StepBuffers {
    /// The scene in f32, as the renderer takes it.
    scene: Option<Gaussians<f32>>,
    /// The optimiser states (identity and step count per group) right
    /// after the fused update that wrote `scene`, when density control
    /// left the parameters alone; `scene` holds the parameters while the
    /// states are still these (density control rebuilds them whenever it
    /// changes the parameters: `gather`, `reset_opacity`).
    scene_stamp: Option<[(u64, u32); GROUPS]>,
    /// Debug builds: the scene converted afresh, to check `scene` against
    /// (kept, so that the check allocates nothing per iteration either).
    #[cfg(debug_assertions)]
    scene_check: Option<Gaussians<f32>>,
    /// A regulariser's gradient per group (with a strategy that has one).
    reg: [Vec<f64>; GROUPS],
    /// The render's and its backward pass's buffers.
    render: RenderWorkspace<f32>,
    /// The per-iteration PSNR's block sums.
    psnr_blocks: Vec<f64>,
    /// The photo the loss compares with, in `f32`.
    target: Vec<f32>,
    /// Its mask in `f32`, when it has one.
    mask: Vec<f32>,
    /// The training views' order in the current epoch.
    view_order: schedule::ViewOrder,
}

impl Trainer {
    /// Starts a run: the initial scene from the dataset's sparse points if
    /// it has them, otherwise `cfg.init_points` random points in a cube
    /// around the point the cameras look at (half-side: a third of the
    /// camera extent).
    pub fn new(data: Dataset, cfg: TrainConfig) -> Result<Self, TrainError> {
        check_config(&data, &cfg)?;
        let params = initial_params(&data, &cfg);
        let n = params[3].len();
        let (_, extent) = data.camera_extent();
        let extent = if extent > 0.0 { extent } else { 1.0 };
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
            loss: None,
            d_rgb: Vec::new(),
            exposure: Vec::new(),
            exposure_adam: Adam::new(Vec::new()),
            bufs: StepBuffers::default(),
            densify_scratch: Default::default(),
            coarse: (1, Vec::new()),
            average: Default::default(),
        };
        t.init_exposure();
        // stepped at one rate per group (`group_lr`): no per-parameter rates
        t.adam = (0..GROUPS)
            .map(|g| Adam::zeroed(t.params[g].len()))
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

    /// Updates the parameters' moving average has had (0: none, the
    /// parameters are the last iteration's; see
    /// [`TrainConfig::ema_window`]).
    pub fn average_updates(&self) -> u32 {
        self.average.updates
    }

    /// Makes the model what a run that ended at this iteration would have
    /// written: the parameters' moving average, when it has started and the
    /// configuration keeps one ([`TrainConfig::ema_window`] > 0), after
    /// the update a run's last iteration makes (unless the average was
    /// updated at this iteration already, or the parameters already are
    /// it); returns whether it did. For a run resumed from a checkpoint with
    /// no iterations left to train: a mid-run checkpoint holds the live
    /// parameters and the average as of its last update (every
    /// [`average::EVERY`] iterations), and a finished run's parameters
    /// already are its average (nothing changes). The optimiser's moments
    /// stay, as at a run's end, and a checkpoint made afterwards holds the
    /// average as its parameters, as a finished run's does.
    pub fn apply_average(&mut self) -> bool {
        if self.cfg.ema_window == 0 || self.average.updates == 0 {
            return false;
        }
        if self.iteration % average::EVERY != 0 && !self.average.is(&self.params) {
            self.average
                .update(&self.params, average::decay(self.cfg.ema_window));
        }
        self.average.apply(&mut self.params);
        // the f32 scene the last step drew is not the model any more
        self.bufs.scene_stamp = None;
        true
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

    pub(super) fn strides(&self) -> [usize; GROUPS] {
        [3, 3, 4, 1, 3, 3 * (sh_coeffs(self.cfg.sh_degree) - 1)]
    }

    /// Learning rate of a group at the current iteration.
    pub(super) fn group_lr(&self, g: usize) -> f64 {
        schedule::group_lr(&self.cfg, g, self.iteration, self.extent)
    }

    /// The scene (parameters as the PLY file stores them).
    pub fn gaussians<T: chainrule::Scalar>(&self) -> Gaussians<T> {
        let mut g = Gaussians::new(self.cfg.sh_degree);
        self.write_gaussians(&mut g);
        g
    }

    /// [`Trainer::gaussians`] into `g`, reusing its buffers (in parallel).
    fn write_gaussians<T: chainrule::Scalar>(&self, g: &mut Gaussians<T>) {
        let k = sh_coeffs(self.cfg.sh_degree);
        let n = self.len();
        let c = T::from_f64;
        let p = &self.params;
        g.sh_degree = self.cfg.sh_degree;
        fn fill<T: Send, const D: usize>(v: &mut Vec<[T; D]>, src: &[f64], c: fn(f64) -> T) {
            v.resize_with(src.len() / D, || std::array::from_fn(|_| c(0.0)));
            v.par_iter_mut()
                .zip(src.par_chunks_exact(D))
                .with_min_len(4096)
                .for_each(|(d, s)| *d = std::array::from_fn(|j| c(s[j])));
        }
        fill(&mut g.means, &p[0], c);
        fill(&mut g.log_scales, &p[1], c);
        fill(&mut g.quats, &p[2], c);
        g.opacity_logits.resize(n, T::zero());
        g.opacity_logits
            .par_iter_mut()
            .zip(&p[3])
            .with_min_len(4096)
            .for_each(|(d, &v)| *d = c(v));
        g.sh.resize(3 * k * n, T::zero());
        g.sh.par_chunks_exact_mut(3 * k)
            .enumerate()
            .with_min_len(1024)
            .for_each(|(i, d)| {
                let rest = &p[5][3 * (k - 1) * i..3 * (k - 1) * (i + 1)];
                for (d, &v) in d.iter_mut().zip(p[4][3 * i..3 * i + 3].iter().chain(rest)) {
                    *d = c(v);
                }
            });
    }

    pub(super) fn set_from_gaussians(params: &mut [Vec<f64>; GROUPS], g: &Gaussians<f64>) {
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

    pub(super) fn render_options(&self) -> RenderOptions {
        let mut o = RenderOptions {
            sh_degree: Some(self.sh_active),
            background: self.cfg.background,
            ..RenderOptions::default()
        };
        o.project.antialiased = self.cfg.antialiased;
        o
    }

    /// One iteration: the next training view in the epoch's shuffled order
    /// (`schedule::view_of`), render, L1 + 0.2·(1 − SSIM), backward, Adam,
    /// then the schedules (SH band, densification, opacity reset). A
    /// non-finite render, loss, gradient or updated parameter stops with
    /// the operation named (the trainer should then be dropped;
    /// checkpoints on disk are not touched).
    pub fn step(&mut self) -> Result<StepInfo, TrainError> {
        let it = self.iteration + 1;
        if self.is_empty() {
            return Err(TrainError::Config(format!(
                "iteration {it}: every Gaussian was pruned"
            )));
        }
        let mut st = StageTimes::default();
        let mut lap = Lap::start();
        let mut rng = Rng::new(self.cfg.seed ^ (it as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let vi = schedule::view_of(
            self.cfg.seed,
            it,
            self.data.train.len(),
            &mut self.bufs.view_order,
        );
        let f = schedule::resolution_factor(&self.cfg, it);
        if f != self.coarse.0 {
            // the coarse phase starts (or its factor changed) or ends
            self.coarse = if f > 1 {
                (
                    f,
                    self.data
                        .train
                        .par_iter()
                        .map(|v| v.downscaled(f))
                        .collect(),
                )
            } else {
                (1, Vec::new())
            };
        }
        let view = if f > 1 {
            &self.coarse.1[vi]
        } else {
            &self.data.train[vi]
        };
        let cam = camera_of(view);
        let mut opts = self.render_options();
        // the photo in f32 as the loss reads it (held at 8 bits)
        let mut target = std::mem::take(&mut self.bufs.target);
        // on the background the render has (the configuration's, not
        // necessarily the one the loader composited the photo on)
        if self.cfg.random_background {
            opts.background = [rng.uniform(), rng.uniform(), rng.uniform()];
        }
        view.write_image_on(opts.background.map(|c| c as f32), &mut target);
        let mut mask_buf = std::mem::take(&mut self.bufs.mask);
        let mask = view.mask.as_ref().map(|m| {
            m.write_f32(&mut mask_buf);
            &mask_buf[..]
        });
        let mut g32 = self
            .bufs
            .scene
            .take()
            .unwrap_or_else(|| Gaussians::new(self.cfg.sh_degree));
        if self.bufs.scene_stamp != Some(self.adam_stamp()) {
            self.write_gaussians(&mut g32);
        }
        #[cfg(debug_assertions)]
        {
            let mut check = self
                .bufs
                .scene_check
                .take()
                .unwrap_or_else(|| Gaussians::new(self.cfg.sh_degree));
            self.write_gaussians(&mut check);
            assert!(g32 == check, "the f32 scene lags the parameters");
            self.bufs.scene_check = Some(check);
        }
        st.other += lap.lap();
        let mut ws = std::mem::take(&mut self.bufs.render);
        render_staged_in(&g32, &cam, &opts, &mut st, &mut ws)
            .map_err(|e| TrainError::Render(e.to_string()))?;
        let img = ws.image();
        lap.lap();
        if img.rgb.par_iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "render",
            });
        }
        let (w, h) = (img.width, img.height);
        st.other += lap.lap();
        // with --exposure the loss sees the render through the photo's
        // colour transform
        let exposed: Option<Vec<f32>> = self.exposure.get(vi).map(|e| {
            let raw: Vec<f64> = img.rgb.iter().map(|&v| v as f64).collect();
            exposure::apply(e, &raw)
                .into_iter()
                .map(|v| v as f32)
                .collect()
        });
        let x: &[f32] = exposed.as_deref().unwrap_or(&img.rgb);
        let loss_fn = match &mut self.loss {
            Some(l) if l.shape() == (w, h, 3) => l,
            slot => slot.insert(L1Ssim::new(w, h, 3)),
        };
        self.d_rgb.resize(3 * w * h, 0.0);
        let value = loss_fn.value_grad(x, &target, mask, &mut self.d_rgb);
        let mut d_exposure = None;
        if let Some(e) = self.exposure.get(vi) {
            let raw: Vec<f64> = img.rgb.iter().map(|&v| v as f64).collect();
            let g: Vec<f64> = self.d_rgb.iter().map(|&v| v as f64).collect();
            let (de, dx) = exposure::backward(e, &raw, &g);
            d_exposure = Some(de);
            for (d, v) in self.d_rgb.iter_mut().zip(dx) {
                *d = v as f32;
            }
        }
        if !value.is_finite() || self.d_rgb.par_iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "loss L1 + SSIM",
            });
        }
        st.loss += lap.lap();
        let psnr = loss::psnr_masked_blocked(x, &target, mask, 3, &mut self.bufs.psnr_blocks);
        st.other += lap.lap();
        let d_rgb = BackwardGrads {
            d_rgb: &self.d_rgb,
            d_depth: None,
            d_alpha: None,
        };
        ws.set_absgrad(self.cfg.absgrad);
        // the SH gradient rows of Gaussians this view did not draw are not
        // zeroed: the update below reads them as zero without reading them
        ws.set_sh_grads_drawn_only(true);
        render_backward_staged_in(&g32, &cam, &opts, d_rgb, &mut st, &mut ws)
            .map_err(|e| TrainError::Render(e.to_string()))?;
        let (grads, state) = (ws.grads(), ws.state());
        // densification's statistic: the plain 2D-mean gradient, or with
        // `absgrad` the sums of its per-pixel absolute values
        let d_means2d = ws.d_means2d_abs().unwrap_or(ws.d_means2d());
        lap.lap();
        // a regulariser's gradient, added in the optimiser's pass to the
        // groups it regularises (the default strategy's opacity, with a
        // weight; MCMC's opacity and scales)
        let mut reg = std::mem::take(&mut self.bufs.reg);
        let regs = strategy(self.cfg.strategy).regularised(&self.cfg);
        let value = if regs.contains(&true) {
            for ((r, p), &on) in reg.iter_mut().zip(&self.params).zip(&regs) {
                r.clear();
                if on {
                    r.resize(p.len(), 0.0);
                }
            }
            value + strategy(self.cfg.strategy).regularise(self, &mut reg)
        } else {
            value
        };
        st.other += lap.lap();
        accumulate_densify_stats(
            [
                &mut self.grad_accum,
                &mut self.grad_count,
                &mut self.max_radii,
            ],
            &state.projected,
            d_means2d,
            mask,
            (w, h),
            f as f64,
        );
        st.densify += lap.lap();
        self.iteration = it;
        // the update, the gradients' conversion and check, and the f32
        // scene for the next render, in one pass per group
        let k = sh_coeffs(self.cfg.sh_degree);
        fn rows(data: &[f32], stride: usize, offset: usize, width: usize) -> Rows<'_, f32> {
            Rows {
                data,
                stride,
                offset,
                width,
            }
        }
        let gsrc = [
            rows(grads.means.as_flattened(), 3, 0, 3),
            rows(grads.log_scales.as_flattened(), 3, 0, 3),
            rows(grads.quats.as_flattened(), 4, 0, 4),
            rows(&grads.opacity_logits, 1, 0, 1),
            rows(&grads.sh, 3 * k, 0, 3),
            rows(&grads.sh, 3 * k, 3, 3 * (k - 1)),
        ];
        let mut grads_finite = true;
        let mut failed = None;
        let mut report = |g: usize, c: Checked| {
            grads_finite &= c.grads_finite;
            if !c.params_finite {
                failed = failed.or(Some(g));
            }
        };
        // the Gaussians this view did not draw: the SH rows unwritten (see
        // above), read as zero; with `visible_adam`, every group's rows of
        // them left alone
        let radii = &state.projected.radii[..];
        let drawn_of = |g: usize| match (self.cfg.visible_adam, g) {
            (true, _) => Some((radii, Undrawn::Skip)),
            (false, 4 | 5) => Some((radii, Undrawn::Decay)),
            (false, _) => None,
        };
        let [means, scales, quats, opacities, dc, rest] = gsrc;
        for (g, src) in [means, scales, quats, opacities].into_iter().enumerate() {
            let lr = self.group_lr(g);
            let (data, stride): (&mut [f32], _) = match g {
                0 => (g32.means.as_flattened_mut(), 3),
                1 => (g32.log_scales.as_flattened_mut(), 3),
                2 => (g32.quats.as_flattened_mut(), 4),
                _ => (&mut g32.opacity_logits, 1),
            };
            let copy = RowsMut {
                data,
                stride,
                offset: 0,
            };
            let extra = regs[g].then_some(&reg[g][..]);
            let live = Live {
                columns: src.width,
                drawn: drawn_of(g),
            };
            let p = &mut self.params[g];
            report(
                g,
                self.adam[g].step_rows_live(p, src, extra, copy, lr, live),
            );
        }
        // the SH colours: the DC and higher bands read one gradient row and
        // write one scene row per Gaussian, so they are stepped together
        // (the same bits as one after the other); the bands above the
        // active degree get no gradient, so their columns are skipped while
        // the update cannot move them (`g32` holds the current parameters
        // there)
        let (lr_dc, lr_rest) = (self.group_lr(4), self.group_lr(5));
        let rest_live = 3 * (sh_coeffs(self.sh_active) - 1);
        let [.., p_dc, p_rest] = &mut self.params;
        let [.., a_dc, a_rest] = &mut self.adam[..] else {
            unreachable!("the trainer has {GROUPS} optimiser groups")
        };
        let extra = |g: usize| regs[g].then_some(&reg[g][..]);
        let [c_dc, c_rest] = Adam::step_rows_pair(
            [
                RowGroup {
                    adam: a_dc,
                    params: p_dc,
                    grads: dc,
                    extra: extra(4),
                    copy_offset: dc.offset,
                    lr: lr_dc,
                    columns: dc.width,
                },
                RowGroup {
                    adam: a_rest,
                    params: p_rest,
                    grads: rest,
                    extra: extra(5),
                    copy_offset: rest.offset,
                    lr: lr_rest,
                    columns: rest_live,
                },
            ],
            &mut g32.sh,
            3 * k,
            drawn_of(4),
        );
        report(4, c_dc);
        report(5, c_rest);
        if !grads_finite {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: "render backward",
            });
        }
        if let Some(g) = failed {
            return Err(TrainError::NonFinite {
                iteration: it,
                op: ADAM_OPS[g],
            });
        }
        st.optimizer += lap.lap();
        let stamp = self.params_kept_after_step().then(|| self.adam_stamp());
        self.bufs.scene = Some(g32);
        self.bufs.scene_stamp = stamp;
        self.bufs.reg = reg;
        self.bufs.render = ws;
        self.bufs.target = target;
        self.bufs.mask = mask_buf;
        if let Some(de) = d_exposure {
            self.step_exposure(vi, &de)
                .map_err(|op| TrainError::NonFinite { iteration: it, op })?;
        }
        self.after_step();
        st.densify += lap.lap();
        Ok(StepInfo {
            loss: value,
            psnr,
            gaussians: self.len(),
            timings: [
                st.projection + st.sort_bin + st.raster,
                st.loss,
                st.raster_backward + st.projection_backward,
                st.optimizer + st.densify,
            ],
            stages: st,
        })
    }

    /// Identity transforms for every training view when `--exposure` is on.
    pub(super) fn init_exposure(&mut self) {
        if self.cfg.exposure {
            let n = self.data.train.len();
            self.exposure = vec![IDENTITY; n];
            self.exposure_adam = Adam::new(vec![EXPOSURE_LR[0]; n * EXPOSURE_PARAMS]);
        }
    }

    /// One Adam update of the colour transforms, with the gradient `de` of
    /// view `vi`'s (the others' is zero this iteration, as in the original
    /// where all transforms are one tensor). The operation named on a
    /// non-finite result.
    fn step_exposure(
        &mut self,
        vi: usize,
        de: &[f64; EXPOSURE_PARAMS],
    ) -> Result<(), &'static str> {
        let mut g = vec![0.0; self.exposure.len() * EXPOSURE_PARAMS];
        g[vi * EXPOSURE_PARAMS..(vi + 1) * EXPOSURE_PARAMS].copy_from_slice(de);
        let lr = schedule::exposure_lr(&self.cfg, self.iteration);
        self.exposure_adam.lr.iter_mut().for_each(|x| *x = lr);
        let flat = self.exposure.as_flattened_mut();
        self.exposure_adam.step(flat, &g);
        if flat.iter().any(|v| !v.is_finite()) {
            return Err("Adam update of the exposure transforms");
        }
        Ok(())
    }

    /// The colour transform learnt for training view `i` (`None` without
    /// `--exposure`): `A` row-major, then `b`, so `x' = A·x + b`.
    pub fn exposure(&self, i: usize) -> Option<[f64; EXPOSURE_PARAMS]> {
        self.exposure.get(i).copied()
    }

    /// Each group's optimiser identity and step count.
    fn adam_stamp(&self) -> [(u64, u32); GROUPS] {
        std::array::from_fn(|g| (self.adam[g].id(), self.adam[g].steps()))
    }

    /// Whether [`Trainer::after_step`] at this iteration leaves the
    /// parameters as the optimiser left them (so the f32 scene it wrote
    /// stays current): the default strategy changes them only when it
    /// densifies or resets opacities; MCMC moves positions every step.
    fn params_kept_after_step(&self) -> bool {
        let it = self.iteration;
        self.cfg.strategy == Strategy::Default
            && !schedule::densify_now(&self.cfg, it)
            && !schedule::opacity_reset_now(&self.cfg, it)
            && !average::apply_now(&self.cfg, it)
    }

    fn after_step(&mut self) {
        let it = self.iteration;
        if schedule::sh_band_up(&self.cfg, it, self.sh_active) {
            self.sh_active += 1;
        }
        strategy(self.cfg.strategy).after_step(self);
        if average::update_now(&self.cfg, it) {
            self.average
                .update(&self.params, average::decay(self.cfg.ema_window));
            if average::apply_now(&self.cfg, it) {
                // the run's model is the average (the optimiser's moments
                // stay: a run continued from here goes on from it)
                self.average.apply(&mut self.params);
            }
        }
    }
}

/// Adds one view's densification statistics to `[grad_accum, grad_count,
/// max_radii]`: |dL/d mean2d| in NDC units (or the norm of its per-pixel
/// absolute sums, with `absgrad`), over the views where the
/// splat is drawn; ignored pixels add no gradient, and with a mask a view
/// counts only if the splat's centre is on a kept pixel (or off the image
/// with some gradient from kept ones). Radii count in pixels of the
/// full-resolution photo: a render at a `px_scale`-th of its resolution
/// has its radii multiplied by `px_scale`. Parallel over Gaussians, each
/// entry on its own (the same bits on any number of threads).
fn accumulate_densify_stats(
    [accum, count, max_radii]: [&mut Vec<f64>; 3],
    p: &Projected<f32>,
    d_means2d: &[[f32; 2]],
    mask: Option<&[f32]>,
    (w, h): (usize, usize),
    px_scale: f64,
) {
    let (hw, hh) = (0.5 * w as f64, 0.5 * h as f64);
    let kept = |i: usize| -> bool {
        let Some(m) = mask else { return true };
        let [x, y] = p.means2d[i].map(|v| v.floor() as i64);
        if (0..w as i64).contains(&x) && (0..h as i64).contains(&y) {
            m[y as usize * w + x as usize] > 0.0
        } else {
            d_means2d[i] != [0.0; 2]
        }
    };
    accum
        .par_iter_mut()
        .zip(count.par_iter_mut())
        .zip(max_radii.par_iter_mut())
        .enumerate()
        .with_min_len(4096)
        .for_each(|(i, ((a, c), mr))| {
            let r = p.radii[i];
            if r > 0 && kept(i) {
                let d = d_means2d[i];
                let gx = d[0] as f64 * hw;
                let gy = d[1] as f64 * hh;
                *a += (gx * gx + gy * gy).sqrt();
                *c += 1.0;
                *mr = mr.max(r as f64 * px_scale);
            }
        });
}
