//! Fuzzes camera parameters: any COLMAP model id, size and parameters
//! through `Intrinsics::new`, projection both ways and the undistortion map
//! (see `chainrule_cli::fuzzing::camera_params`).
//! The body is `chainrule_cli::fuzzing::camera_params`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::camera_params(data));
