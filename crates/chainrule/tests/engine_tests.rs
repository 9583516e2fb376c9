//! The engine's integration tests: one module per file beside this one,
//! built as a single test binary (seven binaries each linked and optimised
//! the engine's generic code again). One file's tests:
//! `cargo test -p chainrule --test engine_tests -- MODULE::`.

mod compiled_remat;
mod compiled_steps;
mod higher_order;
mod ops;
mod properties;
mod recursion;
mod recursion_strategies;
mod seed;
