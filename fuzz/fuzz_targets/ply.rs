//! Fuzzes the 3DGS PLY reader: any bytes must give a `PlyError` or
//! Gaussians whose every value is finite and whose quaternions are nonzero,
//! never a panic, hang or huge allocation (declared counts are checked
//! against the file's length before reserving).
//! The body is `chainrule_cli::fuzzing::ply`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::ply(data));
