//! Pinhole cameras in OpenCV/COLMAP axes: x right, y down, z forward.
//!
//! A point `p` in world coordinates is at `R p + t` in camera coordinates
//! (`R` = [`Camera::rotation`], `t` = [`Camera::translation`]: the
//! world-to-camera pose, as COLMAP's `images.txt` stores it) and lands at
//! `(fx x/z + cx, fy y/z + cy)` in pixel coordinates, whose origin is the
//! top-left corner of the image (x to the right, y down).
//!
//! NeRF data (Blender, `transforms_*.json`) stores camera-to-world matrices in
//! OpenGL axes (x right, y up, z backward: the camera looks down −z).
//! [`Camera::from_opengl_c2w`] converts: flip the y and z axes of the camera
//! (`c2w_cv = c2w_gl · diag(1, −1, −1)`), then invert the rigid transform
//! (`R = c2w_cvᵀ`, `t = −R · centre`).

/// A pinhole camera: intrinsics, world-to-camera pose, image size and the
/// depth range that is rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Focal length along x, pixels.
    pub fx: f64,
    /// Focal length along y, pixels.
    pub fy: f64,
    /// Principal point x, pixels.
    pub cx: f64,
    /// Principal point y, pixels.
    pub cy: f64,
    /// World-to-camera rotation (row-major; rows are the camera's right,
    /// down and forward axes in world coordinates).
    pub rotation: [[f64; 3]; 3],
    /// World-to-camera translation.
    pub translation: [f64; 3],
    /// Near plane: Gaussians whose centre has camera depth `z <= near` are
    /// culled.
    pub near: f64,
    /// Far plane: Gaussians with `z >= far` are culled.
    pub far: f64,
}

/// Default near plane (gsplat's).
pub const DEFAULT_NEAR: f64 = 0.01;
/// Default far plane.
pub const DEFAULT_FAR: f64 = 1e10;

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn normalize(a: [f64; 3]) -> Option<[f64; 3]> {
    let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    (n > 1e-12 && n.is_finite()).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

impl Camera {
    /// A camera from intrinsics and a world-to-camera pose, with the default
    /// near and far planes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        width: u32,
        height: u32,
        fx: f64,
        fy: f64,
        cx: f64,
        cy: f64,
        rotation: [[f64; 3]; 3],
        translation: [f64; 3],
    ) -> Self {
        Camera {
            width,
            height,
            fx,
            fy,
            cx,
            cy,
            rotation,
            translation,
            near: DEFAULT_NEAR,
            far: DEFAULT_FAR,
        }
    }

    /// Focal length for a horizontal field of view (radians) and width, as
    /// NeRF's `camera_angle_x`: `fx = width / (2 tan(fov_x / 2))`.
    pub fn focal_from_fov(fov: f64, size: u32) -> f64 {
        0.5 * size as f64 / (0.5 * fov).tan()
    }

    /// A camera at `eye` looking at `target`, with `up` the world direction
    /// that appears upward in the image; square pixels, principal point at
    /// the image centre, horizontal field of view `fov_x` (radians).
    /// `None` if `eye == target` or `up` is parallel to the view direction.
    ///
    /// ```
    /// use splat::three::Camera;
    /// let cam = Camera::look_at([0.0, 0.0, -4.0], [0.0; 3], [0.0, -1.0, 0.0], 1.0, 64, 48).unwrap();
    /// // the target projects to the image centre
    /// let p = cam.to_camera([0.0; 3]);
    /// assert!((p[2] - 4.0).abs() < 1e-12);
    /// ```
    pub fn look_at(
        eye: [f64; 3],
        target: [f64; 3],
        up: [f64; 3],
        fov_x: f64,
        width: u32,
        height: u32,
    ) -> Option<Self> {
        let f = normalize(sub(target, eye))?;
        let r = normalize(cross(f, up))?;
        let d = cross(f, r);
        let rotation = [r, d, f];
        let focal = Self::focal_from_fov(fov_x, width);
        let mut cam = Camera::new(
            width,
            height,
            focal,
            focal,
            0.5 * width as f64,
            0.5 * height as f64,
            rotation,
            [0.0; 3],
        );
        let re = cam.rotate(eye);
        cam.translation = [-re[0], -re[1], -re[2]];
        Some(cam)
    }

    /// A camera from a camera-to-world matrix in OpenGL/Blender axes (x
    /// right, y up, camera looking down −z), as NeRF's `transform_matrix`
    /// (the top 3×4 block is used).
    pub fn from_opengl_c2w(
        c2w: [[f64; 4]; 4],
        fx: f64,
        fy: f64,
        cx: f64,
        cy: f64,
        width: u32,
        height: u32,
    ) -> Self {
        // columns of the OpenCV camera-to-world rotation: x, -y, -z of OpenGL
        let mut rotation = [[0.0; 3]; 3];
        for (k, sign) in [1.0, -1.0, -1.0].into_iter().enumerate() {
            for (i, row) in c2w.iter().take(3).enumerate() {
                // R_w2c = R_c2wᵀ: row k of R is column k of c2w
                rotation[k][i] = sign * row[k];
            }
        }
        let centre = [c2w[0][3], c2w[1][3], c2w[2][3]];
        let mut cam = Camera::new(width, height, fx, fy, cx, cy, rotation, [0.0; 3]);
        let rc = cam.rotate(centre);
        cam.translation = [-rc[0], -rc[1], -rc[2]];
        cam
    }

    /// `R p` (rotation only).
    pub fn rotate(&self, p: [f64; 3]) -> [f64; 3] {
        let r = &self.rotation;
        [
            r[0][0] * p[0] + r[0][1] * p[1] + r[0][2] * p[2],
            r[1][0] * p[0] + r[1][1] * p[1] + r[1][2] * p[2],
            r[2][0] * p[0] + r[2][1] * p[1] + r[2][2] * p[2],
        ]
    }

    /// A world point in camera coordinates, `R p + t`.
    pub fn to_camera(&self, p: [f64; 3]) -> [f64; 3] {
        let q = self.rotate(p);
        [
            q[0] + self.translation[0],
            q[1] + self.translation[1],
            q[2] + self.translation[2],
        ]
    }

    /// The camera centre in world coordinates, `−Rᵀ t`.
    pub fn center(&self) -> [f64; 3] {
        let (r, t) = (&self.rotation, &self.translation);
        let mut c = [0.0; 3];
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = -(r[0][i] * t[0] + r[1][i] * t[1] + r[2][i] * t[2]);
        }
        c
    }

    /// Pixel coordinates of a world point (None at or behind the camera
    /// plane).
    pub fn project_point(&self, p: [f64; 3]) -> Option<[f64; 2]> {
        let c = self.to_camera(p);
        (c[2] > 0.0).then(|| {
            [
                self.fx * c[0] / c[2] + self.cx,
                self.fy * c[1] / c[2] + self.cy,
            ]
        })
    }

    /// The `i`-th of `n` cameras on a horizontal circle of `radius` around
    /// `center` (world z is up; cameras raised by `elevation` radians above
    /// the circle's plane), looking at the centre.
    #[allow(clippy::too_many_arguments)]
    pub fn orbit(
        center: [f64; 3],
        radius: f64,
        elevation: f64,
        i: usize,
        n: usize,
        fov_x: f64,
        width: u32,
        height: u32,
    ) -> Option<Self> {
        let a = std::f64::consts::TAU * i as f64 / n.max(1) as f64;
        let (se, ce) = elevation.sin_cos();
        let eye = [
            center[0] + radius * ce * a.cos(),
            center[1] + radius * ce * a.sin(),
            center[2] + radius * se,
        ];
        Self::look_at(eye, center, [0.0, 0.0, 1.0], fov_x, width, height)
    }

    /// Checks that the camera can render: positive size and focal lengths,
    /// finite values, `0 < near < far`, an orthonormal rotation.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 {
            return Err(format!(
                "image size {}x{} must be positive",
                self.width, self.height
            ));
        }
        let vals = [self.fx, self.fy, self.cx, self.cy, self.near, self.far];
        if vals.iter().any(|v| v.is_nan())
            || [self.fx, self.fy, self.cx, self.cy]
                .iter()
                .any(|v| !v.is_finite())
        {
            return Err("camera intrinsics must be finite".into());
        }
        if !(self.fx > 0.0 && self.fy > 0.0) {
            return Err(format!(
                "focal lengths must be positive (fx {}, fy {})",
                self.fx, self.fy
            ));
        }
        if !(self.near > 0.0 && self.far > self.near) {
            return Err(format!(
                "need 0 < near < far (near {}, far {})",
                self.near, self.far
            ));
        }
        let r = &self.rotation;
        for i in 0..3 {
            for j in 0..3 {
                let d: f64 = (0..3).map(|k| r[i][k] * r[j][k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                if !((d - want).abs() < 1e-6) {
                    return Err("camera rotation is not orthonormal".into());
                }
            }
        }
        if self.translation.iter().any(|v| !v.is_finite()) {
            return Err("camera translation must be finite".into());
        }
        Ok(())
    }
}
