//! `chainrule bench render3d`: forward and backward time of one 3D
//! Gaussian-splatting view, and the peak heap memory of the pair.
//!
//! Workload (issue 7): N random Gaussians (default 100,000, SH degree 3,
//! means uniform in a cube of half-width 1, σ between e^−5 and e^−3.5)
//! seen at W×H (default 512×512) from a camera 3 units away with a 50°
//! horizontal field of view; f32 kernels ([`splat::three::render()`] and
//! [`splat::three::render_backward`]), all cores through rayon. Backward
//! is the gradient of every parameter from ∂L/∂RGB of an L2 loss against a
//! grey image.

use std::time::Instant;

use clap::Args;
use serde::Serialize;
use splat::raster;
use splat::three::project::project_forward;
use splat::three::render::{depth_order, render, render_backward, splat_bounds, RenderOptions};
use splat::three::scene::{random_scene, RandomScene};
use splat::three::sh::sh_forward;
use splat::three::Camera;

use crate::alloc::measure_peak;
use crate::error::{CliError, CliResult};

/// Arguments of `chainrule bench render3d`.
#[derive(Debug, Args)]
pub struct Render3dArgs {
    /// Number of Gaussians.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Image size, WxH.
    #[arg(long, default_value = "512x512")]
    pub size: String,
    /// SH degree of the scene (0 to 3).
    #[arg(long, default_value_t = 3)]
    pub sh_degree: usize,
    /// Timed repetitions (minimum and median are reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Seed of the random scene.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `bench render3d` measures.
#[derive(Debug, Serialize)]
pub struct Render3dReport {
    /// Number of Gaussians.
    pub gaussians: usize,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// SH degree.
    pub sh_degree: usize,
    /// Timed repetitions.
    pub reps: usize,
    /// Forward pass (project, SH, sort, rasterize), minimum ms per view.
    pub forward_ms: f64,
    /// Median forward ms.
    pub forward_ms_median: f64,
    /// Backward pass (rasterizer, SH and projection backward), minimum ms
    /// per view.
    pub backward_ms: f64,
    /// Median backward ms.
    pub backward_ms_median: f64,
    /// CPU time of the forward pass summed over threads (ms per view, mean
    /// over the reps; 10 ms resolution per rep, from /proc/self/stat; null
    /// where unavailable). On a shared machine this is steadier than wall
    /// time: with `k` idle cores the wall time is at least this / `k`.
    pub forward_cpu_ms: Option<f64>,
    /// CPU time of the backward pass summed over threads (ms per view).
    pub backward_cpu_ms: Option<f64>,
    /// The forward pass stage by stage (minimum ms over the reps, each
    /// stage timed alone on the same scene): where the time goes.
    pub forward_stages_ms: ForwardStages,
    /// Peak heap bytes added by one forward plus backward (the scene itself
    /// excluded).
    pub peak_bytes: usize,
    /// Gaussians that survived culling.
    pub visible: usize,
    /// Tile-splat pairs drawn.
    pub tile_pairs: usize,
    /// Mean alpha of the image (how much of it is covered).
    pub mean_alpha: f64,
    /// The machine it ran on.
    pub machine: String,
    /// The kernels' vector instruction set (`splat::simd_in_use`:
    /// `CHAINRULE_SIMD` caps it).
    pub simd: String,
}

/// Milliseconds of each stage of the forward pass.
#[derive(Debug, Default, Serialize)]
pub struct ForwardStages {
    /// EWA projection of every Gaussian (means, conics, radii, depths).
    pub project: f64,
    /// Colour from spherical harmonics in the view direction.
    pub sh: f64,
    /// Screen boxes and the depth sort.
    pub bounds_sort: f64,
    /// Tile binning alone (also part of `raster`).
    pub bin: f64,
    /// The tiled rasterizer's forward pass, binning included.
    pub raster: f64,
}

/// CPU seconds (user + system) this process has used, all threads, from
/// `/proc/self/stat` (Linux; assumes 100 clock ticks per second, the kernel's
/// fixed USER_HZ).
pub fn process_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the command name, which is in parentheses
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> CliResult<(u32, u32)> {
    let bad = || CliError::usage(format!("--size: expected WxH like 512x512, got `{s}`"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 || (w as u64) * (h as u64) > 1 << 26 {
        return Err(CliError::usage(format!(
            "--size: {w}x{h} must be 1 to 16384 on each side and at most 2^26 pixels"
        )));
    }
    Ok((w, h))
}

/// Runs the measurements.
pub fn measure(
    n: usize,
    width: u32,
    height: u32,
    sh_degree: usize,
    reps: usize,
    seed: u64,
) -> Render3dReport {
    let g = random_scene::<f32>(&RandomScene {
        n,
        sh_degree,
        extent: 1.0,
        log_scale_min: -5.0,
        log_scale_max: -3.5,
        seed,
    });
    let cam = Camera::look_at(
        [0.0, -3.0, 0.8],
        [0.0; 3],
        [0.0, 0.0, 1.0],
        50f64.to_radians(),
        width,
        height,
    )
    .expect("a valid camera");
    let opts = RenderOptions::default();
    let (mut fwd_t, mut bwd_t) = (Vec::new(), Vec::new());
    let mut peak = 0;
    let mut stats = (0, 0, 0.0);
    let (mut f_cpu, mut b_cpu) = (Some(0.0), Some(0.0));
    let add = |acc: &mut Option<f64>, a: Option<f64>, b: Option<f64>| {
        *acc = match (*acc, a, b) {
            (Some(x), Some(a), Some(b)) => Some(x + (b - a) * 1e3),
            _ => None,
        }
    };
    // one untimed warm-up (thread pool, first touch of memory)
    for rep in 0..=reps {
        let ((f, b, st, cpu), p) = measure_peak(|| {
            let c0 = process_cpu_seconds();
            let t = Instant::now();
            let (img, state) = render(&g, &cam, &opts).expect("shapes are consistent");
            let f = t.elapsed().as_secs_f64() * 1e3;
            let c1 = process_cpu_seconds();
            let d_rgb: Vec<f32> = img.rgb.iter().map(|&v| 2.0 * (v - 0.5)).collect();
            let t = Instant::now();
            let grads = render_backward(&g, &cam, &opts, &state, &d_rgb, None, None)
                .expect("shapes are consistent");
            let b = t.elapsed().as_secs_f64() * 1e3;
            let c2 = process_cpu_seconds();
            std::hint::black_box(&grads);
            let visible = state.projected.radii.iter().filter(|&&r| r > 0).count();
            let mean_alpha =
                img.alpha.iter().map(|&a| a as f64).sum::<f64>() / img.alpha.len() as f64;
            (
                f,
                b,
                (visible, state.raster.tiles.ids.len(), mean_alpha),
                [c0, c1, c2],
            )
        });
        if rep > 0 {
            fwd_t.push(f);
            bwd_t.push(b);
            peak = peak.max(p);
            add(&mut f_cpu, cpu[0], cpu[1]);
            add(&mut b_cpu, cpu[1], cpu[2]);
        }
        stats = st;
    }
    let stages = stage_times(&g, &cam, &opts, sh_degree, reps);
    let (f_min, f_med) = super::min_median(&mut fwd_t);
    let (b_min, b_med) = super::min_median(&mut bwd_t);
    Render3dReport {
        gaussians: n,
        width,
        height,
        sh_degree,
        reps,
        forward_ms: f_min,
        forward_ms_median: f_med,
        backward_ms: b_min,
        backward_ms_median: b_med,
        forward_cpu_ms: f_cpu.map(|v| v / reps as f64),
        backward_cpu_ms: b_cpu.map(|v| v / reps as f64),
        forward_stages_ms: stages,
        peak_bytes: peak,
        visible: stats.0,
        tile_pairs: stats.1,
        mean_alpha: stats.2,
        machine: super::machine(),
        simd: splat::simd_in_use().into(),
    }
}

/// Times each stage of the forward pass alone, `reps` times (minimum).
fn stage_times(
    g: &splat::three::scene::Gaussians<f32>,
    cam: &Camera,
    opts: &RenderOptions,
    sh_degree: usize,
    reps: usize,
) -> ForwardStages {
    let (_, state) = render(g, cam, opts).expect("shapes are consistent");
    let splats = state.splats.view();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let mut best = [f64::INFINITY; 5];
    for _ in 0..reps {
        let t = Instant::now();
        let p = project_forward(g, cam, &opts.project);
        let project = ms(t);
        let t = Instant::now();
        let c = sh_forward(g, cam.center(), sh_degree);
        let sh = ms(t);
        let t = Instant::now();
        let b = splat_bounds(&p);
        let o = depth_order(&p);
        let bounds_sort = ms(t);
        let t = Instant::now();
        let tl = raster::bin_tiles(&splats);
        let bin = ms(t);
        let t = Instant::now();
        let r = raster::forward(&splats).expect("shapes are consistent");
        let raster = ms(t);
        std::hint::black_box((&c, &b, &o, &tl, &r));
        for (m, v) in best.iter_mut().zip([project, sh, bounds_sort, bin, raster]) {
            *m = m.min(v);
        }
    }
    ForwardStages {
        project: best[0],
        sh: best[1],
        bounds_sort: best[2],
        bin: best[3],
        raster: best[4],
    }
}

/// Runs `chainrule bench render3d`.
pub fn run(args: Render3dArgs) -> CliResult {
    let (w, h) = parse_size(&args.size)?;
    if args.reps == 0 {
        return Err(CliError::usage("--reps must be at least 1"));
    }
    if args.sh_degree > 3 {
        return Err(CliError::usage("--sh-degree must be 0 to 3"));
    }
    let r = measure(args.n, w, h, args.sh_degree, args.reps, args.seed);
    if args.json {
        println!("{}", serde_json::to_string(&r).expect("report serialises"));
    } else {
        println!(
            "3D render: {} Gaussians (SH degree {}), {}x{}, {} reps ({}, {})",
            r.gaussians, r.sh_degree, r.width, r.height, r.reps, r.machine, r.simd
        );
        println!(
            "  forward  {:8.2} ms/view (median {:.2})",
            r.forward_ms, r.forward_ms_median
        );
        println!(
            "  backward {:8.2} ms/view (median {:.2})",
            r.backward_ms, r.backward_ms_median
        );
        if let (Some(fc), Some(bc)) = (r.forward_cpu_ms, r.backward_cpu_ms) {
            println!(
                "  CPU time summed over threads: forward {fc:.0} ms, backward {bc:.0} ms per view"
            );
        }
        let st = &r.forward_stages_ms;
        println!(
            "  forward stages (ms): project {:.1}, SH {:.1}, bounds+sort {:.1}, raster {:.1} (binning {:.1})",
            st.project, st.sh, st.bounds_sort, st.raster, st.bin
        );
        println!(
            "  peak heap {:.1} MiB; {} visible, {} tile-splat pairs, mean alpha {:.3}",
            r.peak_bytes as f64 / (1 << 20) as f64,
            r.visible,
            r.tile_pairs,
            r.mean_alpha
        );
    }
    Ok(())
}
