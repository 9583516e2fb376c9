//! Fuzzes nerfstudio's `transforms.json` reader: any text must give a
//! `DataError` or a COLMAP model with finite cameras, unit quaternions and
//! distinct photo names, never a panic or stack overflow.
//! The body is `chainrule_cli::fuzzing::nerfstudio_transforms`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::nerfstudio_transforms(data));
