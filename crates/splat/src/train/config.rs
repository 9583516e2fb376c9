//! The settings of a training run and their checks.

use super::TrainError;
use crate::data::{Dataset, Pixels8};

/// Settings of a training run (defaults: the 3DGS paper's, except the
/// number of random initial points).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Iterations in all.
    pub iters: u32,
    /// Seed of the initialisation and the choice of views.
    pub seed: u64,
    /// Largest spherical-harmonic degree (0 to 3).
    pub sh_degree: usize,
    /// One more SH band every this many iterations.
    pub sh_interval: u32,
    /// Random initial points when the dataset has no sparse points.
    pub init_points: usize,
    /// Opacity of every initial Gaussian; `None`: the strategy's
    /// ([`Strategy::initial_opacity`]).
    pub init_opacity: Option<f64>,
    /// Initial scale of each Gaussian, as a multiple of the root mean
    /// squared distance to its 3 nearest points; `None`: the strategy's
    /// ([`Strategy::initial_scale`]).
    pub init_scale: Option<f64>,
    /// Position learning rate at the start, times the scene extent (the
    /// original 3DGS's 1.6·10⁻⁴ by default; see [`LR_MEAN`] for the
    /// CLI's).
    pub lr_mean: f64,
    /// Position learning rate after `lr_mean_steps` iterations, times the
    /// scene extent.
    pub lr_mean_final: f64,
    /// Iterations over which the position learning rate decays
    /// log-linearly from `lr_mean` to `lr_mean_final` (it stays there
    /// after). The default is the original 3DGS's 30,000
    /// ([`POSITION_LR_STEPS`]); the CLI uses
    /// [`TrainConfig::position_lr_steps`] of the run's length.
    pub lr_mean_steps: u32,
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
    /// Reset opacities to at most 0.01 every this many iterations (0:
    /// never).
    pub opacity_reset_every: u32,
    /// Prune oversized splats (larger than a tenth of the extent in the
    /// world, or than `prune_screen_px` on screen) in the density-control
    /// rounds after this iteration (the paper: after its first opacity
    /// reset, 3,000; 0: from the first round).
    pub prune_big_from: u32,
    /// With size pruning on, also prune splats whose 3σ radius exceeded
    /// this many pixels in a view since the last round (0: never). The
    /// paper's rule is 20 pixels, but in the original code it never fires
    /// (the radii are cleared before the test) and gsplat leaves it off by
    /// default; at 20 pixels it cost 1.4 dB on a COLMAP capture of a room
    /// (walls and objects close to the camera are legitimately large).
    pub prune_screen_px: f64,
    /// When the budget is full, each density-control round retires up to
    /// this fraction of the Gaussians, the least opaque ones that are not
    /// candidates, to clone or split as many more candidates (those of
    /// highest average gradient) in their place (0: the paper's rule, no
    /// growth once the budget is reached). See
    /// [`RETIRE_PER_ROUND`] for the CLI's default and why.
    pub retire_per_round: f64,
    /// Densify by AbsGS's statistic (Ye et al. 2024; gsplat's `absgrad`):
    /// per view, the norm of the per-pixel *absolute* contributions to a
    /// splat's 2D-mean gradient, summed over its pixels, so that
    /// gradients of opposite sign (a large splat over fine texture) no
    /// longer cancel. Same averaging and NDC scaling as the plain
    /// statistic, compared with `densify_grad` (which should then be
    /// [`ABSGRAD_THRESHOLD`]; the CLI's `--absgrad` sets it).
    pub absgrad: bool,
    /// Prune splats less opaque than this.
    pub prune_opacity: f64,
    /// Cap on the number of Gaussians (densification stops adding at it;
    /// MCMC grows to it). See [`TrainConfig::default_max_gaussians`].
    pub max_gaussians: usize,
    /// How the set of Gaussians changes during training.
    pub strategy: Strategy,
    /// Learn a colour transform per training photo, applied to the render
    /// inside the loss (`--exposure`; see `train::exposure`).
    pub exposure: bool,
    /// Background colour of renders. The loss and the held-out scores read
    /// a photo with an alpha plane on it ([`View::image_on`]), whatever
    /// background the loader composited the photo on.
    ///
    /// [`View::image_on`]: crate::data::View::image_on
    pub background: [f64; 3],
    /// Render with Mip-Splatting's antialiased projection (gsplat's
    /// `antialiased`): the 0.3 px² screen-space dilation is compensated by
    /// scaling each splat's opacity with `sqrt(det Σ' / det(Σ' + 0.3 I))`,
    /// so a splat smaller than a pixel fades instead of growing to one.
    /// Training and evaluation use it alike; a render of the result must
    /// too (the CLI saves it in `settings.json`).
    pub antialiased: bool,
    /// Train each iteration on a random background colour: the render's
    /// background and the photograph's (re-composited through its alpha)
    /// change together, so transparent regions cannot be learnt as
    /// background-coloured splats. Evaluation still uses `background`.
    pub random_background: bool,
    /// Update only the Gaussians the iteration's view drew (radius > 0),
    /// as gsplat's `visible_adam` (Taming 3DGS's "sparse Adam"): the
    /// others' parameters and moments are left as they are instead of
    /// decaying and moving on their momentum. Off: the plain Adam of the
    /// original 3DGS.
    pub visible_adam: bool,
    /// Weight of the mean opacity in the default strategy's loss (3DGS-MCMC's
    /// opacity regulariser, which the MCMC strategy always applies at
    /// [`OPACITY_REG`], whatever this says: see
    /// [`TrainConfig::opacity_weight`]): splats that no photo needs fade and
    /// are pruned, instead of lingering where few photos constrain them.
    /// 0: none.
    pub opacity_reg: f64,
    /// Train on the photos at a `coarse_factor`-th of their resolution
    /// until this iteration (0: never), then at full resolution: the
    /// simplest form of DashGaussian's resolution schedule (Chen et al.,
    /// CVPR 2025). While the Gaussians are few and coarse, a render of a
    /// quarter of the pixels carries nearly all that the loss can teach
    /// them, for about a quarter of the rasterisation's cost. Each photo
    /// is box-filtered ([`View::downscaled`](crate::data::View::downscaled)),
    /// its mask kept only where whole blocks are; densification's
    /// statistic is in NDC units and its screen radii are counted in
    /// full-resolution pixels, so density control reads the same scale
    /// in both phases. Evaluation is always at full resolution.
    pub coarse_until: u32,
    /// The downscale factor of the coarse phase (see
    /// [`TrainConfig::coarse_until`]); 1 or 0: none.
    pub coarse_factor: u32,
    /// The final model is an exponential moving average of the parameters
    /// with a time constant of this many iterations, taken after the
    /// densification window, every 20 iterations (see `train::average`;
    /// [`EMA_WINDOW`] for the CLI's default and why); 0: the last
    /// iteration's parameters, as in the original 3DGS.
    pub ema_window: u32,
}

/// The CLI's [`TrainConfig::ema_window`], on every dataset and run length:
/// the final model averages about the last 100 iterations' parameters (two
/// epochs of a 52-photo capture). Against the last iteration's parameters,
/// two 60-photo COLMAP captures at 320×240 with two seeds each scored
/// +0.16, +0.17, +0.12 and +0.11 dB at the default 3,400 iterations;
/// #15's 2,000-iteration, 30,000-Gaussian run +0.14 dB; the synth scene's
/// default run +0.18 dB. Windows of 50 and 100 scored alike, 200 0.01 dB
/// less and 500 0.09 dB less (BENCHMARKS.md, thirty-sixth session).
pub const EMA_WINDOW: u32 = 100;

/// The opacity regulariser's weight on COLMAP data by default
/// ([`TrainConfig::opacity_reg`]; 3DGS-MCMC's and gsplat's 0.01).
pub const OPACITY_REG: f64 = 0.01;

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iters: 4000,
            seed: 0,
            sh_degree: 3,
            sh_interval: 1000,
            init_points: 5_000,
            init_opacity: None,
            init_scale: None,
            lr_mean: 1.6e-4,
            lr_mean_final: 1.6e-6,
            lr_mean_steps: POSITION_LR_STEPS,
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
            prune_big_from: 3000,
            prune_screen_px: 0.0,
            retire_per_round: 0.0,
            absgrad: false,
            prune_opacity: 0.005,
            max_gaussians: 1_000_000,
            strategy: Strategy::Default,
            exposure: false,
            background: [1.0; 3],
            antialiased: false,
            random_background: false,
            visible_adam: false,
            opacity_reg: 0.0,
            coarse_until: 0,
            coarse_factor: 2,
            ema_window: 0,
        }
    }
}

/// Density-control strategies (`--strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The 3DGS paper's adaptive density control: clone and split splats
    /// with a large average view-space gradient, prune transparent and
    /// oversized ones, reset opacities periodically.
    #[default]
    Default,
    /// 3DGS-MCMC: grow by 5% per round up to `max_gaussians` and move
    /// dead (nearly transparent) Gaussians onto live ones, sampled by
    /// opacity; noise on positions; opacity and scale regularisers.
    Mcmc,
}

/// The initial scales' multiples a run accepts
/// ([`TrainConfig::init_scale`]): wide enough for any use, narrow enough
/// that no distance between points overflows to an infinite scale or
/// underflows to zero (whose logarithm is −∞).
pub const INIT_SCALE_RANGE: std::ops::RangeInclusive<f64> = 1e-6..=1e3;

impl Strategy {
    /// The initial Gaussians' opacity: the original 3DGS's 0.1; 0.5 for
    /// MCMC, as 3DGS-MCMC and gsplat's MCMC preset start (its Gaussians
    /// are only ever relocated once nearly transparent, never pruned, so
    /// they start well above that).
    pub fn initial_opacity(self) -> f64 {
        match self {
            Strategy::Default => 0.1,
            Strategy::Mcmc => 0.5,
        }
    }

    /// The initial scale's multiple of the nearest points' distance: 1,
    /// the original 3DGS's; 0.1 for MCMC, gsplat's MCMC preset's
    /// (`init_scale`), whose scale regulariser and relocation grow what
    /// needs to grow instead of splitting it.
    pub fn initial_scale(self) -> f64 {
        match self {
            Strategy::Default => 1.0,
            Strategy::Mcmc => 0.1,
        }
    }
}

impl TrainConfig {
    /// [`TrainConfig::init_opacity`], or the strategy's.
    pub fn initial_opacity(&self) -> f64 {
        self.init_opacity
            .unwrap_or_else(|| self.strategy.initial_opacity())
    }

    /// [`TrainConfig::init_scale`], or the strategy's.
    pub fn initial_scale(&self) -> f64 {
        self.init_scale
            .unwrap_or_else(|| self.strategy.initial_scale())
    }
}

/// Iterations over which the position learning rate decays a hundredfold
/// in the original 3DGS (its `position_lr_max_steps`), whatever the run's
/// length.
pub const POSITION_LR_STEPS: u32 = 30_000;

/// The 3DGS paper's densification schedule (30,000 iterations): densify
/// from 500 to 15,000 every 100, reset opacities every 3,000.
pub const PAPER_DENSIFY: [u32; 4] = [500, 15_000, 100, 3_000];

/// The CLI's [`TrainConfig::retire_per_round`]: 4% of the Gaussians a
/// round (and more in short runs: [`compress_for_run`]). Why: with a
/// budget, the paper's rule stops growing once the budget is full, which
/// on a capture happens a few rounds after densification starts, when the
/// splats are still far from converged;
/// afterwards only the few splats pruned as transparent are replaced.
/// Retiring the faintest lets later rounds, which judge better-trained
/// splats, keep placing splats where the gradient says they are missing
/// (as 3DGS-MCMC relocates its dead Gaussians). COLMAP room at 160×120,
/// 4,000 iterations: 28.17 dB without, 28.56 dB with 2%
/// (BENCHMARKS.md, fifth session). Why 4% rather than 2%: two 60-photo
/// COLMAP captures at 320×240 with 30,000 Gaussians scored +0.17 and
/// +0.10 dB at 2,000 iterations (8% a round there, against 4%) and
/// +0.06 and +0.03 dB at 1,000 (16% against 8%); the default run (4,000
/// iterations, 124,800 Gaussians) +0.01 dB on both. More scored lower
/// (10% a round at 2,000 iterations, 32% at 1,000; BENCHMARKS.md,
/// thirteenth session). A run whose budget never fills is unchanged.
pub const RETIRE_PER_ROUND: f64 = 0.04;

/// The CLI's [`TrainConfig::lr_mean`] (its final rate:
/// [`LR_MEAN_FINAL`]): twice the original 3DGS's position learning rate. Why: the
/// model underfits the photos of a capture (a default run reproduces its
/// own training photos 3.4 dB below what a perfect model would), and the
/// positions are the group that moves the score. At 2,000 iterations and
/// 30,000 Gaussians, two 60-photo COLMAP captures scored +0.33 and +0.65
/// dB with twice the rate, the synth scene's default −0.01 dB; three
/// times gained more on the captures (+0.51, +0.76) but cost the synth
/// scene 0.11 dB (BENCHMARKS.md, ninth session).
pub const LR_MEAN: f64 = 3.2e-4;

/// The CLI's [`TrainConfig::lr_mean_final`]: a hundredth of [`LR_MEAN`],
/// the original 3DGS's ratio.
pub const LR_MEAN_FINAL: f64 = 3.2e-6;

/// The run length from which the CLI's position rates are [`LR_MEAN`] and
/// [`LR_MEAN_FINAL`]; shorter runs start higher ([`lr_mean_scale`]).
pub const LR_MEAN_ITERS: u32 = 4000;

/// How much higher than [`LR_MEAN`] (and [`LR_MEAN_FINAL`]) the CLI's
/// position rates are for a run of `iters` iterations: `4,000 / iters`,
/// from 1 (4,000 iterations or more) to at most 4 (1,000 or fewer).
///
/// Why: the rate decays over twice the run's length
/// ([`TrainConfig::position_lr_steps`]), so the distance a splat can
/// travel is about the starting rate times the iterations; a run half as
/// long at the same rate leaves its splats short of where the photos
/// want them. Scaling the rate up keeps that distance at the 4,000-iteration
/// default's. Measured single-threaded on two 60-photo COLMAP captures
/// (30,000 Gaussians) and the synth scene: at 2,000 iterations twice the
/// rate scored +0.32 and +0.15 dB on the captures and −0.13 dB on the
/// synth scene; at 1,000 iterations four times the rate +0.42, +0.59 and
/// +1.75 dB (twice: +0.38, +0.54, +0.98); at 4,000 iterations more than
/// the default rate gains nothing (×1.5: −0.07 and +0.06 dB on the
/// captures, −0.11 on the synth scene), hence no scaling from 4,000 on
/// (BENCHMARKS.md, eleventh session). The cap at 4 is the largest factor
/// measured.
///
/// ```
/// use splat::train::config::lr_mean_scale;
/// assert_eq!(lr_mean_scale(4000), 1.0);
/// assert_eq!(lr_mean_scale(30_000), 1.0);
/// assert_eq!(lr_mean_scale(2000), 2.0);
/// assert_eq!(lr_mean_scale(1000), 4.0);
/// assert_eq!(lr_mean_scale(20), 4.0);
/// ```
pub fn lr_mean_scale(iters: u32) -> f64 {
    (f64::from(LR_MEAN_ITERS) / f64::from(iters.max(1))).clamp(1.0, 4.0)
}

/// The CLI's [`TrainConfig::lr_scale`] (log-scales) on COLMAP data: twice
/// the original 3DGS's 0.005, at every run length. Why: as with the positions
/// ([`LR_MEAN`]), the model underfits a capture's photos, and the splats'
/// sizes are the other group that moves the score. Two 60-photo COLMAP
/// captures at 4,000 iterations and the default budget: +0.25 and +0.13 dB
/// with twice the rate; at 2,000 iterations and 30,000 Gaussians +0.19 and
/// +0.17 dB, where three and four times gained nothing and half the rate
/// lost 0.54 dB. Not on NeRF-synthetic data: the synth scene's default
/// run gained 0.23 dB but grew 11% more splats (its budget does not bind)
/// and took 134 s instead of 111 (BENCHMARKS.md, twelfth session).
pub const LR_SCALE: f64 = 0.01;

/// Iterations between spherical-harmonic bands in the CLI's runs of
/// `iters` iterations: the original's 1,000 divided by
/// [`lr_mean_scale`], so 1,000 from 4,000 iterations on, 500 at 2,000 and
/// 250 at 1,000 or fewer. With the original's 1,000 a 2,000-iteration run
/// reaches the second band only at its last iteration; a shorter run gets
/// the same share of its length with each band as a 4,000-iteration run
/// does.
///
/// ```
/// use splat::train::config::sh_interval;
/// assert_eq!(sh_interval(4000), 1000);
/// assert_eq!(sh_interval(30_000), 1000);
/// assert_eq!(sh_interval(2000), 500);
/// assert_eq!(sh_interval(1000), 250);
/// assert_eq!(sh_interval(20), 250);
/// ```
pub fn sh_interval(iters: u32) -> u32 {
    (1000.0 / lr_mean_scale(iters)).round() as u32
}

/// The CLI's default run length on COLMAP data (its `--iters`), in place
/// of the library's 4,000 ([`TrainConfig::iters`], still the default on
/// NeRF-synthetic data). Why: with the capture schedule (from
/// [`CAPTURE_SCHEDULE_ITERS`]) a run's time is close to proportional to its
/// length, and 3,400 iterations bring the default command on a 60-photo
/// COLMAP capture at 320×240 under six minutes on the slowest 2-core VM
/// we were given (AMD EPYC Zen 3), for 0.13 to 0.22 dB. On that capture
/// and VM, quiet, one sitting, against 4,000 iterations: 28.952 dB in
/// 354.9 s of training (357.0 s wall) against 29.077 dB in 411.1 s; at
/// seed 1 (screening) 29.017 against 29.160 dB; on a second capture
/// 28.924 against 29.148 dB (BENCHMARKS.md, thirty-third session). As a
/// run shorter than [`LR_MEAN_ITERS`], it starts its position and SH
/// rates 4,000 / 3,400 times higher ([`lr_mean_scale`]); so did the runs
/// measured.
pub const CAPTURE_ITERS: u32 = 3400;

/// The run length from which the CLI gives COLMAP data the capture
/// schedule: a coarse first quarter ([`CAPTURE_COARSE_FRACTION`]), density
/// rounds at least every [`CAPTURE_DENSIFY_EVERY`] iterations, more of the
/// faintest splats moved a round ([`CAPTURE_RETIRE_PER_ROUND`]) and the
/// opacity regulariser ([`OPACITY_REG`]). On a 60-photo COLMAP capture at
/// 320×240, the schedule against the plain one: +0.32 dB at 3,500
/// iterations, +0.29 at 3,000 (BENCHMARKS.md, thirty-second session).
/// Shorter runs were not measured with it (the opacity regulariser alone
/// lost 0.2 dB in a 2,000-iteration run with a 30,000 budget) and keep the
/// plain schedule.
pub const CAPTURE_SCHEDULE_ITERS: u32 = 3000;

/// The CLI's floor on the interval between density-control rounds on
/// COLMAP data in runs of [`CAPTURE_SCHEDULE_ITERS`] or more whose window is the
/// default (half the run), in place of [`MIN_DENSIFY_EVERY`]: the paper's
/// interval scaled to the window but at least 50, so a 4,000-iteration
/// run has twice the rounds, each judging and replacing fewer splats (the
/// opacity resets keep their 3,000-iteration floor; the paper's 30,000
/// iterations keep its 100). On 60-photo COLMAP captures at 320×240
/// (4,000 iterations, the default budget): +0.13 dB alone, +0.24 dB
/// beside the coarse phase ([`CAPTURE_COARSE_FRACTION`]), whose savings
/// pay for most of the extra rounds' time (BENCHMARKS.md, thirtieth and
/// thirty-first sessions).
pub const CAPTURE_DENSIFY_EVERY: u32 = 50;

/// The CLI's coarse phase on COLMAP data in runs of
/// [`CAPTURE_SCHEDULE_ITERS`] or more: [`TrainConfig::coarse_until`] at this fraction of the run (half
/// the default densification window), at half resolution. On a 60-photo
/// COLMAP capture at 320×240 (4,000 iterations), against the full
/// resolution throughout: +0.05 dB with a quarter of the run coarse,
/// +0.01 dB with half, −0.23 dB with three quarters; with density rounds
/// every 50 iterations ([`CAPTURE_DENSIFY_EVERY`]) +0.29, +0.19 and +0.15
/// dB with a quarter, three eighths and half (BENCHMARKS.md, thirty-first
/// session).
pub const CAPTURE_COARSE_FRACTION: f64 = 0.25;

/// The CLI's [`TrainConfig::retire_per_round`] on COLMAP data in runs of
/// [`CAPTURE_SCHEDULE_ITERS`] to 4,000 iterations, in place of
/// [`RETIRE_PER_ROUND`]; longer runs on
/// COLMAP data scale it down by their window's length in round intervals
/// against that run's (2,000 / 50), never below [`RETIRE_PER_ROUND`]. Why: with the coarse quarter and rounds every 50 iterations
/// ([`CAPTURE_DENSIFY_EVERY`]) the budget is full from about the ninth
/// round, and the rounds after it place splats better the more of the
/// faintest they may move, up to a point. On a 60-photo COLMAP capture at
/// 320×240 (4,000 iterations, the default budget), against 4%: 2% −0.05
/// dB, 6% +0.03, 10% +0.09, 15% +0.08, 20% +0.05 (BENCHMARKS.md,
/// thirty-second session).
pub const CAPTURE_RETIRE_PER_ROUND: f64 = 0.10;

/// The CLI's interval between SH bands on COLMAP data, at most (so from
/// 2,000 iterations on; shorter runs keep [`sh_interval`]'s): degree 3
/// from iteration 1,500 of a 4,000-iteration run instead of 3,000. On a
/// 60-photo COLMAP capture at 320×240, 4,000 iterations and the default
/// budget: +0.14 dB with 500, +0.04 dB with 750, for about 1% more CPU
/// time (BENCHMARKS.md, twenty-ninth session).
pub const CAPTURE_SH_INTERVAL: u32 = 500;

/// The CLI's settings for a run of `iters` iterations shorter than
/// [`LR_MEAN_ITERS`], compressed as its position rate is
/// ([`lr_mean_scale`], `s` below; from 4,000 iterations on `s` is exactly 1
/// and nothing changes): the SH bands come every [`sh_interval`], the SH
/// rate is `s` times the original's (the colours have fewer iterations to
/// travel as far), and each density round retires `s` times
/// [`RETIRE_PER_ROUND`] (a shorter run has fewer rounds: the same share of
/// the Gaussians is replaced over the run). Two 60-photo COLMAP captures at
/// 2,000 iterations and 30,000 Gaussians, on top of [`LR_SCALE`]: bands
/// every 500 +0.18 and +0.23 dB, the SH rate +0.12 and +0.11, the retiring
/// (at the former 2% a round, so 4% there) +0.06 and +0.08. The synth
/// scene (which keeps the original's scale rate): +0.57 dB at 2,000
/// iterations, +0.46 at 1,000 (BENCHMARKS.md, twelfth session).
///
/// ```
/// use splat::train::{config::compress_for_run, TrainConfig};
/// let cfg = TrainConfig { retire_per_round: 0.02, ..TrainConfig::default() };
/// let short = compress_for_run(cfg.clone(), 2000);
/// assert_eq!((short.sh_interval, short.lr_sh, short.retire_per_round), (500, 5e-3, 0.04));
/// let long = compress_for_run(cfg.clone(), 4000);
/// assert_eq!((long.sh_interval, long.lr_sh, long.retire_per_round), (1000, 2.5e-3, 0.02));
/// ```
pub fn compress_for_run(cfg: TrainConfig, iters: u32) -> TrainConfig {
    let s = lr_mean_scale(iters);
    TrainConfig {
        sh_interval: sh_interval(iters),
        lr_sh: cfg.lr_sh * s,
        retire_per_round: cfg.retire_per_round * s,
        ..cfg
    }
}

/// The gradient threshold that goes with [`TrainConfig::absgrad`]: the
/// absolute sums are at least the plain ones (2·10⁻⁴), so they need a
/// higher threshold. AbsGS's paper uses 4·10⁻⁴, gsplat's `absgrad`
/// 8·10⁻⁴ (for the same NDC scaling as ours); this is the paper's,
/// which scored higher than gsplat's on both captures and the synth
/// scene (BENCHMARKS.md, sixth session).
pub const ABSGRAD_THRESHOLD: f64 = 4e-4;

/// Training pixels per Gaussian in the default budget
/// ([`TrainConfig::default_max_gaussians`]). 27 rather than 32: on a
/// 60-photo COLMAP capture at 320×240 the larger budget (about 148,000
/// against 124,800 Gaussians, under issue 14's limit of 150,000) scored
/// +0.05 dB (+0.17 with its camera read as a pinhole) for 11% more time
/// (BENCHMARKS.md, twenty-ninth session).
pub const PIXELS_PER_GAUSSIAN: usize = 27;

/// The smallest default budget.
pub const MIN_DEFAULT_GAUSSIANS: usize = 10_000;

/// The shortest interval between density-control rounds of a scaled
/// schedule ([`TrainConfig::with_densify_until`]): the paper's 100.
pub const MIN_DENSIFY_EVERY: u32 = 100;

/// Density-control rounds between opacity resets, at least (the paper's
/// 3,000 / 100).
pub const MIN_ROUNDS_PER_RESET: u32 = 30;

impl TrainConfig {
    /// The paper's densification schedule scaled by `s = until / 15,000`:
    /// densification stops at `until` and starts at `500·s`; size pruning
    /// starts at `3,000·s` (the paper's first opacity reset); rounds run
    /// every `100·s` iterations but never more often than every
    /// [`MIN_DENSIFY_EVERY`] (100), and opacities are reset every
    /// `3,000·s` but no more often than every [`MIN_ROUNDS_PER_RESET`] (30)
    /// rounds (so no reset before iteration 3,000). Each value is rounded.
    /// `until = iters / 2` is the CLI's default, as in the paper.
    ///
    /// Why the floors: a round selects splats by their view-space gradient
    /// averaged over the views since the last round, and the splats it
    /// adds need iterations to settle before the next round judges them;
    /// neither depends on the run's length. Scaled all the way down, a
    /// 300-iteration run densified every iteration (14.0 dB, 69,841
    /// Gaussians) and a 4,000-iteration run every 13 iterations, growing
    /// to its budget on noise; an opacity reset every 400 iterations cost
    /// 1.6 dB at 4,000 iterations (BENCHMARKS.md).
    ///
    /// ```
    /// let c = splat::train::TrainConfig::default().with_densify_until(2000);
    /// assert_eq!(
    ///     (c.densify_from, c.densify_until, c.densify_every),
    ///     (67, 2000, 100)
    /// );
    /// assert_eq!((c.opacity_reset_every, c.prune_big_from), (3000, 400));
    /// // the paper's own schedule is unchanged
    /// let p = splat::train::TrainConfig::default().with_densify_until(15_000);
    /// assert_eq!((p.densify_from, p.densify_every, p.opacity_reset_every), (500, 100, 3000));
    /// ```
    pub fn with_densify_until(mut self, until: u32) -> Self {
        let [from, paper_until, every, reset] = PAPER_DENSIFY;
        let s = until as f64 / paper_until as f64;
        let scaled = |v: u32| ((v as f64 * s).round() as u32).max(1);
        self.densify_from = scaled(from);
        self.densify_until = until;
        self.densify_every = scaled(every).max(MIN_DENSIFY_EVERY);
        self.opacity_reset_every = scaled(reset).max(MIN_ROUNDS_PER_RESET * self.densify_every);
        self.prune_big_from = scaled(reset);
        self
    }

    /// The iterations the position learning rate decays a hundredfold over
    /// in a run of `iters`: the original's 30,000 ([`POSITION_LR_STEPS`]),
    /// but at most twice the run, so a run ends at a tenth of its starting
    /// rate or less (a 30,000-iteration run: the original's hundredth).
    ///
    /// Why: decayed a hundredfold over the run itself (gsplat's and
    /// OpenSplat's convention), a 4,000-iteration run spent its second
    /// half with the positions nearly frozen; with the original's fixed
    /// 30,000 it ends at 54% of the start and the final positions stay
    /// noisy. At 4,000 iterations (BENCHMARKS.md): COLMAP room at
    /// 160×120, 28.97 dB (over the run), 29.46 (this rule), 29.78
    /// (30,000); default synth scene 34.91, 35.09, 34.67 dB.
    ///
    /// ```
    /// use splat::train::TrainConfig;
    /// assert_eq!(TrainConfig::position_lr_steps(4000), 8000);
    /// assert_eq!(TrainConfig::position_lr_steps(30_000), 30_000);
    /// assert_eq!(TrainConfig::position_lr_steps(100_000), 30_000);
    /// ```
    pub fn position_lr_steps(iters: u32) -> u32 {
        POSITION_LR_STEPS.min(iters.saturating_mul(2)).max(1)
    }

    /// The position learning rate after `iteration` iterations, per unit
    /// of scene extent (the trainer multiplies it by the extent): it
    /// decays log-linearly from [`lr_mean`](Self::lr_mean) to
    /// [`lr_mean_final`](Self::lr_mean_final) over
    /// [`lr_mean_steps`](Self::lr_mean_steps) iterations, then stays.
    ///
    /// ```
    /// use splat::train::TrainConfig;
    /// let cfg = TrainConfig { lr_mean_steps: 100, ..TrainConfig::default() };
    /// assert!((cfg.position_lr(0) - 1.6e-4).abs() < 1e-18);
    /// assert!((cfg.position_lr(50) - 1.6e-5).abs() < 1e-18);
    /// assert!((cfg.position_lr(500) - 1.6e-6).abs() < 1e-18);
    /// ```
    pub fn position_lr(&self, iteration: u32) -> f64 {
        let t = (iteration as f64 / self.lr_mean_steps.max(1) as f64).clamp(0.0, 1.0);
        let (a, b) = (self.lr_mean.ln(), self.lr_mean_final.ln());
        (a * (1.0 - t) + b * t).exp()
    }

    /// The weight of the mean opacity the loss applies: [`OPACITY_REG`]
    /// with the MCMC strategy, [`TrainConfig::opacity_reg`] with the
    /// default one.
    pub fn opacity_weight(&self) -> f64 {
        match self.strategy {
            Strategy::Mcmc => OPACITY_REG,
            Strategy::Default => self.opacity_reg,
        }
    }

    /// The default Gaussian budget of a dataset by its pixels alone: one
    /// Gaussian per [`PIXELS_PER_GAUSSIAN`] (27) training pixels, at least
    /// [`MIN_DEFAULT_GAUSSIANS`] (10,000). For 52 training photos of
    /// 320×240 that is 147,911. The CLI also caps it by the machine's
    /// memory ([`super::budget::Budget`]).
    pub fn default_max_gaussians(data: &Dataset) -> usize {
        super::budget::Budget::of(data, None).by_pixels
    }
}

/// Refuses settings or datasets that cannot be trained on.
pub(super) fn check_config(data: &Dataset, cfg: &TrainConfig) -> Result<(), TrainError> {
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
    if !(0.0..=1.0).contains(&cfg.retire_per_round) {
        return Err(TrainError::Config(format!(
            "--retire-per-round {} is not a fraction from 0 to 1",
            cfg.retire_per_round
        )));
    }
    if cfg.max_gaussians == 0 {
        return Err(TrainError::Config(
            "--max-gaussians must be at least 1".into(),
        ));
    }
    if !(cfg.opacity_reg.is_finite() && cfg.opacity_reg >= 0.0) {
        return Err(TrainError::Config(format!(
            "--opacity-reg {} is not a number at least 0",
            cfg.opacity_reg
        )));
    }
    let o = cfg.initial_opacity();
    if !(o > 0.0 && o < 1.0) {
        return Err(TrainError::Config(format!(
            "--init-opacity {o} is not a number between 0 and 1 (both excluded)"
        )));
    }
    if cfg.strategy == Strategy::Default && o <= cfg.prune_opacity {
        return Err(TrainError::Config(format!(
            "--init-opacity {o} is at or below the pruning threshold {}: the first density \
             round would prune every Gaussian",
            cfg.prune_opacity
        )));
    }
    let s = cfg.initial_scale();
    if !INIT_SCALE_RANGE.contains(&s) {
        return Err(TrainError::Config(format!(
            "--init-scale {s} is not a number from 1e-6 to 1000"
        )));
    }
    for (flag, v) in [
        ("--lr-mean", cfg.lr_mean),
        ("--lr-mean-final", cfg.lr_mean_final),
    ] {
        // the schedule interpolates the logarithms of the two rates
        if !(v.is_finite() && v > 0.0) {
            return Err(TrainError::Config(format!(
                "{flag} {v} is not a positive number"
            )));
        }
    }
    let colour = |c: &[f64; 3]| c.iter().all(|x| (0.0..=1.0).contains(x));
    if !colour(&cfg.background) {
        return Err(TrainError::Config(format!(
            "background {:?}: each value must lie in [0, 1]",
            cfg.background
        )));
    }
    for v in data.train.iter().chain(&data.test) {
        if !colour(&v.background.map(f64::from)) {
            return Err(TrainError::Config(format!(
                "{}: the photo's background {:?}: each value must lie in [0, 1]",
                v.name, v.background
            )));
        }
        let pixels = v.width as usize * v.height as usize;
        let planes = [
            ("mask", v.mask.as_ref().map(Pixels8::len), 1),
            ("alpha", v.alpha.as_ref().map(Pixels8::len), 1),
            ("image", Some(v.image.len()), 3),
        ];
        for (what, len, per_pixel) in planes {
            if let Some(n) = len.filter(|&n| n != per_pixel * pixels) {
                return Err(TrainError::Config(format!(
                    "{}: {what} has {n} values for {}x{} pixels",
                    v.name, v.width, v.height
                )));
            }
        }
    }
    Ok(())
}
