//! Posed-image datasets: NeRF-synthetic (`transforms_*.json`) and COLMAP
//! (`sparse/0/{cameras,images,points3D}.{bin,txt}`), read into one form:
//! views with pinhole intrinsics, a world-to-camera pose in OpenCV axes
//! (x right, y down, z forward) and an RGB image in memory at the training
//! resolution; plus COLMAP's sparse points when present.
//!
//! Every failure names the file and, where it applies, the field.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub mod capture;
pub mod colmap;
pub mod masks;
pub mod nerf;
pub mod nerfstudio;
mod pixels;
pub mod synth;

pub use pixels::Pixels8;

/// What went wrong reading a dataset: always the file, and the field or
/// position where it applies.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's words.
        message: String,
    },
    /// The file was read but its content is wrong.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, property or position.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl DataError {
    /// The same error with `more` appended to its message.
    pub(crate) fn also(self, more: &str) -> Self {
        match self {
            DataError::Io { path, message } => DataError::Io {
                path,
                message: message + more,
            },
            DataError::Invalid {
                path,
                field,
                message,
            } => DataError::Invalid {
                path,
                field,
                message: message + more,
            },
        }
    }

    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
    /// A photo the dataset names that is not a file: says what is missing,
    /// the whole folder (named, with the photo wanted from it), a folder
    /// where the photo should be, or the photo itself.
    pub(crate) fn missing_photo(path: &Path) -> Self {
        if let Some(dir) = path.parent().filter(|d| !d.is_dir()) {
            // the photo in the nearest folder above that is there, where
            // the named subfolder is not (photos copied flat out of theirs)
            let flat = path.file_name().and_then(|f| {
                let there = dir.ancestors().skip(1).find(|a| a.is_dir())?;
                Some(there.join(f)).filter(|p| p.is_file())
            });
            let hint = flat.map_or(String::new(), |p| {
                format!(
                    "; a photo of that name is at {}, outside the folder named",
                    p.display()
                )
            });
            return DataError::io(
                dir,
                format!(
                    "folder not found (the photos are read from it; wanted: {}){hint}",
                    path.display()
                ),
            );
        }
        if path.is_dir() {
            return DataError::invalid(path, "image", "is a folder, not a photo");
        }
        match near_name(path) {
            Some(hint) => DataError::io(path, format!("image file not found ({hint})")),
            None => DataError::io(path, "image file not found"),
        }
    }
    /// Photos the dataset names that are not files (their paths and their
    /// names in the dataset, at least one): [`DataError::missing_photo`]
    /// of the first, with how many more are missing and which (up to
    /// [`MISSING_LISTED`] of them), so that a user fixes them at once.
    pub(crate) fn missing_photos(missing: &[(PathBuf, String)]) -> Self {
        let first = &missing[0].0;
        let rest = &missing[1..];
        let mut list: Vec<&str> = rest
            .iter()
            .take(MISSING_LISTED)
            .map(|m| m.1.as_str())
            .collect();
        let more = rest.len().saturating_sub(MISSING_LISTED);
        let tail = format!("and {more} more");
        if more > 0 {
            list.push(&tail);
        }
        match DataError::missing_photo(first) {
            DataError::Io { path, message } if !rest.is_empty() && path == *first => {
                DataError::Io {
                    path,
                    message: format!(
                        "{message}, nor {} more of the dataset's photos: {}",
                        rest.len(),
                        list.join(", ")
                    ),
                }
            }
            e => e,
        }
    }
    pub(crate) fn invalid(
        path: &Path,
        field: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// What a missing file's folder holds under a name close to its own: the
/// same name in other letter case (photos copied from a camera or from
/// Windows), or the same stem with another extension (`.JPG`, `.jpeg`).
fn near_name(path: &Path) -> Option<String> {
    let wanted = path.file_name()?.to_str()?;
    let stem = path.file_stem()?.to_str()?;
    // files only (a dangling link or a folder is no photo), never the
    // wanted name itself
    let names: Vec<String> = std::fs::read_dir(path.parent()?)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let is_file = std::fs::metadata(e.path()).ok()?.is_file();
            let name = e.file_name().into_string().ok()?;
            (is_file && name != wanted).then_some(name)
        })
        .collect();
    if let Some(n) = names.iter().find(|n| n.eq_ignore_ascii_case(wanted)) {
        return Some(format!(
            "{n} is there: the names differ in letter case, which this file system tells apart"
        ));
    }
    // (a photo's, not a sidecar's: .xmp, .aae, .json)
    const PHOTO: [&str; 8] = ["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "exr"];
    let same_stem = |n: &&String| {
        let n = Path::new(n.as_str());
        n.file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.eq_ignore_ascii_case(stem))
            && n.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| PHOTO.iter().any(|p| x.eq_ignore_ascii_case(p)))
    };
    names
        .iter()
        .find(same_stem)
        .map(|n| format!("{n} is there, with another extension"))
}

/// How many missing photos beyond the first a loader's error names (a
/// dataset's missing photos are listed in one error, up to this many).
pub const MISSING_LISTED: usize = 20;

/// A 4×4 matrix, row-major: `m[row][col]`.
pub type Mat4 = [[f64; 4]; 4];

/// One posed photograph.
#[derive(Clone, Debug)]
pub struct View {
    /// The image's name (its path relative to the dataset, or COLMAP name).
    pub name: String,
    /// Width in pixels (after any downscaling).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Focal length in pixels, x.
    pub fx: f64,
    /// Focal length in pixels, y.
    pub fy: f64,
    /// Principal point x in pixels (pixel centres at +0.5).
    pub cx: f64,
    /// Principal point y in pixels.
    pub cy: f64,
    /// World-to-camera transform in OpenCV axes (x right, y down, z forward).
    pub world_to_camera: Mat4,
    /// RGB in [0, 1], row-major, `height × width × 3`, composited on
    /// [`View::background`] where the photograph had transparency (read it
    /// with [`View::image_on`] then); held at 8 bits ([`Pixels8`]: an 8-bit
    /// photo read as it is keeps its values, a resampled one is rounded).
    pub image: Pixels8,
    /// Coverage in [0, 1] per pixel (`height × width`), when the image had
    /// an alpha channel that was not fully opaque; `None` otherwise. Held
    /// at 8 bits, as the image.
    pub alpha: Option<Pixels8>,
    /// The background `image` was composited on.
    pub background: [f32; 3],
    /// Which pixels count (`height × width`, 1 = keep, 0 = ignore) in the
    /// loss, in densification's statistics and in PSNR/SSIM: a user's mask
    /// and the pixels that undistortion left without a source. `None`: all.
    /// Held at 8 bits like the photo (its values are 0 and 1, exactly).
    pub mask: Option<Pixels8>,
}

impl View {
    /// A camera without a photo (`image` empty): what a render needs of a
    /// view whose photo is elsewhere (a shared site's cameras, an original
    /// 3DGS model's `cameras.json`). `intrinsics` is `[fx, fy, cx, cy]`.
    pub fn camera_only(
        name: String,
        (width, height): (u32, u32),
        [fx, fy, cx, cy]: [f64; 4],
        world_to_camera: Mat4,
    ) -> View {
        View {
            name,
            width,
            height,
            fx,
            fy,
            cx,
            cy,
            world_to_camera,
            image: Pixels8::default(),
            alpha: None,
            background: [0.0; 3],
            mask: None,
        }
    }

    /// Sets the size to `width` × `height`, scaling the intrinsics to
    /// match (the pixels, if any, are the caller's to resample).
    pub fn rescale_intrinsics(&mut self, width: u32, height: u32) {
        let (sx, sy) = (
            width as f64 / self.width as f64,
            height as f64 / self.height as f64,
        );
        (self.fx, self.cx) = (self.fx * sx, self.cx * sx);
        (self.fy, self.cy) = (self.fy * sy, self.cy * sy);
        (self.width, self.height) = (width, height);
    }

    /// The view at a `f`-th of its resolution (`f` ≥ 2; 1 or 0: a copy):
    /// the photo box-filtered as `--downscale` loads it (partial blocks at
    /// the right and bottom edges dropped), but from the 8-bit values held,
    /// and rounded to 8 bits again; its alpha alike, its mask
    /// keeping only the pixels whose whole block was kept, and the
    /// intrinsics scaled so that each new pixel sees exactly the block it
    /// averages (its centre at the block's centre). Training's coarse
    /// phase renders these ([`TrainConfig::coarse_until`](crate::train::TrainConfig::coarse_until)).
    ///
    /// ```
    /// use splat::data::{Pixels8, View};
    /// let mut v = View::camera_only("a".into(), (4, 2), [10.0, 10.0, 2.0, 1.0], [[0.0; 4]; 4]);
    /// v.image = Pixels8::from_bytes((0..24).map(|i| 10 * i).collect());
    /// let h = v.downscaled(2);
    /// assert_eq!((h.width, h.height, h.fx, h.cx, h.cy), (2, 1, 5.0, 1.0, 0.5));
    /// // the first new pixel averages pixels (0,0), (0,1), (1,0), (1,1)
    /// assert_eq!(&h.image.bytes()[..3], &[75, 85, 95]);
    /// // a camera without a photo scales too
    /// let c = View::camera_only("c".into(), (5, 3), [10.0, 10.0, 2.5, 1.5], [[0.0; 4]; 4]);
    /// let c = c.downscaled(2);
    /// assert_eq!((c.width, c.height, c.fx, c.image.len()), (2, 1, 5.0, 0));
    /// ```
    pub fn downscaled(&self, f: u32) -> View {
        if f <= 1 {
            return self.clone();
        }
        let (w, h) = (self.width, self.height);
        let (nw, nh, image) = if self.image.is_empty() {
            // a camera without a photo: only the camera scales
            ((w / f).max(1), (h / f).max(1), Pixels8::default())
        } else {
            let (nw, nh, image) = downscale_box(w, h, &self.image.to_f32(), 3, f);
            (nw, nh, Pixels8::quantize(&image))
        };
        let alpha = self
            .alpha
            .as_ref()
            .map(|a| Pixels8::quantize(&downscale_box(w, h, &a.to_f32(), 1, f).2));
        let mask = self
            .mask
            .as_ref()
            .map(|m| Pixels8::quantize(&masks::downscale(w, h, &m.to_f32(), f)));
        // a new pixel spans `f` old ones (all of them when the image is
        // narrower than `f`, as the box filter averages them)
        let (sx, sy) = (1.0 / f.min(w) as f64, 1.0 / f.min(h) as f64);
        View {
            name: self.name.clone(),
            width: nw,
            height: nh,
            fx: self.fx * sx,
            fy: self.fy * sy,
            cx: self.cx * sx,
            cy: self.cy * sy,
            world_to_camera: self.world_to_camera,
            image,
            alpha,
            background: self.background,
            mask,
        }
    }

    /// The image composited on background `bg` (the same image when it had
    /// no transparency): a pixel with no coverage reads exactly `bg`, a
    /// fully covered one its stored value, and one in between
    /// `image + (bg − background₈)(1 − α)`, where `background₈` is
    /// [`View::background`] at the 8-bit level the image holds it at (so
    /// within about a level of the exact composite when the background is
    /// not one of the 256 levels, 0.5 say). Training's loss and the
    /// held-out scores read a transparent photo so, on its own background
    /// or, with random backgrounds, on another.
    ///
    /// ```
    /// use splat::data::{Pixels8, View};
    /// let mut v = View::camera_only("a".into(), (2, 1), [1.0, 1.0, 1.0, 0.5], [[0.0; 4]; 4]);
    /// v.background = [0.5; 3];
    /// // one covered red pixel, one with no coverage (the background's level)
    /// v.image = Pixels8::quantize(&[1.0, 0.0, 0.0, 0.5, 0.5, 0.5]);
    /// v.alpha = Some(Pixels8::quantize(&[1.0, 0.0]));
    /// assert_eq!(v.image_on([0.5; 3]), [1.0, 0.0, 0.0, 0.5, 0.5, 0.5]);
    /// assert_eq!(v.image_on([0.25; 3])[3..], [0.25; 3]);
    /// ```
    pub fn image_on(&self, bg: [f32; 3]) -> Vec<f32> {
        let mut out = Vec::new();
        self.write_image_on(bg, &mut out);
        out
    }

    /// [`View::image_on`] into `out` (cleared first; its capacity is
    /// reused): what training's loss reads each iteration.
    pub fn write_image_on(&self, bg: [f32; 3], out: &mut Vec<f32>) {
        let Some(alpha) = &self.alpha else {
            return self.image.write_f32(out);
        };
        // (0 for a background on a level, black and white among them: the
        // stored values then, bit for bit)
        let d = [0, 1, 2].map(|c| bg[c] - pixels::value(pixels::level(self.background[c])));
        out.clear();
        out.reserve(self.image.len());
        for (p, &a) in self.image.bytes().chunks_exact(3).zip(alpha.bytes()) {
            if a == 0 {
                out.extend(bg);
            } else {
                let t = 1.0 - pixels::value(a);
                out.extend([0, 1, 2].map(|c| pixels::value(p[c]) + d[c] * t));
            }
        }
    }

    /// The camera centre in world coordinates.
    pub fn camera_center(&self) -> [f64; 3] {
        let m = &self.world_to_camera;
        // c = -Rᵀ t
        let mut c = [0.0; 3];
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = -(0..3).map(|k| m[k][i] * m[k][3]).sum::<f64>();
        }
        c
    }
}

/// A point of COLMAP's sparse reconstruction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Position in world coordinates.
    pub xyz: [f64; 3],
    /// Colour, 0–255.
    pub rgb: [u8; 3],
}

/// A loaded dataset.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Training views.
    pub train: Vec<View>,
    /// Held-out test views.
    pub test: Vec<View>,
    /// Sparse points (COLMAP only).
    pub points: Option<Vec<Point>>,
    /// Which format it was read from: `"nerf-synthetic"`, `"colmap"` or
    /// `"nerfstudio"`.
    pub format: &'static str,
    /// What the loader chose that a user should hear of (one sentence
    /// each), e.g. the photos a partial `masks/` folder leaves whole.
    pub notes: Vec<String>,
    /// The folders the photos and masks were read from, each once (empty
    /// for a dataset made in memory): a writer of renders, which are named
    /// after the photos, refuses them.
    pub read_from: Vec<PathBuf>,
}

impl Dataset {
    /// Every photo's view once: the training views, then the held-out ones
    /// not trained on too (a nerfstudio file's split may name a photo in
    /// both halves). NeRF-synthetic's splits are photos of their own even
    /// where their names agree, so all of them are given.
    pub fn views(&self) -> impl Iterator<Item = &View> {
        let trained: std::collections::HashSet<&str> = match self.format {
            "nerf-synthetic" => Default::default(),
            _ => self.train.iter().map(|v| v.name.as_str()).collect(),
        };
        let held = self.test.iter();
        let held = held.filter(move |v| !trained.contains(v.name.as_str()));
        self.train.iter().chain(held)
    }

    /// The views a flight through the dataset's cameras visits
    /// ([`Dataset::views`] in their order): a panorama by its front face
    /// only, the other five (a view named as
    /// [`crate::cameras::undistort::face_name`] names them, whose front
    /// face is a view at the same place) left out, as a path turning to
    /// each face in place would spin.
    pub fn flight_views(&self) -> Vec<&View> {
        use crate::cameras::undistort::{face_name, FACES};
        let centers: std::collections::HashMap<&str, [f64; 3]> = self
            .views()
            .map(|v| (v.name.as_str(), v.camera_center()))
            .collect();
        let side_face = |v: &View| {
            FACES[1..].iter().any(|(face, _)| {
                // the photo's name this face's was made from, if it was
                let tag = format!("@{face}");
                let Some(at) = v.name.rfind(&tag) else {
                    return false;
                };
                let photo = format!("{}{}", &v.name[..at], &v.name[at + tag.len()..]);
                if face_name(&photo, face) != v.name {
                    return false;
                }
                let front = face_name(&photo, "front");
                let c = v.camera_center();
                let norm = |a: [f64; 3]| a.iter().map(|v| v * v).sum::<f64>().sqrt();
                centers.get(front.as_str()).is_some_and(|f| {
                    norm(std::array::from_fn(|k| f[k] - c[k])) <= 1e-9 * (1.0 + norm(c))
                })
            })
        };
        self.views().filter(|v| !side_face(v)).collect()
    }

    /// File names for renders of `views` (a split of this dataset), as
    /// [`render_file_names`] makes them, with stems that collide anywhere
    /// in a COLMAP dataset keeping their folders in every split's renders
    /// (a rig's `cam1/F10.jpg` is `cam1_F10.png` whether the held-out or
    /// the training photos are rendered). A NeRF-synthetic dataset's
    /// splits are folders of their own (`train/r_0.png`, `test/r_0.png`
    /// are different photos of the usual names `r_0.png`), so there
    /// collisions are judged within `views`.
    pub fn render_names(&self, views: &[View]) -> Vec<String> {
        if self.format != "nerf-synthetic" {
            // every photo of the dataset named once, in name order (a
            // COLMAP model or nerfstudio's file names each photo once),
            // whichever split asks
            let mut all: Vec<&str> = self
                .train
                .iter()
                .chain(&self.test)
                .map(|v| v.name.as_str())
                .collect();
            all.sort_unstable();
            all.dedup();
            let named: std::collections::HashMap<&str, String> =
                all.iter().copied().zip(file_names_of(&all)).collect();
            // (views not all of this dataset: named among themselves)
            views
                .iter()
                .map(|v| named.get(v.name.as_str()).cloned())
                .collect::<Option<Vec<String>>>()
                .unwrap_or_else(|| render_file_names(views))
        } else {
            render_file_names(views)
        }
    }

    /// Centre and radius of the camera centres (the usual "scene extent":
    /// 1.1 × the largest distance of a camera from their mean).
    pub fn camera_extent(&self) -> ([f64; 3], f64) {
        // (every photo once: one in both halves weighs as one)
        let centers: Vec<[f64; 3]> = self.views().map(|v| v.camera_center()).collect();
        let n = centers.len().max(1) as f64;
        let mut mean = [0.0; 3];
        for c in &centers {
            for k in 0..3 {
                mean[k] += c[k] / n;
            }
        }
        let r = centers
            .iter()
            .map(|c| (0..3).map(|k| (c[k] - mean[k]).powi(2)).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        (mean, 1.1 * r)
    }
}

/// How to load a dataset.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Background the RGBA images of NeRF-synthetic are composited on.
    pub background: [f32; 3],
    /// Integer downscale factor (1 = full resolution).
    pub downscale: u32,
    /// COLMAP: the folder of images (e.g. `images_2` for downscaled copies).
    /// With the default `images` and a `downscale` N > 1, an `images_N`
    /// folder is used when it exists (the Mip-NeRF 360 layout); a photo it
    /// lacks is read from `images` and downscaled, with a note.
    pub images_dir: String,
    /// Photos wider than this (after `downscale`) are resampled to this
    /// width, as the original 3DGS does with 1,600 when no resolution is
    /// given; `None`: no limit.
    pub max_width: Option<u32>,
    /// COLMAP: hold out every n-th image (sorted by name) for testing.
    pub holdout_every: usize,
    /// Swap kept and ignored pixels of the user's masks (`masks/`).
    pub invert_masks: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            background: [1.0, 1.0, 1.0],
            downscale: 1,
            images_dir: "images".into(),
            max_width: None,
            holdout_every: 8,
            invert_masks: false,
        }
    }
}

/// The kind of dataset in `dir`: `"nerf-synthetic"` (a
/// `transforms_train.json`), `"colmap"` (`sparse/0/` or `sparse/`, or one
/// model of a COLMAP dataset: see [`colmap::dataset_of_model`]),
/// `"nerfstudio"` (a `transforms.json` and no COLMAP model, or the path
/// of such a `.json` file itself: see [`nerfstudio`]; `ns-process-data`'s
/// folder holds both, and its COLMAP model is read), or `None`.
pub fn detect(dir: &Path) -> Option<&'static str> {
    if nerfstudio::is_file(dir) {
        Some("nerfstudio")
    } else if dir.join("transforms_train.json").is_file() {
        Some("nerf-synthetic")
    } else if dir.join("sparse/0").is_dir()
        || dir.join("sparse").is_dir()
        || dir.join("colmap/sparse").is_dir()
        || colmap::dataset_of_model(dir).is_some()
    {
        Some("colmap")
    } else if dir.join(nerfstudio::FILE).is_file() {
        Some("nerfstudio")
    } else {
        None
    }
}

/// Whether a dataset of `kind` ([`detect`]) is a capture of the real
/// world (COLMAP's or nerfstudio's cameras: opaque photos of a scene all
/// around), which trains with the captures' defaults, rather than
/// NeRF-synthetic's objects on nothing.
pub fn is_capture(kind: Option<&str>) -> bool {
    matches!(kind, Some("colmap") | Some("nerfstudio"))
}

/// The background a dataset's kind is usually trained and rendered on:
/// white for NeRF-synthetic (its photos are RGBA objects on nothing),
/// black otherwise (COLMAP photos are opaque; black is what their masked
/// or undistorted-away pixels show).
pub fn default_background(kind: Option<&str>) -> [f32; 3] {
    match kind {
        Some("nerf-synthetic") => [1.0; 3],
        _ => [0.0; 3],
    }
}

/// File names (`STEM.png`) for renders of `views`, one per view, named
/// after each photo: its file stem with every character other than
/// letters, digits (of any script: `Küche_01.png` keeps its name), `-`, `_`
/// and `.` replaced by `_` (`train/r_0.png` → `r_0.png`, `IMG 0012.JPG` →
/// `IMG_0012.png`). Photos in different
/// folders with the same stem (a camera rig's `cam0/F.jpg` and
/// `cam1/F.jpg`) keep their folders in the name (`cam0_F.png`,
/// `cam1_F.png`); a name met again after that gets `_2`, `_3`, … so no two
/// views share a file. Whether stems collide is judged over `views`; see
/// [`Dataset::render_names`] for a split of a dataset, judged so that a
/// photo has one name whichever split is rendered.
pub fn render_file_names(views: &[View]) -> Vec<String> {
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    file_names_of(&names)
}

/// [`render_file_names`] of photos named `names`.
fn file_names_of(names: &[&str]) -> Vec<String> {
    let clean = |text: &str| -> String {
        let mut c: String = text
            .chars()
            .map(|c| {
                // (with the combining accents of a decomposed name, as
                // macOS stores `Küche` as `Ku\u{308}che`)
                if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '\u{300}'..='\u{36f}') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if c.is_empty() || c.starts_with('.') {
            c.insert(0, 'v');
        }
        c
    };
    let stem = |name: &str| {
        Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // the name without its extension, its folders joined by `_` (a leading
    // `./` dropped)
    let full = |name: &str| {
        let p = Path::new(name).with_extension("");
        let parts: Vec<String> = p
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        parts.join("_")
    };
    // each distinct photo counted once
    let distinct: std::collections::HashSet<&str> = names.iter().copied().collect();
    let mut stems = std::collections::HashMap::<String, usize>::new();
    for name in distinct {
        *stems.entry(clean(&stem(name))).or_insert(0) += 1;
    }
    let mut seen = std::collections::HashMap::<String, usize>::new();
    names
        .iter()
        .map(|&name| {
            let s = clean(&stem(name));
            let base = if stems[&s] > 1 { clean(&full(name)) } else { s };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                format!("{base}_{n}.png")
            } else {
                format!("{base}.png")
            }
        })
        .collect()
}

/// Loads a dataset folder, recognising NeRF-synthetic by
/// `transforms_train.json` and COLMAP by `sparse/0` (or `sparse`), or one
/// COLMAP model of a dataset named by its folder (`DATA/sparse/1`: see
/// [`colmap::dataset_of_model`]).
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    check_folder(dir, opts)?;
    let mut ds = match detect(dir) {
        Some("nerf-synthetic") => nerf::load(dir, opts)?,
        Some("nerfstudio") => nerfstudio::load(dir, opts)?,
        Some(_) => colmap::load(dir, opts).map_err(|e| beside_transforms(dir, e))?,
        None => return Err(unrecognised(dir)),
    };
    ds.notes.splice(0..0, colmap_read_before_transforms(dir));
    if ds.train.is_empty() {
        let why = match (ds.test.len(), ds.format) {
            (n, "nerfstudio") if n > 0 => format!(
                "no training images: all {} photos are held out (by the split its \
                 transforms.json names: train_filenames, test_filenames or val_filenames; or \
                 one in {} in name order when it names none)",
                n, opts.holdout_every
            ),
            (n, "colmap") if n > 0 => format!(
                "no training images: one photo in {} (in name order, from the first) is held \
                 out for testing, which leaves none of its {} to train on",
                opts.holdout_every,
                count_photos(n)
            ),
            (0, "colmap") => "no training images: the COLMAP model registers no photos (its \
                              images file lists none; COLMAP could not place any of them)"
                .to_string(),
            (0, "nerfstudio") => {
                "no training images: its transforms.json lists no frames".to_string()
            }
            _ => "no training images".to_string(),
        };
        return Err(DataError::invalid(dir, "dataset", why));
    }
    let notes = nothing_kept(dir, &ds, opts)?;
    ds.notes.extend(notes);
    // (the loaders narrowed the photos one by one as they read them: this
    // leaves them as they are)
    if let Some(max) = opts.max_width {
        for v in ds.train.iter_mut().chain(ds.test.iter_mut()) {
            limit_width(v, max.max(1));
        }
    }
    Ok(ds)
}

/// The photos whose masks (a mask file, the photo's alpha, a fisheye's
/// image circle, what undistortion leaves without a source, all
/// together) keep no pixel: an error when that is every training photo
/// (training would learn nothing and say nothing), else a note naming
/// them (a held-out one is left out of the scores).
fn nothing_kept(dir: &Path, ds: &Dataset, opts: &LoadOptions) -> Result<Vec<String>, DataError> {
    let empty = |views: &[View]| -> Vec<String> {
        views
            .iter()
            .filter(|v| {
                v.mask
                    .as_ref()
                    .is_some_and(|m| m.bytes().iter().all(|&b| b == 0))
            })
            .map(|v| v.name.clone())
            .collect()
    };
    let (train, test) = (empty(&ds.train), empty(&ds.test));
    if train.len() == ds.train.len() {
        return Err(DataError::invalid(
            dir,
            "masks",
            format!(
                "leave no pixel of any training photo to train on (all {} of them: mask files, \
                 alpha channels and a fisheye's fisheye_crop_radius together, with the pixels \
                 undistortion or --downscale leave without a wholly kept source, ignore every \
                 pixel){}",
                train.len(),
                if opts.invert_masks {
                    "; --invert-masks is given: are the masks white where a pixel is kept?"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut notes = Vec::new();
    for (names, what, so) in [
        (&train, "training", "nothing to train on"),
        (
            &test,
            "held-out",
            "nothing to score: left out of the scores",
        ),
    ] {
        if let Some((list, _)) = masks::name_list(names) {
            notes.push(format!(
                "{} {what} photo{} ({list}) keep{} no pixel after {} masks: {so}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if names.len() == 1 { "s" } else { "" },
                if names.len() == 1 { "its" } else { "their" },
            ));
        }
    }
    Ok(notes)
}

/// A dataset's cameras as [`load`] gives them (the same views, split,
/// sizes and intrinsics), without decoding a photo: every view's `image`
/// is empty and none has a mask. Each photo's size is read from its
/// file's header; one that is missing or unreadable takes its camera's
/// size (COLMAP) or its split's (NeRF-synthetic). The COLMAP model's
/// points are not read. What a fly-through
/// (`render --path`) and the viewer need of a capture, read in
/// milliseconds where [`load`] decodes and undistorts every photo.
pub fn load_cameras(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    check_folder(dir, opts)?;
    let mut ds = match detect(dir) {
        Some("nerf-synthetic") => nerf::cameras(dir, opts)?,
        Some("nerfstudio") => nerfstudio::cameras(dir, opts)?,
        Some(_) => colmap::cameras(dir, opts).map_err(|e| beside_transforms(dir, e))?,
        None => return Err(unrecognised(dir)),
    };
    ds.notes.splice(0..0, colmap_read_before_transforms(dir));
    Ok(ds)
}

/// The note for a dataset folder that holds both a COLMAP model and
/// nerfstudio's `transforms.json` (as `ns-process-data` leaves it): the
/// COLMAP model is read, and how to read the other.
fn colmap_read_before_transforms(dir: &Path) -> Option<String> {
    let file = dir.join(nerfstudio::FILE);
    (detect(dir) == Some("colmap") && file.is_file()).then(|| {
        format!(
            "{} holds a COLMAP model and nerfstudio's {}: the COLMAP model is read (name {} \
             to read that file instead)",
            dir.display(),
            nerfstudio::FILE,
            file.display()
        )
    })
}

/// A COLMAP load's error, for a folder that also holds `transforms.json`:
/// said to be the COLMAP model's, with how to read the other.
fn beside_transforms(dir: &Path, e: DataError) -> DataError {
    let file = dir.join(nerfstudio::FILE);
    if !file.is_file() {
        return e;
    }
    e.also(&format!(
        " (this is the folder's COLMAP model; name {} to read nerfstudio's file instead)",
        file.display()
    ))
}

/// What [`load`] and [`load_cameras`] refuse before looking inside `dir`.
fn check_folder(dir: &Path, opts: &LoadOptions) -> Result<(), DataError> {
    if opts.downscale == 0 {
        return Err(DataError::invalid(
            dir,
            "resolution",
            "downscale factor must be at least 1",
        ));
    }
    if !dir.exists() {
        return Err(DataError::io(dir, "no such folder"));
    }
    if !dir.is_dir() && !nerfstudio::is_file(dir) {
        return Err(DataError::io(dir, "not a directory"));
    }
    Ok(())
}

/// The error for a folder that is no dataset [`detect`] knows.
fn unrecognised(dir: &Path) -> DataError {
    DataError::invalid(
        dir,
        "dataset",
        colmap::not_a_dataset_hint(dir).unwrap_or_else(|| {
            "neither a NeRF-synthetic dataset (transforms_train.json), a COLMAP one \
             (sparse/0/, colmap/sparse/0/ as nerfstudio lays it out, or a model folder such \
             as DATA/sparse/1) nor a nerfstudio one (transforms.json)"
                .to_string()
        }),
    )
}

/// A photo's size from its file's header (the format found from its
/// content, as [`decode_image`] finds it), `None` when it cannot be read
/// or is zero.
pub(crate) fn photo_size(path: &Path) -> Option<(u32, u32)> {
    image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
        .filter(|&(w, h)| w > 0 && h > 0)
}

/// A camera without pixels narrowed to `max_width` as [`hold_photo`]
/// narrows a photo and its view.
pub(crate) fn narrow_camera(view: &mut View, max_width: Option<u32>) {
    if let Some(max) = max_width.map(|m| m.max(1)) {
        if view.width > max {
            let (nw, nh) = loaded_size(view.width, view.height, 1, Some(max));
            view.rescale_intrinsics(nw, nh);
        }
    }
}

/// Resamples a view wider than `max` pixels to `max` wide (the height in
/// proportion), scaling its intrinsics; a triangle filter as wide as the
/// scale averages the pixels away. A mask keeps a pixel only where all it
/// averages were kept. The 8-bit values held are resampled and rounded
/// again; the loaders narrow a photo before its one rounding (so after
/// loading with a width limit this leaves the views as they are).
pub fn limit_width(v: &mut View, max: u32) {
    if v.width <= max {
        return;
    }
    let rgb = v.image.to_f32();
    let alpha = v.alpha.as_ref().map(Pixels8::to_f32);
    let mask = v.mask.as_ref().map(Pixels8::to_f32);
    let _ = hold_photo(v, rgb, alpha, mask, Some(max));
}

/// A loaded photo's last step: narrowed to `max_width` as
/// [`limit_width`] narrows it, while its colour, alpha and mask are still
/// `f32` (so that they are rounded to 8 bits once), then held in `view`,
/// whose size and intrinsics are those of `rgb`. Returns the size it had
/// before, when it was narrowed.
pub(crate) fn hold_photo(
    view: &mut View,
    mut rgb: Vec<f32>,
    mut alpha: Option<Vec<f32>>,
    mut mask: Option<Vec<f32>>,
    max_width: Option<u32>,
) -> Option<(u32, u32)> {
    let before = (view.width, view.height);
    let mut narrowed = None;
    if let Some(max) = max_width.map(|m| m.max(1)) {
        if view.width > max {
            narrow(view, &mut rgb, &mut alpha, &mut mask, max);
            narrowed = Some(before);
        }
    }
    view.image = Pixels8::quantize(&rgb);
    view.alpha = alpha.map(|a| Pixels8::quantize(&a));
    view.mask = mask.map(|m| Pixels8::quantize(&m));
    narrowed
}

/// The photos a loader narrowed to its width limit, for a note: a user
/// whose photos come out smaller than they are is told why.
#[derive(Default)]
pub(crate) struct Narrowed {
    names: Vec<String>,
    /// The first one's sizes, before and after.
    first: String,
    max: u32,
}

impl Narrowed {
    /// Counts `view` (just held by [`hold_photo`], which returned `before`).
    pub(crate) fn add(&mut self, view: &View, before: Option<(u32, u32)>) {
        if let Some((w, h)) = before {
            if self.names.is_empty() {
                self.first = format!("{w}×{h} to {}×{}", view.width, view.height);
                self.max = view.width;
            }
            self.names.push(view.name.clone());
        }
    }

    /// The note, when any photo of the `total` was narrowed.
    pub(crate) fn note(&self, total: usize) -> Option<String> {
        let (list, _) = masks::name_list(&self.names)?;
        let k = self.names.len();
        Some(format!(
            "{} of the {total} photos {} wider than {} pixels, the width limit, and {} scaled \
             down to it ({list}; the first from {})",
            k,
            if k == 1 { "is" } else { "are" },
            self.max,
            if k == 1 { "is" } else { "are" },
            self.first
        ))
    }
}

/// [`limit_width`]'s resampling of `rgb`, `alpha` and `mask`, and the
/// view's intrinsics (for a view wider than `max`).
fn narrow(
    view: &mut View,
    rgb: &mut Vec<f32>,
    alpha: &mut Option<Vec<f32>>,
    mask: &mut Option<Vec<f32>>,
    max: u32,
) {
    let (w, h) = (view.width, view.height);
    let (nw, nh) = loaded_size(w, h, 1, Some(max));
    let resize = |data: &[f32], ch: usize| -> Vec<f32> {
        use image::imageops::{resize, FilterType};
        let mut out = Vec::with_capacity(nw as usize * nh as usize * ch);
        // channel by channel as grey images (any channel count)
        let planes: Vec<Vec<f32>> = (0..ch)
            .map(|c| {
                let plane: Vec<f32> = data.iter().skip(c).step_by(ch).copied().collect();
                let img = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(w, h, plane)
                    .expect("a plane of the view's size");
                resize(&img, nw, nh, FilterType::Triangle).into_raw()
            })
            .collect();
        for i in 0..nw as usize * nh as usize {
            for p in &planes {
                out.push(p[i]);
            }
        }
        out
    };
    *rgb = resize(rgb, 3);
    *alpha = alpha.as_ref().map(|a| resize(a, 1));
    *mask = mask.as_ref().map(|m| {
        resize(m, 1)
            .into_iter()
            .map(|x| if x > 1.0 - 1e-4 { 1.0 } else { 0.0 })
            .collect()
    });
    view.rescale_intrinsics(nw, nh);
}

/// The size a `width` × `height` photo is loaded at: divided by
/// `downscale` (as the box filter does, at least 1 pixel), then, when
/// wider than `max_width`, resampled to it with the height in proportion
/// (as [`limit_width`] does).
pub fn loaded_size(width: u32, height: u32, downscale: u32, max_width: Option<u32>) -> (u32, u32) {
    let d = downscale.max(1);
    let (w, h) = ((width / d).max(1), (height / d).max(1));
    match max_width.map(|m| m.max(1)) {
        Some(max) if w > max => (
            max,
            ((h as f64 * max as f64 / w as f64).round() as u32).max(1),
        ),
        _ => (w, h),
    }
}

/// An image to decode: its path, the size it must have (if known), and the
/// name it is reported under.
pub(crate) struct ImageJob {
    pub path: PathBuf,
    pub expect: Option<(u32, u32)>,
}

/// A decoded image: width, height, RGB composited on the background, and
/// the alpha channel if it was not fully opaque.
pub(crate) type Decoded = (u32, u32, Vec<f32>, Option<Vec<f32>>);

/// `n` photos, in words.
fn count_photos(n: usize) -> String {
    match n {
        1 => "1 photo".into(),
        n => format!("{n} photos"),
    }
}

/// The folders of `files`, each once (by its resolved path), in order.
pub(crate) fn folders_of<'a>(files: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let dir = f.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
            out.push(dir.to_path_buf());
        }
    }
    out
}

/// Decodes one photo, composites alpha on `background`, and downscales
/// by an integer factor (box filter).
fn decode_image(
    job: &ImageJob,
    background: [f32; 3],
    downscale: u32,
) -> Result<Decoded, DataError> {
    let bytes = std::fs::read(&job.path).map_err(|e| DataError::io(&job.path, e))?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| DataError::io(&job.path, e))?;
    // a truncated JPEG decodes without a word, its missing rows grey
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        crate::image_io::jpeg_complete(&bytes)
            .map_err(|e| DataError::invalid(&job.path, "image", e))?;
    }
    let img = reader.decode().map_err(|e| {
        DataError::invalid(&job.path, "image", crate::image_io::unreadable(&bytes, &e))
    })?;
    drop(bytes);
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(DataError::invalid(&job.path, "image", "zero-sized image"));
    }
    if let Some((ew, eh)) = job.expect {
        if (ew, eh) != (w, h) {
            return Err(DataError::invalid(
                &job.path,
                "image size",
                format!("is {w}×{h}, the camera says {ew}×{eh}"),
            ));
        }
    }
    let rgba = img.to_rgba32f();
    drop(img);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    let mut alpha = Vec::with_capacity((w * h) as usize);
    for p in rgba.pixels() {
        let a = p.0[3];
        alpha.push(a);
        for c in 0..3 {
            rgb.push(p.0[c] * a + background[c] * (1.0 - a));
        }
    }
    drop(rgba);
    let (nw, nh, rgb) = downscale_box(w, h, &rgb, 3, downscale);
    let alpha = if alpha.iter().all(|&a| a >= 1.0) {
        None
    } else {
        Some(downscale_box(w, h, &alpha, 1, downscale).2)
    };
    Ok((nw, nh, rgb, alpha))
}

/// Decodes photos with [`decode_image`], as an iterator that decodes
/// `few` photos at a time (in parallel) when the caller asks for the
/// first of them, one result per photo: a caller that reduces each photo
/// before taking the next holds only those few at full size, however many
/// the capture has (185 photos of 17 megapixels are 39 GB as `f32`
/// colour), and the first photo that fails is the error, whatever the
/// number of threads.
pub(crate) fn decode_images_lazily(
    jobs: &[ImageJob],
    background: [f32; 3],
    downscale: u32,
    few: usize,
) -> impl Iterator<Item = Result<Decoded, DataError>> + '_ {
    jobs.chunks(few.max(1)).flat_map(move |c| {
        c.par_iter()
            .map(|job| decode_image(job, background, downscale))
            .collect::<Vec<_>>()
    })
}

/// How many photos of at most `pixels` each to decode at once with
/// [`decode_images_lazily`]: one per thread of the pool, but no more than
/// a quarter of `memory` bytes (the machine's, when known) holds at about
/// [`DECODE_BYTES_PER_PIXEL`] each while they are decoded.
pub(crate) fn decode_batch(pixels: u64, memory: Option<u64>) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let per_photo = pixels.max(1).saturating_mul(DECODE_BYTES_PER_PIXEL);
    match memory {
        Some(m) => threads.min(
            usize::try_from(m / 4 / per_photo)
                .unwrap_or(usize::MAX)
                .max(1),
        ),
        None => threads,
    }
}

/// Bytes a pixel of a photo takes while [`decode_image`] converts it:
/// the decoded 8-bit image, its `f32` RGBA copy and the composited RGB and
/// alpha planes.
pub(crate) const DECODE_BYTES_PER_PIXEL: u64 = 36;

/// Box-filter downscale of a `ch`-channel image by an integer factor
/// (partial blocks at the edges are dropped, as `w / f` rounds down).
pub(crate) fn downscale_box(
    w: u32,
    h: u32,
    rgb: &[f32],
    ch: usize,
    f: u32,
) -> (u32, u32, Vec<f32>) {
    if f <= 1 {
        return (w, h, rgb.to_vec());
    }
    let (nw, nh) = ((w / f).max(1), (h / f).max(1));
    let fw = f.min(w) as usize;
    let fh = f.min(h) as usize;
    let mut out = vec![0.0f32; nw as usize * nh as usize * ch];
    let norm = 1.0 / (fw * fh) as f32;
    for y in 0..nh as usize {
        for x in 0..nw as usize {
            for dy in 0..fh {
                for dx in 0..fw {
                    let sy = (y * fh + dy).min(h as usize - 1);
                    let sx = (x * fw + dx).min(w as usize - 1);
                    let s = (sy * w as usize + sx) * ch;
                    let d = (y * nw as usize + x) * ch;
                    for c in 0..ch {
                        out[d + c] += rgb[s + c] * norm;
                    }
                }
            }
        }
    }
    (nw, nh, out)
}

/// Inverse of a rigid transform [R t; 0 1]: [Rᵀ −Rᵀt; 0 1].
pub fn rigid_inverse(m: &Mat4) -> Mat4 {
    let mut r = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = m[j][i];
        }
        r[i][3] = -(0..3).map(|k| m[k][i] * m[k][3]).sum::<f64>();
    }
    r[3][3] = 1.0;
    r
}

/// Converts a camera-to-world matrix in OpenGL/Blender camera axes (x right,
/// y up, looking down −z), as NeRF-synthetic stores it, to a world-to-camera
/// matrix in OpenCV axes (x right, y down, z forward): flip the camera's y
/// and z axes (negate the second and third columns), then invert.
pub fn opengl_c2w_to_opencv_w2c(c2w: &Mat4) -> Mat4 {
    let mut m = *c2w;
    for row in m.iter_mut().take(3) {
        row[1] = -row[1];
        row[2] = -row[2];
    }
    rigid_inverse(&m)
}

/// Checks that the upper-left 3×3 block is a rotation (orthonormal, det +1)
/// to a loose tolerance, and the last row [0, 0, 0, 1] to 1e-5; returns a
/// message if not.
pub(crate) fn check_rotation(m: &Mat4) -> Result<(), String> {
    for i in 0..3 {
        for j in 0..3 {
            let d: f64 = (0..3).map(|k| m[k][i] * m[k][j]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            if !d.is_finite() || (d - want).abs() > 1e-3 {
                return Err(format!(
                    "the 3×3 rotation part is not orthonormal (column {i}·column {j} = {d})"
                ));
            }
        }
    }
    // a mirror (determinant −1) is orthonormal too, but no camera's pose:
    // taken as one, it would look the other way
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det < 0.0 {
        return Err(format!(
            "the 3×3 rotation part is a mirror (determinant {det:.3}), not a rotation: a \
             camera's axes must be right-handed"
        ));
    }
    // (float32 noise in the last row, as some exporters write, is taken)
    let last = [0.0, 0.0, 0.0, 1.0];
    if (0..4)
        .any(|c| (m[3][c] - last[c]).abs().partial_cmp(&1e-5) != Some(std::cmp::Ordering::Less))
    {
        return Err(format!("the last row must be [0, 0, 0, 1], not {:?}", m[3]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo whose model's subfolder is missing, but which lies flat in
    /// the folder above, is pointed at.
    #[test]
    fn a_photo_outside_its_named_subfolder_is_pointed_at() {
        let d = std::env::temp_dir().join(format!("cr-flat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.png"), b"").unwrap();
        let e = DataError::missing_photo(&d.join("cam0/a.png")).to_string();
        assert!(
            e.contains("folder not found") && e.contains("outside the folder"),
            "{e}"
        );
        let e = DataError::missing_photo(&d.join("cam0/b.png")).to_string();
        assert!(!e.contains("outside the folder"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A loaded photo is narrowed in `f32` and rounded to 8 bits once,
    /// after, not rounded and then narrowed (which [`limit_width`] has to
    /// do with a view already held).
    #[test]
    fn a_loaded_photo_is_rounded_once_after_narrowing() {
        let (w, h) = (10u32, 4u32);
        let n = (w * h) as usize;
        // every value 0.45 of a level above a level, so that rounding first
        // moves them all the same way
        let rgb: Vec<f32> = (0..3 * n)
            .map(|i| ((i * 37 % 50 + 80) as f32 + 0.45) / 255.0)
            .collect();
        let alpha: Vec<f32> = (0..n).map(|i| 0.2 + 0.6 * (i as f32 / n as f32)).collect();
        let camera = || View::camera_only("a".into(), (w, h), [8.0, 8.0, 5.0, 2.0], [[0.0; 4]; 4]);
        let mut held = camera();
        hold_photo(&mut held, rgb.clone(), Some(alpha.clone()), None, Some(4));
        let mut narrowed = camera();
        let (mut r, mut a, mut m) = (rgb.clone(), Some(alpha.clone()), None);
        narrow(&mut narrowed, &mut r, &mut a, &mut m, 4);
        assert_eq!((held.width, held.height), (4, 2));
        assert_eq!(held.image, Pixels8::quantize(&r));
        assert_eq!(held.alpha, a.map(|a| Pixels8::quantize(&a)));
        assert_eq!([held.fx, held.cx], [narrowed.fx, narrowed.cx]);
        // rounding first gives other values here
        let mut twice = camera();
        twice.image = Pixels8::quantize(&rgb);
        twice.alpha = Some(Pixels8::quantize(&alpha));
        limit_width(&mut twice, 4);
        assert_ne!(twice.image, held.image);
        // no width limit, or a narrower photo: rounded as it is
        let mut as_is = camera();
        hold_photo(&mut as_is, rgb.clone(), None, None, Some(10));
        assert_eq!(as_is.image, Pixels8::quantize(&rgb));
        assert_eq!((as_is.width, as_is.alpha), (10, None));
    }

    #[test]
    fn opengl_to_opencv_round_trip() {
        // camera at (0, 0, 4) looking at the origin, OpenGL axes: identity
        // rotation (looks down -z)
        let c2w = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 4.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let w2c = opengl_c2w_to_opencv_w2c(&c2w);
        // the origin is 4 units in front of the camera (+z in OpenCV)
        let p = [0.0, 0.0, 0.0, 1.0];
        let z: f64 = (0..4).map(|k| w2c[2][k] * p[k]).sum();
        assert!((z - 4.0).abs() < 1e-12);
        // a point above the origin (world +y) is up in the image: OpenCV y < 0
        let q = [0.0, 1.0, 0.0, 1.0];
        let y: f64 = (0..4).map(|k| w2c[1][k] * q[k]).sum();
        assert!(y < 0.0);
        let v = View {
            name: "v".into(),
            width: 1,
            height: 1,
            fx: 1.0,
            fy: 1.0,
            cx: 0.5,
            cy: 0.5,
            world_to_camera: w2c,
            image: Pixels8::from_bytes(vec![0; 3]),
            alpha: None,
            background: [0.0; 3],
            mask: None,
        };
        let c = v.camera_center();
        assert!((c[2] - 4.0).abs() < 1e-12 && c[0].abs() < 1e-12);
    }

    #[test]
    fn render_files_are_named_after_their_photos() {
        let v = |name: &str| View {
            name: name.into(),
            width: 1,
            height: 1,
            fx: 1.0,
            fy: 1.0,
            cx: 0.5,
            cy: 0.5,
            world_to_camera: [[0.0; 4]; 4],
            image: Pixels8::from_bytes(vec![0; 3]),
            alpha: None,
            background: [0.0; 3],
            mask: None,
        };
        let views = [
            v("train/r_0.png"),
            v("IMG 0012.JPG"),
            v("a/IMG 0012.jpg"),
            v("./x/é.png"),
            v("Ku\u{308}che.png"),
            v(".hidden"),
            v("cam0/F.jpg"),
            v("cam1/F.jpg"),
            v("cam0_F.png"),
        ];
        assert_eq!(
            render_file_names(&views),
            [
                "r_0.png",
                "IMG_0012.png",
                "a_IMG_0012.png",
                "é.png",
                "Ku\u{308}che.png",
                "v.hidden.png",
                "cam0_F.png",
                "cam1_F.png",
                "cam0_F_2.png",
            ]
        );
        // judged over the views named: alone, cam1/F is F.png
        assert_eq!(render_file_names(&[v("cam1/F.jpg")]), ["F.png"]);
        // a COLMAP rig split in two: a photo has one name whichever split
        // is rendered, and a stem that collides nowhere stays bare
        let mut ds = Dataset {
            train: vec![v("cam0/F10.jpg"), v("cam0/F1.jpg"), v("cam1/F1.jpg")],
            test: vec![v("cam1/F10.jpg"), v("cam0/G.jpg")],
            points: None,
            format: "colmap",
            notes: Vec::new(),
            read_from: Vec::new(),
        };
        assert_eq!(
            ds.render_names(&ds.train),
            ["cam0_F10.png", "cam0_F1.png", "cam1_F1.png"]
        );
        assert_eq!(ds.render_names(&ds.test), ["cam1_F10.png", "G.png"]);
        // names that clean to the same one are told apart the same way in
        // every split (by name order over the dataset)
        ds.train = vec![v("y/b_c.png"), v("a/b_c.png")];
        ds.test = vec![v("a_b/c.png"), v("x/c.png")];
        assert_eq!(ds.render_names(&ds.train), ["y_b_c.png", "a_b_c.png"]);
        assert_eq!(ds.render_names(&ds.test), ["a_b_c_2.png", "x_c.png"]);
        // NeRF-synthetic splits are folders of their own: r_0.png in each
        ds.format = "nerf-synthetic";
        ds.train = vec![v("train/r_0.png")];
        ds.test = vec![v("test/r_0.png")];
        assert_eq!(ds.render_names(&ds.train), ["r_0.png"]);
        assert_eq!(ds.render_names(&ds.test), ["r_0.png"]);
    }

    #[test]
    fn downscale_averages_blocks() {
        let rgb: Vec<f32> = (0..4 * 2 * 3).map(|i| (i / 3) as f32).collect();
        let (w, h, out) = downscale_box(4, 2, &rgb, 3, 2);
        assert_eq!((w, h), (2, 1));
        // block of pixels 0,1,4,5 → mean 2.5; block 2,3,6,7 → 4.5
        assert_eq!(out, vec![2.5, 2.5, 2.5, 4.5, 4.5, 4.5]);
    }
}
