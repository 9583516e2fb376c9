//! Fuzzes the gradient language end to end: any bytes must either be
//! rejected with a LangError or give a value and gradients, never panic,
//! hang or overflow the stack.
//! The body is `chainrule_cli::fuzzing::grad_lang`, which `cargo test` also runs
//! over this target's corpus on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::grad_lang(data));
