//! The full 3D pipeline: project → SH colour → depth sort → the shared tiled
//! rasterizer ([`crate::raster`]) → RGB, expected depth and alpha.
//!
//! Depth rides along as a fourth colour channel, so the rasterizer's
//! compositing gives the accumulated depth `Σ z_k α_k T_k` with no extra
//! pass; the expected depth is that divided by the pixel's alpha
//! (`1 − T_final`), 0 where nothing was drawn. Splats are drawn front to
//! back by camera depth (a radix sort of `(depth, index)` keys; the
//! rasterizer's binning keeps that order within every 16×16 tile). A splat
//! covers exactly the pixels where it reaches `α ≥ 1/255`, binned by the
//! box of that region ([`splat_bounds`]); the projection culls a splat
//! whose region holds no pixel centre (the rules and where they come from:
//! [`crate::raster`]).
//!
//! Two ways to run it:
//! - [`render`] and [`render_backward`]: the fused kernels called directly
//!   (what a trainer and the benchmark use; f32 is the fast path);
//! - [`render_op`]: the same stages recorded as custom operations on a
//!   chainrule tape (`project3d`, `sh3d`, `rasterize`), for arbitrary
//!   losses and for checking against [`super::reference::render_reference`].

use chainrule::{Scalar, Tape, Var};
use rayon::prelude::*;

use super::camera::Camera;
pub use super::depth_sort::depth_order;
use super::depth_sort::{depth_order_into, DepthKeys};
use super::project::{
    project_forward_into, project_op, project_sh_backward_seen_into, ProjectOptions, Projected,
    SplatGradsIn,
};
use super::scene::{GaussianVars, Gaussians};
use super::sh::{sh_forward_drawn_into, sh_op};
use crate::raster::{
    self, opacity_aware_bound, Blend, OwnedSplats, RasterError, RasterScratch, Rendered, SplatGrads,
};
use crate::stages::{Lap, StageTimes};

/// Settings of a render.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderOptions {
    /// Projection settings (dilation, antialiasing, Jacobian clamp).
    pub project: ProjectOptions,
    /// SH bands to use (at most the scene's degree); `None`: all of them.
    pub sh_degree: Option<usize>,
    /// Background colour, composited behind the splats.
    pub background: [f64; 3],
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            project: ProjectOptions::default(),
            sh_degree: None,
            background: [0.0; 3],
        }
    }
}

impl RenderOptions {
    fn degree<T>(&self, g: &Gaussians<T>) -> usize {
        self.sh_degree.unwrap_or(g.sh_degree).min(g.sh_degree)
    }
}

/// Alpha below which a pixel's expected depth is 0 (nothing drawn).
pub const DEPTH_ALPHA_EPS: f64 = 1e-10;

/// A rendered view: row-major, `height × width` pixels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderImage<T> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Colour, 3 values per pixel.
    pub rgb: Vec<T>,
    /// Expected camera depth per pixel (0 where alpha is 0).
    pub depth: Vec<T>,
    /// Coverage `1 − T_final` per pixel.
    pub alpha: Vec<T>,
}

/// What [`render_backward`] needs from the forward pass.
#[derive(Clone, Debug, Default)]
pub struct RenderState<T> {
    /// The projected splats.
    pub projected: Projected<T>,
    /// The splats handed to the rasterizer (4 channels: RGB and depth).
    pub splats: OwnedSplats<T>,
    /// The rasterizer's forward pass.
    pub raster: Rendered<T>,
    /// Accumulated depth per pixel (`Σ z α T`).
    pub depth_sum: Vec<T>,
}

/// The screen box of every splat: the box of the region where it reaches
/// `α ≥ 1/255` ([`opacity_aware_bound`], gsplat's opacity-aware box), empty
/// when culled. It only bins and skips: the rasterizer's per-pixel α test
/// decides coverage (see [`crate::raster`]).
pub fn splat_bounds<T: Scalar>(p: &Projected<T>) -> Vec<[T; 4]> {
    let mut out = Vec::new();
    splat_bounds_into(p, &mut out);
    out
}

/// [`splat_bounds`] into `out`, reusing its allocation.
fn splat_bounds_into<T: Scalar>(p: &Projected<T>, out: &mut Vec<[T; 4]>) {
    out.clear();
    out.par_extend(
        (0..p.radii.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| {
                if p.radii[i] == 0 {
                    return [T::one(), T::one(), T::zero(), T::zero()];
                }
                opacity_aware_bound(p.means2d[i], p.conics[i], p.opacities[i])
            }),
    );
}

/// Everything a render and its backward pass allocate, kept from one call
/// to the next: what a trainer holds so that an iteration allocates
/// nothing once the sizes have settled. Use it with [`render_staged_in`]
/// and [`render_backward_staged_in`]; the results are the same bits as
/// [`render_staged`]'s and [`render_backward_staged`]'s.
#[derive(Debug)]
pub struct RenderWorkspace<T> {
    image: RenderImage<T>,
    state: RenderState<T>,
    colors: Vec<[T; 3]>,
    keys: DepthKeys,
    back: BackwardScratch<T>,
    raster: RasterScratch<T>,
}

/// The backward pass's buffers (see [`RenderWorkspace`]).
#[derive(Debug)]
struct BackwardScratch<T> {
    d_image: Vec<T>,
    d_alpha: Vec<T>,
    splat: SplatGrads<T>,
    grads: Gaussians<T>,
    /// Whether the backward pass also makes `means2d_abs`.
    absgrad: bool,
    /// See [`RenderWorkspace::d_means2d_abs`].
    means2d_abs: Vec<[T; 2]>,
    /// See [`RenderWorkspace::set_sh_grads_drawn_only`].
    sh_drawn_only: bool,
}

impl<T: Scalar> Default for BackwardScratch<T> {
    fn default() -> Self {
        BackwardScratch {
            d_image: Vec::new(),
            d_alpha: Vec::new(),
            splat: SplatGrads {
                means: Vec::new(),
                conics: Vec::new(),
                opacities: Vec::new(),
                colors: Vec::new(),
            },
            grads: Gaussians::new(0),
            absgrad: false,
            means2d_abs: Vec::new(),
            sh_drawn_only: false,
        }
    }
}

impl<T: Scalar> Default for RenderWorkspace<T> {
    fn default() -> Self {
        RenderWorkspace {
            image: RenderImage::default(),
            state: RenderState::default(),
            colors: Vec::new(),
            keys: DepthKeys::default(),
            back: BackwardScratch::default(),
            raster: RasterScratch::default(),
        }
    }
}

impl<T: Scalar> RenderWorkspace<T> {
    /// The image of the last [`render_staged_in`].
    pub fn image(&self) -> &RenderImage<T> {
        &self.image
    }

    /// The forward state of the last [`render_staged_in`].
    pub fn state(&self) -> &RenderState<T> {
        &self.state
    }

    /// The scene gradients of the last [`render_backward_staged_in`].
    pub fn grads(&self) -> &Gaussians<T> {
        &self.back.grads
    }

    /// The gradients of the projected 2D means (pixels) of the last
    /// [`render_backward_staged_in`], one per Gaussian.
    pub fn d_means2d(&self) -> &[[T; 2]] {
        &self.back.splat.means
    }

    /// Makes every following [`render_backward_staged_in`] also sum, per
    /// Gaussian, the absolute values of each pixel's contribution to its
    /// 2D mean's gradient (AbsGS's densification statistic; see
    /// [`raster::backward_abs`]), read with
    /// [`RenderWorkspace::d_means2d_abs`]; or stop doing it. Off by
    /// default, and then it costs nothing.
    pub fn set_absgrad(&mut self, on: bool) {
        self.back.absgrad = on;
    }

    /// Makes every following [`render_backward_staged_in`] leave the SH
    /// gradient rows (in [`RenderWorkspace::grads`]) of the Gaussians the
    /// view did not draw (radius 0 in [`RenderWorkspace::state`]'s
    /// projection) as they were instead of zeroing them, or stop doing it
    /// (off by default: every row written). A caller that turns it on reads
    /// those rows as zero without reading them, as the trainer's optimiser
    /// does ([`crate::adam::Undrawn`]); on a capture most Gaussians are
    /// outside a given photo, and their rows are 192 bytes each at SH
    /// degree 3.
    pub fn set_sh_grads_drawn_only(&mut self, on: bool) {
        self.back.sh_drawn_only = on;
    }

    /// With [`RenderWorkspace::set_absgrad`] on, per Gaussian
    /// `[Σ_p |∂L_p/∂x|, Σ_p |∂L_p/∂y|]` over the pixels `p` of the last
    /// [`render_backward_staged_in`] (pixels, like
    /// [`RenderWorkspace::d_means2d`], which is the same sum without the
    /// absolute values); `None` when it is off.
    pub fn d_means2d_abs(&self) -> Option<&[[T; 2]]> {
        self.back.absgrad.then_some(&self.back.means2d_abs[..])
    }
}

/// Renders a view with the fused kernels.
pub fn render<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
) -> Result<(RenderImage<T>, RenderState<T>), RasterError> {
    render_staged(g, cam, opts, &mut StageTimes::default())
}

/// [`render`], adding the time of its stages (projection, sorting and
/// binning, rasterization) to `times`.
pub fn render_staged<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    times: &mut StageTimes,
) -> Result<(RenderImage<T>, RenderState<T>), RasterError> {
    let mut ws = RenderWorkspace::default();
    render_staged_in(g, cam, opts, times, &mut ws)?;
    Ok((ws.image, ws.state))
}

/// [`render_staged`] into `ws` (the image and state are then
/// [`RenderWorkspace::image`] and [`RenderWorkspace::state`]), reusing its
/// buffers.
pub fn render_staged_in<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    times: &mut StageTimes,
    ws: &mut RenderWorkspace<T>,
) -> Result<(), RasterError> {
    let mut lap = Lap::start();
    let RenderWorkspace {
        image: img,
        state,
        colors,
        keys,
        raster: sc,
        ..
    } = ws;
    let RenderState {
        projected,
        splats,
        raster: fwd,
        depth_sum,
    } = state;
    project_forward_into(g, cam, &opts.project, projected);
    // colours of the splats drawn only (a culled one's is never read)
    let radii = Some(&projected.radii[..]);
    sh_forward_drawn_into(g, cam.center(), opts.degree(g), radii, colors);
    // every entry is written below
    splats.colors.resize(4 * colors.len(), T::zero());
    splats
        .colors
        .par_chunks_mut(4)
        .zip(colors.par_iter())
        .zip(&projected.depths)
        .for_each(|((f, c), &d)| f.copy_from_slice(&[c[0], c[1], c[2], d]));
    let bg = opts.background.map(T::from_f64);
    splats.width = cam.width as usize;
    splats.height = cam.height as usize;
    splats.channels = 4;
    splats.means.clear();
    splats.means.extend_from_slice(&projected.means2d);
    splats.conics.clear();
    splats.conics.extend_from_slice(&projected.conics);
    splats.opacities.clear();
    splats.opacities.extend_from_slice(&projected.opacities);
    splats.background.clear();
    splats
        .background
        .extend_from_slice(&[bg[0], bg[1], bg[2], T::zero()]);
    splats.blend = Blend::Over;
    times.projection += lap.lap();
    splat_bounds_into(projected, &mut splats.bounds);
    depth_order_into(projected, &mut splats.order, keys);
    raster::bin_tiles_into(&splats.view(), &mut fwd.tiles, sc);
    times.sort_bin += lap.lap();
    raster::forward_binned_into(&splats.view(), fwd, sc)?;
    let px = splats.width * splats.height;
    img.width = splats.width;
    img.height = splats.height;
    // every entry is written below
    img.rgb.resize(3 * px, T::zero());
    img.depth.resize(px, T::zero());
    img.alpha.resize(px, T::zero());
    depth_sum.resize(px, T::zero());
    let eps = T::from_f64(DEPTH_ALPHA_EPS);
    img.rgb
        .par_chunks_mut(3)
        .zip(&mut img.alpha)
        .zip(&mut img.depth)
        .zip(depth_sum.par_iter_mut())
        .zip(fwd.image.par_chunks_exact(4).zip(&fwd.final_t))
        .for_each(|((((rgb, al), de), ds), (p, &t))| {
            rgb.copy_from_slice(&p[..3]);
            let a = T::one() - t;
            *al = a;
            *ds = p[3];
            *de = if a > eps { p[3] / a } else { T::zero() };
        });
    times.raster += lap.lap();
    Ok(())
}

/// The backward pass of [`render`]: gradients of every scene parameter from
/// the gradients of the RGB image (`3` per pixel) and optionally of the
/// expected depth and the alpha (one per pixel).
pub fn render_backward<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    state: &RenderState<T>,
    d_rgb: &[T],
    d_depth: Option<&[T]>,
    d_alpha: Option<&[T]>,
) -> Result<Gaussians<T>, RasterError> {
    render_backward_with_means2d(g, cam, opts, state, d_rgb, d_depth, d_alpha).map(|(g, _)| g)
}

/// [`render_backward`], also returning the gradients with respect to the
/// projected 2D means in pixels (one per Gaussian; what densification
/// statistics are taken from).
pub fn render_backward_with_means2d<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    state: &RenderState<T>,
    d_rgb: &[T],
    d_depth: Option<&[T]>,
    d_alpha: Option<&[T]>,
) -> Result<(Gaussians<T>, Vec<[T; 2]>), RasterError> {
    let grads = BackwardGrads {
        d_rgb,
        d_depth,
        d_alpha,
    };
    render_backward_staged(g, cam, opts, state, grads, &mut StageTimes::default())
}

/// The gradients a render's backward pass starts from (see
/// [`render_backward`]).
#[derive(Clone, Copy, Debug)]
pub struct BackwardGrads<'a, T> {
    /// ∂L/∂RGB, 3 per pixel.
    pub d_rgb: &'a [T],
    /// ∂L/∂depth, one per pixel.
    pub d_depth: Option<&'a [T]>,
    /// ∂L/∂alpha, one per pixel.
    pub d_alpha: Option<&'a [T]>,
}

/// [`render_backward_with_means2d`], adding the time of its stages
/// (rasterizer backward; colour and projection backward) to `times`.
pub fn render_backward_staged<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    state: &RenderState<T>,
    grads: BackwardGrads<'_, T>,
    times: &mut StageTimes,
) -> Result<(Gaussians<T>, Vec<[T; 2]>), RasterError> {
    let mut back = BackwardScratch::default();
    backward_in(
        g,
        cam,
        opts,
        state,
        grads,
        times,
        &mut back,
        &mut RasterScratch::default(),
    )?;
    Ok((back.grads, back.splat.means))
}

/// [`render_backward_staged`] of the last [`render_staged_in`] into `ws`
/// (the gradients are then [`RenderWorkspace::grads`] and
/// [`RenderWorkspace::d_means2d`]), reusing its buffers. `g`, `cam` and
/// `opts` must be the forward pass's.
pub fn render_backward_staged_in<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    grads: BackwardGrads<'_, T>,
    times: &mut StageTimes,
    ws: &mut RenderWorkspace<T>,
) -> Result<(), RasterError> {
    let RenderWorkspace {
        state,
        back,
        raster,
        ..
    } = ws;
    backward_in(g, cam, opts, state, grads, times, back, raster)
}

#[allow(clippy::too_many_arguments)]
fn backward_in<T: Scalar>(
    g: &Gaussians<T>,
    cam: &Camera,
    opts: &RenderOptions,
    state: &RenderState<T>,
    grads: BackwardGrads<'_, T>,
    times: &mut StageTimes,
    back: &mut BackwardScratch<T>,
    sc: &mut RasterScratch<T>,
) -> Result<(), RasterError> {
    let BackwardGrads {
        d_rgb,
        d_depth,
        d_alpha,
    } = grads;
    let mut lap = Lap::start();
    let px = state.depth_sum.len();
    let len_err = |what, got, expected| RasterError::Length {
        what,
        got,
        expected,
    };
    if d_rgb.len() != 3 * px {
        return Err(len_err("d_rgb", d_rgb.len(), 3 * px));
    }
    let BackwardScratch {
        d_image,
        d_alpha: d_a,
        splat: sg,
        grads: out,
        absgrad,
        means2d_abs,
        sh_drawn_only,
    } = back;
    // every entry is written below
    d_image.resize(4 * px, T::zero());
    d_a.clear();
    match d_alpha {
        Some(a) if a.len() != px => return Err(len_err("d_alpha", a.len(), px)),
        Some(a) => d_a.extend_from_slice(a),
        None => d_a.resize(px, T::zero()),
    }
    if let Some(dd) = d_depth {
        if dd.len() != px {
            return Err(len_err("d_depth", dd.len(), px));
        }
    }
    let eps = T::from_f64(DEPTH_ALPHA_EPS);
    d_image
        .par_chunks_mut(4)
        .zip(d_a.par_iter_mut())
        .enumerate()
        .for_each(|(i, (di, da))| {
            di[..3].copy_from_slice(&d_rgb[3 * i..3 * i + 3]);
            let a = T::one() - state.raster.final_t[i];
            di[3] = match d_depth {
                Some(dd) if a > eps => {
                    // depth = sum / a
                    *da -= dd[i] * state.depth_sum[i] / (a * a);
                    dd[i] / a
                }
                _ => T::zero(),
            };
        });
    // the raster's records die before the SH gradients are made, and
    // those (read by the caller) before the next records: one buffer
    // serves both (the SH gradients' after the second swap)
    sc.swap_records(&mut out.sh);
    raster::backward_into(
        &state.splats.view(),
        &state.raster,
        d_image,
        Some(d_a),
        sg,
        absgrad.then_some(means2d_abs),
        sc,
    )?;
    sc.swap_records(&mut out.sh);
    times.raster_backward += lap.lap();
    // the projection's and the colours' backward passes, in one pass
    let grads = SplatGradsIn {
        means2d: &sg.means,
        conics: &sg.conics,
        opacities: &sg.opacities,
        features: &sg.colors,
    };
    let radii = &state.projected.radii[..];
    let drawn = sh_drawn_only.then_some(radii);
    let sh = (opts.degree(g), drawn);
    let seen = Some((&state.splats.colors[..], radii));
    project_sh_backward_seen_into(g, cam, &opts.project, sh, grads, seen, out);
    times.projection_backward += lap.lap();
    Ok(())
}

/// A view rendered on the tape.
#[derive(Debug)]
pub struct RenderVars<'t, T: Scalar = f64> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Colour, 3 per pixel.
    pub rgb: Vec<Var<'t, T>>,
    /// Expected depth per pixel.
    pub depth: Vec<Var<'t, T>>,
    /// Alpha per pixel.
    pub alpha: Vec<Var<'t, T>>,
}

/// Records a render on `tape`: one custom operation per stage (`project3d`,
/// `sh3d`, `rasterize`) and one division per pixel for the expected depth.
pub fn render_op<'t, T: Scalar>(
    tape: &'t Tape<T>,
    gv: &GaussianVars<'t, T>,
    cam: &Camera,
    opts: &RenderOptions,
) -> Result<RenderVars<'t, T>, RasterError> {
    let degree = opts.sh_degree.unwrap_or(gv.sh_degree).min(gv.sh_degree);
    let p = project_op(tape, gv, cam, &opts.project);
    let colors = sh_op(tape, gv, cam.center(), degree);
    let n = gv.len();
    let projected = p.values();
    let mut feats = Vec::with_capacity(4 * n);
    for i in 0..n {
        feats.extend_from_slice(&colors[3 * i..3 * i + 3]);
        feats.push(p.depths[i]);
    }
    let bg = opts.background.map(T::from_f64);
    let out = raster::rasterize_op(
        tape,
        cam.width as usize,
        cam.height as usize,
        4,
        &p.means2d,
        &p.conics,
        &p.opacities,
        &feats,
        splat_bounds(&projected),
        depth_order(&projected),
        vec![bg[0], bg[1], bg[2], T::zero()],
        Blend::Over,
        true,
    )?;
    let px = out.alpha.len();
    let mut rgb = Vec::with_capacity(3 * px);
    let mut depth = Vec::with_capacity(px);
    let eps = T::from_f64(DEPTH_ALPHA_EPS);
    for (i, &a) in out.alpha.iter().enumerate() {
        rgb.extend_from_slice(&out.image[4 * i..4 * i + 3]);
        let s = out.image[4 * i + 3];
        depth.push(if a.value() > eps {
            s / a
        } else {
            s * T::zero()
        });
    }
    Ok(RenderVars {
        width: cam.width as usize,
        height: cam.height as usize,
        rgb,
        depth,
        alpha: out.alpha,
    })
}
