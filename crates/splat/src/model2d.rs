//! The 2D image model: N Gaussians in normalised image coordinates, their
//! initialisation, and the map to pixel-space splats for
//! [`crate::raster`].
//!
//! Parameterisation (the JAX peer's, so comparisons are like for like):
//! position `(x, y)` in `[0, 1]²` (the centre of pixel (row i, column j) of
//! a W×H image is at `((j + 0.5)/W, (i + 0.5)/H)`); covariance `Σ = L Lᵀ`
//! with `L = [[l11, 0], [l21, l22]]` stored as `(ln l11, l21/l11, ln l22)`;
//! RGB colour, unconstrained; opacity as a logit (`sigmoid` gives opacity).
//!
//! In pixel units `d_px = (W d.x, H d.y)`, so with `y1 = d.x/l11` and
//! `y2 = (d.y − l21 y1)/l22` the quadratic form `q = y1² + y2²` becomes the
//! conic `a = α² + γ²`, `b = −βγ`, `c = β²` where `α = e^{−c0}/W`,
//! `β = e^{−c2}/H`, `γ = c1 e^{−c2}/W`.

use chainrule::{Scalar, Tape, Var};

use crate::raster::{opacity_aware_bound, Blend, OwnedSplats};
use crate::rng::Rng;

/// Number of parameters per Gaussian (2 mean + 3 chol + 3 colour + 1 opacity).
pub const PARAMS_PER_GAUSSIAN: usize = 9;

/// N Gaussians, stored flat in groups: `mean` (2N) `chol` (3N) `color` (3N)
/// `opacity` (N logits). The flat layout lets Adam run over one slice.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussians2d {
    /// Number of Gaussians.
    pub n: usize,
    /// All parameters, `9N` values in the group order above.
    pub params: Vec<f64>,
}

/// A parameter group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Positions.
    Mean,
    /// Cholesky factors.
    Chol,
    /// Colours.
    Color,
    /// Opacity logits.
    Opacity,
}

/// How to initialise the Gaussians.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// The JAX peer's: means U(0,1)², colours U(0,1)³.
    #[default]
    Peer,
    /// Means U(0,1)², each colour taken from the target at its mean.
    Image,
}

impl Gaussians2d {
    /// Offsets of the groups in `params`.
    pub fn range(&self, g: Group) -> std::ops::Range<usize> {
        let n = self.n;
        match g {
            Group::Mean => 0..2 * n,
            Group::Chol => 2 * n..5 * n,
            Group::Color => 5 * n..8 * n,
            Group::Opacity => 8 * n..9 * n,
        }
    }

    /// The group of parameter `i`.
    pub fn group_of(&self, i: usize) -> Group {
        let n = self.n;
        if i < 2 * n {
            Group::Mean
        } else if i < 5 * n {
            Group::Chol
        } else if i < 8 * n {
            Group::Color
        } else {
            Group::Opacity
        }
    }

    /// From the four groups (lengths must be `2N, 3N, 3N, N`).
    pub fn from_groups(mean: &[f64], chol: &[f64], color: &[f64], opacity: &[f64]) -> Option<Self> {
        let n = opacity.len();
        if mean.len() != 2 * n || chol.len() != 3 * n || color.len() != 3 * n {
            return None;
        }
        let mut params = Vec::with_capacity(9 * n);
        params.extend_from_slice(mean);
        params.extend_from_slice(chol);
        params.extend_from_slice(color);
        params.extend_from_slice(opacity);
        Some(Gaussians2d { n, params })
    }

    /// Appends Gaussians (each `mean` 2, `chol` 3, `color` 3, `opacity` 1
    /// values) and returns, for every parameter of the grown model, the
    /// index it had before (`None` for the new ones), for optimiser state.
    pub fn append(
        &mut self,
        mean: &[f64],
        chol: &[f64],
        color: &[f64],
        opacity: &[f64],
    ) -> Vec<Option<usize>> {
        let (n, m) = (self.n, opacity.len());
        assert!(mean.len() == 2 * m && chol.len() == 3 * m && color.len() == 3 * m);
        let old = std::mem::take(&mut self.params);
        let mut from = Vec::with_capacity(9 * (n + m));
        let mut params = Vec::with_capacity(9 * (n + m));
        for (start, per, extra) in [
            (0, 2, mean),
            (2 * n, 3, chol),
            (5 * n, 3, color),
            (8 * n, 1, opacity),
        ] {
            params.extend_from_slice(&old[start..start + per * n]);
            from.extend((start..start + per * n).map(Some));
            params.extend_from_slice(extra);
            from.extend(std::iter::repeat_n(None, per * m));
        }
        self.params = params;
        self.n = n + m;
        from
    }

    /// Initial Gaussians: means uniform in the unit square, `l11 = l22 =
    /// 0.5/√N`, `l21 = 0`, opacity ½ (logit 0); colours uniform (peer) or
    /// sampled from `target` (RGB, `height × width × 3`) at each mean.
    ///
    /// ```
    /// use splat::model2d::{Gaussians2d, Init};
    /// let g = Gaussians2d::init(100, 0, Init::Peer, None);
    /// assert_eq!(g.params.len(), 900);
    /// ```
    pub fn init(n: usize, seed: u64, init: Init, target: Option<(&[f64], usize, usize)>) -> Self {
        let mut rng = Rng::new(seed);
        let mut mean = Vec::with_capacity(2 * n);
        for _ in 0..2 * n {
            mean.push(rng.uniform());
        }
        let s0 = (0.5 / (n.max(1) as f64).sqrt()).ln();
        let chol: Vec<f64> = (0..n).flat_map(|_| [s0, 0.0, s0]).collect();
        let color: Vec<f64> = match (init, target) {
            (Init::Image, Some((img, w, h))) => (0..n)
                .flat_map(|k| {
                    let j = ((mean[2 * k] * w as f64) as usize).min(w - 1);
                    let i = ((mean[2 * k + 1] * h as f64) as usize).min(h - 1);
                    let p = (i * w + j) * 3;
                    [img[p], img[p + 1], img[p + 2]]
                })
                .collect(),
            _ => (0..3 * n).map(|_| rng.uniform()).collect(),
        };
        let opacity = vec![0.0; n];
        Gaussians2d::from_groups(&mean, &chol, &color, &opacity).expect("lengths match")
    }
}

/// Pixel-space conic of one Gaussian from its stored Cholesky factor.
fn conic_of<T: Scalar>(chol: [T; 3], w: T, h: T) -> [T; 3] {
    let e0 = (-chol[0]).exp();
    let e2 = (-chol[2]).exp();
    let al = e0 / w;
    let be = e2 / h;
    let ga = chol[1] * e2 / w;
    [al * al + ga * ga, -(be * ga), be * be]
}

fn sigmoid<T: Scalar>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// The splats of `g` for a `width × height` image, as plain values (no
/// tape): what rendering a fitted model needs.
pub fn project<T: Scalar>(
    g: &Gaussians2d,
    width: usize,
    height: usize,
    background: [f64; 3],
    blend: Blend,
) -> OwnedSplats<T> {
    let n = g.n;
    let p = &g.params;
    let (w, h) = (T::from_f64(width as f64), T::from_f64(height as f64));
    let t = |x: f64| T::from_f64(x);
    let means: Vec<[T; 2]> = (0..n)
        .map(|k| [t(p[2 * k]) * w, t(p[2 * k + 1]) * h])
        .collect();
    let c0 = 2 * n;
    let conics: Vec<[T; 3]> = (0..n)
        .map(|k| {
            let c = &p[c0 + 3 * k..c0 + 3 * k + 3];
            conic_of([t(c[0]), t(c[1]), t(c[2])], w, h)
        })
        .collect();
    let colors: Vec<T> = p[5 * n..8 * n].iter().map(|&x| t(x)).collect();
    let opacities: Vec<T> = p[8 * n..].iter().map(|&x| sigmoid(t(x))).collect();
    let bounds = (0..n)
        .map(|k| opacity_aware_bound(means[k], conics[k], opacities[k]))
        .collect();
    OwnedSplats {
        width,
        height,
        channels: 3,
        means,
        conics,
        opacities,
        colors,
        bounds,
        order: (0..n as u32).collect(),
        background: background.iter().map(|&b| t(b)).collect(),
        blend,
    }
}

/// The same map on a tape: from the `9N` parameter vars to the rasterizer's
/// inputs `(means 2N, conics 3N, opacities N, colours 3N)` as vars
/// (about 16 nodes per Gaussian).
pub fn project_vars<'t, T: Scalar>(
    n: usize,
    params: &[Var<'t, T>],
    width: usize,
    height: usize,
) -> ProjectedVars<'t, T> {
    let (w, h) = (T::from_f64(width as f64), T::from_f64(height as f64));
    let mut means = Vec::with_capacity(2 * n);
    let mut conics = Vec::with_capacity(3 * n);
    for k in 0..n {
        means.push(params[2 * k] * w);
        means.push(params[2 * k + 1] * h);
    }
    let c0 = 2 * n;
    for k in 0..n {
        let c = &params[c0 + 3 * k..c0 + 3 * k + 3];
        let e0 = (-c[0]).exp();
        let e2 = (-c[2]).exp();
        let al = e0 / w;
        let be = e2 / h;
        let ga = c[1] * e2 / w;
        conics.push(al.square() + ga.square());
        conics.push(-(be * ga));
        conics.push(be.square());
    }
    let colors = params[5 * n..8 * n].to_vec();
    let opacities = params[8 * n..9 * n].iter().map(|v| v.sigmoid()).collect();
    ProjectedVars {
        means,
        conics,
        opacities,
        colors,
    }
}

/// Rasterizer inputs as vars (see [`project_vars`]).
#[derive(Debug)]
pub struct ProjectedVars<'t, T: Scalar> {
    /// Pixel-space means, `2N`.
    pub means: Vec<Var<'t, T>>,
    /// Conics, `3N`.
    pub conics: Vec<Var<'t, T>>,
    /// Opacities, `N`.
    pub opacities: Vec<Var<'t, T>>,
    /// Colours, `3N`.
    pub colors: Vec<Var<'t, T>>,
}

/// Bounds for projected vars, from their values.
pub fn bounds_of<T: Scalar>(p: &ProjectedVars<'_, T>) -> Vec<[T; 4]> {
    let n = p.opacities.len();
    (0..n)
        .map(|k| {
            opacity_aware_bound(
                [p.means[2 * k].value(), p.means[2 * k + 1].value()],
                [
                    p.conics[3 * k].value(),
                    p.conics[3 * k + 1].value(),
                    p.conics[3 * k + 2].value(),
                ],
                p.opacities[k].value(),
            )
        })
        .collect()
}

/// Renders `g` at `width × height` (RGB, row-major), no tape.
pub fn render(
    g: &Gaussians2d,
    width: usize,
    height: usize,
    background: [f64; 3],
    blend: Blend,
) -> Vec<f64> {
    let s = project::<f64>(g, width, height, background, blend);
    crate::raster::forward(&s.view())
        .expect("projection builds consistent shapes")
        .image
}

/// Records the map and the render of `g` on `tape`: returns the parameter
/// vars (`9N`, in [`Gaussians2d::params`] order) and the image vars
/// (`H·W·3`).
pub fn render_on_tape<'t, T: Scalar>(
    tape: &'t Tape<T>,
    g: &Gaussians2d,
    width: usize,
    height: usize,
    background: [f64; 3],
    blend: Blend,
) -> (Vec<Var<'t, T>>, Vec<Var<'t, T>>) {
    let vals: Vec<T> = g.params.iter().map(|&x| T::from_f64(x)).collect();
    let params = tape.vars(&vals);
    let pv = project_vars(g.n, &params, width, height);
    let bounds = bounds_of(&pv);
    let out = crate::raster::rasterize_op(
        tape,
        width,
        height,
        3,
        &pv.means,
        &pv.conics,
        &pv.opacities,
        &pv.colors,
        bounds,
        (0..g.n as u32).collect(),
        background.iter().map(|&b| T::from_f64(b)).collect(),
        blend,
        false,
    )
    .expect("projection builds consistent shapes");
    (params, out.image)
}
