//! The parameters of a 3D Gaussian scene, and a seeded random scene.

use chainrule::{Gradients, Scalar, Tape, Var};

/// Number of spherical-harmonic coefficients per colour channel for a
/// degree: 1, 4, 9, 16 for degrees 0 to 3.
pub const fn sh_coeffs(degree: usize) -> usize {
    (degree + 1) * (degree + 1)
}

/// The largest supported spherical-harmonic degree.
pub const MAX_SH_DEGREE: usize = 3;

/// N Gaussians, all parameters pre-activation (as the optimiser and the PLY
/// file see them).
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussians<T> {
    /// Centres in world coordinates.
    pub means: Vec<[T; 3]>,
    /// Natural logarithms of the three scales (standard deviations along the
    /// rotated axes).
    pub log_scales: Vec<[T; 3]>,
    /// Rotations as w, x, y, z quaternions; normalised by the model, so any
    /// non-zero length is allowed.
    pub quats: Vec<[T; 4]>,
    /// Opacities as logits: opacity = sigmoid(logit).
    pub opacity_logits: Vec<T>,
    /// Spherical-harmonic colour coefficients, `sh_coeffs(sh_degree) × 3`
    /// per Gaussian, coefficient-major: `sh[(g·K + k)·3 + channel]`.
    pub sh: Vec<T>,
    /// Spherical-harmonic degree, 0 to 3.
    pub sh_degree: usize,
}

impl<T: Scalar> Gaussians<T> {
    /// An empty scene of the given SH degree.
    pub fn new(sh_degree: usize) -> Self {
        assert!(sh_degree <= MAX_SH_DEGREE, "SH degree must be 0 to 3");
        Gaussians {
            means: Vec::new(),
            log_scales: Vec::new(),
            quats: Vec::new(),
            opacity_logits: Vec::new(),
            sh: Vec::new(),
            sh_degree,
        }
    }

    /// An empty scene of the given SH degree with room for `n` Gaussians.
    pub fn with_capacity(sh_degree: usize, n: usize) -> Self {
        let mut g = Self::new(sh_degree);
        g.means.reserve_exact(n);
        g.log_scales.reserve_exact(n);
        g.quats.reserve_exact(n);
        g.opacity_logits.reserve_exact(n);
        g.sh.reserve_exact(n * sh_coeffs(sh_degree) * 3);
        g
    }

    /// Number of Gaussians.
    pub fn len(&self) -> usize {
        self.means.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.means.is_empty()
    }

    /// SH coefficients per channel (1, 4, 9 or 16).
    pub fn sh_coeffs(&self) -> usize {
        sh_coeffs(self.sh_degree)
    }

    /// The same scene in another scalar type (through f64).
    pub fn cast<U: Scalar>(&self) -> Gaussians<U> {
        let c = |v: T| U::from_f64(v.to_f64());
        Gaussians {
            means: self.means.iter().map(|m| m.map(c)).collect(),
            log_scales: self.log_scales.iter().map(|m| m.map(c)).collect(),
            quats: self.quats.iter().map(|m| m.map(c)).collect(),
            opacity_logits: self.opacity_logits.iter().map(|&v| c(v)).collect(),
            sh: self.sh.iter().map(|&v| c(v)).collect(),
            sh_degree: self.sh_degree,
        }
    }

    /// Checks that every array has the length `len()` implies.
    pub fn check_shapes(&self) -> Result<(), String> {
        let n = self.len();
        if self.sh_degree > MAX_SH_DEGREE {
            return Err(format!("SH degree {} is above 3", self.sh_degree));
        }
        if self.log_scales.len() != n || self.quats.len() != n || self.opacity_logits.len() != n {
            return Err(format!(
                "{} means but {} scales, {} rotations, {} opacities",
                n,
                self.log_scales.len(),
                self.quats.len(),
                self.opacity_logits.len()
            ));
        }
        if self.sh.len() != n * self.sh_coeffs() * 3 {
            return Err(format!(
                "{} SH values for {} Gaussians of degree {} (want {})",
                self.sh.len(),
                n,
                self.sh_degree,
                n * self.sh_coeffs() * 3
            ));
        }
        Ok(())
    }

    /// Centre of the axis-aligned bounding box of the means, and the largest
    /// distance of a mean from it (0 for an empty scene).
    pub fn bounds(&self) -> ([f64; 3], f64) {
        if self.is_empty() {
            return ([0.0; 3], 0.0);
        }
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for m in &self.means {
            for k in 0..3 {
                lo[k] = lo[k].min(m[k].to_f64());
                hi[k] = hi[k].max(m[k].to_f64());
            }
        }
        let c = [
            0.5 * (lo[0] + hi[0]),
            0.5 * (lo[1] + hi[1]),
            0.5 * (lo[2] + hi[2]),
        ];
        let r = self
            .means
            .iter()
            .map(|m| {
                let d = [
                    m[0].to_f64() - c[0],
                    m[1].to_f64() - c[1],
                    m[2].to_f64() - c[2],
                ];
                (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
            })
            .fold(0.0, f64::max);
        (c, r)
    }
}

/// A scene's parameters as tape variables, flat and in the order of
/// [`Gaussians`]: `means[3i + k]`, `log_scales[3i + k]`, `quats[4i + k]`,
/// `opacity_logits[i]`, `sh[(i·K + k)·3 + c]`.
#[derive(Clone, Debug)]
pub struct GaussianVars<'t, T: Scalar = f64> {
    /// Means, 3 per Gaussian.
    pub means: Vec<Var<'t, T>>,
    /// Log-scales, 3 per Gaussian.
    pub log_scales: Vec<Var<'t, T>>,
    /// Quaternions (w, x, y, z), 4 per Gaussian.
    pub quats: Vec<Var<'t, T>>,
    /// Opacity logits.
    pub opacity_logits: Vec<Var<'t, T>>,
    /// SH coefficients, `K × 3` per Gaussian.
    pub sh: Vec<Var<'t, T>>,
    /// SH degree.
    pub sh_degree: usize,
}

impl<'t, T: Scalar> GaussianVars<'t, T> {
    /// Records every parameter of `g` as an input on `tape`.
    pub fn new(tape: &'t Tape<T>, g: &Gaussians<T>) -> Self {
        GaussianVars {
            means: tape.vars(&g.means.concat()),
            log_scales: tape.vars(&g.log_scales.concat()),
            quats: tape.vars(&g.quats.concat()),
            opacity_logits: tape.vars(&g.opacity_logits),
            sh: tape.vars(&g.sh),
            sh_degree: g.sh_degree,
        }
    }

    /// Number of Gaussians.
    pub fn len(&self) -> usize {
        self.opacity_logits.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.opacity_logits.is_empty()
    }

    /// The current values.
    pub fn values(&self) -> Gaussians<T> {
        self.map(|v| v.value())
    }

    /// Every variable, in the order means, log-scales, quaternions, opacity
    /// logits, SH.
    pub fn all(&self) -> Vec<Var<'t, T>> {
        let mut v = Vec::with_capacity(
            self.means.len() * 2 + self.quats.len() + self.opacity_logits.len() + self.sh.len(),
        );
        v.extend_from_slice(&self.means);
        v.extend_from_slice(&self.log_scales);
        v.extend_from_slice(&self.quats);
        v.extend_from_slice(&self.opacity_logits);
        v.extend_from_slice(&self.sh);
        v
    }

    /// The gradient of every parameter, shaped like the scene.
    pub fn grads(&self, g: &Gradients<'t, T>) -> Gaussians<T> {
        self.map(|v| g.wrt(v))
    }

    fn map(&self, f: impl Fn(Var<'t, T>) -> T) -> Gaussians<T> {
        let m: Vec<T> = self.means.iter().map(|&v| f(v)).collect();
        let s: Vec<T> = self.log_scales.iter().map(|&v| f(v)).collect();
        let q: Vec<T> = self.quats.iter().map(|&v| f(v)).collect();
        Gaussians {
            means: m.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
            log_scales: s.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
            quats: q
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
            opacity_logits: self.opacity_logits.iter().map(|&v| f(v)).collect(),
            sh: self.sh.iter().map(|&v| f(v)).collect(),
            sh_degree: self.sh_degree,
        }
    }
}

/// The seeded generator of scenes and tests (see [`crate::rng`]).
pub use crate::rng::Rng;

/// Settings of [`random_scene`].
#[derive(Clone, Copy, Debug)]
pub struct RandomScene {
    /// Number of Gaussians.
    pub n: usize,
    /// SH degree (0 to 3).
    pub sh_degree: usize,
    /// Means are uniform in the cube `[-extent, extent]³`.
    pub extent: f64,
    /// Log-scales are uniform in `[log_scale_min, log_scale_max]`.
    pub log_scale_min: f64,
    /// Upper end of the log-scales.
    pub log_scale_max: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for RandomScene {
    fn default() -> Self {
        RandomScene {
            n: 100,
            sh_degree: 3,
            extent: 1.0,
            log_scale_min: -4.0,
            log_scale_max: -2.0,
            seed: 0,
        }
    }
}

/// A random scene: uniform means, random rotations (normalised Gaussian
/// quaternions scaled by a random length), opacity logits in [−2, 3], a DC
/// colour in [−1.5, 1.5] and higher SH bands of size 0.3.
///
/// ```
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 10, ..Default::default() });
/// assert_eq!(g.len(), 10);
/// assert_eq!(g.sh.len(), 10 * 16 * 3);
/// ```
pub fn random_scene<T: Scalar>(s: &RandomScene) -> Gaussians<T> {
    let mut rng = Rng::new(s.seed);
    let mut g = Gaussians::new(s.sh_degree);
    let k = g.sh_coeffs();
    let f = T::from_f64;
    for _ in 0..s.n {
        let e = s.extent;
        g.means.push([0; 3].map(|_| f(rng.range(-e, e))));
        g.log_scales
            .push([0; 3].map(|_| f(rng.range(s.log_scale_min, s.log_scale_max))));
        let len = rng.range(0.5, 2.0);
        let q = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-6);
        g.quats.push(q.map(|v| f(v / n * len)));
        g.opacity_logits.push(f(rng.range(-2.0, 3.0)));
        for i in 0..k * 3 {
            let v = if i < 3 {
                rng.range(-1.5, 1.5)
            } else {
                0.3 * rng.normal()
            };
            g.sh.push(f(v));
        }
    }
    g
}
