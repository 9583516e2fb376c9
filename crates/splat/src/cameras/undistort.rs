//! Undistortion: a photo taken through any [`Intrinsics`] resampled, once at
//! load, into a pinhole view, or, for a 360° panorama, into the six 90°
//! faces of a cube ([`parts_for`]).
//!
//! **The pinhole** ([`pinhole_for`]) is chosen much as COLMAP's
//! `image_undistorter` does with its defaults: the focal lengths and
//! principal point of the model, and an image size scaled along each axis so
//! that the output holds only pixels that have a source in the photo (the
//! borders of the photo, unprojected, bound the output), the scale kept in
//! [0.2, 2]. Where the clamp or a border's curvature leaves output pixels
//! without a source (corners, fisheye lenses), those pixels are masked.
//! Two departures keep a nearly undistorted photo as it is: the borders are
//! measured from the first pixel's centre on both sides (COLMAP measures
//! the left and top ones from the image's edge, so a camera without
//! distortion loses a column and a row), and the image grows or shrinks by
//! whole pixels on each side, the principal point moving with it (COLMAP
//! scales the principal point with the size, which puts every output pixel
//! centre up to half a pixel off the photo's: a SIMPLE_RADIAL capture with
//! k ≈ 0 came out 319×239 with each pixel interpolated half-way between
//! four).
//!
//! **Resampling** ([`Remap`]): each output pixel's centre is unprojected by
//! the pinhole and projected by the model into the photo, where the photo is
//! sampled with a Lanczos-3 kernel (separable, 6×6 taps, weights normalised
//! to sum to one; edge pixels repeated within the photo's area, but a 360°
//! panorama's columns wrap around its seam), and the
//! result is clamped to the range of the taps' values so that the kernel's
//! negative lobes add no ringing beyond what the photo holds. Bilinear
//! interpolation (what COLMAP's `image_undistorter` and OpenCV's `remap`
//! use by default) averages neighbours at every fractional offset and
//! blurs each photo by a different amount: on the distorted room capture
//! its undistorted held-out photos were 28.8 dB from the true pinhole
//! photos, 29.5 dB with this kernel (BENCHMARKS.md, issue 14, fourth
//! session). An output pixel whose source falls outside the photo has mask
//! 0 and is never painted: its colour is the fill value given, and
//! training ignores it.

use rayon::prelude::*;

use super::Intrinsics;

/// A pinhole camera (the output of undistortion).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pinhole {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Focal length x, pixels.
    pub fx: f64,
    /// Focal length y, pixels.
    pub fy: f64,
    /// Principal point x, pixels.
    pub cx: f64,
    /// Principal point y, pixels.
    pub cy: f64,
}

/// Smallest and largest scale of the output size (COLMAP's defaults).
const MIN_SCALE: f64 = 0.2;
const MAX_SCALE: f64 = 2.0;

/// A rotation as its rows: a view's x, y and z axes given in the axes of
/// the camera that took the photo (both x right, y down, z forward).
pub type Rotation = [[f64; 3]; 3];

/// The rotation that leaves the axes as they are.
pub const IDENTITY: Rotation = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// The six faces of the cube a panorama is cut into, by name, each a 90°
/// pinhole view from the panorama's centre: along the camera's axis
/// (`front`), turned right, back and left about its y axis, and up and
/// down (`up` looks along −y with the panorama's back at its top, `down`
/// along +y with the front at its top, so that the cameras' mean up is
/// the panorama's).
pub const FACES: [(&str, Rotation); 6] = [
    ("front", IDENTITY),
    (
        "right",
        [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
    ),
    (
        "back",
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
    ),
    ("left", [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),
    ("up", [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    ("down", [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
];

/// One pinhole view that a photo is resampled into: the photo's own
/// undistorted view, or one face of a panorama.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    /// The view's camera.
    pub pinhole: Pinhole,
    /// The view's axes in the photo camera's ([`Rotation`]): [`IDENTITY`]
    /// but for a panorama's faces. A view's world-to-camera rotation is
    /// this times the photo's.
    pub rotation: Rotation,
    /// The panorama's face it is (a name of [`FACES`]); none for a photo
    /// of one view.
    pub face: Option<&'static str>,
}

/// The views a photo of `cam` is resampled into: for a 360° panorama
/// (EQUIRECTANGULAR), the six faces of a cube ([`FACES`]), each a square
/// pinhole of 90° whose focal length is the panorama's angular resolution
/// at the equator (from its width: a face is `width / π` pixels wide), so
/// that together they hold every direction once; for any other camera
/// the one view [`pinhole_for`] chooses.
pub fn parts_for(cam: &Intrinsics) -> Vec<Part> {
    let pinhole = pinhole_for(cam);
    if cam.model.pinhole_part(&cam.params).is_some() {
        return vec![Part {
            pinhole,
            rotation: IDENTITY,
            face: None,
        }];
    }
    FACES
        .iter()
        .map(|&(face, rotation)| Part {
            pinhole,
            rotation,
            face: Some(face),
        })
        .collect()
}

/// The name of a panorama's face `face` of the photo `name`: `@face` put
/// before the extension (`pano/R001.jpg` → `pano/R001@front.jpg`), so that
/// each face's renders and scores are named apart.
pub fn face_name(name: &str, face: &str) -> String {
    // (an extension is a dot after the last folder's `/`, not leading)
    let file = name.rfind('/').map_or(0, |i| i + 1);
    match name[file..].rfind('.').filter(|&d| d > 0) {
        Some(d) => format!("{}@{face}{}", &name[..file + d], &name[file + d..]),
        None => format!("{name}@{face}"),
    }
}

/// The pinhole that a photo of `cam` is undistorted into (see the module
/// docs). A pinhole model gives itself; a panorama gives the pinhole of
/// each face of [`parts_for`].
pub fn pinhole_for(cam: &Intrinsics) -> Pinhole {
    let (w, h) = (cam.width as f64, cam.height as f64);
    let Some([fx, fy, cx, cy]) = cam.model.pinhole_part(&cam.params) else {
        // a panorama: its angular resolution at the equator (from the image
        // width, which bounds the output size whatever the parameters
        // say), a square of 90° (tan 45° = 1)
        let side = (w / std::f64::consts::PI).round().max(1.0);
        return Pinhole {
            width: side as u32,
            height: side as u32,
            fx: side / 2.0,
            fy: side / 2.0,
            cx: side / 2.0,
            cy: side / 2.0,
        };
    };
    let same = Pinhole {
        width: cam.width as u32,
        height: cam.height as u32,
        fx,
        fy,
        cx,
        cy,
    };
    if cam.model.is_pinhole() {
        return same;
    }
    // where the photo's borders land in the pinhole: (min, max) of x along
    // the left and right borders, of y along the top and bottom ones
    let to_pinhole = |px: [f64; 2]| -> Option<[f64; 2]> {
        let d = cam.unproject(px)?;
        (d[2] > 0.0).then(|| [fx * d[0] / d[2] + cx, fy * d[1] / d[2] + cy])
    };
    let mut left = (f64::MAX, f64::MIN);
    let mut right = left;
    let mut top = left;
    let mut bottom = left;
    let widen = |r: &mut (f64, f64), v: f64| *r = (r.0.min(v), r.1.max(v));
    for y in 0..cam.height {
        let yc = y as f64 + 0.5;
        if let Some(p) = to_pinhole([0.5, yc]) {
            widen(&mut left, p[0]);
        }
        if let Some(p) = to_pinhole([w - 0.5, yc]) {
            widen(&mut right, p[0]);
        }
    }
    for x in 0..cam.width {
        let xc = x as f64 + 0.5;
        if let Some(p) = to_pinhole([xc, 0.5]) {
            widen(&mut top, p[1]);
        }
        if let Some(p) = to_pinhole([xc, h - 0.5]) {
            widen(&mut bottom, p[1]);
        }
    }
    // the scale that keeps only pixels with a source: the innermost border
    // point on each side bounds the output (the larger of the two sides'
    // needs decides, as the principal point keeps its relative place),
    // measured from the centres of the first and last pixels; a side with
    // no border point (all beyond 90° of a fisheye) limits nothing
    let inner = |c: f64, size: f64, lo: f64, hi: f64| -> f64 {
        let need = ((c - 0.5) / (c - lo)).max((size - 0.5 - c) / (hi - c));
        if need > 0.0 {
            (1.0 / need).clamp(MIN_SCALE, MAX_SCALE)
        } else {
            MAX_SCALE
        }
    };
    let sx = inner(cx, w, left.1, right.0);
    let sy = inner(cy, h, top.1, bottom.0);
    // whole pixels added (or removed) before and after the principal point,
    // rounded inwards, so that output pixel centres stay on the photo's
    // where the distortion is small (1e-6 absorbs rounding of a scale of 1)
    let grow = |s: f64, c: f64, size: f64| -> (f64, f64) {
        let before = ((s - 1.0) * c + 1e-6).floor();
        let after = ((s - 1.0) * (size - c) + 1e-6).floor();
        ((size + before + after).max(1.0), c + before)
    };
    let (nw, ncx) = grow(sx, cx, w);
    let (nh, ncy) = grow(sy, cy, h);
    Pinhole {
        width: nw as u32,
        height: nh as u32,
        fx,
        fy,
        cx: ncx,
        cy: ncy,
    }
}

/// For every pixel of a pinhole, where to sample the photo: the source
/// position in the photo's pixel coordinates, or none.
#[derive(Clone, Debug)]
pub struct Remap {
    /// The output camera.
    pub pinhole: Pinhole,
    /// Whether the photo's columns wrap around (a 360° panorama's left
    /// and right edges meet), so that a sample near one edge takes taps
    /// from the other instead of repeating the edge pixel.
    wrap_x: bool,
    /// Width of the photo.
    pub src_width: u32,
    /// Height of the photo.
    pub src_height: u32,
    /// Per output pixel (row-major): the source position, NaN when none.
    src: Vec<[f64; 2]>,
}

impl Remap {
    /// The map from `cam`'s photos to the pinhole [`pinhole_for`] chooses
    /// (for a panorama, its front face).
    pub fn new(cam: &Intrinsics) -> Remap {
        Remap::to(cam, pinhole_for(cam))
    }

    /// The map from `cam`'s photos to a given pinhole along the camera's
    /// own axes.
    pub fn to(cam: &Intrinsics, pinhole: Pinhole) -> Remap {
        Remap::rotated(cam, pinhole, IDENTITY)
    }

    /// The map from `cam`'s photos to one [`Part`] of them.
    pub fn part(cam: &Intrinsics, part: &Part) -> Remap {
        Remap::rotated(cam, part.pinhole, part.rotation)
    }

    /// The map from `cam`'s photos to a pinhole whose axes are `rotation`
    /// in the camera's: an output pixel's ray `d` (in the pinhole's axes)
    /// is `rotationᵀ·d` in the camera's.
    pub fn rotated(cam: &Intrinsics, pinhole: Pinhole, rotation: Rotation) -> Remap {
        let (w, h) = (cam.width as f64, cam.height as f64);
        let pw = pinhole.width as usize;
        let mut src = vec![[f64::NAN; 2]; pw * pinhole.height as usize];
        src.par_chunks_mut(pw.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                for (x, s) in row.iter_mut().enumerate() {
                    let v = [
                        (x as f64 + 0.5 - pinhole.cx) / pinhole.fx,
                        (y as f64 + 0.5 - pinhole.cy) / pinhole.fy,
                        1.0,
                    ];
                    let r = &rotation;
                    let d: [f64; 3] =
                        std::array::from_fn(|i| r[0][i] * v[0] + r[1][i] * v[1] + r[2][i] * v[2]);
                    if let Some(p) = cam.project(d) {
                        if (0.0..=w).contains(&p[0]) && (0.0..=h).contains(&p[1]) {
                            *s = p;
                        }
                    }
                }
            });
        Remap {
            pinhole,
            // (when the panorama spans the photo's width, as COLMAP's
            // cameras of it do; the width parameter is checked at load only
            // for nerfstudio's)
            wrap_x: cam.model == super::CameraModel::Equirectangular
                && (cam.params[0] - cam.width as f64).abs() < 0.5,
            src_width: cam.width as u32,
            src_height: cam.height as u32,
            src,
        }
    }

    /// Where output pixel `i` (row-major) samples the photo: NaN when
    /// nowhere.
    #[cfg(test)]
    pub(super) fn source(&self, i: usize) -> [f64; 2] {
        self.src[i]
    }

    /// The Lanczos-3 taps of output pixel `i` along x and along y.
    fn taps(&self, i: usize) -> Option<Taps> {
        let [sx, sy] = self.src[i];
        if sx.is_nan() {
            return None;
        }
        Some(Taps {
            x: match self.wrap_x {
                true => lanczos3_taps_wrapped(sx, self.src_width as usize),
                false => lanczos3_taps(sx, self.src_width as usize),
            },
            y: lanczos3_taps(sy, self.src_height as usize),
        })
    }

    /// Resamples a `ch`-channel image of the photo's size into the pinhole;
    /// pixels without a source get `fill`.
    pub fn apply(&self, data: &[f32], ch: usize, fill: &[f32]) -> Vec<f32> {
        assert_eq!(
            data.len(),
            self.src_width as usize * self.src_height as usize * ch
        );
        assert_eq!(fill.len(), ch);
        let mut out = vec![0.0f32; self.src.len() * ch];
        out.par_chunks_mut(ch)
            .enumerate()
            .for_each(|(i, o)| match self.taps(i) {
                None => o.copy_from_slice(fill),
                Some(t) => {
                    let w = self.src_width as usize;
                    for (c, oc) in o.iter_mut().enumerate() {
                        let (mut v, mut lo, mut hi) = (0.0f64, f64::MAX, f64::MIN);
                        for &(y, wy) in &t.y {
                            for &(x, wx) in &t.x {
                                let d = data[(y * w + x) * ch + c] as f64;
                                v += wy * wx * d;
                                if wy * wx != 0.0 {
                                    (lo, hi) = (lo.min(d), hi.max(d));
                                }
                            }
                        }
                        *oc = v.clamp(lo, hi) as f32;
                    }
                }
            });
        out
    }

    /// The mask of the output (1 keep, 0 ignore): a pixel is kept when it
    /// has a source and, if the photo has a `mask`, every tap that weighs
    /// in its sample is kept there.
    pub fn mask(&self, mask: Option<&[f32]>) -> Vec<f32> {
        let Some(m) = mask else {
            // kept where the pixel has a source (no taps to compute)
            return self
                .src
                .par_iter()
                .map(|s| if s[0].is_nan() { 0.0 } else { 1.0 })
                .collect();
        };
        (0..self.src.len())
            .into_par_iter()
            .map(|i| match self.taps(i) {
                None => 0.0,
                Some(t) => {
                    let w = self.src_width as usize;
                    let kept = t.y.iter().all(|&(y, wy)| {
                        t.x.iter()
                            .all(|&(x, wx)| wy * wx == 0.0 || m[y * w + x] > 0.0)
                    });
                    if kept {
                        1.0
                    } else {
                        0.0
                    }
                }
            })
            .collect()
    }
}

/// Half the width of the Lanczos kernel, in source pixels.
const LANCZOS_A: usize = 3;

/// The separable taps of one output pixel: (source column, weight) along x
/// and (source row, weight) along y.
struct Taps {
    x: [(usize, f64); 2 * LANCZOS_A],
    y: [(usize, f64); 2 * LANCZOS_A],
}

/// The Lanczos-3 kernel, `sinc(t)·sinc(t/3)`, zero from |t| = 3 on (the
/// definition [`lanczos3_taps`] evaluates with three library calls for all
/// six taps; the tests compare the two).
#[cfg(test)]
pub(super) fn lanczos3(t: f64) -> f64 {
    if t == 0.0 {
        return 1.0;
    }
    let a = LANCZOS_A as f64;
    if t.abs() >= a {
        return 0.0;
    }
    let pt = std::f64::consts::PI * t;
    a * pt.sin() * (pt / a).sin() / (pt * pt)
}

/// The six taps along one axis of `n` pixels for a source position `pos`
/// in pixel coordinates (pixel `k`'s centre at `k + 0.5`): pixels
/// `⌊pos − ½⌋ − 2 ..= ⌊pos − ½⌋ + 3`, indices clamped to the image (edge
/// pixels repeated), weights normalised to sum to one. A position on a pixel
/// centre gives that pixel alone (weight 1, the others 0), so the kernel
/// interpolates; positions within half a pixel of the border take the edge
/// pixel.
pub(super) fn lanczos3_taps(pos: f64, n: usize) -> [(usize, f64); 2 * LANCZOS_A] {
    let last = (n - 1) as f64;
    taps_at((pos - 0.5).clamp(0.0, last), |i| {
        i.clamp(0.0, last) as usize
    })
}

/// [`lanczos3_taps`] along an axis that wraps around (a panorama's
/// columns): taps beyond one edge are the pixels at the other, and a
/// position within half a pixel of an edge is between the two edge pixels.
pub(super) fn lanczos3_taps_wrapped(pos: f64, n: usize) -> [(usize, f64); 2 * LANCZOS_A] {
    let n = n as f64;
    // (`i` is a whole number, so its remainder is exact)
    taps_at(pos - 0.5, |i| i.rem_euclid(n) as usize)
}

/// The six normalised Lanczos-3 taps around `f` (a position in pixel
/// indices: pixel `k` at `k`), each index mapped into the image by `index`.
fn taps_at(f: f64, index: impl Fn(f64) -> usize) -> [(usize, f64); 2 * LANCZOS_A] {
    let i0 = f.floor();
    let frac = f - i0;
    let mut taps = [(0usize, 0.0f64); 2 * LANCZOS_A];
    let mut sum = 0.0;
    // Tap k is at distance t = frac + 2 − k, so sin(πt) = (−1)^k·sin(π·frac)
    // and sin(πt/3) = sin(a + φ) with a = π·frac/3, φ = (2 − k)·π/3: three
    // library calls for the six taps instead of twelve (they dominated
    // loading a distorted capture), the same kernel to a few ulps.
    let pi = std::f64::consts::PI;
    let (s1, (sa, ca)) = ((pi * frac).sin(), (pi * frac / 3.0).sin_cos());
    let half_sqrt3 = 0.75f64.sqrt();
    // (−1)^k·(cos φ, sin φ) for k = 0..5
    let phase = [
        (-0.5, half_sqrt3),
        (-0.5, -half_sqrt3),
        (1.0, 0.0),
        (-0.5, half_sqrt3),
        (-0.5, -half_sqrt3),
        (1.0, -0.0),
    ];
    for (k, t) in taps.iter_mut().enumerate() {
        let i = i0 + k as f64 - (LANCZOS_A as f64 - 1.0);
        // sin(πk) is not exactly 0 in floating point: on a pixel centre
        // the kernel is exactly the centre tap
        let w = if frac == 0.0 {
            f64::from(u8::from(i == i0))
        } else {
            // 3·sin(πt)·sin(πt/3)/(πt)², with 0 < |t| < 3 here
            let (cp, sp) = phase[k];
            let pt = pi * (f - i);
            3.0 * s1 * (sa * cp + ca * sp) / (pt * pt)
        };
        *t = (index(i), w);
        sum += w;
    }
    for t in &mut taps {
        t.1 /= sum;
    }
    taps
}
