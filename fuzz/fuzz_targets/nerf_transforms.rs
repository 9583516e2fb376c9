//! Fuzzes the NeRF-synthetic `transforms_*.json` reader: any text must give
//! a `DataError` or frames with finite rigid camera-to-world matrices and a
//! field of view in (0, π), never a panic or stack overflow.
//! The body is `chainrule_cli::fuzzing::nerf_transforms`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::nerf_transforms(data));
