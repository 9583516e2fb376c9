//! The command line's integration tests: one module per file beside this
//! one, built as a single test binary (sixteen binaries each linked the
//! engine, the renderer and the CLI's library again). One file's tests:
//! `cargo test -p chainrule-cli --test cli_tests -- MODULE::`.

mod bad_input;
mod bench_train;
mod browser;
mod crash_safety;
mod export_cli;
mod fit_cli;
mod fuzz_corpus;
mod grad_cli;
mod grad_hessian;
mod grad_lang;
mod interrupt;
mod json_errors;
mod render3d;
mod render_capture;
mod train_cli;
mod train_crash;
mod view_browser;
mod view_server;
