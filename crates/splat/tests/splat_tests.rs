//! The splatting crate's integration tests: one module per file beside this
//! one, built as a single test binary (eighteen binaries each linked and
//! optimised the engine's and the renderer's generic code again, most of
//! CI's build time). One file's tests:
//! `cargo test -p splat --test splat_tests -- MODULE::`. `alloc_steady.rs`
//! stays a binary of its own: it installs a counting global allocator.

mod colmap_fixture;
mod common;
mod data;
mod distorted;
mod format_guards;
mod formats;
mod image_decode;
mod l1_ssim;
mod masks;
mod model_loss;
mod nerfstudio;
mod raster_ref;
mod sog;
mod sog_write;
mod three_ply;
mod three_render;
mod three_rules;
mod three_stages;
mod train;
mod train_coarse;
mod train_exposure;
mod train_masks;
mod train_scene_copy;
mod train_threads;
