//! `chainrule fit [IMAGE]`: fit 2D Gaussians to an image by gradient
//! descent and write the render, a comparison picture and the model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::Serialize;
use splat::fit::{FitConfig, Fitter};
use splat::format::GaussianFile;
use splat::image_io::{self, Image};
use splat::loss::{self, Loss};
use splat::model2d::Init;
use splat::raster::Blend;

use crate::error::{CliError, CliResult};
use crate::output::ensure_dir;

/// Loss choices on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Mean squared error.
    Mse,
    /// 0.8 · L1 + 0.2 · (1 − SSIM), the 3DGS loss.
    L1Ssim,
}

/// Blend choices on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BlendArg {
    /// Front-to-back compositing with transmittance.
    Over,
    /// Order-free weighted sum (GaussianImage).
    Sum,
}

/// Initialisation choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// Colours sampled from the image at each Gaussian's position.
    Image,
    /// Uniform random colours (the initialisation of the JAX reference
    /// workload that `chainrule bench fit` is compared with).
    Peer,
}

/// Arithmetic precision of the render and tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// 32-bit floats (fast).
    F32,
    /// 64-bit floats.
    F64,
}

/// The largest `--gaussians` accepted.
pub const MAX_GAUSSIANS: u32 = 20_000_000;

/// Arguments of `chainrule fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// PNG or JPEG to fit; without it, a built-in target (gradients, sharp
    /// edges, fine texture).
    pub image: Option<PathBuf>,
    /// Number of Gaussians at the end of the fit (fewer on a target so
    /// small that a growth round would add more than one per pixel; a
    /// note says so).
    #[arg(long, default_value_t = 4000, value_parser = crate::args::at_least_one::<u32>)]
    pub gaussians: u32,
    /// Start with this many Gaussians and add the rest where the error is
    /// largest, in --grow-rounds rounds over the first half of the run
    /// (default: half of --gaussians; equal to --gaussians: no growth).
    #[arg(long, value_parser = crate::args::at_least_one::<u32>)]
    pub initial_gaussians: Option<u32>,
    /// Adam iterations.
    #[arg(long, default_value_t = 500)]
    pub iters: u32,
    /// Output folder (render.png, compare.png, gaussians.json).
    #[arg(long, default_value = "fit-out")]
    pub out: PathBuf,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Loss.
    #[arg(long, value_enum, default_value_t = LossArg::Mse)]
    pub loss: LossArg,
    /// Print one JSON object at the end instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// How splats combine.
    #[arg(long, value_enum, default_value_t = BlendArg::Over)]
    pub blend: BlendArg,
    /// Background colour: black, white, or R,G,B with each value from 0 to 1.
    /// An image's transparent pixels are fitted as composited over it.
    #[arg(long, default_value = "black")]
    pub background: String,
    /// Resize the image so its longer side is this many pixels (aspect
    /// kept); the built-in target is SIZE x SIZE (default 256). Without
    /// it, a photo longer than 1024 pixels is fitted as a copy 1024 pixels
    /// long (a note says so; the model renders at any size afterwards).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub size: Option<u32>,
    /// Initialisation.
    #[arg(long, value_enum, default_value_t = InitArg::Image)]
    pub init: InitArg,
    /// Adam learning rate of the positions.
    #[arg(long, default_value_t = 0.002)]
    pub lr_mean: f64,
    /// Adam learning rate of the Cholesky factors.
    #[arg(long, default_value_t = 0.01)]
    pub lr_chol: f64,
    /// Adam learning rate of the colours.
    #[arg(long, default_value_t = 0.01)]
    pub lr_color: f64,
    /// Adam learning rate of the opacity logits.
    #[arg(long, default_value_t = 0.01)]
    pub lr_opacity: f64,
    /// Precision of the render and the tape.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Number of growth rounds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub grow_rounds: u32,
}

/// What `fit --json` prints.
#[derive(Debug, Serialize)]
pub struct FitReport {
    /// PSNR (dB) of the final render clipped to 0..1, before it is
    /// rounded to render.png's 8 bits (which can lower it by a few
    /// hundredths of a dB, more on a near-perfect fit).
    pub psnr: f64,
    /// Mean SSIM of the final render.
    pub ssim: f64,
    /// Number of Gaussians.
    pub gaussians: usize,
    /// Iterations run (fewer than `--iters` when Ctrl-C stopped the fit).
    pub iterations: u32,
    /// Whether Ctrl-C (or SIGTERM) stopped the fit before `--iters`; the
    /// files hold the model as it was then, and the command exits with
    /// code 130.
    pub interrupted: bool,
    /// Wall-clock seconds of the iterations.
    pub seconds: f64,
    /// `seconds / iterations`.
    pub seconds_per_iteration: f64,
    /// Loss at the last iteration (before its update).
    pub final_loss: f64,
    /// Target width.
    pub width: usize,
    /// Target height.
    pub height: usize,
    /// Files written.
    pub render_png: PathBuf,
    /// See `render_png`.
    pub compare_png: PathBuf,
    /// See `render_png`.
    pub gaussians_json: PathBuf,
}

/// Parses a background colour.
pub fn parse_background(s: &str) -> CliResult<[f64; 3]> {
    match s {
        "black" => return Ok([0.0; 3]),
        "white" => return Ok([1.0; 3]),
        _ => {}
    }
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || {
        CliError::usage(format!(
            "--background {s:?}: expected black, white or R,G,B with numbers in [0,1]"
        ))
    };
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut c = [0.0; 3];
    for (v, p) in c.iter_mut().zip(parts) {
        *v = p.trim().parse::<f64>().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(v) {
            return Err(bad());
        }
    }
    Ok(c)
}

/// Loads the target: the file (resized if asked; transparent pixels
/// composited over `background`, with a note) or the built-in one.
pub fn load_target(
    image: Option<&Path>,
    size: Option<u32>,
    background: [f64; 3],
) -> CliResult<Image> {
    match image {
        None => Ok(image_io::default_target(size.unwrap_or(256) as usize)),
        Some(p) => {
            let (img, transparent) =
                image_io::load_on(p, background).map_err(|e| CliError::file(p, e))?;
            if transparent {
                eprintln!(
                    "note: {} has transparent pixels: they are fitted as composited over the \
                     background ({}; --background to change it), the colour the render shows \
                     there",
                    p.display(),
                    crate::output::colour_name(background)
                );
            }
            Ok(match sized(img.width, img.height, size) {
                (w, h) if (w, h) == (img.width, img.height) => img,
                (w, h) => img.resized(w, h),
            })
        }
    }
}

/// The size of the target `a` asks for, from the image's header (before
/// anything is decoded) and --size, as [`load_target`] makes it; `None`
/// when the header cannot be read (loading then says why).
fn target_size(a: &FitArgs) -> Option<(usize, usize)> {
    let (w, h) = match &a.image {
        None => {
            let s = a.size.unwrap_or(256) as usize;
            return Some((s, s));
        }
        Some(p) => image::image_dimensions(p).ok()?,
    };
    // (an EXIF rotation swaps them; the pixel count is the same)
    Some(sized(w as usize, h as usize, a.size))
}

/// A `w × h` picture's size once --size (`size`) resizes it: its longer
/// side `size`, the aspect kept (the size itself without --size).
fn sized(w: usize, h: usize, size: Option<u32>) -> (usize, usize) {
    let Some(s) = size.map(|s| s as usize) else {
        return (w, h);
    };
    let scaled = |a: usize, b: usize| ((a * s) as f64 / b as f64).round().max(1.0) as usize;
    match w >= h {
        true => (s, scaled(h, w)),
        false => (scaled(w, h), s),
    }
}

/// The memory a fit takes, in bytes a pixel of the target: the tape of
/// the render and the loss, and the render's buffers (measured on an AMD
/// EPYC Zen 2 VM with a 2000x1500 target: 1.27 GB for mse in f32, 1.53 GB
/// in f64, 1.41 GB for l1-ssim in f32, 1.99 GB in f64).
fn bytes_per_pixel(loss: LossArg, precision: Precision) -> f64 {
    let base = match loss {
        LossArg::Mse => 450.0,
        LossArg::L1Ssim => 500.0,
    };
    match precision {
        Precision::F32 => base,
        Precision::F64 => base * 1.35,
    }
}

/// Refuses a target whose fit would take more memory than this machine
/// has (an allocation failure would abort the process without a word),
/// saying which --size would fit.
fn check_memory(a: &FitArgs) -> CliResult {
    let (Some((w, h)), Some(memory)) = (target_size(a), splat::machine::memory()) else {
        return Ok(());
    };
    let per_px = bytes_per_pixel(a.loss, a.precision);
    // a photo is decoded whole (to f64 RGB and its 8- or 16-bit pixels)
    // before --size resizes it, and that copy is gone before the fit
    let decoded = match (&a.image, a.size) {
        (Some(p), Some(_)) => {
            image::image_dimensions(p).map_or(0.0, |(w0, h0)| w0 as f64 * h0 as f64 * 32.0)
        }
        _ => 0.0,
    };
    let need = ((w * h) as f64 * per_px + a.gaussians as f64 * 150.0).max(decoded);
    // (a margin for the estimate and for the rest of the machine)
    let have = memory as f64 * 0.75;
    if need <= have {
        return Ok(());
    }
    // the longest side whose target fits in 65% of the memory
    let fits = ((memory as f64 * 0.65 - a.gaussians as f64 * 150.0).max(0.0) / per_px
        * w.max(h) as f64
        / w.min(h) as f64)
        .sqrt()
        .floor();
    let gb = |b: f64| b / 1e9;
    Err(CliError::usage(format!(
        "a {w}x{h} target needs about {:.1} GB to fit (about {per_px:.0} bytes a pixel with \
         this loss and precision), more than this machine's {:.1} GB: --size {} fits a \
         smaller copy{}",
        gb(need),
        gb(memory as f64),
        fits.max(1.0),
        match a.precision {
            Precision::F64 => ", and --precision f32 takes a quarter less",
            Precision::F32 => "",
        }
    )))
}

/// Checks that `dir` can be created and written before any work is done.
/// The probe is named as the atomic writes' temporary files are
/// (`.NAME.tmp-PID`), so a process killed between writing and removing
/// it leaves only what a killed atomic write may leave.
pub fn check_out_dir(dir: &Path) -> CliResult {
    ensure_dir(dir)?;
    let probe = dir.join(format!(".chainrule-probe.tmp-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| CliError::file(dir, format!("output directory is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn check_lr(name: &str, v: f64) -> CliResult {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{name} {v}: must be a finite number >= 0"
        )))
    }
}

/// The longer side of the copy of a photo fitted without --size: a fit's
/// time and memory grow with its pixels (a 4032x3024 photo: 4.8 s an
/// iteration, so 40 minutes for the default 500, and 5.1 GB, on a 2-core
/// Intel Xeon VM), and the default few thousand Gaussians cannot use more
/// detail than this.
pub const DEFAULT_MAX_SIDE: u32 = 1024;

/// `a` with --size set to [`DEFAULT_MAX_SIDE`] for a photo longer than it
/// that no --size was given for, and a note saying so.
fn default_size(mut a: FitArgs) -> FitArgs {
    if let (None, Some(p)) = (a.size, &a.image) {
        // (as the fit will see it: turned upright by its EXIF orientation)
        if let Some((w, h)) = splat::image_io::oriented_size(p) {
            if w.max(h) > DEFAULT_MAX_SIDE {
                a.size = Some(DEFAULT_MAX_SIDE);
                let (cw, ch) = sized(w as usize, h as usize, a.size);
                // (--size takes at most 8192; the render's --scale gives
                // the photo's size back)
                let full = w.max(h).min(8192);
                eprintln!(
                    "note: {} is {w}x{h}: fitting a {cw}x{ch} copy, as without --size a photo \
                     is fitted at most {DEFAULT_MAX_SIDE} pixels long (--size {full} fits more \
                     pixels; `chainrule render {} --out full.png --scale {:.2}` draws the \
                     model at about the photo's size)",
                    p.display(),
                    a.out.join("gaussians.json").display(),
                    f64::from(w.max(h)) / f64::from(DEFAULT_MAX_SIDE)
                );
            }
        }
    }
    a
}

/// Runs `chainrule fit`.
pub fn run(a: FitArgs) -> CliResult {
    let a = default_size(a);
    for (name, v) in [
        ("--lr-mean", a.lr_mean),
        ("--lr-chol", a.lr_chol),
        ("--lr-color", a.lr_color),
        ("--lr-opacity", a.lr_opacity),
    ] {
        check_lr(name, v)?;
    }
    if a.gaussians > MAX_GAUSSIANS {
        return Err(CliError::usage(format!(
            "--gaussians {}: at most {MAX_GAUSSIANS} (each Gaussian costs about 150 bytes of state)",
            a.gaussians
        )));
    }
    let initial = a.initial_gaussians.unwrap_or(a.gaussians.div_ceil(2));
    if initial > a.gaussians {
        return Err(CliError::usage(format!(
            "--initial-gaussians {initial}: must not exceed --gaussians {}",
            a.gaussians
        )));
    }
    // with fewer than 2 iterations there is no room to grow: start with all
    let initial = if a.iters < 2 { a.gaussians } else { initial };
    let background = parse_background(&a.background)?;
    check_memory(&a)?;
    let target = load_target(a.image.as_deref(), a.size, background)?;
    check_out_dir(&a.out)?;
    let cfg = FitConfig {
        gaussians: initial as usize,
        seed: a.seed,
        loss: match a.loss {
            LossArg::Mse => Loss::Mse,
            LossArg::L1Ssim => Loss::L1Ssim,
        },
        blend: match a.blend {
            BlendArg::Over => Blend::Over,
            BlendArg::Sum => Blend::Sum,
        },
        background,
        init: match a.init {
            InitArg::Image => Init::Image,
            InitArg::Peer => Init::Peer,
        },
        lr_mean: a.lr_mean,
        lr_chol: a.lr_chol,
        lr_color: a.lr_color,
        lr_opacity: a.lr_opacity,
    };
    match a.precision {
        Precision::F32 => fit_with::<f32>(&a, target, cfg),
        Precision::F64 => fit_with::<f64>(&a, target, cfg),
    }
}

fn fit_with<T: chainrule::Scalar>(a: &FitArgs, target: Image, cfg: FitConfig) -> CliResult {
    debug_assert!(cfg.gaussians <= a.gaussians as usize);
    let (w, h) = (target.width, target.height);
    let mut fitter = Fitter::<T>::new(target, cfg);
    let armed = crate::interrupt::arm();
    eprintln!(
        "{}",
        crate::interrupt::hint(&format!("fitting {} iterations", a.iters))
    );
    let bar = crate::output::progress_bar(a.iters as u64, a.json);
    let start = Instant::now();
    let mut last_loss = f64::NAN;
    let mut first_loss = f64::NAN;
    let grow = a.gaussians as usize - fitter.model().n;
    let rounds = (a.grow_rounds as usize).min(a.iters as usize / 2).max(1);
    let grow_at = |it: usize| -> Option<usize> {
        // round r (1..=rounds) runs before iteration r·iters/(2·rounds) + 1
        let iters = a.iters as usize;
        let r = (1..=rounds).find(|r| it == r * iters / (2 * rounds) + 1)?;
        Some(grow / rounds + usize::from(r <= grow % rounds))
    };
    let mut done = 0;
    for it in 1..=a.iters {
        if grow > 0 {
            if let Some(k) = grow_at(it as usize) {
                fitter.grow(k);
            }
        }
        last_loss = fitter.step();
        if it == 1 {
            first_loss = last_loss;
        }
        if !last_loss.is_finite() {
            return Err(CliError::usage(format!(
                "the loss became {last_loss} at iteration {it}; try smaller learning rates"
            )));
        }
        if !a.json && (it % 10 == 0 || it == a.iters) {
            let psnr = loss::psnr(&fitter.render().data, &fitter.target().data);
            let rate = it as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {last_loss:.5}  PSNR {psnr:.2} dB  {rate:.1} it/s"
            ));
        }
        bar.set_position(it as u64);
        done = it;
        if crate::interrupt::requested() {
            break;
        }
    }
    // (a signal during the last iteration asked for a stop all the same)
    let interrupted = crate::interrupt::requested();
    drop(armed);
    let seconds = start.elapsed().as_secs_f64();
    crate::output::finish_bar(&bar);
    let render = fitter.render();
    let psnr = loss::psnr(&render.data, &fitter.target().data);
    let ssim = loss::ssim_values(
        &render
            .data
            .iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect::<Vec<_>>(),
        &fitter.target().data,
        w,
        h,
        3,
    );
    let render_png = a.out.join("render.png");
    let compare_png = a.out.join("compare.png");
    let gaussians_json = a.out.join("gaussians.json");
    let file = GaussianFile::new(
        fitter.model(),
        w,
        h,
        fitter.config().background,
        fitter.config().blend,
    );
    let json = file.to_json();
    // a model its own reader would refuse (a factor grown past e^±30 by
    // too large a rate) is a failed fit, not a result
    if let Err(e) = GaussianFile::from_json(&json) {
        return Err(CliError::usage(format!(
            "the fit diverged: its model is not usable ({e}); try smaller learning rates \
             (--lr-chol {}, --lr-mean {})",
            a.lr_chol, a.lr_mean
        )));
    }
    let png = |img: &Image, p: &Path| img.to_png().map_err(|e| CliError::file(p, e));
    let render_bytes = png(&render, &render_png)?;
    let compare_bytes = png(&image_io::compare(fitter.target(), &render), &compare_png)?;
    // the three files replace an earlier fit's together (renamed in a
    // row once all are written), so a fit stopped while writing leaves
    // either set whole, not a render of one fit beside another's model
    crate::output::write_atomic_all(&[
        (&render_png, &render_bytes),
        (&compare_png, &compare_bytes),
        (&gaussians_json, json.as_bytes()),
    ])?;
    // a rate too large can scatter the splats without any NaN: the
    // result is written, and said to be worse than where it started
    if last_loss > first_loss {
        crate::output::warn(format!(
            "the loss rose from {first_loss:.4e} to {last_loss:.4e} over the fit: it \
             diverged; try smaller learning rates (--lr-mean {}, --lr-chol {}, --lr-color {}, \
             --lr-opacity {})",
            a.lr_mean, a.lr_chol, a.lr_color, a.lr_opacity
        ));
    }
    if interrupted {
        eprintln!(
            "stopped at iteration {done} of {}: the files hold the model as it was then",
            a.iters
        );
    } else if fitter.model().n < a.gaussians as usize {
        eprintln!(
            "note: {} Gaussians, fewer than --gaussians {}: each growth round adds at most one \
             per pixel of the {w}x{h} target",
            fitter.model().n,
            a.gaussians
        );
    }
    let report = FitReport {
        psnr,
        ssim,
        gaussians: fitter.model().n,
        iterations: fitter.iterations(),
        seconds,
        interrupted,
        seconds_per_iteration: if done > 0 {
            seconds / f64::from(done)
        } else {
            0.0
        },
        final_loss: last_loss,
        width: w,
        height: h,
        render_png,
        compare_png,
        gaussians_json,
    };
    if a.json {
        println!("{}", crate::output::json_with_warnings(&report));
    } else {
        println!(
            "fitted {} Gaussians to {}x{} in {} iterations, {:.1} s ({:.1} ms/iteration): PSNR {:.2} dB, SSIM {:.4}",
            report.gaussians,
            w,
            h,
            report.iterations,
            seconds,
            report.seconds_per_iteration * 1e3,
            psnr,
            ssim
        );
        println!(
            "wrote {}, {}, {}",
            report.render_png.display(),
            report.compare_png.display(),
            report.gaussians_json.display()
        );
    }
    Ok(())
}
