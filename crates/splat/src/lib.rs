//! # splat
//!
//! Differentiable Gaussian splatting on the CPU. Each fused kernel (project,
//! rasterize) has a forward and a hand-written backward pass, joins the
//! chainrule tape as one custom operation, and is tested against a small
//! reference written with plain `chainrule::Var` operations.
#![warn(missing_docs)]

pub mod adam;
pub mod atomic;
pub mod cameras;
pub mod data;
pub mod fit;
pub mod format;
pub mod formats;
pub mod image_io;
pub mod l1_ssim;
pub mod loss;
pub mod machine;
pub mod model2d;
pub mod raster;
pub mod rng;
mod simd;
pub mod stages;
pub mod three;
pub mod train;

/// The vector instruction set the kernels run with in this process
/// (`generic`, `avx2` or `avx512`): the widest the CPU has, unless the
/// `CHAINRULE_SIMD` environment variable caps it. Every set gives the
/// same bits; only the speed differs.
///
/// ```
/// assert!(["generic", "avx2", "avx512"].contains(&splat::simd_in_use()));
/// ```
pub fn simd_in_use() -> &'static str {
    simd::Simd::best().name()
}
