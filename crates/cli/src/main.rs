//! The `chainrule` command: gradients from the shell, Gaussian-splatting fits
//! and benchmarks. Every error exits with code 2 and one message on stderr.

use chainrule_cli::{
    alloc::CountingAlloc, bench, export, fit, grad, render, synth, train, CliError,
};
use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// chainrule: reverse-mode automatic differentiation and differentiable
/// Gaussian splatting.
#[derive(Debug, Parser)]
#[command(name = "chainrule", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fit 2D Gaussians to an image (PNG/JPEG, or a built-in target).
    Fit(fit::FitArgs),
    /// Render a saved model (gaussians.json from `fit`) at any resolution.
    Render(render::RenderArgs),
    /// Differentiate a small program: its value and gradient at given inputs.
    Grad(grad::GradArgs),
    /// Write a NeRF-synthetic dataset of a procedural scene (no download).
    Synth(synth::SynthArgs),
    /// Train a 3D Gaussian scene on a NeRF-synthetic or COLMAP dataset.
    Train(train::TrainArgs),
    /// Measure speed and memory of a workload.
    Bench(bench::BenchArgs),
    /// Convert a 3D scene to .ply, .splat or .spz.
    Export(export::ExportArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        Command::Fit(a) => fit::run(a),
        Command::Render(a) => render::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Grad(a) => grad::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Train(a) => train::run(a),
        Command::Export(a) => export::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
