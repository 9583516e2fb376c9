//! Fuzzes the six COLMAP readers (`cameras`, `images`, `points3D`, each in
//! `.bin` and `.txt`). The first byte picks the reader, the rest is the
//! file. Any input must give a `DataError` or a value, never a panic, hang
//! or huge allocation (declared counts are checked against the length).
//! The body is `chainrule_cli::fuzzing::colmap`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::colmap(data));
