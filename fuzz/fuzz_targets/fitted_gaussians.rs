//! Fuzzes the fitted-Gaussians format of `chainrule fit` (`gaussians.json`):
//! any text must give a `FormatError` or a file whose model builds, has
//! finite values and survives a write/read round trip, never a panic.
//! The body is `chainrule_cli::fuzzing::fitted_gaussians`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::fitted_gaussians(data));
