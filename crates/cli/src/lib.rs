//! The library behind the `chainrule` command: each subcommand is a module
//! with its clap arguments and a `run` function, so tests can call them.
#![warn(missing_docs)]

/// `eprintln!` for this crate: notes, warnings and progress on stderr are
/// best-effort, so a stderr that cannot be written (closed, `2>/dev/full`)
/// loses them instead of panicking (std's `eprintln!` panics) and ending a
/// run whose results are already on stdout or on disk. It shadows std's
/// macro in every module below.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alloc;
pub mod args;
pub mod bench;
pub mod error;
pub mod export;
pub mod fit;
pub mod fuzzing;
pub mod grad;
pub mod interrupt;
pub mod original_3dgs;
pub mod output;
pub mod render;
pub mod render3d;
pub mod scene_input;
pub mod settings;
pub mod synth;
pub mod train;
pub mod view;

pub use error::CliError;
