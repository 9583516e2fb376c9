//! The tiled rasterizer: projected 2D splats in, an image out, and the
//! hand-written backward pass that needs no per-step storage.
//!
//! This is the shared kernel of the 2D image fit and of the 3D renderer.
//! Inputs are splats already projected to the image plane, in **pixel**
//! coordinates: the centre of pixel (row `i`, column `j`) is at
//! `(j + 0.5, i + 0.5)`.
//!
//! For one pixel `p` and splat `k` with mean `m`, conic `(a, b, c)` (the
//! inverse 2D covariance), opacity `o` and colour `c_k` (`C` channels):
//!
//! ```text
//! d     = p − m
//! q     = a d.x² + 2 b d.x d.y + c d.y²
//! α     = min(0.99, o · exp(−q/2))         (Blend::Over)
//! ```
//!
//! The rules of [`Blend::Over`] are those of the reference rasterizers
//! (the original 3DGS CUDA rasterizer, `forward.cu`/`backward.cu`, and
//! gsplat's tile rasterizer), and each is kept here:
//!
//! - **Coverage: exactly the pixels where `α ≥ 1/255`.** Both reference
//!   kernels skip a splat at a pixel when `o · exp(−q/2)` (capped) is below
//!   1/255. Neither cuts at a per-pixel box: the original bins each splat
//!   into the tiles of the square `mean ± ⌈3 √λ_max⌉` (`auxiliary.h`'s
//!   `getRect`), gsplat into those of its opacity-aware box
//!   `mean ± ⌈√(2 ln(255 o)) · σ_axis⌉` (its projection kernel), which holds
//!   the whole `α ≥ 1/255` region. Here a splat's `bounds` box is a binning
//!   and skipping aid that the caller makes conservative with
//!   [`opacity_aware_bound`] (gsplat's box before rounding up, a hair
//!   wider), so the box test never removes a pixel the α test keeps and
//!   the image is exactly the untiled per-pixel rule.
//! - **Cap `α ≤ 0.99`** ([`ALPHA_MAX`], the original's `min(0.99f, …)`;
//!   gsplat caps at 0.999), so `1 − α ≥ 0.01` and the backward pass can
//!   recover `T` by division.
//! - **Stop before `T < 1e-4`** ([`T_MIN`]): as in both, a pixel stops at
//!   the first splat that would bring its transmittance below `1e-4`;
//!   that splat and all later ones are left out.
//! - `q ≤ 0` is not skipped separately (the original's `power > 0` test):
//!   for a positive definite conic it only happens at the centre.
//! - Pixel centres at `(j + 0.5, i + 0.5)` (gsplat; the original gets the
//!   same by shifting means by −½ in `ndc2Pix`).
//!
//! Because the bound test never cuts, the tiling is only an acceleration:
//! the output does not depend on tile size.
//!
//! [`Blend::Sum`] is the order-free accumulated sum of GaussianImage:
//! `C = Σ c_k α_k + background`, `α = o · exp(−q/2)` (no clamp, no
//! transmittance; still skipped below 1/255).
//!
//! The backward pass walks each pixel's list back to front from its last
//! contributor, recovering `T_k = T_{k+1} / (1 − α_k)` by division and
//! carrying the colour accumulated behind, so it stores nothing per step.
//! A row of a splat that is at most 8 columns wide in a tile (its
//! rectangle there, or the row's chord of its ellipse, computed with a
//! rounding margin) is walked as an 8-lane half block in place. Its
//! gradient sums are per lane and summed over the lanes once per splat, in
//! a fixed order.
//! Tiles run in parallel (rayon) in both passes. In the backward pass
//! each tile writes its gradients into its part of one record buffer,
//! aligned with its list, and each splat's records are summed in tile
//! order (in parallel over ranges of splats, each range walking the whole
//! list), so results are deterministic.
//!
//! Binning lists a splat only in the tiles of its box where some pixel
//! centre of its rectangle may have `q ≤ q_cut` (an exact test on the
//! clipped rectangle, with a rounding margin): the other tiles' pixels
//! would all skip it. Its counting sort runs in parallel chunks of the
//! order with the sequential sort's output.
//!
//! Both passes draw a tile splat by splat: the splats are gathered 32 at a
//! time into a packed buffer, and each row of a splat's rectangle is one
//! branch-free block of 16 lanes (a tile row) that the compiler vectorises;
//! an AVX2 or AVX-512 build of the loops is chosen at run time (the
//! widest the CPU has, in both passes; their lane arrays are 64-byte
//! aligned, see `lanes::Aligned`). Rows of the rectangle
//! where the ellipse misses the tile's pixel centres are skipped by a
//! conservative test, so skipping changes nothing. The exponential is
//! [`Scalar::exp_fast`] (for `f32` a polynomial within 2 ulp; for `f64` the
//! library's), and every lane does the same operations in the same order
//! on every path, so the forward and backward passes agree on which splats
//! each pixel kept, and the output does not depend on the CPU's vector
//! width or the thread count.
//!
//! The files: `bin.rs` (bounds, pixel rectangles, tile lists),
//! `forward.rs` and `backward.rs` (the two passes), `lanes.rs` (what
//! both passes' tile loops share: packed splats, batches, the row test),
//! `scratch.rs` (the buffers kept between calls), `op.rs` (the tape
//! operation); the instruction sets are the crate's `simd` module's.

use chainrule::Scalar;

mod backward;
mod bin;
mod forward;
mod lanes;
mod op;
mod scratch;
#[cfg(test)]
mod tests;

pub(crate) use backward::backward_into;
pub use backward::{backward, backward_abs};
pub(crate) use bin::bin_tiles_into;
pub use bin::{bin_tiles, opacity_aware_bound, pixel_rect};
pub(crate) use forward::forward_binned_into;
pub use forward::{forward, forward_binned};
pub use op::{rasterize_op, OwnedSplats, RasterOutput};
pub(crate) use scratch::{room, RasterScratch};

/// Tile edge in pixels.
pub const TILE: usize = 16;

/// Largest α a splat may take in [`Blend::Over`].
pub const ALPHA_MAX: f64 = 0.99;

/// Splats with α below this are skipped at that pixel.
pub const ALPHA_MIN: f64 = 1.0 / 255.0;

/// A pixel stops before a splat that would bring its transmittance below this.
pub const T_MIN: f64 = 1e-4;

/// How splats combine at a pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Blend {
    /// Front-to-back "over" compositing with transmittance (3DGS, gsplat).
    #[default]
    Over,
    /// Order-free weighted sum `Σ c α` (GaussianImage).
    Sum,
}

/// The splats to draw, already in pixel coordinates.
///
/// `N` splats; every slice indexed by splat has `N` entries (`colors` has
/// `N · channels`, splat-major).
#[derive(Clone, Copy, Debug)]
pub struct Splats<'a, T> {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Channels per splat colour and per output pixel (3 for RGB).
    pub channels: usize,
    /// Centres `(x, y)` in pixels.
    pub means: &'a [[T; 2]],
    /// Inverse covariances `(a, b, c)`: `q = a dx² + 2 b dx dy + c dy²`.
    pub conics: &'a [[T; 3]],
    /// Opacities after activation, in `[0, 1]`.
    pub opacities: &'a [T],
    /// Colours (or any features), `channels` per splat.
    pub colors: &'a [T],
    /// Screen-space boxes `(x_min, y_min, x_max, y_max)` in pixels; a splat
    /// only touches pixels whose centre lies inside. An empty box
    /// (`x_min > x_max`) culls the splat.
    pub bounds: &'a [[T; 4]],
    /// Front-to-back order of the splats (indices into the slices above).
    /// Splats not listed are not drawn.
    pub order: &'a [u32],
    /// Background colour, `channels` values.
    pub background: &'a [T],
    /// How splats combine.
    pub blend: Blend,
}

/// Per-tile lists of splat indices, each in the given front-to-back order
/// (compressed rows: tile `t` holds `ids[offsets[t]..offsets[t + 1]]`).
#[derive(Clone, Debug, Default)]
pub struct TileLists {
    /// Tiles across.
    pub tiles_x: usize,
    /// Tiles down.
    pub tiles_y: usize,
    /// `tiles_x · tiles_y + 1` offsets into `ids`.
    pub offsets: Vec<u32>,
    /// Splat indices, tile by tile.
    pub ids: Vec<u32>,
    /// Per splat (indexed like the splat slices), the covered pixels
    /// `[j_min, i_min, j_max, i_max]` (inclusive), see [`pixel_rect`].
    pub rects: Vec<Option<[u32; 4]>>,
}

/// What the forward pass produces (and the backward pass needs).
#[derive(Clone, Debug, Default)]
pub struct Rendered<T> {
    /// The image, `height × width × channels`, row-major, channels last.
    pub image: Vec<T>,
    /// Final transmittance per pixel (`alpha = 1 − T_final`); 1 for
    /// [`Blend::Sum`].
    pub final_t: Vec<T>,
    /// Per pixel, one past the position in its tile's list of the last splat
    /// that contributed (0: none). The backward walk starts there.
    pub last: Vec<u32>,
    /// The tile lists used.
    pub tiles: TileLists,
}

/// Gradients of the loss with respect to the splats (same layout as
/// [`Splats`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplatGrads<T> {
    /// ∂L/∂means.
    pub means: Vec<[T; 2]>,
    /// ∂L/∂conics.
    pub conics: Vec<[T; 3]>,
    /// ∂L/∂opacities.
    pub opacities: Vec<T>,
    /// ∂L/∂colors.
    pub colors: Vec<T>,
}

/// Errors in the shape of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RasterError {
    /// A slice has the wrong length.
    #[error("rasterize: {what} has {got} entries, expected {expected}")]
    Length {
        /// Which slice.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length it should have.
        expected: usize,
    },
    /// An entry of `order` is not a splat index.
    #[error("rasterize: order[{at}] = {index} but there are only {n} splats")]
    Order {
        /// Position in `order`.
        at: usize,
        /// The bad index.
        index: u32,
        /// Number of splats.
        n: usize,
    },
}

impl<T: Scalar> Splats<'_, T> {
    /// Number of splats.
    pub fn len(&self) -> usize {
        self.means.len()
    }

    /// Whether there are no splats.
    pub fn is_empty(&self) -> bool {
        self.means.is_empty()
    }

    /// Checks that every slice has the length it should.
    pub fn validate(&self) -> Result<(), RasterError> {
        let n = self.means.len();
        let check = |what, got, expected| {
            if got == expected {
                Ok(())
            } else {
                Err(RasterError::Length {
                    what,
                    got,
                    expected,
                })
            }
        };
        check("conics", self.conics.len(), n)?;
        check("opacities", self.opacities.len(), n)?;
        check("colors", self.colors.len(), n * self.channels)?;
        check("bounds", self.bounds.len(), n)?;
        check("background", self.background.len(), self.channels)?;
        for (at, &index) in self.order.iter().enumerate() {
            if index as usize >= n {
                return Err(RasterError::Order { at, index, n });
            }
        }
        Ok(())
    }
}
