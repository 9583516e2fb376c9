//! The formulas of COLMAP's camera models, one place for all of them.
//!
//! Each perspective model maps a direction `(x, y, z)` in camera axes (x
//! right, y down, z forward) to a pixel in three steps:
//!
//! 1. **ideal coordinates** `p`: the normal plane `(x/z, y/z)` for pinhole-
//!    type models, or the fisheye plane `θ·(x, y)/r` with `θ = atan(r)`,
//!    `r = |(x/z, y/z)|` (angle from the axis, equidistant) for fisheye
//!    models;
//! 2. **distortion** `p ↦ d(p)` with the model's extra parameters;
//! 3. **focal length and principal point**: `(fx·d₀ + cx, fy·d₁ + cy)`.
//!
//! The distortions, with `u, v` the ideal coordinates and `r² = u² + v²`:
//! - SIMPLE_RADIAL `k`; RADIAL `k1, k2`: `p·(1 + k1 r² + k2 r⁴)`.
//! - OPENCV `k1, k2, p1, p2`: radial as above plus tangential
//!   `(2 p1 uv + p2 (r² + 2u²), 2 p2 uv + p1 (r² + 2v²))`.
//! - FULL_OPENCV `k1, k2, p1, p2, k3, k4, k5, k6`: radial factor
//!   `(1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶)`, tangential
//!   as OPENCV.
//! - OPENCV_FISHEYE `k1..k4` (on the fisheye plane, `θ² = r²`):
//!   `p·(1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸)`; SIMPLE_RADIAL_FISHEYE `k` and
//!   RADIAL_FISHEYE `k1, k2` are its first one or two terms.
//! - THIN_PRISM_FISHEYE `k1, k2, p1, p2, k3, k4, sx1, sy1` (fisheye plane):
//!   radial `1 + k1 r² + k2 r⁴ + k3 r⁶ + k4 r⁸`, OPENCV's tangential, plus
//!   thin prism `(sx1 r², sy1 r²)`.
//! - RAD_TAN_THIN_PRISM_FISHEYE `k0..k5, p0, p1, s0..s3` (fisheye plane):
//!   first `q = p·(1 + Σ kᵢ θ^(2i+2))`, then on `q` (with `ρ² = |q|²`)
//!   tangential `(2 p1 q₀q₁ + p0 (ρ² + 2q₀²), 2 p0 q₀q₁ + p1 (ρ² + 2q₁²))`
//!   and thin prism `(s0 ρ² + s1 ρ⁴, s2 ρ² + s3 ρ⁴)`.
//! - FOV `ω`: `p · atan(2 r tan(ω/2)) / (r ω)` (its limit as r → 0 or
//!   ω → 0 by series).
//! - SIMPLE_DIVISION `k`, DIVISION `k`: the distorted point `q` is the one
//!   with `p = q / (1 + k |q|²)`; forward, `q = p · 2 / (1 + √(1 − 4 k r²))`
//!   (none when `4 k r² > 1`).
//! - EUCM `α, β` (on the normal plane): `p / (α √(β r² + 1) + 1 − α)`.
//! - SIMPLE_FISHEYE, FISHEYE: no distortion on the fisheye plane
//!   (equidistant).
//!
//! EQUIRECTANGULAR (params `w, h`) is not perspective: the azimuth
//! `atan2(x, z)` spans the width and the elevation `asin(−y/|·|)` the
//! height: pixel `(w (azimuth/2π + ½), h (½ − elevation/π))`.
//!
//! The formulas follow COLMAP's documentation and `sensor/models.h`
//! (parameter orders and conventions), written here from the equations.

use std::f64::consts::PI;

/// A COLMAP camera model: its number in `cameras.bin` and its name in
/// `cameras.txt` are [`CameraModel::id`] and [`CameraModel::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CameraModel {
    /// `f, cx, cy` (id 0).
    SimplePinhole,
    /// `fx, fy, cx, cy` (id 1).
    Pinhole,
    /// `f, cx, cy, k` (id 2).
    SimpleRadial,
    /// `f, cx, cy, k1, k2` (id 3).
    Radial,
    /// `fx, fy, cx, cy, k1, k2, p1, p2` (id 4).
    OpenCv,
    /// `fx, fy, cx, cy, k1, k2, k3, k4` (id 5).
    OpenCvFisheye,
    /// `fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6` (id 6).
    FullOpenCv,
    /// `fx, fy, cx, cy, omega` (id 7).
    Fov,
    /// `f, cx, cy, k` (id 8).
    SimpleRadialFisheye,
    /// `f, cx, cy, k1, k2` (id 9).
    RadialFisheye,
    /// `fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, sx1, sy1` (id 10).
    ThinPrismFisheye,
    /// `fx, fy, cx, cy, k0, k1, k2, k3, k4, k5, p0, p1, s0, s1, s2, s3`
    /// (id 11).
    RadTanThinPrismFisheye,
    /// `f, cx, cy, k` (id 12).
    SimpleDivision,
    /// `fx, fy, cx, cy, k` (id 13).
    Division,
    /// `f, cx, cy` (id 14).
    SimpleFisheye,
    /// `fx, fy, cx, cy` (id 15).
    Fisheye,
    /// `fx, fy, cx, cy, alpha, beta` (id 16).
    Eucm,
    /// `w, h` (id 17): a 360°×180° panorama.
    Equirectangular,
}

use CameraModel::*;

/// Every model: (model, id, name, number of parameters, one focal length?).
const TABLE: [(CameraModel, i32, &str, usize, bool); 18] = [
    (SimplePinhole, 0, "SIMPLE_PINHOLE", 3, true),
    (Pinhole, 1, "PINHOLE", 4, false),
    (SimpleRadial, 2, "SIMPLE_RADIAL", 4, true),
    (Radial, 3, "RADIAL", 5, true),
    (OpenCv, 4, "OPENCV", 8, false),
    (OpenCvFisheye, 5, "OPENCV_FISHEYE", 8, false),
    (FullOpenCv, 6, "FULL_OPENCV", 12, false),
    (Fov, 7, "FOV", 5, false),
    (SimpleRadialFisheye, 8, "SIMPLE_RADIAL_FISHEYE", 4, true),
    (RadialFisheye, 9, "RADIAL_FISHEYE", 5, true),
    (ThinPrismFisheye, 10, "THIN_PRISM_FISHEYE", 12, false),
    (
        RadTanThinPrismFisheye,
        11,
        "RAD_TAN_THIN_PRISM_FISHEYE",
        16,
        false,
    ),
    (SimpleDivision, 12, "SIMPLE_DIVISION", 4, true),
    (Division, 13, "DIVISION", 5, false),
    (SimpleFisheye, 14, "SIMPLE_FISHEYE", 3, true),
    (Fisheye, 15, "FISHEYE", 4, false),
    (Eucm, 16, "EUCM", 6, false),
    (Equirectangular, 17, "EQUIRECTANGULAR", 2, false),
];

impl CameraModel {
    /// Every model COLMAP defines, in id order.
    pub fn all() -> impl Iterator<Item = CameraModel> {
        TABLE.iter().map(|r| r.0)
    }

    fn row(self) -> &'static (CameraModel, i32, &'static str, usize, bool) {
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .expect("every model is in TABLE")
    }

    /// The model with COLMAP's number `id`, if there is one.
    pub fn from_id(id: i32) -> Option<CameraModel> {
        TABLE.iter().find(|r| r.1 == id).map(|r| r.0)
    }

    /// The model with COLMAP's name `name` (as in `cameras.txt`).
    pub fn from_name(name: &str) -> Option<CameraModel> {
        TABLE.iter().find(|r| r.2 == name).map(|r| r.0)
    }

    /// COLMAP's number of the model.
    pub fn id(self) -> i32 {
        self.row().1
    }

    /// COLMAP's name of the model.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// How many parameters the model has.
    pub fn num_params(self) -> usize {
        self.row().3
    }

    /// Whether the model has one focal length for both axes.
    pub fn single_focal(self) -> bool {
        self.row().4
    }

    /// Whether the model projects like a pinhole with no distortion.
    pub fn is_pinhole(self) -> bool {
        matches!(self, SimplePinhole | Pinhole)
    }

    /// Whether the ideal coordinates are the fisheye plane (equidistant
    /// angle) rather than the normal plane.
    pub fn is_fisheye(self) -> bool {
        matches!(
            self,
            OpenCvFisheye
                | SimpleRadialFisheye
                | RadialFisheye
                | ThinPrismFisheye
                | RadTanThinPrismFisheye
                | SimpleFisheye
                | Fisheye
        )
    }

    /// Focal lengths and principal point `[fx, fy, cx, cy]` of a parameter
    /// list of this model (`None` for EQUIRECTANGULAR, which has none).
    pub fn pinhole_part(self, p: &[f64]) -> Option<[f64; 4]> {
        match self {
            Equirectangular => None,
            _ if self.row().4 => Some([p[0], p[0], p[1], p[2]]),
            _ => Some([p[0], p[1], p[2], p[3]]),
        }
    }

    /// The distortion parameters (after the focal lengths and principal
    /// point).
    pub fn extra(self, p: &[f64]) -> &[f64] {
        match self {
            Equirectangular => &[],
            _ if self.row().4 => &p[3..],
            _ => &p[4..],
        }
    }

    /// Distortion `d(p)` on the ideal plane; `None` where the model has no
    /// image of `p` (DIVISION beyond its horizon).
    pub fn distort(self, e: &[f64], p: [f64; 2]) -> Option<[f64; 2]> {
        let [u, v] = p;
        let r2 = u * u + v * v;
        let scale = |s: f64| Some([u * s, v * s]);
        match self {
            SimplePinhole | Pinhole | SimpleFisheye | Fisheye | Equirectangular => Some(p),
            SimpleRadial | SimpleRadialFisheye => scale(1.0 + e[0] * r2),
            Radial | RadialFisheye => scale(1.0 + e[0] * r2 + e[1] * r2 * r2),
            OpenCvFisheye => {
                let radial = 1.0 + r2 * (e[0] + r2 * (e[1] + r2 * (e[2] + r2 * e[3])));
                scale(radial)
            }
            OpenCv => {
                let radial = 1.0 + e[0] * r2 + e[1] * r2 * r2;
                Some(add([u * radial, v * radial], tangential(e[2], e[3], u, v)))
            }
            FullOpenCv => {
                let (r4, r6) = (r2 * r2, r2 * r2 * r2);
                let radial = (1.0 + e[0] * r2 + e[1] * r4 + e[4] * r6)
                    / (1.0 + e[5] * r2 + e[6] * r4 + e[7] * r6);
                Some(add([u * radial, v * radial], tangential(e[2], e[3], u, v)))
            }
            ThinPrismFisheye => {
                let radial = 1.0 + r2 * (e[0] + r2 * (e[1] + r2 * (e[4] + r2 * e[5])));
                let t = tangential(e[2], e[3], u, v);
                Some([u * radial + t[0] + e[6] * r2, v * radial + t[1] + e[7] * r2])
            }
            RadTanThinPrismFisheye => {
                let mut radial = 1.0;
                let mut power = 1.0;
                for k in &e[..6] {
                    power *= r2;
                    radial += k * power;
                }
                let q = [u * radial, v * radial];
                let rho2 = q[0] * q[0] + q[1] * q[1];
                let rho4 = rho2 * rho2;
                // p0 pairs with x as p2 does in OPENCV's tangential
                let t = tangential(e[7], e[6], q[0], q[1]);
                Some([
                    q[0] + t[0] + e[8] * rho2 + e[9] * rho4,
                    q[1] + t[1] + e[10] * rho2 + e[11] * rho4,
                ])
            }
            Fov => scale(fov_factor(e[0], r2)),
            SimpleDivision | Division => {
                let disc = 1.0 - 4.0 * e[0] * r2;
                if disc < 0.0 {
                    return None;
                }
                scale(2.0 / (1.0 + disc.sqrt()))
            }
            Eucm => {
                let rho2 = e[1] * r2 + 1.0;
                if rho2 < 0.0 {
                    return None;
                }
                let den = e[0] * rho2.sqrt() + 1.0 - e[0];
                if den < f64::EPSILON {
                    return None;
                }
                scale(1.0 / den)
            }
        }
    }
}

fn add(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] + b[0], a[1] + b[1]]
}

/// OpenCV's tangential terms: `(2 p1 uv + p2 (r² + 2u²), 2 p2 uv + p1 (r² + 2v²))`.
fn tangential(p1: f64, p2: f64, u: f64, v: f64) -> [f64; 2] {
    let r2 = u * u + v * v;
    [
        2.0 * p1 * u * v + p2 * (r2 + 2.0 * u * u),
        2.0 * p2 * u * v + p1 * (r2 + 2.0 * v * v),
    ]
}

/// FOV's radial factor `atan(2 r tan(ω/2)) / (r ω)`, by its series where
/// ω or r is small (the exact form divides 0 by 0 there).
fn fov_factor(omega: f64, r2: f64) -> f64 {
    let w2 = omega * omega;
    if w2 < 1e-4 {
        // series in ω: 1 + ω²/12 − ω² r²/3 (tan(ω/2) ≈ ω/2 + ω³/24 and
        // atan(x) ≈ x − x³/3; COLMAP's branch has the signs of the inverse's
        // series, an error of ω²/6 relative, at most 2e-5 below its 0.01)
        1.0 + w2 / 12.0 - w2 * r2 / 3.0
    } else if r2 < 1e-4 {
        // series in r: (2 t / ω)(1 − (4/3) t² r²), t = tan(ω/2)
        let t = (omega / 2.0).tan();
        2.0 * t / omega * (1.0 - 4.0 / 3.0 * t * t * r2)
    } else {
        let r = r2.sqrt();
        (2.0 * r * (omega / 2.0).tan()).atan() / (r * omega)
    }
}

/// Ideal coordinates of a camera-axes direction: the normal plane
/// `(x/z, y/z)` or, for fisheye models, `θ (x, y)/|(x, y)|` with θ the angle
/// from the optical axis. `None` behind or on the image plane.
pub fn ideal_from_dir(fisheye: bool, d: [f64; 3]) -> Option<[f64; 2]> {
    if d[2] < f64::EPSILON * (d[0].abs() + d[1].abs()).max(1.0) {
        return None;
    }
    let (u, v) = (d[0] / d[2], d[1] / d[2]);
    if !fisheye {
        return Some([u, v]);
    }
    let r = (u * u + v * v).sqrt();
    if r <= f64::EPSILON {
        return Some([u, v]);
    }
    let s = r.atan() / r;
    Some([u * s, v * s])
}

/// The direction `(x/z, y/z, 1)` of ideal coordinates; `None` for a fisheye
/// angle of 90° or more (no point in front of the camera).
pub fn dir_from_ideal(fisheye: bool, p: [f64; 2]) -> Option<[f64; 3]> {
    if !fisheye {
        return Some([p[0], p[1], 1.0]);
    }
    let theta = (p[0] * p[0] + p[1] * p[1]).sqrt();
    if theta >= PI / 2.0 {
        return None;
    }
    if theta <= f64::EPSILON {
        return Some([p[0], p[1], 1.0]);
    }
    let s = theta.tan() / theta;
    Some([p[0] * s, p[1] * s, 1.0])
}

/// EQUIRECTANGULAR: pixel of a direction (any direction but zero).
pub fn equirect_project(w: f64, h: f64, d: [f64; 3]) -> Option<[f64; 2]> {
    let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    if !(n > 0.0 && n.is_finite()) {
        return None;
    }
    let azimuth = d[0].atan2(d[2]);
    let elevation = (-d[1] / n).clamp(-1.0, 1.0).asin();
    Some([w * (azimuth / (2.0 * PI) + 0.5), h * (0.5 - elevation / PI)])
}

/// EQUIRECTANGULAR: unit direction of a pixel.
pub fn equirect_unproject(w: f64, h: f64, px: [f64; 2]) -> [f64; 3] {
    let azimuth = 2.0 * PI * (px[0] / w - 0.5);
    let elevation = PI * (0.5 - px[1] / h);
    let c = elevation.cos();
    [c * azimuth.sin(), -elevation.sin(), c * azimuth.cos()]
}
