//! Cameras as COLMAP describes them: every model's projection
//! ([`models`]), and undistortion of photos into pinhole views
//! ([`undistort`]) so that the renderer, which only knows pinholes
//! ([`crate::three::camera`]), can train on any capture.
//!
//! Pixel coordinates follow COLMAP: the image's top-left corner is (0, 0),
//! the first pixel's centre (0.5, 0.5).

pub mod models;
pub mod undistort;

pub use models::CameraModel;

/// A camera's intrinsics: model, image size and parameters in COLMAP's
/// order (see [`CameraModel`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Intrinsics {
    /// The projection model.
    pub model: CameraModel,
    /// Image width in pixels.
    pub width: u64,
    /// Image height in pixels.
    pub height: u64,
    /// Parameters, as many as [`CameraModel::num_params`].
    pub params: Vec<f64>,
}

/// Iterations of the Newton solve in [`Intrinsics::unproject`].
const NEWTON_ITERS: usize = 100;

impl Intrinsics {
    /// Checks the parameters: their count, that they are finite, the image
    /// size (1 to 65,536 per side) and positive focal lengths. The message
    /// says what is wrong.
    pub fn new(
        model: CameraModel,
        width: u64,
        height: u64,
        params: Vec<f64>,
    ) -> Result<Intrinsics, String> {
        if params.len() != model.num_params() {
            return Err(format!(
                "camera model {} takes {} parameters, got {}",
                model.name(),
                model.num_params(),
                params.len()
            ));
        }
        if let Some(k) = params.iter().position(|p| !p.is_finite()) {
            return Err(format!("parameter {k} is not finite"));
        }
        if width == 0 || height == 0 || width > 1 << 16 || height > 1 << 16 {
            return Err(format!("bad image size {width}×{height}"));
        }
        match model.pinhole_part(&params) {
            Some([fx, fy, ..]) if !(fx > 0.0 && fy > 0.0) => {
                return Err("focal length must be positive".into())
            }
            None if !(params[0] > 0.0 && params[1] > 0.0) => {
                return Err("EQUIRECTANGULAR's width and height must be positive".into())
            }
            _ => {}
        }
        Ok(Intrinsics {
            model,
            width,
            height,
            params,
        })
    }

    /// The same camera for an image scaled by `sx` along x and `sy` along y
    /// (focal lengths and principal point scale; distortion, which acts on
    /// the ideal plane, does not). The size is `width·sx`, `height·sy`
    /// rounded.
    pub fn scaled(&self, sx: f64, sy: f64) -> Intrinsics {
        let mut p = self.params.clone();
        if self.model == CameraModel::Equirectangular {
            p[0] *= sx;
            p[1] *= sy;
        } else if self.model.single_focal() {
            // one focal length: keep it one (sx ≈ sy for a scaled copy)
            p[0] *= (sx + sy) / 2.0;
            p[1] *= sx;
            p[2] *= sy;
        } else {
            p[0] *= sx;
            p[1] *= sy;
            p[2] *= sx;
            p[3] *= sy;
        }
        Intrinsics {
            model: self.model,
            width: ((self.width as f64 * sx).round() as u64).max(1),
            height: ((self.height as f64 * sy).round() as u64).max(1),
            params: p,
        }
    }

    /// The pixel a direction in camera axes lands on (x right, y down, z
    /// forward); `None` where the model has no image of it (behind the
    /// camera for perspective models).
    pub fn project(&self, d: [f64; 3]) -> Option<[f64; 2]> {
        let Some([fx, fy, cx, cy]) = self.model.pinhole_part(&self.params) else {
            return models::equirect_project(self.params[0], self.params[1], d);
        };
        let p = models::ideal_from_dir(self.model.is_fisheye(), d)?;
        let q = self.model.distort(self.model.extra(&self.params), p)?;
        let px = [fx * q[0] + cx, fy * q[1] + cy];
        (px[0].is_finite() && px[1].is_finite()).then_some(px)
    }

    /// The direction (in camera axes, `z = 1` for perspective models, unit
    /// length for EQUIRECTANGULAR) whose projection is the pixel `px`;
    /// `None` where Newton's method on the distortion does not converge
    /// (outside the region where the model is invertible).
    pub fn unproject(&self, px: [f64; 2]) -> Option<[f64; 3]> {
        let d = match self.model.pinhole_part(&self.params) {
            None => models::equirect_unproject(self.params[0], self.params[1], px),
            Some([fx, fy, cx, cy]) => {
                let target = [(px[0] - cx) / fx, (px[1] - cy) / fy];
                let p = invert_distortion(self.model, self.model.extra(&self.params), target)?;
                models::dir_from_ideal(self.model.is_fisheye(), p)?
            }
        };
        // extreme parameters (a panorama 1e-300 pixels wide) overflow
        d.iter().all(|v| v.is_finite()).then_some(d)
    }
}

/// Solves `distort(p) = target` for `p` by Newton's method with a
/// finite-difference Jacobian and a trust region (steps at most 10% of |p|
/// or 0.1), starting at `p = target`. Converged when the residual is below
/// 1e-13 (relative), which is far below 1e-6 pixels for any focal length a
/// camera has.
fn invert_distortion(model: CameraModel, e: &[f64], target: [f64; 2]) -> Option<[f64; 2]> {
    let mut p = target;
    let tol = 1e-13 * (1.0 + target[0].abs() + target[1].abs());
    for _ in 0..NEWTON_ITERS {
        let d = model.distort(e, p)?;
        let res = [d[0] - target[0], d[1] - target[1]];
        if res[0].abs().max(res[1].abs()) <= tol {
            return Some(p);
        }
        let h = 1e-6 * (1.0 + p[0].abs().max(p[1].abs()));
        let col = |k: usize| -> Option<[f64; 2]> {
            let mut a = p;
            let mut b = p;
            a[k] += h;
            b[k] -= h;
            let (da, db) = (model.distort(e, a)?, model.distort(e, b)?);
            Some([(da[0] - db[0]) / (2.0 * h), (da[1] - db[1]) / (2.0 * h)])
        };
        let (j0, j1) = (col(0)?, col(1)?);
        let det = j0[0] * j1[1] - j1[0] * j0[1];
        if det.abs() <= 1e-300 || !det.is_finite() {
            return None;
        }
        let mut step = [
            (j1[1] * res[0] - j1[0] * res[1]) / det,
            (-j0[1] * res[0] + j0[0] * res[1]) / det,
        ];
        let n = (step[0] * step[0] + step[1] * step[1]).sqrt();
        let radius = (0.1 * (p[0] * p[0] + p[1] * p[1]).sqrt()).max(0.1);
        if n > radius {
            step = [step[0] * radius / n, step[1] * radius / n];
        }
        p = [p[0] - step[0], p[1] - step[1]];
        if !(p[0].is_finite() && p[1].is_finite()) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests;
