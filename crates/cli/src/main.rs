//! The `chainrule` command: gradients from the shell, Gaussian-splatting fits
//! and benchmarks. Every error exits with code 2 and one message on stderr
//! (with `--json`: one JSON object `{"error": ..., "path": ...}` on stdout).

use chainrule_cli::{
    alloc::CountingAlloc, bench, export, fit, grad, render, synth, train, view, CliError,
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

/// (Commands that take numbers allow negative ones, so that `--lr-mean -1`
/// is a value that validation refuses, not a flag clap does not know.)
#[derive(Debug, Subcommand)]
enum Command {
    /// Fit 2D Gaussians to an image (PNG/JPEG, or a built-in target).
    #[command(allow_negative_numbers = true)]
    Fit(fit::FitArgs),
    /// Render a 2D fit (gaussians.json from `fit`) or a 3D scene (a scene
    /// file, a `train` folder, a site, an original 3DGS model folder): an
    /// orbit, a dataset's cameras, or a flight along them.
    #[command(allow_negative_numbers = true)]
    Render(render::RenderArgs),
    /// Differentiate a small program: its value and gradient at given inputs.
    Grad(grad::GradArgs),
    /// Write a NeRF-synthetic dataset of a procedural scene (no download).
    #[command(allow_negative_numbers = true)]
    Synth(synth::SynthArgs),
    /// Train a 3D Gaussian scene on a NeRF-synthetic or COLMAP dataset.
    #[command(allow_negative_numbers = true)]
    Train(train::TrainArgs),
    /// Measure speed and memory of a workload.
    Bench(bench::BenchArgs),
    /// Convert a 3D scene (any that `view` opens, .sog and .spz v4 among
    /// them) to .ply, .splat, .spz, .compressed.ply or .sog.
    Export(export::ExportArgs),
    /// Look at a scene in the browser (an interactive WebGL2 viewer).
    View(view::ViewArgs),
}

/// Whether the command line asks for JSON output: errors then go to stdout
/// as one JSON object (`{"error": ..., "path": ...}`), exit code 2.
fn json_mode() -> bool {
    std::env::args_os().skip(1).any(|a| a == "--json")
}

/// Makes a failed write to stdout an exit rather than a panic (`println!`
/// panics when the stream is gone): a closed pipe (`| head`) ends the
/// program quietly with success, as other Unix tools do; any other failure
/// (a full disk, `> /dev/full`) says so and exits with 2. (The library's
/// notes and warnings on stderr are best-effort and never panic: its
/// `eprintln!`.)
fn exit_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(what) = msg.strip_prefix("failed printing to ") {
            if what.starts_with("stdout") {
                if msg.contains("Broken pipe") {
                    std::process::exit(0);
                }
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "error: cannot write to {what}");
                std::process::exit(2);
            }
        }
        default(info);
    }));
}

fn main() {
    exit_on_closed_output();
    let json = json_mode();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if json && e.use_stderr() => {
            // a usage error in JSON mode: clap's message up to its usage
            // lines, as JSON
            let msg = e.to_string();
            let text: Vec<&str> = msg
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:"))
                .filter(|l| !l.is_empty())
                .collect();
            let text = text.join(" ");
            println!(
                "{}",
                CliError::usage(text.trim_start_matches("error: ")).to_json()
            );
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    let result: Result<(), CliError> = match cli.command {
        Command::Fit(a) => fit::run(a),
        Command::Render(a) => render::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Grad(a) => grad::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Train(a) => train::run(a),
        Command::Export(a) => export::run(a),
        Command::View(a) => view::run(a),
    };
    if let Err(e) = result {
        if json {
            println!("{}", e.to_json());
        } else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
