//! `chainrule bench WORKLOAD`: measured speed and memory, as JSON for
//! scripts or a short table for people. Targets live here, never in tests.

use clap::{Args, Subcommand};

use crate::error::CliResult;

pub mod ad;
pub mod denormals;
pub mod fit;
pub mod recurrence;
pub mod render3d;
pub mod train;

/// Arguments of `chainrule bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which workload to measure.
    #[command(subcommand)]
    pub workload: Workload,
}

/// The benchmark workloads (each takes negative numbers as values, which
/// validation refuses, rather than as unknown flags).
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Gradient of the scalar recursion s <- s*a + sin(s)*b against plain Rust.
    #[command(allow_negative_numbers = true)]
    Ad(ad::AdArgs),
    /// Reversing long recursions: unrolled tape, store-all, checkpointing
    /// and inversion, on a scalar recursion and on alpha compositing.
    #[command(allow_negative_numbers = true)]
    Recurrence(recurrence::RecurrenceArgs),
    /// 2D Gaussian-splatting image fit: seconds per iteration, peak memory, PSNR.
    #[command(allow_negative_numbers = true)]
    Fit(fit::FitBenchArgs),
    /// Forward and backward of one 3D Gaussian-splatting view (f32).
    #[command(allow_negative_numbers = true)]
    Render3d(render3d::Render3dArgs),
    /// 3D training iterations on an in-memory synthetic scene: ms per
    /// iteration and per stage, CPU utilisation, peak heap.
    #[command(allow_negative_numbers = true)]
    Train(train::TrainBenchArgs),
}

/// Runs `chainrule bench`.
pub fn run(args: BenchArgs) -> CliResult {
    match args.workload {
        Workload::Ad(a) => ad::run(a),
        Workload::Recurrence(a) => recurrence::run(a),
        Workload::Fit(a) => fit::run(a),
        Workload::Render3d(a) => render3d::run(a),
        Workload::Train(a) => train::run(a),
    }
}

/// Minimum and median of a set of timings.
pub fn min_median(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    (xs[0], xs[xs.len() / 2])
}

/// A one-line description of this machine (CPU model and logical cores).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{model}, {cores} logical cores")
}
