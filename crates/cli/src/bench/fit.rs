//! `chainrule bench fit`: the 2D Gaussian-splatting image fit (issue 6).
//!
//! Workload: a 256×256 target (the built-in one, or `--image`, resized to
//! `--size`² like the JAX peer), 2,000 Gaussians, the peer's model, init
//! and Adam settings, MSE loss. Reports seconds per iteration (render,
//! loss, backward, Adam), the peak heap bytes of the whole fit, and PSNR
//! after `--iters` iterations (and at 100 and 300 for comparison with the
//! peer at matched counts).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use splat::fit::{FitConfig, Fitter};
use splat::loss::{self, Loss};
use splat::model2d::Init;

use crate::alloc::measure_peak;
use crate::error::{CliError, CliResult};
use crate::fit::Precision;

/// Arguments of `chainrule bench fit`.
#[derive(Debug, Args)]
pub struct FitBenchArgs {
    /// Iterations.
    #[arg(long, default_value_t = 1000, value_parser = crate::args::at_least_one::<u32>)]
    pub iters: u32,
    /// Number of Gaussians.
    #[arg(long, default_value_t = 2000, value_parser = crate::args::at_least_one::<u32>)]
    pub gaussians: u32,
    /// Target PNG/JPEG (e.g. the peer's target_coffee_256.png); default: the
    /// built-in target.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The target is resized to SIZE x SIZE (like the peer).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub size: u32,
    /// Initialisation seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Precision of the render and the tape.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What `bench fit` measures.
#[derive(Debug, Serialize)]
pub struct FitBenchReport {
    /// Mean wall-clock seconds per iteration.
    pub seconds_per_iteration: f64,
    /// Median over iterations.
    pub seconds_per_iteration_median: f64,
    /// Fastest iteration.
    pub seconds_per_iteration_min: f64,
    /// Mean seconds per iteration in each phase: render (projection and
    /// rasterizer forward), loss recording, backward sweep (with the
    /// rasterizer's backward), Adam.
    pub phases: Phases,
    /// Peak heap bytes above the baseline during the fit.
    pub peak_bytes: usize,
    /// PSNR (dB) after all iterations.
    pub psnr: f64,
    /// PSNR at the start.
    pub psnr_init: f64,
    /// PSNR after 100 iterations (if run).
    pub psnr_at_100: Option<f64>,
    /// PSNR after 300 iterations (if run).
    pub psnr_at_300: Option<f64>,
    /// Iterations.
    pub iterations: u32,
    /// Gaussians.
    pub gaussians: usize,
    /// Target size.
    pub size: u32,
    /// Target source.
    pub image: String,
    /// Precision.
    pub precision: String,
    /// Rayon threads.
    pub threads: usize,
    /// Machine.
    pub machine: String,
}

/// Mean seconds per iteration of each phase.
#[derive(Debug, Default, Serialize)]
pub struct Phases {
    /// Projection and rasterizer forward.
    pub render: f64,
    /// Recording the loss.
    pub loss: f64,
    /// Reverse sweep including the rasterizer's backward.
    pub backward: f64,
    /// Adam update.
    pub adam: f64,
}

type FitRun = (Vec<f64>, Phases, f64, Option<f64>, Option<f64>, f64);

fn run_fit<T: chainrule::Scalar>(
    target: splat::image_io::Image,
    cfg: FitConfig,
    iters: u32,
) -> FitRun {
    let mut f = Fitter::<T>::new(target, cfg);
    let psnr_init = loss::psnr(&f.render().data, &f.target().data);
    let mut times = Vec::with_capacity(iters as usize);
    let (mut p100, mut p300) = (None, None);
    let mut phases = Phases::default();
    for it in 1..=iters {
        let t = Instant::now();
        f.step();
        times.push(t.elapsed().as_secs_f64());
        let tm = f.timings();
        let k = 1.0 / iters as f64;
        phases.render += tm.render * k;
        phases.loss += tm.loss * k;
        phases.backward += tm.backward * k;
        phases.adam += tm.adam * k;
        if it == 100 {
            p100 = Some(loss::psnr(&f.render().data, &f.target().data));
        }
        if it == 300 {
            p300 = Some(loss::psnr(&f.render().data, &f.target().data));
        }
    }
    let psnr = loss::psnr(&f.render().data, &f.target().data);
    (times, phases, psnr_init, p100, p300, psnr)
}

/// Runs `chainrule bench fit`.
pub fn run(a: FitBenchArgs) -> CliResult {
    let target = match &a.image {
        None => splat::image_io::default_target(a.size as usize),
        Some(p) => splat::image_io::load(p)
            .map_err(|e| CliError::file(p, e))?
            .resized(a.size as usize, a.size as usize),
    };
    let cfg = FitConfig {
        gaussians: a.gaussians as usize,
        seed: a.seed,
        loss: Loss::Mse,
        init: Init::Peer,
        ..FitConfig::default()
    };
    let ((mut times, phases, psnr_init, p100, p300, psnr), peak) =
        measure_peak(|| match a.precision {
            Precision::F32 => run_fit::<f32>(target, cfg, a.iters),
            Precision::F64 => run_fit::<f64>(target, cfg, a.iters),
        });
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let (min, median) = super::min_median(&mut times);
    let r = FitBenchReport {
        seconds_per_iteration: mean,
        seconds_per_iteration_median: median,
        seconds_per_iteration_min: min,
        phases,
        peak_bytes: peak,
        psnr,
        psnr_init,
        psnr_at_100: p100,
        psnr_at_300: p300,
        iterations: a.iters,
        gaussians: a.gaussians as usize,
        size: a.size,
        image: a
            .image
            .as_ref()
            .map_or("built-in".to_string(), |p| p.display().to_string()),
        precision: format!("{:?}", a.precision).to_lowercase(),
        threads: rayon::current_num_threads(),
        machine: super::machine(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&r).expect("report serialises"));
    } else {
        println!(
            "2D fit, {} Gaussians, {}x{} ({}), {} iterations, {} ({})",
            r.gaussians, r.size, r.size, r.image, r.iterations, r.precision, r.machine
        );
        println!(
            "  {:.2} ms/iteration (median {:.2}, min {:.2}); peak heap {:.1} MiB",
            mean * 1e3,
            median * 1e3,
            min * 1e3,
            peak as f64 / (1 << 20) as f64
        );
        println!(
            "  phases: render {:.2} ms, loss {:.2} ms, backward {:.2} ms, Adam {:.2} ms",
            r.phases.render * 1e3,
            r.phases.loss * 1e3,
            r.phases.backward * 1e3,
            r.phases.adam * 1e3
        );
        println!("  PSNR {:.2} dB (start {:.2} dB)", psnr, psnr_init);
    }
    Ok(())
}
