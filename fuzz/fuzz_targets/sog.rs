//! Fuzzes the reader of PlayCanvas's SOG (`.sog`: a zip of `meta.json`
//! and lossless WebP images): any bytes must give a `SceneError` or
//! Gaussians whose every value is finite, never a panic, hang or huge
//! allocation; a scene read writes as a compressed PLY that reads back.
//! The body is `chainrule_cli::fuzzing::sog`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::sog(data));
