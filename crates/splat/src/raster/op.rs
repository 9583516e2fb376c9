//! The rasterizer as one custom operation on a tape.

use super::*;
use chainrule::{Tape, Var};
use std::sync::Arc;

/// Rasterization as one custom operation on a tape.
///
/// Inputs (all `Var`s on `tape`): `means` (`2N`, x y per splat), `conics`
/// (`3N`), `opacities` (`N`), `colors` (`C·N`). The bounds, order and
/// background are constants in `spec` (its slices for those fields are used;
/// its value slices are ignored and taken from the `Var`s). Returns the image
/// (`H·W·C` vars) and, when `with_alpha`, the per-pixel alpha (`H·W` vars,
/// `1 − T_final`) as one op.
#[allow(clippy::too_many_arguments)]
pub fn rasterize_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    width: usize,
    height: usize,
    channels: usize,
    means: &[Var<'t, T>],
    conics: &[Var<'t, T>],
    opacities: &[Var<'t, T>],
    colors: &[Var<'t, T>],
    bounds: Vec<[T; 4]>,
    order: Vec<u32>,
    background: Vec<T>,
    blend: Blend,
    with_alpha: bool,
) -> Result<RasterOutput<'t, T>, RasterError> {
    let n = opacities.len();
    let owned = OwnedSplats {
        width,
        height,
        channels,
        means: pairs(means),
        conics: triples(conics),
        opacities: opacities.iter().map(|v| v.value()).collect(),
        colors: colors.iter().map(|v| v.value()).collect(),
        bounds,
        order,
        background,
        blend,
    };
    if owned.means.len() != n || means.len() != 2 * n {
        return Err(RasterError::Length {
            what: "means",
            got: means.len(),
            expected: 2 * n,
        });
    }
    if conics.len() != 3 * n {
        return Err(RasterError::Length {
            what: "conics",
            got: conics.len(),
            expected: 3 * n,
        });
    }
    let fwd = forward(&owned.view())?;
    let pixels = width * height;
    let mut outputs = fwd.image.clone();
    if with_alpha {
        outputs.extend(fwd.final_t.iter().map(|&t| T::one() - t));
    }
    let mut inputs = Vec::with_capacity(6 * n + colors.len());
    inputs.extend_from_slice(means);
    inputs.extend_from_slice(conics);
    inputs.extend_from_slice(opacities);
    inputs.extend_from_slice(colors);
    let state = Arc::new((owned, fwd));
    let st = Arc::clone(&state);
    let n_img = pixels * channels;
    let outs = tape.custom_op("rasterize", &inputs, outputs, move |gy, gx| {
        let (owned, fwd) = &*st;
        let s = owned.view();
        let d_alpha = if with_alpha { Some(&gy[n_img..]) } else { None };
        let g = backward(&s, fwd, &gy[..n_img], d_alpha).expect("shapes checked in forward");
        for k in 0..n {
            gx[2 * k] += g.means[k][0];
            gx[2 * k + 1] += g.means[k][1];
            for c in 0..3 {
                gx[2 * n + 3 * k + c] += g.conics[k][c];
            }
            gx[5 * n + k] += g.opacities[k];
        }
        for (dst, src) in gx[6 * n..].iter_mut().zip(&g.colors) {
            *dst += *src;
        }
    });
    let (image, alpha) = if with_alpha {
        let (a, b) = outs.split_at(n_img);
        (a.to_vec(), b.to_vec())
    } else {
        (outs, Vec::new())
    };
    Ok(RasterOutput {
        image,
        alpha,
        last: state.1.last.clone(),
    })
}

pub(super) fn pairs<T: Scalar>(v: &[Var<'_, T>]) -> Vec<[T; 2]> {
    v.chunks_exact(2)
        .map(|p| [p[0].value(), p[1].value()])
        .collect()
}

pub(super) fn triples<T: Scalar>(v: &[Var<'_, T>]) -> Vec<[T; 3]> {
    v.chunks_exact(3)
        .map(|p| [p[0].value(), p[1].value(), p[2].value()])
        .collect()
}

/// What [`rasterize_op`] returns.
#[derive(Debug)]
pub struct RasterOutput<'t, T: Scalar> {
    /// The image, `H·W·C` vars, row-major, channels last.
    pub image: Vec<Var<'t, T>>,
    /// Per-pixel alpha `1 − T_final` (empty unless asked for).
    pub alpha: Vec<Var<'t, T>>,
    /// Per pixel, one past the list position of its last contributor (0:
    /// no splat reached it).
    pub last: Vec<u32>,
}

/// Owned copies of a [`Splats`] description (what the custom op keeps for
/// its backward pass).
#[derive(Clone, Debug, Default)]
pub struct OwnedSplats<T> {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Channels.
    pub channels: usize,
    /// Means in pixels.
    pub means: Vec<[T; 2]>,
    /// Conics.
    pub conics: Vec<[T; 3]>,
    /// Opacities.
    pub opacities: Vec<T>,
    /// Colours, `channels` per splat.
    pub colors: Vec<T>,
    /// Bounds.
    pub bounds: Vec<[T; 4]>,
    /// Front-to-back order.
    pub order: Vec<u32>,
    /// Background.
    pub background: Vec<T>,
    /// Blend mode.
    pub blend: Blend,
}

impl<T: Scalar> OwnedSplats<T> {
    /// A borrowed view for [`forward()`] and [`backward()`].
    pub fn view(&self) -> Splats<'_, T> {
        Splats {
            width: self.width,
            height: self.height,
            channels: self.channels,
            means: &self.means,
            conics: &self.conics,
            opacities: &self.opacities,
            colors: &self.colors,
            bounds: &self.bounds,
            order: &self.order,
            background: &self.background,
            blend: self.blend,
        }
    }
}
