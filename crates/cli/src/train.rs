//! `chainrule train DATA --out DIR`: train a 3D Gaussian scene on a
//! NeRF-synthetic, COLMAP or nerfstudio dataset, with checkpoints and `--resume`, and
//! write `DIR/point_cloud.ply` and renders of the test views with their PSNR
//! and SSIM.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use splat::data::{self, LoadOptions};
use splat::image_io::Image;
use splat::three::ply;
use splat::train::budget::{self, Budget};
use splat::train::config::INIT_SCALE_RANGE;
use splat::train::{CheckpointWriter, Strategy, TrainConfig, TrainError, Trainer};

use crate::error::{CliError, CliResult};
use crate::fit::{check_out_dir, parse_background};
use crate::output::write_atomic;

/// Arguments of `chainrule train`.
#[derive(Debug, Args)]
#[command(
    after_help = "Masks: pixels a photo's mask ignores take no part in the loss, in \
    densification's statistics, or in the reported PSNR/SSIM (computed over kept pixels; \
    `masked_views` in the report counts the scored views whose mask ignores at least one \
    pixel: a mask that keeps every pixel changes nothing and is not counted; a held-out photo \
    whose mask ignores every pixel has no score, null in the report, and is left out of the \
    means). A photo that masks/ has no mask for is trained and scored without one (a note says \
    which); a masks/ folder with no mask for any photo is an error. With images_N, a photo \
    that masks_N has no mask for takes its full-size mask from masks/, fitted.\n\nEnvironment:\n  CHAINRULE_TRAIN_TIMINGS=1  print every 10th iteration's seconds in \
    [render, loss and its gradient, render backward, update] to stderr\n  \
    CHAINRULE_SIMD=generic|avx2|avx512  cap the kernels' vector instruction set (default: the \
    widest the CPU has; the results are the same bits, only the speed differs)"
)]
pub struct TrainArgs {
    /// Dataset folder: NeRF-synthetic (transforms_train.json), COLMAP
    /// (sparse/0 and images/; of several models in sparse/, the one with
    /// the most photos) or nerfstudio (transforms.json beside the photos,
    /// as capture apps export it; perspective, OPENCV_FISHEYE, FISHEYE624
    /// (Project Aria) and EQUIRECTANGULAR cameras (a panorama trains as
    /// the six faces of a cube), a fisheye's
    /// fisheye_crop_radius, its ply_file_path points). A COLMAP model folder such as DATA/sparse/1
    /// trains on that model, with DATA's photos. Captures (COLMAP and
    /// nerfstudio data) train with the defaults said "on COLMAP data"
    /// below.
    pub data: PathBuf,
    /// Output folder: point_cloud.ply, test renders (an earlier run's
    /// renders of views this run does not have are removed), checkpoints.
    /// A run holds the folder's lock (`.train.lock`) while it writes, so a
    /// second `train` into the same folder at once is refused.
    #[arg(long)]
    pub out: PathBuf,
    /// Iterations in all (with --resume: including those already done;
    /// without --iters, --resume continues to the run's length as last
    /// given or defaulted, which its checkpoints/run.json records; an
    /// --iters the checkpoint already reaches trains nothing and leaves
    /// that length as it was)
    /// [default: 3,400 on COLMAP data (0.13 to 0.22 dB below 4,000
    /// iterations' score on two captures of ours, in 14% less time: under
    /// six minutes on a 2-core VM), 4,000 on NeRF-synthetic data]. The position learning rate
    /// decays a hundredfold over 30,000 iterations (the original 3DGS's)
    /// or twice --iters if fewer, so a run ends at a tenth of its starting
    /// rate or below.
    #[arg(long)]
    pub iters: Option<u32>,
    /// Position learning rate at the start, in the original 3DGS's units
    /// (times the scene extent: the cameras' spread) [default: 3.2e-4,
    /// twice the original's 1.6e-4 (+0.3 to +0.7 dB on COLMAP captures,
    /// the same on the synth scene), for runs of 4,000 iterations or more;
    /// 3.2e-4 × 4,000 / --iters for shorter runs (so about 3.76e-4 in a
    /// COLMAP capture's default 3,400 iterations), at most 1.28e-3 (1,000
    /// iterations or fewer), so that a short run's splats can travel as
    /// far as a 4,000-iteration run's (+0.15 to +0.59 dB on two COLMAP
    /// captures at 1,000 and 2,000 iterations; on the synth scene +1.75 dB
    /// at 1,000, −0.13 dB at 2,000)].
    #[arg(long)]
    pub lr_mean: Option<f64>,
    /// Position learning rate at the end of its decay (see --iters), in
    /// the same units [default: a hundredth of --lr-mean, the original
    /// 3DGS's ratio].
    #[arg(long)]
    pub lr_mean_final: Option<f64>,
    /// Learning rate of the colours' SH DC coefficients, as given at any
    /// run length; the higher bands learn at a twentieth of it [default:
    /// the original 3DGS's 2.5e-3, times 4,000 / --iters for runs shorter
    /// than 4,000 iterations, at most 1e-2].
    #[arg(long)]
    pub lr_sh: Option<f64>,
    /// Learning rate of the opacity logits [default: the original 3DGS's
    /// 0.05].
    #[arg(long)]
    pub lr_opacity: Option<f64>,
    /// Learning rate of the log-scales [default: 0.01 on COLMAP data,
    /// twice the original 3DGS's 0.005 (+0.13 and +0.25 dB on two
    /// captures); 0.005 on NeRF-synthetic data].
    #[arg(long)]
    pub lr_scale: Option<f64>,
    /// Learning rate of the rotation quaternions [default: the original
    /// 3DGS's 1e-3].
    #[arg(long)]
    pub lr_rotation: Option<f64>,
    /// Print one JSON object at the end instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Continue from the latest checkpoint in OUT/checkpoints, to the
    /// run's own length unless --iters is given, and with its own Gaussian
    /// budget unless --max-gaussians is given. DATA must hold the run's
    /// photos (their names and poses, as its checkpoints/run.json records
    /// them; the folder may have moved) unless --resume-other-data is given; a --downscale
    /// other than the run's is a warning; --sh-degree, --antialiased and
    /// --exposure must be the run's; the learning rates are the flags'
    /// again, not the checkpoint's, so give the run's --lr-* flags again.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: continue the run on DATA even though its photos are
    /// not the run's (to fine-tune a model on other photos; the run's
    /// model, renders and scores are then replaced by ones of DATA).
    #[arg(long, requires = "resume")]
    pub resume_other_data: bool,
    /// Train afresh into an OUT that holds an earlier run (its
    /// point_cloud.ply and checkpoints/ are removed first). Without this flag or
    /// --resume, such an OUT is refused, so a finished run is never lost to
    /// a command run twice.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Cap on the number of Gaussians [default: one per 27 training pixels,
    /// at least 10,000 (e.g. 147,911 for 52 training photos of 320×240),
    /// and at most what half of the machine's memory (or its container's
    /// limit) holds beside the photos at about 5.5 kB a Gaussian, rounded
    /// down to 10,000s (e.g. 2.13 million on 24 GiB for 160 photos 1,600
    /// pixels wide, which the pixels alone would give 9.9 million); a note
    /// says when the memory sets it; --resume keeps the run's budget].
    #[arg(long, value_parser = crate::args::at_least_one::<u64>)]
    pub max_gaussians: Option<u64>,
    /// Once the Gaussian budget is full, each densification round retires
    /// up to this fraction of the Gaussians (the least opaque ones that
    /// are not candidates) to clone or split as many more of the splats
    /// with the highest gradient; 0 keeps the 3DGS paper's rule (no growth
    /// once the budget is reached). A run that never fills its budget is
    /// unaffected [default: 0.04, times 4,000 / --iters for shorter runs
    /// (at most 0.16), which have fewer rounds; on COLMAP data, 0.10 in
    /// runs of 3,000 to 4,000 iterations and, in longer runs, 0.10 times
    /// 2,000 / 50
    /// over the window's length / the round interval (half at 8,000
    /// iterations), never below 0.04].
    #[arg(long)]
    pub retire_per_round: Option<f64>,
    /// Weight of the mean opacity in the loss (3DGS-MCMC's opacity
    /// regulariser, which `--strategy mcmc` always applies at 0.01): splats
    /// that no photo needs fade and are pruned instead of lingering where
    /// few photos see them; 0 turns it off [default: 0.01 on COLMAP data
    /// for runs of 3,000 iterations or more, else 0].
    #[arg(long)]
    pub opacity_reg: Option<f64>,
    /// The final model is an exponential moving average of the parameters
    /// with a time constant of this many iterations, updated every 20
    /// iterations once densification has ended (the last iteration's
    /// parameters carry the noise of the last few photos seen); 0: the
    /// last iteration's parameters [default: 100].
    #[arg(long)]
    pub ema_window: Option<u32>,
    /// Densify by AbsGS's statistic: the per-pixel absolute values of each
    /// splat's 2D-mean gradient summed, so that opposite gradients of a
    /// large splat over fine detail no longer cancel, with its own
    /// threshold (4·10⁻⁴, AbsGS's, instead of 2·10⁻⁴) [default: on for
    /// COLMAP data, where it measured +0.6 dB at the same Gaussian count;
    /// off for NeRF-synthetic data, whose budget seldom binds and where it
    /// grew 11% more splats for +0.1 dB].
    #[arg(long, overrides_with = "no_absgrad")]
    pub absgrad: bool,
    /// Densify by the 3DGS paper's signed statistic, also on COLMAP data.
    #[arg(long, overrides_with = "absgrad")]
    pub no_absgrad: bool,
    /// Density control: `default` (the 3DGS paper's clone/split/prune) or
    /// `mcmc` (3DGS-MCMC: start from opaquer, smaller Gaussians, grow to
    /// --max-gaussians, relocate dead Gaussians onto live ones, noise on
    /// positions; 0.8 to 0.9 dB below the default on our COLMAP captures at
    /// 3,400 iterations).
    #[arg(long, value_enum, default_value_t = StrategyArg::Default)]
    pub strategy: StrategyArg,
    /// Learn a colour transform per training photo (per view: each face
    /// of a panorama learns its own; 3×3 matrix + offset,
    /// from the identity, its own learning rate 0.01 → 0.001) applied to
    /// the render inside the loss, for captures whose exposure or white
    /// balance varies. Held-out photos are scored with the identity
    /// (`psnr`, `ssim`) and by the original 3DGS's protocol: a transform
    /// fitted on the left half of each photo, scores over the right half
    /// (`psnr_half_fit`, `ssim_half_fit`; reported for every run, so that
    /// runs with and without --exposure compare).
    #[arg(long)]
    pub exposure: bool,
    /// Mip-Splatting's antialiased projection (gsplat's `antialiased`):
    /// a splat's opacity is scaled to compensate the 0.3 px² screen-space
    /// dilation, so splats smaller than a pixel fade rather than grow.
    /// Saved in OUT/settings.json, so `render` and `view` use it too, and
    /// declared in the scene files written (the PLY comment
    /// `SplatRenderMode: mip` that Brush writes, the .spz flag), so that
    /// other viewers and tools draw the scene as it was trained.
    #[arg(long)]
    pub antialiased: bool,
    /// Random initial points when the dataset has no sparse points.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub init_points: u64,
    /// Opacity of every initial Gaussian, below 1 and, with the default
    /// strategy, above its pruning threshold of 0.005 (ignored with
    /// --resume, which continues from its checkpoint) [default: 0.1, the
    /// original 3DGS's;
    /// 0.5 with --strategy mcmc, as 3DGS-MCMC and gsplat's MCMC preset
    /// start].
    #[arg(long)]
    pub init_opacity: Option<f64>,
    /// Initial scale of each Gaussian, as a multiple of the root mean
    /// squared distance to its 3 nearest starting points, from 1e-6 to
    /// 1000 (ignored with --resume) [default: 1, the original 3DGS's; 0.1
    /// with --strategy mcmc, gsplat's MCMC preset's].
    #[arg(long)]
    pub init_scale: Option<f64>,
    /// Largest spherical-harmonic degree (0 to 3). One more band is
    /// trained every 1,000 iterations (every 500 on COLMAP data), or every
    /// 1,000 × --iters / 4,000 in runs shorter than 4,000 (at least 250),
    /// whose SH learning rate is raised by 4,000 / --iters (at most ×4) as
    /// the position rate is.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub sh_degree: u8,
    /// Background the photographs are composited on and renders use:
    /// black, white, or R,G,B with each value from 0 to 1 [default: white
    /// for NeRF-synthetic, black for COLMAP]. Saved with the other settings
    /// a render needs in OUT/settings.json.
    #[arg(long)]
    pub background: Option<String>,
    /// Train on a random background colour each iteration (photographs are
    /// re-composited through their alpha channel); evaluation and the test
    /// renders use --background.
    #[arg(long)]
    pub random_background: bool,
    /// Adam updates only the Gaussians each iteration's view draws
    /// (gsplat's `visible_adam`); the others keep their parameters and
    /// moments instead of moving on their momentum.
    #[arg(long)]
    pub visible_adam: bool,
    /// Seconds between checkpoints (0: only at the end).
    #[arg(long, default_value_t = 120.0)]
    pub checkpoint_every: f64,
    /// Seed of the initialisation and the order of views.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Integer downscale factor of the images (a COLMAP dataset's
    /// images_N folder is used when it exists, with its masks_N, and for
    /// photos without one there the full-size masks/ fitted to it; a photo
    /// images_N lacks is read from images/ and downscaled)
    /// [default: photos wider than
    /// 1,600 pixels are scaled down to 1,600 wide, as the original 3DGS
    /// does].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub downscale: Option<u32>,
    /// Swap kept and ignored pixels of the masks in the dataset's masks/
    /// folder (by default black, 0, or a mask's transparency ignores a
    /// pixel, anything else keeps it).
    #[arg(long)]
    pub invert_masks: bool,
    /// Densify (clone/split/prune) until this iteration [default: half of
    /// --iters]. The other intervals scale with it from the 3DGS paper's
    /// (start 500, size pruning from 3,000, for 15,000), except that rounds
    /// are at least 100 iterations apart and opacity resets at least 30
    /// rounds (3,000 iterations) apart, as in the paper: a round averages
    /// each splat's gradient over the views since the last one, and new
    /// splats need time to settle (a 300-iteration run otherwise densified
    /// every iteration).
    #[arg(long)]
    pub densify_until: Option<u32>,
    /// Densify from this iteration [default: scaled with --densify-until:
    /// 500 × until / 15,000].
    #[arg(long)]
    pub densify_from: Option<u32>,
    /// Densify every this many iterations [default: 100 × until / 15,000,
    /// at least 100; on COLMAP data in runs of 3,000 iterations or more
    /// without --densify-until, at least 50: every 50 up to 15,000].
    #[arg(long, value_parser = crate::args::at_least_one::<u32>)]
    pub densify_every: Option<u32>,
    /// Reset opacities every this many iterations, 0 never [default:
    /// 3,000 × until / 15,000, at least 30 default intervals (3,000 when
    /// until ≤ 15,000); no reset after --densify-until].
    #[arg(long)]
    pub opacity_reset_every: Option<u32>,
    /// Train on the photos at a --coarse-factor-th of their resolution
    /// until this iteration, then at full resolution (DashGaussian's
    /// resolution schedule in one step: early iterations cost about a
    /// quarter as much to rasterise); 0: never [default: a quarter of
    /// --iters on COLMAP data in runs of 3,000 iterations or more, else 0].
    #[arg(long)]
    pub coarse_until: Option<u32>,
    /// The downscale factor of the coarse phase (--coarse-until).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=16))]
    pub coarse_factor: u32,
    /// Measure the test views' PSNR every this many seconds and record the
    /// curve in the report (0: never).
    #[arg(long, default_value_t = 0.0)]
    pub eval_every: f64,
    /// Also write the final scene as `OUT/point_cloud.FORMAT` (splat, spz,
    /// compressed-ply or sog; see `chainrule export`). `point_cloud.ply` is
    /// always written, so `ply` adds nothing.
    #[arg(long, value_enum)]
    pub export: Option<crate::export::ExportFormat>,
    /// Serve the viewer (`chainrule view`'s page) while training: the model
    /// refreshes every few seconds, with the loss and PSNR curves; after
    /// training it keeps serving the final scene until Ctrl-C (not after a
    /// run Ctrl-C stopped).
    #[arg(long)]
    pub view: bool,
    /// With --view: the port (0: any free port).
    #[arg(long, default_value_t = crate::view::DEFAULT_PORT, requires = "view")]
    pub port: u16,
}

/// `--strategy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyArg {
    /// The 3DGS paper's adaptive density control.
    Default,
    /// 3DGS-MCMC relocation.
    Mcmc,
}

/// One point of the training curve.
#[derive(Debug, Serialize)]
pub struct CurvePoint {
    /// Seconds of training so far (this session).
    pub seconds: f64,
    /// Iteration.
    pub iteration: u32,
    /// Mean PSNR of the test views.
    pub psnr: f64,
    /// Mean PSNR of the same views by the original 3DGS's exposure
    /// protocol (as the final report's `psnr_half_fit`), so that an
    /// `--exposure` run's progress on held-out photos can be followed.
    pub psnr_half_fit: f64,
    /// Gaussians at that time.
    pub gaussians: usize,
}

/// What `train --json` prints.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    /// Mean PSNR (dB) of the test views (of the training views when the
    /// dataset has no test split).
    pub psnr: f64,
    /// Mean SSIM of the same views.
    pub ssim: f64,
    /// Number of Gaussians at the end.
    pub gaussians: usize,
    /// The run's Gaussian budget: `--max-gaussians`, or the default (one
    /// per 27 training pixels, at most what half of the machine's memory
    /// holds; `notes` says when the memory set it), or with `--resume` the
    /// budget the run's `checkpoints/run.json` records.
    pub max_gaussians: usize,
    /// Iterations done in all (including resumed ones).
    pub iterations: u32,
    /// Whether Ctrl-C (or SIGTERM) stopped the run before its last
    /// iteration: the checkpoint, scene and scores are of the model as it
    /// was then, `--resume` continues the run, and the command exits with
    /// code 130.
    pub interrupted: bool,
    /// Wall-clock seconds of this session's training.
    pub seconds: f64,
    /// Iteration this session started from (0 unless resumed).
    pub resumed_from: u32,
    /// Loss at the last iteration.
    pub final_loss: f64,
    /// Position learning rate at the start (`--lr-mean`), times the
    /// scene extent.
    pub lr_mean: f64,
    /// Position learning rate at the end of its decay (`--lr-mean-final`).
    pub lr_mean_final: f64,
    /// Learning rate of the SH DC coefficients (`--lr-sh`; the higher
    /// bands': a twentieth of it).
    pub lr_sh: f64,
    /// Learning rate of the opacity logits (`--lr-opacity`).
    pub lr_opacity: f64,
    /// Learning rate of the log-scales (`--lr-scale`).
    pub lr_scale: f64,
    /// Learning rate of the rotation quaternions (`--lr-rotation`).
    pub lr_rotation: f64,
    /// Weight of the mean opacity in the loss (`--opacity-reg`, or 0.01
    /// with `--strategy mcmc`; 0: none).
    pub opacity_reg: f64,
    /// Iterations trained on the photos at a `coarse_factor`-th of their
    /// resolution (`--coarse-until`; 0: none).
    pub coarse_until: u32,
    /// The coarse phase's downscale factor (`--coarse-factor`).
    pub coarse_factor: u32,
    /// The time constant, in iterations, of the parameters' moving average
    /// that the final model is (`--ema-window`; 0: none).
    pub ema_window: u32,
    /// Updates the average had (0: the model is the last iteration's
    /// parameters, as when the densification window reaches the run's end).
    pub ema_updates: u32,
    /// Which views were scored: "test" or "train".
    pub eval_split: &'static str,
    /// Views scored.
    pub eval_views: usize,
    /// How many of them have a score: all but those whose mask ignores
    /// every pixel (left out of `psnr` and `ssim`).
    pub scored_views: usize,
    /// How many of the scored views have a mask that ignores at least one
    /// pixel: their
    /// PSNR and SSIM are computed over the kept pixels only (ignored pixels
    /// also take no part in the loss or in densification's statistics). A
    /// mask file that keeps every pixel changes nothing and is not counted.
    pub masked_views: usize,
    /// Whether `--exposure` learned a colour transform per training photo
    /// (held-out photos have none: `psnr` scores them with the identity,
    /// `psnr_half_fit` by the original 3DGS's protocol).
    pub exposure: bool,
    /// Mean PSNR of the same views by the original 3DGS's protocol for
    /// held-out photos under exposure compensation (a colour transform
    /// fitted by least squares on the left half of each photo, PSNR over
    /// the right half). Computed for every run, with `--exposure` or
    /// without, so that the two compare by the same rule.
    pub psnr_half_fit: f64,
    /// Mean SSIM by the same protocol.
    pub ssim_half_fit: f64,
    /// How many views those two means are over: the scored views whose
    /// masks keep pixels in both halves (a view with none in one has no
    /// score by this protocol).
    pub half_fit_views: usize,
    /// The scene (an absolute path, as are the views' renders in
    /// `metrics.json`, so that the file reads the same from anywhere).
    pub point_cloud: PathBuf,
    /// The dataset trained on, as `settings.json` keeps it (for COLMAP
    /// data of several models, the folder names the model only when one
    /// was given; otherwise the one with the most photos was trained).
    pub dataset: PathBuf,
    /// What loading the dataset said (the photos a partial `masks/` leaves
    /// without a mask), as printed on stderr.
    pub notes: Vec<String>,
    /// Test curve, when `--eval-every` is set.
    pub curve: Vec<CurvePoint>,
    /// The machine it ran on (CPU model and logical cores), so that
    /// `seconds` can be compared between machines.
    pub machine: String,
    /// The kernels' vector instruction set (`CHAINRULE_SIMD` caps it).
    pub simd: &'static str,
    /// With `--view`: the viewer's address (also on stderr as training
    /// starts), where the final scene is served after this report until
    /// the process is interrupted; null otherwise.
    pub viewer: Option<String>,
}

/// `p` made absolute (against the working folder), as it is when that
/// cannot be done.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn train_err(e: TrainError) -> CliError {
    match e {
        TrainError::Checkpoint { path, message } => CliError::file(&path, message),
        e => CliError::usage(e.to_string()),
    }
}

/// `e`, after waiting for the checkpoint being written in the background,
/// with that write's failure appended if it failed.
fn with_pending(saver: &mut CheckpointWriter, e: CliError) -> CliError {
    match saver.finish() {
        Ok(_) => e,
        Err(c) => e.also(checkpoint_failed("last", train_err(c))),
    }
}

/// The second half of a message whose first half is another failure.
fn checkpoint_failed(which: &str, c: CliError) -> String {
    format!("the {which} checkpoint was not written: {c}")
}

/// What a summary adds to scores of which `masked` of the `scored` views
/// have masks: that those views' scores are over their kept pixels.
pub(crate) fn masked_note(masked: usize, scored: usize) -> String {
    match masked {
        0 => String::new(),
        m if m == scored => " (over the pixels the masks keep)".to_string(),
        m => format!(" ({m} of the {scored} views masked: over the pixels their masks keep)"),
    }
}

/// The summary's line on the scores by the original 3DGS's exposure
/// protocol (`lead`: how the colour transform came), over the `counted`
/// of the `scored` views whose masks keep pixels in both halves.
pub(crate) fn half_fit_line(
    lead: &str,
    (psnr, ssim): (f64, f64),
    counted: usize,
    scored: usize,
) -> String {
    let what = match counted {
        0 => "no score: every view's mask keeps no pixel in one of its halves".to_string(),
        n if n < scored => format!(
            "PSNR {psnr:.2} dB, SSIM {ssim:.4} over {n} of the {scored} views; the others' \
             masks keep no pixel in one of their halves"
        ),
        _ => format!("PSNR {psnr:.2} dB, SSIM {ssim:.4}"),
    };
    format!(
        "  ({lead} on each photo's left half and scored on its right, the original 3DGS's \
         exposure protocol: {what})"
    )
}

/// The mean of views' scores, leaving out views with none (NaN: a view
/// whose mask ignores every pixel); NaN when no view has a score.
pub(crate) fn mean_of_scored(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs
        .filter(|x| !x.is_nan())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Runs `chainrule train`.
///
/// The run happens on a worker thread of rayon's pool: a parallel loop
/// started from outside the pool queues its job in the pool's injector,
/// which allocates a block every 63 jobs, so from the main thread every
/// other iteration would allocate (issue 15: none should).
pub fn run(a: TrainArgs) -> CliResult {
    rayon::scope(|_| run_on_worker(a))
}

/// The checks of `train`'s numeric flags that need no dataset (rates,
/// weights, intervals in seconds), made before the dataset is loaded so
/// that a mistyped flag is refused at once, by its name.
fn check_values(a: &TrainArgs) -> CliResult<()> {
    for (flag, v) in [
        ("--lr-mean", a.lr_mean),
        ("--lr-mean-final", a.lr_mean_final),
        ("--lr-sh", a.lr_sh),
        ("--lr-opacity", a.lr_opacity),
        ("--lr-scale", a.lr_scale),
        ("--lr-rotation", a.lr_rotation),
    ] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(CliError::usage(format!(
                "{flag}: must be a positive number (got {v})"
            )));
        }
    }
    if let Some(o) = a.init_opacity.filter(|o| !(*o > 0.0 && *o < 1.0)) {
        return Err(CliError::usage(format!(
            "--init-opacity: must be a number between 0 and 1, both excluded (got {o})"
        )));
    }
    if let Some(s) = a.init_scale.filter(|s| !INIT_SCALE_RANGE.contains(s)) {
        return Err(CliError::usage(format!(
            "--init-scale: must be a number from 1e-6 to 1000 (got {s})"
        )));
    }
    if let Some(w) = a.opacity_reg.filter(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(CliError::usage(format!(
            "--opacity-reg: must be a number at least 0 (got {w})"
        )));
    }
    if let Some(r) = a.retire_per_round.filter(|r| !(0.0..=1.0).contains(r)) {
        return Err(CliError::usage(format!(
            "--retire-per-round: must be a fraction from 0 to 1 (got {r})"
        )));
    }
    if a.opacity_reg.is_some() && a.strategy == StrategyArg::Mcmc {
        return Err(CliError::usage(
            "--opacity-reg: the default strategy's; --strategy mcmc always applies 0.01",
        ));
    }
    for (flag, v) in [
        ("--checkpoint-every", a.checkpoint_every),
        ("--eval-every", a.eval_every),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(CliError::usage(format!(
                "{flag}: must be a number of seconds >= 0"
            )));
        }
    }
    Ok(())
}

fn run_on_worker(a: TrainArgs) -> CliResult {
    check_values(&a)?;
    // (a dataset that is not there is named first, by the loader; said
    // before the photos are read, and again once the folder is locked)
    if a.data.is_dir() || splat::data::nerfstudio::is_file(&a.data) {
        OutLock::refuse_if_busy(&a.out)?;
        if !a.resume && !a.overwrite {
            refuse_earlier_run(&a.out)?;
        }
    }
    let background = match &a.background {
        Some(b) => parse_background(b)?,
        None => data::default_background(data::detect(&a.data)).map(f64::from),
    };
    let opts = LoadOptions {
        background: background.map(|c| c as f32),
        downscale: a.downscale.unwrap_or(1),
        max_width: a.downscale.is_none().then_some(1600),
        invert_masks: a.invert_masks,
        ..LoadOptions::default()
    };
    // which of several COLMAP models is read: said with an error in it,
    // else among the notes (so the report's JSON holds it too)
    let models = (data::detect(&a.data) == Some("colmap"))
        .then(|| models_note(&a.data, "training"))
        .flatten();
    let mut ds = data::load(&a.data, &opts).map_err(|e| {
        if let Some(n) = &models {
            eprintln!("note: {n}");
        }
        CliError::data(e)
    })?;
    ds.notes.splice(0..0, models);
    let kind = data::detect(&a.data);
    if kind == Some("colmap") && ds.points.is_none() && !a.resume {
        // a note of the report's too
        ds.notes.push(format!(
            "the COLMAP model has no sparse points (points3D.bin or .txt, or none in it): \
             training starts from {} random points (--init-points)",
            a.init_points
        ));
    }
    // the default budget, judged once: the notes and the run use the same;
    // a resumed run keeps the budget it was started with (on this machine
    // or another), as its checkpoints/run.json records it
    let default_budget = Budget::of(&ds, splat::machine::memory());
    let recorded_budget = if a.resume {
        resumed_budget(&checkpoint_dir(&a.out))
    } else {
        None
    };
    let budget = match (a.max_gaussians, recorded_budget) {
        (None, None) => {
            // (without a checkpoint the resume is refused below)
            if a.resume && checkpoint_dir(&a.out).join("latest.json").is_file() {
                ds.notes.push(format!(
                    "--resume: the run's Gaussian budget is not recorded (its \
                     checkpoints/run.json is missing, unreadable or from an older version): \
                     this machine's default, {}; give --max-gaussians for another",
                    default_budget.gaussians
                ));
            }
            ds.notes.extend(default_budget.note(&ds));
            default_budget.gaussians
        }
        (Some(m), _) => usize::try_from(m).unwrap_or(usize::MAX),
        (None, Some(m)) => {
            if m != default_budget.gaussians {
                ds.notes.push(format!(
                    "--resume: the run's Gaussian budget is {m}, as its checkpoints/run.json \
                     records it (the default here would be {}); give --max-gaussians for \
                     another",
                    default_budget.gaussians
                ));
            }
            m
        }
    };
    if a.max_gaussians.is_some() || recorded_budget.is_some() {
        // a budget not chosen by this machine's memory may exceed it
        let over = default_budget
            .memory
            .and_then(|mem| budget::oversize_warning(&ds, budget, mem));
        ds.notes.extend(over);
    }
    if let (Some(points), false) = (&ds.points, a.resume) {
        // (a zero budget is refused with the other settings)
        if budget > 0 && points.len() > budget {
            ds.notes.push(format!(
                "the model has {} sparse points, more than the Gaussian budget of {budget} \
                 (--max-gaussians): training starts from {budget} of them, chosen at random",
                points.len()
            ));
        }
    }
    crate::output::print_notes(&ds);
    // checked now, not after the training: the renders of the views
    // scored at the end never replace a photo (or another file of the
    // user's); an earlier run's (metrics.json) or `render --data`'s
    // (scores.json) are replaced
    {
        let renders = a.out.join("renders");
        let flag = "--out's renders";
        let scored = if ds.test.is_empty() {
            &ds.train
        } else {
            &ds.test
        };
        let metrics = a.out.join("metrics.json");
        let scores = renders.join(crate::render3d::SCORES_FILE);
        let pending = pending_renders_file(&a.out);
        let earlier = [
            (metrics.as_path(), "views"),
            (scores.as_path(), "per_view"),
            (pending.as_path(), "renders"),
        ];
        let names = ds.render_names(scored);
        crate::output::refuse_render_folder(&renders, &ds, &names, &earlier, flag)?;
    }
    // the run's files would go among the photos (and `render` refuses a
    // model in such a folder)
    if crate::output::refuse_dataset_folder(&a.out, &ds.read_from, "--out").is_err() {
        return Err(CliError::file(
            &a.out,
            "--out: that folder holds the dataset's photos or masks; write the run to another \
             folder",
        ));
    }
    let absgrad = use_absgrad(a.absgrad, a.no_absgrad, kind);
    check_out_dir(&a.out)?;
    // from here on the folder is this run's: no other run writes into it
    // (an earlier one's model and checkpoints go only now, so that a run
    // refused above leaves them as they were)
    let lock = OutLock::take(&a.out)?;
    if !a.resume {
        if a.overwrite {
            clear_earlier_run(&a.out)?;
        } else {
            refuse_earlier_run(&a.out)?;
        }
    }
    let ckpt_dir = checkpoint_dir(&a.out);
    let colmap = data::is_capture(kind);
    if a.resume && !ckpt_dir.join("latest.json").is_file() {
        return Err(no_checkpoint(&ckpt_dir));
    }
    let recorded = if a.resume && a.iters.is_none() {
        resumed_length(&ckpt_dir)
    } else {
        None
    };
    let iters = run_iters(&a, colmap, recorded);
    // a resume with nothing left to train writes the outputs again from
    // the checkpoint: they, the report and the record are of the run that
    // trained it, so its settings are those of its own length (recorded,
    // else the checkpoint's iterations), not of a shorter --iters
    let done = a
        .resume
        .then(|| checkpoint_iteration(&ckpt_dir))
        .flatten()
        .filter(|&done| done >= iters);
    // (and the length the record keeps: unknown when a resumed run without
    // one fell back to the default or to the checkpoint's iterations, so
    // that the next --resume says so again)
    let (trained_length, known_length) = match done {
        Some(done) => {
            let recorded = resumed_length(&ckpt_dir).map(|r| r.max(done));
            (Some(recorded.unwrap_or(done)), recorded)
        }
        None => {
            let known = !a.resume || a.iters.is_some() || recorded.is_some();
            (None, known.then_some(iters))
        }
    };
    let defaults = data_defaults(
        budget,
        background,
        trained_length.unwrap_or(iters),
        absgrad,
        colmap,
    );
    let cfg = train_config(&a, defaults)?;
    let photos = PhotoSet::of(&ds);
    let mut t = if a.resume {
        check_resume_elsewhere(&a, &photos)?;
        let noted = ds.notes.len();
        let t = Trainer::resume(ds, cfg, &ckpt_dir).map_err(train_err)?;
        // what the resume found (per-photo transforms that carried over)
        for n in &t.data().notes[noted..] {
            eprintln!("note: {n}");
        }
        t
    } else {
        Trainer::new(ds, cfg).map_err(train_err)?
    };
    // what the checkpoints to come are fitted to (a resumed run's from here
    // on: its next checkpoint continues on this run's photos) and the
    // run's length: for --resume's warning and the length it trains to,
    // so a failure is a warning (the checkpoints' own writes report an
    // unwritable folder)
    if let Err(e) = RunRecord::of(&a, known_length, budget, photos).write(&ckpt_dir) {
        crate::output::warn(format!(
            "{e}; --resume will not know which dataset this run trained on, nor its \
             length and Gaussian budget"
        ));
    }
    let resumed_from = t.iteration();
    if a.resume && resumed_from >= iters {
        let length = match (a.iters, recorded) {
            (Some(n), _) => format!("--iters {n}"),
            (None, Some(_)) => format!("the run's length ({iters})"),
            (None, None) => format!("the default length ({iters})"),
        };
        // the model a run that ended here writes: a mid-run checkpoint's
        // parameter average, not its live parameters
        let from = if t.apply_average() {
            "its parameters' moving average"
        } else {
            "it"
        };
        crate::output::warn(format!(
            "the checkpoint has {resumed_from} iterations, {length} no more: nothing \
             is trained, the outputs are written again from {from} (give --iters N, counting \
             the checkpoint's iterations, to train further)"
        ));
    }
    // the views scored, borrowed from the trainer's dataset when scored
    // (a copy held through the run would cost the photos' memory twice)
    let on_train = t.data().test.is_empty();
    let eval_split = if on_train { "train" } else { "test" };
    fn scored_views(t: &Trainer, on_train: bool) -> &[splat::data::View] {
        if on_train {
            &t.data().train
        } else {
            &t.data().test
        }
    }
    let start = Instant::now();
    let mut last_ckpt = Instant::now();
    let mut saver = CheckpointWriter::new(&ckpt_dir);
    let mut last_eval = 0.0;
    let mut curve = Vec::new();
    let mut last_loss = f64::NAN;
    let mut eval_time = 0.0;
    let mut live = match a.view {
        true => Some(crate::view::live::LiveView::start(&t, a.port, background)?),
        false => None,
    };
    if let Some(v) = &live {
        eprintln!("viewer at {} (live while training)", v.url);
    }
    let armed = crate::interrupt::arm();
    // (a resumed run already at its length trains nothing: the warning
    // above says so)
    if t.iteration() < iters {
        eprintln!(
            "{}",
            crate::interrupt::hint(&format!("training to iteration {iters}"))
        );
    }
    // (after the lines above, which a bar drawn earlier would split)
    let bar = crate::output::progress_bar(iters as u64, a.json);
    bar.set_position(resumed_from as u64);
    while t.iteration() < iters && !crate::interrupt::requested() {
        let info = t
            .step()
            .map_err(|e| with_pending(&mut saver, train_err(e)))?;
        if let Some(v) = live.as_mut() {
            v.tick(&t, info.loss, info.psnr);
        }
        if std::env::var_os("CHAINRULE_TRAIN_TIMINGS").is_some() && t.iteration() % 10 == 0 {
            eprintln!("iteration {} timings {:?}", t.iteration(), info.timings);
        }
        last_loss = info.loss;
        let it = t.iteration();
        if !a.json && (it % 10 == 0 || it == iters) {
            let secs = start.elapsed().as_secs_f64() - eval_time;
            let rate = (it - resumed_from) as f64 / secs.max(1e-9);
            bar.set_message(format!(
                "loss {:.4}  PSNR {:.2} dB  {} Gaussians  {:.1} it/s",
                info.loss, info.psnr, info.gaussians, rate
            ));
        }
        bar.set_position(it as u64);
        let train_secs = start.elapsed().as_secs_f64() - eval_time;
        if a.eval_every > 0.0 && train_secs - last_eval >= a.eval_every {
            let e0 = Instant::now();
            let ev = t
                .evaluate(scored_views(&t, on_train))
                .map_err(|e| with_pending(&mut saver, train_err(e)))?;
            curve.push(CurvePoint {
                seconds: train_secs,
                iteration: it,
                psnr: mean_of_scored(ev.iter().map(|e| e.psnr)),
                psnr_half_fit: mean_of_scored(ev.iter().map(|e| e.half_fit.0)),
                gaussians: t.len(),
            });
            last_eval = train_secs;
            eval_time += e0.elapsed().as_secs_f64();
        }
        if a.checkpoint_every > 0.0 && last_ckpt.elapsed().as_secs_f64() >= a.checkpoint_every {
            // the files are made here and written while training goes on
            // (the previous write is waited for first, so that at most one
            // checkpoint is held in memory)
            saver.finish().map_err(train_err)?;
            saver.save(t.checkpoint()).map_err(train_err)?;
            last_ckpt = Instant::now();
        }
    }
    // (a signal during the last iteration asked for a stop all the same)
    let interrupted = crate::interrupt::requested();
    drop(armed);
    let seconds = start.elapsed().as_secs_f64() - eval_time;
    if let Some(v) = &live {
        v.finish(&t);
    }
    crate::output::finish_bar(&bar);
    // the last checkpoint is written while the scene is exported and the
    // test views are scored; the run ends only once it is on disk
    saver.finish().map_err(train_err)?;
    if t.iteration() > resumed_from || !ckpt_dir.join("latest.json").is_file() {
        saver.save(t.checkpoint()).map_err(train_err)?;
    }
    // the scene, the renders and the report, then the checkpoint's write
    // waited for: an error in either is reported, both if both fail
    let outputs = (|| -> Result<_, CliError> {
        let point_cloud = a.out.join("point_cloud.ply");
        let antialiased = t.config().antialiased;
        let settings = crate::settings::RenderSettings {
            downscale: a.downscale,
            invert_masks: a.invert_masks,
            exposure: t.config().exposure,
            ..crate::settings::RenderSettings::of_training(
                t.data(),
                &a.data,
                background,
                a.sh_degree as usize,
                antialiased,
            )
        };
        // the drawing mode and the framing in the file too, for viewers
        // and tools that never see settings.json (a PLY shared alone)
        let bytes = ply::to_ply_bytes_as(&t.gaussians::<f64>(), antialiased);
        let bytes = splat::formats::with_ply_comment(bytes, &settings.ply_comment())
            .map_err(|e| CliError::file(&point_cloud, e))?;
        write_atomic(&point_cloud, &bytes)?;
        if let Some(f) = a.export {
            let file = point_cloud.with_extension(splat::formats::SceneFormat::from(f).extension());
            crate::export::write_scene(
                &t.gaussians::<f32>(),
                f,
                &file,
                antialiased,
                Some(&settings),
            )?;
        }
        let ev = t.evaluate(scored_views(&t, on_train)).map_err(train_err)?;
        let renders = a.out.join("renders");
        crate::output::ensure_dir(&renders)?;
        settings.write(&a.out)?;
        let names = t.data().render_names(scored_views(&t, on_train));
        // listed as this run's before they are written: a run killed
        // between the renders and metrics.json leaves renders that the next
        // run (a --resume) must know as its own, not refuse as the user's
        // (a safeguard only: where checkpoints/ cannot be written, the
        // final checkpoint's error is the one reported)
        let listed: Vec<_> = names.iter().map(|n| renders.join(n)).collect();
        let list = serde_json::json!({ "renders": listed }).to_string();
        let _ = write_atomic(&pending_renders_file(&a.out), list.as_bytes());
        let mut per_view = Vec::new();
        for (e, name) in ev.iter().zip(&names) {
            let img = Image {
                width: e.width,
                height: e.height,
                data: e.rgb.clone(),
            };
            let p = renders.join(name);
            let bytes = img.to_png().map_err(|err| CliError::file(&p, err))?;
            write_atomic(&p, &bytes)?;
            per_view
                .push(serde_json::json!({"view": e.name, "render": absolute(&p), "psnr": e.psnr, "ssim": e.ssim, "masked": e.masked,
                "psnr_half_fit": e.half_fit.0, "ssim_half_fit": e.half_fit.1}));
        }
        // an earlier run's renders of other views would pass for this one's
        crate::output::remove_earlier_renders(
            &a.out.join("metrics.json"),
            "views",
            &renders,
            &names,
        );
        let report = TrainReport {
            psnr: mean_of_scored(ev.iter().map(|e| e.psnr)),
            ssim: mean_of_scored(ev.iter().map(|e| e.ssim)),
            gaussians: t.len(),
            max_gaussians: t.config().max_gaussians,
            iterations: t.iteration(),
            interrupted,
            seconds,
            resumed_from,
            final_loss: last_loss,
            lr_mean: t.config().lr_mean,
            lr_mean_final: t.config().lr_mean_final,
            lr_sh: t.config().lr_sh,
            lr_opacity: t.config().lr_opacity,
            lr_scale: t.config().lr_scale,
            lr_rotation: t.config().lr_rotation,
            opacity_reg: t.config().opacity_weight(),
            coarse_until: t.config().coarse_until.min(t.config().iters),
            coarse_factor: t.config().coarse_factor,
            ema_window: t.config().ema_window,
            ema_updates: t.average_updates(),
            eval_split,
            eval_views: ev.len(),
            scored_views: ev.iter().filter(|e| !e.psnr.is_nan()).count(),
            masked_views: ev.iter().filter(|e| e.masked && !e.psnr.is_nan()).count(),
            exposure: t.config().exposure,
            psnr_half_fit: mean_of_scored(ev.iter().map(|e| e.half_fit.0)),
            ssim_half_fit: mean_of_scored(ev.iter().map(|e| e.half_fit.1)),
            half_fit_views: ev.iter().filter(|e| !e.half_fit.0.is_nan()).count(),
            point_cloud: absolute(&point_cloud),
            dataset: crate::settings::stored_dataset_path(&a.data),
            notes: t.data().notes.clone(),
            curve,
            machine: crate::bench::machine(),
            simd: splat::simd_in_use(),
            viewer: live.as_ref().map(|v| v.url.clone()),
        };
        Ok((point_cloud, renders, report, per_view))
    })();
    let (point_cloud, renders, report, per_view) =
        match (outputs, saver.finish().map_err(train_err)) {
            (Ok(o), Ok(_)) => o,
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
            (Err(e), Err(c)) => return Err(e.also(checkpoint_failed("final", c))),
        };
    let metrics = a.out.join("metrics.json");
    let mut full =
        crate::output::with_warnings(serde_json::to_value(&report).expect("report serialises"));
    full["views"] = serde_json::Value::Array(per_view);
    write_atomic(&metrics, full.to_string().as_bytes())?;
    if a.json {
        println!("{}", crate::output::json_with_warnings(&report));
    } else {
        let ran = match resumed_from {
            0 => format!("{} iterations in {seconds:.1} s", report.iterations),
            from => format!(
                "iterations {from} to {} (resumed) in {seconds:.1} s",
                report.iterations
            ),
        };
        let unscored = match report.eval_views - report.scored_views {
            0 => String::new(),
            k => format!(" ({k} with every pixel masked, left out)"),
        };
        let scores = match report.scored_views {
            0 => "no score (every pixel of every view is masked)".to_string(),
            n => format!(
                "PSNR {:.2} dB, SSIM {:.4}{}",
                report.psnr,
                report.ssim,
                masked_note(report.masked_views, n)
            ),
        };
        println!(
            "trained {} Gaussians for {ran}: {} views{unscored} {scores}",
            report.gaussians, eval_split
        );
        if report.scored_views > 0 {
            let lead = match report.exposure {
                true => {
                    "with --exposure those scores take each photo as it is (the identity \
                         colour transform); fitted"
                }
                false => "with a colour transform fitted",
            };
            println!(
                "{}",
                half_fit_line(
                    lead,
                    (report.psnr_half_fit, report.ssim_half_fit),
                    report.half_fit_views,
                    report.scored_views
                )
            );
        }
        let exported = a.export.map_or(String::new(), |f| {
            let ext = splat::formats::SceneFormat::from(f).extension();
            format!(" ({})", point_cloud.with_extension(ext).display())
        });
        println!(
            "wrote {}{exported}, {}, {}, {} and {}",
            point_cloud.display(),
            renders.display(),
            metrics.display(),
            a.out.join(crate::settings::FILE).display(),
            a.out.join("checkpoints").display()
        );
    }
    if interrupted {
        eprintln!(
            "stopped at iteration {} of {iters}: the checkpoint, scene and scores are of the \
             model as it was then; `{}` continues the run",
            report.iterations,
            resume_command(std::env::args_os().skip(1))
        );
    }
    // the run is over: a --resume may start while the viewer serves on
    // (not after Ctrl-C, which asked for the end)
    drop(lock);
    if let (Some(v), false) = (&live, interrupted) {
        v.serve_until_interrupted();
    }
    Ok(())
}

/// The command that continues a run started with `args` (the command
/// line after the program's name): the same arguments, which the resume
/// needs (`--sh-degree`, `--antialiased` and `--exposure` must be the
/// run's; the rates and the strategy are the flags'), without
/// `--overwrite` and with `--resume`, quoted for a POSIX shell where needed.
fn resume_command(args: impl Iterator<Item = std::ffi::OsString>) -> String {
    let mut words: Vec<String> = args
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| a != "--overwrite")
        .collect();
    if !words.iter().any(|a| a == "--resume") {
        words.push("--resume".into());
    }
    let quote = |w: &String| {
        let plain = !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./:=,@+-%".contains(c));
        if plain {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    let words: Vec<String> = words.iter().map(quote).collect();
    format!("chainrule {}", words.join(" "))
}

/// The folder checkpoints of a run in `out` go to.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Where `train` lists the renders it is about to write into
/// `OUT/renders` (`{"renders": [paths]}`), before writing them.
fn pending_renders_file(out: &std::path::Path) -> PathBuf {
    checkpoint_dir(out).join("renders.json")
}

/// The settings `chainrule train` derives from the data when no flag says
/// otherwise, for a run of `iters`: the Gaussian budget (`max_gaussians`:
/// [`Budget::of`] the dataset on this machine, or a resumed run's), the
/// position rate's horizon, the densification window (half the run) and
/// its intervals, the background, and AbsGS's threshold when `absgrad`
/// (see [`use_absgrad`]), and the scale rate for COLMAP data (`colmap`).
/// `bench train --data` uses the same, so that it times the iterations
/// `train` runs.
pub(crate) fn data_defaults(
    max_gaussians: usize,
    background: [f64; 3],
    iters: u32,
    absgrad: bool,
    colmap: bool,
) -> TrainConfig {
    TrainConfig {
        max_gaussians,
        ..run_defaults(background, iters, absgrad, colmap)
    }
}

/// The run's length: `--iters`; else, with `--resume`, the run's length
/// as last given or defaulted (`recorded`: what its
/// `checkpoints/run.json` says), so that a run stopped and resumed keeps
/// its schedules and ends where it would have; else [`default_iters`].
fn run_iters(a: &TrainArgs, colmap: bool, recorded: Option<u32>) -> u32 {
    match (a.iters, a.resume, recorded) {
        (Some(n), ..) => n,
        (None, true, Some(n)) => n,
        (None, true, None) => {
            let n = default_iters(colmap);
            crate::output::warn(format!(
                "--resume: the run's length is not recorded (its checkpoints/run.json \
                 is missing, unreadable or from an older version): training to {n} \
                 iterations, the default; give --iters for another length"
            ));
            n
        }
        (None, false, _) => default_iters(colmap),
    }
}

/// The length (`--iters` in all) of the run whose checkpoints `ckpt_dir`
/// holds, as its `run.json` records it; `None` when the file is missing,
/// unreadable or older than the record.
pub(crate) fn resumed_length(ckpt_dir: &std::path::Path) -> Option<u32> {
    RunRecord::of_checkpoints(ckpt_dir)?.iters
}

/// The lock a run holds on its output folder while it writes there: an
/// exclusive advisory lock on `OUT/.train.lock` (the file stays; the lock
/// goes with the process, however it ends), so that a second run into the
/// same folder (even with `--resume` or `--overwrite`) is refused instead
/// of interleaving its checkpoints and model with the first's.
pub(crate) struct OutLock {
    // held for its lock; released when dropped
    _file: std::fs::File,
}

impl OutLock {
    /// The lock file's name in the output folder.
    pub(crate) const FILE: &'static str = ".train.lock";

    /// Before the dataset is read: an error when another run holds the
    /// folder's lock now (creating nothing; the lock is taken by
    /// [`OutLock::take`] once the folder is known to be fit for the run).
    pub(crate) fn refuse_if_busy(out: &std::path::Path) -> CliResult {
        let Ok(file) = std::fs::OpenOptions::new()
            .write(true)
            .open(out.join(Self::FILE))
        else {
            return Ok(());
        };
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => Err(Self::busy(out)),
            _ => Ok(()),
        }
    }

    fn busy(out: &std::path::Path) -> CliError {
        CliError::file(
            out,
            "--out: another `chainrule train` is writing into this folder now; wait for it to \
             finish (or stop it), or choose another folder",
        )
    }

    /// Creates `out` when missing and takes its lock; an error naming the
    /// folder when another process holds it. Where the file system cannot
    /// lock (some network shares), the run goes on with a note.
    pub(crate) fn take(out: &std::path::Path) -> CliResult<OutLock> {
        crate::output::ensure_dir(out)?;
        let path = out.join(Self::FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::file(&path, format!("cannot open the run's lock file: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Self::busy(out)),
            Err(std::fs::TryLockError::Error(e)) => eprintln!(
                "note: {}: cannot lock the output folder ({e}); a second run into it \
                 at once would not be noticed",
                path.display()
            ),
        }
        Ok(OutLock { _file: file })
    }
}

/// An error when `out` holds an earlier run (its model or its
/// checkpoints), saying how far it got and the two ways on: `--resume`
/// or `--overwrite`.
fn refuse_earlier_run(out: &std::path::Path) -> CliResult<()> {
    let ckpt_dir = checkpoint_dir(out);
    let model = out.join("point_cloud.ply");
    let resume = "continue it with --resume (and --iters N to train further), ";
    let (what, resume) = match checkpoint_iteration(&ckpt_dir) {
        Some(n) if model.is_file() => (
            format!("a trained model and checkpoints to iteration {n}"),
            resume,
        ),
        Some(n) => (
            format!("checkpoints to iteration {n} (an interrupted run)"),
            resume,
        ),
        // without a checkpoint there is nothing to resume from
        None if model.is_file() => ("a trained model (point_cloud.ply)".to_string(), ""),
        None if ckpt_dir.join("latest.json").exists() => ("checkpoints".to_string(), resume),
        None => return Ok(()),
    };
    Err(CliError::file(
        out,
        format!(
            "--out: the folder holds an earlier run ({what}); {resume}replace it with \
             --overwrite, or choose another folder"
        ),
    ))
}

/// `--overwrite`: the earlier run's model and checkpoints in `out` are
/// removed before the new run writes anything, so that a new run stopped
/// early leaves no old checkpoint for a `--resume` to continue under the
/// new run's record. Its other files (renders, metrics, settings) are
/// replaced as the new run writes them.
fn clear_earlier_run(out: &std::path::Path) -> CliResult<()> {
    let model = out.join("point_cloud.ply");
    if model.is_file() {
        std::fs::remove_file(&model)
            .map_err(|e| CliError::file(&model, format!("--overwrite: cannot remove: {e}")))?;
    }
    let ckpt_dir = checkpoint_dir(out);
    if ckpt_dir.is_dir() {
        std::fs::remove_dir_all(&ckpt_dir)
            .map_err(|e| CliError::file(&ckpt_dir, format!("--overwrite: cannot remove: {e}")))?;
    }
    Ok(())
}

/// The error of `--resume` when `ckpt_dir` has no `latest.json`: no
/// checkpoint was completed there. A `ckpt-N` folder without it is one
/// whose writing was cut off (a second Ctrl-C while the first saved, a
/// crash), and the error says so and how to go on.
pub(crate) fn no_checkpoint(ckpt_dir: &std::path::Path) -> CliError {
    let latest = ckpt_dir.join("latest.json");
    let partial = std::fs::read_dir(ckpt_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("ckpt-"))
        .max_by_key(|f| f[5..].parse::<u64>().unwrap_or(0));
    match partial {
        Some(f) => CliError::file(
            &latest,
            format!(
                "--resume: no checkpoint was completed: {} was still being written when the run \
                 ended (a second Ctrl-C while the first one saved, or a crash), so it cannot be \
                 resumed; train again without --resume",
                ckpt_dir.join(f).display()
            ),
        ),
        None => CliError::file(&latest, "--resume: no checkpoint to continue from"),
    }
}

/// The record of the latest checkpoint in `ckpt_dir` (its `latest.json`);
/// `None` when unreadable (resuming then names what is wrong).
pub(crate) fn latest_checkpoint(ckpt_dir: &std::path::Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(ckpt_dir.join("latest.json")).ok()?).ok()
}

/// The iteration of the latest checkpoint in `ckpt_dir`, when readable.
fn checkpoint_iteration(ckpt_dir: &std::path::Path) -> Option<u32> {
    u32::try_from(latest_checkpoint(ckpt_dir)?.get("iteration")?.as_u64()?).ok()
}

/// The Gaussian budget (`--max-gaussians`, given or defaulted) of the run
/// whose checkpoints `ckpt_dir` holds, as its `run.json` records it;
/// `None` when the file is missing, unreadable or older than the record.
/// A resumed run keeps it: the default depends on the machine's memory,
/// and a run resumed elsewhere would otherwise change its budget midway.
pub(crate) fn resumed_budget(ckpt_dir: &std::path::Path) -> Option<usize> {
    RunRecord::of_checkpoints(ckpt_dir)?.max_gaussians
}

/// `train`'s run length without `--iters`:
/// [`splat::train::config::CAPTURE_ITERS`] on COLMAP data (`colmap`), the
/// library's 4,000 on the rest.
pub(crate) fn default_iters(colmap: bool) -> u32 {
    if colmap {
        splat::train::config::CAPTURE_ITERS
    } else {
        TrainConfig::default().iters
    }
}

/// [`data_defaults`] but the Gaussian budget (the library's): the
/// settings that depend on the run's length and the kind of data only,
/// among them the CLI's position rates ([`splat::train::config::LR_MEAN`],
/// higher for runs shorter than 4,000 iterations:
/// [`splat::train::config::lr_mean_scale`]), the scale rate on COLMAP
/// data (`colmap`: [`splat::train::config::LR_SCALE`]), the retiring
/// rule, and for short runs the compressed SH schedule and retiring
/// ([`splat::train::config::compress_for_run`]).
fn run_defaults(background: [f64; 3], iters: u32, absgrad: bool, colmap: bool) -> TrainConfig {
    use splat::train::config::{
        compress_for_run, lr_mean_scale, CAPTURE_COARSE_FRACTION, CAPTURE_DENSIFY_EVERY,
        CAPTURE_RETIRE_PER_ROUND, CAPTURE_SCHEDULE_ITERS, CAPTURE_SH_INTERVAL, EMA_WINDOW, LR_MEAN,
        LR_MEAN_FINAL, LR_MEAN_ITERS, LR_SCALE, OPACITY_REG, PAPER_DENSIFY, RETIRE_PER_ROUND,
    };
    // a scale of exactly 1 from 4,000 iterations on: the same bits
    let scale = lr_mean_scale(iters);
    // runs of `CAPTURE_SCHEDULE_ITERS` or more on captures: the opacity
    // term, a coarse first quarter, density rounds twice as often (the
    // opacity resets stay where `with_densify_until` put them), and more
    // of the faintest splats moved in each
    let capture_schedule = colmap && iters >= CAPTURE_SCHEDULE_ITERS;
    let cfg = TrainConfig {
        iters,
        lr_mean: LR_MEAN * scale,
        lr_mean_final: LR_MEAN_FINAL * scale,
        lr_mean_steps: TrainConfig::position_lr_steps(iters),
        lr_scale: if colmap {
            LR_SCALE
        } else {
            TrainConfig::default().lr_scale
        },
        retire_per_round: RETIRE_PER_ROUND,
        // (a 2,000-iteration run with a 30,000 budget lost 0.2 dB with it)
        opacity_reg: if capture_schedule { OPACITY_REG } else { 0.0 },
        ema_window: EMA_WINDOW,
        background,
        absgrad,
        densify_grad: if absgrad {
            splat::train::config::ABSGRAD_THRESHOLD
        } else {
            TrainConfig::default().densify_grad
        },
        ..TrainConfig::default()
    }
    .with_densify_until(iters / 2);
    let cfg = compress_for_run(cfg, iters);
    let densify_every = if capture_schedule {
        // the paper's interval scaled to the window, floored at 50
        // instead of 100 (the paper's own schedule is unchanged)
        let [_, paper_until, paper_every, _] = PAPER_DENSIFY;
        let scaled = f64::from(paper_every) * f64::from(cfg.densify_until) / f64::from(paper_until);
        (scaled.round() as u32).max(CAPTURE_DENSIFY_EVERY)
    } else {
        cfg.densify_every
    };
    let retire_per_round = if capture_schedule {
        // a 4,000-iteration run's share a round, scaled down by how much
        // longer a window is in round intervals (so the share moved over
        // the window stays about that run's), never below the plain default
        let rounds = |until: u32, every: u32| f64::from(until) / f64::from(every);
        let fewer = rounds(LR_MEAN_ITERS / 2, CAPTURE_DENSIFY_EVERY)
            / rounds(cfg.densify_until, densify_every);
        (CAPTURE_RETIRE_PER_ROUND * fewer.min(1.0)).max(cfg.retire_per_round)
    } else {
        cfg.retire_per_round
    };
    TrainConfig {
        retire_per_round,
        sh_interval: if colmap {
            cfg.sh_interval.min(CAPTURE_SH_INTERVAL)
        } else {
            cfg.sh_interval
        },
        densify_every,
        coarse_until: if capture_schedule {
            (iters as f64 * CAPTURE_COARSE_FRACTION).round() as u32
        } else {
            0
        },
        ..cfg
    }
}

/// The training settings of `a` over `defaults` (what
/// [`data_defaults`] derives from the dataset): the flags given replace
/// the defaults, the densification window follows `--densify-until`, and
/// the position rates `--lr-mean` and `--lr-mean-final` (a hundredth of
/// `--lr-mean` unless given) replace the defaults' rates.
fn train_config(a: &TrainArgs, defaults: TrainConfig) -> CliResult<TrainConfig> {
    let mut cfg = TrainConfig {
        seed: a.seed,
        sh_degree: a.sh_degree as usize,
        init_points: a.init_points as usize,
        init_opacity: a.init_opacity,
        init_scale: a.init_scale,
        max_gaussians: match a.max_gaussians {
            Some(m) => usize::try_from(m).unwrap_or(usize::MAX),
            None => defaults.max_gaussians,
        },
        strategy: match a.strategy {
            StrategyArg::Default => Strategy::Default,
            StrategyArg::Mcmc => Strategy::Mcmc,
        },
        random_background: a.random_background,
        visible_adam: a.visible_adam,
        exposure: a.exposure,
        antialiased: a.antialiased,
        retire_per_round: a.retire_per_round.unwrap_or(defaults.retire_per_round),
        opacity_reg: a.opacity_reg.unwrap_or(defaults.opacity_reg),
        ema_window: a.ema_window.unwrap_or(defaults.ema_window),
        ..defaults
    }
    .with_densify_until(a.densify_until.unwrap_or(defaults.iters / 2));
    if a.densify_until.is_none() {
        // the defaults' window: their interval too (on captures, more
        // rounds than `with_densify_until`'s floor)
        cfg.densify_every = defaults.densify_every;
    }
    cfg.densify_from = a.densify_from.unwrap_or(cfg.densify_from);
    cfg.densify_every = a.densify_every.unwrap_or(cfg.densify_every);
    cfg.opacity_reset_every = a.opacity_reset_every.unwrap_or(cfg.opacity_reset_every);
    cfg.coarse_until = a.coarse_until.unwrap_or(cfg.coarse_until);
    cfg.coarse_factor = a.coarse_factor;
    // (made again here for callers that build a configuration without
    // running: the CLI's tests)
    check_values(a)?;
    // the final rate keeps the defaults' ratio to the initial one (left
    // as it is without --lr-mean, so the default run's rates are the
    // defaults' bits)
    if let Some(lr) = a.lr_mean {
        cfg.lr_mean_final *= lr / cfg.lr_mean;
        cfg.lr_mean = lr;
    }
    cfg.lr_mean_final = a.lr_mean_final.unwrap_or(cfg.lr_mean_final);
    cfg.lr_sh = a.lr_sh.unwrap_or(cfg.lr_sh);
    cfg.lr_opacity = a.lr_opacity.unwrap_or(cfg.lr_opacity);
    cfg.lr_scale = a.lr_scale.unwrap_or(cfg.lr_scale);
    cfg.lr_rotation = a.lr_rotation.unwrap_or(cfg.lr_rotation);
    Ok(cfg)
}

/// Whether to densify by AbsGS's statistic: as asked (`--absgrad`,
/// `--no-absgrad`), else on for captures (COLMAP or nerfstudio data: `kind` as from
/// [`data::detect`]) and off for the rest.
pub(crate) fn use_absgrad(absgrad: bool, no_absgrad: bool, kind: Option<&str>) -> bool {
    absgrad || (!no_absgrad && splat::data::is_capture(kind))
}

/// What a run's checkpoints are fitted to, the run's length and its
/// Gaussian budget, kept beside them in `OUT/checkpoints/run.json` from
/// the run's start (a resumed run's too), so that `--resume` after a run
/// stopped before its end (and so before `settings.json`) can tell
/// whether it continues on the same photos, and trains to the run's
/// length with the run's budget.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunRecord {
    /// The dataset, as `settings.json` keeps it.
    dataset: std::path::PathBuf,
    /// `--downscale`, if given.
    downscale: Option<u32>,
    /// The run's length (`--iters` in all, given or the default): what
    /// `--resume` without `--iters` trains to. Absent in the records of
    /// older versions, and kept absent by a resume of such a run without
    /// `--iters` (which trains to the default).
    #[serde(default)]
    iters: Option<u32>,
    /// The run's Gaussian budget (`--max-gaussians`, given or the
    /// default): what `--resume` without `--max-gaussians` keeps. Absent
    /// in the records of older versions.
    #[serde(default)]
    max_gaussians: Option<usize>,
    /// The dataset's photos (training and held-out views). Absent in the
    /// records of older versions.
    #[serde(default)]
    photos: Option<PhotoSet>,
}

/// Which photos a dataset holds, to tell a dataset that moved from
/// another one: their number, a digest (FNV-1a, 64 bits, in hex) of their
/// sorted names and each one's pose (two captures from one camera may
/// share names; a capture reconstructed again has other poses, and a
/// model fitted in the old one's frame does not fit them), and the first
/// name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct PhotoSet {
    count: usize,
    digest: String,
    /// The digest of the names alone, to say when only the poses differ.
    #[serde(default)]
    names: String,
    first: String,
}

impl PhotoSet {
    fn of(ds: &splat::data::Dataset) -> PhotoSet {
        fn bits(v: &splat::data::View) -> impl Iterator<Item = u64> + '_ {
            v.world_to_camera.iter().flatten().map(|x| x.to_bits())
        }
        // (every photo once: one a nerfstudio split names in both halves
        // counts once, as before it was trained on too)
        let mut views: Vec<&splat::data::View> = ds.views().collect();
        // (a total order, duplicate names included)
        views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| bits(a).cmp(bits(b))));
        let fnv = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        let (mut h, mut names) = (0xcbf2_9ce4_8422_2325_u64, 0xcbf2_9ce4_8422_2325_u64);
        for v in &views {
            // each name and a separator, so that ["ab"] and ["a", "b"]
            // differ, then the pose's bits
            for b in v.name.bytes().chain([0u8]) {
                h = fnv(h, b);
                names = fnv(names, b);
            }
            for b in bits(v).flat_map(u64::to_le_bytes) {
                h = fnv(h, b);
            }
        }
        PhotoSet {
            count: views.len(),
            digest: format!("{h:016x}"),
            names: format!("{names:016x}"),
            first: views.first().map_or(String::new(), |v| v.name.clone()),
        }
    }
}

impl RunRecord {
    const FILE: &'static str = "run.json";

    fn of(a: &TrainArgs, iters: Option<u32>, max_gaussians: usize, photos: PhotoSet) -> RunRecord {
        RunRecord {
            dataset: crate::settings::stored_dataset_path(&a.data),
            downscale: a.downscale,
            iters,
            max_gaussians: Some(max_gaussians),
            photos: Some(photos),
        }
    }

    /// The record in `ckpt_dir`, if there is one that can be read.
    fn of_checkpoints(ckpt_dir: &std::path::Path) -> Option<RunRecord> {
        let text = std::fs::read(ckpt_dir.join(Self::FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write(&self, ckpt_dir: &std::path::Path) -> CliResult {
        crate::output::ensure_dir(ckpt_dir)?;
        let file = ckpt_dir.join(Self::FILE);
        let text = serde_json::to_vec_pretty(self).map_err(|e| CliError::file(&file, e))?;
        write_atomic(&file, &text)
    }

    /// The record of the run whose checkpoints `ckpt_dir` holds, else
    /// what `settings.json` says of the last run that ended in `out`.
    /// A record that is there but cannot be read is a warning (the check
    /// it serves then falls back to `settings.json`).
    fn read(out: &std::path::Path, ckpt_dir: &std::path::Path) -> Option<RunRecord> {
        let file = ckpt_dir.join(Self::FILE);
        let broken = match std::fs::read(&file) {
            Ok(t) => match serde_json::from_slice(&t) {
                Ok(r) => return Some(r),
                Err(e) => Some(e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = broken {
            crate::output::warn(format!(
                "{}: cannot be read ({why}); --resume's check of the dataset and \
                 --downscale uses settings.json instead",
                file.display()
            ));
        }
        use crate::settings::{RenderSettings, FILE};
        let s = RenderSettings::read(&out.join(FILE)).ok()?;
        Some(RunRecord {
            dataset: s.dataset?,
            downscale: s.downscale,
            iters: None,
            max_gaussians: None,
            photos: None,
        })
    }
}

/// Refuses `--resume` on a dataset whose photos are not those of the run
/// whose checkpoints OUT holds (as its `checkpoints/run.json` records
/// them), unless --resume-other-data asks for it: the run's model, renders
/// and scores would be replaced by a model fitted to other photos, so one
/// mistyped folder would lose a finished run. A dataset that only moved
/// has the same photos and is taken. Without that record (an older
/// version's run, or only `settings.json`), another dataset's path is a
/// warning, as before; so is another `--downscale`.
fn check_resume_elsewhere(a: &TrainArgs, photos: &PhotoSet) -> CliResult {
    use crate::settings::loaded_from;
    let Some(s) = RunRecord::read(&a.out, &checkpoint_dir(&a.out)) else {
        return Ok(());
    };
    match &s.photos {
        Some(run) if run != photos && !a.resume_other_data => {
            let other = if run.names == photos.names {
                format!(
                    "the same {} photos posed differently (a capture reconstructed again? a \
                     model fitted in the old poses' frame does not fit the new ones)",
                    photos.count
                )
            } else {
                format!(
                    "other photos ({}, the first {})",
                    photos.count, photos.first
                )
            };
            return Err(CliError::usage(format!(
                "--resume: {} holds a run on {} ({} photos, the first {}), and {} holds \
                 {other}: continuing would replace that run's model with one fitted to them. \
                 Give the run's dataset, or --out another folder; --resume-other-data \
                 continues on these photos all the same",
                a.out.display(),
                s.dataset.display(),
                run.count,
                run.first,
                a.data.display(),
            )));
        }
        Some(run) if run != photos => eprintln!(
            "note: --resume-other-data: the run on {} ({} photos) continues on {} ({} photos)",
            s.dataset.display(),
            run.count,
            a.data.display(),
            photos.count
        ),
        _ => {}
    }
    let elsewhere = match (loaded_from(&s.dataset), loaded_from(&a.data)) {
        (Some(x), Some(y)) if x != y && s.photos.is_none() => Some((x, y)),
        _ => None,
    };
    if let Some((x, y)) = elsewhere {
        crate::output::warn(format!(
            "--resume continues a run on {}, here on {}: its Gaussians were fitted \
             to the other dataset's photos",
            x.display(),
            y.display()
        ));
    }
    // no --downscale and --downscale 1 load the same pixels unless a photo
    // is wider than 1,600
    let differs = match (s.downscale, a.downscale) {
        (Some(x), Some(y)) => x != y,
        (None, Some(d)) | (Some(d), None) => d > 1,
        (None, None) => false,
    };
    if differs {
        let said = |d: Option<u32>| d.map_or("none".to_string(), |d| d.to_string());
        crate::output::warn(format!(
            "--resume continues a run trained at --downscale {}, here {}",
            said(s.downscale),
            said(a.downscale)
        ));
    }
    Ok(())
}

/// The note (without its `note: `) for a `data` that holds several COLMAP
/// models (the mapper's `sparse/0`, `sparse/1`, … when it could not join
/// every photo into one, or one in `sparse/` itself beside numbered
/// ones): which it holds, with their photo counts, which one is `doing`
/// (training, scoring: the one with the most photos), and how to choose
/// another. `None` for a dataset of one model (or none).
pub(crate) fn models_note(data: &std::path::Path, doing: &str) -> Option<String> {
    let models = splat::data::colmap::models(data);
    if models.len() < 2 {
        return None;
    }
    let chosen = splat::data::colmap::model_folder(data);
    let name = |p: &std::path::Path| p.strip_prefix(data).unwrap_or(p).display().to_string();
    let list: Vec<String> = models
        .iter()
        .map(|(p, n)| format!("{} {n} photos", name(p)))
        .collect();
    let other = models.iter().find(|(p, _)| *p != chosen).map(|(p, _)| p);
    Some(format!(
        "{} holds {} COLMAP models ({}); {doing} on {}, the one with the most photos \
         (name another to use it instead, as in {})",
        data.display(),
        models.len(),
        list.join(", "),
        name(&chosen),
        other.unwrap_or(&chosen).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::{resume_command, run_defaults, run_iters, train_config, use_absgrad, TrainArgs};
    use clap::Parser;
    use splat::train::config::{
        lr_mean_scale, CAPTURE_ITERS, CAPTURE_RETIRE_PER_ROUND, RETIRE_PER_ROUND,
    };
    use splat::train::TrainConfig;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    /// The settings `train` would run with these flags, over the CLI's
    /// defaults for a run of `iters` iterations.
    fn config_at(iters: u32, flags: &[&str]) -> Result<TrainConfig, crate::error::CliError> {
        let n = iters.to_string();
        let args = ["train", "data", "--out", "o", "--iters", &n];
        let a = Cli::try_parse_from(args.iter().chain(flags))
            .expect("flags parse")
            .train;
        train_config(&a, run_defaults([0.0; 3], iters, true, true))
    }

    /// [`config_at`] for a 4,000-iteration run (the default length on
    /// NeRF-synthetic data).
    fn config(flags: &[&str]) -> Result<TrainConfig, crate::error::CliError> {
        config_at(4000, flags)
    }

    /// `--lr-mean` and `--lr-mean-final` reach the position rate's
    /// schedule; without them the rates are the CLI's defaults, twice the
    /// original 3DGS's.
    #[test]
    fn position_rate_flags_reach_the_schedule() {
        let base = config(&[]).unwrap();
        assert_eq!(base.lr_mean, 3.2e-4);
        assert_eq!(base.lr_mean_final, 3.2e-6);
        assert_eq!(base.lr_mean_steps, 8000);
        assert!((base.position_lr(0) - 3.2e-4).abs() < 1e-18);
        assert!((base.position_lr(8000) - 3.2e-6).abs() < 1e-18);

        // the original's rate: the final rate follows --lr-mean at the
        // same hundredfold ratio, and the library's defaults are its bits
        let orig = config(&["--lr-mean", "1.6e-4"]).unwrap();
        let d = TrainConfig::default();
        assert_eq!(orig.lr_mean.to_bits(), d.lr_mean.to_bits());
        assert_eq!(orig.lr_mean_final.to_bits(), d.lr_mean_final.to_bits());
        for it in [0, 1000, 4000, 8000, 9000] {
            let r = base.position_lr(it) / orig.position_lr(it);
            assert!((r - 2.0).abs() < 1e-12, "iteration {it}: ratio {r}");
        }

        // a final rate of its own: halfway through the decay, the
        // geometric mean of the two
        let own = config(&["--lr-mean", "1e-4", "--lr-mean-final", "1e-5"]).unwrap();
        assert_eq!(own.lr_mean_final, 1e-5);
        assert!((own.position_lr(4000) - 1e-4 * 0.1f64.sqrt()).abs() < 1e-16);
        assert!((own.position_lr(8000) - 1e-5).abs() < 1e-18);

        let bad: [(&[&str], &str); 9] = [
            (&["--lr-mean", "0"], "--lr-mean:"),
            (&["--lr-mean=-1e-4"], "--lr-mean:"),
            (&["--lr-mean-final", "inf"], "--lr-mean-final:"),
            (&["--init-opacity", "1"], "--init-opacity:"),
            (&["--init-opacity", "0"], "--init-opacity:"),
            (&["--init-opacity", "nan"], "--init-opacity:"),
            (&["--init-scale", "0"], "--init-scale:"),
            (&["--init-scale", "1e300"], "--init-scale:"),
            (&["--init-scale", "inf"], "--init-scale:"),
        ];
        for ok in ["1e-6", "1000"] {
            config(&["--init-scale", ok]).expect("in range");
        }
        for (flags, name) in bad {
            let e = config(flags).expect_err("refused");
            assert!(e.to_string().starts_with(name), "{e}");
        }
    }

    /// `--lr-sh`, `--lr-opacity`, `--lr-scale` and `--lr-rotation` replace
    /// their group's default rate, at any length (a short run's compressed
    /// SH rate too), and reach the optimiser's groups; a rate that is not
    /// a positive number is refused by its flag.
    #[test]
    fn group_rate_flags_replace_the_defaults() {
        let flags = [
            "--lr-sh",
            "0.004",
            "--lr-opacity",
            "0.025",
            "--lr-scale",
            "0.007",
            "--lr-rotation",
            "0.002",
        ];
        for iters in [1000, 3400, 8000] {
            let base = config_at(iters, &[]).unwrap();
            let own = config_at(iters, &flags).unwrap();
            assert_eq!(
                (own.lr_sh, own.lr_opacity, own.lr_scale, own.lr_rotation),
                (0.004, 0.025, 0.007, 0.002),
                "{iters}"
            );
            // nothing else moves
            let same = TrainConfig {
                lr_sh: base.lr_sh,
                lr_opacity: base.lr_opacity,
                lr_scale: base.lr_scale,
                lr_rotation: base.lr_rotation,
                ..own.clone()
            };
            assert_eq!(same, base, "{iters}");
        }
        let d = TrainConfig::default();
        let base = config(&[]).unwrap();
        assert_eq!(
            (base.lr_opacity, base.lr_rotation),
            (d.lr_opacity, d.lr_rotation)
        );
        for flag in ["--lr-sh", "--lr-opacity", "--lr-scale", "--lr-rotation"] {
            for v in ["0", "-1e-3", "nan", "inf"] {
                let e = config(&[&format!("{flag}={v}")]).expect_err("refused");
                assert!(e.to_string().starts_with(&format!("{flag}:")), "{e}");
            }
        }
        // refused before the dataset is read: the folder does not exist,
        // and the error is the flag's
        for flags in [
            &["--lr-mean=0"][..],
            &["--lr-rotation=-1"],
            &["--opacity-reg=-1"],
            &["--checkpoint-every=-5"],
            &["--retire-per-round=1.5"],
            &["--strategy", "mcmc", "--opacity-reg=0.5"],
        ] {
            let args = ["train", "/no/such/dataset/folder", "--out", "o"];
            let a = Cli::try_parse_from(args.iter().chain(flags))
                .expect("flags parse")
                .train;
            let e = super::run(a).expect_err("refused");
            let name = flags.last().unwrap().split('=').next().unwrap();
            assert!(e.to_string().starts_with(&format!("{name}:")), "{e}");
        }
    }

    /// On COLMAP data the scale rate is twice the original's at every
    /// length and the SH bands come at least every 500 iterations; a
    /// short run gets its SH bands sooner, a higher SH rate and
    /// more retiring per round, by the position rate's factor; a given
    /// --retire-per-round wins; from 4,000 iterations on the library's SH
    /// settings are kept to the bit.
    #[test]
    fn short_runs_compress_the_sh_schedule_and_the_retiring() {
        let d = TrainConfig::default();
        for (iters, s, interval) in [
            (30_000, 1.0, 500),
            (4000, 1.0, 500),
            (2000, 2.0, 500),
            (1000, 4.0, 250),
            (10, 4.0, 250),
        ] {
            let c = config_at(iters, &[]).unwrap();
            assert_eq!(c.lr_scale, 2.0 * d.lr_scale, "{iters}");
            assert_eq!(c.sh_interval, interval, "{iters}");
            assert_eq!(c.lr_sh, d.lr_sh * s, "{iters}");
            // long runs on captures retire more a round (below)
            if iters < 4000 {
                assert_eq!(c.retire_per_round, 0.04 * s, "{iters}");
            }
        }
        assert_eq!(
            config_at(4000, &[]).unwrap().lr_sh.to_bits(),
            d.lr_sh.to_bits()
        );
        // other data keep the original's scale rate and, from 4,000
        // iterations on, its SH interval
        let other = super::run_defaults([1.0; 3], 2000, false, false);
        assert_eq!((other.lr_scale, other.sh_interval), (d.lr_scale, 500));
        let other = super::run_defaults([1.0; 3], 4000, false, false);
        assert_eq!(other.sh_interval, 1000);
        let given = config_at(2000, &["--retire-per-round", "0"]).unwrap();
        assert_eq!(given.retire_per_round, 0.0);
        assert_eq!(given.sh_interval, 500);
    }

    /// Runs shorter than 4,000 iterations start at a proportionally
    /// higher position rate (at most four times), both rates scaled so
    /// the decay keeps its hundredfold ratio; the flags still win, and a
    /// given `--lr-mean` takes the final rate at that ratio as before.
    #[test]
    fn short_runs_default_to_a_higher_position_rate() {
        for (iters, scale) in [
            (30_000, 1.0),
            (4000, 1.0),
            (3000, 4.0 / 3.0),
            (2000, 2.0),
            (1000, 4.0),
            (300, 4.0),
            (1, 4.0),
        ] {
            let c = config_at(iters, &[]).unwrap();
            let (lr, fin) = (c.lr_mean / 3.2e-4, c.lr_mean_final / 3.2e-6);
            assert!((lr - scale).abs() < 1e-12, "{iters}: {lr}");
            assert!((fin - scale).abs() < 1e-12, "{iters}: {fin}");
            assert_eq!(c.lr_mean_steps, (2 * iters).min(30_000));
        }
        // two thousand iterations: twice the rates, from the given
        // --lr-mean the original's rates to the bit (the ratios are powers
        // of two)
        let short = config_at(2000, &[]).unwrap();
        assert_eq!(short.lr_mean, 6.4e-4);
        assert_eq!(short.lr_mean_final, 6.4e-6);
        let orig = config_at(2000, &["--lr-mean", "1.6e-4"]).unwrap();
        let d = TrainConfig::default();
        assert_eq!(orig.lr_mean.to_bits(), d.lr_mean.to_bits());
        assert_eq!(orig.lr_mean_final.to_bits(), d.lr_mean_final.to_bits());
        let own = config_at(1000, &["--lr-mean-final", "1e-5"]).unwrap();
        assert_eq!((own.lr_mean, own.lr_mean_final), (1.28e-3, 1e-5));
    }

    /// `run.json`'s length and budget: read back as written; absent from
    /// an older version's record (no `iters`, no `max_gaussians`), a
    /// broken file or none at all.
    #[test]
    fn the_recorded_length_is_read_back() {
        let dir = std::env::temp_dir().join(format!("cr-run-length-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("run.json");
        assert_eq!(super::resumed_length(&dir), None);
        std::fs::write(&file, r#"{"dataset": "d", "downscale": null}"#).unwrap();
        assert_eq!(super::resumed_length(&dir), None);
        std::fs::write(
            &file,
            r#"{"dataset": "d", "downscale": null, "iters": 3456}"#,
        )
        .unwrap();
        assert_eq!(super::resumed_length(&dir), Some(3456));
        assert_eq!(super::resumed_budget(&dir), None);
        std::fs::write(
            &file,
            r#"{"dataset": "d", "downscale": 2, "iters": 3456, "max_gaussians": 12345}"#,
        )
        .unwrap();
        assert_eq!(super::resumed_length(&dir), Some(3456));
        assert_eq!(super::resumed_budget(&dir), Some(12345));
        std::fs::write(&file, "{ not json").unwrap();
        assert_eq!(super::resumed_length(&dir), None);
        assert_eq!(super::resumed_budget(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Without `--iters`, COLMAP data train for `CAPTURE_ITERS`, which has
    /// the capture schedule, and the rest for the library's 4,000; a given
    /// `--iters` wins on both.
    #[test]
    fn the_run_length_defaults_to_the_data() {
        let parse = |flags: &[&str]| {
            let args = ["train", "data", "--out", "o"];
            Cli::try_parse_from(args.iter().chain(flags))
                .expect("flags parse")
                .train
        };
        let plain = parse(&[]);
        assert_eq!(run_iters(&plain, true, None), CAPTURE_ITERS);
        assert_eq!(run_iters(&plain, false, None), 4000);
        // a record decides nothing without --resume
        assert_eq!(run_iters(&plain, true, Some(777)), CAPTURE_ITERS);
        let given = parse(&["--iters", "1234"]);
        assert_eq!(
            (
                run_iters(&given, true, None),
                run_iters(&given, false, None)
            ),
            (1234, 1234)
        );
        // --resume: the run's recorded length, unless --iters is given;
        // the default when there is no record
        let resumed = parse(&["--resume"]);
        assert_eq!(run_iters(&resumed, true, Some(4000)), 4000);
        assert_eq!(run_iters(&resumed, false, Some(777)), 777);
        assert_eq!(run_iters(&resumed, true, None), CAPTURE_ITERS);
        let both = parse(&["--resume", "--iters", "1234"]);
        assert_eq!(run_iters(&both, true, Some(4000)), 1234);
        let c = train_config(&plain, run_defaults([0.0; 3], CAPTURE_ITERS, true, true)).unwrap();
        assert_eq!(c.iters, CAPTURE_ITERS);
        assert_eq!(c.densify_until, CAPTURE_ITERS / 2);
        assert_eq!(c.coarse_until, (CAPTURE_ITERS + 2) / 4);
        assert_eq!((c.densify_every, c.opacity_reg), (50, 0.01));
        assert_eq!(c.retire_per_round, CAPTURE_RETIRE_PER_ROUND);
    }

    #[test]
    fn absgrad_defaults_to_colmap_data_and_the_flags_override() {
        assert!(use_absgrad(false, false, Some("colmap")));
        assert!(!use_absgrad(false, false, Some("nerf-synthetic")));
        assert!(!use_absgrad(false, false, None));
        assert!(!use_absgrad(false, true, Some("colmap")));
        assert!(use_absgrad(true, false, Some("nerf-synthetic")));
    }

    /// Runs of 3,000 iterations or more on COLMAP data train their first
    /// quarter at half resolution and densify every 50 iterations,
    /// retiring more splats a round, with the opacity resets where they
    /// were (none in a 4,000-iteration run); shorter runs, NeRF-synthetic
    /// data and a window of the user's keep the plain schedule; the flags
    /// override.
    #[test]
    fn captures_default_to_a_coarse_quarter_and_rounds_every_50() {
        let c = config(&[]).unwrap();
        assert_eq!((c.coarse_until, c.coarse_factor), (1000, 2));
        assert_eq!((c.densify_every, c.densify_until), (50, 2000));
        assert_eq!(c.opacity_reset_every, 3000);
        assert_eq!(c.retire_per_round, CAPTURE_RETIRE_PER_ROUND);
        // longer windows: the same share over the window (twice the
        // rounds at 8,000 iterations), never below the plain 4%
        let eight = config_at(8000, &[]).unwrap();
        assert_eq!(eight.retire_per_round, CAPTURE_RETIRE_PER_ROUND / 2.0);
        let paper = config_at(30_000, &[]).unwrap();
        assert_eq!(paper.retire_per_round, RETIRE_PER_ROUND);
        let short = config_at(2999, &[]).unwrap();
        assert_eq!(
            short.retire_per_round,
            RETIRE_PER_ROUND * lr_mean_scale(2999)
        );
        // shorter windows keep the 4,000-iteration run's share a round
        for iters in [3000, CAPTURE_ITERS, 3999] {
            let c = config_at(iters, &[]).unwrap();
            assert_eq!(c.retire_per_round, CAPTURE_RETIRE_PER_ROUND, "{iters}");
        }
        let nerf = run_defaults([1.0; 3], 4000, false, false);
        assert_eq!(nerf.retire_per_round, RETIRE_PER_ROUND);
        let given = config(&["--retire-per-round", "0.02"]).unwrap();
        assert_eq!(given.retire_per_round, 0.02);
        // the interval scales with the window as before, floored at 50
        let eight = config_at(8000, &[]).unwrap();
        assert_eq!((eight.coarse_until, eight.densify_every), (2000, 50));
        let twenty = config_at(20_000, &[]).unwrap();
        assert_eq!((twenty.coarse_until, twenty.densify_every), (5000, 67));
        let paper = config_at(30_000, &[]).unwrap();
        assert_eq!((paper.coarse_until, paper.densify_every), (7500, 100));
        let short = config_at(2999, &[]).unwrap();
        assert_eq!((short.coarse_until, short.densify_every), (0, 100));
        // 3,500 and 3,000 iterations (screened) have the whole schedule
        let capture = config_at(3500, &[]).unwrap();
        assert_eq!((capture.coarse_until, capture.densify_every), (875, 50));
        assert_eq!((capture.densify_until, capture.opacity_reg), (1750, 0.01));
        let three = config_at(3000, &[]).unwrap();
        assert_eq!((three.coarse_until, three.densify_every), (750, 50));
        let nerf = run_defaults([1.0; 3], 4000, false, false);
        assert_eq!((nerf.coarse_until, nerf.densify_every), (0, 100));
        let own = config(&["--densify-until", "1500"]).unwrap();
        assert_eq!((own.coarse_until, own.densify_every), (1000, 100));
        let flags = ["--coarse-until", "0", "--densify-every", "70"];
        let off = config(&flags).unwrap();
        assert_eq!((off.coarse_until, off.densify_every), (0, 70));
        let f3 = config(&["--coarse-until", "800", "--coarse-factor", "3"]).unwrap();
        assert_eq!((f3.coarse_until, f3.coarse_factor), (800, 3));
    }

    /// The final model averages the parameters over 100 iterations on
    /// any data and run length; `--ema-window` sets another window or 0.
    #[test]
    fn the_resume_command_keeps_the_flags_and_quotes_what_a_shell_would_split() {
        let args = [
            "train",
            "my data",
            "--out",
            "o",
            "--sh-degree",
            "1",
            "--overwrite",
        ];
        assert_eq!(
            resume_command(args.iter().map(std::ffi::OsString::from)),
            "chainrule train 'my data' --out o --sh-degree 1 --resume"
        );
        let args = ["train", "it's", "--resume", "--lr-mean=1e-4"];
        assert_eq!(
            resume_command(args.iter().map(std::ffi::OsString::from)),
            "chainrule train 'it'\\''s' --resume --lr-mean=1e-4"
        );
    }

    #[test]
    fn the_parameter_average_is_on_by_default_and_the_flag_overrides() {
        assert_eq!(config_at(3400, &[]).unwrap().ema_window, 100);
        assert_eq!(config_at(2000, &[]).unwrap().ema_window, 100);
        let nerf = run_defaults([1.0; 3], 4000, false, false);
        assert_eq!(nerf.ema_window, 100);
        assert_eq!(config(&["--ema-window", "0"]).unwrap().ema_window, 0);
        let short = ["--ema-window", "50"];
        assert_eq!(config_at(2000, &short).unwrap().ema_window, 50);
        assert!(Cli::try_parse_from(["train", "d", "--out", "o", "--ema-window", "-1"]).is_err());
    }

    /// The opacity regulariser is on at 0.01 for COLMAP data in runs of
    /// 3,000 iterations or more, and off for NeRF-synthetic and shorter
    /// runs; `--opacity-reg` sets it on any, and a weight below 0 or not a
    /// number is refused.
    #[test]
    fn opacity_reg_defaults_to_colmap_data_and_the_flag_overrides() {
        assert_eq!(config(&[]).unwrap().opacity_reg, 0.01);
        assert_eq!(config_at(30_000, &[]).unwrap().opacity_reg, 0.01);
        assert_eq!(config_at(3000, &[]).unwrap().opacity_reg, 0.01);
        assert_eq!(config_at(2999, &[]).unwrap().opacity_reg, 0.0);
        let short = ["--opacity-reg", "0.01"];
        assert_eq!(config_at(2000, &short).unwrap().opacity_reg, 0.01);
        let nerf = run_defaults([1.0; 3], 4000, false, false);
        assert_eq!(nerf.opacity_reg, 0.0);
        assert_eq!(config(&["--opacity-reg", "0"]).unwrap().opacity_reg, 0.0);
        assert_eq!(
            config(&["--opacity-reg", "0.03"]).unwrap().opacity_reg,
            0.03
        );
        for bad in [
            "--opacity-reg=-0.01",
            "--opacity-reg=nan",
            "--opacity-reg=inf",
        ] {
            let e = config(&[bad]).unwrap_err().to_string();
            assert!(e.contains("--opacity-reg"), "{e}");
        }
        // MCMC applies its own weight: the flag is refused there
        let mcmc = config(&["--strategy", "mcmc"]).unwrap();
        assert_eq!(mcmc.opacity_weight(), 0.01);
        let e = config(&["--strategy", "mcmc", "--opacity-reg", "0.5"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--strategy mcmc"), "{e}");
    }

    /// A photo a nerfstudio split names in both halves counts once in a
    /// run's photo set and in the camera extent, so that a run started
    /// when it was held out only still resumes; a COLMAP dataset's set is
    /// the one its train and test views chained give, as before.
    #[test]
    fn a_photo_in_both_halves_counts_once() {
        use splat::data::{Dataset, View};
        let view = |name: &str, z: f64| {
            let mut w2c = [[0.0; 4]; 4];
            for (k, row) in w2c.iter_mut().enumerate() {
                row[k] = 1.0;
            }
            w2c[2][3] = z;
            View::camera_only(name.into(), (8, 6), [8.0, 8.0, 4.0, 3.0], w2c)
        };
        let dataset = |train: Vec<View>, test: Vec<View>, format| Dataset {
            train,
            test,
            points: None,
            format,
            notes: Vec::new(),
            read_from: Vec::new(),
        };
        let (a, b, p) = (view("a.png", 1.0), view("b.png", 2.0), view("p.png", 5.0));
        let before = dataset(vec![a.clone(), b.clone()], vec![p.clone()], "nerfstudio");
        let both = dataset(
            vec![a.clone(), p.clone(), b.clone()],
            vec![p.clone()],
            "nerfstudio",
        );
        assert_eq!(super::PhotoSet::of(&before), super::PhotoSet::of(&both));
        assert_eq!(super::PhotoSet::of(&both).count, 3);
        let (_, r0) = before.camera_extent();
        let (_, r1) = both.camera_extent();
        assert!((r0 - r1).abs() < 1e-12, "{r0} vs {r1}");
        // NeRF-synthetic's splits are photos of their own, names alike
        let nerf = dataset(
            vec![a.clone(), p.clone()],
            vec![p.clone()],
            "nerf-synthetic",
        );
        assert_eq!(super::PhotoSet::of(&nerf).count, 3);
    }
}
