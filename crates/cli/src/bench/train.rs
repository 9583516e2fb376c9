//! `chainrule bench train`: where a 3D training iteration's time goes.
//!
//! Workload (issue 15): the procedural scene of `chainrule synth` (seed
//! 0), ray-traced in memory for `--views` cameras on an orbit 30° up (no
//! files), composited on white; a [`Trainer`] with the default settings
//! except that it starts from `--gaussians` random points, has every SH
//! band active after the first three iterations, and runs density control
//! (statistics, clone/split/prune) every `--densify-every` iterations from
//! the start with the count capped at its initial value, so that the
//! scene size stays what was asked for. After `--warmup` untimed
//! iterations, `--iters` iterations are timed: milliseconds per iteration
//! and per stage ([`splat::stages::StageTimes`]), CPU utilisation (process
//! CPU time ÷ wall time ÷ cores), the peak heap, and the heap allocations
//! per iteration (count and bytes).
//!
//! With `--data DIR` the views are a real dataset's instead, loaded as
//! `chainrule train DIR` loads them, and the trainer has `train`'s default
//! settings for that data (AbsGS on COLMAP data, the Gaussian budget, the
//! schedules of a `--train-iters` run, by default `train`'s length or,
//! with `--resume`, the resumed run's, and the resumed run's budget as
//! `train --resume` keeps it); with `--resume OUT` too, it
//! continues from the latest checkpoint of the `train` run in `OUT`, so
//! the timed iterations are that run's next ones: a capture's late
//! iterations at their real size, repeatably (`--size`, `--gaussians`,
//! `--views`, `--densify-every` and `--seed` then play no part).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use splat::data::synth::{look_at_origin, Scene, CAMERA_ANGLE_X, CAMERA_DISTANCE};
use splat::data::{opengl_c2w_to_opencv_w2c, Dataset, LoadOptions, View};
use splat::stages::StageTimes;
use splat::train::{TrainConfig, TrainError, Trainer};

use super::render3d::{parse_size, process_cpu_seconds};
use crate::alloc::{allocations, peak_bytes, reset_peak};
use crate::error::{CliError, CliResult};

/// Arguments of `chainrule bench train`.
#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    /// Image size of every view, WxH.
    #[arg(long, default_value = "200x200")]
    pub size: String,
    /// Gaussians to start from (random points around the scene).
    #[arg(long, default_value_t = 20_000)]
    pub gaussians: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 30, value_parser = crate::args::at_least_one::<u32>)]
    pub iters: u32,
    /// Untimed iterations before them.
    #[arg(long, default_value_t = 5)]
    pub warmup: u32,
    /// Training views.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub views: u32,
    /// Density control every this many iterations (0: never).
    #[arg(long, default_value_t = 10)]
    pub densify_every: u32,
    /// Seed of the initial points and the choice of views.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A dataset folder (COLMAP or NeRF-synthetic) to train on instead of
    /// the synthetic views, loaded as `chainrule train` loads it, with its
    /// default settings.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With --data: continue from the latest checkpoint of this `train`
    /// output folder (or of its `checkpoints` folder).
    #[arg(long, requires = "data")]
    pub resume: Option<PathBuf>,
    /// With --data: the length of the run whose schedules apply (as
    /// `train --iters`) [default: with --resume, the resumed run's length
    /// as its checkpoints/run.json records it; else `train`'s, 3,400 on
    /// COLMAP data and 4,000 on the rest].
    #[arg(long)]
    pub train_iters: Option<u32>,
    /// Adam updates only the Gaussians each view draws (as `train
    /// --visible-adam`).
    #[arg(long)]
    pub visible_adam: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Milliseconds per iteration of each stage.
#[derive(Debug, Serialize)]
pub struct StageMs {
    /// EWA projection and SH colours.
    pub projection: f64,
    /// Screen boxes, depth sort, tile binning.
    pub binning_and_sorting: f64,
    /// Rasterizer forward.
    pub rasterization: f64,
    /// L1 + SSIM loss and its gradient.
    pub loss: f64,
    /// Rasterizer backward.
    pub rasterization_backward: f64,
    /// SH and projection backward.
    pub projection_backward: f64,
    /// Adam.
    pub optimiser: f64,
    /// Densification statistics and density control.
    pub densification: f64,
    /// View choice, parameter and gradient conversion, checks.
    pub other: f64,
}

impl StageMs {
    fn from(t: &StageTimes, iters: f64) -> Self {
        let ms = |s: f64| s * 1e3 / iters;
        StageMs {
            projection: ms(t.projection),
            binning_and_sorting: ms(t.sort_bin),
            rasterization: ms(t.raster),
            loss: ms(t.loss),
            rasterization_backward: ms(t.raster_backward),
            projection_backward: ms(t.projection_backward),
            optimiser: ms(t.optimizer),
            densification: ms(t.densify),
            other: ms(t.other),
        }
    }
}

/// What `bench train` measures.
#[derive(Debug, Serialize)]
pub struct TrainBenchReport {
    /// The dataset folder trained on (null: the synthetic views).
    pub data: Option<String>,
    /// The iteration the run continued from (`--resume`; null otherwise).
    pub resumed_from: Option<u32>,
    /// With `--data`: the length of the run whose schedules the timed
    /// iterations follow (`--train-iters`, the resumed run's, or
    /// `train`'s default); null for the synthetic views.
    pub train_iters: Option<u32>,
    /// Image width (of the first training view, with `--data`).
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Pixels rendered per iteration.
    pub pixels_per_iteration: u64,
    /// Gaussians at the start of the timed iterations.
    pub gaussians_start: usize,
    /// Gaussians at the end.
    pub gaussians_end: usize,
    /// Timed iterations.
    pub iterations: u32,
    /// Untimed warm-up iterations.
    pub warmup: u32,
    /// Wall milliseconds per iteration (mean over the timed ones).
    pub ms_per_iteration: f64,
    /// Fastest single iteration, ms.
    pub ms_per_iteration_min: f64,
    /// Median iteration, ms.
    pub ms_per_iteration_median: f64,
    /// Mean ms per iteration in each stage.
    pub stages_ms: StageMs,
    /// Share of an iteration spent in the loss and its gradient.
    pub loss_fraction: f64,
    /// Process CPU time ÷ wall time ÷ logical cores over the timed
    /// iterations (null where /proc/self/stat is unavailable).
    pub cpu_utilisation: Option<f64>,
    /// Process CPU milliseconds per timed iteration, all threads (steadier
    /// than wall time on a shared machine).
    pub cpu_ms_per_iteration: Option<f64>,
    /// Logical cores (the rayon pool's threads).
    pub cores: usize,
    /// Peak heap bytes of the whole run (dataset, trainer, iterations).
    pub peak_heap_bytes: usize,
    /// Peak heap bytes above what was live before the timed iterations:
    /// what the iterations themselves allocate at once.
    pub peak_iteration_heap_bytes: usize,
    /// Heap bytes live before the timed iterations (scene, optimiser,
    /// dataset).
    pub live_heap_bytes: usize,
    /// Heap allocations per timed iteration (mean).
    pub allocations_per_iteration: f64,
    /// Bytes those allocations asked for, per timed iteration (mean).
    pub allocated_bytes_per_iteration: f64,
    /// Seconds to ray-trace or load the views and build the trainer (not
    /// part of the iterations).
    pub setup_seconds: f64,
    /// The machine it ran on.
    pub machine: String,
    /// The kernels' vector instruction set (`splat::simd_in_use`:
    /// `CHAINRULE_SIMD` caps it).
    pub simd: String,
}

/// The synthetic views, in memory.
fn dataset(width: u32, height: u32, views: u32) -> Dataset {
    let scene = Scene::new(0);
    let f = 0.5 * width as f64 / (0.5 * CAMERA_ANGLE_X).tan();
    let el = 30f64.to_radians();
    let train = (0..views)
        .map(|k| {
            let az = std::f64::consts::TAU * (k as f64 + 0.25) / views as f64;
            let d = CAMERA_DISTANCE;
            let eye = [
                d * el.cos() * az.cos(),
                d * el.cos() * az.sin(),
                d * el.sin(),
            ];
            let c2w = look_at_origin(eye);
            let rgba = scene.render(&c2w, CAMERA_ANGLE_X, width, height);
            // straight alpha over white, as the NeRF-synthetic loader does
            let image = splat::data::Pixels8::quantize(
                &rgba
                    .chunks_exact(4)
                    .flat_map(|p| {
                        let a = p[3] as f32 / 255.0;
                        [0, 1, 2].map(|c| p[c] as f32 / 255.0 * a + (1.0 - a))
                    })
                    .collect::<Vec<f32>>(),
            );
            View {
                name: format!("view_{k}"),
                width,
                height,
                fx: f,
                fy: f,
                cx: width as f64 / 2.0,
                cy: height as f64 / 2.0,
                world_to_camera: opengl_c2w_to_opencv_w2c(&c2w),
                image,
                alpha: None,
                background: [1.0; 3],
                mask: None,
            }
        })
        .collect();
    Dataset {
        train,
        test: Vec::new(),
        points: None,
        format: "nerf-synthetic",
        notes: Vec::new(),
        read_from: Vec::new(),
    }
}

/// A real dataset, loaded as `chainrule train DIR` loads it, and the
/// settings `train DIR --iters ITERS` would use (without `iters`,
/// `train DIR`'s), with the Gaussian budget `recorded_budget` when it is
/// given (a resumed run's, as its `checkpoints/run.json` records it).
fn real_dataset(
    dir: &std::path::Path,
    iters: Option<u32>,
    recorded_budget: Option<usize>,
) -> CliResult<(Dataset, TrainConfig)> {
    let kind = splat::data::detect(dir);
    let background = splat::data::default_background(kind);
    let opts = LoadOptions {
        background,
        max_width: Some(1600),
        ..LoadOptions::default()
    };
    let data = splat::data::load(dir, &opts).map_err(CliError::data)?;
    let absgrad = crate::train::use_absgrad(false, false, kind);
    let colmap = splat::data::is_capture(kind);
    let iters = iters.unwrap_or(crate::train::default_iters(colmap));
    let max_gaussians = match recorded_budget {
        // a resumed run's own budget, as `train --resume` keeps it
        Some(m) => {
            eprintln!("note: the resumed run's Gaussian budget, timed here: {m}");
            m
        }
        // (as `train` says it: the timings depend on the budget)
        None => {
            let budget = splat::train::budget::Budget::of(&data, splat::machine::memory());
            if let Some(note) = budget.note(&data) {
                eprintln!("note: the budget `train` chooses, timed here: {note}");
            }
            budget.gaussians
        }
    };
    let bg = background.map(f64::from);
    let cfg = crate::train::data_defaults(max_gaussians, bg, iters, absgrad, colmap);
    Ok((data, cfg))
}

/// The trainer the timed iterations run: on the synthetic views, or on
/// `--data` (from its start or a `--resume`d checkpoint).
fn trainer(args: &TrainBenchArgs, width: u32, height: u32) -> CliResult<Trainer> {
    let fail = |e: TrainError| CliError::usage(format!("bench train: {e}"));
    let Some(dir) = &args.data else {
        let cfg = TrainConfig {
            iters: 30_000,
            seed: args.seed,
            init_points: args.gaussians,
            max_gaussians: args.gaussians,
            sh_interval: 1,
            densify_from: 0,
            densify_every: args.densify_every,
            opacity_reset_every: 0,
            visible_adam: args.visible_adam,
            ..TrainConfig::default()
        };
        return Trainer::new(dataset(width, height, args.views), cfg).map_err(fail);
    };
    let ckpt = args
        .resume
        .as_ref()
        .map(|out| match out.join("checkpoints").is_dir() {
            true => out.join("checkpoints"),
            false => out.clone(),
        });
    if let Some(c) = ckpt.as_ref().filter(|c| !c.join("latest.json").is_file()) {
        return Err(crate::train::no_checkpoint(c));
    }
    // a resumed run's own length unless --train-iters says otherwise
    let iters = args
        .train_iters
        .or_else(|| ckpt.as_deref().and_then(crate::train::resumed_length));
    let budget = ckpt.as_deref().and_then(crate::train::resumed_budget);
    let (data, mut cfg) = real_dataset(dir, iters, budget)?;
    cfg.visible_adam = args.visible_adam;
    match ckpt {
        Some(c) => Trainer::resume(data, cfg, &c).map_err(fail),
        None => Trainer::new(data, cfg).map_err(fail),
    }
}

/// Runs the measurement.
///
/// On a worker thread of rayon's pool, as `chainrule train` runs its
/// loop: a parallel loop started from outside the pool queues its job in
/// the pool's injector, which allocates a block every 63 jobs (about one
/// allocation per two iterations at 200²); from a worker it does not.
pub fn measure(args: &TrainBenchArgs, width: u32, height: u32) -> CliResult<TrainBenchReport> {
    rayon::scope(|_| measure_on_worker(args, width, height))
}

fn measure_on_worker(
    args: &TrainBenchArgs,
    width: u32,
    height: u32,
) -> CliResult<TrainBenchReport> {
    let base = reset_peak();
    let t = Instant::now();
    let mut tr = trainer(args, width, height)?;
    let setup = t.elapsed().as_secs_f64();
    let resumed_from = args.resume.as_ref().map(|_| tr.iteration());
    let (width, height) = tr
        .data()
        .train
        .first()
        .map_or((width, height), |v| (v.width, v.height));
    let fail = |e: TrainError| CliError::usage(format!("bench train: {e}"));
    for _ in 0..args.warmup {
        tr.step().map_err(fail)?;
    }
    let start = tr.len();
    let peak_setup = peak_bytes();
    let live = reset_peak();
    let mut stages = StageTimes::default();
    let mut per_iter = Vec::with_capacity(args.iters as usize);
    let c0 = process_cpu_seconds();
    let a0 = allocations();
    let t0 = Instant::now();
    for _ in 0..args.iters {
        let ti = Instant::now();
        let info = tr.step().map_err(fail)?;
        per_iter.push(ti.elapsed().as_secs_f64() * 1e3);
        stages.add(&info.stages);
    }
    let wall = t0.elapsed().as_secs_f64();
    let a1 = allocations();
    let cpu = match (c0, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let peak_iter = peak_bytes();
    let iters = args.iters as f64;
    let cores = rayon::current_num_threads();
    let (mn, med) = super::min_median(&mut per_iter);
    let ms_iter = wall * 1e3 / iters;
    let st = StageMs::from(&stages, iters);
    Ok(TrainBenchReport {
        data: args.data.as_ref().map(|d| d.display().to_string()),
        resumed_from,
        train_iters: args.data.as_ref().map(|_| tr.config().iters),
        width,
        height,
        pixels_per_iteration: width as u64 * height as u64,
        gaussians_start: start,
        gaussians_end: tr.len(),
        iterations: args.iters,
        warmup: args.warmup,
        ms_per_iteration: ms_iter,
        ms_per_iteration_min: mn,
        ms_per_iteration_median: med,
        loss_fraction: st.loss / ms_iter,
        stages_ms: st,
        cpu_utilisation: cpu.map(|c| c / wall / cores as f64),
        cpu_ms_per_iteration: cpu.map(|c| c * 1e3 / iters),
        cores,
        peak_heap_bytes: peak_setup.max(peak_iter).saturating_sub(base),
        peak_iteration_heap_bytes: peak_iter.saturating_sub(live),
        live_heap_bytes: live.saturating_sub(base),
        allocations_per_iteration: (a1.0 - a0.0) as f64 / iters,
        allocated_bytes_per_iteration: (a1.1 - a0.1) as f64 / iters,
        setup_seconds: setup,
        machine: super::machine(),
        simd: splat::simd_in_use().into(),
    })
}

/// Runs `chainrule bench train`.
pub fn run(args: TrainBenchArgs) -> CliResult {
    let (w, h) = parse_size(&args.size)?;
    if args.gaussians == 0 {
        return Err(CliError::usage("--gaussians must be at least 1"));
    }
    let r = measure(&args, w, h)?;
    if args.json {
        println!("{}", serde_json::to_string(&r).expect("report serialises"));
        return Ok(());
    }
    let length = r
        .train_iters
        .map_or(String::new(), |n| format!(" (schedules of {n} iterations)"));
    let source = match (&r.data, r.resumed_from) {
        (Some(d), Some(i)) => format!("{d} from iteration {i}{length}"),
        (Some(d), None) => format!("{d}{length}"),
        _ => "synthetic views".to_string(),
    };
    println!(
        "3D training on {source}: {}x{}, {} -> {} Gaussians, {} iterations after {} warm-up ({}, {})",
        r.width,
        r.height,
        r.gaussians_start,
        r.gaussians_end,
        r.iterations,
        r.warmup,
        r.machine,
        r.simd
    );
    println!(
        "  {:.1} ms/iteration (min {:.1}, median {:.1}); CPU utilisation {}, {} CPU ms/iteration",
        r.ms_per_iteration,
        r.ms_per_iteration_min,
        r.ms_per_iteration_median,
        r.cpu_utilisation
            .map_or("n/a".to_string(), |u| format!("{:.0}%", 100.0 * u)),
        r.cpu_ms_per_iteration
            .map_or("n/a".to_string(), |c| format!("{c:.0}"))
    );
    let s = &r.stages_ms;
    for (name, v) in [
        ("projection", s.projection),
        ("binning and sorting", s.binning_and_sorting),
        ("rasterization", s.rasterization),
        ("loss", s.loss),
        ("rasterization backward", s.rasterization_backward),
        ("projection backward", s.projection_backward),
        ("optimiser", s.optimiser),
        ("densification", s.densification),
        ("other", s.other),
    ] {
        println!(
            "  {name:<24}{v:8.2} ms  {:5.1}%",
            100.0 * v / r.ms_per_iteration
        );
    }
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "  peak heap {:.1} MiB (iterations: +{:.1} MiB above {:.1} MiB live)",
        mib(r.peak_heap_bytes),
        mib(r.peak_iteration_heap_bytes),
        mib(r.live_heap_bytes)
    );
    println!(
        "  allocations per iteration: {:.0} ({:.1} MiB)",
        r.allocations_per_iteration,
        mib(r.allocated_bytes_per_iteration as usize)
    );
    Ok(())
}
