//! Fuzzes the mask reader (`splat::data::masks::parse`): any bytes as a
//! mask image, against a photo of its size and of another size.
//! The body is `chainrule_cli::fuzzing::masks`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::masks(data));
