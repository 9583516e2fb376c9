//! The `chainrule` command: gradients from the shell, Gaussian-splatting fits
//! and benchmarks. Every error exits with code 2 and one message on stderr.

use chainrule_cli::{alloc::CountingAlloc, bench, grad, synth, CliError};
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
    /// Measure speed and memory of a workload.
    Bench(bench::BenchArgs),
    /// Differentiate a small program: its value and gradient at given inputs.
    Grad(grad::GradArgs),
    /// Write a NeRF-synthetic dataset of a procedural scene (no download).
    Synth(synth::SynthArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        Command::Bench(a) => bench::run(a),
        Command::Grad(a) => grad::run(a),
        Command::Synth(a) => synth::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
