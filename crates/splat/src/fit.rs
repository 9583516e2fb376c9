//! The fit loop: render on the tape, loss, backward, Adam. Reusable from the
//! command line, benchmarks and tests.

use std::time::Instant;

use chainrule::{Scalar, Tape};

use crate::adam::Adam;
use crate::image_io::Image;
use crate::l1_ssim::L1Ssim;
use crate::loss::{self, Loss};
use crate::model2d::{self, Gaussians2d, Group, Init};
use crate::raster::{rasterize_op, Blend};

/// Settings of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// Number of Gaussians.
    pub gaussians: usize,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Loss.
    pub loss: Loss,
    /// Blend mode.
    pub blend: Blend,
    /// Background colour.
    pub background: [f64; 3],
    /// Initialisation.
    pub init: Init,
    /// Adam learning rate of the means (peer: 0.001).
    pub lr_mean: f64,
    /// ... of the Cholesky factors (peer: 0.01).
    pub lr_chol: f64,
    /// ... of the colours (peer: 0.01).
    pub lr_color: f64,
    /// ... of the opacity logits (peer: 0.01).
    pub lr_opacity: f64,
}

impl Default for FitConfig {
    /// The JAX peer's settings: 500 Gaussians, MSE, over-blending on black,
    /// peer init, Adam rates 0.001 (means) and 0.01 (others).
    fn default() -> Self {
        FitConfig {
            gaussians: 500,
            seed: 0,
            loss: Loss::Mse,
            blend: Blend::Over,
            background: [0.0; 3],
            init: Init::Peer,
            lr_mean: 0.001,
            lr_chol: 0.01,
            lr_color: 0.01,
            lr_opacity: 0.01,
        }
    }
}

/// A fit in progress. `T` is the precision of the render and the tape
/// (`f32` is faster; `f64` is what the gradient tests use); parameters and
/// Adam's state are kept in `f64`.
pub struct Fitter<T: Scalar = f32> {
    cfg: FitConfig,
    target: Image,
    target_t: Vec<T>,
    model: Gaussians2d,
    adam: Adam,
    tape: Tape<T>,
    grads: Vec<f64>,
    timings: StepTimings,
    /// With [`Loss::L1Ssim`]: its hand-written value and gradient (with
    /// buffers kept between iterations), joined to the tape as one
    /// operation instead of recording SSIM node by node.
    l1_ssim: Option<L1Ssim<T>>,
}

/// Where the time of the last iteration went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTimings {
    /// Parameters onto the tape, projection and the rasterizer's forward pass.
    pub render: f64,
    /// Recording the loss.
    pub loss: f64,
    /// The reverse sweep (including the rasterizer's backward pass).
    pub backward: f64,
    /// The Adam update.
    pub adam: f64,
}

impl<T: Scalar> Fitter<T> {
    /// Starts a fit of `target` (must be non-empty; `cfg.gaussians ≥ 1`).
    pub fn new(target: Image, cfg: FitConfig) -> Self {
        assert!(target.width > 0 && target.height > 0, "fit: empty target");
        assert!(cfg.gaussians > 0, "fit: no Gaussians");
        let model = Gaussians2d::init(
            cfg.gaussians,
            cfg.seed,
            cfg.init,
            Some((&target.data, target.width, target.height)),
        );
        let lr = (0..model.params.len())
            .map(|i| match model.group_of(i) {
                Group::Mean => cfg.lr_mean,
                Group::Chol => cfg.lr_chol,
                Group::Color => cfg.lr_color,
                Group::Opacity => cfg.lr_opacity,
            })
            .collect();
        let target_t = target.data.iter().map(|&v| T::from_f64(v)).collect();
        let (cfg_loss, target_size) = (cfg.loss, (target.width, target.height));
        Fitter {
            grads: vec![0.0; model.params.len()],
            adam: Adam::new(lr),
            cfg,
            target,
            target_t,
            model,
            tape: Tape::default(),
            timings: StepTimings::default(),
            l1_ssim: (cfg_loss == Loss::L1Ssim)
                .then(|| L1Ssim::new(target_size.0, target_size.1, 3)),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FitConfig {
        &self.cfg
    }

    /// The target image.
    pub fn target(&self) -> &Image {
        &self.target
    }

    /// The current model.
    pub fn model(&self) -> &Gaussians2d {
        &self.model
    }

    /// Iterations done.
    pub fn iterations(&self) -> u32 {
        self.adam.steps()
    }

    /// Loss and gradient at the current parameters (no update).
    pub fn loss_and_grad(&mut self) -> (f64, &[f64]) {
        let (w, h) = (self.target.width, self.target.height);
        let n = self.model.n;
        self.tape.clear();
        let t0 = Instant::now();
        let mut tm = StepTimings::default();
        let value = {
            let tape = &self.tape;
            let vals: Vec<T> = self.model.params.iter().map(|&x| T::from_f64(x)).collect();
            let params = tape.vars(&vals);
            let pv = model2d::project_vars(n, &params, w, h);
            let bounds = model2d::bounds_of(&pv);
            let out = rasterize_op(
                tape,
                w,
                h,
                3,
                &pv.means,
                &pv.conics,
                &pv.opacities,
                &pv.colors,
                bounds,
                (0..n as u32).collect(),
                self.cfg
                    .background
                    .iter()
                    .map(|&b| T::from_f64(b))
                    .collect(),
                self.cfg.blend,
                false,
            )
            .expect("projection builds consistent shapes");
            tm.render = t0.elapsed().as_secs_f64();
            let l = match self.l1_ssim.as_mut() {
                // SSIM recorded node by node took four times the time and
                // three times the memory of the rest of the iteration
                Some(l1_ssim) => {
                    let x: Vec<T> = out.image.iter().map(|v| v.value()).collect();
                    let mut g = vec![T::zero(); x.len()];
                    let v = l1_ssim.value_grad(&x, &self.target_t, None, &mut g);
                    let vjp = move |go: &[T], gi: &mut [T]| {
                        for (d, &gv) in gi.iter_mut().zip(&g) {
                            *d = go[0] * gv;
                        }
                    };
                    tape.custom_op("l1_ssim", &out.image, vec![T::from_f64(v)], vjp)[0]
                }
                None => loss::loss(self.cfg.loss, &out.image, &self.target_t, w, h, 3),
            };
            tm.loss = t0.elapsed().as_secs_f64() - tm.render;
            let g = l.backward();
            for (dst, v) in self.grads.iter_mut().zip(&params) {
                *dst = g.wrt(*v).to_f64();
            }
            tm.backward = t0.elapsed().as_secs_f64() - tm.render - tm.loss;
            l.value().to_f64()
        };
        self.timings = tm;
        (value, &self.grads)
    }

    /// One iteration (render, loss, backward, Adam); returns the loss before
    /// the update.
    pub fn step(&mut self) -> f64 {
        let (value, _) = self.loss_and_grad();
        let t = Instant::now();
        self.adam.step(&mut self.model.params, &self.grads);
        self.timings.adam = t.elapsed().as_secs_f64();
        value
    }

    /// Where the time of the last iteration went.
    pub fn timings(&self) -> StepTimings {
        self.timings
    }

    /// The current render at the target's size (f64, no tape).
    pub fn render(&self) -> Image {
        self.render_at(self.target.width, self.target.height)
    }

    /// Adds `count` Gaussians where the current error is largest: at the
    /// centres of the `count` pixels with the largest absolute error
    /// (summed over channels; ties broken by pixel index, so growth is
    /// deterministic), each with the target's colour there, opacity ½ and
    /// the initial size for the new total. They are composited behind the
    /// existing ones and start with zero Adam moments.
    pub fn grow(&mut self, count: usize) {
        let (w, h) = (self.target.width, self.target.height);
        let count = count.min(w * h);
        if count == 0 {
            return;
        }
        let render = self.render();
        let mut err: Vec<(f64, usize)> = (0..w * h)
            .map(|p| {
                let e: f64 = (0..3)
                    .map(|c| (render.data[3 * p + c] - self.target.data[3 * p + c]).abs())
                    .sum();
                (e, p)
            })
            .collect();
        err.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let s0 = (0.5 / ((self.model.n + count) as f64).sqrt()).ln();
        let (mut mean, mut chol, mut color) = (Vec::new(), Vec::new(), Vec::new());
        for &(_, p) in &err[..count] {
            let (i, j) = (p / w, p % w);
            mean.extend([(j as f64 + 0.5) / w as f64, (i as f64 + 0.5) / h as f64]);
            chol.extend([s0, 0.0, s0]);
            color.extend_from_slice(&self.target.data[3 * p..3 * p + 3]);
        }
        let from = self.model.append(&mean, &chol, &color, &vec![0.0; count]);
        let lr = (0..self.model.params.len())
            .map(|i| match self.model.group_of(i) {
                Group::Mean => self.cfg.lr_mean,
                Group::Chol => self.cfg.lr_chol,
                Group::Color => self.cfg.lr_color,
                Group::Opacity => self.cfg.lr_opacity,
            })
            .collect();
        self.adam.remap(&from, lr);
        self.grads = vec![0.0; self.model.params.len()];
        self.cfg.gaussians = self.model.n;
    }

    /// The current render at any size.
    pub fn render_at(&self, width: usize, height: usize) -> Image {
        Image {
            width,
            height,
            data: model2d::render(
                &self.model,
                width,
                height,
                self.cfg.background,
                self.cfg.blend,
            ),
        }
    }
}
