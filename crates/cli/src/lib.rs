//! The library behind the `chainrule` command: each subcommand is a module
//! with its clap arguments and a `run` function, so tests can call them.
#![warn(missing_docs)]

pub mod alloc;
pub mod bench;
pub mod error;
pub mod export;
pub mod fit;
pub mod fuzzing;
pub mod grad;
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
