//! The `chainrule` command: gradients from the shell, Gaussian-splatting fits
//! and benchmarks. Every error exits with code 2 and one message on stderr
//! (with `--json`: one JSON object `{"error": ..., "path": ...}` on stdout,
//! with `"line"` and `"column"` too for a `grad` program wrong at a place).
//! Ctrl-C during `fit` or `train` saves the result so far, then ends the
//! process by the signal (exit code 130 on Windows; `interrupt`).

use chainrule_cli::{
    alloc::CountingAlloc, bench, export, fit, grad, render, synth, train, view, CliError,
};
use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};

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
/// is a value that validation refuses, not a flag clap does not know; one
/// clap would not read as a number, `-1e-4` or `-.5`, is joined to its
/// option first: [`join_negative_values`].)
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
    /// Train a 3D Gaussian scene on a COLMAP, nerfstudio or NeRF-synthetic dataset.
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

/// The command line with each negative number that clap would read as a
/// flag joined to the option before it (`--lr-mean -1e-4` becomes
/// `--lr-mean=-1e-4`): clap takes a negative value only when it is all
/// digits (`-1`, `-0.5`), not `-1e-4` or `-.5`. Only where that option
/// takes a value in the (sub)command it is given to, and not after `--`.
fn join_negative_values(args: Vec<OsString>) -> Vec<OsString> {
    let root = Cli::command();
    let mut cmd = &root;
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    out.extend(it.next());
    while let Some(a) = it.next() {
        let text = a.to_str().unwrap_or("");
        if text == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        if let Some(sub) = cmd.find_subcommand(text) {
            cmd = sub;
            out.push(a);
            continue;
        }
        let negative = |v: &OsString| {
            v.to_str()
                .is_some_and(|v| v.starts_with('-') && v.parse::<f64>().is_ok())
        };
        let takes_value = text.strip_prefix("--").is_some_and(|long| {
            !long.contains('=')
                && cmd
                    .get_arguments()
                    .any(|arg| arg.get_long() == Some(long) && arg.get_action().takes_values())
        });
        match it.peek() {
            Some(v) if takes_value && negative(v) => {
                let mut joined = a;
                joined.push("=");
                joined.push(it.next().expect("peeked"));
                out.push(joined);
            }
            _ => out.push(a),
        }
    }
    out
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
    chainrule_cli::interrupt::install();
    let json = json_mode();
    let cli = match Cli::try_parse_from(join_negative_values(std::env::args_os().collect())) {
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
    // a loop Ctrl-C stopped has saved its result: the command still says
    // that it did not run to its end
    chainrule_cli::interrupt::end_if_requested();
}

#[cfg(test)]
mod tests {
    use super::join_negative_values;
    use std::ffi::OsString;

    fn join(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(OsString::from).collect();
        join_negative_values(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn negative_numbers_join_the_options_that_take_them() {
        assert_eq!(
            join(&["c", "train", "d", "--lr-mean", "-1e-4", "--iters", "-.5"]),
            ["c", "train", "d", "--lr-mean=-1e-4", "--iters=-.5"]
        );
        // a nested subcommand's options, and a flag that takes no value
        assert_eq!(
            join(&["c", "bench", "fit", "--iters", "-2e3", "--json", "-1"]),
            ["c", "bench", "fit", "--iters=-2e3", "--json", "-1"]
        );
        // not after `--`, not a word, and not an option of another command
        assert_eq!(
            join(&["c", "train", "--", "--lr-mean", "-1e-4"]),
            ["c", "train", "--", "--lr-mean", "-1e-4"]
        );
        assert_eq!(
            join(&["c", "train", "--lr-mean", "-x"]),
            ["c", "train", "--lr-mean", "-x"]
        );
        assert_eq!(
            join(&["c", "export", "--lr-mean", "-1e-4"]),
            ["c", "export", "--lr-mean", "-1e-4"]
        );
    }
}
