//! A procedural dataset in the NeRF-synthetic layout, so a new user can
//! train at once with no download. The scene is *not* made of Gaussians: a
//! platform, textured spheres and boxes, ray-traced analytically with
//! Lambertian shading, a little specular, hard shadows and 2×2
//! supersampling, on a transparent background (RGBA PNGs, as Blender
//! renders them).
//!
//! World axes are z up; cameras look at the origin from a sphere around it.
//! Training views are random positions on the upper hemisphere, test views
//! an even orbit, as in NeRF-synthetic.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

use super::{DataError, Mat4};

/// Settings of [`write_dataset`].
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Number of training views.
    pub train_views: usize,
    /// Number of test views (the validation split is the same size).
    pub test_views: usize,
    /// Image width and height in pixels.
    pub size: u32,
    /// Seed of the scene's layout and the training cameras.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            train_views: 100,
            test_views: 25,
            size: 200,
            seed: 0,
        }
    }
}

/// Horizontal field of view of every camera (radians), as in the Blender
/// scenes of NeRF-synthetic.
pub const CAMERA_ANGLE_X: f64 = 0.6911112070083618;
/// Distance of the cameras from the origin.
pub const CAMERA_DISTANCE: f64 = 4.0;

type V3 = [f64; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn norm(a: V3) -> V3 {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}
fn add_s(a: V3, b: V3, s: f64) -> V3 {
    [a[0] + b[0] * s, a[1] + b[1] * s, a[2] + b[2] * s]
}

/// How a surface is coloured.
#[derive(Clone, Copy, Debug)]
enum Texture {
    Plain,
    /// Checks of two colours, `n` per unit of the surface parameter.
    Checker(V3, f64),
    /// Stripes along the local z axis.
    Stripes(V3, f64),
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Sphere {
        c: V3,
        r: f64,
    },
    /// A box rotated by `angle` about the z axis.
    Cuboid {
        c: V3,
        half: V3,
        angle: f64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Object {
    shape: Shape,
    color: V3,
    texture: Texture,
    shininess: f64,
}

/// The scene: objects and a directional light.
#[derive(Clone, Debug)]
pub struct Scene {
    objects: Vec<Object>,
    light: V3,
}

impl Scene {
    /// The procedural scene for a seed: a platform, three spheres and two
    /// boxes whose sizes, places and colours vary with the seed.
    pub fn new(seed: u64) -> Scene {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5ce4e);
        let mut jit = |s: f64| rng.random_range(-s..s);
        let mut objects = vec![Object {
            shape: Shape::Cuboid {
                c: [0.0, 0.0, -0.55],
                half: [1.0, 1.0, 0.05],
                angle: 0.0,
            },
            color: [0.85, 0.82, 0.75],
            texture: Texture::Checker([0.35, 0.33, 0.3], 3.0),
            shininess: 0.0,
        }];
        let spheres = [
            (
                [-0.45, -0.35, -0.1],
                0.4,
                [0.85, 0.2, 0.15],
                Texture::Plain,
                0.6,
            ),
            (
                [0.5, -0.3, -0.2],
                0.3,
                [0.15, 0.45, 0.9],
                Texture::Checker([0.95, 0.95, 0.9], 8.0),
                0.3,
            ),
            (
                [0.05, 0.55, 0.05],
                0.3,
                [0.95, 0.75, 0.1],
                Texture::Stripes([0.2, 0.6, 0.25], 10.0),
                0.2,
            ),
        ];
        for (c, r, color, texture, shininess) in spheres {
            objects.push(Object {
                shape: Shape::Sphere {
                    c: [c[0] + jit(0.1), c[1] + jit(0.1), c[2]],
                    r: r * (1.0 + jit(0.15)),
                },
                color,
                texture,
                shininess,
            });
        }
        objects.push(Object {
            shape: Shape::Cuboid {
                c: [0.55 + jit(0.1), 0.45 + jit(0.1), -0.25],
                half: [0.2, 0.2, 0.25],
                angle: 0.5 + jit(0.4),
            },
            color: [0.3, 0.75, 0.35],
            texture: Texture::Stripes([0.95, 0.95, 0.95], 6.0),
            shininess: 0.1,
        });
        objects.push(Object {
            shape: Shape::Cuboid {
                c: [-0.55 + jit(0.1), 0.45 + jit(0.1), -0.35],
                half: [0.25, 0.15, 0.15],
                angle: -0.3 + jit(0.4),
            },
            color: [0.6, 0.35, 0.8],
            texture: Texture::Plain,
            shininess: 0.4,
        });
        Scene {
            objects,
            light: norm([0.4, -0.5, 1.0]),
        }
    }

    /// Nearest hit along a ray: (distance, object index, normal, local
    /// surface coordinates for texturing).
    fn hit(&self, o: V3, d: V3) -> Option<(f64, usize, V3, [f64; 2])> {
        let mut best: Option<(f64, usize, V3, [f64; 2])> = None;
        for (k, obj) in self.objects.iter().enumerate() {
            if let Some((t, n, uv)) = intersect(&obj.shape, o, d) {
                if t > 1e-6 && best.is_none_or(|b| t < b.0) {
                    best = Some((t, k, n, uv));
                }
            }
        }
        best
    }

    /// RGBA of one ray: colour and coverage (alpha 0 for background).
    fn shade(&self, o: V3, d: V3) -> [f64; 4] {
        let Some((t, k, n, uv)) = self.hit(o, d) else {
            return [0.0; 4];
        };
        let obj = &self.objects[k];
        let p = add_s(o, d, t);
        let base = match obj.texture {
            Texture::Plain => obj.color,
            Texture::Checker(c2, f) => {
                if ((uv[0] * f).floor() + (uv[1] * f).floor()).rem_euclid(2.0) < 1.0 {
                    obj.color
                } else {
                    c2
                }
            }
            Texture::Stripes(c2, f) => {
                if (uv[1] * f).floor().rem_euclid(2.0) < 1.0 {
                    obj.color
                } else {
                    c2
                }
            }
        };
        let lit = dot(n, self.light).max(0.0);
        let shadowed = lit > 0.0 && self.hit(add_s(p, n, 1e-4), self.light).is_some();
        let diffuse = if shadowed { 0.0 } else { lit };
        let h = norm(sub(self.light, d));
        let spec = if shadowed || obj.shininess == 0.0 {
            0.0
        } else {
            obj.shininess * dot(n, h).max(0.0).powi(40)
        };
        let mut rgb = [0.0; 3];
        for c in 0..3 {
            rgb[c] = (base[c] * (0.25 + 0.75 * diffuse) + spec).clamp(0.0, 1.0);
        }
        [rgb[0], rgb[1], rgb[2], 1.0]
    }

    /// Renders an RGBA8 image seen by a camera with camera-to-world `c2w`
    /// (OpenGL axes) and horizontal field of view `fov_x`.
    pub fn render(&self, c2w: &Mat4, fov_x: f64, width: u32, height: u32) -> Vec<u8> {
        let f = 0.5 * width as f64 / (0.5 * fov_x).tan();
        let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
        self.render_camera(c2w, width, height, |p| {
            Some([(p[0] - cx) / f, (p[1] - cy) / f, 1.0])
        })
    }

    /// Renders an RGBA8 image through any camera: `ray(p)` is the direction,
    /// in OpenCV camera axes (x right, y down, z forward), seen at pixel
    /// coordinates `p` (pixel centres at +0.5), or `None` where the camera
    /// sees nothing (left transparent). `c2w` is camera-to-world in OpenGL
    /// axes, as elsewhere in this module. 2×2 supersampled.
    pub fn render_camera(
        &self,
        c2w: &Mat4,
        width: u32,
        height: u32,
        ray: impl Fn([f64; 2]) -> Option<[f64; 3]> + Sync,
    ) -> Vec<u8> {
        let origin = [c2w[0][3], c2w[1][3], c2w[2][3]];
        let mut out = vec![0u8; (width * height * 4) as usize];
        out.par_chunks_mut((width * 4) as usize)
            .enumerate()
            .for_each(|(y, row)| {
                for x in 0..width as usize {
                    let mut acc = [0.0; 4];
                    for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                        let Some(d) = ray([x as f64 + sx, y as f64 + sy]) else {
                            continue;
                        };
                        // OpenCV → OpenGL camera axes: flip y and z
                        let dc = [d[0], -d[1], -d[2]];
                        let dw = norm([
                            dot(c2w[0][..3].try_into().expect("3"), dc),
                            dot(c2w[1][..3].try_into().expect("3"), dc),
                            dot(c2w[2][..3].try_into().expect("3"), dc),
                        ]);
                        let s = self.shade(origin, dw);
                        for c in 0..4 {
                            acc[c] += s[c] / 4.0;
                        }
                    }
                    // premultiplied accumulation → straight alpha
                    let a = acc[3];
                    for c in 0..3 {
                        let v = if a > 0.0 { acc[c] / a } else { 0.0 };
                        row[x * 4 + c] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
                    }
                    row[x * 4 + 3] = (a * 255.0).round() as u8;
                }
            });
        out
    }
}

fn intersect(s: &Shape, o: V3, d: V3) -> Option<(f64, V3, [f64; 2])> {
    match *s {
        Shape::Sphere { c, r } => {
            let oc = sub(o, c);
            let b = dot(oc, d);
            let disc = b * b - (dot(oc, oc) - r * r);
            if disc < 0.0 {
                return None;
            }
            let sq = disc.sqrt();
            let t = if -b - sq > 1e-6 { -b - sq } else { -b + sq };
            if t <= 1e-6 {
                return None;
            }
            let n = norm(sub(add_s(o, d, t), c));
            let u = n[1].atan2(n[0]) / std::f64::consts::TAU + 0.5;
            let v = n[2].clamp(-1.0, 1.0).acos() / std::f64::consts::PI;
            Some((t, n, [u, v]))
        }
        Shape::Cuboid { c, half, angle } => {
            let (sa, ca) = angle.sin_cos();
            // into the box's frame (rotation by -angle about z)
            let rot = |v: V3| [ca * v[0] + sa * v[1], -sa * v[0] + ca * v[1], v[2]];
            let lo = rot(sub(o, c));
            let ld = rot(d);
            let (mut tmin, mut tmax) = (f64::NEG_INFINITY, f64::INFINITY);
            let mut axis = 0;
            for k in 0..3 {
                if ld[k].abs() < 1e-12 {
                    if lo[k].abs() > half[k] {
                        return None;
                    }
                    continue;
                }
                let t1 = (-half[k] - lo[k]) / ld[k];
                let t2 = (half[k] - lo[k]) / ld[k];
                let (a, b) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
                if a > tmin {
                    tmin = a;
                    axis = k;
                }
                tmax = tmax.min(b);
            }
            if tmin > tmax || tmax <= 1e-6 || tmin <= 1e-6 {
                return None;
            }
            let p = add_s(lo, ld, tmin);
            let mut ln = [0.0; 3];
            ln[axis] = p[axis].signum();
            // back to world: rotation by +angle about z
            let n = [ca * ln[0] - sa * ln[1], sa * ln[0] + ca * ln[1], ln[2]];
            let uv = match axis {
                0 => [p[1] + half[1], p[2] + half[2]],
                1 => [p[0] + half[0], p[2] + half[2]],
                _ => [p[0] + half[0], p[1] + half[1]],
            };
            Some((tmin, n, uv))
        }
    }
}

/// Camera-to-world (OpenGL axes) of a camera at `eye` looking at the
/// origin with z up.
pub fn look_at_origin(eye: V3) -> Mat4 {
    let fwd = norm(sub([0.0; 3], eye));
    let mut right = cross(fwd, [0.0, 0.0, 1.0]);
    if dot(right, right) < 1e-12 {
        right = [1.0, 0.0, 0.0];
    }
    let right = norm(right);
    let up = cross(right, fwd);
    // columns: x = right, y = up, z = -forward, translation = eye
    [
        [right[0], up[0], -fwd[0], eye[0]],
        [right[1], up[1], -fwd[1], eye[1]],
        [right[2], up[2], -fwd[2], eye[2]],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

fn eye(azimuth: f64, elevation: f64) -> V3 {
    let (se, ce) = elevation.sin_cos();
    let (sa, ca) = azimuth.sin_cos();
    [
        CAMERA_DISTANCE * ce * ca,
        CAMERA_DISTANCE * ce * sa,
        CAMERA_DISTANCE * se,
    ]
}

/// What [`write_dataset`] wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SynthSummary {
    /// Training views written.
    pub train: usize,
    /// Test views written (validation: the same number).
    pub test: usize,
    /// Image size in pixels.
    pub size: u32,
}

/// Writes a NeRF-synthetic dataset to `dir`: `transforms_{train,val,test}.json`
/// and RGBA PNGs under `train/`, `val/`, `test/`. Each file is written
/// atomically (temp file, then rename).
pub fn write_dataset(dir: &Path, opts: &SynthOptions) -> Result<SynthSummary, DataError> {
    if opts.size < 8 || opts.size > 4096 {
        return Err(DataError::invalid(
            dir,
            "size",
            format!("{} is not in 8..=4096", opts.size),
        ));
    }
    if opts.train_views == 0 {
        return Err(DataError::invalid(
            dir,
            "views",
            "at least one training view is needed",
        ));
    }
    let scene = Scene::new(opts.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let train_cams: Vec<Mat4> = (0..opts.train_views)
        .map(|_| {
            let az = rng.random_range(0.0..std::f64::consts::TAU);
            // uniform on the sphere between 8° and 75° of elevation
            let z = rng.random_range(8f64.to_radians().sin()..75f64.to_radians().sin());
            look_at_origin(eye(az, z.asin()))
        })
        .collect();
    let orbit = |n: usize, phase: f64| -> Vec<Mat4> {
        (0..n)
            .map(|k| {
                let az = phase + std::f64::consts::TAU * k as f64 / n as f64;
                look_at_origin(eye(az, 30f64.to_radians()))
            })
            .collect()
    };
    let splits = [
        ("train", train_cams),
        ("val", orbit(opts.test_views, 0.3)),
        ("test", orbit(opts.test_views, 0.0)),
    ];
    for (split, cams) in &splits {
        let sub_dir = dir.join(split);
        std::fs::create_dir_all(&sub_dir).map_err(|e| DataError::io(&sub_dir, e))?;
        let mut frames = Vec::new();
        for (i, c2w) in cams.iter().enumerate() {
            let rgba = scene.render(c2w, CAMERA_ANGLE_X, opts.size, opts.size);
            let path = sub_dir.join(format!("r_{i}.png"));
            let mut png = Vec::new();
            image::RgbaImage::from_raw(opts.size, opts.size, rgba)
                .expect("buffer matches size")
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| DataError::io(&path, e))?;
            write_atomic(&path, &png)?;
            frames.push(json!({
                "file_path": format!("./{split}/r_{i}"),
                "rotation": 0.0,
                "transform_matrix": c2w,
            }));
        }
        let doc = json!({ "camera_angle_x": CAMERA_ANGLE_X, "frames": frames });
        let path = dir.join(format!("transforms_{split}.json"));
        let text = serde_json::to_string_pretty(&doc).expect("JSON serialises");
        write_atomic(&path, text.as_bytes())?;
    }
    Ok(SynthSummary {
        train: opts.train_views,
        test: opts.test_views,
        size: opts.size,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    crate::atomic::write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_at_points_the_camera_at_the_origin() {
        let c2w = look_at_origin([1.0, 2.0, 3.0]);
        // the camera looks down its -z axis: the origin is along -z
        let dir = norm([-1.0, -2.0, -3.0]);
        let minus_z = [-c2w[0][2], -c2w[1][2], -c2w[2][2]];
        assert!((dot(dir, minus_z) - 1.0).abs() < 1e-12);
        assert!(super::super::check_rotation(&c2w).is_ok());
    }

    #[test]
    fn the_scene_is_seen_and_framed() {
        let scene = Scene::new(0);
        let img = scene.render(&look_at_origin(eye(0.7, 0.5)), CAMERA_ANGLE_X, 48, 48);
        let covered = img.chunks(4).filter(|p| p[3] > 0).count();
        // the objects fill a good part of the view but not all of it
        assert!(covered > 48 * 48 / 5 && covered < 48 * 48, "{covered}");
        // corners are background
        assert_eq!(img[3], 0);
        // two seeds give different scenes
        let other = Scene::new(1).render(&look_at_origin(eye(0.7, 0.5)), CAMERA_ANGLE_X, 48, 48);
        assert_ne!(img, other);
    }
}
