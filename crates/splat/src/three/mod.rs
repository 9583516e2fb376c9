//! 3D Gaussian splatting: scenes of anisotropic 3D Gaussians with
//! spherical-harmonic colour, seen through a pinhole camera.
//!
//! The pipeline has one stage per module, each with a forward kernel generic
//! over [`chainrule::Scalar`] (f32 for speed, f64 for checking), a
//! hand-written backward pass, an operation on the chainrule tape, and a
//! reference written with plain [`chainrule::Var`] operations
//! ([`reference`](mod@reference)) that the tests compare the backward passes against:
//!
//! - [`camera`]: intrinsics, world-to-camera pose (OpenCV axes) and the
//!   conversion from OpenGL/Blender (NeRF) camera-to-world matrices;
//! - [`project`]: Σ = R S Sᵀ Rᵀ, EWA splatting to the image plane, 0.3 px
//!   dilation (optionally Mip-Splatting's opacity compensation), conic,
//!   3σ radius, near/far and frustum culling;
//! - [`sh`]: view-dependent colour from spherical harmonics of degree 0–3;
//! - [`render`](mod@render): depth sort and the shared tiled rasterizer, giving RGB,
//!   expected depth and alpha;
//! - [`ply`]: the PLY layout of the original 3DGS exporter;
//! - [`scene`]: the parameter container and a seeded random scene.

// Small fixed-size matrix code reads best with explicit indices, and the
// negated comparisons are deliberate: `!(x > 0)` is also true for NaN, which
// must cull rather than pass.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod camera;
pub mod compressed_ply;
mod depth_sort;
pub mod ply;
pub mod project;
pub mod reference;
pub mod render;
pub mod scene;
pub mod sh;

pub use camera::Camera;
pub use project::{ProjectOptions, Projected};
pub use render::{render, render_backward, render_op, RenderImage, RenderOptions};
pub use scene::Gaussians;
